"""The report's figures, as PNG files beside report.md; imported only when plots are drawn (matplotlib is slow
to import). Each plot function builds one figure for the whole run and returns the file it wrote, or None when
the data cannot make that plot (it is then left out). Every axis is ticked in plain numbers (512, 1k, 32k;
12,000), never 2^9 or 10^4, log axes included."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory

from trtbench.analyze import Analysis
from trtbench.escape import plot_text
from trtbench.files import atomic_write
from trtbench.spec import SweepSpec

FAILURE_LABEL = {"oom": "OOM", "timeout": "TIMEOUT", "infeasible": "INFEAS.", "error": "ERROR", "crash": "CRASH",
                 "no_report": "NO REPORT", "invalid_report": "INVALID",
                 "driver_error": "DRIVER"}
PER_GPU = "output_tok_per_s_per_gpu"  # what side-by-side plots compare: more GPUs must not win by size
MAX_PANELS = 12  # small multiples per figure; past it a figure shows each workload's best point instead
LOG_SPAN = 30.0  # a value axis spanning more than this factor is drawn log, so the small values stay visible


@dataclass(frozen=True)
class PlotContext:
    title: str  # model, GPU, precision, backend; its user-supplied parts through escape.plot_text
    simulated: bool


def _tokens(v: float, _pos: Any = None) -> str:
    """Token counts as people write them: 512, 1k, 1.5k, 32k (multiples of 512 from 1,024), else the digits."""
    return f"{v / 1024:g}k" if v >= 1024 and v % 512 == 0 else f"{v:.0f}"


def _number(v: float, _pos: Any = None) -> str:
    """Throughputs and counts: 12,000, 850, 2.5, 0.05."""
    return f"{v:,.0f}" if abs(v) >= 100 or v == 0 else f"{v:,.3g}"


Scale = tuple[int | None, Callable[[float, Any], str]]  # (log base or None for linear, tick formatter)
TOKENS: Scale = (2, _tokens)
LINEAR: Scale = (None, _number)


def _span_scale(values: Iterable[float]) -> Scale:
    """Log (base 10) when the values span more than LOG_SPAN, else linear; plain numbers either way."""
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    return (10, _number) if finite and max(finite) > LOG_SPAN * min(finite) else LINEAR


def _axes(ax: Axes, title: str, xlabel: str, ylabel: str, x: Scale, y: Scale,
          xticks: Iterable[float] | None = None) -> None:
    """Scales and labels with units, a grid, ticks formatted by the scale's formatter (major ones only, so
    matplotlib's own 2^9 / 10^4 labels never appear). `xticks`: the grid's own values (100, 300, 1000)."""
    for axis, set_scale, (base, fmt) in ((ax.xaxis, ax.set_xscale, x), (ax.yaxis, ax.set_yscale, y)):
        if base:
            set_scale("log", base=base)
            axis.set_major_locator(LogLocator(base=base, subs=(1.0,) if base == 2 else (1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(fmt))
        axis.set_minor_formatter(NullFormatter())
    if xticks is not None:
        ax.set_xticks(sorted(set(xticks)))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def _figure(n: int, panel: tuple[float, float], title: str, ctx: PlotContext) -> tuple[Figure, list[Axes]]:
    """One figure of `n` panels (up to 3 in a row, else a near-square grid), titled with what was run."""
    cols = n if n <= 3 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, grid = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows + 0.6), squeeze=False,
                             layout="constrained")
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.remove()
    fig.suptitle(f"{title}\n{ctx.title}", fontsize=10)
    return fig, axes[:n]


def _finish(fig: Figure, ctx: PlotContext, path: Path) -> Path:
    if ctx.simulated:
        fig.text(0.5, 0.5, "SIMULATED", fontsize=60, color="gray", alpha=0.15, ha="center", va="center",
                 rotation=30, transform=fig.transFigure)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, png.getvalue())  # a reader (or a kill) never sees half a PNG
    return path


def _setting(row: pd.Series, axes: Sequence[str]) -> str:
    """`tp=2, precision=fp8`: the values of `axes` a row (or a group) has."""
    return ", ".join(f"{a}={row[a]}" for a in axes)


def _failure(status: str) -> str:
    return FAILURE_LABEL.get(status, status.upper())


def best(df: pd.DataFrame, keys: list[str], value: str = PER_GPU) -> pd.DataFrame:
    """One row per combination of `keys`: its successful row with the highest `value`, else (every one failed)
    its first failed row, whose status says how."""
    ranked = df.assign(_ran=(df["status"] == "ok") & df[value].notna())
    ranked = ranked.sort_values(["_ran", value], ascending=False, kind="stable", na_position="last")
    return ranked.drop_duplicates(keys).drop(columns="_ran")


def _panels(df: pd.DataFrame, by: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per combination of the `by` axes, in grid order; past MAX_PANELS combinations, one panel of
    each ISL/OSL workload's best point per GPU, so the figure stays readable."""
    if not by:
        return [("", df)]
    parts = [(_setting(pd.Series(dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))), by), rows)
             for key, rows in df.groupby(list(by), sort=False)]
    if len(parts) <= MAX_PANELS:
        return parts
    return [(f"best point per GPU over {', '.join(by)} ({len(parts)} combinations)", best(df, ["isl", "osl"]))]


