"""What a crashed, truncated or mutated benchmark leaves behind, generated: `parse_json` returns a report
that can be recorded or raises ReportError, never anything else; `scan_log` never raises and quotes only
printable text. And `printable` itself, case by case."""

from __future__ import annotations

import copy
import json
import math
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trtbench.backends.trtllm.parse import Report, ReportError, parse_json, scan_log
from trtbench.backends.trtllm.validate import out_of_range
from trtbench.records import Metrics
from trtbench.text import printable

DATA = Path(__file__).parent / "data"
REPORT_LINES = (DATA / "report_d_1.1.txt").read_text().splitlines()
# A whole report JSON, every key of reference section 3.1, numbers made up.
REAL_JSON: dict[str, Any] = {
    "engine": {"model": "nvidia/Llama-3.1-8B-Instruct-FP8", "model_path": None, "engine_dir": None,
               "version": "1.2.0", "backend": "Pytorch", "dtype": "bfloat16", "kv_cache_dtype": "FP8",
               "quantization": "FP8"},
    "machine": {"name": "NVIDIA H100 80GB HBM3", "memory": {"total": 79.19}, "clocks": {"mem": 2.62}},
    "world_info": {"tp_size": 1, "pp_size": 1, "ep_size": None, "world_size": 1, "max_batch_size": 640,
                   "max_num_tokens": 2048, "scheduling_policy": "GUARANTEED_NO_EVICT", "kv_cache_percentage": 0.9,
                   "issue_rate": 8123.4},
    "request_info": {"num_requests": 1000, "avg_num_concurrent_requests": 483.3333, "avg_input_length": 1024,
                     "avg_output_length": 1024},
    "performance": {"total_latency_ms": 120000.0, "avg_request_latency_ms": 58000.0,
                    "request_throughput_req_s": 8.3333, "system_output_throughput_tok_s": 8533.3333,
                    "system_total_throughput_tok_s": 17066.6667, "output_throughput_per_user_tok_s": 17.6552,
                    "output_throughput_per_gpu_tok_s": 8533.3333,
                    "request_latency_percentiles_ms": {"p50": 58120.331, "p90": 90000.0, "p95": 95000.0,
                                                       "p99": 99000.0, "minimum": 10000.0, "maximum": 100000.0,
                                                       "average": 58000.0}},
    "streaming_metrics": {"token_output_speed_tok_s": 20.8776, "avg_ttft_ms": 9000.0, "avg_tpot_ms": 47.8983,
                          "tpot_percentiles": {"p50": 47.5, "minimum": 40.1122},
                          "ttft_percentiles": {"p99": 17900.0, "maximum": 18000.0}},
    "dataset": {"num_requests": 1000, "max_isl": 1024, "max_osl": 1024, "max_sequence_length": 2048},
}

# Characters that break a terminal or a markdown table, made frequent; then any character at all.
NASTY = st.sampled_from("\x00\x07\x1b[31m\x7f\x85\x9b\x9d\u2028\u202e\ud800\t\r\n")
TEXT = st.text(NASTY | st.characters(exclude_categories=()), max_size=40)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**400, max_value=10**400) | st.floats()
           | TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) under `node`, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    slots = []
    for key, child in list(items):
        slots += [(node, key), *_slots(child)]
    return slots


