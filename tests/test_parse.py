"""The report parser on the reference's own example, on tolerance, on malformed reports, on the KV log
lines, and on logs far larger than memory should hold."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from trtbench.backends.trtllm.parse import Report, ReportError, log_lines, parse_json, scan_log, scan_run
from trtbench.backends.trtllm.process import ProcessResult

DATA = Path(__file__).parent / "data"
REPORT_D = (DATA / "report_d_1.1.txt").read_text()
# A line of the iteration log a long verbose run writes hundreds of thousands of.
NOISE = ('[11/21/2026-10:00:01] [TRT-LLM] [V] iteration stats: {"iter": 123456, "iterLatencyMS": 12.3, '
         '"numActiveRequests": 640, "numQueuedRequests": 12, "maxNumActiveRequests": 640, "kvCacheStats": '
         '{"freeNumBlocks": 1024, "usedNumBlocks": 8192, "tokensPerBlock": 32}}\n')


def parse_text(text: str) -> Report | None:
    return scan_log(text.splitlines()).text_report()


def noise(mib: int) -> str:
    return NOISE * (mib * 2**20 // len(NOISE) + 1)


def test_reference_format_d_example():
    report = parse_text("[TRT-LLM] [I] Setting up\nnoise: 12\n" + REPORT_D)
    assert report is not None and report.format == "D"
    m = report.metrics
    assert m["request_per_s"] == 8.3333 and m["output_tok_per_s"] == 8533.3333
    assert m["total_tok_per_s"] == 17066.6667 and m["total_latency_s"] == 120.0
    assert m["avg_latency_s"] == 58.0 and m["avg_concurrency"] == 483.3333
    assert (m["ttft_ms"], m["tpot_ms"], m["user_speed_tok_s"]) == (9000.0, 47.8983, 20.8776)
    assert m["latency_p50_ms"] == 58120.331 and m["latency_max_ms"] == 100000.0
    assert m["tpot_p99_ms"] == 52.8 and m["ttft_min_ms"] == 100.0
    assert (m["max_runtime_batch_size"], m["max_runtime_tokens"], m["kv_memory_fraction"]) == (640, 2048, 0.9)
    info = report.info
    assert info["trtllm_version"] == "1.1.0" and info["backend"] == "pytorch"
    assert info["quantization"] == "FP8" and info["kv_cache_dtype"] == "FP8"
    assert info["machine"] == "NVIDIA H100 80GB HBM3, memory 79.19 GB, 2.62 GHz"


def test_tabs_and_spaces_are_the_same():
    text = REPORT_D.replace("Request Throughput (req/sec):   ", "Request\tThroughput  (req/sec):\t")
    assert parse_text(text).metrics["request_per_s"] == 8.3333


def test_no_report_is_none():
    assert parse_text("[TRT-LLM] [I] Loading model\n[TRT-LLM] [E] boom\n") is None
    # A header without the results section (killed mid-print) is no report either.
    head = REPORT_D.split("= PERFORMANCE OVERVIEW")[0]
    assert parse_text(head) is None


def test_garbled_number_names_the_field():
    scan = scan_log(REPORT_D.replace("8533.3333\n", "inf\n", 1).splitlines())
    assert scan.report is None
    with pytest.raises(ReportError, match=r"Total Output Throughput \(tokens/sec\)"):
        scan.text_report()


def test_last_report_wins():
    two = REPORT_D.replace("8.3333", "9.0000")
    assert parse_text(REPORT_D + two).metrics["request_per_s"] == 9.0


def test_control_characters_do_not_reach_the_info_or_the_error():
    text = REPORT_D.replace("nvidia/Llama-3.1-8B-Instruct-FP8", "\x1b[1mllama\x1b[0m\x00\x7f")
    assert parse_text(text).info["model"] == "llama"
    garbled = REPORT_D.replace("8533.3333\n", "\x1b[31mn/a\x9b0m\n", 1)
    with pytest.raises(ReportError) as error:
        parse_text(garbled)
    assert str(error.value) == "report field 'Total Output Throughput (tokens/sec)' is not a number: 'n/a'"


def test_report_after_40_mib_of_log_is_parsed_in_bounded_memory(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(noise(40) + REPORT_D)
    assert log.stat().st_size > 40 * 2**20
    tracemalloc.start()
    try:
        scan = scan_log(log_lines(log))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    report = scan.text_report()
    assert report is not None and report.metrics["output_tok_per_s"] == 8533.3333
    assert scan.last_line == "Number of Sequences:  1000"


def test_report_followed_by_a_long_log_is_kept():
    """The block from the last header is cut at MAX_REPORT_LINES, not dropped: the report is at its start."""
    report = parse_text(REPORT_D + NOISE * 20_000)
    assert report is not None and report.metrics["request_per_s"] == 8.3333


def test_results_more_than_10000_lines_after_the_header_are_no_report():
    header, rest = REPORT_D.split("= MACHINE DETAILS")
    assert parse_text(header + NOISE * 9_000 + "= MACHINE DETAILS" + rest) is not None
    assert parse_text(header + NOISE * 10_000 + "= MACHINE DETAILS" + rest) is None


def test_a_line_without_line_breaks_is_cut(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"x" * 2**20 + b"\r\nKilled\n")
    lines = list(log_lines(log))
    assert [len(line) for line in lines] == [64 * 1024, 7] and lines[1] == "Killed\n"


def test_bytes_that_are_not_utf8_are_replaced(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"ok\n\xff\xfeboom\n")
    assert list(log_lines(log)) == ["ok\n", "\ufffd\ufffdboom\n"]


def test_scan_starts_where_this_run_began(tmp_path):
    """The log is appended to: an earlier attempt's report must not count for this one."""
    log = tmp_path / "run.log"
    log.write_text(REPORT_D)
    start = log.stat().st_size
    with log.open("a") as fh:
        fh.write("torch.OutOfMemoryError: CUDA out of memory.\n")
    result = ProcessResult(1, False, "", 1.0, None)
    scan = scan_run(result, log, start)
    assert scan.report is None and scan.failure is not None and scan.failure.status == "oom"
    assert scan_run(result, log, 0).report is not None


