"""`trtbench sweep SPEC`: run (or resume) every point of a spec, then write the report."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from trtbench.backends.select import Selection, select_backend
from trtbench.backends.trtllm.backend import TrtllmBackend
from trtbench.commands.build import attach_engine
from trtbench.commands.utils import console, report_run
from trtbench.grid import expand
from trtbench.runner import run_sweep
from trtbench.spec import SweepSpec, load_spec
from trtbench.store import RunStore, next_free_dir


def sweep(spec_path: Path, backend: str | None, out: Path | None, fresh: bool, top_n: int, dry_run: bool,
          no_build: bool) -> None:
    spec = load_spec(spec_path)
    run_dir = out or spec.run_dir()
    if fresh:
        run_dir = next_free_dir(run_dir)
    selection = select_backend(spec, backend, run_dir)
    if isinstance(selection.backend, TrtllmBackend) and selection.backend.needs_engine:
        attach_engine(spec, selection.backend, allow_build=not no_build, dry_run=dry_run)
    if dry_run:
        print_commands(spec, selection)
        return
    store = RunStore.create(run_dir)
    console.print(f"[bold]{spec.name}[/]: {len(spec.pairs)} points -> {run_dir}  ({selection.reason})")
    if selection.backend.source == "simulated":
        console.print("[yellow]SIMULATED[/]: no GPU run; every number is a prediction of trtbench's simulator")
    try:
        summary = run_sweep(spec, selection, store, console)
    except KeyboardInterrupt:
        console.print(f"interrupted: every finished point is recorded in {run_dir}; "
                      f"run the same command again to resume")
        raise typer.Exit(130) from None
    if summary.already_done:
        console.print(f"resumed: {summary.already_done} point(s) already recorded, {summary.ran} run now")
    report = report_run(run_dir, top_n)
    console.print(f"report: {report}")


def print_commands(spec: SweepSpec, selection: Selection) -> None:
    """One line per point on stdout: the exact command a measuring backend would run."""
    console.print(f"dry run ({selection.reason}); nothing is run or written")
    for point in expand(spec, selection.backend.identity()):
        args = selection.backend.command(point)
        print(shlex.join(args) if args else f"# {point.label}: simulated, no command")
