"""Analysis -> `report.md` (the tables people read) and `results.csv` / `results.parquet` (one row per
point). It formats what `analyze` computed and reads nothing but the run's records and metadata.

Every table carries a line saying whether its numbers were measured or simulated.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trtbench import analyze as an
from trtbench.catalog.models import resolve_model
from trtbench.errors import TrtbenchError
from trtbench.escape import Markdown, csv_safe_frame, md, md_code
from trtbench.files import atomic_write
from trtbench.guided.section import guided_section
from trtbench.sla import Bounds
from trtbench.spec import BenchMode, SweepSpec
from trtbench.stats import BOOTSTRAP_FROM, NOISY_CV

TOP_HEADER = ("Rank", "ISL", "OSL", "Requests", "Token Throughput", "Request Throughput", "Total Tokens")
AXIS_TITLES = {"precision": "Precision", "kv_cache_dtype": "KV cache", "tp": "TP", "pp": "PP", "ep": "EP",
               "max_batch_size": "max_batch_size", "max_num_tokens": "max_num_tokens", "concurrency": "Concurrency"}
PLOT_TITLES = {
    "heatmap": "Output tokens/s per GPU by ISL x OSL, a panel per swept combination (failed cells marked)",
    "throughput_vs_osl": "Throughput vs output length, one line per input length",
    "requests_vs_length": "Request throughput vs tokens per request",
    "pareto": "Throughput per GPU vs per-user speed: the Pareto frontier of each ISL/OSL workload's choices",
    "kv_capacity": "KV cache capacity vs sequence length",
    **{f"by_{axis}": f"{title} side by side: output tokens/s per GPU per ISL/OSL workload (failures marked)"
       for axis, title in AXIS_TITLES.items()},
    "load_curves": "Load curves: throughput per GPU, p95 TTFT and p95 TPOT vs concurrency",
    "memory_vs_concurrency": "Peak GPU memory vs concurrency (telemetry)",
}


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub table of trtbench's own `header`; every cell escaped (`escape.md`) unless it is `Markdown`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(c if isinstance(c, Markdown) else md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


RANK_TITLES = {"output_tok_per_s": "Token Throughput", "output_tok_per_s_per_gpu": "Output Tokens/s per GPU",
               "joules_per_token": "Energy per Output Token", "usd_per_mtok": "USD per Million Output Tokens",
               "tok_per_joule": "Output Tokens per Joule"}
COST_HEADERS = {"usd_per_mtok": "USD/M output tok", "usd_per_mtok_total": "USD/M total tok"}


def has_cost(df: pd.DataFrame) -> bool:
    """Whether any point has a cost (the spec's or the command line's price covers its GPU)."""
    return "usd_per_mtok" in df and bool(df["usd_per_mtok"].notna().any())


def cost_line(spec: SweepSpec, a: an.Analysis) -> str:
    """The price and its source, how a cost figure is made, and from what throughput; "" without a price."""
    if spec.cost is None:
        return ""
    if not has_cost(a.results):
        return f" No point has a cost: no price in `cost:` covers its GPU ({md(spec.cost.label())})."
    measured, simulated = a.counts.get("measured", 0), a.counts.get("simulated", 0)
    basis = ("**simulated** throughput (a prediction, not a measurement)" if not measured else
             "measured throughput" if not simulated else "each point's throughput, measured or **simulated**")
    return (f" **Cost** at {md(spec.cost.label())}: USD per million output (or total) tokens = price x GPUs / "
            f"(tokens/s x 3,600) x 10^6, from {basis}.")


def _cost_columns(df: pd.DataFrame, by: an.Ranking) -> list[str]:
    """The cost columns a table of `df` shows beside the ranking (none without a price)."""
    return [c for c in COST_HEADERS if c != by.column] if has_cost(df) else []


def _cost_cells(r: Any, columns: list[str]) -> list[str]:
    return ["-" if pd.isna(r[c]) else f"{r[c]:,.4f}" for c in columns]


def fmt_rate(x: float) -> str:
    return f"{x:,.2f}"


def fmt_count(n: float) -> str:
    return f"{int(n):,}"


def fmt_tokens(n: float) -> Markdown:
    """The study's compact form: ~8.6M, ~950K (one tilde strikes nothing through)."""
    if n >= 1e6:
        return Markdown(f"~{n / 1e6:.1f}M")
    if n >= 1e3:
        return Markdown(f"~{n / 1e3:.0f}K")
    return Markdown(str(int(n)))


