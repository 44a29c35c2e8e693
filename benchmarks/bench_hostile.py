"""Bad input is refused within seconds: every hostile spec under tests/data/hostile (a YAML alias bomb, huge
numbers, a million-point grid, non-UTF-8 bytes, a model of zero heads), through `trtbench sweep` and `trtbench plan`
in-process. Target: each under 2 s (the tests assert only the one-line refusal; speed lives here, off a loaded CI
machine).

    .venv/bin/python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from trtbench.cli import main as trtbench

HOSTILE = Path(__file__).resolve().parent.parent / "tests" / "data" / "hostile"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(HOSTILE, tmp, dirs_exist_ok=True)
        os.chdir(tmp)
        for spec in sorted(Path(tmp).glob("*.yaml")):
            for command in ("sweep", "plan"):
                sys.argv = ["trtbench", command, spec.name]
                t0 = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
                    trtbench()
                print(f"{command} {spec.name}: {time.perf_counter() - t0:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
