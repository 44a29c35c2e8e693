"""Every GPU of this node at once: each point on `Task.gpus` GPUs of its own (CUDA_VISIBLE_DEVICES), the
longest-predicted first, a waiting point started as soon as enough GPUs are free. With repeats, round by round:
no point's run k+1 starts before every point's run k has started (drift must not pose as a difference between
points), which may leave GPUs idle at a round's end that a later round's run could have used.

Points run in threads of this process (each thread waits on its benchmark's keeper, so a killed
controller takes every benchmark with it); records are delivered, and progress reported, from the
calling thread only, so the store and the observer see one writer. A point this node cannot hold (more
GPUs than it has) is left without a record and named in `Work.unplaced`: that is a fact about this
machine, not about the point, and a sweep with more GPUs runs it. Ctrl-C cancels every run in flight;
none of them is recorded.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from trtbench.errors import RunLost, TrtbenchError
from trtbench.executors.base import Capacity, Observer, Task, Work
from trtbench.nvml import Device, devices
from trtbench.records import Record

_JOIN_S = 15.0  # after a cancel, how long the runs in flight get to end (their keepers need about 2 s)
_ID = re.compile(r"\d{1,4}|GPU-[0-9a-fA-F-]+|MIG-(GPU-)?[0-9a-fA-F-]+(/\d+/\d+)?", re.ASCII)  # what CUDA takes
_NAMES = "GPU indices, GPU UUIDs (GPU-...) or MIG devices (MIG-...), as `nvidia-smi -L` lists them"


@dataclass(frozen=True)
class Gpu:
    """A device a point can be given, named as the user named it: CUDA_VISIBLE_DEVICES gets that name (a UUID
    stays a UUID, which also means the same GPU inside a container and out)."""

    name: str
    mig: bool = False  # a MIG device: CUDA shows a process one MIG device only, so it holds one-GPU points only


def node_gpus(wanted: str | int | list[int]) -> list[Gpu]:
    """The devices to use: `auto` (those CUDA_VISIBLE_DEVICES names when it is set, else every GPU NVML sees,
    a GPU in MIG mode as its MIG devices), the first N of them, or the NVML indices given."""
    nvml = devices()
    if isinstance(wanted, list):
        return resolve([str(i) for i in wanted], nvml, "executor.gpus")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = resolve(visible.split(","), nvml, "CUDA_VISIBLE_DEVICES")
    elif nvml is None:  # nothing to look at: a count is taken as given
        gpus = [Gpu(str(i)) for i in range(0 if wanted == "auto" else int(wanted))]
    else:
        gpus = [Gpu(d.uuid, mig=True) if d.mig else Gpu(str(d.index)) for d in nvml if not d.mig_mode]
    if not gpus:
        raise TrtbenchError("--executor gpus found no GPU (NVML sees none, CUDA_VISIBLE_DEVICES is unset); "
                            "set executor.gpus to the GPU ids to use")
    if wanted != "auto" and int(wanted) > len(gpus):
        seen = "CUDA_VISIBLE_DEVICES names" if visible is not None else "NVML sees"
        raise TrtbenchError(f"executor.gpus: {wanted} asks for more GPUs than {seen} ({len(gpus)})")
    return gpus if wanted == "auto" else gpus[:int(wanted)]


def resolve(entries: Sequence[str], nvml: list[Device] | None, source: str) -> list[Gpu]:
    """Each entry of `source` (an index, a GPU UUID or a unique prefix of one, a MIG device in either of its
    forms) as a device, named as given. Checked against NVML's devices where NVML answers, else taken as
    given. An entry CUDA would not take, or one that names no device, a GPU in MIG mode (CUDA runs on its
    MIG devices only) or a device named before, is a one-line error: a point would run on the wrong GPU,
    or on none, or two points on one."""
    gpus, seen = [], dict[str, str]()  # the device's UUID (its name, without NVML) -> the entry that named it
    for raw in entries:
        entry = raw.strip()
        if not _ID.fullmatch(entry):
            raise TrtbenchError(f"{source}: {_shown(entry)} is not a GPU; give {_NAMES}")
        key = entry if nvml is None else _lookup(entry, nvml, source).uuid
        if key in seen:
            raise TrtbenchError(f"{source} names one GPU twice ({_shown(seen[key])} and {_shown(entry)}): two "
                                f"points would share it")
        seen[key] = entry
        gpus.append(Gpu(entry, mig=entry.startswith("MIG-")))
    return gpus


def _lookup(entry: str, nvml: list[Device], source: str) -> Device:
    if entry.startswith("MIG-"):
        found = [d for d in nvml if d.mig and entry in (d.uuid, d.legacy)]
    elif entry.startswith("GPU-"):
        found = [d for d in nvml if not d.mig and d.uuid.startswith(entry)]
    else:
        found = [d for d in nvml if not d.mig and d.index == int(entry)]
    if not found:
        raise TrtbenchError(f"{source}: {_shown(entry)} names no device NVML sees ({sum(not d.mig for d in nvml)} "
                            f"GPU(s), {sum(d.mig for d in nvml)} MIG device(s)); give {_NAMES}")
    if len(found) > 1:
        raise TrtbenchError(f"{source}: {_shown(entry)} begins {len(found)} GPUs' UUIDs; give enough of it to name "
                            f"one")
    if found[0].mig_mode:
        raise TrtbenchError(f"{source}: {_shown(entry)} is GPU {found[0].index}, in MIG mode: CUDA runs only on its "
                            f"MIG devices; name those (MIG-...)")
    return found[0]


def _shown(text: str) -> str:
    """`text` from the environment or a spec, quoted with its control characters escaped, and cut short."""
    return repr(text if len(text) <= 80 else text[:80] + "...")


def unplaceable(width: int, gpus: Sequence[Gpu]) -> str | None:
    """Why a point on `width` GPUs can never run on `gpus` (None: it can): it needs more GPUs than there are,
    or, needing more than one, more whole GPUs than there are (a process sees one MIG device only)."""
    whole = sum(not g.mig for g in gpus)
    if width <= (len(gpus) if width == 1 else whole):
        return None
    if whole == len(gpus):
        return f"needs {width} GPUs, executor gpus has {len(gpus)}"
    return (f"needs {width} GPUs, executor gpus has {whole} whole GPU(s) and {len(gpus) - whole} MIG device(s), "
            f"and a process sees one MIG device only")


@dataclass(frozen=True)
class Slot:
    """Where and when a task runs in a schedule: `gpus` are positions in the executor's device list."""

    task: Task
    gpus: tuple[int, ...]
    start_s: float


