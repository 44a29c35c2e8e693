"""`trtbench plan SPEC`: the expanded grid and the memory verdict per point, without running anything."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from trtbench.backends.trtllm.version import known_version
from trtbench.build.cache import EngineCache
from trtbench.build.plan import plan_engines
from trtbench.commands.utils import console
from trtbench.deployment import deployment_for
from trtbench.grid import expand
from trtbench.nvml import visible_gpus
from trtbench.sim.memory import plan_memory
from trtbench.spec import SweepSpec, load_spec


def plan(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    gpus = visible_gpus()
    dep = deployment_for(spec, gpus[0].name if spec.gpu == "auto" and gpus else None)
    table = Table(title=f"{spec.name}: {spec.model.name} {spec.precision} (KV {spec.kv_cache_dtype}) on "
                        f"{dep.gpu.name}, TP{spec.tp} PP{spec.pp} - memory verdicts are simulated")
    for col in ("ISL", "OSL", "Requests", "Verdict", "Max seqs", "KV pool GiB", "max_batch_size",
                "max_num_tokens", "Cause"):
        table.add_column(col, justify="left" if col in ("Verdict", "Cause") else "right")
    for isl, osl in spec.pairs:
        mem = plan_memory(dep, isl, osl)
        style = "green" if mem.verdict == "ok" else "red"
        table.add_row(str(isl), str(osl), f"{spec.requests.count(isl, osl):,}", f"[{style}]{mem.verdict}[/]",
                      f"{mem.max_concurrent_seqs:,}", f"{mem.kv_pool_gib:.1f}", str(mem.max_batch_size),
                      str(mem.max_num_tokens), mem.cause)
    console.print(table)
    if spec.backend != "sim":
        print_engines(spec)


def print_engines(spec: SweepSpec) -> None:
    """The engines the trtllm backend would use, and which points each serves."""
    version = known_version(spec.trtllm.version, spec.trtllm.executable)
    if spec.trtllm.engine_dir:
        console.print(f"engine: {spec.trtllm.engine_dir} (given in the spec) serves all {len(spec.pairs)} points")
        return
    # Point ids do not matter here; only which lengths each engine serves.
    points = expand(spec, {"backend": "plan"})
    cache = EngineCache(Path(spec.build.engines_dir))
    table = Table(title=f"Engines for TensorRT-LLM {version.text if version else '(version unknown)'}")
    for col in ("Engine", "Path", "State", "max_seq_len", "max_batch_size", "max_num_tokens", "Points", "Unserved"):
        table.add_column(col)
    for plan in plan_engines(spec, version, points):
        c = plan.config
        manifest = cache.manifest(c)
        state = "built" if cache.reusable(c) else (f"failed: {manifest.failure}" if manifest else "to build")
        unserved = ", ".join(f"{p.isl}/{p.osl}" for p in plan.unserved) or "-"
        table.add_row(c.name, str(cache.path(c)), state, str(c.max_seq_len), str(c.max_batch_size),
                      str(c.max_num_tokens), f"{len(plan.points)} of {len(points)}", unserved)
    console.print(table)
