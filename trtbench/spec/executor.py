"""Where a sweep's points run: one at a time, on this node's GPUs, or as Slurm jobs."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
)

from trtbench.spec.fields import Strict, Text

EXECUTORS = Literal["local", "gpus", "slurm"]
# sbatch options executor.slurm.extra_args may not hold, and why; their short forms.
NO_JOB = "sbatch would submit no job"
SBATCH_REFUSED = {"test-only": NO_JOB, "help": NO_JOB, "usage": NO_JOB, "version": NO_JOB,
                  "array": "each point would run once per array task",
                  "job-name": "a resumed sweep finds a job whose id it never wrote by trtbench's job name",
                  "comment": "trtbench's comment names the job's run and points"}
SBATCH_SHORT = {"-h": "help", "-V": "version", "-a": "array", "-J": "job-name"}


class SlurmSpec(Strict):
    """sbatch's options for each point's job (a job asks for the point's tp x pp GPUs itself)."""

    partition: Text | None = None
    account: Text | None = None
    qos: Text | None = None
    constraint: Text | None = None
    time: Annotated[int, BeforeValidator(lambda v: slurm_minutes(v) if isinstance(v, str) else v),
                    Field(strict=True, gt=0, le=60 * 24 * 30)] | None = Field(
        None, description="each job's time limit, in minutes or as sbatch --time takes it ([D-]H:MM:SS, M:SS); "
                          "default: the job's predicted wall time x 1.5 + 5 min")
    gpus_per_node: Annotated[int, Field(strict=True, gt=0, le=1024)] | None = Field(
        None, description="GPUs on each node: a point wider than a node is infeasible without a submit "
                          "(default: what sbatch refuses)")
    points_per_job: Annotated[int, Field(strict=True, gt=0, le=1000)] = Field(
        1, description="points run one after another in one job (same GPU count): fewer queue waits for short points")
    container_image: Text | None = Field(None, description="pyxis/enroot: the TensorRT-LLM container to run in")
    container_mounts: Text | None = None
    extra_args: list[Text] = Field(default_factory=list, max_length=64, description="more sbatch arguments")
    max_jobs: Annotated[int, Field(strict=True, gt=0, le=100_000)] | None = Field(
        None, description="jobs in the queue at once (default: every point)")

    @field_validator("extra_args")
    @classmethod
    def _submits_once(cls, args: list[str]) -> list[str]:
        """sbatch options that keep it from submitting, run the points more than once, or take away the job
        name and comment by which a resumed sweep finds a job whose id it never wrote."""
        for arg in args:
            name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
            # sbatch takes any unambiguous prefix of a long option (--test for --test-only)
            refused = [bad for bad in SBATCH_REFUSED if len(name) >= 2 and bad.startswith(name)]
            refused += [SBATCH_SHORT[arg[:2]]] if arg[:2] in SBATCH_SHORT else []
            if refused:
                full = f"--{refused[0]}"
                shown = arg if arg.split("=", 1)[0] == full else f"{arg} ({full})"
                raise ValueError(f"{shown} is not allowed: {SBATCH_REFUSED[refused[0]]}")
        return args


def slurm_minutes(text: str) -> int:
    """sbatch's --time formats in whole minutes, rounded up as Slurm does: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    if not re.fullmatch(r"\d{1,5}(-\d{1,2})?(:\d{1,2}){0,2}", text):
        raise ValueError(f"{text!r} is not a Slurm time (minutes, M:SS, H:MM:SS, D-H, D-H:MM, D-H:MM:SS)")
    days, dash, clock = text.rpartition("-")
    parts = [int(x) for x in clock.split(":")]
    if dash:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = [*parts, 0, 0][:3]
    else:  # minutes[:seconds], or hours:minutes:seconds
        hours, minutes, seconds = [0, *parts, 0] if len(parts) == 1 else [0, *parts][-3:]
    return (int(days or 0) * 24 + hours) * 60 + minutes + math.ceil(seconds / 60)


class ExecutorSpec(Strict):
    """Where the points run: `local`, one at a time (the default); `gpus`, concurrently on this node's
    GPUs, each point on tp x pp of its own; `slurm`, a job per point (or per `points_per_job`) on a
    cluster. Not part of any point's identity."""

    kind: EXECUTORS = "local"
    slurm: SlurmSpec = Field(default_factory=SlurmSpec)
    gpus: Literal["auto"] | Annotated[int, Field(strict=True, gt=0, le=1024)] | list[
        Annotated[int, Field(strict=True, ge=0, lt=1024)]] = Field(
        "auto", description="auto (what NVML or CUDA_VISIBLE_DEVICES shows), a count, or the GPU ids to use")

    @field_validator("gpus")
    @classmethod
    def _distinct(cls, value: Any) -> Any:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("lists no GPU, or a GPU twice")
        return value
