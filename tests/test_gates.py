"""Each release gate of version.py against the evidence tests/data keeps for it (`gates`, the option sets and
`absent` lists read from NVIDIA's source), and every release's dry run against that evidence: a flag no source
shows for a release, or an LLM-API key its config classes refuse, fails here if it comes back."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TRTLLM_SPEC
from tests.fakes import clidata
from tests.test_releases import SMOKE, _argv, _modes, _spec
from trtbench.backends.trtllm.command import llm_api_options
from trtbench.backends.trtllm.version import TrtllmVersion

DATA = clidata._data()
GATES = DATA["gates"]
RELEASES = clidata.releases()


def _key(release: str) -> tuple[int, int]:
    major, minor = release.split(".")
    return int(major), int(minor)


def _names(options: list[dict]) -> set[str]:
    return {o["names"][0] for o in options}


def test_every_gate_in_the_data_is_one_of_version_py():
    assert {g for g in GATES if g != "about"} <= set(dir(TrtllmVersion))


@pytest.mark.parametrize("release", RELEASES)
def test_each_gate_follows_its_evidence(release):
    rel = clidata.release(release)
    v = TrtllmVersion.parse(rel["version"])
    global_options, throughput = _names(rel["global"]), _names(rel["commands"]["throughput"])
    model_path = GATES["has_model_path"]
    assert v.has_model_path is (_key(release) >= _key(model_path["since"]))
    assert v.has_model_path is ("--model_path" in global_options and release not in model_path["unproven"])
    assert v.has_ep is ("--ep" in throughput)
    assert v.has_report_json is ("--report_json" in throughput) is rel["report_json"]
    assert v.applies_runtime_max_num_tokens is ("runtime_max_tokens_is_max_bs" not in rel["rules"])
    log = GATES["log_level_evidence"]
    expected = ("shown" if _key(release) >= _key(log["shown_since"]) else
                "absent" if release in log["absent"] else "unproven" if release in log["unproven"] else None)
    assert v.log_level_evidence == expected
    assert "--log_level" in global_options or v.log_level_evidence == "absent"
    assert release in GATES["kv_yaml_style"].get(v.kv_yaml_style, []) or not v.has_extra_llm_api_options
    fp8_note = next(n for n in DATA["notes"] if n["id"] == "fp8_checkpoint_kv_cache_1.x")
    assert v.picks_fp8_kv_for_fp8_weights is (release in fp8_note["releases"])
    cuda_graphs = (rel.get("llm_api_keys") or {}).get("nested", {}).get("cuda_graph_config")
    if cuda_graphs:
        assert v.cuda_graph_padding_key in cuda_graphs["accepted"]
        assert release in GATES["cuda_graph_padding_key"][v.cuda_graph_padding_key]


@pytest.mark.parametrize("release", RELEASES)
def test_the_llm_api_yaml_uses_the_release_s_keys(release):
    """What the config classes of the release accept (tests/data llm_api_keys): on 0.21 `padding_enabled` and a
    top-level `kv_cache_dtype`, never `kv_cache_config.dtype` or `enable_padding`."""
    rel = clidata.release(release)
    v = TrtllmVersion.parse(rel["version"])
    if "pytorch" not in _modes(rel):
        return
    options = llm_api_options(_spec("plain"), v, "pytorch")
    assert options is not None
    assert clidata.llm_api_problems(rel, yaml.safe_dump(options)) == []
    kv_place = {"pytorch_backend_config": ("pytorch_backend_config", "kv_cache_dtype"),
                "top_level": ("kv_cache_dtype",), "kv_cache_config": ("kv_cache_config", "dtype")}
    (style,) = [s for s, releases in GATES["kv_yaml_style"].items() if s in kv_place and release in releases]
    value = options
    for key in kv_place[style]:
        value = value[key]
    assert value == "fp8"


def test_the_stand_in_refuses_what_each_release_refuses(tmp_path):
    """The regressions of issue 25, each as the stand-in answers it."""
    with pytest.raises(clidata.UsageError, match=r"^No such option: --ep$"):  # NVIDIA/TensorRT-LLM#3583, 0.18.1
        clidata.parse(clidata.release("0.18.1"), ["-m", "x", "throughput", "--ep", "2"])
    with pytest.raises(clidata.UsageError, match=r"^No such option: --report_json$"):
        clidata.parse(clidata.release("0.18.0"), ["-m", "x", "throughput", "--report_json", "r.json"])
    with pytest.raises(clidata.UsageError, match=r"^No such option: --log_level$"):  # 0.12's bench.py
        clidata.parse(clidata.release("0.12.0"), ["-m", "x", "--log_level", "info", "throughput"])
    rel = clidata.release("0.21.0")
    assert clidata.llm_api_problems(rel, "kv_cache_config:\n  dtype: fp8\n") != []  # PR #5752, after the branch
    assert clidata.llm_api_problems(rel, "cuda_graph_config:\n  enable_padding: true\n") != []  # PR #6003
    rel = clidata.release("0.16.0")
    parsed = clidata.parse(rel, ["-m", "x", "throughput", "--engine_dir", str(tmp_path), "--max_num_tokens", "8192"])
    assert clidata.misapplied(rel, parsed) != []


@pytest.mark.parametrize("release", RELEASES)
def test_every_flag_and_its_evidence(release, tmp_path):
    """Every setting trtbench can send (tp, ep, runtime limits, streaming, ...): each flag sent is in the release's
    option set, the ones whose evidence says otherwise are left out, and nothing is misapplied."""
    rel = clidata.release(release)
    v = TrtllmVersion.parse(rel["version"])
    for mode in _modes(rel):
        argv = _argv(v, mode, "everything", tmp_path, "ep: 2\n")
        parsed = clidata.parse(rel, argv[1:])
        assert clidata.broken_rules(rel, parsed) == [] and clidata.misapplied(rel, parsed) == [], argv
        assert ("--ep" in argv) is ("--ep" in _names(rel["commands"]["throughput"]))
        assert ("--max_num_tokens" in argv) is ("runtime_max_tokens_is_max_bs" not in rel["rules"])
        # log_level: verbose is asked, so it is sent wherever the evidence does not rule it out
        assert ("--log_level" in argv) is (release not in GATES["log_level_evidence"]["absent"])


def _pinned_spec(release: str, tmp_path: Path) -> str:
    """smoke.yaml pinned to `release`, with a local model path and runtime limits: on an engine (before 0.19) or
    on a pre-quantized FP8 checkpoint, both directories the option parser checks exist."""
    rel = clidata.release(release)
    model = tmp_path / "model"
    model.mkdir()
    text = SMOKE.replace("model: meta-llama/Llama-3.1-8B", f"model: {{name: meta-llama/Llama-3.1-8B, path: {model}}}")
    text = text.replace("runtime:\n  timeout_s: 600\n", "runtime: {timeout_s: 600, max_batch_size: 256, "
                                                        "max_num_tokens: 4096}\n")
    if TrtllmVersion.parse(rel["version"]).at_least(0, 19):
        checkpoint = tmp_path / "Llama-3.1-8B-FP8"
        checkpoint.mkdir()
        (checkpoint / "hf_quant_config.json").write_text('{"quantization": {"quant_algo": "FP8"}}')
        return text + f"trtllm: {{version: {rel['version']}}}\nbuild: {{checkpoint: {checkpoint}}}\n"
    engine = tmp_path / "engine"
    shutil.copytree(REPO / "tests" / "data" / "engines" / "llama-fp8", engine)
    return text + f"trtllm: {{version: {rel['version']}, engine_dir: {engine}}}\n"


@pytest.mark.parametrize("release", RELEASES)
def test_a_pinned_dry_run_prints_only_flags_the_evidence_shows(release, cli, write_spec, tmp_path, monkeypatch):
    """`trtbench sweep SPEC --backend trtllm --dry-run` with `trtllm: {version: X}`, no trtllm-bench installed."""
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rel = clidata.release(release)
    result = cli("sweep", "--backend", "trtllm", "--no-plots", "--dry-run", str(write_spec(_pinned_spec(release,
                                                                                                          tmp_path))))
    assert result.code == 0, result.err
    commands = [shlex.split(line) for line in result.out.splitlines()]
    assert len(commands) == 4
    shown_log_level = _key(release) >= _key(GATES["log_level_evidence"]["shown_since"])
    runtime_tokens = "runtime_max_tokens_is_max_bs" not in rel["rules"]
    for argv in commands:
        dataset = Path(argv[argv.index("--dataset") + 1])  # a dry run writes none; the parser checks it exists
        dataset.parent.mkdir(parents=True, exist_ok=True)
        dataset.touch()
        parsed = clidata.parse(rel, argv[1:])  # click's "No such option" on anything the release lacks
        assert clidata.broken_rules(rel, parsed) == [] and clidata.misapplied(rel, parsed) == [], argv
        assert ("--log_level" in argv) is shown_log_level, argv  # trtllm.log_level left at its default
        assert ("--max_num_tokens" in argv) is runtime_tokens, argv
        assert ("--model_path" in argv) is (_key(release) >= _key(GATES["has_model_path"]["since"])), argv
        assert ("--report_json" in argv) is rel["report_json"], argv
    said = " ".join(result.err.split())
    assert ("runtime.max_num_tokens is not sent" in said) is not runtime_tokens
    assert said.count("runtime.max_num_tokens is not sent") <= 1
    assert not (tmp_path / "runs").exists()


def test_an_unproven_log_level_is_sent_only_when_asked_and_said_once(cli, write_spec, tmp_path):
    release = GATES["log_level_evidence"]["unproven"][0]
    text = _pinned_spec(release, tmp_path).replace(f"version: {clidata.release(release)['version']}",
                                                   f"version: {clidata.release(release)['version']}, "
                                                   f"log_level: verbose")
    result = cli("sweep", "--backend", "trtllm", "--no-plots", "--dry-run", str(write_spec(text)))
    assert result.code == 0, result.err
    assert all("--log_level verbose" in line for line in result.out.splitlines())
    assert " ".join(result.err.split()).count("no NVIDIA source shows for trtllm-bench") == 1


FP8_AUTO = TRTLLM_SPEC.replace("kv_cache_dtype: fp8", "kv_cache_dtype: auto")


@pytest.mark.parametrize("release", [r for r in RELEASES if TrtllmVersion.parse(clidata.release(r)["version"])
                                     .picks_fp8_kv_for_fp8_weights])
@pytest.mark.parametrize("dry_run", [False, True])
def test_fp8_weights_with_a_16_bit_kv_cache_are_refused_on_the_pytorch_path(release, dry_run, cli, write_spec,
                                                                           tmp_path, fake_bench):
    fake_bench.version(clidata.release(release)["version"])
    result = cli("sweep", "--no-plots", str(write_spec(FP8_AUTO)), *(["--dry-run"] if dry_run else []))
    assert result.code == 2
    (line,) = [x for x in result.err.splitlines() if "error" in x]
    assert "kv_cache_dtype: auto" in line and "kv_cache_dtype: fp8" in line and "16-bit weights" in line
    assert result.out == "" and fake_bench.printed() == []
    assert not (tmp_path / "runs").exists()


def test_a_grid_cell_with_fp8_weights_and_auto_kv_is_refused(cli, write_spec, tmp_path, fake_bench):
    spec = TRTLLM_SPEC.replace("kv_cache_dtype: fp8\n", "").replace("grid:\n", "grid:\n  kv_cache_dtype: [fp8, auto]\n")
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 2 and "kv_cache_dtype: fp8, or 16-bit weights" in " ".join(result.err.split())
    assert not (tmp_path / "runs").exists()


def test_unset_kv_on_fp8_weights_is_tensorrt_llm_s_default_and_runs(cli, write_spec, fake_bench):
    result = cli("sweep", "--no-plots", "--dry-run", str(write_spec(TRTLLM_SPEC.replace("kv_cache_dtype: fp8\n", ""))))
    assert result.code == 0, result.err


def test_the_engine_path_is_not_refused_by_that_rule(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("0.18.0")
    engine = tmp_path / "engine"
    shutil.copytree(REPO / "tests" / "data" / "engines" / "llama-fp8", engine)
    result = cli("sweep", "--no-plots", "--dry-run", str(write_spec(FP8_AUTO + f"trtllm: {{engine_dir: {engine}}}\n")))
    assert result.code == 0, result.err


LATENCY = clidata._latency()


@pytest.mark.parametrize("release", RELEASES)
def test_each_latency_gate_follows_its_evidence(release):
    """version.py's latency gates against tests/data/trtllm_bench_latency_options.json: the subcommand where an
    option set was read, an engine only where it has no --backend, --warmup and --report_json where listed."""
    v = TrtllmVersion.parse(clidata.release(release)["version"])
    assert v.has_latency_command is (release in LATENCY)
    if release not in LATENCY:
        return
    latency = _names(LATENCY[release])
    assert v.latency_engine_only is ("--backend" not in latency) is ("--tp" not in latency)
    assert v.latency_has_warmup is ("--warmup" in latency)
    assert v.has_report_json is ("--report_json" in latency)
