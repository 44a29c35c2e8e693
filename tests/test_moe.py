"""Mixtures of experts: parameters against the published totals, memory per GPU, and the step model reading the
experts a batch touches."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC
from trtbench.catalog.models import PRESETS, expected_experts, resolve_model
from trtbench.deployment import make_deployment
from trtbench.records import Status
from trtbench.sim import calibration
from trtbench.sim.comm import allreduce_s, gather_s
from trtbench.sim.estimate import PerformanceModel
from trtbench.sim.ifb import IfbModel
from trtbench.sim.memory import plan_memory
from trtbench.sim.predict import predict_point
from trtbench.sim.steptime import AnalyticStep, Batch

MIXTRAL_CONFIG = {  # mistralai/Mixtral-8x7B-v0.1 config.json, the fields that size it
    "architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "max_position_embeddings": 32768, "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": None,
    "tie_word_embeddings": False,
}
QWEN3_MOE_CONFIG = {  # Qwen/Qwen3-30B-A3B config.json
    "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
    "vocab_size": 151936, "max_position_embeddings": 40960, "num_experts": 128, "num_experts_per_tok": 8,
    "moe_intermediate_size": 768, "decoder_sparse_step": 1, "mlp_only_layers": [], "sliding_window": None,
    "use_sliding_window": False, "tie_word_embeddings": False,
}


GPT_OSS_120B_CONFIG = {  # openai/gpt-oss-120b config.json, less its quantization_config (tests/test_mxfp4.py)
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
    "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
    "vocab_size": 201088, "max_position_embeddings": 131072, "num_local_experts": 128, "num_experts_per_tok": 4,
    "experts_per_token": 4, "sliding_window": 128, "attention_bias": True, "tie_word_embeddings": False,
    "layer_types": ["sliding_attention", "full_attention"] * 18, "initial_context_length": 4096,
}
SCOUT_CONFIG = {  # meta-llama/Llama-4-Scout-17B-16E-Instruct config.json, the fields that size it
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "tie_word_embeddings": False,
    "text_config": {
        "model_type": "llama4_text", "attention_chunk_size": 8192, "head_dim": 128, "hidden_size": 5120,
        "intermediate_size": 8192, "intermediate_size_mlp": 16384, "interleave_moe_layer_step": 1,
        "max_position_embeddings": 10485760, "no_rope_layers": [1, 1, 1, 0] * 12, "num_attention_heads": 40,
        "num_experts_per_tok": 1, "num_hidden_layers": 48, "num_key_value_heads": 8, "num_local_experts": 16,
        "vocab_size": 202048, "attention_bias": False,
    },
    "vision_config": {"model_type": "llama4_vision_model", "hidden_size": 1408, "intermediate_size": 5632,
                      "num_hidden_layers": 34, "num_attention_heads": 16, "patch_size": 14},
}


# (preset, its config.json, published total, how close, published active, whether that counts the embedding)
@pytest.mark.parametrize(("preset", "config", "total", "rel", "active", "embedding"), [
    # Mistral AI: "46.7B total parameters but only uses 12.9B parameters per token"
    ("Mixtral-8x7B", MIXTRAL_CONFIG, 46.7e9, 0.005, 12.9e9, True),
    # Qwen3-30B-A3B model card: "30.5B in total and 3.3B activated"
    ("Qwen3-30B-A3B", QWEN3_MOE_CONFIG, 30.5e9, 0.005, 3.3e9, True),
    # OpenAI's model card: 116.83B total, 5.13B active (counting the unembedding but not the embedding lookup)
    ("gpt-oss-120b", GPT_OSS_120B_CONFIG, 116.83e9, 0.01, 5.13e9, False),
    # Meta: "17B active parameters, 109B total" (text and vision)
    ("Llama-4-Scout-17B-16E", SCOUT_CONFIG, 109e9, 0.01, 17e9, True),
])
def test_parameters_match_the_published_totals(tmp_path, preset, config, total, rel, active, embedding):
    (tmp_path / "config.json").write_text(json.dumps(config))
    arch = resolve_model("x", config=tmp_path)
    assert arch == dataclasses.replace(PRESETS[preset], name="x")  # the preset, read back from its config
    assert arch.params == pytest.approx(total, rel=rel)
    counted = arch.active_params + arch.lm_head_params + (arch.embedding_params if embedding else 0)
    assert counted == pytest.approx(active, rel=0.02)
    assert "active per token" in arch.describe()


def test_expected_experts_by_hand():
    """8 experts, top-2: one token touches 2; two tokens 8 x (1 - (6/8)^2) = 3.5; a large batch all 8."""
    assert expected_experts(1, 8, 2) == pytest.approx(2)
    assert expected_experts(2, 8, 2) == pytest.approx(3.5)
    assert expected_experts(4096, 8, 2) == pytest.approx(8)
    assert expected_experts(5, 0, 0) == 0


def test_mixtral_fp16_does_not_fit_one_h100_and_fp8_holds_44_gib():
    """FP8: per layer attention 2 x 4096^2 + 2 x 4096 x 1024 + 2 x 4096 = 41,951,232, experts
    8 x 3 x 4096 x 14336 = 1,409,286,144; x 32 layers + final norm = 46,439,600,128 bytes, plus what ModelOpt
    leaves 16-bit: the routers 2 x 32 x 4096 x 8 = 2,097,152 and the embedding and head 2 x 2 x 32000 x 4096 =
    524,288,000: 46,965,985,280 B = 43.74 GiB. FP16 doubles the layers: 87.0 GiB, more than the H100's 80 GB."""
    fp8 = plan_memory(make_deployment("mistralai/Mixtral-8x7B-v0.1", "h100-sxm", "fp8"), 1024, 1024)
    assert fp8.verdict is Status.OK and fp8.weights_gib == pytest.approx(43.74, abs=0.01)
    fp16 = plan_memory(make_deployment("mistralai/Mixtral-8x7B-v0.1", "h100-sxm", "fp16"), 1024, 1024)
    assert fp16.verdict is Status.OOM and "87.0 GiB of weights" in fp16.cause


