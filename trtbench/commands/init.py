"""`trtbench init`: write a first spec for a model (trtbench.starter chooses it), then show `plan`'s summary of it."""

from __future__ import annotations

import re
from pathlib import Path

from rich.markup import escape

from trtbench.catalog.gpus import resolve_gpu
from trtbench.commands.console import out as stdout
from trtbench.commands.plan import plan
from trtbench.commands.predict import config_name
from trtbench.errors import SpecError, TrtbenchError
from trtbench.files import create_new
from trtbench.nvml import visible_gpus
from trtbench.starter import TP_SIZES, choose


def init(model: str | None, config: Path | None, gpu: str, budget_gpu_hours: float | None, out: Path | None) -> None:
    """Write the spec to `out` (default: <model>.yaml here), never over a file, and print its plan."""
    if model is None:
        if config is None:
            raise SpecError("give --model NAME (a model trtbench knows) or --config config.json (any model)")
        model = config_name(config)
    config_text = str(config.resolve()) if config is not None else None  # the spec works from any directory
    path = out or Path(f"{file_stem(model)}.yaml")
    if path.exists() or path.is_symlink():  # said before the grid is worked out; create_new checks again
        raise TrtbenchError(f"{path} exists; trtbench init never overwrites a file: give --out another path")
    if gpu == "auto":
        found = visible_gpus()
        if not found:
            raise TrtbenchError("--gpu auto: NVML sees no GPU here; name the GPU to plan for (e.g. --gpu h100-sxm)")
        target, source, max_gpus = resolve_gpu(found[0].name), "NVML", min(len(found), max(TP_SIZES))
    else:
        target, source, max_gpus = resolve_gpu(gpu), "given", max(TP_SIZES)
    starter = choose(model, config_text, target, source, budget_gpu_hours, max_gpus)
    create_new(path, starter.spec_text())
    stdout.print(f"wrote {escape(str(path))}: {escape(starter.summary())}")
    plan(path)


def file_stem(model: str) -> str:
    """meta-llama/Llama-3.1-8B -> Llama-3.1-8B: the model's own name, as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "model"
