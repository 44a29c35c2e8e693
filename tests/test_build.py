"""The builder: plans, builds through the fake tools, reuse, killed builds, build failures, make engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FAKES, REPO, SMALL_SPEC, fake_trtllm_install, load_records
from trtbench.backends.trtllm.build import engine as engine_mod
from trtbench.backends.trtllm.build import quantize as quantize_mod
from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.plan import build_config, plan_engines
from trtbench.backends.trtllm.build.steps import Toolchain, build_steps
from trtbench.backends.trtllm.command import choose_mode
from trtbench.backends.trtllm.version import TrtllmVersion, known_version
from trtbench.commands import build as build_cmd
from trtbench.commands.plan import print_engines
from trtbench.errors import TrtbenchError
from trtbench.grid import IdentityRule, expand
from trtbench.nvml import GpuInfo
from trtbench.precision import Precision
from trtbench.spec import load_spec, parse_spec

V016 = TrtllmVersion.parse("0.16.0")
V12 = TrtllmVersion.parse("1.2.0")
V12_PIN = "trtllm: {version: 1.2.0}\n"
H100 = GpuInfo("NVIDIA H100 80GB HBM3", 81559, "560.35.03")
TRT_SPEC = SMALL_SPEC.replace("backend: sim", "backend: trtllm")


@pytest.fixture
def builder(fake_bench, monkeypatch, tmp_path):
    """Fake build tools on PATH, a GPU for the builder's check, calls logged."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("FAKE_BUILD_CALLS", str(calls))
    monkeypatch.delenv("FAKE_BUILD_FAIL", raising=False)
    monkeypatch.setattr(engine_mod, "visible_gpus", lambda: [H100])
    fake_bench.version("0.16.0")
    return calls


def calls_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_plan_for_the_h100_grid_is_one_engine_for_all_64_points():
    spec = load_spec(REPO / "sweeps" / "h100_grid.yaml")
    points = expand(spec, IdentityRule(()))
    (plan,) = plan_engines(spec, V016, points)
    assert len(plan.points) == 64 and plan.unserved == []
    c = plan.config
    assert (c.max_seq_len, c.max_input_len, c.precision, c.kv_cache_dtype, c.path) == (32768, 16384, "fp8", "fp8",
                                                                                       "tensorrt")
    # max_batch_size: the largest the heuristic picks over the grid (128/128 wants 4096);
    # max_num_tokens: at least the longest prompt, since chunked context is off.
    assert c.max_batch_size == 4096 and c.max_num_tokens >= 16384
    assert c.name.startswith("Llama-3.1-8B_fp8_kv-fp8_tp1pp1_tensorrt_")


def test_a_shorter_engine_leaves_long_points_unserved():
    spec = load_spec(REPO / "sweeps" / "h100_grid.yaml")
    spec = spec.model_copy(update={"build": spec.build.model_copy(update={"max_seq_len": 8192})})
    (plan,) = plan_engines(spec, V016, expand(spec, IdentityRule(())))
    assert all(p.isl + p.osl <= 8192 for p in plan.points)
    assert {(p.isl, p.osl) for p in plan.unserved} >= {(16384, 16384), (128, 16384), (8192, 128)}
    assert len(plan.points) + len(plan.unserved) == 64


def test_config_hash_changes_with_what_changes_the_engine():
    base = build_config(parse_spec(TRT_SPEC), V016)
    assert build_config(parse_spec(TRT_SPEC), V016).hash() == base.hash()
    fp16 = build_config(parse_spec(TRT_SPEC.replace("precision: fp8", "precision: fp16")), V016)
    newer = build_config(parse_spec(TRT_SPEC), TrtllmVersion.parse("0.17.0"))
    assert len({base.hash(), fp16.hash(), newer.hash()}) == 3
    assert "_fp16_kv-fp8_" in fp16.name


