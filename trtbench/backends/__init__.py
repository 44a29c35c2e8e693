"""Backends turn a grid point into an Outcome. `select_backend` decides which one a sweep uses."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from trtbench.backends.base import Backend
from trtbench.backends.sim import SimBackend
from trtbench.deployment import deployment_for
from trtbench.errors import TrtbenchError
from trtbench.nvml import visible_gpus
from trtbench.spec import SweepSpec


@dataclass(frozen=True)
class Selection:
    backend: Backend
    reason: str  # shown to the user: which backend, and why


def select_backend(spec: SweepSpec, override: str | None = None) -> Selection:
    choice = override or spec.backend
    gpus = visible_gpus()
    bench = shutil.which("trtllm-bench")
    if choice == "auto":
        if bench and gpus:
            choice, why = "trtllm", f"trtllm-bench at {bench} and {len(gpus)} GPU(s) ({gpus[0].name})"
        else:
            missing = [m for m, absent in (("trtllm-bench on PATH", not bench), ("a GPU visible to NVML", not gpus))
                       if absent]
            choice, why = "sim", "not found: " + ", ".join(missing)
        reason = f"backend auto -> {choice}: {why}"
    else:
        reason = f"backend {choice} (asked for)"
    if choice == "trtllm":
        raise TrtbenchError(
            "the trtllm backend is not in this version of trtbench yet; run with --backend sim "
            "(or backend: sim in the spec) to simulate this sweep"
        )
    if choice != "sim":
        raise TrtbenchError(f"unknown backend {choice!r}; choose auto, trtllm or sim")
    gpu_name = gpus[0].name if spec.gpu == "auto" and gpus else None
    return Selection(SimBackend(deployment_for(spec, gpu_name)), reason)
