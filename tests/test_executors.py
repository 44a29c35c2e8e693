"""`--executor gpus`: every GPU of the node at once, each point on GPUs of its own, longest first."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC, EndsSeen, load_records
from trtbench.errors import RunLost
from trtbench.executors.base import Task, Work
from trtbench.executors.gpus import Gpu, GpuExecutor, makespan, schedule
from trtbench.executors.local import LocalExecutor
from trtbench.grid import IdentityRule, expand
from trtbench.records import Record, Source, Status
from trtbench.spec import parse_spec

GPUS = [Gpu(str(i)) for i in range(4)]

SIXTEEN = TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [128, 256, 512, 1024, 2048, 4096, 8192, 16384]")  # x 2 OSL


def _intervals(printed: list[dict]) -> list[tuple[float, float, set[str]]]:
    return [(p["start"], p["end"], set(p["gpus"].split(","))) for p in printed]


def _most_at_once(intervals: list[tuple[float, float, set[str]]]) -> int:
    """The most intervals open at one instant: a sweep over their endpoints, where an end at the same instant
    as a start comes first (a point that ended as another began did not run beside it)."""
    events = sorted([(start, 1) for start, _, _ in intervals] + [(end, -1) for _, end, _ in intervals])
    return max(itertools.accumulate(step for _, step in events))


def _no_gpu_shared(intervals: list[tuple[float, float, set[str]]]) -> None:
    for (s1, e1, g1), (s2, e2, g2) in itertools.combinations(intervals, 2):
        if s1 < e2 and s2 < e1:  # ran at the same time
            assert not g1 & g2, (g1, g2)


def test_the_endpoint_sweep_counts_what_ran_at_once():
    # [0, 2) [1, 3) [2, 4) [5, 6): at most two at once (1 to 2, 2 to 3); the one ending at 2 and the one
    # starting at 2 never ran together.
    assert _most_at_once([(0, 2, set()), (1, 3, set()), (2, 4, set()), (5, 6, set())]) == 2
    assert _most_at_once([(0, 4, set()), (1, 3, set()), (2, 5, set())]) == 3


@pytest.mark.slow
def test_sixteen_points_on_eight_gpus_run_eight_at_once_never_sharing_a_gpu(cli, write_spec, tmp_path,
                                                                            fake_bench, monkeypatch):
    """Concurrency from what the fake recorded (each benchmark's start, end and CUDA_VISIBLE_DEVICES), not from
    the sweep's elapsed time, which a loaded machine stretches."""
    # Every point sleeps 2 s: the first eight overlap unless starting them is spread over more than that.
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "2")
    spec = write_spec(SIXTEEN + "executor: {kind: gpus, gpus: 8}\n")
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 16 and all(r["status"] == "ok" for r in records)
    assert len({r["point_id"] for r in records}) == 16
    intervals = _intervals(fake_bench.printed())
    assert len(intervals) == 16 and all(len(gpus) == 1 for _, _, gpus in intervals)
    assert _most_at_once(intervals) == 8  # eight GPUs, so never more
    _no_gpu_shared(intervals)
    assert set().union(*(g for _, _, g in intervals)) == {str(i) for i in range(8)}


@pytest.fixture(autouse=True)
def _no_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine's CUDA_VISIBLE_DEVICES: the executor's GPUs come from the spec here."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.mark.slow
def test_tp2_points_take_two_gpus_each_and_a_point_wider_than_the_node_is_left_unrecorded(
        cli, write_spec, tmp_path, fake_bench, monkeypatch):
    """A TP8 point on four GPUs is a fact about this machine, not the point: no record (a sweep with eight
    GPUs runs it), one line that says so, and exit 1 however well the rest went."""
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "0.5")
    spec = write_spec(TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048]\n  tp: [2, 8]").replace("tp: 1\n", "")
                      + "executor: {kind: gpus, gpus: [0, 1, 2, 3]}\n")
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 1, result.err
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["tp"] == 2 and r["status"] == "ok" for r in records)
    lines = [line for line in result.err.splitlines() if "not run here" in line]
    assert lines == ["not run here: 4 point(s): needs 8 GPUs, executor gpus has 4; left without a record, so a "
                     "sweep with more GPUs (executor.gpus, CUDA_VISIBLE_DEVICES) runs them: exit status 1"]
    printed = fake_bench.printed()
    assert len(printed) == 4  # the TP8 points never ran
    for _, _, gpus in _intervals(printed):
        assert len(gpus) == 2 and gpus <= {"0", "1", "2", "3"}
    _no_gpu_shared(_intervals(printed))


