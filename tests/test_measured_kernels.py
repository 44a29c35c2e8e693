"""The parts of the step model taken from measured kernels rather than fitted to throughput rows: NVFP4 experts on
Blackwell (TensorRT-LLM's fused MoE, `sim.moekernels`) and the collectives on NVSwitch boards (`sim.comm`), each
checked against the measured numbers themselves (ai-dynamo's aiconfigurator collector data, aiconfigurator_core
0.12.0 on PyPI)."""

from __future__ import annotations

import pytest

from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import resolve_model
from trtbench.deployment import make_deployment
from trtbench.precision import Precision
from trtbench.sim import calibration
from trtbench.sim.comm import allreduce_s, gather_s
from trtbench.sim.moekernels import Shape, nvfp4_experts_measured
from trtbench.sim.steptime import AnalyticStep

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