def group_title(values: dict[str, Any]) -> str:
    return ", ".join(f"{AXIS_TITLES[k]} {md(v)}" for k, v in values.items())


def _axes(row: Any, axes: list[str]) -> list[Any]:
    return [row[a] for a in axes]


def source_line(counts: dict[str, int], perf_model: str | None) -> str:
    if not counts:
        return "_Source: no results._"
    if set(counts) == {"simulated"}:
        return f"_Source: **simulated** by trtbench's simulator ({perf_model}); not measured on a GPU._"
    if set(counts) == {"measured"}:
        return "_Source: measured with trtllm-bench._"
    return f"_Source: mixed: {counts.get('measured', 0)} measured, {counts.get('simulated', 0)} simulated points._"


def calibration_note(cal: dict[str, Any] | None) -> str:
    """What the simulator's calibration says about this sweep's deployments (from the run's provenance): the
    cross-validated error, a floor outside the calibration; never the fit's MAPE on its own rows, which flatters
    (runs recorded before the cross-validation carry only that one, and get no number)."""
    if not cal:
        return ""
    error = cal.get("error_pct")
    if cal.get("outside"):
        if error is None:
            return f" This sweep is **outside the calibration**: {md('; '.join(cal['outside']))}."
        return (f" Expect an error of **at least {error:.1f}%, outside the calibration**: "
                f"{md('; '.join(cal['outside']))} (the floor is the nearest calibrated group's out-of-sample error, "
                f"{md(cal.get('basis'))} held out of the fit), likely more.")
    if error is not None:
        return (f" This sweep is inside its calibration: out-of-sample error about {error:.1f}% "
                f"({md(cal.get('basis'))} held out of the fit).")
    return ""


SLA_HEADERS = {"isl": "ISL", "osl": "OSL", "output_tok_per_s_per_gpu": "Output tok/s/GPU",
               "output_tok_per_s": "Output tok/s", **COST_HEADERS,
               "ttft_ms_p95": "TTFT p95 ms", "tpot_ms_p95": "TPOT p95 ms",
               "latency_ms_p95": "Latency p95 ms", "source": "Source", "next_step": "Next step stopped by",
               "verdict": "Verdict"}


def sla_columns(table: pd.DataFrame, axes: list[str], bounds: Bounds) -> list[str]:
    """The columns of a `sla.best_under` table worth showing, in order."""
    columns = [c for c in ["isl", "osl", *axes, "output_tok_per_s_per_gpu", "output_tok_per_s", *COST_HEADERS,
                           *bounds.given(),
                           "source", "next_step", "verdict"] if c in table.columns]
    if "verdict" in columns and (table["verdict"] == "best").all():  # only where some pair has no such point
        columns.remove("verdict")
    return columns


def sla_rows(table: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a `sla.best_under` table."""
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    headers = [SLA_HEADERS.get(c, AXIS_TITLES.get(c, c)) for c in columns]
    return headers, [[cell(r.get(c)) for c in columns] for r in table.to_dict("records")]


def sla_section(spec: SweepSpec, a: an.Analysis) -> str | None:
    if a.sla is None or spec.sla is None:
        return None
    bounds = Bounds.of(spec.sla)
    headers, rows = sla_rows(a.sla, sla_columns(a.sla, a.axes, bounds))
    return (f"Under {bounds.describe()}: per ISL/OSL, the best point by {a.ranking.name}. The Source "
            f"column says measured or **simulated**; failed points never qualify.{cost_line(spec, a)}"
            f"\n\n{md_table(headers, rows)}")


RANK_HEADERS = {"output_tok_per_s_per_gpu": "Tok/s per GPU", "joules_per_token": "J per output token",
                "usd_per_mtok": COST_HEADERS["usd_per_mtok"], "tok_per_joule": "Output tok/J"}


def fmt_ranked(r: Any, by: an.Ranking) -> str:
    """A row's value of the ranking, "-" where it has none."""
    value = r[by.column]
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.4f}" if by.ascending else fmt_rate(value)


