"""However a sweep ends (kill -9, SIGTERM, SIGHUP, Ctrl-C) no process of its benchmark outlives it, and a
handled signal records nothing half-done, says how to resume and exits 128 + the signal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import TRTLLM_SPEC, load_records


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(path: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_no_benchmark_process_outlives_the_sweep(sig, cli, write_spec, tmp_path, fake_bench, monkeypatch, request):
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang", min_isl=2048)  # the two 128-token points finish, then 2048/128 hangs
    spec = write_spec(TRTLLM_SPEC)
    with (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err)
        request.addfinalizer(proc.kill)  # a failed assertion below must not leave the sweep running
        _wait_for(pids)
        leader, grandchild = map(int, pids.read_text().split())
        assert os.getsid(grandchild) != os.getsid(leader), "the fake's grandchild is still in the benchmark's session"
        assert psutil.Process(grandchild).ppid() != leader  # and its parent: it daemonised (tests/test_orphans.py)
        assert _alive(leader) and _alive(grandchild)
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    while (_alive(leader) or _alive(grandchild)) and time.monotonic() < sent + 60:  # a liveness bound, not a speed
        time.sleep(0.05)                                                              # one (the keeper takes ~1-2 s)
    assert not _alive(leader) and not _alive(grandchild), "a benchmark process outlived the sweep"

    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert sorted((r["isl"], r["osl"]) for r in recs) == [(128, 128), (128, 1024)]  # nothing half-done
    assert all(r["status"] == "ok" for r in recs)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    name = signal.Signals(sig).name
    assert code == 128 + sig
    lines = [line for line in (tmp_path / "err").read_text().splitlines() if "interrupted" in line]
    assert len(lines) == 1 and f"interrupted by {name}" in lines[0] and "run the same command again" in lines[0]
    if sig == signal.SIGTERM:  # resuming runs the two unfinished points, and only them
        monkeypatch.delenv("FAKE_TRTLLM_FAIL")
        again = cli("sweep", "--no-plots", str(spec))
        assert again.code == 0, again.err
        assert "2 point(s) already recorded, 2 run now" in again.err
        assert sorted((p["isl"], p["osl"]) for p in fake_bench.printed()) == [
            (128, 128), (128, 1024), (2048, 128), (2048, 1024)]



def _benchmarks_of(tmp_path: Path) -> list[psutil.Process]:
    """The living processes of this test's benchmarks (the fake and its grandchildren name tmp_path)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(tmp_path) in part for part in proc.info["cmdline"] or []) and \
                    proc.status() != psutil.STATUS_ZOMBIE and "trtbench" not in " ".join(proc.info["cmdline"]):
                found.append(proc)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_no_benchmark_outlives_a_sweep_running_points_on_several_gpus(sig, write_spec, tmp_path, fake_bench,
                                                                      monkeypatch, request):
    """Two points hang on their GPUs while two finish beside them; the sweep is stopped: nothing survives,
    and only the finished points are recorded."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang", min_isl=2048)
    spec = write_spec(TRTLLM_SPEC + "executor: {kind: gpus, gpus: 4}\n")
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request.addfinalizer(proc.kill)  # a failed assertion below must not leave the sweep running
    _wait_for(pids)
    deadline = time.monotonic() + 60
    while not (results.exists() and results.read_text().count("\n") == 2):
        assert time.monotonic() < deadline, "the two short points never finished"
        time.sleep(0.05)
    while len(_benchmarks_of(tmp_path)) < 4:  # two hung leaders and their grandchildren (a loaded machine may
        assert time.monotonic() < deadline, "the two hung points never started"  # start the second one later)
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == (-sig if sig == signal.SIGKILL else 128 + sig)
    while _benchmarks_of(tmp_path) and time.monotonic() < sent + 60:  # a liveness bound, not a speed one
        time.sleep(0.05)
    assert _benchmarks_of(tmp_path) == [], "a benchmark outlived the sweep"
    recs = load_records(results)
    assert sorted((r["isl"], r["osl"]) for r in recs) == [(128, 128), (128, 1024)]
