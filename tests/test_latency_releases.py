"""`mode: latency` on every release, held to the latency evidence in tests/data/trtllm_bench_latency_options.json
(each release's option set read from NVIDIA's low_latency.py, the releases refused and why, the report each
prints): a flag a release's latency is not shown to take, a refusal that comes back or goes, or a report read
wrong fails here."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, TRTLLM_SPEC, load_records
from tests.fakes import clidata
from tests.test_releases import SMOKE
from trtbench.backends.trtllm.parse import scan_log

LATENCY = json.loads(clidata.LATENCY.read_text())
REFUSED = LATENCY["refused"]
RELEASES = clidata.releases()  # 0.12 ... 1.3


def _names(release: str) -> set[str]:
    return {name for option in LATENCY["releases"][release] for name in option["names"]}


def _before_1_0(release: str) -> bool:
    return int(release.split(".")[0]) < 1


def _engine(tmp_path: Path) -> Path:
    """An FP8 / FP8-KV engine's config: what the engine path loads, and the parser checks exists."""
    engine = tmp_path / "engine"
    shutil.copytree(REPO / "tests" / "data" / "engines" / "llama-fp8", engine)
    return engine


def _latency_spec(release: str, tmp_path: Path) -> str:
    """smoke.yaml in latency mode pinned to `release`: on an engine before 1.0 (all latency loads there), on a
    pre-quantized FP8 checkpoint from 1.0 (the PyTorch path, the only one in 1.3)."""
    version = clidata.release(release)["version"]
    text = SMOKE + "mode: latency\n"
    if _before_1_0(release):
        return text + f"trtllm: {{version: {version}, engine_dir: {_engine(tmp_path)}}}\n"
    checkpoint = tmp_path / "Llama-3.1-8B-FP8"
    checkpoint.mkdir()
    (checkpoint / "hf_quant_config.json").write_text('{"quantization": {"quant_algo": "FP8"}}')
    return text + f"trtllm: {{version: {version}, backend: pytorch}}\nbuild: {{checkpoint: {checkpoint}}}\n"


@pytest.mark.parametrize("release", RELEASES)
def test_a_pinned_latency_dry_run_prints_only_options_the_release_s_latency_takes(release, cli, write_spec,
                                                                                 tmp_path, monkeypatch):
    """`trtbench sweep SPEC --backend trtllm --dry-run` with mode: latency and `trtllm: {version: X}`."""
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    result = cli("sweep", "--backend", "trtllm", "--no-plots", "--dry-run",
                 str(write_spec(_latency_spec(release, tmp_path))))
    if release in REFUSED:
        assert result.code == 2 and result.out == "" and len(result.err.splitlines()) == 1
        assert f"trtllm-bench {clidata.release(release)['version']} has " in result.err
        return
    assert result.code == 0, result.err
    rel = clidata.release(release)
    commands = [shlex.split(line) for line in result.out.splitlines()]
    assert len(commands) == 4
    for argv in commands:
        assert {a for a in argv[argv.index("latency") + 1:] if a.startswith("--")} <= _names(release), argv
        dataset = Path(argv[argv.index("--dataset") + 1])  # a dry run writes none; the parser checks it exists
        dataset.parent.mkdir(parents=True, exist_ok=True)
        dataset.touch()
        parsed = clidata.parse(rel, argv[1:])  # click's "No such option" on anything the release lacks
        assert parsed.command == "latency" and clidata.broken_rules(rel, parsed) == [], argv
        engine_only = _before_1_0(release)
        assert ("--engine_dir" in argv) is engine_only and ("--tp" in argv) is not engine_only, argv
        assert "--backend" not in argv if engine_only else parsed.options["--backend"] == "pytorch"
        for flag in ("--warmup", "--report_json"):
            assert (flag in argv) is (flag in _names(release)), (flag, argv)
        for absent in ("--concurrency", "--streaming", "--max_batch_size", "--eos_id", "--extra_llm_api_options"):
            assert absent not in argv


def test_every_refused_release_is_one_whose_latency_no_option_set_covers():
    assert set(REFUSED) == {"0.12", "0.13"} and not set(REFUSED) & set(LATENCY["releases"])
    assert set(RELEASES) - set(REFUSED) <= set(LATENCY["releases"])


# One point, its FP8 engine's KV cache FP8 too: ISL 128, OSL 128, 100 requests.
ENGINE_LATENCY = TRTLLM_SPEC.replace("osl: [128, 1024]", "osl: [128]").replace("isl: [128, 2048]", "isl: [128]") \
    + "mode: latency\n"


