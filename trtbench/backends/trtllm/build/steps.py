"""The commands that turn a BuildConfig into an engine (reference section 4), as argument lists.

TensorRT path, `trtllm-build` tool: quantize.py writes a TensorRT-LLM checkpoint (FP8 weights with
calibration, or full precision), optionally with an FP8 KV cache; trtllm-build compiles it with
the plan's limits and the plugins FP8 needs. `trtllm-bench build` does both in one step (FP8
forces an FP8 KV cache there). The PyTorch path has one step for FP8 and NVFP4, ModelOpt's quantization
(modelopt_ptq.py, in trtbench's own Python), and none for 16-bit weights.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from trtbench.backends.trtllm.build.plan import BuildConfig
from trtbench.backends.trtllm.build.quantize import Quantization
from trtbench.backends.trtllm.version import NEWEST_TEXT, TrtllmVersion, python_of
from trtbench.errors import TrtbenchError
from trtbench.spec import SweepSpec

ENGINE_SUBDIR = "engine"
CHECKPOINT_SUBDIR = "checkpoint"  # the TensorRT path's intermediate checkpoint, not kept
MODEL_SUBDIR = "model"  # the PyTorch path's quantized checkpoint
QUANTIZER = "trtbench.backends.trtllm.build.modelopt_ptq"


@dataclass(frozen=True)
class Step:
    name: str  # calibration | checkpoint conversion | engine build | quantization
    args: list[str]


@dataclass(frozen=True)
class Toolchain:
    python: str
    quantize: str | None
    trtllm_build: str | None
    trtllm_bench: str | None

    @classmethod
    def find(cls, spec: SweepSpec) -> Toolchain:
        bench = shutil.which(spec.trtllm.executable)
        script = spec.build.quantize_script
        quantize = script if Path(script).is_file() else shutil.which(script)
        return cls(python_of(bench) if bench else "python3", quantize, shutil.which("trtllm-build"), bench)

    def missing(self, config: BuildConfig) -> list[str]:
        if config.path != "tensorrt":
            return []
        if config.tool == "trtllm-bench":
            return [] if self.trtllm_bench else ["trtllm-bench"]
        return [name for name, found in (("quantize.py", self.quantize), ("trtllm-build", self.trtllm_build))
                if not found]


def build_steps(config: BuildConfig, staging: Path, tools: Toolchain) -> list[Step]:
    if config.path == "pytorch":
        return [] if config.quantization is None else [_modelopt_step(config.quantization, staging / MODEL_SUBDIR)]
    if config.tool == "trtllm-bench":
        return [_bench_build(config, staging, tools)]
    ckpt, engine = staging / CHECKPOINT_SUBDIR, staging / ENGINE_SUBDIR
    fp8 = config.precision == "fp8"
    quantize = [tools.python, tools.quantize or "quantize.py", "--model_dir", config.model_path or config.model,
                "--dtype", "float16" if config.precision == "fp16" else "bfloat16",
                "--qformat", "fp8" if fp8 else "full_prec"]
    if config.kv_cache_dtype == "fp8":
        quantize += ["--kv_cache_dtype", "fp8"]
    if fp8 or config.kv_cache_dtype == "fp8":  # FP8 scales (weights or KV) come from calibration
        quantize += ["--calib_size", str(config.calib_size)]
    quantize += ["--tp_size", str(config.tp), "--pp_size", str(config.pp), "--output_dir", str(ckpt)]
    build = [tools.trtllm_build or "trtllm-build", "--checkpoint_dir", str(ckpt), "--output_dir", str(engine),
             "--max_batch_size", str(config.max_batch_size), "--max_input_len", str(config.max_input_len),
             "--max_seq_len", str(config.max_seq_len), "--max_num_tokens", str(config.max_num_tokens),
             "--max_beam_width", "1", "--kv_cache_type", "paged", "--remove_input_padding", "enable",
             "--context_fmha", "enable", "--gemm_plugin", "auto", "--use_paged_context_fmha", "enable"]
    if fp8:
        build += ["--use_fp8_context_fmha", "enable", "--multiple_profiles", "enable"]
    assert config.tp is not None and config.pp is not None  # the TensorRT path's configs set them
    build += ["--workers", str(config.tp * config.pp)]
    calibrating = fp8 or config.kv_cache_dtype == "fp8"
    return [Step("calibration" if calibrating else "checkpoint conversion", quantize), Step("engine build", build)]


def _modelopt_step(q: Quantization, out: Path) -> Step:
    c = q.calibration
    return Step("quantization", [sys.executable, "-m", QUANTIZER, "--source", q.source, "--output", str(out),
                                 "--recipe", *q.recipe, "--calibration", str(c.path()), "--samples", str(c.samples),
                                 "--seq-len", str(c.seq_len)])


def _bench_build(config: BuildConfig, staging: Path, tools: Toolchain) -> Step:
    if config.precision != "fp8" and config.kv_cache_dtype == "fp8":
        raise TrtbenchError("trtllm-bench build gives an FP8 KV cache only to FP8 weights; "
                            "use build.tool: trtllm-build for FP16/BF16 weights with an FP8 KV cache")
    args = [tools.trtllm_bench or "trtllm-bench", "--model", config.model]
    if config.model_path:
        args += ["--model_path", config.model_path]
    args += ["--workspace", str(staging / "workspace"), "build"]
    if config.precision == "fp8":
        args += ["--quantization", "FP8"]
    world = (config.tp or 1) * (config.pp or 1)
    if world > 8:
        raise TrtbenchError(f"trtllm-bench build refuses TP x PP above 8 (here {world}); use build.tool: trtllm-build")
    version = TrtllmVersion.parse(config.trtllm_version or NEWEST_TEXT)
    args += ["--tp_size", str(config.tp), "--pp_size", str(config.pp), version.build_seq_len_flag,
             str(config.max_seq_len), "--max_batch_size", str(config.max_batch_size), "--max_num_tokens",
             str(config.max_num_tokens)]
    return Step("engine build", args)


def bench_engine_location(config: BuildConfig, staging: Path) -> Path:
    """Where `trtllm-bench build` leaves the engine: <workspace>/<model name>/tp_<tp>_pp_<pp>."""
    return staging / "workspace" / config.model / f"tp_{config.tp}_pp_{config.pp}"
