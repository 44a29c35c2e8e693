"""The sweep's progress bar: an executor observer drawing with rich. It advances by each run's expected
duration (the simulator's prediction plus a model load), not by one per run: points take from seconds to
most of an hour, so counting them would make the ETA meaningless. It counts runs (tasks), not points: with
repeats a point runs several times, each run its own share of the bar."""

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
        self.fallback = UNKNOWN_POINT_S
        self.before, self.runs, self.done, self.gone, self.repeated = 0, 0, 0, 0, False

    def begin(self, total: int, done: int, tasks: Sequence[Task] = ()) -> None:
        """The bar's length: every task's weight (`_weight`); `done` points were recorded before this sweep
        (`total` is `done` + the tasks, which counts runs, not points, with repeats: the count comes from `tasks`)."""
        known = [t.expected_s for t in tasks if t.expected_s > 0]
        self.fallback = sum(known) / len(known) if known else UNKNOWN_POINT_S
        self.before, self.runs, self.done, self.gone = done, len(tasks), 0, 0
        self.repeated = len({t.point.id for t in tasks}) < len(tasks)
        self.progress.update(self.task, total=sum(map(self._weight, tasks)) or None, completed=0,
                             points=self._count())

    def _weight(self, task: Task) -> float:
        """A task's expected seconds; one without a prediction weighs the mean of those with one."""
        return task.expected_s or self.fallback

    def _count(self) -> str:
        """Points, those done before included, while each runs once; with repeats, this sweep's runs. A lost
        run (no verdict, nothing recorded) is over but not done: it is counted apart."""
        lost = f", {self.gone} lost" if self.gone else ""
        if not self.repeated:
            return f"{self.before + self.done}/{self.before + self.runs} points{lost}"
        return f"{self.done}/{self.runs} runs{lost}" + (f" ({self.before} points done before)" if self.before else "")

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
        self.progress.update(self.task, advance=self._weight(task), points=self._count())

    def lost(self, task: Task, why: str) -> None:
        self.gone += 1
        self.progress.update(self.task, advance=self._weight(task), points=self._count())
