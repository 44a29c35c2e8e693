"""A hostile run directory or engine cache: links at every place trtbench writes, stray and foreign files,
special files (FIFO, device, a directory where a file goes), oversized files. Each is refused in one line,
exit 2, never followed, and (the autouse `sentinel` fixture checks it) nothing outside the test's own
directory changes. A FIFO case runs trtbench in a child process with a timeout: a hang fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, tree_state
from tests.test_build import TRT_SPEC, V016
from trtbench import files as files_mod
from trtbench.backends.trtllm import backend as trtllm_backend
from trtbench.backends.trtllm.build.cache import MANIFEST, STAGING, STAGING_MARK, EngineCache
from trtbench.backends.trtllm.build.plan import build_config
from trtbench.backends.trtllm.parse import ReportError
from trtbench.commands import utils
from trtbench.errors import StoreError
from trtbench.files import Dir
from trtbench.spec import parse_spec
from trtbench.store import RunStore

# Every name trtbench writes in a run directory, by what it is.
RUN_FILES = ["results.jsonl", "report.md", "results.csv", "results.parquet", "run.json", "spec.yaml", ".lock",
             ".report.lock", "results.corrupt.jsonl", "accuracy.jsonl", "heatmap.png", "results.v0.jsonl",
             "report.html", "sla.html"]
RUN_DIRS = ["pending", "logs"]


def one_line(result, *needles: str) -> str:
    """Exit 2 and one error line holding `needles` (a sweep's progress lines may come before it)."""
    assert result.code == 2, (result.code, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("trtbench: error:")]
    assert len(errors) == 1 and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def run(cli, write_spec, tmp_path) -> Path:
    """A finished sim run (no plots) to tamper with."""
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    return tmp_path / "runs" / "tiny"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


@pytest.mark.parametrize("name", RUN_FILES + RUN_DIRS)
@pytest.mark.parametrize("target", ["existing", "dangling"])
def test_a_link_where_trtbench_writes_is_refused_not_followed(cli, write_spec, run, sentinel, name, target):
    aim = sentinel / ("deep" if name in RUN_DIRS else "precious.txt") if target == "existing" \
        else sentinel / f"made-through-{name}"  # a write through the link would create it: the sentinel sees it
    (run / name).unlink() if (run / name).is_file() else None
    if (run / name).is_dir():
        (run / name).rmdir()
    (run / name).symlink_to(aim)
    # A sweep first reads the spec it recorded (a read, never a write), before it opens the run.
    one_line(cli("sweep", str(write_spec())), f"tiny/{name}", *(("symbolic link",) if name != "spec.yaml" else ()))
    one_line(cli("report", str(run)), f"tiny/{name}", "symbolic link")
    assert (run / name).is_symlink() and os.readlink(run / name) == str(aim)


@pytest.mark.parametrize("kind", ["link", "fifo", "directory", "not json"])
def test_a_pending_entry_that_is_no_record_is_set_aside_unread(cli, write_spec, run, sentinel, kind):
    entry = run / "pending" / "x.y.json"
    if kind == "link":
        entry.symlink_to(sentinel / "pending" / "a.b.json")
    elif kind == "fifo":
        os.mkfifo(entry)
    elif kind == "directory":
        entry.mkdir()
        (entry / "inside").write_text("kept")
    else:
        entry.write_text("{not json")
    one_line(cli("sweep", str(write_spec())), "x.y.json", "moved to")
    assert not os.path.lexists(entry) and os.path.lexists(run / "pending" / "rejected" / "x.y.json")
    assert cli("sweep", str(write_spec())).code == 0  # set aside: the next sweep goes on


def test_a_linked_rejected_dir_is_refused(cli, write_spec, run, sentinel):
    (run / "pending" / "rejected").symlink_to(sentinel / "deep")
    (run / "pending" / "x.y.json").write_text("{not json")
    one_line(cli("sweep", str(write_spec())), "tiny/pending/rejected", "symbolic link")


@pytest.mark.parametrize(("name", "text", "needle"), [
    (".lock", "12345\n", "not a trtbench run"),
    ("results.jsonl", "", "not a trtbench run"),
    ("run.json", "{}", "no schema_version"),
    ("run.json", "[1, 2]", "not a JSON object"),
    ("run.json", '{"schema_version": "1"}', "no schema_version"),
    ("run.json", '{"schema_version": true}', "no schema_version"),
    ("run.json", "not json at all", "cannot read"),
    ("run.json", '{"schema_version": 99}', "newer trtbench"),
])
def test_a_directory_trtbench_did_not_make_is_refused_untouched(cli, write_spec, tmp_path, name, text, needle):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / name).write_text(text)
    (foreign / "thesis.tex").write_text("do not touch")
    before = tree_state(foreign)
    one_line(cli("sweep", str(write_spec()), "--out", str(foreign)), needle)
    if name == "run.json":
        one_line(cli("report", str(foreign)), needle)
    assert tree_state(foreign) == before


