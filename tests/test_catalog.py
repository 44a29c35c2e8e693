"""Catalog numbers must equal the hardware reference's, since every memory verdict rests on them."""

from __future__ import annotations

import json

import pytest

from trtbench.catalog.gpus import GPUS, resolve_gpu
from trtbench.catalog.models import PRESETS, find_preset, resolve_model
from trtbench.errors import SpecError

# (model, parameter count, BF16 KV bytes per token) from the reference's model table.
REFERENCE_MODELS = [
    ("Llama-3.1-8B", 8_030_261_248, 131_072),
    ("Llama-3.1-70B", 70_553_706_496, 327_680),
    ("Llama-3.2-1B", 1_235_814_400, 32_768),
    ("Llama-3.2-3B", 3_212_749_824, 114_688),
    ("Mistral-7B", 7_241_732_096, 131_072),
    ("Qwen2.5-7B", 7_615_616_512, 57_344),
]


@pytest.mark.parametrize(("name", "params", "kv_bf16"), REFERENCE_MODELS)
def test_presets_match_reference(name, params, kv_bf16):
    arch = PRESETS[name]
    assert arch.params == params
    assert arch.kv_bytes_per_token(2) == kv_bf16
    assert arch.kv_bytes_per_token(1) == kv_bf16 // 2


def test_kv_heads_split_across_tp_ranks():
    arch = PRESETS["Llama-3.1-70B"]
    assert arch.kv_bytes_per_token(2, tp=8) == 327_680 // 8
    assert arch.kv_bytes_per_token(2, tp=16) == arch.kv_bytes_per_token(2, tp=8)  # one head per rank at least


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("meta-llama/Llama-3.1-8B", "Llama-3.1-8B"),
        ("meta-llama/Meta-Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("nvidia/Llama-3.1-8B-Instruct-FP8", "Llama-3.1-8B"),
        ("meta-llama/Llama-3.3-70B-Instruct", "Llama-3.3-70B"),
        ("meta-llama/Meta-Llama-3-8B", "Llama-3-8B"),
        ("mistralai/Mistral-7B-v0.1", "Mistral-7B"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5-7B"),
    ],
)
def test_hf_names_resolve_to_presets(name, preset):
    found = find_preset(name)
    assert found is not None and found.name == preset


def test_unknown_model_needs_a_config():
    with pytest.raises(SpecError, match=r"model\.config"):
        resolve_model("acme/secret-13B")


def test_hf_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
    }))
    arch = resolve_model("acme/llama-clone", config=tmp_path)
    assert arch.params == PRESETS["Llama-3.1-8B"].params


@pytest.mark.parametrize(
    ("name", "gpu_id"),
    [
        ("h100-sxm", "h100-sxm"),
        ("H100-SXM-80GB", "h100-sxm"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("H200", "h200-sxm"),
        ("l40s", "l40s"),
    ],
)
def test_gpu_aliases(name, gpu_id):
    assert resolve_gpu(name).id == gpu_id


def test_unknown_gpu_lists_ids():
    with pytest.raises(SpecError) as info:
        resolve_gpu("Voodoo 5")
    assert all(gpu_id in str(info.value) for gpu_id in GPUS)


def test_gpu_figures_are_dense_and_from_the_reference():
    h100 = GPUS["h100-sxm"]
    assert (h100.bf16_tflops, h100.fp8_tflops, h100.mem_total_mib, h100.hbm_tb_s) == (989, 1979, 81559, 3.35)
    assert GPUS["a100-sxm-80gb"].peak_flops("fp8") == GPUS["a100-sxm-80gb"].peak_flops("bf16")  # no FP8 on Ampere


DENSE = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768}


@pytest.mark.parametrize(("extra", "named"), [
    ({"layer_types": ["linear_attention", "linear_attention", "full_attention"] * 10 + ["full_attention"] * 2},
     "layer_types (linear_attention layers)"),
    ({"full_attention_interval": 4, "linear_num_value_heads": 32}, "full_attention_interval (linear-attention"),
    ({"quantization_config": {"quant_method": "awq", "bits": 4}}, "quantization_config (awq weights"),
    ({"quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"}}, "quantization_config (nvfp4"),
])
def test_a_config_trtbench_does_not_model_is_refused_naming_the_field(tmp_path, extra, named):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    with pytest.raises(SpecError) as err:
        resolve_model("acme/moe", config=tmp_path)
    assert named in str(err.value) and "refusing" in str(err.value)


