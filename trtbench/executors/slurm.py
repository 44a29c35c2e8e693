"""A Slurm cluster: one job per point (or per `points_per_job` points of the same width), each asking for
its GPUs, run by `trtbench.commands.slurm_job` inside the job, which hands each point's record to the run
directory (a filesystem the cluster shares).

The controller keeps a ledger (`slurm/jobs.jsonl`: point id -> job id, appended and fsynced before it
waits on the job), polls `squeue --states=all` (then `sacct`, where the cluster keeps accounting, for jobs
squeue forgot), and delivers each point exactly once: the record its job wrote
(`slurm/<point>.<job>.record.json`, atomically) as soon as it is there, else, once the job ended, a
failure from how Slurm ended it. A point its job never reached (cancelled while pending, a packed job
out of time) gets no record: the next sweep submits it again. A controller that was killed finds its
jobs in the ledger on the next sweep and waits for them instead of submitting again.
Plain `sbatch --parsable`, `squeue`, `sacct` and `sinfo` through argument lists; no library.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trtbench.errors import SpecError, TrtbenchError
from trtbench.executors.base import Observer, Task, Work
from trtbench.files import atomic_write
from trtbench.records import Record, RecordError, Status, parse_record
from trtbench.spec import SlurmSpec

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}
# How Slurm ended a job that left no record for a point it started: the failure class it is.
ENDINGS = {"TIMEOUT": Status.TIMEOUT, "DEADLINE": Status.TIMEOUT, "OUT_OF_MEMORY": Status.OOM,
           "CANCELLED": Status.ERROR, "NODE_FAIL": Status.CRASH, "PREEMPTED": Status.CRASH, "BOOT_FAIL": Status.CRASH,
           "FAILED": Status.ERROR, "COMPLETED": Status.NO_REPORT}
MARGIN = 1.5  # a job's time limit when the spec sets none: its predicted wall time times this, plus 5 min
POLL_S = 2.0
DEFAULT_MIN = 60  # the time limit of a point without a prediction, when the spec sets none
# Filesystems no other machine sees: a run directory on one cannot be shared with the cluster's nodes.
MOUNTS = Path("/proc/self/mounts")
LOCAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "f2fs", "vfat", "exfat", "zfs"}


@dataclass(frozen=True)
class Job:
    point_id: str
    job_id: str


class SlurmExecutor:
    name = "slurm"

    def __init__(self, run_dir: Path, backend: str, spec: SlurmSpec, poll_s: float = POLL_S,
                 detach: bool = False) -> None:
        self.run_dir, self.backend, self.spec, self.poll_s = run_dir.resolve(), backend, spec, poll_s
        self.detach = detach  # submit and return: `trtbench status` shows the jobs, the next sweep merges them
        self.dir = self.run_dir / "slurm"
        self.ledger = self.dir / "jobs.jsonl"

    def execute(self, work: Work, observer: Observer) -> None:
        self.dir.mkdir(exist_ok=True)
        tasks = {t.point.id: t for t in work.tasks}
        # Re-attach: a point whose job Slurm queues, runs or ran (and reached it) is never submitted again.
        watched = attached(self.dir, set(tasks), work.recorded)
        fresh = [t for pid, t in tasks.items() if pid not in watched]
        if fresh:
            check_shared(self.run_dir, self.spec.partition)
        for point_id in watched:
            observer.started(tasks[point_id])
        wide = self.spec.gpus_per_node
        for task in [t for t in fresh if wide is not None and t.gpus > wide]:
            why = f"needs {task.gpus} GPUs, a node has {wide} (executor.slurm.gpus_per_node)"
            _finish(work, observer, task, work.refuse(task, Status.INFEASIBLE, why))
        queue = batches([t for t in fresh if wide is None or t.gpus <= wide], self.spec.points_per_job)
        try:
            while queue or watched:
                while queue and (self.spec.max_jobs is None or
                                 len({j.job_id for j in watched.values()}) < self.spec.max_jobs):
                    batch = queue.pop(0)
                    for task in batch:
                        observer.started(task)
                    submitted = self._submit(batch)
                    if isinstance(submitted, str):
                        watched.update({t.point.id: Job(t.point.id, submitted) for t in batch})
                        continue
                    for task in batch:  # refused at submission
                        _finish(work, observer, task, work.refuse(task, *submitted))
                if self.detach:
                    return
                states = _states(sorted({j.job_id for j in watched.values()}))
                for point_id, job in list(watched.items()):
                    state, written = states.get(job.job_id, ""), _record(self.dir, job)
                    if written is None and state in ACTIVE:
                        continue
                    del watched[point_id]
                    if written is None and not started_path(self.dir, job).exists():
                        continue  # never reached: no record; the next sweep submits it again
                    task = tasks[point_id]
                    _finish(work, observer, task, written or work.refuse(task, *self._ending(job, state)))
                if watched:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            if watched:  # the sweep stops: so do its jobs (what finished is recorded)
                jobs = sorted({j.job_id for j in watched.values()})
                subprocess.run(["scancel", *jobs], capture_output=True, check=False)
            raise

    def _submit(self, batch: list[Task]) -> str | tuple[Status, str]:
        """Submit one job for `batch` (points of one width); its job id, or why Slurm refused it."""
        first = batch[0].point.id
        task_file = self.dir / f"{first}.task.json"
        atomic_write(task_file, json.dumps({"backend": self.backend, "points": [
            {"id": t.point.id, "axes": list(t.point.axes), "gpus": t.gpus} for t in batch]}))
        args = ["sbatch", "--parsable", f"--job-name=trtbench-{first[:8]}",
                f"--comment=trtbench {self.run_dir} {' '.join(t.point.id for t in batch)}",
                f"--gres=gpu:{batch[0].gpus}", f"--time={time_limit(self.spec, batch)}",
                f"--output={self.dir / first}.%j.out"]
        for flag, value in (("partition", self.spec.partition), ("account", self.spec.account),
                            ("qos", self.spec.qos), ("constraint", self.spec.constraint),
                            ("container-image", self.spec.container_image),
                            ("container-mounts", self.spec.container_mounts)):
            if value:
                args.append(f"--{flag}={value}")
        args += [*self.spec.extra_args, "--wrap",
                 shlex.join([sys.executable, "-m", "trtbench.commands.slurm_job", str(self.run_dir), str(task_file)])]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TrtbenchError(f"cannot submit to Slurm ({exc}); is sbatch on PATH and the cluster up?") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["sbatch failed"])[-1]
            status = Status.INFEASIBLE if "Requested node configuration is not available" in why else Status.ERROR
            return status, f"Slurm refused the job: {why}"
        job_id = done.stdout.strip().split(";")[0]
        with self.ledger.open("a") as fh:  # before waiting: a killed controller finds the job again
            fh.writelines(json.dumps({"point_id": t.point.id, "job_id": job_id}) + "\n" for t in batch)
            fh.flush()
            os.fsync(fh.fileno())
        return job_id

    def _ending(self, job: Job, state: str) -> tuple[Status, str]:
        status = ENDINGS.get(state.split()[0] if state else "", Status.ERROR)
        outputs = sorted(self.dir.glob(f"*.{job.job_id}.out"))  # one per job, named for its first point
        seen = (f"its output: {outputs[0]}" if outputs else
                f"it left no output in {self.dir}: is the run directory on a filesystem the nodes share?")
        return status, f"Slurm job {job.job_id} ended {state or 'unseen (purged)'} without a record; {seen}"


def _finish(work: Work, observer: Observer, task: Task, record: Record) -> None:
    work.deliver(record)
    observer.finished(task, record)


def batches(tasks: Sequence[Task], per_job: int) -> list[list[Task]]:
    """Jobs to submit: tasks of one width packed `per_job` at most into as few jobs as that allows, balanced
    (longest first, each into the job with the least predicted time that has room), the longest jobs first."""
    by_width: dict[int, list[Task]] = {}
    for task in sorted(tasks, key=lambda t: -t.expected_s):
        by_width.setdefault(task.gpus, []).append(task)
    jobs: list[list[Task]] = []
    for group in by_width.values():
        bins: list[list[Task]] = [[] for _ in range(math.ceil(len(group) / per_job))]
        for task in group:
            room = [b for b in bins if len(b) < per_job]
            min(room, key=lambda b: sum(t.expected_s for t in b)).append(task)
        jobs += bins
    return sorted(jobs, key=lambda job: -sum(t.expected_s for t in job))


def time_limit(spec: SlurmSpec, batch: Sequence[Task]) -> str:
    """sbatch's --time for a job: the spec's, else the predicted points x 1.5 + 5 min, plus an hour for each
    point without a prediction."""
    if spec.time is not None:
        return str(spec.time)
    known = [t.expected_s for t in batch if t.expected_s]
    minutes = math.ceil((sum(known) * MARGIN + 300) / 60) if known else 0
    return str(minutes + DEFAULT_MIN * (len(batch) - len(known)))


def cluster_wall_s(spec: SlurmSpec, tasks: Sequence[Task]) -> tuple[float, int, int]:
    """The predicted wall time on the cluster, queue waits aside (each job its predicted points, cut at the
    spec's time limit; `max_jobs` at once, longest first, else all at once), the number of jobs, and the
    most GPUs they hold at once."""
    jobs = sorted(((min(sum(t.expected_s for t in b), 60 * spec.time if spec.time else math.inf), b[0].gpus)
                   for b in batches(tasks, spec.points_per_job)), reverse=True)
    slots = min(spec.max_jobs or len(jobs), len(jobs))
    ends = [0.0] * slots
    for seconds, _ in jobs:
        heapq.heapreplace(ends, ends[0] + seconds)
    widest = sorted((gpus for _, gpus in jobs), reverse=True)[:slots]
    return max(ends, default=0.0), len(jobs), sum(widest)


def ledger(slurm_dir: Path) -> list[Job]:
    """The latest job of each point in a run's ledger."""
    path = slurm_dir / "jobs.jsonl"
    if not path.exists():
        return []
    latest: dict[str, Job] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            latest[entry["point_id"]] = Job(entry["point_id"], entry["job_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill: its job was never waited on
    return list(latest.values())


def attached(slurm_dir: Path, point_ids: set[str], recorded: frozenset[str] = frozenset()) -> dict[str, Job]:
    """The points of `point_ids` whose latest job is to be waited on, not submitted again: every one
    except those whose job ended before reaching them, and those whose job wrote a record the store already
    holds (a failed point `--retry-failed` runs again)."""
    jobs = [job for job in ledger(slurm_dir) if job.point_id in point_ids]
    jobs = [job for job in jobs if (written := _record(slurm_dir, job)) is None or written.attempt not in recorded]
    states = _states(sorted({j.job_id for j in jobs}))
    return {job.point_id: job for job in jobs
            if states.get(job.job_id, "") in ACTIVE or started_path(slurm_dir, job).exists()
            or record_path(slurm_dir, job.point_id, job.job_id).exists()}


def job_states(slurm_dir: Path) -> dict[str, tuple[Job, str, bool]]:
    """point id -> (its latest job, Slurm's state of it ("" once Slurm forgot it), whether the job reached
    the point): for `trtbench status`."""
    jobs = ledger(slurm_dir)
    try:
        states = _states(sorted({j.job_id for j in jobs}))
    except TrtbenchError:  # no Slurm here: status still shows what is recorded
        states = {}
    return {job.point_id: (job, states.get(job.job_id, ""), started_path(slurm_dir, job).exists()) for job in jobs}


def finished_records(slurm_dir: Path, recorded: set[str]) -> list[Record]:
    """The records jobs wrote for points not in `recorded`: what `trtbench report` merges before it reads
    the run (failures from how a job ended are left to the sweep, which knows the point's prediction)."""
    found = (_record(slurm_dir, job) for job in ledger(slurm_dir) if job.point_id not in recorded)
    return [record for record in found if record is not None]


def record_path(slurm_dir: Path, point_id: str, job_id: str) -> Path:
    """Where a point's job writes its record (read by the controller, kept for the record)."""
    return slurm_dir / f"{point_id}.{job_id}.record.json"


def started_path(slurm_dir: Path, job: Job) -> Path:
    """Written by the job as it starts the point: a job that ended without it never reached the point."""
    return slurm_dir / f"{job.point_id}.{job.job_id}.started"


def check_shared(run_dir: Path, partition: str | None) -> None:
    """Refuse a run directory the cluster's nodes cannot see: on a local filesystem while some node of the
    partition is another machine. Says nothing when sinfo or the mount table cannot tell."""
    try:
        args = ["sinfo", "-h", "-N", "-o", "%n", *(["-p", partition] if partition else [])]
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        mounts = MOUNTS.read_text()
    except (OSError, subprocess.TimeoutExpired):
        return
    if done.returncode != 0:
        return
    here = {"localhost", socket.gethostname(), socket.gethostname().split(".")[0]}
    elsewhere = sorted({h.strip() for h in done.stdout.split()} - here)
    kind = fs_type(run_dir, mounts)
    if elsewhere and kind in LOCAL_FS:
        shown = ", ".join(elsewhere[:3]) + (f" and {len(elsewhere) - 3} more" if len(elsewhere) > 3 else "")
        raise SpecError(f"{run_dir} is on a local {kind} filesystem, which the Slurm nodes {shown} cannot see: put "
                        f"the run directory (--out) on a filesystem they share (NFS, Lustre, GPFS, ...)")


def fs_type(path: Path, mounts: str) -> str:
    """The filesystem type `path` is on, from a mount table (/proc/self/mounts): the longest mount point
    above it."""
    best, kind = "", ""
    resolved = str(path.resolve())
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _record(slurm_dir: Path, job: Job) -> Record | None:
    """The record the job wrote for its point, if it wrote one."""
    try:
        return parse_record(record_path(slurm_dir, job.point_id, job.job_id).read_bytes())
    except (OSError, RecordError):
        return None


def _states(job_ids: list[str]) -> dict[str, str]:
    """job id -> Slurm state: `squeue --states=all`, then `sacct` for the jobs squeue has forgotten (on
    clusters with accounting); a job neither knows is missing."""
    if not job_ids:
        return {}
    args = ["squeue", "-h", "--states=all", "-o", "%i|%T"]
    try:
        done = subprocess.run([*args, "-j", ",".join(job_ids)], capture_output=True, text=True, timeout=60,
                              check=False)
        if done.returncode != 0:  # one purged id fails the whole query: ask one by one
            outs = [subprocess.run([*args, "-j", j], capture_output=True, text=True, timeout=60, check=False)
                    for j in job_ids]
            text = "".join(o.stdout for o in outs if o.returncode == 0)
        else:
            text = done.stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrtbenchError(f"cannot ask Slurm about the run's jobs ({exc}); is squeue on PATH and the cluster "
                            f"up? The jobs keep running; the same command re-attaches to them") from None
    states = dict(line.split("|", 1) for line in text.splitlines() if "|" in line)
    forgotten = [j for j in job_ids if j not in states]
    if forgotten:
        try:
            acct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(forgotten)],
                                  capture_output=True, text=True, timeout=60, check=False)
        except OSError:  # no sacct on this cluster
            return states
        if acct.returncode == 0:  # "Slurm accounting storage is disabled" exits 1
            rows = (line.split("|", 1) for line in acct.stdout.splitlines() if "|" in line)
            states.update((job, state) for job, state in rows if job in forgotten)
    return states
