"""Synthetic fixed-length datasets in trtllm-bench's JSON-lines format, cached and reused.

One file per (ISL, OSL, count, vocabulary, seed, id key): a 30,000 x 128 file is 25 MB and takes
about a second to write, so it is written once and shared by every run that needs it. Token ids
are uniform over the vocabulary, skipping the end-of-sequence ids, as prepare_dataset.py does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trtbench.errors import TrtbenchError

DEFAULT_SEED = 420  # prepare_dataset.py's --random-seed default


@dataclass(frozen=True)
class DatasetSpec:
    isl: int
    osl: int
    count: int
    vocab: int
    seed: int = DEFAULT_SEED
    ids_key: str = "input_ids"  # 0.12 reads "logits"
    eos_ids: tuple[int, ...] = ()

    @property
    def filename(self) -> str:
        eos = "-".join(map(str, self.eos_ids)) or "none"
        return (f"isl{self.isl}_osl{self.osl}_n{self.count}_v{self.vocab}_s{self.seed}_{self.ids_key}"
                f"_eos{eos}.jsonl")


def cache_dir() -> Path:
    root = os.environ.get("TRTBENCH_CACHE_DIR") or Path.home() / ".cache" / "trtbench"
    return Path(root) / "datasets"


def dataset_path(spec: DatasetSpec, root: Path | None = None) -> Path:
    return (root or cache_dir()) / spec.filename


def ensure_dataset(spec: DatasetSpec, root: Path | None = None) -> Path:
    """The cached file for `spec`, written first if missing (atomically, so a kill leaves no half file)."""
    path = dataset_path(spec, root)
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # points run in threads
        with tmp.open("w") as fh:
            for line in _lines(spec):
                fh.write(line)
        os.replace(tmp, path)
    except OSError as exc:
        raise TrtbenchError(f"cannot write dataset {path}: {exc.strerror or exc}") from None
    return path


def _token_ids(spec: DatasetSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed)
    excluded = np.array(sorted(set(spec.eos_ids)), dtype=np.int64)
    draws = rng.integers(0, spec.vocab - len(excluded), size=(spec.count, spec.isl), dtype=np.int64)
    # Map [0, vocab - k) onto [0, vocab) minus the k excluded ids, keeping the distribution uniform.
    for eos in excluded:
        draws[draws >= eos] += 1
    return draws


def _lines(spec: DatasetSpec, chunk: int = 2048) -> Iterator[str]:
    ids = _token_ids(spec)
    for start in range(0, spec.count, chunk):
        block = ids[start:start + chunk].tolist()
        yield "".join(
            f'{{"task_id":{start + i},"{spec.ids_key}":[{",".join(map(str, row))}],"output_tokens":{spec.osl}}}\n'
            for i, row in enumerate(block)
        )
