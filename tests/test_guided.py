"""Guided sweeps (`strategy: guided`): on known truths (tests/fakes/truth.py: the simulator re-run with other GEMM and
attention efficiencies, a slower all-reduce, a smaller KV budget, per-point deviations and run-to-run noise), the
sweep finds the true best within 2% and at least 4 of the true top 5 while measuring at most 30% of the full grid's
GPU time; and the report accounts for every point of the grid."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.fakes.truth import Truth, TruthBackend, guided_run
from trtbench.backends.sim import SimBackend
from trtbench.executors.base import Capacity
from trtbench.executors.gpus import Gpu, GpuExecutor
from trtbench.grid import expand
from trtbench.guided.correction import features, prior_sd, refit
from trtbench.guided.strategy import Candidate, Reason, Settings, State, plan, proven_oom
from trtbench.records import Outcome, Prediction, Record, Source, Status
from trtbench.spec import Strategy, load_spec, parse_spec

GRID = REPO / "sweeps" / "h100_grid.yaml"  # 64 points, one H100
GRID_70B = REPO / "sweeps" / "h100_70b_guided.yaml"  # 200 points: TP x precision x ISL x OSL
HARSH = {"gemm": 0.75, "attn": 0.5, "allreduce": 0.12, "kv_share": 0.5, "wobble": 0.05, "noise": 0.03}


@pytest.mark.heavy  # seconds each: `make test` runs it, `make check` leaves it out
@pytest.mark.parametrize("grid", [GRID, GRID_70B], ids=["h100_64", "70b_200"])
@pytest.mark.parametrize(("seed", "bends"), [(0, {}), (1, {}), (2, HARSH), (3, HARSH)])
def test_finds_the_true_best_for_a_fraction_of_the_gpu_time(grid, seed, bends, tmp_path):
    run = guided_run(load_spec(grid), seed, tmp_path / "run", **bends)
    assert len(run.points) >= (64 if grid == GRID else 200)
    assert run.regret() <= 0.02
    assert len(set(run.true_top(5)) & set(run.order)) >= 4
    assert run.fraction() <= 0.30
    assert run.plan.stopped == "settled" and run.plan.settled


@pytest.mark.heavy  # seconds each: `make test` runs it, `make check` leaves it out
def test_batches_keep_every_gpu_busy(tmp_path):
    """On 4 GPUs the 70B grid's batches are chosen together: the first fills the GPUs (TP2 + TP2, or a TP4, ...)
    with distinct points, and the sweep still finds the true best."""
    spec = load_spec(GRID_70B)
    run = guided_run(spec, 5, tmp_path / "run", GpuExecutor([Gpu(str(i)) for i in range(4)]))
    assert run.regret() <= 0.02 and run.fraction() <= 0.30
    candidates, settings = _candidates(spec), _settings(Capacity(4, 4))
    first = plan(candidates, [], settings).next
    widths = [next(c.gpus for c in candidates if c.point.id == pid) for pid in first]
    assert len(set(first)) == len(first) and sum(widths) >= 4 and sum(widths[:-1]) < 4


def test_measured_oom_proves_the_longer_points(tmp_path):
    """An OOM measured at ISL 4096 / OSL 1024 (FP8, TP2) proves ISL >= 4096 with OSL >= 1024 at FP8 TP2: those are
    not measured, each naming the OOM; ISL 8192 / OSL 512 and FP16 or TP4 at the same lengths are not proven."""
    spec = load_spec(GRID_70B)
    candidates = _candidates(spec)
    at = {(p.values["precision"], p.values["tp"], p.isl, p.osl): p for p in (c.point for c in candidates)}
    oom = at[("fp8", 2, 4096, 1024)]
    record = _record(oom, Status.OOM, "CUDA out of memory")
    result = {e.point_id: e for e in plan(candidates, [record], _settings()).entries}
    for key in [("fp8", 2, 4096, 4096), ("fp8", 2, 8192, 1024), ("fp8", 2, 8192, 8192)]:
        entry = result[at[key].id]
        assert entry.state is State.PREDICTED and entry.reason is Reason.OOM_BOUNDARY
        assert entry.why == f"OOM measured at {oom.label}"
    for key in [("fp8", 2, 8192, 512), ("fp16", 2, 4096, 4096), ("fp8", 4, 8192, 8192), ("fp8", 2, 1024, 4096)]:
        assert proven_oom(at[key], [oom]) is None
    assert result[oom.id].state is State.FAILED and "oom" in result[oom.id].why


def test_predicted_failures_are_not_run_and_say_why():
    """FP16 70B at TP1 (141 GB of weights on one 80 GB GPU) is predicted OOM: skipped with the simulator's cause."""
    spec = load_spec(GRID_70B)
    entries = plan(_candidates(spec), [], _settings()).entries
    tp1_fp16 = [e for e in entries if "precision=fp16 tp=1 " in e.label]
    assert len(tp1_fp16) == 25
    assert all(e.reason is Reason.PREDICTED_FAILURE and e.why.startswith("oom:") for e in tp1_fp16)


