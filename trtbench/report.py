"""Analysis -> `report.md` (the tables people read, with its plots) and `results.csv` / `results.parquet`
(one row per point).

Every table carries a line saying whether its numbers were measured or simulated.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from trtbench import analyze as an
from trtbench.plots import PlotContext, all_plots
from trtbench.spec import SweepSpec

TOP_HEADER = ("Rank", "ISL", "OSL", "Requests", "Token Throughput", "Request Throughput", "Total Tokens")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("-" * (len(h) + 2) for h in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_rate(x: float) -> str:
    return f"{x:,.2f}"


def fmt_count(n: float) -> str:
    return f"{int(n):,}"


def fmt_tokens(n: float) -> str:
    """The study's compact form: ~8.6M, ~950K."""
    if n >= 1e6:
        return f"~{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"~{n / 1e3:.0f}K"
    return str(int(n))


def source_line(df: pd.DataFrame, perf_model: str | None) -> str:
    counts = an.sources(df)
    if not counts:
        return "_Source: no results._"
    if set(counts) == {"simulated"}:
        return f"_Source: **simulated** by trtbench's simulator ({perf_model}); not measured on a GPU._"
    if set(counts) == {"measured"}:
        return "_Source: measured with trtllm-bench._"
    return f"_Source: mixed: {counts.get('measured', 0)} measured, {counts.get('simulated', 0)} simulated points._"


def top_table(df: pd.DataFrame, n: int) -> str:
    rows = [
        (rank, r.isl, r.osl, fmt_count(r.requests), fmt_rate(r.output_tok_per_s), fmt_rate(r.request_per_s),
         fmt_tokens(r.total_tokens))
        for rank, r in enumerate(an.top(df, n).itertuples(), 1)
    ]
    return md_table(TOP_HEADER, rows)


def best_by_table(df: pd.DataFrame, key: str) -> str:
    other = "osl" if key == "isl" else "isl"
    rows = [
        (getattr(r, key), fmt_rate(r.output_tok_per_s),
         f"{other.upper()}={getattr(r, other)}, {fmt_count(r.requests)} req")
        for r in an.best_by(df, key).itertuples()
    ]
    return md_table((key.upper(), "Best Token Throughput", "Best Configuration"), rows)


def failure_section(df: pd.DataFrame) -> str:
    ok, total = an.success_rate(df)
    rate = f"{100 * ok / total:.1f}% ({ok}/{total})" if total else "n/a (0/0)"
    failed = an.failures(df)
    parts = [f"**Success Rate**: {rate}"]
    if failed.empty:
        parts.append("No point failed.")
    else:
        by_status = ", ".join(f"{k}: {v}" for k, v in failed["status"].value_counts().items())
        parts.append(f"**Failed**: {len(failed)} ({by_status})")
        parts.append(md_table(("ISL", "OSL", "Requests", "Status", "Cause"),
                              [(r.isl, r.osl, fmt_count(r.requests), r.status, r.cause.replace("|", "/"))
                               for r in failed.itertuples()]))
    return "\n\n".join(parts)


def memory_section(df: pd.DataFrame) -> str:
    planned = df.dropna(subset=["kv_pool_gib"])
    planned = planned[planned["kv_pool_gib"] > 0]
    if planned.empty:
        return "No memory figures were recorded."

    quantities = [
        ("GPU memory total (GiB)", "gpu_total_gib", "{:,.2f}"),
        ("Weights / engine per GPU (GiB)", "weights_gib", "{:,.2f}"),
        ("Activation workspace (GiB)", "activation_gib", "{:,.2f}"),
        ("Runtime overhead (GiB)", "overhead_gib", "{:,.2f}"),
        ("KV cache pool (GiB)", "kv_pool_gib", "{:,.2f}"),
        ("KV cache capacity (tokens)", "kv_tokens", "{:,.0f}"),
        ("Max concurrent sequences", "max_concurrent_seqs", "{:,.0f}"),
        ("max_batch_size", "max_batch_size", "{:,.0f}"),
        ("max_num_tokens", "max_num_tokens", "{:,.0f}"),
    ]
    rows = []
    for label, col, fmt in quantities:
        values = planned[col].dropna()
        if values.empty:  # a measured run reports only what trtllm-bench logs
            continue
        lo, hi = values.min(), values.max()
        rows.append((label, fmt.format(lo) if lo == hi else f"{fmt.format(lo)} - {fmt.format(hi)}"))
    return md_table(("Quantity", "Value (range over points)"), rows)


