"""The Slurm executor without a cluster (sbatch, squeue, sacct and sinfo answered by the test): the sbatch
arguments of a job, the time limit, packing points into jobs, the cluster wall time `plan` shows, states
from sacct once squeue forgot a job, re-attaching, and refusing a run directory the nodes cannot see."""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SMALL_SPEC, EndsSeen, load_records
from trtbench.commands import slurm_job
from trtbench.errors import RunLost, SpecError, TrtbenchError
from trtbench.executors.base import NullObserver, Task, Work
from trtbench.executors.slurm import (
    Job,
    SlurmExecutor,
    _states,
    attached,
    batches,
    check_shared,
    cluster_wall_s,
    fs_type,
    started_path,
)
from trtbench.grid import IdentityRule, Point, expand
from trtbench.records import Record, Source, Status
from trtbench.spec import SlurmSpec, parse_spec
from trtbench.store import RunStore

POINTS = expand(parse_spec(SMALL_SPEC), IdentityRule(()))
POINT = POINTS[0]


def _answer(monkeypatch, answers: dict[str, tuple[int, str]]) -> list[list[str]]:
    """subprocess.run answered per program name: (exit status, stdout); every call is kept."""
    calls: list[list[str]] = []

    def run(args, **kwargs):
        calls.append(args)
        code, out = answers.get(args[0], (1, ""))
        return subprocess.CompletedProcess(args, code, out, "" if code == 0 else f"{args[0]}: error")

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def _submitted(monkeypatch, tmp_path, spec: SlurmSpec, batch: list[Task]) -> list[str]:
    calls = _answer(monkeypatch, {"sbatch": (0, "4242;cluster\n")})
    executor = SlurmExecutor(tmp_path, "trtllm", spec)
    executor.dir.mkdir()
    assert executor._submit(batch) == "4242"
    intent, *jobs = [json.loads(line) for line in (tmp_path / "slurm" / "jobs.jsonl").read_text().splitlines()]
    submission = intent["submission"]
    assert intent["point_ids"] == [t.point.id for t in batch]  # before sbatch
    assert jobs == [{"point_id": t.point.id, "job_id": "4242", "submission": submission} for t in batch]  # after
    (args,) = calls
    assert f"--job-name=trtbench-{submission}" in args  # how a resumed sweep finds the job
    return args


@pytest.mark.parametrize(("time", "expected", "limit"), [
    (5, [0.0], "--time=5"),  # the spec's limit wins
    ("1-2:30", [0.0], "--time=1590"),  # sbatch's days-hours:minutes, in minutes: 24 x 60 + 150
    ("0:05", [0.0], "--time=1"),  # five seconds: Slurm rounds up to a minute
    (None, [100.0], "--time=8"),  # (100 s x 1.5 + 300 s) / 60 = 7.5 -> 8 minutes
    (None, [0.0], "--time=60"),  # no prediction: an hour
    (None, [100.0, 200.0, 0.0], "--time=73"),  # packed: (300 s x 1.5 + 300 s) / 60 = 12.5 -> 13, + 60 unknown
])
def test_time_limit(monkeypatch, tmp_path, time, expected, limit):
    batch = [Task(p, gpus=2, expected_s=s) for p, s in zip(POINTS, expected, strict=False)]
    args = _submitted(monkeypatch, tmp_path, SlurmSpec(time=time), batch)
    assert limit in args and "--gres=gpu:2" in args


def test_a_time_limit_slurm_cannot_read_is_a_spec_error():
    with pytest.raises(ValueError, match="not a Slurm time"):
        SlurmSpec(time="1:2:3:4")


def test_cluster_options_are_passed_as_arguments(monkeypatch, tmp_path):
    spec = SlurmSpec(partition="gpu", account="proj", container_image="nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
                     extra_args=["--exclusive"])
    args = _submitted(monkeypatch, tmp_path, spec, [Task(POINT)])
    assert args[:2] == ["sbatch", "--parsable"]
    for wanted in ("--partition=gpu", "--account=proj", "--container-image=nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
                   "--exclusive"):
        assert wanted in args
    wrap = args[args.index("--wrap") + 1]
    assert "-m trtbench.commands.slurm_job" in wrap and str(tmp_path / "slurm" / f"{POINT.id[:8]}-") in wrap


def _tasks(widths_and_seconds: list[tuple[int, float]]) -> list[Task]:
    return [Task(Point((("i", i),), f"p{i}"), gpus=g, expected_s=s) for i, (g, s) in enumerate(widths_and_seconds)]


# Five TP1 points (10, 60, 30, 20, 45 s) and two TP2 points (100, 5 s), two points per job.
MIXED = [(1, 10.0), (1, 60.0), (1, 30.0), (1, 20.0), (1, 45.0), (2, 100.0), (2, 5.0)]


