"""The trtllm-bench argument list for one point, for the installed release (reference sections 1 and 4).

Global options go before the subcommand; `--tp/--pp` are throughput options. Every flag added
here is one a source shows the release takes (version.py's gates, with their evidence in
tests/data/trtllm_bench_options.json); `--backend` and `--dataset` are always explicit,
because the default backend flipped from the TensorRT engine to PyTorch around 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trtbench.backends.trtllm.build.quantize import prequantized_checkpoint
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.deployment import PERF_OVERVIEW_GRAPH_SIZES
from trtbench.errors import SpecError, TrtbenchError
from trtbench.precision import KvDtype, Precision
from trtbench.spec import BenchMode, SweepSpec, TrtllmSpec

DEFAULT_LOG_LEVEL = TrtllmSpec.model_fields["log_level"].default  # trtllm-bench's own default too


@dataclass(frozen=True)
class Invocation:
    """What stays the same across the points of one sweep."""

    bench: str
    version: TrtllmVersion
    mode: str  # pytorch | tensorrt
    spec: SweepSpec
    options_yaml: Path | None  # extra_llm_api_options file, when the mode and release take one
    engine_dir: str | None  # tensorrt mode: the spec's engine, or the one trtbench builds
    model_path: str | None = None  # pytorch mode: the checkpoint to load (FP8 by ModelOpt, or as given)


def choose_mode(spec: SweepSpec, version: TrtllmVersion | None) -> Literal["pytorch", "tensorrt"]:
    """An explicit trtllm.backend wins. Otherwise: the TensorRT engine when one is given, the release is older
    than 0.19, or latency runs before 1.0 (an engine is all it loads there); the PyTorch backend from 0.19, as
    NVIDIA's perf docs run it, and when the release is unknown: trtbench then plans for the newest release
    (version.NEWEST_TEXT), which has no engine path."""
    refuse_latency(spec, version)
    latency_on_engine = spec.mode is BenchMode.LATENCY and version is not None and version.latency_engine_only
    wanted = spec.trtllm.backend
    if wanted == "auto":
        if spec.trtllm.engine_dir or latency_on_engine:
            wanted = "tensorrt"
        elif version is None:
            wanted = "pytorch"
        else:
            wanted = "pytorch" if version.at_least(0, 19) or not version.has_tensorrt_backend else "tensorrt"
    if version is not None and wanted == "pytorch" and latency_on_engine:
        raise SpecError(f"mode: latency on TensorRT-LLM {version.text} runs a TensorRT engine only (trtllm-bench "
                        f"latency takes --engine_dir and no --backend before 1.0); use trtllm.backend: tensorrt "
                        f"or auto")
    if version is not None and wanted == "pytorch" and not version.has_pytorch_backend:
        raise TrtbenchError(f"TensorRT-LLM {version.text} has no PyTorch backend (0.17+); use trtllm.backend: "
                            f"tensorrt")
    if version is not None and wanted == "tensorrt" and not version.has_tensorrt_backend:
        raise TrtbenchError(f"TensorRT-LLM {version.text} removed the TensorRT engine backend; "
                            f"use trtllm.backend: pytorch")
    if wanted == "tensorrt" and Precision.MXFP4 in spec.precisions:
        raise SpecError("precision: mxfp4 runs on TensorRT-LLM's PyTorch backend (trtllm-build makes no MXFP4 "
                        "experts); use trtllm.backend: pytorch")
    return wanted


def refuse_latency(spec: SweepSpec, version: TrtllmVersion | None) -> None:
    """mode: latency where trtbench cannot drive it, in one line naming why (tests/data/trtllm_bench_latency_options
    .json `refused`): 0.12 has no latency subcommand, and no source for 0.13's was read."""
    if spec.mode is not BenchMode.LATENCY or version is None or version.has_latency_command:
        return
    why = ("has no latency subcommand (its bench.py registers only build and throughput)" if not version.at_least(0, 13)
           else "has a latency subcommand whose options and report no NVIDIA source trtbench read shows")
    raise SpecError(f"mode: latency: trtllm-bench {version.text} {why}; trtbench drives latency from TensorRT-LLM "
                    f"0.14 (engine path), or use mode: throughput")


