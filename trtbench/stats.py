"""Statistics of a point's repeats, and of two runs' repeats against each other (scipy.stats).

Run-to-run spread on a GPU is a few percent, the size of the differences users act on, so a number from
repeats comes with its spread and a 95% confidence interval of its mean: Student t for fewer than
BOOTSTRAP_FROM repeats (where a bootstrap's resamples are too few to trust), a bootstrap from there on (where
the t interval's normality assumption is no longer needed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_FROM = 30  # repeats from which the interval is a bootstrap's
NOISY_CV = 0.05  # a point whose repeats vary more than this (std / mean) is flagged noisy
SEED = 0  # the bootstrap's resampling: the same records give the same report


@dataclass(frozen=True)
class Summary:
    """One quantity over a point's repeats; with one repeat, no spread and no interval (nan)."""

    n: int
    mean: float
    median: float
    std: float  # sample standard deviation (n - 1)
    cv: float  # std / mean
    low: float  # the confidence interval of the mean
    high: float
    method: str  # "t" or "bootstrap"; "" without an interval


def summarize(values: Sequence[float], rng: np.random.Generator | None = None) -> Summary:
    """Mean, median, spread and the CONFIDENCE interval of the mean of `values` (one per repeat)."""
    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return Summary(n, mean, mean, math.nan, math.nan, math.nan, math.nan, "")
    std = float(x.std(ddof=1))
    if n < BOOTSTRAP_FROM:
        low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=std / math.sqrt(n)) if std else (mean, mean)
        method = "t"
    else:
        boot = stats.bootstrap((x,), np.mean, confidence_level=CONFIDENCE,
                               rng=rng if rng is not None else np.random.default_rng(SEED))
        low, high, method = boot.confidence_interval.low, boot.confidence_interval.high, "bootstrap"
    return Summary(n, mean, float(np.median(x)), std, std / mean if mean else math.nan, float(low), float(high),
                   method)


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals (low, high) share a value: neither point can be told apart from the other."""
    return a[0] <= b[1] and b[0] <= a[1]


FDR = 0.05  # the false-discovery rate a regression verdict holds across a grid (Benjamini-Hochberg)


@dataclass(frozen=True)
class Change:
    """B against A at one point, from their repeats: the relative change of the mean and its interval."""

    change: float  # mean(B) / mean(A) - 1
    low: float  # CONFIDENCE interval of the change (Welch's, of the difference of means, over mean(A))
    high: float
    p: float  # Welch's two-sided p-value


def welch(a: Sequence[float], b: Sequence[float]) -> Change:
    """Welch's t-test of B against A (unequal variances: two runs on different images need not share one);
    each side needs at least two repeats."""
    test = stats.ttest_ind(np.asarray(b, dtype=float), np.asarray(a, dtype=float), equal_var=False)
    base = float(np.mean(a))
    diff = float(np.mean(b)) - base
    if math.isnan(float(test.pvalue)):  # no spread on either side: the difference is exact
        return _exact(diff, base)
    interval = test.confidence_interval(CONFIDENCE)
    return Change(diff / base, float(interval.low) / base, float(interval.high) / base, float(test.pvalue))


def _exact(diff: float, base: float) -> Change:
    """A difference measured without spread: no interval around it, and certain unless it is none."""
    return Change(diff / base, diff / base, diff / base, 0.0 if diff else 1.0)


@dataclass(frozen=True)
class Noise:
    """The within-point spread of one machine's repeats, pooled over its points: how far one run of a point
    strays from its mean there."""

    cv: float  # sqrt of the (n - 1)-weighted mean of the points' squared CVs
    points: int  # points with at least two runs
    dof: int  # sum of (n - 1): the degrees of freedom the CV is estimated with


def pooled_cv(groups: Iterable[Sequence[float]]) -> Noise | None:
    """The pooled CV of the groups (a point's runs each) with at least two values; None without any."""
    repeated = [np.asarray(g, dtype=float) for g in groups if len(g) >= 2]
    if not repeated:
        return None
    dof = sum(len(x) - 1 for x in repeated)
    variance = sum((len(x) - 1) * (float(x.std(ddof=1)) / float(x.mean())) ** 2 for x in repeated) / dof
    return Noise(math.sqrt(variance), len(repeated), dof)


def against_noise(a: Sequence[float], b: Sequence[float], noise: Noise) -> Change:
    """B against A where a side has too few runs for a spread of its own (one run): each mean's standard error
    from the same machine's pooled CV, tested with Student t on the pooled degrees of freedom (a z test would
    take a CV estimated from a few runs as exact and find too much)."""
    base, mean_b = float(np.mean(a)), float(np.mean(b))
    diff = mean_b - base
    se = noise.cv * math.sqrt(base ** 2 / len(a) + mean_b ** 2 / len(b))
    if not se:
        return _exact(diff, base)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, noise.dof)) * se
    return Change(diff / base, (diff - half) / base, (diff + half) / base,
                  float(2 * stats.t.sf(abs(diff) / se, noise.dof)))


def adjusted(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q): a point is a discovery at FDR when its q is below it."""
    return [float(q) for q in stats.false_discovery_control(np.asarray(pvalues, dtype=float), method="bh")] \
        if len(pvalues) else []
