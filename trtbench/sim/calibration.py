"""The step model's free factors: the committed fit, and what it was fitted on. `make calibrate` refits
jointly on the bundled NVIDIA tables (H100 SXM 8B TP1, H200 SXM 8B TP1 and 70B TP1-8).

Fit physics, not rows: six factors with physical bounds, fitted on log error so a 300 tok/s row counts as
much as a 28,000 tok/s one; the same factors serve every GPU, model and TP size. Everything else in the
step model (all-reduce curves, GEMM shape efficiency, best-shape GEMM rates, the bytes of the passes every
rank repeats) comes from datasheets and public microbenchmarks, not from these rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbench.catalog.gpus import Interconnect
from trtbench.records import now_iso
from trtbench.sim.steptime import Factors

if TYPE_CHECKING:
    import pandas as pd

    from trtbench.deployment import Deployment

CALIBRATION_FILE = "calibration.json"
CALIBRATION_DATA = ("calibration_h100_sxm_llama31_8b_fp8.csv", "published_h200_sxm_fp8.csv")
CALIBRATION_FRACTION = 0.95  # kv_cache_free_gpu_mem_fraction NVIDIA ran the calibration rows at
# Physical ranges: HBM efficiency as measured by STREAM-like kernels; GEMM efficiency relative to the
# measured best-shape rate; attention between small-shape and best-shape matmul; a fixed cost per iteration
# from none (hidden by the PyTorch path's overlap scheduler) to a few ms; per layer, the floors of its
# ~10 kernels: 10-15 us per GEMM call (public H100 GEMM tables: weight streaming reaches only ~15% of HBM at
# 8 MB and ~52% at 64 MB because of it) and a few us for attention, norms, activation and all-reduce.
BOUNDS = {
    "eta_mem": (0.5, 0.95),
    "eta_kv": (0.3, 0.95),
    "eta_gemm": (0.3, 1.0),
    "eta_attn": (0.1, 0.9),
    "t_iter_s": (0.0, 5e-3),
    "t_layer_s": (0.0, 150e-6),
}
DEFAULT = Factors(eta_mem=0.8, eta_kv=0.7, eta_gemm=0.8, eta_attn=0.4, t_iter_s=5e-4, t_layer_s=10e-6)


def data_path(name: str) -> Path:
    return Path(str(resources.files("trtbench") / "data" / name))


def bundled_rows() -> pd.DataFrame:
    """The calibration tables shipped with trtbench, one frame, each row tagged with its `set` (file name)."""
    import pandas as pd

    frames = [pd.read_csv(data_path(name)).assign(set=name) for name in CALIBRATION_DATA]
    return pd.concat(frames, ignore_index=True)


def release_factor(release: str | None, info: dict[str, Any]) -> tuple[float, str | None]:
    """The speed factor of a TensorRT-LLM release (measured / predicted on its calibration rows), and why it
    is borrowed when that release has none: the nearest calibrated release's. No release: 1 (the physics
    fit's average over the calibrated releases)."""
    factors: dict[str, float] = info.get("release_factors", {})
    if release is None or not factors:
        return 1.0, None
    if release in factors:
        return factors[release], None

    def key(r: str) -> tuple[int, ...]:
        return tuple(int(x) for x in r.split("."))

    nearest = min(factors, key=lambda r: (abs(key(r)[0] * 100 + key(r)[1] - key(release)[0] * 100 - key(release)[1]),
                                          key(r)))
    return factors[nearest], f"release {release} has no calibration rows (used {nearest}'s speed)"


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
               "fitted_at": now_iso()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def describe(info: dict[str, Any]) -> str:
    if "fitted_on" not in info:
        return info.get("source", "uncalibrated")
    fitted_on = info["fitted_on"]
    sets = " + ".join(fitted_on) if isinstance(fitted_on, list) else fitted_on
    return f"fitted on {sets} ({info['rows']} rows, MAPE {info['mape_pct']:.1f}%)"


@dataclass(frozen=True)
class Coverage:
    """How far a deployment is from what the factors were fitted on, and the error to expect there."""

    calibrated: bool
    outside: tuple[str, ...]  # why not, one phrase each
    expected_error_pct: float | None  # the fit's MAPE at this TP inside; None outside (unknown, wider)

    def describe(self) -> str:
        if self.calibrated:
            return f"inside the calibration (expected error ~{self.expected_error_pct:.0f}%)"
        return f"outside the calibration ({'; '.join(self.outside)}): expect a wider error than the fit's"


def coverage(dep: Deployment, info: dict[str, Any] | None = None) -> Coverage:
    """Whether `dep` is the kind of deployment the committed factors were fitted on: a calibrated GPU,
    FP8, a calibrated TP size, an interconnect the all-reduce model knows, and a dense model with full
    attention."""
    info = load()[1] if info is None else info
    outside = []
    gpus, by_tp = info.get("gpus", []), info.get("mape_by_tp", {})
    if dep.gpu.id not in gpus:
        fitted = ", ".join(gpus) or "none"
        outside.append(f"no calibration rows for {dep.gpu.name} ({dep.gpu.family}; fitted on {fitted})")
    if str(dep.precision) != "fp8":
        outside.append(f"{dep.precision} weights (fitted on FP8)")
    if str(dep.tp) not in by_tp:
        outside.append(f"TP{dep.tp} (fitted on TP {', '.join(by_tp) or 'none'})")
    if dep.n_gpus > 1 and dep.gpu.interconnect is Interconnect.UNKNOWN:
        outside.append(f"how the {dep.gpu.name} GPUs connect is unknown (costed as PCIe Gen5)")
    if dep.pp > 1:
        outside.append("pipeline parallelism (never calibrated)")
    if dep.arch.is_moe:
        outside.append(f"a mixture of experts ({dep.arch.experts} experts, top-{dep.arch.top_k}; fitted on dense "
                       f"models, and expert GEMMs and routing are never calibrated)")
    if dep.arch.sliding_layers or dep.arch.chunked_layers:
        outside.append("sliding-window or chunked attention layers (fitted on full attention; the per-window KV "
                       "pools' split is assumed)")
    borrowed = release_factor(dep.release, info)[1]
    if borrowed:
        outside.append(borrowed)
    error = by_tp.get(str(dep.tp), info.get("mape_pct"))
    return Coverage(not outside, tuple(outside), None if outside else error)
