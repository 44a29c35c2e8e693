"""`python -m trtbench.commands.slurm_job RUN_DIR TASK_FILE`: a job's points, inside its Slurm job.

The controller wrote the task file (the backend, and each point's id, axes and GPU count) and the run
directory's spec before submitting; this runs the points one after another on the GPUs Slurm gave the
job (CUDA_VISIBLE_DEVICES), marks each as started, and hands each record to the controller, atomically,
beside the task file (`executors.slurm.record_path`). First it announces its job id for its submission
(`executors.slurm.announced_path`): a controller killed before it wrote the id adopts the job from it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trtbench.backends.registry import select_backend
from trtbench.errors import RunLost
from trtbench.executors.base import Task
from trtbench.executors.slurm import JOB_ID, Job, announced_path, record_path, started_path
from trtbench.files import atomic_write
from trtbench.grid import Point, expand
from trtbench.runner import predict, run_point
from trtbench.store import RunStore


def main(argv: list[str]) -> int:
    run_dir, task_file = Path(argv[1]), Path(argv[2])
    task = json.loads(task_file.read_text())
    job_id = os.environ.get("SLURM_JOB_ID", "local")
    if "submission" in task and JOB_ID.fullmatch(job_id):  # a task file from before submission ids has none
        atomic_write(announced_path(task_file.parent, task["submission"]), job_id + "\n")
    store = RunStore.open(run_dir)
    spec = store.spec()
    points = [(Point(tuple((k, v) for k, v in p["axes"]), p["id"]), p["gpus"]) for p in task["points"]]
    selection = select_backend(spec, task["backend"], run_dir)
    # The engine or checkpoint the controller prepared: planned from the whole grid, as the controller
    # planned it (one point's lengths alone would size, and name, another engine), for these points only.
    grid = expand(spec, selection.backend.identity())
    mine = [point.values for point, _ in points]
    selection.backend.prepare(grid, print, recorded={p.id for p in grid if p.values not in mine})
    for point, gpus in points:
        started = started_path(task_file.parent, Job(point.id, job_id))
        atomic_write(started, "")
        try:
            record = run_point(selection.backend, predict(selection.companion, point), Task(point, gpus=gpus))
        except RunLost as lost:  # no verdict: as if the job never reached it, so the next sweep submits it again
            started.unlink()
            print(f"point {point.label}: not recorded: {lost}", flush=True)
            continue
        atomic_write(record_path(task_file.parent, point.id, job_id), record.model_dump_json() + "\n")
        print(f"point {point.label}: {record.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
