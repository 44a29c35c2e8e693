"""The trtllm backend: one `trtllm-bench throughput` (or `latency`) run per point, measured, classified and recorded."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trtbench.accuracy.records import AccuracyRecord, artifact_of
from trtbench.backends.base import DEPLOYMENT_FIELDS, Capabilities, Log
from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.engine import build_commands, engine_dir, ensure_engine, model_path_for
from trtbench.backends.trtllm.build.plan import BuildConfig, build_key, plan_engines
from trtbench.backends.trtllm.command import (
    Invocation,
    bench_args,
    choose_mode,
    chunked_context,
    llm_api_options,
    refuse_unrunnable,
)
from trtbench.backends.trtllm.dataset import DatasetSpec, dataset_path, ensure_dataset
from trtbench.backends.trtllm.evaluate import eval_args, eval_model, parse_scores
from trtbench.backends.trtllm.failures import Failure, classify, signal_name
from trtbench.backends.trtllm.parse import LogScan, Report, ReportError, log_lines, parse_json, scan_run
from trtbench.backends.trtllm.process import run_logged, stop_all
from trtbench.backends.trtllm.telemetry import Sampler
from trtbench.backends.trtllm.validate import label_problems, problems
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.catalog.models import resolve_model
from trtbench.errors import RunLost, StoreError, TrtbenchError
from trtbench.files import Dir, atomic_write, read_file
from trtbench.grid import IdentityRule, Point
from trtbench.nvml import devices, gpu_index
from trtbench.records import Memory, Metrics, Outcome, Source, Status, Telemetry, now_iso
from trtbench.spec import AccuracySpec, EvalTask, SweepSpec, stable_hash

# What changes a measurement besides the deployment: the benchmark's own settings and the engine or
# checkpoint it loads. Not here: timeouts, log level, workspace, the executable's path.
TRTLLM_FIELDS = (*DEPLOYMENT_FIELDS, "runtime.warmup", "runtime.streaming", "trtllm.backend", "trtllm.engine_dir",
                 "trtllm.streaming",
                 "trtllm.cuda_graphs", "trtllm.extra_llm_api_options", "build.max_seq_len", "build.max_batch_size",
                 "build.max_num_tokens", "build.tool", "build.calib_size", "build.checkpoint", "build.calibration")
MAX_REPORT = 16 << 20  # a report JSON (or an options file) larger than this is not one


@dataclass(frozen=True)
class EngineUse:
    """What a group of points runs on: an engine (TensorRT path) or the checkpoint `--model_path` loads
    (PyTorch path: quantized by trtbench, pre-quantized, or the source); a failed build's failure is what
    each of them reports."""

    config: BuildConfig
    engine_dir: str | None
    model_path: str | None
    failure: Failure | None


class TrtllmBackend:
    name = "trtllm"

    def __init__(self, spec: SweepSpec, run_dir: Path, bench: str, version: TrtllmVersion, gpu: str,
                 dataset_root: Path | None = None) -> None:
        self.spec, self.run_dir, self.bench, self.version, self.gpu = spec, run_dir, bench, version, gpu
        self.dataset_root = dataset_root
        self.vocab = resolve_model(spec.model.name, spec.model.preset, spec.model.config).vocab
        self.mode = choose_mode(spec, version)
        self.cache = EngineCache(Path(spec.build.engines_dir))
        self.engines: dict[tuple[tuple[str, object], ...], EngineUse] = {}  # per build key

    @property
    def plans_artifacts(self) -> bool:
        """Everything but an engine given in the spec: trtbench finds (or builds) what each build
        configuration loads, an engine or an FP8 checkpoint."""
        return not (self.mode == "tensorrt" and self.spec.trtllm.engine_dir)

    def identity(self) -> IdentityRule:
        return IdentityRule(TRTLLM_FIELDS, {"backend": self.name, "trtllm_version": self.version.text,
                                            "mode": self.mode, "gpu": self.gpu})

    def capabilities(self) -> Capabilities:
        return Capabilities(source=Source.MEASURED, runs_commands=True)

    def cancel(self) -> None:
        stop_all()

    def provenance(self) -> dict[str, Any]:
        engines = [{"name": use.config.name, "dir": use.engine_dir,
                    "manifest": str(self.cache.manifest_path(use.config)),
                    "failure": use.failure.cause if use.failure else None} for use in self.engines.values()]
        return {"trtllm_version": self.version.text, "mode": self.mode, "gpu": self.gpu, "bench": self.bench,
                "engine_dir": self.spec.trtllm.engine_dir, "engines": engines}

    def prepare(self, points: Sequence[Point], log: Log, *, dry_run: bool = False, allow_build: bool = True,
                recorded: Collection[str] = ()) -> list[str]:
        """Find or build what each build configuration of `points` loads: an engine (TensorRT path), an
        FP8 checkpoint quantized with ModelOpt (PyTorch path, FP8 weights from a 16-bit model; a pre-quantized
        one is loaded as it is); returns the build commands a dry run would run. First refuses a point this
        release can never run as asked (command.refuse_unrunnable), before anything is built or written."""
        for point in points:
            refuse_unrunnable(self.spec.at(point.values), self.version, self.mode)
        if not self.plans_artifacts:
            return []
        planned: list[str] = []
        for plan in plan_engines(self.spec, self.version, points, fetch=not dry_run, recorded=recorded):
            config = plan.config
            runs = any(p.id not in recorded for p in plan.points)  # a resume builds only for what still runs
            if runs and plan.prequantized:
                log(f"engine {config.name}: {plan.prequantized}")
            builds = runs and (self.mode == "tensorrt" or config.quantization is not None or config.unfetched)
            manifest = self.cache.reusable(config) if builds else None
            if builds and manifest is None and dry_run:
                planned += build_commands(self.spec, config, self.cache)
            elif builds and manifest is None:
                if not allow_build:
                    raise TrtbenchError(f"no engine for this sweep in {self.cache.path(config)}; run `trtbench build "
                                        f"SPEC` (or `make engine`), or drop --no-build")
                manifest = ensure_engine(self.spec, config, self.cache, log)
            failure = Failure.from_dict(manifest.failure) if manifest and manifest.failure else None
            model_path = model_path_for(self.cache, config)
            self.engines[plan.key] = EngineUse(
                config, str(engine_dir(self.cache, config)) if self.mode == "tensorrt" else None,
                str(model_path) if model_path else None, failure)
        return planned

    def _use(self, point: Point) -> EngineUse | None:
        """What `point` runs on; None for an engine given in the spec."""
        if not self.plans_artifacts:
            return None
        use = self.engines.get(build_key(point))
        if use is None:
            raise RuntimeError("no plan for this point: prepare() must run first")
        return use

    def _invocation(self, point: Point) -> tuple[Invocation, dict[str, Any] | None]:
        spec = self.spec.at(point.values)
        options = llm_api_options(spec, self.version, self.mode)
        options_yaml = None
        if options is not None:
            options_yaml = self.run_dir.resolve() / f"llm_api_options-{stable_hash(options)[:8]}.yaml"  # no link
        use = self._use(point)
        engine = use.engine_dir if use else self.spec.trtllm.engine_dir
        return Invocation(self.bench, self.version, self.mode, spec, options_yaml, engine,
                          use.model_path if use else None), options

    def _dataset(self, point: Point) -> DatasetSpec:
        return DatasetSpec(point.isl, point.osl, point.requests, self.vocab, ids_key=self.version.dataset_ids_key)

    def _paths(self, point: Point, attempt: str) -> tuple[Path, Path]:
        """The attempt's own log and report: no earlier attempt's file (a killed sweep's orphan, say) can
        be read as this one's."""
        logs = self.run_dir.resolve() / "logs"  # not through a link: run() refuses one there
        return logs / f"{point.id}.{attempt}.log", logs / f"{point.id}.{attempt}.report.json"

    def command(self, point: Point) -> list[str]:
        """The exact argument list for `point` (what --dry-run prints, the attempt's id left as a
        placeholder); writes nothing."""
        return self._args(point, "ATTEMPT", self._invocation(point)[0])

    def _args(self, point: Point, attempt: str, inv: Invocation) -> list[str]:
        return bench_args(inv, dataset=dataset_path(self._dataset(point), self.dataset_root),
                               num_requests=point.requests, report_json=self._paths(point, attempt)[1])

    def run(self, point: Point, attempt: str, env: Mapping[str, str] | None = None) -> Outcome:
        use = self._use(point)
        engine = use.engine_dir if use else self.spec.trtllm.engine_dir
        engine_failure = use.failure if use else None
        if engine_failure is not None:
            return Outcome(status=engine_failure.status, cause=f"engine build failed: {engine_failure.cause}",
                           source=Source.MEASURED, detail={"engine_dir": engine, "failure_where": "engine build"})
        inv, options = self._invocation(point)
        log_path, report_path = self._paths(point, attempt)
        Dir.open(self.run_dir, create=True).sub("logs")  # a link or a file there is refused, not written through
        if inv.options_yaml is not None:
            _write_options(inv.options_yaml, options or {})
        ensure_dataset(self._dataset(point), self.dataset_root)
        args = self._args(point, attempt, inv)
        timeout_s = self.spec.runtime.timeout_s
        with Sampler(_devices(env)) as sampler:
            result = run_logged(args, log_path, timeout_s, env=dict(env) if env else None)
        if result.unreported:
            code = result.returncode
            ended = signal_name(-code) if code is not None and code < 0 else f"exit {code}"
            raise RunLost(f"the point's keeper was killed from outside ({ended}), its benchmark with it")
        telemetry = sampler.summary  # the whole run: a failed one has no measured phase
        detail: dict[str, Any] = {
            "log": str(log_path), "returncode": result.returncode, "wall_s": result.duration_s,
            "trtllm_version": self.version.text, "mode": self.mode, "engine_dir": engine,
            "chunked_context": chunked_context(inv.spec, self.version, self.mode),  # what ran, not what was asked
        }
        if result.log_error:
            detail["log_error"] = result.log_error

        scan = scan_run(result, log_path, 0)
        try:
            report = _report(scan, report_path)
        except ReportError as exc:
            return Outcome(status=Status.ERROR, cause=f"{exc} (raw log: {log_path})", source=Source.MEASURED,
                           telemetry=telemetry, command=args, detail=detail)
        failure = classify(result.returncode, result.timed_out, scan, report is not None, timeout_s)
        if failure is not None:
            detail.update(failure_where=failure.where, failure_kind=failure.kind)
            return Outcome(status=failure.status, cause=failure.cause, source=Source.MEASURED, telemetry=telemetry,
                           command=args, detail=detail)
        assert report is not None  # classify() passes only a run with a report
        wrong = problems(point, {**report.metrics, **scan.allocated}, inv.spec.tp * inv.spec.pp) + label_problems(
            inv.spec.precision, inv.spec.kv, report.info)
        if wrong:
            detail["reported"] = report.metrics
            return Outcome(status=Status.INVALID_REPORT, cause=f"the report does not describe the point: "
                           f"{'; '.join(wrong)} (raw log: {log_path})", source=Source.MEASURED, telemetry=telemetry,
                           command=args, detail=detail)
        measured = _measured_phase(sampler, report_path, report.metrics["total_latency_s"])
        return _success(point, report, scan.allocated, measured, detail).model_copy(update={"command": args})


    def evaluate(self, point: Point, task: EvalTask, acc: AccuracySpec, env: Mapping[str, str] | None = None
                 ) -> AccuracyRecord:
        """trtllm-eval `task` on the artifact `point` runs on (its precision, KV dtype, TP x PP)."""
        use = self._use(point)
        inv, options = self._invocation(point)
        artifact = artifact_of(inv.spec.model_dump(mode="json"))
        log_path = self.run_dir.resolve() / "logs" / "accuracy" / f"{artifact.stem}.{task}.log"
        base = {"artifact": artifact, "task": task, "samples": acc.samples, "model": eval_model(inv),
                "trtllm_version": self.version.text, "log": str(log_path)}
        if use is not None and use.failure is not None:
            return AccuracyRecord(**base, status=use.failure.status, cause=f"build failed: {use.failure.cause}",
                                  command=[], wall_s=0.0, finished_at=now_iso())
        Dir.open(self.run_dir, create=True).sub("logs").sub("accuracy")  # as in run(): no link followed
        if inv.options_yaml is not None:
            _write_options(inv.options_yaml, options or {})
        args = eval_args(inv, self.spec.trtllm.eval_executable, task, acc)
        start = log_path.stat().st_size if log_path.exists() else 0  # a rerun appends to the same log
        result = run_logged(args, log_path, acc.timeout_s, env=dict(env) if env else None)
        scores, evaluated = parse_scores(list(log_lines(log_path, start)), task)
        scan = scan_run(result, log_path, start)
        failure = classify(result.returncode, result.timed_out, scan, bool(scores), acc.timeout_s)
        if failure is not None and failure.status is Status.NO_REPORT:  # classify's cause speaks of trtllm-bench
            failure = Failure(Status.NO_REPORT, "", f"exit 0 but no {task} scores logged; last output: "
                              f"{scan.last_line or '(no output)'}")
        return AccuracyRecord(**base, status=failure.status if failure else Status.OK, scores=scores,
                              evaluated=evaluated, cause=failure.cause if failure else None, command=args,
                              wall_s=result.duration_s, finished_at=now_iso())


def _devices(env: Mapping[str, str] | None) -> list[int] | None:
    """NVML's indices of the GPUs a point was given (CUDA_VISIBLE_DEVICES as the benchmark sees it: this process's,
    or the executor's over it; indices, GPU UUIDs or prefixes of them): what its telemetry samples. None (every
    GPU) where it is unset; empty (nothing sampled) for a MIG device, whose board power and energy are its GPU's,
    shared with the GPU's other MIG devices, or where NVML cannot say which GPU an entry is."""
    visible = {**os.environ, **(env or {})}.get("CUDA_VISIBLE_DEVICES", "")
    entries = [entry.strip() for entry in visible.split(",")]
    if not visible:
        return None
    found = [] if all(entry.isdigit() for entry in entries) else (devices() or [])
    indices = [gpu_index(entry, found) for entry in entries]
    return [i for i in indices if i is not None] if None not in indices else []


def _measured_phase(sampler: Sampler, report_path: Path, seconds: float) -> Telemetry | None:
    """The telemetry of trtllm-bench's measured phase: the `seconds` it reports (warm-up requests excluded) up to
    when it wrote its JSON report, right after them, or, for a text report, up to the end of the run."""
    end: float | None
    try:
        end = report_path.stat().st_mtime
    except OSError:  # no JSON report: the release printed its report
        end = sampler.ended
    return sampler.measured(end, seconds) if end is not None else None


def _report(scan: LogScan, report_path: Path) -> Report | None:
    """The JSON report where the release wrote one, else the text report in the log."""
    try:
        found = read_file(report_path, MAX_REPORT) is not None  # a FIFO, a link (to /dev/zero) or a huge file: no
    except StoreError as exc:
        raise ReportError(f"report JSON {report_path.name}: {exc}") from None
    return parse_json(report_path) if found else scan.text_report()


def _success(point: Point, report: Report, allocated: dict[str, float], telemetry: Telemetry | None,
             detail: dict[str, Any]) -> Outcome:
    values = dict(report.metrics)
    values.setdefault("total_tok_per_s", values["request_per_s"] * (point.isl + point.osl))
    values.update(allocated)
    output_tokens = values["output_tok_per_s"] * values["total_latency_s"]
    if telemetry is not None and output_tokens > 0:
        values["energy_j"] = telemetry.energy_j
        values["j_per_output_token"] = telemetry.energy_j / output_tokens
    detail.update(report_format=report.format, engine=report.info)
    memory = Memory(kv_pool_gib=allocated.get("kv_allocated_gib"), kv_tokens=allocated.get("kv_allocated_tokens"),
                    weights_gib=allocated.get("engine_size_gib"), max_batch_size=values.get("max_runtime_batch_size"),
                    max_num_tokens=values.get("max_runtime_tokens"))
    return Outcome(status=Status.OK, source=Source.MEASURED, metrics=Metrics.from_flat(values),
                   memory=memory if memory.model_dump(exclude_none=True) else None, telemetry=telemetry,
                   detail=detail)


def _write_options(path: Path, options: dict[str, Any]) -> None:
    text = yaml.safe_dump(options, sort_keys=False)
    if read_file(path, MAX_REPORT) != text.encode():
        atomic_write(path, text)
