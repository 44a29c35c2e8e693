"""`trtbench doctor`: on a machine with nothing (every line missing, exit 1), and on a GPU box made of fakes: the
fake trtllm-bench in a Python with TensorRT-LLM's metadata, the fake NVML, fake sbatch/squeue/sinfo scripts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import FAKES, load_fake_nvml

H100 = "NVIDIA H100 80GB HBM3"  # what NVML names an H100 SXM; the fake's memory is 81,559 MiB = 79.6 GiB
GPU_A, GPU_B = "GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000000"


def _findings(result) -> dict[str, dict]:
    return {f["topic"]: f for f in json.loads(result.out)["findings"]}


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine with none of it: PATH an empty directory, no NVML (conftest), no builder packages, no Hugging
    Face token or cache. Returns the empty bin directory, for a test to put fakes in."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr("trtbench.doctor.installed", lambda distribution: None)
    for name in ("HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "CUDA_VISIBLE_DEVICES", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return empty


def test_on_a_machine_with_nothing_every_line_is_missing_and_it_exits_1(cli, bare):
    result = cli("doctor", "--json")
    assert result.code == 1, result.err
    data = json.loads(result.out)
    assert data["ready"] is False
    levels = {f["topic"]: f["level"] for f in data["findings"]}
    assert levels == {"trtbench": "ok", "python": "ok", "trtllm-bench": "missing", "TensorRT-LLM": "missing",
                      "NVML": "missing", "GPUs": "missing", "CUDA_VISIBLE_DEVICES": "warning", "builder": "missing",
                      "HF token": "missing", "HF cache": "missing", "engines disk": levels["engines disk"],
                      "Slurm": "missing"}
    assert levels["engines disk"] in ("ok", "warning")  # the disk is there; how full depends on the machine
    # each line not ok names its fix
    assert all(f["fix"] for f in data["findings"] if f["level"] != "ok")
    assert "nvidia-modelopt" not in result.out and "trtbench[quantize]" in result.out


def test_the_table_has_a_line_for_each_finding_and_says_no(cli, bare):
    result = cli("doctor")
    assert result.code == 1
    for topic in ("trtllm-bench", "TensorRT-LLM", "NVML", "CUDA_VISIBLE_DEVICES", "builder", "HF token", "HF cache",
                  "engines disk", "Slurm"):
        assert topic in result.out
    assert "a measured sweep cannot run here" in result.out


def _fake_nvml(monkeypatch: pytest.MonkeyPatch, devices: list) -> None:
    load_fake_nvml(monkeypatch, H100)
    monkeypatch.setenv("FAKE_NVML_DEVICES", json.dumps(devices))


def _fake_slurm(bin_dir: Path, partitions: str = "gpu* up 4\ndebug up 1") -> None:
    """sbatch and squeue that are never run by doctor, and an sinfo that lists `partitions` (its -o %P %a %D)."""
    for name, body in (("sbatch", "exit 1"), ("squeue", "exit 1"), ("sinfo", f"printf '%s\\n' '{partitions}'")):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)


@pytest.fixture
def gpu_box(bare: Path, fake_bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Everything there, made of fakes: trtllm-bench (TensorRT-LLM 1.1.0), two H100s, the builder packages,
    a token and a cache, Slurm with two partitions."""
    monkeypatch.setenv("PATH", os.pathsep.join([str(fake_bench.env / "bin"), str(FAKES), str(bare)]))
    _fake_nvml(monkeypatch, [GPU_A, GPU_B])
    monkeypatch.setattr("trtbench.doctor.installed", lambda distribution: "1.0")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    (tmp_path / "hf" / "hub" / "models--meta-llama--Llama-3.1-8B").mkdir(parents=True)
    _fake_slurm(bare)
    return bare