def test_a_file_where_the_run_directory_goes_is_refused(cli, write_spec, tmp_path):
    (tmp_path / "afile").write_text("mine")
    one_line(cli("sweep", str(write_spec()), "--out", str(tmp_path / "afile")), "not a directory")
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize("name", ["results.jsonl", "run.json", "report.md", "spec.yaml"])
def test_a_directory_where_a_file_goes_is_refused(cli, write_spec, run, name):
    (run / name).unlink()
    (run / name).mkdir()
    (run / name / "inside").write_text("kept")
    one_line(cli("sweep", str(write_spec())), f"tiny/{name}", "is a directory")
    assert (run / name / "inside").read_text() == "kept"


@pytest.mark.parametrize("name", ["results.jsonl", "run.json", "report.md", ".lock", "pending", "logs"])
def test_a_fifo_is_refused_without_waiting_on_it(write_spec, run, name):
    path = run / name
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    os.mkfifo(path)
    child = subprocess.run([sys.executable, "-m", "trtbench", "sweep", str(write_spec())], cwd=run.parent.parent,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert child.returncode == 2, child.stderr
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "a FIFO" in lines[0] and f"tiny/{name}" in lines[0], child.stderr


def test_a_device_is_refused(cli, write_spec, run):
    (run / "results.jsonl").unlink()
    try:
        os.mknod(run / "results.jsonl", 0o644 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    one_line(cli("sweep", str(write_spec())), "results.jsonl", "a device")


@pytest.mark.parametrize(("name", "size"), [("results.jsonl", 257 << 20), ("run.json", 65 << 20)])
def test_an_oversized_file_is_refused_unread(cli, write_spec, run, name, size):
    with (run / name).open("r+b") as fh:
        fh.truncate(size)  # sparse: nothing is written, and trtbench must not read it either
    one_line(cli("sweep", str(write_spec())), f"tiny/{name}", "more than")


def test_a_link_to_dev_zero_as_results_is_refused(cli, write_spec, run):
    (run / "results.jsonl").unlink()
    (run / "results.jsonl").symlink_to("/dev/zero")
    one_line(cli("status", str(run)), "results.jsonl", "symbolic link")


def _within(seconds: float, call):
    """`call()`'s exception (or None), failing the test if it takes longer than `seconds` (a hang)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still running after {seconds} s: a hang"
    return outcome[0]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge", "directory"])
def test_a_benchmark_report_that_is_no_file_is_a_report_error(tmp_path, kind):
    report = tmp_path / "p.a.report.json"
    if kind == "fifo":
        os.mkfifo(report)
    elif kind == "dev-zero":
        report.symlink_to("/dev/zero")
    elif kind == "huge":
        with report.open("wb") as fh:
            fh.truncate(trtllm_backend.MAX_REPORT + 1)
    else:
        report.mkdir()
    error = _within(60, lambda: trtllm_backend._report(None, report))  # type: ignore[arg-type]
    assert isinstance(error, ReportError) and report.name in str(error)


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_an_options_file_that_is_no_file_is_refused(tmp_path, sentinel, kind):
    options = tmp_path / "llm_api_options-0.yaml"
    os.mkfifo(options) if kind == "fifo" else options.symlink_to(sentinel / "spec.yaml")
    error = _within(60, lambda: trtllm_backend._write_options(options, {"a": 1}))
    assert isinstance(error, StoreError) and str(options) in str(error)


@pytest.fixture
def cache(tmp_path):
    return EngineCache(tmp_path / "engines"), build_config(parse_spec(TRT_SPEC), V016)


def test_a_linked_staging_area_is_refused_and_its_target_kept(cache, sentinel):
    engines, config = cache
    engines.root.mkdir()
    (engines.root / STAGING).symlink_to(sentinel / "staging")  # holds `victim.<dead pid>`: a stale build's look
    with pytest.raises(StoreError, match="symbolic link"):
        engines.staging(config)


def test_only_staging_dirs_trtbench_marked_are_swept(cache):
    engines, config = cache
    area = engines.root / STAGING
    dead = _dead_pid()
    foreign, stale = area / f"theirs.{dead}", area / f"{config.name}-old.{dead}"
    for path in (foreign, stale):
        path.mkdir(parents=True)
        (path / "weights.bin").write_text("w")
    (stale / STAGING_MARK).write_text("")
    (area / f"link.{dead}").symlink_to(foreign)
    stage = engines.staging(config)
    assert foreign.is_dir() and (foreign / "weights.bin").exists() and not stale.exists()
    assert (area / f"link.{dead}").is_symlink() and stage.path.parent == area


@pytest.mark.parametrize("kind", ["link", "foreign dir", "file"])
def test_an_engine_dir_trtbench_did_not_build_is_never_replaced(cache, sentinel, kind):
    engines, config = cache
    engines.root.mkdir()
    final = engines.path(config)
    if kind == "link":
        final.symlink_to(sentinel / "deep")
    elif kind == "foreign dir":
        final.mkdir()
        (final / "rank0.engine").write_text("someone's engine")
    else:
        final.write_text("a file")
    before = tree_state(engines.root)
    with pytest.raises(StoreError, match=r"not an engine trtbench built|not an engine directory"):
        engines.staging(config)
    assert tree_state(engines.root) == before


def test_a_commit_replaces_only_its_own_engine(cache):
    engines, config = cache
    first = engines.staging(config)
    first.write(MANIFEST, "{}")
    engines.commit(first, config)
    second = engines.staging(config)
    second.write(MANIFEST, '{"second": 1}')
    engines.commit(second, config)
    assert (engines.path(config) / MANIFEST).read_text() == '{"second": 1}'
    assert sorted(p.name for p in engines.path(config).iterdir()) == [MANIFEST]
    assert list((engines.root / STAGING).iterdir()) == []


def test_a_link_swapped_in_below_a_verified_dir_is_not_followed(tmp_path, sentinel):
    """The race: a directory checked, then replaced by a link before the write. Writes go through the
    descriptor opened at the check, never through the new name."""
    root = Dir.open(tmp_path / "run", create=True)
    pending = root.sub("pending")
    (tmp_path / "run" / "pending").rename(tmp_path / "moved")
    (tmp_path / "run" / "pending").symlink_to(sentinel / "pending")
    pending.write("r.json", "{}")
    assert (tmp_path / "moved" / "r.json").read_text() == "{}"
    with pytest.raises(StoreError, match="symbolic link"):
        root.sub("pending")


def test_the_sentinel_check_notices_any_change(tmp_path):
    (tmp_path / "a").write_text("abc")
    (tmp_path / "d").mkdir()
    before = tree_state(tmp_path)
    (tmp_path / "a").write_text("abd")  # same size
    assert tree_state(tmp_path) != before
    (tmp_path / "a").write_text("abc")
    assert tree_state(tmp_path) == before
    (tmp_path / "d" / "new").write_text("")
    assert tree_state(tmp_path) != before


def test_a_report_waits_for_the_one_in_progress_and_ends_with_the_latest_records(run, monkeypatch):
    """Report A analyses 3 records and stalls; a 4th is recorded and report B starts. B must not write first
    (A would then leave a stale report as the final one): it waits on the report lock, then writes 4."""
    store = RunStore.open(run)
    records = store.all_records()
    (run / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records[:3]))
    analysed, go, b_progress = threading.Event(), threading.Event(), threading.Event()
    real_analyze, sleep = utils.analyze_run, files_mod.time.sleep

    def stalling(store_, run_dir, *price):
        analysis = real_analyze(store_, run_dir, *price)
        if threading.current_thread().name == "A":
            analysed.set()
            assert go.wait(120)
        return analysis

    def waiting(seconds: float) -> None:  # B polls the report lock: it is waiting, not writing
        if threading.current_thread().name == "B":
            b_progress.set()
        sleep(seconds)

    monkeypatch.setattr(utils, "analyze_run", stalling)
    monkeypatch.setattr(files_mod.time, "sleep", waiting)
    a = threading.Thread(target=utils.reported, args=(run, 10, False), name="A")
    a.start()
    assert analysed.wait(120)
    with store.lock():
        store._append(records[3])

    def report_b() -> None:
        try:
            utils.reported(run, 10, False)
        finally:
            b_progress.set()

    b = threading.Thread(target=report_b, name="B")
    b.start()
    assert b_progress.wait(120)
    go.set()
    a.join(120)
    b.join(120)
    assert len(pd.read_csv(run / "results.csv")) == 4
    assert json.loads((run / "run.json").read_text())["schema_version"] == 1



def test_a_link_at_a_benchmark_log_is_not_written_through(tmp_path):
    """The log of a point is opened relative to its directory without following a link: a link planted where
    the log goes leaves its target untouched, and the run still returns its output (the log is said to be
    incomplete)."""
    from trtbench.backends.trtllm.process import run_logged

    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "point.log").symlink_to(target)
    result = run_logged([sys.executable, "-c", "print('benchmark output')"], logs / "point.log", timeout_s=60)
    assert target.read_text() == "precious\n"
    assert result.returncode == 0 and "benchmark output" in result.output
    assert result.log_error is not None and "link" in result.log_error