def test_build_through_the_fakes_writes_a_manifest(cli, write_spec, tmp_path, builder):
    result = cli("build", str(write_spec(TRT_SPEC)))
    assert result.code == 0, result.err
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((engine_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["gpu"] == "NVIDIA H100 80GB HBM3"
    assert manifest["trtllm_version"] == "0.16.0" and manifest["config"]["precision"] == "fp8"
    assert engine_dir.name.endswith("_" + manifest["config_hash"][:8])
    assert manifest["size_bytes"] > 4096 and (engine_dir / "build.log").exists()
    engine = json.loads((engine_dir / "engine" / "config.json").read_text())
    assert engine["pretrained_config"]["quantization"] == {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}
    assert engine["build_config"]["max_seq_len"] == 2048 + 1024  # the grid's longest sequence
    assert engine["build_config"]["plugin_config"]["use_fp8_context_fmha"] == "enable"
    assert not (engine_dir / "checkpoint").exists()  # the intermediate checkpoint is not kept
    quantize, build = (s["command"] for s in manifest["steps"])
    assert quantize[quantize.index("--qformat") + 1] == "fp8" and "--kv_cache_dtype" in quantize
    assert "--use_paged_context_fmha" in build
    assert [c.split()[0] for c in calls_of(builder)] == ["quantize.py", "trtllm-build"]

    again = cli("build", str(write_spec(TRT_SPEC)))
    assert again.code == 0 and "already built" in again.err
    assert len(calls_of(builder)) == 2  # the fakes were not called again


def test_trtllm_bench_build_tool(cli, write_spec, tmp_path, builder):
    result = cli("build", str(write_spec(TRT_SPEC)), "--tool", "trtllm-bench")
    assert result.code == 0, result.err
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    assert (engine_dir / "engine" / "rank0.engine").exists() and not (engine_dir / "workspace").exists()
    (call,) = calls_of(builder)
    assert call.startswith("trtllm-bench build") and "--quantization FP8" in call


def test_build_oom_is_recorded_and_the_sweep_marks_its_points(cli, write_spec, tmp_path, builder, monkeypatch):
    monkeypatch.setenv("FAKE_BUILD_FAIL", "build_oom")
    result = cli("sweep", "--no-plots", str(write_spec(TRT_SPEC)))
    assert result.code == 1, result.err  # no point ok
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((engine_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["failure"]["status"] == "oom" and manifest["failure"]["where"] == "build"
    assert "Error Code 2: OutOfMemory" in manifest["failure"]["line"]
    recs = load_records(tmp_path / "runs/tiny/results.jsonl")
    assert len(recs) == 4
    assert all(r["status"] == "oom" and r["cause"].startswith("engine build failed: oom (build)") for r in recs)
    assert not (tmp_path / "fake-record.jsonl").exists()  # no benchmark ran on a missing engine
    assert EngineCache(tmp_path / "engines").reusable(build_config(parse_spec(TRT_SPEC), V016)) is None

    monkeypatch.delenv("FAKE_BUILD_FAIL")  # the next build retries the failed configuration
    assert cli("build", str(write_spec(TRT_SPEC))).code == 0
    assert json.loads((engine_dir / "manifest.json").read_text())["status"] == "ok"


def test_calibration_failure_names_the_step(cli, write_spec, tmp_path, builder, monkeypatch):
    monkeypatch.setenv("FAKE_BUILD_FAIL", "calibration")
    assert cli("build", str(write_spec(TRT_SPEC))).code == 1
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    failure = json.loads((engine_dir / "manifest.json").read_text())["failure"]
    assert failure["status"] == "error" and failure["where"] == "calibration, exit 1"
    assert "calibration failed" in failure["line"]
    assert calls_of(builder) == [calls_of(builder)[0]]  # trtllm-build never ran


def test_sweep_builds_then_runs_on_the_engine(cli, write_spec, tmp_path, builder):
    result = cli("sweep", "--no-plots", str(write_spec(TRT_SPEC)))
    assert result.code == 0, result.err
    recs = load_records(tmp_path / "runs/tiny/results.jsonl")
    engine = str((tmp_path / "engines").resolve())
    assert all(r["status"] == "ok" and r["detail"]["engine_dir"].startswith(engine) for r in recs)
    assert all(r["command"][r["command"].index("--engine_dir") + 1] == r["detail"]["engine_dir"]
               for r in recs)


def test_no_build_refuses_a_missing_engine(cli, write_spec, tmp_path, builder):
    result = cli("sweep", "--no-plots", str(write_spec(TRT_SPEC)), "--no-build")
    assert result.code == 2 and "no engine for this sweep" in result.err and "make engine" in result.err
    assert calls_of(builder) == [] and not (tmp_path / "runs").exists()


def test_no_gpu_means_no_build(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("0.16.0")
    result = cli("build", str(write_spec(TRT_SPEC)))
    assert result.code == 2
    assert "cannot build an engine here, missing: a GPU visible to NVML" in result.err
    assert "--dry-run" in result.err and "--backend sim" in result.err


def _machine_with_a_gpu(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that sees TensorRT-LLM 0.16 (the fakes) and an H100 (the fake NVML)."""
    return {**os.environ, "PATH": os.pathsep.join([str(fake_trtllm_install(tmp_path, "0.16.0")), str(FAKES),
                                                   os.environ["PATH"]]),
            "PYTHONPATH": os.pathsep.join([str(FAKES / "site"), str(REPO), os.environ.get("PYTHONPATH", "")]),
            "FAKE_NVML_GPU": "NVIDIA H100 80GB HBM3", "FAKE_TRTLLM_VERSION": "0.16.0", **extra}


def test_killed_build_leaves_nothing_reusable(write_spec, tmp_path):
    spec = write_spec(TRT_SPEC)
    env = _machine_with_a_gpu(tmp_path, FAKE_BUILD_SLEEP="30")
    proc = subprocess.Popen([sys.executable, "-m", "trtbench", "build", str(spec)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((tmp_path / "engines").glob(".staging/*/engine/rank0.engine")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = EngineCache(tmp_path / "engines")
    config = build_config(parse_spec(TRT_SPEC), V016)
    assert list((tmp_path / "engines").glob(".staging/*/engine/rank0.engine"))  # the half-written engine
    assert not cache.path(config).exists() and cache.reusable(config) is None

    env["FAKE_BUILD_SLEEP"] = "0"
    done = subprocess.run([sys.executable, "-m", "trtbench", "build", str(spec)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert cache.reusable(config) is not None
    assert list((tmp_path / "engines" / ".staging").iterdir()) == []  # the dead build's staging is swept


def make(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_make_engine_dry_run_without_trtllm_plans_modelopt_for_the_newest_release(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = make("engine", "PREC=fp8", "DRY_RUN=1", f"ENGINES={tmp_path / 'engines'}", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Llama-3.1-8B_fp8_kv-fp8_pytorch_" in result.stdout
    assert "fetch meta-llama/Llama-3.1-8B from the Hugging Face hub, then quantize it to FP8 with ModelOpt" in \
        result.stdout.replace("\n", " ")
    assert not (tmp_path / "engines").exists()


def test_dry_run_for_an_engine_release_prints_fp8_commands(cli, write_spec, tmp_path):
    result = cli("build", str(write_spec(TRT_SPEC + "trtllm: {version: 0.16.0}\n")), "--dry-run")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if "quantize.py" in line or "trtllm-build" in line]
    quantize = next(line for line in lines if "--qformat" in line)
    build = next(line for line in lines if line.split()[0].endswith("trtllm-build"))
    assert "--qformat fp8" in quantize and "--kv_cache_dtype fp8" in quantize and "--calib_size 512" in quantize
    assert "--use_fp8_context_fmha enable" in build and "--max_seq_len 3072" in build  # 2048 + 1024
    assert not (tmp_path / "engines").exists()


@pytest.mark.slow
def test_make_engine_twice_builds_once(tmp_path):
    calls = tmp_path / "calls"
    env = _machine_with_a_gpu(tmp_path, FAKE_BUILD_CALLS=str(calls))
    args = ("engine", "PREC=fp16", "SWEEP=sweeps/smoke.yaml", f"ENGINES={tmp_path / 'engines'}")
    first = make(*args, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(calls_of(calls)) == 2 and "--qformat full_prec" in calls_of(calls)[0]
    second = make(*args, cwd=tmp_path, env=env)
    assert second.returncode == 0 and "already built" in second.stdout + second.stderr
    assert len(calls_of(calls)) == 2


def test_a_pre_quantized_checkpoint_is_used_as_is(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    calls = tmp_path / "calls"
    monkeypatch.setenv("FAKE_BUILD_CALLS", str(calls))
    fake_bench.version("1.1.0")
    text = TRT_SPEC + "build: {checkpoint: nvidia/Llama-3.1-8B-Instruct-FP8}\n"
    result = cli("build", str(write_spec(text)))  # no GPU needed: nothing is compiled or quantized
    assert result.code == 0, result.err
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    assert engine_dir.name.startswith("Llama-3.1-8B_fp8_kv-fp8_pytorch_") and not calls.exists()
    assert sorted(p.name for p in engine_dir.iterdir()) == ["manifest.json"]
    manifest = json.loads((engine_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["config"]["checkpoint"] == "nvidia/Llama-3.1-8B-Instruct-FP8"
    assert manifest["config"]["quantization"] is None and manifest["model_path"] is None  # --model loads it
    # The sweep's PyTorch runs load that checkpoint.
    run = cli("sweep", "--no-plots", str(write_spec(text)), "--dry-run")
    assert run.out.count("--model nvidia/Llama-3.1-8B-Instruct-FP8") == 4


def fake_checkpoint(path: Path, vocab: int = 512, hf_quant: dict | None = None) -> Path:
    """What planning reads of a checkpoint: config.json's vocab_size, and the files' bytes for the digest;
    with `hf_quant`, the hf_quant_config.json of a ModelOpt export (its `quantization`)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": vocab}))
    (path / "model.safetensors").write_bytes(b"\0" * 64)
    if hf_quant is not None:
        (path / "hf_quant_config.json").write_text(json.dumps({"quantization": hf_quant}))
    return path


def pytorch_spec(source: Path, extra: str = "") -> str:
    return TRT_SPEC.replace("model: meta-llama/Llama-3.1-8B", f"model: {{name: tiny/llama, path: {source}}}") + extra


def test_without_trtllm_the_pytorch_path_is_planned_for_the_newest_release(tmp_path):
    spec = parse_spec(pytorch_spec(fake_checkpoint(tmp_path / "ckpt")))
    assert choose_mode(spec, None) == "pytorch"
    config = build_config(spec, None)
    assert (config.path, config.trtllm_version) == ("pytorch", "1.3.0")
    assert config.quantization is not None and config.quantization.recipe == ["FP8_DEFAULT_CFG", "FP8_KV_CFG"]
    assert config.max_seq_len is None and config.tp is None  # runtime settings on the PyTorch path
    assert config.name.startswith("llama_fp8_kv-fp8_pytorch_")
    (plan,) = plan_engines(spec, None, expand(spec, IdentityRule(())))
    assert plan.config == config and len(plan.points) == 4 and plan.unserved == []


def test_pytorch_key_is_what_changes_the_quantized_checkpoint(tmp_path):
    source = fake_checkpoint(tmp_path / "ckpt")
    base = build_config(parse_spec(pytorch_spec(source)), V12)
    regrid = pytorch_spec(source).replace("isl: [128, 2048]", "isl: [64]") + "runtime: {max_batch_size: 8}\n"
    assert build_config(parse_spec(regrid), V12).hash() == base.hash()  # lengths and batching: runtime settings
    samples = build_config(parse_spec(pytorch_spec(source, "build: {calibration: {samples: 64}}\n")), V12)
    kv16 = build_config(parse_spec(pytorch_spec(source).replace("kv_cache_dtype: fp8", "kv_cache_dtype: auto")), V12)
    (source / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 256}))
    edited = build_config(parse_spec(pytorch_spec(source)), V12)
    assert len({base.hash(), samples.hash(), kv16.hash(), edited.hash()}) == 4
    assert edited.quantization is not None and edited.quantization.calibration.vocab == 256


def test_big_checkpoint_files_count_by_size_and_mtime(tmp_path, monkeypatch):
    source = fake_checkpoint(tmp_path / "ckpt")  # model.safetensors: 64 bytes
    monkeypatch.setattr(quantize_mod, "BYTES_HASHED_UP_TO", 32)
    weights = source / "model.safetensors"
    stat = weights.stat()
    before = quantize_mod.checkpoint_digest(source)
    weights.write_bytes(b"\1" * 64)  # same size, same mtime: not read, so not seen
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert quantize_mod.checkpoint_digest(source) == before
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert quantize_mod.checkpoint_digest(source) != before
    (source / "config.json").write_text('{"vocab_size": 128256}')  # small files count by their bytes
    assert quantize_mod.checkpoint_digest(source) != before


def test_quantizing_without_the_extra_says_what_to_install(cli, write_spec, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize_mod, "installed", lambda name: None if name == "nvidia-modelopt" else "1.0")
    spec = write_spec(pytorch_spec(fake_checkpoint(tmp_path / "ckpt"), V12_PIN))
    with pytest.raises(TrtbenchError) as raised:
        build_cmd.build(spec, {}, dry_run=False)
    assert str(raised.value) == "quantizing with ModelOpt needs ModelOpt: pip install 'trtbench[quantize]'"
    result = cli("build", str(spec))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "quantizing with ModelOpt needs ModelOpt: pip install 'trtbench[quantize]'" in result.err  # brackets kept
    assert not (tmp_path / "engines").exists()


def test_an_fp8_sweep_on_the_pytorch_path_plans_the_modelopt_build(cli, write_spec, fake_bench, tmp_path):
    """A 16-bit model swept at FP8 on 1.1: the dry run plans the ModelOpt build and writes nothing; with a
    local checkpoint every point's command loads the quantized one from the engine cache."""
    fake_bench.version("1.1.0")
    hub = cli("sweep", "--no-plots", str(write_spec(TRT_SPEC)), "--dry-run")
    assert hub.code == 0, hub.err
    assert "fetch meta-llama/Llama-3.1-8B from the Hugging Face hub, then quantize it to FP8 with ModelOpt" in \
        hub.out.splitlines()[0]
    source = tmp_path / "llama"
    source.mkdir()
    (source / "config.json").write_text('{"vocab_size": 128256}')
    local = cli("sweep", "--no-plots", str(write_spec(TRT_SPEC.replace("model: meta-llama/Llama-3.1-8B",
                                                                      f"model: {{name: meta-llama/Llama-3.1-8B, "
                                                                      f"path: {source}}}"))), "--dry-run")
    assert local.code == 0, local.err
    runs = [line.split() for line in local.out.splitlines() if " throughput " in line]
    assert len(runs) == 4
    for args in runs:
        model_path = Path(args[args.index("--model_path") + 1])
        assert model_path.parent.parent == (tmp_path / "engines").resolve() and model_path.name == "model"
        assert model_path.parent.name.startswith("Llama-3.1-8B_fp8_kv-fp8_pytorch_")
    assert not (tmp_path / "engines").exists()


def test_one_engine_per_build_configuration_of_the_grid():
    """The 70B example sweeps precision x TP: six engines, each serving its nine (ISL, OSL) points."""
    spec = load_spec(REPO / "sweeps" / "h100_70b_tp_precision.yaml")
    plans = plan_engines(spec, V016, expand(spec, IdentityRule(())))
    assert sorted((p.config.precision, p.config.tp) for p in plans) == [
        ("fp16", 2), ("fp16", 4), ("fp16", 8), ("fp8", 2), ("fp8", 4), ("fp8", 8)]
    assert all(len(p.points) == 9 and not p.unserved and p.config.max_seq_len == 8192 for p in plans)
    assert len({p.config.name for p in plans}) == 6


# Models that already hold FP8 weights (issue 24 item 6): loaded (or built) as they are, never quantized again.
FP8_WEIGHTS_AND_KV = {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}
NVIDIA_FP8 = "nvidia/Llama-3.1-8B-Instruct-FP8"


def own_fp8_spec(model: str, precision: str = "fp8") -> str:
    """TRT_SPEC on `model` (a hub name, or `{name, path}`) with no build.checkpoint: its own weights are FP8."""
    return TRT_SPEC.replace("model: meta-llama/Llama-3.1-8B", f"model: {model}").replace(
        "precision: fp8", f"precision: {precision}")


def local_fp8(tmp_path: Path, hf_quant: dict | None = None) -> tuple[Path, str]:
    """A stand-in ModelOpt FP8 export and the spec's model mapping for it (a name the catalog sizes)."""
    source = fake_checkpoint(tmp_path / "llama-fp8", hf_quant=hf_quant or FP8_WEIGHTS_AND_KV).resolve()
    return source, f"{{name: meta-llama/Llama-3.1-8B, path: {source}}}"


def engines_state(capsys: pytest.CaptureFixture[str], spec: Path) -> str:
    """The State cell of `trtbench plan`'s engines table (one engine), its folded lines joined, spaces dropped."""
    parsed = load_spec(spec)
    version = known_version(parsed.trtllm.version, parsed.trtllm.executable)
    print_engines(parsed, expand(parsed, IdentityRule(())), version)
    text = capsys.readouterr()
    lines = (text.out + text.err).splitlines()
    header = next(line for line in lines if "Engine" in line and "State" in line)
    column = [cell.strip() for cell in header.split("┃")].index("State")
    return "".join("".join(line.split("│")[column].split()) for line in lines if line.startswith("│"))


@pytest.mark.parametrize(("files", "held"), [
    ({"hf_quant_config.json": {"quantization": FP8_WEIGHTS_AND_KV}}, Precision.FP8),
    ({"hf_quant_config.json": {"quantization": {"quant_algo": "NVFP4"}}}, Precision.NVFP4),
    ({"hf_quant_config.json": {"quantization": {"quant_algo": "W4A16_AWQ"}}}, None),
    ({"config.json": {"quantization_config": {"quant_method": "fp8", "activation_scheme": "static"}}}, Precision.FP8),
    ({"config.json": {"quantization_config": {"quant_method": "modelopt", "quant_algo": "FP8"}}}, Precision.FP8),
    ({"config.json": {"quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"}}}, Precision.NVFP4),
    ({"config.json": {"vocab_size": 512}}, None),
])
def test_a_local_checkpoint_declares_its_weights_in_its_quantization_config(tmp_path, files, held):
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    expected = quantize_mod.Declared(held, str(tmp_path)) if held else None
    assert quantize_mod.declared(NVIDIA_FP8, str(tmp_path)) == expected  # the files decide, not the name


@pytest.mark.parametrize(("name", "held"), [
    (NVIDIA_FP8, Precision.FP8), ("NVIDIA/llama-3.3-70b-instruct-fp8", Precision.FP8),
    ("nvidia/Llama-3.1-8B-Instruct-FP4", Precision.NVFP4), ("nvidia/Qwen3.5-397B-A17B-NVFP4", Precision.NVFP4),
    ("nvidia/Llama-3.1-8B-Instruct", None), ("someone/Llama-3.1-8B-FP8", None), ("someone/Llama-3.1-8B-NVFP4", None),
    ("nvidia/Llama-3.1-8B-FP8-v2", None)])
def test_a_hub_name_declares_its_weights_when_it_is_one_of_nvidias(name, held):
    assert quantize_mod.declared(name, None) == (quantize_mod.Declared(held, name) if held else None)


def test_a_local_fp8_checkpoint_is_loaded_as_it_is(cli, write_spec, tmp_path, fake_bench, monkeypatch, capsys):
    """PyTorch path: no ModelOpt step, no build tool run, and every point's trtllm-bench loads the checkpoint."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("FAKE_BUILD_CALLS", str(calls))
    source, model = local_fp8(tmp_path)
    spec = write_spec(own_fp8_spec(model))
    config = build_config(load_spec(spec), TrtllmVersion.parse("1.1.0"))
    assert (config.quantization, config.checkpoint, config.unfetched) == (None, str(source), False)
    assert build_steps(config, tmp_path, Toolchain.find(load_spec(spec))) == []
    assert engines_state(capsys, spec) == "".join(
        f"pre-quantized FP8 ({source}): loaded as it is; its KV cache quantization: FP8".split())

    built = cli("build", str(spec))
    assert built.code == 0, built.err
    assert f"pre-quantized FP8 ({source}): loaded as it is" in " ".join(built.err.split())
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((engine_dir / "manifest.json").read_text())
    assert manifest["steps"] == [] and manifest["model_subdir"] is None and manifest["model_path"] == str(source)
    assert sorted(p.name for p in engine_dir.iterdir()) == ["manifest.json"]  # no model/ exported

    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    recs = load_records(tmp_path / "runs/tiny/results.jsonl")
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)  # the report's FP8 fits the label
    for printed in fake_bench.printed():
        argv = printed["argv"]
        assert argv[argv.index("--model_path") + 1] == str(source) and argv[argv.index("--model") + 1] == \
            "meta-llama/Llama-3.1-8B"
    assert not calls.exists()  # no quantize.py, trtllm-build or trtllm-bench build


def test_an_nvidia_fp8_hub_model_is_loaded_by_name(cli, write_spec, tmp_path, fake_bench, capsys):
    spec = write_spec(own_fp8_spec(NVIDIA_FP8))
    config = build_config(load_spec(spec), TrtllmVersion.parse("1.1.0"))
    assert (config.quantization, config.checkpoint, config.unfetched) == (None, NVIDIA_FP8, False)
    assert engines_state(capsys, spec) == "".join(
        f"pre-quantized FP8 ({NVIDIA_FP8}): loaded as it is; its KV cache quantization: as declared on the hub"
        .split())
    run = cli("sweep", "--no-plots", str(spec), "--dry-run")
    assert run.code == 0, run.err
    commands = [line.split() for line in run.out.splitlines() if " throughput " in line]
    assert len(commands) == 4 and all(c[c.index("--model") + 1] == NVIDIA_FP8 and "--model_path" not in c
                                      for c in commands)
    assert "quantize it to FP8" not in run.out + run.err  # nothing fetched to quantize
    assert not (tmp_path / "engines").exists()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_model_with_fp8_weights_refuses_a_16_bit_point(cli, write_spec, tmp_path, fake_bench, precision):
    source, model = local_fp8(tmp_path)
    for name, command in ((NVIDIA_FP8, "build"), (str(source), "sweep")):
        spec = write_spec(own_fp8_spec(NVIDIA_FP8 if name == NVIDIA_FP8 else model, precision))
        result = cli(command, str(spec))
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert f"precision: {precision}: {name} holds pre-quantized FP8 weights" in result.err
    assert not (tmp_path / "engines").exists() and not (tmp_path / "runs").exists()


def test_a_local_fp8_checkpoint_builds_an_engine_uncalibrated_with_trtllm_bench(cli, write_spec, tmp_path, builder):
    """0.16, the TensorRT path: `trtllm-bench build` (its LLM API) builds from hf_quant_config.json as it is;
    quantize.py, which would quantize the FP8 weights again, is refused in one line."""
    source, model = local_fp8(tmp_path, {"quant_algo": "FP8", "kv_cache_quant_algo": None})
    spec = write_spec(own_fp8_spec(model))
    refused = cli("build", str(spec))
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
    assert f"{source} holds pre-quantized FP8 weights, which quantize.py would quantize again" in refused.err
    assert calls_of(builder) == []

    result = cli("build", str(spec), "--tool", "trtllm-bench")
    assert result.code == 0, result.err
    assert "trtllm-bench build makes the engine from it as it is, uncalibrated; its KV cache quantization: none " \
           "declared" in " ".join(result.err.split())
    (call,) = calls_of(builder)
    assert call.startswith(f"trtllm-bench build --model meta-llama/Llama-3.1-8B --model_path {source} ")
    (engine_dir,) = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
    assert "pre-quantized checkpoint is used" in (engine_dir / "build.log").read_text()
    engine = json.loads((engine_dir / "engine" / "config.json").read_text())
    assert engine["pretrained_config"]["quantization"] == {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}


def test_a_node_too_small_for_every_point_builds_nothing(cli, write_spec, tmp_path, builder, monkeypatch):
    """A TP2 grid on a one-GPU node with --executor gpus can run none of its points: it says so (exit 2) before
    building an engine for them, which would take the user half an hour for nothing."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    spec = TRT_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048]\n  tp: [2]") + "executor: {kind: gpus}\n"
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 2
    assert "can run none of the 4 point(s) to run on this machine (4 point(s): needs 2 GPUs, executor gpus has 1)" \
        in " ".join(result.err.split())
    assert calls_of(builder) == [] and not (tmp_path / "engines").exists()
