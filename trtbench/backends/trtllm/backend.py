"""The trtllm backend: one `trtllm-bench throughput` run per point, measured, classified and recorded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from trtbench.backends.trtllm.command import Invocation, choose_mode, llm_api_options, throughput_args
from trtbench.backends.trtllm.parse import Report, ReportError, kv_allocated, parse_json, parse_text
from trtbench.backends.trtllm.process import run_logged
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.catalog.models import resolve_model
from trtbench.dataset import DatasetSpec, dataset_path, ensure_dataset
from trtbench.failures import Failure, classify
from trtbench.files import atomic_write
from trtbench.grid import Point
from trtbench.records import Metrics, Outcome, Source
from trtbench.spec import SweepSpec
from trtbench.telemetry import Sampler

OPTIONS_FILE = "llm_api_options.yaml"


class TrtllmBackend:
    name = "trtllm"
    source: Source = "measured"

    def __init__(self, spec: SweepSpec, run_dir: Path, bench: str, version: TrtllmVersion, gpu: str,
                 dataset_root: Path | None = None) -> None:
        self.spec, self.run_dir, self.version, self.gpu = spec, run_dir, version, gpu
        self.dataset_root = dataset_root
        self.vocab = resolve_model(spec.model.name, spec.model.preset, spec.model.config).vocab
        mode = choose_mode(spec, version)
        self.options = llm_api_options(spec, version, mode)
        options_yaml = (run_dir / OPTIONS_FILE).resolve() if self.options is not None else None
        self.inv = Invocation(bench, version, mode, spec, options_yaml, spec.trtllm.engine_dir)
        self.engine_failure: Failure | None = None

    @property
    def needs_engine(self) -> bool:
        """The TensorRT path without an engine in the spec: trtbench builds (or finds) one."""
        return self.inv.mode == "tensorrt" and not self.spec.trtllm.engine_dir

    def attach_engine(self, engine_dir: Path, failure: Failure | None = None) -> None:
        """Run on `engine_dir`; if its build failed, every point reports that failure instead of running."""
        self.inv = replace(self.inv, engine_dir=str(engine_dir))
        self.engine_failure = failure

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "trtllm_version": self.version.text, "mode": self.inv.mode, "gpu": self.gpu,
                "engine_dir": self.inv.engine_dir, "llm_api_options": self.options}

    def _dataset(self, point: Point) -> DatasetSpec:
        return DatasetSpec(point.isl, point.osl, point.requests, self.vocab, ids_key=self.version.dataset_ids_key)

    def _paths(self, point: Point) -> tuple[Path, Path]:
        logs = (self.run_dir / "logs").resolve()
        return logs / f"{point.id}.log", logs / f"{point.id}.report.json"

    def command(self, point: Point) -> list[str]:
        """The exact argument list for `point` (what --dry-run prints); writes nothing."""
        _, report = self._paths(point)
        return throughput_args(self.inv, dataset=dataset_path(self._dataset(point), self.dataset_root),
                               num_requests=point.requests, report_json=report)

    def run(self, point: Point) -> Outcome:
        if self.engine_failure is not None:
            return Outcome(status=self.engine_failure.status,  # type: ignore[arg-type]
                           cause=f"engine build failed: {self.engine_failure.cause}", source=self.source,
                           detail={"engine_dir": self.inv.engine_dir, "failure_where": "engine build"})
        if self.inv.mode == "tensorrt" and self.inv.engine_dir is None:
            raise RuntimeError("TensorRT mode without an engine: the sweep must attach one first")
        log_path, report_path = self._paths(point)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.unlink(missing_ok=True)
        self._write_options()
        ensure_dataset(self._dataset(point), self.dataset_root)
        args = self.command(point)
        with Sampler() as telemetry:
            result = run_logged(args, log_path, self.spec.runtime.timeout_s)
        detail: dict[str, Any] = {
            "command": args, "log": str(log_path), "returncode": result.returncode, "wall_s": result.duration_s,
            "trtllm_version": self.version.text, "mode": self.inv.mode, "engine_dir": self.inv.engine_dir,
        }
        if result.log_error:
            detail["log_error"] = result.log_error
        if telemetry.summary is not None:
            detail["telemetry"] = telemetry.summary.as_dict()

        try:
            report = self._report(result.output, report_path)
        except ReportError as exc:
            return Outcome(status="error", cause=f"{exc} (raw log: {log_path})", source=self.source, detail=detail)
        failure = classify(result.returncode, result.timed_out, result.output, report is not None,
                           self.spec.runtime.timeout_s)
        if failure is not None:
            detail["failure_where"] = failure.where
            return Outcome(status=failure.status, cause=failure.cause, source=self.source,  # type: ignore[arg-type]
                           detail=detail)
        assert report is not None  # classify() passes only a run with a report
        return self._success(point, report, result.output, detail)

    def _report(self, output: str, report_path: Path) -> Report | None:
        if report_path.exists():
            return parse_json(report_path)
        return parse_text(output)

    def _success(self, point: Point, report: Report, output: str, detail: dict[str, Any]) -> Outcome:
        values = dict(report.metrics)
        values.setdefault("total_tok_per_s", values["request_per_s"] * (point.isl + point.osl))
        allocated = kv_allocated(output)
        values.update(allocated)
        telemetry = detail.get("telemetry")
        if telemetry and values["output_tok_per_s"] > 0:
            output_tokens = values["output_tok_per_s"] * values["total_latency_s"]
            values["energy_j"] = telemetry["energy_j"]
            values["j_per_output_token"] = telemetry["energy_j"] / output_tokens
        detail.update(report_format=report.format, engine=report.info)
        memory = {"kv_pool_gib": allocated.get("kv_allocated_gib"), "kv_tokens": allocated.get("kv_allocated_tokens"),
                  "weights_gib": allocated.get("engine_size_gib"),
                  "max_batch_size": values.get("max_runtime_batch_size"),
                  "max_num_tokens": values.get("max_runtime_tokens")}
        return Outcome(status="ok", source=self.source, metrics=Metrics(**values),
                       memory={k: v for k, v in memory.items() if v is not None} or None, detail=detail)

    def _write_options(self) -> None:
        path = self.inv.options_yaml
        if path is None:
            return
        text = yaml.safe_dump(self.options, sort_keys=False)
        if not path.exists() or path.read_text() != text:
            atomic_write(path, text)
