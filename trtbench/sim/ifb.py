"""The simulator's performance model: the in-flight-batching scheduler driven by the analytic step model."""

from __future__ import annotations

from typing import Any

from trtbench.deployment import Deployment
from trtbench.sim import calibration
from trtbench.sim.estimate import Estimate
from trtbench.sim.memory import MemoryPlan, captured_sizes
from trtbench.sim.scheduler import SchedulerLimits, simulate
from trtbench.sim.steptime import AnalyticStep, Factors


class IfbModel:
    def __init__(self, factors: Factors | None = None, info: dict[str, Any] | None = None) -> None:
        """The committed calibration, or `factors` (and what else a calibration holds, `info`)."""
        if factors is None:
            factors, info = calibration.load()
        info = info if info is not None else {"source": "factors given"}
        self.factors, self.info = factors, info
        self.calibration = calibration.describe(info)
        self.name = f"ifb-sim v3 ({self.calibration})"

    def estimate(self, dep: Deployment, plan: MemoryPlan, isl: int, osl: int, requests: int) -> Estimate:
        rt = dep.runtime
        limits = SchedulerLimits(
            kv_blocks=plan.kv_tokens // plan.tokens_per_block, tokens_per_block=plan.tokens_per_block,
            max_batch_size=plan.max_batch_size, max_num_tokens=plan.max_num_tokens,
            chunked_context=rt.chunked_context, concurrency=rt.concurrency, seq_blocks=plan.seq_blocks,
            ranks=dep.dp_ranks, graph_sizes=captured_sizes(plan.max_batch_size, plan.max_num_tokens, dep.graph_sizes),
        )
        speed = calibration.release_factor(dep.release, self.info)[0]
        res = simulate(isl, osl, requests, limits, AnalyticStep(dep, self.factors, speed))
        return Estimate(
            wall_s=res.wall_s,
            output_tok_per_s=requests * osl / res.wall_s,
            request_per_s=requests / res.wall_s,
            total_tok_per_s=requests * (isl + osl) / res.wall_s,
            avg_latency_s=res.avg_latency_s,
            avg_concurrency=res.avg_concurrency,
            ttft_ms=res.avg_ttft_s * 1000,
            tpot_ms=res.avg_tpot_s * 1000,
            model=self.name,
            percentiles=res.percentiles,
        )
