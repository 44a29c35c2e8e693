"""Analysis -> `report.html` (and `sla.html`): one self-contained page people open in a browser, offline.

It shows what `analyze` computed, as report.md does (top N, every result, failures with their cause, the SLA
table, provenance), with every table sortable by a click on its header and filtered by axis, and interactive
plotly charts (the ISL x OSL heatmap, throughput against an axis) whose hover shows a point's configuration,
status and cause. The run's rows are one JSON block that every table and chart reads (a 10,000-point run is
not 10,000 DOM rows per table, nor its points once per chart); the page's script builds the DOM from it with
`textContent`, so no value is ever parsed as HTML. Everything is inline: plotly.js once, the page's script and
style; a Content-Security-Policy allows those scripts by hash and no request at all, so the page works from a
file on a laptop with no network, and text that escaped its escaping would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from trtbench import analyze as an
from trtbench import report as rp
from trtbench.bundled import data_path
from trtbench.compare import Comparison
from trtbench.escape import html_text, script_json, visible
from trtbench.files import atomic_write
from trtbench.sla import Bounds
from trtbench.spec import SweepSpec

FULL_ROWS_SHOWN = 500  # the full table shows this many rows of those that pass the filters (sort or filter for more)
PER_GPU = "output_tok_per_s_per_gpu"  # what the charts plot: more GPUs must not win by size (as plots.py)
# Titles of results columns beyond report.py's; any other column shows under its own name.
TITLES = {**rp.AXIS_TITLES, **rp.SLA_HEADERS, **rp.RANK_HEADERS, "isl": "ISL", "osl": "OSL", "requests": "Requests",
          "status": "Status", "cause": "Cause", "borderline": "Borderline", "source": "Source",
          "output_tok_per_s": "Token Throughput", "request_per_s": "Request Throughput",
          "total_tokens": "Total Tokens", PER_GPU: "Output tok/s per GPU", "a_tok_s": "A tok/s", "b_tok_s": "B tok/s",
          "ratio": "B/A", "verdict": "Verdict", "change_pct": "Change %"}
LITERAL = {*rp.AXIS_TITLES, "isl", "osl"}  # shown as report.md shows them: 1024, not 1,024


# How the page formats a column, as report.md does: "rate" 1,234.56, "count" 1,234, "fixed4" 0.1234 (joules per
# token), "tokens" ~8.6M, "num" by size (1,234.56, 1,234, 0.1234), "text" as it is (an axis value, 1024).
Kind = Literal["rate", "count", "fixed4", "tokens", "num", "text"]


@dataclass(frozen=True)
class Column:
    key: str  # a results column, or one of the table's own (`Table.extra`)
    title: str
    kind: Kind = "num"


@dataclass(frozen=True)
class Table:
    """One table: `rows` indices into the page's shared rows (which the axis filters narrow), or `own` rows of
    values in `columns` order (a table that is not one of points, as provenance); `extra` per-row values of
    this table's own columns (a rank), aligned with `rows`; `limit` the most rows shown at once."""

    id: str
    title: str
    note: str
    columns: list[Column]
    rows: list[int] = field(default_factory=list)
    own: list[list[Any]] | None = None
    extra: dict[str, list[Any]] = field(default_factory=dict)
    limit: int | None = None

    def data(self) -> dict[str, Any]:
        shared = self.own is None
        return {"id": self.id, "columns": [asdict(c) for c in self.columns], "rows": self.rows if shared else self.own,
                "extra": self.extra, "limit": self.limit, "shared": shared}


@dataclass(frozen=True)
class Heatmap:
    """`z` over ISL x OSL: per cell the highest of the rows the filters pass (`cell`: its d3 number format);
    cells where every row failed marked with the status; hover: the `hover` columns, status and cause."""

    title: str
    z: str
    hover: list[str]
    cell: str = ",.0f"
    x: str = "isl"
    y: str = "osl"
    id: str = "heatmap"
    kind: str = "heatmap"


