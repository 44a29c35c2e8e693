"""The two consoles every command prints to, kept apart from the helpers in `utils` so that setting them up at
start-up loads rich only: `trtbench --version` and usage errors stay fast.

`out` (stdout) carries what a command answers: tables, results, reports' paths a script reads back, so
`trtbench plan SPEC > plan.txt` keeps the table. `console` (stderr) carries progress, warnings and logs."""

from __future__ import annotations

import os
import sys

from rich.console import Console

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)
PIPED_WIDTH = 160


def fit_width() -> None:
    """Piped or in CI, rich would lay tables out in 80 columns and cut them: use PIPED_WIDTH there. A terminal's
    width, or COLUMNS where it is set, still wins (decided per command: the tests run several in one process)."""
    for con, stream in ((console, sys.stderr), (out, sys.stdout)):
        con.width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH  # type: ignore[assignment]
