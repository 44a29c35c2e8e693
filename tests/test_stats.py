"""trtbench.stats against values worked out by hand and against known truth (samples drawn from a known normal)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trtbench.stats import FDR, Noise, adjusted, against_noise, overlaps, pooled_cv, summarize, welch


def test_three_repeats_by_hand():
    s = summarize([10.0, 12.0, 14.0])
    assert (s.n, s.mean, s.median, s.std) == (3, 12.0, 12.0, 2.0)
    assert s.cv == pytest.approx(1 / 6)
    half = 4.302653 * 2.0 / math.sqrt(3)  # t(0.975, 2 df) from the table x the standard error
    assert (s.low, s.high) == (pytest.approx(12 - half, abs=1e-5), pytest.approx(12 + half, abs=1e-5))
    assert s.method == "t"


def test_one_repeat_has_no_interval():
    s = summarize([7.0])
    assert (s.n, s.mean, s.median, s.method) == (1, 7.0, 7.0, "")
    assert math.isnan(s.std) and math.isnan(s.low) and math.isnan(s.high)


def test_identical_repeats_give_a_point_interval():
    s = summarize([5.0] * 4)
    assert (s.std, s.cv, s.low, s.high) == (0.0, 0.0, 5.0, 5.0)


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    """5 repeats of a 1000 tok/s point with 2% noise, 4000 seeded trials: the interval holds 1000 in 95% of them
    (binomial standard error 0.34%)."""
    rng = np.random.default_rng(20240528)
    trials = rng.normal(1000.0, 20.0, size=(4000, 5))
    covered = [s.low <= 1000.0 <= s.high for s in map(summarize, trials)]
    assert 0.94 <= sum(covered) / len(covered) <= 0.96


def test_bootstrap_from_thirty_repeats_covers_the_true_mean():
    """40 repeats: a bootstrap interval, holding the true mean about 95% of the time (300 trials, standard
    error 1.3%; a percentile-type bootstrap runs a little under nominal at this size)."""
    rng = np.random.default_rng(7)
    summaries = [summarize(sample, rng) for sample in rng.normal(1000.0, 20.0, size=(300, 40))]
    assert {s.method for s in summaries} == {"bootstrap"}
    rate = sum(s.low <= 1000.0 <= s.high for s in summaries) / len(summaries)
    assert 0.91 <= rate <= 0.98


def test_overlaps():
    assert overlaps((1, 3), (3, 5)) and overlaps((2, 4), (1, 5)) and not overlaps((1, 2), (2.5, 3))


def test_welch_and_benjamini_hochberg_hold_the_false_discovery_rate():
    """Known truth over 200 seeded grids of 64 points, 2% noise, 10 runs a side, 3 points 6% slower: the slowed
    points are found (>= 99% of them) and under 5% of the discoveries are false, as BH at FDR 5% promises."""
    rng = np.random.default_rng(3)
    found = false = 0
    for _ in range(200):
        a, b = rng.normal(1000.0, 20.0, size=(2, 64, 10))
        b[:3] *= 0.94
        changes = [welch(x, y) for x, y in zip(a, b, strict=True)]
        slower = {i for i, (c, q) in enumerate(zip(changes, adjusted([c.p for c in changes]), strict=True))
                  if q < FDR and c.change < -0.02}
        found, false = found + len(slower & {0, 1, 2}), false + len(slower - {0, 1, 2})
    assert found >= 0.99 * 600
    assert false / (found + false) < 0.05


def test_welch_by_hand():
    c = welch([100.0, 102.0, 98.0], [90.0, 91.0, 89.0])
    assert c.change == pytest.approx(-0.10)
    # difference -10, standard error sqrt(4/3 + 1/3) = 1.291, t = -7.75, Welch df = 2.94 -> two-sided p 0.0048
    assert c.p == pytest.approx(0.0048, abs=2e-4)
    assert c.low < -0.10 < c.high < 0


def test_pooled_cv_by_hand():
    """CVs 1/6 (2 df) and 0 (1 df) pooled: sqrt((2/36 + 0) / 3) = sqrt(1/54); a single run adds nothing."""
    noise = pooled_cv([[10.0, 12.0, 14.0], [100.0, 100.0], [5.0]])
    assert noise is not None and (noise.points, noise.dof) == (2, 3)
    assert noise.cv == pytest.approx(math.sqrt(1 / 54))
    assert pooled_cv([[5.0], [7.0]]) is None


def test_against_noise_by_hand():
    """A: 4 runs of 100, B: one of 94, a 2% floor on 16 df: standard error 0.02 x sqrt(100^2/4 + 94^2) = 2.1294,
    t = 6 / 2.1294 = 2.818, two-sided p from the t table between 0.01 and 0.02 (0.0124); the interval
    -6 +- t(0.975, 16 df) 2.1199 x 2.1294 = -6 +- 4.514 (%)."""
    c = against_noise([100.0] * 4, [94.0], Noise(0.02, 4, 16))
    assert c.change == pytest.approx(-0.06)
    assert 0.01 < c.p < 0.02 and c.p == pytest.approx(0.0124, abs=1e-4)
    assert (c.low, c.high) == (pytest.approx(-0.10514, abs=1e-4), pytest.approx(-0.01486, abs=1e-4))


def test_noise_floor_holds_its_level_and_finds_a_six_percent_slowdown():
    """Known truth, 4000 seeded trials: 4 points of 5 runs on A (2% noise, the floor: 16 df), one run on B.
    Without a change, p < 5% in 5% of trials (a z test would claim more); with B 6% slower, the standard error
    is 2% x sqrt(0.94^2 + 1/5) = 2.08%, 2.9 of them, found (p < 5%) in about 4 trials of 5."""
    rng = np.random.default_rng(28)
    false = found = 0
    for _ in range(4000):
        a = rng.normal(1000.0, 20.0, size=(4, 5))
        b = rng.normal(1000.0, 20.0)
        noise = pooled_cv(a)
        assert noise is not None and noise.dof == 16
        false += against_noise(a[0], [b], noise).p < 0.05
        found += against_noise(a[0], [0.94 * b], noise).p < 0.05
    assert 0.04 <= false / 4000 <= 0.06
    assert 0.72 <= found / 4000 <= 0.88
