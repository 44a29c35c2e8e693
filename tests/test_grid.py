"""Grid expansion order, request counts, and point identity."""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_SPEC
from trtbench.grid import expand
from trtbench.spec import RequestRule, parse_spec

SIM = {"backend": "sim", "trtbench": "x", "perf_model": "roofline-v1", "gpu": "h100-sxm"}


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
    newer = expand(parse_spec(SMALL_SPEC), {**SIM, "perf_model": "scheduler-v2"})
    assert not {p.id for p in a} & {p.id for p in knob}
    assert not {p.id for p in a} & {p.id for p in newer}


def test_changing_one_length_keeps_the_other_points():
    a = {(p.isl, p.osl): p.id for p in expand(parse_spec(SMALL_SPEC), SIM)}
    b = {(p.isl, p.osl): p.id for p in expand(parse_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 4096]")),
                                              SIM)}
    assert a[(128, 128)] == b[(128, 128)] and a[(128, 1024)] == b[(128, 1024)]
    assert (4096, 128) in b and (2048, 128) not in b
