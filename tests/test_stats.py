"""trtbench.stats against values worked out by hand and against known truth (samples drawn from a known normal)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trtbench.stats import overlaps, summarize


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
