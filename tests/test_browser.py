"""report.html of a real (simulated) sweep, opened from its file in headless Chromium with the network off: it loads
with no console error and requests nothing but itself, its top table reads as report.md's, it draws (a screenshot
that is not blank: the heatmap, the tables), a click on a header re-sorts the rows and a filter narrows them.

Chromium: Debian's package, which scripts/browser-setup.sh installs (`make test` runs it and exports
TRTBENCH_CHROMIUM), driven by Playwright over the DevTools protocol. Without either the tests skip, unless
REQUIRE_BROWSER is set (CI), where they fail."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # starts a browser

SPEC = """\
name: browser
model: meta-llama/Llama-3.1-8B
gpu: h100-sxm
precision: fp8
kv_cache_dtype: fp8
backend: sim
grid:
  isl: [128, 1024, 16384]
  osl: [128, 1024, 16384]
  tp: [1, 2]
requests:
  default: {fixed: 200}
runtime:
  timeout_s: 120
"""
ROWS = "rows => rows.map(r => [...r.cells].map(c => c.textContent))"


def unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    path = os.environ.get("TRTBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        unavailable("no Chromium (scripts/browser-setup.sh installs Debian's chromium; `make test` runs it)")
    return str(path)


@contextlib.contextmanager
def offline_page(html: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """(the page, console errors and page errors, every URL requested) for `html`, opened from its file with the
    browser offline, once its two charts are drawn."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("no playwright (the dev extra: pip install -e '.[dev]')")
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path)
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
                else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        page.wait_for_selector("#plot-heatmap .main-svg")
        page.wait_for_selector("#plot-versus .main-svg")
        yield page, errors, requests
        browser.close()


@pytest.fixture
def opened(cli, write_spec, tmp_path: Path) -> Iterator[tuple[Any, Path, list[str], list[str]]]:
    """(the page, the run directory, console errors and page errors, every URL requested) for the sweep's
    report.html, opened from its file with the browser offline."""
    chromium_path()
    assert cli("sweep", "--no-plots", str(write_spec(SPEC))).code == 0
    run = tmp_path / "runs" / "browser"
    with offline_page(run / "report.html") as (page, errors, requests):
        yield page, run, errors, requests


def markdown_table(report: str, section: str) -> list[list[str]]:
    """The header and rows of the first table under `## {section}` in report.md, cell by cell."""
    body = report.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[:1] + lines[2:]]


def test_the_page_loads_offline_shows_report_mds_top_10_the_heatmap_and_the_failures(opened, tmp_path):
    from PIL import Image, ImageStat

    page, run, errors, requests = opened
    assert errors == []
    assert requests == [(run / "report.html").as_uri()]  # nothing else: no CDN, font or image
    top = markdown_table((run / "report.md").read_text(), "Top 10")
    assert len(top) == 11 and top[0][:2] == ["Rank", "TP"]
    shown = [page.eval_on_selector_all("#table-top thead tr", ROWS)[0], *page.eval_on_selector_all(
        "#table-top tbody tr", ROWS)]
    assert shown == top  # every cell: the same ranks, configurations and numbers, formatted the same
    failures = page.eval_on_selector_all("#table-failures tbody tr", ROWS)
    assert len(failures) == 7 and {row[4] for row in failures} == {"timeout"}  # 18 points, 7 timeouts
    assert all(row[5].startswith("predicted ") and "exceeds the per-point timeout of 120 s" in row[5]
               for row in failures)
    # the heatmap, its cells where every TP failed (16384/16384 among them) marked
    assert page.locator("#plot-heatmap .hm").count() == 1
    assert page.locator("#plot-heatmap .scatterlayer .point").count() >= 1
    assert "SIMULATED" in page.inner_text("header")
    assert page.locator("#section-top .label").inner_text() == "SIMULATED"  # on every section
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    image = Image.open(shot).convert("RGB")
    assert image.height > 1000  # the whole page, not the viewport
    assert len(image.getcolors(1 << 20) or ()) > 50  # a heatmap's colours, not a blank or single-colour page
    assert min(ImageStat.Stat(image).var) > 100


def test_a_header_click_re_sorts_the_rows_and_a_filter_narrows_them(opened):
    page, _, errors, _ = opened
    totals = ("() => [...document.querySelectorAll('#table-top tbody tr')].map(r => "
              "parseFloat(r.cells[6].textContent.replace(/,/g, '')))")
    before = page.evaluate(totals)
    assert before != sorted(before)  # ranked per GPU: the totals of TP2 points break the order
    header = page.locator("#table-top th", has_text=re.compile(r"^Token Throughput \(total\)$"))
    header.click()
    assert page.evaluate(totals) == sorted(before)
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert page.evaluate(totals) == sorted(before, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    page.select_option("#filters select[name=tp]", "2")
    tps = page.eval_on_selector_all("#table-top tbody tr", "rows => rows.map(r => r.cells[1].textContent)")
    assert tps and set(tps) == {"2"}
    assert len(page.eval_on_selector_all("#table-failures tbody tr", ROWS)) == 3  # TP2's timeouts only
    # hovering the failed corner cell names its status and cause
    box = page.locator("#plot-heatmap .scatterlayer .point").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#plot-heatmap .hoverlayer .hovertext")
    hover = page.locator("#plot-heatmap .hoverlayer").text_content() or ""  # SVG: its lines run together
    assert hover.startswith("timeout [simulated]TP: 2ISL: ") and "OSL: 16384" in hover  # TP2 fails at OSL 16384
    assert "cause: predicted " in hover and "exceeds the per-point timeout" in hover
    assert errors == []


def test_make_sweeps_report_opens_offline_with_its_top_10_heatmap_and_failure(cli, tmp_path):
    """The default sweep (`make sweep`: sweeps/h100_grid.yaml, simulated) as its users open it: no error, no
    request, report.md's top 10 cell for cell, the heatmap, and the one failure, 16384/16384's timeout."""
    from tests.conftest import REPO

    chromium_path()
    assert cli("sweep", str(REPO / "sweeps" / "h100_grid.yaml"), "--out", str(tmp_path / "grid")).code == 0
    with offline_page(tmp_path / "grid" / "report.html") as (page, errors, requests):
        assert errors == [] and requests == [(tmp_path / "grid" / "report.html").as_uri()]
        top = markdown_table((tmp_path / "grid" / "report.md").read_text(), "Top 10")
        shown = [page.eval_on_selector_all("#table-top thead tr", ROWS)[0], *page.eval_on_selector_all(
            "#table-top tbody tr", ROWS)]
        assert len(shown) == 11 and shown == top
        failures = page.eval_on_selector_all("#table-failures tbody tr", ROWS)
        assert [row[:2] for row in failures] == [["16384", "16384"]] and "timeout" in failures[0]
        assert page.locator("#plot-heatmap .hm").count() == 1
