"""Every GPU of this node at once: each point on `Task.gpus` GPUs of its own (CUDA_VISIBLE_DEVICES), the
longest-predicted first, a waiting point started as soon as enough GPUs are free.

Points run in threads of this process (each thread waits on its benchmark's keeper, so a killed
controller takes every benchmark with it); records are delivered, and progress reported, from the
calling thread only, so the store and the observer see one writer. A point needing more GPUs than the
node has is recorded as infeasible, not queued forever. Ctrl-C cancels every run in flight; none of
them is recorded.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from trtbench.errors import TrtbenchError
from trtbench.executors.base import Observer, Task, Work
from trtbench.nvml import visible_gpus
from trtbench.records import Record, Status

_JOIN_S = 15.0  # after a cancel, how long the runs in flight get to end (their keepers need about 2 s)


def node_gpus(wanted: str | int | list[int]) -> list[int]:
    """The GPU ids to use: `auto` (CUDA_VISIBLE_DEVICES when set, else every GPU NVML sees), the first N,
    or the ids given."""
    if isinstance(wanted, list):
        return wanted
    if wanted == "auto":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        if visible:
            return [int(i) for i in visible.split(",") if i.strip().isdigit()]
        ids = list(range(len(visible_gpus())))
        if not ids:
            raise TrtbenchError("--executor gpus found no GPU (NVML sees none, CUDA_VISIBLE_DEVICES is unset); "
                                "set executor.gpus to the GPU ids to use")
        return ids
    return list(range(int(wanted)))


@dataclass(frozen=True)
class Slot:
    """Where and when a task runs in a schedule."""

    task: Task
    gpus: tuple[int, ...]
    start_s: float


def schedule(tasks: Sequence[Task], gpu_ids: Sequence[int]) -> list[Slot]:
    """The order `GpuExecutor` runs `tasks` in if each takes its `expected_s`: longest first, each started
    on the lowest free GPUs as soon as enough are free (a shorter one that fits may start ahead of a wide
    one that does not). Tasks wider than the node are left out. Pure: `plan` uses it to predict the makespan."""
    pending = sorted((t for t in tasks if t.gpus <= len(gpu_ids)), key=lambda t: -t.expected_s)
    free, now, running, slots = sorted(gpu_ids), 0.0, [], []  # running: (end, gpus)
    while pending:
        started, free = place(pending, free)
        for task, taken in started:
            slots.append(Slot(task, taken, now))
            running.append((now + task.expected_s, taken))
        if pending:
            running.sort()
            end, released = running.pop(0)
            now, free = end, sorted([*free, *released])
    return slots


def place(pending: list[Task], free: list[int]) -> tuple[list[tuple[Task, tuple[int, ...]]], list[int]]:
    """Start, in order, each pending task that fits the free GPUs (the lowest ids first); the started tasks
    leave `pending`. Returns them with their GPUs, and the GPUs still free. The one placement policy of the
    executor and of `schedule`."""
    started = []
    for task in list(pending):
        if task.gpus <= len(free):
            taken, free = tuple(free[:task.gpus]), free[task.gpus:]
            started.append((task, taken))
            pending.remove(task)
    return started, free


def makespan(tasks: Sequence[Task], gpu_ids: Sequence[int]) -> float:
    return max((slot.start_s + slot.task.expected_s for slot in schedule(tasks, gpu_ids)), default=0.0)


class GpuExecutor:
    name = "gpus"

    def __init__(self, gpu_ids: Sequence[int]) -> None:
        self.gpu_ids = list(gpu_ids)

    def execute(self, work: Work, observer: Observer) -> None:
        pending = sorted(work.tasks, key=lambda t: -t.expected_s)
        free = list(self.gpu_ids)
        finished: queue.Queue[tuple[Task, Record | BaseException, tuple[int, ...]]] = queue.Queue()
        threads: list[threading.Thread] = []
        try:
            for task in [t for t in pending if t.gpus > len(self.gpu_ids)]:
                pending.remove(task)
                observer.started(task)
                record = work.refuse(task, Status.INFEASIBLE,
                                     f"needs {task.gpus} GPUs; executor gpus has {len(self.gpu_ids)}")
                work.deliver(record)
                observer.finished(task, record)
            running = 0
            while pending or running:
                started, free = place(pending, free)
                for task, taken in started:
                    placed = replace(task, env={**task.env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, taken)),
                                                "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
                    observer.started(placed)
                    thread = threading.Thread(target=_run, args=(work, placed, taken, finished), daemon=True)
                    thread.start()
                    threads.append(thread)
                    running += 1
                task, outcome, taken = _next(finished)
                running -= 1
                free = sorted([*free, *taken])
                if isinstance(outcome, BaseException):
                    raise outcome
                work.deliver(outcome)
                observer.finished(task, outcome)
        except BaseException:
            work.cancel()
            for thread in threads:
                thread.join(timeout=_JOIN_S)
            raise


def _next(finished: queue.Queue[tuple[Task, Record | BaseException, tuple[int, ...]]]
          ) -> tuple[Task, Record | BaseException, tuple[int, ...]]:
    """The next finished run. Waits in short steps: a signal the kernel hands to a worker thread is
    only run by the main thread when it wakes, so an endless wait here would never see Ctrl-C or SIGTERM."""
    while True:
        try:
            return finished.get(timeout=0.2)
        except queue.Empty:
            continue


def _run(work: Work, task: Task, taken: tuple[int, ...],
         finished: queue.Queue[tuple[Task, Record | BaseException, tuple[int, ...]]]) -> None:
    try:
        finished.put((task, work.run(task), taken))
    except BaseException as exc:  # a bug in the runner: the controller raises it
        finished.put((task, exc, taken))
