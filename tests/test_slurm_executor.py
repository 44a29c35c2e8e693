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

import pytest

from tests.conftest import TRTLLM_SPEC, load_records

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("sbatch") is None or not os.environ.get("SLURM_CONF"),
    reason="no local Slurm cluster (needs sbatch on PATH and SLURM_CONF; `make slurm-up` starts one)")]
SLURM_SPEC = TRTLLM_SPEC + "executor: {kind: slurm, slurm: {time_min: 5}}\n"


def _job_ids(tmp_path) -> list[str]:
    ledger = tmp_path / "runs" / "tiny" / "slurm" / "jobs.jsonl"
    import json

    return [json.loads(line)["job_id"] for line in ledger.read_text().splitlines()] if ledger.exists() else []


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
while not ledger.exists() or not ledger.read_text().strip():
    time.sleep(0.1)
time.sleep(2)
subprocess.run(["scancel", json.loads(ledger.read_text().splitlines()[0])["job_id"]])
"""])
    result = cli("sweep", "--no-plots", str(spec))
    canceller.wait(timeout=30)
    assert result.code == 0, result.err
    (record,) = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert record["status"] == "error" and "ended CANCELLED without a record" in record["cause"]


def test_detach_submits_and_returns_status_shows_the_jobs_and_the_next_sweep_merges(cli, write_spec, tmp_path,
                                                                                   fake_bench, monkeypatch):
    monkeypatch.setenv("FAKE_TRTLLM_SLEEP", "3")
    spec = write_spec(SLURM_SPEC)
    detached = cli("sweep", "--no-plots", "--detach", str(spec))
    assert detached.code == 0, detached.err
    assert "trtbench status runs/tiny" in " ".join(detached.err.split())
    assert not (tmp_path / "runs" / "tiny" / "results.jsonl").exists() or \
        (tmp_path / "runs" / "tiny" / "results.jsonl").read_text() == ""
    submitted = _job_ids(tmp_path)
    assert len(submitted) == 4
    status = cli("status", "runs/tiny")
    assert status.code == 0, status.err
    text = " ".join(status.err.split() + status.out.split())
    assert "4 points" in text and "slurm:" in text and "done" not in text
    merged = cli("sweep", "--no-plots", str(spec))
    assert merged.code == 0, merged.err
    assert _job_ids(tmp_path) == submitted  # waited for the detached jobs; submitted nothing again
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    after = cli("status", "runs/tiny")
    assert "done: ok" in after.err + after.out and "slurm:" not in after.err + after.out