def test_without_a_complete_log_the_output_in_memory_is_scanned(tmp_path):
    result = ProcessResult(0, False, REPORT_D, 1.0, "log write failed: No space left on device")
    scan = scan_run(result, tmp_path / "never-written.log", 0)
    assert scan.report is not None and scan.report.metrics["request_per_s"] == 8.3333


JSON_REPORT = {
    "engine": {"backend": "Pytorch", "version": "1.1.0", "quantization": "FP8", "kv_cache_dtype": "FP8"},
    "world_info": {"max_batch_size": 640, "max_num_tokens": 2048, "kv_cache_percentage": 0.9,
                   "scheduling_policy": "GUARANTEED_NO_EVICT"},
    "performance": {"request_throughput_req_s": 8.3333, "system_output_throughput_tok_s": 8533.33,
                    "system_total_throughput_tok_s": 17066.67, "total_latency_ms": 120000.0,
                    "request_latency_percentiles_ms": {"p50": 58120.3, "average": 58000.0}},
    "streaming_metrics": {"avg_ttft_ms": 9000.0, "avg_tpot_ms": 47.9},
}


def write_json(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data, indent=4))
    return path


def test_json_report(tmp_path):
    report = parse_json(write_json(tmp_path, JSON_REPORT))
    assert report.format == "json"
    assert report.metrics["output_tok_per_s"] == 8533.33 and report.metrics["total_latency_s"] == 120.0
    assert report.metrics["latency_p50_ms"] == 58120.3 and report.metrics["ttft_ms"] == 9000.0
    assert report.info["backend"] == "pytorch" and report.info["scheduling_policy"] == "GUARANTEED_NO_EVICT"


def test_json_without_throughput_is_an_error(tmp_path):
    path = write_json(tmp_path, {"performance": {"request_throughput_req_s": 1.0, "total_latency_ms": 5}})
    with pytest.raises(ReportError, match="system_output_throughput_tok_s"):
        parse_json(path)


