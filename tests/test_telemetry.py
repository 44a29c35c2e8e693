"""GPU telemetry from a mocked NVML, alone and through a trtllm sweep."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest

from tests.conftest import TRTLLM_SPEC, load_fake_nvml
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

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # as every NVML answers
        return f"GPU-{handle:08x}-0000-0000-0000-000000000000"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "560.35.03"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> types.SimpleNamespace:
        self.calls += 1
        return types.SimpleNamespace(used=(10 + handle + min(self.calls, 40)) * 2**30, total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 350_000  # mW

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return 1980

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return int(350_000 * time.time())  # mJ: what 350 W for ever adds up to

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 70 + 5 * handle  # the hotter GPU: 75 C

    NVML_TEMPERATURE_GPU = 0


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
    # by the counter, read a moment after each sample's time: within 1% (a loaded machine delays the read)
    assert s.mean_power_w == pytest.approx(700.0, rel=0.01) and s.peak_power_w == pytest.approx(700.0)
    assert s.energy_source == "counter" and s.peak_temperature_c == 75
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
        assert tel["mean_power_w"] == pytest.approx(700.0, rel=0.01) and tel["gpus"] == 2  # whole mJ, read late
        output_tokens = rec["metrics"]["output_tok_per_s"] * rec["metrics"]["total_latency_s"]
        assert rec["metrics"]["j_per_output_token"] == pytest.approx(tel["energy_j"] / output_tokens)
        # 2 GPUs x 350 W by the counter over the measured phase: 700 J/s over the report's total latency
        assert tel["energy_source"] == "counter" and tel["peak_temperature_c"] == 75
        assert tel["energy_j"] == pytest.approx(700.0 * rec["metrics"]["total_latency_s"], rel=0.01)
        assert rec["metrics"]["j_per_output_token"] == pytest.approx(700.0 / rec["metrics"]["output_tok_per_s"],
                                                                     rel=0.01)
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


A = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"  # NVML's GPU 0: the stand-in's 300 W
B = "GPU-c0ffee00-1111-2222-3333-444444444444"  # GPU 1: 400 W


@pytest.fixture
def site_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/fakes/site/pynvml.py in this process too (the benchmark's sees it through PYTHONPATH): GPUs A and B,
    each point given one of them by UUID."""
    load_fake_nvml(monkeypatch)
    monkeypatch.setenv("FAKE_NVML_DEVICES", json.dumps([A, B]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{B},{A}")


@pytest.mark.slow
@pytest.mark.parametrize("counter", [True, False], ids=["energy-counter", "power-samples"])
def test_a_measured_sweep_records_joules_per_token_of_each_point_s_own_gpu(cli, write_spec, tmp_path, fake_bench,
                                                                          site_nvml, monkeypatch, counter):
    """Each point on one GPU named by UUID (the executor's CUDA_VISIBLE_DEVICES): its energy is that GPU's alone,
    over the measured phase. The stand-in's GPU draws a constant 300 W (A) or 400 W (B), so a point's joules per
    output token are 300 / (output tok/s) or 400 / (output tok/s), by the counter or by the power samples."""
    if not counter:
        monkeypatch.setenv("FAKE_NVML_NO_ENERGY_COUNTER", "1")
    fake_bench.version("1.1.0")
    spec = TRTLLM_SPEC.replace("gpu: h100-sxm", "gpu: auto") + "executor: {kind: gpus}\n"
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 0, result.err
    watts = {A: 300.0, B: 400.0}
    ran = {(p["isl"], p["osl"]): (watts[p["gpus"]], p["output_tok_per_s"]) for p in fake_bench.printed()}
    records = [json.loads(line) for line in (tmp_path / "runs" / "tiny" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    for rec in records:
        power, tok_s = ran[(rec["axes"]["isl"], rec["axes"]["osl"])]
        assert rec["metrics"]["output_tok_per_s"] == pytest.approx(tok_s)
        tel = rec["telemetry"]
        assert tel["gpus"] == 1 and tel["energy_source"] == ("counter" if counter else "power_samples")
        assert tel["mean_power_w"] == pytest.approx(power, rel=0.01)  # the counter is read a moment after its time
        assert tel["peak_temperature_c"] == (60 if power == 300 else 61)
        assert rec["metrics"]["j_per_output_token"] == pytest.approx(power / tok_s, rel=0.01)
    import pandas as pd

    csv = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert csv["joules_per_token"].notna().all()
    assert (csv["tok_per_joule"] * csv["joules_per_token"]).to_list() == pytest.approx([1.0] * 4)


def test_a_hand_worked_measured_phase_excludes_loading_and_warm_up(monkeypatch):
    """Samples at t = 100, 101, ..., 110 s of a counter that rises 200 W until t = 104 (loading, warm-up) and
    500 W after: the measured phase is the 5 s up to t = 110 (the report's total latency, ending when it was
    written), 105-110 s at 500 W = 2,500 J; the whole run's 11 samples would give 4 x 200 + 6 x 500 = 3,800 J
    over 10 s."""
    from trtbench.backends.trtllm.telemetry import Sample

    sampler = Sampler()
    sampler._name, sampler._driver, sampler._handles, sampler._power_limit = "H100", "560", [0, 1], None
    joules = [200.0 * min(i, 4) + 500.0 * max(0, i - 4) for i in range(11)]
    sampler._samples = [Sample(100.0 + i, 2**30, 200.0 if i <= 4 else 500.0, 1980.0, 60.0, 1000 * j)
                        for i, j in enumerate(joules)]
    phase = sampler.measured(110.0, 5.0)
    assert phase is not None and phase.energy_source == "counter"
    assert phase.energy_j == pytest.approx(2500.0) and phase.mean_power_w == pytest.approx(500.0)
    whole = sampler._summarize()
    assert whole is not None and whole.energy_j == pytest.approx(3800.0)
    # 6.5 s back from 110: 103.5-104 s at 200 W and 104-110 s at 500 W = 100 + 3,000 J
    assert sampler.measured(110.0, 6.5).energy_j == pytest.approx(3100.0)
    # The same run with no counter: the power samples' trapezoids, the 104-105 s one at (200 + 500) / 2 = 350 W:
    # 105-110 s 2,500 J as before; 103.5-110 s 0.5 x 200 + 350 + 2,500 = 2,950 J.
    sampler._samples = [s._replace(energy_mj=None) for s in sampler._samples]
    phase = sampler.measured(110.0, 5.0)
    assert phase is not None and phase.energy_source == "power_samples" and phase.energy_j == pytest.approx(2500.0)
    assert sampler.measured(110.0, 6.5).energy_j == pytest.approx(2950.0)


def test_the_gpus_a_point_samples_are_those_its_cuda_visible_devices_names(site_nvml, monkeypatch):
    """By index, by UUID or a unique prefix of one (NVML's index: B is GPU 1); a MIG device samples nothing (its
    board power is its GPU's, shared with the other MIG devices); unset: every GPU."""
    from trtbench.backends.trtllm.backend import _devices

    assert _devices({"CUDA_VISIBLE_DEVICES": "1,0"}) == [1, 0]
    assert _devices({"CUDA_VISIBLE_DEVICES": f"{B},{A}"}) == [1, 0]
    assert _devices({"CUDA_VISIBLE_DEVICES": "GPU-c0ffee"}) == [1]
    assert _devices({"CUDA_VISIBLE_DEVICES": "MIG-d9a47cfb-d1f2-d08c-b40e-0812b597ae69"}) == []
    assert _devices(None) == [1, 0]  # this process's own CUDA_VISIBLE_DEVICES (the fixture's), as the benchmark's
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert _devices(None) is None