def _ranked_cells(r: Any, by: an.Ranking) -> list[str]:
    """The ranking's own value first when it is not the total, which always stands beside it."""
    return [*([fmt_ranked(r, by)] if by.column in RANK_HEADERS else []), fmt_rate(r["output_tok_per_s"])]


def _ranked_headers(by: an.Ranking) -> list[str]:
    total = "Token Throughput (total)" if by.per_gpu else "Token Throughput"
    return [*([RANK_HEADERS[by.column]] if by.column in RANK_HEADERS else []), total]


def top_table(df: pd.DataFrame, n: int, axes: list[str], by: an.Ranking = an.TOTAL) -> str:
    """With repeats, each point's 95% interval of tok/s and whether it is tied with the leader (`analyze.tied`)."""
    gated = bool(df["accuracy"].notna().any())
    best = an.top(df, by, n)
    spread = "output_tok_per_s_ci_low" in df
    cost = _cost_columns(df, by)
    rows = [
        (rank, *_axes(r, axes), r["isl"], r["osl"], fmt_count(r["requests"]), *_ranked_cells(r, by),
         *_cost_cells(r, cost),
         *([_interval(r), "tied within noise" if tie else ""] if spread else []),
         fmt_rate(r["request_per_s"]), fmt_tokens(r["total_tokens"]), *([r["accuracy"]] if gated else []))
        for rank, ((_, r), tie) in enumerate(zip(best.iterrows(), an.tied(best, by), strict=True), 1)
    ]
    return md_table((TOP_HEADER[0], *(AXIS_TITLES[a] for a in axes), *TOP_HEADER[1:4], *_ranked_headers(by),
                     *(COST_HEADERS[c] for c in cost), *(["95% CI (tok/s)", "vs #1"] if spread else []),
                     *TOP_HEADER[5:], *(["Accuracy gate"] if gated else [])), rows)


def _interval(r: Any) -> str:
    """`low-high (t, 5 runs)`; "-" for a point run once."""
    if pd.isna(r["output_tok_per_s_ci_low"]):
        return "-"
    return (f"{fmt_rate(r['output_tok_per_s_ci_low'])}-{fmt_rate(r['output_tok_per_s_ci_high'])} "
            f"({r['ci_method']}, {int(r['repeats'])} runs)")


def repeats_section(a: an.Analysis) -> str | None:
    """How the numbers of points run several times are made, and which points were noisy; None without repeats."""
    if "repeats" not in a.results:
        return None
    out = [f"A point run several times (`runtime.repeats`) shows the mean over its ok runs; the interval is the "
           f"95% confidence interval of that mean (Student t below {BOOTSTRAP_FROM} runs, bootstrap from "
           f"{BOOTSTRAP_FROM}; results.csv: ci_method), and results.csv has the mean, median, std, CV and interval "
           f"of output tok/s and of every latency percentile. \"tied within noise\": the interval overlaps #1's."]
    noisy = an.noisy_points(a.results)
    rows = [(*_axes(r, a.axes), r["isl"], r["osl"], int(r["repeats"]), r["noisy"]) for _, r in noisy.iterrows()]
    out += ["", md_table((*(AXIS_TITLES[x] for x in a.axes), "ISL", "OSL", "Runs", "Noisy"), rows) if rows else
            f"No point varied by more than {NOISY_CV:.0%} (CV) across its runs."]
    return "\n".join(out)


