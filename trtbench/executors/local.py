"""One point at a time, in this process: the default executor."""

from __future__ import annotations

from trtbench.errors import RunLost
from trtbench.executors.base import Capacity, Observer, Work


class LocalExecutor:
    name = "local"
    capacity = Capacity(1)

    def execute(self, work: Work, observer: Observer) -> None:
        for task in work.tasks:
            observer.started(task)
            try:
                record = work.run(task)
            except RunLost as lost:
                work.lost[task.point.id] = str(lost)
                observer.lost(task, str(lost))
                continue
            work.deliver(record)
            observer.finished(task, record)
