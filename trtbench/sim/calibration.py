"""The step model's free factors: the committed fit, how to score a prediction table against
measurements, and how to refit. `make calibrate` refits on the bundled NVIDIA table.

Fit physics, not rows: five factors with physical bounds, fitted on log error so a 1,300 tok/s
row counts as much as a 26,000 tok/s one; the same factors serve every GPU, model and TP size.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from trtbench.sim.steptime import Factors

CALIBRATION_FILE = "calibration.json"
CALIBRATION_DATA = "calibration_h100_sxm_llama31_8b_fp8.csv"
# Physical ranges: HBM efficiency as measured by STREAM-like kernels, GEMM/attention efficiency
# between small-shape and best-shape matmul, overheads from microseconds to tens of milliseconds.
BOUNDS = {
    "eta_mem": (0.5, 0.95),
    "eta_gemm": (0.2, 0.9),
    "eta_attn": (0.1, 0.9),
    "t_iter_s": (0.0, 0.05),
    "t_seq_s": (0.0, 50e-6),
}
DEFAULT = Factors(eta_mem=0.8, eta_gemm=0.6, eta_attn=0.4, t_iter_s=2e-3, t_seq_s=5e-6)


def data_path(name: str) -> Path:
    return Path(str(resources.files("trtbench") / "data" / name))


def load() -> tuple[Factors, dict[str, Any]]:
    """The committed factors and what they were fitted on."""
    path = data_path(CALIBRATION_FILE)
    if not path.exists():
        return DEFAULT, {"source": "literature defaults (not fitted)"}
    data = json.loads(path.read_text())
    return Factors(**data["factors"]), {k: v for k, v in data.items() if k != "factors"}


def save(factors: Factors, info: dict[str, Any], path: Path | None = None) -> Path:
    path = path or data_path(CALIBRATION_FILE)
    payload = {"factors": {k: float(f"{v:.6g}") for k, v in asdict(factors).items()}, **info,
               "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def describe(info: dict[str, Any]) -> str:
    if "fitted_on" not in info:
        return info.get("source", "uncalibrated")
    return f"fitted on {info['fitted_on']} ({info['rows']} rows, MAPE {info['mape_pct']:.1f}%)"
