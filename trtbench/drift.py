"""What changed between the spec a run directory recorded and the spec given now, and whether it changes
what is measured: an edit to the grid, the requests or a field behind a point's id would mix two
different sweeps in one directory, so the sweep refuses it unless told; timeouts, log levels and
paths change no measurement and are taken with a note."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trtbench.grid import IdentityRule
from trtbench.spec import SweepSpec

# Besides the backend's identity fields: what decides which points exist and who measures them.
_ALWAYS_MEASURED = ("grid", "requests", "backend")


@dataclass(frozen=True)
class Change:
    key: str  # dotted, e.g. runtime.timeout_s
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(value: Any) -> str:
    text = "(unset)" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}


def changes(old: SweepSpec, new: SweepSpec) -> list[Change]:
    """Every leaf that differs between the two specs' canonical forms, in key order."""
    before, after = _flat(old.canonical()), _flat(new.canonical())
    return [Change(key, before.get(key), after.get(key)) for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)]


def measured(change: Change, rule: IdentityRule) -> bool:
    """Whether `change` can change a point's result (or which points there are) under `rule`."""
    return any(change.key == name or change.key.startswith(name + ".") or name.startswith(change.key + ".")
               for name in (*rule.fields, *_ALWAYS_MEASURED))
