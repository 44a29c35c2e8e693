"""Text from users and benchmarks made inert for where it goes: Markdown (report.md, compare.md, sla.md), a
CSV a spreadsheet opens, a matplotlib title, an HTML page (report.html) and the JSON inside it.

A model name, a version, a run directory's name or a failure's cause can hold anything: raw HTML, a link,
Markdown that breaks a table, a bidi override that reorders what a reader sees, a spreadsheet formula. Every
such string goes through one function here on its way out; trtbench's own markup does not.
"""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MAX_CHARS = 4096  # per value: a 1 MB cause must not become a 1 MB table cell
# What Markdown (GitHub's included) would read as markup inline: escape, code, emphasis, strikethrough, links and
# images, HTML tags and entities, headings, table cells, math. `_` only at a word's edge: `no_report` stays as is.
_MARKUP = re.compile(r"[\\`*~\[\]<&#|$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# Spreadsheets evaluate a cell that starts with these (OWASP's CSV injection list, with LF).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\n")  # CR too: it becomes a line feed first
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class Markdown(str):
    """Markup trtbench composed, its user-supplied parts already escaped: `md_table` puts it in as it is."""


def visible(text: str, limit: int = MAX_CHARS) -> str:
    """`text` with every character Python calls unprintable (control, bidi and other format characters,
    line breaks, separators other than the space) shown as its `\\uXXXX` escape, cut at `limit` characters
    with "…" so a reader sees what is there and in which order."""
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                   for c in text)


def md(value: object) -> str:
    """`value` as literal inline Markdown text: markup characters backslash-escaped, unprintable ones shown."""
    return _MARKUP.sub(lambda m: "\\" + m[0], visible(str(value)))


def md_code(text: str) -> Markdown:
    """`text` as a code span in a table cell (a command line, say): fenced by more backticks than it holds, so
    none of it ends the span, with `|` escaped for the table and unprintable characters shown."""
    text = visible(text).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def plot_text(text: str) -> str:
    """`text` for a matplotlib title or label: a `$` escaped, so a pair of them does not start mathtext, and
    unprintable characters shown."""
    return visible(text).replace("$", r"\$")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would evaluate as a formula, prefixed with a single quote (OWASP); numbers,
    text that is a number ("-5") and all other values as they are. A carriage return in text becomes a line
    feed: the CSV writer quotes a cell holding a line feed but not one holding a lone CR, which a reader
    takes for the end of the row (a row injected)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + value if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value) else value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` for to_csv: `csv_cell` over its text columns; numeric columns untouched, so a negative
    number stays a number."""
    safe = frame.copy()
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        safe[column] = frame[column].map(csv_cell)
    return safe


def html_text(value: object) -> str:
    """`value` as literal HTML text or attribute value: `& < > " '` as entities, unprintable characters shown."""
    return html.escape(visible(str(value)), quote=True)


def script_json(value: object) -> str:
    """`value` as JSON to put inside a `<script type="application/json">` element: `<`, `>` and `&` as JSON
    `\\u` escapes, so no text in it (a model named `</script><script>...`) ends the element or opens another;
    JSON.parse gives the characters back."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
