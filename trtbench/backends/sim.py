"""The sim backend: predicts each point from the memory model and a performance model."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from trtbench.backends.base import DEPLOYMENT_FIELDS, Backend, Capabilities, Log, Registration
from trtbench.deployment import PointDeployments
from trtbench.grid import IdentityRule, Point
from trtbench.nvml import GpuInfo
from trtbench.records import Outcome, Source
from trtbench.sim.calibration import coverage
from trtbench.sim.estimate import PerformanceModel
from trtbench.sim.ifb import IfbModel
from trtbench.sim.predict import predict_point
from trtbench.spec import SweepSpec
from trtbench.verdict import judge


class SimBackend:
    """Ignores `build:` and all of `trtllm:` but its `version` (a release's speed factor): nothing else there
    changes a prediction. The per-point timeout is not part of a point's identity either: the point is judged
    against it when recorded (`verdict.judge`), and judged again without a new prediction when it changes."""

    name = "sim"

    def __init__(self, spec: SweepSpec, gpu_name: str | None = None, perf: PerformanceModel | None = None) -> None:
        self.perf: PerformanceModel = perf or IfbModel()
        self.deployments = PointDeployments(spec, gpu_name)
        self.gpu = self.deployments.base.gpu

    def identity(self) -> IdentityRule:
        return IdentityRule((*DEPLOYMENT_FIELDS, "trtllm.version"),
                            {"backend": self.name, "perf_model": self.perf.name, "gpu": self.gpu.id})

    def capabilities(self) -> Capabilities:
        return Capabilities(source=Source.SIMULATED, runs_commands=False)

    def prepare(self, points: Sequence[Point], log: Log, *, dry_run: bool = False, allow_build: bool = True,
                recorded: Collection[str] = ()) -> list[str]:
        for point in points:  # a bad axis value (TP that does not divide the heads) fails before any run
            self.deployments(point.extra)
        return []

    def cancel(self) -> None:
        """A prediction takes milliseconds: nothing to stop."""

    def provenance(self) -> dict[str, Any]:
        """The model, and how far the sweep's deployments are from what it was calibrated on: the error to allow
        for is the worst deployment's cross-validated one, a floor (`lower_bound`) when any is outside. The fit's
        own MAPE is kept as `fit_mape_pct`, named so that nobody reads it as an expectation."""
        info = getattr(self.perf, "info", None)
        if info is None:
            return {"perf_model": self.perf.name, "gpu": self.gpu.id}
        covered = [coverage(dep, info) for dep in self.deployments.resolved()]
        outside = sorted({reason for c in covered for reason in c.outside})
        worst = max(covered, key=lambda c: c.error_pct)
        return {"perf_model": self.perf.name, "gpu": self.gpu.id,
                "calibration": {"fitted_on": info.get("fitted_on"), "fit_mape_pct": info.get("mape_pct"),
                                "outside": outside, "error_pct": worst.error_pct, "lower_bound": bool(outside),
                                "basis": worst.basis}}

    def command(self, point: Point) -> list[str] | None:
        return None

    def run(self, point: Point, attempt: str, env: Mapping[str, str] | None = None) -> Outcome:
        dep = self.deployments(point.extra)
        outcome = predict_point(dep, self.perf, point.isl, point.osl, point.requests)
        if outcome.predicted_wall_s is None:
            return outcome
        error = coverage(dep, getattr(self.perf, "info", None)).error_pct
        timeout_s = self.deployments.spec.at(point.extra).runtime.timeout_s
        return judge(outcome.model_copy(update={"wall_error_pct": error}), timeout_s)



def _create(spec: SweepSpec, run_dir: Path, gpus: list[GpuInfo], dry_run: bool) -> tuple[Backend, list[str]]:
    """`gpu: auto` simulates the GPU that is present."""
    return SimBackend(spec, gpus[0].name if spec.gpu == "auto" and gpus else None), []


def _probe(spec: SweepSpec, gpus: list[GpuInfo]) -> tuple[bool, str]:
    return True, "runs anywhere"


REGISTRATION = Registration(name="sim", probe=_probe, create=_create)
