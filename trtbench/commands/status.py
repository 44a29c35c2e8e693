"""`trtbench status RUN_DIR`: where each point of a run stands: recorded (ok or failed), queued or running
on Slurm, or not started yet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.table import Table

from trtbench.commands.console import out
from trtbench.commands.utils import warn
from trtbench.executors.slurm import ACTIVE, job_states
from trtbench.guided.section import guided_status
from trtbench.store import RunStore
from trtbench.tally import Tally


def status(run_dir: Path) -> None:
    """The table of where points stand, then the same one-line count the sweep and the report give."""
    store = RunStore.open(run_dir, warn)
    meta = store.meta()
    point_ids = meta.get("point_ids", [])
    records = {r.point_id: r for r in store.records()}
    jobs = job_states(run_dir / "slurm")
    where: Counter[str] = Counter()
    for point_id in point_ids:
        record = records.get(point_id)
        job, state, reached = jobs.get(point_id, (None, "", False))
        if record is not None:
            where["done: ok" if record.ok else f"done: {record.status}"] += 1
        elif job is not None and state in ACTIVE:
            where[f"slurm: {state.lower()}"] += 1
        elif job is not None and reached:
            where["slurm: ended, the next sweep (or report) merges it"] += 1
        elif job is not None:
            where["slurm: its job ended before reaching it, the next sweep submits it again"] += 1
        else:
            where["not started"] += 1
    table = Table(title=f"{run_dir}: {len(point_ids)} points")
    table.add_column("State")
    table.add_column("Points", justify="right")
    for state, count in sorted(where.items()):
        table.add_row(state, str(count))
    out.print(table)
    recorded = [records[p] for p in point_ids if p in records]
    out.print(Tally.of_outcomes(recorded, len(point_ids) - len(recorded)).line())
    if "guided" in meta:  # why the points that are not started will not be: the guided plan's account
        out.print(guided_status(meta["guided"]))
    rejudged = meta.get("rejudged")
    if rejudged:
        changes = "; ".join(f"{n} {change}" for change, n in rejudged["changes"].items())
        out.print(f"the last sweep re-judged simulated points against runtime.timeout_s {rejudged['timeout_s']:,.0f} s "
                  f"(nothing re-run): {changes}")
