"""`trtbench accuracy run SPEC`: trtllm-eval per artifact and the gate against the reference precision.
`trtbench accuracy score GENERATIONS.jsonl`: ROUGE-1/2/L/Lsum of summaries produced anywhere, and the verdict
against a target (MLPerf's Llama-3.1-8B CNN/DailyMail by default). Both exit 0 on pass, 1 on fail."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from trtbench.accuracy import records
from trtbench.accuracy.gate import Gate, Verdict, verdicts
from trtbench.accuracy.records import Artifact
from trtbench.accuracy.rouge import CONFIDENCE, METRICS, RESAMPLES, estimates, read_pairs, score
from trtbench.accuracy.targets import TARGETS, Outcome
from trtbench.backends.base import Evaluates
from trtbench.backends.registry import select_backend
from trtbench.commands.console import out as stdout  # run_spec's `out` is a directory
from trtbench.commands.utils import console, interruptible, report_run, warn
from trtbench.deployment import refuse_unsupported
from trtbench.errors import SpecError
from trtbench.grid import Point, expand
from trtbench.records import Status
from trtbench.spec import AccuracySpec, SweepSpec, load_spec
from trtbench.store import RUN_META


def score_file(path: Path, target: str, as_json: bool) -> None:
    """The table (or JSON) on stdout; a warning on stderr when the file is smaller than the target's set, whose
    score it then only estimates. Exit 0 on pass, 1 on fail or inconclusive."""
    if target not in TARGETS:
        raise SpecError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
    goal = TARGETS[target]
    per_example = score(read_pairs(path))
    n = len(per_example[METRICS[0]])
    if n < goal.samples:
        warn(f"{n:,} generations where the target's set has {goal.samples:,} ({goal.name}): the scores only "
             f"estimate the full set's, hence their {CONFIDENCE:.0%} intervals")
    found = estimates(per_example)
    decision = goal.verdict(found, n)
    if as_json:
        print(json.dumps({"generations": n, "target": goal.name, "target_samples": goal.samples,
                          "confidence": CONFIDENCE, "resamples": RESAMPLES,
                          "scores": {m: {"score": e.score, "ci_low": e.low, "ci_high": e.high}
                                     for m, e in found.items()},
                          "thresholds": decision.needed, "verdict": str(decision.outcome),
                          "passed": decision.outcome is Outcome.PASS, "reason": decision.reason}, indent=2))
    else:
        table = Table(title=f"ROUGE (stemmed, x 100) of {n:,} generations in {escape(str(path))}, "
                            f"{CONFIDENCE:.0%} bootstrap intervals")
        for col in ("Metric", "Score", "Interval", "Reference", "Needed", "Interval vs needed"):
            table.add_column(col, justify="left" if col in ("Metric", "Interval vs needed") else "right")
        for m in METRICS:
            e = found[m]
            table.add_row(m, f"{e.score:.4f}", f"{e.low:.4f}-{e.high:.4f}", f"{goal.reference[m]:.4f}",
                          f"{decision.needed[m]:.4f}", _SIDE[decision.metrics[m]])
        stdout.print(table)
        colour = _COLOUR[decision.outcome]
        stdout.print(f"{escape(goal.name)}: [{colour}]{str(decision.outcome).upper()}[/]: {escape(decision.reason)}",
                     soft_wrap=True)
    if decision.outcome is not Outcome.PASS:
        raise typer.Exit(1)


_COLOUR = {Outcome.PASS: "green", Outcome.FAIL: "red", Outcome.INCONCLUSIVE: "yellow"}
_SIDE = {Outcome.PASS: "[green]above[/]", Outcome.FAIL: "[red]below[/]", Outcome.INCONCLUSIVE: "[yellow]straddles[/]"}


def run_spec(spec_path: Path, out: Path | None, no_build: bool) -> None:
    """trtllm-eval on each artifact of the sweep (resumable: a task already scored is not run again), then
    the gate. Exit 1 when an artifact fails it or could not be checked."""
    spec = load_spec(spec_path)
    acc = spec.accuracy
    if acc is None:
        raise SpecError(f"{spec_path}: no accuracy: section (tasks, datasets, reference precision)")
    run_dir = out or spec.run_dir()
    selection = select_backend(spec, None, run_dir)
    backend = selection.backend
    if not isinstance(backend, Evaluates):
        raise SpecError(f"the {backend.name} backend cannot run trtllm-eval ({selection.reason}); accuracy needs "
                        f"the real model on a GPU: backend trtllm")
    points = expand(spec, backend.identity())
    one_each = first_point_per_artifact(spec, points)
    refuse_unsupported(spec, (p.extra for p in one_each.values()), [g.name for g in selection.gpus])
    backend.prepare(list(one_each.values()), console.print, allow_build=not no_build)
    done = {r.key() for r in records.load(run_dir) if r.status is Status.OK}
    todo = [(a, p, t) for a, p in one_each.items() for t in acc.tasks if (a, t, acc.samples) not in done]
    console.print(f"[bold]{spec.name}[/]: {len(one_each)} artifact(s) x {len(acc.tasks)} task(s), "
                  f"{len(todo)} to run -> {run_dir / records.FILE}")
    with interruptible(f"every finished evaluation is recorded in {run_dir / records.FILE}; run the same command "
                       f"again to resume"):
        for i, (artifact, point, task) in enumerate(todo, 1):
            console.print(f"[{i}/{len(todo)}] {task} on {artifact.label} ...")
            record = backend.evaluate(point, task, acc)
            records.append(run_dir, record)
            said = ", ".join(f"{k} {v:.2f}" for k, v in record.scores.items()) if record.status is Status.OK \
                else f"{record.status}: {record.cause}"
            console.print(f"    {said} ({record.wall_s:,.0f} s, log: {record.log})")
    results = verdicts(records.load_for(run_dir, acc.reference_run), acc, one_each)
    stdout.print(verdict_table(results.values(), acc))
    if (run_dir / RUN_META).is_file():  # the sweep ran: its report now shows the gate
        stdout.print(f"report: {report_run(run_dir)}")
    if any(v.gate in (Gate.FAIL, Gate.UNKNOWN) for v in results.values()):
        raise typer.Exit(1)


def first_point_per_artifact(spec: SweepSpec, points: list[Point]) -> dict[Artifact, Point]:
    """Each artifact the grid builds, with the first point that runs on it."""
    out: dict[Artifact, Point] = {}
    for point in points:
        out.setdefault(records.artifact_of(spec.at(point.values).model_dump(mode="json")), point)
    return out


def verdict_table(results: Iterable[Verdict], acc: AccuracySpec) -> Table:
    table = Table(title=f"Accuracy gate: each score >= {acc.tolerance:g} x the {acc.reference} reference's "
                        f"({acc.samples or 'all'} samples per task)")
    for col in ("Artifact", "Gate", "Scores (change vs reference)", "Why"):
        table.add_column(col)
    colour = {Gate.PASS: "green", Gate.REFERENCE: "cyan", Gate.FAIL: "red", Gate.UNKNOWN: "yellow"}
    for v in results:
        table.add_row(v.artifact.label, f"[{colour[v.gate]}]{v.gate}[/]", v.summary or "-", "; ".join(v.reasons))
    return table