def accuracy_section(spec: SweepSpec, a: an.Analysis) -> str | None:
    """The gate per artifact, and what it kept out of every ranking above: each failing artifact's best point."""
    if a.accuracy is None or spec.accuracy is None:
        return None
    acc = spec.accuracy
    out = [f"`trtbench accuracy run` (trtllm-eval {', '.join(acc.tasks)}, {acc.samples or 'all'} samples per task): an "
           f"artifact passes when every score is at least {acc.tolerance:g} x the {acc.reference} reference's. Scores "
           f"x 100, change from the reference in brackets.", ""]
    out.append(md_table(("Artifact", "Gate", "Scores", "Why"),
                        [(v.artifact.label, str(v.gate), v.summary or "-", "; ".join(v.reasons) or "-")
                         for v in a.accuracy.values()]))
    dropped = an.excluded(a.results, a.ranking)
    if not dropped.empty:
        best = dropped.groupby(a.axes, sort=False).head(1) if a.axes else dropped.head(1)
        rows = [(*_axes(r, a.axes), r["isl"], r["osl"], fmt_rate(r["output_tok_per_s"])) for _, r in best.iterrows()]
        out += ["", f"**Excluded from every ranking** ({len(dropped)} point(s) of artifacts that failed the gate); "
                "each one's best point, which would otherwise have ranked:", "",
                md_table((*(AXIS_TITLES[x] for x in a.axes), "ISL", "OSL", "Token Throughput"), rows)]
    return "\n".join(out)


def best_by_table(df: pd.DataFrame, key: str, by: an.Ranking = an.TOTAL) -> str:
    other = "osl" if key == "isl" else "isl"
    cost = _cost_columns(df, by)
    rows = [(r[key], *_ranked_cells(r, by), *_cost_cells(r, cost),
             f"{other.upper()}={r[other]}, {fmt_count(r['requests'])} req")
            for _, r in an.best_by(df, key, by).iterrows()]
    headers = [f"Best {h}" for h in _ranked_headers(by)]
    if by.column in RANK_HEADERS:
        headers[-1] = "Its Token Throughput" + (" (total)" if by.per_gpu else "")
    return md_table((key.upper(), *headers, *(f"Its {COST_HEADERS[c]}" for c in cost), "Best Configuration"), rows)


def best_by_section(a: an.Analysis, key: str) -> str:
    parts = []
    for values, frame in an.groups(a):
        table = (best_by_table(frame, key, a.ranking)
                 if not an.ranked(frame, a.ranking).empty or an.excluded(frame, a.ranking).empty
                 else "Excluded: this artifact failed the accuracy gate (see Accuracy Gate).")
        parts.append(f"### {group_title(values)}\n\n{table}" if values else table)
    return "\n\n".join(parts)


def failure_section(a: an.Analysis) -> str:
    df, axes, counts = a.results, a.axes, an.tally(a)
    ran = counts.ok + counts.failures
    rate = f"{100 * counts.ok / ran:.1f}% ({counts.ok}/{ran})" if ran else "n/a (0/0)"
    parts = [f"**Points**: {counts.line()}. **Success rate**: {rate} of the points run."]
    head = (*(AXIS_TITLES[x] for x in axes), "ISL", "OSL", "Requests")
    failed = an.failures(df)
    if failed.empty:
        parts.append("No point failed.")
    else:
        parts.append(md_table((*head, "Status", "Cause"),
                              [(*_axes(r, axes), r["isl"], r["osl"], fmt_count(r["requests"]), r["status"], r["cause"])
                               for _, r in failed.iterrows()]))
    near = an.borderline(df)
    if not near.empty:
        parts.append(f"**Borderline** ({len(near)}): ok, and ranked, but within the simulator's stated error of a "
                     f"limit; a real run may fail there.")
        parts.append(md_table((*head, "Why"), [(*_axes(r, axes), r["isl"], r["osl"], fmt_count(r["requests"]),
                                                r["borderline"]) for _, r in near.iterrows()]))
    return "\n\n".join(parts)