def _tasks(durations_and_gpus: list[tuple[float, int]]) -> list[Task]:
    points = expand(parse_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [1, 2, 3, 4, 5, 6, 7, 8]")),
                    IdentityRule(()))
    return [Task(p, gpus=g, expected_s=d) for p, (d, g) in zip(points, durations_and_gpus, strict=False)]


def test_the_schedule_starts_the_longest_first_and_fills_free_gpus():
    # Two GPUs, tasks of 3, 2, 2, 1 s: the 3 and a 2 start at 0; the other 2 at 2 (when the first 2 ends),
    # the 1 at 3; the last ends at 4 (worked by hand), where one GPU would need 8.
    tasks = _tasks([(2, 1), (1, 1), (3, 1), (2, 1)])
    slots = schedule(tasks, GPUS[:2])
    assert [(s.task.expected_s, s.start_s) for s in slots] == [(3, 0), (2, 0), (2, 2), (1, 3)]
    assert makespan(tasks, GPUS[:2]) == 4 and makespan(tasks, GPUS[:1]) == 8


def test_a_wide_task_waits_for_enough_free_gpus_and_narrow_ones_fill_in():
    # Four GPUs: a 4-GPU task of 5 s and four 1-GPU tasks of 1 s. Longest first: the wide one takes all
    # four at 0, the narrow ones start together at 5 and end at 6.
    tasks = _tasks([(1, 1), (5, 4), (1, 1), (1, 1), (1, 1)])
    slots = {(s.task.gpus, s.start_s, s.gpus) for s in schedule(tasks, GPUS)}
    assert (4, 0, (0, 1, 2, 3)) in slots
    assert makespan(tasks, GPUS) == 6


def _wall_minutes(line: str, after: str) -> float:
    value, unit = line.split(after)[1].split()[:2]
    return float(value.replace(",", "")) * (60 if unit.startswith("h") else 1)


def _wall_line(result) -> str:
    assert result.code == 0, result.err
    text = " ".join(result.out.split() + result.err.split())
    return text[text.index("predicted wall time"):]


def test_plan_shows_the_wall_time_one_at_a_time_and_on_the_nodes_gpus(cli, write_spec):
    line = _wall_line(cli("plan", str(write_spec(SMALL_SPEC + "executor: {kind: gpus, gpus: 2}\n"))))
    one, two = _wall_minutes(line, "one at a time "), _wall_minutes(line, "on 2 GPUs (--executor gpus) ")
    assert "60 s model load per point" in line
    assert one / 2 <= two < one  # four points on two GPUs: at best half the time, and shorter than one by one
    assert "Slurm" not in line  # the spec runs on this node


def test_plan_shows_the_wall_time_on_the_clusters_jobs(cli, write_spec):
    spec = write_spec(SMALL_SPEC + "executor: {kind: gpus, gpus: 2, slurm: {max_jobs: 2}}\n")
    line = _wall_line(cli("plan", "--executor", "slurm", str(spec)))
    # two one-GPU jobs at once pack the four points as two GPUs do
    assert "on Slurm (--executor slurm, 4 jobs, up to 2 GPUs at once)" in line
    assert _wall_minutes(line, "up to 2 GPUs at once) ") == _wall_minutes(line, "on 2 GPUs (--executor gpus) ")
    every = _wall_line(cli("plan", "--executor", "slurm", str(write_spec(SMALL_SPEC))))
    # every job at once: the longest one, no shorter than the average of the four, no longer than their sum
    assert "4 jobs, up to 4 GPUs at once" in every
    assert _wall_minutes(every, "GPUs at once) ") <= _wall_minutes(every, "one at a time ")
    assert _wall_minutes(every, "GPUs at once) ") >= _wall_minutes(every, "one at a time ") / 4
    assert cli("plan", "--executor", "k8s", str(spec)).code == 2


