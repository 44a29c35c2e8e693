"""The parts of the step model taken from measured kernels rather than fitted to throughput rows: the fused MoE's
grouped-GEMM rate per expert shape and split and NVFP4 experts on Blackwell (TensorRT-LLM's fused MoE,
`sim.moekernels`), and the collectives on NVSwitch boards (`sim.comm`), each checked against the measured numbers
themselves (ai-dynamo's aiconfigurator collector data, aiconfigurator_core 0.12.0 on PyPI)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import resolve_model
from trtbench.deployment import make_deployment
from trtbench.precision import Precision
from trtbench.sim import calibration
from trtbench.sim.comm import allreduce_s, gather_s
from trtbench.sim.moekernels import GROUPED, GroupedGemm, Shape, grouped_gemm, nvfp4_experts_measured
from trtbench.sim.steptime import AnalyticStep, Batch

B200 = resolve_gpu("b200")
QWEN3_235B = resolve_model("Qwen/Qwen3-235B-A22B")
QWEN3_30B = resolve_model("Qwen/Qwen3-30B-A3B")


def test_nvfp4_experts_take_the_measured_time_over_fp8_at_a_measured_batch():
    # moe_kernels_b200.csv, hidden 4096, 1536 wide, 128 experts, top-8 at 512 tokens: nvfp4 0.48083 ms, fp8 0.42919
    curve = nvfp4_experts_measured(B200, Precision.NVFP4, QWEN3_235B)
    assert curve is not None and curve.shape == Shape(4096, 1536, 128, 8)
    assert curve.at(512) == pytest.approx(0.48083 / 0.42919, rel=1e-9)  # 1.120: NVFP4 is the slower one here


def test_between_measured_batches_the_ratio_is_interpolated_in_log_tokens():
    # Qwen3-30B's shape (2048, 768, 128, 8): 384 tokens 0.18594 / 0.15203 = 1.22305, 512 tokens 0.19070 / 0.16251
    # = 1.17347. 448 tokens sit ln(448/384) / ln(512/384) = 0.53584 of the way in log tokens, so
    # exp(ln 1.22305 + 0.53584 (ln 1.17347 - ln 1.22305)) = 1.19623.
    curve = nvfp4_experts_measured(B200, Precision.NVFP4, QWEN3_30B)
    assert curve is not None and curve.shape == Shape(2048, 768, 128, 8)
    assert curve.at(448) == pytest.approx(1.19623, rel=1e-4)
    # beyond the measured range, its end points: 1 token 0.05617 / 0.03805, 16384 tokens 1.81679 / 1.43129
    assert curve.at(0.5) == curve.at(1) == pytest.approx(0.05617 / 0.03805, rel=1e-9)
    assert curve.at(10**6) == curve.at(16384) == pytest.approx(1.81679 / 1.43129, rel=1e-9)


def test_a_model_between_measured_shapes_takes_the_nearest():
    # DeepSeek-R1's experts (7168 hidden, 2048 wide, 256, top-8) have no FP8 CUTLASS row; the nearest shape with
    # both is (6144, 2048, 256, 8): log distance ln(7168/6144)^2 = 0.024, against 0.313 for (4096, 2048, 256, 8).
    curve = nvfp4_experts_measured(B200, Precision.NVFP4, resolve_model("deepseek-ai/DeepSeek-R1"))
    assert curve is not None and curve.shape == Shape(6144, 2048, 256, 8)


@pytest.mark.parametrize(("gpu", "precision", "model"), [
    ("h200-sxm", Precision.FP8, QWEN3_235B),  # Hopper, FP8: the fitted grouped-GEMM rates
    ("b200", Precision.FP8, QWEN3_235B),  # Blackwell, but FP8 experts
    ("b200", Precision.NVFP4, resolve_model("meta-llama/Llama-3.1-405B")),  # no experts
    ("rtx-pro-6000-bse", Precision.NVFP4, QWEN3_30B),  # Blackwell without NVLink: other kernels, not measured
])
def test_only_nvfp4_experts_on_datacenter_blackwell_take_the_measurement(gpu, precision, model):
    assert nvfp4_experts_measured(resolve_gpu(gpu), precision, model) is None
    assert nvfp4_experts_measured(resolve_gpu("gb200"), Precision.NVFP4, QWEN3_30B) is not None


def test_nvfp4_experts_are_costed_as_their_fp8_twin():
    factors = calibration.load()[0]
    nvfp4 = AnalyticStep(make_deployment("Qwen/Qwen3-30B-A3B", "b200", "nvfp4"), factors)
    fp8 = AnalyticStep(make_deployment("Qwen/Qwen3-30B-A3B", "b200", "fp8"), factors)
    assert (nvfp4.expert_s_per_pair, nvfp4.expert_weights_s) == (fp8.expert_s_per_pair, fp8.expert_weights_s)
    assert fp8.nvfp4_experts is None and nvfp4.nvfp4_experts is not None


# The collector's fused-MoE timings where the experts are compute-bound (>= 512 tokens per expert): 4,096 and
# 16,384 tokens, moe_tp and moe_ep 1-8, H100, H200 (fp8, bf16) and B200 (fp8, bf16, nvfp4)
GROUPED_POINTS = Path(__file__).parent / "data" / "grouped_gemm_points.csv"
CATALOG = {"H100": "h100-sxm", "H200": "h200-sxm", "B200": "b200"}
def measured_and_modelled(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each point's measured fraction of tensor peak (its FLOPs over its time: 2 x routed pairs on the rank x the
    three projections of a slice) and the fit's."""
    measured, modelled = [], []
    for p in points.itertuples():
        gpu, precision = resolve_gpu(CATALOG[p.gpu]), p.dtype
        width = p.inter / p.moe_tp
        flops = 2 * p.tokens * p.topk / p.moe_ep * 3 * p.hidden * width
        measured.append(flops / (p.ms * 1e-3) / gpu.peak_flops(precision))
        modelled.append(grouped_gemm(gpu, precision).efficiency(width, p.hidden, p.experts / p.moe_ep))
    return np.array(measured), np.array(modelled)


