"""Leave-one-group-out cross-validation of the step model's fit: the error to expect on a TP size, a GPU or a
model size the factors were not fitted on. The in-fit MAPE flatters the model (the factors were chosen to fit
those very rows); holding a whole group out and predicting it from the rest is what a new deployment gets.

The fit is injected (`Fitter`), so the folds can be checked in milliseconds with a fake one; the real one,
`simulator_fitter`, takes minutes per fold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import resolve_model
from trtbench.precision import KvDtype, Precision, default_kv
from trtbench.sim.calibration import deployment_kind, model_shape
from trtbench.sim.table import ROW_DEFAULTS, kv_dtype, regime, row_precision

Predictor = Callable[[pd.DataFrame], Sequence[float]]  # predicted output tok/s, one per row (NaN: no prediction)
Fitter = Callable[[pd.DataFrame], Predictor]  # fitted on some rows, predicts others
FAMILIES = ("tp", "gpu", "model")  # what one fold holds out: a TP size, a GPU, a model size
METHOD = ("leave one group out: for each TP size, GPU and model size in turn, the factors are refitted without "
          "its rows and its rows predicted; MAPE of those held-out predictions")


def model_group(name: str) -> str:
    """A model's size class from its name (`Llama-3.3-70B` -> `70B`): versions of one size share a fold."""
    found = re.search(r"(\d+(?:\.\d+)?)B\b", name.split("/")[-1])
    return f"{found[1]}B" if found else name


def groups(rows: pd.DataFrame, defaults: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Each row's TP size, GPU id and model size (what a row leaves out: `defaults`, then predict's)."""
    return pd.DataFrame({"tp": [str(int(v)) for v in _filled(rows, "tp", defaults)],
                         "gpu": [resolve_gpu(str(v)).id for v in _filled(rows, "gpu", defaults)],
                         "model": [model_group(str(v)) for v in _filled(rows, "model", defaults)]},
                        index=rows.index)


def kinds(rows: pd.DataFrame, defaults: Mapping[str, Any] | None = None) -> list[str]:
    """Each row's KINDS entry: a dense model at FP8 or 16-bit weights, or a mixture of experts or NVFP4 weights
    (physics fitted or scored apart, with errors of their own)."""
    return [deployment_kind(resolve_model(str(model)).is_moe, row_precision(precision)) for model, precision in
            zip(_filled(rows, "model", defaults), _filled(rows, "precision", defaults), strict=True)]


def _filled(rows: pd.DataFrame, name: str, defaults: Mapping[str, Any] | None = None) -> list[Any]:
    """A row column with what rows leave out filled in as `predict_frame` does."""
    default = {**ROW_DEFAULTS, **(defaults or {})}[name]
    values = rows[name] if name in rows.columns else pd.Series(None, index=rows.index, dtype=object)
    return [v if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != "" else default
            for v in values]


def fitted_models(rows: pd.DataFrame, defaults: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The models the rows hold: size class, parameters (billions) and shape, so that a deployment's model can
    be matched to them (or to the nearest size)."""
    names = {str(name) for name in _filled(rows, "model", defaults)}
    archs = {name: resolve_model(name) for name in names}
    return {name: {"group": model_group(name), "params_b": round(arch.params / 1e9, 2), "shape": model_shape(arch)}
            for name, arch in sorted(archs.items())}


def fitted_formats(rows: pd.DataFrame, defaults: Mapping[str, Any] | None = None) -> dict[str, dict[str, list[Any]]]:
    """Per kind of row, the weight precisions and KV-cache widths (bytes) its rows ran: a deployment in another
    format is outside the fit whatever its model and GPU (the dense rows are all FP8; Mixtral also ran 16-bit)."""
    seen: dict[str, tuple[set[str], set[int]]] = {}
    for kind, precision, kv in zip(kinds(rows, defaults), _filled(rows, "precision", defaults),
                                   _filled(rows, "kv_cache_dtype", defaults), strict=True):
        weights = Precision(row_precision(precision))
        named = kv_dtype(kv)
        precisions, widths = seen.setdefault(kind, (set(), set()))
        precisions.add(weights.value)
        widths.add((KvDtype(named) if named else default_kv(weights)).bytes)
    return {kind: {"precisions": sorted(p), "kv_bytes": sorted(w)} for kind, (p, w) in sorted(seen.items())}


