"""trtllm-bench's final report -> numbers, from `--report_json` or from any of the four text formats.

Text formats (reference section 3): A (0.12, `= STATISTICS`), B (0.13-0.18, `= PERFORMANCE OVERVIEW`
with `Token Throughput`), C (0.19-0.20, `Total Output Throughput`), D (0.21+, `[w/ ctx]` labels,
`MACHINE DETAILS` from 1.2), and L, `latency`'s own report before it printed throughput's (0.14 on,
`= LATENCY OVERVIEW`; tests/data/trtllm_bench_latency_options.json `report`). Labels are matched after
collapsing whitespace, so padding changes between releases do not matter; only the report's first line
carries the log prefix.

A log can be gigabytes (verbose logging, a long run), so it is read once, line by line, from the file
(`scan_log`): what the outcome needs from it (the last report, the deciding failure line, the first
error line, the last line, the memory the runtime logged) is gathered in that pass, and only the latest
report's lines are kept.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from trtbench.backends.trtllm.evidence import Failure, PatternMatch
from trtbench.backends.trtllm.process import ProcessResult
from trtbench.text import printable

_PREFIX = re.compile(r"^\s*(\[[^\]]*\d\d:\d\d:\d\d[^\]]*\]\s*)?(\[TRT-LLM\]\s*)?(\[RANK \d+\]\s*)?(\[[A-Z]\]\s*)?")
_HEADER = re.compile(r"^=\s+(PYTORCH BACKEND|PyTorch backend|ENGINE DETAILS)\s*$")
_SECTION = re.compile(r"^=\s+([A-Z][A-Za-z +()/-]*?)\s*$")
_KEY_VALUE = re.compile(r"^([A-Za-z][^:]*?)\s*:\s*(\S.*?)\s*$")
_PERCENTILE = re.compile(r"^\[(Latency|TTFT|TPOT|GTPS)\]\s*(MINIMUM|MAXIMUM|AVERAGE|P50|P90|P95|P99)\s*:\s*(\S+)")
_KV_ALLOCATED = re.compile(r"Allocated (\d+(?:\.\d+)?) GiB for max tokens in paged KV cache \((\d+)\)")
_ENGINE_SIZE = re.compile(r"Loaded engine size: (\d+(?:\.\d+)?) MiB")
_STATS = {"minimum": "min", "maximum": "max", "average": "average", "p50": "p50", "p90": "p90", "p95": "p95",
          "p99": "p99"}  # a breakdown's rows (text, lower-cased) or keys (JSON) -> the metric's suffix

MAX_LINE_CHARS = 64 * 1024  # a longer log line is cut here, so a log without line breaks cannot fill memory
MAX_REPORT_LINES = 10_000  # kept from a report header on; a report has fewer than 200
_MAX_REPORT_LINE_CHARS = 1_000  # a longer line is no report line, and is not kept


class ReportError(Exception):
    """A report that is there but unusable: a field missing or not a number."""


@dataclass
class Report:
    format: str  # A | B | C | D | L | json
    metrics: dict[str, float] = field(default_factory=dict)  # all finite
    info: dict[str, str] = field(default_factory=dict)  # printable (trtbench.text)


@dataclass(frozen=True)
class LogScan:
    """What a run's outcome needs from its log, gathered in one pass (`scan_log`)."""

    report: Report | None  # the last text report; None when there is none or it is unusable
    report_error: str | None  # why the last text report is unusable
    failure: Failure | None  # the deciding failure pattern (evidence.PATTERNS)
    last_line: str  # the last non-empty line, printable; "" when there is none
    error_line: str  # the first error line (evidence.PatternMatch), printable; "" when there is none
    # The KV cache the runtime actually allocated (the last allocation: the PyTorch backend allocates an
    # estimation pool first), and the engine size the TRT runtime loaded, as far as they were logged.
    allocated: dict[str, float]

    def text_report(self) -> Report | None:
        """The last text report; None when there is none, ReportError when it is there but unusable."""
        if self.report_error is not None:
            raise ReportError(self.report_error)
        return self.report


