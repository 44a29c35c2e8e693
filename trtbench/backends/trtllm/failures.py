"""Why a trtllm-bench run (or an engine build) failed, from its exit code, timeout and log.

One table of patterns, most specific first: an OOM often ends in an MPI abort, so OOM patterns
come before crash patterns, and the first pattern that matches any log line decides. The
messages are the ones the CLI reference quotes from TensorRT-LLM's sources and issues.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from trtbench.records import Status


@dataclass(frozen=True)
class Pattern:
    status: Status
    where: str
    regex: re.Pattern[str]


def _p(status: Status, where: str, regex: str) -> Pattern:
    return Pattern(status, where, re.compile(regex))


PATTERNS: tuple[Pattern, ...] = (
    # Out of memory, by where it happened.
    _p(Status.OOM, "build", r"Error Code 2: OutOfMemory"),
    _p(Status.OOM, "build", r"Requested amount of GPU memory \(\d+ bytes\) could not be allocated"),
    _p(Status.OOM, "build", r"Engine building failed, please check the error log"),
    _p(Status.OOM, "weights load", r"The model requires at least: .* is insufficient"),
    _p(Status.OOM, "KV cache allocation", r"Executor creation failed due to insufficient GPU memory"),
    _p(Status.OOM, "KV cache allocation", r"The following component could not be created: KV cache"),
    _p(Status.OOM, "KV cache allocation", r"The amount of KV cache memory is insufficient to run this model"),
    _p(Status.OOM, "runtime", r"CUDA runtime error in ::cudaMallocAsync\(.*\): out of memory"),
    _p(Status.OOM, "runtime", r"OutOfMemoryError: CUDA out of memory"),
    _p(Status.OOM, "runtime", r"CUDA out of memory|CUDA error: out of memory"),
    _p(Status.OOM, "host memory", r"^Killed$"),
    # The sequence does not fit what the engine or runtime allows.
    _p(Status.INFEASIBLE, "max_seq_len", r"Engine supports a max sequence of \d+\. Provided dataset contains a maximum "
                                    r"sequence of \d+"),
    _p(Status.INFEASIBLE, "max_seq_len",
       r"The sum of prompt length \(\d+\) and query length \(\d+\) max_tokens \(\d+\) should not exceed max_seq_len"),
    _p(Status.INFEASIBLE, "max_num_tokens", r"The sum of prompt length \(\d+\), query length \(\d+\) should not exceed "
                                       r"max_num_tokens"),
    _p(Status.INFEASIBLE, "max_seq_len", r"`default_max_tokens` \(-?\d+\) must be greater than 0"),
    _p(Status.INFEASIBLE, "max_seq_len", r"Adjusted max_seq_len to \d+"),
    # A rank died.
    _p(Status.CRASH, "MPI", r"MPI_ABORT was invoked on rank \d+"),
    _p(Status.CRASH, "MPI", r"Assertion failed: Failed: MPI error"),
    _p(Status.CRASH, "MPI", r"PRTE ERROR"),
    # Usage problems worth naming.
    _p(Status.ERROR, "model name", r"Model is a file or directory, please provide a model name"),
    _p(Status.ERROR, "CLI", r"No such option: \S+"),
)


@dataclass(frozen=True)
class Failure:
    status: Status
    where: str
    line: str  # the evidence: the log line that decided, or what stood in for it

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Failure:
        """As an engine manifest keeps it."""
        return cls(Status(data["status"]), data["where"], data["line"])

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "where": self.where, "line": self.line}

    @property
    def cause(self) -> str:
        return f"{self.status} ({self.where}): {self.line}" if self.where else f"{self.status}: {self.line}"


def match_log(text: str) -> Failure | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in PATTERNS:
        for line in lines:
            if pattern.regex.search(line):
                return Failure(pattern.status, pattern.where, line[:500])
    return None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "(no output)"


def classify(returncode: int | None, timed_out: bool, log: str, has_report: bool,
             timeout_s: float | None = None) -> Failure | None:
    """None when the run succeeded: exit 0 and a report."""
    if timed_out:
        limit = f" of {timeout_s:,.0f} s" if timeout_s else ""
        return Failure(Status.TIMEOUT, "", f"killed at the per-point timeout{limit}; last output: {last_line(log)}")
    if returncode == 0 and has_report:
        return None
    found = match_log(log)
    if found:
        return found
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return Failure(Status.CRASH, "signal", f"killed by {name}; last output: {last_line(log)}")
    if returncode == 0:
        return Failure(Status.NO_REPORT, "", "exit 0 but no report; trtllm-bench prints nothing after an out-of-memory "
                                        f"error, so this is probably an OOM; last output: {last_line(log)}")
    return Failure(Status.ERROR, f"exit {returncode}", last_line(log))
