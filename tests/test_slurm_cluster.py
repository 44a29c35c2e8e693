"""Smoke test of the local Slurm cluster (scripts/slurm-up.sh; `make test` starts it and exports SLURM_CONF).

Skipped without a cluster: no `sbatch` on PATH or no SLURM_CONF in the environment.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("sbatch") is None or not os.environ.get("SLURM_CONF"),
    reason="no local Slurm cluster (needs sbatch on PATH and SLURM_CONF; `make slurm-up` starts one)",
)

TIMEOUT_S = 60


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


def _wait_state(job_id: str, timeout_s: float = TIMEOUT_S) -> str:
    """Poll squeue until the job reaches a final state; returns it (or the last state seen on timeout)."""
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        proc = _run("squeue", "-h", "--states=all", "-j", job_id, "-o", "%T")
        state = proc.stdout.strip()
        if state in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}:
            return state
        time.sleep(0.5)
    return state


def test_two_gpu_job_sees_two_distinct_gpus(tmp_path: Path) -> None:
    out = tmp_path / "cvd.txt"
    proc = _run("sbatch", "--parsable", "--job-name=trtbench-smoke", "--gres=gpu:2", f"--chdir={tmp_path}",
                f"--output={tmp_path}/slurm-%j.out", "--wrap", f"echo $CUDA_VISIBLE_DEVICES > {shlex.quote(str(out))}")
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip().split(";")[0]
    assert job_id.isdigit(), proc.stdout
    try:
        state = _wait_state(job_id)
    finally:
        _run("scancel", job_id)  # no-op once it finished; frees the GPUs if it is stuck
    assert state == "COMPLETED", f"job {job_id} ended {state or 'nowhere'} within {TIMEOUT_S} s"
    gpus = out.read_text().strip().split(",")
    assert len(gpus) == 2 and len(set(gpus)) == 2, gpus
    assert all(g.isdigit() and 0 <= int(g) <= 7 for g in gpus), gpus


def test_more_gpus_than_the_node_has_is_refused_at_submit(tmp_path: Path) -> None:
    proc = _run("sbatch", "--parsable", "--job-name=trtbench-smoke-9gpu", "--gres=gpu:9", f"--chdir={tmp_path}",
                f"--output={tmp_path}/slurm-%j.out", "--wrap", "true")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.strip() == ""
    assert "Requested node configuration is not available" in proc.stderr
