"""trtllm-bench's choice of max_batch_size and max_num_tokens (TB/build/tuning.py), reproduced exactly.

The sim predicts what trtllm-bench will do, and the builder sizes engines the same way, so both
must pick the numbers trtllm-bench would pick when the spec leaves them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trtbench.catalog.models import ModelArch

MAX_BATCH_SIZE_CAP = 4096
MAX_NUM_TOKENS_CAP = 32768


class InsufficientMemory(Exception):
    """trtllm-bench refuses the configuration; the message is the one it prints."""


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int
    max_num_tokens: int
    kv_cache_gib: float
    max_requests: float
    forced_num_tokens: bool  # rule 7 raised max_num_tokens to fit a whole prompt


def engine_gib(arch: ModelArch, precision: str) -> float:
    """BYTES_PER_ELEM by quant_algo, 2 for any other (MXFP4 among them): every parameter, none 16-bit apart."""
    per_param = {"fp8": 1.0, "nvfp4": 0.5}.get(precision, 2.0)
    return arch.params * per_param / 2**30


def kv_gib_per_token(arch: ModelArch, kv_dtype_bytes: int, tp: int) -> float:
    """The heuristic's own KV size: it uses max(tp, kv_heads) across the group, not per rank."""
    return 2 * arch.layers * max(tp, arch.kv_heads) * arch.head_dim * kv_dtype_bytes / 2**30


def _round_batch_size(raw: float) -> int:
    if raw < 256:
        return max(64, 32 * math.ceil(raw / 32))
    if raw < 1024:
        return 128 * math.ceil(raw / 128)
    return 256 * math.ceil(raw / 256)


def _round_num_tokens(raw: float) -> int:
    if raw < 4096:
        return max(2048, 256 * math.ceil(raw / 256))
    if raw < 8192:
        return 512 * math.ceil(raw / 512)
    return 1024 * math.ceil(raw / 1024)


def heuristic_limits(
    arch: ModelArch,
    *,
    gpu_total_gib: float,
    n_gpus: int,
    precision: str,
    kv_dtype_bytes: int,
    tp: int,
    pp: int,
    isl: int,
    osl: int,
    fraction: float,
    pytorch_backend: bool = True,
    chunked_context: bool = False,
) -> BatchLimits:
    total = gpu_total_gib * n_gpus
    engine = engine_gib(arch, precision)
    if total < engine:
        raise InsufficientMemory(
            f"The model requires at least: {engine:.2f} GB, the total GPU memory of {total:.2f} is insufficient."
        )
    cache = (total - engine) * fraction
    max_requests = cache / (kv_gib_per_token(arch, kv_dtype_bytes, tp) * (isl + osl))
    if max_requests < 1:
        raise InsufficientMemory(
            "The amount of KV cache memory is insufficient to run this model. Please try with more GPUs."
        )
    raw_bs = min(max_requests, MAX_BATCH_SIZE_CAP) / pp
    raw_tok = min(raw_bs * (1 + isl / osl), MAX_NUM_TOKENS_CAP)
    bs, tok = _round_batch_size(raw_bs), _round_num_tokens(raw_tok)
    forced = False
    if pytorch_backend and not chunked_context and tok < isl + bs:
        tok, forced = isl + bs, True
    return BatchLimits(bs, tok, cache, max_requests, forced)
