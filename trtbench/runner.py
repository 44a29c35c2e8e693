"""Plan a sweep (which points still need a record, in what order) and hand them to an executor;
resume by default, failures as data. The runner knows backends only through their seam."""

from __future__ import annotations

import platform
import re
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbench import __version__
from trtbench.backends.base import Backend
from trtbench.backends.registry import Selection
from trtbench.errors import RunLost, TrtbenchError
from trtbench.executors.base import Capacity, Executor, Observer, Task, Work
from trtbench.grid import Point
from trtbench.guided.strategy import Candidate, Plan, Settings, State
from trtbench.guided.strategy import plan as guided_plan
from trtbench.records import Outcome, Prediction, Record, Source, Status, now_iso
from trtbench.spec import RankBy, Strategy, SweepSpec
from trtbench.store import RunStore
from trtbench.upgrade import upgrade_v0
from trtbench.verdict import judge


@dataclass(frozen=True)
class SweepSummary:
    run_dir: Path
    total: int
    already_done: int
    ran: int  # runs made now (each of a point's repeats counts)
    adopted: int  # records of a trtbench 0.1.0 run carried over
    missing: int  # points still without a record (jobs that ended before reaching them; a detached sweep's),
    # those in `lost` aside
    rejudged: dict[str, int] = field(default_factory=dict)  # "timeout -> ok" -> simulated points judged anew
    unplaced: dict[str, str] = field(default_factory=dict)  # point id -> why this machine cannot run it (not run)
    lost: dict[str, str] = field(default_factory=dict)  # point id -> why its run gave no verdict (not recorded)
    guided: Plan | None = None  # a guided sweep's last plan: what it measured, skipped and why


def provenance(selection: Selection) -> dict[str, Any]:
    gpus = selection.gpus
    backend = selection.backend
    return {
        "trtbench": __version__,
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "backend": {**backend.identity().backend, **backend.provenance()},
        "backend_reason": selection.reason,
        "source": backend.capabilities().source.value,
        "gpus": [{"name": g.name, "memory_total_mib": g.memory_total_mib} for g in gpus],
        "driver": gpus[0].driver if gpus else None,
        "command": sys.argv,
    }


MODEL_LOAD_S = 60.0  # added to a point's predicted run: the benchmark loads its model (or engine) first


def todo(points: list[Point], needed: dict[str, int]) -> list[Point]:
    """Each point as many times as it is `needed` (`runs_needed`), round-robin: every point's first run in grid
    order, then every second run, ..., so drift over the sweep spreads over all points rather than posing as a
    difference between them."""
    return [p for round_ in range(max(needed.values(), default=0)) for p in points if needed.get(p.id, 0) > round_]


def repeats_of(spec: SweepSpec, backend: Backend) -> int:
    """`runtime.repeats` for a measuring backend; 1 for the simulator, which predicts the same numbers every time."""
    return spec.runtime.repeats if backend.capabilities().source is Source.MEASURED else 1


def runs_needed(points: list[Point], store: RunStore, repeats: int, retry_failed: bool = False) -> dict[str, int]:
    """How many more runs each point needs to hold `repeats` ok records (`RunStore.samples`). A point whose
    latest record failed is a finding and runs no more, unless `retry_failed` (or its failure is an old
    machine verdict, `machine_verdicts`): then it runs at least once more."""
    latest = {r.point_id: r for r in store.records()}
    oks, again = store.samples(), machine_verdicts(store)
    needed = {}
    for point in points:
        record, missing = latest.get(point.id), repeats - len(oks.get(point.id, []))
        if record is None or record.status is Status.OK:
            needed[point.id] = max(missing, 0)
        else:
            needed[point.id] = max(missing, 1) if retry_failed or point.id in again else 0
    return needed


# What --executor gpus, and --executor slurm, once recorded as `infeasible` for a point wider than their machine
_MACHINE_VERDICT = re.compile(r"needs \d+ GPUs(; executor gpus has \d+"
                              r"|, a node has \d+ \(executor\.slurm\.gpus_per_node\))")


def machine_verdicts(store: RunStore) -> set[str]:
    """The points whose latest record is `--executor gpus`'s or `--executor slurm`'s old `infeasible` for a point
    wider than its machine or node: a fact about that machine, not the point, so a resume runs them again as if
    unrecorded."""
    return {r.point_id for r in store.records()
            if r.status is Status.INFEASIBLE and _MACHINE_VERDICT.fullmatch(r.cause)}


