"""Every number is checked where it enters: a benchmark report's fields against their physical ranges (a report
that breaks one is recorded `invalid_report`, naming the field and value), a measured throughput given to
`calibrate` and `predict --csv`, and a record read back from results.jsonl."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC, load_records
from trtbench.backends.trtllm.validate import problems
from trtbench.grid import Point
from trtbench.records import Memory, Metrics, Record, RecordError, Source, Status, Telemetry, parse_record

POINT = Point((("isl", 128), ("osl", 128), ("requests", 100)), "p")
# A report that fits POINT: 100 requests of 128 + 128 tokens in 2 s.
FITS = {"output_tok_per_s": 6400.0, "request_per_s": 50.0, "total_tok_per_s": 12800.0, "total_latency_s": 2.0,
        "num_requests": 100.0, "avg_input_len": 128.0, "avg_output_len": 128.0, "avg_concurrency": 50.0}


def test_a_report_that_fits_has_no_problem():
    assert problems(POINT, FITS, gpus=1) == []


# One class each: below zero, above a count's int32 range, a fraction above 1, memory above any GPU's, a rate of 0
# where a run that produced numbers has a positive one, a percentile below zero.
@pytest.mark.parametrize(("field", "value", "said"), [
    ("avg_concurrency", -4.0, "avg_concurrency is -4 (must be >= 0)"),
    ("max_runtime_batch_size", float(2**70), "max_runtime_batch_size is 1.18059e+21 (must be <= 2,147,483,648)"),
    ("max_runtime_tokens", float(2**31 + 1), "max_runtime_tokens is 2,147,483,649 (must be <= 2,147,483,648)"),
    ("kv_memory_fraction", 1.5, "kv_memory_fraction is 1.5 (must be <= 1)"),
    ("kv_allocated_gib", 5000.0, "kv_allocated_gib is 5,000 (must be <= 2,048)"),
    ("engine_size_gib", -0.5, "engine_size_gib is -0.5 (must be >= 0)"),
    ("kv_allocated_tokens", -1.0, "kv_allocated_tokens is -1 (must be >= 0)"),
    ("total_tok_per_s", 0.0, "total_tok_per_s is 0 (must be > 0)"),
    ("ttft_ms", -1.0, "ttft_ms is -1 (must be >= 0)"),
    ("per_gpu_tok_s", -6400.0, "per_gpu_tok_s is -6,400 (must be >= 0)"),
    ("latency_p99_ms", -3.0, "latency_p99_ms is -3 (must be >= 0)"),
    ("gtps_p50", -1.0, "gtps_p50 is -1 (must be >= 0)"),
])
def test_a_value_outside_its_physical_range_is_named_with_the_value(field, value, said):
    assert problems(POINT, {**FITS, field: value}, gpus=1) == [said]


def test_every_broken_field_is_named_and_the_required_rates_once():
    found = problems(POINT, {**FITS, "output_tok_per_s": -1.0, "avg_concurrency": -1.0, "kv_memory_fraction": 2.0},
                     gpus=1)
    assert found == ["output throughput is -1.0 (must be a positive number)", "avg_concurrency is -1 (must be >= 0)",
                     "kv_memory_fraction is 2 (must be <= 1)"]


@pytest.mark.parametrize(("json_set", "said"), [
    ({"request_info.avg_num_concurrent_requests": -3, "world_info.max_batch_size": 2**70},
     ["avg_concurrency is -3 (must be >= 0)", "max_runtime_batch_size is 1.18059e+21 (must be <= 2,147,483,648)"]),
    ({"world_info.kv_cache_percentage": 90}, ["kv_memory_fraction is 90 (must be <= 1)"]),  # a percentage
])
def test_a_report_with_impossible_values_is_recorded_invalid_naming_each(cli, write_spec, tmp_path, fake_bench,
                                                                         monkeypatch, json_set, said):
    monkeypatch.setenv("FAKE_TRTLLM_JSON_SET", json.dumps(json_set))
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 1  # no point ok
    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(recs) == 4
    for rec in recs:
        assert rec["status"] == "invalid_report" and rec["metrics"] is None and rec["memory"] is None
        assert rec["cause"].startswith("the report does not describe the point: " + "; ".join(said))
        assert "raw log:" in rec["cause"]
    assert "| invalid_report |" in (tmp_path / "runs" / "tiny" / "report.md").read_text()


# What results.jsonl holds is checked on reading too: a damaged or hand-edited record with an impossible value is
# not a record (the store sets it aside; the point runs again).
@pytest.mark.parametrize(("part", "change"), [
    ("metrics", {"avg_concurrency": -1.0}), ("metrics", {"max_runtime_batch_size": 2.0**70}),
    ("metrics", {"total_latency_s": 0.0}), ("metrics", {"percentiles": {"ttft_p95_ms": -1.0}}),
    ("memory", {"gpu_total_gib": 4096.0}), ("memory", {"kv_pool_gib": -1.0}), ("memory", {"tokens_per_block": -32}),
    ("telemetry", {"mean_power_w": -1.0}), ("telemetry", {"peak_memory_used_gib": 1e6}), ("", {"duration_s": -1.0}),
])
def test_a_record_with_an_impossible_value_is_not_a_record(part, change):
    good = Record(status=Status.OK, source=Source.MEASURED, point_id="p", attempt="a", axes=dict(POINT.values),
                  backend="trtllm", started_at="2026-11-27T10:00:00+00:00", duration_s=1.0,
                  metrics=Metrics.from_flat(FITS), memory=Memory(gpu_total_gib=79.6, kv_pool_gib=58.3),
                  telemetry=Telemetry(gpu_name="H100", driver="560", gpus=1, samples=2, peak_memory_used_gib=70.0,
                                      mean_power_w=500.0, peak_power_w=700.0, energy_j=1000.0,
                                      mean_sm_clock_mhz=1980.0))
    assert parse_record(good.model_dump_json()) == good
    data = good.model_dump(mode="json")
    (data[part] if part else data).update(change)
    with pytest.raises(RecordError):
        parse_record(json.dumps(data))


MEASURED_CSV = "gpu,model,precision,tp,isl,osl,num_requests,output_tok_per_s\n" \
               "h100-sxm,meta-llama/Llama-3.1-8B,fp8,1,128,128,100,9000\n" \
               "h100-sxm,meta-llama/Llama-3.1-8B,fp8,{tp},128,2048,100,{value}\n"


@pytest.mark.parametrize("command", ["calibrate", "predict"])
@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-5", "-5"), ("1e12", "1000000000000.0"),
                                              ("abc", "'abc'"), ("inf", "inf"), ("1e400", "inf"), ("True", "'True'")])
def test_a_measured_throughput_that_is_no_throughput_is_one_line_naming_row_and_column(cli, tmp_path, command,
                                                                                       value, shown):
    (tmp_path / "m.csv").write_text(MEASURED_CSV.format(tp=1, value=value))
    result = cli(command, *(["m.csv"] if command == "calibrate" else ["--csv", "m.csv"]))
    where = "m.csv: row 2" if command == "calibrate" else "row 2"
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert (f"{where}, column output_tok_per_s: {shown} is not a measured throughput (a number above 0, at most "
            f"10,000,000 tokens/s on 1 GPU(s))") in result.err


def test_the_throughput_bound_is_per_gpu_of_the_row(cli, tmp_path):
    """15 million tokens/s is more than one GPU reaches, not more than TP2's two."""
    (tmp_path / "one.csv").write_text(MEASURED_CSV.format(tp=1, value="15000000"))
    assert "at most 10,000,000 tokens/s on 1 GPU(s)" in cli("predict", "--csv", "one.csv").err
    (tmp_path / "two.csv").write_text(MEASURED_CSV.format(tp=2, value="15000000"))
    result = cli("predict", "--csv", "two.csv")
    assert result.code == 0, result.err


