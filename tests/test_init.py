"""`trtbench init`: a first spec for a model that `plan` accepts, fitted to a GPU-hour budget, never written over a
file."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import load_fake_nvml
from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import resolve_model
from trtbench.errors import StoreError, TrtbenchError
from trtbench.files import create_new
from trtbench.starter import LENGTH_LADDER, SEED_LENGTHS, choose, ladder

LLAMA_8B = "meta-llama/Llama-3.1-8B"
UNITS_H = {"h": 1.0, "min": 1 / 60, "s": 1 / 3600}


def _wall_hours(plan_out: str) -> float:
    """`plan`'s predicted wall time one point at a time, in hours."""
    match = re.search(r"one at a time ([\d,.]+) (h|min|s)\b", plan_out)
    assert match, plan_out
    return float(match[1].replace(",", "")) * UNITS_H[match[2]]


@pytest.mark.heavy  # simulates whole grids: seconds
def test_llama_8b_on_an_h100_in_8_gpu_hours_gives_a_spec_plan_accepts_within_8_hours(cli, tmp_path):
    result = cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm", "--budget-gpu-hours", "8")
    assert result.code == 0, result.err
    spec = tmp_path / "Llama-3.1-8B.yaml"
    text = spec.read_text()
    data = yaml.safe_load(text)
    assert data["model"] == {"name": LLAMA_8B} and data["gpu"] == "h100-sxm"
    assert (data["precision"], data["kv_cache_dtype"]) == ("fp8", "fp8")  # Hopper: FP8 tensor cores
    assert data["runtime"]["timeout_s"] == 1800
    # The seed study's grid is predicted at 10.3 h (plan of sweeps/h100_grid.yaml): over the budget, so it shrank
    seed = data["grid"]["isl"] == list(SEED_LENGTHS) and data["requests"]["default"]["budget_tokens"] == 6_000_000
    assert not seed
    assert text.startswith("# Written by `trtbench init`") and "fits 8 GPU-hours" in text
    # what init printed is plan's own summary of the file
    assert "wrote Llama-3.1-8B.yaml" in result.out and "predicted wall time (simulated" in result.out
    planned = cli("plan", str(spec))
    assert planned.code == 0, planned.err
    assert _wall_hours(planned.out) <= 8.0
    assert re.search(r"predicted \(simulated\): (\d+) points: \1 ok", planned.out), planned.out


@pytest.mark.heavy  # simulates whole grids: seconds
def test_without_a_budget_it_is_the_seed_studys_grid(cli, tmp_path):
    result = cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm", "--out", "seed.yaml")
    assert result.code == 0, result.err
    data = yaml.safe_load((tmp_path / "seed.yaml").read_text())
    assert data["grid"] == {"isl": list(SEED_LENGTHS), "osl": list(SEED_LENGTHS)}  # 128 ... 16384: 8 x 8
    assert data["tp"] == 1
    assert data["requests"]["default"] == {"budget_tokens": 6_000_000, "min": 200, "max": 30_000}
    assert "64 points" in result.out


