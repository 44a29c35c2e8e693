"""The wheel works outside the checkout: `python -m build` gives a wheel and an sdist that `twine check` accepts,
and the wheel, installed with its dependencies into a new virtual environment, runs a simulated sweep of a spec in an
empty directory (every data file it reads is package data), `init` and `doctor` there. Minutes: marked `wheel`,
which `make check` leaves out and `make test` (CI) runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SMALL_SPEC
from trtbench import __version__

pytestmark = pytest.mark.wheel
pytest.importorskip("build")  # the dev extra's build and twine
pytest.importorskip("twine")

# The checkout's own outputs, at its top level only (trtbench/backends/trtllm/build/ is source)
OUTPUTS = {".git", ".venv", "runs", "engines", ".slurm", "build", "dist", ".pytest_cache", ".ruff_cache", ".mypy_cache"}


def _not_source(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == REPO
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in OUTPUTS)}


def _run(args: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_the_wheel_installs_in_a_new_venv_and_sweeps_a_spec_in_an_empty_directory(tmp_path: Path) -> None:
    source, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(REPO, source, ignore=_not_source)  # the checkout's tree stays as it was
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], tmp_path, 900)
    wheel, sdist = dist / f"trtbench-{__version__}-py3-none-any.whl", dist / f"trtbench-{__version__}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())  # the version: one place
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], tmp_path, 120)
    assert checked.count("PASSED") == 2, checked
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "trtbench").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert "trtbench/data/calibration.json" in shipped and "trtbench/backends/trtllm/keeper.py" in shipped
    assert shipped - names == set()  # every module and data file of the package, none left behind

    venv, empty = tmp_path / "venv", tmp_path / "empty"
    # nothing of the checkout on the path (not PYTHONPATH, which would also show pip a trtbench "installed"
    # there), nor the tests' fakes
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRTBENCH_CACHE_DIR")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, 300, env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path, 1200, env)
    empty.mkdir()
    (empty / "spec.yaml").write_text(SMALL_SPEC)
    env["HOME"] = str(tmp_path / "home")
    trtbench = str(venv / "bin" / "trtbench")
    assert _run([trtbench, "--version"], empty, 60, env).strip() == f"trtbench {__version__}"
    swept = _run([trtbench, "sweep", "spec.yaml"], empty, 600, env)
    assert "4 points: 4 ok, 0 failed, 0 not run" in swept
    report = (empty / "runs" / "tiny" / "report.md").read_text()
    assert "simulated" in report.lower() and (empty / "runs" / "tiny" / "heatmap.png").is_file()
    _run([trtbench, "init", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--budget-gpu-hours", "8"],
         empty, 600, env)
    assert (empty / "Llama-3.1-8B.yaml").is_file()
    doctor = subprocess.run([trtbench, "doctor"], cwd=empty, capture_output=True, text=True, timeout=120,
                            check=False, env=env)
    assert doctor.returncode in (0, 1) and "TensorRT-LLM" in doctor.stdout, doctor.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["Llama-3.1-8B.yaml", "runs", "spec.yaml"]
