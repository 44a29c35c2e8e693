"""`trtbench plan SPEC`: the expanded grid and each point's verdict as the sweep would record it, without running
anything."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from rich.markup import escape
from rich.table import Table

from trtbench.backends.sim import SimBackend
from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.plan import plan_engines
from trtbench.backends.trtllm.version import TrtllmVersion, known_version
from trtbench.commands.console import out
from trtbench.errors import SpecError, TrtbenchError
from trtbench.executors.gpus import makespan, node_gpus
from trtbench.executors.slurm import cluster_wall_s
from trtbench.grid import IdentityRule, Point, expand
from trtbench.nvml import GpuInfo, visible_gpus
from trtbench.records import Prediction
from trtbench.runner import MODEL_LOAD_S, prediction_of, tasks_for
from trtbench.spec import EXECUTORS, SweepSpec, load_spec
from trtbench.tally import Tally


def plan(spec_path: Path, max_points: int | None = None, executor: str | None = None) -> None:
    """Each point's verdict as a simulated sweep would record it (ok, borderline, oom, infeasible, timeout), its
    memory and predicted run time, then the count and the sweep's predicted wall time."""
    spec = load_spec(spec_path)
    if executor not in (None, *get_args(EXECUTORS)):
        raise SpecError(f"--executor {executor!r}: choose one of {', '.join(get_args(EXECUTORS))}")
    gpus = visible_gpus()
    points = expand(spec, IdentityRule(()), max_points)  # ids do not matter here
    # What a sim sweep records; for the real path, predicted for the TensorRT-LLM installed here, as a sweep's
    # predictions beside its measurements are
    installed = known_version(spec.trtllm.version, spec.trtllm.executable) if spec.backend != "sim" else None
    predictor = SimBackend(spec.on_version(installed.text if installed else None),
                           gpus[0].name if spec.gpu == "auto" and gpus else None)
    outcomes = [predictor.run(point, "plan") for point in points]
    axes = list(spec.grid.swept())
    deployments = predictor.deployments  # resolved once, for the predictions and the columns alike
    swept = f", sweeping {', '.join(axes)}" if axes else f", TP{spec.tp} PP{spec.pp}"
    table = Table(title=f"{spec.name}: {spec.model.name} {spec.precision} ({spec.kv_label()}) on "
                        f"{deployments.base.gpu.name}{swept} - verdicts simulated, timeout "
                        f"{spec.runtime.timeout_s:,.0f} s")
    # Under attention DP each rank has its own KV pool and batch limits: the columns say so, with the ranks.
    dp_ranks = [deployments(point.extra).dp_ranks for point in points]
    per_rank = any(r > 1 for r in dp_ranks)
    limits = ("max_concurrent_seqs", "kv_pool_gib", "max_batch_size", "max_num_tokens", *(("kv_tokens",) * per_rank))
    names = ("Max seqs", "KV pool GiB", "max_batch_size", "max_num_tokens", "KV tokens")
    for col in (*axes, "ISL", "OSL", "Requests", "Verdict", "Predicted run",
                *(("DP ranks",) if per_rank else ()),
                *(f"{c} per rank" if per_rank else c for c in names[:len(limits)]),
                "Cause"):
        table.add_column(col, justify="left" if col in ("Verdict", "Cause", "precision", "kv_cache_dtype") else "right")
    for point, outcome, ranks in zip(points, outcomes, dp_ranks, strict=True):
        mem = outcome.memory
        verdict, style, causes = str(outcome.status), "red", [outcome.cause]
        if outcome.ok:
            verdict, style = ("ok (borderline)", "yellow") if outcome.borderline else ("ok", "green")
            causes = [outcome.borderline or ""]
        limit = deployments(point.extra).runtime.concurrency
        if limit and mem and mem.max_concurrent_seqs and mem.max_batch_size and \
                limit > ranks * min(mem.max_concurrent_seqs, mem.max_batch_size):
            style = "yellow" if outcome.ok else style
            each = f" on each of {ranks} ranks" if ranks > 1 else ""
            causes.append(f"concurrency {limit} is not reached: the KV cache holds {mem.max_concurrent_seqs:,} "
                          f"sequences, max_batch_size {mem.max_batch_size:,.0f}{each}")
        cause = "; ".join(c for c in causes if c)
        wall = outcome.predicted_wall_s
        table.add_row(*(str(point.values[a]) for a in axes), str(point.isl), str(point.osl), f"{point.requests:,}",
                      f"[{style}]{verdict}[/]", _hours(wall) if wall else "-", *((str(ranks),) if per_rank else ()),
                      *(_cell(getattr(mem, k, None)) for k in limits), escape(cause))
    out.print(table)
    out.print(f"model: {deployments.base.arch.name}, {deployments.base.arch.describe()}")
    out.print("predicted (simulated): " + Tally.of_outcomes(outcomes).line())
    cluster = (executor or spec.executor.kind) == "slurm"
    print_wall_time(spec, points, [prediction_of(o) for o in outcomes], gpus, cluster)
    if spec.backend != "sim":
        print_engines(spec, points, installed)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:,.0f}"


