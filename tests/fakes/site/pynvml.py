"""Stands in for nvidia-ml-py in tests that run trtbench as a subprocess: one GPU when FAKE_NVML_GPU
names it, else NVML is absent, as on a machine without a driver."""

import os

NVML_CLOCK_SM = 1


class NVMLError(Exception):
    pass


def nvmlInit():
    if not os.environ.get("FAKE_NVML_GPU"):
        raise NVMLError("NVML Shared Library Not Found")


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "560.35.03"


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(index):
    return index


def nvmlDeviceGetName(handle):
    return os.environ["FAKE_NVML_GPU"]


class _Memory:
    total = 81559 * 2**20
    used = 2 * 2**30


def nvmlDeviceGetMemoryInfo(handle):
    return _Memory()


def nvmlDeviceGetPowerUsage(handle):
    return 300_000


def nvmlDeviceGetClockInfo(handle, clock):
    return 1980
