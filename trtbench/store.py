"""A run directory: the resolved spec, run metadata and provenance, and `results.jsonl`.

Writers never touch `results.jsonl` directly: each finished point is submitted as its own file in
`pending/` (written atomically, so any number of threads, processes or cluster jobs can submit), and
the one process holding the run's lock merges them: append and fsync the record, then remove the
file. A record carries a unique `attempt`, so a merge interrupted between the two steps appends
nothing twice. A torn last line (killed mid-append) is cut off on the next open; it never held a
complete record. A damaged line elsewhere (a disk error, a hand edit) is skipped with a warning by
readers and set aside in `results.corrupt.jsonl` by the next sweep, so one bad line never locks a run.
The lock is an flock on `.lock`, released by the kernel even on kill -9.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from trtbench.errors import RunBusy, StoreError
from trtbench.files import atomic_write
from trtbench.records import SCHEMA_VERSION, Record, RecordError, Status, parse_record
from trtbench.spec import SweepSpec, load_spec

RESULTS = "results.jsonl"
CORRUPT = "results.corrupt.jsonl"
RUN_META = "run.json"
SPEC = "spec.yaml"
LOCK = ".lock"
PENDING = "pending"
REJECTED = "rejected"


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class RunStore:
    def __init__(self, path: Path, warn: Callable[[str], None] = _stderr) -> None:
        self.path = path
        self.warn = warn  # told of damaged lines, once each
        self._warned: set[int] = set()

    @classmethod
    def open(cls, path: Path, warn: Callable[[str], None] = _stderr) -> RunStore:
        """An existing run directory, for reading."""
        if not (path / RUN_META).is_file():
            what = "does not exist" if not path.exists() else "is not a trtbench run (no run.json)"
            raise StoreError(f"run directory {path} {what}")
        return cls(path, warn)

    @classmethod
    def create(cls, path: Path, warn: Callable[[str], None] = _stderr) -> RunStore:
        """A run directory to write: new, empty, or an earlier trtbench run to resume."""
        try:
            if path.exists():
                if not path.is_dir():
                    raise StoreError(f"output directory {path} exists and is not a directory")
                ours = (path / RUN_META).is_file() or (path / LOCK).is_file()  # a lock: killed before run.json
                if any(path.iterdir()) and not ours:
                    raise StoreError(f"output directory {path} exists and is not a trtbench run (no run.json); "
                                     f"choose another --out")
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a name too long, no permission, a read-only disk
            raise StoreError(f"cannot use output directory {path}: {exc.strerror or exc}") from None
        return cls(path, warn)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def pending_dir(self) -> Path:
        return self.path / PENDING

    @contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise RunBusy(f"run directory {self.path} is in use by another sweep (pid {holder})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def write_spec(self, spec: SweepSpec) -> None:
        """The resolved spec the run's points come from."""
        atomic_write(self.path / SPEC, yaml.safe_dump(spec.canonical(), sort_keys=False))

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write(self.path / RUN_META, json.dumps({"schema_version": SCHEMA_VERSION, **meta}, indent=2) + "\n")

    def meta(self) -> dict[str, Any]:
        try:
            meta = json.loads((self.path / RUN_META).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {self.path / RUN_META}: {exc}") from None
        if not isinstance(meta, dict):
            raise StoreError(f"{self.path / RUN_META} is not a JSON object")
        return meta

    def spec(self) -> SweepSpec:
        return load_spec(self.path / SPEC)

    def repair(self) -> None:
        """Cut a torn last line left by a kill during a write; set damaged lines aside in results.corrupt.jsonl
        (appended, byte for byte) and keep every other line as it was. Only the lock holder calls this."""
        path = self.results_path
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())
        lines = self._lines()
        bad = {number for number, _, parsed in self._parsed(lines) if isinstance(parsed, RecordError)}
        if not bad:
            return
        side = self.path / CORRUPT
        with side.open("ab") as fh:
            fh.write(b"".join(lines[n - 1] + b"\n" for n in sorted(bad)))
            fh.flush()
            os.fsync(fh.fileno())
        atomic_write(path, b"".join(line + b"\n" for n, line in enumerate(lines, 1) if n not in bad))
        self.warn(f"{path}: line(s) {', '.join(map(str, sorted(bad)))} held no trtbench record; set aside in {side}")
        self._warned.update(range(1, len(lines) + 1))  # numbering changed; what is left is sound

    def _lines(self) -> list[bytes]:
        """results.jsonl's complete lines: what follows the last newline is empty, or a torn write that
        never was a record."""
        path = self.results_path
        return path.read_bytes().split(b"\n")[:-1] if path.exists() else []

    @staticmethod
    def _parsed(lines: list[bytes]) -> Iterator[tuple[int, bytes, Record | RecordError]]:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield number, line, parse_record(line)
                except RecordError as exc:
                    yield number, line, exc

    def all_records(self) -> list[Record]:
        """Every complete record in file order; a damaged line is skipped with a warning (`repair` sets it
        aside)."""
        records = []
        for number, _, parsed in self._parsed(self._lines()):
            if isinstance(parsed, Record):
                records.append(parsed)
            elif number not in self._warned:
                self._warned.add(number)
                self.warn(f"{self.results_path}:{number}: not a trtbench record ({parsed}); skipped (the next "
                          f"sweep sets it aside in {CORRUPT})")
        return records

    def records(self) -> list[Record]:
        """The latest record of each point id (a retried point's new record replaces its failure), in the
        order the points were first recorded; the earlier ones stay in results.jsonl."""
        seen: dict[str, Record] = {}
        for record in self.all_records():
            seen[record.point_id] = record
        return list(seen.values())

    def done_ids(self, ok_only: bool = False) -> set[str]:
        """The point ids a resume need not run: every recorded one, or (`ok_only`, for --retry-failed) those whose
        latest record succeeded."""
        return {r.point_id for r in self.records() if not ok_only or r.status is Status.OK}

    def submit(self, record: Record) -> Path:
        """Hand in a finished point from any writer; `merge` moves it into results.jsonl."""
        path = self.pending_dir / f"{record.point_id}.{record.attempt}.json"
        atomic_write(path, record.model_dump_json() + "\n")
        return path

    def merge(self) -> list[Record]:
        """Fold submitted records into results.jsonl, each exactly once; only the lock holder calls this.
        A pending file that is not a record is moved to pending/rejected/ and named in the error."""
        files = sorted(self.pending_dir.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        if not files:
            return []
        attempts = {r.attempt for r in self.all_records()}
        merged = []
        for file in files:
            try:
                record = parse_record(file.read_bytes())
            except RecordError as exc:
                rejected = self.pending_dir / REJECTED / file.name
                rejected.parent.mkdir(exist_ok=True)
                os.replace(file, rejected)
                raise StoreError(f"{file.name} in {self.pending_dir} is not a trtbench record ({exc}); moved to "
                                 f"{rejected}") from None
            if record.attempt not in attempts:
                self._append(record)
                attempts.add(record.attempt)
                merged.append(record)
            file.unlink()
        return merged

    def _append(self, record: Record) -> None:
        with self.results_path.open("a", encoding="utf-8") as fh:
            fh.write(record.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def rewrite(self, records: list[Record], keep_as: str) -> None:
        """Replace results.jsonl with `records` (an upgrade), keeping the old file as `keep_as`."""
        old = self.results_path.read_bytes() if self.results_path.exists() else b""
        atomic_write(self.path / keep_as, old)
        atomic_write(self.results_path, "".join(r.model_dump_json() + "\n" for r in records))


def next_free_dir(path: Path) -> Path:
    """For --fresh: `runs/x`, else `runs/x-2`, `runs/x-3`, ...; the old run stays untouched."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}-{n}")).exists():
        n += 1
    return candidate
