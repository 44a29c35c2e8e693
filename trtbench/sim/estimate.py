"""The seam between the sim backend and whatever predicts time: a model takes a feasible point and
its memory plan and returns an `Estimate`. The roofline is the first; a scheduler simulation or a
measured-kernel model plugs in behind the same call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from trtbench.deployment import Deployment
from trtbench.sim.memory import MemoryPlan


@dataclass(frozen=True)
class Estimate:
    wall_s: float
    output_tok_per_s: float
    request_per_s: float
    total_tok_per_s: float
    avg_latency_s: float
    avg_concurrency: float
    model: str  # which performance model produced it, for the provenance of every simulated number
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    percentiles: dict[str, float] = field(default_factory=dict)  # `ttft_p95_ms`..., as trtllm-bench names them


class PerformanceModel(Protocol):
    name: str

    def estimate(self, dep: Deployment, plan: MemoryPlan, isl: int, osl: int, requests: int) -> Estimate: ...
