"""Analysis and the report never crash on a record: any record the schema accepts, in any mix of statuses,
sources and missing parts, is analysed and rendered (a negative throughput once made every later
`trtbench report` of a run crash; such a record is now refused by the schema itself)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SMALL_SPEC
from trtbench.analyze import analyze
from trtbench.grid import IdentityRule, expand
from trtbench.records import MAX_COUNT, MAX_GPU_GIB, Metrics, Record, RecordError, Source, Status, parse_record
from trtbench.report import render
from trtbench.spec import parse_spec

SPEC = parse_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048]\n  tp: [1, 2]").replace("tp: 1\n", ""))
POINTS = expand(SPEC, IdentityRule(()))
# Anywhere in the fields' physical ranges (records.Metrics), extremes included.
positive = st.floats(min_value=1e-6, max_value=1e12)
maybe = st.none() | st.floats(min_value=0, max_value=1e15)
count = st.none() | st.floats(min_value=0, max_value=MAX_COUNT)
gib = st.none() | st.floats(min_value=0, max_value=MAX_GPU_GIB)


@st.composite
def metrics(draw: st.DrawFn) -> Metrics:
    return Metrics(output_tok_per_s=draw(positive), request_per_s=draw(positive), total_tok_per_s=draw(positive),
                   total_latency_s=draw(positive), avg_latency_s=draw(maybe), avg_concurrency=draw(count),
                   ttft_ms=draw(maybe), tpot_ms=draw(maybe), per_user_tok_s=draw(maybe), energy_j=draw(maybe),
                   j_per_output_token=draw(maybe), roofline_output_tok_per_s=draw(maybe),
                   kv_allocated_gib=draw(gib))


@st.composite
def record(draw: st.DrawFn, index: int) -> Record:
    point = POINTS[index]
    status = draw(st.sampled_from(list(Status)))
    ok = status is Status.OK
    return Record(status=status, cause=draw(st.text(max_size=40)), source=draw(st.sampled_from(list(Source))),
                  metrics=draw(metrics()) if ok or draw(st.booleans()) else None,
                  predicted_wall_s=draw(st.none() | st.floats(min_value=0, max_value=1e9)),
                  point_id=point.id, attempt=f"a{index}", axes=point.values,
                  backend=draw(st.sampled_from(["sim", "trtllm"])), started_at="2026-11-27T10:00:00+00:00",
                  duration_s=draw(st.floats(min_value=0, max_value=1e6)))


runs = st.lists(st.integers(0, len(POINTS) - 1), unique=True, max_size=len(POINTS)).flatmap(
    lambda picked: st.tuples(*[record(i) for i in picked]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs)
def test_any_records_are_analysed_and_rendered(records):
    analysis = analyze(list(records), [p.id for p in POINTS], SPEC)
    assert len(analysis.results) == len(records) and analysis.missing == len(POINTS) - len(records)
    md = render(SPEC, analysis, {}, top_n=10)
    assert md.startswith("# ")


@pytest.mark.parametrize("change", [
    {"output_tok_per_s": -5.0}, {"request_per_s": 0.0}, {"output_tok_per_s": math.nan},
    {"total_latency_s": math.inf}, {"started_at": "not a time"}])
def test_an_ok_record_with_impossible_numbers_is_not_a_record(change):
    point = POINTS[0]
    good = Record(status=Status.OK, source=Source.MEASURED, point_id=point.id, attempt="a", axes=point.values,
                  backend="trtllm", started_at="2026-11-27T10:00:00+00:00", duration_s=1.0,
                  metrics=Metrics(output_tok_per_s=100.0, request_per_s=1.0, total_tok_per_s=200.0,
                                  total_latency_s=10.0))
    assert parse_record(good.model_dump_json()) == good
    data = good.model_dump(mode="json")
    (data if "started_at" in change else data["metrics"]).update(change)
    with pytest.raises(RecordError):
        parse_record(json.dumps(data))