def _decode(tokens: int) -> Batch:
    return Batch(tokens=tokens, sequences=tokens, sampled=tokens, pairs=tokens * 1024, kv_read=tokens * 1024)


def test_a_decode_step_reads_the_experts_its_tokens_touch():
    """Mixtral and Mistral-7B share attention, vocabulary and FFN shape, so a Mixtral decode step costs the
    dense step with its FFN (32 layers x 3 x 4096 x 14336 FP8 bytes = 5.637 GB at 3.35 TB/s x the fitted eta_mem)
    swapped for the experts it reads, each as large, streamed by the grouped GEMM at eta_moe of that rate: one
    token touches 2 experts, 64 tokens all 8."""
    factors = calibration.load()[0]
    mixtral = AnalyticStep(make_deployment("mistralai/Mixtral-8x7B-v0.1", "h100-sxm", "fp8"), factors)
    dense = AnalyticStep(make_deployment("mistralai/Mistral-7B-v0.3", "h100-sxm", "fp8"), factors)
    one_expert_s = 32 * 3 * 4096 * 14336 / (3.35e12 * factors.eta_mem)
    for tokens, touched in ((1, 2), (64, 8)):
        extra = mixtral.iteration_s(_decode(tokens)) - dense.iteration_s(_decode(tokens))
        assert extra == pytest.approx((touched / factors.eta_moe - 1) * one_expert_s, rel=0.01), tokens


