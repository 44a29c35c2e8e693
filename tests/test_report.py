"""Report tables against hand-computed expectations, and their consistency with each other."""

from __future__ import annotations

import re

import pandas as pd

from tests.conftest import SMALL_SPEC
from trtbench import analyze as an
from trtbench.records import Metrics, Prediction, Record
from trtbench.report import TOP_HEADER, render
from trtbench.spec import parse_spec


def rec(isl: int, osl: int, n: int, tok_s: float | None, status: str = "ok", cause: str = "",
        source: str = "measured", prediction: Prediction | None = None, **metric: float) -> Record:
    metrics = None
    if tok_s is not None:
        wall = n * osl / tok_s
        metrics = Metrics(output_tok_per_s=tok_s, request_per_s=n / wall, total_tok_per_s=n * (isl + osl) / wall,
                          total_latency_s=wall, **metric)
    return Record(status=status, cause=cause, source=source, metrics=metrics, point_id=f"{isl}-{osl}",
                  prediction=prediction,
                  attempt=f"a-{isl}-{osl}", axes={"isl": isl, "osl": osl, "requests": n},
                  backend="trtllm" if source == "measured" else "sim", started_at="2026-01-01T00:00:00+00:00",
                  duration_s=1.0)


# The study's own numbers for a few points, plus its one failure.
STUDY = [
    rec(128, 128, 30000, 14389.80),
    rec(128, 1024, 7500, 19787.63),
    rec(128, 512, 15000, 19327.08),
    rec(1024, 128, 7500, 3575.36),
    rec(1024, 2048, 1500, 11168.38),
    rec(16384, 2048, 200, 1747.77),
    rec(16384, 16384, 200, None, status="oom", cause="CUDA out of memory"),
]


def analysis(records=STUDY):
    return an.analyze(records, [r.point_id for r in records], parse_spec(SMALL_SPEC))


def table_after(md: str, heading: str) -> list[list[str]]:
    section = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def test_top_table_has_the_study_columns_and_order():
    md = render(parse_spec(SMALL_SPEC), analysis(), {}, top_n=10)
    assert "| " + " | ".join(TOP_HEADER) + " |" in md
    rows = table_after(md, "Top 10 Configurations by Token Throughput")
    assert rows == [
        ["1", "128", "1024", "7,500", "19,787.63", "19.32", "~8.6M"],
        ["2", "128", "512", "15,000", "19,327.08", "37.75", "~9.6M"],
        ["3", "128", "128", "30,000", "14,389.80", "112.42", "~7.7M"],
        ["4", "1024", "2048", "1,500", "11,168.38", "5.45", "~4.6M"],
        ["5", "1024", "128", "7,500", "3,575.36", "27.93", "~8.6M"],
        ["6", "16384", "2048", "200", "1,747.77", "0.85", "~3.7M"],
    ]


def test_best_by_tables_by_hand():
    md = render(parse_spec(SMALL_SPEC), analysis(), {}, top_n=10)
    assert table_after(md, "Best by Input Length") == [
        ["128", "19,787.63", "OSL=1024, 7,500 req"],
        ["1024", "11,168.38", "OSL=2048, 1,500 req"],
        ["16384", "1,747.77", "OSL=2048, 200 req"],
    ]
    # The study printed 3,575.36 at ISL=1024 here, contradicting its own 14,389.80 at 128/128.
    assert table_after(md, "Best by Output Length") == [
        ["128", "14,389.80", "ISL=128, 30,000 req"],
        ["512", "19,327.08", "ISL=128, 15,000 req"],
        ["1024", "19,787.63", "ISL=128, 7,500 req"],
        ["2048", "11,168.38", "ISL=1024, 1,500 req"],
    ]


def test_failure_section_and_success_rate():
    md = render(parse_spec(SMALL_SPEC), analysis(), {}, top_n=10)
    assert ("**Points**: 7 points: 6 ok, 1 failed (oom 1), 0 not run. **Success rate**: 85.7% (6/7) of the points "
            "run.") in md
    assert table_after(md, "Failure Analysis") == [["16384", "16384", "200", "oom", "CUDA out of memory"]]


def test_success_rate_in_the_studys_form():
    records = [rec(128, o, 10, 100.0 + o) for o in range(1, 64)] + [rec(9, 9, 1, None, status="timeout")]
    md = render(parse_spec(SMALL_SPEC), analysis(records), {}, top_n=10)
    assert "98.4% (63/64)" in md


def test_no_best_by_row_contradicts_the_top_table():
    """A best-by row must be at least as good as every top-N row sharing its ISL (or OSL)."""
    records = [rec(i, o, 100, float((i * 7919 + o * 104729) % 10007)) for i in (128, 256, 512, 1024)
               for o in (128, 256, 512, 1024)]
    df = analysis(records).results
    top = an.top(df, an.TOTAL, 10)
    for key in ("isl", "osl"):
        best = an.best_by(df, key, an.TOTAL).set_index(key)["output_tok_per_s"]
        for _, row in top.iterrows():
            assert best[row[key]] >= row["output_tok_per_s"]
        assert (best == df.groupby(key)["output_tok_per_s"].max()).all()


def test_simulated_numbers_are_labelled_on_every_table():
    sim = [rec(128, 128, 100, 1000.0, source="simulated"), rec(256, 128, 100, 900.0, source="simulated")]
    md = render(parse_spec(SMALL_SPEC), analysis(sim), {"provenance": {"backend": {"perf_model": "roofline-v1"}}}, 10)
    assert "**SIMULATED**" in md
    sections = re.split(r"\n## ", md)[1:]
    tables = [s for s in sections if not s.startswith("Provenance")]
    assert len(tables) == 8  # top, best by ISL / OSL, insights, recommendations, failures, memory, efficiency
    assert all("**simulated**" in s for s in tables)


def test_measured_report_has_no_simulated_banner():
    md = render(parse_spec(SMALL_SPEC), analysis(), {}, top_n=10)
    assert "SIMULATED" not in md and "measured with trtllm-bench" in md


def test_every_point_failed_still_renders():
    failed = [rec(128, 128, 10, None, status="oom", cause="x"), rec(256, 128, 10, None, status="timeout", cause="y")]
    md = render(parse_spec(SMALL_SPEC), analysis(failed), {}, top_n=10)
    assert "0.0% (0/2)" in md
    assert table_after(md, "Top 10 Configurations by Token Throughput") == []


def test_results_frame_has_one_row_per_point_in_grid_order():
    df = analysis().results
    assert list(zip(df.isl, df.osl, strict=True))[:3] == [(128, 128), (128, 1024), (128, 512)]
    assert isinstance(df, pd.DataFrame) and len(df) == len(STUDY)
    assert df.loc[df.status == "oom", "output_tok_per_s"].isna().all()


def test_a_swept_batch_limit_is_one_column_and_the_report_renders(cli, write_spec, tmp_path):
    """max_batch_size is both a grid axis and a memory column: swept, results.csv holds it once (the value the
    point ran with) and the report groups by it instead of failing with a traceback."""
    spec = write_spec(SMALL_SPEC.replace("  osl: [128, 1024]\n", "  osl: [128, 1024]\n  max_batch_size: [64, 256]\n"))
    result = cli("sweep", "--no-plots", str(spec))
    assert result.code == 0, result.err
    frame = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert list(frame.columns).count("max_batch_size") == 1
    assert sorted(frame["max_batch_size"].unique()) == [64, 256]
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "### max_batch_size 64" in report and "### max_batch_size 256" in report
