"""The `trtbench` command. User errors print one line and exit 2 (typer does the same for usage errors).

Each command imports its module when it runs: `trtbench --version` and usage errors load no analysis stack."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from trtbench import __version__, interrupts
from trtbench.errors import TrtbenchError


def _plain_metavars() -> None:
    """Typer 0.2x writes `--gpu <str>`, `{spec}` and `<list[Path]>` in --help; show click's plain style
    instead: `--gpu GPU`, `SPEC`, `CSV...` (an explicit metavar wins). Older typer already does."""
    from typer.core import TyperArgument, TyperOption

    if not hasattr(TyperOption, "display_type_rich"):
        return

    def option_metavar(self: Any, ctx: Any) -> str:
        return str(self.metavar or (self.name or "value").upper())

    def argument_name(self: Any) -> str:
        name = str(self.metavar or (self.name or "arg").upper())
        return name + ("..." if self.nargs != 1 else "") if self.required else f"[{name}]"

    TyperOption.display_type_rich = option_metavar  # type: ignore[method-assign]
    TyperArgument.display_type_rich = lambda self, ctx: ""  # type: ignore[method-assign]
    TyperArgument._rich_display_name = argument_name  # type: ignore[method-assign]
    TyperArgument._usage_display_name = argument_name  # type: ignore[method-assign]


_plain_metavars()


def _examples(*commands: str) -> str:
    """A command's --help epilog (click's \\b marker keeps the lines as they are)."""
    return "\b\nExamples:\n" + "\n".join(f"  {c}" for c in commands)


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # usage errors as plain "Error: ..." lines, not boxes
    help="Find the ISL / OSL / request-count configurations with the most throughput, and the ones that fail.",
)


def _max_points() -> Any:
    return typer.Option(None, "--max-points", min=1, help="refuse a grid of more points than this (default: 10,000)")


def _version(value: bool) -> None:
    if value:
        print(f"trtbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """trtbench: TensorRT-LLM throughput sweeps, measured or simulated."""


@app.command(epilog=_examples("trtbench sweep sweeps/h100_grid.yaml",
                      "trtbench sweep sweeps/h100_grid.yaml --backend trtllm --dry-run",
                      "trtbench sweep sweeps/h100_grid.yaml --retry-failed",
                      "trtbench sweep sweeps/h100_grid.yaml --backend trtllm --strategy guided --budget-gpu-hours 4"))
def sweep(
    spec: Path = typer.Argument(..., help="sweep spec (YAML)"),
    backend: str = typer.Option(None, "--backend", help="auto | trtllm | sim (overrides the spec)"),
    out: Path = typer.Option(None, "--out", help="run directory (default: runs/<sweep name>)"),
    fresh: bool = typer.Option(False, "--fresh", help="start over in a new run directory; the old one is kept"),
    top_n: int = typer.Option(10, "--top", min=1, help="rows in the top table"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the command of every point; run nothing"),
    no_build: bool = typer.Option(False, "--no-build", help="refuse to build a missing engine"),
    no_plots: bool = typer.Option(False, "--no-plots", help="write the report without drawing its plots"),
    max_points: int = _max_points(),
    update: bool = typer.Option(False, "--update", help="adopt an edited spec in an existing run directory: "
                                "the points both specs share keep their records, the rest run"),
    executor: str = typer.Option(None, "--executor", help="local (one point at a time) | gpus (every GPU of this "
                                 "node at once) | slurm (a job per point); default: the spec's executor.kind"),
    detach: bool = typer.Option(False, "--detach", help="slurm: submit the jobs and return; `trtbench status RUN_DIR` "
                                "shows them, the next sweep merges them"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="also re-run the points whose latest record "
                                      "failed (the report then shows the new record)"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when any point failed (for CI); without it, 1 only "
                                "when no point succeeded"),
    repeats: int = typer.Option(None, "--repeats", min=1, max=1000, help="runs of each measured point, interleaved "
                                "across the grid (overrides runtime.repeats; a resume runs only the missing ones)"),
    strategy: str = typer.Option(None, "--strategy", help="full (every point) | guided (the points the simulator, "
                                 "refitted after each batch, says may be among the best); overrides the spec's"),
    budget_gpu_hours: float = typer.Option(None, "--budget-gpu-hours", min=0.001, help="guided: stop after this "
                                           "much measured GPU time (overrides guided.budget_gpu_hours)"),
) -> None:
    """Run every point of SPEC (resuming a previous run), then write the report and say how many points ended ok,
    failed (by cause) or not run. Exit 0 when at least one point is ok, 1 when none is (or, with --strict, when
    any failed), 2 on bad input."""
    from trtbench.commands import sweep as sweep_cmd

    sweep_cmd.sweep(spec, backend, out, fresh, top_n, dry_run, no_build, plots=not no_plots, max_points=max_points,
                    update=update, executor=executor, detach=detach, retry_failed=retry_failed, strict=strict,
                    repeats=repeats, strategy=strategy, budget_gpu_hours=budget_gpu_hours)


@app.command(epilog=_examples("trtbench status runs/h100_grid"))
def status(run_dir: Path = typer.Argument(..., help="run directory (runs/<sweep name>)")) -> None:
    """Where each point of a run stands: recorded, queued or running on Slurm, or not started."""
    from trtbench.commands import status as status_cmd

    status_cmd.status(run_dir)


@app.command(epilog=_examples("trtbench build sweeps/h100_grid.yaml"))
def build(
    spec: Path = typer.Argument(None, help="sweep spec whose engine to build (optional with --model)"),
    model: str = typer.Option(None, "--model", help="HF model name"),
    precision: str = typer.Option(None, "--precision", help="fp8 | fp16 | bf16 | nvfp4 (Blackwell)"),
    kv_cache_dtype: str = typer.Option(None, "--kv-cache-dtype",
                                  help="fp8 | auto (default: fp8 with fp8 weights, else auto)"),
    tp: int = typer.Option(None, "--tp", min=1),
    max_seq_len: int = typer.Option(None, "--max-seq-len", min=1),
    max_batch_size: int = typer.Option(None, "--max-batch-size", min=1),
    max_num_tokens: int = typer.Option(None, "--max-num-tokens", min=1),
    tool: str = typer.Option(None, "--tool", help="trtllm-build | trtllm-bench"),
    engines_dir: str = typer.Option(None, "--engines-dir", help="engine cache (default: engines/)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the build commands; run nothing"),
    max_points: int = _max_points(),
) -> None:
    """Build the engine SPEC needs (or one from the options), once: a complete cached engine is reused."""
    overrides = {"model": model, "precision": precision, "kv_cache_dtype": kv_cache_dtype, "tp": tp,
                 "max_seq_len": max_seq_len, "max_batch_size": max_batch_size, "max_num_tokens": max_num_tokens,
                 "tool": tool, "engines_dir": engines_dir}
    from trtbench.commands import build as build_cmd

    build_cmd.build(spec, overrides, dry_run, max_points)


@app.command(epilog=_examples("trtbench plan sweeps/h100_grid.yaml --executor slurm"))
def plan(
    spec: Path = typer.Argument(..., help="sweep spec (YAML)"),
    max_points: int = _max_points(),
    executor: str = typer.Option(None, "--executor", help="slurm: also the wall time on the cluster's jobs "
                                 "(default: the spec's executor.kind)"),
) -> None:
    """Show the expanded grid, the memory verdict of each point and the predicted wall time (one at a time, on
    this node's GPUs or executor.gpus, and on Slurm); runs nothing."""
    from trtbench.commands import plan as plan_cmd

    plan_cmd.plan(spec, max_points, executor)


_PRICE = typer.Option(None, "--usd-per-gpu-hour", help="price of a GPU-hour in USD: adds USD per million tokens "
                      "(overrides the spec's cost:)")


@app.command(epilog=_examples(
    "trtbench predict --gpu h200-sxm --model meta-llama/Llama-3.1-70B --tp 2 --isl 1024 --osl 1024 --requests 1000",
    "trtbench predict --csv runs/h100_grid/results.csv --out predicted.csv"))
def predict(
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU id or alias"),
    model: str = typer.Option(None, "--model", help="HF model name (default: the --config's own name, else "
                              "meta-llama/Llama-3.1-8B)"),
    config: Path = typer.Option(None, "--config", help="the model's HF config.json (a model outside the presets)"),
    precision: str = typer.Option("fp8", "--precision", help="fp8 | fp16 | bf16 | mxfp4 | nvfp4 (Blackwell)"),
    kv_cache_dtype: str = typer.Option(None, "--kv-cache-dtype", help="fp8 | auto (default: fp8 with fp8 weights)"),
    tp: int = typer.Option(1, "--tp", min=1),
    attention_dp: bool = typer.Option(False, "--attention-dp", help="attention data parallelism over the --tp ranks, "
                                      "experts spread over all of them (DEP; mixtures of experts)"),
    ep: int = typer.Option(None, "--ep", min=1, help="expert parallelism within the --tp ranks: each holds whole "
                           "experts (default: 1, every expert split over the ranks; --tp with --attention-dp)"),
    isl: int = typer.Option(None, "--isl", min=1),
    osl: int = typer.Option(None, "--osl", min=1),
    requests: int = typer.Option(None, "--requests", min=1),
    fraction: float = typer.Option(None, "--kv-fraction", min=0.01, max=1.0,
                                   help="kv_cache_free_gpu_mem_fraction (default: the calibration's, 0.95)"),
    release: str = typer.Option(None, "--release", help="TensorRT-LLM version, e.g. 1.0 or 1.3.0rc20 (its speed "
                                "factor, CUDA graphs and trtllm-bench's sizing); default: unstated (the newest)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    csv: Path = typer.Option(None, "--csv", help="rows gpu,model,precision,tp,isl,osl,num_requests[,release]"),
    out: Path = typer.Option(None, "--out", help="with --csv: where to write the predictions (default: stdout)"),
    usd_per_gpu_hour: float = _PRICE,
) -> None:
    """Predict throughput, memory and OOM for one point, or for each row of --csv (simulated)."""
    from trtbench.commands import predict as predict_cmd

    if csv is not None:
        predict_cmd.predict_csv(csv, out, fraction, usd_per_gpu_hour)
        return
    if None in (isl, osl, requests):
        raise typer.BadParameter("give --isl, --osl and --requests (or --csv)")
    predict_cmd.predict_one(gpu, model, precision, kv_cache_dtype, tp, isl, osl, requests, fraction, as_json, release,
                            str(config) if config else None, attention_dp, usd_per_gpu_hour, ep)


@app.command(epilog=_examples("trtbench calibrate runs/h100_grid/results.csv"))
def calibrate(
    csv: list[Path] = typer.Argument(..., help="CSVs with isl, osl, num_requests, output_tok_per_s (+ gpu, model, tp)"),
    gpu: list[str] = typer.Option(None, "--gpu", help="GPU for rows without one; repeat to compare candidates"),
    fraction: float = typer.Option(None, "--kv-fraction", min=0.01, max=1.0,
                                   help="kv_cache_free_gpu_mem_fraction (default: the calibration's, 0.95)"),
    fit: bool = typer.Option(False, "--fit", help="refit the step model's factors to these CSVs together"),
    write: bool = typer.Option(False, "--write", help="with --fit: store the factors and their cross-validation "
                               "as the calibration; with --cv alone: add the cross-validation to the committed one"),
    cv: bool = typer.Option(False, "--cv", help="cross-validate the fit: each TP size, GPU and model size held out "
                            "in turn (minutes per fold; --fit --write always does)"),
) -> None:
    """Per-row error, MAPE (per CSV, TP size and regime) and Spearman rank correlation of the simulator
    against measurements; on a measured run's results.csv, that error beside the one the calibration claimed."""
    from trtbench.commands import calibrate as calibrate_cmd

    calibrate_cmd.calibrate(csv, gpu or [], fraction, fit, write, cv)


@app.command(epilog=_examples("trtbench compare runs/h100_fp16 runs/h100_grid"))
def compare(
    run_a: Path = typer.Argument(..., help="baseline run directory (A)"),
    run_b: Path = typer.Argument(..., help="run directory to compare with it (B)"),
    out: Path = typer.Option(None, "--out", help="output directory (default: runs/compare_<A>_vs_<B>)"),
    no_plots: bool = typer.Option(False, "--no-plots", help="no ratio heatmap"),
    threshold: str = typer.Option("0%", "--threshold", help="a change smaller than this is no change, e.g. 2%"),
    fail_on: str = typer.Option(None, "--fail-on", help="regression: exit 1 when a point is significantly slower "
                                "by more than --threshold (for CI)"),
    as_json: bool = typer.Option(False, "--json", help="also write compare.json: each point's verdict"),
    junit: Path = typer.Option(None, "--junit", help="also write this JUnit XML file for CI: a test case per point, "
                               "failing where significantly slower beyond --threshold, skipped where not tested"),
    usd_per_gpu_hour: float = _PRICE,
) -> None:
    """Compare two runs point by point: a verdict per point (faster, slower, no significant change, inconclusive:
    Welch's t-test on the repeats, Benjamini-Hochberg across the grid), B/A ratios, failures in one only,
    geometric-mean speedup. Exit 1 with --fail-on regression on a significant slowdown, 2 on bad input."""
    from trtbench.commands import compare as compare_cmd

    status = compare_cmd.compare_runs(run_a, run_b, out, plots=not no_plots, threshold=threshold, fail_on=fail_on,
                                      as_json=as_json, junit_path=junit, usd_per_gpu_hour=usd_per_gpu_hour)
    if status:
        raise typer.Exit(status)


@app.command(epilog=_examples("trtbench report runs/h100_grid --top 20"))
def report(
    run_dir: Path = typer.Argument(..., help="a run directory written by `trtbench sweep`"),
    top_n: int = typer.Option(10, "--top", min=1, help="rows in the top table"),
    no_plots: bool = typer.Option(False, "--no-plots", help="write the tables only, no PNG plots"),
    usd_per_gpu_hour: float = _PRICE,
) -> None:
    """Write report.md, its plots, results.csv and results.parquet for RUN_DIR."""
    from trtbench.commands import report as report_cmd

    report_cmd.report(run_dir, top_n, plots=not no_plots, usd_per_gpu_hour=usd_per_gpu_hour)


@app.command(epilog=_examples("trtbench sla runs/h100_latency --ttft-p95-ms 200 --tpot-p95-ms 15"))
def sla(
    run_dir: Path = typer.Argument(..., help="a run directory written by `trtbench sweep`"),
    ttft_p95_ms: float = typer.Option(None, "--ttft-p95-ms", min=0, help="bound on p95 time to first token"),
    tpot_p95_ms: float = typer.Option(None, "--tpot-p95-ms", min=0, help="bound on p95 time per output token"),
    latency_p95_ms: float = typer.Option(None, "--latency-p95-ms", min=0, help="bound on p95 request latency"),
) -> None:
    """The best point per (ISL, OSL) by output tokens/s per GPU whose p95 latencies meet every bound given;
    writes sla.md and sla.csv."""
    from trtbench.commands import sla as sla_cmd
    from trtbench.sla import Bounds

    sla_cmd.sla(run_dir, Bounds(ttft_p95_ms, tpot_p95_ms, latency_p95_ms))


@app.command(epilog=_examples("trtbench init --model meta-llama/Llama-3.1-8B --gpu h100-sxm --budget-gpu-hours 8",
                              "trtbench init --config my-model/config.json --out my-model.yaml"))
def init(
    model: str = typer.Option(None, "--model", help="HF model name trtbench knows (with --config: its name)"),
    config: Path = typer.Option(None, "--config", help="the model's HF config.json (a model outside the presets)"),
    gpu: str = typer.Option("auto", "--gpu", help="GPU id or alias; auto: the first GPU NVML sees"),
    budget_gpu_hours: float = typer.Option(None, "--budget-gpu-hours", min=0.01, help="shrink the grid until its "
                                           "predicted GPU-hours fit (default: the seed study's grid as it is)"),
    out: Path = typer.Option(None, "--out", help="spec file to write (default: <model>.yaml here); never overwritten"),
) -> None:
    """Write a commented first spec for a model: a precision the GPU runs, the TP sizes it fits at, and an
    ISL x OSL x requests grid of the seed study's shape that fits the budget (simulated); then its plan."""
    from trtbench.commands import init as init_cmd

    init_cmd.init(model, config, gpu, budget_gpu_hours, out)


@app.command(epilog=_examples("trtbench doctor", "trtbench doctor --executor slurm --json"))
def doctor(
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="where engines are built (its free disk)"),
    executor: str = typer.Option(None, "--executor", help="slurm: Slurm is needed, not only looked at"),
    as_json: bool = typer.Option(False, "--json", help="print the findings as JSON"),
) -> None:
    """What this machine has for a measured sweep, each line ok, warning or missing with its fix: trtbench and
    Python, trtllm-bench and its TensorRT-LLM, NVML and each GPU, CUDA_VISIBLE_DEVICES, the builder's packages,
    the Hugging Face token and cache, free disk for engines, Slurm. Exit 0 when a measured sweep can run here."""
    from trtbench.commands import doctor as doctor_cmd

    doctor_cmd.doctor(engines_dir, executor, as_json)


accuracy_app = typer.Typer(help="Accuracy: trtllm-eval per artifact and its gate; ROUGE of any generations.",
                           no_args_is_help=True)
app.add_typer(accuracy_app, name="accuracy")


@accuracy_app.command("run", epilog=_examples("trtbench accuracy run sweeps/h100_accuracy.yaml"))
def accuracy_run(
    spec: Path = typer.Argument(..., help="sweep spec with an accuracy: section"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default: the spec's)"),
    no_build: bool = typer.Option(False, "--no-build", help="refuse to build a missing engine or checkpoint"),
) -> None:
    """trtllm-eval (cnn_dailymail, mmlu) on each artifact the sweep builds, recorded in accuracy.jsonl and
    resumed; then the gate against the reference precision. Exits 1 when an artifact fails or is unchecked."""
    from trtbench.commands import accuracy as accuracy_cmd

    accuracy_cmd.run_spec(spec, out, no_build)


@accuracy_app.command("score", epilog=_examples("trtbench accuracy score generations.jsonl --json"))
def accuracy_score(
    generations: Path = typer.Argument(..., help="JSONL: one {\"prediction\": ..., \"reference\": ...} per line"),
    target: str = typer.Option("mlperf-llama3.1-8b", "--target",
                               help="mlperf-llama3.1-8b (99%) | mlperf-llama3.1-8b-99.9"),
    as_json: bool = typer.Option(False, "--json", help="print the scores and verdict as JSON"),
) -> None:
    """ROUGE-1/2/L/Lsum (x 100) of the predictions against the references, each with its 95% bootstrap
    interval, and the verdict against the target from the intervals; exits 1 when it fails or is inconclusive
    (an interval straddles its threshold, or fewer than 30 generations)."""
    from trtbench.commands import accuracy as accuracy_cmd

    accuracy_cmd.score_file(generations, target, as_json)


def main() -> None:
    umask = os.umask(0o022)  # run directories are shared and read by others: 0644 files, 0755 directories
    handlers = {sig: signal.signal(sig, interrupts.handler) for sig in interrupts.SIGNALS}
    from trtbench.commands.console import fit_width

    fit_width()
    try:
        app()
    except TrtbenchError as exc:
        from rich.markup import escape

        from trtbench.commands.console import console

        console.print(f"[red]trtbench: error:[/] {escape(' '.join(str(exc).splitlines()))}", soft_wrap=True)
        sys.exit(2)
    finally:  # as they were, for a caller that runs main() in its own process (the tests)
        os.umask(umask)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
