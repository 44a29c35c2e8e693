"""The memory model's verdicts: ok with a concurrency ceiling, oom (and where), infeasible."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import SMALL_SPEC
from trtbench.deployment import deployment_for
from trtbench.precision import Precision
from trtbench.sim.memory import GIB, plan_memory
from trtbench.spec import parse_spec


def dep_for(text: str = SMALL_SPEC, **changes):
    dep = deployment_for(parse_spec(text))
    runtime = changes.pop("runtime", None)
    if "precision" in changes:
        changes["precision"] = Precision(changes["precision"])
    if runtime:
        changes["runtime"] = dep.runtime.model_copy(update=runtime)
    return dataclasses.replace(dep, **changes)


def test_llama8b_fp8_on_h100_layout():
    plan = plan_memory(dep_for(), 1024, 1024)
    assert plan.verdict == "ok"
    # FP8 layers (6.98e9 params) + 16-bit embedding and lm_head (2 x 525M x 2 bytes) = 9.08 GB.
    assert plan.weights_gib * GIB == pytest.approx(6_979_588_096 + 2 * 525_336_576 * 2)
    assert plan.kv_bytes_per_token == 65_536
    expected_pool = 0.9 * (plan.gpu_total_gib - plan.weights_gib - plan.activation_gib - plan.overhead_gib)
    assert plan.kv_pool_gib == pytest.approx(expected_pool)
    assert plan.max_concurrent_seqs == plan.kv_tokens // 32 // (2048 // 32)


def test_16k_16k_holds_a_few_dozen_sequences():
    """Reference 6: only a few dozen 32k sequences fit for an 8B model with FP8 KV on 80 GB."""
    plan = plan_memory(dep_for(), 16384, 16384)
    assert plan.verdict == "ok"
    assert 20 <= plan.max_concurrent_seqs <= 40
    assert plan.max_num_tokens == 16384 + 64


def test_fp16_kv_halves_capacity():
    fp8 = plan_memory(dep_for(), 4096, 4096)
    fp16 = plan_memory(dep_for(kv_dtype_bytes=2), 4096, 4096)
    assert fp16.max_concurrent_seqs == pytest.approx(fp8.max_concurrent_seqs / 2, rel=0.02)


def test_weights_that_do_not_fit_are_oom_at_load():
    text = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B").replace("h100-sxm", "l40s")
    plan = plan_memory(dep_for(text, precision="bf16"), 128, 128)
    assert plan.verdict == "oom" and plan.cause.startswith("weights load")


def test_one_sequence_larger_than_the_pool_is_infeasible():
    text = SMALL_SPEC.replace("h100-sxm", "l4").replace("kv_cache_dtype: fp8", "kv_cache_dtype: auto")
    dep = dep_for(text, precision="bf16", kv_dtype_bytes=2)
    heuristic = plan_memory(dep, 65536, 1024)  # trtllm-bench refuses before allocating
    assert heuristic.verdict == "infeasible" and "KV cache memory is insufficient" in heuristic.cause
    given = dataclasses.replace(dep, runtime=dep.runtime.model_copy(
        update={"max_batch_size": 8, "max_num_tokens": 8192, "chunked_context": True}))
    plan = plan_memory(given, 65536, 1024)  # limits given: the runtime allocates, then no sequence fits
    assert plan.verdict == "infeasible"
    assert "one sequence of 66560 tokens" in plan.cause


def test_sequence_beyond_model_positions_is_infeasible():
    text = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "meta-llama/Meta-Llama-3-8B")
    plan = plan_memory(dep_for(text), 8192, 1024)
    assert plan.verdict == "infeasible" and "max_position_embeddings 8192" in plan.cause


def test_prompt_longer_than_user_token_budget_without_chunking():
    plan = plan_memory(dep_for(runtime={"max_batch_size": 64, "max_num_tokens": 4096}), 8192, 128)
    assert plan.verdict == "infeasible" and "max_num_tokens 4096" in plan.cause
    chunked = plan_memory(dep_for(runtime={"max_batch_size": 64, "max_num_tokens": 4096,
                                           "chunked_context": True}), 8192, 128)
    assert chunked.verdict == "ok"


def test_huge_token_budget_leaves_no_room_for_kv():
    plan = plan_memory(dep_for(runtime={"max_batch_size": 64, "max_num_tokens": 2_000_000}), 128, 128)
    assert plan.verdict == "oom" and plan.cause.startswith("KV cache allocation")


def test_lower_fraction_means_fewer_sequences():
    base = plan_memory(dep_for(), 2048, 2048)
    low = plan_memory(dep_for(runtime={"kv_cache_free_gpu_mem_fraction": 0.5}), 2048, 2048)
    assert low.max_concurrent_seqs < base.max_concurrent_seqs * 0.6
