"""Nothing of a benchmark outlives its sweep, whoever of trtbench -> keeper -> guard is killed, alone or with
another, in either order: the benchmark here hangs, ignores SIGTERM, and has a grandchild that daemonised
(setsid, then a second fork whose parent exited). Records already written are kept.

The one order not covered is documented in keeper.py: the keeper and the guard killed at the same instant
(their descendants then belong to init, and without a cgroup nothing names them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import TRTLLM_SPEC, load_records
from trtbench.backends.trtllm.process import PSUTIL_DIR

BOUND_S = 60  # a liveness bound, not a speed one (the keeper and guard take about 1-2 s)


@dataclass(frozen=True)
class Tree:
    sweep: psutil.Process
    keeper: psutil.Process
    guard: psutil.Process
    leader: psutil.Process
    daemon: psutil.Process

    def all(self) -> list[psutil.Process]:
        return [self.sweep, self.keeper, self.guard, self.leader, self.daemon]


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie; psutil checks the start time too, so a reused pid is not mistaken for it."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_left(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running():
                proc.kill()


def _pkill_trtbench(tree: Tree) -> list[tuple[psutil.Process, int]]:
    """What `pkill -9 -f trtbench` would kill, limited to this test's own processes (the machine is shared)."""
    return [(proc, signal.SIGKILL) for proc in [tree.sweep, *tree.sweep.children(recursive=True)]
            if "trtbench" in " ".join(proc.cmdline())]


KILLS: dict[str, Callable[[Tree], list[tuple[psutil.Process, int]]]] = {
    "trtbench-KILL": lambda t: [(t.sweep, signal.SIGKILL)],
    "trtbench-TERM": lambda t: [(t.sweep, signal.SIGTERM)],
    "keeper-KILL": lambda t: [(t.keeper, signal.SIGKILL)],
    "guard-KILL": lambda t: [(t.guard, signal.SIGKILL)],
    "trtbench-and-keeper-KILL": lambda t: [(t.sweep, signal.SIGKILL), (t.keeper, signal.SIGKILL)],
    "keeper-and-trtbench-KILL": lambda t: [(t.keeper, signal.SIGKILL), (t.sweep, signal.SIGKILL)],
    "pkill-9-f-trtbench": _pkill_trtbench,
}


def _tree(sweep: subprocess.Popen[bytes], pids: Path) -> Tree:
    deadline = time.monotonic() + BOUND_S
    while not pids.exists():
        assert time.monotonic() < deadline, "the hung benchmark never started"
        assert sweep.poll() is None, "the sweep ended before its hung point"
        time.sleep(0.05)
    leader, daemon = (psutil.Process(int(pid)) for pid in pids.read_text().split())
    guard = leader.parent()
    assert guard is not None
    keeper = guard.parent()
    assert keeper is not None and keeper.ppid() == sweep.pid
    assert daemon.ppid() == guard.pid, "the daemon's parent exited: it belongs to the guard, a subreaper"
    assert os.getsid(daemon.pid) not in (os.getsid(leader.pid), os.getsid(keeper.pid))
    return Tree(psutil.Process(sweep.pid), keeper, guard, leader, daemon)


