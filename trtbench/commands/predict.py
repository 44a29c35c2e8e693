"""`trtbench predict`: the simulator's prediction for one point, or for every row of a CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from trtbench.commands.console import out
from trtbench.commands.utils import console, read_csv
from trtbench.cost import CLI_SOURCE, priced_at, usd_per_mtok
from trtbench.deployment import make_deployment, release_of, sent_graph_sizes
from trtbench.errors import TrtbenchError
from trtbench.files import atomic_write
from trtbench.sim.calibration import CALIBRATION_FRACTION, coverage
from trtbench.sim.ifb import IfbModel
from trtbench.sim.table import checked, parallelism_label, predict, predict_frame
from trtbench.spec import RuntimeSpec

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B"


def predict_one(gpu: str, model: str | None, precision: str, kv_cache_dtype: str | None, tp: int, isl: int, osl: int,
                requests: int, fraction: float | None, as_json: bool, release: str | None = None,
                config: str | None = None, attention_dp: bool = False, usd_per_gpu_hour: float | None = None,
                ep: int | None = None) -> None:
    """`model` None: the config's own name (`config_name`), or DEFAULT_MODEL without a config. `attention_dp`:
    DEP, the experts spread over the tp ranks; memory figures are then each rank's. `ep`: whole experts over that
    many of the tp ranks (`make_deployment`'s default unset). `usd_per_gpu_hour`: the predicted throughput's cost
    per million tokens on the tp GPUs."""
    price = priced_at(usd_per_gpu_hour) if usd_per_gpu_hour is not None else None
    fraction = fraction or CALIBRATION_FRACTION
    model = model or (config_name(Path(config)) if config else DEFAULT_MODEL)
    isl, osl, requests, tp = (checked(v, name) for v, name in ((isl, "isl"), (osl, "osl"), (requests, "num_requests"),
                                                               (tp, "tp")))
    if release is not None and release_of(release) is None:
        raise TrtbenchError(f"--release {release!r} is not a TensorRT-LLM version (e.g. 1.0 or 0.21.0)")
    dep = make_deployment(model, gpu, precision, tp=tp, kv_cache_dtype=kv_cache_dtype,
                          runtime=RuntimeSpec(kv_cache_free_gpu_mem_fraction=fraction), release=release,
                          config=config, attention_dp=attention_dp, graph_sizes=sent_graph_sizes(release_of(release)),
                          ep=ep)
    perf = IfbModel()
    outcome = predict(dep, isl, osl, requests, perf)
    covered = coverage(dep, perf.info)
    result: dict[str, Any] = {
              "gpu": dep.gpu.id, "model": model, "precision": precision, "tp": tp, "ep": dep.ep,
              "attention_dp": attention_dp,
              "release": dep.release,
              "isl": isl, "osl": osl,
              "requests": requests, "source": "simulated", "status": outcome.status.value, "cause": outcome.cause,
              "metrics": {**outcome.metrics.model_dump(exclude={"percentiles"}), **outcome.metrics.percentiles}
              if outcome.metrics else None,
              "memory": outcome.memory.model_dump(exclude_none=True) if outcome.memory else None,
              "predicted_wall_s": outcome.predicted_wall_s, "model_version": outcome.perf_model,
              "calibration": {"fitted_on": perf.info.get("fitted_on"), "fit_mape_pct": perf.info.get("mape_pct"),
                              "calibrated": covered.calibrated, "outside": list(covered.outside),
                              "expected_error_pct": covered.expected_error_pct, "error_pct": covered.error_pct,
                              "lower_bound": covered.lower_bound, "basis": covered.basis}}
    if price and outcome.metrics:
        result["cost"] = {"usd_per_gpu_hour": usd_per_gpu_hour, "source": CLI_SOURCE, "gpus": tp,
                          "usd_per_mtok": usd_per_mtok(price, outcome.metrics.output_tok_per_s / tp),
                          "usd_per_mtok_total": usd_per_mtok(price, outcome.metrics.total_tok_per_s / tp)}
    if as_json:
        print(json.dumps(result, indent=2))
        return
    per_rank = " (memory per rank)" if attention_dp else ""
    parallel = parallelism_label(dep.tp, dep.pp, dep.ep, dep.attention_dp) + per_rank
    table = Table(title=f"{model} {precision} on {dep.gpu.name}, {parallel}: ISL={isl} OSL={osl} N={requests} "
                        f"(simulated)")
    table.add_column("Quantity")
    table.add_column("Value", justify="right")
    table.add_row("status", outcome.status.value + (f": {outcome.cause}" if outcome.cause else ""))
    for key, value in (result["metrics"] or {}).items():
        if value is not None:
            table.add_row(key, f"{value:,.2f}")
    mem = result["memory"] or {}
    for key in ("kv_pool_gib", "kv_tokens", "max_concurrent_seqs", "max_batch_size", "max_num_tokens"):
        if key in mem:
            table.add_row(key, f"{mem[key]:,.2f}" if isinstance(mem[key], float) else f"{mem[key]:,}")
    if "cost" in result:
        for key in ("usd_per_mtok", "usd_per_mtok_total"):
            table.add_row(f"{key} (simulated, at ${price:,.2f}/GPU-hour x {tp} GPU(s), from {CLI_SOURCE})",
                          f"{result['cost'][key]:,.4f}")
    table.caption = f"{result['model_version']}; this deployment is {covered.describe()}"
    out.print(table)


def config_name(config: Path) -> str:
    """What a config.json calls its model: its `_name_or_path`; else, for a file named config.json (or a
    directory holding one), the directory's name, as a checkpoint's folder is named after it; else the file's
    name without `.json`. An unreadable config is left to the model loader to refuse in one line."""
    path = config / "config.json" if config.is_dir() else config
    try:
        name = json.loads(path.read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        name = None
    if isinstance(name, str) and name.strip():
        return name.strip()
    return (path.resolve().parent.name if path.name == "config.json" else "") or path.stem or path.name


def predict_csv(path: Path, dest: Path | None, fraction: float | None, usd_per_gpu_hour: float | None = None
                ) -> None:
    """With `usd_per_gpu_hour`: each prediction's cost per million output tokens on its TP x PP GPUs
    (`pred_usd_per_mtok`, with the price in `usd_per_gpu_hour`)."""
    frame = predict_frame(read_csv(path), fraction=fraction or CALIBRATION_FRACTION)
    if usd_per_gpu_hour is not None:
        price = priced_at(usd_per_gpu_hour)
        gpus = pd.Series(frame.get("tp", 1) * frame.get("pp", 1), index=frame.index).astype(float)
        frame = frame.assign(usd_per_gpu_hour=price,
                             pred_usd_per_mtok=usd_per_mtok(price, frame["pred_output_tok_per_s"] / gpus))
    if dest is None:
        print(frame.to_csv(index=False), end="")
        return
    try:
        atomic_write(dest, frame.to_csv(index=False))
    except OSError as exc:
        raise TrtbenchError(f"cannot write {dest}: {exc.strerror or exc}") from None
    console.print(f"{len(frame)} predictions (simulated) -> {dest}")

