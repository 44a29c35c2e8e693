"""Spec -> ordered grid points, each with an id that changes whenever anything behind its result does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trtbench.spec import SweepSpec, stable_hash

# Spec fields that say where results go or how the grid is written, not what a point measures.
_NOT_IDENTITY = ("name", "output_dir", "grid", "requests", "backend", "build")  # the engine used is in the backend id


@dataclass(frozen=True, order=True)
class Point:
    isl: int
    osl: int
    requests: int
    id: str

    @property
    def label(self) -> str:
        return f"ISL={self.isl} OSL={self.osl} N={self.requests}"


def point_context(spec: SweepSpec, backend_identity: dict[str, Any]) -> dict[str, Any]:
    context = {k: v for k, v in spec.canonical().items() if k not in _NOT_IDENTITY}
    return {"spec": context, "backend": backend_identity}


def expand(spec: SweepSpec, backend_identity: dict[str, Any]) -> list[Point]:
    """Points in ISL-major order, as the spec lists the lengths."""
    context = point_context(spec, backend_identity)
    points = []
    for isl, osl in spec.pairs:
        n = spec.requests.count(isl, osl)
        points.append(Point(isl, osl, n, stable_hash({**context, "isl": isl, "osl": osl, "requests": n})))
    return points
