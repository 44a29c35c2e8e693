"""The benchmark's keeper and guard: two small processes between trtbench and a benchmark that end the
benchmark's whole process tree however trtbench ends, `kill -9` included, and whichever one of the three
is killed, or trtbench and the keeper together.

    trtbench -> keeper -> guard -> benchmark leader -> workers, daemons, ...

trtbench starts the keeper as `python -I /dev/fd/N PARENT_PID PSUTIL_DIR REPORT_FD` (this file, through a
descriptor trtbench opened) and writes the benchmark's arguments to its stdin as a JSON list: neither the package's
path nor the benchmark's arguments are on its command line, so `pkill -f trtbench` (or a pattern naming
the run directory) leaves it, and its guard, to end the tree. In isolated mode it imports nothing of
trtbench, so no `PYTHONPATH` or current directory can change it; psutil comes from the directory trtbench
itself loaded it from, a user site-packages one included.

The keeper forks the guard; the guard starts the benchmark in a session of its own. Each of the two:
- is a child subreaper, so a descendant that outlives its parent (an MPI worker, a daemon that forked twice
  and called `setsid`) is re-parented to the nearest of the two still alive, not to init;
- gets SIGTERM from the kernel when its parent dies (the keeper: trtbench; the guard: the keeper);
- on SIGTERM terminates every descendant it has, kills what is left after GRACE_S, and exits;
- when its child exits, kills what the child left behind and exits as the benchmark did (the same code,
  or the same signal), so the caller classifies the benchmark, not the keeper.
The benchmark's leader gets SIGKILL should the guard die; its orphans then go to the keeper.

How the benchmark ended is said on REPORT_FD (a pipe to trtbench, which the benchmark does not inherit): the
guard writes the benchmark's exit status there as soon as the benchmark exits. A keeper or guard killed from
outside ends the benchmark without that line, so trtbench tells a benchmark that died of SIGKILL (the OOM
killer: a crash of the point) from one whose keeper was killed (no verdict on the point at all).

What no process can cover: the keeper and the guard both killed at the same instant (by pid, or by a
pattern that matches the interpreter's own path). The leader still dies of its parent-death signal, but
the processes it forked carry none (fork clears it), are re-parented to init and run on; only a cgroup
would still name them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

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


def _die_with_guard() -> None:
    """In the benchmark, before exec: should the guard itself be killed, the benchmark goes too."""
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
    with contextlib.suppress(OSError):  # SIGKILL's action cannot be set, nor needs to be
        signal.signal(-returncode, signal.SIG_DFL)
    os.kill(os.getpid(), -returncode)
    return 128 - returncode  # a signal whose default is to be ignored


def _keep(parent: int, run_child: Callable[[], int]) -> int:
    """The life of the keeper and of the guard alike: `run_child` runs this process's one child to its end
    and gives its exit status (negative: its signal); every descendant goes when that child exits, when
    this process is stopped, or when `parent` dies."""
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the death signal was armed
            return STOPPED
        returncode = run_child()
        end_tree(0)  # what the benchmark left behind: nothing of a point outlives the point
    except _Stop:
        end_tree(GRACE_S)
        return STOPPED
    return returncode


def _run_benchmark(args: list[str], report_fd: int) -> int:
    """Run the benchmark to its end and report its exit status on `report_fd` (not if this guard is stopped
    first: that is no verdict on the benchmark)."""
    try:
        bench = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True,
                                 preexec_fn=_die_with_guard)
    except OSError as exc:
        print(f"trtbench: cannot run {args[0]}: {exc.strerror or exc}", file=sys.stderr)
        returncode = 127
    else:
        returncode = bench.wait()
    with contextlib.suppress(OSError):  # trtbench is gone: nobody to tell
        os.write(report_fd, f"{returncode}\n".encode())
    return returncode


def _guard(keeper: int, args: list[str], report_fd: int) -> NoReturn:
    """The forked guard's whole life: it never returns into the keeper's code."""
    code = 1
    try:
        code = _exit_as(_keep(keeper, functools.partial(_run_benchmark, args, report_fd)))
    except _Stop:  # stopped before it could start the benchmark
        code = STOPPED
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _run_guard(report_fd: int) -> int:
    try:
        args = json.loads(sys.stdin.buffer.read())
    except ValueError:  # trtbench died while it wrote them; its death signal is on its way
        raise _Stop from None
    keeper = os.getpid()
    guard = os.fork()
    if guard == 0:
        _guard(keeper, args, report_fd)
    return os.waitstatus_to_exitcode(os.waitpid(guard, 0)[1])


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: keeper.py PARENT_PID PSUTIL_DIR REPORT_FD < ARGS_JSON", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)
    return _exit_as(_keep(int(argv[1]), functools.partial(_run_guard, int(argv[3]))))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
