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
