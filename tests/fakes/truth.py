"""A known truth for the guided-sweep tests and benchmark: what a GPU would measure where trtbench's simulator is
wrong the ways real hardware makes it wrong. It is the simulator itself, re-run with other physics, then bent:

- GEMM and attention efficiencies (`gemm`, `attn`) other than the calibrated ones: which points lose depends on
  how much of their time is prefill or decode, so the ranking changes, not only the scale;
- an all-reduce slower than modelled: each doubling of TP costs `allreduce` of the decode share of the time;
- a KV budget of `kv_share` of the predicted one: KV-bound points slow down, and a point whose pool cannot hold
  `min_seqs` whole sequences runs out of memory (monotone in ISL and OSL, as a real OOM boundary is);
- a fixed per-point deviation (`wobble`, log-normal, seeded per point) that no smooth correction explains;
- run-to-run noise (`noise`, seeded per point and run).

`TruthBackend` measures it in this process, through the backend seam (tests run hundreds of points in seconds);
`Truth.table` writes it for the fake trtllm-bench (FAKE_TRTLLM_TRUTH)."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trtbench.backends.base import DEPLOYMENT_FIELDS, Capabilities, Log
from trtbench.backends.sim import SimBackend
from trtbench.grid import IdentityRule, Point
from trtbench.records import Metrics, Outcome, Source, Status
from trtbench.sim.calibration import load
from trtbench.sim.ifb import IfbModel
from trtbench.spec import SweepSpec

MODEL_LOAD_S = 60.0  # what a run costs before its benchmark, as the runner predicts it


@dataclass(frozen=True)
class TruePoint:
    status: Status
    output_tok_per_s: float  # without run-to-run noise; 0 for a failure
    wall_s: float  # the benchmark's time (0 for a failure)
    cause: str = ""


class Truth:
    def __init__(self, spec: SweepSpec, seed: int, *, gemm: float = 0.85, attn: float = 0.7, allreduce: float = 0.06,
                 kv_share: float = 0.7, min_seqs: int = 32, wobble: float = 0.03, noise: float = 0.015) -> None:
        factors, info = load()
        physics = replace(factors, eta_gemm=factors.eta_gemm * gemm, eta_attn=factors.eta_attn * attn)
        fraction = spec.runtime.kv_cache_free_gpu_mem_fraction * kv_share
        runtime = spec.runtime.model_copy(update={"kv_cache_free_gpu_mem_fraction": fraction})
        self.spec, self.seed = spec, seed
        self.sim = SimBackend(spec.model_copy(update={"runtime": runtime}), perf=IfbModel(physics, info))
        self.allreduce, self.min_seqs, self.wobble, self.noise = allreduce, min_seqs, wobble, noise
        self._cache: dict[str, TruePoint] = {}

    def at(self, point: Point) -> TruePoint:
        if point.id not in self._cache:
            self._cache[point.id] = self._at(point)
        return self._cache[point.id]

    def _at(self, point: Point) -> TruePoint:
        outcome = self.sim.run(point, "truth")
        memory = outcome.memory
        if outcome.status is Status.OK and memory and memory.kv_tokens is not None and \
                (point.isl + point.osl) * self.min_seqs > memory.kv_tokens:
            return TruePoint(Status.OOM, 0.0, 0.0, f"KV cache of {memory.kv_tokens:,.0f} tokens holds fewer than "
                                                    f"{self.min_seqs} sequences")
        if outcome.status is not Status.OK or outcome.metrics is None:
            return TruePoint(outcome.status, 0.0, 0.0, outcome.cause)
        tp = int(self.spec.at(point.values).tp)
        decode = point.osl / (point.isl + point.osl)
        bent = 1 - self.allreduce * math.log2(tp) * decode
        bent *= math.exp(self.wobble * random.Random(f"{self.seed}:{point.label}").gauss(0, 1))
        rate = outcome.metrics.output_tok_per_s * bent
        wall = point.requests * point.osl / rate
        timeout = self.spec.at(point.values).runtime.timeout_s
        if wall > timeout:
            return TruePoint(Status.TIMEOUT, 0.0, 0.0, f"ran past {timeout:.0f} s")
        return TruePoint(Status.OK, rate, wall)

    def measured(self, point: Point, run: int) -> float:
        """The `run`-th measurement of an ok point: its rate with seeded noise."""
        return self.at(point).output_tok_per_s * math.exp(
            self.noise * random.Random(f"{self.seed}:{point.label}:{run}").gauss(0, 1))

    def cost_s(self, point: Point) -> float:
        """GPU-seconds one run of `point` truly takes: its benchmark and the model load, x its GPUs."""
        at = self.spec.at(point.values)
        return (self.at(point).wall_s + MODEL_LOAD_S) * at.tp * at.pp

    def value(self, point: Point, per_gpu: bool) -> float:
        """The ranked quantity, as the report ranks (per GPU or in total); 0 for a failure."""
        at = self.spec.at(point.values)
        return self.at(point).output_tok_per_s / (at.tp * at.pp if per_gpu else 1)

    def table(self, points: Sequence[Point]) -> dict[str, float | str]:
        """FAKE_TRTLLM_TRUTH for a grid of one deployment: "ISLxOSL" -> true output tokens/s, or how the fake fails
        (an OOM as TensorRT-LLM reports one; any other failure as a run that printed no report)."""
        failures = {Status.OK: "", Status.OOM: "oom_runtime"}
        return {f"{p.isl}x{p.osl}": self.at(p).output_tok_per_s if self.at(p).status is Status.OK
                else failures.get(self.at(p).status, "no_report") for p in points}


class TruthBackend:
    """A measuring backend whose GPU is `Truth`: each run of a point draws the next seeded noise."""

    name = "truth"

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.runs: dict[str, int] = {}

    def identity(self) -> IdentityRule:
        return IdentityRule(DEPLOYMENT_FIELDS, {"backend": self.name})

    def capabilities(self) -> Capabilities:
        return Capabilities(source=Source.MEASURED, runs_commands=False)

    def prepare(self, points: Sequence[Point], log: Log, *, dry_run: bool = False, allow_build: bool = True,
                recorded: Collection[str] = ()) -> list[str]:
        return []

    def command(self, point: Point) -> list[str] | None:
        return None

    def run(self, point: Point, attempt: str, env: Mapping[str, str] | None = None) -> Outcome:
        true = self.truth.at(point)
        run = self.runs.get(point.id, 0)
        self.runs[point.id] = run + 1
        if true.status is not Status.OK:
            return Outcome(status=true.status, cause=true.cause, source=Source.MEASURED)
        rate = self.truth.measured(point, run)
        latency = point.requests * point.osl / rate
        metrics = Metrics(output_tok_per_s=rate, request_per_s=point.requests / latency,
                          total_tok_per_s=point.requests * (point.isl + point.osl) / latency, total_latency_s=latency)
        return Outcome(status=Status.OK, source=Source.MEASURED, metrics=metrics)

    def cancel(self) -> None:
        """Runs take microseconds: nothing to stop."""

    def provenance(self) -> dict[str, Any]:
        return {"truth_seed": self.truth.seed}


@dataclass(frozen=True)
class GuidedRun:
    """A guided sweep of `Truth` and how it did: the points it ran, in order, and the last plan."""

    truth: Truth
    points: list[Point]
    order: list[str]  # point ids in the order they were first run
    plan: Any  # trtbench.guided.strategy.Plan
    per_gpu: bool

    def true_top(self, k: int) -> list[str]:
        ok = [p for p in self.points if self.truth.at(p).status is Status.OK]
        return [p.id for p in sorted(ok, key=lambda p: -self.truth.value(p, self.per_gpu))[:k]]

    def fraction(self, ids: Collection[str] | None = None) -> float:
        """True GPU time of the points run (or `ids`), over that of the full grid."""
        chosen = set(self.order if ids is None else ids)
        return sum(self.truth.cost_s(p) for p in self.points if p.id in chosen) / \
            sum(self.truth.cost_s(p) for p in self.points)

    def regret(self, ids: Collection[str] | None = None) -> float:
        """How far the best point run (or of `ids`) truly is below the true best, as a fraction of it."""
        chosen = set(self.order if ids is None else ids)
        best = self.truth.value(next(p for p in self.points if p.id == self.true_top(1)[0]), self.per_gpu)
        found = max((self.truth.value(p, self.per_gpu) for p in self.points if p.id in chosen), default=0.0)
        return 1 - found / best


def guided_run(spec: SweepSpec, seed: int, run_dir: Any, executor: Any = None,
               backend: type[TruthBackend] = TruthBackend, retry_failed: bool = False, **bends: Any) -> GuidedRun:
    """A guided sweep of `spec` against `Truth(spec, seed, **bends)`, in this process, into `run_dir` (resumed when
    it holds a run)."""
    from trtbench.backends.registry import Selection
    from trtbench.executors.base import NullObserver
    from trtbench.executors.local import LocalExecutor
    from trtbench.grid import expand
    from trtbench.runner import run_sweep
    from trtbench.spec import Strategy
    from trtbench.store import RunStore

    spec = spec.model_copy(update={"strategy": Strategy.GUIDED})
    truth = Truth(spec, seed, **bends)
    measuring = backend(truth)
    points = expand(spec, measuring.identity())
    store = RunStore.create(run_dir, lambda _: None)
    summary = run_sweep(spec, Selection(measuring, "truth", [], SimBackend(spec)), points, store,
                        executor or LocalExecutor(), NullObserver(), retry_failed)
    order = list(dict.fromkeys(r.point_id for r in store.all_records()))
    assert summary.guided is not None
    return GuidedRun(truth, points, order, summary.guided, summary.guided.per_gpu)