def scan_log(lines: Iterable[str]) -> LogScan:
    """One pass over a log's lines. Memory stays bounded whatever the log's length: of the lines, only
    those from the latest report header on are kept, the first MAX_REPORT_LINES of them (a report is at
    the start of its block, so one followed by a long teardown log still counts)."""
    match = PatternMatch()
    block: list[str] | None = None  # from the latest report header on, prefix removed
    last = ""
    allocated: dict[str, float] = {}
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        match.feed(line)
        if line.isprintable() or printable(line):
            last = line
        header_words = "BACKEND" in line or "backend" in line or "ENGINE DETAILS" in line  # cheap, first
        if header_words and _HEADER.match(_clean(line)):
            block = []
        if block is not None and len(block) < MAX_REPORT_LINES and len(line) <= _MAX_REPORT_LINE_CHARS:
            block.append(_clean(line))
        if "Allocated" in line or "Loaded engine size" in line:
            allocated.update(_allocations(line))
    report, error = None, None
    try:
        report = _text_report(block) if block is not None else None
    except ReportError as exc:
        error = str(exc)
    return LogScan(report, error, match.failure, printable(last), match.error_line, allocated)


def scan_run(result: ProcessResult, log_path: Path, start: int) -> LogScan:
    """One run's output: its log from byte `start` on (the log is appended to, so that is where this run's
    output begins), or the output kept in memory when the log on disk is incomplete (a full disk)."""
    if result.log_error is not None:
        return scan_log(_bounded_lines(io.StringIO(result.output, newline=None)))
    with contextlib.closing(log_lines(log_path, start)) as lines:  # the log is closed even if the scan stops early
        return scan_log(lines)


def log_lines(path: Path, start: int = 0) -> Generator[str, None, None]:
    """The lines of the log at `path` from byte `start` on, read as they are needed; bytes that are not
    UTF-8 (a crash's garbage) become U+FFFD."""
    with path.open("rb") as raw:
        raw.seek(start)
        with io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
            yield from _bounded_lines(text)


