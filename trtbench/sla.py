"""The SLA answer: per (ISL, OSL), the point with the most output tokens/s per GPU whose p95 latencies stay
within the given bounds, and what stops the next concurrency step."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from trtbench.spec import SlaSpec

PRICED = ("usd_per_mtok", "usd_per_mtok_total")  # the answer's cost, where the run has a price
BOUNDED = {"ttft": "ttft_ms_p95", "tpot": "tpot_ms_p95", "latency": "latency_ms_p95"}  # bound name -> column


@dataclass(frozen=True)
class Bounds:
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    latency_p95_ms: float | None = None

    @classmethod
    def of(cls, spec: SlaSpec) -> Bounds:
        return cls(spec.ttft_p95_ms, spec.tpot_p95_ms, spec.latency_p95_ms)

    def given(self) -> dict[str, float]:
        """column -> bound, for the bounds set."""
        values = {"ttft": self.ttft_p95_ms, "tpot": self.tpot_p95_ms, "latency": self.latency_p95_ms}
        return {BOUNDED[k]: v for k, v in values.items() if v is not None}

    def describe(self) -> str:
        return ", ".join(f"{c.replace('_ms_p95', '')} p95 <= {v:,.0f} ms" for c, v in self.given().items())


def violations(row: pd.Series, bounds: dict[str, float]) -> list[str]:
    """The bounds a row breaks (a missing percentile breaks its bound: it cannot be shown to hold)."""
    broken = []
    for column, bound in bounds.items():
        value = row.get(column)
        name = column.replace("_ms_p95", " p95")
        if value is None or pd.isna(value):
            broken.append(f"no {name}")
        elif value > bound:
            broken.append(f"{name} {value:,.0f} ms > {bound:,.0f}")
    return broken


def best_under(results: pd.DataFrame, bounds: Bounds, axes: list[str], column: str = "output_tok_per_s_per_gpu",
               ascending: bool = False) -> pd.DataFrame:
    """One row per (ISL, OSL): the best ok point meeting every bound (by `column`: the report's ranking, output
    tok/s per GPU unless told), its source, and why the next concurrency step of the same configuration does not
    qualify."""
    given = bounds.given()
    others = [a for a in axes if a != "concurrency"]
    rows = []
    for (isl, osl), group in results.groupby(["isl", "osl"], sort=False):
        ok = group[group["status"] == "ok"]
        meets = ok[[not violations(r, given) for _, r in ok.iterrows()]]
        if meets.empty:
            rows.append({"isl": isl, "osl": osl, "verdict": f"none of its {len(group)} point(s) meets the bounds"})
            continue
        best = meets.sort_values(column, ascending=ascending, kind="stable", na_position="last").iloc[0]
        rows.append({"isl": isl, "osl": osl, **{a: best[a] for a in axes}, "verdict": "best",
                     "output_tok_per_s_per_gpu": best["output_tok_per_s_per_gpu"],
                     "output_tok_per_s": best["output_tok_per_s"], **{c: best[c] for c in given},
                     **{c: best[c] for c in PRICED if c in best and pd.notna(best[c])},
                     "source": best["source"], "next_step": _next_step(group, best, others, given)})
    return pd.DataFrame(rows)


def _next_step(group: pd.DataFrame, best: pd.Series, others: list[str], given: dict[str, float]) -> str:
    """What stops the next concurrency step of the best point's configuration."""
    if "concurrency" not in group.columns or pd.isna(best.get("concurrency")):
        return "-"
    same = group[(group[others] == best[others]).all(axis=1)] if others else group
    higher = same[same["concurrency"] > best["concurrency"]].sort_values("concurrency")
    if higher.empty:
        return "last step of the ladder"
    nxt = higher.iloc[0]
    if nxt["status"] != "ok":
        return f"concurrency {nxt['concurrency']}: {nxt['status']}"
    broken = violations(nxt, given)
    if broken:
        return f"concurrency {nxt['concurrency']}: {'; '.join(broken)}"
    return f"concurrency {nxt['concurrency']}: meets the bounds, fewer output tok/s per GPU"