def nothing_placeable(executor: str, unplaced: dict[str, str]) -> TrtbenchError:
    where = "cluster" if executor == "slurm" else "machine"
    return TrtbenchError(f"--executor {executor} can run none of the {len(unplaced)} point(s) to run on this {where} "
                         f"({unplaced_line(unplaced)}); nothing was run or recorded: give it {more_gpus(executor)} "
                         f"or run the sweep elsewhere")


def more_gpus(executor: str) -> str:
    """What would let `executor` place a point wider than its machine (or node)."""
    if executor == "slurm":
        return "bigger nodes (executor.slurm.gpus_per_node, executor.slurm.partition)"
    return "more GPUs (executor.gpus, CUDA_VISIBLE_DEVICES)"


def unplaced_line(unplaced: dict[str, str]) -> str:
    """How many points could not be placed, by reason: `4 point(s): needs 8 GPUs, executor gpus has 4`."""
    return "; ".join(f"{count} point(s): {why}" for why, count in Counter(unplaced.values()).items())


def run_sweep(spec: SweepSpec, selection: Selection, points: list[Point], store: RunStore, executor: Executor,
              observer: Observer, retry_failed: bool = False) -> SweepSummary:
    """Run the `points` of `spec` (`grid.expand` with the backend's identity) that have no record yet (an old
    machine verdict counts as none: `machine_verdicts`), and with `retry_failed` those whose latest record
    failed; each until it holds `runtime.repeats` ok records (`runs_needed`, `todo`). The backend has been
    prepared for them (`Backend.prepare`) before anything was written. Points
    the executor cannot place on this machine are left unrecorded and returned in `unplaced`; when it can
    place none of them, nothing runs and a TrtbenchError says why (exit 2: this machine cannot do the sweep)."""
    backend = selection.backend
    with store.lock():
        store.repair()
        adopted = upgrade_v0(store, spec, backend.name, backend.identity(), points)
        store.merge()  # records a worker submitted after the last controller stopped
        rejudged = rejudge(store, {p.id for p in points}, spec.runtime.timeout_s)
        remaining = todo(points, runs_needed(points, store, repeats_of(spec, backend), retry_failed))
        meta = {"spec_hash": spec.hash(), "point_ids": [p.id for p in points], "started_at": now_iso(),
                "provenance": provenance(selection),
                **({"rejudged": {"timeout_s": spec.runtime.timeout_s, "changes": rejudged}} if rejudged else {})}
        store.write_spec(spec)
        store.write_meta(meta)

        def deliver(record: Record) -> None:
            store.submit(record)
            store.merge()

        already_done = len(points) - len({p.id for p in remaining})
        lost: dict[str, str] = {}

        def execute(tasks: list[Task], predictions: dict[str, Prediction | None]) -> Work:
            observer.begin(len(store.done_ids() & {p.id for p in points}) + len(tasks),
                           len(store.done_ids() & {p.id for p in points}), tasks)
            work = Work(tasks,
                        lambda task: run_point(backend, predictions[task.point.id], task), deliver,
                        lambda task, status, why: refused(backend, predictions[task.point.id], task, status, why),
                        backend.cancel, frozenset(r.attempt for r in store.all_records()))
            executor.execute(work, observer)
            lost.update(work.lost)
            return work

        plan: Plan | None = None
        if guiding(spec, backend):
            def noted(plan: Plan) -> None:  # run.json holds the latest plan: `status` and a report mid-sweep read it
                meta["guided"] = plan.model_dump(mode="json")
                store.write_meta(meta)

            tasks, unplaced, plan = run_guided(spec, selection, points, store, executor.capacity, execute,
                                               retry_failed, noted)
        else:
            predictions = {p.id: predict(selection.companion, p) for p in remaining}
            tasks = tasks_for(spec, remaining, predictions)
            unplaced = execute(tasks, predictions).unplaced
        if tasks and len(unplaced) == len(points) - already_done:
            raise nothing_placeable(executor.name, unplaced)
        store.write_meta({**meta, "finished_at": now_iso()})
        recorded = store.done_ids()
        skipped = {e.point_id for e in plan.entries if e.state is State.PREDICTED} if plan else set()
        unrecorded = {pid: why for pid, why in lost.items() if pid not in recorded}  # a later batch may have run it
        missing = len([p for p in points if p.id not in recorded | skipped | unplaced.keys() | unrecorded.keys()])
    return SweepSummary(store.path, len(points), already_done, sum(t.point.id not in unplaced for t in tasks),
                        adopted, missing, rejudged, unplaced, unrecorded, plan)