def cross_validate(rows: pd.DataFrame, fitter: Fitter, defaults: Mapping[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Hold out each group of each family in turn, fit on the rest, score the held-out rows. A family with one
    group has nothing to hold out against and gets no fold. A row the fold cannot predict (NaN) counts as 100%
    off: it ran. Returns what calibration.json stores under `cv`."""
    rows = rows[rows["output_tok_per_s"].notna()].reset_index(drop=True)
    labels = groups(rows, defaults)
    row_kinds = kinds(rows, defaults)
    measured = rows["output_tok_per_s"].to_numpy(dtype=float)
    regimes = [regime(int(i), int(o)) for i, o in zip(rows["isl"], rows["osl"], strict=True)]
    scored, folds = [], dict[str, dict[str, dict[str, int]]]()
    for family in FAMILIES:
        values = sorted(labels[family].unique(), key=_natural)
        if len(values) < 2:
            continue
        folds[family] = {}
        for value in values:
            held = (labels[family] == value).to_numpy()
            if progress:
                progress(f"fold {family} {value}: fitting on {int((~held).sum())} rows, {int(held.sum())} held out")
            predicted = np.asarray(fitter(rows[~held].reset_index(drop=True))(rows[held].reset_index(drop=True)),
                                   dtype=float)
            error = 100 * np.abs(np.nan_to_num(predicted, nan=0.0) - measured[held]) / measured[held]
            scored.append(pd.DataFrame({"family": family, "group": value, "error_pct": error,
                                        "regime": [r for r, h in zip(regimes, held, strict=True) if h],
                                        "kind": [k for k, h in zip(row_kinds, held, strict=True) if h]}))
            folds[family][value] = {"held_out": int(held.sum()), "fitted_on": int((~held).sum())}
    if not scored:
        return {"method": METHOD, "folds": {}, "groups": _group_lists(labels)}
    errors = pd.concat(scored, ignore_index=True)
    return {
        "method": METHOD, "folds": folds, "groups": _group_lists(labels),
        **{f"by_{family}": _mape(errors[errors["family"] == family], "group") for family in folds},
        "by_family": _mape(errors, "family"),
        "by_regime": _mape(errors, "regime"),  # every fold's held-out rows: each row once per family
        "mape_pct": round(float(errors["error_pct"].mean()), 2),
        # The same held-out errors split by kind of row: a dense FP8 deployment is judged on the dense rows only.
        "by_kind": {kind: {f"by_{family}": _mape(part[part["family"] == family], "group") for family in folds}
                    for kind, part in errors.groupby("kind")},
    }


def simulator_fitter(fraction: float, defaults: Mapping[str, Any] | None = None) -> Fitter:
    """The step model's own fit (`sim.fit.fit`, minutes per fold); a fold's predictions use the release speeds
    fitted on its rows (a release only the held-out rows ran borrows the nearest, as in use)."""
    from trtbench.sim.fit import fit
    from trtbench.sim.ifb import IfbModel
    from trtbench.sim.table import predict_frame

    def fitter(train: pd.DataFrame) -> Predictor:
        factors, _, releases = fit(train, fraction, defaults)
        model = IfbModel(factors, {"release_factors": releases})
        return lambda rows: list(predict_frame(rows, model, defaults, fraction)["pred_output_tok_per_s"])

    return fitter


def _mape(errors: pd.DataFrame, column: str) -> dict[str, float]:
    means = errors.groupby(column)["error_pct"].mean()
    return {str(k): round(float(means[k]), 2) for k in sorted(means.index, key=_natural)}


def _group_lists(labels: pd.DataFrame) -> dict[str, list[str]]:
    return {family: sorted(labels[family].unique(), key=_natural) for family in FAMILIES}


def _natural(value: Any) -> tuple[Any, ...]:
    """TP 2 before TP 16, 8B before 70B."""
    return tuple(float(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+(?:\.\d+)?)", str(value))))
