"""Hostile text: what a spec may not hold is refused in one line; what it may hold, and whatever a benchmark or a
record says, reaches report.md, compare.md, sla.md as literal text (checked by rendering them as GitHub does:
CommonMark, tables, strikethrough, raw HTML on), results.csv and compare.csv without a formula a spreadsheet
would evaluate, and a plot title without mathtext."""

from __future__ import annotations

import csv
import io
import itertools

import matplotlib.cbook
import pandas as pd
import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.conftest import SMALL_SPEC
from tests.test_report import rec
from trtbench import analyze as an
from trtbench.escape import csv_cell, csv_safe_frame, md, md_code, plot_text, visible
from trtbench.report import md_table, render, write_report
from trtbench.spec import parse_spec

GITHUB = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# A formula, raw HTML, a table pipe, a link, and mathtext that matplotlib cannot parse (`\foo` is no symbol).
MODEL = '=HYPERLINK("evil.example","x")<img src=x onerror=alert(1)>|[a](javascript:alert(1))$\\foo$'
MODEL_MD = '=HYPERLINK("evil.example","x")\\<img src=x onerror=alert(1)>\\|\\[a\\](javascript:alert(1))\\$\\\\foo\\$'


def rendered(markdown: str) -> list[Token]:
    return GITHUB.parse(markdown)


def inline_text(token: Token) -> str:
    """What a reader sees of an inline token: its children's text (and trtbench's own code spans), none of them
    markup."""
    kinds = {child.type for child in token.children or []}
    assert kinds <= {"text", "code_inline"}, kinds  # no link, image, HTML, emphasis or line break
    return "".join(child.content for child in token.children or [])


def table_cells(tokens: list[Token]) -> list[Token]:
    """The inline tokens of the table cells among `tokens`, header first, row by row."""
    return [t for before, t in itertools.pairwise(tokens) if before.type in ("th_open", "td_open")]


def assert_inert(markdown: str) -> None:
    """No raw HTML and no link anywhere (images only of the run's own plots); every table row as wide as its
    header; one title."""
    tokens = rendered(markdown)
    assert not [t for t in tokens if t.type == "html_block"]
    children = [c for t in tokens if t.type == "inline" for c in t.children or []]
    assert not [c for c in children if c.type in ("html_inline", "link_open")]
    assert all(c.attrs["src"].endswith(".png") for c in children if c.type == "image")
    assert [t.tag for t in tokens if t.type == "heading_open"].count("h1") == 1
    width = None
    for t in tokens:
        if t.type == "tr_open":
            cells = 0
        elif t.type in ("th_open", "td_open"):
            cells += 1
        elif t.type == "tr_close":
            width = cells if width is None or t.level == 2 else width  # the header row sets it
            assert cells == width
        elif t.type == "table_close":
            width = None


# -- one line, exit 2: what a spec must not hold -------------------------------------------------------------

@pytest.mark.parametrize(("where", "yaml_value", "shown"), [
    ("model", '{name: "meta\\0llama", preset: Llama-3.1-8B}', "'\\x00' at position 5"),  # NUL
    ("model", '{name: "\\e[31mred", preset: Llama-3.1-8B}', "'\\x1b' at position 1"),  # a terminal escape
    ("model", '{name: "a\\nb", preset: Llama-3.1-8B}', "'\\n' at position 2"),  # a line break
    ("model", '{name: "a\\x7fb", preset: Llama-3.1-8B}', "'\\x7f' at position 2"),  # DEL
    ("model", '{name: "a\\Nb", preset: Llama-3.1-8B}', "'\\x85' at position 2"),  # NEL, a C1 control
    ("model", '{name: "a\\Lb", preset: Llama-3.1-8B}', "'\\u2028' at position 2"),  # line separator
    ("model", '{name: "evil\\u202egnp.exe", preset: Llama-3.1-8B}', "'\\u202e' at position 5"),  # bidi override
    ("model", '{name: "a\\u2066b", preset: Llama-3.1-8B}', "'\\u2066' at position 2"),  # bidi isolate
    ("model", '{name: "a\\u200bb", preset: Llama-3.1-8B}', "'\\u200b' at position 2"),  # zero-width space
    ("model", '{name: meta-llama/Llama-3.1-8B, preset: "Llama\\0"}', "'\\x00' at position 6"),  # Text
    ("model", '{name: meta-llama/Llama-3.1-8B, path: "/ckpt\\0/x"}', "'\\x00' at position 6"),  # PathText
    ("build", '{engines_dir: "engines\\t2"}', "'\\t' at position 8"),
])
def test_unprintable_spec_text_is_one_line_naming_the_key_and_the_character(cli, write_spec, where, yaml_value,
                                                                           shown):
    base = SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B\n", "") if where == "model" else SMALL_SPEC
    result = cli("plan", str(write_spec(f"{base}{where}: {yaml_value}\n")))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"has the unprintable character {shown}" in result.err and f"{where}." in result.err
    assert result.err.rstrip("\n").isprintable()  # shown escaped, never raw


