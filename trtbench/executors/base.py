"""The executor seam: the runner hands over tasks and a way to run and deliver one; an executor decides
where and when each runs. Progress is an observer, told of each start and finish."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from trtbench.grid import Point
from trtbench.records import Record, Status


@dataclass(frozen=True)
class Capacity:
    """How much an executor runs at once: `points` of them, or (`gpus` set) points until that many GPUs are busy.
    A guided sweep chooses each batch this wide, so no GPU waits while the next batch is chosen."""

    points: int = 1
    gpus: int | None = None


@dataclass(frozen=True)
class Task:
    point: Point
    gpus: int = 1  # GPUs the point runs on: its tp x pp
    expected_s: float = 0.0  # predicted wall time, model load included (0: unknown): the longest start first
    env: Mapping[str, str] = field(default_factory=dict)  # the point's process environment, over the current one
    round: int = 0  # which of this sweep's repeats of the point: no round starts before the one before it has


class Observer(Protocol):
    def begin(self, total: int, done: int, tasks: Sequence[Task] = ()) -> None:
        """The sweep has `total` points, `done` of them recorded before this run; `tasks` are what runs now
        (with their expected durations, where the simulator could predict them)."""
        ...

    def started(self, task: Task) -> None: ...

    def finished(self, task: Task, record: Record) -> None: ...

    def lost(self, task: Task, why: str) -> None:
        """`task` ended with no verdict (`RunLost`): nothing is recorded, and nothing runs it any more."""
        ...


class NullObserver:
    def begin(self, total: int, done: int, tasks: Sequence[Task] = ()) -> None:
        pass

    def started(self, task: Task) -> None:
        pass

    def finished(self, task: Task, record: Record) -> None:
        pass

    def lost(self, task: Task, why: str) -> None:
        pass


@dataclass(frozen=True)
class Work:
    tasks: Sequence[Task]
    run: Callable[[Task], Record]  # run one point in this process (backend + companion -> record)
    deliver: Callable[[Record], None]  # hand a finished record to the store (from the executor's own thread)
    refuse: Callable[[Task, Status, str], Record]  # the record of a task that did not run where it went, and why
    cancel: Callable[[], None]  # stop every `run` in flight, from another thread (their records are dropped)
    recorded: frozenset[str] = frozenset()  # attempts the store holds: a job that wrote one of them is done
    # Filled in by the executor: point id -> why this machine cannot run it (more GPUs than it has). Such a
    # point gets no record: the verdict is about the machine, not the point, and a bigger one runs it.
    unplaced: dict[str, str] = field(default_factory=dict)
    # Filled in by the executor: point id -> why its run ended without a verdict (`run` raised RunLost). No
    # record either: a resume runs it again.
    lost: dict[str, str] = field(default_factory=dict)


class Executor(Protocol):
    name: str
    capacity: Capacity

    def execute(self, work: Work, observer: Observer) -> None:
        """Run every task once and deliver its record, except those it names in `work.unplaced` or, once
        run, in `work.lost`; return when all are delivered. A KeyboardInterrupt propagates after the point in
        flight is stopped: what was delivered stays."""
        ...
