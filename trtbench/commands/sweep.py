"""`trtbench sweep SPEC`: run (or resume) every point of a spec, then write the report."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import get_args

import typer

from trtbench.analyze import tally
from trtbench.backends.registry import Selection, select_backend
from trtbench.commands.console import out as stdout
from trtbench.commands.progress import ProgressBar
from trtbench.commands.utils import console, interruptible, reported, warn
from trtbench.deployment import refuse_unsupported
from trtbench.drift import Change, changes, measured
from trtbench.errors import SpecError, StoreError
from trtbench.executors.base import Executor
from trtbench.executors.gpus import GpuExecutor, node_gpus
from trtbench.executors.local import LocalExecutor
from trtbench.executors.slurm import SlurmExecutor
from trtbench.grid import IdentityRule, Point, expand
from trtbench.guided.section import summary as guided_summary
from trtbench.runner import machine_verdicts, more_gpus, nothing_placeable, repeats_of, run_sweep, unplaced_line
from trtbench.spec import EXECUTORS, Strategy, SweepSpec, load_spec
from trtbench.store import RUN_META, SPEC, RunStore, next_free_dir
from trtbench.upgrade import recorded_ids


def sweep(spec_path: Path, backend: str | None, out: Path | None, fresh: bool, top_n: int, dry_run: bool,
          no_build: bool, plots: bool = True, max_points: int | None = None, update: bool = False,
          executor: str | None = None, detach: bool = False, retry_failed: bool = False, strict: bool = False,
          repeats: int | None = None, strategy: str | None = None, budget_gpu_hours: float | None = None) -> None:
    """Exit status: 0 when at least one point is ok (failures are findings), 1 when none is, or with `strict`
    when any point failed, or when the executor could not place some points on this machine (they ran
    nowhere and have no record: the sweep is incomplete, its results are real, so 1 as for other results
    that need a look; 2 stays for a sweep that did nothing, as when it can place no point at all). `repeats`
    overrides `runtime.repeats` (and is recorded with the spec); `strategy` and `budget_gpu_hours` the spec's
    `strategy` and `guided.budget_gpu_hours`."""
    spec = load_spec(spec_path)
    if repeats is not None:
        spec = spec.model_copy(update={"runtime": spec.runtime.model_copy(update={"repeats": repeats})})
    spec = with_strategy(spec, strategy, budget_gpu_hours)
    run_dir = out or spec.run_dir()
    if fresh:
        run_dir = next_free_dir(run_dir)
    selection = select_backend(spec, backend, run_dir, dry_run)
    runner = make_executor(spec, executor, run_dir, selection.backend.name, detach)
    if repeats_of(spec, selection.backend) > 1 and isinstance(runner, SlurmExecutor):
        raise SpecError(f"runtime.repeats {spec.runtime.repeats} needs the local or gpus executor (the slurm executor "
                        f"runs a point once per job); pass --executor local or gpus")
    points = expand(spec, selection.backend.identity(), max_points)
    refuse_unsupported(spec, (p.extra for p in points), [g.name for g in selection.gpus])
    if dry_run:
        print_commands(selection, points)
        return
    rule = selection.backend.identity()
    edits = recorded_edits(run_dir, spec, rule, update)
    done: set[str] = set()
    if (run_dir / RUN_META).is_file():
        seen = RunStore(run_dir, warn=lambda _: None)
        done = recorded_ids(seen, spec, selection.backend.name, rule, points, retry_failed) - machine_verdicts(seen)
        done -= {pid for pid, oks in seen.samples().items() if len(oks) < repeats_of(spec, selection.backend)}
    if isinstance(runner, GpuExecutor | SlurmExecutor):  # too small for every point: say so before building engines
        wide = {p.id: why for p in points if p.id not in done
                and (why := runner.unplaceable(spec.at(p.values).tp * spec.at(p.values).pp))}
        if wide and len(wide) == len([p for p in points if p.id not in done]):
            raise nothing_placeable(runner.name, wide)
    # Engines and checkpoints for what still runs; refuses before anything is written.
    selection.backend.prepare(points, console.print, allow_build=not no_build, recorded=done)
    store = RunStore.create(run_dir, warn)
    if edits:
        console.print(f"spec edited since the last sweep in {run_dir}: {'; '.join(map(str, edits))}")
    console.print(f"[bold]{spec.name}[/]: {len(points)} points -> {run_dir}  ({selection.reason})")
    if selection.backend.capabilities().source.value == "simulated":
        console.print("[yellow]SIMULATED[/]: no GPU run; every number is a prediction of trtbench's simulator")
        if spec.runtime.repeats > 1:
            console.print(f"repeats {spec.runtime.repeats} ignored: the simulator predicts the same numbers every "
                          f"time, so each point runs once")
        if spec.strategy is Strategy.GUIDED:
            console.print("strategy guided: the simulator predicts every point in seconds, so each one is predicted")
    with interruptible(f"every finished point is recorded in {run_dir}, the point in flight is not; "
                       f"run the same command again to resume"), ProgressBar(console, selection.backend.name) as bar:
        summary = run_sweep(spec, selection, points, store, runner, bar, retry_failed)
    if detach:
        console.print(f"submitted: the points run as Slurm jobs; `trtbench status {run_dir}` shows them, and the same "
                      f"`trtbench sweep` merges what they recorded")
        return
    if summary.adopted:
        console.print(f"upgraded: {summary.adopted} record(s) of a trtbench 0.1.0 run carried over "
                      f"(the old file is kept as results.v0.jsonl)")
    if summary.already_done:
        kept = "recorded ok" if retry_failed else "already recorded"
        console.print(f"resumed: {summary.already_done} point(s) {kept}, {summary.ran} run now")
    for change, count in summary.rejudged.items():
        console.print(f"re-judged against runtime.timeout_s {spec.runtime.timeout_s:,.0f} s (nothing re-run): "
                      f"{count} simulated point(s) {change}")
    if summary.missing:
        console.print(f"[yellow]not run[/]: {summary.missing} point(s) have no record (their Slurm jobs ended before "
                      f"reaching them); the same command submits them again")
    if summary.lost:
        console.print(f"[yellow]not recorded[/]: {unplaced_line(summary.lost)}; no verdict on the benchmark, so the "
                      f"point was left without a record: the same command runs it again")
    if summary.unplaced:
        console.print(f"[yellow]not run here[/]: {unplaced_line(summary.unplaced)}; left without a record, so a sweep "
                      f"with {more_gpus(runner.name)} runs them: exit status 1")
    if summary.guided:
        console.print(guided_summary(summary.guided))
    path, analysis = reported(run_dir, top_n, plots)
    counts = tally(analysis)
    stdout.print(f"report: {path}")
    stdout.print(counts.line(), style="red" if not counts.ok else "yellow" if counts.failures else "green")
    if not counts.ok:
        console.print("no point succeeded: exit status 1 (the failures and their causes are in the report)")
        raise typer.Exit(1)
    if strict and counts.failures:
        console.print(f"--strict: {counts.failures} point(s) failed: exit status 1")
        raise typer.Exit(1)
    if summary.unplaced:
        raise typer.Exit(1)


def with_strategy(spec: SweepSpec, strategy: str | None, budget_gpu_hours: float | None) -> SweepSpec:
    """`--strategy` and `--budget-gpu-hours` over the spec's; a budget only means something to a guided sweep."""
    if strategy is not None:
        if strategy not in {s.value for s in Strategy}:
            raise SpecError(f"--strategy {strategy!r}: choose one of {', '.join(s.value for s in Strategy)}")
        spec = spec.model_copy(update={"strategy": Strategy(strategy)})
    if budget_gpu_hours is not None:
        if spec.strategy is not Strategy.GUIDED:
            raise SpecError("--budget-gpu-hours needs --strategy guided (a full sweep runs every point)")
        spec = spec.model_copy(update={"guided": spec.guided.model_copy(update={"budget_gpu_hours": budget_gpu_hours})})
    return spec


