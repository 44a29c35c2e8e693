"""Two runs side by side: joined on the axes both sweep and (ISL, OSL), B relative to A (e.g. FP16 vs FP8, or one
TensorRT-LLM release vs another)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trtbench.analyze import Analysis
from trtbench.errors import TrtbenchError
from trtbench.stats import FDR, Noise, adjusted, against_noise, pooled_cv, welch

LENGTH_KEYS = ["isl", "osl"]


@dataclass(frozen=True)
class Comparison:
    keys: list[str]  # the columns points are matched on: extra axes both runs sweep, then ISL and OSL
    # keys, a/b_status, a/b_tok_s, a/b_requests, ratio (B/A), delta (B-A), status (for the heatmap)
    joined: pd.DataFrame
    failed_only_in_a: pd.DataFrame
    failed_only_in_b: pd.DataFrame
    geomean: float | None  # geometric mean of B/A over the points that succeeded in both
    unmatched: pd.DataFrame  # keys, side ("A" or "B"), why: each point of one run the other has no match for
    requests_differ: int  # matched points whose request counts differ
    threshold: float = 0.0  # a change this small (relative) is no change, however significant


FASTER, SLOWER, SAME, INCONCLUSIVE, SIMULATED = ("faster", "slower", "no significant change",
                                                 "inconclusive (fewer than 2 runs on a side, no repeats to measure "
                                                 "noise)", "not tested (simulated)")
WELCH = "Welch"  # the `basis` of a verdict from both sides' own repeats


def compare(a: Analysis, b: Analysis, threshold: float = 0.0, simulated: bool = False) -> Comparison:
    """Points matched on the extra axes both runs sweep and on ISL/OSL; request counts may differ (each run's
    rule decides them) and are shown side by side. Each point that succeeded in both gets a `verdict`
    (`verdicts`), with `threshold` and, for `simulated` runs, none claiming significance."""
    keys = [*(x for x in a.axes if x in b.axes), *LENGTH_KEYS]
    left, right = (run.results[[*keys, "status", "output_tok_per_s", "requests", "point_id"]].rename(columns={
        "status": f"{side}_status", "output_tok_per_s": f"{side}_tok_s", "requests": f"{side}_requests",
        "point_id": f"{side}_point_id"}) for side, run in (("a", a), ("b", b)))
    joined = left.merge(right, on=keys, how="inner")
    if joined.empty:
        names = ", ".join({"isl": "ISL", "osl": "OSL"}.get(k, k) for k in keys)
        raise TrtbenchError(f"the two runs share no ({names}) point; nothing to compare")
    both = (joined["a_status"] == "ok") & (joined["b_status"] == "ok")
    joined["ratio"] = np.where(both, joined["b_tok_s"] / joined["a_tok_s"], np.nan)
    joined["delta"] = np.where(both, joined["b_tok_s"] - joined["a_tok_s"], np.nan)
    a_failed, b_failed = joined["a_status"] != "ok", joined["b_status"] != "ok"
    # For the ratio heatmap: "ok" when both ran, else which side failed and how (both, when both did).
    joined["status"] = np.select(
        [a_failed & b_failed, a_failed, b_failed],
        ["A: " + joined["a_status"] + ", B: " + joined["b_status"], "A: " + joined["a_status"],
         "B: " + joined["b_status"]], "ok")
    ratios = joined.loc[both, "ratio"]
    geomean = float(math.exp(np.log(ratios).mean())) if len(ratios) else None
    joined = verdicts(joined, a.runs, b.runs, threshold, simulated, _noise_floor(a.runs, b.runs))
    unmatched = pd.concat([_unmatched(left, right, keys, "A", "B"), _unmatched(right, left, keys, "B", "A")],
                          ignore_index=True)
    return Comparison(keys, joined, joined[a_failed & ~b_failed], joined[b_failed & ~a_failed], geomean, unmatched,
                      int((joined["a_requests"] != joined["b_requests"]).sum()), threshold)


def _noise_floor(a_runs: dict[str, list[float]], b_runs: dict[str, list[float]]) -> tuple[Noise, str] | None:
    """The pooled CV of the repeated points of whichever runs have any, and how a verdict says it used it."""
    sides = [(name, runs) for name, runs in (("A", a_runs), ("B", b_runs)) if any(len(v) >= 2 for v in runs.values())]
    noise = pooled_cv(v for _, runs in sides for v in runs.values())
    if noise is None:
        return None
    names = " and ".join(name for name, _ in sides)
    return noise, (f"noise floor from {noise.points} repeated points of run{'s' if len(sides) > 1 else ''} {names} "
                   f"(CV {noise.cv:.1%})")


def verdicts(joined: pd.DataFrame, a_runs: dict[str, list[float]], b_runs: dict[str, list[float]],
             threshold: float, simulated: bool, floor: tuple[Noise, str] | None = None) -> pd.DataFrame:
    """`joined` with, per point ok in both, `a_runs`/`b_runs` (repeats), the change of mean tok/s and its 95%
    interval (`change_pct`, `change_low_pct`, `change_high_pct`), the test's p and its Benjamini-Hochberg q over
    the tested points, the test (`basis`: Welch's on both sides' repeats, or against the noise `floor` measured
    on the same machine where a side ran once), and a `verdict`: faster or slower when q is below FDR and the
    change exceeds `threshold`, no significant change otherwise; inconclusive with a single run on a side and no
    floor; for a simulated run (the same numbers every time) the change only, and "not tested"."""
    rows = []
    for _, r in joined.iterrows():
        a, b = a_runs.get(r["a_point_id"], []), b_runs.get(r["b_point_id"], [])
        row: dict[str, object] = {"a_runs": len(a), "b_runs": len(b)}
        if r["a_status"] == "ok" and r["b_status"] == "ok" and a and b:
            test = (welch(a, b), WELCH) if len(a) >= 2 and len(b) >= 2 else \
                (against_noise(a, b, floor[0]), floor[1]) if floor else None
            if simulated or test is None:
                row.update(change_pct=100 * (np.mean(b) / np.mean(a) - 1),
                           verdict=SIMULATED if simulated else INCONCLUSIVE)
            else:
                change, basis = test
                row.update(change_pct=100 * change.change, change_low_pct=100 * change.low,
                           change_high_pct=100 * change.high, p=change.p, basis=basis)
        rows.append(row)
    found = pd.DataFrame(rows, index=joined.index, columns=["a_runs", "b_runs", "change_pct", "change_low_pct",
                                                            "change_high_pct", "p", "q", "basis", "verdict"])
    found["basis"] = found["basis"].astype(object)
    found["verdict"] = found["verdict"].astype(object)  # all unset reads as floats
    tested = found["p"].notna()
    found.loc[tested, "q"] = adjusted(found.loc[tested, "p"].tolist())
    significant = tested & (found["q"] < FDR)
    found.loc[tested, "verdict"] = np.select(
        [significant & (found["change_pct"] < -100 * threshold), significant & (found["change_pct"] > 100 * threshold)],
        [SLOWER, FASTER], SAME)[tested.to_numpy()]
    return pd.concat([joined, found], axis=1)


def _unmatched(mine: pd.DataFrame, other: pd.DataFrame, keys: list[str], side: str, other_side: str
               ) -> pd.DataFrame:
    """Points of `mine` with no match in `other`, and why: a key value the other grid lacks, or the combination."""
    merged = mine[keys].merge(other[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    alone = merged[merged["_merge"] == "left_only"][keys].copy()

    values = {key: set(other[key]) for key in keys}

    def why(row: pd.Series) -> str:
        for key in keys:
            if row[key] not in values[key]:
                return f"{other_side} has no {key.upper() if key in LENGTH_KEYS else key} {row[key]}"
        return f"{other_side} has no point at this combination"

    alone["side"] = side
    alone["why"] = [why(r) for _, r in alone.iterrows()] if len(alone) else []
    return alone