def llm_api_options(spec: SweepSpec, version: TrtllmVersion, mode: str) -> dict[str, Any] | None:
    """The extra_llm_api_options YAML: KV cache dtype and memory fraction, CUDA graphs; the user's
    own `trtllm.extra_llm_api_options` are merged over it. `latency` takes no such file."""
    if mode != "pytorch" or not version.has_extra_llm_api_options or spec.mode is BenchMode.LATENCY:
        return None
    options: dict[str, Any]
    style = version.kv_yaml_style
    if style == "pytorch_backend_config":
        options = {"pytorch_backend_config": {"kv_cache_dtype": spec.kv.value}}
    else:
        kv_cache: dict[str, Any] = {"free_gpu_memory_fraction": spec.runtime.kv_cache_free_gpu_mem_fraction}
        options = {"kv_cache_config": {"dtype": spec.kv.value, **kv_cache}} if style == "kv_cache_config" \
            else {"kv_cache_dtype": spec.kv.value, "kv_cache_config": kv_cache}
        if spec.trtllm.cuda_graphs:
            options["cuda_graph_config"] = {version.cuda_graph_padding_key: True,
                                            "batch_sizes": list(PERF_OVERVIEW_GRAPH_SIZES)}
    if spec.runtime.chunked_context and not version.chunked_context_flags:
        options["enable_chunked_prefill"] = True  # before 1.0 the PyTorch path takes it only here
    if spec.attention_dp:  # refuse_unrunnable_attention_dp has held it to releases that take it
        options["enable_attention_dp"] = True
    return _merge(options, spec.trtllm.extra_llm_api_options)


def chunked_context(spec: SweepSpec, version: TrtllmVersion, mode: str) -> bool:
    """Whether the run has chunked prefill: what the spec asks where the release lets trtbench say it
    (throughput's flags from 1.0, the LLM-API YAML on the PyTorch path before), else the release's
    default, off. 1.1 turned the default on, so trtbench always says it there."""
    if version.chunked_context_flags or (mode == "pytorch" and version.has_extra_llm_api_options):
        return spec.runtime.chunked_context
    return False


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def bench_args(inv: Invocation, *, dataset: Path, num_requests: int, report_json: Path | None) -> list[str]:
    """`throughput`, or `latency` (spec `mode`), which has no batch-size, token, concurrency-limit,
    chunking, streaming or EOS options: it runs one request at a time, streamed, to the requested length.
    Before 1.0 latency takes an engine and nothing that sets the world (version.latency_engine_only)."""
    spec, v, rt = inv.spec, inv.version, inv.spec.runtime
    throughput = spec.mode is BenchMode.THROUGHPUT
    world = throughput or not v.latency_engine_only  # --tp/--pp/--ep where the subcommand takes them
    model, model_path = model_and_path(inv)
    args = [inv.bench, "--model", model]
    if model_path and v.has_model_path:
        args += ["--model_path", model_path]
    if spec.trtllm.workspace:
        args += ["--workspace", spec.trtllm.workspace]
    if sends_log_level(spec, v):
        args += ["--log_level", spec.trtllm.log_level]
    args += [spec.mode.value, "--dataset", str(dataset)]
    if inv.mode == "pytorch":
        args += ["--backend", "pytorch"]
    else:
        args += [*v.engine_backend_flag, "--engine_dir", str(inv.engine_dir)]
    if inv.options_yaml is not None:
        args += [v.llm_api_options_flag, str(inv.options_yaml)]
    args += ["--kv_cache_free_gpu_mem_fraction", str(rt.kv_cache_free_gpu_mem_fraction)]
    if throughput:
        args += _throughput_only(spec, v)
    if v.has_warmup if throughput else v.latency_has_warmup:
        args += ["--warmup", str(rt.warmup)]
    args += ["--num_requests", str(num_requests)]
    if throughput and streaming(spec) and v.has_streaming:
        args += ["--streaming"]
    if report_json is not None and v.has_report_json:
        args += ["--report_json", str(report_json)]
    if throughput and v.has_eos_id:
        args += ["--eos_id", "-1"]
    if world and v.has_parallel_options:
        args += ["--tp", str(spec.tp), "--pp", str(spec.pp)]
    if world and spec.ep and v.has_ep:
        args += ["--ep", str(spec.ep)]
    return args


