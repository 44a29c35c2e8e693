"""The seam every backend fills: say who you are and what changes your results, prepare what the points
need, run one point. The runner and executors see only this."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from trtbench.accuracy.records import AccuracyRecord
from trtbench.grid import IdentityRule, Point
from trtbench.nvml import GpuInfo
from trtbench.records import Outcome, Source
from trtbench.spec import AccuracySpec, EvalTask, SweepSpec

Log = Callable[[str], None]  # one line for the user (progress of engine builds, notes)


@dataclass(frozen=True)
class Capabilities:
    source: Source  # measured or simulated
    runs_commands: bool  # has a command line to show in a dry run


# Spec fields every backend that models or runs TensorRT-LLM is sensitive to. Timeouts, log levels and
# output locations are absent on purpose: they never change a result.
DEPLOYMENT_FIELDS = (
    "model.name", "model.path", "model.preset", "model.config", "gpu", "precision", "kv_cache_dtype", "tp", "pp", "ep",
    "runtime.kv_cache_free_gpu_mem_fraction", "runtime.max_batch_size", "runtime.max_num_tokens",
    "runtime.concurrency", "runtime.chunked_context", "runtime.tokens_per_block",
)


class Backend(Protocol):
    name: str

    def identity(self) -> IdentityRule:
        """The spec fields that can change this backend's results, and everything about the backend
        itself that can (tool and model versions); together they make each point's id."""
        ...

    def capabilities(self) -> Capabilities: ...

    def prepare(self, points: Sequence[Point], log: Log, *, dry_run: bool = False, allow_build: bool = True,
                recorded: Collection[str] = ()) -> list[str]:
        """Make what the points need (engines, checkpoints) before any run, except what only `recorded`
        point ids need (a resume); returns the commands that would make what is missing (what `--dry-run`
        prints, making nothing)."""
        ...

    def command(self, point: Point) -> list[str] | None:
        """The argument list `run` would execute (None for a backend that runs no command)."""
        ...

    def run(self, point: Point, attempt: str, env: Mapping[str, str] | None = None) -> Outcome:
        """Run one point as `attempt` (the record's unique id: files the run writes are named for it), in
        a process environment of `env` over the current one. Failures of the point come back as an
        Outcome, never as an exception; a run that ended with no verdict on the point (its keeper killed from
        outside) raises `RunLost`, and nothing is recorded."""
        ...

    def cancel(self) -> None:
        """Stop every run in flight, from another thread (an executor's Ctrl-C): their outcomes are
        thrown away, never recorded."""
        ...

    def provenance(self) -> dict[str, Any]:
        """What a report needs to say where the numbers came from (versions, artifacts, manifests)."""
        ...


@runtime_checkable
class Evaluates(Protocol):
    """A backend that can also score what its artifacts generate (trtllm-eval)."""

    def evaluate(self, point: Point, task: EvalTask, acc: AccuracySpec, env: Mapping[str, str] | None = None
                 ) -> AccuracyRecord:
        """Run `task` on the artifact `point` runs on; failures come back as a record, never an exception."""
        ...


@dataclass(frozen=True)
class Registration:
    """How the registry knows a backend."""

    name: str
    # In `auto` mode: whether this backend can run here, and why (what it found, or what is missing).
    probe: Callable[[SweepSpec, list[GpuInfo]], tuple[bool, str]]
    # The backend and notes for the user (release, ignored settings) for a spec, run directory and GPUs; the
    # last argument is a dry run's: a backend then plans its commands without its tools being installed.
    create: Callable[[SweepSpec, Path, list[GpuInfo], bool], tuple[Backend, list[str]]]
