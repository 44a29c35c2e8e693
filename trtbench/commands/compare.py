"""`trtbench compare RUN_A RUN_B`: the verdict per point (faster, slower, no significant change), a markdown table
of B against A, ratio heatmaps, and the geometric mean; with --fail-on regression, exit 1 on a significant
slowdown (for CI), and with --junit a JUnit XML file for CI systems that show test results."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pandas as pd

from trtbench import analyze, html_report
from trtbench.commands.console import out as stdout
from trtbench.commands.utils import analyze_run, warn
from trtbench.compare import INCONCLUSIVE, SIMULATED, SLOWER, Comparison, compare
from trtbench.cost import priced
from trtbench.errors import TrtbenchError
from trtbench.escape import csv_safe_frame, md, plot_text, visible
from trtbench.files import atomic_write
from trtbench.report import AXIS_TITLES, fmt_count, fmt_rate, md_table
from trtbench.stats import FDR
from trtbench.store import RunStore


def _load(run_dir: Path, usd_per_gpu_hour: float | None = None) -> tuple[analyze.Analysis, str, bool]:
    store = RunStore.open(run_dir, warn)
    spec, meta = store.spec(), store.meta()
    result = analyze_run(store, run_dir, usd_per_gpu_hour)
    backend = meta.get("provenance", {}).get("backend", {}).get("backend", spec.backend)
    label = f"{run_dir.name} ({spec.model.name.split('/')[-1]} {spec.precision}, KV {spec.kv}, {backend})"
    return result, label, bool(result.counts.get("simulated"))


def _price(run_dir: Path, usd_per_gpu_hour: float | None) -> str:
    """The price a run's costs are at, as every cost figure names it; "no price" without one."""
    cost = priced(RunStore.open(run_dir, warn).spec(), usd_per_gpu_hour).cost
    return cost.label() if cost else "no price (no cost: in its spec)"


def accuracy_rows(a: analyze.Analysis, b: analyze.Analysis) -> list[tuple[str, str, str, str, str]]:
    """(task, metric, A, B, B-A) where each run gated one artifact (an FP8 run against an FP16 one, say)."""
    if not a.accuracy or not b.accuracy or len(a.accuracy) != 1 or len(b.accuracy) != 1:
        return []
    [va], [vb] = a.accuracy.values(), b.accuracy.values()
    return [(task, metric, f"{score:.2f}", f"{vb.scores[task][metric]:.2f}",
             f"{vb.scores[task][metric] - score:+.2f}")
            for task, metrics in va.scores.items() for metric, score in metrics.items()
            if metric in vb.scores.get(task, {})]


