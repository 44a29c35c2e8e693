"""Ctrl-C, SIGTERM and SIGHUP become `Interrupted`, raised in the main thread wherever it is, so every cleanup
runs; except inside `deferred()`, which holds the signal to its end: a few lines that must not be cut between
two steps (a process started, and not yet known to whoever stops it)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from trtbench.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, a closed terminal, a scheduler's preemption
_held = {"depth": 0, "signum": 0}  # main thread only: Python runs signal handlers there


def handler(signum: int, frame: FrameType | None) -> None:
    if _held["depth"]:
        _held["signum"] = _held["signum"] or signum
        return
    raise Interrupted(signum)


@contextmanager
def deferred() -> Iterator[None]:
    """In the main thread, a signal that comes in the block is raised at its end (in other threads the signal
    is raised in the main thread anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if not _held["depth"] and _held["signum"]:
            signum, _held["signum"] = _held["signum"], 0
            raise Interrupted(signum)
