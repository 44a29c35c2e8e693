"""The report parser on the reference's own example, on tolerance, and on the KV log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtbench.backends.trtllm.parse import ReportError, kv_allocated, parse_json, parse_text

DATA = Path(__file__).parent / "data"


def test_reference_format_d_example():
    report = parse_text("[TRT-LLM] [I] Setting up\nnoise: 12\n" + (DATA / "report_d_1.1.txt").read_text())
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
    text = (DATA / "report_d_1.1.txt").read_text().replace("Request Throughput (req/sec):   ",
                                                            "Request\tThroughput  (req/sec):\t")
    assert parse_text(text).metrics["request_per_s"] == 8.3333


def test_no_report_is_none():
    assert parse_text("[TRT-LLM] [I] Loading model\n[TRT-LLM] [E] boom\n") is None
    # A header without the results section (killed mid-print) is no report either.
    head = (DATA / "report_d_1.1.txt").read_text().split("= PERFORMANCE OVERVIEW")[0]
    assert parse_text(head) is None


def test_garbled_number_names_the_field():
    text = (DATA / "report_d_1.1.txt").read_text().replace("8533.3333\n", "inf\n", 1)
    with pytest.raises(ReportError, match=r"Total Output Throughput \(tokens/sec\)"):
        parse_text(text)


def test_last_report_wins():
    one = (DATA / "report_d_1.1.txt").read_text()
    two = one.replace("8.3333", "9.0000")
    assert parse_text(one + two).metrics["request_per_s"] == 9.0


def test_json_report(tmp_path):
    data = {"engine": {"backend": "Pytorch", "version": "1.1.0", "quantization": "FP8", "kv_cache_dtype": "FP8"},
            "world_info": {"max_batch_size": 640, "max_num_tokens": 2048, "kv_cache_percentage": 0.9,
                           "scheduling_policy": "GUARANTEED_NO_EVICT"},
            "performance": {"request_throughput_req_s": 8.3333, "system_output_throughput_tok_s": 8533.33,
                            "system_total_throughput_tok_s": 17066.67, "total_latency_ms": 120000.0,
                            "request_latency_percentiles_ms": {"p50": 58120.3, "average": 58000.0}},
            "streaming_metrics": {"avg_ttft_ms": 9000.0, "avg_tpot_ms": 47.9}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data, indent=4))
    report = parse_json(path)
    assert report.format == "json"
    assert report.metrics["output_tok_per_s"] == 8533.33 and report.metrics["total_latency_s"] == 120.0
    assert report.metrics["latency_p50_ms"] == 58120.3 and report.metrics["ttft_ms"] == 9000.0
    assert report.info["backend"] == "pytorch" and report.info["scheduling_policy"] == "GUARANTEED_NO_EVICT"


def test_json_without_throughput_is_an_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"performance": {"request_throughput_req_s": 1.0, "total_latency_ms": 5}}))
    with pytest.raises(ReportError, match="system_output_throughput_tok_s"):
        parse_json(path)


def test_kv_allocation_lines():
    trt = ("[TensorRT-LLM][INFO] Loaded engine size: 6214 MiB\n"
           "[TensorRT-LLM][INFO] [MemUsageChange] Allocated 62.99 GiB for max tokens in paged KV cache (294848).\n")
    assert kv_allocated(trt) == {"kv_allocated_gib": 62.99, "kv_allocated_tokens": 294848.0,
                                 "engine_size_gib": 6214 / 1024}
    pytorch = ("Estimated max memory in KV cache : 5.95 GiB\n"
               "Allocated 5.95 GiB for max tokens in paged KV cache (86720).\n"
               "Allocated 58.30 GiB for max tokens in paged KV cache (955136).\n")
    assert kv_allocated(pytorch)["kv_allocated_tokens"] == 955136.0
