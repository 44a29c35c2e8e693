"""The record of one grid point: what a backend returns and the store keeps, one JSON line each.

Failures are records too: status says what happened, cause quotes the evidence.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# crash: killed by a signal or an MPI abort; no_report: exit 0 without a report (usually an OOM).
Status = Literal["ok", "oom", "timeout", "error", "infeasible", "crash", "no_report"]
Source = Literal["measured", "simulated"]


class Metrics(BaseModel):
    """Throughput is output tokens per second, as trtllm-bench's "Token Throughput" and the study use it."""

    model_config = ConfigDict(extra="allow")

    output_tok_per_s: float
    request_per_s: float
    total_tok_per_s: float
    total_latency_s: float
    avg_latency_s: float | None = None
    avg_concurrency: float | None = None


class Outcome(BaseModel):
    """What a backend says about one point."""

    status: Status
    cause: str = ""
    source: Source
    metrics: Metrics | None = None
    memory: dict[str, Any] | None = None
    detail: dict[str, Any] = {}  # backend specifics: performance model, command line, log path


class Record(Outcome):
    prediction: dict[str, Any] | None = None  # the simulator's view of a measured point, recorded beside it
    point_id: str
    isl: int
    osl: int
    requests: int
    backend: str
    started_at: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"