def _bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The lines of `stream` (universal newlines, as splitlines would split a progress bar's carriage
    returns), each cut at MAX_LINE_CHARS."""
    cut = False  # the rest of a line already cut
    while line := stream.readline(MAX_LINE_CHARS):
        if not cut:
            yield line
        cut = not line.endswith("\n")


def _allocations(line: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for gib, tokens in _KV_ALLOCATED.findall(line)[-1:]:
        found.update(kv_allocated_gib=float(gib), kv_allocated_tokens=float(tokens))
    for mib in _ENGINE_SIZE.findall(line)[-1:]:
        found["engine_size_gib"] = float(mib) / 1024
    # A number of hundreds of digits is garbage, not an allocation.
    return found if all(math.isfinite(v) for v in found.values()) else {}


def _clean(line: str) -> str:
    return _PREFIX.sub("", line, count=1).rstrip()


def _number(label: str, raw: str) -> float:
    token = next(iter(raw.split()), "").rstrip("%").replace(",", "")
    try:
        value = float(token)
    except ValueError:
        raise ReportError(f"report field {label!r} is not a number: {printable(raw, 80)!r}") from None
    if not math.isfinite(value):
        raise ReportError(f"report field {label!r} is not a finite number: {printable(raw, 80)!r}")
    return value


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
            percentiles[f"{pct[1].lower()}_{_STATS[pct[2].lower()]}"] = _number(f"[{pct[1]}] {pct[2]}", pct[3])
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


def _text_report(block: list[str]) -> Report | None:
    """The report in `block` (from a header on), None when the results section is missing (killed mid-print)."""
    if not any(line in ("= STATISTICS", "= PERFORMANCE OVERVIEW", "= LATENCY OVERVIEW") for line in block):
        return None
    sections, percentiles = _sections(block)
    if "STATISTICS" in sections:
        fmt = "A"
    elif "LATENCY OVERVIEW" in sections:
        fmt = "L"
    elif _lookup(sections, "Token Throughput (tokens/sec)"):
        fmt = "B"
    elif _lookup(sections, "Per User Output Throughput [w/ ctx] (tps/user)"):
        fmt = "D"
    else:
        fmt = "C"
    requests_per_s = _required(sections, "Request Throughput (req/sec)")
    # L's "Total Token Throughput" is output tokens / total latency (BenchmarkStatistics.token_throughput_ns)
    output = _required(sections, "Total Token Throughput (tokens/sec)") if fmt == "L" else \
        _required(sections, "Total Output Throughput (tokens/sec)", "Token Throughput (tokens/sec)")
    if fmt == "A":
        latency_s = _required(sections, "Total Latency (seconds)")
    else:
        latency_s = _required(sections, "Total Latency (ms)") / 1000
    avg_in = _optional(sections, "Average Input Length (tokens)")
    avg_out = _optional(sections, "Average Output Length (tokens)")
    total = _optional(sections, "Total Token Throughput (tokens/sec)") if fmt != "L" else None
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
        # L: the average per request of generated tokens / generation time, one user's decode speed
        "user_speed_tok_s": _optional(sections, "Per User Output Speed (tps/user)",
                                      "Per User Output Speed [1/TPOT] (tokens/sec/user)",
                                      "Generation Token Throughput (tokens/sec)"),
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
    return _build_report(fmt, metrics, info)


def _build_report(fmt: str, metrics: dict[str, float | None], info: dict[str, str | None]) -> Report:
    """What was found: metrics as they are, text made printable, the missing and the empty left out."""
    texts = {k: printable(v) for k, v in info.items() if v is not None}
    return Report(fmt, {k: v for k, v in metrics.items() if v is not None}, {k: v for k, v in texts.items() if v})


def _text(sections: dict[str, dict[str, str]], *labels: str) -> str | None:
    found = _lookup(sections, *labels)
    return found[1] if found else None


def _ms_to_s(ms: float | None) -> float | None:
    return ms / 1000 if ms is not None else None


def _fraction(percent: float | None) -> float | None:
    return percent / 100 if percent is not None else None


def parse_json(path: Path) -> Report:
    """The `--report_json` file (0.19+): keys per reference section 3.1. Whatever the file holds, a report
    that cannot be used raises ReportError."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8, a 5,000-digit int
        raise ReportError(f"report JSON {path.name} is unreadable: {printable(str(exc), 200)}") from None
    if not isinstance(data, dict):
        raise ReportError(f"report JSON {path.name} is not an object")
    perf, world, request, streaming, engine, machine = (
        _json_object(data, name) for name in ("performance", "world_info", "request_info", "streaming_metrics",
                                               "engine", "machine"))

    def num(section: dict[str, Any], key: str, required: bool = False) -> float | None:
        value = section.get(key)
        if value is None:
            if required:
                raise ReportError(f"report JSON has no performance.{key}")
            return None
        if isinstance(value, (dict, list)):  # str() of a deep one could exhaust the stack
            raise ReportError(f"report field {key!r} is not a number but {type(value).__name__}")
        return _number(key, str(value))

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
    for prefix, section, key in (("latency", perf, "request_latency_percentiles_ms"),
                                 ("ttft", streaming, "ttft_percentiles"), ("tpot", streaming, "tpot_percentiles")):
        breakdown = _json_object(section, key)
        for stat, short in _STATS.items():
            metrics[f"{prefix}_{short}_ms"] = num(breakdown, stat)
    info = {
        "model": _json_text(engine, "model"),
        "trtllm_version": _json_text(engine, "version"),
        "backend": "tensorrt" if (_json_text(engine, "backend") or "").upper() == "TRT" else "pytorch",
        "dtype": _json_text(engine, "dtype"),
        "kv_cache_dtype": _json_text(engine, "kv_cache_dtype"),
        "quantization": _json_text(engine, "quantization"),
        "engine_dir": _json_text(engine, "engine_dir"),
        "scheduling_policy": _json_text(world, "scheduling_policy"),
        "machine": _json_text(machine, "name"),
    }
    return _build_report("json", metrics, info)


def _json_object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A section of the report JSON; {} when it is missing or null (older releases, no --streaming)."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"report JSON {key!r} is not an object but {type(value).__name__}")
    return value


def _json_text(section: dict[str, Any], key: str) -> str | None:
    """A descriptive field: text, or a number or enum value written as one (scheduling_policy may be either)."""
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    raise ReportError(f"report JSON field {key!r} is not text but {type(value).__name__}")
