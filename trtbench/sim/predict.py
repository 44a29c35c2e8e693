"""One point through the simulator: the memory plan decides feasibility, the performance model the time."""

from __future__ import annotations

from trtbench.deployment import Deployment
from trtbench.records import Metrics, Outcome, Source, Status
from trtbench.sim import roofline
from trtbench.sim.estimate import PerformanceModel
from trtbench.sim.memory import plan_memory


def predict_point(dep: Deployment, perf: PerformanceModel, isl: int, osl: int, requests: int) -> Outcome:
    plan = plan_memory(dep, isl, osl)
    source = Source.SIMULATED
    if plan.verdict is not Status.OK:
        return Outcome(status=plan.verdict, cause=plan.cause, source=source, memory=plan.memory(),
                       perf_model=perf.name)
    est = perf.estimate(dep, plan, isl, osl, requests)
    bound = roofline.bound_s(dep, plan, isl, osl, requests)
    metrics = Metrics(
        output_tok_per_s=est.output_tok_per_s,
        request_per_s=est.request_per_s,
        total_tok_per_s=est.total_tok_per_s,
        total_latency_s=est.wall_s,
        avg_latency_s=est.avg_latency_s,
        avg_concurrency=est.avg_concurrency,
        ttft_ms=est.ttft_ms,
        tpot_ms=est.tpot_ms,
        roofline_output_tok_per_s=requests * osl / bound,
        percentiles=est.percentiles,
    )
    return Outcome(status=Status.OK, source=source, metrics=metrics, memory=plan.memory(), perf_model=perf.name,
                   predicted_wall_s=est.wall_s)
