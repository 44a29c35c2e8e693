"""The benchmark's keeper: a small process between trtbench and a benchmark that ends the benchmark's
whole process tree however trtbench ends, `kill -9` included.

trtbench starts it as `python -I keeper.py PARENT_PID PSUTIL_DIR -- ARGS...` (a script by path in
isolated mode, importing nothing of trtbench, so no `PYTHONPATH` or current directory can change it;
psutil comes from the directory trtbench itself loaded it from, a user site-packages one included).
The keeper:
- makes itself a child subreaper, so every descendant that outlives its parent (an MPI worker, a
  grandchild that called `setsid` and left the process group) is re-parented here, not to init;
- asks the kernel for SIGTERM when trtbench dies, and gives the benchmark SIGKILL should the keeper die;
- on SIGTERM (trtbench's timeout, its interruption, or its death) terminates every descendant, kills
  what is left after GRACE_S, and exits;
- when the benchmark exits by itself, kills what it left behind and exits as the benchmark did (the
  same code, or the same signal), so the caller classifies the benchmark, not the keeper.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from types import FrameType

if __name__ == "__main__" and len(sys.argv) > 2:
    sys.path.append(sys.argv[2])  # psutil's directory, as trtbench found it
import psutil

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 1.0  # TERM -> KILL; short enough that nothing outlives a killed sweep by 4 s, even on a loaded machine
STOPPED = 128 + signal.SIGTERM


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP/SIGINT."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # one stop is enough; the next must not interrupt the cleanup
    raise _Stop


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _die_with_keeper() -> None:
    """In the benchmark, before exec: should the keeper itself be killed, the benchmark goes too."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _living_descendants() -> list[psutil.Process]:
    alive = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _reap() -> None:
    """Collect every exited child (re-parented orphans included), so they stop being listed."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def end_tree(grace_s: float) -> None:
    """TERM every descendant, then KILL whatever is left after `grace_s`, forks made meanwhile included."""
    for proc in _living_descendants():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    deadline = time.monotonic() + grace_s
    while True:
        _reap()
        left = _living_descendants()
        if not left:
            return
        if time.monotonic() >= deadline:
            for proc in left:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        time.sleep(0.02)


def _exit_as(returncode: int) -> int:
    """Exit with the benchmark's code, or die of the benchmark's signal (without a core file)."""
    if returncode >= 0:
        return returncode
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(-returncode, signal.SIG_DFL)
    os.kill(os.getpid(), -returncode)
    return 128 - returncode  # a signal whose default is to be ignored


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: keeper.py PARENT_PID PSUTIL_DIR -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    parent, args = int(argv[1]), argv[4:]
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # trtbench died before the death signal was armed
            return STOPPED
        try:
            bench = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_keeper)
        except OSError as exc:
            print(f"trtbench: cannot run {args[0]}: {exc.strerror or exc}", file=sys.stderr)
            return 127
        returncode = bench.wait()
        end_tree(0)  # what the benchmark left behind: nothing of a point outlives the point
    except _Stop:
        end_tree(GRACE_S)
        return STOPPED
    return _exit_as(returncode)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
