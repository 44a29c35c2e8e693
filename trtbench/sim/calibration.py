"""The step model's free factors: the committed fit, and what it was fitted on. `make calibrate` refits
jointly on the bundled NVIDIA tables (H100 SXM 8B TP1, H200 SXM 8B TP1 and 70B TP1-8, and the MoE/Blackwell
table: Mixtral-8x7B on five GPUs, Qwen3-235B-A22B TP8 EP8 and DEP4, Llama-3.1-405B NVFP4 on B200).

Fit physics, not rows: seven factors with physical bounds (the seventh, eta_moe, only moves mixtures), fitted
on log error so a 300 tok/s row counts as much as a 28,000 tok/s one (`sim.fit` says which rows fit which
factors); the same factors serve every GPU, model and TP size. Everything else in the step model (all-reduce
curves, GEMM shape efficiency, best-shape GEMM rates, the bytes of the passes every rank repeats) comes from
datasheets and public microbenchmarks, not from these rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtbench.bundled import data_path
from trtbench.catalog.gpus import Interconnect, resolve_gpu
from trtbench.records import now_iso
from trtbench.sim.steptime import Factors

if TYPE_CHECKING:
    import pandas as pd

    from trtbench.catalog.models import ModelArch
    from trtbench.deployment import Deployment

CALIBRATION_FILE = "calibration.json"
CALIBRATION_DATA = ("calibration_h100_sxm_llama31_8b_fp8.csv", "published_h200_sxm_fp8.csv")
# NVIDIA's MoE and Blackwell/NVFP4 cells (Mixtral-8x7B on five GPUs, Qwen3-235B-A22B, Llama-3.1-405B NVFP4), fitted
# with the dense tables (`make calibrate`)
MOE_BLACKWELL_DATA = "published_moe_blackwell.csv"
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
    "eta_moe": (0.3, 1.0),
}
DEFAULT = Factors(eta_mem=0.8, eta_kv=0.7, eta_gemm=0.8, eta_attn=0.4, t_iter_s=5e-4, t_layer_s=10e-6, eta_moe=0.8)


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


def update(extra: dict[str, Any], path: Path | None = None) -> Path:
    """Add `extra` (the cross-validation, say) to the committed calibration, its factors and fit untouched."""
    path = path or data_path(CALIBRATION_FILE)
    path.write_text(json.dumps({**json.loads(path.read_text()), **extra}, indent=2) + "\n")
    return path


def describe(info: dict[str, Any]) -> str:
    """The calibration as a model name carries it into every record: what it was fitted on and the error it earned
    on rows held out of the fit, never its error on its own rows, which flatters."""
    if "fitted_on" not in info:
        return info.get("source", "uncalibrated")
    fitted_on = info["fitted_on"]
    sets = " + ".join(fitted_on) if isinstance(fitted_on, list) else fitted_on
    cv = info.get("cv", {}).get("mape_pct")
    error = "never cross-validated" if cv is None else f"held-out error {cv:.1f}%"
    return f"fitted on {sets} ({info['rows']} rows, {error})"


@dataclass(frozen=True)
class Coverage:
    """How far a deployment is from what the factors were fitted on, and the error to allow for there: the
    cross-validated error of its groups (each held out of the fit in turn), never the fit's error on its own
    rows, which flatters."""

    calibrated: bool
    outside: tuple[str, ...]  # why not, one phrase each
    expected_error_pct: float | None  # inside: the out-of-sample error of its groups; None outside (unknown)
    error_pct: float  # the error to allow for (6.0: 6%): inside as above; outside, the nearest group's, a floor
    lower_bound: bool  # error_pct is a floor (outside the calibration), not an estimate
    basis: str  # the held-out group error_pct comes from ("TP8", "H200 SXM 141GB", "70B models"); "": none

    def describe(self) -> str:
        if self.calibrated:
            return f"inside the calibration (out-of-sample error ~{self.error_pct:.1f}% for {self.basis})"
        if not self.basis:
            return f"outside the calibration ({'; '.join(self.outside)}): error unknown"
        return (f"outside the calibration ({'; '.join(self.outside)}): error at least {self.error_pct:.1f}% (the "
                f"nearest calibrated group's, {self.basis}), likely more")


DENSE, MOE_OR_NVFP4 = "dense", "moe_or_nvfp4"  # kinds of rows and deployments the cross-validation scores apart


def deployment_kind(is_moe: bool, precision: str) -> str:
    """Dense FP8/16-bit models have physics fitted on their own rows; mixtures of experts and NVFP4 weights add
    fitted or unfitted parts with larger errors, which must not widen a dense deployment's stated error."""
    return MOE_OR_NVFP4 if is_moe or precision == "nvfp4" else DENSE


