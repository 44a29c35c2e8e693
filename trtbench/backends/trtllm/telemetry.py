"""GPU telemetry during a run: a sampler thread over NVML (nvidia-ml-py).

Records peak memory used, mean and peak board power, energy, SM clock and temperature, summed (power, energy),
averaged (clock) or maxed (memory, temperature) over the point's GPUs. Energy comes from NVML's total-energy
counter (nvmlDeviceGetTotalEnergyConsumption, mJ since the driver loaded; Volta and later), else from the power
samples integrated over time. `measured()` restricts it all to trtllm-bench's measured phase, so model loading and
warm-up requests do not count against the tokens the report counts. Without NVML it records nothing;
`available()` lets the caller say so once per sweep rather than once per point.
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType
from typing import Any, NamedTuple

import numpy as np

from trtbench.nvml import init as nvml_init
from trtbench.nvml import text as nvml_text
from trtbench.records import EnergySource, Telemetry

INTERVAL_S = 0.2


def available() -> bool:
    nvml = nvml_init()
    if nvml is None:
        return False
    nvml.nvmlShutdown()
    return True


class Sample(NamedTuple):
    """One reading of every sampled GPU: wall-clock time (as file times are), and the sums or extremes."""

    t: float
    memory: float  # bytes, the most any one GPU holds
    power_w: float  # summed
    clock_mhz: float  # mean
    temperature_c: float | None  # the hottest; None where a GPU does not report it
    energy_mj: float | None  # summed counters; None without the counter


class Sampler:
    """`with Sampler() as s: ...` then `s.summary` (the whole run; None without NVML or without samples) or
    `s.measured(end, seconds)` (a phase of it). `devices`: the NVML indices to sample (the point's own GPUs
    when several points share a node), else all; an empty list samples nothing."""

    def __init__(self, devices: list[int] | None = None, interval_s: float = INTERVAL_S) -> None:
        self.devices = devices
        self.interval_s = interval_s
        self.summary: Telemetry | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[Sample] = []
        self._nvml: Any | None = None
        self._counter = False

    def __enter__(self) -> Sampler:
        if self.devices == []:
            return self
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
            with contextlib.suppress(Exception):  # NotSupported before Volta: power samples instead
                self._counter = all(nvml.nvmlDeviceGetTotalEnergyConsumption(h) >= 0 for h in self._handles)
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        nvml = self._nvml
        assert nvml is not None  # sampling starts only after NVML came up
        t = time.time()  # first, and the counters right after it: the energy is read at this time
        energy = float(sum(nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles)) \
            if self._counter else None
        mem = power = clock = 0.0
        for handle in self._handles:
            mem = max(mem, float(nvml.nvmlDeviceGetMemoryInfo(handle).used))
            power += nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # mW -> W
            clock += float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        temperature = None
        with contextlib.suppress(Exception):  # a GPU without a sensor reading
            temperature = float(max(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)
                                    for h in self._handles))
        self._samples.append(Sample(t, mem, power, clock / max(1, len(self._handles)), temperature,
                                    energy))

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

    @property
    def ended(self) -> float | None:
        """When the last sample was taken (wall clock): the run's end."""
        return self._samples[-1].t if self._samples else None

    def measured(self, end: float, seconds: float) -> Telemetry | None:
        """The telemetry of the `seconds` before `end` (wall clock): a benchmark's measured phase. Power and
        energy rates are those over the part of the phase that was sampled, and the energy is that mean power
        for the phase's `seconds` (the counter's difference over the phase, where the samples span it all)."""
        return self._summarize((end - seconds, end))

    def _summarize(self, phase: tuple[float, float] | None = None) -> Telemetry | None:
        s = self._samples
        if not s:
            return None
        t = np.array([x.t for x in s])
        start, end = max(t[0], phase[0]) if phase else t[0], min(t[-1], phase[1]) if phase else t[-1]
        if end <= start:  # the phase falls outside what was sampled: the whole run is the best estimate
            start, end = t[0], t[-1]
        inside = [x for x in s if start <= x.t <= end] or s
        counter = [x.energy_mj for x in s]
        if all(e is not None for e in counter) and end > start:
            cumulative, source = np.array(counter, dtype=float) / 1000, EnergySource.COUNTER  # mJ -> J
        else:
            power = np.array([x.power_w for x in s])
            cumulative = np.concatenate([[0.0], np.cumsum(np.diff(t) * (power[1:] + power[:-1]) / 2)])
            source = EnergySource.POWER_SAMPLES
        span = end - start
        energy = float(np.interp(end, t, cumulative) - np.interp(start, t, cumulative))
        mean_power = energy / span if span > 0 else float(np.mean([x.power_w for x in inside]))
        duration = phase[1] - phase[0] if phase else span
        temperatures = [x.temperature_c for x in inside if x.temperature_c is not None]
        return Telemetry(
            gpu_name=self._name, driver=self._driver, gpus=len(self._handles), samples=len(inside),
            peak_memory_used_gib=max(x.memory for x in inside) / 2**30,
            mean_power_w=mean_power,
            peak_power_w=max(x.power_w for x in inside),
            energy_j=mean_power * duration,
            mean_sm_clock_mhz=sum(x.clock_mhz for x in inside) / len(inside),
            power_limit_w=self._power_limit,
            peak_temperature_c=max(temperatures) if temperatures else None,
            energy_source=source,
        )
