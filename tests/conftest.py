"""Shared fixtures: specs written to tmp dirs, and the CLI run in-process with its exit code."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trtbench.cli import main
from trtbench.executors.base import NullObserver, Task
from trtbench.records import Record

REPO = Path(__file__).resolve().parent.parent

SMALL_SPEC = """\
name: tiny
model: meta-llama/Llama-3.1-8B
gpu: h100-sxm
precision: fp8
kv_cache_dtype: fp8
backend: sim
grid:
  isl: [128, 2048]
  osl: [128, 1024]
requests:
  default: {fixed: 100}
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str


# SMALL_SPEC on the real path. Its FP8 weights come from a pre-quantized checkpoint on the hub, loaded by name:
# without one, an FP8 point on the PyTorch path first quantizes the model with ModelOpt (tests/test_quantize.py).
TRTLLM_SPEC = SMALL_SPEC.replace("backend: sim", "backend: trtllm") + "build: {checkpoint: nvidia/Llama-3.1-8B-FP8}\n"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
        ) -> Callable[..., CliResult]:
    """Run `trtbench ARGS...` in-process from tmp_path; returns exit code and captured output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        monkeypatch.setattr("sys.argv", ["trtbench", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str = SMALL_SPEC, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(autouse=True)
def _no_gpu_tools(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Tests never see a real trtllm-bench, whatever the machine has on PATH, nor a real GPU (NVML), unless
    marked `gpu`: the same test gives the same result on a laptop, in CI and on a GPU machine."""
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                               if not (Path(p) / "trtllm-bench").exists()))
    if request.node.get_closest_marker("gpu") is None:
        monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` fails, as without a driver


FAKES = REPO / "tests" / "fakes"


def fake_trtllm_install(root: Path, version: str = "1.1.0") -> Path:
    """A Python environment that owns a `tensorrt_llm` distribution of `version` (its metadata only, as
    trtbench reads it), whose bin/ goes first on PATH: the fakes' `#!/usr/bin/env python3` then runs on a
    Python with TensorRT-LLM installed, as a real trtllm-bench does. Returns bin/."""
    env = root / "trtllm-env"
    if not env.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    set_fake_version(env, version)
    return env / "bin"


def set_fake_version(env: Path, version: str) -> None:
    site = next(env.glob("lib/python*/site-packages"))
    for old in site.glob("tensorrt_llm-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"tensorrt_llm-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tensorrt_llm\nVersion: {version}\n")


@dataclass
class FakeBench:
    record: Path  # what the fake printed, one JSON line per run
    monkeypatch: pytest.MonkeyPatch
    env: Path  # the Python environment the fake's tensorrt_llm is installed in

    def version(self, version: str) -> None:
        set_fake_version(self.env, version)
        self.monkeypatch.setenv("FAKE_TRTLLM_VERSION", version)

    def fail(self, mode: str, min_isl: int = 0) -> None:
        self.monkeypatch.setenv("FAKE_TRTLLM_FAIL", mode)
        self.monkeypatch.setenv("FAKE_TRTLLM_FAIL_MIN_ISL", str(min_isl))

    def printed(self) -> list[dict]:
        import json

        return [json.loads(line) for line in self.record.read_text().splitlines()] if self.record.exists() else []


def load_fake_nvml(monkeypatch: pytest.MonkeyPatch, gpu: str = "NVIDIA H100 80GB HBM3") -> None:
    """The fake NVML (tests/fakes/site/pynvml.py) as `pynvml` in this process, showing `gpu`; a benchmark run
    through the fake sees the same module through PYTHONPATH. FAKE_NVML_DEVICES says which GPUs it lists."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKES / "site" / "pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    monkeypatch.setenv("FAKE_NVML_GPU", gpu)


@pytest.fixture
def fake_bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _no_gpu_tools: None) -> FakeBench:
    """tests/fakes/trtllm-bench on PATH, run by a Python that has TensorRT-LLM 1.1.0 installed (see
    fake_trtllm_install); the fake NVML importable; datasets cached in tmp."""
    bin_dir = fake_trtllm_install(tmp_path)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), str(FAKES), os.environ["PATH"]]))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FAKES / "site"), str(REPO),
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    record = tmp_path / "fake-record.jsonl"
    monkeypatch.setenv("FAKE_TRTLLM_RECORD", str(record))
    monkeypatch.delenv("FAKE_TRTLLM_FAIL", raising=False)
    monkeypatch.setenv("FAKE_TRTLLM_VERSION", "1.1.0")
    return FakeBench(record, monkeypatch, bin_dir.parent)


def load_records(path: Path) -> list[dict]:
    """results.jsonl as dicts, each point's axes (isl, osl, requests, ...) also at the top level."""
    import json

    return [{**rec, **rec["axes"]} for rec in map(json.loads, path.read_text().splitlines())]


# What a hostile link points at: names trtbench writes (a run's files, a lock, a pending record, stale-looking
# staging directories whose pid is dead) and precious data, outside every test's tmp_path.
SENTINEL_FILES = {
    "results.jsonl": '{"not": "yours"}\n', "report.md": "# someone else's report\n", ".lock": "1\n",
    "run.json": '{"schema_version": 1}\n', "spec.yaml": "name: theirs\n", "precious.txt": "do not touch\n",
    "pending/a.b.json": "{}\n", "staging/victim.999999999/weights.bin": "weights\n",
    "staging/replaced.victim.999999999/manifest.json": "{}\n", "deep/er/file.txt": "deep\n",
}


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under `root` (links not followed): its type and mode, size and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        state[str(path.relative_to(root))] = (st.st_mode, st.st_size, digest)
    return state


