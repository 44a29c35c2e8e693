"""A run directory: the resolved spec, run metadata and provenance, and `results.jsonl`.

Each record is one line, flushed and fsynced before the next point starts, so a kill -9 loses at
most the point in flight. A torn last line (killed mid-write) is cut off on the next open; it never
held a complete record. One sweep at a time: an flock on `.lock`, released by the kernel even on
kill -9.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trtbench.errors import StoreError
from trtbench.files import atomic_write
from trtbench.records import Record
from trtbench.spec import SweepSpec, load_spec

RESULTS = "results.jsonl"
RUN_META = "run.json"
SPEC = "spec.yaml"
LOCK = ".lock"


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, path: Path) -> RunStore:
        """An existing run directory, for reading."""
        if not (path / RUN_META).is_file():
            what = "does not exist" if not path.exists() else "is not a trtbench run (no run.json)"
            raise StoreError(f"run directory {path} {what}")
        return cls(path)

    @classmethod
    def create(cls, path: Path) -> RunStore:
        """A run directory to write: new, empty, or an earlier trtbench run to resume."""
        if path.exists():
            if not path.is_dir():
                raise StoreError(f"output directory {path} exists and is not a directory")
            ours = (path / RUN_META).is_file() or (path / LOCK).is_file()  # a lock: killed before run.json
            if any(path.iterdir()) and not ours:
                raise StoreError(f"output directory {path} exists and is not a trtbench run (no run.json); "
                                 f"choose another --out")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create output directory {path}: {exc.strerror}") from None
        return cls(path)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise StoreError(f"run directory {self.path} is in use by another sweep (pid {holder})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def write_meta(self, spec: SweepSpec, meta: dict[str, Any]) -> None:
        atomic_write(self.path / SPEC, yaml.safe_dump(spec.canonical(), sort_keys=False))
        atomic_write(self.path / RUN_META, json.dumps(meta, indent=2) + "\n")

    def meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / RUN_META).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {self.path / RUN_META}: {exc}") from None

    def spec(self) -> SweepSpec:
        return load_spec(self.path / SPEC)

    def repair(self) -> None:
        """Cut a torn last line left by a kill during a write."""
        path = self.results_path
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def records(self) -> list[Record]:
        """Every complete record, first one per point id (a torn last line is ignored)."""
        path = self.results_path
        if not path.exists():
            return []
        seen: dict[str, Record] = {}
        # What follows the last newline is empty, or a torn write that never was a record.
        for number, line in enumerate(path.read_bytes().split(b"\n")[:-1], 1):
            if not line.strip():
                continue
            try:
                record = Record.model_validate_json(line)
            except ValidationError as exc:
                raise StoreError(f"{path}:{number}: not a trtbench record ({exc.error_count()} errors); "
                                 f"the file was edited or belongs to another version") from None
            seen.setdefault(record.point_id, record)
        return list(seen.values())

    def append(self, record: Record) -> None:
        line = record.model_dump_json() + "\n"
        with self.results_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def next_free_dir(path: Path) -> Path:
    """For --fresh: `runs/x`, else `runs/x-2`, `runs/x-3`, ...; the old run stays untouched."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}-{n}")).exists():
        n += 1
    return candidate
