"""The full report: derived tables against the records, plots (also for degenerate runs), outputs, compare."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, SMALL_SPEC, TRTLLM_SPEC, load_records
from tests.test_report import STUDY, analysis, rec, table_after
from trtbench import analyze as an
from trtbench.plots import draw
from trtbench.records import Prediction
from trtbench.report import render, write_report
from trtbench.spec import parse_spec

SPEC = parse_spec(SMALL_SPEC)


def test_insights_are_facts_from_the_records():
    md = render(SPEC, analysis(), {}, 10)
    insights = md.split("## Key Performance Insights", 1)[1].split("\n## ", 1)[0]
    # Best per ISL: 128 -> 19,787.63, 1024 -> 11,168.38, 16384 -> 1,747.77: only 128 is within 10% of the peak.
    assert "**Best input length band**: ISL 128 (" in insights
    # Best per OSL: 1024 -> 19,787.63 and 512 -> 19,327.08 are within 10%; 128 (14,389.80) is not.
    assert "**Best output length band**: OSL 512-1024 (" in insights
    assert "19,787.63 output tokens/s at 128/1024 down to 1,747.77 at 16384/2048 (11.3x, -91.2%)" in insights
    assert "**Highest request rate**: 112.42 req/s at 128/128" in insights


def test_recommendations_by_hand():
    rows = table_after(render(SPEC, analysis(), {}, 10), "Recommendations")
    assert [r[:4] for r in rows] == [
        ["Maximum throughput", "128", "1024", "7,500"],
        ["Maximum request rate", "128", "128", "30,000"],
        # Within 10% of 19,787.63 are 128/1024 (19.32 req/s) and 128/512 (37.75 req/s): the latter.
        ["Balanced production", "128", "512", "15,000"],
    ]


def test_efficiency_is_throughput_over_the_bound():
    records = [rec(128, 128, 100, 1000.0, source="simulated", roofline_output_tok_per_s=4000.0),
               rec(256, 128, 100, 500.0, source="simulated", roofline_output_tok_per_s=2000.0)]
    rows = table_after(render(SPEC, analysis(records), {}, 10), "Efficiency vs Roofline")
    assert rows == [["128", "128", "100", "1,000.00", "4,000.00", "25.0%"], ["256", "128", "100", "500.00",
                                                                             "2,000.00", "25.0%"]]


def test_measured_points_sit_beside_predictions_and_big_misses_are_flagged():
    records = [rec(128, 128, 100, 1000.0, prediction=Prediction(status="ok", output_tok_per_s=1100.0)),  # +10%
               rec(256, 128, 100, 1000.0, prediction=Prediction(status="ok", output_tok_per_s=1300.0)),  # +30%
               rec(512, 128, 100, None, status="oom", prediction=Prediction(status="oom"))]
    md = render(SPEC, analysis(records), {}, 10)
    rows = table_after(md, "Measured vs Predicted")
    assert rows[0] == ["128", "128", "100", "1,000.00", "1,100.00", "+10.0%", ""]
    assert rows[1] == ["256", "128", "100", "1,000.00", "1,300.00", "+30.0%", "**> 25%**"]
    assert rows[2] == ["512", "128", "100", "oom", "oom", "-", ""]
    assert "1 point(s) disagree by more than 25%" in md


def test_simulated_report_has_no_prediction_table():
    md = render(SPEC, analysis([rec(128, 128, 1, 10.0, source="simulated")]), {}, 10)
    assert "## Measured vs Predicted" not in md


def test_outputs_are_written_and_agree(tmp_path):
    plots = draw(tmp_path, SPEC, analysis(), {})
    paths = [*write_report(tmp_path, SPEC, analysis(), {}, 10, plots), *plots.values()]
    names = {p.name for p in paths}
    assert {"report.md", "results.csv", "results.parquet", "heatmap.png", "throughput_vs_osl.png"} <= names
    csv = pd.read_csv(tmp_path / "results.csv")
    parquet = pd.read_parquet(tmp_path / "results.parquet")
    assert list(csv.columns) == [*an.IDENTITY_COLUMNS, *an.COLUMNS] == list(parquet.columns)
    assert len(csv) == len(STUDY) and csv["output_tok_per_s"].equals(parquet["output_tok_per_s"])
    report = (tmp_path / "report.md").read_text()
    for png in (p for p in paths if p.suffix == ".png"):
        assert f"]({png.name})" in report  # embedded
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_survive_a_run_where_everything_failed(tmp_path):
    failed = [rec(128, 128, 10, None, status="oom", cause="x"), rec(256, 512, 10, None, status="timeout")]
    plots = draw(tmp_path, SPEC, analysis(failed), {})
    assert set(plots) == {"heatmap"}  # the failure map still says what happened; nothing else can be drawn
    write_report(tmp_path, SPEC, analysis(failed), {}, 10)
    assert "0.0% (0/2)" in (tmp_path / "report.md").read_text()


def test_plots_survive_a_single_point(tmp_path):
    one = [rec(128, 128, 10, 100.0, source="simulated", avg_latency_s=2.0)]
    plots = draw(tmp_path, SPEC, analysis(one), {})
    assert {"heatmap", "throughput_vs_osl", "requests_vs_length"} <= set(plots)
    assert "pareto" not in plots  # one point per workload is no choice to trade


def test_a_sim_sweep_report_has_every_section_and_plot(cli, tmp_path):
    assert cli("sweep", str(REPO / "sweeps" / "smoke.yaml"), "--backend", "sim").code == 0
    run = tmp_path / "runs" / "smoke"
    report = (run / "report.md").read_text()
    for section in ("Top 10", "Best by Input Length", "Best by Output Length", "Key Performance Insights",
                    "Recommendations", "Failure Analysis", "Memory and Utilisation", "Efficiency vs Roofline",
                    "Plots", "Provenance"):
        assert f"## {section}" in report, section
    for plot in ("heatmap", "throughput_vs_osl", "requests_vs_length", "kv_capacity"):
        assert (run / f"{plot}.png").exists() and f"]({plot}.png)" in report
    assert not (run / "pareto.png").exists()  # no extra axis: nothing to choose for a workload
    df = pd.read_parquet(run / "results.parquet")
    assert (df["efficiency_pct"] > 0).all() and (df["efficiency_pct"] <= 100).all()


def test_measured_report_provenance(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("1.1.0")
    assert cli("sweep", str(write_spec(TRTLLM_SPEC))).code == 0
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    provenance = report.split("## Provenance", 1)[1]
    assert "| TensorRT-LLM | 1.1.0 |" in provenance
    assert "`" + str(REPO / "tests" / "fakes" / "trtllm-bench") + " --model nvidia/Llama-3.1-8B-FP8" in provenance
    assert "GPU-hours" in provenance
    # The simulator sat beside every measurement; a row is flagged exactly when the fake's toy number is more
    # than 25% from it (the fake's 128/1024 is 62% above the prediction, its 128/128 5% below).
    rows = table_after(report, "Measured vs Predicted")
    assert len(rows) == 4
    for row in rows:
        error = abs(float(row[5].rstrip("%")))
        assert (row[-1] == "**> 25%**") == (error > 25), row
    assert len({row[-1] for row in rows}) == 2  # some rows flagged, some not
    recs = load_records(tmp_path / "runs/tiny/results.jsonl")
    assert all(r["prediction"]["status"] == "ok" and r["prediction"]["output_tok_per_s"] > 0 for r in recs)


@pytest.fixture
def two_runs(cli, tmp_path):
    grid = (REPO / "sweeps" / "h100_grid.yaml").read_text()
    (tmp_path / "fp8.yaml").write_text(grid.replace("backend: auto", "backend: sim"))
    (tmp_path / "fp16.yaml").write_text(grid.replace("backend: auto", "backend: sim")
                                        .replace("name: h100_grid", "name: h100_fp16")
                                        .replace("precision: fp8", "precision: fp16"))
    assert cli("sweep", "--no-plots", "fp8.yaml").code == 0 and cli("sweep", "--no-plots", "fp16.yaml").code == 0
    return tmp_path / "runs" / "h100_grid", tmp_path / "runs" / "h100_fp16"


def test_compare_fp8_vs_fp16(cli, tmp_path, two_runs):
    a_dir, b_dir = two_runs
    result = cli("compare", str(a_dir), str(b_dir), "--out", "cmp")
    assert result.code == 0, result.err
    a = pd.read_csv(a_dir / "results.csv").set_index(["isl", "osl"])
    b = pd.read_csv(b_dir / "results.csv").set_index(["isl", "osl"])
    joined = pd.read_csv(tmp_path / "cmp" / "compare.csv").set_index(["isl", "osl"])
    assert len(joined) == 64
    # Hand-checked: B/A straight from the two runs' own records.
    for pair in [(128, 128), (1024, 1024), (4096, 512)]:
        a_tok, b_tok = a.loc[pair, "output_tok_per_s"], b.loc[pair, "output_tok_per_s"]
        assert joined.loc[pair, "ratio"] == pytest.approx(b_tok / a_tok)
        assert joined.loc[pair, "delta"] == pytest.approx(b_tok - a_tok)
    both = (a["status"] == "ok") & (b["status"] == "ok")
    geomean = math.exp(np.log(b.loc[both, "output_tok_per_s"] / a.loc[both, "output_tok_per_s"]).mean())
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert f"**{geomean:.3f}x**" in md
    assert geomean < 1  # FP16 weights stream twice the bytes: slower nearly everywhere
    only_b = sorted(p for p in a.index if a.loc[p, "status"] == "ok" and b.loc[p, "status"] != "ok")
    section = md.split("## Failed in one run only", 1)[1]
    for isl, osl in only_b:
        assert f"| {isl} | {osl} |" in section
    assert (tmp_path / "cmp" / "ratio_heatmap.png").exists()


def test_compare_refuses_runs_without_shared_points(cli, write_spec, tmp_path):
    assert cli("sweep", str(write_spec())).code == 0
    other = SMALL_SPEC.replace("name: tiny", "name: other").replace("isl: [128, 2048]", "isl: [64]")
    assert cli("sweep", str(write_spec(other, "other.yaml"))).code == 0
    result = cli("compare", "runs/tiny", "runs/other")
    assert result.code == 2 and "share no (ISL, OSL) point" in result.err
    assert not Path(tmp_path / "runs" / "compare_tiny_vs_other").exists()


def test_a_measurement_is_predicted_for_the_release_that_ran_it(cli, write_spec, tmp_path, fake_bench):
    """The spec names no version; the fake trtllm-bench is 1.1.0. The simulator beside each measurement predicts
    1.1 (trtllm-bench's 1.1 heuristic, 1.1's borrowed speed factor), exactly what a simulated sweep pinned to 1.1.0
    records, not what it says with no release known (no speed factor: 1.1 borrows 1.0's, 1.018)."""
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    beside = {r["point_id"]: r["prediction"]["output_tok_per_s"]
              for r in load_records(tmp_path / "runs/tiny/results.jsonl")}

    def simulated(name: str, version: str | None) -> list[float]:
        pin = f"trtllm: {{version: {version}}}\n" if version else ""
        spec = write_spec(SMALL_SPEC.replace("name: tiny", f"name: {name}") + pin)
        assert cli("sweep", "--no-plots", str(spec)).code == 0
        return sorted(r["metrics"]["output_tok_per_s"] for r in load_records(tmp_path / f"runs/{name}/results.jsonl"))

    pinned = simulated("pinned", "1.1.0")
    assert sorted(beside.values()) == pytest.approx(pinned, rel=1e-9)
    unknown = simulated("unknown", None)
    assert [p / u for p, u in zip(pinned, unknown, strict=True)] == pytest.approx([1.018] * 4, abs=0.002)


def test_plan_predicts_the_real_path_for_the_installed_release(cli, write_spec, fake_bench):
    """`plan` on a trtllm spec that names no version predicts what its sweep's records will carry beside the
    measurements: the installed release's (0.21.0 here, speed factor 0.972), the same table as a spec pinned to
    it, and another than on 1.1.0 (1.018)."""
    def verdicts(spec: str) -> str:
        result = cli("plan", str(write_spec(spec)))
        assert result.code == 0, result.err
        return result.out.split("model:", 1)[0]

    fake_bench.version("0.21.0")
    installed = verdicts(TRTLLM_SPEC)
    assert installed == verdicts(TRTLLM_SPEC + "trtllm: {version: 0.21.0}\n")
    fake_bench.version("1.1.0")
    assert verdicts(TRTLLM_SPEC) != installed