def test_a_128kb_model_name_is_one_short_line(cli, write_spec):
    spec = SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B", "model: " + "x" * 2**17)
    result = cli("plan", str(write_spec(spec)))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and len(result.err) < 400


# -- escaped where it is legitimate ------------------------------------------------------------------------

def test_a_hostile_model_name_runs_and_reaches_every_output_inert(cli, write_spec, tmp_path):
    spec = SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B", f"model: {{name: '{MODEL}', preset: Llama-3.1-8B}}")
    assert cli("sweep", str(write_spec(spec))).code == 0  # plots too: the title's `$\foo$` is not mathtext
    run = tmp_path / "runs" / "tiny"
    report = (run / "report.md").read_text()
    assert report.startswith(f"# {MODEL_MD} on h100-sxm: ISL x OSL throughput sweep `tiny`\n")
    assert f"| {MODEL_MD} | 8.0B parameters (dense) | h100-sxm |" in report  # the deployment table
    assert "<img" not in report.replace("\\<img", "")
    assert_inert(report)
    assert inline_text(rendered(report)[1]) == f"{MODEL} on h100-sxm: ISL x OSL throughput sweep tiny"
    with (run / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["model"] for row in rows} == {"'" + MODEL}  # text, not a formula
    assert sorted(int(row["isl"]) for row in rows) == [128, 128, 2048, 2048]  # numbers stay numbers
    assert (run / "heatmap.png").exists()
    assert pd.read_parquet(run / "results.parquet")["model"].unique().tolist() == [MODEL]  # data kept as it is


def test_compare_escapes_the_runs_names_in_its_title_table_and_plot(cli, write_spec, tmp_path):
    hostile = "<img src=x onerror=alert(1)>|#1 [x](y) $\\foo$ =1+1\u202e"
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    (tmp_path / "runs" / "tiny").rename(tmp_path / "runs" / hostile)
    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    result = cli("compare", f"runs/{hostile}", "runs/tiny", "--out", "cmp")
    assert result.code == 0, result.err
    text = (tmp_path / "cmp" / "compare.md").read_text()
    label = f"{md(hostile)} (Llama-3.1-8B fp8, KV fp8, sim)"
    assert text.startswith(f"# Comparison: B = tiny (Llama-3.1-8B fp8, KV fp8, sim) vs A = {label}\n")
    assert_inert(text)
    assert inline_text(rendered(text)[1]).endswith(f"A = {visible(hostile)} (Llama-3.1-8B fp8, KV fp8, sim)")
    assert (tmp_path / "cmp" / "ratio_heatmap.png").exists()
    assert pd.read_csv(tmp_path / "cmp" / "compare.csv")["isl"].dtype.kind == "i"


# Benchmark-supplied text: a failure's cause, as a log or a report (or a hand-edited record) can hold it.
CAUSES = [
    "boom\n# Owned\n<script>alert(1)</script>",  # a line break that starts a heading, raw HTML
    "[click here](http://evil.example) ![x](http://evil.example/p.png) <http://evil.example>",  # links
    "[ref]: http://evil.example",  # a link reference definition
    "a | b | c",  # cells of its own
    "\\| a backslash before a pipe",  # must not turn the escaped pipe back into a cell border
    "``` fenced ``code``",
    "&#x202e; &lt;img&gt; &amp;",  # entities: a bidi override, a tag
    "evil\u202egnp.exe \u2066x\u2069 \u200b",  # bidi override and isolates, zero-width space
    "\x00\x1b[31mred\x9b\x7f\r\n\t",  # NUL, ESC, C1, DEL, CR, LF, tab
    "*bold* _it_ ~~struck~~ ~one~ $x^2$ __b__",  # emphasis, strikethrough, math
    "=1+1 -2+3 @SUM(A1)",
    "x" * 2**20,  # 1 MB
]


def test_every_hostile_cause_is_shown_literally_in_its_own_cell():
    records = [rec(128, 128, 100, 1000.0), *(rec(128 + i, 128, 100, None, status="error", cause=cause)
                                              for i, cause in enumerate(CAUSES, 1))]
    markdown = render(parse_spec(SMALL_SPEC), an.analyze(records, [r.point_id for r in records],
                                                         parse_spec(SMALL_SPEC)), {}, top_n=10)
    assert_inert(markdown)
    cells = table_cells(rendered(markdown.split("## Failure Analysis", 1)[1].split("\n## ", 1)[0]))
    rows = [cells[i:i + 5] for i in range(5, len(cells), 5)]  # ISL, OSL, Requests, Status, Cause
    shown = {int(inline_text(row[0])): inline_text(row[4]) for row in rows}
    for i, cause in enumerate(CAUSES, 1):
        assert shown[128 + i] == visible(cause), cause
    assert shown[128 + len(CAUSES)] == "x" * 4095 + "…"  # bounded
    assert shown[128 + 8] == "evil\\u202egnp.exe \\u2066x\\u2069 \\u200b"  # in the order they were written


