"""`trtbench doctor`: what this machine has for a measured sweep, a line each with its fix (trtbench.doctor looks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import typer
from rich.markup import escape
from rich.table import Table

from trtbench.commands.console import out
from trtbench.doctor import Level, examine, ready
from trtbench.errors import SpecError
from trtbench.spec import EXECUTORS

STYLES = {Level.OK: "green", Level.WARNING: "yellow", Level.MISSING: "red"}


def doctor(engines_dir: Path, executor: str | None, as_json: bool) -> None:
    """Print every finding (a table, or JSON); exit 0 when a measured sweep can run here (with `executor`), 1
    otherwise."""
    if executor not in (None, *get_args(EXECUTORS)):
        raise SpecError(f"--executor {executor!r}: choose one of {', '.join(get_args(EXECUTORS))}")
    findings = examine(engines_dir, slurm_needed=executor == "slurm")
    can_run = ready(findings)
    if as_json:
        print(json.dumps({"ready": can_run, "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        table = Table(title="trtbench doctor", show_lines=False)
        for col in ("", "What", "Found", "Fix"):
            table.add_column(col, overflow="fold")
        for f in findings:
            table.add_row(f"[{STYLES[f.level]}]{f.level}[/]", f.topic, escape(f.found), escape(f.fix))
        out.print(table)
        out.print("a measured sweep can run here" if can_run else "a measured sweep cannot run here (fix the "
                  "missing lines above); `trtbench sweep` still simulates")
    raise typer.Exit(0 if can_run else 1)
