"""The sim backend: predicts each point from the memory model and a performance model."""

from __future__ import annotations

from typing import Any

from trtbench import __version__
from trtbench.deployment import Deployment
from trtbench.grid import Point
from trtbench.records import Metrics, Outcome, Source
from trtbench.sim import roofline
from trtbench.sim.estimate import PerformanceModel
from trtbench.sim.ifb import IfbModel
from trtbench.sim.memory import plan_memory


class SimBackend:
    name = "sim"
    source: Source = "simulated"

    def __init__(self, dep: Deployment, perf: PerformanceModel | None = None) -> None:
        self.dep = dep
        self.perf: PerformanceModel = perf or IfbModel()

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "trtbench": __version__, "perf_model": self.perf.name,
                "gpu": self.dep.gpu.id}

    def command(self, point: Point) -> list[str] | None:
        return None

    def run(self, point: Point) -> Outcome:
        plan = plan_memory(self.dep, point.isl, point.osl)
        detail = {"perf_model": self.perf.name}
        if plan.verdict != "ok":
            return Outcome(status=plan.verdict, cause=plan.cause, source=self.source,
                           memory=plan.as_dict(), detail=detail)
        est = self.perf.estimate(self.dep, plan, point.isl, point.osl, point.requests)
        limit = self.dep.runtime.timeout_s
        if est.wall_s > limit:
            cause = (f"predicted {est.wall_s:,.0f} s exceeds the per-point timeout of {limit:,.0f} s; "
                     f"the KV cache holds {plan.max_concurrent_seqs} sequences of {point.isl + point.osl} tokens")
            return Outcome(status="timeout", cause=cause, source=self.source, memory=plan.as_dict(),
                           detail={**detail, "predicted_wall_s": est.wall_s})
        bound = roofline.bound_s(self.dep, plan, point.isl, point.osl, point.requests)
        metrics = Metrics(
            output_tok_per_s=est.output_tok_per_s,
            request_per_s=est.request_per_s,
            total_tok_per_s=est.total_tok_per_s,
            total_latency_s=est.wall_s,
            avg_latency_s=est.avg_latency_s,
            avg_concurrency=est.avg_concurrency,
            ttft_ms=est.ttft_ms,
            tpot_ms=est.tpot_ms,
            roofline_output_tok_per_s=point.requests * point.osl / bound,
        )
        return Outcome(status="ok", source=self.source, metrics=metrics, memory=plan.as_dict(), detail=detail)
