"""On a machine with a GPU (skipped elsewhere, CI included): the paths that meet the real driver. Run them
with `pytest -m gpu`."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import TRTLLM_SPEC
from trtbench.backends.trtllm.telemetry import Sampler
from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import TrtbenchError
from trtbench.executors.gpus import Gpu, node_gpus
from trtbench.nvml import devices, visible_gpus
from trtbench.nvml import init as nvml_init

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not visible_gpus(), reason="no GPU visible to NVML")]
HELD_GIB = 8


def _used_gib() -> float:
    nvml = nvml_init()
    assert nvml is not None
    try:
        return nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(0)).used / 2**30
    finally:
        nvml.nvmlShutdown()


def _wait(condition, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout_s, what
        time.sleep(0.05)
    return time.monotonic() - t0


def test_a_killed_sweep_frees_the_gpu(write_spec, tmp_path, fake_bench, monkeypatch):
    """A grandchild that left the benchmark's session holds 8 GiB of GPU memory; kill -9 of the sweep must
    give it back: every process of the point ends and the memory returns. The 30 s bound is liveness only (the
    machine is loaded); how fast it happens is printed, not asserted."""
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(tmp_path / "pids"))
    monkeypatch.setenv("FAKE_TRTLLM_GPU_GIB", str(HELD_GIB))
    monkeypatch.setenv("FAKE_TRTLLM_GPU_PYTHON", sys.executable)
    fake_bench.fail("hang")
    baseline = _used_gib()
    spec = write_spec(TRTLLM_SPEC)
    proc = subprocess.Popen([sys.executable, "-m", "trtbench", "sweep", "--no-plots", str(spec)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: _used_gib() >= baseline + HELD_GIB - 0.5, 120, "the fake never took its GPU memory")
    proc.kill()
    proc.wait()
    freed = _wait(lambda: _used_gib() <= baseline + 0.5, 30, "the GPU memory was never given back")
    print(f"GPU memory back to {baseline:.2f} GiB {freed:.2f} s after kill -9 of the sweep")
    held = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    assert held and not [pid for pid in held if psutil.pid_exists(pid)
                         and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_telemetry_reads_the_real_gpu():
    gpu = visible_gpus()[0]
    assert resolve_gpu(gpu.name).mem_total_mib == pytest.approx(gpu.memory_total_mib, rel=0.02)  # the catalog knows it
    load = ("import torch, time; a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16); t = time.time()\n"
            "while time.time() - t < 3: a @ a\ntorch.cuda.synchronize()")
    with Sampler() as sampler:
        subprocess.run([sys.executable, "-c", load], check=True, timeout=120)
    summary = sampler.summary
    assert summary is not None and summary.gpu_name == gpu.name and summary.samples >= 10
    print(summary.model_dump_json())
    assert summary.peak_power_w > summary.mean_power_w * 0.99 > 0 and summary.energy_j > 0
    assert summary.peak_memory_used_gib > 0.3  # the 8192^2 bf16 operands and their products
    assert summary.mean_sm_clock_mhz > 0


def _cuda_sees(visible: str) -> int:
    """How many devices the CUDA driver enumerates with CUDA_VISIBLE_DEVICES=`visible`."""
    count = ("import ctypes; cuda = ctypes.CDLL('libcuda.so.1'); n = ctypes.c_int(0)\n"
             "print(n.value if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(n)) == 0 else 0)")
    done = subprocess.run([sys.executable, "-c", count], env={**os.environ, "CUDA_VISIBLE_DEVICES": visible},
                          capture_output=True, text=True, check=True, timeout=60)
    return int(done.stdout)


def test_the_real_gpu_named_by_uuid_is_the_device_cuda_runs_on(monkeypatch):
    """What node_gpus takes (a GPU's UUID or a prefix of one, a MIG device's) is what CUDA takes, and what it
    refuses CUDA cannot see."""
    found = devices() or []
    gpu = found[0]
    named = [gpu.uuid, gpu.uuid[:12]] if not gpu.mig_mode else [next(d.uuid for d in found if d.mig)]
    for given in named:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", given)
        assert node_gpus("auto") == [Gpu(given, mig=gpu.mig_mode)]
        assert _cuda_sees(given) == 1
    unknown = "GPU-00000000-dead-beef-0000-000000000000"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", unknown)
    with pytest.raises(TrtbenchError, match="names no device NVML sees"):
        node_gpus("auto")
    assert _cuda_sees(unknown) == 0
