"""`trtbench predict` (one point and CSV batches) and `trtbench calibrate` from the command line."""

from __future__ import annotations

import json

import pandas as pd

from trtbench.sim import calibration


def test_predict_one_point_json(cli):
    result = cli("predict", "--gpu", "H100-SXM-80GB", "--model", "meta-llama/Llama-3.1-8B", "--precision", "fp8",
                 "--isl", "128", "--osl", "128", "--requests", "30000", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["gpu"] == "h100-sxm" and data["status"] == "ok" and data["source"] == "simulated"
    assert 20_000 < data["metrics"]["output_tok_per_s"] < 35_000
    assert data["memory"]["kv_tokens"] > 900_000
    assert "fitted on" in data["model_version"]


def test_predict_reports_oom_as_a_verdict(cli):
    result = cli("predict", "--gpu", "l4", "--model", "Llama-3.1-70B", "--precision", "bf16", "--isl", "128",
                 "--osl", "128", "--requests", "10", "--json")
    data = json.loads(result.out)
    assert result.code == 0 and data["status"] == "oom" and data["metrics"] is None


def test_predict_takes_ep_and_refuses_one_that_does_not_divide_tp(cli):
    base = ("predict", "--gpu", "h200-sxm", "--model", "Qwen/Qwen3-235B-A22B", "--precision", "fp8", "--tp", "8",
            "--isl", "8192", "--osl", "128", "--requests", "1500")
    whole, sliced = (json.loads(cli(*base, *extra, "--json").out) for extra in (("--ep", "8"), ()))
    assert (whole["ep"], sliced["ep"]) == (8, 1)
    # whole experts per rank run the fused MoE's grouped GEMMs about 3x faster than a 192-wide slice of each
    assert whole["metrics"]["output_tok_per_s"] > 1.2 * sliced["metrics"]["output_tok_per_s"]
    text = cli(*base, "--ep", "8")
    assert text.code == 0 and "TP8 EP8" in text.out
    bad = cli(*base, "--ep", "3")
    assert bad.code == 2 and "ep 3 does not divide tp 8" in bad.err and len(bad.err.strip().splitlines()) == 1


def test_predict_csv(cli, tmp_path):
    rows = pd.DataFrame({
        "gpu": ["H100-SXM-80GB", "h200-sxm", "a100-sxm-80gb"],
        "model": ["Llama-3.1-8B", "meta-llama/Llama-3.3-70B-Instruct", "Llama-3-8B"],
        "precision": ["fp8", "fp8", "fp16"], "tp": [1, 2, 1], "isl": [128, 1024, 1024], "osl": [128, 1024, 8192],
        "num_requests": [1000, 500, 100], "note": ["a", "b", "c"],
    })
    rows.to_csv(tmp_path / "in.csv", index=False)
    result = cli("predict", "--csv", "in.csv", "--out", "out.csv")
    assert result.code == 0, result.err
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:8]) == list(rows.columns)  # input columns first, extra ones copied
    assert list(out["note"]) == ["a", "b", "c"]
    assert list(out["pred_status"]) == ["ok", "ok", "infeasible"]  # Llama-3-8B stops at 8,192 positions
    assert out["pred_output_tok_per_s"].iloc[0] > 0 and out["pred_kv_tokens"].iloc[1] > 0


def test_predict_csv_bad_rows_are_clean_errors(cli, tmp_path):
    (tmp_path / "bad.csv").write_text("gpu,model,precision,tp,isl,osl,num_requests\nh100-sxm,Llama-3.1-8B,fp8,1,-5,"
                                      "128,10\n")
    result = cli("predict", "--csv", "bad.csv")
    assert result.code == 2 and "row 1: isl -5 is not a positive integer" in result.err
    (tmp_path / "gpu.csv").write_text("gpu,isl,osl,num_requests\nvoodoo,128,128,10\n")
    result = cli("predict", "--csv", "gpu.csv")
    assert result.code == 2 and "row 1: unknown GPU 'voodoo'" in result.err
    assert cli("predict", "--csv", "missing.csv").code == 2


def test_calibrate_prints_error_mape_and_spearman(cli):
    path = calibration.data_path(calibration.CALIBRATION_DATA[0])
    result = cli("calibrate", str(path), "--gpu", "h100-sxm", "--kv-fraction", "0.95")
    assert result.code == 0, result.err
    assert "MAPE" in result.out and "Spearman" in result.out and "26,401.48" in result.out  # results: stdout


def test_calibrate_names_the_better_gpu(cli):
    path = calibration.data_path("h100_study_002.csv")
    result = cli("calibrate", str(path), "--gpu", "h100-sxm", "--gpu", "h100-pcie")
    assert result.code == 0
    assert "best fit: h100-pcie (MAPE h100-sxm" in result.out.replace("\n", " ")