def test_mixtral_runs_slower_than_a_dense_model_of_its_attention_and_expert_size(cli, write_spec, tmp_path):
    perf: PerformanceModel = IfbModel()
    out = {}
    for name in ("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mistral-7B-v0.3"):
        outcome = predict_point(make_deployment(name, "h100-sxm", "fp8"), perf, 1024, 1024, 1000)
        assert outcome.status is Status.OK
        out[name] = outcome.metrics.output_tok_per_s
    assert out["mistralai/Mixtral-8x7B-v0.1"] < out["mistralai/Mistral-7B-v0.3"]
    spec = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "mistralai/Mixtral-8x7B-v0.1").replace(
        "precision: fp8\n", "").replace("grid:\n", "grid:\n  precision: [fp16, fp8]\n").replace(
        "isl: [128, 2048]", "isl: [1024]").replace("osl: [128, 1024]", "osl: [1024]")
    result = cli("plan", str(write_spec(spec)))
    text = " ".join(result.out.split())  # the table is on stdout
    assert result.code == 0 and "oom" in text and "ok" in text
    assert "46.7B parameters, 12.9B active per token (8 experts, top-2)" in text
    assert cli("sweep", "--no-plots", str(write_spec(spec))).code == 0
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "This sweep is inside its calibration: out-of-sample error about" in report  # Mixtral rows are fitted


@pytest.mark.slow
@pytest.mark.modelopt
def test_modelopt_quantizes_a_mixture_of_experts_with_its_routers_left_16_bit(cli, write_spec, tmp_path,
                                                                            monkeypatch):
    """The real ModelOpt on a tiny random Mixtral (4 experts, top-2) on CPU: every expert's projections FP8,
    the routers bf16 and listed as excluded, as ModelOpt exports MoE checkpoints for TensorRT-LLM."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from safetensors import torch as safetensors_torch

    from tests.test_quantize import only_artifact, spec_text, tiny_tokenizer  # imports torch: here, not at collection

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "tiny-mixtral"
    torch.manual_seed(0)
    config = transformers.MixtralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                        max_position_embeddings=256, num_local_experts=4, num_experts_per_tok=2)
    transformers.MixtralForCausalLM(config).to(torch.bfloat16).save_pretrained(model)
    tiny_tokenizer(model)
    result = cli("build", str(write_spec(spec_text(model).replace("tiny/llama", "tiny/mixtral"))))
    assert result.code == 0, result.err
    export = only_artifact(tmp_path / "engines") / "model"
    excluded = json.loads((export / "hf_quant_config.json").read_text())["quantization"]["exclude_modules"]
    assert sorted(excluded) == ["lm_head", "model.embed_tokens", "model.layers.0.block_sparse_moe.gate",
                                "model.layers.1.block_sparse_moe.gate"]
    tensors = safetensors_torch.load_file(export / "model.safetensors")
    for layer in range(2):
        moe = f"model.layers.{layer}.block_sparse_moe"
        assert tensors[f"{moe}.gate.weight"].dtype == torch.bfloat16
        for expert in range(4):
            for w in ("w1", "w2", "w3"):
                assert tensors[f"{moe}.experts.{expert}.{w}.weight"].dtype == torch.float8_e4m3fn
                assert tensors[f"{moe}.experts.{expert}.{w}.weight_scale"].item() > 0


def test_expert_parallelism_without_attention_dp_keeps_the_ffn_all_reduce():
    """Mixtral at TP2 on H100, EP1 and EP2: every TP rank holds every token either way, runs its own experts (a
    slice of each, or whole ones) on them, and the partial outputs meet in the FFN all-reduce (TensorRT-LLM's fused
    MoE: reducescatter_or_allreduce), so both all-reduce the 8 KiB hidden state (4096 x 2 bytes) twice in each of
    the 32 layers, and no token is dispatched. EP changes the experts' share, not the communication."""
    factors = calibration.load()[0]
    base = make_deployment("mistralai/Mixtral-8x7B-v0.1", "h100-sxm", "fp8", tp=2)
    ep1 = AnalyticStep(base, factors)
    ep2 = AnalyticStep(base.__class__(**{**base.__dict__, "ep": 2}), factors)
    assert ep1.comms == ep2.comms == [(64, allreduce_s, 2, 8192)]


