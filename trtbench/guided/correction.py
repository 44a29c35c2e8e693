"""This run's own correction of the simulator, refitted after every batch: log(measured / predicted) as a Bayesian
linear model of the point (its regime, its axis values, its lengths). The posterior mean is a multiplicative factor
on each prediction, least squares in log space shrunk towards 1; the posterior spread, plus the residual scatter
the model cannot explain, is the interval of each unmeasured point. A point unlike every measured one (another
TP size, another precision) keeps a wide interval: measuring it is what teaches the model most.

`calibrate`'s fit (`sim.fit`) refits the step model's physical factors on thousands of predictions; here the
predictions are fixed and only the run's bias on top of them is fitted, which is linear, so numpy solves it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trtbench.grid import Point
from trtbench.sim.table import regime

REGIMES = ("prefill-heavy", "mixed", "decode-heavy")  # sim.table.regime's, in order
NOISE_FLOOR = 0.01  # log-space scatter never assumed below 1%: run-to-run noise of a real GPU
PRIOR_WEIGHT = 2.0  # how many measurements the prior's residual scatter counts as


def prior_sd(error_pct: float) -> float:
    """A mean absolute error of `error_pct` % (the calibration's out-of-sample one) as a log-space standard
    deviation: for a normal error the mean absolute value is sd x sqrt(2 / pi)."""
    return max(error_pct / 100 * math.sqrt(math.pi / 2), NOISE_FLOOR)


def features(points: Sequence[Point]) -> np.ndarray:
    """One row per point: 1; its regime one-hot; each value of every axis the grid sweeps (TP, precision, ...)
    one-hot; log ISL and log OSL scaled to [-1, 1] over the grid (0 when the grid has one length)."""
    swept = {axis: sorted({str(p.extra[axis]) for p in points})
             for axis in (points[0].extra if points else {})}
    columns: list[np.ndarray] = [np.ones(len(points))]
    columns += [np.array([regime(p.isl, p.osl) == r for p in points], dtype=float) for r in REGIMES]
    for axis, values in swept.items():
        if len(values) > 1:
            columns += [np.array([str(p.extra[axis]) == v for p in points], dtype=float) for v in values]
    for length in (np.log([p.isl for p in points]), np.log([p.osl for p in points])):
        low, high = (float(length.min()), float(length.max())) if len(points) else (0.0, 0.0)
        columns.append((2 * (length - low) / (high - low) - 1) if high > low else np.zeros(len(points)))
    return np.column_stack(columns)


@dataclass(frozen=True)
class Correction:
    """The posterior of the weights (mean, covariance) and the residual scatter `noise` (log space)."""

    mean: np.ndarray
    cov: np.ndarray
    noise: float

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log correction and its standard deviation (the weights' uncertainty and the scatter) at rows `x`."""
        spread = np.einsum("ij,jk,ik->i", x, self.cov, x)
        return x @ self.mean, np.sqrt(np.maximum(spread, 0.0) + self.noise ** 2)

    def observed(self, x: np.ndarray) -> Correction:
        """As if a point at row `x` had been measured at its predicted mean: the mean stays, the covariance
        shrinks where that point says something. How a batch is chosen together: its later picks see the
        earlier ones as measured."""
        shared = self.cov @ x
        return Correction(self.mean, self.cov - np.outer(shared, shared) / (self.noise ** 2 + x @ shared), self.noise)

    def factor(self, x: np.ndarray) -> float:
        """The multiplicative correction at row `x` (exp of the posterior mean)."""
        return float(np.exp(x @ self.mean))


def refit(x_all: np.ndarray, x: np.ndarray, y: np.ndarray, sd: float) -> Correction:
    """The posterior after the measured rows `x` with log ratios `y`, from a prior that splits `sd` (the
    calibration's error) evenly between a bias the features explain and a scatter they do not. The scatter is
    re-estimated from the residuals, `PRIOR_WEIGHT` measurements' worth of prior included."""
    width = max(float(np.mean(np.sum(x_all ** 2, axis=1))), 1.0) if len(x_all) else 1.0
    weight_var, noise = sd ** 2 / 2 / width, sd / math.sqrt(2)
    for _ in range(3):  # the scatter and the weights, each given the other: a few rounds settle them
        precision = x.T @ x / noise ** 2 + np.eye(x_all.shape[1]) / weight_var
        cov = np.linalg.inv(precision)
        mean = cov @ x.T @ y / noise ** 2 if len(y) else np.zeros(x_all.shape[1])
        residuals = y - x @ mean if len(y) else np.zeros(0)
        noise = max(math.sqrt((PRIOR_WEIGHT * sd ** 2 / 2 + float(residuals @ residuals)) / (PRIOR_WEIGHT + len(y))),
                    NOISE_FLOOR)
    return Correction(mean, cov, noise)
