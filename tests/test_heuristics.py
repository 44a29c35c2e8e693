"""trtllm-bench's max_batch_size / max_num_tokens heuristic, checked on the reference's worked examples."""

from __future__ import annotations

import pytest

from trtbench.catalog.gpus import GPUS
from trtbench.catalog.models import PRESETS
from trtbench.precision import Precision
from trtbench.sim.heuristics import InsufficientMemory, heuristic_limits

H100 = GPUS["h100-sxm"].mem_total_gib
LLAMA8B = PRESETS["Llama-3.1-8B"]


def limits(**kw):
    args = dict(gpu_total_gib=H100, n_gpus=1, precision=Precision.FP8, kv_dtype_bytes=1, tp=1, pp=1, fraction=0.9)
    args.update(kw)
    return heuristic_limits(LLAMA8B, **args)


def test_worked_example_16k_16k_fp8():
    """Reference 1.4: 2 GiB per request, about 32 fit, bs 64, tokens 2048 raised by rule 7 to 16448."""
    got = limits(isl=16384, osl=16384)
    assert 32 <= got.max_requests < 33
    assert got.max_batch_size == 64
    assert got.max_num_tokens == 16384 + 64 and got.forced_num_tokens


def test_worked_example_16k_16k_without_rule_7():
    got = limits(isl=16384, osl=16384, pytorch_backend=False)
    assert (got.max_batch_size, got.max_num_tokens) == (64, 2048)


def test_worked_example_bf16_1k_1k():
    """Reference 3: BF16 on one H100 SXM, 1024/1024, build fraction 0.95: bs 256, tokens 2048."""
    got = limits(precision=Precision.BF16, kv_dtype_bytes=2, isl=1024, osl=1024, fraction=0.95, pytorch_backend=False)
    assert got.kv_cache_gib == pytest.approx(61.46, abs=0.01)
    assert got.max_requests == pytest.approx(245.8, abs=0.1)
    assert (got.max_batch_size, got.max_num_tokens) == (256, 2048)


def test_rounding_bands():
    short = limits(isl=128, osl=128)  # thousands of requests fit: capped at 4096, tokens 2 x 4096
    assert (short.max_batch_size, short.max_num_tokens) == (4096, 8192)
    mid = limits(isl=1024, osl=128)
    assert mid.max_batch_size % 128 == 0 and mid.max_num_tokens % 1024 == 0


def test_chunked_context_skips_rule_7():
    assert limits(isl=16384, osl=16384, chunked_context=True).max_num_tokens == 2048


def test_model_larger_than_gpu():
    with pytest.raises(InsufficientMemory, match="requires at least"):
        heuristic_limits(PRESETS["Llama-3.1-70B"], gpu_total_gib=GPUS["l4"].mem_total_gib, n_gpus=1,
                         precision=Precision.BF16, kv_dtype_bytes=2, tp=1, pp=1, isl=128, osl=128, fraction=0.9)


def test_no_request_fits():
    with pytest.raises(InsufficientMemory, match="KV cache memory is insufficient"):
        limits(isl=1_000_000, osl=1_000_000)
