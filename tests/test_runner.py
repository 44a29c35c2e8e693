"""Resume, interruption, kill -9, locking and failures-as-data for the runner and store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SMALL_SPEC, load_records
from trtbench.backends.sim import SimBackend
from trtbench.store import RunStore


def records(run_dir: Path) -> list[dict]:
    return load_records(run_dir / "results.jsonl")


def test_sweep_records_every_point(cli, write_spec, tmp_path):
    result = cli("sweep", "--no-plots", str(write_spec()))
    assert result.code == 0, result.err
    recs = records(tmp_path / "runs" / "tiny")
    assert len(recs) == 4 and len({r["point_id"] for r in recs}) == 4
    assert all(r["source"] == "simulated" and r["backend"] == "sim" for r in recs)
    assert "backend sim (asked for)" in result.err


def test_interrupted_sweep_resumes_without_loss_or_duplicates(cli, write_spec, tmp_path, monkeypatch):
    spec = write_spec()
    real_run = SimBackend.run
    calls = {"n": 0}

    def dies_on_third(self, point, attempt, env=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_run(self, point, attempt)

    monkeypatch.setattr(SimBackend, "run", dies_on_third)
    first = cli("sweep", "--no-plots", str(spec))
    assert first.code == 130 and "run the same command again to resume" in first.err
    run_dir = tmp_path / "runs" / "tiny"
    before = records(run_dir)
    assert len(before) == 2

    monkeypatch.setattr(SimBackend, "run", real_run)
    second = cli("sweep", "--no-plots", str(spec))
    assert second.code == 0, second.err
    assert "2 point(s) already recorded, 2 run now" in second.err
    after = records(run_dir)
    assert after[:2] == before  # nothing recorded was rewritten
    assert len(after) == 4 and len({r["point_id"] for r in after}) == 4

    third = cli("sweep", "--no-plots", str(spec))  # all done: nothing runs, nothing is appended
    assert third.code == 0 and records(run_dir) == after


def test_backend_exception_is_recorded_and_sweep_goes_on(cli, write_spec, tmp_path, monkeypatch):
    real_run = SimBackend.run

    def flaky(self, point, attempt, env=None):
        if point.isl == 2048 and point.osl == 128:
            raise RuntimeError("driver fell over")
        return real_run(self, point, attempt)

    monkeypatch.setattr(SimBackend, "run", flaky)
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    recs = {(r["isl"], r["osl"]): r for r in records(tmp_path / "runs" / "tiny")}
    assert len(recs) == 4
    assert recs[(2048, 128)]["status"] == "error"
    assert "RuntimeError: driver fell over" in recs[(2048, 128)]["cause"]
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "75.0% (3/4)" in report and "driver fell over" in report


SLOW_SWEEP = """
import sys, time
from trtbench.backends.registry import select_backend
from trtbench.executors.base import NullObserver
from trtbench.executors.local import LocalExecutor
from trtbench.grid import expand
from trtbench.runner import run_sweep
from trtbench.spec import load_spec
from trtbench.store import RunStore

spec = load_spec(sys.argv[1])
selection = select_backend(spec)
real_run = selection.backend.run

def slow(point, attempt, env=None):
    time.sleep(0.3)
    return real_run(point, attempt)

