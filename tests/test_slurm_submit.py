"""The sbatch command of one point's job, without a cluster (sbatch captured): GPUs, time limit, options."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import SMALL_SPEC
from trtbench.executors.base import Task
from trtbench.executors.slurm import Job, SlurmExecutor
from trtbench.grid import IdentityRule, expand
from trtbench.spec import SlurmSpec, parse_spec

POINT = expand(parse_spec(SMALL_SPEC), IdentityRule(()))[0]


def _submitted(monkeypatch, tmp_path, spec: SlurmSpec, task: Task) -> list[str]:
    calls: list[list[str]] = []

    def sbatch(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "4242;cluster\n", "")

    monkeypatch.setattr(subprocess, "run", sbatch)
    executor = SlurmExecutor(tmp_path, "trtllm", spec)
    executor.dir.mkdir()
    assert executor._submit(task) == Job(POINT.id, "4242")
    assert (tmp_path / "slurm" / "jobs.jsonl").read_text() == f'{{"point_id": "{POINT.id}", "job_id": "4242"}}\n'
    (args,) = calls
    return args


@pytest.mark.parametrize(("time_min", "expected_s", "limit"), [
    (5, 0.0, "--time=5"),  # the spec's limit wins
    (None, 100.0, "--time=8"),  # (100 s x 1.5 + 300 s) / 60 = 7.5 -> 8 minutes
    (None, 0.0, "--time=60"),  # no prediction: an hour
])
def test_time_limit(monkeypatch, tmp_path, time_min, expected_s, limit):
    args = _submitted(monkeypatch, tmp_path, SlurmSpec(time_min=time_min), Task(POINT, gpus=2, expected_s=expected_s))
    assert limit in args and "--gres=gpu:2" in args


def test_cluster_options_are_passed_as_arguments(monkeypatch, tmp_path):
    spec = SlurmSpec(partition="gpu", account="proj", container_image="nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
                     extra_args=["--exclusive"])
    args = _submitted(monkeypatch, tmp_path, spec, Task(POINT))
    assert args[:2] == ["sbatch", "--parsable"]
    for wanted in ("--partition=gpu", "--account=proj", "--container-image=nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
                   "--exclusive"):
        assert wanted in args
    wrap = args[args.index("--wrap") + 1]
    assert "-m trtbench.commands.slurm_job" in wrap and str(tmp_path / "slurm" / f"{POINT.id}.task.json") in wrap
