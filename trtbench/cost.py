"""Dollars per million tokens: the price of the GPU-hours a point occupies over the tokens it serves in them.

A point on G GPUs at P $/GPU-hour serving T output tokens/s costs P x G / (T x 3600) $ per output token; per GPU,
with t = T / G, that is P / (t x 3600), x 10^6 per million. The price is the user's (the spec's `cost:` or
`--usd-per-gpu-hour`): trtbench has no price list, and every figure it prints names the price it used.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pandas as pd
from pydantic import ValidationError

from trtbench.errors import TrtbenchError
from trtbench.spec import SweepSpec
from trtbench.spec.cost import CostSpec

COST_COLUMNS = ("usd_per_gpu_hour", "usd_per_mtok", "usd_per_mtok_total")
SECONDS_PER_HOUR = 3600
PER_MILLION = 1e6
CLI_SOURCE = "--usd-per-gpu-hour on the command line"


Number = TypeVar("Number", float, pd.Series)


def usd_per_mtok(usd_per_gpu_hour: Any, tok_per_s_per_gpu: Number) -> Number:
    """$ per million tokens of a GPU serving `tok_per_s_per_gpu` at `usd_per_gpu_hour` (a number, or a column of
    prices by row)."""
    return usd_per_gpu_hour / (tok_per_s_per_gpu * SECONDS_PER_HOUR) * PER_MILLION


def with_cost(df: pd.DataFrame, cost: CostSpec | None) -> pd.DataFrame:
    """`df` (with its `gpu`, `gpus`, throughput and per-GPU throughput columns) with COST_COLUMNS filled where
    the row has throughput and its GPU a price; all empty without `cost`."""
    df = df.copy()
    if cost is None or df.empty:
        for column in COST_COLUMNS:
            df[column] = None
        return df
    price = df["gpu"].map(lambda gpu: cost.price(str(gpu))).astype(float)
    df["usd_per_gpu_hour"] = price
    df["usd_per_mtok"] = usd_per_mtok(price, df["output_tok_per_s_per_gpu"].astype(float))
    df["usd_per_mtok_total"] = usd_per_mtok(price, df["total_tok_per_s"].astype(float) / df["gpus"].astype(float))
    return df


def command_line_cost(usd_per_gpu_hour: float) -> CostSpec:
    """The price given as --usd-per-gpu-hour, checked as the spec's is (a bad one refused in one line)."""
    try:
        return CostSpec(usd_per_gpu_hour=usd_per_gpu_hour, source=CLI_SOURCE)
    except ValidationError as exc:
        raise TrtbenchError(f"--usd-per-gpu-hour {usd_per_gpu_hour:g}: {exc.errors()[0]['msg'].lower()}") from None


def priced_at(usd_per_gpu_hour: float) -> float:
    """--usd-per-gpu-hour, checked."""
    price = command_line_cost(usd_per_gpu_hour).usd_per_gpu_hour
    assert price is not None  # command_line_cost sets it
    return price


def priced(spec: SweepSpec, usd_per_gpu_hour: float | None) -> SweepSpec:
    """`spec` at the price given on the command line (which wins over its `cost:` section), or as it is."""
    if usd_per_gpu_hour is None:
        return spec
    return spec.model_copy(update={"cost": command_line_cost(usd_per_gpu_hour)})
