"""Records -> one DataFrame, and every number the report prints, computed here and tested on records.

Because top-N, best-by-ISL and best-by-OSL all take rows from `ranked()`, no derived table can disagree
with the top-N (the study's OSL=128 row did). A grid with extra axes (TP, precision, ...) is analysed
per group of those axes, and the top-N ranks across groups with the axes as columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from trtbench.accuracy.gate import Gate, Verdict, verdicts
from trtbench.accuracy.records import AccuracyRecord, Artifact, artifact_of
from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import SpecError
from trtbench.records import Record, Source, Status
from trtbench.sla import Bounds, best_under
from trtbench.spec import EXTRA_AXES, SweepSpec

METRIC_COLUMNS = ("output_tok_per_s", "request_per_s", "total_tok_per_s", "total_latency_s",
                  "avg_latency_s", "avg_concurrency")
MEMORY_COLUMNS = ("gpu_total_gib", "weights_gib", "activation_gib", "overhead_gib", "kv_pool_gib",
                  "kv_tokens", "max_concurrent_seqs", "max_batch_size", "max_num_tokens")
# Derived per point: the simulator's prediction (for measured points), the roofline bound, efficiency.
# Per-request percentiles (ms) as trtllm-bench reports them (streaming for TTFT/TPOT) or the simulator
# predicts them; empty where a run reported none.
# column -> the record's key (trtllm-bench's name)
PERCENTILES = {f"{m}_ms_p{q}": f"{m}_p{q}_ms" for m in ("ttft", "tpot", "latency") for q in (50, 90, 95, 99)}
PERCENTILE_COLUMNS = tuple(PERCENTILES)
DERIVED_COLUMNS = ("ttft_ms", "tpot_ms", "per_user_tok_s", *PERCENTILE_COLUMNS, "output_tok_per_s_per_gpu",
                   "peak_memory_gib", "accuracy",
                   "pred_status", "pred_output_tok_per_s", "pred_error_pct", "roofline_output_tok_per_s",
                   "efficiency_pct", "energy_j", "j_per_output_token", "predicted_wall_s")
# What ran, on every row of results.csv / results.parquet (first, whether swept or not), so runs concatenate and
# `trtbench calibrate` / `predict --csv` read them back without the spec.
IDENTITY_COLUMNS = ("model", "gpu", "precision", "kv_cache_dtype", "tp", "pp", "trtllm_version")
# results.csv / results.parquet columns after the identity and axis columns, in order; documented in the README.
COLUMNS = ("isl", "osl", "requests", "status", "cause", "source", "backend", *METRIC_COLUMNS,
           "total_tokens", *MEMORY_COLUMNS, "point_id", "started_at", "duration_s", *DERIVED_COLUMNS)
DISAGREEMENT_PCT = 25.0  # a measurement this far from its prediction is flagged
BALANCED_WITHIN = 0.10  # a balanced production point gives up at most this much token throughput
BAND_WITHIN = 0.10  # an ISL/OSL value is in the best band when its best throughput is this close to the peak


@dataclass(frozen=True)
class Utilisation:
    """GPU telemetry over the measured points."""

    peak_memory_gib: float
    mean_power_w: float
    peak_power_w: float
    energy_kj: float
    best_j_per_output_token: float | None
    gpu_name: str
    driver: str
    mean_sm_clock_mhz: float
    power_limit_w: float | None


@dataclass(frozen=True)
class RunFacts:
    """Where the numbers came from, for the provenance table."""

    start: str | None
    end: str | None
    gpu_hours: float  # measured points' benchmark time x GPUs per point
    command: list[str] | None  # one point's exact command


@dataclass(frozen=True)
class Analysis:
    results: pd.DataFrame  # one row per point of the current grid that has a record, grid order
    missing: int  # points of the grid with no record yet (an interrupted sweep)
    stale: int  # records of points no longer in the grid (the spec changed since)
    axes: list[str]  # extra axes the grid sweeps (group keys), in EXTRA_AXES order
    utilisation: Utilisation | None = None
    facts: RunFacts | None = None
    counts: dict[str, int] = field(default_factory=dict)  # points per source
    sla: pd.DataFrame | None = None  # the best point per ISL/OSL under the spec's `sla:` bounds
    accuracy: dict[Artifact, Verdict] | None = None  # the gate per artifact, where the spec has `accuracy:`


def _effective(r: Record, timeout_s: float) -> tuple[str, str]:
    """A simulated point predicted to outlast the per-point timeout is reported as the timeout it would be."""
    if r.source is Source.SIMULATED and r.status is Status.OK and (r.predicted_wall_s or 0) > timeout_s:
        seqs = r.memory.max_concurrent_seqs if r.memory else None
        held = f"; the KV cache holds {seqs} sequences of {r.isl + r.osl} tokens" if seqs else ""
        return Status.TIMEOUT.value, (f"predicted {r.predicted_wall_s:,.0f} s exceeds the per-point timeout of "
                                      f"{timeout_s:,.0f} s{held}")
    return r.status.value, r.cause


def to_frame(records: list[Record], axes: list[str], timeout_s: float = math.inf,
             parallel: tuple[int, int] = (1, 1)) -> pd.DataFrame:
    """One row per record; `parallel`: the spec's (tp, pp), where a record's axes do not say."""
    rows = []
    for r in records:
        status, cause = _effective(r, timeout_s)
        row: dict[str, Any] = {a: r.axes.get(a) for a in axes}
        row.update({"isl": r.isl, "osl": r.osl, "requests": r.requests, "status": status, "cause": cause,
                    "source": r.source.value, "backend": r.backend, "total_tokens": r.requests * (r.isl + r.osl),
                    "point_id": r.point_id, "started_at": r.started_at, "duration_s": r.duration_s,
                    "predicted_wall_s": r.predicted_wall_s})
        metrics = r.metrics.model_dump() if r.metrics else {}
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        memory = r.memory.model_dump() if r.memory else {}
        row.update({c: memory.get(c) for c in MEMORY_COLUMNS})
        row.update(_derived(r, metrics))
        n_gpus = int(r.axes.get("tp", parallel[0])) * int(r.axes.get("pp", parallel[1]))
        output = metrics.get("output_tok_per_s")
        row["output_tok_per_s_per_gpu"] = output / n_gpus if output else None
        row["peak_memory_gib"] = r.telemetry.peak_memory_used_gib if r.telemetry else None  # measured only
        percentiles = r.metrics.percentiles if r.metrics else {}
        row.update({column: percentiles.get(key) for column, key in PERCENTILES.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*axes, *COLUMNS])


def _derived(r: Record, metrics: dict[str, Any]) -> dict[str, Any]:
    prediction = r.prediction
    output = metrics.get("output_tok_per_s")
    predicted = prediction.output_tok_per_s if prediction else None
    bound = metrics.get("roofline_output_tok_per_s") or (prediction.roofline_output_tok_per_s if prediction else None)
    per_user = metrics.get("per_user_tok_s")
    if per_user is None and metrics.get("avg_latency_s"):
        per_user = r.osl / metrics["avg_latency_s"]  # trtllm-bench's definition: OSL / request latency
    return {
        "ttft_ms": metrics.get("ttft_ms"),
        "tpot_ms": metrics.get("tpot_ms"),
        "per_user_tok_s": per_user,
        "pred_status": prediction.status.value if prediction else None,
        "pred_output_tok_per_s": predicted,
        "pred_error_pct": 100 * (predicted - output) / output if output and predicted else None,
        "roofline_output_tok_per_s": bound,
        "efficiency_pct": 100 * output / bound if output and bound else None,
        "energy_j": metrics.get("energy_j"),
        "j_per_output_token": metrics.get("j_per_output_token"),
    }


def analyze(records: list[Record], point_ids: list[str], spec: SweepSpec,
            accuracy: Sequence[AccuracyRecord] = ()) -> Analysis:
    """`accuracy`: the run's trtllm-eval records; with the spec's `accuracy:` section they gate each row."""
    order = {pid: i for i, pid in enumerate(point_ids)}
    current = sorted((r for r in records if r.point_id in order), key=lambda r: order[r.point_id])
    axes = [a for a in EXTRA_AXES if any(a in r.axes for r in current)]
    df = with_identity(to_frame(current, axes, spec.runtime.timeout_s, (spec.tp, spec.pp)), current, spec)
    gate = None
    if spec.accuracy is not None and not df.empty:  # each row's artifact, from its identity columns
        row_artifacts = [artifact_of(r) for r in df[["precision", "kv_cache_dtype", "tp", "pp"]].to_dict("records")]
        gate = verdicts(accuracy, spec.accuracy, dict.fromkeys(row_artifacts))
        df["accuracy"] = [gate[a].gate.value for a in row_artifacts]
    counts = {str(k): int(v) for k, v in df["source"].value_counts().items()}
    sla = best_under(eligible(df), Bounds.of(spec.sla), axes) if spec.sla and not df.empty else None
    return Analysis(df, len(point_ids) - len(current), len(records) - len(current), axes,
                    utilisation(current), run_facts(current, spec), counts, sla, gate)


def with_identity(df: pd.DataFrame, records: list[Record], spec: SweepSpec) -> pd.DataFrame:
    """`df` (rows in `records` order) with IDENTITY_COLUMNS first: a swept axis as recorded, else the spec's
    value; the GPU as the spec names it (or the one telemetry saw for `gpu: auto`); the TensorRT-LLM release a
    measured point ran, or the one the spec pins."""
    scalars = spec.model_dump(mode="json")
    values: dict[str, list[Any]] = {"model": [spec.model.name] * len(df), "gpu": [_gpu(r, spec) for r in records],
                                    "trtllm_version": [r.detail.get("trtllm_version") or spec.trtllm.version
                                                       for r in records]}
    for column in ("precision", "kv_cache_dtype", "tp", "pp"):
        values[column] = df[column].tolist() if column in df.columns else [scalars[column]] * len(df)
    rest = [c for c in df.columns if c not in IDENTITY_COLUMNS]
    return pd.concat([pd.DataFrame({c: values[c] for c in IDENTITY_COLUMNS}, index=df.index), df[rest]], axis=1)


def _gpu(r: Record, spec: SweepSpec) -> str:
    if spec.gpu != "auto" or r.telemetry is None:
        return spec.gpu
    try:
        return resolve_gpu(r.telemetry.gpu_name).id
    except SpecError:
        return r.telemetry.gpu_name


def eligible(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that may be called best: all but those of an artifact that failed the accuracy gate."""
    return df[df["accuracy"] != Gate.FAIL.value]


