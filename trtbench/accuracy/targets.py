"""Accuracy targets as data. MLPerf Inference's Llama-3.1-8B CNN/DailyMail summarisation: a submission passes at
99% of each reference ROUGE score (99.9% for the high-accuracy category), and its generated length must be at
least 90% of the reference's (checked where token counts exist; `trtbench accuracy score` has none).

A verdict on fewer generations than the target's set holds is one on an estimate of its score, so it reads each
metric's bootstrap interval, not its mean: PASS when every interval is at or above its threshold, FAIL when some
interval is wholly below it, INCONCLUSIVE when one straddles its threshold (more samples would decide it). Below
MIN_SAMPLES generations it is INCONCLUSIVE whatever the intervals say: the percentile bootstrap of a handful of
values is far narrower than the truth (one value, or several equal ones, give an interval of zero width), and
three summaries printing "MLPerf PASS" is what this rule exists to stop. 30 is the usual rule of thumb for a
mean to be close enough to normal for such an interval to hold its 95%."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from trtbench.accuracy.rouge import Estimate

MIN_SAMPLES = 30


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    needed: dict[str, float]  # each metric's threshold
    metrics: dict[str, Outcome]  # each metric's interval against its threshold
    reason: str


@dataclass(frozen=True)
class RougeTarget:
    name: str
    reference: dict[str, float]  # ROUGE x 100 of the reference (FP32/BF16) implementation
    fraction: float  # of each reference score a run must reach
    samples: int  # in the target's evaluation set: fewer generations only estimate its score

    def verdict(self, estimates: dict[str, Estimate], n: int) -> Decision:
        """The verdict on `n` generations whose scores are `estimates` (see the module's docstring)."""
        needed = {k: v * self.fraction for k, v in self.reference.items()}
        metrics = {k: Outcome.PASS if estimates[k].low >= t else Outcome.FAIL if estimates[k].high < t
                   else Outcome.INCONCLUSIVE for k, t in needed.items()}

        def said(k: str, where: str) -> str:
            return f"{k}'s interval {estimates[k].low:.2f}-{estimates[k].high:.2f} {where} {needed[k]:.2f}"

        failed = [said(k, "is below its threshold") for k, o in metrics.items() if o is Outcome.FAIL]
        unsure = [said(k, "straddles its threshold") for k, o in metrics.items() if o is Outcome.INCONCLUSIVE]
        if n < MIN_SAMPLES:
            why = f"{n} generation(s), fewer than the {MIN_SAMPLES} a verdict needs: more samples are needed"
            return Decision(Outcome.INCONCLUSIVE, needed, metrics, "; ".join([why, *failed, *unsure]))
        if failed:
            return Decision(Outcome.FAIL, needed, metrics, "; ".join(failed))
        if unsure:
            return Decision(Outcome.INCONCLUSIVE, needed, metrics, "; ".join(unsure) + ": more samples are needed")
        return Decision(Outcome.PASS, needed, metrics, "every interval is at or above its threshold")


MLPERF_LLAMA31_8B_CNNDM = {"rouge1": 38.7792, "rouge2": 15.9075, "rougeL": 24.4957, "rougeLsum": 35.793}
# MLPerf Inference's Llama-3.1-8B benchmark scores the CNN/DailyMail validation set: 13,368 articles.
MLPERF_CNNDM_SAMPLES = 13_368
TARGETS = {
    "mlperf-llama3.1-8b": RougeTarget("MLPerf Llama-3.1-8B CNN/DailyMail, 99%", MLPERF_LLAMA31_8B_CNNDM, 0.99,
                                      MLPERF_CNNDM_SAMPLES),
    "mlperf-llama3.1-8b-99.9": RougeTarget("MLPerf Llama-3.1-8B CNN/DailyMail, 99.9%", MLPERF_LLAMA31_8B_CNNDM,
                                           0.999, MLPERF_CNNDM_SAMPLES),
}
