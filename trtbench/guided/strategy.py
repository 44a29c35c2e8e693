"""The guided sweep's decision, a pure function of the grid, the simulator's predictions and the records so far:
which points to measure next (a batch as wide as the executor), and why each other point is not measured.

Each unmeasured point's throughput is its prediction times this run's refitted correction (`correction`), with an
interval. A point is skipped when a measured OOM at shorter lengths or a smaller batch proves it out of memory,
when the simulator predicts it fails, or when it cannot enter the measured top k but with a probability under
1 - confidence (dominated). The next batch is the points of highest expected improvement over the k-th best per
GPU-second, chosen together (each pick counted as measured at its prediction before the next is chosen). The
sweep stops when nothing undominated is left (the top k is settled) or the budget is spent. Resuming a run
recomputes the same decision from its records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict

from trtbench.executors.base import Capacity
from trtbench.grid import Point
from trtbench.guided.correction import REGIMES, Correction, features, prior_sd, refit
from trtbench.precision import Named
from trtbench.records import Prediction, Record, Status

GROWS = ("isl", "osl", "max_batch_size", "max_num_tokens", "concurrency")  # more of these never needs less memory
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Candidate:
    """A grid point as the strategy sees it: its GPUs (TP x PP), the simulator's prediction, and what a run of it
    is predicted to cost before any correction: the benchmark (capped at the timeout) and the model load."""

    point: Point
    gpus: int
    prediction: Prediction
    run_s: float
    load_s: float


@dataclass(frozen=True)
class Settings:
    top_k: int
    confidence: float
    budget_gpu_s: float | None
    per_gpu: bool  # ranked by output tokens/s per GPU (as the report ranks), else in total
    error_pct: float  # the simulator's out-of-sample error on this grid (`calibration.coverage`)
    capacity: Capacity = field(default_factory=Capacity)


class State(Named):
    MEASURED = "measured"
    FAILED = "failed"
    PREDICTED = "predicted"  # not measured: `reason` says why
    NEXT = "next"  # chosen for the batch about to run


class Reason(Named):
    DOMINATED = "dominated"
    OOM_BOUNDARY = "beyond a measured OOM"
    PREDICTED_FAILURE = "predicted to fail"
    BUDGET = "budget"
    QUEUED = "not yet reached"  # undominated, left for a later batch


class Entry(BaseModel):
    """One grid point's place in the plan. Rates are output tokens/s (per GPU where the plan ranks per GPU):
    measured (mean over the point's ok runs) or the refitted prediction with its interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point_id: str
    label: str
    state: State
    value: float | None = None
    low: float | None = None
    high: float | None = None
    simulated: float | None = None  # the simulator's own prediction, before this run's correction
    p_top: float | None = None  # probability that it enters the measured top k
    reason: Reason | None = None
    why: str = ""  # the evidence: the OOM that proves it, the probability, the predicted failure, the status
    gpu_s: float = 0.0  # measured GPU time of its runs, else its predicted cost


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int
    confidence: float
    per_gpu: bool
    used_gpu_s: float  # every run of the grid's points so far, x its GPUs
    full_gpu_s: float  # what measuring every point is predicted to cost (refitted)
    budget_gpu_s: float | None
    settled: bool  # no unmeasured point enters the top k but with a probability under 1 - confidence
    stopped: str  # "" (more to run), "settled", "budget"
    winner: str | None  # the best measured point
    p_beats_winner: float  # probability that some unmeasured point (predicted to run) beats it
    correction: dict[str, float]  # regime -> the refitted multiplicative factor on the simulator (its mean point)
    scatter_pct: float  # the residual scatter of the refitted model, log-space sd in %
    next: list[str]
    entries: list[Entry]


def objective(record: Record, gpus: int, per_gpu: bool) -> float:
    assert record.metrics is not None  # ok records carry metrics
    return record.metrics.output_tok_per_s / (gpus if per_gpu else 1)


def record_gpu_s(record: Record, gpus: int) -> float:
    """A run's GPU time: its wall time, never less than the benchmark time it reported, x its GPUs."""
    benchmark = record.metrics.total_latency_s if record.metrics else 0.0
    return max(record.duration_s, benchmark) * gpus


def proven_oom(point: Point, failed: Sequence[Point]) -> Point | None:
    """A measured OOM that proves `point` out of memory: same deployment, and no length or batch axis smaller."""
    mine = point.values
    for oom in failed:
        theirs = oom.values
        if all(theirs.get(axis) == value for axis, value in mine.items() if axis not in (*GROWS, "requests")) and \
                all(int(mine[axis]) >= int(theirs[axis]) for axis in GROWS if axis in mine and axis in theirs):
            return oom
    return None


def plan(candidates: Sequence[Candidate], all_records: Sequence[Record], settings: Settings) -> Plan:
    """The state of every candidate and the next batch, from the records of the grid's points so far."""
    by_id = {c.point.id: c for c in candidates}
    runs = [r for r in all_records if r.point_id in by_id]
    latest = {r.point_id: r for r in runs}
    oks: dict[str, list[Record]] = {}
    for r in runs:
        if r.status is Status.OK:
            oks.setdefault(r.point_id, []).append(r)
    used = sum(record_gpu_s(r, by_id[r.point_id].gpus) for r in runs)
    measured = {pid: float(np.mean([objective(r, by_id[pid].gpus, settings.per_gpu) for r in rs]))
                for pid, rs in oks.items()}
    failed = {pid: r for pid, r in latest.items() if pid not in measured}
    ooms = [by_id[pid].point for pid, r in failed.items() if r.status is Status.OOM]

    x_all = features([c.point for c in candidates])
    row = {c.point.id: i for i, c in enumerate(candidates)}
    simulated = {c.point.id: _simulated(c, settings.per_gpu) for c in candidates}
    fit_ids = [pid for pid in measured if simulated[pid]]
    sd = prior_sd(settings.error_pct)
    corr = refit(x_all, x_all[[row[p] for p in fit_ids], :],
                 np.array([math.log(measured[p] / simulated[p]) for p in fit_ids]), sd)

    entries: dict[str, Entry] = {}
    open_ids: list[str] = []
    for c in candidates:
        pid = c.point.id
        if pid in measured:
            entries[pid] = Entry(point_id=pid, label=c.point.label, state=State.MEASURED, value=measured[pid],
                                 simulated=simulated[pid] or None, gpu_s=_spent(runs, pid, c.gpus))
        elif pid in failed:
            entries[pid] = Entry(point_id=pid, label=c.point.label, state=State.FAILED, why=_failure(failed[pid]),
                                 simulated=simulated[pid] or None, gpu_s=_spent(runs, pid, c.gpus))
        elif c.prediction.status is not Status.OK:
            entries[pid] = Entry(point_id=pid, label=c.point.label, state=State.PREDICTED,
                                 reason=Reason.PREDICTED_FAILURE, why=_failure(c.prediction), gpu_s=_cost(c, 1.0))
        elif (oom := proven_oom(c.point, ooms)) is not None:
            entries[pid] = Entry(point_id=pid, label=c.point.label, state=State.PREDICTED, simulated=simulated[pid],
                                 reason=Reason.OOM_BOUNDARY, why=f"OOM measured at {oom.label}", gpu_s=_cost(c, 1.0))
        else:
            open_ids.append(pid)

    x_open = x_all[[row[p] for p in open_ids], :]
    log_factor, sd_open = corr.predict(x_open)
    log_mu = np.array([math.log(simulated[p]) for p in open_ids]) + log_factor
    best = sorted(measured.values(), reverse=True)
    threshold = math.log(best[settings.top_k - 1]) if len(best) >= settings.top_k else None
    z = _NORMAL.inv_cdf((1 + settings.confidence) / 2)
    alpha = 1 - settings.confidence
    p_top = [_above(m, s, threshold) for m, s in zip(log_mu, sd_open, strict=True)]
    undominated = [i for i, p in enumerate(p_top) if p >= alpha]
    full = used + sum(_cost(by_id[p], math.exp(m) / simulated[p]) for p, m in zip(open_ids, log_mu, strict=True))
    full += sum(e.gpu_s for pid, e in entries.items() if e.state is State.PREDICTED)
    budget_left = math.inf if settings.budget_gpu_s is None else settings.budget_gpu_s - used
    chosen = _batch(candidates, open_ids, undominated, log_mu, corr, x_open, measured, simulated, settings,
                    budget_left, by_id)
    stopped = "" if chosen else "settled" if not undominated else "budget"
    chosen_set = set(chosen)
    for i, pid in enumerate(open_ids):
        c, mu, s = by_id[pid], float(log_mu[i]), float(sd_open[i])
        if pid in chosen_set:
            state, reason, why = State.NEXT, None, ""
        elif i not in undominated:
            state, reason = State.PREDICTED, Reason.DOMINATED
            why = f"enters the top {settings.top_k} with a probability under {alpha:.0%}"
        else:
            state, why = State.PREDICTED, ""
            reason = Reason.BUDGET if stopped == "budget" else Reason.QUEUED
        entries[pid] = Entry(point_id=pid, label=c.point.label, state=state, value=math.exp(mu),
                             low=math.exp(mu - z * s), high=math.exp(mu + z * s), simulated=simulated[pid],
                             p_top=p_top[i], reason=reason, why=why, gpu_s=_cost(c, math.exp(mu) / simulated[pid]))
    winner = max(measured, key=lambda p: measured[p], default=None)
    top = math.log(measured[winner]) if winner else None
    p_none = math.prod(1 - _above(m, s, top) for m, s in zip(log_mu, sd_open, strict=True))
    regimes = x_all[:, 1:1 + len(REGIMES)]
    mean_row = x_all.mean(axis=0) if len(x_all) else np.zeros(x_all.shape[1])
    correction = {r: corr.factor(np.concatenate([mean_row[:1], np.eye(len(REGIMES))[k], mean_row[1 + len(REGIMES):]]))
                  for k, r in enumerate(REGIMES) if regimes[:, k].any()}
    return Plan(top_k=settings.top_k, confidence=settings.confidence, per_gpu=settings.per_gpu, used_gpu_s=used,
                full_gpu_s=full, budget_gpu_s=settings.budget_gpu_s, settled=not undominated, stopped=stopped,
                winner=winner, p_beats_winner=1 - p_none if winner else 1.0, correction=correction,
                scatter_pct=100 * corr.noise, next=chosen, entries=[entries[c.point.id] for c in candidates])


def _batch(candidates: Sequence[Candidate], open_ids: list[str], undominated: list[int], log_mu: np.ndarray,
           corr: Correction, x_open: np.ndarray, measured: Mapping[str, float], simulated: Mapping[str, float],
           settings: Settings, budget_left: float, by_id: Mapping[str, Candidate]) -> list[str]:
    """Up to the executor's capacity, the undominated points of highest expected improvement over the k-th best
    per GPU-second (before k points are measured: of highest optimistic value), each pick then counted as
    measured at its predicted value, so the batch spreads over what is still uncertain."""
    chosen: list[str] = []
    values = sorted((math.log(v) for v in measured.values()), reverse=True)
    left = list(undominated)
    gpus = 0
    cap = settings.capacity
    while left and len(chosen) < cap.points and (cap.gpus is None or gpus < cap.gpus):
        mu, sd = log_mu[left], corr.predict(x_open[left])[1]
        threshold = values[settings.top_k - 1] if len(values) >= settings.top_k else None
        costs = np.array([_cost(by_id[open_ids[i]], math.exp(log_mu[i]) / simulated[open_ids[i]]) for i in left])
        if threshold is None:
            score = mu + sd
        else:
            z = (mu - threshold) / sd
            score = sd * (z * _cdf(z) + _pdf(z)) / costs
        order = [left[j] for j in np.argsort(-score, kind="stable") if costs[j] <= budget_left]
        if not order:
            break
        pick = order[0]
        chosen.append(open_ids[pick])
        budget_left -= costs[left.index(pick)]
        gpus += by_id[open_ids[pick]].gpus
        corr = corr.observed(x_open[pick])
        values = sorted([*values, float(log_mu[pick])], reverse=True)
        left.remove(pick)
    return chosen


def _cdf(z: np.ndarray) -> np.ndarray:
    return np.array([_NORMAL.cdf(float(v)) for v in z])


def _pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)


def _above(mu: float, sd: float, threshold: float | None) -> float:
    """P(a normal of mean `mu`, sd `sd` exceeds `threshold`); 1 without a threshold (fewer than k measured)."""
    return 1.0 if threshold is None else 1 - _NORMAL.cdf((threshold - mu) / sd)


def _simulated(c: Candidate, per_gpu: bool) -> float:
    rate = c.prediction.output_tok_per_s if c.prediction.status is Status.OK else None
    return (rate or 0.0) / (c.gpus if per_gpu else 1)


def _cost(c: Candidate, speedup: float) -> float:
    """Predicted GPU-seconds of one run: the benchmark at the refitted speed, and the model load."""
    return (c.run_s / max(speedup, 1e-6) + c.load_s) * c.gpus


def _spent(runs: Sequence[Record], pid: str, gpus: int) -> float:
    return sum(record_gpu_s(r, gpus) for r in runs if r.point_id == pid)


def _failure(outcome: Record | Prediction) -> str:
    return f"{outcome.status}: {outcome.cause}" if outcome.cause else str(outcome.status)
