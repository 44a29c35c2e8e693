"""Records -> one DataFrame, and every ranking the report prints derived from one ordering of it.

Because top-N, best-by-ISL and best-by-OSL all take rows from `ranked()`, no derived table can
disagree with the top-N (the study's OSL=128 row did).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trtbench.records import Record

METRIC_COLUMNS = ("output_tok_per_s", "request_per_s", "total_tok_per_s", "total_latency_s",
                  "avg_latency_s", "avg_concurrency")
MEMORY_COLUMNS = ("gpu_total_gib", "weights_gib", "activation_gib", "overhead_gib", "kv_pool_gib",
                  "kv_tokens", "max_concurrent_seqs", "max_batch_size", "max_num_tokens")
# results.csv columns, in order; documented in the README, so only ever append.
COLUMNS = ("isl", "osl", "requests", "status", "cause", "source", "backend", *METRIC_COLUMNS,
           "total_tokens", *MEMORY_COLUMNS, "point_id", "started_at", "duration_s")


@dataclass(frozen=True)
class Analysis:
    results: pd.DataFrame  # one row per point of the current grid that has a record, grid order
    missing: int  # points of the grid with no record yet (an interrupted sweep)
    stale: int  # records of points no longer in the grid (the spec changed since)


def to_frame(records: list[Record]) -> pd.DataFrame:
    rows = []
    for r in records:
        row = {"isl": r.isl, "osl": r.osl, "requests": r.requests, "status": r.status, "cause": r.cause,
               "source": r.source, "backend": r.backend, "total_tokens": r.requests * (r.isl + r.osl),
               "point_id": r.point_id, "started_at": r.started_at, "duration_s": r.duration_s}
        metrics = r.metrics.model_dump() if r.metrics else {}
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        row.update({c: (r.memory or {}).get(c) for c in MEMORY_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def analyze(records: list[Record], point_ids: list[str]) -> Analysis:
    order = {pid: i for i, pid in enumerate(point_ids)}
    current = sorted((r for r in records if r.point_id in order), key=lambda r: order[r.point_id])
    return Analysis(to_frame(current), len(point_ids) - len(current), len(records) - len(current))


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


def sources(df: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in df["source"].value_counts().items()}
