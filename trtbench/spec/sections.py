"""The sections of a sweep spec other than where points run: the model, the grid and its request counts, the
runtime, TensorRT-LLM and build settings, the SLA bounds and the accuracy gate."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from trtbench.precision import KvDtype, Precision
from trtbench.spec.fields import (
    MAX_REQUESTS,
    MAX_TOKENS,
    BatchSize,
    BatchTokens,
    ModelName,
    NonNegInt,
    Parallel,
    PathText,
    PosInt,
    Requests,
    Seconds,
    Strict,
    Text,
    Tokens,
)


class ModelSpec(Strict):
    name: ModelName = Field(description="HF model name, e.g. meta-llama/Llama-3.1-8B")
    path: PathText | None = Field(None, description="local checkpoint directory (passed as --model_path)")
    preset: Text | None = Field(None, description="architecture preset when the name does not imply one")
    config: PathText | None = Field(None, description="HF config.json describing the architecture")


# Grid axes besides ISL and OSL, outermost first, and where each one's scalar lives in the spec
# ("" = top level). Requests is an axis too, derived per (ISL, OSL) by `requests:`.
EXTRA_AXES: dict[str, str] = {"precision": "", "kv_cache_dtype": "", "tp": "", "pp": "", "ep": "", "attention_dp": "",
                              "max_batch_size": "runtime", "max_num_tokens": "runtime", "concurrency": "runtime"}
AXES = (*EXTRA_AXES, "isl", "osl", "requests")


class Ladder(Strict):
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


class GridSpec(Strict):
    """Lists to sweep. ISL and OSL always; any of EXTRA_AXES optionally (a scalar elsewhere otherwise).
    `concurrency` may also be a ladder: `{start: 1, stop: 512, factor: 2}` is 1, 2, 4, ..., 512."""

    isl: list[Tokens] = Field(min_length=1)
    osl: list[Tokens] = Field(min_length=1)
    precision: list[Precision] | None = Field(None, min_length=1)
    kv_cache_dtype: list[KvDtype] | None = Field(None, min_length=1)
    tp: list[Parallel] | None = Field(None, min_length=1)
    pp: list[Parallel] | None = Field(None, min_length=1)
    ep: list[Parallel] | None = Field(None, min_length=1)
    attention_dp: list[bool] | None = Field(None, min_length=1)
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


class RequestRule(Strict):
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


class PairCount(Strict):
    isl: Tokens
    osl: Tokens
    requests: Requests


class RequestsSpec(Strict):
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


class RuntimeSpec(Strict):
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


class TrtllmSpec(Strict):
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
    cuda_graphs: bool = Field(True, description="send NVIDIA's perf-overview CUDA-graph batch sizes (padded); false "
                              "leaves trtllm-bench's own, which also captures padded graphs")
    extra_llm_api_options: dict[str, Any] = Field(default_factory=dict, description="merged over ours")


class CalibrationSpec(Strict):
    """What ModelOpt calibrates FP8 scales on (PyTorch-path builds); without a path, the sweep's own synthetic
    tokens, which the build's manifest warns about."""

    path: PathText | None = Field(None, description="text file, or JSON lines with text, prompt or input_ids")
    samples: Annotated[PosInt, Field(le=100_000)] = 512
    seq_len: Annotated[PosInt, Field(le=MAX_TOKENS)] = 512  # tokens per sample, longer ones cut


class BuildSpec(Strict):
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


class SlaSpec(Strict):
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
TASKS: tuple[EvalTask, ...] = ("cnn_dailymail", "mmlu")


class AccuracySpec(Strict):
    """`trtbench accuracy run SPEC`: trtllm-eval on each artifact the sweep builds (precision, KV dtype,
    TP x PP), and the gate: every score of an artifact at least `tolerance` x the `reference` precision's
    (MLPerf's 99% rule, against a run of the same model instead of MLPerf's own prompt and scorer)."""

    tasks: Annotated[list[EvalTask], Field(min_length=1, max_length=2)] = Field(default_factory=lambda: list(TASKS))
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
