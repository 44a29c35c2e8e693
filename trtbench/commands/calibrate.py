"""`trtbench calibrate CSV...`: how well the simulator predicts measured throughput, row by row and per set,
TP size and regime, and on a measured run against the error its calibration claimed; `--fit` refits its factors
on all the CSVs together, `--cv` cross-validates that fit by group (what the stated errors come from)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from trtbench.commands.console import out
from trtbench.commands.utils import console, read_csv
from trtbench.deployment import make_deployment
from trtbench.errors import TrtbenchError
from trtbench.sim import calibration, crossval
from trtbench.sim.calibration import BOUNDS, coverage
from trtbench.sim.ifb import IfbModel
from trtbench.sim.table import (
    ROW_DEFAULTS,
    mape_by,
    measured,
    parallelism_label,
    predict_frame,
    row_release,
    score,
    with_groups,
    yes,
)

DEPLOYMENT_COLUMNS = ("model", "gpu", "precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp")


def calibrate(paths: list[Path], gpus: list[str], fraction: float | None, fit: bool, write: bool,
              cv: bool = False) -> None:
    if write and not (fit or cv):
        raise TrtbenchError("--write stores what --fit or --cv computes: give one of them")
    fraction = fraction or calibration.CALIBRATION_FRACTION
    if write and not fit:
        _check_committed_inputs(paths, fraction)
    tables = [(path, read_csv(path)) for path in paths]
    runs = {path.name for path, table in tables if "source" in table.columns}  # trtbench results.csv files
    rows = pd.concat([measured_rows(table, path).assign(set=path.name) for path, table in tables], ignore_index=True)
    defaults = {"gpu": gpus[0]} if gpus else None
    model, on_bound, releases = IfbModel(), list[str](), dict[str, float]()
    if fit:
        from trtbench.sim.fit import fit as refit

        console.print(f"fitting {len(BOUNDS)} factors on {len(rows)} rows (a few minutes)...")
        factors, on_bound, releases = refit(rows, fraction, defaults)
        model = IfbModel(factors, {"release_factors": releases})
        console.print(f"fitted: {factors}; release speed factors: {releases or 'none (no release column)'}")
        if on_bound:
            console.print(f"[yellow]on a bound[/]: {', '.join(on_bound)} (a mechanism the step model lacks?)")
    results: dict[str, float] = {}
    for gpu in gpus or [""]:
        frame = predict_frame(rows, model, {"gpu": gpu} if gpu else None, fraction)
        scored, mape, spearman = score(frame)
        if not results:
            first = scored, mape, spearman
        results[gpu] = mape
        grouped = with_groups(scored, defaults)
        out.print(_rows_table(grouped, f"simulated vs measured output tok/s{f' as {gpu}' if gpu else ''}",
                              f"MAPE {mape:.2f}%, Spearman {spearman:.3f}, "
                              f"worst row {scored['error_pct'].abs().max():.1f}%"))
        for column in ("set", "family", "gpu_name", "parallelism", "regime", "kv_limited"):
            out.print(_group_table(grouped, column))
    if len(results) > 1:
        best = min(results, key=lambda g: results[g])
        others = ", ".join(f"{g} {m:.1f}%" for g, m in results.items())
        out.print(f"best fit: {best} (MAPE {others})")
    if not fit:
        for line in claims(first[0][first[0]["set"].isin(runs)], model.info):
            out.print(line)
        if "cv" in model.info and not cv:
            out.print(cv_line(model.info))
    if not (cv or (fit and write)):
        return
    console.print(f"cross-validating: {len(rows)} rows, the fit repeated with each TP size, GPU and model size "
                  f"held out (minutes per fold)...")
    result = crossval.cross_validate(rows, crossval.simulator_fitter(fraction, defaults), defaults, console.print)
    out.print(_cv_table(result))
    if not write:
        return
    extra = {"cv": result, "models": crossval.fitted_models(rows, defaults),
             "formats": crossval.fitted_formats(rows, defaults)}
    if fit:
        scored, mape, spearman = first
        saved = calibration.save(model.factors, {
            "fitted_on": [path.name for path in paths], "rows": len(scored), "mape_pct": round(mape, 3),
            "spearman": round(spearman, 4), "kv_cache_free_gpu_mem_fraction": fraction,
            "mape_by_set": _column(scored, "set"), "mape_by_tp": _column(scored, "tp"),
            **{f"mape_by_{c}": _column(with_groups(scored, defaults), c) for c in ("family", "gpu_name",
                                                                                   "parallelism")},
            "mape_by_regime": _column(scored, "regime"), "mape_by_kv_limited": _column(scored, "kv_limited"),
            "gpus": sorted(_gpu_ids(scored)), "on_bound": on_bound, "release_factors": releases, **extra})
    else:
        saved = calibration.update(extra)
    console.print(f"calibration written to {saved}")


def cv_line(info: dict[str, Any]) -> str:
    """The committed calibration's cross-validated error, the figure banners state: its own error above
    flatters (the rows were fitted), each group held out of the fit does not."""
    cv = info["cv"]
    parts = [f"{family} " + ", ".join(f"{group} {mape:.1f}%" for group, mape in cv.get(f"by_{family}", {}).items())
             for family in ("tp", "gpu", "model")]
    note = f" ({info['cv_note']})" if info.get("cv_note") else ""
    return f"cross-validated error of the committed calibration: {cv['mape_pct']:.1f}%; by {'; '.join(parts)}{note}"


def _check_committed_inputs(paths: list[Path], fraction: float) -> None:
    """`--cv --write` adds to the committed calibration: only its own fit's cross-validation belongs there."""
    info = calibration.load()[1]
    if [path.name for path in paths] != info.get("fitted_on") or fraction != info.get(
            "kv_cache_free_gpu_mem_fraction"):
        raise TrtbenchError(f"--cv --write without --fit cross-validates the committed calibration: give its CSVs "
                            f"({', '.join(info.get('fitted_on') or ['none'])}) and its --kv-fraction "
                            f"({info.get('kv_cache_free_gpu_mem_fraction')})")


