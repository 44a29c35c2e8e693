"""`precision: mxfp4`, gpt-oss as OpenAI publishes it: MXFP4 experts, every other layer 16-bit, loaded as it ships."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC
from tests.test_moe import GPT_OSS_120B_CONFIG
from trtbench.catalog.models import resolve_model
from trtbench.deployment import make_deployment
from trtbench.errors import SpecError
from trtbench.precision import Precision
from trtbench.records import Status
from trtbench.sim import calibration
from trtbench.sim.heuristics import checkpoint_elements
from trtbench.sim.memory import plan_memory
from trtbench.sim.steptime import AnalyticStep, Batch
from trtbench.spec import RuntimeSpec

GPT_OSS_SPEC = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "openai/gpt-oss-120b").replace(
    "precision: fp8\nkv_cache_dtype: fp8\n", "precision: mxfp4\nruntime: {max_batch_size: 256, max_num_tokens: 8192}\n")


def test_gpt_oss_120b_fits_one_h100_in_mxfp4():
    """Per GPU at TP1: 36 layers x (attention 26,542,080 + biases 5,120 + norms 5,760) + final norm 2,880 =
    955,909,440, the routers 13,271,040 and the embedding and head 1,158,266,880, all 16-bit: 4,254,894,720 B;
    the experts 36 x 128 x 3 x 2880^2 = 114,661,785,600 at 17/32 B (4 bits and an 8-bit scale per 32):
    60,914,073,600 B. 65,168,968,320 B = 60.69 GiB (OpenAI: "runs within 80GB of memory"; its checkpoint
    is about 65 GB)."""
    rt = RuntimeSpec(max_batch_size=256, max_num_tokens=8192)
    plan = plan_memory(make_deployment("openai/gpt-oss-120b", "h100-sxm", "mxfp4", runtime=rt), 1024, 1024)
    assert plan.verdict is Status.OK and plan.weights_gib == pytest.approx(60.69, abs=0.01)
    assert plan.kv_bytes_per_token == 2 * 36 * 8 * 64 * 2  # the KV cache stays 16-bit unless told


def test_gpt_oss_120b_on_one_h200_is_ok_under_trtllm_bench_s_own_sizing():
    """trtllm-bench counts a checkpoint's safetensors elements (bench/build/dataclasses.py), and gpt-oss-120b's are,
    per layer: experts' blocks U8, two weights each, 128 x (5,760 + 2,880) x 2,880 / 2 = 1,592,524,800; their
    scales U8, one per 32, 99,532,800; BF16: attention 26,542,080, its biases 8,000, sinks 64, norms 5,760, router
    368,640 + 128, expert biases 1,105,920. 1,720,088,192 x 36 = 61,923,174,912, plus embedding and head 2 x 201,088
    x 2,880 = 1,158,266,880 and the final norm 2,880: 63,081,444,672 elements (trtbench's architecture lacks the
    biases and sinks, 39,923,712 of them: 63,041,520,960), 117.5 GiB at 2 bytes, under an H200's 140.4 GiB. It
    never gets that far: the checkpoint loads as W4A16_MXFP4, not in TUNED_QUANTS (bench/build/build.py), so
    trtllm-bench takes its defaults, max_batch_size 2048 and max_num_tokens 8192, and the point runs."""
    dep = make_deployment("openai/gpt-oss-120b", "h200-sxm", "mxfp4")
    assert checkpoint_elements(dep.arch, Precision.MXFP4) == 63_041_520_960
    plan = plan_memory(dep, 1024, 1024)
    assert plan.verdict is Status.OK, plan.cause
    assert (plan.max_batch_size, plan.max_num_tokens) == (2048, 8192)


def test_a_decode_step_streams_mxfp4_experts_at_a_quarter_of_16_bit():
    factors = calibration.load()[0]
    mxfp4 = AnalyticStep(make_deployment("openai/gpt-oss-120b", "h200-sxm", "mxfp4"), factors)
    bf16 = AnalyticStep(make_deployment("openai/gpt-oss-120b", "h200-sxm", "bf16"), factors)
    assert mxfp4.expert_weights_s == pytest.approx(bf16.expert_weights_s * 17 / 64)
    assert mxfp4.gemms == bf16.gemms  # attention and the head: 16-bit in both
    decode = Batch(tokens=1, sequences=1, sampled=1, pairs=1024, kv_read=1024)
    assert mxfp4.iteration_s(decode) < bf16.iteration_s(decode)


@pytest.mark.parametrize(("model", "gpu", "said"), [
    ("meta-llama/Llama-3.1-8B", "h100-sxm", "precision: mxfp4 stores a mixture's experts"),
    ("openai/gpt-oss-120b", "a100-sxm-80gb", "runs MXFP4 experts on Hopper and Blackwell GPUs, not the"),
])
def test_mxfp4_where_it_cannot_run_is_refused(model, gpu, said):
    with pytest.raises(SpecError, match=said):
        make_deployment(model, gpu, "mxfp4")


def test_a_checkpoint_shipping_mxfp4_experts_is_run_as_mxfp4(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**GPT_OSS_120B_CONFIG,
                                                      "quantization_config": {"quant_method": "mxfp4"}}))
    assert resolve_model("openai/gpt-oss-120b", config=tmp_path).checkpoint_quant == "mxfp4"
    with pytest.raises(SpecError, match="ships MXFP4 experts, which TensorRT-LLM loads as they are; use precision: "
                                        "mxfp4"):
        make_deployment("openai/gpt-oss-120b", "h100-sxm", "bf16", config=str(tmp_path))
    assert make_deployment("openai/gpt-oss-120b", "h100-sxm", "mxfp4", config=str(tmp_path)).arch.experts == 128


def test_mxfp4_through_trtllm_bench(cli, write_spec, tmp_path, fake_bench):
    """The PyTorch path loads the hub checkpoint by name (nothing to quantize); its report's W4A16_MXFP4 fits the
    mxfp4 label, and a bf16 label on the same checkpoint is caught."""
    spec = GPT_OSS_SPEC.replace("backend: sim", "backend: trtllm")
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 0, result.err
    rows = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert set(rows["status"]) == {"ok"} and set(rows["precision"]) == {"mxfp4"}
    argv = [json.loads(line)["argv"] for line in fake_bench.record.read_text().splitlines()]
    assert all("openai/gpt-oss-120b" in a and "--quantization" not in a for a in argv)
    bf16 = spec.replace("precision: mxfp4", "precision: bf16").replace("name: tiny", "name: bf16")
    assert cli("sweep", "--no-plots", str(write_spec(bf16, "bf16.yaml"))).code == 1  # every point invalid
    rows = pd.read_csv(tmp_path / "runs" / "bf16" / "results.csv")
    assert all("the report says quantization W4A16_MXFP4, the point is labelled 16-bit weights" in c
               for c in rows["cause"])


def test_the_engine_path_refuses_mxfp4(cli, write_spec, fake_bench):
    spec = GPT_OSS_SPEC.replace("backend: sim", "backend: trtllm") + "trtllm: {backend: tensorrt}\n"
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 2 and "precision: mxfp4 runs on TensorRT-LLM's PyTorch backend" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [("sweep", "--no-plots"), ("build", "--dry-run")])
def test_what_the_model_cannot_run_is_refused_before_any_backend_runs(cli, write_spec, fake_bench, command):
    """trtllm-bench would load the dense model and report 16-bit weights under the mxfp4 label; a grid axis is
    checked as the top-level value is. Nothing runs, nothing is recorded."""
    spec = SMALL_SPEC.replace("backend: sim", "backend: trtllm").replace(
        "precision: fp8\nkv_cache_dtype: fp8\n", "").replace("grid:\n", "grid:\n  precision: [bf16, mxfp4]\n")
    result = cli(*command, str(write_spec(spec)))
    assert result.code == 2 and result.err.strip() == ("trtbench: error: precision: mxfp4 stores a mixture's experts "
                                                       "in MXFP4 (gpt-oss's published format); Llama-3.1-8B has no "
                                                       "experts")
    assert not fake_bench.record.exists()


def test_a_model_the_catalog_lacks_is_left_to_the_run():
    """No deployment at all (no preset, no config) is not a refusal: trtllm-bench may know the model."""
    from trtbench.deployment import deployment_for, refuse_unsupported
    from trtbench.spec import parse_spec

    spec = parse_spec(SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "acme/unknown-7B"))
    with pytest.raises(SpecError, match="no architecture for model 'acme/unknown-7B'"):
        deployment_for(spec)
    refuse_unsupported(spec, [{}])  # returns: nothing it can judge
