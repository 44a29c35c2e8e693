"""The in-flight-batching simulator: accuracy on the calibration table, physical sanity, hand-checked memory."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC
from trtbench.deployment import deployment_for, make_deployment
from trtbench.sim import calibration, roofline
from trtbench.sim.memory import GIB, captured_sizes, overhead_gib, plan_memory
from trtbench.sim.scheduler import SchedulerLimits, simulate
from trtbench.sim.steptime import Batch
from trtbench.sim.table import mape_by, predict, predict_frame, score
from trtbench.spec import RuntimeSpec, parse_spec

CAL = calibration.data_path(calibration.CALIBRATION_DATA[0])  # NVIDIA's H100 SXM 8B table
STUDY = calibration.data_path("h100_study_002.csv")


def dep(model="meta-llama/Llama-3.1-8B", gpu="h100-sxm", precision="fp8", tp=1, **runtime):
    return make_deployment(model, gpu, precision, tp=tp, runtime=RuntimeSpec(**runtime))


def test_both_calibration_tables_within_targets_per_set_and_per_tp():
    scored, mape, spearman = score(predict_frame(calibration.bundled_rows(), fraction=0.95))
    assert len(scored) == 11 + 146
    assert mape <= 6.0 and spearman >= 0.99
    by_set = mape_by(scored, "set")["mape_pct"]
    assert by_set["calibration_h100_sxm_llama31_8b_fp8.csv"] <= 8.0
    assert by_set["published_h200_sxm_fp8.csv"] <= 6.0
    by_tp = mape_by(scored, "tp")
    assert list(by_tp.index) == ["1", "2", "4", "8"] and (by_tp["mape_pct"] <= 10.0).all()
    assert (scored["error_pct"].abs() <= 15).mean() >= 0.9  # nine rows in ten within 15%
    assert scored["error_pct"].abs().max() <= 35.0


def test_study_fits_one_h100_sku_better_and_says_how_much():
    rows = pd.read_csv(STUDY)
    mapes = {gpu: score(predict_frame(rows, defaults={"gpu": gpu}))[1] for gpu in ("h100-sxm", "h100-pcie")}
    assert mapes["h100-pcie"] < mapes["h100-sxm"]  # the study's numbers sit below NVIDIA's SXM figures


@pytest.mark.slow
def test_committed_calibration_is_what_the_fit_reproduces():
    from trtbench.sim.fit import fit

    committed, info = calibration.load()
    assert info["fitted_on"] == [*calibration.CALIBRATION_DATA, calibration.MOE_BLACKWELL_DATA]
    moe = pd.read_csv(calibration.data_path(calibration.MOE_BLACKWELL_DATA)).assign(set=calibration.MOE_BLACKWELL_DATA)
    rows = pd.concat([calibration.bundled_rows(), moe], ignore_index=True)
    refit, on_bound, releases = fit(rows, info["kv_cache_free_gpu_mem_fraction"])
    assert on_bound == info["on_bound"]
    assert releases == pytest.approx(info["release_factors"], rel=0.01)
    assert set(releases) == {"0.19", "0.20", "0.21", "1.0"}  # every release the dense tables name
    for field in ("eta_mem", "eta_kv", "eta_gemm", "eta_attn", "t_iter_s", "t_layer_s", "eta_moe"):
        assert getattr(refit, field) == pytest.approx(getattr(committed, field), rel=0.02, abs=1e-5), field


def test_factors_are_physical():
    factors, _ = calibration.load()
    for name, (lo, hi) in calibration.BOUNDS.items():
        assert lo <= getattr(factors, name) <= hi


@pytest.mark.parametrize(
    ("model", "gpu", "precision", "tp", "isl", "osl", "n"),
    [
        ("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8", 1, 128, 128, 30000),
        ("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8", 1, 16384, 2048, 200),
        ("meta-llama/Llama-3.1-8B", "a100-sxm-80gb", "fp16", 1, 1024, 1024, 3000),
        ("meta-llama/Llama-3.1-70B", "h100-sxm", "fp8", 2, 2048, 2048, 1500),
        ("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", 4, 128, 4096, 1500),
        ("Qwen/Qwen2.5-7B", "l40s", "fp8", 1, 512, 512, 2000),
        ("meta-llama/Llama-3.2-1B", "l4", "bf16", 1, 1000, 1000, 1000),
    ],
)
def test_throughput_never_exceeds_the_roofline(model, gpu, precision, tp, isl, osl, n):
    d = dep(model, gpu, precision, tp)
    outcome = predict(d, isl, osl, n)
    assert outcome.status == "ok", outcome.cause
    plan = plan_memory(d, isl, osl)
    bound = n * osl / roofline.bound_s(d, plan, isl, osl, n)
    assert 0 < outcome.metrics.output_tok_per_s <= bound


def test_attention_dp_stays_under_its_roofline():
    # Qwen3-235B NVFP4 DEP4 on B200 at 1000/1000 on 1.1, as NVIDIA ran it: 725 sequences per rank, four ranks.
    # The bound once took the per-rank concurrency for the whole deployment (four times the decode steps, each
    # reading the weights) and fell below the simulation (40,565 against 40,687 tok/s)
    d = make_deployment("Qwen3-235B-A22B", "b200", "nvfp4", tp=4, attention_dp=True, release="1.1",
                        runtime=RuntimeSpec(kv_cache_free_gpu_mem_fraction=0.95))
    plan = plan_memory(d, 1000, 1000)
    assert plan.max_concurrent_seqs == 725
    outcome = predict(d, 1000, 1000, 3000)
    bound = 3000 * 1000 / roofline.bound_s(d, plan, 1000, 1000, 3000)
    assert 0 < outcome.metrics.output_tok_per_s <= bound


def test_throughput_rises_then_saturates_with_request_count():
    d = dep()
    rates = [predict(d, 512, 512, n).metrics.output_tok_per_s for n in (1, 10, 100, 1000, 4000, 16000)]
    assert rates == sorted(rates)  # more requests never hurt
    assert rates[1] > 5 * rates[0] and rates[2] > 5 * rates[1]  # batching pays while the batch is small
    assert rates[-1] < 1.15 * rates[-2]  # past the KV pool's capacity it saturates


def test_throughput_falls_with_isl_at_fixed_osl():
    d = dep()
    rates = [predict(d, isl, 1024, 1000).metrics.output_tok_per_s for isl in (128, 512, 2048, 8192, 16384)]
    assert rates == sorted(rates, reverse=True) and rates[0] > 3 * rates[-1]


def test_kv_pool_for_the_study_matches_the_hand_calculation():
    """8B FP8 + FP8 KV on H100 80GB with the study's one-engine limits (bs 4096, 16384 tokens)."""
    d = dep(max_batch_size=4096, max_num_tokens=16384, chunked_context=True)
    plan = plan_memory(d, 16384, 16384)
    weights = (6_979_588_096 * 1 + 2 * 525_336_576 * 2) / GIB  # FP8 layers, 16-bit embedding and lm_head
    activations = (16384 * 2 * (2 * 14336 + 4 * 4096) + 4096 * 128256 * 4) / GIB
    # 1 GiB of CUDA context and workspaces, and a 60 MB CUDA-graph pool for each of 24 captured batch sizes:
    # 1, 2, 4, 8, 16, ..., 128 (19), 256, 512, 1024, 2048, and max_batch_size 4096
    overhead = 1.0 + 24 * 60 / 1024
    pool = 0.9 * (81559 / 1024 - weights - activations - overhead)
    assert plan.kv_pool_gib == pytest.approx(pool)
    assert plan.kv_pool_gib == pytest.approx(58.3, abs=1.5)  # the study's "~58.3 GiB allocated"
    assert plan.kv_tokens == int(pool * GIB // 65536) // 32 * 32
    assert plan.max_concurrent_seqs == plan.kv_tokens // 32 // 1024  # 32,768-token sequences


def test_70b_tp2_memory_by_hand():
    d = dep("meta-llama/Llama-3.1-70B", tp=2, max_batch_size=256, max_num_tokens=8192)
    plan = plan_memory(d, 2048, 2048)
    transformer = 70_553_706_496 - 2 * 128256 * 8192
    weights = (transformer * 1 + 2 * 128256 * 8192 * 2) / 2 / GIB
    activations = (8192 * 2 * (2 * 28672 + 4 * 8192) / 2 + 256 * 128256 * 4) / GIB
    # context 1 GiB; graphs for 1, 2, 4, 8, ..., 128 (19 sizes) and 256 at 60 MB each; 0.36 GiB of all-reduce buffers
    overhead = 1.0 + 20 * 60 / 1024 + 0.36
    pool = 0.9 * (81559 / 1024 - weights - activations - overhead)
    assert plan.weights_gib == pytest.approx(weights) and 33 < weights < 35
    assert plan.kv_bytes_per_token == 2 * 80 * 4 * 128  # 4 of the 8 KV heads per rank, FP8
    assert plan.kv_pool_gib == pytest.approx(pool)
    assert plan.max_concurrent_seqs == plan.kv_tokens // 32 // 128
    # FP8 on one GPU leaves 13 sequences of room; BF16 weights (131 GiB) do not load at all.
    assert plan_memory(dep("meta-llama/Llama-3.1-70B", tp=1), 2048, 2048).max_concurrent_seqs < 20
    assert plan_memory(dep("meta-llama/Llama-3.1-70B", precision="bf16"), 2048, 2048).verdict == "oom"


class CountingStep:
    """A step model with a known cost: 1 ms per iteration plus 1 us per token."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def iteration_s(self, b: Batch) -> float:
        self.calls += 1
        return 1e-3 + 1e-6 * b.tokens


def test_scheduler_by_hand_one_wave():
    """4 requests of 100 + 10 tokens, room for all: one context iteration (400 tokens), then 9 decode
    iterations of 4 tokens, all skipped in one event."""
    limits = SchedulerLimits(kv_blocks=1000, tokens_per_block=32, max_batch_size=64, max_num_tokens=1024,
                             chunked_context=False)
    step = CountingStep()
    res = simulate(100, 10, 4, limits, step)
    assert res.iterations == 10
    assert res.wall_s == pytest.approx((1e-3 + 400e-6) + 9 * (1e-3 + 4e-6))
    assert res.avg_ttft_s == pytest.approx(1e-3 + 400e-6)
    assert res.avg_latency_s == pytest.approx(res.wall_s)
    assert step.calls == 2  # event skipping: the 9 decode steps cost one call


def test_scheduler_capacity_limits_concurrency():
    """KV room for 2 sequences of 4 blocks: 6 requests run in 3 waves."""
    limits = SchedulerLimits(kv_blocks=8, tokens_per_block=32, max_batch_size=64, max_num_tokens=1024,
                             chunked_context=False)
    res = simulate(100, 20, 6, limits, CountingStep())
    one_wave = (1e-3 + 200e-6) + 19 * (1e-3 + 2e-6)
    assert res.wall_s == pytest.approx(3 * one_wave)
    assert res.iterations == 60


def test_chunked_context_splits_long_prompts():
    limits = SchedulerLimits(kv_blocks=10_000, tokens_per_block=64, max_batch_size=8, max_num_tokens=1024,
                             chunked_context=True)
    res = simulate(4000, 2, 1, limits, CountingStep())
    assert res.iterations == 4 + 1  # 1024 + 1024 + 1024 + 928, then the second token
    with pytest.raises(Exception, match="exceeds max_num_tokens"):
        simulate(4000, 2, 1, dataclasses.replace(limits, chunked_context=False), CountingStep())


class RecordingStep:
    """1 ms per iteration; remembers every batch it timed."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def iteration_s(self, b: Batch) -> float:
        self.batches.append(b)
        return 1e-3


def test_generation_only_steps_run_padded_to_a_captured_cuda_graph():
    # 300 requests of 16 + 8 tokens, all admitted and prefilled in one step (4,800 tokens), then 7 decode-only
    # steps of 300 sequences: with graphs captured at 256 and 512, each runs as 512 tokens (212 dummy requests)
    # whose KV reads are the 300 real sequences'; a step with context runs eager, unpadded
    limits = SchedulerLimits(kv_blocks=1000, tokens_per_block=32, max_batch_size=512, max_num_tokens=8192,
                             chunked_context=False, graph_sizes=(256, 512))
    step = RecordingStep()
    simulate(16, 8, 300, limits, step)
    context, decode = step.batches
    assert (context.tokens, context.sequences) == (4800, 300)
    assert (decode.tokens, decode.sequences, decode.sampled) == (512, 300, 512)
    # past the largest graph a generation-only step runs eager at its own size
    step = RecordingStep()
    simulate(16, 8, 300, dataclasses.replace(limits, graph_sizes=(128, 256)), step)
    assert step.batches[1].tokens == 300


def test_captured_sizes_stop_at_the_smaller_limit():
    # trtllm-bench's sizes for max_batch_size 3584 (1, 2, 4, 8..128 by 8, 256..2048, 3584) kept up to
    # min(3584, max_num_tokens) and that cap added
    assert captured_sizes(3584, 7168)[-5:] == (256, 512, 1024, 2048, 3584)
    assert captured_sizes(3584, 1500)[-4:] == (256, 512, 1024, 1500)


def test_a_spec_run_pads_to_the_graph_sizes_trtbench_sends_and_counts_their_pools():
    """With trtllm.cuda_graphs (the default) trtbench sends NVIDIA's perf-overview sizes (1, 2, 4 ... 256, 384,
    512 ... 8192), so a simulated point pads as its run will: 300 sequences to 384, where trtllm-bench's own sizes
    (8..128 by 8, then powers of two) give 512; and below max_batch_size 2048 it keeps 13 graph pools, not 23."""
    spec = parse_spec(SMALL_SPEC)
    dep = deployment_for(spec)
    assert dep.graph_sizes == (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)
    asked = captured_sizes(2048, 8192, dep.graph_sizes)
    assert asked == (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048)
    assert next(s for s in asked if s >= 300) == 384
    assert next(s for s in captured_sizes(2048, 8192) if s >= 300) == 512
    assert overhead_gib(dep, 2048) == pytest.approx(1 + 13 * 60 / 1024)
    own = deployment_for(parse_spec(SMALL_SPEC + "trtllm: {cuda_graphs: false}\n"))
    assert own.graph_sizes is None and overhead_gib(own, 2048) == pytest.approx(1 + 23 * 60 / 1024)
    # 0.20's YAML has no cuda_graph_config and an engine has no PyTorch graphs: trtllm-bench's own there
    assert deployment_for(parse_spec(SMALL_SPEC + "trtllm: {version: 0.20.0}\n")).graph_sizes is None
    assert deployment_for(parse_spec(SMALL_SPEC + "trtllm: {engine_dir: /engines/x}\n")).graph_sizes is None

