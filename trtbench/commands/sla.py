"""`trtbench sla RUN_DIR --ttft-p95-ms X --tpot-p95-ms Y [--latency-p95-ms Z]`: the best point per (ISL, OSL)
under the bounds, printed and written to sla.md and sla.csv beside the run's report."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from trtbench import analyze
from trtbench.commands.report import merge_slurm
from trtbench.commands.utils import console, warn
from trtbench.errors import SpecError
from trtbench.files import atomic_write
from trtbench.report import md_table
from trtbench.sla import Bounds, best_under
from trtbench.store import RunStore

HEADER = {"isl": "ISL", "osl": "OSL", "concurrency": "Concurrency", "output_tok_per_s_per_gpu": "Output tok/s/GPU",
          "output_tok_per_s": "Output tok/s", "ttft_ms_p95": "TTFT p95 ms", "tpot_ms_p95": "TPOT p95 ms",
          "latency_ms_p95": "Latency p95 ms", "source": "Source", "next_step": "Next step stopped by",
          "verdict": "Verdict"}


def sla(run_dir: Path, bounds: Bounds) -> None:
    if not bounds.given():
        raise SpecError("give at least one bound: --ttft-p95-ms, --tpot-p95-ms or --latency-p95-ms")
    merge_slurm(run_dir)
    store = RunStore.open(run_dir, warn)
    spec = store.spec()
    analysis = analyze.analyze(store.records(), store.meta().get("point_ids", []), spec)
    table = best_under(analysis.results, bounds, analysis.axes)
    columns = [c for c in ["isl", "osl", *analysis.axes, "output_tok_per_s_per_gpu", "output_tok_per_s",
                           *bounds.given(), "source", "next_step", "verdict"] if c in table.columns]
    if (table["verdict"] == "best").all():  # a verdict column only where some pair has no qualifying point
        columns.remove("verdict")
    rows = [[_cell(r.get(c)) for c in columns] for r in table.to_dict("records")]
    headers = [HEADER.get(c, c) for c in columns]
    simulated = "simulated" in set(table.get("source", []))
    title = f"Best configuration per ISL/OSL under {bounds.describe()}"
    note = ("_Source column: measured with trtllm-bench, or **simulated** by trtbench's simulator (a prediction, "
            "not a measurement). Points that failed never qualify._")
    atomic_write(run_dir / "sla.md", f"# {title}\n\n{note}\n\n{md_table(headers, rows)}\n")
    atomic_write(run_dir / "sla.csv", table[columns].to_csv(index=False))
    shown = Table(title=title + (" (simulated)" if simulated else ""))
    for h in headers:
        shown.add_column(h, justify="left" if h in ("Source", "Next step stopped by", "Verdict") else "right")
    for row in rows:
        shown.add_row(*map(str, row))
    console.print(shown)
    console.print(f"written: {run_dir / 'sla.md'}, {run_dir / 'sla.csv'}")


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
