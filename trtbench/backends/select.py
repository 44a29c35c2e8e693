"""Which backend a sweep uses, and why (the reason is shown to the user)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from trtbench import telemetry
from trtbench.backends.base import Backend
from trtbench.backends.sim import SimBackend
from trtbench.backends.trtllm.backend import TrtllmBackend
from trtbench.backends.trtllm.command import unsupported_settings
from trtbench.backends.trtllm.version import TrtllmVersion, detect_version
from trtbench.deployment import deployment_for
from trtbench.errors import TrtbenchError
from trtbench.nvml import GpuInfo, visible_gpus
from trtbench.spec import SweepSpec


@dataclass(frozen=True)
class Selection:
    backend: Backend
    reason: str  # shown to the user: which backend, and why
    gpus: list[GpuInfo]  # what NVML saw when the backend was chosen (for provenance)


def select_backend(spec: SweepSpec, override: str | None = None, run_dir: Path | None = None) -> Selection:
    """`run_dir` is where a measuring backend keeps logs and option files (default: the spec's)."""
    run_dir = run_dir or spec.run_dir()
    choice = override or spec.backend
    gpus = visible_gpus()
    bench = shutil.which(spec.trtllm.executable)
    if choice == "auto":
        if bench and gpus:
            choice, why = "trtllm", f"{spec.trtllm.executable} at {bench} and {len(gpus)} GPU(s) ({gpus[0].name})"
        else:
            missing = [m for m, absent in ((f"{spec.trtllm.executable} on PATH", not bench),
                                           ("a GPU visible to NVML", not gpus)) if absent]
            choice, why = "sim", "not found: " + ", ".join(missing)
        reason = f"backend auto -> {choice}: {why}"
    else:
        reason = f"backend {choice} (asked for)"
    if choice == "trtllm":
        return _trtllm(spec, run_dir, bench, gpus, reason)
    if choice != "sim":
        raise TrtbenchError(f"unknown backend {choice!r}; choose auto, trtllm or sim")
    gpu_name = gpus[0].name if spec.gpu == "auto" and gpus else None
    return Selection(SimBackend(deployment_for(spec, gpu_name)), reason, gpus)


def _trtllm(spec: SweepSpec, run_dir: Path, bench: str | None, gpus: list[GpuInfo], reason: str) -> Selection:
    if bench is None:
        raise TrtbenchError(f"{spec.trtllm.executable} is not on PATH: install TensorRT-LLM (NVIDIA's container "
                            f"or pip index) and activate its environment, or run with --backend sim")
    version = TrtllmVersion.parse(spec.trtllm.version) if spec.trtllm.version else detect_version(bench)
    gpu = gpus[0].name if gpus else spec.gpu
    backend = TrtllmBackend(spec, run_dir, bench, version, gpu)
    notes = [f"TensorRT-LLM {version.text}, {backend.inv.mode} backend"]
    notes += [f"ignored: {n}" for n in unsupported_settings(spec, version)]
    if not telemetry.available():
        notes.append("no GPU telemetry (NVML not available)")
    return Selection(backend, f"{reason}; " + "; ".join(notes), gpus)
