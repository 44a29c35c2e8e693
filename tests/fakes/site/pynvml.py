"""Stands in for nvidia-ml-py in tests: NVML is there when FAKE_NVML_GPU names the GPUs' model, else absent,
as on a machine without a driver. FAKE_NVML_DEVICES (JSON) lists the GPUs by UUID, one GPU unless it is
set: a string is a GPU; {"uuid": ..., "mig": [[uuid, gpu instance, compute instance], ...]} a GPU in MIG
mode with its MIG devices (a uuid MIG-GPU-<uuid>/<gi>/<ci> is what older drivers report).

Power: GPU i draws a constant 300 + 100 x i W (GPU 0 300 W, GPU 1 400 W, ...), and its total-energy counter is
that power times the wall-clock time, in mJ, so the energy of any interval is worked out by hand; with
FAKE_NVML_NO_ENERGY_COUNTER set the counter is NotSupported (a GPU before Volta). Temperature: 60 + i degrees C."""

import json
import os
import time

NVML_CLOCK_SM = 1
NVML_TEMPERATURE_GPU = 0
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1


class NVMLError(Exception):
    pass


def _gpus():
    listed = json.loads(os.environ.get("FAKE_NVML_DEVICES", '["GPU-00000000-0000-0000-0000-000000000000"]'))
    return [gpu if isinstance(gpu, dict) else {"uuid": gpu} for gpu in listed]


def nvmlInit():
    if not os.environ.get("FAKE_NVML_GPU"):
        raise NVMLError("NVML Shared Library Not Found")


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "560.35.03"


def nvmlDeviceGetCount():
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < len(_gpus()):
        raise NVMLError("Invalid Argument")
    return index


def nvmlDeviceGetName(handle):
    return os.environ["FAKE_NVML_GPU"]


def nvmlDeviceGetUUID(handle):
    if isinstance(handle, tuple):  # a MIG device: (GPU index, slot)
        return _gpus()[handle[0]]["mig"][handle[1]][0]
    return _gpus()[handle]["uuid"]


def nvmlDeviceGetMigMode(handle):
    if "mig" not in _gpus()[handle]:
        raise NVMLError("Not Supported")
    return NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE


def nvmlDeviceGetMaxMigDeviceCount(handle):
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(handle, slot):
    if slot >= len(_gpus()[handle]["mig"]):
        raise NVMLError("Not Found")
    return handle, slot


def nvmlDeviceGetGpuInstanceId(handle):
    return _gpus()[handle[0]]["mig"][handle[1]][1]


def nvmlDeviceGetComputeInstanceId(handle):
    return _gpus()[handle[0]]["mig"][handle[1]][2]


class _Memory:
    total = 81559 * 2**20
    used = 2 * 2**30


def nvmlDeviceGetMemoryInfo(handle):
    return _Memory()


def _watts(handle):
    return 300 + 100 * handle


def nvmlDeviceGetPowerUsage(handle):
    return _watts(handle) * 1000  # mW


def nvmlDeviceGetTotalEnergyConsumption(handle):
    if os.environ.get("FAKE_NVML_NO_ENERGY_COUNTER"):
        raise NVMLError("Not Supported")
    return int(_watts(handle) * 1000 * time.time())  # mJ


def nvmlDeviceGetTemperature(handle, sensor):
    return 60 + handle


def nvmlDeviceGetClockInfo(handle, clock):
    return 1980
