"""Guided sweeps against known truths: GPU time spent vs regret, over seeds, on the 64-point H100 grid and the
200-point 70B grid. The truth is tests/fakes/truth.py's (the simulator re-run with other GEMM and attention
efficiencies, a slower all-reduce, a smaller KV budget, per-point deviations and run-to-run noise; `HARSH` and
`EXTREME` bend it further: 10% per-point deviations no smooth correction explains, a 20% all-reduce loss per TP
doubling). Regret after a run is how far the best point measured so far truly is below the true best; GPU time
is the truth's (benchmark + model load, x TP), as a fraction of the whole grid's. Baselines: the full sweep in grid
order, and in a random order.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_guided.py [--seeds 5] [--png benchmarks/guided_regret.png]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np

from tests.fakes.truth import GuidedRun, guided_run
from trtbench.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GRIDS = {"h100_grid (64 points)": ROOT / "sweeps" / "h100_grid.yaml",
         "h100_70b_guided (200 points)": ROOT / "sweeps" / "h100_70b_guided.yaml"}
HARSH = {"gemm": 0.75, "attn": 0.5, "allreduce": 0.12, "kv_share": 0.5, "wobble": 0.05, "noise": 0.03}
EXTREME = {"gemm": 0.7, "attn": 0.4, "allreduce": 0.2, "kv_share": 0.4, "wobble": 0.10, "noise": 0.03}
TRUTHS = {"default truth": {}, "harsh truth": HARSH, "extreme truth": EXTREME}
GRID_X = np.logspace(-3, 0, 301)  # GPU-time fractions the curves are read at (0.1% to 100%)
TABLE_X = (0.02, 0.05, 0.1, 0.3, 0.5)  # and printed at


def curve(run: GuidedRun, order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(GPU-time fraction, regret) after each run of `order`."""
    points = {p.id: p for p in run.points}
    cost = np.array([run.truth.cost_s(points[pid]) for pid in order])
    value = np.array([run.truth.value(points[pid], run.per_gpu) for pid in order])
    best = max(run.truth.value(p, run.per_gpu) for p in run.points)
    total = sum(run.truth.cost_s(p) for p in run.points)
    return (np.concatenate([[0.0], np.cumsum(cost) / total]),
            np.concatenate([[1.0], 1 - np.maximum.accumulate(value) / best]))


def at(x: np.ndarray, y: np.ndarray, where: np.ndarray = GRID_X) -> np.ndarray:
    """The step curve (x, y) read at `where` (the regret holds until the next run ends)."""
    return y[np.searchsorted(x, where, side="right") - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--png", type=Path, default=ROOT / "benchmarks" / "guided_regret.png")
    args = parser.parse_args()
    rows, curves, stops = [], {}, {}
    for grid, path in GRIDS.items():
        spec = load_spec(path)
        for truth, bends in TRUTHS.items():
            found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"guided": [], "grid order": [],
                                                                      "random order": []}
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as tmp:
                    run = guided_run(spec, seed, Path(tmp) / "run", **bends)
                ids = [p.id for p in run.points]
                shuffled = random.Random(seed).sample(ids, len(ids))
                top5 = len(set(run.true_top(5)) & set(run.order))
                rows.append((grid, truth, seed, len(run.order), len(run.points), run.fraction(), run.regret(), top5,
                             run.plan.p_beats_winner))
                for name, order in (("guided", run.order), ("grid order", ids), ("random order", shuffled)):
                    found[name].append(curve(run, order))
            curves[(grid, truth)] = found
            stops[(grid, truth)] = float(np.mean([r[5] for r in rows if r[:2] == (grid, truth)]))
    print(f"{'grid':30s} {'truth':14s} {'seed':>4s} {'measured':>9s} {'GPU time':>9s} {'regret':>7s} "
          f"{'true top 5':>10s} {'P(beaten)':>9s}")
    for grid, truth, seed, n, total, fraction, regret, top5, p in rows:
        print(f"{grid:30s} {truth:14s} {seed:4d} {n:4d}/{total:<4d} {fraction:9.1%} {regret:7.2%} {top5:8d}/5 "
              f"{p:9.2%}")
    fractions = [r[5] for r in rows]
    print(f"worst GPU-time fraction {max(fractions):.1%}, worst regret {max(r[6] for r in rows):.2%}, "
          f"fewest of the true top 5 found {min(r[7] for r in rows)}")
    print("\nmean regret at a share of the full grid's GPU time (guided / grid order / random order):")
    for (grid, truth), named in curves.items():
        means = {n: np.mean([at(*c, np.array(TABLE_X)) for c in runs], axis=0) for n, runs in named.items()}
        cells = "  ".join(f"{x:.0%}: " + "/".join(f"{means[n][i]:.1%}" for n in means) for i, x in enumerate(TABLE_X))
        print(f"  {grid}, {truth}: {cells}")
    draw(curves, stops, args.png)
    print(f"\nplot: {args.png}")


def draw(curves: dict[tuple[str, str], dict[str, list[tuple[np.ndarray, np.ndarray]]]],
         stops: dict[tuple[str, str], float], png: Path) -> None:
    """Mean regret over seeds against GPU time (log scale), the guided sweep's mean stop marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(GRIDS), len(TRUTHS), figsize=(4.2 * len(TRUTHS), 3.4 * len(GRIDS)), sharey=True)
    for ax, ((grid, truth), named) in zip(np.ravel(axes), curves.items(), strict=True):
        for name, runs in named.items():
            mean = np.mean([at(*c) for c in runs], axis=0)
            ax.step(GRID_X * 100, mean * 100, where="post", label=name)
        ax.axvline(stops[(grid, truth)] * 100, color="C0", linestyle="--", linewidth=1, label="guided stops (settled)")
        ax.axhline(2, color="grey", linestyle=":", linewidth=1)
        ax.axvline(30, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{grid}\n{truth}", fontsize=9)
        ax.set_xlabel("GPU time spent (% of the full grid)")
        ax.set_xscale("log")
        ax.set_xlim(0.1, 100)
        ax.set_ylim(0, 100)
    for ax in np.ravel(axes)[::len(TRUTHS)]:
        ax.set_ylabel("regret (% below the true best)")
    np.ravel(axes)[0].legend(fontsize=8)
    fig.suptitle("Guided sweep vs full sweeps: mean over seeds (measured on a known truth, not on a GPU)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
