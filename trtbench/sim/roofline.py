"""First performance model: a roofline for prefill and for steady-state decode at the concurrency the
KV pool allows.

Each iteration costs max(bytes / (eta_mem x HBM bandwidth), FLOPs / (eta_compute x tensor peak))
plus a fixed launch/scheduling overhead. Prefill and decode are timed apart and added, which
ignores in-flight batching's overlap of the two and the tail of the last wave; the scheduler
simulation replaces this. TP communication is not modelled here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trtbench.deployment import Deployment
from trtbench.sim.estimate import Estimate
from trtbench.sim.memory import MemoryPlan, weights_bytes_per_rank

# Achievable fractions of peak, from the literature the hardware reference cites, not fitted:
# decode HBM efficiency 0.8 (aiconfigurator) and prefill GEMMs at 0.55-0.75 of peak.
ETA_MEM = 0.8
ETA_COMPUTE = 0.65
T_FIXED_S = 0.5e-3  # per iteration with CUDA graphs: launches, sampling, scheduling


@dataclass(frozen=True)
class Roofline:
    eta_mem: float = ETA_MEM
    eta_compute: float = ETA_COMPUTE
    t_fixed_s: float = T_FIXED_S
    name: str = "roofline-v1"

    def _iteration_s(self, dep: Deployment, flops: float, nbytes: float) -> float:
        peak = dep.gpu.peak_flops(dep.precision) * self.eta_compute
        bandwidth = dep.gpu.hbm_tb_s * 1e12 * self.eta_mem
        return max(flops / peak, nbytes / bandwidth) + self.t_fixed_s

    def estimate(self, dep: Deployment, plan: MemoryPlan, isl: int, osl: int, requests: int) -> Estimate:
        arch, n = dep.arch, dep.n_gpus
        weights = weights_bytes_per_rank(dep)
        linear_flops_per_token = 2 * arch.transformer_params / n
        head_flops = 2 * arch.vocab * arch.hidden / n  # logits for the sampled token (tied or not)
        attn_flops_per_pair = 4 * arch.layers * arch.heads * arch.head_dim / n
        kv_bytes = plan.kv_bytes_per_token

        # Prefill: every prompt once, in iterations of up to max_num_tokens tokens.
        prefill_tokens = requests * isl
        prefill_iters = math.ceil(prefill_tokens / plan.max_num_tokens)
        prefill_flops = (prefill_tokens * linear_flops_per_token + requests * head_flops
                         + requests * attn_flops_per_pair * isl * (isl + 1) / 2)
        prefill_s = (self._iteration_s(dep, prefill_flops / prefill_iters,
                                       weights + prefill_tokens / prefill_iters * kv_bytes) * prefill_iters)

        # Decode: `batch` sequences in flight, each step reads the weights and every live KV token.
        batch = max(1, min(plan.max_concurrent_seqs, plan.max_batch_size, requests,
                           dep.runtime.concurrency or requests))
        mean_kv = isl + osl / 2
        step_flops = batch * (linear_flops_per_token + head_flops + attn_flops_per_pair * mean_kv)
        step_bytes = weights + batch * (mean_kv + 1) * kv_bytes
        decode_steps = requests * (osl - 1) / batch  # the first output token comes from prefill
        decode_s = decode_steps * self._iteration_s(dep, step_flops, step_bytes)

        wall = prefill_s + decode_s
        return Estimate(
            wall_s=wall,
            output_tok_per_s=requests * osl / wall,
            request_per_s=requests / wall,
            total_tok_per_s=requests * (isl + osl) / wall,
            avg_latency_s=wall * batch / requests,
            avg_concurrency=batch,
            model=self.name,
        )
