"""`trtbench report RUN_DIR`: (re)write report.md and results.csv from a run's records."""

from __future__ import annotations

from pathlib import Path

from trtbench.commands.utils import console, report_run


def report(run_dir: Path, top_n: int, plots: bool = True) -> None:
    console.print(f"report: {report_run(run_dir, top_n, plots)}")
