"""Issue 24: answers a user can act on. The right winner where GPU counts differ, failures counted and in the
exit status, one verdict per point that plan, sweep, status, report and --retry-failed share, one KV default."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC, load_records
from trtbench import analyze as an
from trtbench.records import Memory, Metrics, Outcome, Source, Status
from trtbench.spec import RankBy, parse_spec
from trtbench.tally import Tally
from trtbench.verdict import judge

TP_GRID = """\
name: tp70
model: meta-llama/Llama-3.1-70B
gpu: h100-sxm
precision: fp8
backend: sim
grid:
  tp: [2, 4, 8]
  isl: [1024]
  osl: [1024]
requests:
  default: {fixed: 3000}
"""


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Results rows as analysis builds them, from the columns that ranking reads."""
    base = {"status": "ok", "accuracy": None, "isl": 1024, "osl": 1024, "requests": 1000, "joules_per_token": None}
    df = pd.DataFrame([{**base, **r} for r in rows])
    df["output_tok_per_s_per_gpu"] = df["output_tok_per_s"] / df["gpus"]
    df["request_per_s_per_gpu"] = df["request_per_s"] / df["gpus"]
    return df


# The issue's figures at 1024/1024 on H100: TP8 10,949 tok/s in total is 1,369 per GPU; TP2 4,064 is 2,032.
ISSUE_ROWS = [{"tp": 8, "gpus": 8, "output_tok_per_s": 10_949.0, "request_per_s": 10.7},
              {"tp": 2, "gpus": 2, "output_tok_per_s": 4_064.0, "request_per_s": 3.97}]


def test_mixed_gpu_counts_rank_per_gpu_and_say_why():
    df = _frame(ISSUE_ROWS)
    by = an.choose_ranking(df)
    assert by.per_gpu and by.why == "the points use 2 to 8 GPUs (TP x PP)"
    assert an.ranked(df, by)["tp"].tolist() == [2, 8]
    best = an.recommendations(df, by)
    assert best[0][2]["tp"] == 2 and best[0][1] == "highest output tokens/s per GPU"
    assert best[1][2]["tp"] == 2  # 3.97 / 2 = 1.99 requests/s per GPU beats 10.7 / 8 = 1.34


def test_equal_gpu_counts_keep_the_total_order_and_rank_by_overrides():
    same = _frame([{"tp": 4, "gpus": 4, "output_tok_per_s": 100.0, "request_per_s": 1.0, "isl": 128},
                   {"tp": 4, "gpus": 4, "output_tok_per_s": 300.0, "request_per_s": 1.0, "isl": 256}])
    assert an.choose_ranking(same) == an.TOTAL
    assert an.ranked(same, an.TOTAL)["isl"].tolist() == [256, 128]
    mixed = _frame(ISSUE_ROWS)
    total = an.choose_ranking(mixed, RankBy.TOTAL)
    assert total.column == "output_tok_per_s" and "2 to 8 GPUs" in total.why
    assert an.ranked(mixed, total)["tp"].tolist() == [8, 2]


def test_energy_ranks_fewest_joules_first_and_falls_back_in_words_without_a_measurement():
    rows = [{**ISSUE_ROWS[0], "joules_per_token": 0.50}, {**ISSUE_ROWS[1], "joules_per_token": 0.25}]
    by = an.choose_ranking(_frame(rows), RankBy.ENERGY)
    assert by.column == "joules_per_token" and by.ascending
    assert an.ranked(_frame(rows), by)["tp"].tolist() == [2, 8]
    fallback = an.choose_ranking(_frame(ISSUE_ROWS), RankBy.ENERGY)
    assert fallback.per_gpu and "no point has an energy measurement" in fallback.why