def insights_section(df: pd.DataFrame) -> str:
    """The study's "Key Performance Insights", as facts computed from the records."""
    ok = an.ranked(df)
    if ok.empty:
        return "No point succeeded, so there is nothing to compare."
    lines = []
    for key, name in (("isl", "input length"), ("osl", "output length")):
        values = an.band(an.best_by(df, key), key)
        span = f"{values[0]}" if len(values) == 1 else f"{values[0]}-{values[-1]}"
        lines.append(f"- **Best {name} band**: {key.upper()} {span} (best throughput within 10% of the peak)")
    best, worst = ok.iloc[0], ok.iloc[-1]
    drop = 100 * (1 - worst.output_tok_per_s / best.output_tok_per_s)
    lines.append(f"- **Best to worst**: {fmt_rate(best.output_tok_per_s)} tok/s at {best.isl}/{best.osl} down to "
                 f"{fmt_rate(worst.output_tok_per_s)} tok/s at {worst.isl}/{worst.osl} "
                 f"({best.output_tok_per_s / worst.output_tok_per_s:,.1f}x, -{drop:.1f}%)")
    fastest = ok.loc[ok["request_per_s"].idxmax()]
    lines.append(f"- **Highest request rate**: {fmt_rate(fastest.request_per_s)} req/s at "
                 f"{fastest.isl}/{fastest.osl}")
    return "\n".join(lines)


def recommendations_section(df: pd.DataFrame) -> str:
    picks = an.recommendations(df)
    if not picks:
        return "No recommendation: no point succeeded."
    return md_table(("Goal", "ISL", "OSL", "Requests", "Token Throughput", "Request Throughput", "Rule"),
                    [(goal, r.isl, r.osl, fmt_count(r.requests), fmt_rate(r.output_tok_per_s),
                      fmt_rate(r.request_per_s), rule) for goal, rule, r in picks])


def efficiency_section(df: pd.DataFrame) -> str:
    rated = an.ranked(df).dropna(subset=["efficiency_pct"])
    if rated.empty:
        return "No roofline bound was recorded for these points."
    rows = [(r.isl, r.osl, fmt_count(r.requests), fmt_rate(r.output_tok_per_s),
             fmt_rate(r.roofline_output_tok_per_s), f"{r.efficiency_pct:.1f}%") for r in rated.itertuples()]
    return ("Output tokens/s as a share of the roofline bound: all FLOPs at tensor peak and every weight and "
            "KV byte at full HBM bandwidth (`sim/roofline.py`).\n\n"
            + md_table(("ISL", "OSL", "Requests", "Token Throughput", "Roofline bound", "Efficiency"), rows))


def predictions_section(df: pd.DataFrame) -> str | None:
    measured = df[(df["source"] == "measured") & df["pred_status"].notna()]
    if measured.empty:
        return None
    flagged = set(an.disagreements(df)["point_id"])
    rows = []
    for r in measured.itertuples():
        predicted = fmt_rate(r.pred_output_tok_per_s) if pd.notna(r.pred_output_tok_per_s) else r.pred_status
        measured_value = fmt_rate(r.output_tok_per_s) if r.status == "ok" else r.status
        error = f"{r.pred_error_pct:+.1f}%" if pd.notna(r.pred_error_pct) else "-"
        rows.append((r.isl, r.osl, fmt_count(r.requests), measured_value, predicted, error,
                     "**> 25%**" if r.point_id in flagged else ""))
    return (f"Each measurement beside the simulator's prediction; {len(flagged)} point(s) disagree by more than "
            f"{an.DISAGREEMENT_PCT:.0f}%.\n\n"
            + md_table(("ISL", "OSL", "Requests", "Measured tok/s", "Predicted tok/s", "Error", "Flag"), rows))