def schedule(tasks: Sequence[Task], gpus: Sequence[Gpu]) -> list[Slot]:
    """The order `GpuExecutor` runs `tasks` in if each takes its `expected_s`: longest first, each started
    on the first free GPUs as soon as enough are free (a shorter one that fits may start ahead of a wide
    one that does not). Tasks `gpus` cannot hold are left out. Pure: `plan` uses it to predict the makespan."""
    pending = [t for t in in_order(tasks) if unplaceable(t.gpus, gpus) is None]
    free, now, running, slots = list(range(len(gpus))), 0.0, [], []  # running: (end, positions)
    while pending:
        started, free = place(pending, free, gpus)
        for task, taken in started:
            slots.append(Slot(task, taken, now))
            running.append((now + task.expected_s, taken))
        if pending:
            running.sort()
            end, released = running.pop(0)
            now, free = end, sorted([*free, *released])
    return slots


def in_order(tasks: Sequence[Task]) -> list[Task]:
    """Round by round (`Task.round`), the longest first within a round."""
    return sorted(tasks, key=lambda t: (t.round, -t.expected_s))


def place(pending: list[Task], free: list[int], gpus: Sequence[Gpu]
          ) -> tuple[list[tuple[Task, tuple[int, ...]]], list[int]]:
    """Start, in order, each pending task of the earliest pending round that fits the free GPUs (positions in
    `gpus`, the first ones first; a task wider than one on whole GPUs only); the started tasks leave `pending`.
    Returns them with their GPUs, and the GPUs still free. The one placement policy of the executor and of
    `schedule`."""
    started = []
    current = min((t.round for t in pending), default=0)
    for task in [t for t in pending if t.round == current]:
        usable = [i for i in free if task.gpus == 1 or not gpus[i].mig]
        if task.gpus <= len(usable):
            taken = tuple(usable[:task.gpus])
            free = [i for i in free if i not in taken]
            started.append((task, taken))
            pending.remove(task)
    return started, free


def makespan(tasks: Sequence[Task], gpus: Sequence[Gpu]) -> float:
    return max((slot.start_s + slot.task.expected_s for slot in schedule(tasks, gpus)), default=0.0)


class GpuExecutor:
    name = "gpus"

    def __init__(self, gpus: Sequence[Gpu]) -> None:
        self.gpus = list(gpus)
        self.capacity = Capacity(len(self.gpus), len(self.gpus))

    def unplaceable(self, width: int) -> str | None:
        return unplaceable(width, self.gpus)

    def execute(self, work: Work, observer: Observer) -> None:
        pending = []
        for task in in_order(work.tasks):
            why = self.unplaceable(task.gpus)
            if why is None:
                pending.append(task)
            else:
                work.unplaced[task.point.id] = why
        free = list(range(len(self.gpus)))
        finished: queue.Queue[tuple[Task, Record | BaseException, tuple[int, ...]]] = queue.Queue()
        threads: list[threading.Thread] = []
        try:
            running = 0
            while pending or running:
                started, free = place(pending, free, self.gpus)
                for task, taken in started:
                    visible = ",".join(self.gpus[i].name for i in taken)
                    placed = replace(task, env={**task.env, "CUDA_VISIBLE_DEVICES": visible,
                                                "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
                    observer.started(placed)
                    thread = threading.Thread(target=_run, args=(work, placed, taken, finished), daemon=True)
                    thread.start()
                    threads.append(thread)
                    running += 1
                task, outcome, taken = _next(finished)
                running -= 1
                free = sorted([*free, *taken])
                if isinstance(outcome, RunLost):
                    work.lost[task.point.id] = str(outcome)
                    observer.lost(task, str(outcome))
                    continue
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
