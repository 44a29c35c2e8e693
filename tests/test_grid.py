"""Grid expansion order, request counts, and point identity."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import SMALL_SPEC
from trtbench.backends.base import DEPLOYMENT_FIELDS
from trtbench.backends.trtllm.backend import TRTLLM_FIELDS
from trtbench.errors import SpecError
from trtbench.grid import IdentityRule, expand
from trtbench.spec import RequestRule, parse_spec

SIM = IdentityRule(DEPLOYMENT_FIELDS, {"backend": "sim", "perf_model": "roofline-v1", "gpu": "h100-sxm"})
TRT = IdentityRule(TRTLLM_FIELDS, {"backend": "trtllm", "trtllm_version": "1.1.0", "mode": "pytorch"})


def test_expansion_is_isl_major_in_spec_order():
    spec = parse_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [2048, 128]"))
    points = expand(spec, SIM)
    assert [(p.isl, p.osl) for p in points] == [(2048, 128), (2048, 1024), (128, 128), (128, 1024)]
    assert all(p.requests == 100 for p in points)
    assert len({p.id for p in points}) == 4


def test_table_overrides_rule():
    text = SMALL_SPEC.replace("default: {fixed: 100}",
                              "default: {fixed: 100}\n  table:\n    - {isl: 2048, osl: 128, requests: 7}")
    counts = {(p.isl, p.osl): p.requests for p in expand(parse_spec(text), SIM)}
    assert counts == {(128, 128): 100, (128, 1024): 100, (2048, 128): 7, (2048, 1024): 100}


@pytest.mark.parametrize(
    ("rule", "isl", "osl", "expected"),
    [
        ({"budget_tokens": 6_000_000}, 128, 1024, 5200),  # 5208 -> two significant digits
        ({"budget_tokens": 6_000_000, "max": 30000}, 64, 64, 30000),
        ({"budget_tokens": 6_000_000, "min": 200}, 16384, 16384, 200),  # 183 -> min
        ({"budget_tokens": 100, "min": 3}, 128, 128, 3),  # budget below one request
        ({"fixed": 42}, 1, 1, 42),
    ],
)
def test_request_rules(rule, isl, osl, expected):
    assert RequestRule(**rule).count(isl, osl) == expected


def test_ids_are_stable_and_ignore_name_and_output_dir():
    a = expand(parse_spec(SMALL_SPEC), SIM)
    b = expand(parse_spec(SMALL_SPEC.replace("name: tiny", "name: other") + "output_dir: elsewhere\n"), SIM)
    assert [p.id for p in a] == [p.id for p in b]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("precision: fp8", "precision: fp16"),
        ("kv_cache_dtype: fp8", "kv_cache_dtype: auto"),
        ("gpu: h100-sxm", "gpu: h200-sxm"),
        ("model: meta-llama/Llama-3.1-8B", "model: meta-llama/Llama-3.1-70B"),
        ("default: {fixed: 100}", "default: {fixed: 101}"),
    ],
)
def test_any_change_behind_a_result_changes_every_id(old, new):
    a = expand(parse_spec(SMALL_SPEC), SIM)
    b = expand(parse_spec(SMALL_SPEC.replace(old, new)), SIM)
    assert not {p.id for p in a} & {p.id for p in b}


def test_runtime_knob_and_backend_version_change_ids():
    a = expand(parse_spec(SMALL_SPEC), SIM)
    knob = expand(parse_spec(SMALL_SPEC + "runtime:\n  kv_cache_free_gpu_mem_fraction: 0.8\n"), SIM)
    newer = expand(parse_spec(SMALL_SPEC), IdentityRule(SIM.fields, {**SIM.backend, "perf_model": "scheduler-v2"}))
    assert not {p.id for p in a} & {p.id for p in knob}
    assert not {p.id for p in a} & {p.id for p in newer}


def test_changing_one_length_keeps_the_other_points():
    a = {(p.isl, p.osl): p.id for p in expand(parse_spec(SMALL_SPEC), SIM)}
    b = {(p.isl, p.osl): p.id for p in expand(parse_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 4096]")),
                                              SIM)}
    assert a[(128, 128)] == b[(128, 128)] and a[(128, 1024)] == b[(128, 1024)]
    assert (4096, 128) in b and (2048, 128) not in b


@pytest.mark.parametrize("rule", [SIM, TRT])
@pytest.mark.parametrize("edit", ["runtime:\n  timeout_s: 5\n", "trtllm: {log_level: debug, workspace: /ws}\n"])
def test_harmless_edits_keep_every_id(rule, edit):
    """Timeouts, log levels and workspaces never change a result, so they never re-run a point."""
    assert [p.id for p in expand(parse_spec(SMALL_SPEC + edit), rule)] == [p.id for p in expand(
        parse_spec(SMALL_SPEC), rule)]


def test_the_simulator_ignores_trtllm_settings_and_the_benchmark_does_not():
    edit = "trtllm: {streaming: true, extra_llm_api_options: {enable_attention_dp: true}}\n"
    assert [p.id for p in expand(parse_spec(SMALL_SPEC + edit), SIM)] == [p.id for p in expand(
        parse_spec(SMALL_SPEC), SIM)]
    assert not {p.id for p in expand(parse_spec(SMALL_SPEC + edit), TRT)} & {p.id for p in expand(
        parse_spec(SMALL_SPEC), TRT)}


AXES_SPEC = SMALL_SPEC.replace("precision: fp8\n", "").replace(
    "grid:\n", "grid:\n  tp: [2, 4]\n  precision: [fp8, fp16]\n")


def test_extra_axes_expand_outermost_in_axis_order():
    points = expand(parse_spec(AXES_SPEC), SIM)
    assert len(points) == 2 * 2 * 4 and len({p.id for p in points}) == 16
    # precision before tp (EXTRA_AXES order), then ISL, then OSL
    assert [(p.values["precision"], p.values["tp"], p.isl, p.osl) for p in points[:5]] == [
        ("fp8", 2, 128, 128), ("fp8", 2, 128, 1024), ("fp8", 2, 2048, 128), ("fp8", 2, 2048, 1024),
        ("fp8", 4, 128, 128)]
    assert points[0].label == "precision=fp8 tp=2 ISL=128 OSL=128 N=100"


def test_a_scalar_and_the_same_value_on_an_axis_are_one_point():
    """Going from `tp: 2` to `grid: {tp: [2, 4]}` re-runs nothing already measured at TP 2."""
    scalar = expand(parse_spec(SMALL_SPEC + "tp: 2\n"), SIM)
    swept = expand(parse_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  tp: [2, 4]\n")), SIM)
    assert [p.id for p in scalar] == [p.id for p in swept if p.values["tp"] == 2]


def test_an_axis_set_twice_is_refused():
    with pytest.raises(SpecError, match=r"tp is set and also swept under grid\.tp"):
        parse_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  tp: [2, 4]\n") + "tp: 2\n")


def test_a_swept_spec_round_trips_through_its_canonical_form():
    spec = parse_spec(AXES_SPEC)
    again = parse_spec(yaml.safe_dump(spec.canonical()))
    assert again == spec and again.grid.swept() == {"precision": ["fp8", "fp16"], "tp": [2, 4]}


def test_a_concurrency_ladder_is_the_list_it_stands_for(cli, write_spec):
    ladder = SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: {start: 1, stop: 256}\n")
    listed = SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: [1, 2, 4, 8, 16, 32, 64, 128, 256]\n")
    assert [p.id for p in expand(parse_spec(ladder), SIM)] == [p.id for p in expand(parse_spec(listed), SIM)]
    assert parse_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: {start: 3, stop: 100, factor: 4}\n")
                      ).grid.concurrency == [3, 12, 48, 100]  # stop itself is a step
    bad = write_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: {start: 8, stop: 1}\n"))
    result = cli("plan", str(bad))
    assert result.code == 2 and "stop (1) is below start (8)" in result.err and len(result.err.splitlines()) == 1


def test_a_concurrency_step_runs_at_least_four_waves():
    spec = parse_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  concurrency: [1, 16, 64]\n"))  # 100 requests a pair
    requests = {(p.values["concurrency"], p.isl, p.osl): p.requests for p in expand(spec, SIM)}
    assert requests[(1, 128, 128)] == 100 and requests[(16, 128, 128)] == 100  # 4 x 16 = 64 < 100
    assert requests[(64, 128, 128)] == 256 and requests[(64, 2048, 1024)] == 256  # 4 x 64
