"""Predictions for a table of rows (`trtbench predict --csv`, `trtbench calibrate`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from trtbench.deployment import Deployment, make_deployment, release_of
from trtbench.errors import TrtbenchError
from trtbench.records import MAX_OUTPUT_TOK_PER_S_PER_GPU, Outcome
from trtbench.sim.estimate import PerformanceModel
from trtbench.sim.ifb import IfbModel
from trtbench.sim.predict import predict_point
from trtbench.spec import MAX_PARALLEL, MAX_REQUESTS, MAX_TOKENS, RequestRule, RuntimeSpec
from trtbench.text import printable

REQUIRED = ("isl", "osl")
MEASURED = "output_tok_per_s"  # a row's measured throughput, what predictions are scored and fitted against
RELEASE_COLUMNS = ("release", "version", "trtllm_version")  # the TensorRT-LLM release a row ran (optional)
# What a row may leave out: NVIDIA's tables omit some request counts; the study names no GPU.
ROW_DEFAULTS: dict[str, Any] = {"gpu": "h100-sxm", "model": "meta-llama/Llama-3.1-8B", "precision": "fp8", "tp": 1,
                                "pp": 1, "kv_cache_dtype": None, "attention_dp": False, "ep": None}
# NVIDIA's tables spell some settings their own way (published_moe_blackwell.csv): "FP4" is an NVFP4 checkpoint,
# the KV dtype and attention DP come as prose ("fp8 (ModelOpt FP8 checkpoint, assumed)", "yes (DEP)").
PUBLISHED_PRECISION = {"fp4": "nvfp4"}
KV_WORDS = {"fp8": "fp8", "fp16": "auto", "bf16": "auto", "auto": "auto"}  # first word of a KV column; else default
PREDICTION_COLUMNS = ("pred_output_tok_per_s", "pred_status", "pred_kv_tokens", "pred_requests", "pred_cause",
                      "regime", "kv_limited")
MISSING_REQUESTS = RequestRule(budget_tokens=6_000_000, min=200, max=30_000)


def row_precision(value: object) -> str:
    """A row's precision as trtbench names it (NVIDIA's "FP4" is nvfp4)."""
    name = str(value).lower()
    return PUBLISHED_PRECISION.get(name, name)


def predict(dep: Deployment, isl: int, osl: int, requests: int, perf: PerformanceModel | None = None) -> Outcome:
    return predict_point(dep, perf or IfbModel(), isl, osl, requests)


def predict_frame(rows: pd.DataFrame, perf: PerformanceModel | None = None,
                  defaults: Mapping[str, Any] | None = None, fraction: float = 0.9) -> pd.DataFrame:
    """`rows` plus PREDICTION_COLUMNS (the other input columns kept; an earlier prediction's replaced). A row's
    request count is `num_requests`, or `requests` as results.csv names it."""
    rows = measured(rows.drop(columns=[c for c in PREDICTION_COLUMNS if c in rows.columns]))
    if "num_requests" not in rows.columns and "requests" in rows.columns:
        rows = rows.assign(num_requests=rows["requests"])
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise TrtbenchError(f"input has no {', '.join(missing)} column; needed: gpu,model,precision,tp,isl,osl,"
                            f"num_requests")
    defaults = {**ROW_DEFAULTS, **(defaults or {})}
    perf = perf or IfbModel()  # once: it reads the committed calibration
    deployments: dict[tuple[Any, ...], Deployment] = {}
    out = []
    for number, row in enumerate(rows.to_dict("records"), 1):
        get = {k: row.get(k) if _present(row.get(k)) else defaults.get(k)
               for k in ("gpu", "model", "precision", "tp", "pp", "kv_cache_dtype", "attention_dp")}
        version = row_version(row)
        try:
            isl, osl = checked(row["isl"], "isl"), checked(row["osl"], "osl")
            n = (checked(row["num_requests"], "num_requests") if _present(row.get("num_requests"))
                 else MISSING_REQUESTS.count(isl, osl))
            tp, pp = checked(get["tp"], "tp"), checked(get["pp"], "pp")
            precision = row_precision(get["precision"])
            kv = kv_dtype(get["kv_cache_dtype"])
            dep_on = yes(get["attention_dp"])
            ep = checked(row["ep"], "ep") if _present(row.get("ep")) else None
            row_fraction = float(row["kv_fraction"]) if _present(row.get("kv_fraction")) else fraction
            key = (get["model"], get["gpu"], precision, tp, pp, kv, version, dep_on, ep, row_fraction)
            if key not in deployments:
                runtime = RuntimeSpec(kv_cache_free_gpu_mem_fraction=row_fraction)
                deployments[key] = make_deployment(str(get["model"]), str(get["gpu"]), precision, tp=tp, pp=pp,
                                                   kv_cache_dtype=kv, runtime=runtime, release=version,
                                                   attention_dp=dep_on, ep=ep)
        except TrtbenchError as exc:
            raise TrtbenchError(f"row {number}: {exc}") from None
        outcome = predict_point(deployments[key], perf, isl, osl, n)
        mem = outcome.memory
        out.append({
            "pred_output_tok_per_s": outcome.metrics.output_tok_per_s if outcome.metrics else math.nan,
            "pred_status": outcome.status.value,
            "pred_kv_tokens": outcome.memory.kv_tokens if outcome.memory else None,
            "pred_requests": n,
            "pred_cause": outcome.cause,
            "regime": regime(isl, osl),
            "kv_limited": bool(mem and mem.max_concurrent_seqs and mem.max_batch_size
                               and mem.max_concurrent_seqs < min(mem.max_batch_size, n)),
        })
    return pd.concat([rows.reset_index(drop=True), pd.DataFrame(out)], axis=1)


def measured(rows: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """`rows` with each measured throughput given checked: a finite number above 0 that the row's TP x PP GPUs
    can reach (MAX_OUTPUT_TOK_PER_S_PER_GPU each), the column then numeric. A zero, negative, 1e12 or text value
    is a one-line error naming `source` ("file: "), the row (1 = the first after the header) and the column,
    never a traceback or a score against it; a blank is a row without a measurement."""
    if MEASURED not in rows.columns:
        return rows
    for index, row in zip(rows.index, rows.to_dict("records"), strict=True):
        value = row[MEASURED]
        if not _present(value):
            continue
        try:
            gpus = checked(_or_default(row, "tp"), "tp") * checked(_or_default(row, "pp"), "pp")
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        except TrtbenchError as exc:
            raise TrtbenchError(f"{source}row {index + 1}: {exc}") from None
        limit = MAX_OUTPUT_TOK_PER_S_PER_GPU * gpus
        if not 0 < number <= limit:  # NaN too
            raise TrtbenchError(f"{source}row {index + 1}, column {MEASURED}: {printable(repr(value), 60)} is not a "
                                f"measured throughput (a number above 0, at most {limit:,.0f} tokens/s on {gpus} "
                                f"GPU(s))")
    return rows.assign(**{MEASURED: pd.to_numeric(rows[MEASURED])})


def kv_dtype(value: Any) -> str | None:
    """A row's KV cache dtype: `fp8`/`auto`, or the first word of NVIDIA's prose for it; None (the precision's
    default) where the table leaves it to the checkpoint."""
    if not value:
        return None
    word = str(value).strip().lower().split(" ")[0]
    return KV_WORDS.get(word)


def yes(value: Any) -> bool:
    """A yes/no column: a bool, or text that starts with yes/true/1 ("yes (DEP)"); anything else is no."""
    return value if isinstance(value, bool) else str(value).strip().lower().startswith(("yes", "true", "1"))


def _or_default(row: Mapping[Any, Any], column: str) -> Any:
    return row.get(column) if _present(row.get(column)) else ROW_DEFAULTS[column]


def row_version(row: Mapping[Any, Any]) -> str | None:
    """The TensorRT-LLM version a row names in its first present release column, as written ("1.3.0rc20")."""
    return next((str(row[c]) for c in RELEASE_COLUMNS if _present(row.get(c))), None)


def row_release(row: Mapping[Any, Any]) -> str | None:
    """The TensorRT-LLM release (major.minor) a row names."""
    return release_of(row_version(row))


def regime(isl: int, osl: int) -> str:
    """Which phase dominates a row's work: prefill-heavy (ISL >= 4 x OSL), decode-heavy (OSL >= 4 x ISL),
    else mixed. (`kv_limited` says apart whether the KV pool, not max_batch_size or the request count,
    caps its concurrency.)"""
    return "prefill-heavy" if isl >= 4 * osl else "decode-heavy" if osl >= 4 * isl else "mixed"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


# The spec's bounds, for rows and options that do not come through a spec.
LIMITS = {"isl": MAX_TOKENS, "osl": MAX_TOKENS, "num_requests": MAX_REQUESTS, "tp": MAX_PARALLEL, "pp": MAX_PARALLEL,
          "ep": MAX_PARALLEL}


def checked(value: Any, name: str) -> int:
    """`value` as a positive integer within the spec's bound for `name`, or a one-line error."""
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        raise TrtbenchError(f"{name} {value!r} is not an integer") from None
    if n <= 0 or n != float(value):
        raise TrtbenchError(f"{name} {value!r} is not a positive integer")
    if n > LIMITS[name]:
        raise TrtbenchError(f"{name} {n:,} is above the limit of {LIMITS[name]:,}")
    return n


def with_groups(scored: pd.DataFrame, defaults: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """`scored` plus what `calibrate` breaks its error down by: `family` (the model's name without its size:
    Llama-3.1, Mixtral, Qwen3), `gpu_name` (the catalog's, so "H100-SXM-80GB" and "H100 SXM 80GB" are one GPU)
    and `parallelism` (TP4, TP4 PP2, TP8 EP8: whole experts over 8 ranks, DEP4: attention data parallelism with
    experts over the 4 ranks)."""
    from trtbench.catalog.gpus import resolve_gpu

    defaults = {**ROW_DEFAULTS, **(defaults or {})}
    rows = scored.to_dict("records")

    def get(row: Mapping[Any, Any], column: str) -> Any:
        return row.get(column) if _present(row.get(column)) else defaults[column]

    def parallelism(row: Mapping[Any, Any]) -> str:
        ep = get(row, "ep")
        return parallelism_label(int(get(row, "tp")), int(get(row, "pp")), int(ep) if ep else 1,
                                 yes(get(row, "attention_dp")))

    return scored.assign(family=[model_family(str(get(r, "model"))) for r in rows],
                         gpu_name=[resolve_gpu(str(get(r, "gpu"))).name for r in rows],
                         parallelism=[parallelism(r) for r in rows])


def parallelism_label(tp: int, pp: int, ep: int, attention_dp: bool) -> str:
    """TP4, TP4 PP2, TP8 EP8 (whole experts over 8 ranks), DEP4 (attention DP, experts over all 4)."""
    extra = f" EP{ep}" if ep > 1 and not attention_dp else ""
    return f"{'DEP' if attention_dp else 'TP'}{tp}{extra}" + (f" PP{pp}" if pp > 1 else "")


def model_family(model: str) -> str:
    """`meta-llama/Llama-3.1-8B` -> Llama-3.1, `Mixtral-8x7B` -> Mixtral, `Qwen3-235B-A22B` -> Qwen3: the name up
    to its first size part (a number of parameters, or experts x size)."""
    parts = model.rstrip("/").split("/")[-1].split("-")
    size = re.compile(r"^\d+(\.\d+)?[bBmM]$|^\d+x\d+[bB]$")
    head = next((i for i, part in enumerate(parts) if size.match(part)), len(parts))
    return "-".join(parts[:head]) or model


def mape_by(scored: pd.DataFrame, column: str) -> pd.DataFrame:
    """MAPE, worst error and the share of rows within 15%, per value of `column` of a `score`d frame."""
    err = scored["error_pct"].abs()
    grouped = err.groupby(scored[column].astype(str))
    return pd.DataFrame({"rows": grouped.size(), "mape_pct": grouped.mean(), "worst_pct": grouped.max(),
                         "within_15_pct": grouped.apply(lambda e: 100 * float((e <= 15).mean()))})


def score(frame: pd.DataFrame) -> tuple[pd.DataFrame, float, float]:
    """Per-row error (%) of predictions against `output_tok_per_s`, MAPE (%) and Spearman rank correlation,
    over the rows that have a measurement."""
    if "output_tok_per_s" not in frame.columns:
        raise TrtbenchError("input has no output_tok_per_s column to compare with")
    scored = frame[frame["output_tok_per_s"].notna()].copy()
    scored["error_pct"] = 100 * (scored["pred_output_tok_per_s"] - scored["output_tok_per_s"]) / scored[
        "output_tok_per_s"]
    mape = float(scored["error_pct"].abs().mean())
    spearman = float(scored["pred_output_tok_per_s"].corr(scored["output_tok_per_s"], method="spearman"))
    return scored, mape, spearman
