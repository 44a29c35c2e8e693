"""Backends by name: which one a sweep uses and why, and the predictor recorded beside a measurement.

A new backend is one module with a `Registration` and one line in `REGISTRY`; nothing above this
package names a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trtbench.backends import sim
from trtbench.backends.base import Backend, Registration
from trtbench.backends.trtllm import entry as trtllm
from trtbench.errors import TrtbenchError
from trtbench.nvml import GpuInfo, visible_gpus
from trtbench.spec import SweepSpec

# Preference order for `backend: auto`: the first that can run here wins.
REGISTRY: dict[str, Registration] = {r.name: r for r in (trtllm.REGISTRATION, sim.REGISTRATION)}
PREDICTOR = sim.REGISTRATION  # what predicts every point beside a measurement


@dataclass(frozen=True)
class Selection:
    backend: Backend
    reason: str  # shown to the user: which backend, and why
    gpus: list[GpuInfo]  # what NVML saw when the backend was chosen (for provenance)
    companion: Backend | None = None  # the predictor, for a measuring backend
    notes: list[str] = field(default_factory=list)


def select_backend(spec: SweepSpec, override: str | None = None, run_dir: Path | None = None,
                   dry_run: bool = False) -> Selection:
    """`run_dir` is where a measuring backend keeps logs and option files (default: the spec's); `dry_run`:
    only its commands are wanted (a machine without the backend's tools can show them)."""
    run_dir = run_dir or spec.run_dir()
    choice = override or spec.backend
    gpus = visible_gpus()
    if choice == "auto":
        whys = []
        for name, reg in REGISTRY.items():
            usable, why = reg.probe(spec, gpus)
            whys.append(why)
            if usable:
                choice = name
                break
        # The one that won says what it found; after a skipped one, what the skipped one missed.
        reason = f"backend auto -> {choice}: " + (whys[-2] if len(whys) > 1 else whys[-1])
    else:
        reason = f"backend {choice} (asked for)"
    registration = REGISTRY.get(choice)
    if registration is None:
        raise TrtbenchError(f"unknown backend {choice!r}; choose auto, {', '.join(REGISTRY)}")
    backend, notes = registration.create(spec, run_dir, gpus, dry_run)
    return Selection(backend, reason + "".join(f"; {n}" for n in notes), gpus, companion_for(spec, backend, gpus),
                     notes)


def companion_for(spec: SweepSpec, backend: Backend, gpus: list[GpuInfo]) -> Backend | None:
    """For a measuring backend, the predictor whose view is recorded beside each measurement (None where
    the GPU or model is unknown to it). A spec that names no TensorRT-LLM version is predicted for the one that
    runs (its limits, graph sizes and speed factor), not for the newest."""
    if backend.capabilities().source.value != "measured":
        return None
    spec = spec.on_version(backend.provenance().get("trtllm_version"))
    try:
        return PREDICTOR.create(spec, spec.run_dir(), gpus, False)[0]
    except TrtbenchError:
        return None
