"""Slurm submission exactly once, whoever is killed when: the intent in the ledger before sbatch, the job named
after it, and a resumed sweep that adopts what Slurm has (squeue, sacct, the job's own announcement) and submits
the rest; run directories whose path sbatch would read as a filename pattern; sbatch answers without a job id.
The reconcile logic against a stubbed squeue/sacct, then the kill instants on the real local cluster
(scripts/slurm-up.sh; skipped without one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC, load_records
from trtbench.errors import SpecError, TrtbenchError
from trtbench.executors.base import NullObserver, Task, Work
from trtbench.executors.slurm import (
    Job,
    SlurmExecutor,
    _append,
    _entries,
    announced_path,
    attached,
    literal_pattern,
    started_path,
)
from trtbench.grid import IdentityRule, expand
from trtbench.records import Record
from trtbench.spec import SlurmSpec, parse_spec

POINTS = expand(parse_spec(SMALL_SPEC), IdentityRule(()))
CLUSTER = pytest.mark.skipif(
    shutil.which("sbatch") is None or not os.environ.get("SLURM_CONF"),
    reason="no local Slurm cluster (needs sbatch on PATH and SLURM_CONF; `make slurm-up` starts one)")


class FakeSlurm:
    """subprocess.run for sbatch, squeue and sacct: jobs by name (what squeue, else sacct, knows), their
    states, and a new job id per sbatch; every call kept."""

    def __init__(self, queued: dict[str, str], accounted: dict[str, str], states: dict[str, str]) -> None:
        self.queued, self.accounted, self.states = queued, accounted, states  # job name -> id; id -> state
        self.calls: list[list[str]] = []
        self.next_id = 100

    def __call__(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        out = ""
        if args[0] == "sbatch":
            self.next_id += 1
            out = f"{self.next_id}\n"
        elif args[0] in ("squeue", "sacct") and (names := _value(args, "--name=")):
            known = self.queued if args[0] == "squeue" else self.accounted
            out = "".join(f"{known[n]}|{n}\n" for n in names.split(",") if n in known)
        elif args[0] == "squeue":
            out = "".join(f"{j}|{self.states[j]}\n" for j in args[-1].split(",") if j in self.states)
        elif args[0] != "sacct":  # sinfo: fails, the filesystem check says nothing
            return subprocess.CompletedProcess(args, 1, "", f"{args[0]}: error")
        return subprocess.CompletedProcess(args, 0, out, "")

    def named(self, program: str) -> list[set[str]]:
        """The job names each `program --name=` call asked about."""
        asked = (_value(call, "--name=") for call in self.calls if call[0] == program)
        return [set(names.split(",")) for names in asked if names]


def _value(args: list[str], prefix: str) -> str:
    return next((a[len(prefix):] for a in args if a.startswith(prefix)), "")


def _ledger(slurm: Path, *entries: dict) -> None:
    slurm.mkdir(exist_ok=True)
    with (slurm / "jobs.jsonl").open("a") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in entries)


def _intent(submission: str, *points: str) -> dict:
    return {"submission": submission, "point_ids": list(points), "at": time.time()}


def test_a_resumed_sweep_adopts_each_job_slurm_has_once_and_leaves_the_rest_to_submit(monkeypatch, tmp_path):
    slurm = tmp_path / "slurm"
    _ledger(slurm,
            _intent("s1", "a", "b"), {"point_id": "a", "job_id": "11"}, {"point_id": "b", "job_id": "11"},  # whole
            _intent("s2", "c"),  # killed after sbatch answered: squeue knows the job by its name
            _intent("s3", "d"),  # the same, squeue forgot the job: sacct knows it
            _intent("s4", "e"),  # killed before sbatch ran: Slurm has no such job
            _intent("s5", "f"),  # the job announced itself in the run directory
            _intent("s6", "g"), _intent("s7", "g"), {"point_id": "g", "job_id": "17"},  # s6 superseded by s7
            _intent("s8", "h", "i"), {"point_id": "h", "job_id": "18"})  # i's line torn: s8's job is i's too
    with (slurm / "jobs.jsonl").open("a") as fh:
        fh.write('{"point_id": "i", "jo')
    announced_path(slurm, "s5").write_text("15\n")
    started_path(slurm, Job("d", "13")).write_text("")  # d's job ran and ended: waited for, recorded
    fake = FakeSlurm(queued={"trtbench-s2": "12", "trtbench-s8": "18", "trtbench-s6": "16"},
                     accounted={"trtbench-s3": "13"},
                     states={"11": "RUNNING", "12": "PENDING", "15": "RUNNING", "17": "RUNNING", "18": "RUNNING"})
    monkeypatch.setattr(subprocess, "run", fake)
    points = set("abcdefghi")
    want = {"a": "11", "b": "11", "c": "12", "d": "13", "f": "15", "g": "17", "h": "18", "i": "18"}
    assert {p: j.job_id for p, j in attached(slurm, points).items()} == want  # e: submitted again
    # Slurm was asked only about intents no job id followed (s5 announced itself, s6 was superseded), sacct
    # only about the ones squeue did not know
    assert fake.named("squeue") == [{"trtbench-s2", "trtbench-s3", "trtbench-s4", "trtbench-s8"}]
    assert fake.named("sacct") == [{"trtbench-s3", "trtbench-s4"}]
    latest = _entries(slurm)
    assert {p: e.job_id for p, e in latest.items() if isinstance(e, Job)} == want
    lines = (slurm / "jobs.jsonl").read_text().splitlines()
    again = attached(slurm, points)  # the adoptions are in the ledger: nothing is adopted twice
    assert {p: j.job_id for p, j in again.items()} == want
    assert (slurm / "jobs.jsonl").read_text().splitlines() == lines
    assert fake.named("squeue")[-1] == {"trtbench-s4"}  # only e's intent is still open


def _work(tasks: list[Task], delivered: list[Record]) -> Work:
    def refuse(task: Task, status: object, why: str) -> Record:
        raise AssertionError(f"nothing is refused here: {why}")

    def run(task: Task) -> Record:
        raise AssertionError("the slurm executor runs nothing in this process")

    return Work(tasks, run, delivered.append, refuse, lambda: None)


def test_a_resumed_sweep_submits_exactly_the_points_slurm_never_got(monkeypatch, tmp_path):
    tasks = [Task(p, gpus=1) for p in POINTS[:3]]
    ids = [t.point.id for t in tasks]
    executor = SlurmExecutor(tmp_path, "trtllm", SlurmSpec(), detach=True)
    # the first point's sbatch answered (killed before its job id was written); the second's never ran
    _ledger(executor.dir, _intent("old0", ids[0]), _intent("old1", ids[1]))
    fake = FakeSlurm(queued={"trtbench-old0": "50"}, accounted={}, states={"50": "RUNNING"})
    monkeypatch.setattr(subprocess, "run", fake)
    executor.execute(_work(tasks, []), NullObserver())
    submitted = [c for c in fake.calls if c[0] == "sbatch"]
    assert len(submitted) == 2 and all(ids[0] not in _value(c, "--comment=") for c in submitted)
    assert {ids[1], ids[2]} == {_value(c, "--comment=").split()[-1] for c in submitted}
    jobs = {p: e.job_id for p, e in _entries(executor.dir).items() if isinstance(e, Job)}
    assert jobs == {ids[0]: "50", ids[1]: "101", ids[2]: "102"} or jobs == {ids[0]: "50", ids[1]: "102",
                                                                           ids[2]: "101"}
    for call in submitted:  # each job carries the submission id its intent recorded
        submission = _value(call, "--job-name=").removeprefix("trtbench-")
        assert submission in _value(call, "--comment=").split()
        assert any(e.get("submission") == submission and "point_ids" in e for e in
                   map(json.loads, (executor.dir / "jobs.jsonl").read_text().splitlines()))


def test_a_line_torn_by_a_kill_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(_intent("s1", "a")) + "\n" + '{"point_id": "a", "job')  # torn mid-line
    _append(path, [_intent("s2", "b")])
    entries = _entries(tmp_path)
    assert entries["a"].submission == "s1" and entries["b"].submission == "s2"  # type: ignore[union-attr]


def test_squeue_unreachable_with_an_open_intent_submits_nothing(monkeypatch, tmp_path):
    _ledger(tmp_path, _intent("s1", "a"))

    def down(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "squeue: error: Unable to contact slurm controller")

    monkeypatch.setattr(subprocess, "run", down)
    with pytest.raises(TrtbenchError, match=r"Unable to contact slurm controller.*Nothing is submitted again"):
        attached(tmp_path, {"a"})


@pytest.mark.parametrize(("stdout", "stderr", "shown"), [
    ("", "sbatch: Job 35 to start at 2026-12-06T23:45:55 using 1 processors on nodes localhost", "sbatch: Job 35"),
    ("Submitted batch job 12\n", "", "Submitted batch job 12"),  # not --parsable's answer
    ("\x1b[31mgarbage\n", "", "garbage"),
    (";cluster\n", "", ";cluster"),
])
def test_an_answer_without_a_job_id_is_an_error_not_a_ledger_entry(monkeypatch, tmp_path, stdout, stderr, shown):
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 0, stdout, stderr))
    executor = SlurmExecutor(tmp_path, "trtllm", SlurmSpec())
    executor.dir.mkdir()
    with pytest.raises(TrtbenchError, match="not a job id: nothing was submitted") as caught:
        executor._submit([Task(POINTS[0])])
    assert shown in str(caught.value) and "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert [e for p, e in _entries(executor.dir).items() if isinstance(e, Job)] == []


@pytest.mark.parametrize(("path", "pattern"), [
    ("/runs/a%j/slurm", "/runs/a%%j/slurm"), ("/runs/b%%x", "/runs/b%%%%x"), ("/r/50%", "/r/50%%"),
    ("/runs/plain", "/runs/plain"),
])
def test_paths_reach_sbatch_with_its_replacement_symbols_escaped(path, pattern):
    assert literal_pattern(Path(path)) == pattern


def test_a_path_with_a_backslash_cannot_be_named_to_sbatch_and_is_refused_before_submitting(monkeypatch, tmp_path):
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: pytest.fail(f"ran {args}"))
    executor = SlurmExecutor(tmp_path / "a\\b", "trtllm", SlurmSpec())
    executor.dir.mkdir(parents=True)
    with pytest.raises(SpecError, match="backslash"):
        executor._submit([Task(POINTS[0])])
    assert not (executor.dir / "jobs.jsonl").exists()


@pytest.mark.parametrize("args", [["--test-only"], ["--test"], ["--job-name=x"], ["-J", "x"], ["-Jx"],
                                  ["--comment", "x"], ["--array=1-4"], ["-a", "1-4"], ["--help"], ["-V"]])
def test_extra_args_that_stop_sbatch_submitting_once_or_hide_the_job_are_refused(args):
    with pytest.raises(ValueError, match="is not allowed"):
        SlurmSpec(extra_args=args)


@pytest.mark.parametrize("args", [["--hold"], ["--exclusive"], ["--partition", "gpu"], ["--hint=nomultithread"],
                                  ["-A", "proj"], ["--verbose"]])
def test_other_extra_args_pass(args):
    assert SlurmSpec(extra_args=args).extra_args == args


def test_test_only_in_the_spec_is_one_line_and_exit_2(cli, write_spec):
    spec = SMALL_SPEC + "executor: {kind: slurm, slurm: {extra_args: [--test-only]}}\n"
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "--test-only is not allowed: sbatch would submit no job" in result.err


# ---- on the real local cluster ----------------------------------------------------------------------------------

SLURM_SPEC = TRTLLM_SPEC + "executor: {kind: slurm, slurm: {time: 5}}\n"
ONE = SLURM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")


def _slurm_jobs(run: Path) -> list[str]:
    """The jobs Slurm knows for the run (its comment names the run directory), by job id."""
    done = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%j|%k"], capture_output=True, text=True,
                          timeout=30, check=True)
    rows = [line.split("|", 2) for line in done.stdout.splitlines()]
    mine = f" {run.resolve()} "
    return sorted(job for job, name, comment in rows if name.startswith("trtbench-") and mine in comment)


def _controller(spec: Path, patch: str) -> str:
    """`python -c` running `trtbench sweep SPEC` after `patch` (the kill), as a separate process."""
    return f"""
