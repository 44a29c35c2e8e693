"""The sweep spec: YAML in, a validated `SweepSpec` out, or one line naming the file, line and key."""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trtbench.catalog.gpus import resolve_gpu
from trtbench.errors import SpecError
from trtbench.precision import KvDtype, Named, Precision, default_kv

# Bounds a real sweep never reaches, so a typo or a hostile spec is refused here, not as a hang, an
# overflow or a file name the OS rejects later.
MAX_SPEC_BYTES = 1 << 20  # a spec is a few KiB
MAX_DEPTH = 32  # a spec nests less than 6 levels
MAX_NODES = 100_000  # YAML values once aliases are expanded; a spec has a few hundred
MAX_TOKENS = 1 << 21  # ISL or OSL: 2,097,152 tokens, past any model's context
MAX_REQUESTS = 1_000_000  # per point
MAX_PARALLEL = 64  # TP or PP: GPUs along one axis
MAX_BATCH = 1 << 16  # sequences per iteration; trtllm-bench's own heuristic stops at 4,096
MAX_BATCH_TOKENS = 1 << 24  # tokens per iteration
MAX_SECONDS = 7 * 24 * 3600.0  # a timeout of a week
NAME_CHARS = 100  # the sweep name is a directory name
TEXT_CHARS = 500  # a model name, preset, version
PATH_CHARS = 4096  # Linux PATH_MAX

PosInt = Annotated[int, Field(strict=True, gt=0)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
Tokens = Annotated[int, Field(strict=True, gt=0, le=MAX_TOKENS)]
Requests = Annotated[int, Field(strict=True, gt=0, le=MAX_REQUESTS)]
Parallel = Annotated[int, Field(strict=True, gt=0, le=MAX_PARALLEL)]
BatchSize = Annotated[int, Field(strict=True, gt=0, le=MAX_BATCH)]
BatchTokens = Annotated[int, Field(strict=True, gt=0, le=MAX_BATCH_TOKENS)]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]


def _parts_at_most(limit: int) -> AfterValidator:
    """Each part of a path within `limit` bytes: the OS refuses a longer file name (over 255 bytes) with an
    error far from the spec."""
    def check(value: str) -> str:
        longest = max((len(part.encode()) for part in PurePath(value).parts), default=0)
        if longest > limit:
            raise ValueError(f"has a part of {longest} bytes; at most {limit}")
        return value
    return AfterValidator(check)


def _printable(value: str) -> str:
    """No control, bidi or other unprintable character (a YAML escape like "\\0" or "\\u202e" makes one): a NUL
    cuts a C string (a path, an argument) short, the others garble a terminal, a log or what a reader sees."""
    if not value.isprintable():
        position, bad = next((i, c) for i, c in enumerate(value, 1) if not c.isprintable())
        raise ValueError(f"has the unprintable character {bad!a} at position {position}")
    return value


Printable = AfterValidator(_printable)
Text = Annotated[str, Field(max_length=TEXT_CHARS), Printable]
PathText = Annotated[str, Field(max_length=PATH_CHARS), Printable, _parts_at_most(255)]
# Engine and workspace directories are named after the model; Hugging Face allows 96 characters per part.
ModelName = Annotated[str, Field(min_length=1, max_length=TEXT_CHARS), Printable, _parts_at_most(96)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    name: ModelName = Field(description="HF model name, e.g. meta-llama/Llama-3.1-8B")
    path: PathText | None = Field(None, description="local checkpoint directory (passed as --model_path)")
    preset: Text | None = Field(None, description="architecture preset when the name does not imply one")
    config: PathText | None = Field(None, description="HF config.json describing the architecture")


# Grid axes besides ISL and OSL, outermost first, and where each one's scalar lives in the spec
# ("" = top level). Requests is an axis too, derived per (ISL, OSL) by `requests:`.
EXTRA_AXES: dict[str, str] = {"precision": "", "kv_cache_dtype": "", "tp": "", "pp": "", "ep": "",
                              "max_batch_size": "runtime", "max_num_tokens": "runtime", "concurrency": "runtime"}
AXES = (*EXTRA_AXES, "isl", "osl", "requests")


class Ladder(_Strict):
    """A geometric ladder of values: start, start x factor, ... up to stop (stop itself included)."""

    start: Requests
    stop: Requests
    factor: Annotated[int, Field(strict=True, ge=2, le=1024)] = 2

    @model_validator(mode="after")
    def _ordered(self) -> Ladder:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) is below start ({self.start})")
        return self

    def values(self) -> list[int]:
        steps = [self.start]
        while steps[-1] * self.factor <= self.stop:
            steps.append(steps[-1] * self.factor)
        return steps if steps[-1] == self.stop else [*steps, self.stop]


