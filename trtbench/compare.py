"""Two runs side by side: joined on (ISL, OSL, requests), B relative to A (e.g. FP16 vs FP8, or one
TensorRT-LLM release vs another)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trtbench.analyze import Analysis
from trtbench.errors import TrtbenchError

LENGTH_KEYS = ["isl", "osl", "requests"]


@dataclass(frozen=True)
class Comparison:
    keys: list[str]  # the columns points are matched on: extra axes both runs sweep, then ISL, OSL, requests
    joined: pd.DataFrame  # keys, a_status, b_status, a_tok_s, b_tok_s, ratio (B/A), delta (B-A), status
    failed_only_in_a: pd.DataFrame
    failed_only_in_b: pd.DataFrame
    geomean: float | None  # geometric mean of B/A over the points that succeeded in both
    only_in_a: int  # points of A that B did not run
    only_in_b: int


def compare(a: Analysis, b: Analysis) -> Comparison:
    keys = [*(x for x in a.axes if x in b.axes), *LENGTH_KEYS]
    left = a.results[[*keys, "status", "output_tok_per_s"]].rename(
        columns={"status": "a_status", "output_tok_per_s": "a_tok_s"})
    right = b.results[[*keys, "status", "output_tok_per_s"]].rename(
        columns={"status": "b_status", "output_tok_per_s": "b_tok_s"})
    joined = left.merge(right, on=keys, how="inner")
    if joined.empty:
        names = ", ".join({"isl": "ISL", "osl": "OSL"}.get(k, k) for k in keys)
        raise TrtbenchError(f"the two runs share no ({names}) point; nothing to compare")
    both = (joined["a_status"] == "ok") & (joined["b_status"] == "ok")
    joined["ratio"] = np.where(both, joined["b_tok_s"] / joined["a_tok_s"], np.nan)
    joined["delta"] = np.where(both, joined["b_tok_s"] - joined["a_tok_s"], np.nan)
    # For the ratio heatmap: a cell is "ok" when both ran, else says which side failed and how.
    joined["status"] = np.where(both, "ok", np.where(joined["a_status"] != "ok", "A: " + joined["a_status"],
                                                     "B: " + joined["b_status"]))
    ratios = joined.loc[both, "ratio"]
    geomean = float(math.exp(np.log(ratios).mean())) if len(ratios) else None
    a_failed, b_failed = joined["a_status"] != "ok", joined["b_status"] != "ok"
    return Comparison(keys, joined, joined[a_failed & ~b_failed], joined[b_failed & ~a_failed], geomean,
                      len(left) - len(joined), len(right) - len(joined))