import os, signal, subprocess, sys
import trtbench.executors.slurm as slurm
{patch}
from trtbench.cli import main
sys.argv = ["trtbench", "sweep", "--no-plots", {str(spec)!r}]
main()
"""


# The instant the controller dies, injected in its own process.
KILLS = {
    "after the intent, before sbatch ran": """
run = subprocess.run
def killing(args, **kwargs):
    if args[0] == "sbatch":
        os.kill(os.getpid(), signal.SIGKILL)
    return run(args, **kwargs)
subprocess.run = killing
""",
    "after sbatch answered, before the job id was written": """
append = slurm._append
def killing(path, entries):
    if any("job_id" in e for e in entries):
        os.kill(os.getpid(), signal.SIGKILL)
    append(path, entries)
slurm._append = killing
""",
}


def _each_point_ran_once(cli, spec: Path, run: Path, fake_bench) -> None:
    again = cli("sweep", "--no-plots", str(spec))
    assert again.code == 0, again.err
    jobs = _slurm_jobs(run)
    assert len(jobs) == 4, jobs  # one job per point, none twice
    ledger = {p: e.job_id for p, e in _entries(run / "slurm").items() if isinstance(e, Job)}
    assert sorted(ledger.values()) == jobs
    records = load_records(run / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records), [r["cause"] for r in records]
    assert len({r["point_id"] for r in records}) == 4
    assert len(fake_bench.printed()) == 4  # the benchmark ran each point once


@CLUSTER
@pytest.mark.slow
@pytest.mark.parametrize("instant", list(KILLS))
def test_a_controller_killed_around_sbatch_then_resumed_runs_each_point_once(cli, write_spec, tmp_path, fake_bench,
                                                                            monkeypatch, instant):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    spec, run = write_spec(SLURM_SPEC), tmp_path / "runs" / "tiny"
    killed = subprocess.run([sys.executable, "-c", _controller(spec, KILLS[instant])], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    intents = list(map(json.loads, (run / "slurm" / "jobs.jsonl").read_text().splitlines()))
    assert len(intents) == 1 and "point_ids" in intents[0]  # the intent alone: no job id in the ledger
    assert len(_slurm_jobs(run)) == (0 if "before sbatch" in instant else 1)
    _each_point_ran_once(cli, spec, run, fake_bench)


@CLUSTER
@pytest.mark.slow
def test_a_controller_killed_while_sbatch_runs_takes_that_sbatch_with_it(cli, write_spec, tmp_path, fake_bench,
                                                                         monkeypatch):
    # sbatch, slow when asked to: it says it started, then waits 2 s before submitting
    slow, began = tmp_path / "slow", tmp_path / "sbatch-began"
    wrapper = tmp_path / "bin" / "sbatch"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nif [ -e '{slow}' ]; then touch '{began}'; sleep 2; fi\n"
                       f"exec {shutil.which('sbatch')} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    slow.write_text("")
    spec, run = write_spec(SLURM_SPEC), tmp_path / "runs" / "tiny"
    with subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 60
        while not began.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the controller never ran sbatch"
            time.sleep(0.05)
        proc.kill()
    slow.unlink()
    time.sleep(3)  # past the 2 s an orphaned sbatch would have waited before submitting
    assert _slurm_jobs(run) == []  # sbatch died with the controller: nothing was submitted behind its back
    _each_point_ran_once(cli, spec, run, fake_bench)


@CLUSTER
@pytest.mark.slow
def test_a_run_directory_whose_path_holds_sbatch_filename_patterns_completes(cli, write_spec, tmp_path, fake_bench,
                                                                            monkeypatch):
    run = tmp_path / "r%j %x%%u" / "50%"
    result = cli("sweep", "--no-plots", "--out", str(run), str(write_spec(ONE)))
    assert result.code == 0, result.err
    (record,) = load_records(run / "results.jsonl")
    assert record["status"] == "ok", record["cause"]
    (job,) = _slurm_jobs(run)
    assert (run / "slurm" / f"{record['point_id']}.{job}.out").exists()  # Slurm wrote its output where asked


@CLUSTER
@pytest.mark.slow
def test_an_sbatch_that_submits_nothing_is_one_line_exit_2_and_no_job_in_the_ledger(cli, write_spec, tmp_path,
                                                                                  fake_bench, monkeypatch):
    # --test-only past the spec's check (sbatch run by a wrapper that adds it): the answer holds no job id
    wrapper = tmp_path / "bin" / "sbatch"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('sbatch')} --test-only \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    result = cli("sweep", "--no-plots", str(write_spec(ONE)))
    assert result.code == 2, result.err
    (error,) = [line for line in result.err.splitlines() if "error" in line]  # after the sweep's progress lines
    assert error.startswith("trtbench: error: sbatch answered 'sbatch: Job") and "not a job id" in error
    run = tmp_path / "runs" / "tiny"
    assert [e for e in _entries(run / "slurm").values() if isinstance(e, Job)] == []
    assert _slurm_jobs(run) == []
