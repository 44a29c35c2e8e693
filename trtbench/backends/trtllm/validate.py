"""A benchmark's report checked against the point it claims to measure, before it may be recorded `ok`.

A report can parse and still be wrong: a truncated cached dataset runs fewer requests than asked, a
stale or foreign report names other lengths, a broken one has zero, negative or impossible rates. Such
a report is recorded as `invalid_report` with what differed, never ranked.
"""

from __future__ import annotations

import math

from trtbench.grid import Point
from trtbench.precision import KvDtype, Precision

# trtbench's datasets have fixed lengths and trtllm-bench generates exactly OSL tokens (`--eos_id -1`,
# hard-coded before 1.0): averages differ from the point only by the report's rounding.
LENGTH_TOLERANCE = 0.01
# Far above any GPU of 2026 (an H100 decodes tens of thousands of tokens/s): only a broken report reaches it.
MAX_OUTPUT_TOK_PER_S_PER_GPU = 10_000_000.0
_POSITIVE = {"output_tok_per_s": "output throughput", "request_per_s": "request throughput",
             "total_latency_s": "total latency"}


def label_problems(precision: Precision, kv: KvDtype, info: dict[str, str]) -> list[str]:
    """Where the report's own `Quantization` / `KV Cache Dtype` contradict the precision and KV dtype the point
    is labelled with (FP8 weights that were never loaded, or a 16-bit label on FP8 ones). A value the report
    leaves to the checkpoint (`auto`) or does not print is not judged."""
    found = []
    weights = {Precision.FP8: "FP8", Precision.MXFP4: "MXFP4"}.get(precision)
    for what, said, label in (("quantization", info.get("quantization"), weights),
                              ("KV cache dtype", info.get("kv_cache_dtype"), "FP8" if kv is KvDtype.FP8 else None)):
        if said is None or said.strip().lower() in ("", "auto"):
            continue
        # W4A16_MXFP4 and W4A8_MXFP4_FP8 are MXFP4 weights, whatever their activations
        named = "MXFP4" if "MXFP4" in said.upper() else "FP8" if "FP8" in said.upper() else None
        if named != label:
            found.append(f"the report says {what} {said}, the point is labelled {label or '16-bit'}"
                         f"{' weights' if what == 'quantization' else ' KV cache'}")
    return found


def problems(point: Point, metrics: dict[str, float], gpus: int) -> list[str]:
    """What in `metrics` contradicts `point` run on `gpus` GPUs; empty when the report fits."""
    found = []
    for key, what in _POSITIVE.items():
        value = metrics.get(key)
        if value is None or not math.isfinite(value) or value <= 0:
            found.append(f"{what} is {value} (must be a positive number)")
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