def heatmap(df: pd.DataFrame, ctx: PlotContext, path: Path, value: str = PER_GPU,
            label: str = "output tokens/s per GPU", fmt: str = "{:,.0f}", center: float | None = None,
            by: Sequence[str] = ()) -> Path | None:
    """ISL x OSL grid of `value`, one panel per combination of the `by` axes on one colour scale; failed cells
    grey, marked with their failure class. With `center` (a ratio's 1.0), a diverging map: red below it, blue
    above, white at it."""
    if df.empty:
        return None
    isls, osls = sorted(df["isl"].unique()), sorted(df["osl"].unique())
    finite = df.loc[df["status"] == "ok", value].dropna().to_numpy(dtype=float)
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    norm = Normalize(low, high) if center is None else TwoSlopeNorm(
        vcenter=center, vmin=min(low, center * 0.99), vmax=max(high, center * 1.01))

    def dark(v: float) -> bool:
        if center is None:  # viridis is dark at the low end
            return high > low and (v - low) / (high - low) < 0.55
        return abs(v - center) > 0.6 * max(high - center, center - low, 1e-9)  # RdBu is dark at both ends

    panels = _panels(df, by)
    fig, axes = _figure(len(panels), (1.1 * len(osls) + 2.5, 0.7 * len(isls) + 1.5), f"{label} by ISL x OSL", ctx)
    for ax, (title, frame) in zip(axes, panels, strict=True):
        grid = np.full((len(isls), len(osls)), np.nan)
        ax.set_facecolor("#d9d9d9")
        cells = {(isls.index(r["isl"]), osls.index(r["osl"])): r for _, r in frame.iterrows()}  # one per cell
        for (i, j), r in cells.items():
            if r["status"] == "ok" and pd.notna(r[value]):
                grid[i, j] = r[value]
                ax.text(j, i, fmt.format(r[value]), ha="center", va="center", fontsize=7,
                        color="white" if dark(r[value]) else "black")
            else:
                ax.text(j, i, _failure(str(r["status"])), ha="center", va="center", fontsize=7,
                        color="darkred", fontweight="bold")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis" if center is None else "RdBu", norm=norm,
                          aspect="auto", origin="lower")
        ax.set_xticks(range(len(osls)), [_tokens(o) for o in osls])
        ax.set_yticks(range(len(isls)), [_tokens(i) for i in isls])
        ax.set_xlabel("output length OSL (tokens)")
        ax.set_ylabel("input length ISL (tokens)")
        ax.set_title(title, fontsize=9)
    if finite.size:
        colorbar = fig.colorbar(image, ax=axes, label=label)
        colorbar.formatter = FuncFormatter(_number)
        colorbar.update_ticks()
    return _finish(fig, ctx, path)


