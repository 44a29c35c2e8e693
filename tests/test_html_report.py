"""report.html without a browser (tests/test_browser.py opens it in one): hostile text stays text, nothing points
off the file, plotly.js is inlined once, the tables hold analysis's rows (and any column it adds)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from importlib import resources
from typing import Any

from tests.conftest import SMALL_SPEC
from tests.test_hostile_text import CAUSES, MODEL
from tests.test_report import STUDY, rec
from trtbench import analyze as an
from trtbench.escape import html_text, script_json, visible
from trtbench.html_report import render, report_page
from trtbench.spec import parse_spec

NAME = f"</script><script>alert(1)</script>/{MODEL}"  # a script that would end the data block, then a link
# Every element the page's own markup uses: a tag that escaped its escaping (<img>, <script> beyond ours) fails.
TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "nav", "section", "h2", "span", "div",
        "table", "script"}


class Page(HTMLParser):
    """The parsed page: tags with their attributes, the text of each element by tag, each script's content."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {}
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("meta",):
            self._open.append(tag)
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._open:
            return
        if self._open[-1] == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        else:
            self.texts.setdefault(self._open[-1], []).append(data)


def hostile_page() -> tuple[str, an.Analysis]:
    spec = parse_spec(SMALL_SPEC.replace("model: meta-llama/Llama-3.1-8B",
                                         f"model: {{name: '{NAME}', preset: Llama-3.1-8B}}"))
    records = [rec(128, 128, 100, 1000.0), *(rec(128 + i, 128, 100, None, status="error", cause=cause)
                                              for i, cause in enumerate(CAUSES, 1))]
    analysis = an.analyze(records, [r.point_id for r in records], spec)
    return render(report_page(spec, analysis, {})), analysis


def run_script() -> str:
    return (resources.files("trtbench") / "data" / "report.js").read_text()


def data_block(page: Page) -> dict[str, Any]:
    [(_, text)] = [(a, t) for a, t in page.scripts if a.get("type") == "application/json"]
    return json.loads(text)


def test_a_hostile_model_name_and_causes_stay_text():
    text, _ = hostile_page()
    page = Page(text)
    assert {tag for tag, _ in page.tags} <= TAGS  # no <img>, no <a>, no tag from the name or a cause
    assert page.texts["h1"] == [f"{NAME} on h100-sxm: ISL x OSL throughput sweep tiny"]  # read back as written
    assert len(page.scripts) == 3  # the data, plotly.js, the page's script: none from the name
    data = data_block(page)
    assert {row[data["columns"].index("model")] for row in data["rows"]} == {NAME}
    causes = {row[data["columns"].index("isl")]: row[data["columns"].index("cause")] for row in data["rows"]}
    for i, cause in enumerate(CAUSES, 1):
        assert causes[128 + i] == visible(cause), cause  # as report.md shows it: bounded, unprintables shown
    [(_, raw)] = [(a, t) for a, t in page.scripts if a.get("type") == "application/json"]
    assert "<" not in raw and ">" not in raw  # so nothing in it can close the element


