"""The engine cache: `engines/<readable name>/` with `manifest.json`, built in a staging directory and
renamed into place only when complete, so a killed build never leaves anything reusable."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from trtbench.backends.trtllm.build.plan import BuildConfig

MANIFEST = "manifest.json"
STAGING = ".staging"


class Manifest(BaseModel):
    name: str
    status: Literal["ok", "failed"]
    config: BuildConfig
    config_hash: str
    trtbench: str
    trtllm_version: str | None
    gpu: str | None
    built_at: str
    build_s: float
    size_bytes: int
    engine_subdir: str | None  # where the engine files are, relative to the engine's directory
    failure: dict[str, str] | None = None
    steps: list[dict[str, Any]] = []
    log: str = "build.log"
    model_subdir: str | None = None  # PyTorch path: where the quantized checkpoint is, relative likewise
    model_path: str | None = None  # PyTorch path: what trtllm-bench --model_path loads (engine.model_path_for)
    warnings: list[str] = []


class EngineCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, config: BuildConfig) -> Path:
        return self.root / config.name

    def manifest_path(self, config: BuildConfig) -> Path:
        return self.path(config) / MANIFEST

    def manifest(self, config: BuildConfig) -> Manifest | None:
        try:
            manifest = Manifest.model_validate_json((self.path(config) / MANIFEST).read_text())
        except (OSError, ValidationError):
            return None
        return manifest if manifest.config_hash == config.hash() else None

    def reusable(self, config: BuildConfig) -> Manifest | None:
        """A complete engine for exactly this configuration, or None."""
        manifest = self.manifest(config)
        if manifest is None or manifest.status != "ok":
            return None
        if manifest.engine_subdir is not None and not engine_complete(self.path(config) / manifest.engine_subdir):
            return None
        if manifest.model_subdir is not None and not checkpoint_complete(self.path(config) / manifest.model_subdir):
            return None
        return manifest

    def staging(self, config: BuildConfig) -> Path:
        self._sweep_stale()
        path = self.root / STAGING / f"{config.name}.{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def commit(self, staging: Path, config: BuildConfig) -> Path:
        """Move a finished (or finished-failing) build into place, replacing an older attempt."""
        final = self.path(config)
        if final.exists():
            old = self.root / STAGING / f"replaced.{config.name}.{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, final)
        return final

    def _sweep_stale(self) -> None:
        """Remove staging directories of builds whose process is gone (killed mid-build)."""
        for path in (self.root / STAGING).glob("*.*"):
            pid = path.name.rsplit(".", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


def engine_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("rank*.engine"))


def checkpoint_complete(path: Path) -> bool:
    """The files TensorRT-LLM's PyTorch loader reads from a ModelOpt export."""
    return (path / "config.json").is_file() and (path / "hf_quant_config.json").is_file() \
        and any(path.glob("*.safetensors"))


def size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
