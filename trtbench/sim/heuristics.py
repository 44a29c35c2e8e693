"""trtllm-bench's choice of max_batch_size and max_num_tokens (TB/build/tuning.py, later TB/tuning/heuristics.py),
reproduced exactly, as each release runs it (`Sizing`).

The sim predicts what trtllm-bench will do, and the builder sizes engines the same way, so both
must pick the numbers trtllm-bench would pick when the spec leaves them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trtbench.catalog.models import ModelArch
from trtbench.deployment import Sizing
from trtbench.precision import Precision

MAX_BATCH_SIZE_CAP = 4096
MAX_NUM_TOKENS_CAP = 32768
# tuning.py BYTES_PER_ELEM by quant_algo (FP8 and FP8_BLOCK_SCALES 1, NVFP4 0.5; NO_QUANT and any other 2), applied
# to the checkpoint's safetensors element count (bench/build/dataclasses.py: `sum(parameter_count.values())`).
BYTES_PER_ELEM = {Precision.FP8: 1.0, Precision.NVFP4: 0.5}
# TUNED_QUANTS (bench/build/build.py, 1.0 and later): quant_algos the heuristic runs for. An MXFP4 checkpoint loads
# as W4A16_MXFP4 (Hopper) or W4A8_MXFP4_* (Blackwell), none of them, so trtllm-bench takes its defaults
# (BuildConfig / TorchLlmArgs max_batch_size 2048, max_num_tokens 8192) and sizes nothing.
UNTUNED = {Precision.MXFP4}
DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NUM_TOKENS = 2048, 8192


class InsufficientMemory(Exception):
    """trtllm-bench refuses the configuration; the message is the one it prints."""


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int
    max_num_tokens: int
    kv_cache_gib: float
    max_requests: float
    forced_num_tokens: bool  # rule 7 raised max_num_tokens to fit a whole prompt


def weight_split(arch: ModelArch, touched: float) -> tuple[float, float, int]:
    """(quantized, routed-expert, kept 16-bit) weights when `touched` experts per MoE layer count: the embedding,
    lm_head, a mixture's routers and a vision encoder stay 16-bit, as ModelOpt's recipes and gpt-oss's checkpoint
    leave them."""
    experts = arch.moe_layers * touched * arch.expert_params
    kept = arch.embedding_params + arch.lm_head_params + arch.router_params + arch.vision_params
    return arch.streamed_params(touched) - experts - arch.router_params, experts, kept


def weight_bytes(arch: ModelArch, precision: Precision, touched: float) -> tuple[float, float]:
    """(the layers other than routed experts, the routed experts) in bytes as the checkpoint holds them, with
    `touched` experts per MoE layer: quantized layers at the precision's width (NVFP4 9/16 with its FP8 scales),
    MXFP4 experts at 17/32, the kept layers at 16 bits."""
    quantized, experts, kept = weight_split(arch, touched)
    return quantized * precision.bytes + kept * 2, experts * precision.expert_bytes


def _elements(bytes_per_weight: float) -> float:
    """Safetensors elements per weight: a 16-bit tensor holds one weight an element; FP8 (F8_E4M3) and the FP4
    packs (U8, two weights each) with their 8-bit scales are one byte an element, so as many as bytes."""
    return bytes_per_weight / 2 if bytes_per_weight >= 2 else bytes_per_weight


def checkpoint_elements(arch: ModelArch, precision: Precision) -> float:
    """What trtllm-bench calls the parameter count: the checkpoint's elements (per-tensor FP32 scalars left out)."""
    quantized, experts, kept = weight_split(arch, arch.experts)
    return quantized * _elements(precision.bytes) + experts * _elements(precision.expert_bytes) + kept


def engine_gib(arch: ModelArch, precision: Precision, sizing: Sizing = Sizing.ELEMENTS) -> float:
    """The heuristic's engine size. Sizing.ELEMENTS: elements x BYTES_PER_ELEM, so an NVFP4 checkpoint's packed
    halves count half again and an FP8 one's 16-bit embedding half; from Sizing.BYTES the checkpoint's bytes
    (`checkpoint_size_in_gb`: each tensor at its dtype's width, FP4 packs and their FP8 scales included)."""
    if sizing is Sizing.ELEMENTS:
        return checkpoint_elements(arch, precision) * BYTES_PER_ELEM.get(precision, 2.0) / 2**30
    return sum(weight_bytes(arch, precision, arch.experts)) / 2**30


def kv_gib_per_token(arch: ModelArch, kv_dtype_bytes: int, tp: int, sizing: Sizing = Sizing.ELEMENTS) -> float:
    """The heuristic's own KV size: K and V of max(tp, kv_heads) heads, across the group (under attention DP too),
    not per rank; from Sizing.MLA latent attention's one entry of kv_lora + rope_dim per layer."""
    if sizing >= Sizing.MLA and arch.is_mla:
        return arch.layers * (arch.kv_lora + arch.rope_dim) * kv_dtype_bytes / 2**30
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
    precision: Precision,
    kv_dtype_bytes: int,
    tp: int,
    pp: int,
    isl: int,
    osl: int,
    fraction: float,
    pytorch_backend: bool = True,
    chunked_context: bool = False,
    sizing: Sizing = Sizing.ELEMENTS,
    attention_dp: bool = False,
) -> BatchLimits:
    """`sizing`: the release's (`deployment.sizing_of`). From Sizing.BYTES attention DP sizes one rank: one GPU's
    memory (per pipeline stage) against the engine / tp, each rank its own batch; before, the group's."""
    if precision in UNTUNED:
        return _with_rule_7(DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NUM_TOKENS, isl, 0.0, math.inf,
                            pytorch_backend and not chunked_context)
    engine = engine_gib(arch, precision, sizing)
    total = gpu_total_gib * n_gpus
    if sizing >= Sizing.BYTES and attention_dp:
        total, engine = gpu_total_gib * pp, engine / tp
    if total < engine:
        raise InsufficientMemory(
            f"The model requires at least: {engine:.2f} GB, the total GPU memory of {total:.2f} is insufficient."
        )
    cache = (total - engine) * fraction
    max_requests = cache / (kv_gib_per_token(arch, kv_dtype_bytes, tp, sizing) * (isl + osl))
    if max_requests < 1:
        raise InsufficientMemory(
            "The amount of KV cache memory is insufficient to run this model. Please try with more GPUs."
        )
    raw_bs = min(max_requests, MAX_BATCH_SIZE_CAP) / pp
    raw_tok = min(raw_bs * (1 + isl / osl), MAX_NUM_TOKENS_CAP)
    return _with_rule_7(_round_batch_size(raw_bs), _round_num_tokens(raw_tok), isl, cache, max_requests,
                        pytorch_backend and not chunked_context)


def _with_rule_7(bs: int, tok: int, isl: int, cache: float, max_requests: float, rule_7: bool) -> BatchLimits:
    """The PyTorch path without chunking raises max_num_tokens to the longest prompt plus max_batch_size
    (benchmark/utils/general.py get_settings), tuned or default."""
    forced = rule_7 and tok < isl + bs
    return BatchLimits(bs, isl + bs if forced else tok, cache, max_requests, forced)
