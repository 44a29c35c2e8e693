"""The sweep's progress bar: an executor observer drawing with rich. It advances by each point's expected
duration (the simulator's prediction plus a model load), not by one per point: points take from seconds to
most of an hour, so counting them would make the ETA meaningless."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trtbench.executors.base import Task
from trtbench.records import Record

UNKNOWN_POINT_S = 60.0  # the weight of a point nothing predicted, when no other point was predicted either


class ProgressBar:
    """`with ProgressBar(console, backend) as bar:` then pass `bar` as the observer."""

    def __init__(self, console: Console, backend: str) -> None:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[points]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self.backend = backend
        self.progress = Progress(*columns, console=console, transient=False)
        self.task: TaskID = self.progress.add_task("starting", total=None, points="")
        self.weights: dict[str, float] = {}
        self.total, self.done = 0, 0

    def begin(self, total: int, done: int, tasks: Sequence[Task] = ()) -> None:
        """Weights: each task's expected seconds; one without a prediction weighs the mean of those with one."""
        known = [t.expected_s for t in tasks if t.expected_s > 0]
        fallback = sum(known) / len(known) if known else UNKNOWN_POINT_S
        self.weights = {t.point.id: t.expected_s or fallback for t in tasks}
        self.total, self.done = total, done
        self.progress.update(self.task, total=sum(self.weights.values()) or None, completed=0,
                             points=self._points())

    def _points(self) -> str:
        return f"{self.done}/{self.total} points"

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.progress.update(self.task, description=f"{self.backend}: done")
        self.progress.stop()

    def started(self, task: Task) -> None:
        self.progress.update(self.task, description=f"{self.backend}: {task.point.label}")

    def finished(self, task: Task, record: Record) -> None:
        self.done += 1
        self.progress.update(self.task, advance=self.weights.get(task.point.id, 0.0), points=self._points())
