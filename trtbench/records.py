"""The record of one grid point: what a backend returns and the store keeps, one JSON line each.

Failures are records too: `status` says what happened, `cause` quotes the evidence. The format is
versioned (`schema_version`); `parse_record` also reads the unversioned lines trtbench 0.1.0 wrote,
so recorded GPU-hours survive an upgrade. Every model refuses fields it does not know: a typo in a
backend is a bug to see, not data to lose.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trtbench.precision import Named


def now_iso() -> str:
    """A UTC timestamp to the second, as every record, manifest and calibration file writes one."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

SCHEMA_VERSION = 1
AxisValue = int | str


class Status(Named):
    """How a point ended. crash: killed by a signal or an MPI abort; no_report: exit 0 without a
    report (usually an OOM); invalid_report: a report that does not describe the point (impossible
    numbers, fewer requests or other lengths than asked); driver_error: TensorRT-LLM refused what trtbench
    sent (an option or value its release does not take), a bug of trtbench's, not of the run."""

    OK = "ok"
    OOM = "oom"
    TIMEOUT = "timeout"
    ERROR = "error"
    INFEASIBLE = "infeasible"
    CRASH = "crash"
    NO_REPORT = "no_report"
    INVALID_REPORT = "invalid_report"
    DRIVER_ERROR = "driver_error"


class Source(Named):
    MEASURED = "measured"
    SIMULATED = "simulated"


