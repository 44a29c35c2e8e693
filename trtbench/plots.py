"""The report's figures, as PNG files beside report.md; imported only when plots are drawn (matplotlib is slow
to import). Each plot function takes the results frame and
returns the file it wrote, or None when the data cannot make that plot (it is then left out)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from trtbench.analyze import Analysis, groups
from trtbench.files import atomic_write
from trtbench.spec import SweepSpec

FAILURE_LABEL = {"oom": "OOM", "timeout": "TIMEOUT", "infeasible": "INFEAS.", "error": "ERROR", "crash": "CRASH",
                 "no_report": "NO REPORT", "invalid_report": "INVALID",
                 "driver_error": "DRIVER"}


@dataclass(frozen=True)
class PlotContext:
    title: str  # model, GPU, precision, backend
    simulated: bool
    n_gpus: int = 1


def _finish(fig: Figure, ctx: PlotContext, path: Path) -> Path:
    if ctx.simulated:
        fig.text(0.5, 0.5, "SIMULATED", fontsize=60, color="gray", alpha=0.15, ha="center", va="center",
                 rotation=30, transform=fig.transFigure)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, png.getvalue())  # a reader (or a kill) never sees half a PNG
    return path


def _axes(ax: plt.Axes, ctx: PlotContext, title: str, xlabel: str, ylabel: str, xbase: int | None = 2,
          ybase: int | None = 10, xticks: Iterable[float] | None = None) -> None:
    """Log axes (base 2 for token lengths), labels with units, a title naming what was run, a grid. `xticks`:
    the grid's own values (100, 300, 1000, not 2^7 ... 2^10), written as numbers."""
    if xbase:
        ax.set_xscale("log", base=xbase)
    if xticks is not None:
        values = sorted(set(xticks))
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_locator(NullLocator())
    if ybase:
        ax.set_yscale("log", base=ybase)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\n{ctx.title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)