def throughput_vs_osl(df: pd.DataFrame, ctx: PlotContext, path: Path, by: Sequence[str] = ()) -> Path | None:
    """Output tokens/s (all the point's GPUs) against OSL, one line per ISL, one panel per `by` combination."""
    if not (df["status"] == "ok").any():
        return None
    panels = _panels(df, by)
    fig, axes = _figure(len(panels), (6, 4.2), "Throughput vs output length, one line per input length", ctx)
    for ax, (title, frame) in zip(axes, panels, strict=True):
        ok = frame[frame["status"] == "ok"]
        for isl, line in ok.sort_values("osl").groupby("isl"):
            ax.plot(line["osl"], line["output_tok_per_s"], marker="o", label=f"ISL {_tokens(isl)}")
        _axes(ax, title, "output length OSL (tokens, log)", "output tokens/s", TOKENS,
              _span_scale(df["output_tok_per_s"].dropna()), xticks=df["osl"])
        if not ok.empty:
            ax.legend(fontsize=7, ncol=2)
    return _finish(fig, ctx, path)


def requests_vs_length(df: pd.DataFrame, ctx: PlotContext, path: Path, by: Sequence[str] = ()) -> Path | None:
    """Requests/s against tokens per request, coloured by ISL, one panel per `by` combination."""
    if not (df["status"] == "ok").any():
        return None
    panels = _panels(df, by)
    norm = LogNorm(df["isl"].min(), df["isl"].max())
    fig, axes = _figure(len(panels), (6, 4.2), "Request throughput vs tokens per request", ctx)
    for ax, (title, frame) in zip(axes, panels, strict=True):
        ok = frame[frame["status"] == "ok"]
        points = ax.scatter(ok["isl"] + ok["osl"], ok["request_per_s"], c=ok["isl"], cmap="plasma", norm=norm)
        _axes(ax, title, "tokens per request, ISL + OSL (log)", "requests/s", TOKENS,
              _span_scale(df["request_per_s"].dropna()))
    colorbar = fig.colorbar(points, ax=axes, label="input length ISL (tokens)")
    colorbar.set_ticks(sorted(df["isl"].unique()))
    colorbar.formatter = FuncFormatter(_tokens)
    colorbar.minorticks_off()
    colorbar.update_ticks()
    return _finish(fig, ctx, path)