class _Closed(BaseModel):
    """Unknown fields refused; numbers finite (a NaN or infinity in a record is damage, not data)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Physical ranges: a value outside its field's range is a broken report (or a damaged record), never data. The
# trtllm backend records a report that breaks one as `invalid_report`, naming the field (validate.py).
MAX_GPU_GIB = 2048.0  # one GPU's memory; the largest of 2026 hold under 300 GiB
MAX_COUNT = 2**31  # requests, lengths, batch sizes, token budgets, KV tokens: TensorRT-LLM counts them in int32
# Far above any GPU of 2026 (an H100 decodes tens of thousands of tokens/s): only a broken report reaches it.
MAX_OUTPUT_TOK_PER_S_PER_GPU = 10_000_000.0
Positive = Annotated[float, Field(gt=0)]  # what a run that produced numbers has: throughputs, its wall time
NonNegative = Annotated[float, Field(ge=0)]  # rates, latencies, energy
Count = Annotated[float, Field(ge=0, le=MAX_COUNT)]  # a float where a report averages it (concurrency, lengths)
IntCount = Annotated[int, Field(ge=0, le=MAX_COUNT)]
GiB = Annotated[float, Field(ge=0, le=MAX_GPU_GIB)]  # what one GPU holds
Fraction = Annotated[float, Field(ge=0, le=1)]


# Latency breakdowns as trtllm-bench prints them (text rows `[TTFT] P95: ...`, JSON percentile maps).
PERCENTILE_KEY = re.compile(r"^(latency|ttft|tpot)_(min|max|average|p50|p90|p95|p99)_ms$|"
                            r"^gtps_(min|max|average|p50|p90|p95|p99)$")


class Metrics(_Closed):
    """Throughput is output tokens per second, as trtllm-bench's "Token Throughput" and the study use it."""

    output_tok_per_s: Positive
    request_per_s: Positive
    total_tok_per_s: Positive
    total_latency_s: Positive
    avg_latency_s: NonNegative | None = None
    avg_concurrency: Count | None = None
    num_requests: Count | None = None
    avg_input_len: Count | None = None
    avg_output_len: Count | None = None
    per_user_tok_s: NonNegative | None = None
    per_gpu_tok_s: NonNegative | None = None
    ttft_ms: NonNegative | None = None
    tpot_ms: NonNegative | None = None
    user_speed_tok_s: NonNegative | None = None
    max_runtime_batch_size: Count | None = None
    max_runtime_tokens: Count | None = None
    kv_memory_fraction: Fraction | None = None
    kv_allocated_gib: GiB | None = None
    kv_allocated_tokens: Count | None = None
    engine_size_gib: GiB | None = None  # per rank: it is loaded onto one GPU
    energy_j: NonNegative | None = None
    j_per_output_token: NonNegative | None = None
    roofline_output_tok_per_s: NonNegative | None = None  # the simulator's upper bound for this point
    percentiles: dict[str, NonNegative] = Field(default_factory=dict)

    @field_validator("percentiles")
    @classmethod
    def _known_percentiles(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(k for k in value if not PERCENTILE_KEY.match(k))
        if unknown:
            raise ValueError(f"unknown percentile field(s): {', '.join(unknown)}")
        return value

    @classmethod
    def from_flat(cls, values: dict[str, Any]) -> Metrics:
        """Percentile keys (`ttft_p95_ms`) go to `percentiles`, the rest to named fields."""
        flat = {k: v for k, v in values.items() if not PERCENTILE_KEY.match(k)}
        return cls(**flat, percentiles={k: v for k, v in values.items() if PERCENTILE_KEY.match(k)})


class Memory(_Closed):
    """GPU memory per rank, as the simulator planned it or trtllm-bench logged it (GiB = 2^30 bytes). What a
    plan needs (weights, workspace) is unbounded above: an infeasible point's plan may need more than any GPU."""

    gpu_total_gib: GiB | None = None
    weights_gib: NonNegative | None = None
    activation_gib: NonNegative | None = None
    overhead_gib: NonNegative | None = None
    kv_pool_gib: GiB | None = None
    kv_bytes_per_token: Annotated[int, Field(ge=0)] | None = None
    kv_tokens: Count | None = None
    tokens_per_block: IntCount | None = None
    seq_blocks: IntCount | None = None
    max_concurrent_seqs: IntCount | None = None
    max_batch_size: Count | None = None
    max_num_tokens: Count | None = None


class EnergySource(Named):
    """How a point's energy was measured: NVML's total-energy counter (Volta and later), or board power samples
    integrated over time where the GPU has no counter."""

    COUNTER = "counter"
    POWER_SAMPLES = "power_samples"


class Telemetry(_Closed):
    """NVML samples over one point's run, summed (power, energy) or maxed (memory, temperature) over its GPUs; for an
    ok run, power and energy over trtllm-bench's measured phase only (`energy_source` says how it was measured)."""

    gpu_name: str
    driver: str
    gpus: IntCount
    samples: IntCount
    peak_memory_used_gib: GiB  # the most any one GPU held
    mean_power_w: NonNegative
    peak_power_w: NonNegative
    energy_j: NonNegative
    mean_sm_clock_mhz: NonNegative
    power_limit_w: NonNegative | None = None
    peak_temperature_c: Annotated[float, Field(ge=-50, le=200)] | None = None
    energy_source: EnergySource | None = None


class Prediction(_Closed):
    """The simulator's view of a measured point, recorded beside the measurement."""

    status: Status
    cause: str = ""
    model: str | None = None
    output_tok_per_s: NonNegative | None = None
    roofline_output_tok_per_s: NonNegative | None = None
    wall_s: NonNegative | None = None


class Outcome(_Closed):
    """What a backend says about one point. `detail` is backend-specific and for people (command line,
    log path, report format): nothing in trtbench reads it back."""

    status: Status
    cause: str = ""
    source: Source
    metrics: Metrics | None = None
    memory: Memory | None = None
    telemetry: Telemetry | None = None
    perf_model: str | None = None  # the model behind a simulated number
    predicted_wall_s: float | None = None  # simulated: how long the point would run
    wall_error_pct: float | None = None  # simulated: the model's stated error there, for the timeout verdict
    borderline: str | None = None  # ok, but within the model's error of a limit: why it may still fail
    command: list[str] | None = None  # measured: the exact argument list that ran
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ok_has_metrics(self) -> Outcome:
        """An `ok` outcome is ranked: it must carry its metrics (whose throughputs are positive)."""
        if self.status is Status.OK and self.metrics is None:
            raise ValueError("an ok outcome needs metrics")
        return self

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


class Record(Outcome):
    """One point's outcome with its place in the grid. `attempt` is unique per run of a point, so a
    record merged twice (a crash between append and cleanup) is recognised and kept once."""

    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    point_id: str
    attempt: str
    axes: dict[str, AxisValue]
    prediction: Prediction | None = None
    backend: str
    started_at: str
    duration_s: NonNegative

    @field_validator("started_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        datetime.fromisoformat(value)  # ValueError: not a time; analysis adds durations to it
        return value

    @property
    def isl(self) -> int:
        return int(self.axes["isl"])

    @property
    def osl(self) -> int:
        return int(self.axes["osl"])

    @property
    def requests(self) -> int:
        return int(self.axes["requests"])


class RecordError(ValueError):
    """A line that is not a record of any format trtbench wrote."""


def parse_record(line: bytes | str) -> Record:
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    version = data.get("schema_version")
    if version is None:
        data = _from_v0(data)
    elif version != SCHEMA_VERSION:
        raise RecordError(f"schema_version {version!r} is newer than this trtbench reads ({SCHEMA_VERSION})")
    try:
        return Record.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError
        raise RecordError(str(exc).splitlines()[0] + f" ({str(exc).splitlines()[1].strip()})") from None


# What 0.1.0 kept in its free dicts, and where it lives now.
_V0_MEMORY_DROPPED = ("verdict", "cause")


def _from_v0(data: dict[str, Any]) -> dict[str, Any]:
    """A trtbench 0.1.0 record: flat isl/osl/requests, free metrics/memory/detail/prediction dicts."""
    try:
        axes = {"isl": data.pop("isl"), "osl": data.pop("osl"), "requests": data.pop("requests")}
    except KeyError as exc:
        raise RecordError(f"no {exc.args[0]!r} field (neither a 0.1.0 nor a current record)") from None
    detail = dict(data.pop("detail", None) or {})
    memory = {k: v for k, v in (data.pop("memory", None) or {}).items() if k not in _V0_MEMORY_DROPPED}
    metrics = data.pop("metrics", None)
    prediction = data.pop("prediction", None)
    return {
        **data,
        "schema_version": SCHEMA_VERSION,
        "attempt": f"v0-{data.get('point_id')}",
        "axes": axes,
        "metrics": Metrics.from_flat(metrics).model_dump() if metrics else None,
        "memory": memory or None,
        "telemetry": detail.pop("telemetry", None),
        "perf_model": detail.pop("perf_model", None),
        "predicted_wall_s": detail.pop("predicted_wall_s", None),
        "command": detail.pop("command", None),
        "detail": detail,
        "prediction": prediction,
    }
