"""The one console every command prints to (stderr), kept apart from the helpers in `utils` so that setting it
up at start-up loads rich only: `trtbench --version` and usage errors stay fast."""

from __future__ import annotations

import os
import sys

from rich.console import Console

console = Console(stderr=True, highlight=False)
PIPED_WIDTH = 160


def fit_width() -> None:
    """Piped or in CI, rich would lay tables out in 80 columns and cut them: use PIPED_WIDTH there. A terminal's
    width, or COLUMNS where it is set, still wins (decided per command: the tests run several in one process)."""
    console.width = None if sys.stderr.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH  # type: ignore[assignment]
