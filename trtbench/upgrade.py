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


def upgrade_v0(store: RunStore, spec: SweepSpec, backend: str, rule: IdentityRule, points: list[Point]) -> int:
    """Re-key and rewrite a 0.1.0 run's records in place (under the run's lock); returns how many
    were adopted by current points."""
    if not store.results_path.exists() or not (store.path / "run.json").exists():
        return 0
    meta = store.meta()
    if meta.get("schema_version", 0) != 0:  # 0.1.0's run.json has no version
        return 0
    try:
        old_spec = store.spec()
    except TrtbenchError:
        old_spec = None
    old_identity = meta.get("provenance", {}).get("backend", {})
    same = old_spec is not None and _agrees(old_spec, spec, rule) and all(
        old_identity.get(k, v) == v for k, v in rule.backend.items())
    by_axes = {(p.isl, p.osl, p.requests): p for p in points if not p.extra}
    records, adopted = [], 0
    for record in store.all_records():
        point = by_axes.get((record.isl, record.osl, record.requests)) if same and record.backend == backend else None
        if point is not None:
            record = record.model_copy(update={"point_id": point.id})
            adopted += 1
        records.append(record)
    store.rewrite(records, keep_as=KEPT_AS)
    return adopted


def _agrees(old: SweepSpec, new: SweepSpec, rule: IdentityRule) -> bool:
    if old.grid.swept() or new.grid.swept():
        return False  # 0.1.0 had no extra axes
    return all(field_value(old, f) == field_value(new, f) for f in rule.fields)
