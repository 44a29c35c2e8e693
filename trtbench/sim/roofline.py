"""The roofline bound of a point: the fastest any schedule could run it on this GPU.

All FLOPs at tensor peak (GEMMs at the weight precision, attention and lm_head at 16 bits), and
at full HBM bandwidth the weights once per decode step at the largest concurrency the KV pool and
max_batch_size allow, plus every KV byte once. The simulator can only be slower (its per-operator
costs are each at least these), so measured or simulated throughput divided by this bound is an
efficiency in (0, 1].
"""

from __future__ import annotations

import math

from trtbench.catalog.models import keys_attended
from trtbench.deployment import Deployment
from trtbench.sim.memory import MemoryPlan, weights_bytes_per_rank


def bound_s(dep: Deployment, plan: MemoryPlan, isl: int, osl: int, requests: int) -> float:
    arch, n = dep.arch, dep.n_gpus
    # Per kind of attention layer, its layers x the keys one request reads: its context's causal pairs, then
    # the KV length at each decode step; a sliding or chunked layer at most its span per query.
    decode_kv = sum(layers * keys_attended(isl + 1, isl + osl - 1, span) for layers, span in arch.attention_groups)
    context_pairs = sum(layers * keys_attended(1, isl, span) for layers, span in arch.attention_groups)
    gemm = 2 * arch.active_params * (isl + osl) / dep.gpu.peak_flops(dep.precision)
    head = 2 * arch.vocab * arch.hidden * osl / dep.gpu.peak_flops("bf16")
    attn = 4 * arch.heads * arch.head_dim * (context_pairs + decode_kv) / dep.gpu.peak_flops("bf16")
    compute_s = requests * (gemm + head + attn) / n
    # Under attention DP each rank decodes its own share of the requests at its own concurrency (the plan's limits
    # are per rank), reading only their KV; its experts see every rank's tokens.
    ranks = dep.dp_ranks
    per_rank = math.ceil(requests / ranks)
    concurrency = max(1, min(plan.max_concurrent_seqs, plan.max_batch_size, per_rank))
    steps = math.ceil(per_rank * (osl - 1) / concurrency) + 1
    kv_bytes = per_rank * (decode_kv / arch.layers + isl + osl) * plan.kv_bytes_per_token  # reads, then writes
    memory_s = (steps * weights_bytes_per_rank(dep, concurrency * ranks) + kv_bytes) / (dep.gpu.hbm_tb_s * 1e12)
    return max(compute_s, memory_s)
