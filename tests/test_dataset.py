"""Synthetic datasets: trtllm-bench's format, deterministic, inside the vocabulary, cached."""

from __future__ import annotations

import json

import numpy as np

from trtbench.backends.trtllm.dataset import DatasetSpec, ensure_dataset


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_format_and_lengths(tmp_path):
    path = ensure_dataset(DatasetSpec(isl=64, osl=16, count=50, vocab=1000), tmp_path)
    data = rows(path)
    assert len(data) == 50
    assert [r["task_id"] for r in data] == list(range(50))
    assert all(list(r) == ["task_id", "input_ids", "output_tokens"] for r in data)
    assert all(len(r["input_ids"]) == 64 and r["output_tokens"] == 16 for r in data)
    ids = np.array([r["input_ids"] for r in data])
    assert ids.min() >= 0 and ids.max() < 1000


def test_same_seed_same_tokens_other_seed_other_tokens(tmp_path):
    a = rows(ensure_dataset(DatasetSpec(32, 8, 10, 5000, seed=1), tmp_path / "a"))
    b = rows(ensure_dataset(DatasetSpec(32, 8, 10, 5000, seed=1), tmp_path / "b"))
    c = rows(ensure_dataset(DatasetSpec(32, 8, 10, 5000, seed=2), tmp_path / "c"))
    assert a == b and a != c


def test_eos_ids_never_appear(tmp_path):
    spec = DatasetSpec(256, 8, 200, vocab=10, eos_ids=(0, 3, 9))
    ids = np.array([r["input_ids"] for r in rows(ensure_dataset(spec, tmp_path))])
    assert set(np.unique(ids)) == {1, 2, 4, 5, 6, 7, 8}


def test_0_12_key(tmp_path):
    (row,) = rows(ensure_dataset(DatasetSpec(4, 2, 1, 100, ids_key="logits"), tmp_path))
    assert "logits" in row and "input_ids" not in row


def test_written_once(tmp_path):
    spec = DatasetSpec(16, 4, 5, 100)
    path = ensure_dataset(spec, tmp_path)
    stamp = path.stat().st_mtime_ns
    assert ensure_dataset(spec, tmp_path) == path and path.stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
