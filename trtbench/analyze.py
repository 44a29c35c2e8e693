"""Records -> one DataFrame, and every ranking the report prints derived from one ordering of it.

Because top-N, best-by-ISL and best-by-OSL all take rows from `ranked()`, no derived table can
disagree with the top-N (the study's OSL=128 row did).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from trtbench.records import Record

METRIC_COLUMNS = ("output_tok_per_s", "request_per_s", "total_tok_per_s", "total_latency_s",
                  "avg_latency_s", "avg_concurrency")
MEMORY_COLUMNS = ("gpu_total_gib", "weights_gib", "activation_gib", "overhead_gib", "kv_pool_gib",
                  "kv_tokens", "max_concurrent_seqs", "max_batch_size", "max_num_tokens")
# Derived per point: the simulator's prediction (for measured points), the roofline bound, efficiency.
DERIVED_COLUMNS = ("ttft_ms", "tpot_ms", "per_user_tok_s", "pred_status", "pred_output_tok_per_s",
                   "pred_error_pct", "roofline_output_tok_per_s", "efficiency_pct", "energy_j",
                   "j_per_output_token")
# results.csv / results.parquet columns, in order; documented in the README, so only ever append.
COLUMNS = ("isl", "osl", "requests", "status", "cause", "source", "backend", *METRIC_COLUMNS,
           "total_tokens", *MEMORY_COLUMNS, "point_id", "started_at", "duration_s", *DERIVED_COLUMNS)
DISAGREEMENT_PCT = 25.0  # a measurement this far from its prediction is flagged
BALANCED_WITHIN = 0.10  # a balanced production point gives up at most this much token throughput


@dataclass(frozen=True)
class Analysis:
    results: pd.DataFrame  # one row per point of the current grid that has a record, grid order
    missing: int  # points of the grid with no record yet (an interrupted sweep)
    stale: int  # records of points no longer in the grid (the spec changed since)
    records: list[Record]  # the current points' records, for what the frame does not carry (provenance)


def to_frame(records: list[Record]) -> pd.DataFrame:
    rows = []
    for r in records:
        row = {"isl": r.isl, "osl": r.osl, "requests": r.requests, "status": r.status, "cause": r.cause,
               "source": r.source, "backend": r.backend, "total_tokens": r.requests * (r.isl + r.osl),
               "point_id": r.point_id, "started_at": r.started_at, "duration_s": r.duration_s}
        metrics = r.metrics.model_dump() if r.metrics else {}
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        row.update({c: (r.memory or {}).get(c) for c in MEMORY_COLUMNS})
        row.update(_derived(r, metrics))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _derived(r: Record, metrics: dict[str, Any]) -> dict[str, Any]:
    prediction = r.prediction or {}
    output = metrics.get("output_tok_per_s")
    predicted = prediction.get("output_tok_per_s")
    bound = metrics.get("roofline_output_tok_per_s") or prediction.get("roofline_output_tok_per_s")
    per_user = metrics.get("per_user_tok_s")
    if per_user is None and metrics.get("avg_latency_s"):
        per_user = r.osl / metrics["avg_latency_s"]  # trtllm-bench's definition: OSL / request latency
    return {
        "ttft_ms": metrics.get("ttft_ms"),
        "tpot_ms": metrics.get("tpot_ms"),
        "per_user_tok_s": per_user,
        "pred_status": prediction.get("status"),
        "pred_output_tok_per_s": predicted,
        "pred_error_pct": 100 * (predicted - output) / output if output and predicted else None,
        "roofline_output_tok_per_s": bound,
        "efficiency_pct": 100 * output / bound if output and bound else None,
        "energy_j": metrics.get("energy_j"),
        "j_per_output_token": metrics.get("j_per_output_token"),
    }


def analyze(records: list[Record], point_ids: list[str]) -> Analysis:
    order = {pid: i for i, pid in enumerate(point_ids)}
    current = sorted((r for r in records if r.point_id in order), key=lambda r: order[r.point_id])
    return Analysis(to_frame(current), len(point_ids) - len(current), len(records) - len(current), current)


def ranked(df: pd.DataFrame) -> pd.DataFrame:
    """Successful points, best output token throughput first; ties keep grid order."""
    ok = df[df["status"] == "ok"]
    return ok.sort_values("output_tok_per_s", ascending=False, kind="stable")


def top(df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    return ranked(df).head(n)


def best_by(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """The best successful point for each value of `key` ("isl" or "osl"), in ascending key order;
    values where every point failed are absent (the failure table lists them)."""
    return ranked(df).groupby(key, sort=True).head(1).sort_values(key)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] != "ok"]


def success_rate(df: pd.DataFrame) -> tuple[int, int]:
    return int((df["status"] == "ok").sum()), len(df)


def disagreements(df: pd.DataFrame) -> pd.DataFrame:
    """Measured points whose prediction is off by more than DISAGREEMENT_PCT."""
    measured = df[(df["source"] == "measured") & df["pred_error_pct"].notna()]
    return measured[measured["pred_error_pct"].abs() > DISAGREEMENT_PCT]


def band(best: pd.DataFrame, key: str, within: float = 0.10) -> list[int]:
    """Values of `key` whose best throughput is within `within` of the overall best."""
    if best.empty:
        return []
    peak = best["output_tok_per_s"].max()
    return sorted(int(v) for v in best.loc[best["output_tok_per_s"] >= (1 - within) * peak, key])


def recommendations(df: pd.DataFrame) -> list[tuple[str, str, pd.Series]]:
    """(goal, the rule that picked it, the row) for maximum throughput, maximum request rate, and a
    balanced production point."""
    ok = ranked(df)
    if ok.empty:
        return []
    near_peak = ok[ok["output_tok_per_s"] >= (1 - BALANCED_WITHIN) * ok["output_tok_per_s"].max()]
    return [
        ("Maximum throughput", "highest output tokens/s", ok.loc[ok["output_tok_per_s"].idxmax()]),
        ("Maximum request rate", "highest requests/s", ok.loc[ok["request_per_s"].idxmax()]),
        ("Balanced production", f"highest requests/s among points within {BALANCED_WITHIN:.0%} of the peak "
                                f"output tokens/s", near_peak.loc[near_peak["request_per_s"].idxmax()]),
    ]


def sources(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in df["source"].value_counts().items()}
