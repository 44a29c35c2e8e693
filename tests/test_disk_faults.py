"""Disk trouble on every write path (records, pending files, report, CSV, Parquet, plots, run.json, spec, engine
manifests, accuracy records): one error line naming the path and what is kept, exit 2, every record on disk
still valid, and the next run after the disk is freed resumes cleanly.

Two fault injectors, both bounded to the test's own directory: a real 16 MiB tmpfs (root only; skipped with
the reason otherwise) filled or remounted read-only at a chosen moment, and, for the errors a tmpfs cannot
give (EIO, EDQUOT), os.fsync/os.write failing for the one path a test names."""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_build import TRT_SPEC
from trtbench import plots, report
from trtbench.accuracy import records as accuracy
from trtbench.errors import DiskError
from trtbench.store import RunStore


class Disk:
    """A small tmpfs: `fill` it to the last byte, `free` it, make it `readonly` and writable again."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fill(self) -> None:
        with (self.root / "filler").open("ab", buffering=0) as fh:  # unbuffered: closing it has nothing left to write
            try:
                while True:  # bounded: the mount holds 16 MiB (a run with its report.html fits)
                    fh.write(b"\0" * 65536)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        (self.root / "filler").unlink(missing_ok=True)

    def readonly(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.root)], check=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(root)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def error_line(result) -> str:
    assert result.code == 2, (result.code, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("trtbench: error:")]
    assert len(errors) == 1 and "Traceback" not in result.err, result.err
    return errors[0]


def valid_records(run: Path) -> list[dict]:
    """results.jsonl, every line a complete record (json.loads fails on a torn one)."""
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def half_run(cli, write_spec, tmp_path) -> Callable[[Path], tuple[Path, list[dict]]]:
    """A sim run in `where` with 2 of its 4 points recorded: the next sweep writes records, a report, plots."""

    def make(where: Path) -> tuple[Path, list[dict]]:
        run = where / "run"
        assert cli("sweep", "--no-plots", str(write_spec()), "--out", str(run)).code == 0
        lines = (run / "results.jsonl").read_text().splitlines(keepends=True)
        (run / "results.jsonl").write_text("".join(lines[:2]))
        return run, valid_records(run)

    return make


def _resumes(cli, write_spec, run: Path, kept: list[dict]) -> None:
    result = cli("sweep", "--no-plots", str(write_spec()), "--out", str(run))
    assert result.code == 0, result.err
    records = valid_records(run)
    assert records[:len(kept)] == kept and len({r["point_id"] for r in records}) == 4
    assert not list(run.rglob("*.tmp")), "a failed atomic write leaves no temporary file"


# The moment the disk gives out: before the sweep's first record, before a record's merge into results.jsonl,
# before the plots, before the report; or at once.
STAGES = {"records": (RunStore, "submit"), "merge": (RunStore, "merge"), "plots": (plots, "draw"),
          "report": (report, "write_report")}


# Read-only only at the start: a remount refuses while the sweep holds its lock open for writing (the
# injector below gives EROFS mid-sweep).
@pytest.mark.parametrize(("stage", "trouble"), [*((stage, "full") for stage in STAGES), ("start", "full"),
                                                ("start", "read-only")])
def test_a_full_or_read_only_disk_mid_sweep_is_one_line_and_loses_nothing(cli, write_spec, disk, half_run,
                                                                          monkeypatch, stage, trouble):
    run, kept = half_run(disk.root)
    strike = disk.fill if trouble == "full" else disk.readonly
    if stage == "start":
        strike()
    else:
        owner, name = STAGES[stage]
        real = getattr(owner, name)
        struck: list[None] = []

        def striking(*args, **kwargs):
            if not struck and (stage != "merge" or list((run / "pending").glob("*.json"))):
                struck.append(strike())
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, striking)
    plotting = () if stage == "plots" else ("--no-plots",)
    line = error_line(cli("sweep", *plotting, str(write_spec()), "--out", str(run)))
    reason = "No space left on device" if trouble == "full" else "Read-only file system"
    assert reason in line and str(run) in line and "; " in line, line
    assert valid_records(run)[:2] == kept
    disk.free() if trouble == "full" else disk.readonly(False)
    _resumes(cli, write_spec, run, valid_records(run))


def test_a_report_on_a_read_only_run_is_one_line(cli, write_spec, disk, half_run):
    run, _ = half_run(disk.root)
    disk.readonly()
    line = error_line(cli("report", str(run)))
    assert "Read-only file system" in line and "nothing was changed" in line


@pytest.fixture
def fault(monkeypatch, tmp_path) -> Callable[[int, str], None]:
    """`fault(errno, pattern)`: os.fsync and os.write fail with `errno` for a file under tmp_path whose path
    matches `pattern` (fnmatch), until the test ends; nothing else is affected."""
    real_fsync, real_write = os.fsync, os.write

    def arm(code: int, pattern: str) -> None:
        def hit(fd: int) -> bool:
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return False
            return path.startswith(str(tmp_path)) and fnmatch.fnmatch(path, pattern)

        def fsync(fd: int) -> None:
            if hit(fd):
                raise OSError(code, os.strerror(code))
            real_fsync(fd)

        def write(fd: int, data: bytes) -> int:
            if hit(fd):
                real_write(fd, bytes(data[: len(data) // 2]))  # half a line reaches the file, then the error
                raise OSError(code, os.strerror(code))
            return real_write(fd, data)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "write", write)

    return arm


# Each write path, with the error it gets (every errno on the records' own paths).
PATHS = [
    ("*/run/results.jsonl", errno.EIO), ("*/run/results.jsonl", errno.EDQUOT),
    ("*/run/pending/.*.tmp", errno.EIO), ("*/run/pending/.*.tmp", errno.EDQUOT),
    ("*/run/pending/.*.tmp", errno.ENOSPC), ("*/run/pending/.*.tmp", errno.EROFS),
    ("*/run/.report.md.*.tmp", errno.EDQUOT), ("*/run/.results.csv.*.tmp", errno.EIO),
    ("*/run/.results.parquet.*.tmp", errno.ENOSPC), ("*/run/.heatmap.png.*.tmp", errno.EIO),
    ("*/run/.run.json.*.tmp", errno.EDQUOT), ("*/run/.spec.yaml.*.tmp", errno.EROFS),
]


@pytest.mark.parametrize(("pattern", "code"), PATHS)
def test_an_error_on_each_write_path_is_one_line_and_resumes(cli, write_spec, half_run, tmp_path, fault, pattern,
                                                             code):
    run, kept = half_run(tmp_path)
    fault(code, pattern)
    plotting = () if pattern.endswith(".png.*.tmp") else ("--no-plots",)
    line = error_line(cli("sweep", *plotting, str(write_spec()), "--out", str(run)))
    assert os.strerror(code) in line and str(run) in line and "; " in line, line
    assert valid_records(run)[:2] == kept
    fault(0, "")  # the disk is fixed
    _resumes(cli, write_spec, run, valid_records(run))


def test_an_engine_manifest_the_disk_refuses_keeps_no_engine(cli, write_spec, tmp_path, fake_bench, fault):
    fake_bench.version("1.1.0")
    spec = write_spec(TRT_SPEC + "build: {checkpoint: nvidia/Llama-3.1-8B-Instruct-FP8}\n")
    fault(errno.ENOSPC, "*/engines/.staging/*/.manifest.json.*.tmp")
    line = error_line(cli("build", str(spec)))
    assert "No space left on device" in line and "manifest.json" in line and "no engine is kept" in line
    assert [p.name for p in (tmp_path / "engines").iterdir()] == [".staging"]
    fault(0, "")
    assert cli("build", str(spec)).code == 0
    assert len([p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]) == 1
    assert list((tmp_path / "engines" / ".staging").iterdir()) == []  # the failed attempt's copy is gone


def test_an_accuracy_record_the_disk_refuses_leaves_the_file_as_it_was(tmp_path, fault):
    record = accuracy.AccuracyRecord(
        artifact=accuracy.Artifact(precision="fp8", kv_cache_dtype="fp8", tp=1, pp=1), task="mmlu", samples=10,
        status="ok", model="m", trtllm_version="1.1.0", command=[], log="l", wall_s=1.0, finished_at="now")
    accuracy.append(tmp_path, record)
    before = (tmp_path / accuracy.FILE).read_bytes()
    fault(errno.EIO, f"*/{accuracy.FILE}")
    with pytest.raises(DiskError, match="holds every evaluation recorded before"):
        accuracy.append(tmp_path, record)
    assert (tmp_path / accuracy.FILE).read_bytes() == before  # the half line written is cut back off
    assert accuracy.load(tmp_path) == [record]

