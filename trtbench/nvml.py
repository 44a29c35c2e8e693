"""What NVML can see. Without a driver (every CI machine) it sees nothing, quietly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_total_mib: float
    driver: str
    uuid: str = ""


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
    found = survey()
    return found[1] if found else []


def survey() -> tuple[str, list[GpuInfo]] | None:
    """The driver version and every GPU NVML lists; None without NVML (or with a half-working driver)."""
    nvml = init()
    if nvml is None:
        return None
    try:
        driver = text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append(GpuInfo(text(nvml.nvmlDeviceGetName(handle)), nvml.nvmlDeviceGetMemoryInfo(handle).total
                                / 2**20, driver, text(nvml.nvmlDeviceGetUUID(handle))))
        return driver, gpus
    except Exception:  # NVMLError
        return None
    finally:
        nvml.nvmlShutdown()


@dataclass(frozen=True)
class Device:
    """A device CUDA_VISIBLE_DEVICES can name, as NVML sees it: a GPU (by `index` or `uuid`, GPU-...), or a
    MIG device of a GPU in MIG mode (by `uuid` as the driver names it, or by the older `legacy` form, which
    CUDA also takes)."""

    index: int  # NVML's index of the GPU (of its GPU, for a MIG device)
    uuid: str
    mig: bool = False  # a MIG device
    mig_mode: bool = False  # a GPU split into MIG devices: CUDA runs on those, not on the GPU itself
    legacy: str = ""  # a MIG device's MIG-GPU-<uuid>/<gpu instance>/<compute instance>


def devices() -> list[Device] | None:
    """Each GPU NVML sees, in NVML's order, each followed by its MIG devices if it is in MIG mode. None
    without NVML, or where it fails to answer (an entry then cannot be checked, as without NVML)."""
    nvml = init()
    if nvml is None:
        return None
    try:
        found = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            uuid = text(nvml.nvmlDeviceGetUUID(handle))
            migs = _mig_devices(nvml, handle, i, uuid)
            found += [Device(i, uuid, mig_mode=migs is not None), *(migs or [])]
        return found
    except Exception:  # NVMLError
        return None
    finally:
        nvml.nvmlShutdown()


def _mig_devices(nvml: Any, handle: Any, index: int, uuid: str) -> list[Device] | None:
    """The MIG devices of a GPU in MIG mode; None for a GPU that is not (or cannot be)."""
    try:
        current, _ = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:  # NotSupported: a GPU without MIG
        return None
    if current != nvml.NVML_DEVICE_MIG_ENABLE:
        return None
    found = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except nvml.NVMLError:  # NotFound: a slot without a MIG device
            continue
        gi, ci = nvml.nvmlDeviceGetGpuInstanceId(mig), nvml.nvmlDeviceGetComputeInstanceId(mig)
        found.append(Device(index, text(nvml.nvmlDeviceGetUUID(mig)), mig=True, legacy=f"MIG-{uuid}/{gi}/{ci}"))
    return found


def gpu_index(entry: str, found: list[Device]) -> int | None:
    """NVML's index of the whole GPU a CUDA_VISIBLE_DEVICES `entry` names (an index, a GPU UUID or a unique prefix
    of one); None for a MIG device or an entry that names no GPU, or several (the executor refuses those)."""
    if entry.isdigit():
        return int(entry)
    named = [d.index for d in found if not d.mig and entry.startswith("GPU-") and d.uuid.startswith(entry)]
    return named[0] if len(named) == 1 else None
