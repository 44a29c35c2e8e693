"""TensorRT-LLM's fused MoE as measured: how fast its grouped GEMMs run at each expert shape, and how NVFP4
experts compare with FP8 ones on Blackwell.

Source for both: ai-dynamo's aiconfigurator collector data as released on PyPI in aiconfigurator_core 0.12.0
(`systems/data/{h100,h200,b200}_sxm/moe/trtllm/1.3.0rc20/moe_perf.parquet`): the whole fused-MoE op (routing,
permutation, both grouped GEMMs, finalize) on one GPU, kernel `moe_torch_flow_cutlass`, balanced routing, at 27
token counts from 1 to 16384, per expert shape and per moe_tp / moe_ep split (one rank's share of the work).

**Grouped GEMM rate** (`grouped_gemm`). Where the experts are compute-bound (512 or more tokens per expert), the
fraction of tensor peak the op reaches follows three fills, each x / (x + half):
- the width of one expert's slice on a rank (intermediate / moe_tp: the gate/up GEMM's N and the down GEMM's K),
- the hidden size (the other two of N and K),
- the summed width of the rank's experts (its experts x that width: the tiles the SMs share out),
times an asymptote near the GPU's best dense GEMM. Least squares on log rate (soft-L1, so a few mis-tuned tactics
do not pull it) over 1,388 points (`tests/data/grouped_gemm_points.csv`: 4,096 and 16,384 tokens, moe_tp and
moe_ep 1-8, every measured shape but one whose timings are not monotone in moe_tp): median error 6-7% on H100/H200,
7-9% on B200 (12% NVFP4), 90% within 17-29%. A slice is costly: at 16,384 tokens on H200, Qwen3-235B's 1536-wide
experts split 8 ways by TP run at 15% of FP8 peak, spread 8 ways whole by EP at 44%; Mixtral's 14336-wide ones at
54% and 68%. Families without a measurement (Ampere, Ada) take Hopper's, scaled by their best dense GEMM.

**NVFP4 experts** (`nvfp4_experts_measured`). The step model costs NVFP4 GEMMs at FP8's rate x 1.53 (vLLM's dense
CUTLASS benchmark) and streams their 9/16-byte weights at the rate FP8 weights stream. The grouped GEMMs of the
fused MoE do not: on B200 (`data/moe_kernels_b200.csv`: tp 1, ep 1, fp8 and nvfp4 at 13 expert shapes and 27
token counts, the fastest repeat per point) NVFP4 is *slower* than FP8 at nearly every batch for Qwen3's 768- and
1536-wide experts (0.98-1.5x the time, 1.1-1.35x at most batch sizes) and 1.2-1.45x faster only for Mixtral's
14336-wide ones, the block scales and the small per-expert tiles costing what the narrower weights save. So an
NVFP4 expert layer is costed as its FP8 twin's, times the measured time ratio at the same token count for the
nearest measured expert shape: a ratio of two kernels timed alike, so the collector's harness and release cancel;
the FP8 twin keeps the release's fitted rates.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache

from trtbench.bundled import data_path
from trtbench.catalog.gpus import FAMILY_MAMF, GPU
from trtbench.catalog.models import ModelArch
from trtbench.precision import Precision

MOE_KERNELS_B200 = "moe_kernels_b200.csv"


@dataclass(frozen=True)
class GroupedGemm:
    """The fused MoE's grouped GEMMs at large batches, as a fraction of tensor peak (see the module)."""

    best: float  # the asymptote: wide experts, a wide hidden state, many experts on the rank
    width_half: float  # one expert's slice width on a rank (intermediate / moe_tp) at which that fill is half
    hidden_half: float
    summed_half: float  # the rank's experts x that width

    def efficiency(self, width: float, hidden: int, experts: float) -> float:
        """`experts`: how many of the rank's experts the batch touches, each `width` wide."""
        summed = width * experts
        return (self.best * width / (width + self.width_half) * hidden / (hidden + self.hidden_half)
                * summed / (summed + self.summed_half))


# Fitted per GPU family and tensor-core input (H100 and H200 together for Hopper; B200 for Blackwell); `best` is of
# the family's measured GPU's peak, carried to another GPU by the ratio of their best dense GEMMs (`FAMILY_MAMF`).
GROUPED: dict[tuple[str, str], GroupedGemm] = {
    ("hopper", "bf16"): GroupedGemm(0.936, 559, 382, 887),
    ("hopper", "fp8"): GroupedGemm(0.970, 986, 1069, 1531),
    ("blackwell", "bf16"): GroupedGemm(0.975, 781, 709, 1862),
    ("blackwell", "fp8"): GroupedGemm(1.022, 1551, 1579, 2875),
    ("blackwell", "fp4"): GroupedGemm(0.583, 1874, 2488, 2425),
}


def grouped_gemm(gpu: GPU, precision: str) -> GroupedGemm:
    """The grouped-GEMM rate of `precision`'s experts on `gpu`: its family's fit at the GEMM's tensor-core input, or
    Hopper's for a family without a measurement, `best` scaled by the GPU's best dense GEMM against the measured
    GPU's (FP4 only exists on Blackwell, whose measured GPU it is)."""
    dtype = gpu.gemm_dtype(precision)
    family = gpu.family if (gpu.family, dtype) in GROUPED else "hopper"
    fitted = GROUPED[(family, dtype)]
    scale = 1.0 if dtype == "fp4" else gpu.best_gemm_fraction(precision) / FAMILY_MAMF[family][dtype]
    return replace(fitted, best=fitted.best * scale)


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
