"""GPU telemetry during a run: a sampler thread over NVML (nvidia-ml-py).

Records peak memory used, mean and peak board power, energy, and SM clock, summed (power, energy)
or maxed (memory) over the visible GPUs. Without NVML it records nothing; `available()` lets the
caller say so once per sweep rather than once per point.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from types import TracebackType
from typing import Any

from trtbench.nvml import init as nvml_init
from trtbench.nvml import text as nvml_text
from trtbench.records import Telemetry

INTERVAL_S = 0.2


def available() -> bool:
    nvml = nvml_init()
    if nvml is None:
        return False
    nvml.nvmlShutdown()
    return True


class Sampler:
    """`with Sampler() as s: ...` then `s.summary` (None without NVML or without samples). `devices`: the
    NVML indices to sample (the point's own GPUs when several points share a node), else all."""

    def __init__(self, devices: list[int] | None = None, interval_s: float = INTERVAL_S) -> None:
        self.devices = devices
        self.interval_s = interval_s
        self.summary: Telemetry | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[tuple[float, float, float, float]] = []  # time, mem bytes, power W, clock MHz
        self._nvml: Any | None = None

    def __enter__(self) -> Sampler:
        self._nvml = nvml_init()
        if self._nvml is not None:
            nvml = self._nvml
            indices = self.devices if self.devices is not None else range(nvml.nvmlDeviceGetCount())
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._name = nvml_text(nvml.nvmlDeviceGetName(self._handles[0])) if self._handles else "none"
            self._driver = nvml_text(nvml.nvmlSystemGetDriverVersion())
            self._power_limit: float | None = None
            with contextlib.suppress(Exception):  # not every board or driver reports it
                self._power_limit = sum(nvml.nvmlDeviceGetEnforcedPowerLimit(h) for h in self._handles) / 1000
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        nvml = self._nvml
        assert nvml is not None  # sampling starts only after NVML came up
        mem = power = clock = 0.0
        for handle in self._handles:
            mem = max(mem, float(nvml.nvmlDeviceGetMemoryInfo(handle).used))
            power += nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # mW -> W
            clock += float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        self._samples.append((time.monotonic(), mem, power, clock / max(1, len(self._handles))))

    def _loop(self) -> None:
        while True:
            try:
                self._sample()
            except Exception:  # a GPU that falls off the bus mid-run must not kill the sweep
                break
            if self._stop.wait(self.interval_s):
                break

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._nvml is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._sample()  # one closing sample, so even a short run has two to integrate
        self._nvml.nvmlShutdown()
        self.summary = self._summarize()

    def _summarize(self) -> Telemetry | None:
        s = self._samples
        if not s:
            return None
        energy = sum((t1 - t0) * (p0 + p1) / 2 for (t0, _, p0, _), (t1, _, p1, _) in itertools.pairwise(s))
        return Telemetry(
            gpu_name=self._name, driver=self._driver, gpus=len(self._handles), samples=len(s),
            peak_memory_used_gib=max(m for _, m, _, _ in s) / 2**30,
            mean_power_w=sum(p for _, _, p, _ in s) / len(s),
            peak_power_w=max(p for _, _, p, _ in s),
            energy_j=energy,
            mean_sm_clock_mhz=sum(c for _, _, _, c in s) / len(s),
            power_limit_w=self._power_limit,
        )
