"""Whole sweeps through the real trtllm backend against the fake trtllm-bench, one per report format,
and every fault of the issue recorded as data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO, TRTLLM_SPEC, load_records
from trtbench.backends.trtllm import process
from trtbench.backends.trtllm.parse import log_lines, scan_log

ENGINE_DIR = REPO / "tests" / "data" / "engines" / "llama-fp8"  # the stand-in checks that it exists
ENGINE = f"trtllm: {{engine_dir: {ENGINE_DIR}}}\n"
STREAMING = "trtllm: {streaming: true}\n"


def records(tmp_path: Path, name: str = "tiny") -> list[dict]:
    return load_records(tmp_path / "runs" / name / "results.jsonl")


@pytest.mark.parametrize(
    ("version", "extra", "text_format", "stored_format"),
    [
        ("0.12.0", ENGINE, "A", "A"),
        ("0.16.0", f"trtllm: {{engine_dir: {ENGINE_DIR}, streaming: true}}\n", "B", "B"),
        ("0.18.0", "trtllm: {streaming: true, backend: pytorch}\n", "B", "B"),  # `= PyTorch backend` header
        ("0.20.0", STREAMING, "C", "json"),
        ("1.1.0", STREAMING, "D", "json"),
        ("1.2.0", "", "D", "json"),
    ],
)
def test_sweep_on_each_report_format(cli, write_spec, tmp_path, fake_bench, version, extra, text_format,
                                     stored_format):
    fake_bench.version(version)
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + extra)))
    assert result.code == 0, result.err
    assert f"TensorRT-LLM {version}" in result.err  # detected through the bench's own Python
    printed = {(p["isl"], p["osl"]): p for p in fake_bench.printed()}
    recs = records(tmp_path)
    assert len(recs) == 4 and len(printed) == 4
    for rec in recs:
        assert rec["status"] == "ok" and rec["source"] == "measured", rec["cause"]
        assert rec["detail"]["report_format"] == stored_format
        fake = printed[(rec["isl"], rec["osl"])]
        stored = {**rec["metrics"], **rec["metrics"]["percentiles"]}
        for key, value in fake.items():
            if key in ("isl", "osl", "n", "command", "argv", "start", "end", "gpus", "speed"):  # not a metric
                continue
            assert stored[key] == pytest.approx(value, rel=1e-9), key
        assert rec["metrics"]["kv_allocated_gib"] == 58.30  # the last allocation, not the estimation pool
        # The text report in the log parses to the same numbers, whatever the stored source was.
        text = scan_log(log_lines(Path(rec["detail"]["log"]))).text_report()
        assert text is not None and text.format == text_format
        for key in ("output_tok_per_s", "request_per_s", "total_latency_s"):
            assert text.metrics[key] == pytest.approx(rec["metrics"][key], rel=1e-5, abs=1e-4)
        assert fake["n"] == rec["requests"] == 100
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "SIMULATED" not in report and "measured with trtllm-bench" in report


def test_streaming_figures_are_kept(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("1.1.0")
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + STREAMING))).code == 0
    for rec in records(tmp_path):
        assert rec["metrics"]["ttft_ms"] == pytest.approx(50.0 + rec["isl"] / 100)
        assert rec["metrics"]["tpot_ms"] == pytest.approx(10.0 + rec["osl"] / 1000)
        assert "--streaming" in rec["command"]


# (fake failure mode, status, where, a piece of the decisive line): one whole sweep per failure class;
# every message of the failure table is checked against `classify()` directly in test_failures.py.
FAULTS = [
    ("oom_executor", "oom", "KV cache allocation", "insufficient GPU memory"),
    ("max_seq_len", "infeasible", "max_seq_len", "Engine supports a max sequence of 8192"),
    ("mpi_abort", "crash", "MPI", "MPI_ABORT was invoked on rank 0"),
    ("signal", "crash", "signal", "SIGSEGV"),
    ("sigkill", "crash", "signal", "SIGKILL"),  # the benchmark itself killed (the OOM killer): a crash of the point
    ("no_report", "no_report", "", "probably an OOM"),
]


@pytest.mark.parametrize(("mode", "status", "where", "evidence"), FAULTS)
def test_faults_are_recorded_and_the_sweep_goes_on(cli, write_spec, tmp_path, fake_bench, mode, status, where,
                                                   evidence):
    fake_bench.fail(mode, min_isl=2048)  # only the ISL=2048 points fail
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 0, result.err
    by_isl: dict[int, list[dict]] = {}
    for rec in records(tmp_path):
        by_isl.setdefault(rec["isl"], []).append(rec)
    assert all(r["status"] == "ok" for r in by_isl[128])
    for rec in by_isl[2048]:
        assert rec["status"] == status and rec["metrics"] is None
        assert rec["detail"]["failure_where"] == where
        assert evidence in rec["cause"]
        assert Path(rec["detail"]["log"]).exists()
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "50.0% (2/4)" in report and f"| {status} |" in report


@pytest.mark.parametrize("mode", ["garbled", "missing_field"])
def test_bad_report_is_an_error_naming_the_field_with_the_raw_log_kept(cli, write_spec, tmp_path, fake_bench, mode):
    fake_bench.version("0.16.0")  # a text-only release: the text report is all there is
    fake_bench.fail(mode)
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + ENGINE))).code == 1  # no point ok
    for rec in records(tmp_path):
        assert rec["status"] == "error"
        field = "Token Throughput (tokens/sec)" if mode == "garbled" else "Request Throughput (req/sec)"
        assert field in rec["cause"] and "raw log:" in rec["cause"]
        assert Path(rec["detail"]["log"]).read_text().count("PERFORMANCE OVERVIEW") == 1



@pytest.mark.parametrize(("version", "extra"), [("0.16.0", ENGINE), ("1.1.0", "")])  # text report, JSON report
def test_negative_throughput_is_never_ok(cli, write_spec, tmp_path, fake_bench, version, extra):
    fake_bench.version(version)
    fake_bench.fail("negative_throughput", min_isl=2048)
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + extra))).code == 0
    by_isl = {(r["isl"], r["osl"]): r for r in records(tmp_path)}
    for osl in (128, 1024):
        rec = by_isl[(2048, osl)]
        assert rec["status"] == "invalid_report" and rec["metrics"] is None
        assert "output throughput is -" in rec["cause"] and "must be a positive number" in rec["cause"]
        assert by_isl[(128, osl)]["status"] == "ok"
    report = cli("report", "runs/tiny", "--no-plots")  # a report of such a run is written, not a crash
    assert report.code == 0, report.err
    assert "| invalid_report |" in (tmp_path / "runs" / "tiny" / "report.md").read_text()


def test_a_truncated_cached_dataset_is_an_invalid_report(cli, write_spec, tmp_path, fake_bench):
    """The dataset cache is shared between runs; a cut file makes the benchmark run fewer requests."""
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    (dataset,) = (tmp_path / "cache" / "datasets").glob("isl128_osl128_n100_*.jsonl")
    dataset.write_text("".join(dataset.read_text().splitlines(keepends=True)[:60]))
    assert cli("sweep", "--fresh", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    by_pair = {(r["isl"], r["osl"]): r for r in records(tmp_path, "tiny-2")}
    cut = by_pair.pop((128, 128))
    assert cut["status"] == "invalid_report"
    assert "60 requests reported, the point asked for 100" in cut["cause"]
    assert all(r["status"] == "ok" for r in by_pair.values())


def test_each_attempt_has_its_own_log_and_report(cli, write_spec, tmp_path, fake_bench):
    """A stale report of an earlier attempt (a killed sweep's orphan wrote it) is never read as this one's."""
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    first = {r["point_id"]: r for r in records(tmp_path)}
    logs = tmp_path / "runs" / "tiny" / "logs"
    results = tmp_path / "runs" / "tiny" / "results.jsonl"
    results.write_text("")  # forget the records, keep the files: every point runs again
    fake_bench.fail("no_report")
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 1  # no point ok
    for rec in records(tmp_path):
        assert rec["status"] == "no_report", rec["cause"]  # not `ok` from the first attempt's report
        old = first[rec["point_id"]]
        assert rec["attempt"] != old["attempt"]
        assert rec["detail"]["log"] == str(logs / f"{rec['point_id']}.{rec['attempt']}.log")
        assert (logs / f"{old['point_id']}.{old['attempt']}.report.json").exists()



@pytest.mark.slow
def test_a_text_report_after_40_mib_of_log_is_recorded_ok(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    """0.16 has no --report_json: the text report at the end of the log is all there is."""
    fake_bench.version("0.16.0")
    monkeypatch.setenv("FAKE_TRTLLM_NOISE_MIB", "40")
    one_point = TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")
    assert cli("sweep", "--no-plots", str(write_spec(one_point + ENGINE))).code == 0
    (rec,) = records(tmp_path)
    assert rec["status"] == "ok", rec["cause"]
    assert rec["detail"]["report_format"] == "B"
    assert Path(rec["detail"]["log"]).stat().st_size > 40 * 2**20
    (printed,) = fake_bench.printed()
    assert rec["metrics"]["output_tok_per_s"] == pytest.approx(printed["output_tok_per_s"], rel=1e-6)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it holds nothing, so count it dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_hang_is_killed_at_the_timeout_with_its_children(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRTLLM_CHILD_PIDS", str(pids))
    fake_bench.fail("hang", min_isl=2048)
    spec = TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [2048]").replace("osl: [128, 1024]", "osl: [128]")
    result = cli("sweep", "--no-plots", str(write_spec(spec + "runtime: {timeout_s: 1.5}\n")))
    assert result.code == 1 and "1 point: 0 ok, 1 failed (timeout 1), 0 not run" in result.out, result.err
    (rec,) = records(tmp_path)
    assert rec["status"] == "timeout" and "killed at the per-point timeout of 2 s" in rec["cause"]
    # Both ignore SIGTERM, so only the SIGKILL after the keeper's grace period ends them, and the point is
    # given up only once its whole tree is gone: nothing is left when the sweep returns, however long it took.
    leader, child = map(int, pids.read_text().split())
    assert not _alive(leader) and not _alive(child)


def test_log_on_a_full_disk_does_not_lose_the_point(cli, write_spec, tmp_path, fake_bench, monkeypatch):
    monkeypatch.setattr(process, "open_log", lambda path: open("/dev/full", "ab"))  # noqa: SIM115 (the tee closes it); every write: ENOSPC
    fake_bench.version("0.16.0")
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + ENGINE))).code == 0
    for rec in records(tmp_path):
        assert rec["status"] == "ok"  # parsed from the output kept in memory
        assert "No space left on device" in rec["detail"]["log_error"]


def test_missing_bench_exits_2_before_any_run(cli, write_spec, tmp_path):
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 2
    assert "trtllm-bench is not on PATH" in result.err and "--backend sim" in result.err
    assert not (tmp_path / "runs").exists()


def test_unsupported_detected_version(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("0.11.0")
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 2 and "TensorRT-LLM 0.11.0 is not supported" in result.err
    assert "0.12 to 1.3" in result.err and not (tmp_path / "runs").exists()


def test_unsupported_version_in_spec(cli, write_spec, tmp_path):
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC + "trtllm: {version: 0.9.1}\n")))
    assert result.code == 2 and "trtllm.version" in result.err and "0.12 to 1.3" in result.err


def test_old_release_without_engine_needs_a_build(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("0.14.0")  # no PyTorch backend: the sweep must build an engine, and cannot without a GPU
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 2 and "cannot build an engine here, missing: a GPU visible to NVML" in result.err


def test_datasets_are_cached_and_reused(cli, write_spec, tmp_path, fake_bench):
    spec = write_spec(TRTLLM_SPEC)
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    cache = tmp_path / "cache" / "datasets"
    files = sorted(cache.iterdir())
    assert len(files) == 4
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert cli("sweep", "--no-plots", str(spec), "--fresh").code == 0
    assert {f: f.stat().st_mtime_ns for f in sorted(cache.iterdir())} == stamps


def test_measured_memory_table_shows_only_what_was_logged(cli, write_spec, tmp_path, fake_bench):
    fake_bench.version("1.1.0")
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    memory = report.split("## Memory", 1)[1].split("## ", 1)[0]
    assert "| KV cache pool (GiB) | 58.30 |" in memory and "| KV cache capacity (tokens) | 955,136 |" in memory
    assert "nan" not in memory and "Activation workspace" not in memory
