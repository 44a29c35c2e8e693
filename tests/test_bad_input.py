"""Every bad input: one line naming the problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SMALL_SPEC


def _assert_clean_failure(result, tmp_path: Path, *needles: str) -> str:
    assert result.code == 2, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "runs").exists(), "nothing may be written on bad input"
    return lines[0]


def test_missing_spec_file(cli, tmp_path):
    _assert_clean_failure(cli("sweep", "nope.yaml"), tmp_path, "spec file not found", "nope.yaml")


def test_yaml_syntax_error_names_line_and_column(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048"))
    line = _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "YAML syntax error", "spec.yaml:")
    # The flow sequence opened on line 8 is broken where the parser notices: `osl:` on line 9, column 6.
    assert "spec.yaml:9:6:" in line


def test_unknown_key_suggests_nearest(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("  osl: [128, 1024]", "  osll: [128, 1024]"))
    line = _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "unknown key 'grid.osll'",
                                 "did you mean 'osl'")
    assert "spec.yaml:9" in line


def test_unknown_top_level_key(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC + "precison: fp8\n")
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "unknown key 'precison'", "did you mean 'precision'")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("isl: [128, 2048]", "isl: [0, 2048]", "grid.isl.0"),
        ("isl: [128, 2048]", "isl: [-5, 2048]", "grid.isl.0"),
        ("osl: [128, 1024]", "osl: [128, 10.5]", "grid.osl.1"),
        ("osl: [128, 1024]", "osl: [128, abc]", "grid.osl.1"),
        ("default: {fixed: 100}", "default: {fixed: 0}", "requests.default.fixed"),
        ("default: {fixed: 100}", "default: {fixed: 2.5}", "requests.default.fixed"),
    ],
)
def test_lengths_and_counts_must_be_positive_integers(cli, write_spec, tmp_path, old, new, needle):
    spec = write_spec(SMALL_SPEC.replace(old, new))
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, needle)


def test_request_count_in_table_must_be_positive(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("default: {fixed: 100}",
                                         "default: {fixed: 100}\n  table:\n    - {isl: 128, osl: 128, requests: 0}"))
    line = _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "requests.table.0.requests")
    assert "spec.yaml:13" in line


def test_empty_grid(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", "isl: []"))
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "grid.isl", "at least 1 item")


def test_unknown_gpu_lists_known_ids(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("gpu: h100-sxm", "gpu: rtx-9090"))
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "unknown GPU 'rtx-9090'", "h100-sxm", "a100-sxm-80gb",
                          "spec.yaml:3")


def test_unknown_precision(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("precision: fp8", "precision: int3"))
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "precision", "'fp8'", "'int3'")


@pytest.mark.parametrize("fraction", ["0", "-0.1", "1.5"])
def test_kv_fraction_outside_unit_interval(cli, write_spec, tmp_path, fraction):
    spec = write_spec(SMALL_SPEC + f"runtime:\n  kv_cache_free_gpu_mem_fraction: {fraction}\n")
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "runtime.kv_cache_free_gpu_mem_fraction")


def test_output_dir_that_is_not_a_run(cli, write_spec, tmp_path):
    spec = write_spec()
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "thesis.tex").write_text("do not touch")
    result = cli("sweep", str(spec), "--out", str(victim))
    assert result.code == 2
    assert "is not a trtbench run" in result.err and "Traceback" not in result.err
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.tex"]


def test_spec_that_is_not_a_mapping(cli, write_spec, tmp_path):
    spec = write_spec("- just\n- a list\n")
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "YAML mapping")


def test_report_of_missing_run_dir(cli, tmp_path):
    result = cli("report", "runs/none")
    assert result.code == 2 and "does not exist" in result.err and "Traceback" not in result.err


def test_trtllm_bench_missing_from_path(cli, write_spec, tmp_path):
    result = cli("sweep", str(write_spec()), "--backend", "trtllm")
    _assert_clean_failure(result, tmp_path, "trtllm-bench is not on PATH", "--backend sim")


def test_duplicate_key(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC + "precision: fp16\n")
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, "duplicate key 'precision'", "first on line 4",
                          "spec.yaml:12:")


def test_usage_errors_are_plain_and_exit_2(cli):
    result = cli("predict", "--isl", "1")
    assert result.code == 2
    assert "Error: Invalid value: give --isl, --osl and --requests (or --csv)" in result.err
    assert "╭" not in result.err and "Traceback" not in result.err