def utilisation_rows(records: list[Any]) -> list[tuple[str, str]]:
    """GPU telemetry summed up over the measured points."""
    telemetry = [r.detail["telemetry"] for r in records if r.detail.get("telemetry")]
    if not telemetry:
        return []
    rows = [("Peak GPU memory used (GiB)", f"{max(t['peak_memory_used_gib'] for t in telemetry):,.2f}"),
            ("Mean board power (W)", f"{sum(t['mean_power_w'] for t in telemetry) / len(telemetry):,.0f}"),
            ("Peak board power (W)", f"{max(t['peak_power_w'] for t in telemetry):,.0f}"),
            ("Energy, all points (kJ)", f"{sum(t['energy_j'] for t in telemetry) / 1000:,.1f}")]
    per_token = [r.metrics.j_per_output_token for r in records
                 if r.metrics is not None and getattr(r.metrics, "j_per_output_token", None)]
    if per_token:
        rows.append(("Energy per output token (J), best point", f"{min(per_token):.4f}"))
    return rows


def memory_and_utilisation(df: pd.DataFrame, records: list[Any]) -> str:
    util = utilisation_rows(records)
    text = memory_section(df)
    if util:
        text += "\n\n" + md_table(("Telemetry (measured)", "Value"), util)
    return text


def provenance_section(spec: SweepSpec, analysis: an.Analysis, meta: dict[str, Any]) -> str:
    prov = meta.get("provenance", {})
    records = analysis.records
    details = [r.detail for r in records]
    versions = sorted({d["trtllm_version"] for d in details if d.get("trtllm_version")})
    engines = sorted({d["engine_dir"] for d in details if d.get("engine_dir")})
    telemetry = next((d["telemetry"] for d in details if d.get("telemetry")), None)
    command = next((d["command"] for d in details if d.get("command")), None)
    start = min((r.started_at for r in records), default="-")
    end = max((datetime.fromisoformat(r.started_at) + timedelta(seconds=r.duration_s) for r in records),
              default=None)
    gpu_seconds = sum(r.duration_s for r in records if r.source == "measured") * spec.tp * spec.pp
    gpu = (f"{telemetry['gpu_name']}, driver {telemetry['driver']}, SM clock {telemetry['mean_sm_clock_mhz']:,.0f} "
           f"MHz, power limit {telemetry.get('power_limit_w') or '?'} W, peak memory used "
           f"{telemetry['peak_memory_used_gib']:,.1f} GiB" if telemetry else
           ", ".join(f"{g['name']} ({g['memory_total_mib'] / 1024:,.1f} GiB)" for g in prov.get("gpus", []))
           or "none visible (simulated run)")
    rows = [
        ("trtbench", prov.get("trtbench", "?")),
        ("spec", f"`{spec.name}`, hash {spec.hash()} (resolved copy: spec.yaml)"),
        ("backend", prov.get("backend_reason", "?")),
        ("TensorRT-LLM", ", ".join(versions) or "not used"),
        ("engine(s)", ", ".join(f"{e} (manifest: {_manifest_of(e)})" for e in engines) or "none"),
        ("GPU", gpu),
        ("host", f"{prov.get('host', '?')}, Python {prov.get('python', '?')}, {prov.get('platform', '?')}"),
        ("start / end", f"{start} / {end.isoformat(timespec='seconds') if end else '-'}"),
        ("total GPU time", f"{gpu_seconds / 3600:,.2f} GPU-hours" if gpu_seconds else "none (simulated)"),
        ("one point's command", f"`{shlex.join(command)}`" if command else "none (simulated: no command runs)"),
    ]
    return md_table(("Field", "Value"), [(k, str(v).replace("|", "/")) for k, v in rows])


def _manifest_of(engine_dir: str) -> str:
    for candidate in (Path(engine_dir) / "manifest.json", Path(engine_dir).parent / "manifest.json"):
        if candidate.is_file():
            return str(candidate)
    return "not found"