def test_json_percentiles_are_the_seven_known_ones(tmp_path):
    data = json.loads(json.dumps(JSON_REPORT))
    data["performance"]["request_latency_percentiles_ms"] = {"p50": 1.0, "p999": 2.0, "P90": 3.0, "average": None}
    metrics = parse_json(write_json(tmp_path, data)).metrics
    assert {k: v for k, v in metrics.items() if k.startswith("latency_")} == {"latency_p50_ms": 1.0}


def test_json_text_is_made_printable_and_numbers_become_text(tmp_path):
    data = json.loads(json.dumps(JSON_REPORT))
    data["engine"].update(model="\x1b[31mllama\u202e\ud800\x9b", version=1.1)
    data["world_info"]["scheduling_policy"] = 0
    info = parse_json(write_json(tmp_path, data)).info
    assert (info["model"], info["trtllm_version"], info["scheduling_policy"]) == ("llama\ufffd", "1.1", "0")


def _with(path: tuple[str, ...], value: object) -> dict:
    data = json.loads(json.dumps(JSON_REPORT))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(("content", "message"), [
    (b"[1, 2]", "r.json is not an object"),
    (b'"performance"', "r.json is not an object"),
    (json.dumps(_with(("performance",), [1])).encode(), "'performance' is not an object but list"),
    (json.dumps(_with(("engine",), "TRT")).encode(), "'engine' is not an object but str"),
    (json.dumps(_with(("performance", "request_latency_percentiles_ms"), [1, 2])).encode(),
     "'request_latency_percentiles_ms' is not an object but list"),
    (json.dumps(_with(("performance", "system_output_throughput_tok_s"), "")).encode(),
     "'system_output_throughput_tok_s' is not a number: ''"),
    (json.dumps(_with(("performance", "system_output_throughput_tok_s"), True)).encode(),
     "'system_output_throughput_tok_s' is not a number: 'True'"),
    (json.dumps(_with(("performance", "total_latency_ms"), {"ms": 1})).encode(),
     "'total_latency_ms' is not a number but dict"),
    (json.dumps(_with(("performance", "total_latency_ms"), float("nan"))).encode(),
     "'total_latency_ms' is not a finite number: 'nan'"),
    (json.dumps(_with(("performance", "total_latency_ms"), 10**400)).encode(),
     "'total_latency_ms' is not a finite number"),
    (json.dumps(_with(("streaming_metrics", "ttft_percentiles"), {"p50": "fast"})).encode(),
     "'p50' is not a number: 'fast'"),
    (json.dumps(_with(("engine", "model"), ["a"])).encode(), "'model' is not text but list"),
    (b'{"performance": {"total_latency_ms": 1' + b"0" * 5000 + b"}}", "r.json is unreadable"),
    (b'{"performance": "\xff"}', "r.json is unreadable"),
    (b"[" * 100_000, "r.json is unreadable"),
    (b"", "r.json is unreadable"),
])
def test_malformed_json_is_a_report_error(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ReportError, match=r"^[^\n]*$") as error:
        parse_json(path)
    assert message in str(error.value)


def test_kv_allocation_lines():
    trt = ("[TensorRT-LLM][INFO] Loaded engine size: 6214 MiB\n"
           "[TensorRT-LLM][INFO] [MemUsageChange] Allocated 62.99 GiB for max tokens in paged KV cache (294848).\n")
    assert scan_log(trt.splitlines()).allocated == {"kv_allocated_gib": 62.99, "kv_allocated_tokens": 294848.0,
                                                    "engine_size_gib": 6214 / 1024}
    pytorch = ("Estimated max memory in KV cache : 5.95 GiB\n"
               "Allocated 5.95 GiB for max tokens in paged KV cache (86720).\n"
               "Allocated 58.30 GiB for max tokens in paged KV cache (955136).\n"
               "Allocated 1.2.3 GiB for max tokens in paged KV cache (7).\n")  # garbage: no allocation
    assert scan_log(pytorch.splitlines()).allocated == {"kv_allocated_gib": 58.30, "kv_allocated_tokens": 955136.0}