def _ladder(value: Any) -> Any:
    """`{start, stop, factor}` as the list it stands for; anything else as given."""
    return Ladder.model_validate(value).values() if isinstance(value, dict) else value


class GridSpec(_Strict):
    """Lists to sweep. ISL and OSL always; any of EXTRA_AXES optionally (a scalar elsewhere otherwise).
    `concurrency` may also be a ladder: `{start: 1, stop: 512, factor: 2}` is 1, 2, 4, ..., 512."""

    isl: list[Tokens] = Field(min_length=1)
    osl: list[Tokens] = Field(min_length=1)
    precision: list[Precision] | None = Field(None, min_length=1)
    kv_cache_dtype: list[KvDtype] | None = Field(None, min_length=1)
    tp: list[Parallel] | None = Field(None, min_length=1)
    pp: list[Parallel] | None = Field(None, min_length=1)
    ep: list[Parallel] | None = Field(None, min_length=1)
    max_batch_size: list[BatchSize] | None = Field(None, min_length=1)
    max_num_tokens: list[BatchTokens] | None = Field(None, min_length=1)
    concurrency: Annotated[list[Requests], BeforeValidator(_ladder)] | None = Field(None, min_length=1)

    @field_validator("*")
    @classmethod
    def _unique(cls, values: list[Any] | None) -> list[Any] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("lists a value twice")
        return values

    def swept(self) -> dict[str, list[Any]]:
        """The extra axes this grid sweeps, in EXTRA_AXES order."""
        return {axis: values for axis in EXTRA_AXES if (values := getattr(self, axis)) is not None}


class RequestRule(_Strict):
    """How many requests a pair gets when the table does not say: a fixed count or a token budget."""

    fixed: Requests | None = None
    budget_tokens: PosInt | None = Field(None, description="requests = budget / (ISL + OSL)")
    min: Requests = 1
    max: Requests | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> RequestRule:
        if (self.fixed is None) == (self.budget_tokens is None):
            raise ValueError("give exactly one of 'fixed' or 'budget_tokens'")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def count(self, isl: int, osl: int) -> int:
        if self.fixed is not None:
            return self.fixed
        assert self.budget_tokens is not None
        raw = self.budget_tokens // (isl + osl)
        n = _two_significant_digits(raw) if raw > 0 else 0
        n = max(n, self.min)
        return min(n, self.max) if self.max is not None else n


def _two_significant_digits(n: int) -> int:
    """Round down to two significant digits, so budget-derived counts read like hand-picked ones."""
    step = 10 ** max(0, int(math.log10(n)) - 1)
    return n // step * step


class PairCount(_Strict):
    isl: Tokens
    osl: Tokens
    requests: Requests


class RequestsSpec(_Strict):
    default: RequestRule
    table: list[PairCount] = Field(default_factory=list)

    @field_validator("table")
    @classmethod
    def _unique_pairs(cls, table: list[PairCount]) -> list[PairCount]:
        seen: set[tuple[int, int]] = set()
        for row in table:
            if (row.isl, row.osl) in seen:
                raise ValueError(f"pair {row.isl}/{row.osl} is listed twice")
            seen.add((row.isl, row.osl))
        return table

    def count(self, isl: int, osl: int) -> int:
        for row in self.table:
            if (row.isl, row.osl) == (isl, osl):
                return row.requests
        return self.default.count(isl, osl)


class RuntimeSpec(_Strict):
    kv_cache_free_gpu_mem_fraction: float = Field(0.90, gt=0, le=1)
    max_batch_size: BatchSize | None = None
    max_num_tokens: BatchTokens | None = None
    concurrency: Requests | None = None
    warmup: Annotated[NonNegInt, Field(le=MAX_REQUESTS)] = 2
    timeout_s: Seconds = Field(3600.0, description="per point")
    chunked_context: bool = False
    tokens_per_block: Annotated[PosInt, Field(le=4096)] = 32  # TensorRT-LLM uses 32 to 128
    streaming: bool = Field(False, description="stream tokens: TTFT / TPOT percentiles in measured reports")
    repeats: Annotated[PosInt, Field(le=1000)] = Field(
        1, description="runs of each measured point, interleaved across the grid; not part of a point's id")


