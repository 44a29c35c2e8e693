"""What runs where: model architecture, GPU, precision and parallelism, resolved once from a spec."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from trtbench.catalog.gpus import GPU, resolve_gpu
from trtbench.catalog.models import ModelArch, resolve_model
from trtbench.errors import SpecError, TrtbenchError, Unsupported
from trtbench.precision import KvDtype, Precision, default_kv
from trtbench.spec import BenchMode, RuntimeSpec, SweepSpec

# The CUDA-graph batch sizes NVIDIA's perf-overview YAML asks for (docs/source/developer-guide/perf-overview.md
# @03e27c7d, every model's llm_options.yml): what trtbench sends with `trtllm.cuda_graphs` (backends/trtllm/command),
# so its runs pad as NVIDIA's published ones, and what the simulator pads such a run to.
PERF_OVERVIEW_GRAPH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048, 4096, 8192)
GRAPH_CONFIG_FROM = (0, 21)  # the first release whose LLM-API YAML takes cuda_graph_config (version.py's gate)


class Sizing(IntEnum):
    """How a release's trtllm-bench sizes the model and its KV cache when it picks max_batch_size and
    max_num_tokens (calc_engine_setting); each later one keeps what the earlier changed."""

    ELEMENTS = 0  # the checkpoint's safetensors elements x its quant algo's bytes, the KV over every GPU
    BYTES = 1  # NVIDIA/TensorRT-LLM#13498: the checkpoint's bytes; under attention DP one rank's GPU and share
    MLA = 2  # NVIDIA/TensorRT-LLM#16707: latent attention's one compressed entry per token, not per-head K and V


# The first version with each, (major, minor, patch, rc). PyPI's upload dates bound them: #13498 is dated
# 2026-04-27, 1.3.0rc13 was uploaded 04-29 and rc14 05-07; #16707 merged 07-22, the day rc22 was uploaded (rc23
# 07-30). Each is the later candidate: the fix is certainly there.
SIZING_FROM = ((Sizing.MLA, (1, 3, 0, 23)), (Sizing.BYTES, (1, 3, 0, 14)))


def version_key(version: str | None) -> tuple[int, int, int, float] | None:
    """(major, minor, patch, candidate) of a TensorRT-LLM version or a table's label ("v0.19.0", "1.0 (doc
    revision)", "1.1.0rc3"), a final release after all its candidates; None where it names none."""
    found = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:rc(\d+))?", version.strip()) if version else None
    if found is None:
        return None
    return int(found[1]), int(found[2]), int(found[3] or 0), int(found[4]) if found[4] else math.inf


def sizing_of(version: str | None) -> Sizing:
    """The heuristic `version`'s trtllm-bench runs. An unstated version plans for the newest, and so does one
    without its candidate number ("1.3"): a final release has every fix of its candidates."""
    at = version_key(version)
    if at is None:
        return Sizing.MLA
    return next((sizing for sizing, since in SIZING_FROM if at >= since), Sizing.ELEMENTS)


@dataclass(frozen=True)
class Deployment:
    arch: ModelArch
    gpu: GPU
    precision: Precision
    kv_dtype_bytes: int
    tp: int
    pp: int
    runtime: RuntimeSpec
    release: str | None = None  # TensorRT-LLM major.minor ("1.0"); None: unstated
    ep: int = 1  # expert parallelism within the TP ranks: each holds experts / ep whole experts, tp / ep wide
    attention_dp: bool = False  # each TP rank its own requests, batch limit and KV cache; attention whole on each
    graph_sizes: tuple[int, ...] | None = None  # CUDA-graph batch sizes the run asks for; None: trtllm-bench's own
    sizing: Sizing = Sizing.MLA  # how the release's trtllm-bench sizes the model for its limits (`sizing_of`)

    @property
    def attention_tp(self) -> int:
        """How far attention, the dense FFN, shared experts and lm_head are split: not at all under attention DP
        (TensorRT-LLM keeps them whole on every rank), else over the TP ranks."""
        return 1 if self.attention_dp else self.tp

    @property
    def dp_ranks(self) -> int:
        """The ranks that each schedule their own requests: the TP ranks under attention DP, else one group."""
        return self.tp if self.attention_dp else 1

    @property
    def n_gpus(self) -> int:
        return self.tp * self.pp

    @property
    def weight_bytes(self) -> float:
        """Bytes per weight of the quantized layers (FP8: 1; NVFP4: 9/16; FP16/BF16 and MXFP4's non-expert
        layers: 2)."""
        return self.precision.bytes