@dataclass(frozen=True)
class Versus:
    """`y` against the column the reader picks of `xs`; failed rows drawn at 0, borderline ones apart."""

    title: str
    y: str
    xs: list[str]
    hover: list[str]
    id: str = "versus"
    kind: str = "scatter"


@dataclass(frozen=True)
class Page:
    """What one HTML file shows; `frame` the rows every shared table and chart reads."""

    title: str
    label: str  # simulated / measured, shown on every section
    banner: str
    frame: pd.DataFrame
    filters: list[str]
    tables: list[Table]
    charts: list[Heatmap | Versus]


def source_label(counts: dict[str, int]) -> str:
    if set(counts) == {"simulated"}:
        return "simulated"
    if set(counts) == {"measured"}:
        return "measured"
    return f"mixed: {counts.get('measured', 0)} measured, {counts.get('simulated', 0)} simulated" if counts else "none"


def _cell(value: Any) -> Any:
    """A value for JSON: a missing or infinite number as null, numpy scalars as Python ones, text shown printable
    and bounded (`escape.visible`, as report.md shows it)."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, bool | int | float) else visible(str(value))


def _kind(series: pd.Series) -> Kind:
    """How report.md shows such a column: an axis or a length as it is (1024), other counts 1,234."""
    if series.name in LITERAL or pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "text"
    return "count" if pd.api.types.is_integer_dtype(series) else "num"


def _columns(frame: pd.DataFrame, keys: list[str]) -> list[Column]:
    return [Column(k, TITLES.get(k, k), _kind(frame[k])) for k in keys]


def _positions(df: pd.DataFrame, subset: pd.DataFrame) -> list[int]:
    """Row numbers in `df` of `subset`'s rows (by index), in `subset`'s order."""
    where = {index: i for i, index in enumerate(df.index)}
    return [where[index] for index in subset.index]


def top_table(a: an.Analysis, top_n: int) -> Table:
    """report.md's top N: its columns, its rows (`analyze.top`), its formats."""
    df, by = a.results, a.ranking
    best = an.top(df, by, top_n)
    ranked_keys = [*([by.column] if by.column in rp.RANK_HEADERS else []), "output_tok_per_s"]
    spread = "output_tok_per_s_ci_low" in df
    extra: dict[str, list[Any]] = {"rank": list(range(1, len(best) + 1))}
    columns = [Column("rank", rp.TOP_HEADER[0], "count"), *_columns(df, a.axes),
               *_columns(df, ["isl", "osl"]), Column("requests", "Requests", "count"),
               *(Column(k, t, "fixed4" if k == by.column and by.ascending else "rate")
                 for k, t in zip(ranked_keys, rp._ranked_headers(by), strict=True))]
    if spread:
        extra["ci"] = [rp._interval(r) for _, r in best.iterrows()]
        extra["tied"] = ["tied within noise" if t else "" for t in an.tied(best, by)]
        columns += [Column("ci", "95% CI (tok/s)", "text"), Column("tied", "vs #1", "text")]
    columns += [Column("request_per_s", rp.TOP_HEADER[5], "rate"), Column("total_tokens", rp.TOP_HEADER[6], "tokens")]
    if df["accuracy"].notna().any():
        columns.append(Column("accuracy", "Accuracy gate", "text"))
    note = f"Ranked by {by.name}" + (f" ({by.why})" if by.why else "") + ". Token Throughput is output tokens/s."
    return Table("top", f"Top {top_n} Configurations by {rp.RANK_TITLES[by.column]}", note, columns,
                 _positions(df, best), extra=extra)


def failure_tables(a: an.Analysis) -> list[Table]:
    df = a.results
    head = [*a.axes, "isl", "osl", "requests"]
    failed, near = an.failures(df), an.borderline(df)
    tables = [Table("failures", "Failures", f"{an.tally(a).line()}. Each failed point with its cause.",
                    _columns(df, [*head, "status", "cause", "source"]), _positions(df, failed))]
    if not near.empty:
        tables.append(Table("borderline", "Borderline", "Ok, and ranked, but within the simulator's stated error of a "
                            "limit; a real run may fail there.", _columns(df, [*head, "borderline"]),
                            _positions(df, near)))
    return tables


