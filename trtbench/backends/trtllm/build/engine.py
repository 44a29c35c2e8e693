"""Build an engine once per configuration: reuse a complete one, else run the steps and record the outcome.

On the PyTorch path the "engine" is the checkpoint trtllm-bench loads: for FP8 or NVFP4 weights a ModelOpt export
built here (`model/`), for 16-bit weights the source checkpoint itself (only the manifest is written)."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path

from trtbench import __version__
from trtbench.backends.trtllm.build.cache import (
    MANIFEST,
    EngineCache,
    Manifest,
    checkpoint_complete,
    engine_complete,
    size_on_disk,
)
from trtbench.backends.trtllm.build.plan import BuildConfig
from trtbench.backends.trtllm.build.quantize import require_quantizer, warnings_for
from trtbench.backends.trtllm.build.steps import (
    CHECKPOINT_SUBDIR,
    ENGINE_SUBDIR,
    MODEL_SUBDIR,
    Step,
    Toolchain,
    bench_engine_location,
    build_steps,
)
from trtbench.backends.trtllm.dataset import ensure_dataset
from trtbench.backends.trtllm.failures import Failure, classify
from trtbench.backends.trtllm.parse import scan_run
from trtbench.backends.trtllm.process import run_logged
from trtbench.errors import TrtbenchError
from trtbench.files import Dir, keeping
from trtbench.nvml import visible_gpus
from trtbench.records import Status, now_iso
from trtbench.spec import SweepSpec

BUILD_LOG = "build.log"  # Manifest.log


def check_can_build(config: BuildConfig, tools: Toolchain) -> str:
    """The GPU's name, or a one-line error saying what is missing and what works without it."""
    missing = tools.missing(config)
    gpus = visible_gpus()
    if not gpus:
        missing.append("a GPU visible to NVML")
    if missing:
        raise TrtbenchError(f"cannot build an engine here, missing: {', '.join(missing)}; `--dry-run` prints the build "
                            f"commands, and `--backend sim` sweeps without an engine")
    return gpus[0].name


def ensure_engine(spec: SweepSpec, config: BuildConfig, cache: EngineCache, say: Callable[[str], None]) -> Manifest:
    """The manifest of a reusable engine for `config`, building it first if needed. A failed build is
    recorded (manifest status `failed`) and returned, not raised: the sweep turns it into failed points."""
    found = cache.reusable(config)
    if found is not None:
        say(f"engine {config.name}: already built ({found.built_at}), reusing {cache.path(config)}")
        return found
    tools = Toolchain.find(spec)
    gpu = check_can_build(config, tools) if config.path == "tensorrt" else None
    q = config.quantization
    if config.unfetched:
        raise RuntimeError(f"{config.model} was planned without fetching it; plan_engines(..., fetch=True) first")
    if q is not None:
        require_quantizer(q)
        synthetic = q.calibration.synthetic()
        if synthetic is not None:
            ensure_dataset(synthetic)
    with keeping(f"no engine is kept for {config.name}; the next build (once the disk has room) starts over"):
        return _build(spec, config, cache, tools, gpu, say)