def deployment_for(spec: SweepSpec, gpu_name: str | None = None) -> Deployment:
    """`spec` is one point's spec (`SweepSpec.at`); `gpu_name` replaces `gpu: auto` with the device
    actually present."""
    gpu_id = gpu_name or spec.gpu
    if gpu_id == "auto":
        raise SpecError("gpu: auto needs a visible NVIDIA GPU; name the GPU to simulate (e.g. gpu: h100-sxm)")
    arch = resolve_model(spec.model.name, spec.model.preset, spec.model.config)
    gpu = resolve_gpu(gpu_id)
    _check_precision(arch, gpu, spec.precision, spec.kv)
    _check_tp(arch, spec.tp)
    _check_ep(arch, spec.tp, spec.ep or 1)
    _check_attention_dp(arch, spec.tp, spec.ep or 1, bool(spec.attention_dp))
    release = release_of(spec.trtllm.version)
    return Deployment(arch, gpu, spec.precision, spec.kv_dtype_bytes, spec.tp, spec.pp,
                      runtime_of(spec), release, spec.ep or 1, bool(spec.attention_dp), graph_sizes_of(spec, release),
                      sizing_of(spec.trtllm.version))


def graph_sizes_of(spec: SweepSpec, release: str | None) -> tuple[int, ...] | None:
    """The CUDA-graph batch sizes a spec's run asks trtllm-bench for: with `trtllm.cuda_graphs`, on the PyTorch
    path (no engine), in throughput mode, `sent_graph_sizes`; else None, and trtllm-bench's own sizes apply."""
    asked = spec.trtllm.cuda_graphs and spec.trtllm.backend != "tensorrt" and not spec.trtllm.engine_dir
    return sent_graph_sizes(release) if asked and spec.mode is not BenchMode.LATENCY else None


def sent_graph_sizes(release: str | None) -> tuple[int, ...] | None:
    """NVIDIA's list where the release's LLM-API YAML takes `cuda_graph_config` (0.21 on; an unstated release
    plans for the newest), else None: what trtbench sends with CUDA graphs on the PyTorch path."""
    newer = release is None or tuple(map(int, release.split("."))) >= GRAPH_CONFIG_FROM
    return PERF_OVERVIEW_GRAPH_SIZES if newer else None


def runtime_of(spec: SweepSpec) -> RuntimeSpec:
    """The runtime a point really gets: `trtllm-bench latency` sets batch size 1 and no chunking itself,
    whatever the spec says, and its one request at a time is a concurrency of 1."""
    if spec.mode is BenchMode.LATENCY:
        return spec.runtime.model_copy(update={"max_batch_size": 1, "concurrency": 1, "chunked_context": False})
    return spec.runtime


class PointDeployments:
    """The deployment of each point of a spec, resolved once per combination of its extra axes (resolving
    reads the model's config file)."""

    def __init__(self, spec: SweepSpec, gpu_name: str | None = None) -> None:
        self.spec, self.gpu_name = spec, gpu_name
        self.base = deployment_for(spec, gpu_name)  # also checks the spec's model and GPU up front
        self._cache: dict[tuple[tuple[str, Any], ...], Deployment] = {}

    def resolved(self) -> list[Deployment]:
        """The base deployment and every one resolved for a point so far."""
        return [self.base, *self._cache.values()]

    def __call__(self, extra: dict[str, Any]) -> Deployment:
        """`extra`: a point's axes besides ISL, OSL and requests (`Point.extra`)."""
        key = tuple(sorted(extra.items()))
        if key not in self._cache:
            self._cache[key] = deployment_for(self.spec.at(extra), self.gpu_name)
        return self._cache[key]


def _check_tp(arch: ModelArch, tp: int) -> None:
    if arch.kv_heads % tp and tp % arch.kv_heads:
        raise Unsupported(f"tp {tp} does not divide the model's {arch.kv_heads} KV heads")


def _check_precision(arch: ModelArch, gpu: GPU, precision: Precision, kv: KvDtype) -> None:
    """FP8 weights and the FP8 KV cache need FP8 tensor cores (Ada, Hopper, Blackwell): refused on Ampere
    rather than predicted at a rate the GPU does not have; NVFP4 weights likewise need Blackwell's FP4 ones.
    MXFP4 is a mixture's experts, run by TensorRT-LLM's MXFP4 MoE kernels on Hopper and Blackwell; a checkpoint
    that ships MXFP4 experts is loaded as it is, so another precision would label what never ran."""
    if gpu.fp8_tflops is None and (precision is Precision.FP8 or kv is KvDtype.FP8):
        what = "precision: fp8" if precision is Precision.FP8 else "kv_cache_dtype: fp8"
        raise Unsupported(f"{what}: the {gpu.name} ({gpu.family}) has no FP8 tensor cores; use fp16/bf16 "
                        f"(and kv_cache_dtype: auto), or an Ada/Hopper/Blackwell GPU")
    if precision is Precision.NVFP4 and gpu.fp4_tflops is None:
        raise Unsupported(f"precision: nvfp4 needs FP4 tensor cores (Blackwell); the {gpu.name} ({gpu.family}) has "
                        f"none; use fp8, or a Blackwell GPU")
    if precision is Precision.MXFP4 and not arch.is_moe:
        raise Unsupported(f"precision: mxfp4 stores a mixture's experts in MXFP4 (gpt-oss's published format); "
                        f"{arch.name} has no experts")
    if precision is Precision.MXFP4 and gpu.family not in ("hopper", "blackwell"):
        raise Unsupported(f"precision: mxfp4: TensorRT-LLM runs MXFP4 experts on Hopper and Blackwell GPUs, not the "
                        f"{gpu.name} ({gpu.family})")
    if arch.checkpoint_quant == "mxfp4" and precision is not Precision.MXFP4:
        raise Unsupported(f"precision: {precision}: {arch.name}'s config.json ships MXFP4 experts, which TensorRT-LLM "
                        f"loads as they are; use precision: mxfp4")