def results_table(a: an.Analysis) -> Table:
    """Every point, every column analysis gave values to (results.csv's), so new columns need no change here."""
    df = a.results
    keys = [c for c in df.columns if df[c].notna().any()]
    return Table("results", "All Results", f"One row per point, as results.csv; the first {FULL_ROWS_SHOWN:,} that "
                 f"pass the filters are shown (sort or filter to see others).", _columns(df, keys),
                 list(range(len(df))), limit=FULL_ROWS_SHOWN)


def own_table(id: str, title: str, note: str, frame: pd.DataFrame, keys: list[str]) -> Table:
    """A table of its own rows (not the run's points), sortable but not filtered."""
    return Table(id, title, note, _columns(frame, keys),
                 own=[[_cell(v) for v in row] for row in frame[keys].itertuples(index=False)])


def sla_table(table: pd.DataFrame, axes: list[str], bounds: Bounds) -> Table:
    return own_table("sla", "Best under the SLA", f"Under {bounds.describe()}: per ISL/OSL, the point with the most "
                     f"output tokens/s per GPU; failed points never qualify.", table,
                     rp.sla_columns(table, axes, bounds))


def heatmap(axes: list[str], z: str = PER_GPU, what: str = "Output tokens/s per GPU",
            hover: tuple[str, ...] = ("requests", "source"), cell: str = ",.0f") -> Heatmap:
    return Heatmap(f"{what} by ISL x OSL (per cell the highest of the points the filters pass; failed cells marked)",
                   z, [*axes, "isl", "osl", *hover], cell)


def charts(axes: list[str]) -> list[Heatmap | Versus]:
    """The heatmap and throughput per GPU against a chosen axis."""
    return [heatmap(axes), Versus("Output tokens/s per GPU against", PER_GPU, [*axes, "osl", "isl"],
                                  [*axes, "isl", "osl", "requests", "source"])]


def report_page(spec: SweepSpec, a: an.Analysis, meta: dict[str, Any], top_n: int = 10) -> Page:
    backend = meta.get("provenance", {}).get("backend", {})
    gpu = backend.get("gpu") or spec.gpu
    label = source_label(a.counts)
    banner = (f"SIMULATED: {a.counts['simulated']} of {len(a.results)} points were predicted by trtbench's simulator "
              f"({backend.get('perf_model')}), not measured on a GPU. Treat them as estimates."
              if a.counts.get("simulated") else "Measured with trtllm-bench." if a.counts else "No results yet.")
    tables = [top_table(a, top_n)]
    if a.sla is not None and spec.sla is not None:
        tables.append(sla_table(a.sla, a.axes, Bounds.of(spec.sla)))
    tables += [*failure_tables(a), results_table(a)]
    provenance = pd.DataFrame(rp.provenance_rows(spec, a, meta, code=str), columns=["field", "value"])
    tables.append(own_table("provenance", "Provenance", "Where the numbers came from.", provenance,
                            ["field", "value"]))
    return Page(f"{spec.model.name} on {gpu}: ISL x OSL {spec.mode} sweep {spec.name}", label, banner, a.results,
                [*a.axes, "isl", "osl"], tables, charts(a.axes))


def sla_page(run_name: str, table: pd.DataFrame, axes: list[str], bounds: Bounds, label: str) -> Page:
    """sla.html: the command's table (its rows the shared data, so the filters apply) and its heatmap."""
    frame = table.reset_index(drop=True)
    keys = rp.sla_columns(frame, axes, bounds)
    return Page(f"{run_name}: best configuration per ISL/OSL under {bounds.describe()}", label,
                "Failed points never qualify; the Source column says measured or simulated.", frame,
                [*axes, "isl", "osl"], [Table("sla", "Best under the SLA", f"Under {bounds.describe()}.",
                                              _columns(frame, keys), list(range(len(frame))))],
                [heatmap(axes, hover=("source",))] if PER_GPU in frame else [])