def frontier(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Indices of the non-dominated points (no other point is at least as good on both and better on one; of
    identical points, one), in order of rising x."""
    order = sorted(range(len(x)), key=lambda k: (-x[k], -y[k]))
    kept, top = [], -np.inf
    for k in order:  # from the most interactive point down, keep those that raise throughput
        if y[k] > top:
            kept.append(k)
            top = y[k]
    return kept[::-1]


def pareto(df: pd.DataFrame, ctx: PlotContext, path: Path, by: Sequence[str]) -> Path | None:
    """Per-GPU output throughput vs per-user speed over the choices a user has for ONE workload (the `by` axes:
    TP, concurrency, precision, batch limits), one panel and frontier per ISL/OSL workload: the workload is
    given, not chosen. Failed choices have no speed to place them at, so each panel lists them. None without
    choices (no `by` axes, or no workload with two points that ran)."""
    ran = df[(df["status"] == "ok") & df["per_user_tok_s"].notna() & df[PER_GPU].notna()]
    if not by or ran.empty or ran.groupby(["isl", "osl"]).size().max() < 2:
        return None
    choices = df.assign(_ran=df.index.isin(ran.index)).groupby(["isl", "osl"], sort=False)["_ran"].sum()
    shown = sorted(choices.sort_values(ascending=False, kind="stable").index[:MAX_PANELS])
    title = "Throughput per GPU vs per-user speed: the frontier of each workload's choices"
    if len(choices) > len(shown):
        title += f" ({len(shown)} of {len(choices)} workloads: those with the most choices that ran)"
    fig, axes = _figure(len(shown), (5.5, 4.2), title, ctx)
    for ax, (isl, osl) in zip(axes, shown, strict=True):
        points = ran[(ran["isl"] == isl) & (ran["osl"] == osl)]
        x, y = points["per_user_tok_s"].to_numpy(dtype=float), points[PER_GPU].to_numpy(dtype=float)
        front = frontier(x, y)
        ax.scatter(x, y, alpha=0.6, label="choices")
        ax.plot(x[front], y[front], color="crimson", marker="o", label="Pareto frontier")
        for n, k in enumerate(front):  # labels alternate above and below the line so neighbours do not overlap
            ax.annotate(_setting(points.iloc[k], by), (x[k], y[k]), fontsize=6,
                        xytext=(4, 4) if n % 2 == 0 else (4, -10), textcoords="offset points")
        failed = df[(df["isl"] == isl) & (df["osl"] == osl) & (df["status"] != "ok")]
        lines = [f"failed ({_failure(str(s))}): " + "; ".join(_setting(r, by) for _, r in rows.iterrows())
                 for s, rows in failed.groupby("status")]
        if lines:
            ax.text(0.02, 0.02, textwrap.fill("\n".join(lines), 70, replace_whitespace=False), fontsize=6,
                    color="darkred", transform=ax.transAxes, va="bottom",
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        _axes(ax, f"ISL {_tokens(isl)} / OSL {_tokens(osl)}", "per-user output tokens/s (OSL / request latency)",
              "output tokens/s per GPU", _span_scale(x), LINEAR)
        if len(x):
            ax.legend(fontsize=7, loc="upper right")
    return _finish(fig, ctx, path)


def by_axis(df: pd.DataFrame, ctx: PlotContext, path: Path, axis: str, others: Sequence[str] = ()
            ) -> Path | None:
    """The values of one swept `axis` side by side: output tokens/s per GPU per ISL/OSL workload, one bar per
    value (the best over the `others` axes at it). A value that failed everywhere at a workload gets a red X and
    its failure class in its slot."""
    if df[axis].nunique() < 2 or not (df["status"] == "ok").any():
        return None
    cells = best(df, ["isl", "osl", axis])
    workloads = sorted({(int(i), int(o)) for i, o in zip(cells["isl"], cells["osl"], strict=True)})
    values = sorted(cells[axis].unique())
    width = 0.8 / len(values)
    fig, (ax,) = _figure(1, (min(30.0, max(7.0, 0.3 * len(workloads) * len(values) + 2)), 4.8),
                         f"{axis} side by side: output tokens/s per GPU" +
                         (f" (the best over {', '.join(others)} at each)" if others else ""), ctx)
    at_bottom = blended_transform_factory(ax.transData, ax.transAxes)
    failed_label = "failed (class below)"
    for j, v in enumerate(values):
        mine = cells[cells[axis] == v].set_index(["isl", "osl"])
        slots = np.arange(len(workloads)) + (j - (len(values) - 1) / 2) * width
        heights = [float(mine.loc[w, PER_GPU]) if w in mine.index and mine.loc[w, "status"] == "ok" else np.nan
                   for w in workloads]
        bars = ax.bar(slots, heights, width, label=f"{axis}={v}")
        if len(workloads) * len(values) <= 24:
            ax.bar_label(bars, ["" if math.isnan(h) else _number(h) for h in heights], fontsize=6)
        for slot, w in zip(slots, workloads, strict=True):
            if w in mine.index and mine.loc[w, "status"] != "ok":
                ax.plot([slot], [0.03], "x", color="crimson", markersize=8, mew=2, transform=at_bottom,
                        label=failed_label)
                ax.text(slot, 0.07, _failure(str(mine.loc[w, "status"])), rotation=90, ha="center", va="bottom",
                        fontsize=7, color="darkred", fontweight="bold", transform=at_bottom)
                failed_label = "_nolegend_"
    y = _span_scale(cells.loc[cells["status"] == "ok", PER_GPU].dropna())
    _axes(ax, "", "workload ISL/OSL (tokens)", "output tokens/s per GPU" + (" (log)" if y[0] else ""), LINEAR, y)
    ax.margins(y=0.08)  # room for the bars' value labels
    if y == LINEAR:
        ax.set_ylim(bottom=0)
    ax.set_xticks(range(len(workloads)), [f"{_tokens(i)}/{_tokens(o)}" for i, o in workloads],
                  rotation=45 if len(workloads) > 8 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(False, axis="x")
    ax.legend(fontsize=7, ncol=min(len(values) + 1, 6), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)  # above the bars, never over them
    return _finish(fig, ctx, path)


def kv_capacity(df: pd.DataFrame, ctx: PlotContext, path: Path, by: Sequence[str] = ()) -> Path | None:
    """How many sequences the KV pool holds at each sequence length, with the grid's points on it, one panel
    per `by` combination (TP changes the pool)."""
    if not (df["kv_tokens"] > 0).any():
        return None
    panels = _panels(df, by)
    fig, axes = _figure(len(panels), (6, 4.2), "KV cache capacity vs sequence length", ctx)
    for ax, (title, frame) in zip(axes, panels, strict=True):
        known = frame[frame["kv_tokens"].notna() & (frame["kv_tokens"] > 0)]
        _axes(ax, title, "sequence length ISL + OSL (tokens, log)", "sequences that fit in the KV cache",
              TOKENS, (10, _number))
        if known.empty:
            ax.text(0.5, 0.5, "no KV pool reported", transform=ax.transAxes, ha="center")
            continue
        seq = (known["isl"] + known["osl"]).to_numpy(dtype=float)
        lengths = np.logspace(np.log2(max(64, seq.min() / 2)), np.log2(seq.max() * 2), 100, base=2)
        pool = float(known["kv_tokens"].median())
        ax.plot(lengths, pool / lengths, color="gray", label=f"KV pool of {pool:,.0f} tokens / sequence length")
        ax.scatter(seq, known["kv_tokens"] / seq, zorder=3, label="grid points (red: failed)",
                   c=["tab:green" if s == "ok" else "tab:red" for s in known["status"]])
        failed = frame[(frame["status"] != "ok") & ~frame.index.isin(known.index)]  # no pool (OOM before it)
        if not failed.empty:
            lengths_failed = (failed["isl"] + failed["osl"]).to_numpy(dtype=float)
            ax.scatter(lengths_failed, pool / lengths_failed, marker="x", color="tab:red", zorder=3,
                       label="failed points without a KV pool (at the others' pool)")
        ax.axhline(1, color="crimson", linestyle="--", linewidth=1, label="one sequence")
        ax.legend(fontsize=7)
    return _finish(fig, ctx, path)


def _ladder_lines(frame: pd.DataFrame, others: tuple[str, ...]) -> Iterator[tuple[str, pd.DataFrame]]:
    """One line per (ISL, OSL) and value of the `others` axes, in concurrency order, with its legend label."""
    for key, line in frame.sort_values("concurrency").groupby(["isl", "osl", *others]):
        yield (f"{_tokens(key[0])}/{_tokens(key[1])}"
               + "".join(f" {c}={v}" for c, v in zip(others, key[2:], strict=True)), line)


def load_curves(df: pd.DataFrame, ctx: PlotContext, path: Path, others: tuple[str, ...] = ()) -> Path | None:
    """The load curve of a concurrency ladder: output tokens/s per GPU, and p95 TTFT and TPOT, against the
    concurrency limit, one line per (ISL, OSL) and value of the `others` axes."""
    ok = df[(df["status"] == "ok") & df["concurrency"].notna()] if "concurrency" in df.columns else df.iloc[0:0]
    if ok["concurrency"].nunique() < 2:
        return None
    fig, (top, ttft, tpot) = _figure(3, (5, 4.5), "Load curves over the concurrency ladder", ctx)
    for label, line in _ladder_lines(ok, others):
        top.plot(line["concurrency"], line[PER_GPU], marker="o", label=label)
        ttft.plot(line["concurrency"], line["ttft_ms_p95"], marker="o", label=label)
        tpot.plot(line["concurrency"], line["tpot_ms_p95"], marker="o", label=label)
    concurrency: Scale = (2, _number)
    _axes(top, "Throughput vs concurrency", "concurrent requests (log)", "output tokens/s per GPU", concurrency,
          LINEAR, xticks=ok["concurrency"])
    for ax, column, title in ((ttft, "ttft_ms_p95", "p95 time to first token"),
                              (tpot, "tpot_ms_p95", "p95 time per output token")):
        reported = bool(ok[column].notna().any())
        _axes(ax, title, "concurrent requests (log)", f"{column[:4].upper()} p95 (ms, log)", concurrency,
              (10, _number) if reported else LINEAR, xticks=ok["concurrency"])
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
    fig, (ax,) = _figure(1, (7, 4.5), "Peak GPU memory vs concurrency (telemetry)", ctx)
    for label, line in _ladder_lines(seen, others):
        ax.plot(line["concurrency"], line["peak_memory_gib"], marker="o", label=label)
    if seen["gpu_total_gib"].notna().any():
        ax.axhline(float(seen["gpu_total_gib"].max()), color="crimson", linestyle="--", linewidth=1,
                   label="GPU memory")
    _axes(ax, "", "concurrent requests (log)", "peak memory used (GiB)", (2, _number), LINEAR,
          xticks=seen["concurrency"])
    ax.legend(fontsize=7, title="ISL/OSL")
    return _finish(fig, ctx, path)


PANELLED: dict[str, Callable[..., Path | None]] = {
    "heatmap": heatmap, "throughput_vs_osl": throughput_vs_osl, "requests_vs_length": requests_vs_length,
    "kv_capacity": kv_capacity, "pareto": pareto}


def draw(run_dir: Path, spec: SweepSpec, analysis: Analysis, meta: dict[str, Any]) -> dict[str, Path]:
    """Every plot the data supports, by name, ONE PNG PER KIND for the whole run, so a grid with extra axes
    (TP, precision, ...) writes a handful of files, each comparing within one frame, not a set per group:
    - heatmap, throughput_vs_osl, requests_vs_length, kv_capacity: one panel per combination of the extra axes
      (past MAX_PANELS combinations, one panel of each workload's best point per GPU);
    - pareto: per ISL/OSL workload, the frontier over the choices the extra axes give (none without them);
    - by_<axis>, per swept extra axis: its values side by side, output tokens/s per GPU per workload;
    - load_curves and memory_vs_concurrency over a concurrency ladder."""
    backend = meta.get("provenance", {}).get("backend", {})
    swept = set(analysis.axes)
    fixed = ([f"{spec.precision} (KV {spec.kv})"] if not {"precision", "kv_cache_dtype"} & swept
             else []) + [f"{axis.upper()}{getattr(spec, axis)}" for axis in ("tp", "pp") if axis not in swept]
    ctx = PlotContext(title=plot_text(", ".join([spec.model.name, backend.get("gpu") or spec.gpu, *fixed,
                                                 backend.get("backend", spec.backend)])),
                      simulated=bool(analysis.counts.get("simulated")))
    df, axes = analysis.results, tuple(analysis.axes)
    made = {name: make(df, ctx, run_dir / f"{name}.png", by=axes) for name, make in PANELLED.items()}
    for axis in axes:
        made[f"by_{axis}"] = by_axis(df, ctx, run_dir / f"by_{axis}.png", axis, [a for a in axes if a != axis])
    if "concurrency" in axes:  # one load curve over the whole ladder
        others = tuple(a for a in axes if a != "concurrency")
        for name, curve in (("load_curves", load_curves), ("memory_vs_concurrency", memory_vs_concurrency)):
            made[name] = curve(df, ctx, run_dir / f"{name}.png", others)
    return {name: path for name, path in made.items() if path is not None}
