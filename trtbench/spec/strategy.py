"""Which points a sweep measures: every one (`full`), or those the simulator says can still matter (`guided`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from trtbench.precision import Named
from trtbench.spec.fields import Strict


class Strategy(Named):
    """`full`: every point of the grid, in grid order. `guided`: the points the simulator, refitted after each batch
    to this run's own measurements, says may still be among the best; stops when the top k is settled."""

    FULL = "full"
    GUIDED = "guided"


class GuidedSpec(Strict):
    """When a guided sweep stops: its top `top_k` settled at `confidence` (no unmeasured point enters it with a
    probability above 1 - confidence), or `budget_gpu_hours` of measured GPU time spent."""

    top_k: Annotated[int, Field(strict=True, ge=1, le=1000)] = 5
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    budget_gpu_hours: Annotated[float, Field(gt=0, le=1e6)] | None = None