def test_attention_dp_gathers_the_quantized_tokens_and_reduce_scatters_the_outputs_in_every_moe_layer():
    """Qwen3-235B FP8 DEP4 on H200, 100 tokens on each rank. TensorRT-LLM's fused MoE all-gathers every rank's
    tokens: 4 x 100 x (4096 FP8 bytes + 8 experts x 8 bytes of id and weight) = 1,664,000 bytes, and
    reduce-scatters the 16-bit outputs: 4 x 100 x 4096 x 2 = 3,276,800 bytes. Hopper's measured all-gather /
    reduce-scatter curve (1.14 us, 248 GB/s, half at 2.9 MB): 1.14 + 0.75 x 4,564,000 / 248,000 = 14.942 us and
    1.14 + 0.75 x 6,176,800 / 248,000 = 19.820 us; 94 MoE layers: 3.268 ms a step, and no all-reduce."""
    step = AnalyticStep(make_deployment("Qwen/Qwen3-235B-A22B", "h200-sxm", "fp8", tp=4, attention_dp=True),
                        calibration.load()[0])
    comm_s = sum(calls * cost(step.gpu, ranks, 100 * per_token) for calls, cost, ranks, per_token in step.comms)
    assert comm_s == pytest.approx(94 * (14.942e-6 + 19.820e-6), rel=1e-4)
    assert {cost for _, cost, _, _ in step.comms} == {gather_s}


EP_SPEC = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "mistralai/Mixtral-8x7B-v0.1").replace(
    "isl: [128, 2048]", "isl: [1024]").replace("osl: [128, 1024]", "osl: [1024]") + "tp: 2\n"


def test_ep_is_an_axis_passed_to_trtllm_bench(cli, write_spec, tmp_path, fake_bench):
    spec = EP_SPEC.replace("grid:\n", "grid:\n  ep: [1, 2]\n")
    assert cli("sweep", "--no-plots", str(write_spec(spec))).code == 0
    df = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert df["ep"].tolist() == [1, 2] and (df["status"] == "ok").all()
    measured = spec.replace("backend: sim", "backend: trtllm").replace("name: tiny", "name: real") \
        + "build: {checkpoint: mistralai/Mixtral-8x7B-Instruct-FP8}\n"
    result = cli("sweep", "--no-plots", str(write_spec(measured)))
    assert result.code == 0, result.err
    argvs = [r["argv"] for r in fake_bench.printed()]  # the fake takes 1.1.0's own options: --ep is one
    assert sorted(a[a.index("--ep") + 1] for a in argvs) == ["1", "2"]


@pytest.mark.parametrize(("spec", "said"), [
    (EP_SPEC.replace("mistralai/Mixtral-8x7B-v0.1", "meta-llama/Llama-3.1-8B") + "ep: 2\n",
     "expert parallelism needs a mixture of experts"),
    (EP_SPEC + "ep: 4\n", "ep 4 does not divide tp 2"),
])
def test_impossible_expert_parallelism_is_one_line(cli, write_spec, spec, said):
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 2 and said in result.err and len(result.err.splitlines()) == 1


DEEPSEEK_V3_CONFIG = {  # deepseek-ai/DeepSeek-V3 config.json, the fields that size it
    "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168, "intermediate_size": 18432,
    "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
    "vocab_size": 129280, "max_position_embeddings": 163840, "n_routed_experts": 256, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1, "kv_lora_rank": 512,
    "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
    "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
}


