"""Accuracy records: one line of `accuracy.jsonl` per (artifact, task) run of trtllm-eval, beside the throughput
records of the same run directory. Versioned like them; a line that does not parse is skipped, not fatal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from trtbench.files import Dir, keeping, read_file
from trtbench.precision import KvDtype, Precision
from trtbench.records import Status

ACCURACY_FORMAT = 1
FILE = "accuracy.jsonl"


class Artifact(BaseModel):
    """What a build produces and trtllm-eval loads: the axes that change the model's numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    precision: Precision
    kv_cache_dtype: KvDtype
    tp: int
    pp: int

    @property
    def label(self) -> str:
        return f"{self.precision} (KV {self.kv_cache_dtype}, TP {self.tp} x PP {self.pp})"

    @property
    def stem(self) -> str:
        """The artifact in a file name (its trtllm-eval logs)."""
        return f"{self.precision}_kv-{self.kv_cache_dtype}_tp{self.tp}_pp{self.pp}"


class AccuracyRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    format: int = ACCURACY_FORMAT
    artifact: Artifact
    task: str
    samples: int | None  # None: the full set
    status: Status
    scores: dict[str, float] = {}  # x 100: rouge1 ... rougeLsum, or accuracy (MMLU)
    evaluated: int | None = None  # how many samples trtllm-eval says it scored (MMLU prints it)
    cause: str | None = None
    model: str  # what --model loaded
    trtllm_version: str
    command: list[str]
    log: str
    wall_s: float
    finished_at: str

    def key(self) -> tuple[Artifact, str, int | None]:
        return self.artifact, self.task, self.samples


def load(run_dir: Path) -> list[AccuracyRecord]:
    """Every readable record, oldest first; a later record of the same key replaces an earlier one."""
    data = read_file(run_dir / FILE)  # bounded; a link, FIFO or directory there is refused in one line
    latest: dict[tuple[Artifact, str, int | None], AccuracyRecord] = {}
    for line in (data or b"").decode(errors="replace").splitlines():
        try:
            record = AccuracyRecord.model_validate(json.loads(line))
        except (ValueError, ValidationError):
            continue  # a line cut by a crash mid-write
        latest[record.key()] = record
    return list(latest.values())


def load_for(run_dir: Path, reference_run: str | None) -> list[AccuracyRecord]:
    """The run's records, and the reference run's (spec `accuracy.reference_run`) where the reference was
    scored in another run."""
    return load(run_dir) + (load(Path(reference_run)) if reference_run else [])


def append(run_dir: Path, record: AccuracyRecord) -> None:
    """One line, fsynced before the next run starts: a kill loses at most the run in progress, a full disk
    not even a line (a failed append is cut back off)."""
    with keeping(f"{run_dir / FILE} holds every evaluation recorded before; the next run evaluates this one again"):
        Dir.open(run_dir, create=True).append(FILE, (record.model_dump_json() + "\n").encode())


def artifact_of(values: dict[str, Any]) -> Artifact:
    """The artifact a results row (or a point's spec values) ran on."""
    return Artifact(precision=Precision(values["precision"]), kv_cache_dtype=KvDtype(values["kv_cache_dtype"]),
                    tp=int(values["tp"]), pp=int(values["pp"]))
