"""The timeout verdict of a simulated point, made once when it is recorded (and again when the per-point
timeout changes), so `plan`, `sweep`, `status`, `report`, `--retry-failed` and `compare` tell one story.

A prediction is only as good as the model's stated error: a predicted run that could end on either side of the
limit within that error is `ok` but *borderline*, not a failure (the study ran its 128/16384 point, which a
strict comparison would call a timeout at 1,817 s against 1,800 s)."""

from __future__ import annotations

from typing import TypeVar

from trtbench.records import Outcome, Source, Status

Judged = TypeVar("Judged", bound=Outcome)  # an Outcome, or a Record judged again


def judge(outcome: Judged, timeout_s: float) -> Judged:
    """`outcome` (a simulated ok or timeout) judged against the per-point timeout: timeout when even the
    optimistic end of its error band runs past the limit, borderline when the band straddles it, else ok; any
    other outcome as it is."""
    wall = outcome.predicted_wall_s
    if (outcome.source is not Source.SIMULATED or outcome.status not in (Status.OK, Status.TIMEOUT)
            or outcome.metrics is None or wall is None):
        return outcome
    error = (outcome.wall_error_pct or 0.0) / 100
    band = f" (the model's stated error is {outcome.wall_error_pct:.0f}%)" if outcome.wall_error_pct else ""
    if wall * (1 - error) > timeout_s:
        mem = outcome.memory
        seqs = mem.max_concurrent_seqs if mem else None
        held = f"; the KV cache holds {seqs:,} sequences at a time" if seqs else ""
        return outcome.model_copy(update={
            "status": Status.TIMEOUT, "borderline": None,
            "cause": f"predicted {wall:,.0f} s exceeds the per-point timeout of {timeout_s:,.0f} s{band}{held}"})
    borderline = (f"predicted {wall:,.0f} s against the per-point timeout of {timeout_s:,.0f} s: within the "
                  f"model's error{band}, it may time out" if wall * (1 + error) > timeout_s else None)
    return outcome.model_copy(update={"status": Status.OK, "cause": "", "borderline": borderline})
