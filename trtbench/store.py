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

import contextlib
import json
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from trtbench.errors import DiskError, RunBusy, StoreError
from trtbench.files import Dir, keeping, refusal
from trtbench.records import SCHEMA_VERSION, Record, RecordError, Status, now_iso, parse_record
from trtbench.spec import SweepSpec, load_spec

RESULTS = "results.jsonl"
CORRUPT = "results.corrupt.jsonl"
RUN_META = "run.json"
SPEC = "spec.yaml"
LOCK = ".lock"
REPORT_LOCK = ".report.lock"
PENDING = "pending"
REJECTED = "rejected"
# What trtbench keeps in a run directory, by kind: a link, a special file, or the other kind there is refused.
FILES = frozenset({RESULTS, CORRUPT, RUN_META, SPEC, LOCK, REPORT_LOCK, "report.md", "results.csv", "results.parquet",
                   "results.v0.jsonl", "accuracy.jsonl", "sla.md", "sla.csv", "report.html", "sla.html"})
DIRS = frozenset({PENDING, "logs", "slurm"})
MAX_META = 64 << 20  # run.json lists every point id
MAX_RECORD = 16 << 20  # one pending record
REPORT_WAIT_S = 600.0  # a report of a large run, plots included, takes seconds to a minute


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class RunStore:
    def __init__(self, path: Path, warn: Callable[[str], None] = _stderr) -> None:
        self.path = path
        self.warn = warn  # told of damaged lines, once each
        self._warned: set[int] = set()
        self._root: Dir | None = None

    @property
    def root(self) -> Dir:
        """The run directory, opened once: every file below it is reached through this descriptor."""
        if self._root is None:
            self._root = Dir.open(self.path)
        return self._root

    @classmethod
    def open(cls, path: Path, warn: Callable[[str], None] = _stderr) -> RunStore:
        """An existing run directory, for reading."""
        if not path.is_dir():
            what = "does not exist" if not path.exists() else "is not a directory"
            raise StoreError(f"run directory {path} {what}")
        store = cls(path, warn)
        if store.root.mode(RUN_META) is None:
            raise StoreError(f"run directory {path} is not a trtbench run (no run.json)")
        store.audit()
        return store

    @classmethod
    def create(cls, path: Path, warn: Callable[[str], None] = _stderr) -> RunStore:
        """A run directory to write: new, empty, or an earlier trtbench run to resume. Its run.json is
        written first, so a sweep killed at once leaves a directory trtbench recognises as its own."""
        store = cls(path, warn)
        store._root = Dir.open(path, create=True)  # refused in one line: a file there, no permission, a full disk
        if store.root.mode(RUN_META) is None:
            if store.root.names():
                raise StoreError(f"output directory {path} exists and is not a trtbench run (no run.json); "
                                 f"choose another --out")
            store.write_meta({"created_at": now_iso()})
        store.audit()
        return store

    def audit(self) -> None:
        """Refuse a run directory that is not trtbench's (its run.json, the marker, is foreign or of a newer
        trtbench), or that holds a link or a special file, or a directory where trtbench keeps a file:
        nothing trtbench does there may follow one out of the run."""
        self.meta()
        for name in self.root.names():
            mode = self.root.mode(name)
            if mode is None:
                continue
            if name in DIRS:
                fits = stat.S_ISDIR(mode)
            elif name in FILES or name.endswith(".png"):
                fits = stat.S_ISREG(mode)
            else:
                fits = stat.S_ISREG(mode) or stat.S_ISDIR(mode)
            if not fits:
                raise refusal(self.path / name, mode, "a directory" if name in DIRS else "a regular file")

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def pending_dir(self) -> Path:
        return self.path / PENDING

    def lock(self) -> contextlib.AbstractContextManager[int]:
        """The run's own lock: one sweep (or merge) at a time."""
        return self.root.locked(LOCK, 0, RunBusy, f"run directory {self.path} is in use by another sweep")

    def report_lock(self) -> contextlib.AbstractContextManager[int]:
        """One report at a time, each analysing the records as they are once it holds the lock, so the last
        report written is the one from the latest records (a sweep's closing report or `trtbench report`)."""
        return self.root.locked(REPORT_LOCK, REPORT_WAIT_S, RunBusy,
                                f"another report of {self.path} has been writing for {REPORT_WAIT_S:.0f} s")

    def write_spec(self, spec: SweepSpec) -> None:
        """The resolved spec the run's points come from."""
        with keeping(f"{self.path}'s records are intact"):
            self.root.write(SPEC, yaml.safe_dump(spec.canonical(), sort_keys=False))

    def write_meta(self, meta: dict[str, Any]) -> None:
        with keeping(f"{self.path}'s records are intact"):
            self.root.write(RUN_META, json.dumps({"schema_version": SCHEMA_VERSION, **meta}, indent=2) + "\n")

    def meta(self) -> dict[str, Any]:
        """run.json, the marker of a trtbench run: refused if it is not trtbench's or is a newer trtbench's."""
        where = self.path / RUN_META
        try:
            meta = json.loads(self.root.read(RUN_META, MAX_META) or b"")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise StoreError(f"cannot read {where}: {exc}; not a run.json trtbench wrote") from None
        if not isinstance(meta, dict):
            raise StoreError(f"{where} is not a JSON object; not a run.json trtbench wrote")
        version = meta.get("schema_version")
        legacy = version is None and isinstance(meta.get("provenance"), dict) \
            and isinstance(meta["provenance"].get("trtbench"), str)  # 0.1.0 wrote no version
        if legacy:
            return meta
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StoreError(f"{where} has no schema_version trtbench writes ({version!r}): not a trtbench run; "
                             f"choose another directory")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{where} was written by a newer trtbench (schema_version {version}, this one reads "
                             f"{SCHEMA_VERSION}); upgrade trtbench")
        return meta

    def spec(self) -> SweepSpec:
        return load_spec(self.path / SPEC)

    def repair(self) -> None:
        """Cut a torn last line left by a kill during a write; set damaged lines aside in results.corrupt.jsonl
        (appended, byte for byte) and keep every other line as it was. Only the lock holder calls this."""
        data = self.root.read(RESULTS)
        if not data:
            return
        with keeping(f"{self.path / RESULTS} is as it was"):
            if not data.endswith(b"\n"):
                self.root.truncate(RESULTS, data.rfind(b"\n") + 1)
            lines = self._lines()
            bad = {number for number, _, parsed in self._parsed(lines) if isinstance(parsed, RecordError)}
            if not bad:
                return
            self.root.append(CORRUPT, b"".join(lines[n - 1] + b"\n" for n in sorted(bad)))
            self.root.write(RESULTS, b"".join(line + b"\n" for n, line in enumerate(lines, 1) if n not in bad))
        self.warn(f"{self.results_path}: line(s) {', '.join(map(str, sorted(bad)))} held no trtbench record; set "
                  f"aside in {self.path / CORRUPT}")
        self._warned.update(range(1, len(lines) + 1))  # numbering changed; what is left is sound

    def _lines(self) -> list[bytes]:
        """results.jsonl's complete lines: what follows the last newline is empty, or a torn write that
        never was a record."""
        return (self.root.read(RESULTS) or b"").split(b"\n")[:-1]

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

    def samples(self) -> dict[str, list[Record]]:
        """Every ok record of each point id, in file order: a point's repeats (`runtime.repeats`), which its
        statistics come from; `records` keeps only the latest."""
        oks: dict[str, list[Record]] = {}
        for record in self.all_records():
            if record.status is Status.OK:
                oks.setdefault(record.point_id, []).append(record)
        return oks

    def done_ids(self, ok_only: bool = False) -> set[str]:
        """The point ids a resume need not run: every recorded one, or (`ok_only`, for --retry-failed) those whose
        latest record succeeded."""
        return {r.point_id for r in self.records() if not ok_only or r.status is Status.OK}

    def submit(self, record: Record) -> Path:
        """Hand in a finished point from any writer; `merge` moves it into results.jsonl."""
        name = f"{record.point_id}.{record.attempt}.json"
        with keeping(f"{self.results_path} is intact; this point is not recorded, and the next sweep runs it again"):
            self.root.sub(PENDING).write(name, record.model_dump_json() + "\n")
        return self.pending_dir / name

    def merge(self) -> list[Record]:
        """Fold submitted records into results.jsonl, each exactly once; only the lock holder calls this.
        A pending entry that is not a record (a link, a FIFO, a directory, another file) is moved to
        pending/rejected/ and named in the error."""
        if self.root.mode(PENDING) is None:
            return []
        pending = self.root.sub(PENDING, create=False)
        names = [name for name in pending.names() if name.endswith(".json")]
        if not names:
            return []
        attempts = {r.attempt for r in self.all_records()}
        merged = []
        for name in sorted(names, key=lambda n: (getattr(pending.stat(n), "st_mtime_ns", 0), n)):
            try:
                record = parse_record(pending.read(name, MAX_RECORD) or b"")
            except DiskError:
                raise
            except (RecordError, StoreError) as exc:
                pending.move(name, pending.sub(REJECTED), name)
                raise StoreError(f"{name} in {self.pending_dir} is not a trtbench record ({exc}); moved to "
                                 f"{self.pending_dir / REJECTED / name}") from None
            with keeping(f"{self.results_path} holds every record merged before; {name} stays in "
                         f"{self.pending_dir} and the next sweep merges it"):
                if record.attempt not in attempts:
                    self._append(record)
                    attempts.add(record.attempt)
                    merged.append(record)
                pending.unlink(name)
        return merged

    def _append(self, record: Record) -> None:
        self.root.append(RESULTS, (record.model_dump_json() + "\n").encode())

    def rewrite(self, records: list[Record], keep_as: str) -> None:
        """Replace results.jsonl with `records` (an upgrade), keeping the old file as `keep_as`."""
        with keeping(f"{self.results_path} is as it was"):
            self.root.write(keep_as, self.root.read(RESULTS) or b"")
            self.root.write(RESULTS, "".join(r.model_dump_json() + "\n" for r in records))


def next_free_dir(path: Path) -> Path:
    """For --fresh: `runs/x`, else `runs/x-2`, `runs/x-3`, ...; the old run stays untouched."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}-{n}")).exists():
        n += 1
    return candidate