MEMORY_LABELS = {
    "gpu_total_gib": ("GPU memory total (GiB)", "{:,.2f}"),
    "weights_gib": ("Weights / engine per GPU (GiB)", "{:,.2f}"),
    "activation_gib": ("Activation workspace (GiB)", "{:,.2f}"),
    "overhead_gib": ("Runtime overhead (GiB)", "{:,.2f}"),
    "kv_pool_gib": ("KV cache pool (GiB)", "{:,.2f}"),
    "kv_tokens": ("KV cache capacity (tokens)", "{:,.0f}"),
    "max_concurrent_seqs": ("Max concurrent sequences", "{:,.0f}"),
    "max_batch_size": ("max_batch_size", "{:,.0f}"),
    "max_num_tokens": ("max_num_tokens", "{:,.0f}"),
}


def memory_section(a: an.Analysis) -> str:
    ranges = an.memory_ranges(a.results)
    if not ranges:
        text = "No memory figures were recorded."
    else:
        rows = []
        for col, (lo, hi) in ranges.items():
            label, fmt = MEMORY_LABELS[col]
            rows.append((label, fmt.format(lo) if lo == hi else f"{fmt.format(lo)} - {fmt.format(hi)}"))
        text = md_table(("Quantity", "Value (range over points)"), rows)
    u = a.utilisation
    if u is not None:
        rows = [("Peak GPU memory used (GiB)", f"{u.peak_memory_gib:,.2f}"),
                ("Mean board power (W)", f"{u.mean_power_w:,.0f}"), ("Peak board power (W)", f"{u.peak_power_w:,.0f}"),
                ("Energy, all points (kJ)", f"{u.energy_kj:,.1f}")]
        if u.best_j_per_output_token is not None:
            rows.append(("Energy per output token (J), best point", f"{u.best_j_per_output_token:.4f}"))
        text += "\n\n" + md_table(("Telemetry (measured)", "Value"), rows)
    return text


def energy_note(a: an.Analysis) -> str:
    """How energy was measured, and that simulated points have none."""
    notes = []
    if a.results["joules_per_token"].notna().any():
        notes.append("Energy per point: NVML's total-energy counter (board power samples integrated where a GPU "
                     "has none; results.csv: energy_source), summed over the point's GPUs, over trtllm-bench's "
                     "measured phase only (model loading and warm-up excluded); results.csv has joules_per_token, "
                     "tok_per_joule, mean and peak power, SM clock and peak temperature per point.")
    if a.counts.get("simulated"):
        notes.append(f"The {a.counts['simulated']} simulated point(s) carry no energy figure: trtbench states no "
                     f"power model, so none is invented.")
    return "".join(f"\n\n{n}" for n in notes)


def _at(r: Any, axes: list[str]) -> str:
    extra = ", ".join(f"{AXIS_TITLES[x]} {md(r[x])}" for x in axes)
    return f"{r['isl']}/{r['osl']}" + (f" ({extra})" if extra else "")


def insights_section(a: an.Analysis) -> str:
    by = a.ranking
    found = an.insights(a.results, by)
    if found is None:
        return "No point succeeded, so there is nothing to compare."
    lines = []
    for values, name, key in ((found.isl_band, "input length", "ISL"), (found.osl_band, "output length", "OSL")):
        span = f"{values[0]}" if len(values) == 1 else f"{values[0]}-{values[-1]}"
        lines.append(f"- **Best {name} band**: {key} {span} (best {by.name} within {an.BAND_WITHIN:.0%} of the "
                     f"best)")
    best, worst = found.best, found.worst
    worse = "up to" if by.ascending else "down to"
    lines.append(f"- **Best to worst**: {fmt_ranked(best, by)} {by.name} at {_at(best, a.axes)} {worse} "
                 f"{fmt_ranked(worst, by)} at {_at(worst, a.axes)} ({found.best_over_worst:,.1f}x, "
                 f"{'-' if not by.ascending else '+'}{found.drop_pct:.1f}%)")
    rate = found.fastest[by.rate_column]
    lines.append(f"- **Highest request rate**: {fmt_rate(rate)} req/s{' per GPU' if by.per_gpu else ''} at "
                 f"{_at(found.fastest, a.axes)}")
    return "\n".join(lines)


