"""What NVML can see. Without a driver (every CI machine) it sees nothing, quietly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_total_mib: float
    driver: str


def init() -> Any | None:
    """The initialised pynvml module, or None where there is no NVML (no package, library or driver);
    the caller owns the matching nvmlShutdown()."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None
    return pynvml


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def visible_gpus() -> list[GpuInfo]:
    nvml = init()
    if nvml is None:
        return []
    try:
        driver = text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuInfo(text(nvml.nvmlDeviceGetName(handle)), mem.total / 2**20, driver))
        return gpus
    except Exception:  # NVMLError: treat a half-working driver as no GPU
        return []
    finally:
        nvml.nvmlShutdown()
