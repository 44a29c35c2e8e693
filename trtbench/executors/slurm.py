"""A Slurm cluster: one job per point (or per `points_per_job` points of the same width), each asking for
its GPUs, run by `trtbench.commands.slurm_job` inside the job, which hands each point's record to the run
directory (a filesystem the cluster shares).

The controller keeps a ledger (`slurm/jobs.jsonl`, appended and fsynced): before each `sbatch`, the intent
(a fresh submission id and its points), and once sbatch answered, each point's job id. The job carries the
submission id in its name (`trtbench-<id>`) and comment, and announces itself in the run directory as it
starts (`slurm/<id>.job`), so a controller killed between the intent and the job id finds the job again
(that file, else `squeue --name`, else `sacct --name`) and adopts it; an intent Slurm has no job for was
never submitted, and its points are submitted again. A kill at any instant neither loses nor duplicates a
job. The controller polls `squeue --states=all` (then `sacct`, where the cluster keeps accounting, for jobs
squeue forgot), and delivers each point exactly once: the record its job wrote
(`slurm/<point>.<job>.record.json`, atomically) as soon as it is there, else, once the job ended, a
failure from how Slurm ended it. A point its job never reached (cancelled while pending, a packed job
out of time) gets no record: the next sweep submits it again. Nor does a point wider than a node
(`executor.slurm.gpus_per_node`): it is named in `Work.unplaced`, a fact about this cluster, not the point.
Plain `sbatch --parsable`, `squeue`, `sacct` and `sinfo` through argument lists; no library.
"""

from __future__ import annotations

import ctypes
import heapq
import json
import math
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trtbench.errors import SpecError, TrtbenchError
from trtbench.executors.base import Capacity, Observer, Task, Work
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
GUIDED_JOBS = 8  # a guided sweep's batch without executor.slurm.max_jobs: jobs queued at once between refits
DEFAULT_MIN = 60  # the time limit of a point without a prediction, when the spec sets none
# Filesystems no other machine sees: a run directory on one cannot be shared with the cluster's nodes.
MOUNTS = Path("/proc/self/mounts")
LOCAL_FS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "f2fs", "vfat", "exfat", "zfs"}
JOB_ID = re.compile(r"[0-9]+")  # what `sbatch --parsable` prints before any ";cluster"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
ACCT_SLACK_S = 86400  # sacct is asked from a day before an intent: clocks and time zones of the nodes differ


@dataclass(frozen=True)
class Job:
    point_id: str
    job_id: str


@dataclass(frozen=True)
class Intent:
    """A submission recorded before its sbatch ran: its id (in the job's name and comment), its points, and
    when (epoch seconds: sacct is asked from then)."""

    submission: str
    point_ids: tuple[str, ...]
    at: float


