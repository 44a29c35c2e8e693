"""`trtbench report RUN_DIR`: (re)write report.md and results.csv from a run's records, first merging
the records Slurm jobs wrote since the controller last looked (a detached sweep's)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from trtbench.commands.console import out
from trtbench.commands.utils import console, report_run, warn
from trtbench.errors import RunBusy
from trtbench.executors.slurm import finished_records
from trtbench.store import RunStore


def report(run_dir: Path, top_n: int, plots: bool = True, usd_per_gpu_hour: float | None = None) -> None:
    merge_slurm(run_dir)
    out.print(f"report: {report_run(run_dir, top_n, plots, usd_per_gpu_hour)}")


def merge_slurm(run_dir: Path) -> None:
    """Each record a Slurm job wrote, into results.jsonl once (a sweep holding the run merges them itself)."""
    if not (run_dir / "slurm").is_dir():
        return
    store = RunStore.open(run_dir, warn)
    with contextlib.suppress(RunBusy), store.lock():
        for record in finished_records(run_dir / "slurm", {r.point_id for r in store.records()}):
            store.submit(record)
        if merged := store.merge():
            console.print(f"merged {len(merged)} point(s) that Slurm jobs recorded")
