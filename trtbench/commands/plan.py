"""`trtbench plan SPEC`: the expanded grid and the memory verdict per point, without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from rich.table import Table

from trtbench.backends.registry import PREDICTOR
from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.plan import plan_engines
from trtbench.backends.trtllm.version import known_version
from trtbench.commands.utils import console
from trtbench.deployment import PointDeployments
from trtbench.errors import SpecError, TrtbenchError
from trtbench.executors.gpus import makespan, node_gpus
from trtbench.executors.slurm import cluster_wall_s
from trtbench.grid import IdentityRule, Point, expand
from trtbench.nvml import GpuInfo, visible_gpus
from trtbench.records import Status
from trtbench.runner import MODEL_LOAD_S, predict, tasks_for
from trtbench.sim.memory import plan_memory
from trtbench.spec import EXECUTORS, SweepSpec, load_spec


def plan(spec_path: Path, max_points: int | None = None, executor: str | None = None) -> None:
    spec = load_spec(spec_path)
    if executor not in (None, *get_args(EXECUTORS)):
        raise SpecError(f"--executor {executor!r}: choose one of {', '.join(get_args(EXECUTORS))}")
    gpus = visible_gpus()
    gpu_name = gpus[0].name if spec.gpu == "auto" and gpus else None
    points = expand(spec, IdentityRule(()), max_points)  # ids do not matter here
    axes = list(spec.grid.swept())
    deployments = PointDeployments(spec, gpu_name)
    gpu = deployments.base.gpu
    swept = f", sweeping {', '.join(axes)}" if axes else f", TP{spec.tp} PP{spec.pp}"
    table = Table(title=f"{spec.name}: {spec.model.name} {spec.precision} (KV {spec.kv_cache_dtype}) on "
                        f"{gpu.name}{swept} - memory verdicts are simulated")
    for col in (*axes, "ISL", "OSL", "Requests", "Verdict", "Max seqs", "KV pool GiB", "max_batch_size",
                "max_num_tokens", "Cause"):
        table.add_column(col, justify="left" if col in ("Verdict", "Cause", "precision", "kv_cache_dtype") else "right")
    for point in points:
        dep = deployments(point.extra)
        mem = plan_memory(dep, point.isl, point.osl)
        style = "green" if mem.verdict is Status.OK else "red"
        cause = mem.cause
        limit = dep.runtime.concurrency
        if mem.verdict is Status.OK and limit and limit > min(mem.max_concurrent_seqs, mem.max_batch_size):
            style, cause = "yellow", (f"concurrency {limit} is not reached: the KV cache holds "
                                      f"{mem.max_concurrent_seqs:,} sequences, max_batch_size {mem.max_batch_size:,}")
        table.add_row(*(str(point.values[a]) for a in axes), str(point.isl), str(point.osl), f"{point.requests:,}",
                      f"[{style}]{mem.verdict}[/]", f"{mem.max_concurrent_seqs:,}", f"{mem.kv_pool_gib:.1f}",
                      str(mem.max_batch_size), str(mem.max_num_tokens), cause)
    console.print(table)
    console.print(f"model: {deployments.base.arch.name}, {deployments.base.arch.describe()}")
    print_wall_time(spec, points, gpus, (executor or spec.executor.kind) == "slurm")
    if spec.backend != "sim":
        print_engines(spec, points)


def print_wall_time(spec: SweepSpec, points: list[Point], gpus: list[GpuInfo], cluster: bool) -> None:
    """The sweep's predicted wall time (the simulator's per point, plus a model load each) one point at a
    time, packed onto this node's GPUs as `--executor gpus` runs it, and on the cluster's jobs."""
    predictor = PREDICTOR.create(spec, spec.run_dir(), gpus, False)[0]
    tasks = tasks_for(spec, points, {p.id: predict(predictor, p) for p in points})
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
    console.print(line)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def print_engines(spec: SweepSpec, points: list[Point]) -> None:
    """The engines the trtllm backend would use (one per build configuration), and which points each serves."""
    version = known_version(spec.trtllm.version, spec.trtllm.executable)
    if spec.trtllm.engine_dir:
        console.print(f"engine: {spec.trtllm.engine_dir} (given in the spec) serves all {len(points)} points")
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
    console.print(table)
