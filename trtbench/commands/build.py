"""`trtbench build [SPEC]`: build (or reuse) the engine a sweep needs; `make engine` calls it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from trtbench.backends.trtllm.backend import TrtllmBackend
from trtbench.backends.trtllm.version import known_version
from trtbench.build.cache import EngineCache
from trtbench.build.engine import engine_dir, ensure_engine
from trtbench.build.plan import BuildConfig, build_config
from trtbench.build.steps import Toolchain, build_steps
from trtbench.commands.utils import console
from trtbench.errors import SpecError, TrtbenchError
from trtbench.failures import Failure
from trtbench.spec import SweepSpec, load_spec


def spec_with_overrides(spec_path: Path | None, overrides: dict[str, Any]) -> SweepSpec:
    """The spec (or, without one, a one-point spec of the given sequence length) with CLI overrides."""
    if spec_path is not None:
        data = load_spec(spec_path).canonical()
    else:
        if not overrides.get("model"):
            raise SpecError("give a sweep spec or --model")
        seq = overrides.pop("max_seq_len", None) or 8192
        data = {"name": "build", "model": {"name": overrides["model"]}, "gpu": "h100-sxm",
                "precision": overrides.get("precision") or "fp8", "kv_cache_dtype": "fp8",
                "grid": {"isl": [seq // 2], "osl": [seq - seq // 2]}, "requests": {"default": {"fixed": 1}}}
    if overrides.get("model"):
        data["model"] = {**data["model"], "name": overrides["model"], "preset": None, "config": None}
    for key in ("precision", "kv_cache_dtype", "tp"):
        if overrides.get(key) is not None:
            data[key] = overrides[key]
    for key in ("max_seq_len", "max_batch_size", "max_num_tokens", "engines_dir", "tool"):
        if overrides.get(key) is not None:
            data["build"][key] = overrides[key]
    try:
        return SweepSpec.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()
        raise SpecError(f"invalid build option: {' '.join(first[1:3]).strip()}") from None


def print_build_commands(config: BuildConfig, cache: EngineCache, spec: SweepSpec) -> None:
    if config.path == "pytorch":
        print(f"# {config.name}: PyTorch backend, no engine to compile; {cache.path(config)} gets the "
              f"checkpoint name and extra_llm_api_options")
        return
    print(f"# {config.name}: commands run in a staging copy of {cache.path(config)}")
    for step in build_steps(config, cache.path(config), Toolchain.find(spec)):
        print(shlex.join(step.args))


def build(spec_path: Path | None, overrides: dict[str, Any], dry_run: bool) -> None:
    spec = spec_with_overrides(spec_path, overrides)
    config = build_config(spec, known_version(spec.trtllm.version, spec.trtllm.executable))
    cache = EngineCache(Path(spec.build.engines_dir))
    if dry_run:
        print_build_commands(config, cache, spec)
        return
    manifest = ensure_engine(spec, config, cache, console)
    if manifest.status != "ok":
        raise typer.Exit(1)


def attach_engine(spec: SweepSpec, backend: TrtllmBackend, *, allow_build: bool, dry_run: bool) -> None:
    """Give a TensorRT-path sweep its engine: the cached one, or one built now (its failure, if the
    build fails, becomes every point's outcome)."""
    config = build_config(spec, backend.version)
    cache = EngineCache(Path(spec.build.engines_dir))
    manifest = cache.reusable(config)
    if dry_run:
        if manifest is None:
            print_build_commands(config, cache, spec)
        backend.attach_engine(engine_dir(cache, config))
        return
    if manifest is None:
        if not allow_build:
            raise TrtbenchError(f"no engine for this sweep in {cache.path(config)}; run `trtbench build "
                                f"SPEC` (or `make engine`), or drop --no-build")
        manifest = ensure_engine(spec, config, cache, console)
    failure = Failure(**manifest.failure) if manifest.failure else None
    backend.attach_engine(engine_dir(cache, config), failure)