def render(spec: SweepSpec, analysis: an.Analysis, meta: dict[str, Any], top_n: int,
           plots: dict[str, Path] | None = None) -> str:
    df = analysis.results
    prov = meta.get("provenance", {})
    identity = prov.get("backend", {})
    perf_model = identity.get("perf_model")
    source = source_line(df, perf_model)
    counts = an.sources(df)
    gpu = identity.get("gpu") or spec.gpu
    out = [f"# {spec.model.name} on {gpu}: ISL x OSL throughput sweep `{spec.name}`", ""]
    if counts.get("simulated"):
        out += [f"> **SIMULATED**: {counts['simulated']} of {len(df)} points were predicted by trtbench's "
                f"simulator ({perf_model}), not measured on a GPU. Treat them as estimates.", ""]
    out += [md_table(("Model", "GPU", "Precision", "KV cache", "TP x PP", "Backend", "Spec hash"),
                     [(spec.model.name, gpu, spec.precision, spec.kv_cache_dtype,
                       f"{spec.tp} x {spec.pp}", identity.get("backend", spec.backend), spec.hash())]), ""]
    best = an.top(df, 1)
    if not best.empty:
        r = best.iloc[0]
        kind = "simulated" if r.source == "simulated" else "measured"
        out += [f"Peak token throughput ({kind}): **{fmt_rate(r.output_tok_per_s)} output tokens/s** "
                f"at ISL={r.isl}, OSL={r.osl}, {fmt_count(r.requests)} requests.", ""]
    if analysis.missing:
        out += [f"**Incomplete**: {analysis.missing} point(s) of the grid have no result yet; "
                f"rerun the sweep to resume.", ""]
    if analysis.stale:
        out += [f"{analysis.stale} record(s) from an earlier version of the spec are kept in results.jsonl "
                f"and not shown.", ""]
    note = "Token Throughput is output tokens/s; Total Tokens is requests x (ISL + OSL)."
    sections: list[tuple[str, str | None]] = [
        (f"Top {top_n} Configurations by Token Throughput", f"{source} {note}\n\n{top_table(df, top_n)}"),
        ("Best by Input Length", f"{source}\n\n{best_by_table(df, 'isl')}"),
        ("Best by Output Length", f"{source}\n\n{best_by_table(df, 'osl')}"),
        ("Key Performance Insights", f"{source}\n\n{insights_section(df)}"),
        ("Recommendations", f"{source}\n\n{recommendations_section(df)}"),
        ("Failure Analysis", f"{source}\n\n{failure_section(df)}"),
        ("Memory and Utilisation", f"{source} GiB = 2^30 bytes.\n\n"
                                   f"{memory_and_utilisation(df, analysis.records)}"),
        ("Efficiency vs Roofline", f"{source}\n\n{efficiency_section(df)}"),
        ("Measured vs Predicted", predictions_section(df)),
        ("Plots", _plots_section(plots, source) if plots else None),
        ("Provenance", provenance_section(spec, analysis, meta)),
    ]
    for title, body in sections:
        if body is not None:
            out += [f"## {title}", "", body, ""]
    return "\n".join(out)


PLOT_TITLES = {
    "heatmap": "Output token throughput by ISL x OSL (failed cells marked)",
    "throughput_vs_osl": "Throughput vs output length, one line per input length",
    "requests_vs_length": "Request throughput vs tokens per request",
    "pareto": "Throughput per GPU vs per-user speed (Pareto)",
    "kv_capacity": "KV cache capacity vs sequence length",
}


def _plots_section(plots: dict[str, Path], source: str) -> str:
    return source + "\n\n" + "\n\n".join(f"### {PLOT_TITLES[name]}\n\n![{PLOT_TITLES[name]}]({path.name})"
                                           for name, path in plots.items())


def write_report(run_dir: Path, spec: SweepSpec, analysis: an.Analysis, meta: dict[str, Any],
                 top_n: int = 10) -> list[Path]:
    """report.md with its plots, results.csv and results.parquet (one row per point, `analyze.COLUMNS`)."""
    identity = meta.get("provenance", {}).get("backend", {})
    ctx = PlotContext(
        title=f"{spec.model.name}, {identity.get('gpu') or spec.gpu}, {spec.precision} (KV {spec.kv_cache_dtype}), "
              f"TP{spec.tp}, {identity.get('backend', spec.backend)}",
        simulated=bool(an.sources(analysis.results).get("simulated")), n_gpus=spec.tp * spec.pp)
    plots = all_plots(analysis.results, ctx, run_dir)
    report, csv, parquet = run_dir / "report.md", run_dir / "results.csv", run_dir / "results.parquet"
    report.write_text(render(spec, analysis, meta, top_n, plots))
    analysis.results.to_csv(csv, index=False)
    analysis.results.to_parquet(parquet, index=False)
    return [report, csv, parquet, *plots.values()]