class TrtllmSpec(_Strict):
    """How to drive the real trtllm-bench; ignored by the sim backend."""

    executable: PathText = "trtllm-bench"
    eval_executable: PathText = Field("trtllm-eval", description="for trtbench accuracy run")
    version: Text | None = Field(None, pattern=r"^\d+\.\d+(\.\d+)?\S*$",
                                description="TensorRT-LLM version, e.g. 1.1.0rc3; detected when unset")
    backend: Literal["auto", "pytorch", "tensorrt"] = "auto"
    engine_dir: PathText | None = None
    workspace: PathText | None = None
    log_level: Literal["internal_error", "error", "warning", "info", "verbose", "debug", "trace"] = "info"
    streaming: bool = Field(False, description="read as runtime.streaming (where it used to be)")
    cuda_graphs: bool = True
    extra_llm_api_options: dict[str, Any] = Field(default_factory=dict, description="merged over ours")


class CalibrationSpec(_Strict):
    """What ModelOpt calibrates FP8 scales on (PyTorch-path builds); without a path, the sweep's own synthetic
    tokens, which the build's manifest warns about."""

    path: PathText | None = Field(None, description="text file, or JSON lines with text, prompt or input_ids")
    samples: Annotated[PosInt, Field(le=100_000)] = 512
    seq_len: Annotated[PosInt, Field(le=MAX_TOKENS)] = 512  # tokens per sample, longer ones cut


class BuildSpec(_Strict):
    """How engines are built for the trtllm backend (`trtbench build`, `make engine`)."""

    max_seq_len: Annotated[PosInt, Field(le=2 * MAX_TOKENS)] | None = Field(
        None, description="default: the grid's longest ISL + OSL")
    max_batch_size: BatchSize | None = Field(None,
                                             description="default: trtllm-bench's heuristic, largest over the grid")
    max_num_tokens: BatchTokens | None = None
    tool: Literal["trtllm-build", "trtllm-bench"] = "trtllm-build"
    quantize_script: PathText = Field("quantize.py", description="TensorRT-LLM's examples/quantization/quantize.py")
    calib_size: Annotated[PosInt, Field(le=100_000)] = 512  # quantize.py's calibration samples (engine path)
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    checkpoint: PathText | None = Field(None, description="PyTorch path: a pre-quantized checkpoint (HF name or dir)")
    engines_dir: PathText = "engines"
    timeout_s: Seconds = Field(7200.0, description="per build step")


EXECUTORS = Literal["local", "gpus", "slurm"]
# sbatch options executor.slurm.extra_args may not hold, and why; their short forms.
NO_JOB = "sbatch would submit no job"
SBATCH_REFUSED = {"test-only": NO_JOB, "help": NO_JOB, "usage": NO_JOB, "version": NO_JOB,
                  "array": "each point would run once per array task",
                  "job-name": "a resumed sweep finds a job whose id it never wrote by trtbench's job name",
                  "comment": "trtbench's comment names the job's run and points"}
SBATCH_SHORT = {"-h": "help", "-V": "version", "-a": "array", "-J": "job-name"}


