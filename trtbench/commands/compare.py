"""`trtbench compare RUN_A RUN_B`: a markdown table of B against A, a ratio heatmap, and the geometric mean."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trtbench import analyze
from trtbench.commands.utils import console
from trtbench.compare import Comparison, compare
from trtbench.plots import PlotContext, heatmap
from trtbench.report import fmt_count, fmt_rate, md_table
from trtbench.store import RunStore


def _load(run_dir: Path) -> tuple[analyze.Analysis, str, bool]:
    store = RunStore.open(run_dir)
    spec, meta = store.spec(), store.meta()
    result = analyze.analyze(store.records(), meta.get("point_ids", []))
    backend = meta.get("provenance", {}).get("backend", {}).get("backend", spec.backend)
    label = f"{run_dir.name} ({spec.model.name.split('/')[-1]} {spec.precision}, KV {spec.kv_cache_dtype}, {backend})"
    return result, label, bool(analyze.sources(result.results).get("simulated"))


def render(cmp: Comparison, a_label: str, b_label: str, plot: Path | None, simulated: bool) -> str:
    out = [f"# Comparison: B = {b_label} vs A = {a_label}", ""]
    if simulated:
        out += ["> **SIMULATED**: at least one of the runs was predicted by trtbench's simulator, not measured.", ""]
    geo = f"**{cmp.geomean:.3f}x**" if cmp.geomean is not None else "n/a (no point succeeded in both)"
    both = int(cmp.joined["ratio"].notna().sum())
    out += [f"Geometric-mean speedup of B over A (output tokens/s, {both} points that succeeded in both): {geo}", ""]
    if cmp.only_in_a or cmp.only_in_b:
        out += [f"Not compared: {cmp.only_in_a} point(s) only in A, {cmp.only_in_b} only in B.", ""]
    rows = []
    for r in cmp.joined.itertuples():
        a = fmt_rate(r.a_tok_s) if r.a_status == "ok" else r.a_status
        b = fmt_rate(r.b_tok_s) if r.b_status == "ok" else r.b_status
        ratio = f"{r.ratio:.3f}" if pd.notna(r.ratio) else "-"
        delta = f"{r.delta:+,.2f}" if pd.notna(r.delta) else "-"
        rows.append((r.isl, r.osl, fmt_count(r.requests), a, b, ratio, delta))
    out += ["## Output tokens/s per point", "",
            md_table(("ISL", "OSL", "Requests", "A tok/s", "B tok/s", "B/A", "B-A tok/s"), rows), ""]
    out += ["## Failed in one run only", ""]
    failed = [(r.isl, r.osl, fmt_count(r.requests), "A", r.a_status) for r in cmp.failed_only_in_a.itertuples()]
    failed += [(r.isl, r.osl, fmt_count(r.requests), "B", r.b_status) for r in cmp.failed_only_in_b.itertuples()]
    out += [md_table(("ISL", "OSL", "Requests", "Failed in", "Status"), failed) if failed else "None.", ""]
    if plot is not None:
        out += ["## Ratio heatmap", "", f"![B/A output tokens/s]({plot.name})", ""]
    return "\n".join(out)


def compare_runs(run_a: Path, run_b: Path, out: Path | None) -> None:
    a, a_label, a_sim = _load(run_a)
    b, b_label, b_sim = _load(run_b)
    cmp = compare(a, b)
    out = out or Path("runs") / f"compare_{run_a.name}_vs_{run_b.name}"
    out.mkdir(parents=True, exist_ok=True)
    ctx = PlotContext(title=f"B = {b_label}\nA = {a_label}", simulated=a_sim or b_sim)
    plot = heatmap(cmp.joined, ctx, out / "ratio_heatmap.png", value="ratio", label="B / A output tokens/s",
                   fmt="{:.2f}x")
    (out / "compare.md").write_text(render(cmp, a_label, b_label, plot, a_sim or b_sim))
    cmp.joined.to_csv(out / "compare.csv", index=False)
    geo = f"{cmp.geomean:.3f}x" if cmp.geomean is not None else "n/a"
    console.print(f"compared {len(cmp.joined)} points, geometric-mean B/A {geo}: {out / 'compare.md'}")
