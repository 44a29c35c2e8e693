"""The spec's `cost:` section: what a GPU-hour costs the user, and where that price came from. trtbench keeps no
price list of its own: every cost figure it prints is this price, named beside it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import SpecError
from trtbench.spec.fields import Strict, Text

MAX_USD_PER_GPU_HOUR = 10_000.0  # far above any rental or amortised price of 2026: only a typo reaches it
UsdPerGpuHour = Annotated[float, Field(gt=0, le=MAX_USD_PER_GPU_HOUR)]


class CostSpec(Strict):
    """`usd_per_gpu_hour`: one price for every GPU; `per_gpu`: a price per GPU model (catalog id or alias, as
    `gpu:` takes), which wins over the single price for that model; `source`: where the price came from (a
    quote, a cloud's list price on a date), printed beside every cost figure."""

    usd_per_gpu_hour: UsdPerGpuHour | None = None
    per_gpu: dict[Text, UsdPerGpuHour] = Field(default_factory=dict)
    source: Text | None = Field(None, description="where the price came from, e.g. 'on-demand quote, 2026-11'")

    @field_validator("per_gpu")
    @classmethod
    def _known_gpus(cls, prices: dict[str, float]) -> dict[str, float]:
        """Keys as catalog ids, so a row's GPU finds its price however the spec spelled it."""
        canonical: dict[str, float] = {}
        for name, price in prices.items():
            try:
                gpu = resolve_gpu(name).id
            except SpecError as exc:  # re-raised as ValueError so pydantic locates it
                raise ValueError(str(exc)) from None
            if gpu in canonical:
                raise ValueError(f"prices {gpu} twice ({name!r} names it again)")
            canonical[gpu] = price
        return canonical

    @model_validator(mode="after")
    def _some_price(self) -> CostSpec:
        if self.usd_per_gpu_hour is None and not self.per_gpu:
            raise ValueError("give usd_per_gpu_hour, or per_gpu prices by GPU model")
        return self

    def price(self, gpu: str) -> float | None:
        """$ per GPU-hour of `gpu` (a catalog id, alias or NVML name); None where neither price covers it."""
        try:
            gpu = resolve_gpu(gpu).id
        except SpecError:
            return self.usd_per_gpu_hour
        return self.per_gpu.get(gpu, self.usd_per_gpu_hour)

    def label(self) -> str:
        """The price as every cost figure names it: `$2.50/GPU-hour (source: ...)`."""
        prices = [f"${self.usd_per_gpu_hour:,.2f}/GPU-hour"] if self.usd_per_gpu_hour is not None else []
        prices += [f"${p:,.2f}/GPU-hour on {gpu}" for gpu, p in self.per_gpu.items()]
        return f"{', '.join(prices)} (source: {self.source or 'not stated'})"
