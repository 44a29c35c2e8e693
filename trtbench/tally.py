"""How the points of a sweep ended, counted and worded once: the sweep's closing line, `plan`'s verdicts,
`status` and the report's failure section all print `Tally.line()`, so they cannot disagree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from trtbench.records import Outcome, Status


@dataclass(frozen=True)
class Tally:
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # status -> points, most first
    not_run: int = 0
    borderline: int = 0  # of the ok points: within the model's error of a limit

    @classmethod
    def of(cls, outcomes: Iterable[tuple[str, bool]], not_run: int = 0) -> Tally:
        """`outcomes`: (status, borderline) per point that has one."""
        ok = borderline = 0
        failed: Counter[str] = Counter()
        for status, near in outcomes:
            if status == Status.OK.value:
                ok += 1
                borderline += bool(near)
            else:
                failed[status] += 1
        return cls(ok, dict(sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))), not_run, borderline)

    @classmethod
    def of_outcomes(cls, outcomes: Iterable[Outcome], not_run: int = 0) -> Tally:
        """Records, or predictions as `plan` makes them."""
        return cls.of(((o.status.value, o.borderline is not None) for o in outcomes), not_run)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def total(self) -> int:
        return self.ok + self.failures + self.not_run

    def line(self) -> str:
        """"64 points: 60 ok (1 borderline), 4 failed (timeout 4), 0 not run"."""
        near = f" ({self.borderline} borderline)" if self.borderline else ""
        why = f" ({', '.join(f'{k} {v}' for k, v in self.failed.items())})" if self.failed else ""
        points = "point" if self.total == 1 else "points"
        return f"{self.total} {points}: {self.ok} ok{near}, {self.failures} failed{why}, {self.not_run} not run"