class SlurmExecutor:
    name = "slurm"

    def __init__(self, run_dir: Path, backend: str, spec: SlurmSpec, poll_s: float = POLL_S,
                 detach: bool = False) -> None:
        self.run_dir, self.backend, self.spec, self.poll_s = run_dir.resolve(), backend, spec, poll_s
        self.detach = detach  # submit and return: `trtbench status` shows the jobs, the next sweep merges them
        self.dir = self.run_dir / "slurm"
        self.ledger = self.dir / "jobs.jsonl"
        self.capacity = Capacity((spec.max_jobs or GUIDED_JOBS) * spec.points_per_job)

    def execute(self, work: Work, observer: Observer) -> None:
        self.dir.mkdir(exist_ok=True)
        tasks = {t.point.id: t for t in work.tasks}
        # Re-attach: a point whose job Slurm queues, runs or ran (and reached it) is never submitted again.
        watched = attached(self.dir, set(tasks), work.recorded)
        fresh = []
        for task in (t for pid, t in tasks.items() if pid not in watched):
            why = self.unplaceable(task.gpus)
            if why is None:
                fresh.append(task)
            else:
                work.unplaced[task.point.id] = why
        if fresh:
            check_shared(self.run_dir, self.spec.partition)
        for point_id in watched:
            observer.started(tasks[point_id])
        queue = batches(fresh, self.spec.points_per_job)
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
                    task = tasks[point_id]
                    if written is None and not started_path(self.dir, job).exists():
                        # never reached: no record (the sweep counts it as not run) and the next sweep submits
                        # it again; its share of the progress ends here
                        observer.lost(task, f"Slurm job {job.job_id} ended {state or 'unseen'} before reaching it")
                        continue
                    _finish(work, observer, task, written or work.refuse(task, *self._ending(job, state)))
                if watched:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            if watched:  # the sweep stops: so do its jobs (what finished is recorded)
                jobs = sorted({j.job_id for j in watched.values()})
                subprocess.run(["scancel", *jobs], capture_output=True, check=False)
            raise

    def unplaceable(self, width: int) -> str | None:
        """Why a point on `width` GPUs can never run on this cluster (None: it can): wider than a node."""
        wide = self.spec.gpus_per_node
        return None if wide is None or width <= wide else (
            f"needs {width} GPUs, a node has {wide} (executor.slurm.gpus_per_node)")

    def _submit(self, batch: list[Task]) -> str | tuple[Status, str]:
        """Submit one job for `batch` (points of one width); its job id, or why Slurm refused it. The intent is
        in the ledger before sbatch runs and the job carries its id: a controller killed before it wrote the
        job id adopts the job on the next sweep instead of submitting it twice."""
        first, ids = batch[0].point.id, [t.point.id for t in batch]
        submission = f"{first[:8]}-{secrets.token_hex(6)}"
        task_file = self.dir / f"{submission}.task.json"
        args = ["sbatch", "--parsable", f"--job-name={job_name(submission)}",
                f"--comment=trtbench {submission} {self.run_dir} {' '.join(ids)}",
                f"--gres=gpu:{batch[0].gpus}", f"--time={time_limit(self.spec, batch)}",
                f"--output={literal_pattern(self.dir / first)}.%j.out"]
        for flag, value in (("partition", self.spec.partition), ("account", self.spec.account),
                            ("qos", self.spec.qos), ("constraint", self.spec.constraint),
                            ("container-image", self.spec.container_image),
                            ("container-mounts", self.spec.container_mounts)):
            if value:
                args.append(f"--{flag}={value}")
        args += [*self.spec.extra_args, "--wrap",
                 shlex.join([sys.executable, "-m", "trtbench.commands.slurm_job", str(self.run_dir), str(task_file)])]
        atomic_write(task_file, json.dumps({"backend": self.backend, "submission": submission, "points": [
            {"id": t.point.id, "axes": list(t.point.axes), "gpus": t.gpus} for t in batch]}))
        _append(self.ledger, [{"submission": submission, "point_ids": ids, "at": time.time()}])
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False,
                                  preexec_fn=_dies_with(os.getpid()))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TrtbenchError(f"cannot submit to Slurm ({exc}); is sbatch on PATH and the cluster up?") from None
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["sbatch failed"])[-1]
            status = Status.INFEASIBLE if "Requested node configuration is not available" in why else Status.ERROR
            return status, f"Slurm refused the job: {why}"
        job_id = done.stdout.strip().split(";")[0]
        if not JOB_ID.fullmatch(job_id):
            answer = done.stdout.strip() or (done.stderr.strip().splitlines() or [""])[-1]
            raise TrtbenchError(f"sbatch answered {answer[:300]!r}, not a job id: nothing was submitted (do "
                                f"executor.slurm.extra_args keep it from submitting, as --test-only does?)")
        # Before waiting: a killed controller finds the job again.
        _append(self.ledger, [{"point_id": pid, "job_id": job_id, "submission": submission} for pid in ids])
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


def job_name(submission: str) -> str:
    """The Slurm job name of a submission: how a resumed controller finds a job whose id it never wrote."""
    return f"trtbench-{submission}"