def recommendations_section(a: an.Analysis) -> str:
    by = a.ranking
    picks = an.recommendations(a.results, by)
    if not picks:
        return "No recommendation: no point succeeded."
    cost = _cost_columns(a.results, by)
    return md_table(("Goal", *(AXIS_TITLES[x] for x in a.axes), "ISL", "OSL", "Requests", *_ranked_headers(by),
                     *(COST_HEADERS[c] for c in cost), "Request Throughput", "Rule"),
                    [(goal, *_axes(r, a.axes), r["isl"], r["osl"], fmt_count(r["requests"]), *_ranked_cells(r, by),
                      *_cost_cells(r, cost), fmt_rate(r["request_per_s"]), rule) for goal, rule, r in picks])


def efficiency_section(a: an.Analysis) -> str:
    rated = an.efficiency(a.results, a.ranking)
    if rated.empty:
        return "No roofline bound was recorded for these points."
    rows = [(*_axes(r, a.axes), r["isl"], r["osl"], fmt_count(r["requests"]), fmt_rate(r["output_tok_per_s"]),
             fmt_rate(r["roofline_output_tok_per_s"]), f"{r['efficiency_pct']:.1f}%") for _, r in rated.iterrows()]
    return ("Output tokens/s as a share of the roofline bound: all FLOPs at tensor peak and every weight and "
            "KV byte at full HBM bandwidth (`sim/roofline.py`).\n\n"
            + md_table((*(AXIS_TITLES[x] for x in a.axes), "ISL", "OSL", "Requests", "Token Throughput",
                        "Roofline bound", "Efficiency"), rows))


def predictions_section(a: an.Analysis) -> str | None:
    measured = an.predicted_vs_measured(a.results)
    if measured.empty:
        return None
    rows = []
    for _, r in measured.iterrows():
        predicted = fmt_rate(r["pred_output_tok_per_s"]) if pd.notna(r["pred_output_tok_per_s"]) else r["pred_status"]
        measured_value = fmt_rate(r["output_tok_per_s"]) if r["status"] == "ok" else r["status"]
        error = f"{r['pred_error_pct']:+.1f}%" if pd.notna(r["pred_error_pct"]) else "-"
        rows.append((*_axes(r, a.axes), r["isl"], r["osl"], fmt_count(r["requests"]), measured_value, predicted, error,
                     Markdown(f"**> {an.DISAGREEMENT_PCT:.0f}%**") if r["flagged"] else ""))
    return (f"Each measurement beside the simulator's prediction; {int(measured['flagged'].sum())} point(s) disagree "
            f"by more than {an.DISAGREEMENT_PCT:.0f}%.\n\n"
            + md_table((*(AXIS_TITLES[x] for x in a.axes), "ISL", "OSL", "Requests", "Measured tok/s",
                        "Predicted tok/s", "Error", "Flag"), rows))


def provenance_section(spec: SweepSpec, a: an.Analysis, meta: dict[str, Any]) -> str:
    return md_table(("Field", "Value"), provenance_rows(spec, a, meta))


