"""A Slurm cluster: one job per point, each asking for its GPUs, run by `trtbench.commands.slurm_job`
inside the job, which hands the point's record to the run directory (a filesystem the cluster shares).

The controller keeps a ledger (`slurm/jobs.jsonl`: point id -> job id, appended and fsynced before it
waits on the job), polls `squeue --states=all`, and delivers each point exactly once: the record the job
wrote (`slurm/<point>.<job>.record.json`, atomically) when there is one, else a failure from how Slurm
ended the job. A controller that was
killed finds its jobs in the ledger on the next sweep and waits for them instead of submitting again.
Plain `sbatch --parsable` and `squeue` through argument lists; no library.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trtbench.errors import TrtbenchError
from trtbench.executors.base import Observer, Task, Work
from trtbench.files import atomic_write
from trtbench.records import Record, RecordError, Status, parse_record
from trtbench.spec import SlurmSpec

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}
# How Slurm ended a job that left no record: the failure class it is.
ENDINGS = {"TIMEOUT": Status.TIMEOUT, "DEADLINE": Status.TIMEOUT, "OUT_OF_MEMORY": Status.OOM,
           "CANCELLED": Status.ERROR, "NODE_FAIL": Status.CRASH, "PREEMPTED": Status.CRASH, "BOOT_FAIL": Status.CRASH,
           "FAILED": Status.ERROR, "COMPLETED": Status.NO_REPORT}
MARGIN = 1.5  # a job's time limit when the spec sets none: the predicted wall time times this, plus 5 min
POLL_S = 2.0
DEFAULT_MIN = 60  # a job's time limit without a prediction or a spec's time_min


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
        tasks = {t.point.id: t for t in sorted(work.tasks, key=lambda t: -t.expected_s)}
        # Re-attach: a point whose job Slurm ran, runs or queues is never submitted again.
        watched = {job.point_id: job for job in self._ledger() if job.point_id in tasks}
        queue = [t for pid, t in tasks.items() if pid not in watched]
        for point_id in watched:  # re-attached
            observer.started(tasks[point_id])
        try:
            while queue or watched:
                while queue and (self.spec.max_jobs is None or len(watched) < self.spec.max_jobs):
                    task = queue.pop(0)
                    observer.started(task)
                    submitted = self._submit(task)
                    if isinstance(submitted, Job):
                        watched[task.point.id] = submitted
                    else:  # refused at submission
                        record = work.refuse(task, *submitted)
                        work.deliver(record)
                        observer.finished(task, record)
                if self.detach:
                    return
                states = _states(list(watched.values()))
                for point_id, job in list(watched.items()):
                    state = states.get(job.job_id, "")
                    if state in ACTIVE:
                        continue
                    record = self._record(point_id, job) or work.refuse(tasks[point_id], *self._ending(job, state))
                    work.deliver(record)
                    observer.finished(tasks[point_id], record)
                    del watched[point_id]
                if watched:
                    time.sleep(self.poll_s)
        except KeyboardInterrupt:
            if watched:  # the sweep stops: so do its jobs (what finished is recorded)
                subprocess.run(["scancel", *(j.job_id for j in watched.values())], capture_output=True, check=False)
            raise

    def _submit(self, task: Task) -> Job | tuple[Status, str]:
        task_file = self.dir / f"{task.point.id}.task.json"
        atomic_write(task_file, json.dumps({"id": task.point.id, "axes": list(task.point.axes), "gpus": task.gpus,
                                            "backend": self.backend}))
        predicted = math.ceil((task.expected_s * MARGIN + 300) / 60) if task.expected_s else DEFAULT_MIN
        minutes = self.spec.time_min or predicted
        args = ["sbatch", "--parsable", f"--job-name=trtbench-{task.point.id[:8]}",
                f"--comment=trtbench {self.run_dir} {task.point.id}", f"--gres=gpu:{task.gpus}",
                f"--time={minutes}", f"--output={self.dir / task.point.id}.%j.out"]
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
        job = Job(task.point.id, done.stdout.strip().split(";")[0])
        with self.ledger.open("a") as fh:  # before waiting: a killed controller finds the job again
            fh.write(json.dumps({"point_id": job.point_id, "job_id": job.job_id}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return job

    def _ledger(self) -> list[Job]:
        return ledger(self.dir)

    def _record(self, point_id: str, job: Job) -> Record | None:
        """The record the job wrote, if it wrote one."""
        try:
            return parse_record(record_path(self.dir, point_id, job.job_id).read_bytes())
        except (OSError, RecordError):
            return None

    def _ending(self, job: Job, state: str) -> tuple[Status, str]:
        status = ENDINGS.get(state.split()[0] if state else "", Status.ERROR)
        return status, f"Slurm job {job.job_id} ended {state or 'unseen (purged)'} without a record; its output: " \
                       f"{self.dir / job.point_id}.{job.job_id}.out"


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


def job_states(slurm_dir: Path) -> dict[str, tuple[Job, str]]:
    """point id -> (its latest job, Slurm's state of it; "" once Slurm forgot it): for `trtbench status`."""
    jobs = ledger(slurm_dir)
    try:
        states = _states(jobs)
    except (OSError, subprocess.TimeoutExpired):
        states = {}
    return {job.point_id: (job, states.get(job.job_id, "")) for job in jobs}


def record_path(slurm_dir: Path, point_id: str, job_id: str) -> Path:
    """Where a point's job writes its record (read by the controller, kept for the record)."""
    return slurm_dir / f"{point_id}.{job_id}.record.json"


def _states(jobs: list[Job]) -> dict[str, str]:
    """job id -> Slurm state (`squeue --states=all`; a job purged from it is missing)."""
    if not jobs:
        return {}
    args = ["squeue", "-h", "--states=all", "-o", "%i|%T"]
    done = subprocess.run([*args, "-j", ",".join(j.job_id for j in jobs)], capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:  # one purged id fails the whole query: ask one by one
        outs = [subprocess.run([*args, "-j", j.job_id], capture_output=True, text=True, timeout=60, check=False)
                for j in jobs]
        text = "".join(o.stdout for o in outs if o.returncode == 0)
    else:
        text = done.stdout
    return dict(line.split("|", 1) for line in text.splitlines() if "|" in line)
