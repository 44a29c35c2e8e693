"""How much slower (or faster) TensorRT-LLM's fused MoE runs NVFP4 experts than FP8 ones on Blackwell, measured.

The step model costs NVFP4 GEMMs at FP8's rate x 1.53 (vLLM's dense CUTLASS benchmark) and streams their 9/16-byte
weights at the rate FP8 weights stream. The grouped GEMMs of TensorRT-LLM's CUTLASS fused MoE do not: on B200
(`data/moe_kernels_b200.csv`) NVFP4 is *slower* than FP8 at nearly every batch for Qwen3's 768- and 1536-wide
experts (0.98-1.5x the time, 1.1-1.35x at most batch sizes) and 1.2-1.45x faster only for Mixtral's 14336-wide
ones, the block scales and the small per-expert tiles costing what the narrower weights save. So an NVFP4 expert
layer is costed as its FP8 twin's, times the measured time ratio at the same token count for the nearest measured
expert shape.

Source: ai-dynamo's aiconfigurator collector data as released on PyPI in aiconfigurator_core 0.12.0
(`systems/data/b200_sxm/moe/trtllm/1.3.0rc20/moe_perf.parquet`): the whole fused-MoE op (routing, permutation,
both grouped GEMMs, finalize) on one B200, kernel `moe_torch_flow_cutlass`, tp 1, ep 1, balanced routing, fp8 and
nvfp4 at each of 13 expert shapes and 27 token counts from 1 to 16384, the fastest of its repeats per point. A
ratio of two kernels timed alike, so the collector's harness and release cancel; the FP8 twin keeps the release's
fitted rates.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from trtbench.bundled import data_path
from trtbench.catalog.gpus import GPU
from trtbench.catalog.models import ModelArch
from trtbench.precision import Precision

MOE_KERNELS_B200 = "moe_kernels_b200.csv"


@dataclass(frozen=True)
class Shape:
    hidden: int
    inter: int
    experts: int
    top_k: int


@dataclass(frozen=True)
class RatioCurve:
    """NVFP4 / FP8 time of one measured shape: (log tokens, log ratio) points, tokens ascending."""

    shape: Shape
    points: tuple[tuple[float, float], ...]

    def at(self, tokens: float) -> float:
        """The ratio at `tokens` (log-log interpolation; the end points beyond the measured range)."""
        x = math.log(max(tokens, 1.0))
        if x <= self.points[0][0]:
            return math.exp(self.points[0][1])
        for (x0, y0), (x1, y1) in itertools.pairwise(self.points):
            if x <= x1:
                return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        return math.exp(self.points[-1][1])


@lru_cache(maxsize=1)
def measured_curves() -> tuple[RatioCurve, ...]:
    points: dict[Shape, list[tuple[float, float]]] = {}
    text = data_path(MOE_KERNELS_B200).read_text(encoding="utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        shape = Shape(int(row["hidden"]), int(row["inter"]), int(row["experts"]), int(row["topk"]))
        points.setdefault(shape, []).append(
            (math.log(int(row["tokens"])), math.log(float(row["nvfp4_ms"]) / float(row["fp8_ms"]))))
    return tuple(RatioCurve(shape, tuple(sorted(p))) for shape, p in points.items())


def nearest(arch: ModelArch) -> RatioCurve:
    """The measured shape closest to the model's experts: hidden, width, count and top-k, each by log ratio."""
    def distance(curve: RatioCurve) -> float:
        s = curve.shape
        return sum(math.log(a / b) ** 2 for a, b in ((s.hidden, arch.hidden), (s.inter, arch.moe_intermediate),
                                                      (s.experts, arch.experts), (s.top_k, arch.top_k)))
    return min(measured_curves(), key=distance)


def nvfp4_experts_measured(gpu: GPU, precision: Precision, arch: ModelArch) -> RatioCurve | None:
    """The curve NVFP4 experts follow on a datacenter Blackwell (B200's kernels: NVLink 5 parts), else None."""
    if precision is not Precision.NVFP4 or not arch.experts or gpu.family != "blackwell" or gpu.nvlink_gen != 5:
        return None
    return nearest(arch)