def test_repeats_start_round_by_round_longest_first_within_a_round():
    # Two GPUs, points A (3 s) and B (1 s), each twice. Longest first alone would start both runs of A at 0;
    # round by round (worked by hand): A0 and B0 at 0, A1 when B0 ends at 1, B1 when A0 ends at 3.
    a, b = _tasks([(3, 1), (1, 1)])
    tasks = [a, b, replace(a, round=1), replace(b, round=1)]
    slots = [(s.task.expected_s, s.task.round, s.start_s) for s in schedule(tasks, GPUS[:2])]
    assert slots == [(3, 0, 0), (1, 0, 0), (3, 1, 1), (1, 1, 3)]


def test_a_later_round_never_fills_in_ahead_of_a_wide_task_still_waiting():
    # Two GPUs, a 1-GPU point N of 3 s and a 2-GPU point W of 1 s, each twice. N0 starts at 0; W0 waits for both
    # GPUs until 3 and N1, which fits beside N0, waits with it: it starts at 4, W1 at 7 (a GPU idle from 0 to 3
    # is the price of never starting a point's run k+1 before every point's run k).
    n, w = _tasks([(3, 1), (1, 2)])
    tasks = [replace(n, round=1), replace(w, round=1), n, w]
    slots = [(s.task.gpus, s.task.round, s.start_s) for s in schedule(tasks, GPUS[:2])]
    assert slots == [(1, 0, 0), (2, 0, 3), (1, 1, 4), (2, 1, 7)]
    assert makespan(tasks, GPUS[:2]) == 8


@pytest.mark.slow
def test_repeats_on_two_gpus_start_round_by_round(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    """4 points x 3 repeats on 2 GPUs, in the order the fake recorded their starts: every point's first run,
    then every second, then every third (each run's round is how many runs of its point started before it);
    each round starts the same points first (the longest predicted)."""
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")  # equal runs: one round starts a run's length after the last
    spec = write_spec(TRTLLM_SPEC + "executor: {kind: gpus, gpus: 2}\n")
    assert cli("sweep", "--no-plots", "--repeats", "3", str(spec)).code == 0
    started = sorted(fake_bench.printed(), key=lambda p: p["start"])
    seen: dict[tuple[int, int], int] = {}
    rounds, points = [], []
    for p in started:
        point = (p["isl"], p["osl"])
        rounds.append(seen.get(point, 0))
        seen[point] = rounds[-1] + 1
        points.append(point)
    assert rounds == [0] * 4 + [1] * 4 + [2] * 4
    assert set(points[0:2]) == set(points[4:6]) == set(points[8:10])
    _no_gpu_shared(_intervals(started))


@pytest.mark.parametrize("executor", [LocalExecutor(), GpuExecutor(GPUS[:2])], ids=["local", "gpus"])
def test_a_run_with_no_verdict_is_named_lost_and_the_others_are_delivered(executor):
    """A run whose keeper was killed from outside (`RunLost`) has no record: the executor names it in
    `Work.lost` and goes on with the other points."""
    tasks = _tasks([(3.0, 1), (2.0, 1), (1.0, 1)])
    gone = tasks[1].point.id
    why = "the point's keeper was killed from outside (SIGKILL), its benchmark with it"

    def run(task: Task) -> Record:
        if task.point.id == gone:
            raise RunLost(why)
        return Record(status=Status.ERROR, cause="exit 1", source=Source.MEASURED, point_id=task.point.id,
                      attempt=task.point.id, axes=task.point.values, backend="trtllm",
                      started_at="2026-12-07T00:00:00+00:00", duration_s=1.0)

    def refuse(task: Task, status: Status, cause: str) -> Record:
        raise AssertionError(cause)

    delivered: list[Record] = []
    work = Work(tasks, run, delivered.append, refuse, lambda: None)
    seen = EndsSeen()
    executor.execute(work, seen)
    assert sorted(r.point_id for r in delivered) == sorted([tasks[0].point.id, tasks[2].point.id])
    assert work.lost == {gone: why}
    assert sorted(seen.ended) == sorted([(tasks[0].point.id, "finished"), (gone, why),
                                         (tasks[2].point.id, "finished")])