def _build(spec: SweepSpec, config: BuildConfig, cache: EngineCache, tools: Toolchain, gpu: str | None,
           say: Callable[[str], None]) -> Manifest:
    """Run the steps in a staging directory and move the outcome into place (what `keeping` guards)."""
    q = config.quantization
    stage = cache.staging(config)
    staging = stage.path
    say(f"engine {config.name}: building in {staging}")
    t0 = time.monotonic()
    records: list[dict[str, object]] = []
    failure: Failure | None = None
    for step in build_steps(config, staging, tools):
        say(f"  {step.name}: {' '.join(step.args[:3] if step.args[1:2] == ['-m'] else step.args[:2])} ...")
        failure = _run_step(step, stage, spec.build.timeout_s, records)
        if failure is not None:
            break
    engine_subdir: str | None = None
    if failure is None and config.path == "tensorrt":
        engine_subdir, failure = _collect_engine(config, stage)
    if failure is None and q is not None and not checkpoint_complete(staging / MODEL_SUBDIR):
        failure = Failure(Status.ERROR, "quantization", f"ModelOpt exited 0 but wrote no checkpoint in "
                                                        f"{staging / MODEL_SUBDIR}")
    stage.rmtree(CHECKPOINT_SUBDIR)  # the engine is what is kept
    model_path = model_path_for(cache, config)
    manifest = Manifest(
        name=config.name, status="failed" if failure else "ok", config=config, config_hash=config.hash(),
        trtbench=__version__, trtllm_version=config.trtllm_version, gpu=gpu,
        built_at=now_iso(), build_s=time.monotonic() - t0,
        size_bytes=size_on_disk(staging), engine_subdir=engine_subdir,
        failure=failure.as_dict() if failure else None,
        steps=records, model_subdir=MODEL_SUBDIR if q is not None else None,
        model_path=str(model_path) if model_path else None,
        warnings=warnings_for(q, config.trtllm_version) if q is not None else [],
    )
    for warning in manifest.warnings:
        say(f"engine {config.name}: warning: {warning}")
    stage.write(MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    final = cache.commit(stage, config)
    verdict = f"FAILED: {failure.cause}" if failure else f"built in {manifest.build_s:,.0f} s"
    say(f"engine {config.name}: {verdict} -> {final}")
    return manifest


def _run_step(step: Step, stage: Dir, timeout_s: float, records: list[dict[str, object]]) -> Failure | None:
    stage.append(BUILD_LOG, f"\n$ {' '.join(step.args)}\n".encode())
    log = stage.path / BUILD_LOG
    start = log.stat().st_size  # where this step's output begins: the steps before it are in the same log
    result = run_logged(step.args, log, timeout_s)
    records.append({"name": step.name, "command": step.args, "returncode": result.returncode,
                    "seconds": round(result.duration_s, 3)})
    failure = classify(result.returncode, result.timed_out, scan_run(result, log, start), has_report=True,
                       timeout_s=timeout_s)
    if failure is not None and failure.status == "error":  # name the step that failed (e.g. calibration)
        failure = Failure(Status.ERROR, f"{step.name}, {failure.where}", failure.line)
    return failure


def _collect_engine(config: BuildConfig, stage: Dir) -> tuple[str | None, Failure | None]:
    engine = stage.path / ENGINE_SUBDIR
    if config.tool == "trtllm-bench":
        built = bench_engine_location(config, stage.path)
        if built.is_dir():
            stage.move(str(built.relative_to(stage.path)), stage, ENGINE_SUBDIR)
        stage.rmtree("workspace")
    if not engine_complete(engine):
        return None, Failure(Status.ERROR, "engine build", f"the build exited 0 but wrote no engine in {engine}")
    return ENGINE_SUBDIR, None


def engine_dir(cache: EngineCache, config: BuildConfig) -> Path:
    """Where trtllm-bench finds the engine of `config` (built or not yet)."""
    return (cache.path(config) / ENGINE_SUBDIR).resolve()


def model_path_for(cache: EngineCache, config: BuildConfig) -> Path | None:
    """PyTorch path: the directory `trtllm-bench --model_path` loads for `config` (built or not yet): the
    checkpoint trtbench quantized, else a local pre-quantized checkpoint, else model.path. None where
    trtllm-bench loads a hub model by name, and on the TensorRT path (engine_dir)."""
    if config.path != "pytorch":
        return None
    if config.quantization is not None or config.unfetched:  # unfetched: where a dry run's planned build goes
        return (cache.path(config) / MODEL_SUBDIR).resolve()
    if config.checkpoint:
        return Path(config.checkpoint).resolve() if Path(config.checkpoint).is_dir() else None
    return Path(config.model_path).resolve() if config.model_path else None


def build_commands(spec: SweepSpec, config: BuildConfig, cache: EngineCache) -> list[str]:
    """What a dry run shows for `config`: a comment line, then each build step's command."""
    if config.unfetched:
        return [f"# {config.name}: fetch {config.model} from the Hugging Face hub, then quantize it to "
                f"{config.precision.upper()} with ModelOpt into {cache.path(config)}"]
    steps = build_steps(config, cache.path(config), Toolchain.find(spec))
    if not steps:
        loads = model_path_for(cache, config) or config.checkpoint or config.model
        return [f"# {config.name}: PyTorch backend, nothing to build: trtllm-bench loads {loads}"]
    lines = [f"# {config.name}: commands run in a staging copy of {cache.path(config)}"]
    return lines + [shlex.join(step.args) for step in steps]