def compare_page(cmp: Comparison, a_label: str, b_label: str, simulated: bool) -> Page:
    """compare.html: each matched point of B against A (the shared rows), its verdict, what was not compared, and
    the B/A heatmap."""
    df = cmp.joined.reset_index(drop=True)
    axes = [k for k in cmp.keys if k in rp.AXIS_TITLES]
    keys = [*axes, "isl", "osl"]
    tested = df[df["verdict"].notna()].sort_values("change_pct", kind="stable")
    verdict_keys = [c for c in [*keys, "a_runs", "b_runs", "verdict", "change_pct", "change_low_pct",
                                "change_high_pct", "q", "basis"] if c in df]
    unmatched = cmp.unmatched.reset_index(drop=True)
    geo = f"{cmp.geomean:.3f}x" if cmp.geomean is not None else "n/a (no point succeeded in both)"
    tables = [Table("verdicts", "Verdict", f"Slowest first; geometric-mean speedup of B over A: {geo}.",
                    _columns(df, verdict_keys), _positions(df, tested)),
              Table("points", "Output tokens/s per point", "Every matched point, every column of compare.csv.",
                    _columns(df, [c for c in df.columns if df[c].notna().any()]), list(range(len(df))),
                    limit=FULL_ROWS_SHOWN),
              own_table("unmatched", "Not compared", "Points of one run without their match in the other.",
                        unmatched, [c for c in [*keys, "side", "why"] if c in unmatched])]
    label = "simulated" if simulated else "measured"
    banner = ("SIMULATED: at least one of the runs was predicted by trtbench's simulator, not measured."
              if simulated else "Both runs measured with trtllm-bench.")
    return Page(f"Comparison: B = {b_label} vs A = {a_label}", label, banner, df, keys, tables,
                [heatmap(axes, "ratio", "B / A output tokens/s", ("a_tok_s", "b_tok_s", "verdict"), ".3f")])


@cache
def _asset(name: str) -> str:
    return data_path(name).read_text(encoding="utf-8")


@cache
def _plotly_js() -> str:
    """plotly.js, minified, as plotly.py ships it (what its include_plotlyjs=True inlines)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def render(page: Page) -> str:
    """The page's HTML: headings and notes escaped here, tables and charts built by its script from the data."""
    df = page.frame
    data = {"columns": list(df.columns), "rows": [[_cell(v) for v in row] for row in df.itertuples(index=False)],
            "filters": page.filters, "tables": [t.data() for t in page.tables],
            "charts": [asdict(c) for c in page.charts], "label": page.label,
            "titles": {c: TITLES.get(c, c) for c in df.columns}}
    scripts = [_plotly_js(), _asset("report.js")]
    policy = (f"default-src 'none'; script-src {' '.join(map(_sha256, scripts))}; style-src 'unsafe-inline'; "
              f"img-src data: blob:; base-uri 'none'; form-action 'none'")
    label = f'<span class="label">{html_text(page.label)}</span>'
    sections = [f'<section id="section-{t.id}"><h2>{html_text(t.title)} {label}</h2>'
                f'<p class="note">{html_text(t.note)}</p><p class="shown" id="shown-{t.id}"></p>'
                f'<div class="scroll"><table id="table-{t.id}"></table></div></section>' for t in page.tables]
    sections[1:1] = [f'<section id="chart-{c.id}"><h2>{html_text(c.title)} {label}</h2>'  # after the top N
                     f'<div class="chart" id="plot-{c.id}"></div></section>' for c in page.charts]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html_text(page.title)}</title><style>{_asset('report.css')}</style></head><body>",
        f'<header><h1>{html_text(page.title)}</h1><p class="banner {html_text(page.label.split(":")[0])}">'
        f"{html_text(page.banner)}</p></header>",
        '<nav id="filters" aria-label="Filter by axis"></nav>',
        *sections,
        f'<script type="application/json" id="trtbench-data">{script_json(data)}</script>',
        *(f"<script>{s}</script>" for s in scripts),
        "</body></html>", ""])


def write(path: Path, page: Page) -> Path:
    atomic_write(path, render(page))
    return path
