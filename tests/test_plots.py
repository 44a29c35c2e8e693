"""The report's plots: one PNG per kind for a whole run, extra axes compared in one frame per GPU, a Pareto
frontier per workload, failures marked where they failed, ticks in plain numbers. Figures are inspected as
matplotlib objects, before they are saved."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.conftest import SMALL_SPEC
from tests.test_report import rec
from trtbench import analyze as an
from trtbench import plots
from trtbench.plots import PlotContext
from trtbench.report import write_report
from trtbench.spec import parse_spec

CTX = PlotContext("t", simulated=True)
TP_SPEC = parse_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  tp: [1, 2, 4]\n"))
# Output tokens/s per GPU by hand at each TP for the four workloads of SMALL_SPEC; None: out of memory.
PER_GPU = {(128, 128): {1: 1200.0, 2: 900.0, 4: 500.0}, (128, 1024): {1: 1500.0, 2: 1000.0, 4: 600.0},
           (2048, 128): {1: 300.0, 2: 250.0, 4: 200.0}, (2048, 1024): {1: None, 2: 700.0, 4: 450.0}}
PER_USER = {1: 20.0, 2: 35.0, 4: 50.0}  # more GPUs per request: faster for each user, less per GPU


def tp_analysis() -> an.Analysis:
    """The grid TP 1, 2, 4 x ISL 128, 2048 x OSL 128, 1024, each point's total throughput its per-GPU value x TP."""
    records = []
    for (isl, osl), by_tp in PER_GPU.items():
        for tp, per_gpu in by_tp.items():
            r = (rec(isl, osl, 100, per_gpu * tp, per_user_tok_s=PER_USER[tp]) if per_gpu
                 else rec(isl, osl, 100, None, status="oom"))
            records.append(r.model_copy(update={"axes": {**r.axes, "tp": tp}, "point_id": f"{tp}-{isl}-{osl}"}))
    return an.analyze(records, [r.point_id for r in records], TP_SPEC)


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the plots module finishes, kept open for inspection (nothing is saved)."""
    kept: list[Figure] = []
    monkeypatch.setattr(plots, "_finish", lambda fig, ctx, path: kept.append(fig) or path)
    return kept


def tick_labels(fig: Figure) -> list[str]:
    """Every tick label of every axis of `fig` (colour bars included), as drawn."""
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
            for t in axis.get_ticklabels(which="both") if t.get_text()]


def test_a_tp_grid_draws_one_png_per_kind_not_a_set_per_tp(tmp_path):
    """3 TP x 4 workloads: five files (before: heatmap, throughput_vs_osl, requests_vs_length and pareto once
    per TP, twelve), each embedded in the report."""
    a = tp_analysis()
    drawn = plots.draw(tmp_path, TP_SPEC, a, {})
    assert set(drawn) == {"heatmap", "throughput_vs_osl", "requests_vs_length", "pareto", "by_tp"}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "by_tp.png", "heatmap.png", "pareto.png", "requests_vs_length.png", "throughput_vs_osl.png"]
    report = write_report(tmp_path, TP_SPEC, a, {}, 10, drawn)[0].read_text()
    for name in drawn:
        assert f"]({name}.png)" in report


def test_a_simulated_tp_sweep_writes_six_pngs(cli, write_spec, tmp_path):
    assert cli("sweep", str(write_spec(SMALL_SPEC.replace("grid:\n", "grid:\n  tp: [1, 2, 4]\n")))).code == 0
    run = tmp_path / "runs" / "tiny"
    assert sorted(p.stem for p in run.glob("*.png")) == [
        "by_tp", "heatmap", "kv_capacity", "pareto", "requests_vs_length", "throughput_vs_osl"]
    assert "](by_tp.png)" in (run / "report.md").read_text()


def test_by_tp_puts_one_bar_per_tp_at_each_workload_per_gpu(figures, tmp_path):
    plots.by_axis(tp_analysis().results, CTX, tmp_path / "by_tp.png", "tp")
    (ax,) = figures[0].axes
    workloads = sorted(PER_GPU)  # the x slots, left to right
    assert [t.get_text() for t in ax.get_xticklabels()] == ["128/128", "128/1k", "2k/128", "2k/1k"]
    assert [c.get_label() for c in ax.containers] == ["tp=1", "tp=2", "tp=4"]
    for container, tp in zip(ax.containers, (1, 2, 4), strict=True):
        heights = [bar.get_height() for bar in container]
        expected = [PER_GPU[w][tp] or np.nan for w in workloads]
        assert heights == pytest.approx(expected, nan_ok=True)  # per GPU: TP 4 does not win by its size


def test_a_failed_point_is_marked_in_its_slot(figures, tmp_path):
    """TP 1 ran out of memory at 2k/1k: its slot (workload 3, first of three bars 0.8/3 wide) has a red X and
    the label OOM, and the legend says what the X means."""
    plots.by_axis(tp_analysis().results, CTX, tmp_path / "by_tp.png", "tp")
    (ax,) = figures[0].axes
    slot = 3 - 0.8 / 3
    (oom,) = [t for t in ax.texts if t.get_text() == "OOM"]
    assert oom.get_position()[0] == pytest.approx(slot)
    (cross,) = [line for line in ax.lines if line.get_marker() == "x"]
    assert cross.get_xdata()[0] == pytest.approx(slot) and cross.get_color() == "crimson"
    assert "failed (class below)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_every_axis_of_every_plot_is_ticked_in_plain_numbers(figures, tmp_path):
    plots.draw(tmp_path, TP_SPEC, tp_analysis(), {})
    kv = pd.DataFrame({"isl": [128, 2048], "osl": [128, 2048], "status": ["ok", "ok"], "kv_tokens": [1e5, 1e5]})
    plots.kv_capacity(kv, CTX, tmp_path / "kv.png")
    labels = [label for fig in figures for label in tick_labels(fig)]
    assert labels and all(re.fullmatch(r"[\d,.]+k?(/[\d.]+k?)?", label) for label in labels), labels
    heatmap = figures[0].axes[0]
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["128", "1k"]
    assert [t.get_text() for t in heatmap.get_yticklabels()] == ["128", "2k"]
    kv_labels = tick_labels(figures[-1])
    assert {"512", "1k", "2k", "10", "1,000"} <= set(kv_labels)  # log axes: base 2 and base 10


def test_a_log_throughput_axis_reads_in_thousands(figures, tmp_path):
    """Throughputs spanning more than 30x are drawn log, still ticked 1,000 not 10^3."""
    frame = pd.DataFrame({"isl": [128, 128], "osl": [128, 1024], "status": ["ok", "ok"],
                          "output_tok_per_s": [40.0, 5000.0]})
    plots.throughput_vs_osl(frame, CTX, tmp_path / "t.png")
    (ax,) = figures[0].axes
    assert ax.get_yscale() == "log"
    assert {"50", "100", "1,000", "5,000"} <= set(tick_labels(figures[0]))


def test_frontier_is_the_non_dominated_points():
    # (per user, per GPU): (15, 70) is beaten by (20, 80); (5, 90) by (10, 100).
    x, y = np.array([10.0, 20.0, 15.0, 5.0, 30.0]), np.array([100.0, 80.0, 70.0, 90.0, 40.0])
    assert plots.frontier(x, y) == [0, 1, 4]


def test_pareto_has_one_frontier_per_workload(figures, tmp_path):
    """Workload 128/128's choices (10, 100) and (20, 80) are its frontier although 2k/128's (50, 120) would
    dominate them both on a frontier across workloads: a user cannot trade one workload for another."""
    frame = pd.DataFrame({
        "isl": [128] * 4 + [2048] * 3, "osl": [128] * 7, "tp": [1, 2, 4, 8, 1, 2, 4],
        "status": ["ok"] * 6 + ["oom"],
        "per_user_tok_s": [10.0, 20.0, 15.0, 5.0, 50.0, 40.0, None],
        "output_tok_per_s_per_gpu": [100.0, 80.0, 70.0, 90.0, 120.0, 110.0, None]})
    plots.pareto(frame, CTX, tmp_path / "pareto.png", by=["tp"])
    small, large = figures[0].axes
    assert [ax.get_title() for ax in (small, large)] == ["ISL 128 / OSL 128", "ISL 2k / OSL 128"]
    for ax, expected in ((small, [(10, 100), (20, 80)]), (large, [(50, 120)])):
        (line,) = [line for line in ax.lines if line.get_label() == "Pareto frontier"]
        assert list(zip(line.get_xdata(), line.get_ydata(), strict=True)) == expected
    assert [t.get_text() for t in large.texts if "OOM" in t.get_text()] == ["failed (OOM): tp=4"]


def test_pareto_needs_choices():
    """Without an extra axis each workload is one point: nothing to trade, no plot."""
    frame = pd.DataFrame({"isl": [128, 2048], "osl": [128, 128], "status": ["ok", "ok"],
                          "per_user_tok_s": [10.0, 50.0], "output_tok_per_s_per_gpu": [100.0, 120.0]})
    assert plots.pareto(frame, CTX, plots.Path("unused.png"), by=()) is None


def test_best_keeps_each_workloads_best_point_per_gpu_or_its_failure():
    frame = pd.DataFrame({"isl": [128, 128, 128, 2048, 2048], "osl": [128] * 5, "tp": [1, 2, 4, 1, 2],
                          "status": ["ok", "ok", "oom", "oom", "timeout"],
                          "output_tok_per_s_per_gpu": [100.0, 300.0, None, None, None]})
    kept = plots.best(frame, ["isl", "osl"]).sort_values("isl")
    assert kept[["isl", "tp", "status"]].values.tolist() == [[128, 2, "ok"], [2048, 1, "oom"]]


def test_more_groups_than_panels_fold_into_each_workloads_best(figures, tmp_path):
    """13 concurrency values, past the 12-panel cap: one panel, the best of the 13 at the one workload."""
    n = plots.MAX_PANELS + 1
    frame = pd.DataFrame({"isl": [128] * n, "osl": [128] * n, "concurrency": range(1, n + 1), "status": ["ok"] * n,
                          "output_tok_per_s_per_gpu": [100.0 * c for c in range(1, n + 1)]})
    plots.heatmap(frame, CTX, tmp_path / "h.png", by=["concurrency"])
    panel, _colorbar = figures[0].axes
    assert panel.get_title() == f"best point per GPU over concurrency ({n} combinations)"
    assert [t.get_text() for t in panel.texts] == [f"{100 * n:,}"]
