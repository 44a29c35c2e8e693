"""Why a trtllm-bench run (or an engine build) failed, from its exit code, timeout and log.

One table of patterns, most specific first: an OOM often ends in an MPI abort, so OOM patterns
come before crash patterns, and the first pattern that matches any log line decides. The
messages are the ones the CLI reference quotes from TensorRT-LLM's sources and issues.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trtbench.records import Status
from trtbench.text import printable

if TYPE_CHECKING:
    from trtbench.backends.trtllm.parse import LogScan


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
    # trtbench asked for something this release refuses: a bug of the driver, not the GPU's fault. Click's
    # usage errors, then the checks of TensorRT-LLM's own code (messages as in its source).
    _p(Status.DRIVER_ERROR, "CLI", r"No such option: \S+|No such command '|Got unexpected extra argument"),
    _p(Status.DRIVER_ERROR, "CLI", r"Invalid value for '[^']+'|Missing option '[^']+'|requires an argument\."),
    _p(Status.DRIVER_ERROR, "CLI", r"Mutually exclusive options from '|All options from '.*' option group"),
    _p(Status.DRIVER_ERROR, "model name", r"Model is a file or directory, please provide a model name"),
    _p(Status.DRIVER_ERROR, "backend", r"is not a known backend, check help for available options"),
    _p(Status.DRIVER_ERROR, "max_seq_len", r"max_seq_len is not a runtime parameter for C\+\+ backend"),
    _p(Status.DRIVER_ERROR, "engine build", r"Multiple engine build options detected"),
    _p(Status.DRIVER_ERROR, "engine build", r"Unspecified max_seq_len for engine build"),
    _p(Status.DRIVER_ERROR, "engine build", r"is not a model that is configured for benchmarking"),
)


@dataclass(frozen=True)
class Failure:
    status: Status
    where: str
    line: str  # the evidence, printable: the log line that decided, or what stood in for it

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Failure:
        """As an engine manifest keeps it (one written before evidence was made printable included)."""
        return cls(Status(data["status"]), data["where"], printable(data["line"]))

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "where": self.where, "line": self.line}

    @property
    def cause(self) -> str:
        return f"{self.status} ({self.where}): {self.line}" if self.where else f"{self.status}: {self.line}"


class PatternMatch:
    """The deciding pattern of a log fed one line at a time: the first pattern, in PATTERNS order, that
    matches any line, with the first line it matches as the evidence (a whole log need not be in memory)."""

    def __init__(self) -> None:
        self._rank = len(PATTERNS)  # of the best pattern so far; len(PATTERNS) while none matched
        self._line = ""

    def feed(self, line: str) -> None:
        """One line, stripped (`^Killed$` matches a whole line)."""
        for rank in range(self._rank):
            if PATTERNS[rank].regex.search(line):
                self._rank, self._line = rank, line
                return

    @property
    def failure(self) -> Failure | None:
        if self._rank == len(PATTERNS):
            return None
        pattern = PATTERNS[self._rank]
        return Failure(pattern.status, pattern.where, printable(self._line))


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
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return Failure(Status.CRASH, "signal", f"killed by {name}; last output: {last}")
    if returncode == 0:
        return Failure(Status.NO_REPORT, "", "exit 0 but no report; trtllm-bench prints nothing after an out-of-memory "
                                        f"error, so this is probably an OOM; last output: {last}")
    return Failure(Status.ERROR, f"exit {returncode}", last)
