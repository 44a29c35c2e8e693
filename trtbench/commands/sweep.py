"""`trtbench sweep SPEC`: run (or resume) every point of a spec, then write the report."""

from __future__ import annotations

import shlex
from pathlib import Path

from trtbench.backends.registry import Selection, select_backend
from trtbench.commands.progress import ProgressBar
from trtbench.commands.utils import console, interruptible, report_run, warn
from trtbench.executors.local import LocalExecutor
from trtbench.grid import Point, expand
from trtbench.runner import run_sweep
from trtbench.spec import load_spec
from trtbench.store import RunStore, next_free_dir


def sweep(spec_path: Path, backend: str | None, out: Path | None, fresh: bool, top_n: int, dry_run: bool,
          no_build: bool, plots: bool = True, max_points: int | None = None) -> None:
    spec = load_spec(spec_path)
    run_dir = out or spec.run_dir()
    if fresh:
        run_dir = next_free_dir(run_dir)
    selection = select_backend(spec, backend, run_dir)
    points = expand(spec, selection.backend.identity(), max_points)
    if dry_run:
        print_commands(selection, points)
        return
    selection.backend.prepare(points, console.print, allow_build=not no_build)  # refuses before anything is written
    store = RunStore.create(run_dir, warn)
    console.print(f"[bold]{spec.name}[/]: {len(points)} points -> {run_dir}  ({selection.reason})")
    if selection.backend.capabilities().source.value == "simulated":
        console.print("[yellow]SIMULATED[/]: no GPU run; every number is a prediction of trtbench's simulator")
    with interruptible(f"every finished point is recorded in {run_dir}, the point in flight is not; "
                       f"run the same command again to resume"), ProgressBar(console, selection.backend.name) as bar:
        summary = run_sweep(spec, selection, points, store, LocalExecutor(), bar)
    if summary.adopted:
        console.print(f"upgraded: {summary.adopted} record(s) of a trtbench 0.1.0 run carried over "
                      f"(the old file is kept as results.v0.jsonl)")
    if summary.already_done:
        console.print(f"resumed: {summary.already_done} point(s) already recorded, {summary.ran} run now")
    console.print(f"report: {report_run(run_dir, top_n, plots)}")


def print_commands(selection: Selection, points: list[Point]) -> None:
    """Build commands, then one line per point on stdout: the exact command a measuring backend would run."""
    console.print(f"dry run ({selection.reason}); nothing is run or written")
    for line in selection.backend.prepare(points, console.print, dry_run=True):
        print(line)
    runs = selection.backend.capabilities().runs_commands
    for point in points:
        args = selection.backend.command(point) if runs else None
        print(shlex.join(args) if args else f"# {point.label}: {selection.backend.name} runs no command")
