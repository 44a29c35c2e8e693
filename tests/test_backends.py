"""Backend selection, and the sim backend's outcomes for each memory verdict."""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_SPEC
from trtbench.analyze import analyze
from trtbench.backends import registry as backends
from trtbench.backends.registry import select_backend
from trtbench.backends.sim import SimBackend
from trtbench.backends.trtllm import entry
from trtbench.backends.trtllm.backend import TrtllmBackend
from trtbench.errors import SpecError
from trtbench.grid import expand
from trtbench.nvml import GpuInfo
from trtbench.records import Record
from trtbench.spec import parse_spec

H100 = GpuInfo("NVIDIA H100 80GB HBM3", 81559, "560.35.03")


def machine(monkeypatch, *, bench: bool, gpus: list[GpuInfo]) -> None:
    monkeypatch.setattr(backends, "visible_gpus", lambda: gpus)
    monkeypatch.setattr(entry.shutil, "which", lambda name: "/opt/bin/trtllm-bench" if bench else None)


def test_auto_without_gpu_picks_sim_and_says_why(monkeypatch):
    machine(monkeypatch, bench=False, gpus=[])
    sel = select_backend(parse_spec(SMALL_SPEC.replace("backend: sim", "backend: auto")))
    assert isinstance(sel.backend, SimBackend)
    assert sel.reason == "backend auto -> sim: not found: trtllm-bench on PATH, a GPU visible to NVML"


def test_auto_with_bench_but_no_gpu_picks_sim(monkeypatch):
    machine(monkeypatch, bench=True, gpus=[])
    sel = select_backend(parse_spec(SMALL_SPEC.replace("backend: sim", "backend: auto")))
    assert sel.reason.endswith("not found: a GPU visible to NVML")


def test_auto_with_bench_and_gpu_picks_trtllm(monkeypatch, tmp_path):
    machine(monkeypatch, bench=True, gpus=[H100])
    spec = parse_spec(SMALL_SPEC.replace("backend: sim", "backend: auto") + "trtllm: {version: 1.1.0}\n")
    sel = select_backend(spec, run_dir=tmp_path)
    assert isinstance(sel.backend, TrtllmBackend)
    assert sel.reason.startswith("backend auto -> trtllm: trtllm-bench at /opt/bin/trtllm-bench and 1 GPU(s)")
    assert sel.backend.identity().backend["gpu"] == "NVIDIA H100 80GB HBM3"


def test_gpu_auto_takes_the_visible_gpu(monkeypatch):
    machine(monkeypatch, bench=False, gpus=[H100])
    sel = select_backend(parse_spec(SMALL_SPEC.replace("gpu: h100-sxm", "gpu: auto")))
    assert sel.backend.identity().backend["gpu"] == "h100-sxm"


def test_gpu_auto_without_a_gpu_is_an_error(monkeypatch):
    machine(monkeypatch, bench=False, gpus=[])
    with pytest.raises(SpecError, match="gpu: auto needs a visible NVIDIA GPU"):
        select_backend(parse_spec(SMALL_SPEC.replace("gpu: h100-sxm", "gpu: auto")))


def test_sim_outcomes_carry_source_memory_and_metrics():
    spec = parse_spec(SMALL_SPEC)
    backend = SimBackend(spec)
    outcomes = [backend.run(p, "a") for p in expand(spec, backend.identity())]
    assert all(o.status == "ok" and o.source == "simulated" for o in outcomes)
    for o, p in zip(outcomes, expand(spec, backend.identity()), strict=True):
        m = o.metrics
        assert m is not None and o.memory is not None
        assert m.output_tok_per_s == pytest.approx(p.requests * p.osl / m.total_latency_s)
        assert m.request_per_s * p.osl == pytest.approx(m.output_tok_per_s)
        assert m.avg_concurrency <= o.memory.max_concurrent_seqs
        assert o.predicted_wall_s == m.total_latency_s


def test_sim_judges_the_timeout_when_it_records_and_the_analysis_shows_the_record():
    """The timeout is not part of a point's identity (editing it must not re-run points): the backend judges its
    prediction against it (verdict.judge), and the analysis shows the recorded verdict as it is."""
    spec = parse_spec(SMALL_SPEC + "runtime:\n  timeout_s: 1\n")
    backend = SimBackend(spec)
    point = expand(spec, backend.identity())[-1]  # 2048/1024, about 15 s
    outcome = backend.run(point, "a")
    assert outcome.status == "timeout" and "exceeds the per-point timeout of 1 s" in outcome.cause
    assert outcome.metrics is not None and outcome.predicted_wall_s > 1  # kept, to judge again when it changes
    record = Record(**dict(outcome), point_id=point.id, attempt="a", axes=point.values, backend="sim",
                    started_at="2026-01-01T00:00:00+00:00", duration_s=0.0)
    relaxed = parse_spec(SMALL_SPEC + "runtime:\n  timeout_s: 100000\n")
    assert analyze([record], [point.id], relaxed).results.iloc[0]["status"] == "timeout"  # as recorded
    assert SimBackend(relaxed).run(point, "b").status == "ok"
    assert SimBackend(relaxed).identity() == backend.identity()


def test_sim_reports_memory_failures_as_outcomes():
    text = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B").replace("h100-sxm", "l4")
    spec = parse_spec(text)
    backend = SimBackend(spec)
    outcome = backend.run(expand(spec, backend.identity())[0], "a")
    assert outcome.status == "oom" and "weights load" in outcome.cause and outcome.metrics is None