def print_wall_time(spec: SweepSpec, points: list[Point], predictions: list[Prediction], gpus: list[GpuInfo],
                    cluster: bool) -> None:
    """The sweep's predicted wall time (the simulator's per point, plus a model load each) one point at a
    time, packed onto this node's GPUs as `--executor gpus` runs it, and on the cluster's jobs."""
    tasks = tasks_for(spec, points, {p.id: pred for p, pred in zip(points, predictions, strict=True)})
    one = sum(t.expected_s for t in tasks)
    line = f"predicted wall time (simulated, {MODEL_LOAD_S:.0f} s model load per point): one at a time {_hours(one)}"
    try:
        ids = node_gpus(spec.executor.gpus)
    except TrtbenchError:  # no GPU here and none named: one at a time is all there is to say
        ids = []
    if ids:
        line += f"; on {len(ids)} GPUs (--executor gpus) {_hours(makespan(tasks, ids))}"
    if cluster:
        wall, jobs, held = cluster_wall_s(spec.executor.slurm, tasks)
        line += (f"; on Slurm (--executor slurm, {jobs} jobs, up to {held} GPUs at once) {_hours(wall)}, "
                 f"queue waits not included")
    out.print(line)


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:,.1f} s"
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def print_engines(spec: SweepSpec, points: list[Point], version: TrtllmVersion | None) -> None:
    """The engines the trtllm backend would use (one per build configuration) on `version` (the spec's or the
    installed one: `known_version`), and which points each serves."""
    if spec.trtllm.engine_dir:
        out.print(f"engine: {spec.trtllm.engine_dir} (given in the spec) serves all {len(points)} points")
        return
    cache = EngineCache(Path(spec.build.engines_dir))
    table = Table(title=f"Engines for TensorRT-LLM {version.text if version else '(version unknown)'}")
    for col in ("Engine", "Path", "State", "max_seq_len", "max_batch_size", "max_num_tokens", "Points", "Unserved"):
        table.add_column(col, overflow="fold")  # names and paths are one long word: fold them, never cut
    for engine in plan_engines(spec, version, points):
        c = engine.config
        manifest = cache.manifest(c)
        state = "built" if cache.reusable(c) else (f"failed: {manifest.failure}" if manifest else "to build")
        if engine.prequantized:  # the PyTorch path builds nothing from pre-quantized weights
            state = engine.prequantized if c.path == "pytorch" else f"{state}: {engine.prequantized}"
        unserved = ", ".join(f"{p.isl}/{p.osl}" for p in engine.unserved) or "-"
        limits = (c.max_seq_len, c.max_batch_size, c.max_num_tokens)  # None: runtime settings on the PyTorch path
        table.add_row(c.name, str(cache.path(c)), state, *("-" if v is None else str(v) for v in limits),
                      f"{len(engine.points)} of {len(points)}", unserved)
    out.print(table)