class SlurmSpec(_Strict):
    """sbatch's options for each point's job (a job asks for the point's tp x pp GPUs itself)."""

    partition: Text | None = None
    account: Text | None = None
    qos: Text | None = None
    constraint: Text | None = None
    time: Annotated[int, BeforeValidator(lambda v: slurm_minutes(v) if isinstance(v, str) else v),
                    Field(strict=True, gt=0, le=60 * 24 * 30)] | None = Field(
        None, description="each job's time limit, in minutes or as sbatch --time takes it ([D-]H:MM:SS, M:SS); "
                          "default: the job's predicted wall time x 1.5 + 5 min")
    gpus_per_node: Annotated[int, Field(strict=True, gt=0, le=1024)] | None = Field(
        None, description="GPUs on each node: a point wider than a node is infeasible without a submit "
                          "(default: what sbatch refuses)")
    points_per_job: Annotated[int, Field(strict=True, gt=0, le=1000)] = Field(
        1, description="points run one after another in one job (same GPU count): fewer queue waits for short points")
    container_image: Text | None = Field(None, description="pyxis/enroot: the TensorRT-LLM container to run in")
    container_mounts: Text | None = None
    extra_args: list[Text] = Field(default_factory=list, max_length=64, description="more sbatch arguments")
    max_jobs: Annotated[int, Field(strict=True, gt=0, le=100_000)] | None = Field(
        None, description="jobs in the queue at once (default: every point)")

    @field_validator("extra_args")
    @classmethod
    def _submits_once(cls, args: list[str]) -> list[str]:
        """sbatch options that keep it from submitting, run the points more than once, or take away the job
        name and comment by which a resumed sweep finds a job whose id it never wrote."""
        for arg in args:
            name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
            # sbatch takes any unambiguous prefix of a long option (--test for --test-only)
            refused = [bad for bad in SBATCH_REFUSED if len(name) >= 2 and bad.startswith(name)]
            refused += [SBATCH_SHORT[arg[:2]]] if arg[:2] in SBATCH_SHORT else []
            if refused:
                full = f"--{refused[0]}"
                shown = arg if arg.split("=", 1)[0] == full else f"{arg} ({full})"
                raise ValueError(f"{shown} is not allowed: {SBATCH_REFUSED[refused[0]]}")
        return args


def slurm_minutes(text: str) -> int:
    """sbatch's --time formats in whole minutes, rounded up as Slurm does: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    if not re.fullmatch(r"\d{1,5}(-\d{1,2})?(:\d{1,2}){0,2}", text):
        raise ValueError(f"{text!r} is not a Slurm time (minutes, M:SS, H:MM:SS, D-H, D-H:MM, D-H:MM:SS)")
    days, dash, clock = text.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    if dash:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = [*parts, 0, 0][:3]
    else:  # minutes[:seconds], or hours:minutes:seconds
        hours, minutes, seconds = [0, *parts, 0] if len(parts) == 1 else [0, *parts][-3:]
    return (int(days or 0) * 24 + hours) * 60 + minutes + math.ceil(seconds / 60)


class SlaSpec(_Strict):
    """Latency bounds (ms, p95): the report adds the best point per ISL/OSL that meets them all."""

    ttft_p95_ms: Annotated[float, Field(gt=0)] | None = None
    tpot_p95_ms: Annotated[float, Field(gt=0)] | None = None
    latency_p95_ms: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some(self) -> SlaSpec:
        if self.ttft_p95_ms is None and self.tpot_p95_ms is None and self.latency_p95_ms is None:
            raise ValueError("give at least one of ttft_p95_ms, tpot_p95_ms, latency_p95_ms")
        return self


EvalTask = Literal["cnn_dailymail", "mmlu"]


class AccuracySpec(_Strict):
    """`trtbench accuracy run SPEC`: trtllm-eval on each artifact the sweep builds (precision, KV dtype,
    TP x PP), and the gate: every score of an artifact at least `tolerance` x the `reference` precision's
    (MLPerf's 99% rule, against a run of the same model instead of MLPerf's own prompt and scorer)."""

    tasks: Annotated[list[EvalTask], Field(min_length=1, max_length=2)] = ["cnn_dailymail", "mmlu"]
    datasets: dict[EvalTask, PathText] = Field(
        description="a local copy per task (sweep machines are often offline): the cnn_dailymail dataset "
                    "directory, the extracted MMLU data.tar")
    samples: Requests | None = Field(100, description="per task; null runs the full set")
    rouge_path: PathText | None = Field(None, description="a local copy of HF evaluate's rouge metric (offline)")
    reference: Precision = Precision.BF16
    reference_run: PathText | None = Field(None, description="a run directory holding the reference's scores, "
                                                             "where this sweep does not build it")
    tolerance: float = Field(0.99, gt=0, le=1)
    timeout_s: Seconds = 3600.0

    @model_validator(mode="after")
    def _datasets_for_tasks(self) -> AccuracySpec:
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks: a task is listed twice")
        missing = [t for t in self.tasks if t not in self.datasets]
        if missing:
            raise ValueError(f"datasets: no local path for {', '.join(missing)} (trtllm-eval would download it)")
        return self


class ExecutorSpec(_Strict):
    """Where the points run: `local`, one at a time (the default); `gpus`, concurrently on this node's
    GPUs, each point on tp x pp of its own; `slurm`, a job per point (or per `points_per_job`) on a
    cluster. Not part of any point's identity."""

    kind: EXECUTORS = "local"
    slurm: SlurmSpec = Field(default_factory=SlurmSpec)
    gpus: Literal["auto"] | Annotated[int, Field(strict=True, gt=0, le=1024)] | list[
        Annotated[int, Field(strict=True, ge=0, lt=1024)]] = Field(
        "auto", description="auto (what NVML or CUDA_VISIBLE_DEVICES shows), a count, or the GPU ids to use")

    @field_validator("gpus")
    @classmethod
    def _distinct(cls, value: Any) -> Any:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("lists no GPU, or a GPU twice")
        return value


