"""`python -m trtbench.commands.slurm_job RUN_DIR TASK_FILE`: one point, inside its Slurm job.

The controller wrote the task file (the point's axes and id, the backend) and the run directory's spec
before submitting; this runs the point on the GPUs Slurm gave the job (CUDA_VISIBLE_DEVICES) and hands
its record to the controller, atomically, beside the task file (`executors.slurm.record_path`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from trtbench.backends.registry import select_backend
from trtbench.executors.base import Task
from trtbench.executors.slurm import record_path
from trtbench.files import atomic_write
from trtbench.grid import Point, expand
from trtbench.runner import predict, run_point
from trtbench.store import RunStore


def main(argv: list[str]) -> int:
    run_dir, task_file = Path(argv[1]), Path(argv[2])
    task = json.loads(task_file.read_text())
    store = RunStore.open(run_dir)
    spec = store.spec()
    point = Point(tuple((k, v) for k, v in task["axes"]), task["id"])
    selection = select_backend(spec, task["backend"], run_dir)
    # The engine or checkpoint the controller prepared: planned from the whole grid, as the controller
    # planned it (one point's lengths alone would size, and name, another engine), for this point only.
    grid = expand(spec, selection.backend.identity())
    selection.backend.prepare(grid, print, recorded={p.id for p in grid if p.values != point.values})
    record = run_point(selection.backend, predict(selection.companion, point), Task(point, gpus=task["gpus"]))
    atomic_write(record_path(task_file.parent, point.id, os.environ.get("SLURM_JOB_ID", "local")),
                 record.model_dump_json() + "\n")
    print(f"point {point.label}: {record.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