def test_points_are_packed_by_width_into_balanced_jobs_longest_first():
    # TP1 needs three jobs: 60, 45, 30 open them; 20 joins the lightest (30), 10 the next lightest (45)
    jobs = [[t.expected_s for t in job] for job in batches(_tasks(MIXED), 2)]
    assert jobs == [[100.0, 5.0], [60.0], [45.0, 10.0], [30.0, 20.0]]
    assert [[t.expected_s for t in job] for job in batches(_tasks(MIXED), 1)] == [[100.0], [60.0], [45.0], [30.0],
                                                                               [20.0], [10.0], [5.0]]


@pytest.mark.parametrize(("spec", "wall", "held"), [
    # jobs of 105, 60, 55, 50 s on 2 slots: 105 | 60 -> 60+55=115 | 105+50=155; the two widest hold 2+1 GPUs
    (SlurmSpec(points_per_job=2, max_jobs=2), 155.0, 3),
    # all four jobs at once: the longest, 105 s, on 2+1+1+1 GPUs
    (SlurmSpec(points_per_job=2), 105.0, 5),
    # a one-minute limit cuts the jobs to 60, 60, 55, 50 s: 60 | 60 -> 60+55=115 | 60+50=110
    (SlurmSpec(points_per_job=2, max_jobs=2, time=1), 115.0, 3),
])
def test_cluster_wall_time(spec, wall, held):
    assert cluster_wall_s(spec, _tasks(MIXED)) == (wall, 4, held)


def test_squeue_first_then_sacct_for_jobs_it_forgot(monkeypatch):
    calls = _answer(monkeypatch, {"squeue": (0, "7|RUNNING\n"), "sacct": (0, "8|TIMEOUT\n9|CANCELLED by 0\n")})
    assert _states(["7", "8"]) == {"7": "RUNNING", "8": "TIMEOUT"}
    assert calls[-1][0] == "sacct" and calls[-1][-1] == "8"
    _answer(monkeypatch, {"squeue": (0, "")})  # sacct: "Slurm accounting storage is disabled", exit 1
    assert _states(["8"]) == {}


def test_a_point_its_job_never_reached_is_submitted_again(monkeypatch, tmp_path):
    slurm = tmp_path / "slurm"
    slurm.mkdir()
    (slurm / "jobs.jsonl").write_text('{"point_id": "a", "job_id": "9"}\n{"point_id": "b", "job_id": "9"}\n'
                                      '{"point_id": "c", "job_id": "10"}\n')
    started_path(slurm, Job("a", "9")).write_text("")
    _answer(monkeypatch, {"squeue": (0, "9|TIMEOUT\n10|PENDING\n")})
    # a: started by its job (recorded from how the job ended); b: the job ran out of time before it; c: queued
    assert attached(slurm, {"a", "b", "c"}) == {"a": Job("a", "9"), "c": Job("c", "10")}


def _work(delivered: list[Record]) -> Work:
    def refuse(task: Task, status: Status, why: str) -> Record:
        return Record(status=status, cause=why, source=Source.MEASURED, point_id=task.point.id, attempt="x",
                      axes=task.point.values, backend="trtllm", started_at="2026-11-27T00:00:00+00:00",
                      duration_s=0.0)

    def run(task: Task) -> Record:
        raise AssertionError("the slurm executor runs nothing in this process")

    return Work([], run, delivered.append, refuse, lambda: None)


def test_a_point_wider_than_a_node_is_left_unplaced_not_recorded(monkeypatch, tmp_path):
    """16 GPUs on nodes of 8 is a fact about this cluster, not the point: no record (a cluster with bigger nodes
    runs it), named in `Work.unplaced`; the point that fits is submitted."""
    calls = _answer(monkeypatch, {"sbatch": (0, "7\n")})  # sinfo fails: the filesystem check says nothing
    delivered: list[Record] = []
    work = _work(delivered)
    wide, narrow = Task(POINTS[0], gpus=16), Task(POINTS[1], gpus=8)
    work = Work([wide, narrow], work.run, work.deliver, work.refuse, work.cancel)
    SlurmExecutor(tmp_path, "trtllm", SlurmSpec(gpus_per_node=8), detach=True).execute(work, NullObserver())
    assert delivered == []
    assert work.unplaced == {wide.point.id: "needs 16 GPUs, a node has 8 (executor.slurm.gpus_per_node)"}
    (sbatch,) = [call for call in calls if call[0] == "sbatch"]
    assert "--gres=gpu:8" in sbatch and narrow.point.id in sbatch[sbatch.index("--parsable") + 2]  # --comment=