def test_a_70b_tp_grid_ranks_tp2_first_with_a_per_gpu_heading(cli, write_spec, tmp_path):
    result = cli("sweep", "--no-plots", str(write_spec(TP_GRID)))
    assert result.code == 0, result.err
    report = (tmp_path / "runs" / "tp70" / "report.md").read_text()
    assert "## Top 10 Configurations by Output Tokens/s per GPU" in report
    assert "**Ranked by output tokens/s per GPU**: the points use 2 to 8 GPUs (TP x PP)." in report
    top = report.split("## Top 10")[1].split("## ")[0]
    ranks = [line.split("|")[2].strip() for line in top.splitlines() if line.startswith("| 1 ") or
             line.startswith("| 2 ") or line.startswith("| 3 ")]
    assert ranks == ["2", "4", "8"]
    rows = pd.read_csv(tmp_path / "runs" / "tp70" / "results.csv")
    per_gpu = dict(zip(rows["tp"], rows["output_tok_per_s_per_gpu"], strict=True))
    totals = dict(zip(rows["tp"], rows["output_tok_per_s"], strict=True))
    assert totals[8] > totals[2] and per_gpu[2] > per_gpu[8]  # the total alone would crown TP8
    assert per_gpu[2] == pytest.approx(totals[2] / 2)


@pytest.mark.parametrize(("wall", "verdict", "borderline"), [
    (1817.0, Status.OK, True),  # the study's 128/16384: 1,817 x 0.95 = 1,726 s could finish in 1,800 s
    (1950.0, Status.TIMEOUT, False),  # 1,950 x 0.95 = 1,852.5 s > 1,800 s even at the optimistic end
    (1700.0, Status.OK, False),  # 1,700 x 1.05 = 1,785 s < 1,800 s: safe
    (1715.0, Status.OK, True),  # 1,715 x 1.05 = 1,800.75 s: may run past it
])
def test_timeout_verdict_allows_for_the_models_stated_error(wall, verdict, borderline):
    predicted = Outcome(status=Status.OK, source=Source.SIMULATED, predicted_wall_s=wall, wall_error_pct=5.0,
                        metrics=Metrics(output_tok_per_s=1.0, request_per_s=1.0, total_tok_per_s=1.0,
                                        total_latency_s=wall), memory=Memory(max_concurrent_seqs=61))
    judged = judge(predicted, 1800.0)
    assert judged.status is verdict and (judged.borderline is not None) is borderline
    assert judge(judged, 1e9).status is Status.OK and judge(judged, 1e9).borderline is None  # judged again: undone


def test_a_measured_timeout_is_never_rejudged():
    measured = Outcome(status=Status.TIMEOUT, source=Source.MEASURED, cause="killed after 1800 s")
    assert judge(measured, 1e9) == measured


def test_tally_words_the_counts_once():
    counts = Tally.of([("ok", False), ("ok", True), ("timeout", False), ("oom", False), ("oom", False)], not_run=3)
    assert counts.line() == "8 points: 2 ok (1 borderline), 3 failed (oom 2, timeout 1), 3 not run"


# SMALL_SPEC's points are predicted to run about 1, 5, 8 and 15 s; a timeout of 0.5 s fails them all, one of 3 s
# (1 s could be 10% off and still fit; 5 s would have to be 40% off to fit) fails three.
ALL_TIME_OUT = SMALL_SPEC + "runtime: {timeout_s: 0.5}\n"
THREE_TIME_OUT = SMALL_SPEC + "runtime: {timeout_s: 3}\n"


def test_a_sweep_whose_points_all_fail_exits_1_with_one_line(cli, write_spec):
    result = cli("sweep", "--no-plots", str(write_spec(ALL_TIME_OUT)))
    assert result.code == 1
    assert "4 points: 0 ok, 4 failed (timeout 4), 0 not run" in result.out.splitlines()


def test_failures_are_findings_unless_strict(cli, write_spec):
    spec = write_spec(THREE_TIME_OUT)
    relaxed = cli("sweep", "--no-plots", str(spec))
    assert "4 points: 1 ok, 3 failed (timeout 3), 0 not run" in relaxed.out.splitlines() and relaxed.code == 0
    assert cli("sweep", "--no-plots", "--strict", str(spec)).code == 1


