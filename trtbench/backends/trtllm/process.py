"""Run one command under a keeper (keeper.py), stream its output to a log, end its whole tree on timeout.

MPI ranks and worker processes are descendants of trtllm-bench; a dead rank can hang the job
(TensorRT-LLM #16342), and a daemon may leave the process group. The keeper and its guard end every
descendant when the command exits, times out, is interrupted, or trtbench, the keeper or both die.
Output is read by a thread and written to the log as it comes; if the disk fills, the log stops growing
(and says so in the result) but the run and its in-memory output go on, so the point is still classified.
The exit status is the benchmark's, as the keeper's guard reported it on a pipe of its own: a keeper killed
from outside reports none (`ProcessResult.unreported`), which says nothing about the benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psutil

from trtbench import interrupts
from trtbench.errors import StoreError
from trtbench.files import Dir

KEEPER = Path(__file__).with_name("keeper.py")
PSUTIL_DIR = str(Path(psutil.__file__).parent.parent)  # where the keeper finds psutil in isolated mode
KEEPER_EXIT_S = 10.0  # the keeper's own grace (1 s) and its start, with room to spare
LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
MAX_KEPT_BYTES = 32 * 2**20  # output kept in memory for parsing; the log on disk has everything


@dataclass(frozen=True)
class ProcessResult:
    returncode: int | None  # the command's (negative: its signal); the keeper's own where `unreported`
    timed_out: bool
    output: str
    duration_s: float
    log_error: str | None  # why the log on disk is incomplete, if it is
    # The keeper ended, unasked, without reporting how the command ended: it (or its guard) was killed from
    # outside, or died; the command was ended with it, so its returncode is no verdict on the command.
    unreported: bool = False


def open_log(path: Path) -> BinaryIO:
    """The log, for appending, opened relative to its directory without following a link (as every write of
    a run)."""
    return os.fdopen(Dir.open(path.parent).file(path.name, LOG_FLAGS), "ab")


class _Tee(threading.Thread):
    def __init__(self, stream: int, log_path: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.log_path = stream, log_path
        self.chunks: list[bytes] = []
        self.kept = 0
        self.log_error: str | None = None

    def run(self) -> None:
        try:
            log = open_log(self.log_path)
        except (OSError, StoreError) as exc:
            log, self.log_error = None, f"cannot open log: {getattr(exc, 'strerror', None) or exc}"
        while chunk := os.read(self.stream, 65536):
            if self.kept < MAX_KEPT_BYTES:
                self.chunks.append(chunk)
                self.kept += len(chunk)
            if log is not None:
                try:
                    log.write(chunk)
                    log.flush()
                except OSError as exc:
                    self.log_error = f"log write failed: {exc.strerror or exc}"
                    with contextlib.suppress(OSError):
                        log.close()
                    log = None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


_LIVE: set[subprocess.Popen[bytes]] = set()  # keepers of runs in flight, in any thread
_STOPS = [0]  # how many times stop_all has run: a keeper that started meanwhile is stopped once registered
_LIVE_LOCK = threading.Lock()


def stop_all() -> None:
    """Stop every run in flight (an executor's Ctrl-C): each keeper ends its tree; the threads that wait
    on them return."""
    with _LIVE_LOCK:
        keepers = list(_LIVE)
        _STOPS[0] += 1
    for keeper in keepers:
        with contextlib.suppress(ProcessLookupError):
            keeper.terminate()


def _stop(keeper: subprocess.Popen[bytes]) -> None:
    """Ask the keeper to end the tree and wait for it; SIGKILL only if it does not answer (its
    benchmark then still dies with it, by its parent-death signal)."""
    with contextlib.suppress(ProcessLookupError):
        keeper.terminate()
    try:
        keeper.wait(timeout=KEEPER_EXIT_S)
    except subprocess.TimeoutExpired:
        keeper.kill()
        keeper.wait()


def _reported(fd: int, wait_s: float) -> int | None:
    """The command's exit status as the keeper's guard wrote it on `fd`; None when it wrote none by the time
    the pipe's last writer (keeper, guard) closed it, or `wait_s` passed."""
    data, deadline = b"", time.monotonic() + wait_s
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    try:
        return int(data)
    except ValueError:
        return None


def _start_keeper(args: Sequence[str], output_fd: int, report_fd: int, env: dict[str, str] | None,
                  cwd: Path | None) -> subprocess.Popen[bytes]:
    """Start keeper.py for `args` with a command line that names neither trtbench nor the benchmark (the
    script comes through a descriptor, the arguments on its stdin), so that `pkill -f trtbench` leaves it
    to end the tree. Its own session: a terminal's Ctrl-C or hang-up reaches trtbench, which stops it."""
    script = os.open(KEEPER, os.O_RDONLY)
    try:
        keeper = subprocess.Popen([sys.executable, "-I", f"/dev/fd/{script}", str(os.getpid()), PSUTIL_DIR,
                                   str(report_fd)], stdin=subprocess.PIPE, stdout=output_fd, stderr=output_fd,
                                  pass_fds=(script, report_fd), start_new_session=True, env=env, cwd=cwd)
    finally:
        os.close(script)
    assert keeper.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # a keeper that died this early says why in its output
        keeper.stdin.write(json.dumps(list(args)).encode())
    with contextlib.suppress(BrokenPipeError):
        keeper.stdin.close()
    return keeper


def run_logged(args: Sequence[str], log_path: Path, timeout_s: float, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> ProcessResult:
    """Run `args` (a list, never a shell string) until it exits or `timeout_s` passes. `env` is laid
    over this process's environment."""
    read_fd, write_fd = os.pipe()
    report_r, report_w = os.pipe()
    t0 = time.monotonic()
    with _LIVE_LOCK:
        stops = _STOPS[0]
    keeper: subprocess.Popen[bytes] | None = None
    tee: _Tee | None = None
    timed_out = False
    reported: int | None = None
    try:
        # Until the keeper is registered where it is stopped, a signal waits (this thread) and a stop_all that
        # ran meanwhile (another thread's) is caught up with: nothing started can be missed.
        with interrupts.deferred():
            try:
                keeper = _start_keeper(args, write_fd, report_w, {**os.environ, **env} if env else None, cwd)
            finally:
                os.close(write_fd)
                os.close(report_w)
            with _LIVE_LOCK:
                _LIVE.add(keeper)
                missed = _STOPS[0] != stops
            if missed:
                with contextlib.suppress(ProcessLookupError):
                    keeper.terminate()
            tee = _Tee(read_fd, log_path)
            tee.start()
        keeper.wait(timeout=timeout_s)
        reported = _reported(report_r, KEEPER_EXIT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        assert keeper is not None
        _stop(keeper)
    except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: the whole tree goes before the point is given up
        if keeper is not None:
            _stop(keeper)
        raise
    finally:
        os.close(report_r)
        if keeper is not None:
            with _LIVE_LOCK:
                _LIVE.discard(keeper)
        if tee is not None:
            tee.join(timeout=10)
        if tee is None or not tee.is_alive():  # else something still holds the pipe; leave it open, not block
            os.close(read_fd)
    assert keeper is not None and tee is not None  # both set, or the call raised
    unreported = reported is None and not timed_out
    return ProcessResult(keeper.returncode if reported is None else reported, timed_out, tee.text(),
                         time.monotonic() - t0, tee.log_error, unreported)