def sends_log_level(spec: SweepSpec, version: TrtllmVersion) -> bool:
    """Where a source shows the global --log_level; where none does either way (0.17-0.21), only when the spec
    asks for a level other than the default (unproven_settings says so)."""
    evidence = version.log_level_evidence
    return evidence == "shown" or (evidence == "unproven" and spec.trtllm.log_level != DEFAULT_LOG_LEVEL)


def model_and_path(inv: Invocation) -> tuple[str, str | None]:
    """The model name and the local directory holding it (None: loaded by name): the checkpoint ModelOpt
    built (PyTorch path), a pre-quantized checkpoint on the hub (`build.checkpoint`, or the model's own
    name), or the spec's model."""
    spec = inv.spec
    model, model_path = spec.model.name, inv.model_path if inv.mode == "pytorch" else spec.model.path
    checkpoint = prequantized_checkpoint(spec) if inv.mode == "pytorch" else None
    if checkpoint and not Path(checkpoint).is_dir():  # a pre-quantized checkpoint on the hub, loaded by name
        model, model_path = checkpoint, None
    return model, model_path


def _throughput_only(spec: SweepSpec, v: TrtllmVersion) -> list[str]:
    rt, args = spec.runtime, []
    if rt.max_batch_size:
        args += ["--max_batch_size", str(rt.max_batch_size)]
    if rt.max_num_tokens and v.applies_runtime_max_num_tokens:
        args += ["--max_num_tokens", str(rt.max_num_tokens)]
    if rt.concurrency and v.has_concurrency:
        args += ["--concurrency", str(rt.concurrency)]
    flags = v.chunked_context_flags
    if flags and (rt.chunked_context or len(flags) == 2):
        args += [flags[0] if rt.chunked_context else flags[-1]]
    return args


def streaming(spec: SweepSpec) -> bool:
    """`runtime.streaming`, or `trtllm.streaming` where older specs set it."""
    return spec.runtime.streaming or spec.trtllm.streaming


def unsupported_settings(spec: SweepSpec, version: TrtllmVersion) -> list[str]:
    """Spec settings this release cannot honour: said once at the start instead of silently dropped."""
    notes = []
    mode = choose_mode(spec, version)
    if spec.mode is BenchMode.LATENCY:
        notes += [f"{name} (mode: latency sets batch size 1 and its own runtime)" for name, given in (
            ("runtime.max_batch_size", spec.runtime.max_batch_size), ("runtime.max_num_tokens",
             spec.runtime.max_num_tokens), ("runtime.chunked_context", spec.runtime.chunked_context),
            ("trtllm.extra_llm_api_options", spec.trtllm.extra_llm_api_options)) if given]
        if spec.kv is KvDtype.FP8 and mode == "pytorch":
            notes.append("kv_cache_dtype: fp8 is not sent (mode: latency takes no LLM-API options): the KV cache is "
                         "the checkpoint's dtype, and a report that says otherwise is recorded invalid_report")
        if spec.runtime.warmup != 2 and not version.latency_has_warmup:
            notes.append(f"runtime.warmup (trtllm-bench {version.text} latency: no --warmup shown before 0.19; it "
                         f"warms up as it does)")
        if spec.ep and version.latency_engine_only:
            notes.append(f"ep (trtllm-bench {version.text} latency has no --ep, 1.0+: the engine's mapping runs)")
        return notes
    if spec.runtime.concurrency and not version.has_concurrency:
        notes.append("runtime.concurrency needs 0.17+")
    if spec.runtime.warmup != 2 and not version.has_warmup:
        notes.append("runtime.warmup needs 0.17+ (this release warms up as it does)")
    if streaming(spec) and not version.has_streaming:
        notes.append("runtime.streaming needs 0.13+")
    if spec.runtime.chunked_context and not chunked_context(spec, version, mode):
        notes.append("runtime.chunked_context needs 1.0+, or the PyTorch backend from 0.17")
    if (spec.tp > 1 or spec.pp > 1) and not version.has_parallel_options and not spec.trtllm.engine_dir:
        notes.append("tp/pp without an engine need 0.17+")
    if spec.ep and not version.has_ep:
        notes.append(f"ep (trtllm-bench {version.text} has no --ep; 0.19+)")
    if spec.runtime.max_num_tokens and not version.applies_runtime_max_num_tokens:
        notes.append(f"runtime.max_num_tokens is not sent: trtllm-bench {version.text} would run with the max batch "
                     f"size as its token budget (its own bug, fixed in 0.17); the engine's build value "
                     f"(build.max_num_tokens) is what runs")
    if spec.model.path and mode == "tensorrt" and not version.has_model_path:
        notes.append(f"model.path (trtllm-bench {version.text} has no --model_path, 0.17+: it loads the tokenizer "
                     f"by --model)")
    if spec.trtllm.log_level != DEFAULT_LOG_LEVEL and version.log_level_evidence == "absent":
        notes.append(f"trtllm.log_level (trtllm-bench {version.text} has no --log_level)")
    return notes