def test_nothing_points_off_the_file_and_only_the_inlined_scripts_may_run():
    text, _ = hostile_page()
    page = Page(text)
    links = [(tag, key, value) for tag, attrs in page.tags for key, value in attrs.items() if key in ("src", "href")]
    assert links == []  # no CDN script, stylesheet, font or image: every one is inline
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.DOTALL)  # data, and URLs plotly.js never loads
    assert not re.search(r"(https?:)?//", markup) and not re.search(r"https?:", run_script())
    [policy] = [attrs["content"] for tag, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy is not None and "default-src 'none'" in policy and "unsafe-inline" not in policy.split(";")[1]
    allowed = set(re.findall(r"'sha256-([^']+)'", policy))
    run = [t for a, t in page.scripts if a.get("type") != "application/json"]
    assert {base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() for t in run} == allowed


def test_plotly_js_is_inlined_once():
    text, _ = hostile_page()
    assert len(re.findall(r"\* plotly\.js v\d", text)) == 1
    assert text.count("<script") == 3


def test_the_top_table_holds_report_mds_rows_and_failures_their_cause():
    spec = parse_spec(SMALL_SPEC)
    analysis = an.analyze(STUDY, [r.point_id for r in STUDY], spec)
    data = data_block(Page(render(report_page(spec, analysis, {}, top_n=3))))
    isl, osl = data["columns"].index("isl"), data["columns"].index("osl")
    tables = {t["id"]: t for t in data["tables"]}
    # The study's numbers by hand: 19,787.63 (128/1024) > 19,327.08 (128/512) > 14,389.80 (128/128) tok/s.
    assert [(data["rows"][i][isl], data["rows"][i][osl]) for i in tables["top"]["rows"]] == [
        (128, 1024), (128, 512), (128, 128)]
    assert [c["title"] for c in tables["top"]["columns"]] == [
        "Rank", "ISL", "OSL", "Requests", "Token Throughput", "Request Throughput", "Total Tokens"]
    assert tables["top"]["extra"]["rank"] == [1, 2, 3]
    assert data["label"] == "measured"
    [failed] = tables["failures"]["rows"]
    cause = data["columns"].index("cause")
    assert (data["rows"][failed][isl], data["rows"][failed][osl], data["rows"][failed][cause]) == (
        16384, 16384, "CUDA out of memory")
    assert len(tables["results"]["rows"]) == len(STUDY)


def test_a_column_analysis_adds_is_shown_without_a_change_here():
    spec = parse_spec(SMALL_SPEC)
    analysis = an.analyze(STUDY, [r.point_id for r in STUDY], spec)
    results = analysis.results.assign(usd_per_mtok=[0.5, 0.25, 1.0, 2.0, 0.75, 4.0, None])
    data = data_block(Page(render(report_page(spec, replace(analysis, results=results), {}))))
    columns = {t["id"]: [c["key"] for c in t["columns"]] for t in data["tables"]}
    assert "usd_per_mtok" in columns["results"]
    assert "joules_per_token" not in columns["results"]  # no point has one: no empty column


def test_html_text_and_script_json_by_hand():
    assert html_text("<b a=\"1\">'&'</b>") == "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;&#x27;&lt;/b&gt;"
    assert html_text("a\u202eb") == "a\\u202eb"
    assert script_json({"m": "</script><!--&"}) == '{"m":"\\u003c/script\\u003e\\u003c!--\\u0026"}'
    assert json.loads(script_json({"m": "</script><!--&"})) == {"m": "</script><!--&"}


def test_sweep_report_sla_and_compare_each_write_their_page_beside_their_markdown(cli, write_spec, tmp_path):
    assert cli("sweep", "--no-plots", str(write_spec())).code == 0
    run = tmp_path / "runs" / "tiny"
    first = (run / "report.html").read_text()
    assert Page(first).texts["title"] == ["meta-llama/Llama-3.1-8B on h100-sxm: ISL x OSL throughput sweep tiny"]
    (run / "report.html").unlink()
    assert cli("report", str(run), "--no-plots").code == 0
    assert (run / "report.html").read_text() == first  # the same analysis, the same page
    assert cli("sla", str(run), "--ttft-p95-ms", "100000").code == 0
    sla = Page((run / "sla.html").read_text())
    assert sla.texts["title"] == ["tiny: best configuration per ISL/OSL under ttft p95 <= 100,000 ms"]
    assert len(data_block(sla)["rows"]) == 4  # the 2 x 2 grid, a best point per ISL/OSL
    assert cli("compare", str(run), str(run), "--out", "cmp", "--no-plots").code == 0
    compare = data_block(Page((tmp_path / "cmp" / "compare.html").read_text()))
    assert {row[compare["columns"].index("ratio")] for row in compare["rows"]} == {1.0}  # a run against itself
