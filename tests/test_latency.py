"""Latency sweeps: a concurrency ladder, per-request percentiles from the simulator's closed loop, and the
best point under an SLA (`trtbench sla`)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC
from trtbench.analyze import PERCENTILE_COLUMNS
from trtbench.sim.scheduler import SchedulerLimits, simulate
from trtbench.sim.steptime import Batch


class CountingStep:
    """1 ms per iteration plus 1 us per token."""

    name = "counting"

    def iteration_s(self, b: Batch) -> float:
        return 1e-3 + 1e-6 * b.tokens


ROOMY = SchedulerLimits(kv_blocks=1000, tokens_per_block=32, max_batch_size=64, max_num_tokens=1024,
                        chunked_context=False)


def test_a_closed_loop_times_each_request_from_when_the_client_sent_it():
    """4 requests of 100 + 10 tokens, 2 at a time: the first two are sent at 0 and finish at
    1.2 ms (context of 200 tokens) + 9 x 1.002 ms = 10.218 ms; the next two are sent then and finish at
    20.436 ms. Every request: TTFT 1.2 ms, TPOT 1.002 ms, latency 10.218 ms."""
    res = simulate(100, 10, 4, SchedulerLimits(**{**ROOMY.__dict__, "concurrency": 2}), CountingStep())
    assert res.wall_s == pytest.approx(2 * (1.2e-3 + 9 * 1.002e-3))
    for q in (50, 90, 95, 99):
        assert res.percentiles[f"ttft_p{q}_ms"] == pytest.approx(1.2)
        assert res.percentiles[f"tpot_p{q}_ms"] == pytest.approx(1.002)
        assert res.percentiles[f"latency_p{q}_ms"] == pytest.approx(10.218)


def test_requests_sent_at_once_that_wait_for_kv_room_count_their_wait():
    """The same 4 requests all sent at 0 with KV room for 2 (4 blocks each): the second two wait for the
    first; their TTFT is 10.218 + 1.2 ms and their latency 20.436 ms. Nearest rank: p50 is the 2nd of 4."""
    res = simulate(100, 10, 4, SchedulerLimits(**{**ROOMY.__dict__, "kv_blocks": 8}), CountingStep())
    assert res.percentiles["latency_p50_ms"] == pytest.approx(10.218)
    assert res.percentiles["latency_p90_ms"] == pytest.approx(20.436)
    assert res.percentiles["ttft_p50_ms"] == pytest.approx(1.2)
    assert res.percentiles["ttft_p95_ms"] == pytest.approx(11.418)
    assert res.avg_latency_s == pytest.approx((10.218 + 20.436) / 2 / 1000)


LADDER = SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: {start: 1, stop: 256}\n").replace(
    "osl: [128, 1024]", "osl: [128]")


def test_a_simulated_ladder_writes_every_latency_column_and_sla_names_the_best_point(cli, write_spec, tmp_path):
    spec = write_spec(LADDER)
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    run = tmp_path / "runs" / "tiny"
    df = pd.read_csv(run / "results.csv")
    assert len(df) == 2 * 9 and (df["status"] == "ok").all()
    for column in (*PERCENTILE_COLUMNS, "output_tok_per_s_per_gpu", "per_user_tok_s"):
        assert df[column].notna().all(), column
    for _, pair in df.groupby(["isl", "osl"]):
        pair = pair.sort_values("concurrency")
        assert pair["output_tok_per_s"].is_monotonic_increasing  # throughput rises with concurrency
        assert pair["ttft_ms_p95"].is_monotonic_increasing  # and so does the wait for the first token
        assert pair["ttft_ms_p95"].iloc[-1] > 10 * pair["ttft_ms_p95"].iloc[0]
    result = cli("sla", str(run), "--ttft-p95-ms", "200", "--tpot-p95-ms", "15")
    assert result.code == 0, result.err
    sla = pd.read_csv(run / "sla.csv")
    for _, row in sla.iterrows():  # the most output per GPU among the points within both bounds
        pair = df[(df["isl"] == row["isl"]) & (df["osl"] == row["osl"])]
        within = pair[(pair["ttft_ms_p95"] <= 200) & (pair["tpot_ms_p95"] <= 15)]
        assert row["concurrency"] == within.loc[within["output_tok_per_s_per_gpu"].idxmax(), "concurrency"]
        assert row["source"] == "simulated"
        assert row["next_step"].startswith(f"concurrency {row['concurrency'] * 2}: ") and " p95 " in row["next_step"]
    assert "simulated" in (run / "sla.md").read_text()


def test_sla_needs_a_bound(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    result = cli("sla", "runs/tiny")
    assert result.code == 2 and "give at least one bound" in result.err


TRTLLM_LADDER = TRTLLM_SPEC.replace("grid:\n", "grid:\n  concurrency: {start: 1, stop: 8}\n").replace(
    "osl: [128, 1024]", "osl: [128]").replace("isl: [128, 2048]", "isl: [128]") + "runtime: {streaming: true}\n"


@pytest.mark.parametrize("release", ["0.17.0", "1.1.0"])  # the text report, the JSON report
def test_a_ladder_runs_concurrency_and_streaming_and_parses_the_streaming_statistics(cli, write_spec, tmp_path,
                                                                                   fake_bench, release):
    fake_bench.version(release)
    pytorch = "trtllm: {backend: pytorch}\n"  # 0.17 would run a TensorRT engine by default
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_LADDER + pytorch)))
    assert result.code == 0, result.err
    runs = fake_bench.printed()
    assert sorted(int(r["argv"][r["argv"].index("--concurrency") + 1]) for r in runs) == [1, 2, 4, 8]
    assert all("--streaming" in r["argv"] for r in runs)
    df = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert (df["status"] == "ok").all() and (df["source"] == "measured").all()
    # The fake's TTFT is 50 + ISL / 100 ms on average, its P95 1.15 x that (tests/fakes/trtllm-bench)
    assert df["ttft_ms"].tolist() == pytest.approx([50 + 128 / 100] * 4, rel=1e-3)
    if release == "0.17.0":  # its STREAMING STATISTICS are averages only: no percentile is invented
        assert df[["ttft_ms_p95", "tpot_ms_p95", "latency_ms_p99"]].isna().all().all()
    else:
        assert df["ttft_ms_p95"].tolist() == pytest.approx([1.15 * (50 + 128 / 100)] * 4, rel=1e-3)
        assert df[["ttft_ms_p50", "tpot_ms_p99", "latency_ms_p95"]].notna().all().all()


def test_a_ladder_on_a_release_without_concurrency_is_refused_before_anything_runs(cli, write_spec, fake_bench):
    fake_bench.version("0.16.0")
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_LADDER)))
    assert result.code == 2 and "has no --concurrency (0.17+)" in result.err and len(result.err.splitlines()) == 1
    assert fake_bench.printed() == []


def test_plan_flags_ladder_steps_the_kv_cache_cannot_hold(cli, write_spec):
    # 70B FP8 on one H100 at 2048/2048: the KV cache holds a handful of sequences, far below 256
    spec = LADDER.replace("model: meta-llama/Llama-3.1-8B", "model: meta-llama/Llama-3.1-70B").replace(
        "isl: [128, 2048]", "isl: [2048]").replace("osl: [128]", "osl: [2048]")
    result = cli("plan", str(write_spec(spec)))
    assert result.code == 0, result.err
    text = " ".join((result.out + result.err).replace("│", " ").split())  # a long cause wraps within its cell
    assert "concurrency 256 is not reached: the KV cache holds" in text
    assert "concurrency 1 is not reached" not in text


def test_a_spec_sla_section_puts_the_same_answer_in_the_report(cli, write_spec, tmp_path):
    spec = write_spec(LADDER + "sla: {ttft_p95_ms: 200, tpot_p95_ms: 15}\n")
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    run = tmp_path / "runs" / "tiny"
    report = (run / "report.md").read_text()
    section = report.split("## Best under the SLA", 1)[1].split("\n## ", 1)[0]
    assert "ttft p95 <= 200 ms, tpot p95 <= 15 ms" in section
    assert cli("sla", str(run), "--ttft-p95-ms", "200", "--tpot-p95-ms", "15").code == 0
    table = (run / "sla.md").read_text().split("\n\n")[-1].strip()
    assert table in section  # the command and the report give one answer
    assert pd.read_csv(run / "results.csv")["peak_memory_gib"].isna().all()  # no telemetry in a simulation


def test_an_sla_section_without_a_bound_is_refused(cli, write_spec):
    result = cli("plan", str(write_spec(LADDER + "sla: {}\n")))
    assert result.code == 2 and "give at least one of ttft_p95_ms" in result.err


def test_best_under_by_hand():
    from trtbench.sla import Bounds, best_under

    rows = [  # (isl, concurrency, status, ttft p95, output tok/s per GPU)
        (128, 1, "ok", 10.0, 100.0), (128, 2, "ok", 20.0, 190.0), (128, 4, "oom", None, None),
        (2048, 1, "ok", 300.0, 50.0), (2048, 2, "ok", 600.0, 90.0),
    ]
    df = pd.DataFrame([{"isl": i, "osl": 128, "concurrency": c, "status": s, "ttft_ms_p95": t,
                        "output_tok_per_s_per_gpu": o, "output_tok_per_s": o, "source": "measured"}
                       for i, c, s, t, o in rows])
    table = best_under(df, Bounds(ttft_p95_ms=100), ["concurrency"]).set_index("isl")
    assert table.loc[128, "concurrency"] == 2 and table.loc[128, "next_step"] == "concurrency 4: oom"
    assert table.loc[2048, "verdict"] == "none of its 2 point(s) meets the bounds"
    one = best_under(df[df["isl"] == 128], Bounds(ttft_p95_ms=15), ["concurrency"]).iloc[0]
    assert one["concurrency"] == 1 and one["next_step"] == "concurrency 2: ttft p95 20 ms > 15"


# The hub checkpoint's KV algo is unset, and latency takes no LLM-API file to ask for FP8: a 16-bit KV cache.
LATENCY_MODE = TRTLLM_SPEC.replace("osl: [128, 1024]", "osl: [128]").replace("isl: [128, 2048]", "isl: [128]") \
    .replace("kv_cache_dtype: fp8", "kv_cache_dtype: auto") + "mode: latency\n"


@pytest.mark.parametrize("release", ["1.0.0", "1.3.0rc1"])
def test_latency_mode_runs_trtllm_bench_latency_one_request_at_a_time(cli, write_spec, tmp_path, fake_bench,
                                                                       release):
    fake_bench.version(release)
    result = cli("sweep", "--no-plots", str(write_spec(LATENCY_MODE)))
    assert result.code == 0, result.err
    [run] = fake_bench.printed()  # the fake parses argv with latency's own options (tests/data, from 1.0.0rc4)
    assert run["command"] == "latency"
    for absent in ("--streaming", "--concurrency", "--max_batch_size", "--eos_id", "--extra_llm_api_options",
                   "--config"):
        assert absent not in run["argv"]
    df = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    # The fake's request: TTFT 50 + 128/100 = 51.28 ms, TPOT 10 + 128/1000 = 10.128 ms, so one request takes
    # 51.28 + 127 x 10.128 = 1337.536 ms and a user sees 1000 / 10.128 = 98.74 tokens/s, as one at a time
    # delivers 128 / 1.337536 = 95.70 tokens/s in all.
    row = df.iloc[0]
    assert row["requests"] == 100 and row["status"] == "ok"
    assert row["ttft_ms"] == pytest.approx(51.28) and row["tpot_ms"] == pytest.approx(10.128)
    assert row["latency_ms_p50"] == pytest.approx(1337.536, rel=1e-4)
    assert row["output_tok_per_s"] == pytest.approx(95.70, rel=1e-3)


@pytest.mark.parametrize(("release", "why"), [
    ("0.12.0", "has no latency subcommand (its bench.py registers only build and throughput)"),
    ("0.13.0", "has a latency subcommand whose options and report no NVIDIA source trtbench read shows")])
def test_latency_mode_is_refused_where_no_source_shows_it_and_with_a_concurrency_limit(cli, write_spec, fake_bench,
                                                                                      release, why):
    """tests/data/trtllm_bench_latency_options.json `refused`: the release and the reason, in one line."""
    fake_bench.version(release)
    result = cli("sweep", "--no-plots", str(write_spec(LATENCY_MODE)))
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert f"mode: latency: trtllm-bench {release} {why}; trtbench drives latency from TensorRT-LLM 0.14" in result.err
    assert fake_bench.printed() == []
    fake_bench.version("1.0.0")
    result = cli("sweep", "--no-plots", str(write_spec(LATENCY_MODE + "runtime: {concurrency: 4}\n")))
    assert result.code == 2 and "mode: latency runs one request at a time" in result.err


def test_latency_before_1_0_on_the_pytorch_backend_is_refused(cli, write_spec, fake_bench):
    """Before 1.0 trtllm-bench latency takes --engine_dir (required) and no --backend (low_latency.py @77d7fe1e)."""
    fake_bench.version("0.21.0")
    result = cli("sweep", "--no-plots", str(write_spec(LATENCY_MODE + "trtllm: {backend: pytorch}\n")))
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert "mode: latency on TensorRT-LLM 0.21.0 runs a TensorRT engine only" in result.err
    assert fake_bench.printed() == []


def test_simulated_latency_mode_is_one_request_at_a_time(cli, write_spec, tmp_path):
    """Every request alone on the GPU: all see the same TTFT and TPOT, a request lasts TTFT + (OSL - 1)
    TPOT, and the GPU delivers what one user sees; at a concurrency of 16, throughput is far higher."""
    one = SMALL_SPEC.replace("isl: [128, 2048]", "isl: [512]").replace("osl: [128, 1024]", "osl: [256]")
    assert cli("sweep", "--no-plots", str(write_spec(one + "mode: latency\n"))).code == 0
    lat = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv").iloc[0]
    assert lat["requests"] == 100
    assert lat["ttft_ms_p50"] == pytest.approx(lat["ttft_ms_p99"]) and lat["tpot_ms_p50"] == pytest.approx(
        lat["tpot_ms_p99"])
    assert lat["latency_ms_p50"] == pytest.approx(lat["ttft_ms"] + 255 * lat["tpot_ms"], rel=1e-3)
    assert lat["output_tok_per_s"] == pytest.approx(256 / (lat["latency_ms_p50"] / 1000), rel=1e-3)
    assert "Mode **latency**" in (tmp_path / "runs" / "tiny" / "report.md").read_text()
    many = one.replace("name: tiny", "name: many") + "runtime: {concurrency: 16}\n"
    assert cli("sweep", "--no-plots", str(write_spec(many))).code == 0
    loaded = pd.read_csv(tmp_path / "runs" / "many" / "results.csv").iloc[0]
    assert loaded["output_tok_per_s"] > 8 * lat["output_tok_per_s"]
    assert loaded["tpot_ms_p50"] > lat["tpot_ms_p50"]
