"""Issue 29: cost per million tokens at the user's price, ranking by what the user pays for, and the price named
beside every cost figure."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC
from tests.test_latency import LADDER
from trtbench import analyze as an
from trtbench.cost import usd_per_mtok, with_cost
from trtbench.spec import RankBy, parse_spec
from trtbench.spec.cost import CostSpec
from trtbench.store import RunStore

PRICED = SMALL_SPEC + "cost: {usd_per_gpu_hour: 2.5, source: \"on-demand quote, 2026-11\"}\n"
# Two deployments of one model: TP2 serves 4,000 output tok/s per GPU (8,000 in total), TP8 3,000 per GPU (24,000).
TP_GRID = SMALL_SPEC.replace("grid:\n", "grid:\n  tp: [2, 8]\n").replace(
    "model: meta-llama/Llama-3.1-8B", "model: meta-llama/Llama-3.1-70B")


def test_4000_tok_s_per_gpu_at_2_50_an_hour_is_0_1736_usd_per_million():
    # 2.5 / (4,000 x 3,600) x 10^6 = 0.173611...
    assert usd_per_mtok(2.5, 4000.0) == pytest.approx(0.1736111)


def _rows() -> pd.DataFrame:
    """The two deployments as analysis holds them: TP8 wins on total tokens/s, TP2 per GPU and per dollar."""
    return pd.DataFrame([
        {"gpu": "h100-sxm", "tp": 8, "gpus": 8, "isl": 1024, "osl": 1024, "status": "ok", "accuracy": None,
         "output_tok_per_s": 24_000.0, "total_tok_per_s": 48_000.0, "request_per_s": 23.4,
         "joules_per_token": None, "tok_per_joule": None},
        {"gpu": "h100-sxm", "tp": 2, "gpus": 2, "isl": 1024, "osl": 1024, "status": "ok", "accuracy": None,
         "output_tok_per_s": 8_000.0, "total_tok_per_s": 16_000.0, "request_per_s": 7.8,
         "joules_per_token": None, "tok_per_joule": None}]).assign(
        output_tok_per_s_per_gpu=lambda d: d["output_tok_per_s"] / d["gpus"],
        request_per_s_per_gpu=lambda d: d["request_per_s"] / d["gpus"])


def test_cost_per_point_from_throughput_per_gpu_and_its_gpus():
    df = with_cost(_rows(), CostSpec(usd_per_gpu_hour=2.5))
    # TP8: 2.5 x 8 / (24,000 x 3,600) x 10^6 = 0.231481; total tokens 48,000/s: 0.115741
    # TP2: 2.5 x 2 / (8,000 x 3,600) x 10^6 = 0.173611; total tokens 16,000/s: 0.086806
    assert df["usd_per_mtok"].to_list() == pytest.approx([0.2314815, 0.1736111])
    assert df["usd_per_mtok_total"].to_list() == pytest.approx([0.1157407, 0.0868056])
    assert df["usd_per_gpu_hour"].to_list() == [2.5, 2.5]


def test_a_price_per_gpu_model_wins_and_a_gpu_without_one_has_no_cost():
    cost = CostSpec(usd_per_gpu_hour=2.5, per_gpu={"H200": 3.5})
    assert cost.per_gpu == {"h200-sxm": 3.5} and cost.price("h200-sxm") == 3.5 and cost.price("h100-sxm") == 2.5
    assert cost.price("NVIDIA H200") == 3.5  # an NVML name, as `gpu: auto` records it
    only_h200 = CostSpec(per_gpu={"h200-sxm": 3.5})
    assert with_cost(_rows(), only_h200)["usd_per_mtok"].isna().all()
    by = an.choose_ranking(with_cost(_rows(), only_h200), RankBy.USD_PER_MTOK)
    assert by.per_gpu and "no point has a price for the points' GPU" in by.why


def test_usd_per_mtok_ranks_ascending_and_reorders_the_total_ranking():
    df = with_cost(_rows(), CostSpec(usd_per_gpu_hour=2.5))
    assert an.ranked(df, an.choose_ranking(df, RankBy.OUTPUT_TOK_PER_S))["tp"].to_list() == [8, 2]
    by = an.choose_ranking(df, RankBy.USD_PER_MTOK)
    assert by.column == "usd_per_mtok" and by.ascending and by.why == "rank_by: usd_per_mtok"
    assert an.ranked(df, by)["tp"].to_list() == [2, 8]
    assert an.recommendations(df, by)[0][0] == "Lowest cost"


@pytest.mark.parametrize(("rank_by", "column"), [
    ("per_gpu", "output_tok_per_s_per_gpu"), ("output_tok_per_s_per_gpu", "output_tok_per_s_per_gpu"),
    ("total", "output_tok_per_s"), ("output_tok_per_s", "output_tok_per_s"),
    ("energy", "joules_per_token"), ("tok_per_joule", "tok_per_joule")])
def test_older_rank_by_names_still_load_and_rank_as_the_newer(rank_by, column):
    spec = parse_spec(SMALL_SPEC + f"rank_by: {rank_by}\n")
    df = _rows().assign(joules_per_token=[0.5, 0.25], tok_per_joule=[2.0, 4.0])
    by = an.choose_ranking(df, spec.rank_by)
    assert by.column == column and by.why.startswith(f"rank_by: {rank_by}")


@pytest.mark.parametrize(("extra", "said"), [
    ("cost: {usd_per_gpu_hour: -2}\n", "cost.usd_per_gpu_hour: Input should be greater than 0"),
    ("cost: {usd_per_gpu_hour: 1e9}\n", "cost.usd_per_gpu_hour: Input should be less than or equal to 10000"),
    ("cost: {usd_per_gpu_hour: cheap}\n", "cost.usd_per_gpu_hour"),
    ("cost: {source: a quote}\n", "cost: give usd_per_gpu_hour, or per_gpu prices by GPU model"),
    ("cost: {per_gpu: {h100-sxm: 2, H100 SXM5: 3}}\n", "prices h100-sxm twice"),
    ("cost: {per_gpu: {tpu-v5: 2}}\n", "unknown GPU 'tpu-v5'"),
    ("cost: {usd_per_gpu_hour: 2, currency: eur}\n", "cost.currency"),
    ("rank_by: usd_per_mtok\n", "rank_by: usd_per_mtok needs a price: add cost:"),
    ("rank_by: cheapest\n", "rank_by"),
])
def test_a_bad_cost_or_rank_by_is_one_line_and_exit_2(cli, write_spec, extra, said):
    result = cli("plan", str(write_spec(SMALL_SPEC + extra)))
    assert result.code == 2 and said in " ".join(result.err.split())
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_a_spec_with_a_price_adds_cost_columns_and_rank_by_usd_reorders_the_top_10(cli, write_spec, tmp_path):
    """The issue's Done-when, simulated: TP2 and TP8 of a 70B model; by total tokens/s TP8 leads, by dollars per
    million output tokens (per GPU-hour, so per GPU) TP2 does."""
    grid = TP_GRID + "cost: {usd_per_gpu_hour: 2.5, source: \"on-demand quote, 2026-11\"}\n"
    assert cli("sweep", "--no-plots", "--out", str(tmp_path / "total"),
               str(write_spec(grid + "rank_by: output_tok_per_s\n", "total.yaml"))).code == 0
    assert cli("sweep", "--no-plots", "--out", str(tmp_path / "usd"),
               str(write_spec(grid + "rank_by: usd_per_mtok\n", "usd.yaml"))).code == 0
    df = pd.read_csv(tmp_path / "usd" / "results.csv")
    assert {"usd_per_mtok", "usd_per_mtok_total", "usd_per_gpu_hour"} <= set(df.columns)
    assert df["usd_per_mtok"].notna().all() and (df["usd_per_gpu_hour"] == 2.5).all()
    # per point: price / (output tok/s per GPU x 3,600) x 10^6, i.e. price x tok/s per GPU x 3,600 / 10^6 = price
    assert (df["usd_per_mtok"] * df["output_tok_per_s_per_gpu"] * 3600 / 1e6).to_list() == pytest.approx([2.5] * 8)

    def top_tp(run: str) -> list[int]:
        report = (tmp_path / run / "report.md").read_text()
        table = report.split("## Top 10")[1].split("\n## ")[0]
        return [int(line.split("|")[2]) for line in table.splitlines() if line.startswith("| ") and
                line.split("|")[1].strip().isdigit()]

    assert top_tp("total")[0] == 8 and top_tp("usd")[0] == 2 and top_tp("total") != top_tp("usd")
    report = (tmp_path / "usd" / "report.md").read_text()
    assert ("**Ranked by USD per million output tokens at \\$2.50/GPU-hour (source: on-demand quote, 2026-11)**"
            in report)
    assert "Top 10 Configurations by USD per Million Output Tokens" in report
    assert "from **simulated** throughput (a prediction, not a measurement)" in report
    assert report.count("**Cost** at \\$2.50/GPU-hour (source: on-demand quote, 2026-11)") >= 4  # each cost table
    assert "| Lowest cost |" in report
    assert "carry no energy figure" in report


def test_the_command_line_price_overrides_the_spec_and_says_so(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec(PRICED))).code == 0
    run = tmp_path / "runs" / "tiny"
    before = pd.read_csv(run / "results.csv")["usd_per_mtok"]
    assert cli("report", "--no-plots", str(run), "--usd-per-gpu-hour", "5").code == 0
    after = pd.read_csv(run / "results.csv")["usd_per_mtok"]
    assert (after / before).to_list() == pytest.approx([2.0] * 4)  # twice the price, twice the cost
    assert "\\$5.00/GPU-hour (source: --usd-per-gpu-hour on the command line)" in (run / "report.md").read_text()
    result = cli("report", "--no-plots", str(run), "--usd-per-gpu-hour", "0")
    assert result.code == 2 and "--usd-per-gpu-hour 0: input should be greater than 0" in result.err


def test_without_a_price_there_is_no_cost_column_value_and_no_cost_figure(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    run = tmp_path / "runs" / "tiny"
    assert pd.read_csv(run / "results.csv")["usd_per_mtok"].isna().all()
    assert "USD/M" not in (run / "report.md").read_text()


def test_the_sla_answer_and_each_concurrency_step_are_costed(cli, write_spec, tmp_path):
    spec = LADDER + "sla: {ttft_p95_ms: 200, tpot_p95_ms: 15}\ncost: {usd_per_gpu_hour: 2.5, source: quote}\n"
    assert cli("sweep", "--no-plots", str(write_spec(spec))).code == 0
    run = tmp_path / "runs" / "tiny"
    steps = pd.read_csv(run / "results.csv")
    assert steps["concurrency"].nunique() == 9 and steps["usd_per_mtok"].notna().all()
    report = (run / "report.md").read_text()
    sla = report.split("## Best under the SLA")[1].split("\n## ")[0]
    assert "USD/M output tok" in sla and "**Cost** at \\$2.50/GPU-hour (source: quote)" in sla
    assert cli("sla", str(run), "--ttft-p95-ms", "200").code == 0
    answer = pd.read_csv(run / "sla.csv")
    best = steps.set_index(["isl", "osl", "concurrency"])["usd_per_mtok"]
    for _, row in answer.iterrows():  # the answer's cost is its step's
        assert row["usd_per_mtok"] == pytest.approx(best[(row["isl"], row["osl"], row["concurrency"])])
    assert "\\$2.50/GPU-hour (source: quote)" in (run / "sla.md").read_text()


def test_a_hostile_price_source_is_escaped_in_the_report_and_never_reaches_a_csv_cell(cli, write_spec, tmp_path):
    source = "=HYPERLINK(\\\"http://x\\\")| <b>$1 | *x*"
    spec = SMALL_SPEC + f"cost: {{usd_per_gpu_hour: 2.5, source: \"{source}\"}}\nrank_by: usd_per_mtok\n"
    assert cli("sweep", "--no-plots", str(write_spec(spec))).code == 0
    run = tmp_path / "runs" / "tiny"
    report = (run / "report.md").read_text()
    escaped = "=HYPERLINK(\"http://x\")\\| \\<b>\\$1 \\| \\*x\\*"  # no tag, no table cell, no math, no emphasis
    assert escaped in report and report.count("<b>") == report.count("\\<b>")
    for path in (run / "results.csv",):
        cells = [c for line in path.read_text().splitlines() for c in line.split(",")]
        assert not any(c.startswith(("=", "+", "@")) for c in cells)


def test_predict_costs_the_simulated_point_on_its_gpus(cli):
    result = cli("predict", "--isl", "1024", "--osl", "1024", "--requests", "100", "--tp", "2",
                 "--usd-per-gpu-hour", "2.5", "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    cost, tok_s = out["cost"], out["metrics"]["output_tok_per_s"]
    assert out["source"] == "simulated" and cost["gpus"] == 2 and cost["source"].startswith("--usd-per-gpu-hour")
    assert cost["usd_per_mtok"] * (tok_s / 2) * 3600 / 1e6 == pytest.approx(2.5)


def test_compare_costs_each_side_at_its_price(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", "--out", str(tmp_path / "a"), str(write_spec(SMALL_SPEC, "a.yaml"))).code == 0
    assert cli("sweep", "--no-plots", "--out", str(tmp_path / "b"), str(write_spec(PRICED, "b.yaml"))).code == 0
    assert cli("compare", "--no-plots", "--out", str(tmp_path / "cmp"), str(tmp_path / "a"), str(tmp_path / "b")
               ).code == 0
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "A at no price (no cost: in its spec), B at \\$2.50/GPU-hour (source: on-demand quote, 2026-11)" in text
    assert cli("compare", "--no-plots", "--out", str(tmp_path / "cmp"), str(tmp_path / "a"), str(tmp_path / "b"),
               "--usd-per-gpu-hour", "3").code == 0
    joined = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert joined["a_usd_per_mtok"].notna().all()
    assert (joined["b_usd_per_mtok"] / joined["a_usd_per_mtok"]).to_list() == pytest.approx(
        (joined["a_tok_s"] / joined["b_tok_s"]).to_list())  # one price: cost goes as 1 / throughput


def test_rank_by_under_sla_ranks_only_the_points_within_the_bounds(cli, write_spec, tmp_path):
    """A concurrency ladder: the most tokens/s per GPU come at concurrency steps whose p95 TTFT breaks 200 ms; the
    `_under_sla` variant ranks, recommends and reports only the steps within the bounds."""
    sla = "sla: {ttft_p95_ms: 200, tpot_p95_ms: 15}\ncost: {usd_per_gpu_hour: 2.5, source: quote}\n"
    for rank_by in ("usd_per_mtok", "usd_per_mtok_under_sla"):
        assert cli("sweep", "--no-plots", "--out", str(tmp_path / rank_by),
                   str(write_spec(LADDER + sla + f"rank_by: {rank_by}\n", f"{rank_by}.yaml"))).code == 0
    spec = parse_spec(LADDER + sla + "rank_by: usd_per_mtok_under_sla\n")
    store = RunStore(tmp_path / "usd_per_mtok_under_sla")
    a = an.analyze(store.records(), store.meta()["point_ids"], spec)
    within = an.ranked(a.results, a.ranking)
    assert len(within) and (within["ttft_ms_p95"] <= 200).all() and (within["tpot_ms_p95"] <= 15).all()
    everything = an.ranked(a.results, an.choose_ranking(a.results, RankBy.USD_PER_MTOK))
    assert everything.iloc[0]["ttft_ms_p95"] > 200  # the cheapest step breaks the bound
    assert len(everything) > len(within)
    assert a.ranking.name == "USD per million output tokens under the SLA"
    report = (tmp_path / "usd_per_mtok_under_sla" / "report.md").read_text()
    assert "only the points within ttft p95 <= 200 ms, tpot p95 <= 15 ms rank" in report
    result = cli("plan", str(write_spec(LADDER + "rank_by: output_tok_per_s_under_sla\n", "no_sla.yaml")))
    assert result.code == 2 and "rank_by: output_tok_per_s_under_sla needs the bounds: add sla:" in result.err
