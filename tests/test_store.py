"""The store takes records from several writers: each submitted file is merged into results.jsonl once."""

from __future__ import annotations

import threading

import pytest

from tests.test_report import rec
from trtbench.errors import StoreError
from trtbench.store import RunStore


def test_records_from_many_threads_are_merged_once_each(tmp_path):
    store = RunStore.create(tmp_path / "run")
    records = [rec(128 * (i + 1), 128, 10, 100.0 + i) for i in range(40)]
    threads = [threading.Thread(target=store.submit, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.merge()) == 40 and store.merge() == []
    assert sorted(r.attempt for r in store.all_records()) == sorted(r.attempt for r in records)
    assert not list(store.pending_dir.glob("*"))


def test_a_merge_killed_before_cleanup_appends_nothing_twice(tmp_path):
    store = RunStore.create(tmp_path / "run")
    record = rec(128, 128, 10, 100.0)
    store.submit(record)
    store._append(record)  # the merge got this far, then the process died before removing the file
    assert store.merge() == []
    assert [r.attempt for r in store.all_records()] == [record.attempt]
    assert not list(store.pending_dir.glob("*.json"))


def test_a_pending_file_that_is_no_record_is_set_aside(tmp_path):
    store = RunStore.create(tmp_path / "run")
    store.pending_dir.mkdir()
    (store.pending_dir / "x.y.json").write_text("{not json")
    with pytest.raises(StoreError, match="moved to"):
        store.merge()
    assert (store.pending_dir / "rejected" / "x.y.json").exists()