@pytest.mark.parametrize(("gpu", "dtype", "median", "p90"), [
    ("H100", "fp8", 0.08, 0.22), ("H200", "fp8", 0.08, 0.22), ("H100", "bf16", 0.08, 0.22),
    ("H200", "bf16", 0.08, 0.22), ("B200", "fp8", 0.10, 0.30), ("B200", "bf16", 0.08, 0.25),
    ("B200", "nvfp4", 0.13, 0.30),
])
def test_the_grouped_gemm_rate_follows_the_measured_fused_moe(gpu, dtype, median, p90):
    points = pd.read_csv(GROUPED_POINTS)
    points = points[(points.gpu == gpu) & (points.dtype == dtype)]
    assert len(points) >= 180
    measured, modelled = measured_and_modelled(points)
    error = np.abs(np.log(modelled / measured))
    assert np.median(error) <= median and np.quantile(error, 0.9) <= p90


@pytest.mark.parametrize(("family", "gpus", "dtype"), [
    ("hopper", ("H100", "H200"), "bf16"), ("hopper", ("H100", "H200"), "fp8"), ("blackwell", ("B200",), "bf16"),
    ("blackwell", ("B200",), "fp8"), ("blackwell", ("B200",), "fp4"),
])
def test_the_committed_constants_are_the_fit_of_the_measured_points(family, gpus, dtype):
    """Refit the three-fill form to the points (soft-L1 on log rate, as moekernels says) and find the committed
    constants: they come from this data, not from tuning the throughput tables."""
    from scipy.optimize import least_squares

    points = pd.read_csv(GROUPED_POINTS)
    points = points[points.gpu.isin(gpus) & (points.dtype == ("nvfp4" if dtype == "fp4" else dtype))]
    measured, _ = measured_and_modelled(points)
    width, hidden = (points.inter / points.moe_tp).to_numpy(), points.hidden.to_numpy()
    experts = (points.experts / points.moe_ep).to_numpy()

    def log_error(p: np.ndarray) -> np.ndarray:
        return np.log(GroupedGemm(*p).efficiency(width, hidden, experts) / measured)

    fit = least_squares(log_error, [0.8, 800, 1000, 1000], bounds=(0, [3, 1e5, 1e5, 1e5]), loss="soft_l1",
                        f_scale=0.1).x
    committed = GROUPED[(family, dtype)]
    assert fit == pytest.approx([committed.best, committed.width_half, committed.hidden_half, committed.summed_half],
                                rel=0.01)


