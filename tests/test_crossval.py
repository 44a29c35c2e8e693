"""Honest uncertainty: the fit cross-validated by group, and every stated error the out-of-sample one (a floor
outside the calibration), never the fit's error on its own rows."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from trtbench.commands.calibrate import claims
from trtbench.deployment import make_deployment
from trtbench.report import calibration_note
from trtbench.sim import calibration, crossval

# Four rows, numbers chosen so that every held-out error can be worked out by hand (below).
ROWS = pd.DataFrame({
    "id": [0, 1, 2, 3],
    "gpu": ["H100 SXM 80GB", "H200-SXM-141GB", "h200-sxm", "h200-sxm"],
    "model": ["Llama-3.1-8B", "Llama-3.1-8B", "Llama-3.1-70B", "Llama-3.3-70B"],
    "tp": [1, 1, 2, 2],
    "isl": [128, 2048, 1000, 128],  # decode-heavy, prefill-heavy, mixed, mixed
    "osl": [2048, 128, 1000, 128],
    "output_tok_per_s": [100.0, 300.0, 400.0, 800.0],
})


class MeanFit:
    """A fake fit: predicts the mean throughput of the rows it was fitted on, and remembers which rows those were."""

    def __init__(self) -> None:
        self.seen: list[set[int]] = []

    def __call__(self, train: pd.DataFrame) -> crossval.Predictor:
        self.seen.append(set(train["id"]))
        mean = float(train["output_tok_per_s"].mean())
        return lambda rows: [mean] * len(rows)


def test_each_fold_fits_without_its_held_out_rows():
    fit = MeanFit()
    cv = crossval.cross_validate(ROWS, fit)
    # folds in order: TP1, TP2; H100, H200; 8B, 70B (the two 70B versions are one size)
    assert fit.seen == [{2, 3}, {0, 1}, {1, 2, 3}, {0}, {2, 3}, {0, 1}]
    assert cv["folds"] == {"tp": {"1": {"held_out": 2, "fitted_on": 2}, "2": {"held_out": 2, "fitted_on": 2}},
                           "gpu": {"h100-sxm": {"held_out": 1, "fitted_on": 3},
                                   "h200-sxm": {"held_out": 3, "fitted_on": 1}},
                           "model": {"8B": {"held_out": 2, "fitted_on": 2}, "70B": {"held_out": 2, "fitted_on": 2}}}
    assert cv["groups"] == {"tp": ["1", "2"], "gpu": ["h100-sxm", "h200-sxm"], "model": ["8B", "70B"]}


def test_each_groups_error_is_its_held_out_rows_mape():
    cv = crossval.cross_validate(ROWS, MeanFit())
    # TP1 out: fitted on 400 and 800 -> 600; |600-100|/100 = 500%, |600-300|/300 = 100%
    # TP2 out: 200; |200-400|/400 = 50%, |200-800|/800 = 75%
    assert cv["by_tp"] == {"1": 300.0, "2": 62.5}
    # H100 out: (300+400+800)/3 = 500 -> 400%; H200 out: 100 -> 66.67%, 75%, 87.5%
    assert cv["by_gpu"] == {"h100-sxm": 400.0, "h200-sxm": 76.39}
    assert cv["by_model"] == {"8B": 300.0, "70B": 62.5}  # the same rows as the TP folds
    # each row once per family: row 0 500, 400, 500; row 1 100, 66.67, 100; rows 2-3 50, 75, 50 and 75, 87.5, 75
    assert cv["by_regime"] == {"decode-heavy": 466.67, "mixed": 68.75, "prefill-heavy": 88.89}
    assert cv["by_family"] == {"gpu": 157.29, "model": 181.25, "tp": 181.25}  # gpu: (400 + 66.67 + 75 + 87.5) / 4
    assert cv["mape_pct"] == 173.26  # (1400 + 266.67 + 175 + 237.5) / 12


def test_a_row_the_fold_cannot_predict_counts_as_fully_wrong_and_a_lone_group_gets_no_fold():
    one_gpu = ROWS[ROWS["gpu"] != "H100 SXM 80GB"].assign(model="Llama-3.1-8B")  # one GPU, one model size
    cv = crossval.cross_validate(one_gpu, lambda train: lambda rows: [math.nan] * len(rows))
    assert list(cv["folds"]) == ["tp"] and cv["by_tp"] == {"1": 100.0, "2": 100.0}
    assert cv["groups"]["gpu"] == ["h200-sxm"] and "by_gpu" not in cv


def test_fitted_models_name_the_sizes_and_shapes_the_rows_hold():
    models = crossval.fitted_models(ROWS)
    assert list(models) == ["Llama-3.1-70B", "Llama-3.1-8B", "Llama-3.3-70B"]
    assert models["Llama-3.1-8B"]["group"] == "8B" and models["Llama-3.3-70B"]["group"] == "70B"
    assert models["Llama-3.1-8B"]["params_b"] == 8.03  # Meta's 8.03B
    assert models["Llama-3.1-8B"]["shape"]["hidden"] == 4096 and models["Llama-3.1-70B"]["shape"]["layers"] == 80


INFO = {
    "mape_pct": 1.0,  # the fit's own error: never the number stated
    "release_factors": {"0.19": 0.975, "1.0": 1.019},
    "models": crossval.fitted_models(ROWS),
    "cv": {"groups": {"tp": ["1", "2", "4", "8"], "gpu": ["h100-sxm", "h200-sxm"], "model": ["8B", "70B"]},
           "by_tp": {"1": 4.0, "2": 6.0, "4": 5.0, "8": 9.0}, "by_gpu": {"h100-sxm": 7.0, "h200-sxm": 3.0},
           "by_model": {"8B": 5.5, "70B": 4.5}},
}
QWEN_14B = {"_name_or_path": "Qwen/Qwen2.5-14B", "model_type": "qwen2", "hidden_size": 5120,
            "intermediate_size": 13824, "num_hidden_layers": 48, "num_attention_heads": 40,
            "num_key_value_heads": 8, "vocab_size": 152064, "max_position_embeddings": 32768}


def test_inside_the_calibration_the_error_is_the_largest_of_its_groups_held_out():
    inside = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", tp=4), INFO)
    assert (inside.calibrated, inside.outside, inside.lower_bound) == (True, (), False)
    assert inside.error_pct == inside.expected_error_pct == 5.0  # TP4 5.0 > 70B 4.5 > H200 3.0
    assert inside.describe() == "inside the calibration (out-of-sample error ~5.0% for TP4)"
    h100 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8"), INFO)
    assert (h100.error_pct, h100.basis) == (7.0, "H100 SXM 80GB")  # H100 7.0 > 8B 5.5 > TP1 4.0
    llama3 = calibration.coverage(make_deployment("meta-llama/Meta-Llama-3-8B", "h200-sxm", "fp8"), INFO)
    assert llama3.calibrated and llama3.error_pct == 5.5  # the same shape as Llama-3.1-8B


def test_a_model_never_fitted_is_outside_whatever_its_tp_and_gpu(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(QWEN_14B))
    qwen = calibration.coverage(make_deployment("Qwen/Qwen2.5-14B", "h200-sxm", "fp8", config=str(tmp_path)), INFO)
    assert not qwen.calibrated and qwen.expected_error_pct is None and qwen.lower_bound
    assert qwen.outside == ("no calibration rows for Qwen/Qwen2.5-14B (14.8B parameters (dense); fitted on "
                            "Llama-3.1-70B, Llama-3.1-8B, Llama-3.3-70B)",)
    assert (qwen.error_pct, qwen.basis) == (5.5, "8B models")  # 14.8B is nearer 8B than 70B in ratio
    assert qwen.describe() == ("outside the calibration (no calibration rows for Qwen/Qwen2.5-14B (14.8B parameters "
                               "(dense); fitted on Llama-3.1-70B, Llama-3.1-8B, Llama-3.3-70B)): error at least 5.5% "
                               "(the nearest calibrated group's, 8B models), likely more")
    preset = calibration.coverage(make_deployment("Qwen/Qwen2.5-7B", "h200-sxm", "fp8"), INFO)
    assert any(r.startswith("no calibration rows for Qwen2.5-7B") for r in preset.outside)


def test_outside_the_error_is_the_nearest_groups_as_a_floor():
    tp16 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", tp=16), INFO)
    assert tp16.outside == ("TP16 (fitted on TP 1, 2, 4, 8)",)
    assert (tp16.error_pct, tp16.basis, tp16.lower_bound) == (9.0, "TP8", True)
    l4 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "l4", "fp8"), INFO)
    assert l4.outside == ("no calibration rows for L4 24GB (ada; fitted on h100-sxm, h200-sxm)",)
    assert (l4.error_pct, l4.basis) == (7.0, "H100 SXM 80GB")  # 0.3 TB/s: nearer the H100's 3.35 than 4.8


def test_precision_kv_cache_and_release_outside_the_rows():
    fp16 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp16"), INFO)
    assert fp16.outside == ("fp16 weights (fitted on FP8)", "a 16-bit KV cache (fitted on FP8 KV)")
    kv16 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8",
                                                kv_cache_dtype="auto"), INFO)
    assert kv16.outside == ("a 16-bit KV cache (fitted on FP8 KV)",) and kv16.error_pct == 5.5
    old = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8", release="0.17"), INFO)
    assert old.outside == ("release 0.17 has no calibration rows (used 0.19's speed)",)


def test_weight_and_kv_formats_are_judged_by_what_rows_of_their_kind_ran():
    rows = pd.DataFrame({"model": ["Llama-3.1-8B", "Mixtral-8x7B", "Mixtral-8x7B", "Llama-3.1-405B"],
                         "precision": ["FP8", "FP16", "FP8", "FP4"],
                         "kv_cache_dtype": ["", "fp16 (unquantized engine)", "fp8", "per checkpoint (NVFP4 export)"]})
    formats = crossval.fitted_formats(rows)
    assert formats == {"dense": {"precisions": ["fp8"], "kv_bytes": [1]},
                       "moe_or_nvfp4": {"precisions": ["fp16", "fp8", "nvfp4"], "kv_bytes": [1, 2]}}
    info = {**INFO, "formats": formats}
    mixtral = make_deployment("mistralai/Mixtral-8x7B-v0.1", "h200-sxm", "fp16")
    assert not any("weights" in why or "KV cache" in why for why in calibration.coverage(mixtral, info).outside)
    dense16 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp16"), info)
    assert dense16.outside == ("fp16 weights (fitted on FP8)", "a 16-bit KV cache (fitted on FP8 KV)")
    gpt = calibration.coverage(make_deployment("openai/gpt-oss-120b", "h200-sxm", "mxfp4"), info)
    assert "mxfp4 weights (fitted on FP16, FP8, NVFP4)" in gpt.outside


def test_attention_dp_is_outside_with_its_rows_error_in_the_fit_as_the_floor():
    info = {**INFO, "mape_by_parallelism": {"TP4": 3.0, "DEP4": 32.77}}
    dep4 = calibration.coverage(make_deployment("mistralai/Mixtral-8x7B-v0.1", "h200-sxm", "fp8", tp=4,
                                                attention_dp=True), info)
    assert ("attention data parallelism (its calibration rows are off by 33% on average within the fit: what it "
            "costs per GPU is not understood)") in dep4.outside
    assert (dep4.error_pct, dep4.basis, dep4.lower_bound) == (32.77, "DEP4 rows, within the fit", True)


def test_a_calibration_never_cross_validated_states_no_error():
    bare = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8"),
                                {"mape_pct": 4.3, "gpus": ["h200-sxm"]})
    assert bare.outside == ("its error was never cross-validated (`trtbench calibrate --cv --write`)",)
    assert bare.error_pct == 0.0 and bare.lower_bound
    assert bare.describe() == ("outside the calibration (its error was never cross-validated (`trtbench calibrate "
                               "--cv --write`)): error unknown")


def test_the_model_name_records_carry_names_the_held_out_error_never_the_fits():
    fitted = {"fitted_on": ["a.csv", "b.csv"], "rows": 381, "mape_pct": 9.2}
    assert calibration.describe(fitted) == "fitted on a.csv + b.csv (381 rows, never cross-validated)"
    assert calibration.describe({**fitted, "cv": {"mape_pct": 11.32}}) == \
        "fitted on a.csv + b.csv (381 rows, held-out error 11.3%)"


def test_the_report_banner_states_the_out_of_sample_error_never_the_fits():
    inside = {"fit_mape_pct": 1.0, "outside": [], "error_pct": 5.0, "lower_bound": False, "basis": "TP4"}
    assert calibration_note(inside) == (" This sweep is inside its calibration: out-of-sample error about 5.0% (TP4 "
                                        "held out of the fit).")
    outside = {**inside, "outside": ["TP16 (fitted on TP 1, 2, 4, 8)"], "error_pct": 9.0, "lower_bound": True,
               "basis": "TP8"}
    assert calibration_note(outside) == (" Expect an error of **at least 9.0%, outside the calibration**: TP16 "
                                         "(fitted on TP 1, 2, 4, 8) (the floor is the nearest calibrated group's "
                                         "out-of-sample error, TP8 held out of the fit), likely more.")
    # a run recorded before the cross-validation: its only number is the fit's own, which is not stated
    legacy = {"mape_pct": 4.3, "outside": [], "expected_error_pct": 3.47}
    assert calibration_note(legacy) == ""
    assert calibration_note({**legacy, "outside": ["bf16 weights (fitted on FP8)"]}) == (
        " This sweep is **outside the calibration**: bf16 weights (fitted on FP8).")


def test_calibrate_on_a_measured_run_sets_its_error_beside_the_claim():
    scored = pd.DataFrame({"model": ["meta-llama/Llama-3.1-8B"] * 3 + ["Qwen/Qwen2.5-7B"],
                           "gpu": ["h200-sxm"] * 3 + ["h100-sxm"], "precision": "fp8", "kv_cache_dtype": "fp8",
                           "tp": [4, 4, 4, 1], "pp": 1, "error_pct": [-3.0, 5.0, 13.0, 2.0]})
    assert claims(scored, INFO) == [
        # (3 + 5 + 13) / 3 = 7.0 against 8B's 5.5, the largest of TP4 5.0, H200 3.0, 8B 5.5
        "on this run, meta-llama/Llama-3.1-8B fp8 on H200 SXM 141GB, TP4: MAPE 7.0% over 3 measured points; the "
        "calibration claimed ~5.5% out of sample (for 8B models): worse than claimed",
        "on this run, Qwen/Qwen2.5-7B fp8 on H100 SXM 80GB, TP1: MAPE 2.0% over 1 measured points; the calibration "
        "claimed at least 7.0% (outside the calibration: no calibration rows for Qwen2.5-7B (7.6B parameters "
        "(dense); fitted on Llama-3.1-70B, Llama-3.1-8B, Llama-3.3-70B)): better than that bound",
    ]


def test_write_needs_something_to_write_and_cv_write_only_the_committed_inputs(cli):
    table = str(calibration.data_path(calibration.CALIBRATION_DATA[0]))
    result = cli("calibrate", table, "--write")
    assert result.code == 2 and "--write stores what --fit or --cv computes" in result.err
    result = cli("calibrate", table, "--cv", "--write")
    assert result.code == 2 and len(result.err.splitlines()) == 1 and "give its CSVs" in result.err


@pytest.mark.parametrize(("config", "name"), [
    (QWEN_14B, "Qwen/Qwen2.5-14B"),  # its own _name_or_path
    ({k: v for k, v in QWEN_14B.items() if k != "_name_or_path"}, "Qwen2.5-14B"),  # the checkpoint's folder
])
def test_predict_names_the_model_from_its_config(cli, tmp_path, config, name):
    folder = tmp_path / "Qwen2.5-14B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    result = cli("predict", "--config", str(folder / "config.json"), "--gpu", "h200-sxm", "--isl", "128", "--osl",
                 "128", "--requests", "100")
    assert result.code == 0, result.err
    text = " ".join(result.out.replace("│", " ").split())  # the table is the answer: stdout
    assert f"{name} fp8 on H200 SXM 141GB, TP1" in text and "Llama-3.1-8B" not in text.split("fitted on")[0]
    assert f"no calibration rows for {name}" in text and "error at least" in text
    data = json.loads(cli("predict", "--config", str(folder / "config.json"), "--isl", "128", "--osl", "128",
                          "--requests", "100", "--json").out)
    assert data["model"] == name and data["calibration"]["lower_bound"] is True


def test_predict_names_a_config_file_by_its_file_name(cli, tmp_path):
    (tmp_path / "qwen14b.json").write_text(json.dumps({k: v for k, v in QWEN_14B.items() if k != "_name_or_path"}))
    data = json.loads(cli("predict", "--config", "qwen14b.json", "--isl", "128", "--osl", "128", "--requests", "100",
                          "--json").out)
    assert data["model"] == "qwen14b"


def test_held_out_errors_are_also_split_by_kind_of_row():
    """A mixture of experts (and NVFP4 weights) is scored apart from the dense rows, so its larger errors never
    widen a dense deployment's stated error."""
    rows = pd.concat([ROWS, pd.DataFrame({"id": [4], "gpu": ["h200-sxm"], "model": ["mistralai/Mixtral-8x7B-v0.1"],
                                          "tp": [2], "isl": [128], "osl": [128], "output_tok_per_s": [1000.0]})],
                     ignore_index=True)
    cv = crossval.cross_validate(rows, MeanFit())
    # TP2 out: fitted on rows 0-1 -> 200: dense rows 2, 3: 50%, 75%; Mixtral row 4: |200-1000|/1000 = 80%
    # TP1 out: fitted on rows 2-4 -> 2200/3 = 733.33: |733.33-100|/100 = 633.33%, |733.33-300|/300 = 144.44%
    assert cv["by_kind"]["dense"]["by_tp"] == {"1": 388.89, "2": 62.5}
    assert cv["by_kind"]["moe_or_nvfp4"]["by_tp"] == {"2": 80.0}
    assert cv["by_tp"]["2"] == 68.33  # (50 + 75 + 80) / 3: all rows together
    assert cv["by_kind"]["moe_or_nvfp4"]["by_model"] == {"7B": 60.0}  # 7B out: (100+300+400+800)/4 = 400 -> 60%


