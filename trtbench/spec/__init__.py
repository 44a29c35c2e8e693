"""The sweep spec: YAML in, a validated `SweepSpec` out, or one line naming the file, line and key. One module per
part: the field types and bounds (`fields`), the sections (`sections`), where points run (`executor`), the spec
itself (`sweep`) and reading it (`loading`); everything callers use is importable from here."""

from trtbench.spec.executor import EXECUTORS, ExecutorSpec, SlurmSpec, slurm_minutes
from trtbench.spec.fields import MAX_PARALLEL, MAX_REQUESTS, MAX_TOKENS
from trtbench.spec.loading import anchored, load_spec, parse_spec
from trtbench.spec.sections import (
    AXES,
    EXTRA_AXES,
    AccuracySpec,
    BuildSpec,
    CalibrationSpec,
    EvalTask,
    GridSpec,
    Ladder,
    ModelSpec,
    RequestRule,
    RequestsSpec,
    RuntimeSpec,
    SlaSpec,
    TrtllmSpec,
)
from trtbench.spec.strategy import GuidedSpec, Strategy
from trtbench.spec.sweep import BenchMode, RankBy, SweepSpec, stable_hash

__all__ = ["AXES", "EXECUTORS", "EXTRA_AXES", "MAX_PARALLEL", "MAX_REQUESTS", "MAX_TOKENS", "AccuracySpec",
           "BenchMode", "BuildSpec", "CalibrationSpec", "EvalTask", "ExecutorSpec", "GridSpec", "GuidedSpec", "Ladder",
           "ModelSpec", "RankBy", "RequestRule", "RequestsSpec", "RuntimeSpec", "SlaSpec", "SlurmSpec", "Strategy",
           "SweepSpec", "TrtllmSpec",
           "anchored", "load_spec", "parse_spec", "slurm_minutes", "stable_hash"]
