"""Analysis -> `report.md` (the tables people read) and `results.csv` (one row per point).

Every table carries a line saying whether its numbers were measured or simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trtbench import analyze as an
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


def render(spec: SweepSpec, analysis: an.Analysis, meta: dict[str, Any], top_n: int) -> str:
    df = analysis.results
    prov = meta.get("provenance", {})
    identity = prov.get("backend", {})
    perf_model = identity.get("perf_model")
    source = source_line(df, perf_model)
    counts = an.sources(df)
    gpu = prov.get("gpus", [{}])[0].get("name") if prov.get("gpus") else spec.gpu
    out = [f"# {spec.model.name} on {identity.get('gpu', gpu)}: ISL x OSL throughput sweep `{spec.name}`", ""]
    if counts.get("simulated"):
        out += [f"> **SIMULATED**: {counts['simulated']} of {len(df)} points were predicted by trtbench's "
                f"simulator ({perf_model}), not measured on a GPU. Treat them as estimates.", ""]
    out += [md_table(("Model", "GPU", "Precision", "KV cache", "TP x PP", "Backend", "Spec hash"),
                     [(spec.model.name, identity.get("gpu", gpu), spec.precision, spec.kv_cache_dtype,
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
    sections = [
        (f"Top {top_n} Configurations by Token Throughput", f"{source} {note}\n\n{top_table(df, top_n)}"),
        ("Best by Input Length", f"{source}\n\n{best_by_table(df, 'isl')}"),
        ("Best by Output Length", f"{source}\n\n{best_by_table(df, 'osl')}"),
        ("Failure Analysis", f"{source}\n\n{failure_section(df)}"),
        ("Memory", f"{source} GiB = 2^30 bytes.\n\n{memory_section(df)}"),
    ]
    for title, body in sections:
        out += [f"## {title}", "", body, ""]
    out += ["## Provenance", "",
            md_table(("Field", "Value"), [
                ("trtbench", prov.get("trtbench", "?")),
                ("backend", prov.get("backend_reason", "?")),
                ("host", prov.get("host", "?")),
                ("python", prov.get("python", "?")),
                ("driver", prov.get("driver") or "none (no NVML)"),
                ("updated", meta.get("updated_at", "?")),
            ]), ""]
    return "\n".join(out)


def write_report(run_dir: Path, spec: SweepSpec, analysis: an.Analysis, meta: dict[str, Any],
                 top_n: int = 10) -> list[Path]:
    report, csv = run_dir / "report.md", run_dir / "results.csv"
    report.write_text(render(spec, analysis, meta, top_n))
    analysis.results.to_csv(csv, index=False)
    return [report, csv]
