"""What this machine has for a measured sweep, each finding with its fix (`trtbench doctor`).

Every probe is bounded: subprocesses get argument lists and a timeout, NVML runs in a thread given a few seconds
(a wedged driver can hang nvmlInit), nothing is imported that takes long (package versions come from metadata).
A probe that cannot answer says missing, never raises."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from trtbench import __version__
from trtbench.backends.trtllm.build.quantize import INSTALL as QUANTIZE_INSTALL
from trtbench.backends.trtllm.build.quantize import installed
from trtbench.backends.trtllm.version import NEWEST_TEXT, SUPPORTED_TEXT, UNCHECKED, detect_version, python_of
from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import TrtbenchError
from trtbench.executors.gpus import resolve
from trtbench.nvml import Device
from trtbench.precision import Named

PROBE_S = 10.0  # the longest any one probe may take
DISK_WARN_GIB = 100.0  # an FP8 70B checkpoint is about 70 GB; 8B about 9 GB
INSTALL_TRTLLM = ("install TensorRT-LLM (pip install tensorrt_llm from NVIDIA's index) or run trtbench in NVIDIA's "
                  "TensorRT-LLM container (the Dockerfile)")
T = TypeVar("T")


class Level(Named):
    OK = "ok"
    WARNING = "warning"
    MISSING = "missing"


@dataclass(frozen=True)
class Finding:
    """One line: what was looked at, what was found, and the fix where it is not ok. Missing: not here; warning:
    here, with a catch. `needed`: a measured sweep cannot run here while it is missing (the rest serve some
    sweeps only: the builder, gated models, Slurm)."""

    topic: str
    level: Level
    found: str
    fix: str = ""
    needed: bool = False

    @property
    def blocks(self) -> bool:
        return self.needed and self.level is Level.MISSING

    def as_dict(self) -> dict[str, str | bool]:
        return {**asdict(self), "level": str(self.level)}


def examine(engines_dir: Path, slurm_needed: bool) -> list[Finding]:
    """Every finding, in the order a user fixes them: trtbench, TensorRT-LLM, GPUs, builder, Hugging Face, disk,
    Slurm."""
    return [*_trtbench(), *_trtllm(), *_gpus(), _builder(), *_hugging_face(), _disk(engines_dir),
            *_slurm(slurm_needed)]


def ready(findings: list[Finding]) -> bool:
    """A measured sweep can run here: nothing it needs is missing."""
    return not any(f.blocks for f in findings)


def _trtbench() -> list[Finding]:
    return [Finding("trtbench", Level.OK, f"{__version__} ({Path(__file__).parent})"),
            Finding("python", Level.OK, f"{platform.python_version()} ({sys.executable})")]


def _trtllm() -> list[Finding]:
    bench = shutil.which("trtllm-bench")
    if bench is None:
        return [Finding("trtllm-bench", Level.MISSING, "not on PATH", INSTALL_TRTLLM, needed=True),
                Finding("TensorRT-LLM", Level.MISSING, "no trtllm-bench to ask", INSTALL_TRTLLM, needed=True)]
    try:
        python = python_of(bench)
    except TrtbenchError as exc:
        python, why = "", str(exc)
    found = Finding("trtllm-bench", Level.OK, f"{bench} (run by {python})" if python else bench)
    if not python:
        return [found, Finding("TensorRT-LLM", Level.MISSING, why, "pin trtllm.version in the spec", needed=True)]
    try:
        version = detect_version(bench, timeout_s=PROBE_S)
    except TrtbenchError as exc:
        return [found, Finding("TensorRT-LLM", Level.MISSING, str(exc), INSTALL_TRTLLM, needed=True)]
    if version.newer_than_known:
        return [found, Finding("TensorRT-LLM", Level.WARNING, f"{version.text}: newer than trtbench knows "
                               f"({SUPPORTED_TEXT}); driven as {NEWEST_TEXT}, unchecked: {UNCHECKED}",
                               "upgrade trtbench, or pin a known release", needed=True)]
    return [found, Finding("TensorRT-LLM", Level.OK, f"{version.text} (trtbench knows {SUPPORTED_TEXT})")]


@dataclass(frozen=True)
class _Gpu:
    index: int
    name: str
    memory_gib: float
    uuid: str
    mig: str  # "" (no MIG), "MIG mode: N devices"


def _nvml() -> tuple[str, list[_Gpu], list[Device]] | None:
    """The driver version, each GPU and the devices CUDA_VISIBLE_DEVICES may name; None without NVML."""
    from trtbench.nvml import devices, survey

    seen = survey()
    if seen is None:
        return None
    driver, gpus = seen
    found = devices() or []
    return driver, [_with_mig(_Gpu(i, g.name, g.memory_total_mib / 2**10, g.uuid, ""), found)
                    for i, g in enumerate(gpus)], found


def _with_mig(gpu: _Gpu, found: list[Device]) -> _Gpu:
    if not any(d.index == gpu.index and d.mig_mode for d in found):
        return gpu
    migs = sum(1 for d in found if d.index == gpu.index and d.mig)
    return _Gpu(gpu.index, gpu.name, gpu.memory_gib, gpu.uuid, f"MIG mode: {migs} MIG devices")


def _gpus() -> list[Finding]:
    answered, seen = _within(PROBE_S, _nvml)
    if not answered:
        return [Finding("NVML", Level.MISSING, f"no answer in {PROBE_S:.0f} s (a hung driver?)",
                        "check the driver with nvidia-smi", needed=True)]
    if seen is None:
        return [Finding("NVML", Level.MISSING, "no NVML (no NVIDIA driver, or nvidia-ml-py not installed)",
                        "install the NVIDIA driver (and pip install nvidia-ml-py)", needed=True),
                Finding("GPUs", Level.MISSING, "none visible", "run on a machine with an NVIDIA GPU", needed=True),
                _unchecked_visible()]
    driver, gpus, found = seen
    lines = [Finding("NVML", Level.OK, f"driver {driver}, {len(gpus)} GPU{'s' * (len(gpus) != 1)}")]
    if not gpus:
        lines.append(Finding("GPUs", Level.MISSING, "NVML lists none", "check nvidia-smi", needed=True))
    for gpu in gpus:
        try:
            name, level, fix = f"catalog {resolve_gpu(gpu.name).id}", Level.OK, ""
        except TrtbenchError:
            name, level = "not in trtbench's catalog", Level.WARNING
            fix = "the simulator cannot model it; measured sweeps still run (give gpu: with a catalog id to plan)"
        mig = f", {gpu.mig}" if gpu.mig else ""
        lines.append(Finding(f"GPU {gpu.index}", level, f"{gpu.name} ({name}), {gpu.memory_gib:,.1f} GiB{mig}, "
                             f"{gpu.uuid}", fix))
    lines.append(_visible(gpus, found))
    return lines


def _unchecked_visible() -> Finding:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return Finding("CUDA_VISIBLE_DEVICES", Level.WARNING, ("unset" if visible is None else repr(visible))
                   + ": not checked without NVML", "the NVML line's fix")


def _visible(gpus: list[_Gpu], found: list[Device]) -> Finding:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        usable = sum(1 for d in found if not d.mig_mode)
        return Finding("CUDA_VISIBLE_DEVICES", Level.OK if usable else Level.MISSING,
                       f"unset: {usable} device{'s' * (usable != 1)} visible", "" if usable else
                       "no GPU outside MIG mode and no MIG device", needed=True)
    if not visible.strip():
        return Finding("CUDA_VISIBLE_DEVICES", Level.MISSING, "set but empty: hides every GPU",
                       "unset it, or name the GPUs to use", needed=True)
    try:
        named = resolve(visible.split(","), found, "CUDA_VISIBLE_DEVICES")
    except TrtbenchError as exc:
        return Finding("CUDA_VISIBLE_DEVICES", Level.MISSING, str(exc), "name GPUs nvidia-smi -L lists", needed=True)
    hidden = len(gpus) - len(named)
    return Finding("CUDA_VISIBLE_DEVICES", Level.OK, f"{visible!r}: leaves {len(named)} visible"
                   + (f", hides {hidden}" if hidden > 0 else ""))


def _builder() -> Finding:
    versions = {name: installed(dist) for name, dist in
                (("ModelOpt", "nvidia-modelopt"), ("torch", "torch"), ("transformers", "transformers"))}
    missing = [name for name, v in versions.items() if v is None]
    shown = ", ".join(f"{name} {v}" for name, v in versions.items() if v)
    if missing:
        return Finding("builder", Level.MISSING, f"no {', '.join(missing)}" + (f" ({shown})" if shown else ""),
                       f"{QUANTIZE_INSTALL}; needed only to quantize a model that has no FP8/NVFP4 checkpoint")
    return Finding("builder", Level.OK, shown)


def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "huggingface")


def _hugging_face() -> list[Finding]:
    """The token and cache as huggingface_hub finds them (HF_TOKEN, else the token file; HF_HUB_CACHE, else
    HF_HOME/hub)."""
    home = _hf_home()
    token_file = Path(os.environ.get("HF_TOKEN_PATH") or home / "token")
    if os.environ.get("HF_TOKEN"):
        token = Finding("HF token", Level.OK, "HF_TOKEN is set")
    elif token_file.is_file():
        token = Finding("HF token", Level.OK, f"{token_file}")
    else:
        token = Finding("HF token", Level.MISSING, "none (HF_TOKEN unset, no token file)",
                        "export HF_TOKEN=... or huggingface-cli login: gated models (Llama) need one")
    cache = Path(os.environ.get("HF_HUB_CACHE") or home / "hub")
    if cache.is_dir():
        models = sum(1 for p in cache.glob("models--*") if p.is_dir())
        return [token, Finding("HF cache", Level.OK, f"{cache} ({models} model{'s' * (models != 1)})")]
    return [token, Finding("HF cache", Level.MISSING, f"{cache} does not exist yet",
                           "the first run downloads the model there; set HF_HOME to put it on a large disk")]


def _disk(engines_dir: Path) -> Finding:
    where = engines_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free / 2**30
    except OSError as exc:
        return Finding("engines disk", Level.MISSING, f"{engines_dir}: {exc.strerror}", "use --engines-dir")
    found = f"{free:,.0f} GiB free for {engines_dir}"
    if free < DISK_WARN_GIB:
        return Finding("engines disk", Level.WARNING, found, f"under {DISK_WARN_GIB:.0f} GiB (a 70B FP8 checkpoint is "
                       f"~70 GB): free space, or set build.engines_dir on a larger disk")
    return Finding("engines disk", Level.OK, found)


def _slurm(needed: bool) -> list[Finding]:
    """sbatch and squeue on PATH, and the partitions sinfo lists (needed with --executor slurm)."""
    tools = {name: shutil.which(name) for name in ("sbatch", "squeue", "sinfo")}
    absent = [name for name, path in tools.items() if path is None]
    fix = "install the Slurm client and its slurm.conf (SLURM_CONF), or run with --executor local | gpus"
    level = Level.MISSING if needed or absent else Level.WARNING
    if absent:
        return [Finding("Slurm", level, f"no {', '.join(absent)} on PATH" + ("" if needed else
                        " (needed only for --executor slurm)"), fix, needed=needed)]
    try:
        done = subprocess.run([str(tools["sinfo"]), "-h", "-o", "%P %a %D"], capture_output=True, text=True,
                              timeout=PROBE_S, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding("Slurm", level, f"sinfo did not answer ({exc})", fix, needed=needed)]
    partitions = [line.split()[0] for line in done.stdout.splitlines() if line.split()]
    if done.returncode != 0 or not partitions:
        why = (done.stderr.strip().splitlines() or ["no partition listed"])[-1]
        return [Finding("Slurm", level, f"sinfo failed: {why}", fix, needed=needed)]
    return [Finding("Slurm", Level.OK, f"{tools['sbatch']}; partitions {', '.join(partitions)}")]


def _within(seconds: float, probe: Callable[[], T]) -> tuple[bool, T | None]:
    """`probe()` in a daemon thread: (True, its result), or (False, None) when it did not return in time (the
    thread is left behind; the process exits without waiting for it)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(probe()), daemon=True)
    thread.start()
    thread.join(seconds)
    return (True, result[0]) if result else (False, None)
