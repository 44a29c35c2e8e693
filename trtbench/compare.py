"""Two runs side by side: joined on the axes both sweep and (ISL, OSL), B relative to A (e.g. FP16 vs FP8, or one
TensorRT-LLM release vs another)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trtbench.analyze import Analysis
from trtbench.errors import TrtbenchError

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


def compare(a: Analysis, b: Analysis) -> Comparison:
    """Points matched on the extra axes both runs sweep and on ISL/OSL; request counts may differ (each run's
    rule decides them) and are shown side by side."""
    keys = [*(x for x in a.axes if x in b.axes), *LENGTH_KEYS]
    left, right = (run.results[[*keys, "status", "output_tok_per_s", "requests"]].rename(columns={
        "status": f"{side}_status", "output_tok_per_s": f"{side}_tok_s", "requests": f"{side}_requests"})
        for side, run in (("a", a), ("b", b)))
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
    unmatched = pd.concat([_unmatched(left, right, keys, "A", "B"), _unmatched(right, left, keys, "B", "A")],
                          ignore_index=True)
    return Comparison(keys, joined, joined[a_failed & ~b_failed], joined[b_failed & ~a_failed], geomean, unmatched,
                      int((joined["a_requests"] != joined["b_requests"]).sum()))


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