class BenchMode(Named):
    """Which trtllm-bench subcommand measures each point: `throughput` (many requests in flight, up to the
    concurrency limit) or `latency` (one request at a time: batch size 1, streamed)."""

    THROUGHPUT = "throughput"
    LATENCY = "latency"


class RankBy(Named):
    """What "best" means in every ranking of the report (top N, best by length, recommendations, SLA). `auto`:
    output tokens/s per GPU where the ranked points use different numbers of GPUs (TP x PP), else the total;
    `energy`: fewest joules per output token (measured runs with telemetry)."""

    AUTO = "auto"
    PER_GPU = "per_gpu"
    TOTAL = "total"
    ENERGY = "energy"


class SweepSpec(_Strict):
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
    backend: Text = Field("auto", pattern=r"^[a-z][a-z0-9_-]*$", description="auto, or a registered backend")
    mode: BenchMode = BenchMode.THROUGHPUT
    grid: GridSpec
    requests: RequestsSpec
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    sla: SlaSpec | None = None
    rank_by: RankBy = RankBy.AUTO
    accuracy: AccuracySpec | None = None
    trtllm: TrtllmSpec = Field(default_factory=TrtllmSpec)
    build: BuildSpec = Field(default_factory=BuildSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
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

    def canonical(self) -> dict[str, Any]:
        """The spec as data, each swept axis only under `grid:` (so it loads back as it was)."""
        data = self.model_dump(mode="json")
        for axis in self.grid.swept():
            where = EXTRA_AXES[axis]
            (data[where] if where else data).pop(axis)
        data["grid"] = {k: v for k, v in data["grid"].items() if v is not None}
        return data

    def hash(self) -> str:
        return stable_hash(self.canonical())


def stable_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path}: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES >> 20} MiB; a sweep spec is a few KiB of YAML")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    return anchored(parse_spec(text, str(path)), path.resolve().parent)


# Inputs a spec names by path are found beside the spec, wherever trtbench runs; where a value may also be a
# name (a hub checkpoint, HF evaluate's metric), only when that file exists. Outputs (output_dir, workspace,
# engines_dir, reference_run) stay relative to where trtbench runs, as runs/ is.
_INPUT_PATHS = (("model", "path"), ("model", "config"), ("trtllm", "engine_dir"), ("build", "calibration", "path"))
_INPUT_PATHS_OR_NAMES = (("build", "checkpoint"), ("accuracy", "rouge_path"))


