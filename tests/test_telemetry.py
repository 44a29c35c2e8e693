"""GPU telemetry from a mocked NVML, alone and through a trtllm sweep."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest

from tests.conftest import TRTLLM_SPEC
from trtbench.backends.trtllm.telemetry import Sampler, available


class FakeNvml(types.ModuleType):
    """Two GPUs; memory grows and power is constant, so the summary is computable by hand."""

    NVML_CLOCK_SM = 1

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.calls = 0
        self.inits = self.shutdowns = 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "560.35.03"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> types.SimpleNamespace:
        self.calls += 1
        return types.SimpleNamespace(used=(10 + handle + min(self.calls, 40)) * 2**30, total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 350_000  # mW

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return 1980


@pytest.fixture
def nvml(monkeypatch) -> FakeNvml:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def test_sampler_summary(nvml):
    with Sampler(interval_s=0.01) as sampler:
        time.sleep(0.2)
    s = sampler.summary
    assert s is not None and s.gpus == 2 and s.gpu_name == "NVIDIA H100 80GB HBM3" and s.driver == "560.35.03"
    assert s.samples >= 5
    assert s.mean_power_w == pytest.approx(700.0) and s.peak_power_w == pytest.approx(700.0)
    assert s.energy_j == pytest.approx(700.0 * 0.2, rel=0.25)  # 700 W for ~0.2 s
    assert s.mean_sm_clock_mhz == 1980
    assert s.peak_memory_used_gib >= 11 + 5
    assert nvml.inits == nvml.shutdowns


def test_without_nvml_nothing_is_recorded(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with Sampler() as sampler:
        pass
    assert sampler.summary is None and not available()


def test_telemetry_is_stored_with_each_point(cli, write_spec, tmp_path, fake_bench, nvml):
    fake_bench.version("1.1.0")
    spec = TRTLLM_SPEC.replace("gpu: h100-sxm", "gpu: auto")
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 0, result.err
    assert "no GPU telemetry" not in result.err
    for line in (tmp_path / "runs" / "tiny" / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        tel = rec["telemetry"]
        assert tel["mean_power_w"] == pytest.approx(700.0) and tel["gpus"] == 2
        output_tokens = rec["metrics"]["output_tok_per_s"] * rec["metrics"]["total_latency_s"]
        assert rec["metrics"]["j_per_output_token"] == pytest.approx(tel["energy_j"] / output_tokens)
    provenance = json.loads((tmp_path / "runs" / "tiny" / "run.json").read_text())["provenance"]
    assert provenance["driver"] == "560.35.03" and provenance["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    import pandas as pd

    peaks = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")["peak_memory_gib"]
    recorded = [json.loads(line)["telemetry"]["peak_memory_used_gib"]
                for line in (tmp_path / "runs" / "tiny" / "results.jsonl").read_text().splitlines()]
    assert sorted(peaks) == pytest.approx(sorted(recorded)) and (peaks > 0).all()  # the results column per point


def test_no_nvml_is_said_once(cli, write_spec, fake_bench):
    fake_bench.version("1.1.0")
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 0 and result.err.replace("\n", " ").count("no GPU telemetry (NVML not available)") == 1


def test_a_measured_ladder_plots_memory_against_concurrency(cli, write_spec, tmp_path, fake_bench, nvml):
    fake_bench.version("1.1.0")
    spec = TRTLLM_SPEC.replace("gpu: h100-sxm", "gpu: auto").replace("grid:\n", "grid:\n  concurrency: [1, 4]\n")
    assert cli("sweep", str(write_spec(spec))).code == 0
    run = tmp_path / "runs" / "tiny"
    assert (run / "memory_vs_concurrency.png").exists() and (run / "load_curves.png").exists()
    assert "](memory_vs_concurrency.png)" in (run / "report.md").read_text()


def test_a_simulated_ladder_draws_no_memory_plot(cli, write_spec, tmp_path):
    from tests.conftest import SMALL_SPEC

    assert cli("sweep", str(write_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: [1, 4]\n")))).code == 0
    assert not (tmp_path / "runs" / "tiny" / "memory_vs_concurrency.png").exists()  # no telemetry: nothing invented
    assert (tmp_path / "runs" / "tiny" / "load_curves.png").exists()
