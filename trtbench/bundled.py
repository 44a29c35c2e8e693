"""Where the files shipped inside the trtbench package live (`trtbench/data`): calibration tables, measured
kernel tables, the HTML report's script and style."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    return Path(str(resources.files("trtbench") / "data" / name))
