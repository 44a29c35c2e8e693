"""How long synthetic datasets take to write (target: a second or two each).

    .venv/bin/python benchmarks/bench_dataset.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from trtbench.backends.trtllm.dataset import DatasetSpec, ensure_dataset

CASES = [DatasetSpec(128, 128, 30_000, 128_256), DatasetSpec(16_384, 2_048, 200, 128_256)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for spec in CASES:
            t0 = time.perf_counter()
            path = ensure_dataset(spec, Path(tmp))
            elapsed = time.perf_counter() - t0
            print(f"{spec.count:>6} x {spec.isl:>5} tokens: {elapsed:5.2f} s, {path.stat().st_size / 2**20:6.1f} MiB")


if __name__ == "__main__":
    main()