def test_on_a_gpu_box_every_line_is_ok_and_it_exits_0(cli, gpu_box, fake_bench):
    result = cli("doctor", "--json", "--executor", "slurm")
    assert result.code == 0, result.out + result.err
    found = _findings(result)
    assert {t for t, f in found.items() if f["level"] != "ok"} <= {"engines disk"}
    assert found["trtllm-bench"]["found"] == f"{FAKES / 'trtllm-bench'} (run by python3)"
    assert found["TensorRT-LLM"]["found"].startswith("1.1.0 ")
    assert found["NVML"]["found"] == "driver 560.35.03, 2 GPUs"
    assert found["GPU 0"]["found"] == f"{H100} (catalog h100-sxm), 79.6 GiB, {GPU_A}"
    assert found["GPU 1"]["found"] == f"{H100} (catalog h100-sxm), 79.6 GiB, {GPU_B}"
    assert found["CUDA_VISIBLE_DEVICES"]["found"] == "unset: 2 devices visible"
    assert found["HF cache"]["found"].endswith("(1 model)")
    assert found["Slurm"]["found"] == f"{gpu_box / 'sbatch'}; partitions gpu*, debug"


def test_cuda_visible_devices_says_what_it_leaves_and_hides(cli, gpu_box, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    found = _findings(cli("doctor", "--json"))
    assert found["CUDA_VISIBLE_DEVICES"] == {"topic": "CUDA_VISIBLE_DEVICES", "level": "ok",
                                             "found": "'1': leaves 1 visible, hides 1", "fix": "", "needed": False}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = cli("doctor", "--json")
    assert result.code == 1
    assert _findings(result)["CUDA_VISIBLE_DEVICES"]["level"] == "missing"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # no such GPU: a point would run on none
    result = cli("doctor", "--json")
    assert result.code == 1
    assert _findings(result)["CUDA_VISIBLE_DEVICES"]["found"].startswith("CUDA_VISIBLE_DEVICES: '7' names no device "
                                                                         "NVML sees (2 GPU(s), 0 MIG device(s))")


def test_a_gpu_in_mig_mode_shows_its_mig_devices_and_an_unknown_gpu_warns(cli, gpu_box, monkeypatch):
    mig = "MIG-11111111-2222-3333-4444-555555555555"
    _fake_nvml(monkeypatch, [{"uuid": GPU_A, "mig": [[mig, 1, 0]]}])
    monkeypatch.setenv("FAKE_NVML_GPU", "NVIDIA Made Up 1000")
    result = cli("doctor", "--json")
    found = _findings(result)
    assert found["GPU 0"]["level"] == "warning"
    assert found["GPU 0"]["found"] == f"NVIDIA Made Up 1000 (not in trtbench's catalog), 79.6 GiB, MIG mode: 1 MIG " \
                                      f"devices, {GPU_A}"
    assert found["CUDA_VISIBLE_DEVICES"]["found"] == "unset: 1 device visible"  # the MIG device, not its GPU
    assert result.code == 0  # an unknown GPU still runs measured sweeps


def test_a_release_newer_than_known_warns_and_still_runs(cli, gpu_box, fake_bench):
    fake_bench.version("9.0.0")
    result = cli("doctor", "--json")
    assert result.code == 0
    release = _findings(result)["TensorRT-LLM"]
    assert release["level"] == "warning" and release["found"].startswith("9.0.0: newer than trtbench knows")


def test_a_release_older_than_supported_is_missing(cli, gpu_box, fake_bench):
    fake_bench.version("0.11.0")
    result = cli("doctor", "--json")
    assert result.code == 1
    assert "not supported" in _findings(result)["TensorRT-LLM"]["found"]


def test_slurm_is_needed_only_with_executor_slurm(cli, gpu_box):
    for name in ("sbatch", "squeue", "sinfo"):
        (gpu_box / name).unlink()
    assert cli("doctor", "--json").code == 0
    result = cli("doctor", "--json", "--executor", "slurm")
    assert result.code == 1
    slurm = _findings(result)["Slurm"]
    assert slurm["level"] == "missing" and slurm["found"] == "no sbatch, squeue, sinfo on PATH"


def test_an_sinfo_that_hangs_is_cut_off(cli, gpu_box, monkeypatch):
    (gpu_box / "sinfo").write_text("#!/bin/sh\nexec /bin/sleep 60\n")
    monkeypatch.setattr("trtbench.doctor.PROBE_S", 0.5)
    result = cli("doctor", "--json", "--executor", "slurm")
    assert result.code == 1
    assert _findings(result)["Slurm"]["found"].startswith("sinfo did not answer")


def test_an_unknown_executor_is_one_line(cli, bare):
    result = cli("doctor", "--executor", "slrum")
    assert result.code == 2 and result.err.count("\n") == 1 and "--executor 'slrum'" in result.err
