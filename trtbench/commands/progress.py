"""The sweep's progress bar: an executor observer drawing with rich."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trtbench.executors.base import Task
from trtbench.records import Record


class ProgressBar:
    """`with ProgressBar(console, backend) as bar:` then pass `bar` as the observer."""

    def __init__(self, console: Console, backend: str) -> None:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self.backend = backend
        self.progress = Progress(*columns, console=console, transient=False)
        self.task: TaskID = self.progress.add_task("starting", total=None)

    def begin(self, total: int, done: int) -> None:
        self.progress.update(self.task, total=total, completed=done)

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
        self.progress.advance(self.task)
