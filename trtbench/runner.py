"""Run a sweep's points through a backend into a store: resume by default, failures as data."""

from __future__ import annotations

import platform
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trtbench import __version__
from trtbench.backends.base import Backend
from trtbench.backends.select import Selection
from trtbench.backends.sim import SimBackend
from trtbench.deployment import deployment_for
from trtbench.errors import TrtbenchError
from trtbench.grid import Point, expand
from trtbench.records import Outcome, Record
from trtbench.spec import SweepSpec
from trtbench.store import RunStore


@dataclass(frozen=True)
class SweepSummary:
    run_dir: Path
    total: int
    already_done: int
    ran: int


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def provenance(selection: Selection) -> dict[str, Any]:
    gpus = selection.gpus
    return {
        "trtbench": __version__,
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "backend": selection.backend.identity(),
        "backend_reason": selection.reason,
        "gpus": [{"name": g.name, "memory_total_mib": g.memory_total_mib} for g in gpus],
        "driver": gpus[0].driver if gpus else None,
        "command": sys.argv,
    }


def companion_for(spec: SweepSpec, backend: Backend) -> SimBackend | None:
    """For a measuring backend, the simulator whose prediction is recorded beside each measurement
    (None where the GPU or model is unknown to it)."""
    if backend.source != "measured":
        return None
    try:
        return SimBackend(deployment_for(spec, str(backend.identity().get("gpu") or spec.gpu)))
    except TrtbenchError:
        return None


def run_sweep(spec: SweepSpec, selection: Selection, store: RunStore, console: Console) -> SweepSummary:
    backend = selection.backend
    companion = companion_for(spec, backend)
    points = expand(spec, backend.identity())
    with store.lock():
        store.repair()
        done = {r.point_id for r in store.records()}
        store.write_meta(spec, {
            "spec_hash": spec.hash(),
            "point_ids": [p.id for p in points],
            "updated_at": now_iso(),
            "provenance": provenance(selection),
        })
        todo = [p for p in points if p.id not in done]
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("starting", total=len(points), completed=len(points) - len(todo))
            for point in todo:
                progress.update(task, description=f"{backend.name}: {point.label}")
                store.append(_run_point(backend, point, companion))
                progress.advance(task)
            progress.update(task, description=f"{backend.name}: done")
    return SweepSummary(store.path, len(points), len(points) - len(todo), len(todo))


def _run_point(backend: Backend, point: Point, companion: SimBackend | None) -> Record:
    started_at, t0 = now_iso(), time.monotonic()
    try:
        outcome = backend.run(point)
    except Exception as exc:  # a backend bug must not end the sweep: record it and go on
        outcome = Outcome(status="error", cause=f"backend raised {type(exc).__name__}: {exc}",
                          source=backend.source)
    duration = time.monotonic() - t0
    return Record(
        **outcome.model_dump(),
        prediction=_predict(companion, point),
        point_id=point.id,
        isl=point.isl,
        osl=point.osl,
        requests=point.requests,
        backend=backend.name,
        started_at=started_at,
        duration_s=duration,
    )


def _predict(companion: SimBackend | None, point: Point) -> dict[str, Any] | None:
    if companion is None:
        return None
    predicted = companion.run(point)
    metrics = predicted.metrics
    return {"status": predicted.status, "cause": predicted.cause, "model": predicted.detail.get("perf_model"),
            "output_tok_per_s": metrics.output_tok_per_s if metrics else None,
            "roofline_output_tok_per_s": getattr(metrics, "roofline_output_tok_per_s", None) if metrics else None}