def test_plan_status_report_and_retry_agree_and_a_new_timeout_rejudges_without_running(cli, write_spec, tmp_path):
    spec = write_spec(THREE_TIME_OUT)
    plan = cli("plan", str(spec))
    assert plan.code == 0, plan.err
    planned = next(x for x in plan.out.splitlines() if x.startswith("predicted (simulated): "))
    counts = planned.removeprefix("predicted (simulated): ")
    swept = cli("sweep", "--no-plots", str(spec))
    assert counts in swept.out.splitlines()
    run = tmp_path / "runs" / "tiny"
    assert counts in cli("status", str(run)).out
    assert f"**Points**: {counts}." in (run / "report.md").read_text()
    records = load_records(run / "results.jsonl")
    timed_out = {r["point_id"] for r in records if r["status"] == "timeout"}
    assert timed_out and all(r["cause"].startswith("predicted ") for r in records if r["status"] == "timeout")
    retried = cli("sweep", "--no-plots", "--retry-failed", str(spec))
    assert f"resumed: {4 - len(timed_out)} point(s) recorded ok, {len(timed_out)} run now" in retried.err
    # A longer timeout judges the same predictions again: one new record per changed point, same numbers.
    before = load_records(run / "results.jsonl")
    longer = write_spec(SMALL_SPEC + "runtime: {timeout_s: 100000}\n")
    again = cli("sweep", "--no-plots", str(longer))
    assert again.code == 0 and "4 points: 4 ok, 0 failed, 0 not run" in again.out.splitlines()
    after = load_records(run / "results.jsonl")
    new = after[len(before):]
    assert {r["point_id"] for r in new} == timed_out and all(r["status"] == "ok" for r in new)
    latest = {r["point_id"]: r for r in before}
    for r in new:
        old = latest[r["point_id"]]
        assert (r["metrics"], r["started_at"], r["predicted_wall_s"]) == (old["metrics"], old["started_at"],
                                                                         old["predicted_wall_s"])
    said = cli("status", str(run)).out
    assert f"timeout_s 100,000 s (nothing re-run): {len(timed_out)} timeout -> ok" in said


def test_an_unset_kv_dtype_is_tensorrt_llms_default_in_sweep_plan_and_predict(cli, write_spec, tmp_path):
    unset = SMALL_SPEC.replace("kv_cache_dtype: fp8\n", "").replace("isl: [128, 2048]", "isl: [1024]").replace(
        "osl: [128, 1024]", "osl: [1024]")
    assert "kv_cache_dtype" not in unset
    assert cli("sweep", "--no-plots", str(write_spec(unset))).code == 0
    swept = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")[0]
    predicted = cli("predict", "--gpu", "h100-sxm", "--model", "meta-llama/Llama-3.1-8B", "--precision", "fp8",
                    "--isl", "1024", "--osl", "1024", "--requests", "100", "--kv-fraction", "0.9", "--json")
    assert predicted.code == 0, predicted.err
    assert json.loads(predicted.out)["metrics"]["output_tok_per_s"] == swept["metrics"]["output_tok_per_s"]
    explicit = parse_spec(SMALL_SPEC, "explicit")  # kv_cache_dtype: fp8 named
    assert parse_spec(unset, "unset").at({}).kv_cache_dtype == explicit.at({}).kv_cache_dtype
    plan = cli("plan", str(write_spec(unset)))
    assert "KV fp8 (unset: TensorRT-LLM's default for fp8 weights)" in plan.out


def test_a_precision_grid_with_kv_unset_gives_each_precision_its_own_default():
    swept = parse_spec(SMALL_SPEC.replace("kv_cache_dtype: fp8\n", "").replace("precision: fp8\n", "").replace(
        "grid:\n", "grid:\n  precision: [fp8, bf16]\n"), "grid")
    assert str(swept.at({"precision": "fp8"}).kv) == "fp8"
    assert str(swept.at({"precision": "bf16"}).kv) == "auto"
    assert swept.canonical()["kv_cache_dtype"] is None  # stays unset in spec.yaml, so it reloads per precision


def test_plan_writes_its_table_to_stdout(cli, write_spec):
    result = cli("plan", str(write_spec()))
    assert result.code == 0
    assert "tiny: meta-llama/Llama-3.1-8B fp8" in result.out and "predicted wall time" in result.out