def make_executor(spec: SweepSpec, kind: str | None, run_dir: Path, backend: str, detach: bool = False) -> Executor:
    """`--executor`, else the spec's `executor.kind`."""
    kind = kind or spec.executor.kind
    if kind not in get_args(EXECUTORS):
        raise SpecError(f"--executor {kind!r}: choose one of {', '.join(get_args(EXECUTORS))}")
    if detach and kind != "slurm":
        raise SpecError(f"--detach needs --executor slurm (the {kind} executor runs points in this process)")
    if kind == "gpus":
        return GpuExecutor(node_gpus(spec.executor.gpus))
    if kind == "slurm":
        return SlurmExecutor(run_dir, backend, spec.executor.slurm, detach=detach)
    return LocalExecutor()


def recorded_edits(run_dir: Path, spec: SweepSpec, rule: IdentityRule, update: bool) -> list[Change]:
    """How `spec` differs from the one `run_dir` recorded. An edit that changes what is measured (the
    grid, the requests, a field behind the point ids) is refused unless `update` adopts it."""
    recorded = run_dir / SPEC
    if not recorded.is_file():
        return []
    try:
        edits = changes(load_spec(recorded), spec)
    except SpecError as exc:
        raise StoreError(f"{run_dir} holds a spec this trtbench cannot read ({exc}); use --fresh or --out DIR"
                         ) from None
    measuring = [edit for edit in edits if measured(edit, rule)]
    if measuring and not update:
        shown = "; ".join(map(str, measuring[:3])) + (f"; and {len(measuring) - 3} more" if len(measuring) > 3 else "")
        raise SpecError(f"{run_dir} was recorded with another spec ({shown}); use --fresh for a new run directory, "
                        f"a new name: (or --out DIR), or --update to adopt the edited spec here (the points both "
                        f"specs share keep their records)")
    return edits


def print_commands(selection: Selection, points: list[Point]) -> None:
    """Build commands, then one line per point on stdout: the exact command a measuring backend would run."""
    console.print(f"dry run ({selection.reason}); nothing is run or written")
    for line in selection.backend.prepare(points, console.print, dry_run=True):
        print(line)
    runs = selection.backend.capabilities().runs_commands
    for point in points:
        args = selection.backend.command(point) if runs else None
        print(shlex.join(args) if args else f"# {point.label}: {selection.backend.name} runs no command")
