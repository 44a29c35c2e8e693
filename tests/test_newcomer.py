"""A newcomer's first day (issue 17): labels that are true, a dry run on any machine, paths relative to the
spec, and retrying only what failed."""

from __future__ import annotations

import json
import re
import shlex

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC
from tests.fakes import clidata


@pytest.mark.parametrize("command", ["plan", "sweep"])
def test_fp8_on_a_gpu_without_fp8_tensor_cores_is_one_line(cli, write_spec, tmp_path, command):
    result = cli(command, str(write_spec(SMALL_SPEC.replace("h100-sxm", "a100-sxm-80gb"))))
    assert result.code == 2 and len(result.err.splitlines()) == 1, result.err
    assert "precision: fp8: the A100 SXM 80GB (ampere) has no FP8 tensor cores" in " ".join(result.err.split())
    kv_only = SMALL_SPEC.replace("h100-sxm", "a100-sxm-80gb").replace("precision: fp8", "precision: bf16")
    result = cli(command, str(write_spec(kv_only)))
    assert result.code == 2 and "kv_cache_dtype: fp8" in result.err
    assert not (tmp_path / "runs").exists()


def test_a_relative_model_config_is_found_beside_the_spec_from_any_directory(cli, tmp_path, monkeypatch):
    specs = tmp_path / "project" / "specs"
    (specs / "models").mkdir(parents=True)
    (specs / "models" / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256}))
    spec = specs / "mine.yaml"
    spec.write_text(SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B",
                                       "model: {name: acme/llama-clone, config: models/config.json}"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for command in ("plan", "sweep"):
        result = cli(command, str(spec))
        assert result.code == 0, result.err
    recorded = (elsewhere / "runs" / "tiny" / "spec.yaml").read_text()
    assert str(specs / "models" / "config.json") in recorded


def test_retry_failed_reruns_only_failed_points_and_the_report_shows_the_new_records(cli, write_spec, tmp_path,
                                                                                      fake_bench):
    spec = write_spec(TRTLLM_SPEC)
    fake_bench.fail("oom_torch")
    failed = cli("sweep", "--no-plots", str(spec))
    assert failed.code == 1 and "4 points: 0 ok, 4 failed (oom 4), 0 not run" in failed.out.splitlines()
    assert set(pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")["status"]) == {"oom"}
    fake_bench.fail("")
    again = cli("sweep", "--no-plots", str(spec))  # a plain resume: every point has a record, nothing runs
    assert again.code == 1 and len(fake_bench.printed()) == 0
    retried = cli("sweep", "--no-plots", "--retry-failed", str(spec))
    assert retried.code == 0, retried.err
    assert len(fake_bench.printed()) == 4
    assert set(pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")["status"]) == {"ok"}
    lines = (tmp_path / "runs" / "tiny" / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["status"] for x in lines] == ["oom"] * 4 + ["ok"] * 4  # nothing recorded is lost
    assert cli("sweep", "--no-plots", "--retry-failed", str(spec)).code == 0 and len(fake_bench.printed()) == 4


@pytest.mark.parametrize(("pinned", "subcommand_flags"), [(None, "--backend pytorch"), ("0.16.0", "--engine_dir")])
def test_a_dry_run_prints_trtllm_bench_commands_without_a_gpu_or_tensorrt_llm(cli, write_spec, tmp_path, pinned,
                                                                             subcommand_flags):
    """No trtllm-bench on PATH and no NVML here: the commands are those of the newest release trtbench knows
    (1.3), or of the pinned one, and they parse with that release's real options."""
    engine = tmp_path / "engine"
    engine.mkdir()
    extra = f"trtllm: {{version: {pinned}, engine_dir: {engine}}}\n" if pinned else ""
    result = cli("sweep", "--backend", "trtllm", "--dry-run", str(write_spec(TRTLLM_SPEC + extra)))
    assert result.code == 0, result.err
    commands = [shlex.split(line) for line in result.out.splitlines() if line.startswith("trtllm-bench ")]
    assert len(commands) == 4 and all(subcommand_flags in shlex.join(c) for c in commands)
    rel = clidata.release(pinned or "1.3.0")
    for argv in commands:
        (tmp_path / "data.jsonl").write_text("{}\n")
        dataset = argv.index("--dataset") + 1
        argv[dataset] = str(tmp_path / "data.jsonl")  # the dry run names the dataset; it does not write it
        parsed = clidata.parse(rel, argv[1:])
        assert parsed.command == "throughput"
    assert "not installed here" in " ".join(result.err.split())
    assert not (tmp_path / "runs").exists()


def test_a_measured_runs_own_results_csv_is_calibrate_and_predict_input(cli, write_spec, tmp_path, fake_bench):
    assert cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC))).code == 0
    results = tmp_path / "runs" / "tiny" / "results.csv"
    rows = pd.read_csv(results)
    # every row says what ran: runs can be concatenated and read back without the spec
    assert rows[["model", "gpu", "precision", "kv_cache_dtype", "tp", "pp"]].drop_duplicates().values.tolist() == [
        ["meta-llama/Llama-3.1-8B", "h100-sxm", "fp8", "fp8", 1, 1]]
    result = cli("calibrate", str(results))
    assert result.code == 0, result.err
    text = " ".join(result.out.replace("│", " ").split())  # the tables are the answer: stdout
    assert "MAPE" in text and "as h100-sxm" not in text  # scored as what ran, not as a default GPU
    assert "on this run, meta-llama/Llama-3.1-8B fp8 on H100 SXM 80GB, TP1: MAPE" in text
    assert "over 4 measured points; the calibration claimed at least" in text  # release 1.1: never fitted
    for isl, osl in ((128, 128), (128, 1024), (2048, 128), (2048, 1024)):
        assert f"meta-llama/Llama-3.1-8B 1 {isl} {osl} 100" in text  # each measured point, at its request count
    out = tmp_path / "predicted.csv"
    assert cli("predict", "--csv", str(results), "--out", str(out)).code == 0
    predicted = pd.read_csv(out)
    assert list(predicted.columns).count("pred_output_tok_per_s") == 1 and len(predicted) == 4
    assert (predicted["pred_requests"] == 100).all()