def excluded(df: pd.DataFrame) -> pd.DataFrame:
    """Successful points of an artifact that failed the accuracy gate, best first: listed, never ranked."""
    ok = df[(df["status"] == Status.OK.value) & (df["accuracy"] == Gate.FAIL.value)]
    return ok.sort_values("output_tok_per_s", ascending=False, kind="stable")


def groups(a: Analysis) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(axis values, rows) per combination of the extra axes, in grid order; one group without axes."""
    if not a.axes:
        return [({}, a.results)]
    out = []
    for key, frame in a.results.groupby(a.axes, sort=False):
        values = key if isinstance(key, tuple) else (key,)
        out.append((dict(zip(a.axes, values, strict=True)), frame))
    return out


def ranked(df: pd.DataFrame) -> pd.DataFrame:
    """Successful points that passed (or had no) accuracy gate, best output token throughput first; ties keep
    grid order."""
    ok = eligible(df)
    ok = ok[ok["status"] == Status.OK.value]
    return ok.sort_values("output_tok_per_s", ascending=False, kind="stable")


def top(df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    return ranked(df).head(n)


def best_by(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """The best successful point for each value of `key` ("isl" or "osl"), in ascending key order;
    values where every point failed are absent (the failure table lists them)."""
    return ranked(df).groupby(key, sort=True).head(1).sort_values(key)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] != Status.OK.value]


def success_rate(df: pd.DataFrame) -> tuple[int, int]:
    return int((df["status"] == Status.OK.value).sum()), len(df)


def failures_by_status(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in failures(df)["status"].value_counts().items()}


def disagreements(df: pd.DataFrame) -> pd.DataFrame:
    """Measured points whose prediction is off by more than DISAGREEMENT_PCT."""
    measured = df[(df["source"] == Source.MEASURED.value) & df["pred_error_pct"].notna()]
    return measured[measured["pred_error_pct"].abs() > DISAGREEMENT_PCT]


def predicted_vs_measured(df: pd.DataFrame) -> pd.DataFrame:
    """Measured points that have a prediction beside them, with a `flagged` column."""
    measured = df[(df["source"] == Source.MEASURED.value) & df["pred_status"].notna()].copy()
    measured["flagged"] = measured["point_id"].isin(set(disagreements(df)["point_id"]))
    return measured


def band(best: pd.DataFrame, key: str, within: float = BAND_WITHIN) -> list[int]:
    """Values of `key` whose best throughput is within `within` of the overall best."""
    if best.empty:
        return []
    peak = best["output_tok_per_s"].max()
    return sorted(int(v) for v in best.loc[best["output_tok_per_s"] >= (1 - within) * peak, key])


@dataclass(frozen=True)
class Insights:
    """The study's "Key Performance Insights", as facts."""

    isl_band: list[int]
    osl_band: list[int]
    best: pd.Series
    worst: pd.Series
    best_over_worst: float
    drop_pct: float
    fastest: pd.Series  # highest request rate


