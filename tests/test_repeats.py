"""Repeats (`runtime.repeats`, `sweep --repeats`): separate attempts of one point id, interleaved across the grid,
resumed by running only the missing ones; measured through the fake's seeded noise, whose truth is known."""

from __future__ import annotations

import json
import re

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC


def _records(run):
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def test_repeats_interleaved_and_resumed(cli, write_spec, tmp_path, fake_bench):
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.02")
    spec = write_spec(TRTLLM_SPEC)
    assert cli("sweep", str(spec), "--repeats", "2", "--no-plots").code == 0
    run = tmp_path / "runs" / "tiny"
    records = _records(run)
    order = [(r["axes"]["isl"], r["axes"]["osl"]) for r in records]
    grid = [(128, 128), (128, 1024), (2048, 128), (2048, 1024)]
    assert order == grid + grid  # every point's first run, then every second one
    assert len({r["attempt"] for r in records}) == 8 and len({r["point_id"] for r in records}) == 4
    result = cli("sweep", str(spec), "--repeats", "3", "--no-plots")  # not part of the point id: 4 more runs
    assert result.code == 0, result.out + result.err
    assert [(r["axes"]["isl"], r["axes"]["osl"]) for r in _records(run)] == grid * 3
    assert cli("sweep", str(spec), "--no-plots").code == 0  # spec says 1: every point has its one, nothing runs
    assert len(_records(run)) == 12
    assert len(fake_bench.printed()) == 12


def test_statistics_from_five_repeats(cli, write_spec, tmp_path, fake_bench):
    """2% seeded noise, 5 repeats: each point's row is the mean of its five runs, its interval is a t interval
    that holds the fake's noise-free rate (the fake's formula: n x OSL / (n (ISL + OSL) / 40000 + 0.5))."""
    import pandas as pd

    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.02")
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SEED", "11")
    assert cli("sweep", str(write_spec(TRTLLM_SPEC + "runtime: {repeats: 5}\n")), "--no-plots").code == 0
    run = tmp_path / "runs" / "tiny"
    assert len(_records(run)) == 20
    df = pd.read_csv(run / "results.csv")
    printed = fake_bench.printed()
    for _, row in df.iterrows():
        runs = [p for p in printed if (p["isl"], p["osl"]) == (row["isl"], row["osl"])]
        assert len(runs) == 5 and row["repeats"] == 5 and row["ci_method"] == "t"
        assert row["output_tok_per_s"] == row["output_tok_per_s_mean"]
        assert abs(row["output_tok_per_s_mean"] - sum(p["output_tok_per_s"] for p in runs) / 5) < 1e-3
        truth = 100 * row["osl"] / (100 * (row["isl"] + row["osl"]) / 40000 + 0.5)
        assert row["output_tok_per_s_ci_low"] < truth < row["output_tok_per_s_ci_high"]
        assert 0.002 < row["output_tok_per_s_cv"] < 0.05  # about the injected 2%
        assert row["latency_ms_p50_ci_low"] < row["latency_ms_p50_mean"] < row["latency_ms_p50_ci_high"]
    report = (run / "report.md").read_text()
    assert "## Repeats" in report and "95% CI (tok/s)" in report and "(t, 5 runs)" in report
    assert "No point varied by more than 5%" in report


def test_noisy_point_flagged_with_warmup_cause(cli, write_spec, tmp_path, fake_bench):
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.15")
    spec = TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")
    spec += "runtime: {repeats: 4, concurrency: 8, warmup: 2}\n"
    assert cli("sweep", str(write_spec(spec)), "--no-plots").code == 0
    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    assert "above 5%: warm-up of 2 request(s) is shorter than concurrency 8" in report


def test_simulated_sweep_runs_each_point_once(cli, write_spec, tmp_path):
    result = cli("sweep", str(write_spec(SMALL_SPEC)), "--repeats", "3", "--no-plots")
    assert result.code == 0
    assert "repeats 3 ignored: the simulator predicts the same numbers every time" in result.out + result.err
    assert len(_records(tmp_path / "runs" / "tiny")) == 4


