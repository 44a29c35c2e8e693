"""`trtbench calibrate CSV`: how well the simulator predicts measured throughput; `--fit` refits it."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from trtbench.commands.utils import console, read_csv
from trtbench.sim import calibration
from trtbench.sim.ifb import IfbModel
from trtbench.sim.table import predict_frame, score


def calibrate(path: Path, gpus: list[str], fraction: float, fit: bool, write: bool) -> None:
    rows = read_csv(path)
    model = IfbModel()
    if fit:
        from trtbench.sim.fit import fit as refit

        factors = refit(rows, {"gpu": gpus[0]} if gpus else None, fraction)
        model = IfbModel(factors)
        console.print(f"fitted: {factors}")
    results = {}
    for gpu in gpus or [""]:
        frame = predict_frame(rows, model, {"gpu": gpu} if gpu else None, fraction)
        scored, mape, spearman = score(frame)
        results[gpu] = mape
        table = Table(title=f"{path.name}{f' as {gpu}' if gpu else ''}: simulated vs measured output tok/s")
        for col in ("ISL", "OSL", "Requests", "Measured", "Predicted", "Error %"):
            table.add_column(col, justify="right")
        for r in scored.itertuples():
            table.add_row(str(r.isl), str(r.osl), f"{r.pred_requests:,}", f"{r.output_tok_per_s:,.2f}",
                          f"{r.pred_output_tok_per_s:,.2f}", f"{r.error_pct:+.1f}")
        table.caption = f"MAPE {mape:.2f}%, Spearman {spearman:.3f}, worst row {scored['error_pct'].abs().max():.1f}%"
        console.print(table)
        if fit and write and gpu == (gpus[0] if gpus else None):
            saved = calibration.save(model.factors, {"fitted_on": path.name, "rows": len(scored),
                                                     "mape_pct": round(mape, 3), "spearman": round(spearman, 4),
                                                     "kv_cache_free_gpu_mem_fraction": fraction})
            console.print(f"calibration written to {saved}")
    if len(results) > 1:
        best = min(results, key=lambda g: results[g])
        others = ", ".join(f"{g} {m:.1f}%" for g, m in results.items())
        console.print(f"best fit: {best} (MAPE {others})")
