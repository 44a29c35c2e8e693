"""The CLI end to end, as a user runs it: a real process, the shipped sweep files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, load_records
from trtbench import __version__


def trtbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "trtbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_version(tmp_path):
    result = trtbench("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"trtbench {__version__}"


@pytest.mark.slow
def test_smoke_sweep_end_to_end(tmp_path):
    result = trtbench("sweep", str(REPO / "sweeps" / "smoke.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "backend auto -> sim" in result.stderr and "SIMULATED" in result.stderr
    run_dir = tmp_path / "runs" / "smoke"
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4
    axes = [json.loads(line)["axes"] for line in lines]
    assert {(r["isl"], r["osl"]) for r in axes} == {(128, 128), (128, 1024), (1024, 128), (1024, 1024)}
    report = (run_dir / "report.md").read_text()
    assert "Top 10 Configurations by Token Throughput" in report and "**SIMULATED**" in report
    assert len((run_dir / "results.csv").read_text().splitlines()) == 5
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["provenance"]["backend"]["backend"] == "sim" and len(meta["point_ids"]) == 4

    (run_dir / "report.md").unlink()
    again = trtbench("report", "runs/smoke", "--top", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Top 2 Configurations" in (run_dir / "report.md").read_text()


def test_plan_shows_verdicts_and_runs_nothing(tmp_path):
    result = trtbench("plan", str(REPO / "sweeps" / "h100_grid.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    grid_table = result.stdout.split("Engines for")[0]  # the h100 grid is backend auto: engines follow
    rows = [line for line in grid_table.splitlines() if line.startswith("│") and not line.startswith("│     ")]
    assert len(rows) == 64  # one per point (a long cause wraps onto lines whose first cells are blank)
    assert "Engines for TensorRT-LLM" in result.stdout
    assert "30,000" in result.stdout and "simulated" in result.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_h100_grid_sweep(tmp_path):
    result = trtbench("sweep", str(REPO / "sweeps" / "h100_grid.yaml"), "--backend", "sim", "--no-plots", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = load_records(tmp_path / "runs/h100_grid/results.jsonl")
    assert len(records) == 64 and len({r["point_id"] for r in records}) == 64
    by_pair = {(r["isl"], r["osl"]): r for r in records}
    assert by_pair[(128, 128)]["requests"] == 30000 and by_pair[(16384, 2048)]["requests"] == 200
    # The simulator records its prediction; the report compares the predicted wall time with timeout_s.
    assert by_pair[(16384, 16384)]["predicted_wall_s"] > 1800
    table = pd.read_csv(tmp_path / "runs/h100_grid/results.csv")
    worst = table[(table["isl"] == 16384) & (table["osl"] == 16384)].iloc[0]
    assert worst["status"] == "timeout" and "KV cache holds" in worst["cause"]
    report = (tmp_path / "runs/h100_grid/report.md").read_text()
    ok = int((table["status"] == "ok").sum())
    assert f"% ({ok}/64)" in report
    assert "| 16384 | 16384 | 200 |" in report  # the failure is a row of the failure table