class Cluster:
    """subprocess.run for a cluster that runs each job as sbatch submits it, in this process (the job's own
    module, as Slurm would start it), and then knows it as COMPLETED; every Slurm call kept. Other programs
    run for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        self.monkeypatch, self.real, self.next_id = monkeypatch, subprocess.run, 100
        monkeypatch.setattr(subprocess, "run", self)

    def __call__(self, args, **kwargs):
        if args[0] not in ("sbatch", "squeue", "sacct", "sinfo", "scancel"):
            return self.real(args, **kwargs)
        self.calls.append(args)
        out = ""
        if args[0] == "sbatch":
            self.next_id += 1
            self.monkeypatch.setenv("SLURM_JOB_ID", str(self.next_id))
            _, module, *argv = shlex.split(args[-1])[1:]  # python -m trtbench.commands.slurm_job RUN TASK
            assert module == "trtbench.commands.slurm_job"
            with contextlib.redirect_stdout(io.StringIO()):
                assert slurm_job.main(["slurm_job", *argv]) == 0
            self.monkeypatch.delenv("SLURM_JOB_ID")
            out = f"{self.next_id}\n"
        elif args[0] == "squeue" and "-j" in args:
            out = "".join(f"{j}|COMPLETED\n" for j in args[-1].split(",") if int(j) <= self.next_id)
        elif args[0] == "sinfo":  # the filesystem check says nothing
            return subprocess.CompletedProcess(args, 1, "", "sinfo: error")
        return subprocess.CompletedProcess(args, 0, out, "")

    def submitted(self) -> list[list[str]]:
        return [call for call in self.calls if call[0] == "sbatch"]


TP_GRID = SMALL_SPEC.replace("osl: [128, 1024]", "osl: [128, 1024]\n  tp: [1, 2]")


def _on_nodes_of(gpus: int, spec: str = TP_GRID) -> str:
    return spec + f"executor: {{kind: slurm, slurm: {{gpus_per_node: {gpus}}}}}\n"


def test_a_sweep_runs_what_fits_its_nodes_and_names_the_rest_as_not_placeable(cli, write_spec, tmp_path,
                                                                              monkeypatch):
    cluster = Cluster(monkeypatch)
    result = cli("sweep", "--no-plots", str(write_spec(_on_nodes_of(1))))
    assert result.code == 1, result.err  # incomplete: four points ran nowhere
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and {r["tp"] for r in records} == {1}
    assert len(cluster.submitted()) == 4 and all("--gres=gpu:1" in call for call in cluster.submitted())
    said = " ".join(result.err.split())  # the console wraps at 200 columns
    assert said.count("not run here") == 1
    assert ("not run here: 4 point(s): needs 2 GPUs, a node has 1 (executor.slurm.gpus_per_node); left without a "
            "record, so a sweep with bigger nodes (executor.slurm.gpus_per_node, executor.slurm.partition) runs them: "
            "exit status 1") in said


def test_a_grid_no_point_of_which_fits_a_node_exits_2_before_submitting(cli, write_spec, tmp_path, monkeypatch):
    cluster = Cluster(monkeypatch)
    result = cli("sweep", "--no-plots", str(write_spec(_on_nodes_of(1, TP_GRID.replace("tp: [1, 2]", "tp: [2]")))))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert ("--executor slurm can run none of the 4 point(s) to run on this cluster (4 point(s): needs 2 GPUs, a node "
            "has 1 (executor.slurm.gpus_per_node)); nothing was run or recorded") in " ".join(result.err.split())
    assert cluster.calls == []  # not even sinfo
    assert not (tmp_path / "runs" / "tiny").exists()


def test_an_old_infeasible_record_for_a_point_wider_than_a_node_is_run_again(cli, write_spec, tmp_path,
                                                                              monkeypatch):
    """Runs recorded before this change hold `infeasible: needs N GPUs, a node has M (executor.slurm.gpus_per_node)`
    for points wider than the node: a resume on bigger nodes runs them; other infeasible records stay."""
    cluster = Cluster(monkeypatch)
    spec = write_spec(_on_nodes_of(2))
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    store = RunStore(tmp_path / "runs" / "tiny")
    wide = [r for r in store.records() if r.axes["tp"] == 2]
    with store.lock():  # as the old executor recorded them on nodes of one GPU; one other verdict beside them
        for record, cause in zip(wide, ["needs 2 GPUs, a node has 1 (executor.slurm.gpus_per_node)"] * 3
                                 + ["needs 2 GPUs, a node has 1"], strict=True):
            store.submit(record.model_copy(update={"status": Status.INFEASIBLE, "metrics": None, "cause": cause,
                                                   "attempt": "old" + record.attempt}))
        store.merge()
    before = len(cluster.submitted())
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    assert len(cluster.submitted()) - before == 3
    latest = {r.point_id: r for r in store.records()}
    assert [latest[r.point_id].status for r in wide] == [Status.OK] * 3 + [Status.INFEASIBLE]


MOUNTS = """\
overlay / overlay rw 0 0
/dev/sda1 /scratch ext4 rw 0 0
nas:/export /shared nfs4 rw 0 0
/dev/sdb1 /shared/local xfs rw 0 0
"""


@pytest.mark.parametrize(("path", "kind"), [
    ("/shared/runs/x", "nfs4"), ("/shared", "nfs4"), ("/shared/local/runs", "xfs"),
    ("/sharedfoo/runs", "overlay"),  # not under /shared: a prefix of the name is not a mount point above it
    ("/scratch/r", "ext4"),
])
def test_the_filesystem_of_a_path_is_its_longest_mount_point(path, kind):
    assert fs_type(Path(path), MOUNTS) == kind


@pytest.mark.parametrize(("nodes", "mounts", "refused"), [
    ("gpu01\ngpu02\n", "/dev/sda1 / ext4 rw 0 0\n", True),  # other machines, a local disk
    ("gpu01\n", "nas:/export / nfs rw 0 0\n", False),  # other machines, NFS
    ("localhost\n", "/dev/sda1 / ext4 rw 0 0\n", False),  # the cluster is this machine
])
def test_a_run_directory_the_nodes_cannot_see_is_refused(monkeypatch, tmp_path, nodes, mounts, refused):
    _answer(monkeypatch, {"sinfo": (0, nodes)})
    table = tmp_path / "mounts"
    table.write_text(mounts)
    monkeypatch.setattr("trtbench.executors.slurm.MOUNTS", table)
    if refused:
        with pytest.raises(SpecError, match=r"on a local ext4 filesystem, which the Slurm nodes gpu01, gpu02 cannot "):
            check_shared(tmp_path, None)
    else:
        check_shared(tmp_path, None)



def test_no_squeue_is_one_clear_error_not_a_traceback(monkeypatch):
    def missing(args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", args[0])

    monkeypatch.setattr(subprocess, "run", missing)
    with pytest.raises(TrtbenchError, match=r"cannot ask Slurm about the run's jobs .*the same command re-attaches"):
        _states(["7"])


def test_a_point_whose_keeper_was_killed_in_its_job_is_submitted_again(cli, write_spec, tmp_path, monkeypatch):
    """A run in a job that ended with no verdict (its keeper killed from outside: `RunLost`) leaves no record and
    no mark that the job reached the point, so the next sweep submits it again instead of recording a failure."""
    cluster = Cluster(monkeypatch)
    spec = write_spec(_on_nodes_of(1, SMALL_SPEC))
    real, lost = slurm_job.run_point, []

    def once_lost(backend, prediction, task):
        if not lost:
            lost.append(task.point.id)
            raise RunLost("the point's keeper was killed from outside (SIGKILL), its benchmark with it")
        return real(backend, prediction, task)

    monkeypatch.setattr(slurm_job, "run_point", once_lost)
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    recorded = {r.point_id for r in RunStore(tmp_path / "runs" / "tiny").records()}
    assert len(recorded) == 3 and lost[0] not in recorded
    assert "not run: 1 point(s) have no record" in " ".join(result.err.split())
    again = cli("sweep", "--no-plots", str(spec))
    assert again.code == 0, again.err
    assert len(cluster.submitted()) == 5 and lost[0] in cluster.submitted()[-1][3]  # --comment= names the point
    assert len(RunStore(tmp_path / "runs" / "tiny").records()) == 4


def test_a_point_its_job_ended_before_reaching_ends_its_share_of_the_progress_unrecorded(monkeypatch, tmp_path):
    """The job is cancelled while pending: the point gets no record and is not `Work.lost` (the sweep counts it
    as not run and submits it again), but the progress bar hears that it will not finish in this sweep."""
    _answer(monkeypatch, {"sbatch": (0, "7\n"), "squeue": (0, "7|CANCELLED by 1000\n")})

    delivered: list[Record] = []
    base = _work(delivered)
    work = Work([Task(POINT)], base.run, base.deliver, base.refuse, base.cancel)
    seen = EndsSeen()
    SlurmExecutor(tmp_path, "trtllm", SlurmSpec()).execute(work, seen)
    assert delivered == [] and work.lost == {}
    assert seen.ended == [(POINT.id, "Slurm job 7 ended CANCELLED by 1000 before reaching it")]
