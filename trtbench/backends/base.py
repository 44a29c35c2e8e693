"""What every backend offers the runner: run one point, say who you are."""

from __future__ import annotations

from typing import Any, Protocol

from trtbench.grid import Point
from trtbench.records import Outcome, Source


class Backend(Protocol):
    name: str
    source: Source

    def identity(self) -> dict[str, Any]:
        """Everything about the backend that changes results (tool and model versions); part of
        each point's id, so a new version never reuses an old result."""
        ...

    def command(self, point: Point) -> list[str] | None:
        """The argument list `run` would execute (None for a backend that runs no command)."""
        ...

    def run(self, point: Point) -> Outcome:
        """Run one point. Failures of the point come back as an Outcome, never as an exception."""
        ...