def test_it_never_overwrites_a_file(cli, tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("name: mine\n")
    result = cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm", "--out", "mine.yaml")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "mine.yaml exists" in result.err
    assert target.read_text() == "name: mine\n"


def test_a_link_in_its_place_is_refused_and_its_target_untouched(cli, tmp_path, sentinel):
    (tmp_path / "Llama-3.1-8B.yaml").symlink_to(sentinel / "precious.txt")
    result = cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm")
    assert result.code == 2 and "exists" in result.err
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    assert cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm", "--out", "dangling.yaml").code == 2
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.heavy  # simulates whole grids: seconds
def test_an_ampere_gpu_gets_bf16_and_a_16_bit_kv_cache(cli, tmp_path):
    result = cli("init", "--model", LLAMA_8B, "--gpu", "a100-sxm-40gb", "--budget-gpu-hours", "20")
    assert result.code == 0, result.err
    data = yaml.safe_load((tmp_path / "Llama-3.1-8B.yaml").read_text())
    assert (data["precision"], data["kv_cache_dtype"]) == ("bf16", "auto")


@pytest.mark.heavy  # simulates whole grids: seconds
def test_deepseek_r1_fits_an_h200_node_at_tp8_only_and_no_h100_node():
    """FP8 weights ~671e9 bytes: 78 GiB a GPU at TP8, 156 GiB at TP4; an H200 holds 140 GiB, an H100 79.6 GiB."""
    starter = choose("deepseek-ai/DeepSeek-R1", None, resolve_gpu("h200-sxm"), "given", None)
    assert starter.fitting_tps == (8,) and starter.grid.tps == (8,)
    with pytest.raises(TrtbenchError, match="does not fit on up to 8 x H100"):
        choose("deepseek-ai/DeepSeek-R1", None, resolve_gpu("h100-sxm"), "given", None)


@pytest.mark.heavy  # simulates whole grids: seconds
def test_a_config_json_model_gets_its_config_in_the_spec(cli, tmp_path):
    config = tmp_path / "my-model" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({  # Llama-3.2-1B's shape
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
        "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": 64, "vocab_size": 128256, "tie_word_embeddings": True, "max_position_embeddings": 4096}))
    result = cli("init", "--config", str(config), "--gpu", "h100-sxm", "--budget-gpu-hours", "4")
    assert result.code == 0, result.err
    data = yaml.safe_load((tmp_path / "my-model.yaml").read_text())
    assert data["model"] == {"name": "my-model", "config": str(config)}
    # a 4,096-token context: lengths whose ISL + OSL can exceed it are left out
    assert max(data["grid"]["isl"]) * 2 <= 4096
    assert cli("plan", "my-model.yaml").code == 0


def test_gpu_auto_without_nvml_is_one_line(cli):
    result = cli("init", "--model", LLAMA_8B)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--gpu auto: NVML sees no GPU" in result.err


@pytest.mark.heavy  # simulates whole grids: seconds
def test_a_budget_below_the_smallest_grid_is_one_line(cli, tmp_path):
    result = cli("init", "--model", LLAMA_8B, "--gpu", "h100-sxm", "--budget-gpu-hours", "0.01")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "even the smallest grid" in result.err
    assert not list(tmp_path.glob("*.yaml"))


def test_the_ladder_keeps_the_span_and_tries_two_tp_sizes_before_one():
    arch = resolve_model(LLAMA_8B)
    grids = list(ladder(arch, (1, 2, 4, 8)))
    assert grids[0].tps == (1, 2) and grids[1].tps == (1,) and grids[0].lengths == SEED_LENGTHS
    assert grids[0].budget_tokens == 6_000_000 and grids[2].budget_tokens == 3_000_000
    assert [g.lengths for g in grids[::8]] == list(LENGTH_LADDER)  # 4 token budgets x 2 TP options a grid
    assert all(g.lengths[0] == 128 for g in grids)


@pytest.mark.heavy  # simulates whole grids: seconds
def test_gpu_auto_takes_the_gpu_nvml_sees_and_no_more_gpus_than_it_has(cli, tmp_path, monkeypatch):
    load_fake_nvml(monkeypatch)
    monkeypatch.setenv("FAKE_NVML_DEVICES", json.dumps(["GPU-a", "GPU-b"]))  # two GPUs: TP 1 and 2 at most
    result = cli("init", "--model", LLAMA_8B, "--out", "auto.yaml")
    assert result.code == 0, result.err
    text = (tmp_path / "auto.yaml").read_text()
    assert yaml.safe_load(text)["gpu"] == "h100-sxm"
    assert "(h100-sxm, NVML)" in text and "fits at on one h100-sxm node (simulated memory at ISL/OSL 128/128): 1, 2;" \
        in text


def test_create_new_writes_once_and_never_over_anything(tmp_path, sentinel):
    create_new(tmp_path / "a.yaml", "first\n")
    assert (tmp_path / "a.yaml").read_text() == "first\n"
    with pytest.raises(StoreError, match=r"a\.yaml: File exists"):
        create_new(tmp_path / "a.yaml", "second\n")
    assert (tmp_path / "a.yaml").read_text() == "first\n"
    (tmp_path / "b.yaml").symlink_to(sentinel / "precious.txt")  # a link: refused, its target left alone
    with pytest.raises(StoreError, match=r"b\.yaml: File exists"):
        create_new(tmp_path / "b.yaml", "x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml"]  # no temporary file left
