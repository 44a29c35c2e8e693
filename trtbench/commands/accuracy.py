"""`trtbench accuracy score GENERATIONS.jsonl`: ROUGE-1/2/L/Lsum of summaries produced anywhere, and the verdict
against a target (MLPerf's Llama-3.1-8B CNN/DailyMail by default). Exit 0 on pass, 1 on fail."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from trtbench.accuracy.rouge import METRICS, read_pairs, score
from trtbench.accuracy.targets import TARGETS
from trtbench.commands.utils import console
from trtbench.errors import SpecError


def score_file(path: Path, target: str, as_json: bool) -> None:
    if target not in TARGETS:
        raise SpecError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
    goal = TARGETS[target]
    scores, n = score(read_pairs(path))
    passed, needed = goal.verdict(scores)
    if as_json:
        print(json.dumps({"generations": n, "scores": scores, "target": goal.name, "thresholds": needed,
                          "passed": passed}, indent=2))
    else:
        table = Table(title=f"ROUGE of {n} generations in {path} (x 100, Porter stemming)")
        for col in ("Metric", "Score", "Reference", "Needed", "Verdict"):
            table.add_column(col, justify="left" if col in ("Metric", "Verdict") else "right")
        for m in METRICS:
            ok = scores[m] >= needed[m]
            table.add_row(m, f"{scores[m]:.4f}", f"{goal.reference[m]:.4f}", f"{needed[m]:.4f}",
                          "[green]pass[/]" if ok else "[red]FAIL[/]")
        table.caption = f"{goal.name}: {'PASS' if passed else 'FAIL'}"
        console.print(table)
    if not passed:
        raise typer.Exit(1)