def test_deepseek_v3_is_sized_with_latent_attention_and_its_real_weights(tmp_path):
    """DeepSeek's report: 671B parameters, 37B activated per token. The KV cache holds one 512-wide latent and
    one 64-wide RoPE key per layer, whole on every rank: 61 x 576 = 35,136 bytes per token at FP8, the same
    at TP8. FP8 at TP8: (669,173,046,272 layer parameters - 106,430,464 router ones) x 1 B + (routers + the
    1,853,358,080 embedding and head parameters) x 2 B = 672,986,192,896 B, 78.35 GiB per GPU: more than
    an H100 leaves after CUDA context and buffers, well within an H200."""
    (tmp_path / "config.json").write_text(json.dumps(DEEPSEEK_V3_CONFIG))
    arch = resolve_model("deepseek-ai/DeepSeek-V3", config=tmp_path)
    assert arch == dataclasses.replace(PRESETS["DeepSeek-V3"], name="deepseek-ai/DeepSeek-V3")
    assert arch.params == pytest.approx(671e9, rel=0.005)
    assert arch.active_params + arch.embedding_params + arch.lm_head_params == pytest.approx(37e9, rel=0.02)
    assert arch.kv_bytes_per_token(1, tp=1) == arch.kv_bytes_per_token(1, tp=8) == 35_136
    h100 = plan_memory(make_deployment("deepseek-ai/DeepSeek-V3", "h100-sxm", "fp8", tp=8), 1024, 1024)
    h200 = plan_memory(make_deployment("deepseek-ai/DeepSeek-V3", "h200-sxm", "fp8", tp=8), 1024, 1024)
    assert h100.weights_gib == pytest.approx(78.35, abs=0.01) and h100.verdict is Status.OOM
    assert h200.verdict is Status.OK and h200.kv_tokens > 100_000


def test_latent_attention_reads_the_latent_not_per_head_keys():
    """A decode step's KV read per cached token: DeepSeek-V3 35,136 B (above), where 128 heads of 128-wide
    keys and values would read 61 x 2 x 128 x 128 = 1,998,848 B at TP1; at 8,192 cached tokens the latent
    cache's read time is 35,136 / 1,998,848 of a per-head cache's."""
    factors = calibration.load()[0]
    mla = AnalyticStep(make_deployment("deepseek-ai/DeepSeek-V3", "h200-sxm", "fp8", tp=8), factors)
    assert mla.kv_s_per_token == pytest.approx(35_136 / (4.8e12 * factors.eta_kv))


def test_mxfp4_experts_on_hopper_compute_below_the_16_bit_rate():
    # triton_kernels' Hopper MXFP4 x BF16 matmul reaches at most 1 - 0.257 of a dense 16-bit GEMM at large M
    # (triton-lang/triton#11361): per (token, expert) pair, 1 / 0.743 = 1.346x the time of 16-bit experts on the
    # same GPU; Blackwell and every other format run at their dense rate
    factors, _ = calibration.load()

    def per_pair(precision: str, gpu: str) -> float:
        return AnalyticStep(make_deployment("gpt-oss-120b", gpu, precision, tp=2), factors).expert_s_per_pair

    assert per_pair("mxfp4", "h200-sxm") / per_pair("bf16", "h200-sxm") == pytest.approx(1.346, abs=1e-3)
    assert make_deployment("gpt-oss-120b", "b200", "mxfp4", tp=2).gpu.expert_gemm_factor("mxfp4") == 1.0
    assert make_deployment("gpt-oss-120b", "h100-sxm", "fp8", tp=2).gpu.expert_gemm_factor("fp8") == 1.0


def test_routing_moves_every_token_on_every_tp_rank():
    # Mixtral FP8 at TP8 on H100, 4,000 decode tokens, no EP: each rank permutes every token to its 2 experts
    # (read 2 B, write 1 B a pair per hidden value) and finalizes them (read 2 B a pair, write 2 B a token):
    # 32 layers x 4096 x (4,000 x 4 + 8,000 x 3) B = 5.24 GB at 3.35 TB/s x the fitted weight-streaming
    # efficiency: about 1.93 ms, the same at TP1 (TP splits the experts' widths, not the tokens)
    factors, _ = calibration.load()

    def route_s(tp: int) -> float:
        step = AnalyticStep(make_deployment("Mixtral-8x7B", "h100-sxm", "fp8", tp=tp), factors)
        return step.route_s_per_token * 4000 + step.route_s_per_pair * 8000

    assert route_s(8) == pytest.approx(5.243e9 / (3.35e12 * factors.eta_mem), rel=1e-3)
    assert route_s(8) == route_s(1)
