"""Attention that is not over the whole context (gpt-oss's sliding windows, Llama 4's chunks) and the models that
use it, against hand-worked memory and time (their parameter totals: tests/test_moe.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SMALL_SPEC
from trtbench.catalog.models import PRESETS, keys_attended
from trtbench.deployment import make_deployment
from trtbench.records import Status
from trtbench.sim import calibration, roofline
from trtbench.sim.ifb import IfbModel
from trtbench.sim.memory import plan_memory
from trtbench.sim.predict import predict_point
from trtbench.sim.steptime import AnalyticStep, Batch


def test_gpt_oss_20b_matches_its_model_card():
    """OpenAI: 20.91B total, 3.61B active."""
    arch = PRESETS["gpt-oss-20b"]
    assert arch.params == pytest.approx(20.91e9, rel=0.002)
    assert arch.active_params + arch.lm_head_params == pytest.approx(3.61e9, rel=0.005)


@given(first=st.integers(0, 300), count=st.integers(0, 300), span=st.one_of(st.none(), st.integers(1, 400)))
def test_keys_attended_is_the_sum_it_names(first, count, span):
    last = first + count - 1
    assert keys_attended(first, last, span) == sum(c if span is None else min(c, span) for c in range(first, last + 1))


def test_keys_attended_by_hand():
    assert keys_attended(1, 4, None) == 1 + 2 + 3 + 4
    assert keys_attended(1, 5, 3) == 1 + 2 + 3 + 3 + 3
    assert keys_attended(4, 6, 3) == 9
    assert keys_attended(2, 3, 5) == 2 + 3
    assert keys_attended(5, 4, None) == 0


def test_sliding_layers_keep_only_their_window_of_kv_cache():
    """gpt-oss-120b FP8 at TP2: weights per GPU: layers 36 x (attention 2 x 2880 x 4096 + 2 x 2880 x 512 + biases
    5,120 + norms 5,760 + router 368,640 + experts 128 x 3 x 2880^2) + final norm = 115,630,966,080, of which
    the routers (13,271,040) stay 16-bit with the embedding and head (1,158,266,880): 117,960,770,880 B / 2 =
    54.93 GiB; 109.86 GiB at TP1, which an H100 cannot hold. A 2,048-token sequence keeps 2,048 tokens in
    the 18 full layers and 128 in the 18 sliding ones: 1,088 a layer on average, 34 blocks of 32, not 64."""
    tp1 = plan_memory(make_deployment("openai/gpt-oss-120b", "h100-sxm", "fp8"), 1024, 1024)
    assert tp1.verdict is Status.OOM and "109.9 GiB of weights" in tp1.cause
    tp2 = plan_memory(make_deployment("openai/gpt-oss-120b", "h100-sxm", "fp8", tp=2), 1024, 1024)
    assert tp2.verdict is Status.OK and tp2.weights_gib == pytest.approx(54.93, abs=0.01)
    assert tp2.kv_bytes_per_token == 2 * 36 * 4 * 64 and tp2.seq_blocks == 34
    assert tp2.max_concurrent_seqs == tp2.kv_tokens // 32 // 34


def test_chunked_layers_keep_the_whole_sequence():
    """Llama 4's chunked layers save attention work, not KV cache (TensorRT-LLM keeps one unpartitioned
    pool): 9,000 tokens hold 282 blocks of 32. FP8 at TP2: 51.9 GiB of weights per GPU, at TP1 103.8."""
    tp2 = plan_memory(make_deployment("meta-llama/Llama-4-Scout-17B-16E-Instruct", "h100-sxm", "fp8", tp=2),
                      8000, 1000)
    assert tp2.verdict is Status.OK and tp2.seq_blocks == 282 and tp2.weights_gib == pytest.approx(51.90, abs=0.01)
    tp1 = plan_memory(make_deployment("meta-llama/Llama-4-Scout-17B-16E-Instruct", "h100-sxm", "fp8"), 1024, 1024)
    assert tp1.verdict is Status.OOM


def _decode(context: int) -> Batch:
    return Batch(tokens=1, sequences=1, sampled=1, pairs=context, kv_read=context)


@pytest.mark.parametrize(("model", "bounded_share"), [("openai/gpt-oss-120b", 18 / 36),
                                                       ("meta-llama/Llama-4-Scout-17B-16E-Instruct", 36 / 48)])
def test_a_decode_step_reads_no_more_than_the_window(model, bounded_share):
    """Past the window (128) or chunk (8,192), one more cached token costs a decode step only in the
    full-attention layers: half of gpt-oss's, a quarter of Scout's; without windows, in all of them."""
    factors = calibration.load()[0]
    dep = make_deployment(model, "h200-sxm", "fp8", tp=2)
    full = dataclasses.replace(dep, arch=dataclasses.replace(dep.arch, sliding_layers=0, chunked_layers=0))
    windowed, unbounded = AnalyticStep(dep, factors), AnalyticStep(full, factors)

    def growth(step: AnalyticStep) -> float:
        return step.iteration_s(_decode(200_000)) - step.iteration_s(_decode(100_000))

    assert growth(unbounded) > 0
    assert growth(windowed) == pytest.approx((1 - bounded_share) * growth(unbounded), rel=1e-9)


def test_windows_raise_throughput_and_stay_under_the_roofline():
    """gpt-oss-120b at 4,096 + 4,096 tokens: its sliding layers hold less KV (more sequences at once) and read
    less; the roofline bound, which counts the same windows, stays the faster."""
    dep = make_deployment("openai/gpt-oss-120b", "h200-sxm", "fp8")
    full = dataclasses.replace(dep, arch=dataclasses.replace(dep.arch, sliding_layers=0))
    out = {}
    for name, d in (("windowed", dep), ("full", full)):
        plan = plan_memory(d, 4096, 4096)
        outcome = predict_point(d, IfbModel(), 4096, 4096, 500)
        assert outcome.status is Status.OK
        bound = 500 * 4096 / roofline.bound_s(d, plan, 4096, 4096, 500)
        out[name] = (plan.max_concurrent_seqs, outcome.metrics.output_tok_per_s, bound)
        assert outcome.metrics.output_tok_per_s < bound
    assert out["windowed"][0] > 1.8 * out["full"][0]  # 4,160 tokens held a layer on average, not 8,192
    assert out["windowed"][1] > out["full"][1]
    # The bound counts the windows too: twice the sequences at once (half the weight reads per token) and about
    # half the decode KV bytes; were it blind to them, the windowed bound would gain only from the concurrency.
    assert out["windowed"][2] > 1.4 * out["full"][2]


def test_plan_names_the_windows_and_the_vision_encoder(cli, write_spec):
    spec = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "meta-llama/Llama-4-Scout-17B-16E-Instruct").replace(
        "gpu: h100-sxm", "gpu: h200-sxm")
    result = cli("plan", str(write_spec(spec)))
    text = " ".join(result.out.split())
    assert result.code == 0, result.err
    assert "108.6B parameters, 17.2B active per token (16 experts, top-1); 36 of 48 layers attend within " \
           "8,192-token chunks; 0.8B of them a vision encoder" in text


def test_windowed_models_are_outside_the_calibration(tmp_path):
    """The factors were fitted on full-attention Llama rows: a dense model with sliding windows (Mistral-7B-v0.1)
    is flagged, its full-attention twin (v0.3) is not."""
    from trtbench.sim.calibration import coverage

    v01 = {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
           "max_position_embeddings": 32768, "sliding_window": 4096}
    (tmp_path / "config.json").write_text(json.dumps(v01))
    windowed = coverage(make_deployment("mistralai/Mistral-7B-v0.1", "h100-sxm", "fp8", config=str(tmp_path)))
    assert any("sliding-window or chunked attention" in why for why in windowed.outside)
    assert not any("sliding" in why for why in coverage(make_deployment("mistralai/Mistral-7B-v0.3", "h100-sxm",
                                                                        "fp8")).outside)
