"""Every bad input: one line naming the problem, exit 2, no traceback, nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
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


HOSTILE = Path(__file__).parent / "data" / "hostile"


def _generated(name: str, data: bytes) -> Callable[[Path], str]:
    """A hostile spec too big (or too binary) to commit, written into the test's directory."""
    def write(tmp_path: Path) -> str:
        (tmp_path / name).write_bytes(data)
        return name
    return write


def _committed(name: str) -> Callable[[Path], str]:
    """A hostile spec from tests/data/hostile, copied with its neighbours (a model config.json)."""
    def write(tmp_path: Path) -> str:
        shutil.copytree(HOSTILE, tmp_path, dirs_exist_ok=True)
        return name
    return write


_BIG_GRID = ("grid has 1,000,000 points", "above the limit of 10,000", "--max-points 1000000")  # 1000 ISL x 1000 OSL

HOSTILE_SPECS = [
    ("binary", "sweep", _generated("spec.yaml", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xed\xbd\x07`\x1cI"),
     ("spec.yaml: not a UTF-8 text file",)),
    ("latin-1", "sweep", _committed("non_utf8.yaml"), ("non_utf8.yaml: not a UTF-8 text file",)),
    ("5000-deep list", "sweep", _generated("spec.yaml", b"name: [" + b"[" * 5000 + b"]" * 5000 + b"]\n"),
     ("spec.yaml:1:", "nested deeper than 32 levels")),
    ("5000-deep mapping", "sweep", _generated("spec.yaml", b"name: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n"),
     ("spec.yaml:1:", "nested deeper than 32 levels")),
    # a: 10 values, b: 1 + 9 x 10 = 91, c: 820, d: 7,381, e: 66,430, f (line 19): 597,871
    ("alias bomb", "sweep", _committed("alias_bomb.yaml"), ("alias_bomb.yaml:19:", "more than 100,000 values")),
    ("1.5 MiB", "sweep", _generated("spec.yaml", SMALL_SPEC.encode() + b"#" * (3 << 19)),
     ("spec.yaml: larger than 1 MiB",)),
    ("100k-char name", "sweep", _generated("spec.yaml", SMALL_SPEC.replace("tiny", "n" * 100_000).encode()),
     ("spec.yaml:1: name: String should have at most 100 characters",)),
    ("300-byte directory name", "sweep", _generated("spec.yaml", (SMALL_SPEC + "output_dir: " + "d" * 300).encode()),
     ("spec.yaml:12: output_dir: has a part of 300 bytes; at most 255",)),
    ("num_attention_heads: 0", "sweep", _committed("zero_heads.yaml"),
     ("/zero_heads.json: num_attention_heads must be a whole number from 1 to 4,096 (got 0)",)),
    ("ISL 2**70", "sweep", _committed("isl_2_70.yaml"),
     ("isl_2_70.yaml:8: grid.isl.1: Input should be less than or equal to 2097152 (got 1180591620717411303424)",)),
    ("ISL 2**63", "sweep", _committed("isl_2_63.yaml"),
     ("isl_2_63.yaml:8: grid.isl.1: Input should be less than or equal to 2097152 (got 9223372036854775808)",)),
    # YAML 1.1 reads 1e12 (no dot) as a string
    ("requests 1e12", "sweep", _committed("requests_1e12.yaml"),
     ("requests_1e12.yaml:11: requests.default.fixed: Input should be a valid integer (got '1e12')",)),
    ("requests 10**12", "sweep", _committed("requests_10_12.yaml"),
     ("requests_10_12.yaml:11: requests.default.fixed: Input should be less than or equal to 1000000 "
      "(got 1000000000000)",)),
    ("tp 2**40", "sweep", _committed("tp_2_40.yaml"),
     ("tp_2_40.yaml:12: tp: Input should be less than or equal to 64 (got 1099511627776)",)),
    ("1M-point grid", "sweep", _committed("grid_1m.yaml"), _BIG_GRID),
    ("1M-point grid", "plan", _committed("grid_1m.yaml"), _BIG_GRID),
]


@pytest.mark.parametrize(("command", "write", "needles"), [case[1:] for case in HOSTILE_SPECS],
                         ids=[f"{case[1]}-{case[0]}" for case in HOSTILE_SPECS])
def test_hostile_spec_is_refused(cli, tmp_path, command, write, needles):
    """Refused in one line before any expansion or run; how fast is benchmarks/bench_hostile.py's to say."""
    spec = write(tmp_path)
    _assert_clean_failure(cli(command, spec), tmp_path, *needles)


def test_max_points_lifts_the_limit(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC.replace("isl: [128, 2048]", f"isl: {list(range(1, 121))}")
                      .replace("osl: [128, 1024]", f"osl: {list(range(1, 101))}"))  # 120 x 100 = 12,000 points
    _assert_clean_failure(cli("sweep", str(spec), "--dry-run"), tmp_path,
                          "grid has 12,000 points", "--max-points 12000")
    result = cli("sweep", str(spec), "--dry-run", "--max-points", "20000")
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 12_000  # one line per point
    assert not (tmp_path / "runs").exists()



def test_point_limit_counts_every_swept_axis(cli, write_spec, tmp_path):
    grid = (f"grid:\n  isl: {list(range(1, 51))}\n  osl: {list(range(1, 51))}\n  tp: [1, 2, 4, 8]\n"
            f"  precision: [fp8, fp16]\n")
    spec = write_spec(SMALL_SPEC.replace("precision: fp8\n", "").replace(
        "grid:\n  isl: [128, 2048]\n  osl: [128, 1024]\n", grid))  # 50 x 50 x 4 x 2 = 20,000 points
    _assert_clean_failure(cli("plan", str(spec)), tmp_path, "grid has 20,000 points", "--max-points 20000")


LLAMA_CONFIG = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "vocab_size": 128256}
CONFIG_SPEC = SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B", "model: {name: acme/x, config: config.json}")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ({"num_hidden_layers": -1}, "num_hidden_layers must be a whole number from 1 to 4,096 (got -1)"),
        ({"vocab_size": 2**63}, "vocab_size must be a whole number from 1 to 16,777,216 (got 9223372036854775808)"),
        ({"head_dim": 0}, "head_dim must be a whole number from 1 to 4,096 (got 0)"),
        ({"intermediate_size": "14336"}, "intermediate_size must be a whole number from 1 to 1,048,576 (got '14336')"),
        ({"num_key_value_heads": 7}, "num_key_value_heads (7) does not divide num_attention_heads (32)"),
        ({"num_key_value_heads": 64}, "num_key_value_heads (64) does not divide num_attention_heads (32)"),
        ({"num_attention_heads": 24}, "num_attention_heads (24) does not divide hidden_size (4096); give head_dim"),
        ({"vocab_size": None}, "vocab_size is missing"),
    ],
)
def test_model_config_numbers_are_checked(cli, write_spec, tmp_path, edit, needle):
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA_CONFIG, **edit}))
    spec = write_spec(CONFIG_SPEC)
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, f"/config.json: {needle}")


@pytest.mark.parametrize(("content", "needle"), [("[1, 2]", "not a JSON object"), ("{", "cannot read model config"),
                                                 ("[" * 5000, "cannot read model config")])
def test_model_config_that_is_not_a_config(cli, write_spec, tmp_path, content, needle):
    (tmp_path / "config.json").write_text(content)
    spec = write_spec(CONFIG_SPEC)
    _assert_clean_failure(cli("sweep", str(spec)), tmp_path, needle, "config.json")
