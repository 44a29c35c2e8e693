"""Helpers the subcommands share. Heavy modules (pandas, matplotlib) are imported inside the functions
that need them, so `trtbench --version` and argument errors stay fast."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from trtbench.commands.console import console
from trtbench.errors import TrtbenchError, exit_status
from trtbench.files import keeping
from trtbench.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

    from trtbench.analyze import Analysis

def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def interruptible(then: str) -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP (raised as KeyboardInterrupt once the work below has cleaned up) into
    one line saying what happens next and exit status 128 + the signal."""
    try:
        yield
    except KeyboardInterrupt as exc:
        name = signal.Signals(exit_status(exc) - 128).name
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            console.print(f"interrupted by {name}: {then}")
        raise typer.Exit(exit_status(exc)) from None


def read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise TrtbenchError(f"CSV file not found: {path}") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TrtbenchError(f"cannot read CSV {path}: {str(exc).splitlines()[0]}") from None


def analyze_run(store: RunStore, run_dir: Path, usd_per_gpu_hour: float | None = None) -> Analysis:
    """A run directory's records, analysed with its accuracy records (and the reference run's) for the gate;
    costed at `usd_per_gpu_hour` where given (`--usd-per-gpu-hour`), else at the spec's `cost:`."""
    from trtbench import analyze
    from trtbench.accuracy import records as accuracy_records
    from trtbench.cost import priced

    spec = priced(store.spec(), usd_per_gpu_hour)
    reference_run = spec.accuracy.reference_run if spec.accuracy else None
    return analyze.analyze(store.records(), store.meta().get("point_ids", []), spec,
                           accuracy_records.load_for(run_dir, reference_run), store.samples())


def report_run(run_dir: Path, top_n: int = 10, plots: bool = True, usd_per_gpu_hour: float | None = None) -> Path:
    """Analyze a run directory and write its report (and plots unless told not to); returns the report's path."""
    return reported(run_dir, top_n, plots, usd_per_gpu_hour)[0]


def reported(run_dir: Path, top_n: int = 10, plots: bool = True, usd_per_gpu_hour: float | None = None
             ) -> tuple[Path, Analysis]:
    """`report_run`, and the analysis it wrote (for a closing line that says what the report says). Under the
    run's report lock, from the records as they are once it is held: a report that started earlier (a
    concurrent `trtbench report`) never overwrites one from later records."""
    from trtbench.cost import priced
    from trtbench.report import write_report

    store = RunStore.open(run_dir, warn)
    with store.report_lock(), keeping(f"the records in {store.results_path} are intact; `trtbench report "
                                      f"{run_dir}` writes the report again once the disk has room"):
        meta, spec = store.meta(), priced(store.spec(), usd_per_gpu_hour)
        analysis = analyze_run(store, run_dir, usd_per_gpu_hour)
        drawn = None
        if plots:
            from trtbench.plots import draw

            drawn = draw(run_dir, spec, analysis, meta)
        written = write_report(run_dir, spec, analysis, meta, top_n, drawn)[0]
        from trtbench import html_report

        html_report.write(run_dir / "report.html", html_report.report_page(spec, analysis, meta, top_n))
        return written, analysis