def test_repeats_refused_on_slurm(cli, write_spec, fake_bench):
    result = cli("sweep", str(write_spec(TRTLLM_SPEC)), "--repeats", "2", "--executor", "slurm")
    assert result.code == 2
    assert "runtime.repeats 2 needs the local or gpus executor" in result.out + result.err


GRID8 = TRTLLM_SPEC.replace("osl: [128, 1024]", "osl: [128, 256, 512, 1024]") + "runtime: {repeats: 5}\n"
SLOWED = ("128x256", "2048x128", "2048x1024")


def test_compare_finds_the_injected_slowdown_and_nothing_else(cli, write_spec, tmp_path, fake_bench):
    """Known truth: 2% noise, 5 runs a point, 8 points; B runs 6% slower at 3 of them. The verdict names exactly
    those 3 and --fail-on regression exits 1; against a second run of the same truth, no point is slower: exit 0."""
    import json

    spec = write_spec(GRID8)
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.02")
    for name, seed, slowdown in (("a", "1", ""), ("b", "2", ",".join(f"{p}:0.06" for p in SLOWED)), ("c", "3", "")):
        fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SEED", seed)
        fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SLOWDOWN", slowdown)
        assert cli("sweep", str(spec), "--out", f"runs/{name}", "--no-plots").code == 0
    truth = {(p["isl"], p["osl"]): p["speed"] for p in fake_bench.printed()}
    assert len(truth) == 8
    slower = cli("compare", "runs/a", "runs/b", "--threshold", "2%", "--fail-on", "regression", "--json",
                 "--no-plots", "--out", "cmp_ab", "--junit", "ci/junit.xml")
    assert slower.code == 1, slower.out + slower.err
    _check_junit(tmp_path / "ci" / "junit.xml", failing=set(SLOWED), skipped=set())
    points = json.loads((tmp_path / "cmp_ab" / "compare.json").read_text())["points"]
    found = {f"{p['isl']}x{p['osl']}" for p in points if p["verdict"] == "slower"}
    assert found == set(SLOWED)
    assert {p["verdict"] for p in points if f"{p['isl']}x{p['osl']}" not in SLOWED} == {"no significant change"}
    for p in points:
        if f"{p['isl']}x{p['osl']}" in SLOWED:
            assert p["change_low_pct"] < -6 * 0.98 < p["change_high_pct"] + 2  # the true -6% near its interval
    assert "## Verdict" in (tmp_path / "cmp_ab" / "compare.md").read_text().split("## Output tokens/s", 1)[0]
    same = cli("compare", "runs/a", "runs/c", "--threshold", "2%", "--fail-on", "regression", "--no-plots",
               "--out", "cmp_ac")
    assert same.code == 0, same.out + same.err
    assert "slower:" not in same.out


def _check_junit(path, failing: set[str], skipped: set[str], points: int = 8) -> None:
    """The JUnit file parsed back: a testcase per point named by its ISL/OSL, a failure at exactly the `failing`
    points (its message the change and its interval), a skip at exactly the `skipped` ones."""
    import xml.etree.ElementTree as ET

    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    names = {n: n.replace("ISL ", "").replace(" / OSL ", "x") for n in cases}
    assert len(cases) == points and all(c.get("classname") == "all" for c in cases.values())
    failed = {names[n] for n, c in cases.items() if c.find("failure") is not None}
    assert failed == failing
    assert {names[n] for n, c in cases.items() if c.find("skipped") is not None} == skipped
    for failure in suite.iter("failure"):
        assert re.fullmatch(r"slower by \d+\.\d\d% \(95% CI -\d+\.\d\d% to [-+]\d+\.\d\d%, q [\d.e-]+\), beyond "
                            r"the threshold of 2\.0%", failure.get("message", "")), failure.get("message")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        str(points), str(len(failing)), str(len(skipped)))