def provenance_rows(spec: SweepSpec, a: an.Analysis, meta: dict[str, Any], code: Callable[[str], str] = md_code
                    ) -> list[tuple[str, str]]:
    """(field, value) of where the numbers came from; `code` marks a name or command up (report.html: as is)."""
    prov = meta.get("provenance", {})
    backend = prov.get("backend", {})
    facts, u = a.facts, a.utilisation
    engines = backend.get("engines") or []
    gpu = (f"{u.gpu_name}, driver {u.driver}, SM clock {u.mean_sm_clock_mhz:,.0f} MHz, power limit "
           f"{u.power_limit_w or '?'} W, peak memory used {u.peak_memory_gib:,.1f} GiB" if u else
           ", ".join(f"{g['name']} ({g['memory_total_mib'] / 1024:,.1f} GiB)" for g in prov.get("gpus", []))
           or "none visible (simulated run)")
    rows = [
        ("trtbench", prov.get("trtbench", "?")),
        ("spec", Markdown(f"{code(spec.name)}, hash {spec.hash()} (resolved copy: spec.yaml)")),
        ("backend", prov.get("backend_reason", "?")),
        ("TensorRT-LLM", backend.get("trtllm_version") or "not used"),
        ("engine(s)", ", ".join(f"{e['dir']} (manifest: {e['manifest']})" for e in engines)
         or backend.get("engine_dir") or "none"),
        ("GPU", gpu),
        ("host", f"{prov.get('host', '?')}, Python {prov.get('python', '?')}, {prov.get('platform', '?')}"),
        ("start / end", f"{facts.start or '-'} / {facts.end or '-'}" if facts else "-"),
        ("total GPU time", f"{facts.gpu_hours:,.2f} GPU-hours" if facts and facts.gpu_hours else "none (simulated)"),
        ("one point's command", code(shlex.join(facts.command)) if facts and facts.command
         else "none (simulated: no command runs)"),
    ]
    return rows


def _parameters(spec: SweepSpec) -> str:
    """Total (and active, for a mixture of experts) parameters; '?' where the model cannot be resolved here
    (a config file that is gone since the run)."""
    try:
        return resolve_model(spec.model.name, spec.model.preset, spec.model.config).describe()
    except TrtbenchError:
        return "?"


def _deployment_cell(spec: SweepSpec, axis: str, value: Any) -> str:
    return "swept" if axis in spec.grid.swept() else str(value)


