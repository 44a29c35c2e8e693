"""The core's promises: harmless edits re-run nothing, extra axes are swept and reported, runs written by
trtbench 0.1.0 are reported and resumed as they are, and `--version` loads no analysis stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SMALL_SPEC, load_records
from trtbench.records import Status, parse_record

LEGACY = REPO / "tests" / "data" / "run_v0_1_0"


@pytest.mark.parametrize("edit", ["runtime:\n  timeout_s: 99\n", "trtllm: {log_level: debug}\n"])
def test_resume_after_a_harmless_edit_runs_nothing(cli, write_spec, tmp_path, edit):
    assert cli("sweep", str(write_spec()), "--no-plots").code == 0
    before = (tmp_path / "runs/tiny/results.jsonl").read_bytes()
    again = cli("sweep", str(write_spec(SMALL_SPEC + edit)), "--no-plots")
    assert again.code == 0 and "4 point(s) already recorded, 0 run now" in again.err
    assert (tmp_path / "runs/tiny/results.jsonl").read_bytes() == before


AXES_SPEC = """\
name: axes
model: meta-llama/Llama-3.1-70B
gpu: h100-sxm
kv_cache_dtype: fp8
backend: sim
grid:
  tp: [2, 4]
  precision: [fp8, fp16]
  isl: [128, 2048]
  osl: [128, 1024]
requests:
  default: {fixed: 200}
"""


def test_tp_and_precision_axes_on_the_simulator(cli, write_spec, tmp_path):
    result = cli("sweep", str(write_spec(AXES_SPEC)), "--no-plots")
    assert result.code == 0, result.err
    records = load_records(tmp_path / "runs/axes/results.jsonl")
    combos = {(r["tp"], r["precision"], r["isl"], r["osl"]) for r in records}
    assert len(records) == 16 and len(combos) == 16
    table = pd.read_csv(tmp_path / "runs/axes/results.csv")
    assert list(table.columns[:12]) == ["model", "gpu", "precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp",
                                        "trtllm_version", "isl", "osl", "requests"]  # what ran first, swept or not
    assert (table["ep"] == 1).all() and not table["attention_dp"].any()  # unset: what the run gets
    # 70B in FP16 is 141 GB of weights: 70.5 GB per GPU at TP2 leaves a KV pool, at TP4 twice the room.
    kv = table.set_index(["precision", "tp", "isl", "osl"])["kv_pool_gib"]
    assert kv[("fp16", 4, 128, 128)] > kv[("fp16", 2, 128, 128)] > 0
    report = (tmp_path / "runs/axes/report.md").read_text()
    top = report.split("## Top 10", 1)[1].split("\n## ", 1)[0]
    assert "| Rank | Precision | TP | ISL | OSL |" in top
    best_isl = report.split("## Best by Input Length", 1)[1].split("\n## ", 1)[0]
    assert best_isl.count("### ") == 4 and "### Precision fp16, TP 4" in best_isl


def test_compare_matches_points_on_shared_axes(cli, write_spec, tmp_path):
    assert cli("sweep", str(write_spec(AXES_SPEC)), "--no-plots").code == 0
    fp8 = AXES_SPEC.replace("name: axes", "name: axes8").replace("precision: [fp8, fp16]", "precision: [fp8]")
    assert cli("sweep", str(write_spec(fp8, "b.yaml")), "--no-plots").code == 0
    result = cli("compare", "runs/axes", "runs/axes8", "--out", "cmp", "--no-plots")
    assert result.code == 0, result.err
    joined = pd.read_csv(tmp_path / "cmp/compare.csv")
    # Both sweep TP and precision: the 8 FP8 points match themselves exactly.
    assert len(joined) == 8 and set(joined["precision"]) == {"fp8"} and (joined["ratio"] == 1.0).all()


def _legacy(tmp_path: Path, name: str) -> Path:
    run = tmp_path / "runs" / name
    shutil.copytree(LEGACY / name, run)
    return run


def test_a_0_1_0_record_reads_into_the_current_schema():
    line = (LEGACY / "legacy_trtllm" / "results.jsonl").read_text().splitlines()[2]
    record = parse_record(line)
    assert record.status is Status.OOM and (record.isl, record.osl, record.requests) == (2048, 128, 100)
    assert record.command is not None and record.command[0].endswith("trtllm-bench")
    assert record.prediction is not None and record.prediction.status is Status.OK


def test_a_0_1_0_run_is_reported_without_changes(cli, tmp_path):
    run = _legacy(tmp_path, "legacy_trtllm")
    before = (run / "results.jsonl").read_bytes()
    result = cli("report", str(run), "--no-plots")
    assert result.code == 0, result.err
    assert (run / "results.jsonl").read_bytes() == before
    report = (run / "report.md").read_text()
    assert "50.0% (2/4)" in report and "Measured vs Predicted" in report


@pytest.mark.parametrize("name", ["legacy_trtllm"])
def test_a_0_1_0_run_resumes_without_running_anything(cli, tmp_path, fake_bench, name):
    fake_bench.version("1.1.0")
    run = _legacy(tmp_path, name)
    old = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    result = cli("sweep", str(run / "spec.yaml"), "--no-plots")
    assert result.code == 0, result.err
    assert "upgraded: 4 record(s)" in result.err and "4 point(s) already recorded, 0 run now" in result.err
    assert fake_bench.printed() == []  # trtllm-bench never ran
    new = load_records(run / "results.jsonl")
    assert [(r["isl"], r["osl"], r["status"]) for r in new] == [(r["isl"], r["osl"], r["status"]) for r in old]
    assert all(r["schema_version"] == 1 for r in new)
    assert (run / "results.v0.jsonl").read_bytes() == (LEGACY / name / "results.jsonl").read_bytes()
    meta = json.loads((run / "run.json").read_text())
    assert meta["schema_version"] == 1 and set(meta["point_ids"]) == {r["point_id"] for r in new}


def test_a_0_1_0_simulated_run_by_an_older_simulator_is_predicted_again_and_its_records_kept_stale(cli, tmp_path):
    run = _legacy(tmp_path, "legacy_sim")  # predicted by ifb-sim v2; the simulator is now v3
    result = cli("sweep", str(run / "spec.yaml"), "--no-plots")
    assert result.code == 0, result.err
    assert "upgraded" not in result.err and len(load_records(run / "results.jsonl")) == 8
    assert "4 record(s) from an earlier version of the spec" in (run / "report.md").read_text()


def test_a_0_1_0_run_with_a_changed_spec_keeps_its_records_as_stale(cli, tmp_path, write_spec):
    run = _legacy(tmp_path, "legacy_sim")
    changed = (run / "spec.yaml").read_text().replace("kv_cache_free_gpu_mem_fraction: 0.9",
                                                      "kv_cache_free_gpu_mem_fraction: 0.8")
    result = cli("sweep", str(write_spec(changed)), "--no-plots", "--update")
    assert result.code == 0, result.err
    assert "upgraded" not in result.err and len(load_records(run / "results.jsonl")) == 8
    assert "4 record(s) from an earlier version of the spec" in (run / "report.md").read_text()


def test_version_loads_no_analysis_stack():
    code = ("import sys; sys.argv = ['trtbench', '--version']\nfrom trtbench.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