def test_experts_sliced_by_tp_run_at_a_third_of_the_rate_of_whole_experts_spread_by_ep():
    # H200 FP8, Qwen3-235B's experts (4096 hidden, 1536 wide, 128, top-8), 16,384 tokens: moe_tp 8 takes 2.1362 ms,
    # moe_ep 8 0.7139 ms for the same FLOPs per rank (a slice of every expert vs whole experts): 2.99x. Mixtral's
    # (14336 wide, 8 experts, top-2): 1.3528 ms split 8 ways by TP, 1.0661 ms spread by EP, 1.27x.
    grouped = grouped_gemm(resolve_gpu("h200-sxm"), "fp8")
    qwen = grouped.efficiency(1536, 4096, 16) / grouped.efficiency(192, 4096, 128)
    mixtral = grouped.efficiency(14336, 4096, 1) / grouped.efficiency(1792, 4096, 8)
    # a ratio of two fitted points: within the fit's 90th-percentile error of each (test above), 25% and 14% here
    assert qwen == pytest.approx(2.1362 / 0.7139, rel=0.3) and mixtral == pytest.approx(1.3528 / 1.0661, rel=0.2)
    assert qwen > 2.5 * mixtral / 1.27
    # and the step model charges it: a prefill-sized batch's experts take about 3x as long under TP8 as TP8 EP8
    factors = calibration.load()[0]
    sliced = AnalyticStep(make_deployment("Qwen/Qwen3-235B-A22B", "h200-sxm", "fp8", tp=8), factors)
    whole = AnalyticStep(make_deployment("Qwen/Qwen3-235B-A22B", "h200-sxm", "fp8", tp=8, ep=8), factors)
    batch = Batch(tokens=16384, sequences=2, sampled=2, pairs=2 * 8192 * 8193 / 2, kv_read=0)
    assert sliced.iteration_s(batch) > 1.8 * whole.iteration_s(batch)


def test_a_family_without_measurements_takes_hoppers_fit_scaled_by_its_best_dense_gemm():
    # A100 BF16: Hopper's bf16 fit, its asymptote times 0.869 / 0.803 (MAMF, A100 vs H100); L40S FP8 (Ada, MAMF as
    # Hopper's): Hopper's fp8 fit as it is
    hopper_bf16 = grouped_gemm(resolve_gpu("h100-sxm"), "bf16")
    a100 = grouped_gemm(resolve_gpu("a100-sxm-80gb"), "fp16")
    assert a100.best == pytest.approx(hopper_bf16.best * 0.869 / 0.803, rel=1e-9)
    assert a100.width_half == hopper_bf16.width_half
    assert grouped_gemm(resolve_gpu("L40S"), "fp8") == grouped_gemm(resolve_gpu("h200-sxm"), "fp8")
    assert math.isclose(grouped_gemm(resolve_gpu("b200"), "nvfp4").best, 0.583)


# (collective, GPU, ranks, bytes, measured us): TensorRT-LLM 1.3.0rc20's all-reduce (AUTO, bf16) and NCCL 2.29.2
# (fp16) from the collector's tables; bytes are twice the tables' element counts.
MEASURED_POINTS = [
    (allreduce_s, "b200", 8, 16_777_216, 84.76),
    (allreduce_s, "b200", 4, 4_194_304, 26.79),
    (gather_s, "h200-sxm", 4, 16_777_216, 63.85),
    (gather_s, "b200", 8, 67_108_864, 137.52),
]


@pytest.mark.parametrize(("collective", "gpu", "ranks", "size", "measured_us"), MEASURED_POINTS)
def test_nvswitch_collectives_follow_their_measured_curves(collective, gpu, ranks, size, measured_us):
    assert collective(resolve_gpu(gpu), ranks, size) * 1e6 == pytest.approx(measured_us, rel=0.15)


def test_hopper_all_reduce_keeps_the_curve_the_dense_tables_fit():
    # B200 TP8 at 16 MB: 4.89 + 1.75 (16,777,216 + 9,000,000) / 594,000 = 80.83 us (measured 84.76); H100 keeps
    # the nccl-tests curve: 3 + 1.75 (16,777,216 + 6,000,000) / 480,000 = 86.04 us (TensorRT-LLM measured 121.4:
    # fused with the residual add and RMSNorm in the Llama runs the dense tables hold, its share is not separable)
    assert allreduce_s(B200, 8, 16_777_216) * 1e6 == pytest.approx(80.83, abs=0.01)
    assert allreduce_s(resolve_gpu("h100-sxm"), 8, 16_777_216) * 1e6 == pytest.approx(86.04, abs=0.01)
