"""Why a trtllm-bench run (or an engine build) failed, from its exit code, timeout and log.

What the log's lines say is evidence.py's (the kinds of failure and the deciding line, gathered while the log
is scanned once in parse.py); this adds what the process says: a timeout, a signal, exit 0 without a report.
"""

from __future__ import annotations

import signal

from trtbench.backends.trtllm.evidence import Failure
from trtbench.backends.trtllm.parse import LogScan
from trtbench.records import Status

__all__ = ["Failure", "classify", "signal_name"]


def classify(returncode: int | None, timed_out: bool, scan: LogScan, has_report: bool,
             timeout_s: float | None = None) -> Failure | None:
    """None when the run succeeded: exit 0 and a report."""
    last = scan.last_line or "(no output)"
    if timed_out:
        limit = f" of {timeout_s:,.0f} s" if timeout_s else ""
        return Failure(Status.TIMEOUT, "", f"killed at the per-point timeout{limit}; last output: {last}")
    if returncode == 0 and has_report:
        return None
    if scan.failure:
        return scan.failure
    if returncode is not None and returncode < 0:
        return Failure(Status.CRASH, "signal", f"killed by {signal_name(-returncode)}; last output: {last}")
    if returncode == 0:
        return Failure(Status.NO_REPORT, "", "exit 0 but no report; trtllm-bench prints nothing after an out-of-memory "
                                        f"error, so this is probably an OOM; last output: {last}")
    return Failure(Status.ERROR, f"exit {returncode}", scan.error_line or last)


def signal_name(signum: int) -> str:
    """SIGKILL for 9; `signal 99` for a number no signal has."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