def test_budget_stops_the_sweep_and_is_the_reason(tmp_path):
    spec = load_spec(GRID)
    spec = spec.model_copy(update={"guided": spec.guided.model_copy(update={"budget_gpu_hours": 0.15})})
    run = guided_run(spec, 0, tmp_path / "run")
    assert run.plan.stopped == "budget" and not run.plan.settled
    assert run.plan.used_gpu_s <= 0.15 * 3600
    reasons = {e.reason for e in run.plan.entries if e.state is State.PREDICTED}
    assert Reason.BUDGET in reasons and Reason.QUEUED not in reasons


@pytest.mark.heavy  # seconds each: `make test` runs it, `make check` leaves it out
def test_resume_continues_where_it_stopped(tmp_path):
    """A guided sweep interrupted after its second run resumes from its records and ends where an uninterrupted one
    ends (the strategy is a function of the records); run again once finished, it runs nothing."""
    spec = load_spec(GRID)
    whole = guided_run(spec, 4, tmp_path / "whole")

    class Interrupted(TruthBackend):
        def run(self, point, attempt, env=None):
            if sum(self.runs.values()) == 2:
                raise KeyboardInterrupt
            return super().run(point, attempt, env)

    with pytest.raises(KeyboardInterrupt):
        guided_run(spec, 4, tmp_path / "resumed", backend=Interrupted)
    assert len(_lines(tmp_path / "resumed")) == 2
    resumed = guided_run(spec, 4, tmp_path / "resumed")
    assert set(resumed.order) == set(whole.order)
    again = guided_run(spec, 4, tmp_path / "resumed")
    assert len(_lines(tmp_path / "resumed")) == len(whole.order)
    assert again.plan.entries == resumed.plan.entries


@pytest.mark.heavy  # seconds each: `make test` runs it, `make check` leaves it out
def test_repeats_and_retry_failed_compose(tmp_path):
    """With repeats 3 each measured point has three ok runs, and its value is their mean; the best predicted point,
    failing on a broken node, stays a failure until --retry-failed runs it again (on a good one)."""
    spec = load_spec(GRID)
    spec = spec.model_copy(update={"runtime": spec.runtime.model_copy(update={"repeats": 3})})

    class Flaky(TruthBackend):
        def run(self, point, attempt, env=None):
            if point.isl == 128 and point.osl == 512:
                return Outcome(status=Status.ERROR, cause="NCCL timeout", source=Source.MEASURED)
            return super().run(point, attempt, env)

    first = guided_run(spec, 1, tmp_path / "run", backend=Flaky)
    flaky = next(e for e in first.plan.entries if e.label.startswith("ISL=128 OSL=512 "))
    assert flaky.state is State.FAILED and "NCCL timeout" in flaky.why
    records = [json.loads(line) for line in _lines(tmp_path / "run")]
    per_point = {pid: [r for r in records if r["point_id"] == pid] for pid in {r["point_id"] for r in records}}
    measured = [e for e in first.plan.entries if e.state is State.MEASURED]
    for entry in measured:
        rates = [r["metrics"]["output_tok_per_s"] for r in per_point[entry.point_id]]
        assert len(rates) == 3 and entry.value == pytest.approx(sum(rates) / 3)
    retried = guided_run(spec, 1, tmp_path / "run", retry_failed=True)
    entry = next(e for e in retried.plan.entries if e.point_id == flaky.point_id)
    assert entry.state is State.MEASURED
    statuses = [json.loads(line)["status"] for line in _lines(tmp_path / "run") if flaky.point_id in line]
    assert statuses == ["error"] * 3 + ["ok"] * 3


