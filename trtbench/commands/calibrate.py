"""`trtbench calibrate CSV...`: how well the simulator predicts measured throughput, row by row and per set,
TP size and regime; `--fit` refits its factors on all the CSVs together."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from trtbench.commands.utils import console, read_csv
from trtbench.errors import TrtbenchError
from trtbench.sim import calibration
from trtbench.sim.calibration import BOUNDS
from trtbench.sim.ifb import IfbModel
from trtbench.sim.table import mape_by, predict_frame, score


def calibrate(paths: list[Path], gpus: list[str], fraction: float | None, fit: bool, write: bool) -> None:
    fraction = fraction or calibration.CALIBRATION_FRACTION
    rows = pd.concat([measured_rows(read_csv(path), path).assign(set=path.name) for path in paths],
                     ignore_index=True)
    model, on_bound, releases = IfbModel(), list[str](), dict[str, float]()
    if fit:
        from trtbench.sim.fit import fit as refit

        console.print(f"fitting {len(BOUNDS)} factors on {len(rows)} rows (a few minutes)...")
        factors, on_bound, releases = refit(rows, fraction, {"gpu": gpus[0]} if gpus else None)
        model = IfbModel(factors, {"release_factors": releases})
        console.print(f"fitted: {factors}; release speed factors: {releases or 'none (no release column)'}")
        if on_bound:
            console.print(f"[yellow]on a bound[/]: {', '.join(on_bound)} (a mechanism the step model lacks?)")
    results = {}
    for gpu in gpus or [""]:
        frame = predict_frame(rows, model, {"gpu": gpu} if gpu else None, fraction)
        scored, mape, spearman = score(frame)
        results[gpu] = mape
        console.print(_rows_table(scored, f"simulated vs measured output tok/s{f' as {gpu}' if gpu else ''}",
                                  f"MAPE {mape:.2f}%, Spearman {spearman:.3f}, "
                                  f"worst row {scored['error_pct'].abs().max():.1f}%"))
        for column in ("set", "tp", "regime", "kv_limited"):
            if column in scored.columns:
                console.print(_group_table(scored, column))
        if fit and write and gpu == (gpus[0] if gpus else ""):
            saved = calibration.save(model.factors, {
                "fitted_on": [path.name for path in paths], "rows": len(scored), "mape_pct": round(mape, 3),
                "spearman": round(spearman, 4), "kv_cache_free_gpu_mem_fraction": fraction,
                "mape_by_set": _column(scored, "set"), "mape_by_tp": _column(scored, "tp"),
                "mape_by_regime": _column(scored, "regime"), "mape_by_kv_limited": _column(scored, "kv_limited"),
                "gpus": sorted(_gpu_ids(scored)), "on_bound": on_bound, "release_factors": releases})
            console.print(f"calibration written to {saved}")
    if len(results) > 1:
        best = min(results, key=lambda g: results[g])
        others = ", ".join(f"{g} {m:.1f}%" for g, m in results.items())
        console.print(f"best fit: {best} (MAPE {others})")


def measured_rows(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A table's rows to score: all of a published table; of a trtbench results.csv, the measured points that
    succeeded (a failed point has no throughput, a simulated one is the simulator's own answer)."""
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    if "source" in rows.columns:
        rows = rows[rows["source"] == "measured"]
    if rows.empty:
        raise TrtbenchError(f"{path}: no measured point that succeeded (simulated rows are the simulator's own "
                            f"predictions; failed ones have no throughput)")
    return rows


def _rows_table(scored: pd.DataFrame, title: str, caption: str) -> Table:
    table = Table(title=title, caption=caption)
    extra = [c for c in ("model", "tp") if c in scored.columns]
    for col in (*[c.upper() if c == "tp" else c.capitalize() for c in extra], "ISL", "OSL", "Requests", "Regime",
                "Measured", "Predicted", "Error %"):
        table.add_column(col, justify="left" if col in ("Model", "Regime") else "right")
    for r in scored.to_dict("records"):
        table.add_row(*(str(r[c]) for c in extra), str(r["isl"]), str(r["osl"]), f"{r['pred_requests']:,}",
                      r["regime"] + (", KV" if r["kv_limited"] else ""), f"{r['output_tok_per_s']:,.2f}",
                      f"{r['pred_output_tok_per_s']:,.2f}",
                      f"{r['error_pct']:+.1f}")
    return table


def _group_table(scored: pd.DataFrame, column: str) -> Table:
    table = Table(title=f"error by {column}")
    for col in (column, "Rows", "MAPE %", "Worst %", "Within 15 %"):
        table.add_column(col, justify="left" if col == column else "right")
    for key, g in mape_by(scored, column).iterrows():
        table.add_row(str(key), str(int(g["rows"])), f"{g['mape_pct']:.1f}", f"{g['worst_pct']:.1f}",
                      f"{g['within_15_pct']:.0f}")
    return table


def _column(scored: pd.DataFrame, column: str) -> dict[str, float]:
    return {str(k): round(float(v), 2) for k, v in mape_by(scored, column)["mape_pct"].items()}


def _gpu_ids(scored: pd.DataFrame) -> set[str]:
    from trtbench.catalog.gpus import resolve_gpu

    return {resolve_gpu(str(name)).id for name in scored["gpu"].dropna().unique()} if "gpu" in scored else set()