def heatmap(df: pd.DataFrame, ctx: PlotContext, path: Path, value: str = "output_tok_per_s",
            label: str = "output tokens/s", fmt: str = "{:,.0f}", center: float | None = None) -> Path | None:
    """ISL x OSL grid of `value`; failed cells grey, marked with their failure class. With `center` (a ratio's
    1.0), a diverging map: red below it, blue above, white at it."""
    if df.empty:
        return None
    isls, osls = sorted(df["isl"].unique()), sorted(df["osl"].unique())
    grid = np.full((len(isls), len(osls)), np.nan)
    status: dict[tuple[int, int], str] = {}
    for _, r in df.iterrows():
        i, j = isls.index(r["isl"]), osls.index(r["osl"])
        status[(i, j)] = str(r["status"])
        if r["status"] == "ok" and pd.notna(r[value]):
            grid[i, j] = r[value]
    fig, ax = plt.subplots(figsize=(1.1 * len(osls) + 3, 0.7 * len(isls) + 2))
    ax.set_facecolor("#d9d9d9")
    finite = grid[np.isfinite(grid)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    if finite.size:
        norm = None if center is None else TwoSlopeNorm(vcenter=center, vmin=min(low, center * 0.99),
                                                        vmax=max(high, center * 1.01))
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis" if center is None else "RdBu", norm=norm,
                          aspect="auto", origin="lower")
        fig.colorbar(image, ax=ax, label=label)
    else:
        ax.imshow(np.zeros_like(grid), cmap="Greys", vmin=0, vmax=4, aspect="auto", origin="lower")
    for (i, j), s in status.items():
        if s == "ok" and np.isfinite(grid[i, j]):
            if center is None:  # viridis is dark at the low end
                dark = high > low and (grid[i, j] - low) / (high - low) < 0.55
            else:  # RdBu is dark at both ends
                dark = abs(grid[i, j] - center) > 0.6 * max(high - center, center - low, 1e-9)
            ax.text(j, i, fmt.format(grid[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
        else:
            ax.text(j, i, FAILURE_LABEL.get(s, s.upper()), ha="center", va="center", fontsize=7, color="darkred",
                    fontweight="bold")
    ax.set_xticks(range(len(osls)), [str(o) for o in osls])
    ax.set_yticks(range(len(isls)), [str(i) for i in isls])
    ax.set_xlabel("output length OSL (tokens)")
    ax.set_ylabel("input length ISL (tokens)")
    ax.set_title(f"{label} by ISL x OSL\n{ctx.title}", fontsize=10)
    return _finish(fig, ctx, path)


def throughput_vs_osl(df: pd.DataFrame, ctx: PlotContext, path: Path) -> Path | None:
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for isl, group in ok.sort_values("osl").groupby("isl"):
        ax.plot(group["osl"], group["output_tok_per_s"], marker="o", label=f"ISL {isl}")
    _axes(ax, ctx, "Throughput vs output length, one line per input length", "output length OSL (tokens, log2)",
          "output tokens/s (log2)", ybase=2, xticks=df["osl"])
    ax.legend(fontsize=7, ncol=2)
    return _finish(fig, ctx, path)


def requests_vs_length(df: pd.DataFrame, ctx: PlotContext, path: Path) -> Path | None:
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = ax.scatter(ok["isl"] + ok["osl"], ok["request_per_s"], c=np.log2(ok["isl"]), cmap="plasma")
    fig.colorbar(points, ax=ax, label="log2 ISL")
    _axes(ax, ctx, "Request throughput vs tokens per request", "tokens per request, ISL + OSL (log2)",
          "requests/s (log)")
    return _finish(fig, ctx, path)


def pareto(df: pd.DataFrame, ctx: PlotContext, path: Path) -> Path | None:
    """Per-GPU output throughput vs per-user throughput, with the frontier."""
    ok = df[(df["status"] == "ok") & df["per_user_tok_s"].notna()]
    if ok.empty:
        return None
    x = ok["per_user_tok_s"].to_numpy(dtype=float)
    y = ok["output_tok_per_s"].to_numpy(dtype=float) / ctx.n_gpus
    order = np.argsort(-x)
    frontier, best = [], -np.inf
    for k in order:  # from the most interactive point down, keep those that raise throughput
        if y[k] > best:
            frontier.append(k)
            best = y[k]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(x, y, alpha=0.6, label="grid points")
    ax.plot(x[frontier], y[frontier], color="crimson", marker="o", label="Pareto frontier")
    for n, k in enumerate(frontier):  # labels alternate above and below the line so neighbours do not overlap
        ax.annotate(f"{ok['isl'].iloc[k]}/{ok['osl'].iloc[k]}", (x[k], y[k]), fontsize=6,
                    xytext=(4, 4) if n % 2 == 0 else (4, -10), textcoords="offset points")
    _axes(ax, ctx, "Throughput per GPU vs per-user speed", "per-user output tokens/s (OSL / request latency)",
          "output tokens/s per GPU", xbase=10, ybase=None)
    ax.legend(fontsize=8)
    return _finish(fig, ctx, path)


def kv_capacity(df: pd.DataFrame, ctx: PlotContext, path: Path) -> Path | None:
    """How many sequences the KV pool holds at each sequence length, with the grid's points on it."""
    known = df[df["kv_tokens"].notna() & (df["kv_tokens"] > 0)]
    if known.empty:
        return None
    seq = (known["isl"] + known["osl"]).to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lengths = np.logspace(np.log2(max(64, seq.min() / 2)), np.log2(seq.max() * 2), 100, base=2)
    pool = float(known["kv_tokens"].median())
    ax.plot(lengths, pool / lengths, color="gray", label=f"KV pool of {pool:,.0f} tokens / sequence length")
    ax.scatter(seq, known["kv_tokens"] / seq, c=["tab:green" if s == "ok" else "tab:red" for s in known["status"]],
               zorder=3, label="grid points (red: failed)")
    failed = df[(df["status"] != "ok") & ~df.index.isin(known.index)]  # no pool of their own (OOM before it)
    if not failed.empty:
        lengths_failed = (failed["isl"] + failed["osl"]).to_numpy(dtype=float)
        ax.scatter(lengths_failed, pool / lengths_failed, marker="x", color="tab:red", zorder=3,
                   label="failed points without a KV pool (at the others' pool)")
    ax.axhline(1, color="crimson", linestyle="--", linewidth=1, label="one sequence")
    _axes(ax, ctx, "KV cache capacity vs sequence length", "sequence length ISL + OSL (tokens, log2)",
          "sequences that fit in the KV cache (log)")
    ax.legend(fontsize=7)
    return _finish(fig, ctx, path)


def _ladder_lines(frame: pd.DataFrame, others: tuple[str, ...]) -> Iterator[tuple[str, pd.DataFrame]]:
    """One line per (ISL, OSL) and value of the `others` axes, in concurrency order, with its legend label."""
    for key, line in frame.sort_values("concurrency").groupby(["isl", "osl", *others]):
        yield f"{key[0]}/{key[1]}" + "".join(f" {c}={v}" for c, v in zip(others, key[2:], strict=True)), line


def load_curves(df: pd.DataFrame, ctx: PlotContext, path: Path, others: tuple[str, ...] = ()) -> Path | None:
    """The load curve of a concurrency ladder: output tokens/s per GPU, and p95 TTFT and TPOT, against the
    concurrency limit, one line per (ISL, OSL) and value of the `others` axes."""
    ok = df[(df["status"] == "ok") & df["concurrency"].notna()] if "concurrency" in df.columns else df.iloc[0:0]
    if ok["concurrency"].nunique() < 2:
        return None
    fig, (top, ttft, tpot) = plt.subplots(1, 3, figsize=(15, 4.5))
    for label, line in _ladder_lines(ok, others):
        top.plot(line["concurrency"], line["output_tok_per_s_per_gpu"], marker="o", label=label)
        ttft.plot(line["concurrency"], line["ttft_ms_p95"], marker="o", label=label)
        tpot.plot(line["concurrency"], line["tpot_ms_p95"], marker="o", label=label)
    _axes(top, ctx, "Throughput vs concurrency", "concurrent requests (log2)", "output tokens/s per GPU", ybase=None,
          xticks=ok["concurrency"])
    for ax, column, title in ((ttft, "ttft_ms_p95", "p95 time to first token"),
                              (tpot, "tpot_ms_p95", "p95 time per output token")):
        reported = bool(ok[column].notna().any())
        _axes(ax, ctx, title, "concurrent requests (log2)", f"{column[:4].upper()} p95 (ms, log)",
              ybase=10 if reported else None, xticks=ok["concurrency"])
        if not reported:  # a measured run without streaming prints none
            ax.text(0.5, 0.5, "not reported\n(runtime.streaming off)", transform=ax.transAxes, ha="center")
    top.legend(fontsize=7, title="ISL/OSL")
    return _finish(fig, ctx, path)


def memory_vs_concurrency(df: pd.DataFrame, ctx: PlotContext, path: Path, others: tuple[str, ...] = ()
                          ) -> Path | None:
    """Peak GPU memory the telemetry saw at each concurrency step (measured points only: never simulated)."""
    seen = df[df["peak_memory_gib"].notna() & df["concurrency"].notna()] if "concurrency" in df.columns else df[:0]
    if seen["concurrency"].nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, line in _ladder_lines(seen, others):
        ax.plot(line["concurrency"], line["peak_memory_gib"], marker="o", label=label)
    if seen["gpu_total_gib"].notna().any():
        ax.axhline(float(seen["gpu_total_gib"].max()), color="crimson", linestyle="--", linewidth=1,
                   label="GPU memory")
    _axes(ax, ctx, "Peak GPU memory vs concurrency (telemetry)", "concurrent requests (log2)",
          "peak memory used (GiB)", ybase=None, xticks=seen["concurrency"])
    ax.legend(fontsize=7, title="ISL/OSL")
    return _finish(fig, ctx, path)


MAKERS = {"heatmap": heatmap, "throughput_vs_osl": throughput_vs_osl, "requests_vs_length": requests_vs_length,
          "pareto": pareto, "kv_capacity": kv_capacity}


def draw(run_dir: Path, spec: SweepSpec, analysis: Analysis, meta: dict[str, Any]) -> dict[str, Path]:
    """Every plot the data supports, one set per group of the extra axes, by name (`heatmap`, or
    `heatmap@TP 2, Precision fp8` in a grid with extra axes)."""
    backend = meta.get("provenance", {}).get("backend", {})
    simulated = bool(analysis.counts.get("simulated"))
    made = {}
    for values, frame in groups(analysis):
        at = spec.at(values)
        group = ", ".join(f"{k}={v}" for k, v in values.items())
        ctx = PlotContext(title=f"{spec.model.name}, {backend.get('gpu') or spec.gpu}, {at.precision} "
                                f"(KV {at.kv_cache_dtype}), TP{at.tp}, {backend.get('backend', spec.backend)}"
                                + (f"\n{group}" if group else ""),
                          simulated=simulated, n_gpus=at.tp * at.pp)
        suffix = "".join(f"_{k}-{v}" for k, v in values.items())
        for name, make in MAKERS.items():
            path = make(frame, ctx, run_dir / f"{name}{suffix}.png")
            if path is not None:
                made[name + (f"@{group}" if group else "")] = path
    if "concurrency" in analysis.axes:  # one load curve over the whole ladder
        ctx = PlotContext(title=f"{spec.model.name}, {backend.get('gpu') or spec.gpu}, "
                                f"{backend.get('backend', spec.backend)}", simulated=simulated,
                          n_gpus=spec.tp * spec.pp)
        others = tuple(a for a in analysis.axes if a != "concurrency")
        for name, curve in (("load_curves", load_curves), ("memory_vs_concurrency", memory_vs_concurrency)):
            path = curve(analysis.results, ctx, run_dir / f"{name}.png", others)
            if path is not None:
                made[name] = path
    return made