def test_a_published_fp4_row_is_an_nvfp4_row():
    # NVIDIA's tables say "FP4" for an NVFP4 checkpoint: its held-out errors belong to the NVFP4 block, not the
    # dense FP8 one (the 405B B200 rows once widened a dense deployment's stated error)
    rows = pd.DataFrame({"model": ["Llama-3.1-405B", "Llama-3.1-405B", "Llama-3.1-70B"],
                         "precision": ["FP4", "nvfp4", "FP8"]})
    assert crossval.kinds(rows) == ["moe_or_nvfp4", "moe_or_nvfp4", "dense"]


def test_a_deployment_is_judged_on_the_rows_of_its_kind():
    info = {**INFO, "cv": {**INFO["cv"], "by_kind": {
        "dense": {"by_tp": {"1": 4.0, "4": 5.0}, "by_gpu": {"h200-sxm": 3.0}, "by_model": {"70B": 4.5}},
        "moe_or_nvfp4": {"by_tp": {"4": 20.0}, "by_gpu": {"h200-sxm": 18.0, "b200": 28.0},
                         "by_model": {"70B": 12.0}}}}}
    dense = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", tp=4), info)
    assert (dense.calibrated, dense.error_pct, dense.basis) == (True, 5.0, "TP4")  # not the mixtures' 20
    b200 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "b200", "fp8", tp=4), info)
    assert b200.outside[0].startswith("no calibration rows for B200")  # NVFP4 rows ran there, no dense FP8 ones
    nvfp4 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "b200", "nvfp4", tp=4), info)
    assert (nvfp4.error_pct, nvfp4.basis) == (28.0, "B200 180GB")  # B200 28 > TP4 20 > 70B 12


def test_the_mixture_rows_leave_a_dense_deployments_committed_error_as_it_was():
    """Llama-3.1-70B FP8 at TP4 on H200 is judged on the dense rows' held-out errors (the committed calibration of
    2026-12-07: TP4 3.73, H200 5.92, 70B 5.94), not on all rows' (TP4 7.27, most of it the mixtures' and
    attention DP's)."""
    dep = make_deployment("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", tp=4)
    assert (calibration.coverage(dep).error_pct, calibration.coverage(dep).basis) == (5.94, "70B models")
    assert calibration.load()[1]["cv"]["by_tp"]["4"] == 7.27
