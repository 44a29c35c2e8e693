"""`trtbench plan SPEC`: the expanded grid and the memory verdict per point, without running anything."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from trtbench.commands.utils import console
from trtbench.deployment import deployment_for
from trtbench.nvml import visible_gpus
from trtbench.sim.memory import plan_memory
from trtbench.spec import load_spec


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
