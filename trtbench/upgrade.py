"""Runs recorded by trtbench 0.1.0, carried into the current format so a resume re-runs nothing.

0.1.0 hashed a point's id from almost the whole spec, so its ids cannot be recomputed. A 0.1.0 record
is adopted by the current point with the same (ISL, OSL, requests) when nothing that can change its
result differs: the spec recorded with the run agrees with the current one on every field the backend
declares, the record came from the same backend, and the backend identity recorded in run.json agrees
with the current one on every key both have. Other records keep their old ids (reported as stale).
The old results.jsonl is kept as results.v0.jsonl.
"""

from __future__ import annotations

from trtbench.errors import TrtbenchError
from trtbench.grid import IdentityRule, Point, field_value
from trtbench.spec import SweepSpec
from trtbench.store import RunStore

KEPT_AS = "results.v0.jsonl"


def adoptions(store: RunStore, spec: SweepSpec, backend: str, rule: IdentityRule,
              points: list[Point]) -> dict[str, str] | None:
    """For a 0.1.0 run: attempt -> the current point id that adopts the record (reading only); None for a
    run of the current format."""
    if not store.results_path.exists() or not (store.path / "run.json").exists():
        return None
    meta = store.meta()
    if meta.get("schema_version", 0) != 0:  # 0.1.0's run.json has no version
        return None
    try:
        old_spec = store.spec()
    except TrtbenchError:
        old_spec = None
    old_identity = meta.get("provenance", {}).get("backend", {})
    same = old_spec is not None and _agrees(old_spec, spec, rule) and all(
        old_identity.get(k, v) == v for k, v in rule.backend.items())
    by_axes = {(p.isl, p.osl, p.requests): p for p in points if not p.extra}
    adopted = {}
    for record in store.all_records():
        point = by_axes.get((record.isl, record.osl, record.requests)) if same and record.backend == backend else None
        if point is not None:
            adopted[record.attempt] = point.id
    return adopted


def upgrade_v0(store: RunStore, spec: SweepSpec, backend: str, rule: IdentityRule, points: list[Point]) -> int:
    """Re-key and rewrite a 0.1.0 run's records in place (under the run's lock); returns how many
    were adopted by current points."""
    adopted = adoptions(store, spec, backend, rule, points)
    if adopted is None:
        return 0
    records = [r.model_copy(update={"point_id": adopted[r.attempt]}) if r.attempt in adopted else r
               for r in store.all_records()]
    store.rewrite(records, keep_as=KEPT_AS)
    return len(adopted)


def recorded_ids(store: RunStore, spec: SweepSpec, backend: str, rule: IdentityRule, points: list[Point],
                 ok_only: bool = False) -> set[str]:
    """The ids of `points` a sweep in `store` would find recorded (`ok_only`: recorded ok), 0.1.0 records it
    would adopt included, without writing anything (what a resume need not prepare for)."""
    adopted = adoptions(store, spec, backend, rule, points)
    return store.done_ids(ok_only) | set((adopted or {}).values())


def _agrees(old: SweepSpec, new: SweepSpec, rule: IdentityRule) -> bool:
    if old.grid.swept() or new.grid.swept():
        return False  # 0.1.0 had no extra axes
    return all(field_value(old, f) == field_value(new, f) for f in rule.fields)
