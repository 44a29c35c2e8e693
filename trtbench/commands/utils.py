"""Helpers the subcommands share."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from trtbench import analyze
from trtbench.errors import TrtbenchError
from trtbench.report import write_report
from trtbench.store import RunStore

console = Console(stderr=True, highlight=False)


def read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise TrtbenchError(f"CSV file not found: {path}") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise TrtbenchError(f"cannot read CSV {path}: {str(exc).splitlines()[0]}") from None


def report_run(run_dir: Path, top_n: int = 10) -> Path:
    """Analyze a run directory and write its report; returns the report's path."""
    store = RunStore.open(run_dir)
    meta = store.meta()
    analysis = analyze.analyze(store.records(), meta.get("point_ids", []))
    return write_report(run_dir, store.spec(), analysis, meta, top_n)[0]