@pytest.mark.parametrize(("release", "report_format"), [("0.16.0", "L"), ("0.18.0", "L"), ("0.21.0", "json")])
def test_a_latency_sweep_on_the_engine_path_parses_the_release_s_report(release, report_format, cli, write_spec,
                                                                        tmp_path, fake_bench):
    """The fake's request (tests/fakes/trtllm-bench): TTFT 50 + 128/100 = 51.28 ms, TPOT 10 + 128/1000 = 10.128 ms,
    so one request lasts 51.28 + 127 x 10.128 = 1337.536 ms and 100 of them one after another 133.7536 s:
    100 / 133.7536 = 0.7476 requests/s, 12800 / 133.7536 = 95.6984 output tokens/s, and one user decodes at
    1000 / 10.128 = 98.7362 tokens/s."""
    fake_bench.version(release)
    spec = ENGINE_LATENCY + f"trtllm: {{engine_dir: {_engine(tmp_path)}}}\n"
    result = cli("sweep", "--no-plots", str(write_spec(spec)))
    assert result.code == 0, result.err
    [printed] = fake_bench.printed()
    assert printed["command"] == "latency" and "--engine_dir" in printed["argv"]
    [rec] = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert rec["status"] == "ok", rec["cause"]
    assert rec["detail"]["report_format"] == report_format
    metrics = rec["metrics"]
    for key in ("output_tok_per_s", "request_per_s", "total_latency_s", "ttft_ms", "tpot_ms"):
        assert metrics[key] == pytest.approx(printed[key], rel=1e-9), key
    assert metrics["ttft_ms"] == pytest.approx(51.28) and metrics["tpot_ms"] == pytest.approx(10.128)
    assert metrics["total_latency_s"] == pytest.approx(133.7536)
    assert metrics["request_per_s"] == pytest.approx(0.7476, abs=1e-4)
    assert metrics["output_tok_per_s"] == pytest.approx(95.6984, abs=1e-4)
    assert metrics["avg_latency_s"] == pytest.approx(1.337536)
    df = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert df.loc[0, "ttft_ms"] == pytest.approx(51.28) and df.loc[0, "output_tok_per_s"] == pytest.approx(95.6984,
                                                                                                           abs=1e-4)
    if report_format == "L":
        # "Generation Token Throughput": generated tokens / generation time per request, one user's decode speed;
        # its breakdown is of generation time, not request latency, so no latency percentile is taken from it
        assert metrics["user_speed_tok_s"] == pytest.approx(98.7362, abs=1e-4)
        assert df[["latency_ms_p50", "latency_ms_p99", "ttft_ms_p95"]].isna().all().all()


def test_latency_s_own_report_parses_to_the_numbers_printed():
    """The sections of low_latency.py @b0880169 (0.14.0) with its own spacing; numbers chosen by hand: 'Total Token
    Throughput' is output tokens / total latency there (BenchmarkStatistics.token_throughput_ns), so the total
    (input + output) throughput is worked out from the request rate: 0.5 x (1000 + 200) = 600 tokens/s."""
    rule, s = "=" * 59, " "  # each section name but the first ends in a space, as printed
    text = f"""[11/21/2024-10:00:00] [TRT-LLM] [I] {rule}
= ENGINE DETAILS
{rule}
Model:\t\t\tmeta-llama/Llama-3.1-8B
Engine Directory:\t/engines/llama
TensorRT-LLM Version:\t0.14.0
Dtype:\t\t\tbfloat16
KV Cache Dtype:\t\tFP8
Quantization:\t\tFP8
Max Input Length:\t2048
Max Sequence Length:\t4096

{rule}
= WORLD + RUNTIME INFORMATION{s}
{rule}
TP Size:\t\t1
PP Size:\t\t1
Max Runtime Batch Size:\t64
Max Runtime Tokens:\t8192
Scheduling Policy:\tGuaranteed No Evict
KV Memory Percentage:\t90.00%

{rule}
= GENERAL OVERVIEW{s}
{rule}
Number of requests:\t\t10
Average Input Length (tokens):\t1000.0000
Average Output Length (tokens):\t200.0000
Average request latency (ms):\t2000.0000

{rule}
= THROUGHPUT OVERVIEW{s}
{rule}
Request Throughput (req/sec):\t\t  0.5000
Total Token Throughput (tokens/sec):\t  100.0000
Generation Token Throughput (tokens/sec): 110.5000

{rule}
= LATENCY OVERVIEW{s}
{rule}
Total Latency (ms):\t\t  20000.0000
Average time-to-first-token (ms): 200.0000
Average inter-token latency (ms): 9.0450
Acceptance Rate (Speculative):\t  1.00

{rule}
= GENERATION LATENCY BREAKDOWN{s}
{rule}
MIN (ms): 1700.0000
MAX (ms): 1900.0000
AVG (ms): 1800.0000
P90 (ms): 1800.0000
P95 (ms): 1890.0000
P99 (ms): 1900.0000

{rule}
= ACCEPTANCE BREAKDOWN{s}
{rule}
MIN: 1.00
MAX: 1.00
AVG: 1.00
P90: 1.00
P95: 1.00
P99: 1.00

{rule}
"""
    report = scan_log(text.splitlines()).text_report()
    assert report is not None and report.format == "L"
    assert report.metrics == {
        "output_tok_per_s": 100.0, "request_per_s": 0.5, "total_tok_per_s": 600.0, "total_latency_s": 20.0,
        "avg_latency_s": 2.0, "num_requests": 10.0, "avg_input_len": 1000.0, "avg_output_len": 200.0,
        "ttft_ms": 200.0, "tpot_ms": 9.045, "user_speed_tok_s": 110.5, "max_runtime_batch_size": 64.0,
        "max_runtime_tokens": 8192.0, "kv_memory_fraction": 0.9}
    assert report.info["backend"] == "tensorrt" and report.info["kv_cache_dtype"] == "FP8"
    assert report.info["engine_dir"] == "/engines/llama" and report.info["trtllm_version"] == "0.14.0"
