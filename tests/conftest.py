"""Shared fixtures: specs written to tmp dirs, and the CLI run in-process with its exit code."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from trtbench.cli import main

REPO = Path(__file__).resolve().parent.parent

SMALL_SPEC = """\
name: tiny
model: meta-llama/Llama-3.1-8B
gpu: h100-sxm
precision: fp8
kv_cache_dtype: fp8
backend: sim
grid:
  isl: [128, 2048]
  osl: [128, 1024]
requests:
  default: {fixed: 100}
"""


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
        ) -> Callable[..., CliResult]:
    """Run `trtbench ARGS...` in-process from tmp_path; returns exit code and captured output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        monkeypatch.setattr("sys.argv", ["trtbench", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str = SMALL_SPEC, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(autouse=True)
def _no_gpu_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a real trtllm-bench, whatever the machine has on PATH."""
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                               if not (Path(p) / "trtllm-bench").exists()))


FAKES = REPO / "tests" / "fakes"


@dataclass
class FakeBench:
    record: Path  # what the fake printed, one JSON line per run
    monkeypatch: pytest.MonkeyPatch

    def version(self, version: str) -> None:
        self.monkeypatch.setenv("FAKE_TRTLLM_VERSION", version)

    def fail(self, mode: str, min_isl: int = 0) -> None:
        self.monkeypatch.setenv("FAKE_TRTLLM_FAIL", mode)
        self.monkeypatch.setenv("FAKE_TRTLLM_FAIL_MIN_ISL", str(min_isl))

    def printed(self) -> list[dict]:
        import json

        return [json.loads(line) for line in self.record.read_text().splitlines()] if self.record.exists() else []


@pytest.fixture
def fake_bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _no_gpu_tools: None) -> FakeBench:
    """tests/fakes/trtllm-bench on PATH, its stand-in tensorrt_llm importable, datasets cached in tmp."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FAKES / "site"), str(REPO),
                                                                   os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    record = tmp_path / "fake-record.jsonl"
    monkeypatch.setenv("FAKE_TRTLLM_RECORD", str(record))
    monkeypatch.delenv("FAKE_TRTLLM_FAIL", raising=False)
    return FakeBench(record, monkeypatch)


def load_records(path: Path) -> list[dict]:
    """results.jsonl as dicts, each point's axes (isl, osl, requests, ...) also at the top level."""
    import json

    return [{**rec, **rec["axes"]} for rec in map(json.loads, path.read_text().splitlines())]