@pytest.fixture(autouse=True)
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tree outside the test's tmp_path (tests/test_hostile_paths.py points links at it); after each test
    nothing in it may have changed: trtbench writes, moves and deletes only inside its run and cache roots.
    A dozen small files made and hashed twice (a few milliseconds): cheap enough for every test."""
    root = tmp_path_factory.mktemp("sentinel")
    for name, text in SENTINEL_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    before = tree_state(root)
    yield root
    assert tree_state(root) == before, f"a test changed {root}, outside its run and cache roots"



# What `make check` leaves out (`-m "not (slow or slurm or modelopt or browser or wheel or measured or heavy)"`);
# `make test` (CI) runs everything. Marked here, by what a test uses, so no test file has to remember; a file or
# test can also mark itself.
NEEDS = {"slurm": "a local Slurm cluster (make slurm-up)", "modelopt": "ModelOpt and CPU torch (the test extra)",
         "browser": "a headless browser", "wheel": "building the wheel and installing it into a new venv (minutes)",
         "measured": "the fake trtllm-bench run through trtbench's process tree (keeper, guard): seconds each",
         "heavy": "many seconds of CPU (40 MiB logs, statistics by simulation, property tests, every hostile path)"}
NEEDS_BY_FILE = {"test_quantize.py": "modelopt", "test_browser.py": "browser"}
NO_CLUSTER = "no local Slurm cluster"  # how every test that needs the cluster says why it skips without one
# The tests (all their parameters) over ~1.5 s each on a loaded 2-core machine (pytest --durations), not measured.
HEAVY = {
    "test_parse.py": {"test_report_after_40_mib_of_log_is_parsed_in_bounded_memory",
                      "test_report_followed_by_a_long_log_is_kept",
                      "test_results_more_than_10000_lines_after_the_header_are_no_report"},
    "test_hostile_paths.py": {"test_a_fifo_is_refused_without_waiting_on_it",
                              "test_a_link_where_trtbench_writes_is_refused_not_followed",
                              "test_a_pending_entry_that_is_no_record_is_set_aside_unread"},
    "test_analysis_properties.py": {"test_any_records_are_analysed_and_rendered"},
    "test_bad_input.py": {"test_hostile_spec_is_refused",
                          "test_max_points_lifts_the_limit"},
    "test_disk_faults.py": {"test_a_full_or_read_only_disk_mid_sweep_is_one_line_and_loses_nothing",
                            "test_an_error_on_each_write_path_is_one_line_and_resumes"},
    "test_failures.py": {"test_oom_followed_by_40_mib_of_noise_is_still_oom"},
    "test_stats.py": {"test_bootstrap_from_thirty_repeats_covers_the_true_mean",
                      "test_noise_floor_holds_its_level_and_finds_a_six_percent_slowdown",
                      "test_welch_and_benjamini_hochberg_hold_the_false_discovery_rate"},
    "test_cli.py": {"test_plan_shows_verdicts_and_runs_nothing"},
    "test_build.py": {"test_killed_build_leaves_nothing_reusable"},
    "test_telemetry.py": {"test_a_simulated_ladder_draws_no_memory_plot"},
    "test_plots.py": {"test_a_simulated_tp_sweep_writes_six_pngs",
                      "test_a_tp_grid_draws_one_png_per_kind_not_a_set_per_tp",
                      "test_every_axis_of_every_plot_is_ticked_in_plain_numbers"},
    "test_report_full.py": {"test_a_sim_sweep_report_has_every_section_and_plot",
                            "test_compare_fp8_vs_fp16",
                            "test_compare_refuses_runs_without_shared_points"},
    "test_simulator.py": {"test_both_calibration_tables_within_targets_per_set_and_per_tp"},
    "test_runner.py": {"test_files_are_readable_by_others_whatever_the_umask",
                       "test_second_sweep_on_same_run_dir_is_refused"},
    "test_accuracy_score.py": {"test_rouge_by_hand"},
    "test_hostile_text.py": {"test_a_hostile_model_name_runs_and_reaches_every_output_inert"},
    "test_spec_properties.py": {"test_example_spec_with_random_values",
                                "test_random_yaml_document"},
    "test_newcomer.py": {"test_a_relative_model_config_is_found_beside_the_spec_from_any_directory",
                         "test_compare_matches_across_request_counts_and_says_what_it_left_out"},
    "test_parse_properties.py": {"test_mutated_real_json"},
}


def pytest_configure(config: pytest.Config) -> None:
    for marker, needs in NEEDS.items():
        config.addinivalue_line("markers", f"{marker}: needs {needs}; `make check` skips it")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = NEEDS_BY_FILE.get(item.path.name)
        if marker:
            item.add_marker(marker)
        if any(str(m.kwargs.get("reason", "")).startswith(NO_CLUSTER) for m in item.iter_markers("skipif")):
            item.add_marker("slurm")
        if "fake_bench" in getattr(item, "fixturenames", ()):
            item.add_marker("measured")
        if getattr(item, "originalname", item.name) in HEAVY.get(item.path.name, ()):
            item.add_marker("heavy")


class EndsSeen(NullObserver):
    """What a progress bar hears of how each run ends: (point id, "finished" or why it was lost)."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def finished(self, task: Task, record: Record) -> None:
        self.ended.append((task.point.id, "finished"))

    def lost(self, task: Task, why: str) -> None:
        self.ended.append((task.point.id, why))
