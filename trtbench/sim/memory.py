"""GPU memory as TensorRT-LLM lays it out: weights, activation workspace, then a KV pool from what is left.

The KV pool is `fraction x (total - weights - activations - the rest)`, the rest being the CUDA context,
a CUDA-graph pool per captured batch size and, on several GPUs, communication buffers; in blocks of
`tokens_per_block`; GUARANTEED_NO_EVICT admits a request only when blocks for its whole
sequence are free, so the pool divided by one sequence's blocks is the concurrency ceiling.

Under attention data parallelism every figure here is one rank's: each rank holds attention, the dense layers and
the embedding and head whole, experts / ep, and a KV cache for its own sequences only (latent attention's KV is
not replicated across ranks as it is under TP), with its own max_batch_size and max_num_tokens. trtllm-bench
sizes those without looking at enable_attention_dp (bench/benchmark/utils/general.py get_settings), so its
heuristic's limits are each rank's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from trtbench.catalog.models import expected_experts
from trtbench.deployment import Deployment
from trtbench.records import Memory, Status
from trtbench.sim.heuristics import InsufficientMemory, heuristic_limits, weight_bytes

GIB = 2**30
# Memory TensorRT-LLM cannot give to the KV cache besides weights and the activation workspace, by part:
CONTEXT_GIB = 1.0  # the CUDA context, cuBLAS/cuDNN workspaces and sampler state
GRAPH_POOL_GIB = 60 / 1024  # per captured CUDA-graph batch size (NVIDIA/TensorRT-LLM PR #3362: ~60 MB each)
COMM_BUFFERS_GIB = 0.36  # per rank when TP x PP > 1: NCCL and custom all-reduce buffers (aiconfigurator 0.34-0.39)
ACTIVATION_BYTES = 2  # activations in 16 bits, also with FP8 weights
LOGITS_BYTES = 4  # sampled-token logits are kept in fp32


@dataclass(frozen=True)
class MemoryPlan:
    verdict: Status  # ok, oom or infeasible
    cause: str
    gpu_total_gib: float
    weights_gib: float
    activation_gib: float
    overhead_gib: float
    kv_pool_gib: float
    kv_bytes_per_token: int
    kv_tokens: int
    tokens_per_block: int
    seq_blocks: int
    max_concurrent_seqs: int
    max_batch_size: int
    max_num_tokens: int

    def memory(self) -> Memory:
        return Memory(**{k: v for k, v in asdict(self).items() if k not in ("verdict", "cause")})


def weights_bytes_per_rank(dep: Deployment, tokens: float | None = None) -> float:
    """Quantized layers at the precision's width (NVFP4: 9/16 byte, its FP8 scale per 16 weights included); the
    embedding table and lm_head stay 16-bit, as ModelOpt's FP8 and NVFP4 recipes leave them (8B FP8: 9.1 GB, the
    study's "~8.6 GB" engine), and so do a mixture of experts' routers and a multimodal model's vision encoder;
    MXFP4 experts at 17/32 byte. With `tokens`, only the experts a batch of that many tokens touches (what one
    iteration reads); else all (what is held). Under attention DP all but the experts are whole on every rank."""
    arch = dep.arch
    touched = arch.experts if tokens is None else expected_experts(tokens, arch.experts, arch.top_k)
    shared, experts = weight_bytes(arch, dep.precision, touched)
    return (shared / dep.attention_tp + experts / dep.tp) / dep.pp


def activation_bytes_per_rank(dep: Deployment, max_num_tokens: int, max_batch_size: int) -> float:
    """The runtime's workspace for one iteration of `max_num_tokens` tokens: the MLP's gate/up
    output and the attention/residual buffers, plus fp32 logits for every sampled sequence."""
    arch = dep.arch
    ffn = max(arch.active_ffn, arch.intermediate if arch.moe_layers < arch.layers else 0)
    per_token = ACTIVATION_BYTES * (2 * ffn + 4 * arch.hidden) / dep.attention_tp
    logits = max_batch_size * arch.vocab * LOGITS_BYTES
    return max_num_tokens * per_token + logits


def graph_batch_sizes(max_batch_size: int) -> list[int]:
    """The batch sizes the PyTorch path captures a CUDA graph for with padding on (trtllm-bench's setting;
    `CudaGraphConfig._generate_cuda_graph_batch_sizes`, releases 0.19-1.0): 1, 2, 4, the multiples of 8 to
    128, powers of two from 256 below max_batch_size, and max_batch_size."""
    sizes = [1, 2, 4, *range(8, 129, 8), *(2**i for i in range(8, math.ceil(math.log2(max(max_batch_size, 2)))))]
    return sorted({s for s in sizes if s <= max_batch_size} | {max_batch_size})


def captured_sizes(max_batch_size: int, max_num_tokens: int, asked: tuple[int, ...] | None = None
                   ) -> tuple[int, ...]:
    """The CUDA graphs a generation-only step can run: the sizes the run asks for (`Deployment.graph_sizes`;
    None: trtllm-bench's own) up to the smaller of max_batch_size and max_num_tokens, and that cap
    (`_filter_cuda_graph_batch_sizes`, padding on)."""
    cap = min(max_batch_size, max_num_tokens)
    sizes = graph_batch_sizes(max_batch_size) if asked is None else asked
    return tuple(sorted({s for s in sizes if s <= cap} | {cap}))


def overhead_gib(dep: Deployment, max_batch_size: int) -> float:
    """Non-KV, non-weight, non-activation memory per rank: context, CUDA-graph pools, communication buffers."""
    comm = COMM_BUFFERS_GIB if dep.n_gpus > 1 else 0.0
    graphs = captured_sizes(max_batch_size, max_batch_size, dep.graph_sizes)
    return CONTEXT_GIB + GRAPH_POOL_GIB * len(graphs) + comm


def plan_memory(dep: Deployment, isl: int, osl: int) -> MemoryPlan:
    rt = dep.runtime
    gpu_total = dep.gpu.mem_total_gib
    weights = weights_bytes_per_rank(dep) / GIB
    overhead = overhead_gib(dep, 1)  # before the batch size is known: what loading the weights needs
    kv_per_token = dep.arch.kv_bytes_per_token(dep.kv_dtype_bytes, dep.attention_tp)
    tpb = rt.tokens_per_block
    seq_blocks = math.ceil(dep.arch.kv_tokens_held(isl + osl) / tpb)

    def plan(verdict: Status, cause: str, bs: int = 0, tok: int = 0, act: float = 0.0,
             pool: float = 0.0, kv_tokens: int = 0, concurrent: int = 0) -> MemoryPlan:
        return MemoryPlan(verdict, cause, gpu_total, weights, act, overhead_gib(dep, max(bs, 1)), pool, kv_per_token,
                          kv_tokens, tpb, seq_blocks, concurrent, bs, tok)

    if weights + overhead > gpu_total:
        return plan(Status.OOM, f"weights load: {weights:.1f} GiB of weights per GPU do not fit in "
                           f"{gpu_total:.1f} GiB ({dep.gpu.name})")
    if isl + osl > dep.arch.max_position:
        return plan(Status.INFEASIBLE, f"sequence of {isl + osl} tokens exceeds the model's "
                                  f"max_position_embeddings {dep.arch.max_position}")
    try:
        limits = heuristic_limits(
            dep.arch, gpu_total_gib=gpu_total, n_gpus=dep.n_gpus, precision=dep.precision,
            kv_dtype_bytes=dep.kv_dtype_bytes, tp=dep.tp, pp=dep.pp, isl=isl, osl=osl,
            fraction=rt.kv_cache_free_gpu_mem_fraction, chunked_context=rt.chunked_context, sizing=dep.sizing,
            attention_dp=dep.attention_dp,
        )
        bs = rt.max_batch_size or limits.max_batch_size
        tok = rt.max_num_tokens or limits.max_num_tokens
    except InsufficientMemory as exc:
        if rt.max_batch_size is None or rt.max_num_tokens is None:
            return plan(Status.INFEASIBLE, f"trtllm-bench heuristic: {exc} (it is skipped when "
                                           f"runtime.max_batch_size and runtime.max_num_tokens are both given)")
        bs, tok = rt.max_batch_size, rt.max_num_tokens
    if not rt.chunked_context and isl > tok:
        return plan(Status.INFEASIBLE, f"prompt of {isl} tokens exceeds max_num_tokens {tok} with chunked "
                                  f"context off", bs, tok)

    act = activation_bytes_per_rank(dep, tok, bs) / GIB
    overhead = overhead_gib(dep, bs)
    free = gpu_total - weights - act - overhead
    if free <= 0:
        return plan(Status.OOM, f"KV cache allocation: weights {weights:.1f} GiB + activations {act:.1f} GiB "
                           f"(max_num_tokens {tok}) + runtime {overhead:.1f} GiB exceed {gpu_total:.1f} GiB",
                    bs, tok, act)
    pool = free * rt.kv_cache_free_gpu_mem_fraction
    kv_tokens = int(pool * GIB // kv_per_token) // tpb * tpb
    concurrent = kv_tokens // tpb // seq_blocks
    if concurrent < 1:
        need = seq_blocks * tpb * kv_per_token / GIB
        return plan(Status.INFEASIBLE, f"one sequence of {isl + osl} tokens needs {need:.2f} GiB of KV cache; "
                                  f"the pool holds {pool:.2f} GiB ({kv_tokens} tokens)",
                    bs, tok, act, pool, kv_tokens)
    return plan(Status.OK, "", bs, tok, act, pool, kv_tokens, concurrent)