# Each family's rule for which of 32 layers are MoE, worked out by hand from its modelling code.
@pytest.mark.parametrize(("extra", "dense_layers"), [
    ({"n_routed_experts": 64, "num_experts_per_tok": 6, "moe_layer_freq": 2}, 16),  # DeepSeek: i % 2 == 0
    # layers 2, 4, ..., 30: 15 MoE
    ({"n_routed_experts": 64, "num_experts_per_tok": 6, "first_k_dense_replace": 1, "moe_layer_freq": 2}, 17),
    ({"num_experts": 60, "num_experts_per_tok": 4, "decoder_sparse_step": 2}, 16),  # Qwen-MoE: (i + 1) % 2 == 0
    ({"num_experts": 60, "num_experts_per_tok": 4, "mlp_only_layers": [3, 7]}, 2),
    ({"num_local_experts": 16, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2}, 16),  # Llama 4 Maverick
    ({"num_local_experts": 16, "num_experts_per_tok": 1, "moe_layers": [0, 5]}, 30),
])
def test_moe_layers_by_each_familys_rule(tmp_path, extra, dense_layers):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    arch = resolve_model("acme/moe", config=tmp_path)
    assert (arch.dense_layers, arch.moe_layers) == (dense_layers, 32 - dense_layers)


@pytest.mark.parametrize(("extra", "sliding"), [
    ({"layer_types": ["sliding_attention", "full_attention"] * 16, "sliding_window": 128}, 16),  # gpt-oss
    ({"sliding_window": 4096, "model_type": "mistral"}, 32),  # Mistral-7B-v0.1: every layer
    ({"sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 28}, 4),  # Qwen2: layers 28-31
    ({"sliding_window": 1024, "sliding_window_pattern": 6, "model_type": "gemma3_text"}, 27),  # 5, 11, ... full
])
def test_sliding_window_layers(tmp_path, extra, sliding):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    arch = resolve_model("acme/swa", config=tmp_path)
    assert (arch.sliding_layers, arch.sliding_window) == (sliding, extra["sliding_window"])


@pytest.mark.parametrize(("extra", "said"), [
    ({"layer_types": ["sliding_attention"] * 3, "sliding_window": 128}, "layer_types lists 3 layers"),
    ({"text_config": DENSE}, "without a vision_config"),
    # Gemma 2 alternates sliding and full layers by code, not by its config: not guessed
    ({"sliding_window": 4096, "model_type": "gemma2"}, "sliding_window \\(4096\\) without layer_types"),
    ({"num_local_experts": 8, "num_experts_per_tok": 2, "moe_layers": [99]}, "leave no MoE layer"),
])
def test_inconsistent_configs_are_one_line(tmp_path, extra, said):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    with pytest.raises(SpecError, match=said):
        resolve_model("acme/x", config=tmp_path)


@pytest.mark.parametrize("extra", [
    {"sliding_window": 131072, "use_sliding_window": False},  # Qwen2.5's config: the window is off
    {"sliding_window": None, "num_experts": 0},
    {"layer_types": ["full_attention"] * 32},
    {"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}},  # DeepSeek-V3's
    {"quantization_config": {"quant_method": "modelopt", "quant_algo": "FP8"}},
])
def test_dense_configs_with_such_keys_still_load(tmp_path, extra):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    assert resolve_model("acme/dense", config=tmp_path).layers == 32


@pytest.mark.parametrize(("extra", "said"), [
    ({"sliding_window": "4096", "model_type": "mistral"}, "sliding_window must be a whole number"),
    ({"layer_types": ["sliding_attention", "full_attention"] * 16}, "sliding_window is missing"),
    ({"attention_chunk_size": 8192, "no_rope_layers": [1, 0]}, "no_rope_layers must list one 0 or 1 per layer"),
])
def test_malformed_window_fields_are_one_line(tmp_path, extra, said):
    (tmp_path / "config.json").write_text(json.dumps({**DENSE, **extra}))
    with pytest.raises(SpecError, match=said):
        resolve_model("acme/x", config=tmp_path)