def claims(scored: pd.DataFrame, info: dict[str, Any]) -> list[str]:
    """How the committed model did on a measured run's rows, per deployment, beside the error its calibration
    claimed there: the out-of-sample error inside, a lower bound outside."""
    if scored.empty:
        return []
    keys = [(*(_value(row, c) for c in DEPLOYMENT_COLUMNS), row_release(row))
            for row in scored.to_dict("records")]
    lines = []
    for key, group in scored.groupby(pd.Series(keys, index=scored.index), sort=False):
        model, gpu, precision, kv, tp, pp, ep, attention_dp, release = key
        dep = make_deployment(str(model), str(gpu), str(precision), tp=int(tp), pp=int(pp),
                              kv_cache_dtype=str(kv) if kv else None, release=release, ep=int(ep) if ep else None,
                              attention_dp=yes(attention_dp))
        covered, mape = coverage(dep, info), float(group["error_pct"].abs().mean())
        where = f"{model} {precision} on {dep.gpu.name}, {parallelism_label(dep.tp, dep.pp, dep.ep, dep.attention_dp)}"
        if covered.lower_bound:
            claim = (f"at least {covered.error_pct:.1f}% (outside the calibration: {'; '.join(covered.outside)})"
                     f": {'consistent with that' if mape >= covered.error_pct else 'better than that bound'}")
        else:
            claim = (f"~{covered.error_pct:.1f}% out of sample (for {covered.basis}): "
                     f"{'worse than claimed' if mape > covered.error_pct else 'within the claim'}")
        lines.append(f"on this run, {where}: MAPE {mape:.1f}% over {len(group)} measured points; the calibration "
                     f"claimed {claim}")
    return lines


