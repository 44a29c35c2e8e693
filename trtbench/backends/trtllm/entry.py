"""How the registry finds and makes the trtllm backend."""

from __future__ import annotations

import shutil
from pathlib import Path

from trtbench.backends.base import Backend, Registration
from trtbench.backends.trtllm import telemetry
from trtbench.backends.trtllm.backend import TrtllmBackend
from trtbench.backends.trtllm.command import unproven_settings, unsupported_settings
from trtbench.backends.trtllm.version import NEWEST_TEXT, SUPPORTED_TEXT, UNCHECKED, TrtllmVersion, detect_version
from trtbench.errors import SpecError, TrtbenchError
from trtbench.nvml import GpuInfo
from trtbench.spec import SweepSpec


def _probe(spec: SweepSpec, gpus: list[GpuInfo]) -> tuple[bool, str]:
    bench = shutil.which(spec.trtllm.executable)
    absent = [what for what, gone in ((f"{spec.trtllm.executable} on PATH", not bench),
                                      ("a GPU visible to NVML", not gpus)) if gone]
    if absent:
        return False, "not found: " + ", ".join(absent)
    return True, f"{spec.trtllm.executable} at {bench} and {len(gpus)} GPU(s) ({gpus[0].name})"


def _create(spec: SweepSpec, run_dir: Path, gpus: list[GpuInfo], dry_run: bool) -> tuple[Backend, list[str]]:
    try:
        pinned = TrtllmVersion.parse(spec.trtllm.version) if spec.trtllm.version else None
    except TrtbenchError as exc:
        raise TrtbenchError(f"trtllm.version: {exc}") from None
    bench = shutil.which(spec.trtllm.executable)
    absent = []
    if bench is None and dry_run:  # show the commands a GPU machine would run, for the pinned or newest release
        bench, pinned = spec.trtllm.executable, pinned or TrtllmVersion.parse(NEWEST_TEXT)
        which = "trtllm.version" if spec.trtllm.version else "the newest release trtbench knows"
        absent.append(f"{spec.trtllm.executable} is not installed here: commands as TensorRT-LLM {pinned.text} "
                      f"takes them ({which})")
    if bench is None:
        raise TrtbenchError(f"{spec.trtllm.executable} is not on PATH: install TensorRT-LLM (NVIDIA's container "
                            f"or pip index) and activate its environment, or run with --backend sim")
    version = pinned or detect_version(bench)
    if spec.grid.concurrency and not version.has_concurrency:
        raise SpecError(f"grid.concurrency: trtllm-bench {version.text} has no --concurrency (0.17+), so every step of "
                        f"the ladder would run the same unlimited benchmark; pin trtllm.version or use a newer release")
    backend = TrtllmBackend(spec, run_dir, bench, version, gpus[0].name if gpus else spec.gpu)
    notes = [f"TensorRT-LLM {version.text}, {backend.mode} backend", *absent]
    if version.newer_than_known:
        notes.append(f"warning: TensorRT-LLM {version.text} is newer than the newest release trtbench knows "
                     f"({SUPPORTED_TEXT.split()[-1]}); driving it as that release, with {UNCHECKED} not checked "
                     f"against {version.text}")
    notes += [f"ignored: {n}" for n in unsupported_settings(spec, version)]
    notes += [f"unproven: {n}" for n in unproven_settings(spec, version)]
    if not telemetry.available():
        notes.append("no GPU telemetry (NVML not available)")
    return backend, notes


REGISTRATION = Registration(name="trtllm", probe=_probe, create=_create)