def guiding(spec: SweepSpec, backend: Backend) -> bool:
    """A guided spec on a measuring backend: the simulator predicts every point in seconds, so it runs them all."""
    return spec.strategy is Strategy.GUIDED and backend.capabilities().source is Source.MEASURED


def run_guided(spec: SweepSpec, selection: Selection, points: list[Point], store: RunStore, capacity: Capacity,
               execute: Callable[[list[Task], dict[str, Prediction | None]], Work], retry_failed: bool,
               noted: Callable[[Plan], None]) -> tuple[list[Task], dict[str, str], Plan]:
    """Batch after batch: finish the runs owed (a started point's missing repeats; with `retry_failed`, once, the
    points whose latest record failed), else run the batch the strategy chooses from every record so far
    (`guided.strategy.plan`, each plan `noted`), until it chooses none, or a batch records nothing (Slurm jobs
    that ended before reaching their points: the next sweep resumes). Returns every task run, the points no batch
    could place (`Work.unplaced`), and the last plan, made after the last batch."""
    if selection.companion is None:
        raise TrtbenchError("strategy: guided needs the simulator's predictions, and the simulator does not know "
                            "this GPU or model; use strategy: full")
    predictions = {p.id: predict(selection.companion, p) for p in points}
    repeats = repeats_of(spec, selection.backend)
    settings = guided_settings(spec, selection.companion, points, capacity)
    by_id = {p.id: p for p in points}
    ran: list[Task] = []
    unplaced: dict[str, str] = {}
    retry, progress = retry_failed, True
    while True:
        needed = runs_needed(points, store, repeats, retry)
        recorded, retry = store.done_ids(), False
        batch = [p for p in points if p.id in recorded and needed[p.id] > 0 and p.id not in unplaced]
        plan = guided_plan([candidate(spec, p, predictions[p.id]) for p in points if p.id not in unplaced],
                           store.all_records(), settings)
        noted(plan)
        batch = batch or [by_id[pid] for pid in plan.next]
        if not batch or not progress:
            return ran, unplaced, plan
        tasks = tasks_for(spec, todo(batch, needed), predictions)
        before = len(store.all_records())
        fresh = execute(tasks, predictions).unplaced
        progress = len(store.all_records()) > before or bool(fresh.keys() - unplaced.keys())
        unplaced.update(fresh)
        ran += tasks


def candidate(spec: SweepSpec, point: Point, prediction: Prediction | None) -> Candidate:
    at = spec.at(point.values)
    assert prediction is not None  # a guided sweep has the simulator's prediction of every point
    run_s = min(prediction.wall_s or 0.0, at.runtime.timeout_s) if prediction.status in (
        Status.OK, Status.TIMEOUT) else 0.0
    return Candidate(point, at.tp * at.pp, prediction, run_s, MODEL_LOAD_S)


def guided_settings(spec: SweepSpec, companion: Backend, points: list[Point], capacity: Capacity) -> Settings:
    """The spec's `guided:`, ranked as the report ranks (per GPU where the points use different numbers of GPUs,
    unless `rank_by` says otherwise), with the simulator's out-of-sample error on this grid (its worst
    deployment's, `SimBackend.provenance`)."""
    widths = {spec.at(p.values).tp * spec.at(p.values).pp for p in points}
    by = spec.rank_by.unbounded  # one GPU model a grid: its $ per token ranks as throughput per GPU does
    per_gpu = by in PER_GPU_RANKINGS or (by not in TOTAL_RANKINGS and len(widths) > 1)
    error = companion.provenance().get("calibration", {}).get("error_pct") or DEFAULT_ERROR_PCT
    budget = spec.guided.budget_gpu_hours
    return Settings(spec.guided.top_k, spec.guided.confidence, budget * 3600 if budget else None, per_gpu,
                    float(error), capacity)


