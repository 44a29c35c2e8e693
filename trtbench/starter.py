"""The first spec for a model (`trtbench init`): a precision and KV cache dtype the GPU runs, the TP sizes the model
fits at (the simulator's memory model), and the largest grid of the seed study's shape whose predicted cost fits a
GPU-hour budget (the simulator's predictions, as `trtbench plan` makes them). Pure: no file is read or written
here but a model's config.json."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from trtbench import __version__
from trtbench.backends.sim import SimBackend
from trtbench.catalog.gpus import GPU
from trtbench.catalog.models import ModelArch, resolve_model
from trtbench.deployment import deployment_for
from trtbench.errors import TrtbenchError, Unsupported
from trtbench.grid import IdentityRule, expand
from trtbench.precision import KvDtype, Precision, default_kv
from trtbench.records import Outcome, Status
from trtbench.runner import MODEL_LOAD_S, prediction_of, tasks_for
from trtbench.sim.memory import plan_memory
from trtbench.spec import SweepSpec
from trtbench.spec.loading import parse_spec

# The seed study (sweeps/h100_grid.yaml): ISL x OSL over 128 ... 16384, about 6M tokens a point in [200, 30000]
# requests, 30 minutes a point at most, KV cache fraction 0.90, 2 warm-up requests.
SEED_LENGTHS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
SEED_BUDGET_TOKENS, SEED_MIN_REQUESTS, SEED_MAX_REQUESTS = 6_000_000, 200, 30_000
SEED_RUNTIME = {"kv_cache_free_gpu_mem_fraction": 0.90, "warmup": 2, "timeout_s": 1800}
# Coarser grids of the same span, tried in order when the seed grid does not fit the budget; at each, ever
# fewer tokens a point (the minimum count shrinks with them, so the longest pairs shrink too).
LENGTH_LADDER = (SEED_LENGTHS, (128, 512, 2048, 8192, 16384), (128, 1024, 8192), (128, 1024), (128,))
TOKEN_LADDER = (1, 2, 4, 8)  # the seed's tokens a point divided by
TP_SIZES = (1, 2, 4, 8)  # one HGX node at most
# Memory at the smallest pair decides whether a TP size holds the model at all (weights, runtime, some KV).
_FIT_ISL = _FIT_OSL = 128


@dataclass(frozen=True)
class Grid:
    """One candidate: TP sizes swept, ISL (= OSL) values, tokens a point and the minimum request count."""

    tps: tuple[int, ...]
    lengths: tuple[int, ...]
    budget_tokens: int
    min_requests: int

    @property
    def seed_shape(self) -> bool:
        return self.lengths == SEED_LENGTHS and self.budget_tokens == SEED_BUDGET_TOKENS


@dataclass(frozen=True)
class Cost:
    """A grid's predicted cost (simulated): GPU-hours (each point's run and model load x its GPUs) and the wall
    time one point at a time, as `plan` prints it."""

    gpu_hours: float
    wall_hours: float
    points: int
    failing: int  # points predicted to fail (oom, infeasible, timeout)


@dataclass(frozen=True)
class Starter:
    model: str
    config: str | None
    arch: ModelArch
    gpu: GPU
    gpu_source: str  # how the GPU was chosen: "given" or "NVML"
    precision: Precision
    kv: KvDtype
    fitting_tps: tuple[int, ...]
    grid: Grid
    cost: Cost
    budget_gpu_hours: float | None

    @property
    def spec_name(self) -> str:
        """A run name from the model's and GPU's names: runs/<name>/ (the spec's name pattern)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.arch.name}_{self.gpu.id}".lower()).strip("-._")[:80] or "init"

    def summary(self) -> str:
        g, c = self.grid, self.cost
        tps = "/".join(map(str, g.tps))
        return (f"{self.precision} ({self.kv} KV) on {self.gpu.id}, TP {tps}, ISL x OSL {len(g.lengths)} x "
                f"{len(g.lengths)}, {c.points} points, predicted {c.gpu_hours:,.1f} GPU-hours (simulated)")

    def spec_text(self) -> str:
        """The spec, commented: what was chosen and why, then the YAML."""
        data = _spec_data(self.model, self.config, self.gpu.id, self.precision, self.kv, self.grid, self.spec_name)
        g, c = self.grid, self.cost
        budget = (f"the largest of the seed study's shape that fits {self.budget_gpu_hours:,g} GPU-hours"
                  if self.budget_gpu_hours is not None else "the seed study's (sweeps/h100_grid.yaml), as no "
                  "--budget-gpu-hours was given")
        shape = "the seed study's grid" if g.seed_shape else f"{len(g.lengths)} x {len(g.lengths)}"
        notes = [
            f"Written by `trtbench init` (trtbench {__version__}) for {self.model} on the {self.gpu.name} "
            f"({self.gpu.id}, {self.gpu_source}).",
            f"precision {self.precision}, KV cache {self.kv}: "
            f"{_precision_reason(self.gpu, self.arch, self.precision)}.",
            f"TP sizes the model fits at on one {self.gpu.id} node (simulated memory at ISL/OSL "
            f"{_FIT_ISL}/{_FIT_OSL}): "
            f"{', '.join(map(str, self.fitting_tps))}; swept here: {', '.join(map(str, g.tps))} "
            f"(add others to grid.tp).",
            f"Grid: ISL x OSL over {', '.join(map(str, g.lengths))} ({shape}): {budget}.",
            f"Requests: about {g.budget_tokens:,} tokens a point (requests = budget_tokens / (ISL + OSL), two "
            f"significant digits), at least {g.min_requests:,} and at most {SEED_MAX_REQUESTS:,}.",
            f"Predicted (simulated, {MODEL_LOAD_S:.0f} s model load a point): {c.points} points, "
            f"{c.gpu_hours:,.1f} GPU-hours, {c.wall_hours:,.1f} h one point at a time"
            + (f"; {c.failing} predicted to fail (oom, infeasible or timeout: findings too)." if c.failing else "."),
            "`trtbench plan` on this file shows each point; `trtbench sweep` runs it (measured where trtllm-bench and "
            "a GPU are here, else simulated).",
        ]
        comments = "".join(f"# {_one_line(n)}\n" for n in notes)
        return comments + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def choose(model: str, config: str | None, gpu: GPU, gpu_source: str, budget_gpu_hours: float | None,
           max_gpus: int = max(TP_SIZES)) -> Starter:
    """The starter spec for `model` (a preset's name, or any name with its `config`) on `gpu`: the first
    precision the GPU and model take, the TP sizes up to `max_gpus` that hold the model, and the first grid of
    `ladder` whose predicted GPU-hours fit the budget (the seed study's grid when there is none)."""
    arch = resolve_model(model, None, config)
    precision, kv = _precision(model, config, gpu, arch)
    fitting = tuple(tp for tp in TP_SIZES if tp <= max_gpus and _fits(model, config, gpu, precision, kv, tp))
    if not fitting:
        raise TrtbenchError(f"{model} does not fit on up to {max_gpus} x {gpu.name} at {precision} (simulated "
                            f"memory: weights, runtime and KV cache); choose a bigger GPU or a smaller precision")
    predict = _Predictor(model, config, gpu, precision, kv)
    last = None
    for grid in ladder(arch, fitting) if budget_gpu_hours is not None else [_seed_grid(arch, fitting)]:
        last = predict.cost(grid)
        if budget_gpu_hours is None or last.gpu_hours <= budget_gpu_hours:
            return Starter(model, config, arch, gpu, gpu_source, precision, kv, fitting, grid, last, budget_gpu_hours)
    assert last is not None
    raise TrtbenchError(f"even the smallest grid is predicted at {last.gpu_hours:,.2f} GPU-hours (simulated), "
                        f"over --budget-gpu-hours {budget_gpu_hours:,g}; give a larger budget")


def ladder(arch: ModelArch, fitting: tuple[int, ...]) -> Iterator[Grid]:
    """Candidate grids, largest first: at each grid of LENGTH_LADDER, each token budget of TOKEN_LADDER, the two
    smallest TP sizes the model fits at, then the smallest alone. Lengths a sequence of twice their size would
    not fit the model's context are left out."""
    tp_options = list(dict.fromkeys([fitting[:2], fitting[:1]]))
    for lengths in LENGTH_LADDER:
        usable = tuple(v for v in lengths if 2 * v <= arch.max_position) or (min(lengths),)
        for divisor in TOKEN_LADDER:
            for tps in tp_options:
                yield Grid(tps, usable, SEED_BUDGET_TOKENS // divisor, max(1, SEED_MIN_REQUESTS // divisor))


def _seed_grid(arch: ModelArch, fitting: tuple[int, ...]) -> Grid:
    return next(ladder(arch, fitting[:1]))


class _Predictor:
    """Predicts a grid's cost, each (TP, ISL, OSL, requests) once however many grids share it."""

    def __init__(self, model: str, config: str | None, gpu: GPU, precision: Precision, kv: KvDtype) -> None:
        self.model, self.config, self.gpu, self.precision, self.kv = model, config, gpu, precision, kv
        self._outcomes: dict[tuple[int, int, int, int], Outcome] = {}

    def cost(self, grid: Grid) -> Cost:
        spec = _parsed(_spec_data(self.model, self.config, self.gpu.id, self.precision, self.kv, grid, "init"))
        points = expand(spec, IdentityRule(()))
        backend = SimBackend(spec)
        outcomes = {}
        for point in points:
            key = (spec.at(point.extra).tp, point.isl, point.osl, point.requests)
            if key not in self._outcomes:
                self._outcomes[key] = backend.run(point, "init")
            outcomes[point.id] = self._outcomes[key]
        tasks = tasks_for(spec, points, {pid: prediction_of(o) for pid, o in outcomes.items()})
        return Cost(gpu_hours=sum(t.expected_s * t.gpus for t in tasks) / 3600,
                    wall_hours=sum(t.expected_s for t in tasks) / 3600, points=len(points),
                    failing=sum(1 for o in outcomes.values() if o.status is not Status.OK))


def _precision(model: str, config: str | None, gpu: GPU, arch: ModelArch) -> tuple[Precision, KvDtype]:
    """MXFP4 for a checkpoint that ships it (loaded as it is), else FP8 weights and KV cache where the GPU has FP8
    tensor cores (what the simulator is calibrated at), else BF16 with a 16-bit KV cache."""
    candidates = [Precision.MXFP4] if arch.checkpoint_quant == "mxfp4" else []
    candidates += [Precision.FP8, Precision.BF16] if gpu.fp8_tflops is not None else [Precision.BF16]
    for precision in candidates:
        try:
            deployment_for(_parsed(_base_data(model, config, gpu.id, precision, default_kv(precision), 1, "init")))
        except Unsupported:
            continue
        return precision, default_kv(precision)
    raise TrtbenchError(f"no precision trtbench knows runs {model} on the {gpu.name}")


def _precision_reason(gpu: GPU, arch: ModelArch, precision: Precision) -> str:
    if precision is Precision.MXFP4:
        return "the checkpoint ships MXFP4 experts, loaded as they are"
    if precision is Precision.FP8:
        return f"the {gpu.family} GPU has FP8 tensor cores; FP8 is what the simulator is calibrated at"
    return f"the {gpu.family} GPU has no FP8 tensor cores"


def _fits(model: str, config: str | None, gpu: GPU, precision: Precision, kv: KvDtype, tp: int) -> bool:
    try:
        dep = deployment_for(_parsed(_base_data(model, config, gpu.id, precision, kv, tp, "init")))
    except Unsupported:  # a TP size that does not divide the KV heads
        return False
    return plan_memory(dep, _FIT_ISL, _FIT_OSL).verdict is Status.OK


def _base_data(model: str, config: str | None, gpu: str, precision: Precision, kv: KvDtype, tp: int,
               name: str) -> dict:
    return {"name": name, "model": {"name": model, **({"config": config} if config else {})}, "gpu": gpu,
            "precision": str(precision), "kv_cache_dtype": str(kv), "tp": tp, "pp": 1, "backend": "auto",
            "grid": {"isl": [_FIT_ISL], "osl": [_FIT_OSL]}, "requests": {"default": {"fixed": 1}}}


def _spec_data(model: str, config: str | None, gpu: str, precision: Precision, kv: KvDtype, grid: Grid,
               name: str) -> dict:
    data = _base_data(model, config, gpu, precision, kv, grid.tps[0], name)
    axes: dict = {"tp": list(grid.tps)} if len(grid.tps) > 1 else {}
    if axes:
        del data["tp"]
    return {**data, "grid": {**axes, "isl": list(grid.lengths), "osl": list(grid.lengths)},
            "requests": {"default": {"budget_tokens": grid.budget_tokens, "min": grid.min_requests,
                                     "max": SEED_MAX_REQUESTS}},
            "runtime": dict(SEED_RUNTIME)}


def _parsed(data: dict) -> SweepSpec:
    return parse_spec(yaml.safe_dump(data, sort_keys=False), "<trtbench init>")


def _one_line(text: str) -> str:
    return " ".join(text.split())
