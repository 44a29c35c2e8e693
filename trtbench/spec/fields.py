"""What every section of a spec is made of: the bounds a real sweep never reaches, and the bounded,
printable field types that enforce them, so a typo or a hostile spec is refused at validation."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

# Bounds a real sweep never reaches, so a typo or a hostile spec is refused here, not as a hang, an
# overflow or a file name the OS rejects later.
MAX_SPEC_BYTES = 1 << 20  # a spec is a few KiB
MAX_DEPTH = 32  # a spec nests less than 6 levels
MAX_NODES = 100_000  # YAML values once aliases are expanded; a spec has a few hundred
MAX_TOKENS = 1 << 21  # ISL or OSL: 2,097,152 tokens, past any model's context
MAX_REQUESTS = 1_000_000  # per point
MAX_PARALLEL = 64  # TP or PP: GPUs along one axis
MAX_BATCH = 1 << 16  # sequences per iteration; trtllm-bench's own heuristic stops at 4,096
MAX_BATCH_TOKENS = 1 << 24  # tokens per iteration
MAX_SECONDS = 7 * 24 * 3600.0  # a timeout of a week
NAME_CHARS = 100  # the sweep name is a directory name
TEXT_CHARS = 500  # a model name, preset, version
PATH_CHARS = 4096  # Linux PATH_MAX

PosInt = Annotated[int, Field(strict=True, gt=0)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
Tokens = Annotated[int, Field(strict=True, gt=0, le=MAX_TOKENS)]
Requests = Annotated[int, Field(strict=True, gt=0, le=MAX_REQUESTS)]
Parallel = Annotated[int, Field(strict=True, gt=0, le=MAX_PARALLEL)]
BatchSize = Annotated[int, Field(strict=True, gt=0, le=MAX_BATCH)]
BatchTokens = Annotated[int, Field(strict=True, gt=0, le=MAX_BATCH_TOKENS)]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]


def _parts_at_most(limit: int) -> AfterValidator:
    """Each part of a path within `limit` bytes: the OS refuses a longer file name (over 255 bytes) with an
    error far from the spec."""
    def check(value: str) -> str:
        longest = max((len(part.encode()) for part in PurePath(value).parts), default=0)
        if longest > limit:
            raise ValueError(f"has a part of {longest} bytes; at most {limit}")
        return value
    return AfterValidator(check)


def _printable(value: str) -> str:
    """No control, bidi or other unprintable character (a YAML escape like "\\0" or "\\u202e" makes one): a NUL
    cuts a C string (a path, an argument) short, the others garble a terminal, a log or what a reader sees."""
    if not value.isprintable():
        position, bad = next((i, c) for i, c in enumerate(value, 1) if not c.isprintable())
        raise ValueError(f"has the unprintable character {bad!a} at position {position}")
    return value


Printable = AfterValidator(_printable)
Text = Annotated[str, Field(max_length=TEXT_CHARS), Printable]
PathText = Annotated[str, Field(max_length=PATH_CHARS), Printable, _parts_at_most(255)]
# Engine and workspace directories are named after the model; Hugging Face allows 96 characters per part.
ModelName = Annotated[str, Field(min_length=1, max_length=TEXT_CHARS), Printable, _parts_at_most(96)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
