"""The sweep spec itself: every section together, what one point runs (`SweepSpec.at`), and its hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import SpecError
from trtbench.precision import KvDtype, Named, Precision, default_kv
from trtbench.spec.cost import CostSpec
from trtbench.spec.executor import ExecutorSpec
from trtbench.spec.fields import MAX_REQUESTS, NAME_CHARS, Parallel, PathText, Strict, Text
from trtbench.spec.sections import (
    EXTRA_AXES,
    AccuracySpec,
    BuildSpec,
    GridSpec,
    ModelSpec,
    RequestsSpec,
    RuntimeSpec,
    SlaSpec,
    TrtllmSpec,
)
from trtbench.spec.strategy import GuidedSpec, Strategy


class BenchMode(Named):
    """Which trtllm-bench subcommand measures each point: `throughput` (many requests in flight, up to the
    concurrency limit) or `latency` (one request at a time: batch size 1, streamed)."""

    THROUGHPUT = "throughput"
    LATENCY = "latency"


SLA_SUFFIX = "_under_sla"


class RankBy(Named):
    """What "best" means in every ranking of the report (top N, best by length, recommendations, SLA). `auto`:
    output tokens/s per GPU where the ranked points use different numbers of GPUs (TP x PP), else the total;
    `usd_per_mtok`: fewest dollars per million output tokens at the `cost:` price; `tok_per_joule`: most output
    tokens per joule (measured runs with telemetry). `per_gpu`, `total` and `energy` are the older names of
    `output_tok_per_s_per_gpu`, `output_tok_per_s` and `tok_per_joule` (fewest joules per output token). Each of
    the four with `_under_sla` ranks only the points that meet the spec's `sla:` bounds."""

    AUTO = "auto"
    PER_GPU = "per_gpu"
    TOTAL = "total"
    ENERGY = "energy"
    OUTPUT_TOK_PER_S_PER_GPU = "output_tok_per_s_per_gpu"
    OUTPUT_TOK_PER_S = "output_tok_per_s"
    USD_PER_MTOK = "usd_per_mtok"
    TOK_PER_JOULE = "tok_per_joule"
    OUTPUT_TOK_PER_S_PER_GPU_UNDER_SLA = "output_tok_per_s_per_gpu_under_sla"
    OUTPUT_TOK_PER_S_UNDER_SLA = "output_tok_per_s_under_sla"
    USD_PER_MTOK_UNDER_SLA = "usd_per_mtok_under_sla"
    TOK_PER_JOULE_UNDER_SLA = "tok_per_joule_under_sla"

    @property
    def under_sla(self) -> bool:
        return self.value.endswith(SLA_SUFFIX)

    @property
    def unbounded(self) -> RankBy:
        """The same ranking over every point."""
        return RankBy(self.value.removesuffix(SLA_SUFFIX))