def test_one_run_against_five_is_tested_against_the_noise_floor(cli, write_spec, tmp_path, fake_bench):
    """Known truth: A runs each of 4 points 5 times with 2% noise, B once; B is 6% slower at 2 of them. Those 2
    are found slower against the noise floor of A's 4 repeated points (16 df; one run finds 6% about 4 times in 5,
    test_stats), stated as such; a single run of the same truth as A shows no significant change anywhere."""
    import json

    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.02")
    for name, seed, repeats, slowdown in (("a", "5", "5", ""), ("b", "6", "1", "128x1024:0.06,2048x128:0.06"),
                                          ("c", "7", "1", "")):
        fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SEED", seed)
        fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SLOWDOWN", slowdown)
        spec = write_spec(TRTLLM_SPEC)
        assert cli("sweep", str(spec), "--repeats", repeats, "--out", f"runs/{name}", "--no-plots").code == 0
    slower = cli("compare", "runs/a", "runs/b", "--threshold", "2%", "--fail-on", "regression", "--json",
                 "--no-plots", "--out", "cmp_ab")
    assert slower.code == 1, slower.out + slower.err
    points = json.loads((tmp_path / "cmp_ab" / "compare.json").read_text())["points"]
    assert {(p["isl"], p["osl"]) for p in points if p["verdict"] == "slower"} == {(128, 1024), (2048, 128)}
    assert {p["verdict"] for p in points if (p["isl"], p["osl"]) in {(128, 128), (2048, 1024)}} == \
        {"no significant change"}
    basis = {p["basis"] for p in points}
    assert len(basis) == 1
    cv = re.fullmatch(r"noise floor from 4 repeated points of run A \(CV (\d\.\d)%\)", basis.pop())
    assert cv and 1.0 <= float(cv[1]) <= 3.0  # the injected 2%
    assert {(p["a_runs"], p["b_runs"]) for p in points} == {(5, 1)}
    assert "noise floor from 4 repeated points of run A" in (tmp_path / "cmp_ab" / "compare.md").read_text()
    same = cli("compare", "runs/a", "runs/c", "--threshold", "2%", "--fail-on", "regression", "--json",
               "--no-plots", "--out", "cmp_ac")
    assert same.code == 0, same.out + same.err
    points = json.loads((tmp_path / "cmp_ac" / "compare.json").read_text())["points"]
    assert {p["verdict"] for p in points} == {"no significant change"}


def test_compare_single_runs_are_inconclusive(cli, write_spec, tmp_path, fake_bench):
    spec = write_spec(TRTLLM_SPEC)
    assert cli("sweep", str(spec), "--out", "runs/a", "--no-plots").code == 0
    assert cli("sweep", str(spec), "--out", "runs/b", "--no-plots").code == 0
    result = cli("compare", "runs/a", "runs/b", "--fail-on", "regression", "--no-plots", "--out", "cmp")
    assert result.code == 0
    assert "4 inconclusive (fewer than 2 runs on a side, no repeats to measure noise)" in \
        (tmp_path / "cmp" / "compare.md").read_text()
    assert cli("compare", "runs/a", "runs/b", "--no-plots", "--out", "cmp", "--junit", "cmp/j.xml").code == 0
    _check_junit(tmp_path / "cmp" / "j.xml", failing=set(), skipped={"128x128", "128x1024", "2048x128", "2048x1024"},
                 points=4)


def test_compare_bad_threshold_is_one_line(cli, write_spec, tmp_path):
    spec = write_spec(SMALL_SPEC)
    assert cli("sweep", str(spec), "--no-plots").code == 0
    result = cli("compare", "runs/tiny", "runs/tiny", "--threshold", "two percent")
    assert result.code == 2
    assert "--threshold 'two percent': give a relative change below 100%" in result.err
    simulated = cli("compare", "runs/tiny", "runs/tiny", "--no-plots", "--out", "cmp")
    assert simulated.code == 0
    assert "4 not tested (simulated)" in (tmp_path / "cmp" / "compare.md").read_text()
