"""Build an engine once per configuration: reuse a complete one, else run the steps and record the outcome."""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import yaml

from trtbench import __version__
from trtbench.backends.trtllm.build.cache import EngineCache, Manifest, size_on_disk
from trtbench.backends.trtllm.build.plan import BuildConfig
from trtbench.backends.trtllm.build.steps import (
    CHECKPOINT_SUBDIR,
    ENGINE_SUBDIR,
    Step,
    Toolchain,
    bench_engine_location,
    build_steps,
)
from trtbench.backends.trtllm.command import llm_api_options
from trtbench.backends.trtllm.failures import Failure, classify
from trtbench.backends.trtllm.parse import scan_run
from trtbench.backends.trtllm.process import run_logged
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.errors import TrtbenchError
from trtbench.nvml import visible_gpus
from trtbench.records import Status
from trtbench.spec import SweepSpec


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
    staging = cache.staging(config)
    say(f"engine {config.name}: building in {staging}")
    t0 = time.monotonic()
    log = staging / "build.log"
    records: list[dict[str, object]] = []
    failure: Failure | None = None
    for step in build_steps(config, staging, tools):
        say(f"  {step.name}: {' '.join(step.args[:2])} ...")
        failure = _run_step(step, log, spec.build.timeout_s, records)
        if failure is not None:
            break
    engine_subdir: str | None = None
    if failure is None and config.path == "tensorrt":
        engine_subdir, failure = _collect_engine(config, staging)
    if failure is None and config.path == "pytorch":
        _write_pytorch_files(spec, config, staging)
    shutil.rmtree(staging / CHECKPOINT_SUBDIR, ignore_errors=True)  # the engine is what is kept
    manifest = Manifest(
        name=config.name, status="failed" if failure else "ok", config=config, config_hash=config.hash(),
        trtbench=__version__, trtllm_version=config.trtllm_version, gpu=gpu,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), build_s=time.monotonic() - t0,
        size_bytes=size_on_disk(staging), engine_subdir=engine_subdir,
        failure=failure.as_dict() if failure else None,
        steps=records,
    )
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    final = cache.commit(staging, config)
    verdict = f"FAILED: {failure.cause}" if failure else f"built in {manifest.build_s:,.0f} s"
    say(f"engine {config.name}: {verdict} -> {final}")
    return manifest


def _run_step(step: Step, log: Path, timeout_s: float, records: list[dict[str, object]]) -> Failure | None:
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(step.args)}\n")
    start = log.stat().st_size  # where this step's output begins: the steps before it are in the same log
    result = run_logged(step.args, log, timeout_s)
    records.append({"name": step.name, "command": step.args, "returncode": result.returncode,
                    "seconds": round(result.duration_s, 3)})
    failure = classify(result.returncode, result.timed_out, scan_run(result, log, start), has_report=True,
                       timeout_s=timeout_s)
    if failure is not None and failure.status == "error":  # name the step that failed (e.g. calibration)
        failure = Failure(Status.ERROR, f"{step.name}, {failure.where}", failure.line)
    return failure


def _collect_engine(config: BuildConfig, staging: Path) -> tuple[str | None, Failure | None]:
    engine = staging / ENGINE_SUBDIR
    if config.tool == "trtllm-bench":
        built = bench_engine_location(config, staging)
        if built.is_dir():
            built.rename(engine)
        shutil.rmtree(staging / "workspace", ignore_errors=True)
    if not (engine / "config.json").is_file() or not list(engine.glob("rank*.engine")):
        return None, Failure(Status.ERROR, "engine build", f"the build exited 0 but wrote no engine in {engine}")
    return ENGINE_SUBDIR, None


def _write_pytorch_files(spec: SweepSpec, config: BuildConfig, staging: Path) -> None:
    """The PyTorch path's "engine": the checkpoint to load and the extra_llm_api_options it runs with."""
    version = TrtllmVersion.parse(config.trtllm_version) if config.trtllm_version else TrtllmVersion(1, 1, 0, "1.1.0")
    options = llm_api_options(spec, version, "pytorch") or {}
    (staging / "llm_api_options.yaml").write_text(yaml.safe_dump(options, sort_keys=False))
    (staging / "checkpoint.txt").write_text((config.checkpoint or config.model_path or config.model) + "\n")


def engine_dir(cache: EngineCache, config: BuildConfig) -> Path:
    """Where trtllm-bench finds the engine of `config` (built or not yet)."""
    return (cache.path(config) / ENGINE_SUBDIR).resolve()


def build_commands(spec: SweepSpec, config: BuildConfig, cache: EngineCache) -> list[str]:
    """What a dry run shows for `config`: a comment line, then each build step's command."""
    if config.path == "pytorch":
        return [f"# {config.name}: PyTorch backend, no engine to compile; {cache.path(config)} gets the "
                f"checkpoint name and extra_llm_api_options"]
    lines = [f"# {config.name}: commands run in a staging copy of {cache.path(config)}"]
    return lines + [shlex.join(step.args) for step in build_steps(config, cache.path(config), Toolchain.find(spec))]