def literal_pattern(path: Path) -> str:
    """`path` as an sbatch filename pattern naming exactly it: each % doubled (%j, %x, %% are replacement
    symbols). A backslash anywhere turns every replacement off and is dropped itself, so such a path cannot
    be named: refused before anything is submitted."""
    if "\\" in str(path):
        raise SpecError(f"{path}: sbatch cannot name its output file under a path holding a backslash (Slurm "
                        f"drops it): use a run directory (--out) without one")
    return str(path).replace("%", "%%")


def _dies_with(parent: int) -> Callable[[], None] | None:
    """sbatch is killed with the controller (Linux's parent-death signal), so an sbatch whose answer nobody
    will read cannot submit after a resumed controller found no job for its intent and submitted again."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child after fork only calls it

    def tie() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the controller died before the tie
            os._exit(1)

    return tie


def _append(path: Path, entries: list[dict[str, object]]) -> None:
    """Append ledger lines and fsync them. A line a kill tore (no newline) is closed first, so it stays an
    unreadable line of its own instead of swallowing the next entry."""
    with path.open("a+b") as fh:
        end, torn = fh.seek(0, os.SEEK_END), False
        if end:
            fh.seek(end - 1)
            torn = fh.read(1) != b"\n"
        fh.write(b"\n" * torn + b"".join(json.dumps(e).encode() + b"\n" for e in entries))  # appended at the end
        fh.flush()
        os.fsync(fh.fileno())


def _entries(slurm_dir: Path) -> dict[str, Job | Intent]:
    """Each point's latest ledger entry: its job, or an intent no job id followed."""
    path = slurm_dir / "jobs.jsonl"
    latest: dict[str, Job | Intent] = {}
    if not path.exists():
        return latest
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            if "point_ids" in entry:
                intent = Intent(str(entry["submission"]), tuple(str(p) for p in entry["point_ids"]),
                                float(entry["at"]))
                latest.update(dict.fromkeys(intent.point_ids, intent))
            else:
                latest[entry["point_id"]] = Job(str(entry["point_id"]), str(entry["job_id"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill: an intent whose sbatch never ran, or a job its intent finds
    return latest


def _jobs(slurm_dir: Path, point_ids: set[str] | None, ask: bool) -> tuple[list[Job], list[Job]]:
    """The latest job of each point (of `point_ids`, else every one) the ledger names, and the jobs adopted
    for points whose latest entry is an intent: the job it announced in the run directory, else (`ask`)
    the one Slurm knows by the submission's job name. A point of an intent Slurm has no job for has neither:
    its sbatch never submitted, the point is submitted again."""
    known: list[Job] = []
    pending: dict[str, Intent] = {}
    for point_id, entry in _entries(slurm_dir).items():
        if point_ids is None or point_id in point_ids:
            if isinstance(entry, Job):
                known.append(entry)
            else:
                pending[point_id] = entry
    found = _submitted(slurm_dir, list({i.submission: i for i in pending.values()}.values()), ask)
    return known, [Job(pid, found[i.submission]) for pid, i in pending.items() if i.submission in found]


def _submitted(slurm_dir: Path, intents: list[Intent], ask: bool) -> dict[str, str]:
    """submission id -> the job Slurm made of it: the job's own announcement (`slurm_job` writes it as it
    starts), else (`ask`) `squeue --name`, else `sacct --name` (clusters with accounting) for jobs squeue
    forgot. The earliest job, should two carry one name."""
    found: dict[str, str] = {}
    for intent in intents:
        try:
            said = announced_path(slurm_dir, intent.submission).read_text().strip()
        except OSError:
            continue
        if JOB_ID.fullmatch(said):
            found[intent.submission] = said
    names = {job_name(i.submission): i for i in intents if i.submission not in found}
    if not names or not ask:
        return found
    try:
        queue = subprocess.run(["squeue", "-h", "--states=all", f"--name={','.join(sorted(names))}", "-o", "%i|%j"],
                               capture_output=True, text=True, timeout=60, check=False)
        why = "" if queue.returncode == 0 else (queue.stderr.strip().splitlines() or ["squeue failed"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    if why:
        raise TrtbenchError(f"cannot ask Slurm whether an interrupted submission made a job ({why}); is squeue on "
                            f"PATH and the cluster up? Nothing is submitted again until it can tell")
    rows = [line.split("|", 1) for line in queue.stdout.splitlines() if "|" in line]
    unseen = sorted(set(names) - {name for _, name in rows})
    if unseen:
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(min(names[n].at for n in unseen) - ACCT_SLACK_S))
        try:
            acct = subprocess.run(["sacct", "-n", "-X", "-P", f"--name={','.join(unseen)}", "-S", since,
                                   "-o", "JobID,JobName"], capture_output=True, text=True, timeout=60, check=False)
            if acct.returncode == 0:  # "Slurm accounting storage is disabled" exits 1: squeue's view is all
                rows += [line.split("|", 1) for line in acct.stdout.splitlines() if "|" in line]
        except (OSError, subprocess.TimeoutExpired):
            pass  # no sacct on this cluster
    for job_id, name in sorted((r for r in rows if JOB_ID.fullmatch(r[0])), key=lambda r: int(r[0])):
        if name in names:
            found.setdefault(names[name].submission, job_id)
    return found


def attached(slurm_dir: Path, point_ids: set[str], recorded: frozenset[str] = frozenset()) -> dict[str, Job]:
    """The points of `point_ids` whose latest job is to be waited on, not submitted again: every one
    except those whose job ended before reaching them, and those whose job wrote a record the store already
    holds (a failed point `--retry-failed` runs again). Jobs adopted for interrupted submissions are written
    to the ledger first, so each is adopted once."""
    known, adopted = _jobs(slurm_dir, point_ids, ask=True)
    if adopted:
        _append(slurm_dir / "jobs.jsonl", [{"point_id": j.point_id, "job_id": j.job_id} for j in adopted])
    jobs = [job for job in known + adopted
            if (written := _record(slurm_dir, job)) is None or written.attempt not in recorded]
    states = _states(sorted({j.job_id for j in jobs}))
    return {job.point_id: job for job in jobs
            if states.get(job.job_id, "") in ACTIVE or started_path(slurm_dir, job).exists()
            or record_path(slurm_dir, job.point_id, job.job_id).exists()}


def job_states(slurm_dir: Path) -> dict[str, tuple[Job, str, bool]]:
    """point id -> (its latest job, Slurm's state of it ("" once Slurm forgot it), whether the job reached
    the point): for `trtbench status`."""
    try:
        known, adopted = _jobs(slurm_dir, None, ask=True)
        states = _states(sorted({j.job_id for j in known + adopted}))
    except TrtbenchError:  # no Slurm here: status still shows what is recorded
        (known, adopted), states = _jobs(slurm_dir, None, ask=False), {}
    jobs = known + adopted
    return {job.point_id: (job, states.get(job.job_id, ""), started_path(slurm_dir, job).exists()) for job in jobs}


def finished_records(slurm_dir: Path, recorded: set[str]) -> list[Record]:
    """The records jobs wrote for points not in `recorded`: what `trtbench report` merges before it reads
    the run (failures from how a job ended are left to the sweep, which knows the point's prediction)."""
    known, announced = _jobs(slurm_dir, None, ask=False)
    found = (_record(slurm_dir, job) for job in known + announced if job.point_id not in recorded)
    return [record for record in found if record is not None]


def record_path(slurm_dir: Path, point_id: str, job_id: str) -> Path:
    """Where a point's job writes its record (read by the controller, kept for the record)."""
    return slurm_dir / f"{point_id}.{job_id}.record.json"


def announced_path(slurm_dir: Path, submission: str) -> Path:
    """Written by a job as it starts: the job id of a submission, for a controller that never read sbatch's
    answer."""
    return slurm_dir / f"{submission}.job"


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