def test_a_blank_throughput_is_a_row_without_a_measurement(cli, tmp_path):
    (tmp_path / "m.csv").write_text(MEASURED_CSV.format(tp=1, value=""))
    result = cli("calibrate", "m.csv")
    assert result.code == 0, result.err


def test_a_1mb_text_throughput_is_still_one_short_line(cli, tmp_path):
    (tmp_path / "m.csv").write_text(MEASURED_CSV.format(tp=1, value="x" * 2**20))
    result = cli("calibrate", "m.csv")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and len(result.err) < 400


def test_the_simulator_still_writes_valid_records_for_every_status(cli, write_spec, tmp_path):
    """The ranges hold for what the simulator plans too: an infeasible point (past Llama-3.1-8B's 131,072
    positions) keeps its memory plan, and a 70B model on a 24 GB L4 its plan that needs more than the GPU."""
    spec = SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 200000]")
    assert cli("sweep", "--no-plots", str(write_spec(spec))).code == 0
    recs = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert {rec["status"] for rec in recs} == {"ok", "infeasible"} and all(rec["memory"] for rec in recs)
    big = spec.replace("name: tiny", "name: big").replace("Llama-3.1-8B", "Llama-3.3-70B-Instruct").replace(
        "h100-sxm", "l4")
    assert cli("sweep", "--no-plots", str(write_spec(big))).code == 1  # no point ok
    (oom, *_) = load_records(tmp_path / "runs" / "big" / "results.jsonl")
    # 70B parameters at one byte each: over 60 GiB, on an L4's 22.49 GiB
    assert oom["status"] == "oom" and oom["memory"]["weights_gib"] > 60 and oom["memory"]["gpu_total_gib"] < 23