def _value(row: Mapping[Any, Any], column: str) -> Any:
    value = row.get(column)
    return ROW_DEFAULTS[column] if value is None or (isinstance(value, float) and math.isnan(value)) else value


def measured_rows(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A table's rows to score: all of a published table; of a trtbench results.csv, the measured points that
    succeeded (a failed point has no throughput, a simulated one is the simulator's own answer); each
    measured throughput checked (`table.measured`) before anything is fitted to it."""
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    if "source" in rows.columns:
        rows = rows[rows["source"] == "measured"]
    if rows.empty:
        raise TrtbenchError(f"{path}: no measured point that succeeded (simulated rows are the simulator's own "
                            f"predictions; failed ones have no throughput)")
    return measured(rows, f"{path}: ")


def _rows_table(scored: pd.DataFrame, title: str, caption: str) -> Table:
    table = Table(title=title, caption=caption)
    extra = {c: name for c, name in (("gpu_name", "GPU"), ("model", "Model"), ("tp", "TP")) if c in scored.columns}
    for col in (*extra.values(), "ISL", "OSL", "Requests", "Regime", "Measured", "Predicted", "Error %"):
        table.add_column(col, justify="left" if col in ("Model", "GPU", "Regime") else "right")

    def cell(r: dict[Any, Any], column: str) -> str:  # TP: its size, or the parallelism where there is more to it
        plain = str(r.get("parallelism", "")) in ("", f"TP{r.get('tp')}")
        return str(r[column]) if column != "tp" or plain else str(r["parallelism"])

    for r in scored.to_dict("records"):
        table.add_row(*(cell(r, c) for c in extra), str(r["isl"]), str(r["osl"]), f"{r['pred_requests']:,}",
                      r["regime"] + (", KV" if r["kv_limited"] else ""), f"{r['output_tok_per_s']:,.2f}",
                      f"{r['pred_output_tok_per_s']:,.2f}",
                      f"{r['error_pct']:+.1f}")
    return table


GROUP_TITLES = {"set": "table", "family": "model family", "gpu_name": "GPU", "kv_limited": "KV-limited"}


def _group_table(scored: pd.DataFrame, column: str) -> Table:
    name = GROUP_TITLES.get(column, column)
    table = Table(title=f"error by {name}")
    for col in (name, "Rows", "MAPE %", "Worst %", "Within 15 %"):
        table.add_column(col, justify="left" if col == name else "right")
    for key, g in mape_by(scored, column).iterrows():
        table.add_row(str(key), str(int(g["rows"])), f"{g['mape_pct']:.1f}", f"{g['worst_pct']:.1f}",
                      f"{g['within_15_pct']:.0f}")
    return table


def _cv_table(result: dict[str, Any]) -> Table:
    folds = result["folds"]
    caption = (f"every held-out prediction: MAPE {result['mape_pct']:.1f}%" if folds
               else "nothing to hold out: one TP size, one GPU and one model size")
    table = Table(title="out-of-sample error: each group held out of the fit, then predicted", caption=caption)
    for col in ("Held out", "Rows", "Fitted on", "MAPE %"):
        table.add_column(col, justify="left" if col == "Held out" else "right")
    for family, by_group in folds.items():
        for group, fold in by_group.items():
            table.add_row(f"{family} {group}", str(fold["held_out"]), str(fold["fitted_on"]),
                          f"{result[f'by_{family}'][group]:.1f}")
    for name, mape in result.get("by_regime", {}).items():
        table.add_row(f"all folds, {name} rows", "", "", f"{mape:.1f}")
    return table


def _column(scored: pd.DataFrame, column: str) -> dict[str, float]:
    return {str(k): round(float(v), 2) for k, v in mape_by(scored, column)["mape_pct"].items()}


def _gpu_ids(scored: pd.DataFrame) -> set[str]:
    from trtbench.catalog.gpus import resolve_gpu

    return {resolve_gpu(str(name)).id for name in scored["gpu"].dropna().unique()} if "gpu" in scored else set()
