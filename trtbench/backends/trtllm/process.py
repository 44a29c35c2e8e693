"""Run one command in its own process group, stream its output to a log, kill the whole group on timeout.

MPI ranks and worker processes are children of trtllm-bench; a dead rank can hang the job
(TensorRT-LLM #16342), so the timeout signals the group, not the leader. Output is read by a
thread and written to the log as it comes; if the disk fills, the log stops growing (and says so
in the result) but the run and its in-memory output go on, so the point is still classified.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 5.0
MAX_KEPT_BYTES = 32 * 2**20  # output kept in memory for parsing; the log on disk has everything


@dataclass(frozen=True)
class ProcessResult:
    returncode: int | None
    timed_out: bool
    output: str
    duration_s: float
    log_error: str | None  # why the log on disk is incomplete, if it is


class _Tee(threading.Thread):
    def __init__(self, stream: int, log_path: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.log_path = stream, log_path
        self.chunks: list[bytes] = []
        self.kept = 0
        self.log_error: str | None = None

    def run(self) -> None:
        try:
            log = self.log_path.open("ab")
        except OSError as exc:
            log, self.log_error = None, f"cannot open log: {exc.strerror or exc}"
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


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_logged(args: Sequence[str], log_path: Path, timeout_s: float, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> ProcessResult:
    """Run `args` (a list, never a shell string) until it exits or `timeout_s` passes."""
    read_fd, write_fd = os.pipe()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(list(args), stdout=write_fd, stderr=write_fd, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd)
    finally:
        os.close(write_fd)
    tee = _Tee(read_fd, log_path)
    tee.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE_S)
    except BaseException:  # Ctrl-C: take the whole group down before giving up the point
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        # Whatever of the group is left (a rank that outlived the leader, a hung child) must not hold
        # the GPU or the pipe.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        tee.join(timeout=10)
        if not tee.is_alive():  # else a process outside the group still writes; leave its pipe open
            os.close(read_fd)
    return ProcessResult(proc.returncode, timed_out, tee.text(), time.monotonic() - t0, tee.log_error)
