"""Which engines a sweep needs, and which points each one serves.

A grid needs as few builds as possible: one engine per build configuration, built for the longest
sequence in the grid, with max_batch_size / max_num_tokens from the spec or from trtllm-bench's
heuristic (the largest any point asks for). A point longer than an explicit `build.max_seq_len`
cannot run on that engine and is listed as unserved. On the PyTorch path "the engine" is the checkpoint
trtllm-bench loads (quantized by ModelOpt for FP8 and NVFP4): sequence limits and parallelism are runtime
settings there, so they are not part of it and it serves every point. A model that already holds FP8 or NVFP4
weights (quantize.declared) is never quantized again: loaded as it is, or (FP8) built into an engine as it is.
NVFP4 is built for the PyTorch path only: trtbench makes no NVFP4 TensorRT engine.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trtbench.backends.trtllm.build.quantize import (
    QUANT_ALGOS,
    WEIGHT_RECIPES,
    Quantization,
    checkpoint_quant,
    declared,
    prequantized_checkpoint,
    quantization_for,
    refuse_unloadable_precision,
)
from trtbench.backends.trtllm.command import choose_mode
from trtbench.backends.trtllm.version import NEWEST_TEXT, TrtllmVersion
from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import resolve_model
from trtbench.errors import TrtbenchError, Unsupported
from trtbench.grid import Point
from trtbench.precision import Precision
from trtbench.sim.heuristics import InsufficientMemory, heuristic_limits
from trtbench.spec import SweepSpec, stable_hash


class BuildConfig(BaseModel):
    """Everything that determines an engine's bytes; its hash names the engine directory. The engine
    fields (tp ... calib_size) are None on the PyTorch path, `quantization` is set only there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    model_path: str | None
    precision: str
    kv_cache_dtype: str
    tp: int | None
    pp: int | None
    path: Literal["tensorrt", "pytorch"]
    tool: str | None
    max_seq_len: int | None
    max_input_len: int | None
    max_batch_size: int | None
    max_num_tokens: int | None
    calib_size: int | None
    checkpoint: str | None
    trtllm_version: str | None
    quantization: Quantization | None = None

    def hash(self) -> str:
        return stable_hash(self.model_dump(mode="json"))

    @property
    def name(self) -> str:
        model = re.sub(r"[^A-Za-z0-9.]+", "-", self.model.split("/")[-1]).strip("-")
        parallel = f"_tp{self.tp}pp{self.pp}" if self.path == "tensorrt" else ""
        return f"{model}_{self.precision}_kv-{self.kv_cache_dtype}{parallel}_{self.path}_{self.hash()[:8]}"

    @property
    def unfetched(self) -> bool:
        """An FP8 or NVFP4 PyTorch-path build whose hub model was planned without fetching it (a dry run)."""
        return self.path == "pytorch" and Precision(self.precision) in WEIGHT_RECIPES and not self.checkpoint \
            and not self.quantization


@dataclass(frozen=True)
class EnginePlan:
    key: tuple[tuple[str, object], ...]  # the build key its points share (`build_key`)
    config: BuildConfig
    points: list[Point]  # served by this engine
    unserved: list[Point]  # longer than the engine's max_seq_len
    prequantized: str | None = None  # what `plan` and `build` say of FP8 / NVFP4 weights not quantized here


def build_config(spec: SweepSpec, version: TrtllmVersion | None,
                 pairs: Sequence[tuple[int, int]] | None = None, *, fetch: bool = False) -> BuildConfig:
    """The engine for `spec` (one point's spec, or a spec without build-changing axes) serving the
    (ISL, OSL) `pairs` (default: the spec's grid). Without a known release, the PyTorch path plans for
    the newest. `fetch`: download a hub model to quantize (see quantize.quantization_for)."""
    refuse_unloadable_precision(spec)
    path = choose_mode(spec, version)
    b = spec.build
    if path == "pytorch":
        return BuildConfig(
            model=spec.model.name, model_path=spec.model.path, precision=spec.precision.value,
            kv_cache_dtype=spec.kv.value, tp=None, pp=None, path=path, tool=None, max_seq_len=None,
            max_input_len=None, max_batch_size=None, max_num_tokens=None, calib_size=None,
            checkpoint=prequantized_checkpoint(spec),
            trtllm_version=version.text if version else NEWEST_TEXT, quantization=quantization_for(spec, fetch),
        )
    if spec.precision is Precision.NVFP4:
        raise Unsupported(f"precision: nvfp4 on the TensorRT engine path ({_engine_path_why(spec, version)}): "
                          f"trtbench builds NVFP4 only as a checkpoint for the PyTorch backend; use "
                          f"trtllm.backend: pytorch with TensorRT-LLM 0.19 or later")
    own = declared(spec.model.name, spec.model.path)
    if own and b.tool == "trtllm-build":
        raise TrtbenchError(f"{own.source} holds pre-quantized FP8 weights, which quantize.py would quantize again "
                            f"with ModelOpt; use build.tool: trtllm-bench (it builds the engine from them as they are) "
                            f"or trtllm.backend: pytorch")
    pairs = list(pairs or spec.pairs)
    longest = max(isl + osl for isl, osl in pairs)
    max_seq = b.max_seq_len or longest
    max_isl = max(isl for isl, _ in pairs)
    bs = b.max_batch_size or spec.runtime.max_batch_size
    tok = b.max_num_tokens or spec.runtime.max_num_tokens
    if bs is None or tok is None:
        hb, ht = _heuristic_maxima(spec, pairs)
        bs, tok = bs or hb, tok or ht
    if not spec.runtime.chunked_context:
        tok = max(tok, min(max_isl, max_seq))  # a whole prompt must fit one iteration
    return BuildConfig(
        model=spec.model.name, model_path=spec.model.path, precision=spec.precision.value,
        kv_cache_dtype=spec.kv.value, tp=spec.tp, pp=spec.pp, path=path, tool=b.tool,
        max_seq_len=max_seq, max_input_len=min(max_isl, max_seq), max_batch_size=bs, max_num_tokens=tok,
        calib_size=b.calib_size, checkpoint=b.checkpoint,
        trtllm_version=version.text if version else None,
    )


