"""The engine cache: `engines/<readable name>/` with `manifest.json`, built in a staging directory and
renamed into place only when complete, so a killed build never leaves anything reusable."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from trtbench.backends.trtllm.build.plan import BuildConfig
from trtbench.errors import StoreError
from trtbench.files import Dir, read_file, refusal

MANIFEST = "manifest.json"
STAGING = ".staging"
STAGING_MARK = ".trtbench-staging"  # in a directory trtbench builds in, until its manifest is written
MAX_MANIFEST = 16 << 20


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
    """Engines under `root`: its .staging area and each engine directory are reached through the root's
    descriptor, never through a link, and only what trtbench made (a marked staging directory, an engine
    directory with its manifest) is ever replaced or removed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dir: Dir | None = None

    def _root(self) -> Dir:
        if self._dir is None:
            self._dir = Dir.open(self.root, create=True)
        return self._dir

    def path(self, config: BuildConfig) -> Path:
        return self.root / config.name

    def manifest_path(self, config: BuildConfig) -> Path:
        return self.path(config) / MANIFEST

    def manifest(self, config: BuildConfig) -> Manifest | None:
        try:
            manifest = Manifest.model_validate_json(read_file(self.manifest_path(config), MAX_MANIFEST) or b"")
        except ValidationError:
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

    def staging(self, config: BuildConfig) -> Dir:
        """A new directory to build `config` in, marked as trtbench's; refused before anything is built when
        the engine it would replace is not trtbench's."""
        self._claim(config)
        area = self._root().sub(STAGING)
        self._sweep_stale(area)
        name = f"{config.name}.{os.getpid()}"
        if _marked(area, name):  # this process's earlier attempt
            area.rmtree(name)
        if area.mode(name) is not None:
            raise StoreError(f"{area.path / name} exists and is not a staging directory trtbench made; move it away")
        stage = area.sub(name)
        stage.write(STAGING_MARK, "")
        return stage

    def commit(self, stage: Dir, config: BuildConfig) -> Path:
        """Move a finished (or finished-failing) build into place, replacing an older attempt."""
        root, area = self._root(), self._root().sub(STAGING, create=False)
        if root.mode(config.name) is not None:
            self._claim(config)
            old = f"replaced.{config.name}.{os.getpid()}"
            root.move(config.name, area, old)
            area.rmtree(old)
        stage.unlink(STAGING_MARK)  # the manifest marks it from here on
        area.move(stage.path.name, root, config.name)
        return self.path(config)

    def _claim(self, config: BuildConfig) -> None:
        """Refuse to replace an engine directory trtbench did not build (a link, a file, no manifest)."""
        root = self._root()
        mode = root.mode(config.name)
        if mode is None:
            return
        if not stat.S_ISDIR(mode):
            raise refusal(self.path(config), mode, "an engine directory")
        if root.sub(config.name, create=False).mode(MANIFEST) is None:
            raise StoreError(f"{self.path(config)} exists and holds no {MANIFEST}: not an engine trtbench built; "
                             f"move it away (trtbench replaces only its own builds)")

    @staticmethod
    def _sweep_stale(area: Dir) -> None:
        """Remove the staging directories of builds whose process is gone (killed mid-build)."""
        for name in area.names():
            pid = name.rsplit(".", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)) and _marked(area, name):
                area.rmtree(name)


def _marked(area: Dir, name: str) -> bool:
    """`name` is a directory trtbench made in .staging: a real directory holding the mark, or (a build killed
    while being moved into place or replaced) a manifest."""
    mode = area.mode(name)
    if mode is None or not stat.S_ISDIR(mode):
        return False
    inner = area.sub(name, create=False)
    return inner.mode(STAGING_MARK) is not None or inner.mode(MANIFEST) is not None


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
