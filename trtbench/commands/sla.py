"""`trtbench sla RUN_DIR --ttft-p95-ms X --tpot-p95-ms Y [--latency-p95-ms Z]`: the best point per (ISL, OSL)
under the bounds, printed and written to sla.md and sla.csv beside the run's report."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from trtbench import analyze, html_report
from trtbench.commands.console import out
from trtbench.commands.report import merge_slurm
from trtbench.commands.utils import analyze_run, warn
from trtbench.errors import SpecError
from trtbench.escape import csv_safe_frame
from trtbench.files import atomic_write
from trtbench.report import cost_line, md_table, sla_columns, sla_rows
from trtbench.sla import Bounds, best_under
from trtbench.store import RunStore


def sla(run_dir: Path, bounds: Bounds) -> None:
    if not bounds.given():
        raise SpecError("give at least one bound: --ttft-p95-ms, --tpot-p95-ms or --latency-p95-ms")
    merge_slurm(run_dir)
    store = RunStore.open(run_dir, warn)
    analysis = analyze_run(store, run_dir)
    by = analysis.ranking  # the report's own "best", so the command and the report give one answer
    table = best_under(analyze.eligible(analysis.results), bounds, analysis.axes, by.column, by.ascending)
    columns = sla_columns(table, analysis.axes, bounds)
    headers, rows = sla_rows(table, columns)
    title = f"Best configuration per ISL/OSL under {bounds.describe()}"
    note = ("_Source column: measured with trtllm-bench, or **simulated** by trtbench's simulator (a prediction, "
            "not a measurement). Points that failed never qualify._" + cost_line(store.spec(), analysis))
    atomic_write(run_dir / "sla.md", f"# {title}\n\n{note}\n\n{md_table(headers, rows)}\n")
    atomic_write(run_dir / "sla.csv", csv_safe_frame(table[columns]).to_csv(index=False))
    html_report.write(run_dir / "sla.html", html_report.sla_page(run_dir.name, table, analysis.axes, bounds,
                                                                 html_report.source_label(analysis.counts)))
    shown = Table(title=title + (" (simulated)" if "simulated" in set(table.get("source", [])) else ""))
    for h in headers:
        shown.add_column(h, justify="left" if h in ("Source", "Next step stopped by", "Verdict") else "right")
    for row in rows:
        shown.add_row(*row)
    out.print(shown)
    out.print(f"written: {run_dir / 'sla.md'}, {run_dir / 'sla.csv'}, {run_dir / 'sla.html'}")
