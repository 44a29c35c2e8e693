"""Accuracy targets as data. MLPerf Inference's Llama-3.1-8B CNN/DailyMail summarisation: a submission passes at
99% of each reference ROUGE score (99.9% for the high-accuracy category), and its generated length must be at
least 90% of the reference's (checked where token counts exist; `trtbench accuracy score` has none)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RougeTarget:
    name: str
    reference: dict[str, float]  # ROUGE x 100 of the reference (FP32/BF16) implementation
    fraction: float  # of each reference score a run must reach

    def verdict(self, scores: dict[str, float]) -> tuple[bool, dict[str, float]]:
        """Whether every score reaches its threshold, and the thresholds."""
        needed = {k: v * self.fraction for k, v in self.reference.items()}
        return all(scores[k] >= needed[k] for k in needed), needed


MLPERF_LLAMA31_8B_CNNDM = {"rouge1": 38.7792, "rouge2": 15.9075, "rougeL": 24.4957, "rougeLsum": 35.793}
TARGETS = {
    "mlperf-llama3.1-8b": RougeTarget("MLPerf Llama-3.1-8B CNN/DailyMail, 99%", MLPERF_LLAMA31_8B_CNNDM, 0.99),
    "mlperf-llama3.1-8b-99.9": RougeTarget("MLPerf Llama-3.1-8B CNN/DailyMail, 99.9%", MLPERF_LLAMA31_8B_CNNDM,
                                           0.999),
}