@pytest.mark.slow
@pytest.mark.parametrize("kill", list(KILLS))
def test_nothing_outlives_the_sweep_whoever_is_killed(kill, write_spec, tmp_path, fake_bench, monkeypatch, request):
    if kill == "pkill-9-f-trtbench" and "trtbench" in f"{sys.executable} {PSUTIL_DIR}":
        pytest.skip("this interpreter's path names trtbench: the pattern would match the keeper and guard too, "
                    "the one case keeper.py documents as impossible")
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang", min_isl=2048)  # the two 128-token points finish, then 2048/128 hangs
    spec = write_spec(TRTLLM_SPEC)
    sweep = subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request.addfinalizer(sweep.kill)
    tree = _tree(sweep, pids)
    request.addfinalizer(lambda: _kill_left(tree.all()))  # a failed assertion must not leave the tree running
    victims = KILLS[kill](tree)
    for proc, sig in victims:
        proc.send_signal(sig)

    point = [tree.keeper, tree.guard, tree.leader, tree.daemon]  # every process of the point ends, killed or not
    deadline = time.monotonic() + BOUND_S
    while any(map(_alive, point + [proc for proc, _ in victims])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [proc.cmdline() for proc in point if _alive(proc)], "a process of the point outlived the kill"

    if sweep.poll() is None:  # trtbench lived: it goes on to the next point, which hangs too; stop it there
        sweep.terminate()
        assert sweep.wait(timeout=BOUND_S) == 128 + signal.SIGTERM
    assert not [proc.pid for proc in tree.all() if _alive(proc)]
    left = [proc for proc in psutil.process_iter(["cmdline"])
            if str(tmp_path) in " ".join(proc.info["cmdline"] or []) and _alive(proc)]
    assert left == [], "a later point's benchmark outlived the sweep"

    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    ok = sorted((r["isl"], r["osl"]) for r in recs if r["status"] == "ok")
    assert ok == [(128, 128), (128, 1024)]  # nothing recorded is lost
    assert len(recs) == len({(r["isl"], r["osl"]) for r in recs})  # nor recorded twice


@pytest.mark.slow
def test_a_keeper_killed_from_outside_leaves_its_point_unrecorded_and_a_resume_runs_it(cli, write_spec, tmp_path,
                                                                                        fake_bench, monkeypatch,
                                                                                        request):
    """`kill -9` of the keeper alone ends its benchmark (as designed), but that is no verdict on the benchmark:
    nothing is recorded for the point (not a crash), the sweep goes on and says so in one line, and the same
    command runs the point again."""
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang", min_isl=2048)  # 128/128 finishes, 2048/128 hangs
    spec = write_spec(TRTLLM_SPEC.replace("osl: [128, 1024]", "osl: [128]"))
    out, err = tmp_path / "sweep.out", tmp_path / "sweep.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        sweep = subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                                 stdout=stdout, stderr=stderr, env={**os.environ, "COLUMNS": "400"})
    request.addfinalizer(sweep.kill)
    tree = _tree(sweep, pids)
    request.addfinalizer(lambda: _kill_left(tree.all()))
    tree.keeper.send_signal(signal.SIGKILL)

    assert sweep.wait(timeout=BOUND_S) == 0, err.read_text()  # the other point is ok
    point = [tree.keeper, tree.guard, tree.leader, tree.daemon]
    deadline = time.monotonic() + BOUND_S
    while any(map(_alive, point)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [proc.cmdline() for proc in point if _alive(proc)], "a process of the point outlived its keeper"
    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert [(r["isl"], r["osl"], r["status"]) for r in recs] == [(128, 128, "ok")]
    said = [line for line in err.read_text().splitlines() if "not recorded" in line]
    assert said == ["not recorded: 1 point(s): the point's keeper was killed from outside (SIGKILL), its benchmark "
                    "with it; no verdict on the benchmark, so the point was left without a record: the same command "
                    "runs it again"]
    assert "Traceback" not in err.read_text()

    fake_bench.fail("")
    again = cli("sweep", "--no-plots", str(spec))
    assert again.code == 0, again.err
    assert "resumed: 1 point(s) already recorded, 1 run now" in " ".join(again.err.split())
    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert sorted((r["isl"], r["status"]) for r in recs) == [(128, "ok"), (2048, "ok")]


def _interrupted_starts(monkeypatch, tmp_path: Path, then: Callable[[], None]) -> tuple[list[str], Path]:
    """A benchmark that marks its start and sleeps, and `_start_keeper` made to call `then` once the benchmark
    runs, before run_logged has registered its keeper: the window an interruption must not slip through."""
    from trtbench.backends.trtllm import process

    marker = tmp_path / "started"
    started = process._start_keeper

    def start_then(*args, **kwargs):
        keeper = started(*args, **kwargs)
        deadline = time.monotonic() + BOUND_S
        while not marker.exists() and time.monotonic() < deadline:  # the benchmark runs
            time.sleep(0.05)
        then()
        return keeper

    monkeypatch.setattr(process, "_start_keeper", start_then)
    code = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(600)"
    return [sys.executable, "-c", code], marker


def _running(marker: Path) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if str(marker) in " ".join(p.info["cmdline"] or [])
            and _alive(p)]


def test_a_signal_while_the_keeper_starts_still_ends_its_tree(tmp_path, monkeypatch):
    # SIGTERM reaching trtbench once the keeper has started its benchmark but before trtbench has registered the
    # keeper: it is held until then and raised where the keeper is stopped, so the benchmark does not outlive the
    # interrupted call (before, the keeper was left running, and trtbench still alive kept it from its
    # parent-death signal)
    from trtbench import interrupts
    from trtbench.backends.trtllm import process
    from trtbench.errors import Interrupted

    bench, marker = _interrupted_starts(monkeypatch, tmp_path, lambda: os.kill(os.getpid(), signal.SIGTERM))
    previous = signal.signal(signal.SIGTERM, interrupts.handler)  # trtbench's own, as the CLI installs it
    try:
        with pytest.raises(Interrupted):
            process.run_logged(bench, tmp_path / "point.log", timeout_s=600)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert marker.exists()
    assert _running(marker) == [], "the benchmark outlived the interrupted run"


def test_a_stop_while_another_thread_starts_its_keeper_reaches_it(tmp_path, monkeypatch):
    # An executor's Ctrl-C (stop_all, from the main thread) while a worker thread's keeper has started its
    # benchmark but is not yet registered: the run is stopped as soon as it registers, instead of running on
    # to its timeout with nobody to stop it
    from trtbench.backends.trtllm import process

    bench, marker = _interrupted_starts(monkeypatch, tmp_path, process.stop_all)
    results = []
    worker = threading.Thread(target=lambda: results.append(
        process.run_logged(bench, tmp_path / "point.log", timeout_s=BOUND_S)))
    worker.start()
    worker.join()
    assert marker.exists()
    assert not results[0].timed_out and results[0].unreported  # stopped, no verdict on the benchmark
    assert _running(marker) == []