def anchored(spec: SweepSpec, base: Path) -> SweepSpec:
    """`spec` with its relative input paths made absolute against `base` (the spec file's directory)."""
    data = spec.canonical()

    def anchor(keys: tuple[str, ...], must_exist: bool) -> None:
        holder: Any = data
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        value = holder.get(keys[-1]) if isinstance(holder, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute() and (not must_exist or (base / value).exists()):
            holder[keys[-1]] = str(base / value)

    for keys in _INPUT_PATHS:
        anchor(keys, must_exist=False)
    for keys in _INPUT_PATHS_OR_NAMES:
        anchor(keys, must_exist=True)
    if isinstance(data.get("accuracy"), dict):
        data["accuracy"]["datasets"] = {task: value if Path(value).is_absolute() else str(base / value)
                                        for task, value in data["accuracy"]["datasets"].items()}
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:  # a path that the spec's directory makes too long
        err = exc.errors(include_url=False)[0]
        raise SpecError(f"{'.'.join(map(str, err['loc']))}, found from {base}: {err['msg']}") from None


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Composes the YAML once: the node graph is measured and checked for duplicate keys before any data
    is built from it, so an alias bomb is refused before it expands."""
    try:
        loader = _Loader(text, source)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise SpecError(f"{source}:{line}: YAML syntax error: character U+{exc.character:04X} is not allowed "
                        f"in YAML") from None
    data = None
    try:
        root = loader.get_single_node()
        if root is not None:
            _refuse_big_graph(root, source)
            _refuse_duplicate_keys(root, source)
            data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SpecError(f"{source}{where}: YAML syntax error: {exc.problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a sweep spec is a YAML mapping (name, model, gpu, grid, ...)")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_describe(exc, root, source)) from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing as it composes nesting past MAX_DEPTH (its composer recurses, and a
    few hundred levels overflow Python's stack) and more than MAX_NODES nodes (2 s per 100,000), and
    naming the line of a scalar it cannot convert (`!!int abc`, a date such as 2024-13-45)."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            _too_big(self.source, self.peek_event().start_mark)
        if not self.check_event(yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _too_deep(self.source, self.peek_event().start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: cannot read {_clip(repr(node.value))} as "
                            f"{node.tag.rsplit(':', 1)[-1]}: {_clip(str(exc), 200)}") from None


def _too_deep(source: str, mark: yaml.Mark) -> NoReturn:
    raise SpecError(f"{source}:{mark.line + 1}: nested deeper than {MAX_DEPTH} levels; a sweep spec nests a few")


def _too_big(source: str, mark: yaml.Mark) -> NoReturn:
    raise SpecError(f"{source}:{mark.line + 1}: holds more than {MAX_NODES:,} values (counting each alias as "
                    f"what it stands for); a sweep spec has a few hundred")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _refuse_big_graph(root: yaml.Node, source: str) -> None:
    """An alias is the same node again, so a few lines can stand for billions of values ("billion laughs")
    or for a value that contains itself. Size and depth are worked out per node, once each, iteratively,
    without expanding anything."""
    size: dict[int, int] = {}  # id(node) -> values it expands to
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # being measured: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, measured_children = stack.pop()
        key = id(node)
        if measured_children:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_NODES:
                _too_big(source, node.start_mark)
            if depth[key] > MAX_DEPTH:
                _too_deep(source, node.start_mark)
        elif key in open_nodes:
            raise SpecError(f"{source}:{node.start_mark.line + 1}: an alias refers to a value that contains it")
        elif key not in size:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))


def _refuse_duplicate_keys(root: yaml.Node, source: str) -> None:
    """YAML lets a later key silently replace an earlier one; in a spec that is always a mistake. A node
    shared through aliases is checked once."""
    checked: set[int] = set()

    def check(node: yaml.Node, path: str) -> None:
        if id(node) in checked:
            return
        checked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):  # `? [a, b]`: unhashable, the constructor refuses it
                    continue
                name = f"{path}.{key.value}" if path else str(key.value)
                if key.value in seen:
                    raise SpecError(f"{source}:{key.start_mark.line + 1}: duplicate key {name!r} "
                                    f"(first on line {seen[key.value]})")
                seen[key.value] = key.start_mark.line + 1
                check(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                check(item, f"{path}.{i}")

    check(root, "")


def _clip(text: str, limit: int = 60) -> str:
    """Text from the spec, short enough for a one-line error."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} chars)"


def _describe(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    """One validation error, as `file:line: key: problem`; an unknown key first, since a misspelt key
    also makes the key it was meant to be look missing."""
    err = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    if err["type"] == "extra_forbidden":
        hint = _nearest_key(loc)
        return f"{where}: unknown key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")
    if err["type"] == "missing":
        return f"{where}: missing required key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("literal_error", "enum", "greater_than", "less_than_equal", "int_type", "int_from_float",
                       "greater_than_equal", "string_pattern_mismatch", "float_type", "int_parsing",
                       "string_too_long"):
        msg += f" (got {_clip(repr(err['input']))})"
    return f"{where}: {key}: {msg}"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _nearest_key(loc: tuple[Any, ...]) -> str | None:
    model: type[BaseModel] = SweepSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return None
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)
    return close[0] if close else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