def unproven_settings(spec: SweepSpec, version: TrtllmVersion) -> list[str]:
    """Settings sent as flags that no source shows the release takes, because the spec asks for them: said once."""
    if sends_log_level(spec, version) and version.log_level_evidence == "unproven":
        return [f"trtllm.log_level {spec.trtllm.log_level} is sent as --log_level, which no NVIDIA source shows for "
                f"trtllm-bench {version.text} (shown from 1.0); if it answers 'No such option', drop trtllm.log_level"]
    return []


def refuse_unrunnable_attention_dp(spec: SweepSpec, version: TrtllmVersion, mode: str) -> None:
    """attention_dp where trtllm-bench cannot run it: it is an LLM-API option of the PyTorch path (throughput), with
    the experts spread by --ep (version.has_attention_dp). Run without it, the point would measure TP and be
    labelled DEP."""
    if not spec.attention_dp:
        return
    if not version.has_attention_dp:
        raise SpecError(f"attention_dp: trtllm-bench {version.text} has no --ep to spread the experts (0.19+); "
                        f"pin a newer trtllm.version or drop attention_dp")
    if mode != "pytorch" or spec.mode is not BenchMode.THROUGHPUT:
        raise SpecError("attention_dp is an LLM-API option of trtllm-bench throughput on the PyTorch backend; use "
                        "trtllm.backend: pytorch and mode: throughput, or drop attention_dp")


def refuse_unrunnable(spec: SweepSpec, version: TrtllmVersion, mode: str) -> None:
    """What this release can never run as asked, refused for every point (`spec` is one point's, `SweepSpec.at`)
    before anything is built or written: an attention_dp it lacks, an FP8 checkpoint with a 16-bit KV cache."""
    refuse_unrunnable_attention_dp(spec, version, mode)
    refuse_unrunnable_kv(spec, version, mode)


def refuse_unrunnable_kv(spec: SweepSpec, version: TrtllmVersion, mode: str) -> None:
    """FP8 weights with a 16-bit KV cache on the 1.x PyTorch path: trtllm-bench throughput runs an FP8 cache for
    an FP8 checkpoint whatever kv_cache_config.dtype says, so the point would end invalid_report after its GPU
    time (the evidence speaks of throughput; latency's KV cache is the checkpoint's, see unsupported_settings).
    The point's `kv` is resolved, so `auto` here was asked for."""
    if mode == "pytorch" and spec.mode is BenchMode.THROUGHPUT and version.picks_fp8_kv_for_fp8_weights \
            and spec.precision is Precision.FP8 and spec.kv is KvDtype.AUTO:
        raise SpecError(f"precision: fp8 with kv_cache_dtype: auto cannot run on TensorRT-LLM {version.text}'s "
                        f"PyTorch backend: trtllm-bench gives an FP8 checkpoint an FP8 KV cache itself "
                        f"(kv_cache_config.dtype takes only auto or fp8); use kv_cache_dtype: fp8, or 16-bit weights "
                        f"(precision: bf16 or fp16)")
