"""`trtbench accuracy score`: ROUGE as MLPerf computes it, checked on pairs scored by hand; the bootstrap interval
checked on values whose resampled means can be counted by hand; and the verdict read from the intervals against
MLPerf's Llama-3.1-8B CNN/DailyMail targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trtbench.accuracy.rouge import Estimate, Pair, bootstrap, score, sentences
from trtbench.accuracy.targets import TARGETS, Outcome

PERFECT = ("the cat sat on the mat.", "the cat sat on the mat.")  # every metric 100
UNRELATED = ("completely unrelated words here", "the cat sat on the mat.")  # every metric 0


def _write(tmp_path: Path, pairs: list[tuple[str, str]]) -> Path:
    path = tmp_path / "generations.jsonl"
    path.write_text("".join(json.dumps({"prediction": p, "reference": r}) + "\n" for p, r in pairs))
    return path


def test_rouge_by_hand():
    # "the cat sat" vs "the cat ran": 2 of 3 unigrams (F 2/3), 1 of 2 bigrams (F 1/2), LCS "the cat" (F 2/3).
    # "Dogs running. It rained." vs "dog runs. it rained.": Porter stems and lower case make them equal (F 1).
    scores = score([Pair("the cat sat", "the cat ran"), Pair("Dogs running. It rained.", "dog runs. it rained.")])
    assert scores["rouge1"] == pytest.approx([200 / 3, 100])
    assert scores["rouge2"] == pytest.approx([50, 100])
    assert scores["rougeL"] == pytest.approx([200 / 3, 100])


def test_rougelsum_sees_sentences_and_rougel_does_not():
    # "a b. c d." vs "c d. a b.": one LCS over the whole text is "a b" or "c d" (F 1/2); per sentence, each
    # reference sentence finds itself in the prediction (union LCS 4 of 4 tokens: F 1).
    scores = score([Pair("a b. c d.", "c d. a b.")])
    assert scores["rougeL"] == pytest.approx([50.0]) and scores["rougeLsum"] == pytest.approx([100.0])
    assert sentences('He said "no." Then he left!  Really?') == 'He said "no."\nThen he left!\nReally?'


def test_the_bootstrap_of_equal_values_is_zero_wide_at_them():
    # Every resample of 50 copies of 62.5 has mean 62.5 (exact in binary floating point).
    [(low, high)] = bootstrap([np.full(50, 62.5)])
    assert low == high == 62.5


@pytest.mark.parametrize(("values", "expected"), [
    # All of one value is drawn with probability 1/4 (two values) or 1/27 (three), more than the 2.5% in each
    # tail: the 95% interval runs from the smallest value to the largest.
    ([0, 100], (0, 100)),
    ([0, 50, 100], (0, 100)),
    # Five 0s and one 100: a resample's mean is 100 k / 6, k ~ Binomial(6, 1/6). P(k = 0) = (5/6)^6 = 0.335 > 2.5%
    # (low 0); P(k >= 3) = 1 - 0.335 - 0.402 - 0.201 = 0.062 > 2.5% and P(k >= 4) = 0.009 < 2.5% (high 50).
    ([0, 0, 0, 0, 0, 100], (0, 50)),
])
def test_the_bootstrap_interval_by_hand(values, expected):
    [(low, high)] = bootstrap([np.array(values, dtype=float)])
    assert (low, high) == pytest.approx(expected)


def test_the_interval_holds_the_mean_and_narrows_with_more_samples():
    # Half 0s and half 100s: a resample's mean is 100 k / n, k ~ Binomial(n, 1/2). For n = 20 the 2.5% and 97.5%
    # points of k are 6 and 14 (P(k <= 5) = 0.021, P(k <= 6) = 0.058): 30-70. For n = 2000 the mean's standard
    # error is 50 / sqrt(2000) = 1.12, so the interval is about 50 +- 1.96 x 1.12: 47.8-52.2.
    [small] = bootstrap([np.array([0.0, 100.0] * 10)])
    [large] = bootstrap([np.array([0.0, 100.0] * 1000)])
    assert small == pytest.approx((30, 70))
    assert large == pytest.approx((47.8, 52.2), abs=0.3)
    assert small[0] < 50 < small[1] and large[0] < 50 < large[1]


def _estimates(low: float, high: float) -> dict[str, Estimate]:
    return {m: Estimate((low + high) / 2, low, high) for m in ("rouge1", "rouge2", "rougeL", "rougeLsum")}


def test_the_verdict_reads_the_whole_interval():
    target = TARGETS["mlperf-llama3.1-8b"]
    above = _estimates(38.40, 60.0)  # rouge1's threshold is 0.99 x 38.7792 = 38.391408; the rest are lower
    decision = target.verdict(above, 30)
    assert decision.needed["rouge1"] == pytest.approx(38.391408) and decision.outcome is Outcome.PASS
    assert target.verdict(_estimates(38.38, 60.0), 30).outcome is Outcome.INCONCLUSIVE  # just across rouge1's
    assert target.verdict(above, 29).outcome is Outcome.INCONCLUSIVE  # too few to decide, whatever the interval
    assert TARGETS["mlperf-llama3.1-8b-99.9"].verdict(above, 30).outcome is Outcome.INCONCLUSIVE  # 38.7404 inside
    below = {**above, "rouge2": Estimate(12.0, 10.0, 14.0)}  # wholly below 15.75: fails, whatever else straddles
    assert target.verdict(below, 30).outcome is Outcome.FAIL
    assert target.verdict(below, 30).metrics["rouge2"] is Outcome.FAIL


@pytest.mark.parametrize("pairs", [
    # Means 55.6 / 50 / 55.6 / 55.6, well above every threshold; 3 samples are no evidence of it.
    [PERFECT, ("the cat sat", "the cat ran"), UNRELATED],
    [PERFECT] * 3,  # a zero-wide interval at 100, but only 3 samples
])
def test_three_generations_never_pass(cli, tmp_path, pairs):
    result = cli("accuracy", "score", str(_write(tmp_path, pairs)), "--json")
    assert result.code == 1, result.err
    data = json.loads(result.out)
    assert data["verdict"] == "inconclusive" and data["passed"] is False and data["generations"] == 3
    assert "fewer than the 30 a verdict needs: more samples are needed" in data["reason"]
    assert "13,368" in result.err  # the warning: MLPerf's set is larger
    table = cli("accuracy", "score", str(_write(tmp_path, pairs)))
    assert table.code == 1 and "INCONCLUSIVE" in table.out and "FAIL" not in table.out


def test_three_mixed_generations_span_the_whole_range(cli, tmp_path):
    # Scores 100, x and 0 per metric: all-100 and all-0 resamples each have probability 1/27 > 2.5%.
    result = cli("accuracy", "score", str(_write(tmp_path, [PERFECT, ("the cat sat", "the cat ran"), UNRELATED])),
                 "--json")
    rouge1 = json.loads(result.out)["scores"]["rouge1"]
    assert rouge1 == pytest.approx({"score": (100 + 200 / 3 + 0) / 3, "ci_low": 0, "ci_high": 100})


def test_many_perfect_generations_pass_with_a_tight_interval(cli, tmp_path):
    result = cli("accuracy", "score", str(_write(tmp_path, [PERFECT] * 40)), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["verdict"] == "pass" and data["passed"] is True and data["generations"] == 40
    assert all(s == {"score": 100, "ci_low": 100, "ci_high": 100} for s in data["scores"].values())
    table = cli("accuracy", "score", str(_write(tmp_path, [PERFECT] * 40)))
    assert table.code == 0 and "PASS" in table.out and "100.0000-100.0000" in table.out
    assert "warning" in table.err and "PASS" not in table.err  # the warning on stderr, the result on stdout


def test_generations_far_below_fail(cli, tmp_path):
    result = cli("accuracy", "score", str(_write(tmp_path, [UNRELATED] * 40)), "--json")
    data = json.loads(result.out)
    assert result.code == 1 and data["verdict"] == "fail" and data["passed"] is False
    assert data["scores"]["rouge2"] == {"score": 0, "ci_low": 0, "ci_high": 0}
    table = cli("accuracy", "score", str(_write(tmp_path, [UNRELATED] * 40)))
    assert table.code == 1 and "FAIL" in table.out and "rouge1's interval 0.00-0.00 is below its threshold 38.39" \
        in table.out


def test_an_interval_across_a_threshold_is_inconclusive(cli, tmp_path):
    # 20 at 100 and 20 at 0: k ~ Binomial(40, 1/2) of a resample are 100s, 2.5% and 97.5% points 14 and 26
    # (P(k <= 13) = 0.019, P(k <= 14) = 0.040): 35-65, across rouge1's 38.39 and rougeLsum's 35.44, above
    # rouge2's 15.75 and rougeL's 24.25.
    result = cli("accuracy", "score", str(_write(tmp_path, [PERFECT] * 20 + [UNRELATED] * 20)), "--json")
    data = json.loads(result.out)
    assert result.code == 1 and data["verdict"] == "inconclusive"
    assert data["scores"]["rouge1"] == pytest.approx({"score": 50, "ci_low": 35, "ci_high": 65})
    assert data["reason"] == ("rouge1's interval 35.00-65.00 straddles its threshold 38.39; rougeLsum's interval "
                              "35.00-65.00 straddles its threshold 35.44: more samples are needed")


def test_an_unknown_target_is_a_one_line_error(cli, tmp_path):
    result = cli("accuracy", "score", str(_write(tmp_path, [PERFECT])), "--target", "nope")
    assert result.code == 2 and "--target 'nope'" in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(("content", "message"), [
    ("not json\n", "generations.jsonl:1: not a JSON object"),
    ('{"prediction": "x"}\n', 'generations.jsonl:1: needs "prediction" and "reference" strings'),
    ("\n\n", "holds no generations"),
])
def test_bad_generations_are_one_line_errors(cli, tmp_path, content, message):
    path = tmp_path / "generations.jsonl"
    path.write_text(content)
    result = cli("accuracy", "score", str(path))
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