def _check_ep(arch: ModelArch, tp: int, ep: int) -> None:
    """TensorRT-LLM splits the MoE layers over the TP ranks as ep groups of whole experts, each tp / ep wide."""
    if ep == 1:
        return
    if not arch.is_moe:
        raise Unsupported(f"ep {ep}: expert parallelism needs a mixture of experts; {arch.name} is dense")
    if tp % ep:
        raise Unsupported(f"ep {ep} does not divide tp {tp} (the expert-parallel ranks are TP ranks)")
    if arch.experts % ep:
        raise Unsupported(f"ep {ep} does not divide the model's {arch.experts} experts")


def _check_attention_dp(arch: ModelArch, tp: int, ep: int, attention_dp: bool) -> None:
    """Attention DP as NVIDIA runs it (the DEP rows): a mixture of experts over tp > 1 ranks, experts spread over
    all of them (ep = tp). A dense model under it is only data parallelism with every weight on every rank, and
    experts tensor-split under it (ep < tp) are not modelled."""
    if not attention_dp:
        return
    if not arch.is_moe:
        raise Unsupported(f"attention_dp: {arch.name} is dense; attention DP keeps every dense weight on every rank "
                          f"(trtbench models it for mixtures of experts); run tp: 1 points instead")
    if tp == 1:
        raise Unsupported("attention_dp needs tp > 1: it splits the requests over the TP ranks")
    if ep != tp:
        raise Unsupported(f"attention_dp needs ep equal to tp ({tp}): the experts spread over every rank (DEP); "
                          f"ep {ep} leaves them tensor-split, which trtbench does not model")


def refuse_unsupported(spec: SweepSpec, extras: Iterable[dict[str, Any]], visible: Sequence[str] = ()) -> None:
    """Raises Unsupported, before anything runs on any backend, for a combination of axes (`Point.extra`) the
    model or GPU cannot run; a model or GPU the catalog does not know is left to the run to judge. `visible`:
    the GPUs present (the first stands for `gpu: auto`)."""
    try:
        deployments = PointDeployments(spec, visible[0] if spec.gpu == "auto" and visible else None)
        for extra in extras:
            deployments(extra)
    except Unsupported:
        raise
    except TrtbenchError:
        return


def release_of(version: str | None) -> str | None:
    """TensorRT-LLM's major.minor from a version or a table's label (`version_key`)."""
    at = version_key(version)
    return f"{at[0]}.{at[1]}" if at else None


def make_deployment(model: str, gpu: str, precision: str, *, tp: int = 1, pp: int = 1,
                    kv_cache_dtype: str | None = None, runtime: RuntimeSpec | None = None,
                    release: str | None = None, config: str | None = None,
                    attention_dp: bool = False, graph_sizes: tuple[int, ...] | None = None,
                    ep: int | None = None) -> Deployment:
    """A deployment from loose values (a CSV row, CLI options) instead of a sweep spec; names resolve as
    in specs (GPU aliases, HF model names, or a config.json); the KV cache dtype unset is `default_kv`'s, as in
    a spec. `attention_dp` runs DEP: the experts spread over all tp ranks (ep = tp). `ep` unset: tp under attention
    DP, else 1 (trtllm-bench without --ep: every expert split over the TP ranks). `graph_sizes`: the CUDA-graph
    batch sizes the run asks for (`sent_graph_sizes` for what trtbench sends; None, a published table's row:
    trtllm-bench's own)."""
    try:
        prec = Precision(precision.lower())
    except ValueError:
        raise SpecError(f"unknown precision {precision!r}; expected fp8, fp16, bf16, mxfp4 or nvfp4") from None
    try:
        kv = KvDtype(kv_cache_dtype.lower()) if kv_cache_dtype else default_kv(prec)
    except ValueError:
        raise SpecError(f"unknown KV cache dtype {kv_cache_dtype!r}; expected fp8 or auto") from None
    arch, device = resolve_model(model, config=config), resolve_gpu(gpu)
    _check_precision(arch, device, prec, kv)
    _check_tp(arch, tp)
    ep = ep or (tp if attention_dp else 1)
    _check_ep(arch, tp, ep)
    _check_attention_dp(arch, tp, ep, attention_dp)
    return Deployment(arch, device, prec, kv.bytes, tp, pp, runtime or RuntimeSpec(), release_of(release), ep,
                      attention_dp, graph_sizes, sizing_of(release))