def _engine_path_why(spec: SweepSpec, version: TrtllmVersion | None) -> str:
    """Why choose_mode took the engine path, for the one-line refusal."""
    if spec.trtllm.backend == "tensorrt":
        return "trtllm.backend: tensorrt"
    if spec.trtllm.engine_dir:
        return "trtllm.engine_dir is set"
    return f"TensorRT-LLM {version.text if version else NEWEST_TEXT}, mode: {spec.mode}"


def prequantized(config: BuildConfig) -> str | None:
    """What `plan` and `build` say of a configuration whose FP8 or NVFP4 weights come pre-quantized, not from
    ModelOpt, with the KV cache quantization the checkpoint declares (what a KV cache left `auto` takes), where
    it is local and says."""
    precision = Precision(config.precision)
    if precision not in QUANT_ALGOS:
        return None
    pytorch = config.path == "pytorch"
    own = None if pytorch else declared(config.model, config.model_path)
    source = config.checkpoint if pytorch else own.source if own else None
    if source is None:
        return None
    how = "loaded as it is" if pytorch else "trtllm-bench build makes the engine from it as it is, uncalibrated"
    kv = (checkpoint_quant(Path(source))[1] or "none declared") if Path(source).is_dir() else "as declared on the hub"
    return f"pre-quantized {QUANT_ALGOS[precision]} ({source}): {how}; its KV cache quantization: {kv}"


def _heuristic_maxima(spec: SweepSpec, pairs: list[tuple[int, int]]) -> tuple[int, int]:
    """trtllm-bench build's heuristic (GPU memory fraction 0.95), largest over `pairs`."""
    arch = resolve_model(spec.model.name, spec.model.preset, spec.model.config)
    gpu_gib = resolve_gpu(spec.gpu).mem_total_gib if spec.gpu != "auto" else 80.0
    bs = tok = 0
    for isl, osl in pairs:
        try:
            limits = heuristic_limits(
                arch, gpu_total_gib=gpu_gib, n_gpus=spec.tp * spec.pp, precision=spec.precision,
                kv_dtype_bytes=spec.kv_dtype_bytes, tp=spec.tp, pp=spec.pp, isl=isl, osl=osl,
                fraction=0.95, pytorch_backend=False, chunked_context=spec.runtime.chunked_context,
            )
        except InsufficientMemory:
            continue  # that point will fail on any engine; it must not size the others
        bs, tok = max(bs, limits.max_batch_size), max(tok, limits.max_num_tokens)
    return bs or 64, tok or 2048


def build_key(point: Point) -> tuple[tuple[str, object], ...]:
    """The axes of `point` that change the engine it runs on (all but the lengths, requests and
    concurrency): points with the same key share one engine."""
    return tuple((k, v) for k, v in point.extra.items() if k != "concurrency")


def plan_engines(spec: SweepSpec, version: TrtllmVersion | None, points: Sequence[Point], *,
                 fetch: bool = False, recorded: Collection[str] = ()) -> list[EnginePlan]:
    """One engine per distinct build configuration in the grid, each sized for the points it serves (all
    of them, so a resume plans the same engine); a hub model is fetched only for a configuration with a
    point not yet `recorded`."""
    groups: dict[tuple[tuple[str, object], ...], list[Point]] = {}
    for point in points:
        groups.setdefault(build_key(point), []).append(point)
    plans = []
    for key, group in groups.items():
        config = build_config(spec.at(group[0].values), version, sorted({(p.isl, p.osl) for p in group}),
                              fetch=fetch and any(p.id not in recorded for p in group))
        limit = config.max_seq_len or float("inf")  # the PyTorch path's limits are runtime settings
        served = [p for p in group if p.isl + p.osl <= limit]
        unserved = [p for p in group if p.isl + p.osl > limit]
        plans.append(EnginePlan(key, config, served, unserved, prequantized(config)))
    return plans