def test_results_csv_neutralises_formulas_in_text_and_keeps_numbers(tmp_path):
    spec = parse_spec(SMALL_SPEC)
    causes = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\r=1", "fine -1", "\r\nb"]
    records = [rec(128, 128, 100, 1000.0),
               *(rec(128 + i, 128, 100, None, status="error", cause=c) for i, c in enumerate(causes, 1))]
    analysis = an.analyze(records, [r.point_id for r in records], spec)
    write_report(tmp_path, spec, analysis, {})
    frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    by_isl = dict(zip(frame["isl"], frame["cause"], strict=True))
    assert [by_isl[128 + i] for i in range(1, len(causes) + 1)] == [
        "'=1+1", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "'\tx", "'\n=1", "fine -1", "'\nb"]
    assert frame["isl"].dtype.kind == "i"  # numbers stay numbers
    assert pd.read_csv(tmp_path / "results.csv")["output_tok_per_s"].dtype.kind == "f"


# -- the escaping functions, by hand ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "escaped"), [
    ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),  # an ordinary name is left as it is
    ("no_report max_seq_len", "no_report max_seq_len"),  # `_` inside a word is no emphasis
    ("_it_ *b*", "\\_it\\_ \\*b\\*"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
    ("# Heading", "\\# Heading"),
    ("a|b", "a\\|b"),
    ("\\|", "\\\\\\|"),  # the user's backslash escaped first, so the pipe stays escaped
    ("`code`", "\\`code\\`"),
    ("[a](b) ![c](d)", "\\[a\\](b) !\\[c\\](d)"),
    ("&#8238; &amp;", "\\&\\#8238; \\&amp;"),
    ("~~s~~ $x$", "\\~\\~s\\~\\~ \\$x\\$"),
    ("a\u202eb\nc\x00", "a\\\\u202eb\\\\u000ac\\\\u0000"),  # shown as `\u202e`: the backslash escaped
    ("\U000e0041", "\\\\U000e0041"),  # a tag character: invisible, shown
])
def test_md_escapes_each_markup_class(text, escaped):
    assert md(text) == escaped
    assert inline_text(rendered(md(text))[1]) == visible(text)  # and renders as the text itself


def test_md_table_escapes_cells_and_keeps_trtbench_markdown():
    table = md_table(("Field", "Value"), [("a|b", md_code("x`|`y")), (1.5, "<b>")])
    assert table == "| Field | Value |\n|-------|-------|\n| a\\|b | ``x`\\|`y`` |\n| 1.5 | \\<b> |"
    tokens = rendered(table)
    code = [c for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "code_inline"]
    assert [c.content for c in code] == ["x`|`y"]


@pytest.mark.parametrize(("text", "code"), [("ls -l", "`ls -l`"), ("a`b", "``a`b``"), ("`a", "`` `a ``"),
                                            ("a\nb", "`a\\u000ab`")])
def test_md_code_fences_past_any_backtick_run(text, code):
    assert md_code(text) == code


@pytest.mark.parametrize(("text", "title"), [("Llama $5$", "Llama \\$5\\$"), ("a$\\foo$b", "a\\$\\foo\\$b"),
                                             ("x\ny", "x\\u000ay")])
def test_plot_text_never_starts_mathtext(text, title):
    assert plot_text(text) == title and not matplotlib.cbook.is_math_text(title)


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\n=1"), ("\n=1", "'\n=1"), ("a\rb\r\nc", "a\nb\nc"), ("ok", "ok"), ("a=1", "a=1"), ("", ""),
    ("-5", "-5"), ("+1.5e3", "+1.5e3"), ("-.5", "-.5"),  # text that is a number is no formula
    (-5, -5), (-2.5, -2.5), (None, None),
])
def test_csv_cell_prefixes_what_a_spreadsheet_would_evaluate(value, cell):
    assert csv_cell(value) == cell


def test_csv_safe_frame_leaves_numeric_columns_alone():
    frame = pd.DataFrame({"delta": [-5.0, 2.0], "n": [-1, 3], "model": ["=x", "ok"], "axis": [-1, "-1+1"]})
    safe = csv_safe_frame(frame)
    assert safe["delta"].tolist() == [-5.0, 2.0] and safe["n"].dtype == frame["n"].dtype
    assert safe["model"].tolist() == ["'=x", "ok"] and safe["axis"].tolist() == [-1, "'-1+1"]
    assert frame["model"].tolist() == ["=x", "ok"]  # the caller's frame is untouched
    assert pd.read_csv(io.StringIO(safe.to_csv(index=False)))["delta"].tolist() == [-5.0, 2.0]


def test_visible_cuts_long_text_before_escaping():
    assert visible("\x00" * 5000) == "\\u0000" * 4095 + "…"
    assert visible("ab", limit=1) == "…" and visible("abc", limit=3) == "abc"

