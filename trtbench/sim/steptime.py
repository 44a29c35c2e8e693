"""How long one in-flight-batching iteration takes on a GPU: an analytic per-operator model, per TP rank.

- GEMMs, per layer and per rank: qkv, o_proj, gate_up and down at their per-rank shapes (N, K). Each costs
  max(2 M N K / (peak x MAMF x shape x eta_gemm), N K bytes / (HBM x eta_mem)) for M tokens: compute at
  the GPU's measured best-shape rate (`GPU.best_gemm_fraction`), lower on narrow TP slices
  (`shape_efficiency`, from public H100 FP8 GEMM tables), or streaming the weights.
- a mixture's routed experts as grouped GEMMs at the rate TensorRT-LLM's fused MoE measures for their shape and
  split (`sim.moekernels.grouped_gemm`), times their own factor, eta_moe; NVFP4 experts on Blackwell as their FP8
  twin times the NVFP4 / FP8 time the fused MoE measures at that batch (`sim.moekernels`);
- the lm_head (16-bit) for every sampled token, the same way;
- attention: causal context pairs and decode KV reads (FP8 FMHA with FP8 weights and KV, else 16-bit);
- the work every rank repeats whatever the TP: the fused residual-add + RMSNorm passes over the full hidden
  vector and the SiLU-gate + quantisation pass, memory-bound;
- TP all-reduces: two per layer over the tokens' hidden states (`sim.comm`, by message size and topology);
- attention data parallelism: the step is one rank's, on its own batch, with attention, dense layers and lm_head
  whole and no all-reduce; the fused MoE all-gathers every rank's quantized tokens and routing and
  reduce-scatters the outputs, so a rank's experts see every rank's tokens (`ranks` x its batch);
- fixed costs: per iteration (sampling, scheduling, the graph launch) and per layer (the floors of its
  kernels, 10-15 us per GEMM call, which CUDA graphs do not remove);
- the release: one speed factor per TensorRT-LLM release with calibration rows (software, not hardware).
Seven factors are fitted (sim/calibration.py); everything else comes from datasheets and public
microbenchmarks. A measured-kernel model (e.g. aiconfigurator's tables) can replace this behind `StepModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from trtbench.catalog.gpus import GPU
from trtbench.catalog.models import ModelArch, expected_experts, expected_max_load
from trtbench.deployment import Deployment
from trtbench.precision import Precision
from trtbench.sim.comm import allreduce_s, gather_s
from trtbench.sim.moekernels import grouped_gemm, nvfp4_experts_measured

# Public H100 FP8 GEMM tables: 60-72% of peak on large shapes, 25-50% when the per-rank slice is 1-4k wide
# (TP8). With the output width N (the tiles a GEMM spreads over the SMs): shape = N / (N + 1024) of the
# best-shape rate (70.9% of peak) is 35% of peak at N = 1k, 57% at 4k, 63% at 8k, 68% at 28k.
SHAPE_HALF = 1024
# Bytes each rank moves per token and layer outside GEMMs and attention: two fused residual-add + RMSNorm
# passes (read residual and input, write both: 4 x hidden x 2 B each) and SiLU x gate fused with the FP8
# quantisation of its output (read 2 x intermediate/TP at 2 B, write intermediate/TP at 1-2 B).
NORM_BYTES_PER_HIDDEN = 16
GATE_BYTES_PER_INTERMEDIATE = 5
ACTIVATION_BYTES = 2  # hidden states in 16 bits, also what an all-reduce carries
ROUTE_BYTES_PER_EXPERT = 8  # a token's routing as the fused MoE gathers it: an int32 expert id and an fp32 weight


@dataclass(frozen=True)
class Factors:
    eta_mem: float  # achieved fraction of HBM bandwidth streaming weights and activations
    eta_kv: float  # achieved fraction of HBM bandwidth reading the paged KV cache in attention
    eta_gemm: float  # achieved fraction of the best-shape GEMM rate (after the shape efficiency)
    eta_attn: float  # achieved fraction of tensor peak in attention
    t_iter_s: float  # fixed cost per iteration
    t_layer_s: float  # fixed cost per layer per iteration: its kernels' floors
    # the routed experts' grouped GEMMs relative to one large GEMM, in compute and in streaming weights: they run
    # many small per-expert problems (slabs of a few MB, a few dozen tokens each), below one large weight's rates
    eta_moe: float = 1.0


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


def shape_efficiency(n: int) -> float:
    """The fraction of the best-shape GEMM rate a weight of N output columns (per rank) reaches."""
    return n / (n + SHAPE_HALF)


def attention_shapes(arch: ModelArch, tp: int) -> list[tuple[int, int]]:
    """(N, K) of each attention GEMM on one TP rank. Latent attention's down-projections (to q_lora and to the
    kv_lora latent) are whole on every rank; the per-head up-projections and the output split by heads."""
    d = arch.hidden
    if not arch.is_mla:
        q, kv = arch.heads * arch.head_dim // tp, 2 * max(1, arch.kv_heads // tp) * arch.head_dim
        return [(q + kv, d), (d, q)]
    heads = max(1, arch.heads // tp)
    qk = heads * (arch.nope_dim + arch.rope_dim)
    query = [(arch.q_lora, d), (qk, arch.q_lora)] if arch.q_lora else [(qk, d)]
    return [*query, (arch.kv_lora + arch.rope_dim, d), (heads * (arch.nope_dim + arch.v_dim), arch.kv_lora),
            (d, heads * arch.v_dim)]


class AnalyticStep:
    name = "analytic"

    def __init__(self, dep: Deployment, factors: Factors, speed: float = 1.0) -> None:
        """`speed`: the release's factor (`calibration.release_factor`); every iteration takes 1/speed as long."""
        arch, tp, gpu = dep.arch, dep.tp, dep.gpu
        atp = dep.attention_tp  # 1 under attention DP: attention, dense FFN, shared experts and lm_head whole
        self.ranks = dep.dp_ranks  # ranks that each run such a step on their own batch, side by side
        self.f, self.speed = factors, speed
        self.gpu, self.tp = gpu, tp
        layers = arch.layers / dep.pp
        self.layers = layers
        bandwidth = gpu.hbm_tb_s * 1e12 * factors.eta_mem
        gemm_rate = gpu.peak_flops(dep.precision) * gpu.best_gemm_fraction(dep.precision) * factors.eta_gemm
        # (layers it runs in, N, K) per GEMM: attention everywhere; the dense FFN in dense layers; in MoE layers
        # the shared expert, and the routed experts apart (how many a batch touches decides what is read).
        moe_layers = arch.moe_layers / dep.pp
        shapes = [(layers, n, k) for n, k in attention_shapes(arch, atp)]
        for width, where in ((arch.intermediate, layers - moe_layers), (arch.shared_intermediate, moe_layers)):
            if width and where:
                shapes += [(where, 2 * width // atp, arch.hidden), (where, arch.hidden, width // atp)]
        # Per GEMM: seconds per token of compute, and seconds to stream its weights once (for all layers).
        self.gemms = [(n_layers * 2 * n * k / (gemm_rate * shape_efficiency(n)), n_layers * n * k * dep.weight_bytes
                       / bandwidth) for n_layers, n, k in shapes]
        # Routed experts, one grouped GEMM per projection: compute for each (token, expert) pair at the rank's
        # slice of the expert, at the fused MoE's measured rate for that slice's width, the hidden size and the
        # experts the batch touches on the rank (`grouped_gemm`). Under EP the step waits for the rank with the
        # most pairs (`expected_max_load`). Each touched expert's weights are read once per iteration.
        # NVFP4 experts on Blackwell: their FP8 twin's rates and bytes, times the measured NVFP4 / FP8 time of
        # TensorRT-LLM's fused MoE at the batch's token count (`sim.moekernels`).
        self.nvfp4_experts = nvfp4_experts_measured(gpu, dep.precision, arch)
        experts_as = Precision.FP8 if self.nvfp4_experts else dep.precision
        self.grouped = grouped_gemm(gpu, experts_as)
        self.expert_width = arch.moe_intermediate * dep.ep / tp  # under EP a rank holds whole experts, tp/ep wide
        self.hidden = arch.hidden
        expert_rate = (gpu.peak_flops(experts_as) * factors.eta_gemm * gpu.expert_gemm_factor(experts_as)
                       * factors.eta_moe)
        self.expert_s_per_pair = moe_layers * 2 * arch.expert_params * dep.ep / tp / expert_rate
        self.expert_weights_s = (moe_layers * arch.expert_params / tp * experts_as.expert_bytes
                                 / (bandwidth * factors.eta_moe))
        self.experts, self.top_k, self.ep = arch.experts, arch.top_k, dep.ep
        # Routing, memory-bound on every rank over every token its experts see: the permutation reads each token's
        # hidden state and writes a row per (token, local expert) pair at the GEMM's input width, which is the
        # weights' (FP8 and NVFP4 quantize activations as their weights; 16-bit and MXFP4-on-Hopper take 16 bits);
        # the finalize step reads the pairs' 16-bit outputs back and writes one row per token (TensorRT-LLM's fused
        # MoE: expandInputRows and finalizeMoeRouting). Per MoE layer: hidden x (4 B a token + (input + 2) B a pair).
        self.route_s_per_token = moe_layers * arch.hidden * 2 * ACTIVATION_BYTES / bandwidth
        self.route_s_per_pair = moe_layers * arch.hidden * (dep.weight_bytes + ACTIVATION_BYTES) / bandwidth
        head_rate = gpu.peak_flops("bf16") * gpu.best_gemm_fraction("bf16") * factors.eta_gemm
        vocab = arch.vocab // atp
        self.head_s_per_sample = 2 * vocab * arch.hidden / (head_rate * shape_efficiency(vocab))
        self.head_weights_s = vocab * arch.hidden * 2 / bandwidth
        # FP8 context FMHA (on with FP8 weights and KV) runs attention at FP8 rate; otherwise it is 16-bit.
        fp8_attention = dep.precision == "fp8" and dep.kv_dtype_bytes == 1
        attn_peak = gpu.peak_flops("fp8" if fp8_attention else "bf16") * factors.eta_attn
        # FLOPs per (query, cached token) pair and head: QK and PV over head_dim; with latent attention (absorbed
        # into the latent, as decode runs it) QK over kv_lora + rope_dim and PV over kv_lora.
        per_head = (2 * arch.kv_lora + arch.rope_dim) if arch.is_mla else 2 * arch.head_dim
        self.attn_s_per_pair = 2 * layers * (arch.heads / atp) * per_head / attn_peak
        kv_bandwidth = gpu.hbm_tb_s * 1e12 * factors.eta_kv
        self.kv_s_per_token = arch.kv_bytes_per_token(dep.kv_dtype_bytes, atp) / dep.pp / kv_bandwidth
        # (share of the layers, the most keys a query reads there) per kind of attention layer
        self.attention = [(n / arch.layers, span) for n, span in arch.attention_groups]
        self.elementwise_s_per_token = (layers * NORM_BYTES_PER_HIDDEN * arch.hidden + GATE_BYTES_PER_INTERMEDIATE / atp
                                        * ((layers - moe_layers) * arch.intermediate + moe_layers * arch.active_ffn)
                                        ) / bandwidth
        # (calls per iteration, collective, ranks, bytes per token of this rank's batch): the attention output's
        # and the FFN's all-reduce in every layer. Expert parallelism alone changes none of it: every TP rank holds
        # every token, runs its own experts on them, and the partial outputs meet in the FFN's all-reduce as a
        # tensor-parallel FFN's do (TensorRT-LLM's fused MoE: forward -> reducescatter_or_allreduce). Under
        # attention DP the fused MoE (CUTLASS, on NVLink boards: its all-to-all needs multi-node NVLink and more EP
        # ranks than top-k) all-gathers every rank's tokens, quantized as the weights, with their top-k expert
        # ids and weights, and reduce-scatters the 16-bit outputs back, in every MoE layer (ep = tp there).
        hidden_bytes = arch.hidden * ACTIVATION_BYTES
        self.comms: list[tuple[float, Callable[[GPU, int, float], float], int, float]] = (
            [(2 * layers, allreduce_s, atp, hidden_bytes)] if atp > 1 else [])
        if dep.attention_dp and dep.ep > 1 and moe_layers:
            routed = arch.hidden * dep.weight_bytes + arch.top_k * ROUTE_BYTES_PER_EXPERT
            self.comms += [(moe_layers, gather_s, dep.ep, dep.ep * routed),
                           (moe_layers, gather_s, dep.ep, dep.ep * hidden_bytes)]
        self.fixed_s = factors.t_iter_s + factors.t_layer_s * layers

    def iteration_s(self, b: Batch) -> float:
        gemm = sum(max(per_token * b.tokens, weights) for per_token, weights in self.gemms)
        if self.experts:
            moe_tokens = b.tokens * self.ranks  # under attention DP every rank's batch meets at the experts
            touched = expected_experts(moe_tokens, self.experts, self.top_k)
            pairs = expected_max_load(moe_tokens, self.experts, self.top_k, self.ep)  # on the busiest rank
            rate = self.grouped.efficiency(self.expert_width, self.hidden, max(1.0, touched / self.ep))
            measured = self.nvfp4_experts.at(moe_tokens) if self.nvfp4_experts else 1.0
            gemm += max(self.expert_s_per_pair * pairs / rate, touched * self.expert_weights_s) * measured
            gemm += self.route_s_per_token * moe_tokens + self.route_s_per_pair * pairs
        head = max(self.head_s_per_sample * b.sampled, self.head_weights_s)
        # Sliding-window and chunked layers: no query reads more than `span` keys, so a batch's pairs and cached
        # KV reads there are at most tokens x span and sequences x span (exact once every context is that long);
        # every layer still writes the new tokens' KV.
        attn = sum(share * max(self.attn_s_per_pair * _within(b.pairs, b.tokens, span),
                               self.kv_s_per_token * (_within(b.kv_read, b.sequences, span) + b.tokens))
                   for share, span in self.attention)
        comm = sum(calls * cost(self.gpu, ranks, b.tokens * per_token) for calls, cost, ranks, per_token in self.comms)
        return (gemm + head + attn + self.elementwise_s_per_token * b.tokens + comm + self.fixed_s) / self.speed


def _within(total: float, count: int, span: int | None) -> float:
    """`total` keys over `count` queries or sequences, each reading at most `span` (None: no bound)."""
    return total if span is None else min(total, count * span)
