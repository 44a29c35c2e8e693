"""Refit the step model's factors to measured throughput (`trtbench calibrate CSV... --fit`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trtbench.catalog.models import resolve_model
from trtbench.sim.calibration import BOUNDS, DEFAULT
from trtbench.sim.ifb import IfbModel
from trtbench.sim.steptime import Factors
from trtbench.sim.table import ROW_DEFAULTS, predict_frame, row_release

# The columns a prediction reads (`predict_frame`): rows equal in them predict the same.
PREDICTED_FROM = ("gpu", "model", "precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp", "isl", "osl",
                  "num_requests", "requests", "kv_fraction", "release", "version", "trtllm_version")


def fit(rows: pd.DataFrame, fraction: float, defaults: Mapping[str, Any] | None = None
        ) -> tuple[Factors, list[str], dict[str, float]]:
    """Least squares on log(predicted / measured) within the physical bounds, starting from literature
    values. Each table (`set`) weighs the same whatever its number of rows, so 146 H200 rows do not drown
    the 11 H100 ones. Returns the factors and the names of those that ended on a bound (a sign of a
    mechanism the model lacks)."""
    from scipy.optimize import least_squares  # only fitting needs scipy; predictions do not

    measured = rows[rows["output_tok_per_s"].notna()].reset_index(drop=True)
    names = list(BOUNDS)
    lower = np.array([BOUNDS[n][0] for n in names])
    upper = np.array([BOUNDS[n][1] for n in names])
    scale = upper - lower
    sets = measured["set"] if "set" in measured.columns else pd.Series(0, index=measured.index)
    weight = np.sqrt(len(measured) / (sets.nunique() * sets.map(sets.value_counts()).to_numpy(dtype=float)))

    # NVIDIA's tables repeat a cell across doc revisions: predict each distinct row once.
    keys = [tuple(map(str, row)) for row in measured[[c for c in PREDICTED_FROM if c in measured]].itertuples(
        index=False)]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    distinct = measured.iloc[sorted(first.values())].reset_index(drop=True)
    slot = {key: n for n, key in enumerate(k for i, k in enumerate(keys) if first[k] == i)}
    where = np.array([slot[key] for key in keys])

    def residuals(x: np.ndarray) -> np.ndarray:
        factors = Factors(**{n: float(v) for n, v in zip(names, lower + x * scale, strict=True)})
        pred = predict_frame(distinct, IfbModel(factors), defaults, fraction)["pred_output_tok_per_s"].to_numpy(
            dtype=float)[where]
        ratio = pred / measured["output_tok_per_s"].to_numpy(dtype=float)
        return weight * np.log(np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1e-3))

    x0 = (np.array([getattr(DEFAULT, n) for n in names]) - lower) / scale
    # The scheduler is piecewise in its inputs: finite differences need steps larger than its jumps.
    result = least_squares(residuals, x0, bounds=(0.0, 1.0), diff_step=1e-2, xtol=1e-6, ftol=1e-8)
    on_bound = [n for n, x in zip(names, result.x, strict=True) if x < 1e-3 or x > 1 - 1e-3]
    factors = Factors(**{n: float(v) for n, v in zip(names, lower + result.x * scale, strict=True)})
    return factors, on_bound, release_factors(measured, result.fun / weight)  # residuals at the solution


def release_factors(rows: pd.DataFrame, log_errors: np.ndarray) -> dict[str, float]:
    """release -> exp(-mean log(predicted / measured)) over the rows of dense models that name it. A mixture's
    rows stay out: a release that only they name (NVIDIA published some releases for MoE alone) would otherwise
    get a speed factor that absorbs whatever the MoE physics misses, fitting rows rather than physics."""
    records = rows.to_dict("records")
    dense = [not resolve_model(str(row.get("model") or ROW_DEFAULTS["model"])).is_moe for row in records]
    releases = [row_release(row) for row in records]
    frame = pd.DataFrame({"release": releases, "log_error": log_errors})[dense].dropna()
    return {r: round(float(np.exp(-g.mean())), 4) for r, g in frame.groupby("release")["log_error"]}