def parse_threshold(text: str) -> float:
    """`2%` or `0.02` -> 0.02; anything else refused in one line."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
    value = float(match.group(1)) / (100 if match.group(2) else 1) if match else -1.0
    if not 0 <= value < 1:
        raise TrtbenchError(f"--threshold {text!r}: give a relative change below 100%, as 2% or 0.02")
    return value


def with_costs(cmp: Comparison, a: analyze.Analysis, b: analyze.Analysis) -> Comparison:
    """`cmp` with each side's USD per million output tokens per point (`a_usd_per_mtok`, `b_usd_per_mtok`), each at
    its run's price (the spec's `cost:`, or --usd-per-gpu-hour for both); unchanged where neither run has a price."""
    costs = {side: run.results.set_index("point_id")["usd_per_mtok"].astype(float)
             for side, run in (("a", a), ("b", b))}
    if not any(c.notna().any() for c in costs.values()):
        return cmp
    joined = cmp.joined.assign(**{f"{side}_usd_per_mtok": cmp.joined[f"{side}_point_id"].map(cost)
                                  for side, cost in costs.items()})
    return replace(cmp, joined=joined)


def cost_section(cmp: Comparison, prices: tuple[str, str], simulated: bool) -> list[str]:
    """Each side's USD per million output tokens per point that succeeded in both, with each side's price."""
    if "a_usd_per_mtok" not in cmp.joined:
        return []
    both = cmp.joined[cmp.joined["ratio"].notna()]
    axes = [k for k in cmp.keys if k in AXIS_TITLES]

    def cell(value: float) -> str:
        return "-" if pd.isna(value) else f"{value:,.4f}"

    rows = [(*(r[x] for x in axes), r["isl"], r["osl"], cell(r["a_usd_per_mtok"]), cell(r["b_usd_per_mtok"]),
             cell(r["b_usd_per_mtok"] / r["a_usd_per_mtok"])) for _, r in both.iterrows()]
    basis = "**simulated** throughput (a prediction)" if simulated else "measured throughput"
    return ["## Cost per million output tokens", "",
            f"USD per million output tokens = price x GPUs / (output tokens/s x 3,600) x 10^6, from {basis}; A at "
            f"{md(prices[0])}, B at {md(prices[1])}.", "",
            md_table((*(AXIS_TITLES[x] for x in axes), "ISL", "OSL", "A USD/M output tok", "B USD/M output tok",
                      "B/A"), rows), ""]


def verdict_section(cmp: Comparison, axes: list[str], simulated: bool) -> list[str]:
    """The verdict table, slowest first: what a release-to-release comparison is for."""
    tested = cmp.joined[cmp.joined["verdict"].notna()].sort_values("change_pct", kind="stable")
    counts = ", ".join(f"{n} {v}" for v, n in tested["verdict"].value_counts().items())
    how = ("each point's change of mean output tok/s, Welch's t-test on the runs of each side (where a side ran "
           "once, a t-test against the noise floor of the same machine's repeated points, as the Test column says), "
           f"Benjamini-Hochberg across the {int(tested['p'].notna().sum())} tested points (FDR {FDR:.0%}); faster "
           f"or slower: significant and beyond the threshold of {cmp.threshold:.1%}")
    if simulated:
        how = "simulated: the simulator predicts the same numbers every run, so no change is tested for significance"
    rows = [(*(r[x] for x in axes), r["isl"], r["osl"], f"{r['a_runs']}/{r['b_runs']}", r["verdict"],
             f"{r['change_pct']:+.2f}%",
             f"{r['change_low_pct']:+.2f}% to {r['change_high_pct']:+.2f}%" if pd.notna(r["change_low_pct"]) else "-",
             f"{r['q']:.3g}" if pd.notna(r["q"]) else "-", r["basis"] if pd.notna(r["basis"]) else "-")
            for _, r in tested.iterrows()]
    return ["## Verdict", "", f"{counts or 'no point succeeded in both'} ({how}).", "",
            md_table((*(AXIS_TITLES[x] for x in axes), "ISL", "OSL", "Runs A/B", "Verdict", "Change", "95% CI",
                      "q (BH)", "Test"), rows), ""]


def render(cmp: Comparison, a_label: str, b_label: str, plots: list[Path], simulated: bool,
           accuracy: list[tuple[str, str, str, str, str]] | None = None, prices: tuple[str, str] = ("", "")) -> str:
    axes = [k for k in cmp.keys if k in AXIS_TITLES]
    out = [f"# Comparison: B = {md(b_label)} vs A = {md(a_label)}", ""]
    if simulated:
        out += ["> **SIMULATED**: at least one of the runs was predicted by trtbench's simulator, not measured.", ""]
    out += verdict_section(cmp, axes, simulated)
    geo = f"**{cmp.geomean:.3f}x**" if cmp.geomean is not None else "n/a (no point succeeded in both)"
    both = int(cmp.joined["ratio"].notna().sum())
    out += [f"Geometric-mean speedup of B over A (output tokens/s, {both} points that succeeded in both): {geo}", ""]
    if accuracy:
        out += ["Accuracy beside it (trtllm-eval scores x 100 of each run's artifact, `trtbench accuracy run`):", "",
                md_table(("Task", "Metric", "A", "B", "B-A"), accuracy), ""]
    if cmp.requests_differ:
        out += [f"Request counts differ at {cmp.requests_differ} of {len(cmp.joined)} matched points (each run's "
                f"requests rule); both counts are in the table.", ""]
    rows = []
    for _, r in cmp.joined.iterrows():
        a = fmt_rate(r["a_tok_s"]) if r["a_status"] == "ok" else r["a_status"]
        b = fmt_rate(r["b_tok_s"]) if r["b_status"] == "ok" else r["b_status"]
        ratio = f"{r['ratio']:.3f}" if pd.notna(r["ratio"]) else "-"
        delta = f"{r['delta']:+,.2f}" if pd.notna(r["delta"]) else "-"
        requests = fmt_count(r["a_requests"]) if r["a_requests"] == r["b_requests"] else \
            f"A {fmt_count(r['a_requests'])}, B {fmt_count(r['b_requests'])}"
        rows.append((*(r[x] for x in axes), r["isl"], r["osl"], requests, a, b, ratio, delta))
    titles = [AXIS_TITLES[x] for x in axes]
    out += ["## Output tokens/s per point", "",
            md_table((*titles, "ISL", "OSL", "Requests", "A tok/s", "B tok/s", "B/A", "B-A tok/s"), rows), ""]
    out += cost_section(cmp, prices, simulated)
    out += ["## Not compared", ""]
    unmatched = [(*(r[x] for x in axes), r["isl"], r["osl"], r["side"], r["why"]) for _, r in cmp.unmatched.iterrows()]
    out += [md_table((*titles, "ISL", "OSL", "Only in", "Why"), unmatched) if unmatched else
            "None: every point of each run has its match.", ""]
    out += ["## Failed in one run only", ""]
    sides = (("A", cmp.failed_only_in_a), ("B", cmp.failed_only_in_b))
    failed = [(*(r[x] for x in axes), r["isl"], r["osl"], fmt_count(r[f"{side.lower()}_requests"]), side,
               r[f"{side.lower()}_status"])
              for side, frame in sides for _, r in frame.iterrows()]
    out += [md_table((*titles, "ISL", "OSL", "Requests", "Failed in", "Status"), failed) if failed else "None.", ""]
    if plots:
        out += ["## Ratio heatmap", "", *(f"![B/A output tokens/s]({p.name})\n" for p in plots)]
    return "\n".join(out)


def junit(cmp: Comparison, suite: str) -> bytes:
    """The verdicts as JUnit XML, which CI systems show per test: a testcase per matched point (classname its
    axes, name its ISL/OSL), failing where it is significantly slower beyond the threshold (what --fail-on
    regression exits 1 on), skipped where nothing was tested (inconclusive, simulated, failed in a run)."""
    axes = [k for k in cmp.keys if k in AXIS_TITLES]
    root = ET.Element("testsuites")
    cases = ET.SubElement(root, "testsuite", name=visible(suite))
    failures = skipped = 0
    for _, r in cmp.joined.iterrows():
        case = ET.SubElement(cases, "testcase", classname=visible(" ".join(f"{x}={r[x]}" for x in axes) or "all"),
                             name=f"ISL {r['isl']} / OSL {r['osl']}")
        verdict = r["verdict"]
        if verdict == SLOWER:
            failures += 1
            ET.SubElement(case, "failure", type="regression", message=(
                f"slower by {-r['change_pct']:.2f}% (95% CI {r['change_low_pct']:+.2f}% to "
                f"{r['change_high_pct']:+.2f}%, q {r['q']:.3g}), beyond the threshold of {cmp.threshold:.1%}"))
        elif verdict in (INCONCLUSIVE, SIMULATED) or pd.isna(verdict):
            skipped += 1
            ET.SubElement(case, "skipped", message=visible(verdict if pd.notna(verdict) else
                                                           f"not compared ({r['status']})"))
    cases.attrib.update(tests=str(len(cmp.joined)), failures=str(failures), skipped=str(skipped), errors="0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def compare_runs(run_a: Path, run_b: Path, out: Path | None, plots: bool = True, threshold: str = "0%",
                 fail_on: str | None = None, as_json: bool = False, junit_path: Path | None = None,
                 usd_per_gpu_hour: float | None = None) -> int:
    """Returns the exit status: 1 with `fail_on` "regression" when a point is significantly slower by more than
    the threshold, else 0."""
    if fail_on not in (None, "regression"):
        raise TrtbenchError(f"--fail-on {fail_on!r}: the one choice is regression")
    relative = parse_threshold(threshold)
    a, a_label, a_sim = _load(run_a, usd_per_gpu_hour)
    b, b_label, b_sim = _load(run_b, usd_per_gpu_hour)
    cmp = with_costs(compare(a, b, relative, a_sim or b_sim), a, b)
    out = out or Path("runs") / f"compare_{run_a.name}_vs_{run_b.name}"
    out.mkdir(parents=True, exist_ok=True)
    drawn: list[Path] = []
    if plots:  # one figure: a panel per combination of the matched axes
        from trtbench.plots import PlotContext, heatmap

        axes = [k for k in cmp.keys if k in AXIS_TITLES]
        ctx = PlotContext(title=f"B = {plot_text(b_label)}\nA = {plot_text(a_label)}", simulated=a_sim or b_sim)
        path = heatmap(cmp.joined, ctx, out / "ratio_heatmap.png", value="ratio", label="B / A output tokens/s",
                       fmt="{:.2f}x", center=1.0, by=axes)
        drawn = [path] if path is not None else []
    prices = (_price(run_a, usd_per_gpu_hour), _price(run_b, usd_per_gpu_hour))
    atomic_write(out / "compare.md", render(cmp, a_label, b_label, drawn, a_sim or b_sim, accuracy_rows(a, b), prices))
    atomic_write(out / "compare.csv", csv_safe_frame(cmp.joined).to_csv(index=False))
    html_report.write(out / "compare.html", html_report.compare_page(cmp, a_label, b_label, a_sim or b_sim))
    keys = [*cmp.keys, "a_runs", "b_runs", "verdict", "basis", "change_pct", "change_low_pct", "change_high_pct", "p",
            "q"]
    verdicts = json.loads(cmp.joined[keys].to_json(orient="records"))
    if as_json:
        atomic_write(out / "compare.json", json.dumps({"threshold": relative, "fdr": FDR, "simulated": a_sim or b_sim,
                                                       "geomean": cmp.geomean, "points": verdicts}, indent=2) + "\n")
    if junit_path is not None:
        atomic_write(junit_path, junit(cmp, f"trtbench compare {run_b.name} vs {run_a.name}"))
    geo = f"{cmp.geomean:.3f}x" if cmp.geomean is not None else "n/a"
    stdout.print(f"compared {len(cmp.joined)} points, geometric-mean B/A {geo}: {out / 'compare.md'}")
    slower = cmp.joined[cmp.joined["verdict"] == SLOWER]
    for _, r in slower.iterrows():
        stdout.print(f"slower: {' '.join(f'{k}={r[k]}' for k in cmp.keys)} {r['change_pct']:+.2f}% (q {r['q']:.3g})")
    if fail_on and len(slower):
        stdout.print(f"--fail-on regression: {len(slower)} point(s) significantly slower by more than "
                     f"{relative:.1%}: exit status 1")
        return 1
    return 0
