"""`--dry-run` commands follow the reference's argument rules for each era."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from tests.conftest import TRTLLM_SPEC


def dry_run(cli, write_spec, text: str) -> list[list[str]]:
    result = cli("sweep", "--no-plots", str(write_spec(text)), "--dry-run")
    assert result.code == 0, result.err
    return [shlex.split(line) for line in result.out.splitlines()]


def test_engine_run_on_0_12(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("0.12.0")
    text = TRTLLM_SPEC.replace("model: meta-llama/Llama-3.1-8B",
                               "model: {name: meta-llama/Llama-3.1-8B, path: /models/l8b}")
    commands = dry_run(cli, write_spec, text + "trtllm: {engine_dir: /engines/e, workspace: /ws}\n")
    assert len(commands) == 4
    args = commands[0]
    sub = args.index("throughput")
    # 0.12's group options are --model and --workspace alone (its bench.py, tests/data 0.12 'absent')
    assert args[1:sub] == ["--model", "meta-llama/Llama-3.1-8B", "--workspace", "/ws"]
    after = args[sub:]
    assert after[after.index("--engine_dir") + 1] == "/engines/e"
    assert "--dataset" in after and after[after.index("--num_requests") + 1] == "100"
    for absent in ("--backend", "--report_json", "--eos_id", "--tp", "--extra_llm_api_options", "--streaming"):
        assert absent not in args
    assert after[after.index("--dataset") + 1].endswith("_logits_eosnone.jsonl")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()  # nothing written


def test_pytorch_run_on_1_x(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("1.1.0")
    text = TRTLLM_SPEC + ("runtime: {concurrency: 64, max_batch_size: 512, max_num_tokens: 8192}\n"
                          "trtllm: {streaming: true, extra_llm_api_options: {kv_cache_config: {enable_block_reuse: "
                          "false}}}\n")
    args = dry_run(cli, write_spec, text)[0]
    sub = args.index("throughput")
    assert args[1:sub] == ["--model", "nvidia/Llama-3.1-8B-FP8", "--log_level", "info"]  # the FP8 checkpoint
    flags = args[sub:]

    def value(flag: str) -> str:
        return flags[flags.index(flag) + 1]

    assert value("--backend") == "pytorch" and "--engine_dir" not in flags
    assert value("--eos_id") == "-1" and (value("--tp"), value("--pp")) == ("1", "1")
    assert value("--concurrency") == "64" and value("--max_batch_size") == "512"
    assert value("--max_num_tokens") == "8192" and "--streaming" in flags
    assert value("--report_json").endswith(".report.json")
    assert value("--kv_cache_free_gpu_mem_fraction") == "0.9"
    options_file = value("--extra_llm_api_options")
    assert Path(options_file).name.startswith("llm_api_options-") and options_file.endswith(".yaml")


def test_options_yaml_by_era(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("1.1.0")
    text = TRTLLM_SPEC + "trtllm: {extra_llm_api_options: {kv_cache_config: {enable_block_reuse: false}}}\n"
    assert cli("sweep", "--no-plots", str(write_spec(text))).code == 0
    (options_file,) = (tmp_path / "runs" / "tiny").glob("llm_api_options-*.yaml")
    options = yaml.safe_load(options_file.read_text())
    assert options["kv_cache_config"] == {"dtype": "fp8", "free_gpu_memory_fraction": 0.9, "enable_block_reuse": False}
    assert options["cuda_graph_config"]["enable_padding"] is True
    # NVIDIA's perf-overview llm_options.yml, copied from the doc (powers of two to 8192, and 384)
    assert options["cuda_graph_config"]["batch_sizes"] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048,
                                                          4096, 8192]

    fake_bench.version("0.18.0")
    spec = write_spec(TRTLLM_SPEC + "trtllm: {backend: pytorch}\n")
    assert cli("sweep", "--no-plots", str(spec), "--fresh").code == 0
    (old_file,) = (tmp_path / "runs" / "tiny-2").glob("llm_api_options-*.yaml")
    old = yaml.safe_load(old_file.read_text())
    assert old == {"pytorch_backend_config": {"kv_cache_dtype": "fp8"}}


def test_1_x_engine_run_names_the_tensorrt_backend(cli, write_spec, fake_bench):
    fake_bench.version("1.0.0")
    args = dry_run(cli, write_spec, TRTLLM_SPEC + "trtllm: {engine_dir: /e}\n")[0]
    flags = args[args.index("throughput"):]
    assert flags[flags.index("--backend") + 1] == "tensorrt" and "--extra_llm_api_options" not in flags


def test_sim_dry_run_lists_points(cli, write_spec):
    result = cli("sweep", "--no-plots", str(write_spec()), "--dry-run")
    assert result.code == 0 and result.out.count("sim runs no command") == 4


def test_ignored_settings_are_said(cli, write_spec, fake_bench):
    fake_bench.version("0.16.0")
    spec = write_spec(TRTLLM_SPEC + "runtime: {concurrency: 8}\ntrtllm: {engine_dir: /e}\n")
    result = cli("sweep", str(spec), "--dry-run")
    assert "ignored: runtime.concurrency needs 0.17+" in result.err.replace("\n", " ")