def render(spec: SweepSpec, a: an.Analysis, meta: dict[str, Any], top_n: int, plots: dict[str, Path] | None = None
           ) -> str:
    df = a.results
    backend = meta.get("provenance", {}).get("backend", {})
    perf_model = backend.get("perf_model")
    source = source_line(a.counts, perf_model)
    gpu = backend.get("gpu") or spec.gpu
    out = [f"# {md(spec.model.name)} on {md(gpu)}: ISL x OSL {spec.mode} sweep `{spec.name}`", ""]
    if spec.mode is BenchMode.LATENCY:
        out += ["Mode **latency** (`trtllm-bench latency`): each point runs one request at a time, streamed, at "
                "batch size 1. Its throughput is what one user gets, not what the GPU can serve.", ""]
    if a.counts.get("simulated"):
        out += [f"> **SIMULATED**: {a.counts['simulated']} of {len(df)} points were predicted by trtbench's "
                f"simulator ({perf_model}), not measured on a GPU. Treat them as estimates."
                + calibration_note(backend.get("calibration")), ""]
    tp_pp = "swept" if {"tp", "pp"} & set(spec.grid.swept()) else f"{spec.tp} x {spec.pp}"
    out += [md_table(("Model", "Parameters", "GPU", "Precision", "KV cache", "TP x PP", "Backend", "Spec hash"),
                     [(spec.model.name, _parameters(spec), gpu, _deployment_cell(spec, "precision", spec.precision),
                       spec.kv_label().removeprefix("KV "), tp_pp,
                       backend.get("backend", spec.backend), spec.hash())]), ""]
    by = a.ranking
    best = an.top(df, by, 1)
    if not best.empty:
        r = best.iloc[0]
        extra = "".join(f", {AXIS_TITLES[x]} {md(r[x])}" for x in a.axes)
        total = fmt_rate(r["output_tok_per_s"])
        value = (f"**{fmt_ranked(r, by)} {by.name}** ({total} output tokens/s in total over {int(r['gpus'])} GPU(s))"
                 if by.column in RANK_HEADERS else f"**{total} output tokens/s**")
        if by.column == "usd_per_mtok" and spec.cost:
            value += f" at {md(spec.cost.label())}"
        out += [f"Best ({r['source']}, by {by.name}): {value} at ISL={r['isl']}, OSL={r['osl']}, "
                f"{fmt_count(r['requests'])} requests{extra}.", ""]
    if a.missing and "guided" not in meta:  # a guided sweep says why each point without a result has none
        out += [f"**Incomplete**: {a.missing} point(s) of the grid have no result yet; rerun the sweep to resume.", ""]
    if a.stale:
        out += [f"{a.stale} record(s) from an earlier version of the spec are kept in results.jsonl "
                f"and not shown.", ""]
    note = "Token Throughput is output tokens/s; Total Tokens is requests x (ISL + OSL)."
    if (spec.tp * spec.pp > 1) or {"tp", "pp"} & set(a.axes):
        note += (" With several GPUs per point (TP x PP) it is the total over them; results.csv has "
                 "output_tok_per_s_per_gpu.")
    if by.why:
        at = f" at {md(spec.cost.label())}" if by.column == "usd_per_mtok" and spec.cost else ""
        note += f" **Ranked by {by.name}{at}**: {by.why}."
    cost = cost_line(spec, a)
    if a.axes:
        note += f" Ranked across every {', '.join(AXIS_TITLES[x] for x in a.axes)} combination."
    sections: list[tuple[str, str | None]] = [
        (f"Top {top_n} Configurations by {RANK_TITLES[by.column]}",
         f"{source} {note}{cost}\n\n{top_table(df, top_n, a.axes, by)}"),
        ("Repeats", repeats_section(a)),
        ("Accuracy Gate", accuracy_section(spec, a)),
        ("Best under the SLA", sla_section(spec, a)),
        ("Best by Input Length", f"{source}{cost}\n\n{best_by_section(a, 'isl')}"),
        ("Best by Output Length", f"{source}{cost}\n\n{best_by_section(a, 'osl')}"),
        ("Key Performance Insights", f"{source}\n\n{insights_section(a)}"),
        ("Recommendations", f"{source}{cost}\n\n{recommendations_section(a)}"),
        ("Failure Analysis", f"{source}\n\n{failure_section(a)}"),
        ("Memory and Utilisation", f"{source} GiB = 2^30 bytes.\n\n{memory_section(a)}{energy_note(a)}"),
        ("Efficiency vs Roofline", f"{source}\n\n{efficiency_section(a)}"),
        ("Measured vs Predicted", predictions_section(a)),
        ("Guided Sweep", guided_section(meta)),
        ("Plots", _plots_section(plots, source) if plots else None),
        ("Provenance", provenance_section(spec, a, meta)),
    ]
    for title, body in sections:
        if body is not None:
            out += [f"## {title}", "", body, ""]
    return "\n".join(out)


def _plots_section(plots: dict[str, Path], source: str) -> str:
    """One figure per kind for the whole run (plots.draw), each under its title."""
    return source + "\n\n" + "\n\n".join(f"### {PLOT_TITLES[name]}\n\n![{PLOT_TITLES[name]}]({path.name})"
                                           for name, path in plots.items())


def write_report(run_dir: Path, spec: SweepSpec, a: an.Analysis, meta: dict[str, Any], top_n: int = 10,
                 plots: dict[str, Path] | None = None) -> list[Path]:
    """report.md, results.csv and results.parquet (one row per point: the axis columns, then
    `analyze.COLUMNS`), each written atomically. The CSV's text cells are neutralised for spreadsheets
    (`escape.csv_safe_frame`); the parquet file, read by programs, keeps every value as recorded."""
    report, csv, parquet = run_dir / "report.md", run_dir / "results.csv", run_dir / "results.parquet"
    atomic_write(report, render(spec, a, meta, top_n, plots))
    atomic_write(csv, csv_safe_frame(a.results).to_csv(index=False))
    atomic_write(parquet, a.results.to_parquet(index=False) or b"")
    return [report, csv, parquet]
