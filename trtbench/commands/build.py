"""`trtbench build [SPEC]`: build (or reuse) the engine a sweep needs; `make engine` calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.engine import build_commands, ensure_engine
from trtbench.backends.trtllm.build.plan import plan_engines
from trtbench.backends.trtllm.version import known_version
from trtbench.commands.utils import console, interruptible
from trtbench.deployment import refuse_unsupported
from trtbench.errors import SpecError
from trtbench.grid import IdentityRule, expand
from trtbench.nvml import visible_gpus
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
                "precision": overrides.get("precision") or "fp8",
                "grid": {"isl": [seq // 2], "osl": [seq - seq // 2]}, "requests": {"default": {"fixed": 1}}}
    if overrides.get("model"):
        data["model"] = {**data["model"], "name": overrides["model"], "preset": None, "config": None}
    for key in ("precision", "kv_cache_dtype", "tp"):
        if overrides.get(key) is not None:
            data[key] = overrides[key]
            data["grid"].pop(key, None)  # an option given on the command line replaces a swept axis
    for key in ("max_seq_len", "max_batch_size", "max_num_tokens", "engines_dir", "tool"):
        if overrides.get(key) is not None:
            data.setdefault("build", {})[key] = overrides[key]
    try:
        return SweepSpec.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).splitlines()
        raise SpecError(f"invalid build option: {' '.join(first[1:3]).strip()}") from None


def build(spec_path: Path | None, overrides: dict[str, Any], dry_run: bool, max_points: int | None = None) -> None:
    """One engine per build configuration of the spec's grid (its TP / precision axes)."""
    spec = spec_with_overrides(spec_path, overrides)
    points = expand(spec, IdentityRule(()), max_points)
    refuse_unsupported(spec, (p.extra for p in points), [g.name for g in visible_gpus()] if spec.gpu == "auto" else [])
    version = known_version(spec.trtllm.version, spec.trtllm.executable)
    cache = EngineCache(Path(spec.build.engines_dir))
    plans = plan_engines(spec, version, points, fetch=not dry_run)
    failed = False
    with interruptible("engines finished so far are cached; run the same command again to build the rest"):
        for plan in plans:
            if plan.prequantized:
                console.print(f"engine {plan.config.name}: {plan.prequantized}")
            if dry_run:
                for line in build_commands(spec, plan.config, cache):
                    print(line)
                continue
            failed |= ensure_engine(spec, plan.config, cache, console.print).status != "ok"
    if failed:
        raise typer.Exit(1)
