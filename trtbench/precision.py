"""Closed sets of names: precisions that know their width (no module spells out "1 byte if fp8"), and the
str-valued enum they share with the record format."""

from __future__ import annotations

from enum import Enum


class Named(str, Enum):
    """An enum whose members print as their values."""

    def __str__(self) -> str:  # "fp8" in messages and f-strings, not "Precision.FP8"
        return str(self.value)


class Precision(Named):
    """Weights (and GEMM inputs) of the quantized layers. `mxfp4` is gpt-oss's published format, loaded as it
    ships: a mixture's routed experts in MXFP4 (4-bit values, one 8-bit scale per 32), every other layer 16-bit,
    and on Hopper 16-bit GEMMs (the experts are dequantized in the kernel). `nvfp4` is ModelOpt's NVFP4: every
    quantized layer, experts included, in 4-bit values with one FP8 scale per 16, GEMMs at FP4 (Blackwell)."""

    FP8 = "fp8"
    FP16 = "fp16"
    BF16 = "bf16"
    MXFP4 = "mxfp4"
    NVFP4 = "nvfp4"

    @property
    def bytes(self) -> float:
        """Per weight of the layers other than routed experts: NVFP4's 4 + 8/16 bits."""
        return {Precision.FP8: 1.0, Precision.NVFP4: 9 / 16}.get(self, 2.0)

    @property
    def expert_bytes(self) -> float:
        """Per weight of a mixture's routed experts: MXFP4's 4 + 8/32 bits."""
        return 17 / 32 if self is Precision.MXFP4 else self.bytes


class KvDtype(Named):
    """`auto` keeps the KV cache in the activation dtype (16-bit), as TensorRT-LLM does."""

    FP8 = "fp8"
    AUTO = "auto"

    @property
    def bytes(self) -> int:
        return 1 if self is KvDtype.FP8 else 2


def default_kv(precision: Precision) -> KvDtype:
    """The KV cache a point gets when no `kv_cache_dtype` is asked for: what TensorRT-LLM runs for that checkpoint.
    On the PyTorch path trtllm-bench itself picks an FP8 KV cache for an FP8 checkpoint whose hf_quant_config.json
    names none (NVIDIA's perf-benchmarking guide, "Quantization in the PyTorch Flow"), and the same for an NVFP4
    one (its `_KV_CACHE_MAP`: FP8 and NVFP4 -> fp8); trtbench's FP8 builds quantize the KV cache with the weights;
    every other precision keeps it 16-bit. The one rule `sweep`, `plan`, `predict`, `build` and the trtllm
    commands share."""
    return KvDtype.FP8 if precision in (Precision.FP8, Precision.NVFP4) else KvDtype.AUTO