def test_calibrate_refuses_a_simulated_run_in_one_line(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    result = cli("calibrate", str(tmp_path / "runs" / "tiny" / "results.csv"))
    assert result.code == 2 and len(result.err.splitlines()) == 1 and "no measured" in result.err


def test_compare_matches_across_request_counts_and_says_what_it_left_out(cli, write_spec, tmp_path):
    """A: 100 requests per point; B: 200, one more ISL, and an ISL past Llama-3.1-8B's 131,072 positions
    that fails in both runs."""
    a = SMALL_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048, 200000]")
    b = a.replace("name: tiny", "name: more").replace("{fixed: 100}", "{fixed: 200}").replace(
        "isl: [128, 2048, 200000]", "isl: [128, 2048, 4096, 200000]")
    assert cli("sweep", "--no-plots", str(write_spec(a))).code == 0
    assert cli("sweep", "--no-plots", str(write_spec(b, "b.yaml"))).code == 0
    result = cli("compare", "--no-plots", "runs/tiny", "runs/more", "--out", "cmp")
    assert result.code == 0, result.err
    md = (tmp_path / "cmp" / "compare.md").read_text()
    joined = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert len(joined) == 6  # ISL 128, 2048, 200000 x OSL 128, 1024: matched although the counts differ
    assert "Request counts differ at 6 of 6 matched points" in md and "| A 100, B 200 |" in md
    not_compared = md.split("## Not compared", 1)[1].split("\n## ", 1)[0]
    assert "| 4096 | 128 | B | A has no ISL 4096 |" in not_compared
    assert "| 4096 | 1024 | B | A has no ISL 4096 |" in not_compared
    both_failed = joined[joined["isl"] == 200000]["status"].tolist()
    assert both_failed == ["A: infeasible, B: infeasible"] * 2


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plots module finishes, kept open for inspection."""
    from trtbench import plots

    figures = []
    monkeypatch.setattr(plots, "_finish", lambda fig, ctx, path: figures.append(fig) or path)
    return figures


def test_plot_axes_are_ticked_at_the_grids_own_values(drawn, tmp_path):
    from trtbench import plots

    frame = pd.DataFrame({"isl": [128] * 3, "osl": [100, 300, 1000], "status": ["ok"] * 3,
                          "output_tok_per_s": [1000.0, 1500.0, 1800.0]})
    plots.throughput_vs_osl(frame, plots.PlotContext("t", simulated=True), tmp_path / "x.png")
    (ax,) = drawn[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "300", "1000"]


def test_kv_capacity_draws_failed_points_in_red(drawn, tmp_path):
    """Two points that ran (a 100,000-token pool) and one OOM before any pool existed: its red cross sits at
    100,000 / (2048 + 2048) = 24.4 sequences."""
    from trtbench import plots

    frame = pd.DataFrame({"isl": [128, 128, 2048], "osl": [128, 1024, 2048], "status": ["ok", "ok", "oom"],
                          "kv_tokens": [100_000.0, 100_000.0, None]})
    plots.kv_capacity(frame, plots.PlotContext("t", simulated=True), tmp_path / "k.png")
    (ax,) = drawn[0].axes
    crosses = [c for c in ax.collections if "without a KV pool" in str(c.get_label())]
    assert len(crosses) == 1
    (x, y), = crosses[0].get_offsets()
    assert (x, y) == pytest.approx((4096, 100_000 / 4096))


def test_predict_takes_a_config_for_a_model_outside_the_presets(cli, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256}))
    args = ["predict", "--isl", "1024", "--osl", "1024", "--requests", "100", "--json", "--model", "acme/secret-8B"]
    assert cli(*args).code == 2  # not a preset: refused without a config
    result = cli(*args, "--config", str(tmp_path / "config.json"))
    assert result.code == 0, result.err
    clone = json.loads(result.out)
    llama = json.loads(cli(*args[:-1], "meta-llama/Llama-3.1-8B").out)
    assert clone["metrics"]["output_tok_per_s"] == llama["metrics"]["output_tok_per_s"]  # the same architecture


def test_a_multi_gpu_report_says_its_throughput_is_the_total(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC + "tp: 2\n"))).code == 0
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "it is the total over them" in report and "output_tok_per_s_per_gpu" in report


def test_the_progress_bar_advances_by_expected_duration_not_by_points():
    """A 10 s point and a 990 s one: after the short one the bar is 1% done, not 50%; a third point nothing
    predicted weighs the mean of the others, 500 s."""
    import io

    from rich.console import Console

    from trtbench.commands.progress import ProgressBar
    from trtbench.executors.base import Task
    from trtbench.grid import Point
    from trtbench.records import Record, Source, Status

    points = [Point((("isl", 1), ("osl", n), ("requests", 1)), f"p{n}") for n in (1, 2, 3)]
    tasks = [Task(points[0], 1, 10.0), Task(points[1], 1, 990.0), Task(points[2], 1, 0.0)]
    bar = ProgressBar(Console(file=io.StringIO()), "sim")
    bar.begin(3, 0, tasks)
    record = Record(status=Status.OOM, cause="x", source=Source.SIMULATED, point_id="p1", attempt="a", axes={},
                    backend="sim", started_at="2026-11-27T19:00:00+00:00", duration_s=1.0)
    bar.finished(tasks[0], record)
    task = bar.progress.tasks[0]
    assert task.total == 1500.0 and task.completed == 10.0 and task.fields["points"] == "1/3 points"


@pytest.mark.parametrize("command", [["sweep"], ["plan"], ["predict"], ["calibrate"], ["compare"], ["report"],
                                     ["sla"], ["status"], ["build"], ["accuracy", "run"], ["accuracy", "score"]])
def test_help_has_plain_metavars_and_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.code == 0
    usage = result.out.splitlines()[0]
    assert not re.search(r"<(str|int|float|bool|path|Path|list\[)", result.out) and "{" not in usage, result.out
    assert "Examples:\n    trtbench " + " ".join(command) in result.out


def test_every_help_example_names_a_file_the_repository_has():
    """Examples point at specs that exist (runs/ and generated files aside)."""
    from tests.conftest import REPO

    text = (REPO / "trtbench" / "cli.py").read_text()
    for spec in set(re.findall(r"sweeps/[\w.-]+\.yaml", text)):
        assert (REPO / spec).is_file(), spec


def test_a_label_the_run_contradicts_is_never_ranked(cli, write_spec, tmp_path, fake_bench):
    """build.checkpoint names a local 16-bit checkpoint (no hf_quant_config.json) under an fp8 label: the report's
    own `Quantization: None` makes every point invalid_report, with the reason, instead of FP8 numbers that are
    BF16's."""
    bf16 = tmp_path / "Llama-3.1-8B-bf16"
    bf16.mkdir()
    result = cli("sweep", "--no-plots", str(write_spec(TRTLLM_SPEC.replace("nvidia/Llama-3.1-8B-FP8", str(bf16)))))
    assert result.code == 1 and "4 points: 0 ok, 4 failed (invalid_report 4), 0 not run" in result.out, result.err
    rows = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert set(rows["status"]) == {"invalid_report"}
    assert all("the report says quantization None, the point is labelled FP8 weights" in c for c in rows["cause"])
    assert "| 1 |" not in (tmp_path / "runs" / "tiny" / "report.md").read_text().split("## Top 10")[1].split("##")[0]


def test_a_path_the_specs_directory_makes_too_long_is_one_line():
    from pathlib import Path

    from trtbench.errors import SpecError
    from trtbench.spec import anchored, parse_spec

    spec = parse_spec(SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B",
                                         "model: {name: x, config: " + "a/" * 2000 + "c.json}"))
    with pytest.raises(SpecError, match=r"^model\.config, found from /b+/d+: String should have at most 4096"):
        anchored(spec, Path("/" + "b" * 200 + "/" + "d" * 200))