selection.backend.run = slow
points = expand(spec, selection.backend.identity())
run_sweep(spec, selection, points, RunStore.create(spec.run_dir()), LocalExecutor(), NullObserver())
"""


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume(write_spec, tmp_path, cli):
    spec = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 256, 512, 1024, 2048]"))
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_SWEEP))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(spec)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not results.exists() or results.read_text().count("\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survivors = records(tmp_path / "runs" / "tiny")
    assert 3 <= len(survivors) < 10

    # A kill during a write leaves a torn line; the next run must cut it, not choke on it.
    with results.open("a") as fh:
        fh.write('{"point_id": "torn')
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    final = records(tmp_path / "runs" / "tiny")
    assert final[: len(survivors)] == survivors
    assert len(final) == 10 and len({r["point_id"] for r in final}) == 10


def test_second_sweep_on_same_run_dir_is_refused(write_spec, tmp_path):
    store = RunStore.create(tmp_path / "runs" / "tiny")
    with store.lock():
        child = subprocess.run(
            [sys.executable, "-m", "trtbench", "sweep", str(write_spec())],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        )
    assert child.returncode == 2
    assert f"in use by another sweep (pid {os.getpid()})" in child.stderr
    assert "Traceback" not in child.stderr


def test_lock_is_released_after_a_sweep(tmp_path):
    store = RunStore.create(tmp_path / "run")
    with store.lock():
        pass
    with store.lock():  # would raise if the first lock leaked
        pass


def test_fresh_starts_a_new_directory_and_keeps_the_old(cli, write_spec, tmp_path):
    spec = write_spec()
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    old = records(tmp_path / "runs" / "tiny")
    result = cli("sweep", "--no-plots", str(spec), "--fresh")
    assert result.code == 0
    assert records(tmp_path / "runs" / "tiny") == old
    assert len(records(tmp_path / "runs" / "tiny-2")) == 4


def test_an_edit_that_changes_measurements_is_refused_without_a_word_written(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    run_dir = tmp_path / "runs" / "tiny"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    changed = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 4096]")
                         .replace("precision: fp8", "precision: fp16"))
    result = cli("sweep", "--no-plots", str(changed))
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "runs/tiny was recorded with another spec (grid.isl: [128, 2048] -> [128, 4096]; precision: fp8 -> " \
           "fp16)" in line
    assert "--fresh" in line and "--update" in line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_an_edit_that_changes_no_measurement_is_taken_with_a_note(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    edited = write_spec(SMALL_SPEC + "runtime: {timeout_s: 60}\n")
    result = cli("sweep", "--no-plots", str(edited))
    assert result.code == 0, result.err
    assert "spec edited since the last sweep in runs/tiny: runtime.timeout_s: 3600.0 -> 60.0" in result.err
    assert "4 point(s) already recorded, 0 run now" in result.err


def test_changed_spec_reruns_only_what_changed(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    changed = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 4096]"))
    result = cli("sweep", "--no-plots", "--update", str(changed))
    assert "2 point(s) already recorded, 2 run now" in result.err
    run_dir = tmp_path / "runs" / "tiny"
    assert len(records(run_dir)) == 6  # the old 2048 records stay on disk ...
    report = (run_dir / "report.md").read_text()
    assert "2 record(s) from an earlier version of the spec" in report  # ... but are not reported
    assert "| 2048 |" not in report


def test_a_garbage_line_in_the_middle_is_set_aside_and_nothing_reruns(write_spec, tmp_path, cli):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    good = results.read_bytes().splitlines(keepends=True)
    garbage = b"\x00\xffthis is not json {\n"
    results.write_bytes(b"".join(good[:2]) + garbage + b"".join(good[2:]))

    report = cli("report", "runs/tiny", "--no-plots")  # reads, warns, changes nothing
    assert report.code == 0, report.err
    assert "results.jsonl:3: not a trtbench record" in report.err and "results.corrupt.jsonl" in report.err
    assert "4 of 4 points were predicted" in (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert results.read_bytes() == b"".join(good[:2]) + garbage + b"".join(good[2:])

    resumed = cli("sweep", "--no-plots", str(write_spec()))
    assert resumed.code == 0, resumed.err
    assert "4 point(s) already recorded, 0 run now" in resumed.err
    assert "line(s) 3 held no trtbench record; set aside in" in resumed.err
    assert results.read_bytes() == b"".join(good)  # the four records, byte for byte
    assert (tmp_path / "runs" / "tiny" / "results.corrupt.jsonl").read_bytes() == garbage


def test_a_damaged_record_is_set_aside_and_only_its_point_reruns(write_spec, tmp_path, cli):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    lines = results.read_text().splitlines()
    lines[1] = lines[1].replace('"status":"ok"', '"status":"fine"')  # no such status
    results.write_text("\n".join(lines) + "\n")
    warned: list[str] = []
    store = RunStore.open(tmp_path / "runs" / "tiny", warn=warned.append)
    assert len(store.records()) == 3 and len(store.records()) == 3
    assert len(warned) == 1 and "results.jsonl:2: not a trtbench record" in warned[0]  # once, not per read
    resumed = cli("sweep", "--no-plots", str(write_spec()))
    assert "3 point(s) already recorded, 1 run now" in resumed.err
    assert len(records(tmp_path / "runs" / "tiny")) == 4



def test_files_are_readable_by_others_whatever_the_umask(cli, write_spec, tmp_path):
    """A run directory is shared: 0644 files and 0755 directories, also under a private umask."""
    old = os.umask(0o077)
    try:
        assert cli("sweep", str(write_spec())).code == 0  # plots included
    finally:
        os.umask(old)
    run_dir = tmp_path / "runs" / "tiny"
    modes = {p.relative_to(run_dir).as_posix(): p.stat().st_mode & 0o777 for p in [run_dir, *run_dir.rglob("*")]}
    assert any(name.endswith(".png") for name in modes) and "results.jsonl" in modes and "report.md" in modes
    for name, mode in modes.items():
        assert mode == (0o755 if (run_dir / name).is_dir() else 0o644), f"{name}: {oct(mode)}"