PER_GPU_RANKINGS = frozenset({RankBy.PER_GPU, RankBy.OUTPUT_TOK_PER_S_PER_GPU, RankBy.USD_PER_MTOK})
TOTAL_RANKINGS = frozenset({RankBy.TOTAL, RankBy.OUTPUT_TOK_PER_S})
DEFAULT_ERROR_PCT = 10.0  # the simulator's error where its calibration states none (its cross-validated MAPE)


def rejudge(store: RunStore, point_ids: set[str], timeout_s: float) -> dict[str, int]:
    """The latest simulated record of each point judged again against `timeout_s` (it changes no prediction, so
    nothing is re-run); a changed verdict is recorded as a new record of the same prediction. Returns how many
    points changed, by "old -> new" verdict."""
    changed: Counter[str] = Counter()
    for record in store.records():
        if record.point_id not in point_ids:
            continue
        judged = judge(record, timeout_s)
        if (judged.status, judged.borderline) == (record.status, record.borderline):
            continue
        store.submit(judged.model_copy(update={"attempt": uuid.uuid4().hex}))
        changed[f"{_verdict(record)} -> {_verdict(judged)}"] += 1
    store.merge()
    return dict(changed)


def _verdict(outcome: Outcome) -> str:
    return "borderline" if outcome.borderline else str(outcome.status)


def tasks_for(spec: SweepSpec, points: list[Point], predictions: dict[str, Prediction | None]) -> list[Task]:
    """One task per run of a point (`todo`): the GPUs it runs on (tp x pp), its expected wall time (the
    simulator's prediction, cut at the per-point timeout, plus a model load; 0 without one) and its round (how
    many runs of the point come before it), so an executor can pack and order them."""
    tasks, rounds = [], Counter[str]()
    for point in points:
        at, predicted = spec.at(point.values), predictions[point.id]
        wall = min(predicted.wall_s, spec.runtime.timeout_s) if predicted is not None and predicted.wall_s else 0.0
        tasks.append(Task(point, gpus=at.tp * at.pp, expected_s=wall + MODEL_LOAD_S if wall else 0.0,
                          round=rounds[point.id]))
        rounds[point.id] += 1
    return tasks


def run_point(backend: Backend, prediction: Prediction | None, task: Task) -> Record:
    point, attempt = task.point, uuid.uuid4().hex
    started_at, t0 = now_iso(), time.monotonic()
    try:
        outcome = backend.run(point, attempt, task.env)
    except RunLost:  # no verdict on the point: nothing to record
        raise
    except Exception as exc:  # a backend bug must not end the sweep: record it and go on
        outcome = Outcome(status=Status.ERROR, cause=f"backend raised {type(exc).__name__}: {exc}",
                          source=backend.capabilities().source)
    return _record(backend, prediction, task, outcome, attempt, started_at, time.monotonic() - t0)


def refused(backend: Backend, prediction: Prediction | None, task: Task, status: Status, why: str) -> Record:
    """A point the executor could not run (a job the cluster refused or ended), and why."""
    outcome = Outcome(status=status, cause=why, source=backend.capabilities().source)
    return _record(backend, prediction, task, outcome, uuid.uuid4().hex, now_iso(), 0.0)


def _record(backend: Backend, prediction: Prediction | None, task: Task, outcome: Outcome, attempt: str,
            started_at: str, duration_s: float) -> Record:
    return Record(**dict(outcome), prediction=prediction, point_id=task.point.id, attempt=attempt,
                  axes=task.point.values, backend=backend.name, started_at=started_at, duration_s=duration_s)


def predict(companion: Backend | None, point: Point) -> Prediction | None:
    return None if companion is None else prediction_of(companion.run(point, "prediction"))


def prediction_of(predicted: Outcome) -> Prediction:
    """What a measured record keeps of the simulator's outcome for its point."""
    metrics = predicted.metrics
    return Prediction(status=predicted.status, cause=predicted.cause, model=predicted.perf_model,
                      output_tok_per_s=metrics.output_tok_per_s if metrics else None,
                      roofline_output_tok_per_s=metrics.roofline_output_tok_per_s if metrics else None,
                      wall_s=predicted.predicted_wall_s)