def coverage(dep: Deployment, info: dict[str, Any] | None = None) -> Coverage:
    """Whether `dep` is the kind of deployment the committed factors were fitted on (a GPU, TP size, model and
    weight and KV formats with rows of its kind, an interconnect the all-reduce model knows, full attention, no
    attention DP, a release with rows), and the error to allow for: the largest cross-validated error of its TP
    size, GPU and model size held out of the fit; outside, that of the nearest calibrated ones, as a floor."""
    info = load()[1] if info is None else info
    cv: dict[str, Any] = info.get("cv", {})
    kind = deployment_kind(dep.arch.is_moe, str(dep.precision))
    by: dict[str, Any] = cv.get("by_kind", {}).get(kind, cv)
    fitted: dict[str, list[str]] = cv.get("groups", {})
    outside, nearest = [], {}
    # The TP sizes and GPUs with rows of the deployment's kind (a dense FP8 model on B200 is outside, although
    # NVFP4 rows ran there).
    tps, gpus = (list(by.get("by_tp", fitted.get("tp", []))), list(by.get("by_gpu", fitted.get("gpu", []))))
    if gpus and dep.gpu.id not in gpus:
        outside.append(f"no calibration rows for {dep.gpu.name} ({dep.gpu.family}; fitted on {', '.join(gpus)})")
    nearest["gpu"] = _nearest(dep.gpu.hbm_tb_s, {g: resolve_gpu(g).hbm_tb_s for g in gpus})
    if tps and str(dep.tp) not in tps:
        outside.append(f"TP{dep.tp} (fitted on TP {', '.join(tps)})")
    nearest["tp"] = _nearest(dep.tp, {t: int(t) for t in tps})
    models: dict[str, dict[str, Any]] = {name: m for name, m in info.get("models", {}).items()
                                         if "by_model" not in by or m["group"] in by["by_model"]}  # of its kind
    shape = model_shape(dep.arch)
    same = [m["group"] for m in models.values() if m["shape"] == shape]
    if models and not same:
        outside.append(f"no calibration rows for {dep.arch.name} ({dep.arch.describe()}; fitted on "
                       f"{', '.join(models)})")
    nearest["model"] = same[0] if same else _nearest(dep.arch.params / 1e9, {m["group"]: m["params_b"]
                                                                              for m in models.values()})
    if not cv:
        outside.append("its error was never cross-validated (`trtbench calibrate --cv --write`)")
    # The formats rows of its kind ran (a calibration written before they were recorded: FP8 weights and KV).
    formats = info.get("formats", {}).get(kind, {"precisions": ["fp8"], "kv_bytes": [1]})
    if str(dep.precision) not in formats["precisions"]:
        outside.append(f"{dep.precision} weights (fitted on {', '.join(p.upper() for p in formats['precisions'])})")
    if dep.kv_dtype_bytes not in formats["kv_bytes"]:
        outside.append(f"a {_kv_name(dep.kv_dtype_bytes)} KV cache (fitted on "
                       f"{' and '.join(_kv_name(b) for b in formats['kv_bytes'])} KV)")
    if dep.n_gpus > 1 and dep.gpu.interconnect is Interconnect.UNKNOWN:
        outside.append(f"how the {dep.gpu.name} GPUs connect is unknown (costed as PCIe Gen5)")
    if dep.pp > 1:
        outside.append("pipeline parallelism (never calibrated)")
    # Attention DP: its rows are in the fit, and the fit misses them (DEP4 about twice TP8 per GPU, where NVIDIA
    # measured them alike); their error within the fit is a floor for what a DEP point may be off.
    dep_fit = {k: v for k, v in info.get("mape_by_parallelism", {}).items() if k.startswith("DEP")}
    if dep.attention_dp:
        outside.append("attention data parallelism (" + (
            f"its calibration rows are off by {max(dep_fit.values()):.0f}% on average within the fit: what it "
            f"costs per GPU is not understood" if dep_fit else "never calibrated: per-rank batches and the MoE's "
            "all-gather") + ")")
    if dep.arch.sliding_layers or dep.arch.chunked_layers:
        outside.append("sliding-window or chunked attention layers (fitted on full attention; the per-window KV "
                       "pools' split is assumed)")
    borrowed = release_factor(dep.release, info)[1]
    if borrowed:
        outside.append(borrowed)
    errors = [(by[f"by_{family}"][group], _group_name(family, group)) for family, group in nearest.items()
              if group is not None and group in by.get(f"by_{family}", {})]
    if dep.attention_dp:
        errors += [(error, f"{name} rows, within the fit") for name, error in dep_fit.items()]
    error, basis = max(errors) if errors else (0.0, "")  # no cross-validated group: a floor of nothing
    return Coverage(not outside, tuple(outside), None if outside else error, error, bool(outside), basis)


def _kv_name(width: int) -> str:
    return "FP8" if width == 1 else f"{8 * width}-bit"


def model_shape(arch: ModelArch) -> dict[str, Any]:
    """What sets a model's step time: its architecture without its name or context limit (Llama-3-8B runs
    as Llama-3.1-8B does, a config.json of it as the preset)."""
    return {k: v for k, v in asdict(arch).items() if k not in ("name", "max_position")}


def _nearest(value: float, groups: dict[str, float]) -> str | None:
    """The group whose size (TP, HBM bandwidth, parameters) is nearest `value` in ratio."""
    return min(groups, key=lambda g: abs(math.log(value / groups[g])), default=None)


def _group_name(family: str, group: str) -> str:
    return f"TP{group}" if family == "tp" else resolve_gpu(group).name if family == "gpu" else f"{group} models"
