"""Simulator speed targets: the 64-point H100 grid in under 2 s on one core, a 30,000-request point in
well under a second.

    .venv/bin/python benchmarks/bench_sim.py
"""

from __future__ import annotations

import time
from pathlib import Path

from trtbench.backends.sim import SimBackend
from trtbench.grid import expand
from trtbench.spec import load_spec

GRID = Path(__file__).resolve().parent.parent / "sweeps" / "h100_grid.yaml"


def main() -> None:
    spec = load_spec(GRID)
    backend = SimBackend(spec)
    points = expand(spec, backend.identity())
    t0 = time.perf_counter()
    for point in points:
        backend.run(point, "bench")
    grid_s = time.perf_counter() - t0
    (big,) = [p for p in points if p.requests == 30_000]
    t0 = time.perf_counter()
    backend.run(big, "bench")
    big_s = time.perf_counter() - t0
    print(f"64-point grid: {grid_s:.3f} s (target < 2 s)")
    print(f"30,000-request point ({big.label}): {big_s * 1000:.1f} ms (target well under 1 s)")


if __name__ == "__main__":
    main()