def test_refit_recovers_a_bias_by_regime():
    """Measured at 0.80 x the prediction on every prefill-heavy point and 1.10 x on every decode-heavy one (no
    scatter): the refitted factors are those, within the prior's pull, and the scatter falls to its floor."""
    spec = load_spec(GRID)
    points = expand(spec, SimBackend(spec).identity())
    x = features(points)
    truth = np.array([math.log(0.8) if p.isl >= 4 * p.osl else math.log(1.1) if p.osl >= 4 * p.isl else 0.0
                      for p in points])
    corr = refit(x, x, truth, prior_sd(10.0))
    factors = np.exp(corr.predict(x)[0])
    prefill = [f for f, p in zip(factors, points, strict=True) if p.isl >= 4 * p.osl]
    decode = [f for f, p in zip(factors, points, strict=True) if p.osl >= 4 * p.isl]
    assert all(0.78 < f < 0.82 for f in prefill) and all(1.08 < f < 1.12 for f in decode)
    assert corr.noise < 0.02


def test_cli_guided_sweep_through_the_fake(cli, tmp_path, fake_bench):
    """Done-when of issue 30: `sweep --strategy guided` on sweeps/h100_grid.yaml through the fake trtllm-bench,
    whose truth is bent away from the simulator, finds the true best within 2% measuring at most 30% of the full
    grid's true GPU time, and its report lists every unmeasured point with its prediction and the reason."""
    spec_path = tmp_path / "grid.yaml"
    spec_path.write_text(GRID.read_text().replace("backend: auto", "backend: trtllm")
                         + "build: {checkpoint: nvidia/Llama-3.1-8B-FP8}\n")
    spec = load_spec(spec_path)
    truth = Truth(spec, seed=7)
    points = expand(spec, SimBackend(spec).identity())
    (tmp_path / "truth.json").write_text(json.dumps(truth.table(points)))
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_TRUTH", str(tmp_path / "truth.json"))
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_NOISE_CV", "0.015")
    fake_bench.monkeypatch.setenv("FAKE_TRTLLM_SEED", "7")
    result = cli("sweep", str(spec_path), "--strategy", "guided", "--no-plots")
    assert result.code == 0, result.out + result.err
    assert "stopped: the top 5 is settled" in result.err
    run = tmp_path / "runs" / "h100_grid"
    ran = {(r["axes"]["isl"], r["axes"]["osl"]) for r in map(json.loads, _lines(run))}
    by_pair = {(p.isl, p.osl): p for p in points}
    best = max(points, key=lambda p: truth.value(p, False))
    assert max(truth.value(by_pair[pair], False) for pair in ran) >= 0.98 * truth.value(best, False)
    assert sum(truth.cost_s(by_pair[pair]) for pair in ran) <= 0.30 * sum(truth.cost_s(p) for p in points)
    report = (run / "report.md").read_text()
    section = report.split("## Guided Sweep")[1].split("\n## ")[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (ISL=\d+ OSL=\d+) N=\d+ \| (.*)$", section, re.M)}
    assert len(rows) == 64
    for isl, osl in by_pair:
        row = rows[f"ISL={isl} OSL={osl}"]
        if (isl, osl) in ran:
            assert row.startswith(("measured |", "failed |"))
        else:
            cells = [c.strip() for c in row.split("|")]
            assert cells[0] == "predicted (refitted)" and cells[-2] != "-"  # its reason
            assert cells[-2].startswith(("dominated", "predicted to fail", "beyond a measured OOM"))
            assert cells[1] != "-" or cells[-2].startswith("predicted to fail")  # a prediction to show
    assert "Incomplete" not in report


def test_bad_strategy_options_are_one_line_errors(cli, write_spec):
    spec = write_spec()
    result = cli("sweep", str(spec), "--strategy", "smart")
    assert result.code == 2 and "--strategy 'smart': choose one of full, guided" in result.out + result.err
    result = cli("sweep", str(spec), "--budget-gpu-hours", "2")
    assert result.code == 2 and "--budget-gpu-hours needs --strategy guided" in result.out + result.err
    result = cli("sweep", str(write_spec(Path(spec).read_text() + "guided: {confidence: 1.5}\n")))
    assert result.code == 2 and "confidence" in result.out + result.err


def test_simulated_guided_sweep_predicts_every_point(cli, write_spec, tmp_path):
    result = cli("sweep", str(write_spec()), "--strategy", "guided", "--no-plots")
    assert result.code == 0
    assert "the simulator predicts every point in seconds" in result.out + result.err
    assert len(_lines(tmp_path / "runs" / "tiny")) == 4


def _lines(run: Path) -> list[str]:
    path = run / "results.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _candidates(spec):
    sim = SimBackend(spec)
    out = []
    for point in expand(spec, sim.identity()):
        predicted = sim.run(point, "p")
        metrics = predicted.metrics
        prediction = Prediction(status=predicted.status, cause=predicted.cause,
                                output_tok_per_s=metrics.output_tok_per_s if metrics else None,
                                wall_s=predicted.predicted_wall_s)
        at = spec.at(point.values)
        out.append(Candidate(point, at.tp * at.pp, prediction, min(predicted.predicted_wall_s or 0, 7200), 60.0))
    return out


def _settings(capacity: Capacity = Capacity()) -> Settings:
    return Settings(top_k=5, confidence=0.95, budget_gpu_s=None, per_gpu=True, error_pct=10.0, capacity=capacity)


def _record(point, status: Status, cause: str) -> Record:
    return Record(status=status, cause=cause, source=Source.MEASURED, point_id=point.id, attempt="a",
                  axes=point.values, backend="truth", started_at="2026-12-07T00:00:00+00:00", duration_s=60.0)


def test_every_executor_states_its_batch(tmp_path):
    """The width of a guided batch: one point locally, every GPU of the node, the Slurm jobs allowed at once."""
    from trtbench.executors.local import LocalExecutor
    from trtbench.executors.slurm import GUIDED_JOBS, SlurmExecutor
    from trtbench.spec import SlurmSpec

    assert LocalExecutor().capacity == Capacity(1)
    assert GpuExecutor([Gpu(str(i)) for i in range(8)]).capacity == Capacity(8, 8)
    slurm = SlurmExecutor(tmp_path, "trtllm", SlurmSpec(max_jobs=6, points_per_job=2))
    assert slurm.capacity == Capacity(12)
    assert SlurmExecutor(tmp_path, "trtllm", SlurmSpec()).capacity == Capacity(GUIDED_JOBS)


def test_status_and_report_of_a_damaged_plan(tmp_path):
    """`status` and the report say why the skipped points were skipped; a damaged plan in run.json is one line."""
    from trtbench.guided.section import guided_section, guided_status

    run = guided_run(load_spec(GRID), 0, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    skipped = sum(e.state is State.PREDICTED for e in run.plan.entries)
    line = guided_status(meta["guided"])
    assert line.startswith(f"guided: ran {len(run.order)} of 64 points") and "stopped: the top 5 is settled" in line
    assert f"not measured: dominated {skipped - 1}, predicted to fail 1" in line  # 16384/16384: predicted to time out
    damaged = {**meta["guided"], "entries": "gone"}
    assert guided_status(damaged) == guided_section({"guided": damaged}) == (
        "run.json holds a guided plan this trtbench cannot read (1 error(s)); rerun the sweep")


def test_a_spec_without_a_strategy_hashes_as_before():
    """The hash trtbench printed for sweeps/h100_grid.yaml before strategies existed (read off the main branch)."""
    assert load_spec(GRID).hash() == "8b4cfe1f6495568a"
    assert load_spec(GRID_70B).hash() != load_spec(GRID_70B).model_copy(update={"strategy": Strategy.FULL}).hash()


@pytest.mark.parametrize(("rank_by", "per_gpu"), [("auto", True), ("output_tok_per_s_per_gpu", True),
                                                  ("per_gpu", True), ("usd_per_mtok", True),
                                                  ("output_tok_per_s", False), ("total", False),
                                                  ("output_tok_per_s_under_sla", False)])
def test_the_strategy_ranks_as_the_report_does(rank_by, per_gpu):
    """On the 70B grid (TP 1 to 8) the guided sweep looks for the report's winner: per GPU unless the spec ranks
    by total throughput; $ per token at one price ranks as throughput per GPU."""
    from trtbench.runner import guided_settings

    text = GRID_70B.read_text() + f"rank_by: {rank_by}\n" + ("cost: {usd_per_gpu_hour: 2.5}\n" if "usd" in rank_by
                                                              else "")
    text += "sla: {tpot_p95_ms: 50}\n" if "sla" in rank_by else ""
    spec = parse_spec(text)
    sim = SimBackend(spec)
    assert guided_settings(spec, sim, expand(spec, sim.identity()), Capacity()).per_gpu is per_gpu