def insights(df: pd.DataFrame) -> Insights | None:
    ok = ranked(df)
    if ok.empty:
        return None
    best, worst = ok.iloc[0], ok.iloc[-1]
    return Insights(band(best_by(df, "isl"), "isl"), band(best_by(df, "osl"), "osl"), best, worst,
                    best["output_tok_per_s"] / worst["output_tok_per_s"],
                    100 * (1 - worst["output_tok_per_s"] / best["output_tok_per_s"]), _row_of_max(ok, "request_per_s"))


def _row_of_max(df: pd.DataFrame, column: str) -> pd.Series:
    """The first row with the largest value of `column`."""
    return df.iloc[int(df[column].to_numpy().argmax())]


def recommendations(df: pd.DataFrame) -> list[tuple[str, str, pd.Series]]:
    """(goal, the rule that picked it, the row) for maximum throughput, maximum request rate, and a
    balanced production point."""
    ok = ranked(df)
    if ok.empty:
        return []
    near_peak = ok[ok["output_tok_per_s"] >= (1 - BALANCED_WITHIN) * ok["output_tok_per_s"].max()]
    return [
        ("Maximum throughput", "highest output tokens/s", _row_of_max(ok, "output_tok_per_s")),
        ("Maximum request rate", "highest requests/s", _row_of_max(ok, "request_per_s")),
        ("Balanced production", f"highest requests/s among points within {BALANCED_WITHIN:.0%} of the peak "
                                f"output tokens/s", _row_of_max(near_peak, "request_per_s")),
    ]


