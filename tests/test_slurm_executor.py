"""`--executor slurm` on the real local cluster (scripts/slurm-up.sh): one job per point, each on GPUs of its
own, every point recorded once, and a controller killed with -9 re-attaches instead of submitting again.
Skipped without a cluster."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import TRTLLM_SPEC, load_records

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("sbatch") is None or not os.environ.get("SLURM_CONF"),
    reason="no local Slurm cluster (needs sbatch on PATH and SLURM_CONF; `make slurm-up` starts one)")]
SLURM_SPEC = TRTLLM_SPEC + "executor: {kind: slurm, slurm: {time: 5}}\n"


def _job_ids(tmp_path) -> list[str]:
    """The job id of each point's ledger line (the intents before each sbatch carry none)."""
    ledger = tmp_path / "runs" / "tiny" / "slurm" / "jobs.jsonl"
    import json

    entries = [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []
    return [entry["job_id"] for entry in entries if "job_id" in entry]


def test_every_point_runs_once_in_its_own_job_on_its_own_gpus(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    result = cli("sweep", "--no-plots", str(write_spec(SLURM_SPEC)))
    assert result.code == 0, result.err
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records), [r["cause"] for r in records]
    assert len(set(_job_ids(tmp_path))) == 4  # one job per point
    printed = fake_bench.printed()
    assert len(printed) == 4 and all(p["gpus"] for p in printed)  # Slurm set CUDA_VISIBLE_DEVICES
    for a, b in itertools.combinations(printed, 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:
            assert set(a["gpus"].split(",")).isdisjoint(b["gpus"].split(","))


def test_a_controller_killed_mid_sweep_reattaches_and_runs_nothing_twice(cli, write_spec, tmp_path, fake_bench,
                                                                         monkeypatch, request):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "4")
    spec = write_spec(SLURM_SPEC)
    with subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        request.addfinalizer(proc.kill)
        deadline = time.monotonic() + 60
        while len(_job_ids(tmp_path)) < 4:  # all four submitted, none finished yet (each runs 4 s)
            assert time.monotonic() < deadline, "the controller never submitted its jobs"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    submitted = _job_ids(tmp_path)
    again = cli("sweep", "--no-plots", str(spec))
    assert again.code == 0, again.err
    assert _job_ids(tmp_path) == submitted  # re-attached: nothing submitted again
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert len(fake_bench.printed()) == 4  # each point ran once


def test_a_cancelled_job_is_recorded_with_slurms_reason(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    spec = write_spec(SLURM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]"))
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "30")
    canceller = subprocess.Popen([sys.executable, "-c", f"""
import json, pathlib, subprocess, time
ledger = pathlib.Path({str(tmp_path / 'runs' / 'tiny' / 'slurm' / 'jobs.jsonl')!r})
while not list(ledger.parent.glob("*.started")):  # the job reached its point
    time.sleep(0.1)
time.sleep(1)
subprocess.run(["scancel", next(e["job_id"] for e in map(json.loads, ledger.read_text().splitlines())
                                 if "job_id" in e)])
"""])
    result = cli("sweep", "--no-plots", str(spec))
    canceller.wait(timeout=30)
    assert result.code == 1, result.err  # its one point failed
    (record,) = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert record["status"] == "error" and "ended CANCELLED without a record" in record["cause"]


def test_detach_submits_and_returns_status_shows_the_jobs_and_report_merges_them_once(cli, write_spec, tmp_path,
                                                                                     fake_bench, monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "3")
    spec = write_spec(SLURM_SPEC)
    run = tmp_path / "runs" / "tiny"
    detached = cli("sweep", "--no-plots", "--detach", str(spec))
    assert detached.code == 0, detached.err
    assert "trtbench status runs/tiny" in " ".join(detached.err.split())
    assert not (run / "results.jsonl").exists() or (run / "results.jsonl").read_text() == ""
    submitted = _job_ids(tmp_path)
    assert len(submitted) == 4
    status = cli("status", "runs/tiny")
    assert status.code == 0, status.err
    text = " ".join(status.err.split() + status.out.split())
    assert "4 points" in text and "slurm:" in text and "done" not in text
    deadline = time.monotonic() + 90
    while len(list((run / "slurm").glob("*.record.json"))) < 4:  # the jobs run on without a controller
        assert time.monotonic() < deadline, "the detached jobs never wrote their records"
        time.sleep(0.5)
    reported = cli("report", "--no-plots", "runs/tiny")
    assert reported.code == 0, reported.err
    assert "merged 4 point(s)" in " ".join(reported.err.split())
    records = load_records(run / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    again = cli("sweep", "--no-plots", str(spec))  # nothing left to run or merge: no job, no second record
    assert again.code == 0, again.err
    assert _job_ids(tmp_path) == submitted
    assert len(load_records(run / "results.jsonl")) == 4
    assert len(fake_bench.printed()) == 4
    after = cli("status", "runs/tiny")
    assert "done: ok" in after.err + after.out and "slurm:" not in after.err + after.out


def test_points_packed_two_per_job_run_one_after_another_in_their_job(cli, write_spec, tmp_path, fake_bench,
                                                                      monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    spec = write_spec(SLURM_SPEC.replace("{time: 5}", "{time: 5, points_per_job: 2}"))
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records), [r["cause"] for r in records]
    jobs = _job_ids(tmp_path)
    assert len(jobs) == 4 and len(set(jobs)) == 2  # four points, two jobs
    printed = fake_bench.printed()
    assert len(printed) == 4
    by_gpu: dict[str, list[dict]] = {}
    for run in printed:
        by_gpu.setdefault(run["gpus"], []).append(run)
    for runs in by_gpu.values():  # the two points of a job share its GPU, one after the other
        for a, b in itertools.combinations(runs, 2):
            assert a["end"] <= b["start"] or b["end"] <= a["start"]


def test_a_job_past_its_time_limit_is_recorded_as_a_timeout(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    # Slurm's smallest limit is a minute and it checks limits about every 30 s: this takes 60-100 s.
    spec = SLURM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")
    spec = spec.replace("{time: 5}", "{time: 1}") + "runtime: {timeout_s: 600}\n"
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang")  # ignores SIGTERM, with a worker in a session of its own
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 1, result.err  # its one point timed out
    (record,) = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert record["status"] == "timeout" and "ended TIMEOUT without a record" in record["cause"]
    assert record["prediction"] is not None  # the controller built it: the simulator's value beside the failure
    deadline = time.monotonic() + 15
    while any(_alive(int(pid)) for pid in pids.read_text().split()):  # nothing outlives the job
        assert time.monotonic() < deadline, "the benchmark outlived its Slurm job"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_job_cancelled_before_it_reached_its_point_records_nothing_and_the_next_sweep_submits_it(
        cli, write_spec, tmp_path, fake_bench, monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "1")
    one = SLURM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")
    held = write_spec(one.replace("{time: 5}", "{time: 5, extra_args: [--hold]}"))  # pending until released
    canceller = subprocess.Popen([sys.executable, "-c", f"""
import json, pathlib, subprocess, time
ledger = pathlib.Path({str(tmp_path / 'runs' / 'tiny' / 'slurm' / 'jobs.jsonl')!r})
while not ledger.exists() or '"job_id"' not in ledger.read_text():
    time.sleep(0.1)
subprocess.run(["scancel", next(e["job_id"] for e in map(json.loads, ledger.read_text().splitlines())
                                 if "job_id" in e)])
"""])
    first = cli("sweep", "--no-plots", str(held))
    canceller.wait(timeout=30)
    assert first.code == 1, first.err  # no point ok (its one point not run)
    assert "1 point(s) have no record" in " ".join(first.err.split())
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    assert not results.exists() or results.read_text() == ""  # it never ran: no failure to record
    assert fake_bench.printed() == []
    status = cli("status", "runs/tiny")
    assert "the next sweep submits it again" in " ".join(status.out.split() + status.err.split())
    again = cli("sweep", "--no-plots", str(write_spec(one)))
    assert again.code == 0, again.err
    assert len(set(_job_ids(tmp_path))) == 2  # submitted again, as a new job
    (record,) = load_records(results)
    assert record["status"] == "ok"


def test_retry_failed_submits_failed_points_again_instead_of_reattaching_their_jobs(cli, write_spec, tmp_path,
                                                                                    fake_bench):
    spec = write_spec(SLURM_SPEC)
    fake_bench.fail("oom_torch")
    assert cli("sweep", "--no-plots", str(spec)).code == 1  # every point oom
    first = set(_job_ids(tmp_path))
    assert {r["status"] for r in load_records(tmp_path / "runs" / "tiny" / "results.jsonl")} == {"oom"}
    fake_bench.fail("")
    result = cli("sweep", "--no-plots", "--retry-failed", str(spec))
    assert result.code == 0, result.err
    assert len(set(_job_ids(tmp_path)) - first) == 4  # new jobs, not the finished ones re-attached
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert [r["status"] for r in records] == ["oom"] * 4 + ["ok"] * 4
