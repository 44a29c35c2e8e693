"""trtllm-bench's final report -> numbers, from `--report_json` or from any of the four text formats.

Text formats (reference section 3): A (0.12, `= STATISTICS`), B (0.13-0.18, `= PERFORMANCE OVERVIEW`
with `Token Throughput`), C (0.19-0.20, `Total Output Throughput`), D (0.21+, `[w/ ctx]` labels,
`MACHINE DETAILS` from 1.2). Labels are matched after collapsing whitespace, so padding changes
between releases do not matter; only the report's first line carries the log prefix.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PREFIX = re.compile(r"^\s*(\[[^\]]*\d\d:\d\d:\d\d[^\]]*\]\s*)?(\[TRT-LLM\]\s*)?(\[RANK \d+\]\s*)?(\[[A-Z]\]\s*)?")
_HEADER = re.compile(r"^=\s+(PYTORCH BACKEND|PyTorch backend|ENGINE DETAILS)\s*$")
_SECTION = re.compile(r"^=\s+([A-Z][A-Za-z +()/-]*?)\s*$")
_KEY_VALUE = re.compile(r"^([A-Za-z][^:]*?)\s*:\s*(\S.*?)\s*$")
_PERCENTILE = re.compile(r"^\[(Latency|TTFT|TPOT|GTPS)\]\s*(MINIMUM|MAXIMUM|AVERAGE|P50|P90|P95|P99)\s*:\s*(\S+)")
_KV_ALLOCATED = re.compile(r"Allocated ([\d.]+) GiB for max tokens in paged KV cache \((\d+)\)")
_ENGINE_SIZE = re.compile(r"Loaded engine size: ([\d.]+) MiB")


class ReportError(Exception):
    """A report that is there but unusable: a field missing or not a number."""


@dataclass
class Report:
    format: str  # A | B | C | D | json
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def _clean(line: str) -> str:
    return _PREFIX.sub("", line, count=1).rstrip()


def _number(label: str, raw: str) -> float:
    token = raw.split()[0].rstrip("%").replace(",", "")
    try:
        value = float(token)
    except ValueError:
        raise ReportError(f"report field {label!r} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ReportError(f"report field {label!r} is not a finite number: {raw!r}")
    return value


def report_block(log: str) -> list[str] | None:
    """The lines of the last report in the log, prefix removed; None when there is no report."""
    lines = [_clean(line) for line in log.splitlines()]
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line.strip())]
    if not starts:
        return None
    block = lines[starts[-1]:]
    has_results = any(line.strip() in ("= STATISTICS", "= PERFORMANCE OVERVIEW") for line in block)
    return block if has_results else None


def _sections(block: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    sections: dict[str, dict[str, str]] = {}
    percentiles: dict[str, float] = {}
    current = "HEADER"
    for raw in block:
        line = raw.strip()
        if not line or set(line) <= {"=", "-"}:
            continue
        section = _SECTION.match(line)
        if section:
            current = section[1].strip()
            sections.setdefault(current, {})
            continue
        pct = _PERCENTILE.match(line)
        if pct:
            kind, stat = pct[1].lower(), pct[2].lower().replace("minimum", "min").replace("maximum", "max")
            percentiles[f"{kind}_{stat}"] = _number(f"[{pct[1]}] {pct[2]}", pct[3])
            continue
        kv = _KEY_VALUE.match(line)
        if kv:
            label = re.sub(r"\s+", " ", kv[1])
            sections.setdefault(current, {}).setdefault(label, kv[2])
        elif current == "MACHINE DETAILS":
            sections[current]["Machine"] = line
    return sections, percentiles


def _lookup(sections: dict[str, dict[str, str]], *labels: str) -> tuple[str, str] | None:
    for label in labels:
        for fields in sections.values():
            if label in fields:
                return label, fields[label]
    return None


def _required(sections: dict[str, dict[str, str]], *labels: str) -> float:
    found = _lookup(sections, *labels)
    if found is None:
        raise ReportError(f"report has no {labels[0]!r} line")
    return _number(*found)


def _optional(sections: dict[str, dict[str, str]], *labels: str) -> float | None:
    found = _lookup(sections, *labels)
    return _number(*found) if found else None


def parse_text(log: str) -> Report | None:
    block = report_block(log)
    if block is None:
        return None
    sections, percentiles = _sections(block)
    if "STATISTICS" in sections:
        fmt = "A"
    elif _lookup(sections, "Token Throughput (tokens/sec)"):
        fmt = "B"
    elif _lookup(sections, "Per User Output Throughput [w/ ctx] (tps/user)"):
        fmt = "D"
    else:
        fmt = "C"
    requests_per_s = _required(sections, "Request Throughput (req/sec)")
    output = _required(sections, "Total Output Throughput (tokens/sec)", "Token Throughput (tokens/sec)")
    if fmt == "A":
        latency_s = _required(sections, "Total Latency (seconds)")
    else:
        latency_s = _required(sections, "Total Latency (ms)") / 1000
    avg_in = _optional(sections, "Average Input Length (tokens)")
    avg_out = _optional(sections, "Average Output Length (tokens)")
    total = _optional(sections, "Total Token Throughput (tokens/sec)")
    if total is None and avg_in is not None and avg_out is not None:
        total = requests_per_s * (avg_in + avg_out)
    metrics: dict[str, float | None] = {
        "output_tok_per_s": output,
        "request_per_s": requests_per_s,
        "total_tok_per_s": total,
        "total_latency_s": latency_s,
        "avg_latency_s": _ms_to_s(_optional(sections, "Average request latency (ms)")),
        "avg_concurrency": _optional(sections, "Number of concurrent requests"),
        "num_requests": _optional(sections, "Number of requests"),
        "avg_input_len": avg_in,
        "avg_output_len": avg_out,
        "per_user_tok_s": _optional(sections, "Per User Output Throughput [w/ ctx] (tps/user)",
                                    "Per User Output Throughput (tokens/sec/user)"),
        "per_gpu_tok_s": _optional(sections, "Per GPU Output Throughput (tps/gpu)",
                                   "Per GPU Output Throughput (tokens/sec/gpu)"),
        "ttft_ms": _optional(sections, "Average time-to-first-token [TTFT] (ms)", "Average time-to-first-token (ms)"),
        "tpot_ms": _optional(sections, "Average time-per-output-token [TPOT] (ms)", "Average inter-token latency (ms)"),
        "user_speed_tok_s": _optional(sections, "Per User Output Speed (tps/user)",
                                      "Per User Output Speed [1/TPOT] (tokens/sec/user)"),
        "max_runtime_batch_size": _optional(sections, "Max Runtime Batch Size"),
        "max_runtime_tokens": _optional(sections, "Max Runtime Tokens"),
        "kv_memory_fraction": _fraction(_optional(sections, "KV Memory Percentage")),
    }
    metrics.update({f"{k}_ms" if not k.startswith("gtps") else k: v for k, v in percentiles.items()})
    info = {
        "model": _text(sections, "Model"),
        "trtllm_version": _text(sections, "TensorRT LLM Version", "TensorRT-LLM Version"),
        "backend": "tensorrt" if "ENGINE DETAILS" in sections else "pytorch",
        "dtype": _text(sections, "Dtype"),
        "kv_cache_dtype": _text(sections, "KV Cache Dtype"),
        "quantization": _text(sections, "Quantization"),
        "engine_dir": _text(sections, "Engine Directory"),
        "max_sequence_length": _text(sections, "Max Sequence Length"),
        "scheduling_policy": _text(sections, "Scheduling Policy"),
        "tp": _text(sections, "TP Size"),
        "pp": _text(sections, "PP Size"),
        "machine": sections.get("MACHINE DETAILS", {}).get("Machine"),
    }
    return Report(fmt, {k: v for k, v in metrics.items() if v is not None},
                  {k: v for k, v in info.items() if v is not None})


def _text(sections: dict[str, dict[str, str]], *labels: str) -> str | None:
    found = _lookup(sections, *labels)
    return found[1] if found else None


def _ms_to_s(ms: float | None) -> float | None:
    return ms / 1000 if ms is not None else None


def _fraction(percent: float | None) -> float | None:
    return percent / 100 if percent is not None else None


def parse_json(path: Path) -> Report:
    """The `--report_json` file (0.19+): keys per reference section 3.1."""
    try:
        data = json.loads(path.read_text())
        perf = data["performance"]
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"report JSON {path.name} is unreadable: {exc}") from None
    except (KeyError, TypeError):
        raise ReportError(f"report JSON {path.name} has no 'performance' section") from None

    def num(section: dict[str, Any], key: str, required: bool = False) -> float | None:
        value = section.get(key) if isinstance(section, dict) else None
        if value is None:
            if required:
                raise ReportError(f"report JSON has no performance.{key}")
            return None
        return _number(key, str(value))

    world = data.get("world_info", {}) or {}
    request = data.get("request_info", {}) or {}
    streaming = data.get("streaming_metrics", {}) or {}
    metrics: dict[str, float | None] = {
        "output_tok_per_s": num(perf, "system_output_throughput_tok_s", True),
        "request_per_s": num(perf, "request_throughput_req_s", True),
        "total_tok_per_s": num(perf, "system_total_throughput_tok_s"),
        "total_latency_s": _ms_to_s(num(perf, "total_latency_ms", True)),
        "avg_latency_s": _ms_to_s(num(perf, "avg_request_latency_ms")),
        "avg_concurrency": num(request, "avg_num_concurrent_requests"),
        "num_requests": num(request, "num_requests"),
        "avg_input_len": num(request, "avg_input_length"),
        "avg_output_len": num(request, "avg_output_length"),
        "per_user_tok_s": num(perf, "output_throughput_per_user_tok_s"),
        "per_gpu_tok_s": num(perf, "output_throughput_per_gpu_tok_s"),
        "ttft_ms": num(streaming, "avg_ttft_ms"),
        "tpot_ms": num(streaming, "avg_tpot_ms"),
        "user_speed_tok_s": num(streaming, "token_output_speed_tok_s"),
        "max_runtime_batch_size": num(world, "max_batch_size"),
        "max_runtime_tokens": num(world, "max_num_tokens"),
        "kv_memory_fraction": num(world, "kv_cache_percentage"),
    }
    for prefix, section in (("latency", perf.get("request_latency_percentiles_ms")),
                            ("ttft", streaming.get("ttft_percentiles")), ("tpot", streaming.get("tpot_percentiles"))):
        for stat, value in (section or {}).items():
            short = {"minimum": "min", "maximum": "max"}.get(stat, stat)
            metrics[f"{prefix}_{short}_ms"] = _number(f"{prefix}.{stat}", str(value))
    engine = data.get("engine", {}) or {}
    info = {
        "model": engine.get("model"),
        "trtllm_version": engine.get("version"),
        "backend": "tensorrt" if str(engine.get("backend", "")).upper() == "TRT" else "pytorch",
        "dtype": engine.get("dtype"),
        "kv_cache_dtype": engine.get("kv_cache_dtype"),
        "quantization": engine.get("quantization"),
        "engine_dir": engine.get("engine_dir"),
        "scheduling_policy": str(world.get("scheduling_policy")) if world.get("scheduling_policy") else None,
        "machine": (data.get("machine") or {}).get("name"),
    }
    return Report("json", {k: v for k, v in metrics.items() if v is not None},
                  {k: v for k, v in info.items() if v is not None})


def kv_allocated(log: str) -> dict[str, float]:
    """The KV cache the runtime actually allocated (the last allocation: the PyTorch backend allocates
    an estimation pool first), and the engine size the TRT runtime loaded."""
    found: dict[str, float] = {}
    allocations = _KV_ALLOCATED.findall(log)
    if allocations:
        gib, tokens = allocations[-1]
        found.update(kv_allocated_gib=float(gib), kv_allocated_tokens=float(tokens))
    engine = _ENGINE_SIZE.findall(log)
    if engine:
        found["engine_size_gib"] = float(engine[-1]) / 1024
    return found
