"""How long one in-flight-batching iteration takes on a GPU: an analytic per-operator roofline.

Each operator group costs max(FLOPs / (eta x peak), bytes / (eta_mem x HBM bandwidth)):
- GEMMs of the transformer layers: FLOPs 2 x params x tokens, bytes = the weights, read once;
- the lm_head (16-bit) for every sampled token;
- attention: causal context pairs and decode KV reads (FP8 FMHA with FP8 weights and KV, else 16-bit),
  bytes = KV read + written;
- TP all-reduces: two per layer over the tokens' hidden states, over the GPU link;
plus a fixed per-iteration cost (launch, sampling, scheduling) and a per-sequence cost (host-side
bookkeeping per request in the batch). The five factors are the only free parameters; they are
fitted once (sim/calibration.py) and serve every GPU, model and TP size.
A measured-kernel model (e.g. aiconfigurator's tables) can replace this behind `StepModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from trtbench.deployment import Deployment

ALLREDUCE_LATENCY_S = 8e-6  # per all-reduce call on NVLink-class links
LINK_EFFICIENCY = 0.7


@dataclass(frozen=True)
class Factors:
    eta_mem: float  # achieved fraction of HBM bandwidth
    eta_gemm: float  # achieved fraction of tensor peak in GEMMs (at the weight precision)
    eta_attn: float  # achieved fraction of tensor peak in attention
    t_iter_s: float  # fixed cost per iteration
    t_seq_s: float  # cost per sequence in the iteration


@dataclass(frozen=True)
class Batch:
    """One iteration's work. `pairs` counts causal (query, key) pairs of the context chunks,
    `kv_read` the KV tokens read (decode contexts plus chunk prefixes), `kv_write` the new tokens."""

    tokens: int
    sequences: int
    sampled: int
    pairs: float
    kv_read: float


class StepModel(Protocol):
    name: str

    def iteration_s(self, batch: Batch) -> float: ...


class AnalyticStep:
    name = "analytic"

    def __init__(self, dep: Deployment, factors: Factors) -> None:
        arch, tp = dep.arch, dep.tp
        self.f = factors
        self.tp = tp
        gemm_peak = dep.gpu.peak_flops(dep.precision) * factors.eta_gemm
        # FP8 context FMHA (trtllm-build's use_fp8_context_fmha, on with FP8 weights and KV) runs
        # attention at FP8 rate; otherwise it is 16-bit.
        fp8_attention = dep.precision == "fp8" and dep.kv_dtype_bytes == 1
        attn_peak = dep.gpu.peak_flops("fp8" if fp8_attention else "bf16") * factors.eta_attn
        bandwidth = dep.gpu.hbm_tb_s * 1e12 * factors.eta_mem
        # Per token / per pair costs in seconds, per GPU.
        params = arch.transformer_params / (tp * dep.pp)
        self.gemm_s_per_token = 2 * params / gemm_peak
        self.weights_s = params * dep.weight_bytes / bandwidth
        head = arch.vocab * arch.hidden / tp
        self.head_s_per_sample = 2 * head / (dep.gpu.peak_flops("bf16") * factors.eta_gemm)
        self.head_weights_s = head * 2 / bandwidth
        self.attn_s_per_pair = 4 * arch.layers * (arch.heads / tp) * arch.head_dim / dep.pp / attn_peak
        self.kv_s_per_token = arch.kv_bytes_per_token(dep.kv_dtype_bytes, tp) / dep.pp / bandwidth
        if tp > 1:
            ring = 2 * (tp - 1) / tp
            link = dep.gpu.link_gb_s * 1e9 * LINK_EFFICIENCY
            self.comm_s_per_token = 2 * arch.layers * ring * arch.hidden * 2 / link
            self.comm_fixed_s = 2 * arch.layers * ALLREDUCE_LATENCY_S
        else:
            self.comm_s_per_token = self.comm_fixed_s = 0.0

    def iteration_s(self, b: Batch) -> float:
        gemm = max(self.gemm_s_per_token * b.tokens, self.weights_s)
        head = max(self.head_s_per_sample * b.sampled, self.head_weights_s)
        attn = max(self.attn_s_per_pair * b.pairs, self.kv_s_per_token * (b.kv_read + b.tokens))
        comm = self.comm_s_per_token * b.tokens + self.comm_fixed_s
        return gemm + head + attn + comm + self.f.t_iter_s + self.f.t_seq_s * b.sequences