class SweepSpec(Strict):
    name: str = Field(max_length=NAME_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: ModelSpec
    gpu: Text = "auto"
    precision: Precision
    kv_cache_dtype: KvDtype | None = Field(None, description="fp8 or auto (16-bit); unset: what TensorRT-LLM runs "
                                                             "for the checkpoint (FP8 with FP8 weights)")
    tp: Parallel = 1
    pp: Parallel = 1
    ep: Parallel | None = Field(None, description="expert parallelism of a mixture of experts (trtllm-bench --ep); "
                                                  "divides tp")
    attention_dp: bool | None = Field(None, description="attention data parallelism (LLM-API enable_attention_dp): "
                                                         "each TP rank runs its own requests through attention, "
                                                         "experts spread by ep; unset: off")
    backend: Text = Field("auto", pattern=r"^[a-z][a-z0-9_-]*$", description="auto, or a registered backend")
    mode: BenchMode = BenchMode.THROUGHPUT
    grid: GridSpec
    requests: RequestsSpec
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    sla: SlaSpec | None = None
    rank_by: RankBy = RankBy.AUTO
    cost: CostSpec | None = None
    accuracy: AccuracySpec | None = None
    trtllm: TrtllmSpec = Field(default_factory=TrtllmSpec)
    build: BuildSpec = Field(default_factory=BuildSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    strategy: Strategy = Field(Strategy.FULL, description="full: every point; guided: what the simulator says matters")
    guided: GuidedSpec = Field(default_factory=GuidedSpec)
    output_dir: PathText | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("gpu")
    @classmethod
    def _canonical_gpu(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return resolve_gpu(value).id
        except SpecError as exc:  # re-raised as ValueError so pydantic locates it
            raise ValueError(str(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _axis_in_one_place(cls, data: Any) -> Any:
        """An axis is a scalar or a grid list, never both. A swept precision needs no top-level one:
        the scalar then holds the first value (what a point without the axis would run)."""
        grid = data.get("grid") if isinstance(data, dict) else None
        if not isinstance(grid, dict):
            return data
        for axis, where in EXTRA_AXES.items():
            if axis not in grid:
                continue
            holder = data.get(where) if where else data
            if isinstance(holder, dict) and holder.get(axis) is not None:
                name = f"{where}.{axis}" if where else axis
                raise ValueError(f"{name} is set and also swept under grid.{axis}; keep one")
        swept = grid.get("precision")
        if isinstance(swept, list) and swept:
            data = {**data, "precision": swept[0]}
        return data

    @model_validator(mode="after")
    def _latency_one_at_a_time(self) -> SweepSpec:
        """Latency mode runs one request at a time, so a concurrency limit would be a second, silent answer."""
        if self.mode is BenchMode.LATENCY and (self.grid.concurrency or self.runtime.concurrency):
            where = "grid.concurrency" if self.grid.concurrency else "runtime.concurrency"
            raise ValueError(f"mode: latency runs one request at a time (batch size 1); {where} belongs to "
                             f"mode: throughput")
        return self

    @model_validator(mode="after")
    def _priced_to_rank_by_cost(self) -> SweepSpec:
        if self.rank_by.unbounded is RankBy.USD_PER_MTOK and self.cost is None:
            raise ValueError(f"rank_by: {self.rank_by} needs a price: add cost: {{usd_per_gpu_hour: ..., "
                             f"source: ...}}")
        if self.rank_by.under_sla and self.sla is None:
            raise ValueError(f"rank_by: {self.rank_by} needs the bounds: add sla: {{ttft_p95_ms: ..., "
                             f"tpot_p95_ms: ...}}")
        return self

    @model_validator(mode="after")
    def _reference_is_built(self) -> SweepSpec:
        acc = self.accuracy
        if acc is not None and acc.reference not in self.precisions and acc.reference_run is None:
            raise ValueError(f"accuracy.reference: {acc.reference} is not a precision of this sweep "
                             f"({', '.join(map(str, self.precisions))}); add it to grid.precision, or name the run "
                             f"that scored it in accuracy.reference_run")
        return self

    @property
    def precisions(self) -> list[Precision]:
        return [Precision(p) for p in self.grid.precision] if self.grid.precision else [self.precision]

    @field_validator("requests")
    @classmethod
    def _requests_bounded(cls, requests: RequestsSpec, info: ValidationInfo) -> RequestsSpec:
        """A token budget gives the most requests to the shortest pair; bound that one."""
        grid = info.data.get("grid")
        if grid is None:  # invalid, and reported as such
            return requests
        isl, osl = min(grid.isl), min(grid.osl)
        most = requests.default.count(isl, osl)
        if most > MAX_REQUESTS:
            raise ValueError(f"default.budget_tokens gives {most:,} requests at ISL {isl} / OSL {osl}, above the "
                             f"limit of {MAX_REQUESTS:,} per point; set requests.default.max")
        return requests

    @property
    def kv(self) -> KvDtype:
        """The KV cache dtype this spec runs: the one asked for, else `precision.default_kv` of its precision."""
        return self.kv_cache_dtype or default_kv(self.precision)

    def kv_label(self) -> str:
        """The KV cache dtype the points run, and whether the spec chose it or TensorRT-LLM's default did."""
        if self.kv_cache_dtype is not None or "kv_cache_dtype" in self.grid.swept():
            return f"KV {self.kv_cache_dtype or 'swept'}"
        if "precision" in self.grid.swept():
            return ", ".join(f"KV {default_kv(p)} with {p}" for p in self.precisions) + \
                " (unset: TensorRT-LLM's default)"
        return f"KV {self.kv} (unset: TensorRT-LLM's default for {self.precision} weights)"

    @property
    def kv_dtype_bytes(self) -> int:
        return self.kv.bytes

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(isl, osl) for isl in self.grid.isl for osl in self.grid.osl]

    def at(self, values: dict[str, Any]) -> SweepSpec:
        """This spec with the scalar of each extra axis in `values` set: what one point runs."""
        top = {a: v for a, v in values.items() if EXTRA_AXES.get(a) == ""}
        runtime = {a: v for a, v in values.items() if EXTRA_AXES.get(a) == "runtime"}
        if "precision" in top:
            top["precision"] = Precision(top["precision"])
        if "kv_cache_dtype" in top:
            top["kv_cache_dtype"] = KvDtype(top["kv_cache_dtype"])
        else:  # resolved, so a point's id is the same whether its KV dtype was named or defaulted
            top["kv_cache_dtype"] = self.kv_cache_dtype or default_kv(top.get("precision", self.precision))
        return self.model_copy(update={**top, "runtime": self.runtime.model_copy(update=runtime)})

    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    def on_version(self, version: str | None) -> SweepSpec:
        """This spec predicted for the TensorRT-LLM `version` that runs it, where it names none itself."""
        if not version or self.trtllm.version:
            return self
        return self.model_copy(update={"trtllm": self.trtllm.model_copy(update={"version": version})})

    def canonical(self) -> dict[str, Any]:
        """The spec as data, each swept axis only under `grid:` (so it loads back as it was)."""
        data = self.model_dump(mode="json")
        for axis in self.grid.swept():
            where = EXTRA_AXES[axis]
            (data[where] if where else data).pop(axis)
        data["grid"] = {k: v for k, v in data["grid"].items() if v is not None}
        if self.strategy is Strategy.FULL and self.guided == GuidedSpec():  # hashes as before strategies existed
            del data["strategy"], data["guided"]
        return data

    def hash(self) -> str:
        """Of everything but the price (`cost:`), which measures nothing: a report priced on the command line
        names the same spec, and specs written before `cost:` existed keep their hash."""
        return stable_hash({key: value for key, value in self.canonical().items() if key != "cost"})


def stable_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
