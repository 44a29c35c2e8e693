"""Spec -> ordered grid points. A point is a mapping of axis -> value with an id; expansion is one pure
function.

A point's id hashes what can change its result and nothing else: its axis values, the spec fields its
backend declares (`IdentityRule.fields`), and the backend's own identity (tool versions). Timeouts,
log levels, names and output paths are never part of it, so editing them never re-runs a point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trtbench.errors import SpecError
from trtbench.records import AxisValue
from trtbench.spec import EXTRA_AXES, BenchMode, SweepSpec, stable_hash


@dataclass(frozen=True)
class IdentityRule:
    """What a backend says about identity: dotted spec fields that change its results, and who it is."""

    fields: tuple[str, ...]
    backend: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Point:
    axes: tuple[tuple[str, AxisValue], ...]  # in AXES order
    id: str

    @property
    def values(self) -> dict[str, AxisValue]:
        return dict(self.axes)

    @property
    def isl(self) -> int:
        return int(self.values["isl"])

    @property
    def osl(self) -> int:
        return int(self.values["osl"])

    @property
    def requests(self) -> int:
        return int(self.values["requests"])

    @property
    def extra(self) -> dict[str, AxisValue]:
        """The axes besides ISL, OSL and requests (TP, precision, ...)."""
        return {k: v for k, v in self.axes if k in EXTRA_AXES}

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return f"{extra + ' ' if extra else ''}ISL={self.isl} OSL={self.osl} N={self.requests}"


MIN_WAVES = 4  # a point with a concurrency limit N runs at least 4 N requests: ramp-up and drain stay a small share


def combinations(spec: SweepSpec) -> Iterator[dict[str, AxisValue]]:
    """Every axis combination: extra axes outermost (EXTRA_AXES order), then ISL, then OSL. Under a
    concurrency limit N (1 in latency mode) the request count is at least MIN_WAVES x N."""
    swept = spec.grid.swept()
    latency = spec.mode is BenchMode.LATENCY
    for extra in itertools.product(*swept.values()):
        values = {axis: (v.value if hasattr(v, "value") else v) for axis, v in zip(swept, extra, strict=True)}
        limit = 1 if latency else values.get("concurrency", spec.runtime.concurrency)
        for isl, osl in spec.pairs:
            count = spec.requests.count(isl, osl)
            requests = max(count, MIN_WAVES * int(limit)) if isinstance(limit, int) else count
            yield {**values, "isl": isl, "osl": osl, "requests": requests}


def field_value(spec: SweepSpec, dotted: str) -> Any:
    value: Any = spec.model_dump(mode="json")
    for part in dotted.split("."):
        value = value[part]
    return value


# Every axis is part of every id, whatever the backend declares, so no two points can share one.
_AXIS_FIELDS = tuple(f"{where}.{axis}" if where else axis for axis, where in EXTRA_AXES.items())
_UNSET_OMITTED = {"ep", "attention_dp"}  # axes added later: unset, they leave the ids of earlier runs as they were


def point_id(spec: SweepSpec, values: Mapping[str, AxisValue], rule: IdentityRule) -> str:
    """`spec` is the point's own spec (`spec.at(values)`): a scalar TP of 2 and the TP=2 point of a
    TP grid get the same id. Latency mode is part of it; throughput, the default, adds nothing, so ids
    from before modes existed still match."""
    fields = sorted(set(rule.fields) | set(_AXIS_FIELDS))
    mode = {"mode": spec.mode.value} if spec.mode is not BenchMode.THROUGHPUT else {}
    values_of = {f: field_value(spec, f) for f in fields}
    values_of = {f: v for f, v in values_of.items() if not (f in _UNSET_OMITTED and v is None)}
    return stable_hash({"spec": values_of, "backend": dict(rule.backend),
                        "isl": values["isl"], "osl": values["osl"], "requests": values["requests"], **mode})


DEFAULT_MAX_POINTS = 10_000  # real grids have tens to hundreds; 10,000 runs of a minute take a week


def check_size(spec: SweepSpec, max_points: int | None = None) -> None:
    """Refuse a grid above `max_points` (None: DEFAULT_MAX_POINTS), counted from its axes' lengths before
    anything works through it."""
    limit = DEFAULT_MAX_POINTS if max_points is None else max_points
    count = len(spec.grid.isl) * len(spec.grid.osl) * math.prod(len(v) for v in spec.grid.swept().values())
    if count > limit:
        raise SpecError(f"grid has {count:,} points, above the limit of {limit:,}; "
                        f"pass --max-points {count} to run it anyway")


def expand(spec: SweepSpec, rule: IdentityRule, max_points: int | None = None) -> list[Point]:
    """Every point, in `combinations` order; refused above `max_points` (see `check_size`)."""
    check_size(spec, max_points)
    points = []
    for values in combinations(spec):
        axes = tuple(values.items())
        points.append(Point(axes, point_id(spec.at(values), values, rule)))
    return points
