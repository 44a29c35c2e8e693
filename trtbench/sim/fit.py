"""Refit the step model's factors to measured throughput (`trtbench calibrate CSV... --fit`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from trtbench.catalog.models import resolve_model
from trtbench.errors import TrtbenchError
from trtbench.sim.calibration import BOUNDS, DEFAULT
from trtbench.sim.ifb import IfbModel
from trtbench.sim.steptime import Factors
from trtbench.sim.table import ROW_DEFAULTS, predict_frame, row_precision, row_release

# The columns a prediction reads (`predict_frame`): rows equal in them predict the same.
PREDICTED_FROM = ("gpu", "model", "precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp", "isl", "osl",
                  "num_requests", "requests", "kv_fraction", "release", "version", "trtllm_version")


def fit(rows: pd.DataFrame, fraction: float, defaults: Mapping[str, Any] | None = None
        ) -> tuple[Factors, list[str], dict[str, float]]:
    """Least squares on log(predicted / measured) within the physical bounds, starting from literature
    values, in two stages, each factor on the rows whose physics it governs: the dense factors on dense models'
    rows, then `eta_moe` (the experts' grouped GEMMs) on mixtures' rows with those held, so MoE rows cannot pull
    the dense efficiencies. Rows whose GEMMs run at FP4 are scored, never fitted: FP4 has no measured best-shape
    rate, and fitting one into the efficiencies would hide that. Each table (`set`) weighs the same whatever its
    number of rows, so 146 H200 rows do not drown the 11 H100 ones. Returns the factors, the names of those that
    ended on a bound (a sign of a mechanism the model lacks) and the release speed factors (dense rows)."""
    measured = rows[rows["output_tok_per_s"].notna()].reset_index(drop=True)
    kinds = [_kind(row, defaults) for row in measured.to_dict("records")]
    dense = measured[[k == "dense" for k in kinds]].reset_index(drop=True)
    moe = measured[[k == "moe" for k in kinds]].reset_index(drop=True)
    if dense.empty:
        raise TrtbenchError("no dense-model row at FP8/16-bit to fit the step model's factors on")
    names = [n for n in BOUNDS if n != "eta_moe"]
    factors, on_bound, log_errors = _least_squares(dense, names, DEFAULT, fraction, defaults)
    if not moe.empty:
        factors, moe_bound, _ = _least_squares(moe, ["eta_moe"], factors, fraction, defaults)
        on_bound += moe_bound
    return factors, on_bound, release_factors(dense, log_errors)


def _kind(row: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> str:
    """Which stage fits a row: `dense`, `moe`, or `fp4` (GEMMs at FP4: scored only)."""
    get = {**ROW_DEFAULTS, **(defaults or {})}
    model, precision = (row.get(c) if isinstance(row.get(c), str) and row.get(c) else get[c]
                        for c in ("model", "precision"))
    if row_precision(precision) == "nvfp4":  # FP4 GEMMs: Blackwell
        return "fp4"
    return "moe" if resolve_model(str(model)).is_moe else "dense"


def _least_squares(measured: pd.DataFrame, names: list[str], start: Factors, fraction: float,
                   defaults: Mapping[str, Any] | None) -> tuple[Factors, list[str], np.ndarray]:
    """`names` fitted on `measured` from `start` (the other factors held): the factors, those on a bound, and
    each row's log(predicted / measured) at the solution."""
    from scipy.optimize import least_squares  # only fitting needs scipy; predictions do not

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

    def at(x: np.ndarray) -> Factors:
        return replace(start, **{n: float(v) for n, v in zip(names, lower + x * scale, strict=True)})

    def residuals(x: np.ndarray) -> np.ndarray:
        pred = predict_frame(distinct, IfbModel(at(x)), defaults, fraction)["pred_output_tok_per_s"].to_numpy(
            dtype=float)[where]
        ratio = pred / measured["output_tok_per_s"].to_numpy(dtype=float)
        return weight * np.log(np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1e-3))

    x0 = (np.array([getattr(DEFAULT, n) for n in names]) - lower) / scale
    # The scheduler is piecewise in its inputs: finite differences need steps larger than its jumps.
    result = least_squares(residuals, x0, bounds=(0.0, 1.0), diff_step=1e-2, xtol=1e-6, ftol=1e-8)
    on_bound = [n for n, x in zip(names, result.x, strict=True) if x < 1e-3 or x > 1 - 1e-3]
    return at(result.x), on_bound, result.fun / weight


def release_factors(rows: pd.DataFrame, log_errors: np.ndarray) -> dict[str, float]:
    """release -> exp(-mean log(predicted / measured)) over the (dense, fitted) rows that name it. Mixtures' rows
    stay out: a release that only they name (NVIDIA published some releases for MoE alone) would otherwise get a
    speed factor that absorbs whatever the MoE physics misses, fitting rows rather than physics."""
    releases = [row_release(row) for row in rows.to_dict("records")]
    frame = pd.DataFrame({"release": releases, "log_error": log_errors}).dropna()
    return {r: round(float(np.exp(-g.mean())), 4) for r, g in frame.groupby("release")["log_error"]}
