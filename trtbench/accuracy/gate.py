"""The accuracy gate: which artifacts may be called "best". An artifact passes when each of its scores is at
least `tolerance` x the reference artifact's score on the same task (MLPerf's 99% rule, with the 16-bit build
of the same model as the reference: trtllm-eval's prompt and ROUGE settings are not MLPerf's, so MLPerf's
absolute targets do not apply to its numbers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from trtbench.accuracy.records import AccuracyRecord, Artifact
from trtbench.records import Status
from trtbench.spec import AccuracySpec


class Gate(str, Enum):
    REFERENCE = "reference"
    PASS = "pass"
    FAIL = "FAIL"
    UNKNOWN = "not checked"

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Verdict:
    artifact: Artifact
    gate: Gate
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metric -> score (x 100)
    deltas: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metric -> score - reference's
    reasons: tuple[str, ...] = ()  # why it failed or was not checked

    @property
    def summary(self) -> str:
        """Scores and, for a candidate, the change from the reference: `cnn_dailymail rouge1 37.90 (-0.41)`."""
        parts = []
        for task, metrics in self.scores.items():
            for metric, value in metrics.items():
                delta = self.deltas.get(task, {}).get(metric)
                parts.append(f"{task} {metric} {value:.2f}" + (f" ({delta:+.2f})" if delta is not None else ""))
        return ", ".join(parts)


def verdicts(records: Iterable[AccuracyRecord], spec: AccuracySpec, artifacts: Iterable[Artifact]
             ) -> dict[Artifact, Verdict]:
    """A verdict for each of `artifacts` from the records of the spec's tasks and sample count."""
    wanted = [r for r in records if r.task in spec.tasks and r.samples == spec.samples]
    by_artifact: dict[Artifact, dict[str, AccuracyRecord]] = {}
    for r in wanted:
        by_artifact.setdefault(r.artifact, {})[r.task] = r
    artifacts = list(artifacts)
    out = {}
    for artifact in artifacts:
        runs = by_artifact.get(artifact, {})
        scores: dict[str, dict[str, float]] = {t: dict(runs[t].scores) for t in spec.tasks
                                               if t in runs and runs[t].status is Status.OK}
        missing = [_why_missing(t, runs.get(t)) for t in spec.tasks if t not in scores]
        if missing:
            out[artifact] = Verdict(artifact, Gate.UNKNOWN, scores, reasons=tuple(missing))
            continue
        if artifact.precision is spec.reference:
            out[artifact] = Verdict(artifact, Gate.REFERENCE, scores)
            continue
        ref = _reference(artifact, spec, by_artifact)
        if ref is None:
            out[artifact] = Verdict(artifact, Gate.UNKNOWN, scores, reasons=(
                f"no {spec.reference} reference scores for {', '.join(spec.tasks)}",))
            continue
        deltas: dict[str, dict[str, float]] = {
            t: {m: v - ref[t][m] for m, v in scores[t].items() if m in ref[t]} for t in spec.tasks}
        below = tuple(f"{t} {m} {v:.2f} < {spec.tolerance:g} x {ref[t][m]:.2f} = {spec.tolerance * ref[t][m]:.2f}"
                      for t in spec.tasks for m, v in scores[t].items() if m in ref[t] and
                      v < spec.tolerance * ref[t][m])
        out[artifact] = Verdict(artifact, Gate.FAIL if below else Gate.PASS, scores, deltas, below)
    return out


def _why_missing(task: str, record: AccuracyRecord | None) -> str:
    if record is None:
        return f"{task}: not run (trtbench accuracy run SPEC)"
    return f"{task}: {record.status}: {record.cause}"


def _reference(artifact: Artifact, spec: AccuracySpec, by_artifact: dict[Artifact, dict[str, AccuracyRecord]]
               ) -> dict[str, dict[str, float]] | None:
    """The reference precision's scores (this run's or the reference run's): of the same TP x PP where it was
    scored so, else of any build of it."""
    candidates = sorted((a for a in by_artifact if a.precision is spec.reference),
                        key=lambda a: (a.tp, a.pp) != (artifact.tp, artifact.pp))
    for ref in candidates:
        runs = by_artifact.get(ref, {})
        if all(t in runs and runs[t].status is Status.OK for t in spec.tasks):
            return {t: dict(runs[t].scores) for t in spec.tasks}
    return None