@st.composite
def mutated_reports(draw: st.DrawFn) -> bytes:
    """The real report with up to three subtrees replaced by anything or deleted, maybe a byte changed."""
    doc = copy.deepcopy(REAL_JSON)
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(_slots(doc)))
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(JSON_VALUES)
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode(errors="surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


def clean(text: str) -> bool:
    """One printable line: no control, surrogate, line-breaking or bidi-override character; bounded."""
    bad = {"Cc", "Cs", "Zl", "Zp"}
    return len(text) <= 500 and not any(unicodedata.category(c) in bad or "\u202a" <= c <= "\u202e"
                                        or "\u2066" <= c <= "\u2069" for c in text)


def assert_recordable(report: Report) -> None:
    assert all(isinstance(v, float) and math.isfinite(v) for v in report.metrics.values()), report.metrics
    assert all(clean(v) and v for v in report.info.values()), report.info
    metrics = {"total_tok_per_s": 1.0, **report.metrics}  # every key one a record has
    wrong = out_of_range(metrics)  # the backend records such a report as invalid, naming each value
    assert all(clean(line) for line in wrong), wrong
    if not wrong:
        Metrics.from_flat(metrics)


def assert_json_outcome(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        report = parse_json(path)
    except ReportError as exc:
        assert clean(str(exc)), str(exc)
        return
    assert_recordable(report)


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("json") / "r.json"


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES)
def test_json_of_any_shape(report_path, value):
    assert_json_outcome(report_path, json.dumps(value).encode(errors="surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(content=mutated_reports())
def test_mutated_real_json(report_path, content):
    assert_json_outcome(report_path, content)


@settings(max_examples=100, deadline=None)
@given(content=st.binary(max_size=200))
def test_json_of_any_bytes(report_path, content):
    assert_json_outcome(report_path, content)


def test_the_unmutated_real_json_is_recordable(report_path):
    """The mutations start from a report that parses, so a ReportError above is the mutation's doing."""
    report_path.write_text(json.dumps(REAL_JSON))
    report = parse_json(report_path)
    assert report.metrics["latency_p50_ms"] == 58120.331 and report.info["machine"] == "NVIDIA H100 80GB HBM3"
    assert_recordable(report)


NUMBERS = st.integers(0, 10**400).map(str) | st.text("0123456789.", min_size=1, max_size=12)
LOG_LINES = st.one_of(
    TEXT,
    st.sampled_from(["Killed", "MPI_ABORT was invoked on rank 3", "CUDA out of memory\x1b[0m",
                     "Allocated 5.95 GiB for max tokens in paged KV cache (86720).", "Loaded engine size: 99 MiB",
                     "= PYTORCH BACKEND", "= ENGINE DETAILS", "= PERFORMANCE OVERVIEW", "= STATISTICS"]),
    st.builds("Allocated {} GiB for max tokens in paged KV cache ({}).".format, NUMBERS, NUMBERS),
    st.builds("Loaded engine size: {} MiB".format, NUMBERS),
)


@st.composite
def logs(draw: st.DrawFn) -> list[str]:
    """Noise, maybe the real report with a few lines changed or values garbled, more noise."""
    lines = draw(st.lists(LOG_LINES, max_size=8))
    if draw(st.booleans()):
        report = list(REPORT_LINES)
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(report) - 1))
            label = report[at].split(":")[0]
            report[at] = draw(st.sampled_from([f"{label}: ", label + ":"])) + draw(TEXT) if draw(
                st.booleans()) else draw(LOG_LINES)
        lines += report
    return lines + draw(st.lists(LOG_LINES, max_size=8))


@settings(max_examples=200, deadline=None)
@given(lines=logs())
def test_scan_of_any_log(lines):
    scan = scan_log(lines)
    assert clean(scan.last_line)
    assert scan.failure is None or clean(scan.failure.line)
    assert all(math.isfinite(v) for v in scan.allocated.values())
    try:
        report = scan.text_report()
    except ReportError as exc:  # how a broken text report surfaces: when it is asked for, not while scanning
        assert scan.report is None and clean(str(exc)) and str(exc) == scan.report_error
        return
    if report is not None:
        assert_recordable(report)


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[1;31mERROR\x1b[0m: boom", "ERROR: boom"),  # ANSI colour (CSI SGR)
    ("\x1b]8;;http://x\x07link\x1b]8;;\x1b\\ text", "link text"),  # OSC hyperlink, both terminators
    ("\x1b(Bplain\x1b=", "plain"),  # charset selection, keypad mode
    ("\x9b31mred\x9b0m", "red"),  # the 8-bit CSI
    ("a\x00b\x7fc\x9fd\x01", "abcd"),  # NUL, DEL, C1, C0
    ("x\x1b", "x"),  # an escape cut off at the end
    ("a\tb\nc\r\nd\x85e\u2028f", "a b c  d e f"),  # each tab or line break is a space
    ("abc\u202edef\u2066", "abcdef"),  # bidi overrides
    ("lone \ud800", "lone \ufffd"),  # a surrogate JSON's "\ud800" can carry
    ("  padded\n", "padded"),
    ("Llama 3.1 — 8B ✓ 日本", "Llama 3.1 — 8B ✓ 日本"),  # printable Unicode stays
])
def test_printable(text, shown):
    assert printable(text) == shown


def test_printable_cuts_long_text_with_an_ellipsis():
    assert printable("x" * 500) == "x" * 500
    assert printable("x" * 501) == "x" * 499 + "…"
    assert printable("abcdef", limit=4) == "abc…"
    assert printable("\x1b[31m" * 100 + "abc", limit=4) == "abc"  # the limit counts what is shown


def test_a_negative_request_count_is_named_not_recorded():
    """Found by the mutated-report property: a report claiming -1 requests parses, and validation names it
    (the backend then records the point as invalid) instead of a record failing to build."""
    assert out_of_range({"output_tok_per_s": 8533.3, "request_per_s": 8.3, "total_tok_per_s": 1.0,
                         "total_latency_s": 120.0, "num_requests": -1.0}) == ["num_requests is -1 (must be >= 0)"]
