"""NVFP4 in the builder without running ModelOpt (tests/test_quantize.py runs it): the dry run of
`trtbench build --precision nvfp4`, the engine path's refusal, and pre-quantized NVFP4 checkpoints loaded as
they are. The hand-made checkpoints carry the hf_quant_config.json ModelOpt 0.47's NVFP4 export writes
(quant_algo NVFP4, group_size 16), the file NVIDIA's published NVFP4 checkpoints ship."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tests.test_build import TRT_SPEC, fake_checkpoint
from trtbench.backends.trtllm.build.plan import build_config, plan_engines
from trtbench.backends.trtllm.build.steps import QUANTIZER
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.grid import IdentityRule, expand
from trtbench.spec import parse_spec

V12 = TrtllmVersion.parse("1.2.0")
NVFP4_WEIGHTS_FP8_KV = {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                        "exclude_modules": ["lm_head", "model.embed_tokens"]}  # ModelOpt 0.47's export, exact
NVIDIA_FP4 = "nvidia/Llama-3.1-8B-Instruct-FP4"  # its model card: ModelOpt NVFP4, Blackwell only


def b200_spec(model: str, precision: str = "nvfp4", kv: str = "fp8", trtllm: str = "{version: 1.2.0}") -> str:
    """TRT_SPEC on a B200 (TensorRT-LLM 1.2: the PyTorch path), `model` a name or a {name, path} mapping."""
    return (TRT_SPEC.replace("model: meta-llama/Llama-3.1-8B", f"model: {model}")
            .replace("precision: fp8", f"precision: {precision}")
            .replace("kv_cache_dtype: fp8", f"kv_cache_dtype: {kv}")
            .replace("gpu: h100-sxm", "gpu: b200")) + f"trtllm: {trtllm}\n"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def test_the_spec_helper_puts_the_point_on_blackwell():
    spec = parse_spec(b200_spec("meta-llama/Llama-3.1-8B"))
    assert (spec.gpu, str(spec.precision), str(spec.kv)) == ("b200", "nvfp4", "fp8")


@pytest.mark.parametrize(("kv", "recipe"), [("fp8", ["NVFP4_DEFAULT_CFG", "FP8_KV_CFG"]),
                                            ("auto", ["NVFP4_DEFAULT_CFG"])])
def test_a_dry_run_prints_modelopts_nvfp4_step(cli, write_spec, tmp_path, kv, recipe):
    source = fake_checkpoint(tmp_path / "llama-bf16").resolve()
    spec = write_spec(b200_spec(f"{{name: meta-llama/Llama-3.1-8B, path: {source}}}", precision="fp8", kv=kv))
    result = cli("build", str(spec), "--precision", "nvfp4", "--dry-run")
    assert result.code == 0, result.err
    comment, command = result.out.strip().splitlines()
    assert comment.startswith(f"# Llama-3.1-8B_nvfp4_kv-{kv}_pytorch_")
    args = shlex.split(command)
    assert args[:3] == [sys.executable, "-m", QUANTIZER] and args[args.index("--source") + 1] == str(source)
    assert args[args.index("--recipe") + 1:args.index("--calibration")] == recipe
    assert not (tmp_path / "engines").exists()  # a dry run builds nothing


def test_a_dry_run_of_a_hub_model_not_fetched_says_it_would_quantize_to_nvfp4(cli, write_spec):
    result = cli("build", str(write_spec(b200_spec("meta-llama/Llama-3.1-8B"))), "--dry-run")
    assert result.code == 0, result.err
    assert "fetch meta-llama/Llama-3.1-8B from the Hugging Face hub, then quantize it to NVFP4 with ModelOpt" \
        in result.out


@pytest.mark.parametrize(("trtllm", "why"), [("{version: 1.2.0, backend: tensorrt}", "trtllm.backend: tensorrt"),
                                             ("{version: 0.16.0}", "TensorRT-LLM 0.16.0, mode: throughput")])
def test_the_engine_path_refuses_nvfp4_in_one_line(cli, write_spec, trtllm, why):
    result = cli("build", str(write_spec(b200_spec("meta-llama/Llama-3.1-8B", trtllm=trtllm))), "--dry-run")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert f"precision: nvfp4 on the TensorRT engine path ({why})" in result.err
    assert "trtbench builds NVFP4 only as a checkpoint for the PyTorch backend" in result.err


def test_a_local_nvfp4_checkpoint_is_loaded_as_it_is(cli, write_spec, tmp_path):
    source = fake_checkpoint(tmp_path / "llama-nvfp4", hf_quant=NVFP4_WEIGHTS_FP8_KV).resolve()
    text = b200_spec(f"{{name: meta-llama/Llama-3.1-8B, path: {source}}}")
    spec = parse_spec(text)
    (plan,) = plan_engines(spec, V12, expand(spec, IdentityRule(())))
    assert (plan.config.quantization, plan.config.checkpoint, plan.config.unfetched) == (None, str(source), False)
    assert plan.prequantized == f"pre-quantized NVFP4 ({source}): loaded as it is; its KV cache quantization: FP8"
    result = cli("build", str(write_spec(text)), "--dry-run")
    assert result.code == 0, result.err
    assert "nothing to build: trtllm-bench loads " + str(source) in result.out


def test_nvidias_nvfp4_hub_checkpoint_is_loaded_by_name():
    config = build_config(parse_spec(b200_spec(NVIDIA_FP4)), V12)
    assert (config.quantization, config.checkpoint, config.unfetched) == (None, NVIDIA_FP4, False)


@pytest.mark.parametrize("precision", ["fp8", "bf16"])
def test_an_nvfp4_checkpoint_at_another_precision_is_refused_in_one_line(cli, write_spec, tmp_path, precision):
    source = fake_checkpoint(tmp_path / "llama-nvfp4", hf_quant=NVFP4_WEIGHTS_FP8_KV).resolve()
    for model, shown in ((f"{{name: meta-llama/Llama-3.1-8B, path: {source}}}", str(source)),
                         (NVIDIA_FP4, NVIDIA_FP4)):
        result = cli("build", str(write_spec(b200_spec(model, precision=precision))), "--dry-run")
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert f"precision: {precision}: {shown} holds pre-quantized NVFP4 weights" in result.err
        assert "use precision: nvfp4, or the 16-bit model" in result.err


def test_an_fp8_checkpoint_at_nvfp4_is_refused_in_one_line(cli, write_spec, tmp_path):
    source = fake_checkpoint(tmp_path / "llama-fp8", hf_quant={"quant_algo": "FP8"}).resolve()
    result = cli("build", str(write_spec(b200_spec(f"{{name: meta-llama/Llama-3.1-8B, path: {source}}}"))),
                 "--dry-run")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"precision: nvfp4: {source} holds pre-quantized FP8 weights" in result.err


def test_nvfp4_before_blackwell_is_refused_in_one_line(cli, write_spec):
    text = b200_spec("meta-llama/Llama-3.1-8B").replace("gpu: b200", "gpu: h100-sxm")
    result = cli("build", str(write_spec(text)), "--dry-run")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "precision: nvfp4 needs FP4 tensor cores (Blackwell)" in result.err



def test_the_shipped_b200_spec_plans_and_dry_runs_the_nvfp4_build(cli):
    """`make engine PREC=nvfp4 SWEEP=sweeps/b200_nvfp4.yaml DRY_RUN=1`: the spec users start from plans (NVFP4
    weights with NVFP4's FP8 KV default) and its build is ModelOpt's NVFP4 quantization, nothing run."""
    spec = str(Path(__file__).resolve().parent.parent / "sweeps" / "b200_nvfp4.yaml")
    plan = cli("plan", spec)
    assert plan.code == 0, plan.err
    assert "KV fp8 (unset: TensorRT-LLM's default for nvfp4 weights)" in " ".join(plan.out.split())
    built = cli("build", spec, "--precision", "nvfp4", "--dry-run")
    assert built.code == 0, built.err
    assert "quantize it to NVFP4 with ModelOpt" in built.out and "_nvfp4_kv-fp8_" in built.out
