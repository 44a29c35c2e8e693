"""A benchmark's report checked against the point it claims to measure, before it may be recorded `ok`.

A report can parse and still be wrong: a truncated cached dataset runs fewer requests than asked, a
stale or foreign report names other lengths, a broken one has zero, negative or impossible rates, or a
value outside its field's physical range (records.Metrics: a negative concurrency, a 2^70 batch size).
Such a report is recorded as `invalid_report` with what differed, never ranked.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from trtbench.grid import Point
from trtbench.precision import KvDtype, Precision
from trtbench.records import MAX_OUTPUT_TOK_PER_S_PER_GPU, Metrics

# trtbench's datasets have fixed lengths and trtllm-bench generates exactly OSL tokens (`--eos_id -1`,
# hard-coded before 1.0): averages differ from the point only by the report's rounding.
LENGTH_TOLERANCE = 0.01
_POSITIVE = {"output_tok_per_s": "output throughput", "request_per_s": "request throughput",
             "total_latency_s": "total latency"}


def label_problems(precision: Precision, kv: KvDtype, info: dict[str, str]) -> list[str]:
    """Where the report's own `Quantization` / `KV Cache Dtype` contradict the precision and KV dtype the point
    is labelled with (FP8 weights that were never loaded, or a 16-bit label on FP8 ones). A value the report
    leaves to the checkpoint (`auto`) or does not print is not judged."""
    found = []
    weights = {Precision.FP8: "FP8", Precision.MXFP4: "MXFP4", Precision.NVFP4: "NVFP4"}.get(precision)
    for what, said, label in (("quantization", info.get("quantization"), weights),
                              ("KV cache dtype", info.get("kv_cache_dtype"), "FP8" if kv is KvDtype.FP8 else None)):
        if said is None or said.strip().lower() in ("", "auto"):
            continue
        # W4A16_MXFP4 and W4A8_MXFP4_FP8 are MXFP4 weights, W4A8_NVFP4_FP8 NVFP4 ones, whatever their activations
        named = next((name for name in ("MXFP4", "NVFP4", "FP8") if name in said.upper()), None)
        if named != label:
            found.append(f"the report says {what} {said}, the point is labelled {label or '16-bit'}"
                         f"{' weights' if what == 'quantization' else ' KV cache'}")
    return found


def problems(point: Point, metrics: dict[str, float], gpus: int) -> list[str]:
    """What in `metrics` (the report's numbers and the log's allocations) contradicts `point` run on `gpus`
    GPUs or a field's physical range; empty when the report fits."""
    found = []
    for key, what in _POSITIVE.items():
        value = metrics.get(key)
        if value is None or not math.isfinite(value) or value <= 0:
            found.append(f"{what} is {value} (must be a positive number)")
    found += out_of_range(metrics)
    output = metrics.get("output_tok_per_s")
    if output is not None and output > MAX_OUTPUT_TOK_PER_S_PER_GPU * gpus:
        found.append(f"output throughput {output:,.0f} tokens/s on {gpus} GPU(s) is impossible")
    requests = metrics.get("num_requests")
    if requests is not None and requests != point.requests:
        found.append(f"{requests:g} requests reported, the point asked for {point.requests}")
    for key, asked, label in (("avg_input_len", point.isl, "ISL"), ("avg_output_len", point.osl, "OSL")):
        got = metrics.get(key)
        if got is not None and abs(got - asked) > LENGTH_TOLERANCE * asked:
            found.append(f"average {label} {got:g}, the point asked for {asked}")
    return found


_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"),
           "less_than_equal": ("le", "<=")}


def out_of_range(metrics: dict[str, float]) -> list[str]:
    """Each value outside the range its records.Metrics field allows, named with the value (`avg_concurrency
    is -4 (must be >= 0)`); a field missing here, or one of _POSITIVE (said above), is not repeated."""
    try:
        Metrics.from_flat(metrics)
    except ValidationError as exc:
        return [f"{err['loc'][-1]} is {_number(err['input'])} ({_why(err)})" for err in exc.errors()
                if err["type"] != "missing" and err["loc"][0] not in _POSITIVE]
    return []


def _why(err: Any) -> str:
    key, sign = _BOUNDS.get(err["type"], (None, ""))
    return f"must be {sign} {_number(err['ctx'][key])}" if key else str(err["msg"])


def _number(value: Any) -> str:
    """-4, 2,147,483,649 and 1.18059e+21, as a reader compares them with a bound."""
    if isinstance(value, (int, float)) and float(value).is_integer() and abs(value) < 1e16:
        return f"{int(value):,}"
    return f"{value:g}" if isinstance(value, float) else repr(value)
