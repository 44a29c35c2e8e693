"""How big report.html gets, and how long it takes to render: the 64-point default (sweeps/h100_grid.yaml,
simulated) and a 10,000-point run (those 64 points' records, each copied over TP x PP x concurrency
with its throughput scaled, so every column is filled as a real run fills it). The page carries
plotly.js once (about 4.8 MB) plus one JSON block of the run's rows; no table or chart repeats them.

    .venv/bin/python benchmarks/bench_html.py [DIR]    (DIR: where to keep the 10,000-point page, to open it)
"""

from __future__ import annotations

import contextlib
import io
import itertools
import sys
import tempfile
import time
from pathlib import Path

from trtbench import analyze as an
from trtbench import html_report
from trtbench.cli import main as trtbench
from trtbench.files import atomic_write
from trtbench.store import RunStore

REPO = Path(__file__).resolve().parent.parent
GRID = {"tp": [1, 2, 4, 8], "pp": [1, 2], "concurrency": [2 ** k for k in range(20)]}  # 64 x 160 points, cut at 10,000


def main(keep: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "h100_grid"
        sys.argv = ["trtbench", "sweep", str(REPO / "sweeps" / "h100_grid.yaml"), "--out", str(run), "--no-plots"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                contextlib.suppress(SystemExit):
            trtbench()
        print(f"64 points (make sweep): report.html {(run / 'report.html').stat().st_size / 1e6:.2f} MB")
        store = RunStore.open(run)
        spec, meta, base = store.spec(), store.meta(), store.records()
        records = []
        for n, (r, values) in enumerate(itertools.product(base, itertools.product(*GRID.values()))):
            if len(records) == 10_000:
                break
            axes = {**r.axes, **dict(zip(GRID, values, strict=True))}
            scale = 1 + (n % 97) / 100
            metrics = r.metrics.model_copy(update={"output_tok_per_s": r.metrics.output_tok_per_s * scale}) \
                if r.metrics else None
            records.append(r.model_copy(update={"axes": axes, "point_id": f"{r.point_id}-{n}", "metrics": metrics}))
        t0 = time.perf_counter()
        analysis = an.analyze(records, [r.point_id for r in records], spec)
        t1 = time.perf_counter()
        page = html_report.render(html_report.report_page(spec, analysis, meta))
        t2 = time.perf_counter()
        size = len(page.encode())
        if keep:
            atomic_write(keep / "report_10000.html", page)
        print(f"{len(records):,} points: report.html {size / 1e6:.2f} MB (plotly.js "
              f"{len(html_report._plotly_js().encode()) / 1e6:.2f} MB of it); analyze {t1 - t0:.1f} s, "
              f"render {t2 - t1:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
