"""What a log's lines say about why a run failed: the kinds of failure, named as a user would name them, and
the line that decides (`PatternMatch`, fed one line at a time by the log scan in parse.py).

Patterns describe kinds of messages, not individual logs; they were written from TensorRT-LLM's messages and
checked against real logs from its issues (tests/data/failure_logs). Two tiers:

- a root cause (out of memory, a sequence the engine cannot take, NCCL, CUDA, a missing file, an assertion...)
  decides by itself, most specific first: an OOM often ends in an MPI abort, an assertion may only wrap an
  NCCL error, so OOM comes before everything and a C++ assertion after the kinds it can carry;
- a consequence (a worker or rank that died, a build that failed) names the kind only when no root cause is
  in the log, and quotes the first error line the log has instead of itself, since that line says why.

A stack frame is never evidence: frame lines are skipped, and a message pasted with its trace on one line is
cut where the trace begins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trtbench.records import Status
from trtbench.text import printable

# Where an out-of-memory happened, when its message does not say: the phase the log was in (the last phase
# marker up to and including the OOM line). Before any marker it is the run itself.
_PHASES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(regex)) for name, regex in (
    ("build", r"Build(?:ing)? (?:TensorRT )?[Ee]ngine|\[GraphReduction\]|Global timing cache"),
    ("weights load", r"[Ll]oad(?:ing)?[ _](?:weights|model|single_module|checkpoint)|checkpoint shards"),
    ("engine load", r"Loaded engine size|[Ll]oad(?:ing)? (?:the )?engine|[Ii]nitializ(?:e|ing) [Ee]xecutor|"
                    r"found in the config file|[Dd]eserializ|creat(?:e|ing) (?:the )?(?:executor|modelInstance)"),
    ("KV cache allocation", r"(?i:max tokens in paged kv cache|blocks in kv cache|memory in kv cache)"),
    ("runtime", r"Starting benchmark|Benchmarking|Running the benchmark|[Ww]arm(?:ing )?up|[Ff]orward(?:Async)? "
                r"function|Step function"),
))
_DEFAULT_PHASE = "runtime"

# A stack frame: C++ (`3  0x7f... symbol`, gdb `#3 ... in`), Python (`File "..."`), a signal handler's
# (`[host:pid] [16] /lib/...`). A trace pasted on the message's own line begins at its frame 1.
_FRAME = re.compile(r"^(?:\d+\s+0x[0-9a-fA-F]+|#\d+\s|File \"|\[[^\]]*:\d+\] \[\s*\d+\] )")
_INLINE_TRACE = re.compile(r"\s+1\s+0x[0-9a-fA-F]{6,}\s.*$")
# A line that reports an error: TensorRT-LLM's and TensorRT's error levels, a Python exception, click's
# `Error:`, an assertion.
_ERROR_LINE = re.compile(r"\[(?:TRT-LLM|TRT)\]\s*(?:\[RANK \d+\]\s*)?\[E\]|\[TensorRT-LLM\]\[ERROR\]|^Error:|"
                         r"^(?:\w+\.)*\w*(?:Error|Exception)(?::|$)|Assertion failed|\bwhat\(\):")


@dataclass(frozen=True)
class Pattern:
    status: Status
    kind: str  # oom | infeasible | cli | missing | nccl | mpi | cuda | assertion | worker | error
    where: str | None  # None: the phase the log was in (out of memory only)
    regex: re.Pattern[str]
    consequence: bool = False  # names the kind only; the first error line of the log is the evidence


def _p(status: Status, kind: str, where: str | None, regex: str, consequence: bool = False) -> Pattern:
    return Pattern(status, kind, where, re.compile(regex), consequence)


_NUM = r"\d+(?:\.\d+)?"  # 1.x prints prompt lengths as floats (9351.0)
OOM, INF, CRASH = Status.OOM, Status.INFEASIBLE, Status.CRASH

PATTERNS: tuple[Pattern, ...] = (
    # Out of memory: TensorRT's builder, the weights check, executor creation, then any allocation by phase.
    _p(OOM, "oom", "build", r"Error Code 2: OutOfMemory"),
    _p(OOM, "oom", "build", r"Requested amount of GPU memory \(\d+ bytes\) could not be allocated"),
    _p(OOM, "oom", "weights load", r"The model requires at least: .* is insufficient"),
    _p(OOM, "oom", "KV cache allocation", r"Executor creation failed due to insufficient GPU memory"),
    _p(OOM, "oom", "KV cache allocation", r"The following component could not be created: KV cache"),
    _p(OOM, "oom", "KV cache allocation", r"The amount of KV cache memory is insufficient to run this model"),
    _p(OOM, "oom", None, r"[Oo]ut of memory|OutOfMemory|cudaErrorMemoryAllocation|CUDA_ERROR_OUT_OF_MEMORY"),
    _p(OOM, "oom", "host memory", r"^Killed$"),
    # What the engine or the GPUs cannot take: a sequence longer than the engine's limits, a shape outside
    # its optimization profiles, a precision the GPU lacks, more GPUs than there are.
    _p(INF, "infeasible", "max_seq_len", r"Engine supports a max sequence of \d+\. Provided dataset contains a "
                                         r"maximum sequence of \d+"),
    _p(INF, "infeasible", "max_seq_len", r"should not exceed max_seq_len|exceeds? (?:the )?max(?:imum)?[ _]seq"
                                         r"(?:uence)?[ _]len(?:gth)?"),
    _p(INF, "infeasible", "max_num_tokens", rf"should not exceed max_num_tokens|\({_NUM}\) exceeds? (?:the )?"
                                            r"max_num_tokens|max_num_tokens\W+\d+\D*(?:exceed|too small|while trying)"),
    _p(INF, "infeasible", "max_input_len", r"exceeds? (?:the )?max(?:imum)?[ _]input[ _]len"),
    _p(INF, "infeasible", "max_seq_len", r"`default_max_tokens` \(-?\d+\) must be greater than 0"),
    _p(INF, "infeasible", "max_seq_len", r"Adjusted max_seq_len to \d+"),
    _p(INF, "infeasible", "optimization profile", r"does not satisfy any optimization profile|satisfyProfile|"
                                                  r"outside (?:of )?the optimization profile"),
    _p(INF, "infeasible", "precision", r"require[sd]? hardware with FP8 support|Unsupported SM version for|"
                                       r"(?:FP8|FP4|fp8\w*|fp4\w*) .*not supported (?:on|in|by) (?:this|the current)"
                                       r" ?(?:GPU|arch\w*|device|SM|hardware)"),
    _p(INF, "infeasible", "GPU count", r"Only \d+ GPUs? (?:are|is) available, but \d+ (?:are|is) required"),
    # trtbench asked for something this release refuses: a bug of the driver, not the GPU's fault. Click's
    # usage errors, then the checks of TensorRT-LLM's own code (messages as in its source).
    _p(Status.DRIVER_ERROR, "cli", "CLI", r"No such option: \S+|No such command '|Got unexpected extra argument"),
    _p(Status.DRIVER_ERROR, "cli", "CLI", r"Invalid value for '[^']+'|Missing option '[^']+'|requires an argument\."),
    _p(Status.DRIVER_ERROR, "cli", "CLI", r"Mutually exclusive options from '|All options from '.*' option group"),
    _p(Status.DRIVER_ERROR, "cli", "model name", r"Model is a file or directory, please provide a model name"),
    _p(Status.DRIVER_ERROR, "cli", "backend", r"is not a known backend, check help for available options"),
    _p(Status.DRIVER_ERROR, "cli", "max_seq_len", r"max_seq_len is not a runtime parameter for C\+\+ backend"),
    _p(Status.DRIVER_ERROR, "cli", "engine build", r"Multiple engine build options detected"),
    _p(Status.DRIVER_ERROR, "cli", "engine build", r"Unspecified max_seq_len for engine build"),
    _p(Status.DRIVER_ERROR, "cli", "engine build", r"is not a model that is configured for benchmarking"),
    # A file or model that is not there.
    _p(Status.ERROR, "missing", "missing file", r"Error opening engine file|No such file or directory|"
                                                r"FileNotFoundError|does not appear to have a file named|"
                                                r"RepositoryNotFoundError|is not a valid model identifier"),
    # The ranks' communication: NCCL, then MPI itself (an MPI error asserted by TensorRT-LLM included).
    _p(CRASH, "nccl", "NCCL", r"NCCL error|nccl(?:Internal|System|UnhandledCuda|InvalidUsage)Error|"
                              r"DistBackendError|NCCL WARN .*(?:[Ff]ailure|[Ee]rror)"),
    _p(CRASH, "mpi", "MPI", r"Assertion failed: Failed: MPI error|PRTE ERROR|not enough slots available|"
                            r"MPI_Init\w* (?:has )?failed|ORTE was unable|MPI_ERR_\w+"),
    # CUDA: the driver, the device, a kernel that faulted.
    _p(CRASH, "cuda", "CUDA", r"CUDA runtime error in|CUDA error:|CUDA driver version is insufficient|"
                              r"no CUDA-capable device|cudaGetDeviceCount|illegal (?:memory access|instruction)|"
                              r"CUDA_ERROR_\w+|Cuda Runtime \("),
    # TensorRT-LLM's own checks (TLLM_CHECK) and Python's.
    _p(CRASH, "assertion", "C++ assertion", r"Assertion failed|AssertionError"),
    # Consequences: a worker or rank died, a build failed; why is on another line.
    _p(CRASH, "worker", "executor worker", r"Executor worker (?:returned error|died|exited)|"
                                           r"Failed to initialize executor on rank|[Ww]orker (?:process )?died",
       consequence=True),
    _p(CRASH, "mpi", "MPI", r"MPI_ABORT was invoked on rank \d+|mpirun (?:noticed|detected) that",
       consequence=True),
    _p(Status.ERROR, "error", "engine build", r"Engine building failed", consequence=True),
)


@dataclass(frozen=True)
class Failure:
    status: Status
    where: str
    line: str  # the evidence, printable: the log line that decided, or what stood in for it
    kind: str = ""  # the user's name for it (Pattern.kind); "" where no pattern decided

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Failure:
        """As an engine manifest keeps it (one written before evidence was made printable, or before the
        kind was recorded, included)."""
        return cls(Status(data["status"]), data["where"], printable(data["line"]), data.get("kind", ""))

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "where": self.where, "line": self.line, "kind": self.kind}

    @property
    def cause(self) -> str:
        return f"{self.status} ({self.where}): {self.line}" if self.where else f"{self.status}: {self.line}"


def quoted(line: str) -> str:
    """A log line as evidence: printable, without a stack trace pasted after the message."""
    return printable(_INLINE_TRACE.sub("", line))


class PatternMatch:
    """The deciding pattern of a log fed one line at a time: the first pattern, in PATTERNS order, that
    matches any line that is not a stack frame, with the first line it matches as the evidence (a whole log
    need not be in memory); and the log's first error line, what a consequence or an unknown failure quotes."""

    def __init__(self) -> None:
        self._rank = len(PATTERNS)  # of the best pattern so far; len(PATTERNS) while none matched
        self._line = ""
        self._phase = _DEFAULT_PHASE  # the phase now, and at the deciding line
        self._phase_then = _DEFAULT_PHASE
        self.error_line = ""  # the first error line that is not itself a consequence, quoted

    def feed(self, line: str) -> None:
        """One line, stripped (`^Killed$` matches a whole line)."""
        if _FRAME.match(line):
            return
        for name, marker in _PHASES:
            if marker.search(line):
                self._phase = name
        for rank in range(self._rank):
            if PATTERNS[rank].regex.search(line):
                self._rank, self._line, self._phase_then = rank, line, self._phase
                break
        if not self.error_line and _ERROR_LINE.search(line) and not any(
                p.consequence and p.regex.search(line) for p in PATTERNS):
            self.error_line = quoted(line)

    @property
    def failure(self) -> Failure | None:
        if self._rank == len(PATTERNS):
            return None
        pattern = PATTERNS[self._rank]
        line = self.error_line if pattern.consequence and self.error_line else quoted(self._line)
        return Failure(pattern.status, pattern.where or self._phase_then, line, pattern.kind)