def efficiency(df: pd.DataFrame) -> pd.DataFrame:
    return ranked(df).dropna(subset=["efficiency_pct"])


def memory_ranges(df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(min, max) over the points that planned or logged a KV pool, per memory column with values."""
    planned = df.dropna(subset=["kv_pool_gib"])
    planned = planned[planned["kv_pool_gib"] > 0]
    out = {}
    for col in MEMORY_COLUMNS:
        values = planned[col].dropna()
        if not values.empty:  # a measured run reports only what trtllm-bench logs
            out[col] = (float(values.min()), float(values.max()))
    return out


def utilisation(records: list[Record]) -> Utilisation | None:
    telemetry = [r.telemetry for r in records if r.telemetry is not None]
    if not telemetry:
        return None
    per_token = [r.metrics.j_per_output_token for r in records if r.metrics and r.metrics.j_per_output_token]
    first = telemetry[0]
    return Utilisation(
        peak_memory_gib=max(t.peak_memory_used_gib for t in telemetry),
        mean_power_w=sum(t.mean_power_w for t in telemetry) / len(telemetry),
        peak_power_w=max(t.peak_power_w for t in telemetry),
        energy_kj=sum(t.energy_j for t in telemetry) / 1000,
        best_j_per_output_token=min(per_token) if per_token else None,
        gpu_name=first.gpu_name, driver=first.driver, mean_sm_clock_mhz=first.mean_sm_clock_mhz,
        power_limit_w=first.power_limit_w,
    )


def run_facts(records: list[Record], spec: SweepSpec) -> RunFacts:
    """Start and end, GPU-hours of the measured points (TP x PP GPUs each), one point's command."""
    ends = [datetime.fromisoformat(r.started_at) + timedelta(seconds=r.duration_s) for r in records]
    gpu_seconds = sum(r.duration_s * int(r.axes.get("tp", spec.tp)) * int(r.axes.get("pp", spec.pp))
                      for r in records if r.source is Source.MEASURED)
    command = next((r.command for r in records if r.command), None)
    return RunFacts(min((r.started_at for r in records), default=None),
                    max(ends).isoformat(timespec="seconds") if ends else None, gpu_seconds / 3600, command)
