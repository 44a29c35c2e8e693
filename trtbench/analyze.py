"""Records -> one DataFrame, and every number the report prints, computed here and tested on records.

Because top-N, best-by-ISL and best-by-OSL all take rows from `ranked()`, no derived table can disagree
with the top-N (the study's OSL=128 row did). A grid with extra axes (TP, precision, ...) is analysed
per group of those axes, and the top-N ranks across groups with the axes as columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from trtbench.accuracy.gate import Gate, Verdict, verdicts
from trtbench.accuracy.records import AccuracyRecord, Artifact, artifact_of
from trtbench.catalog.gpus import resolve_gpu
from trtbench.cost import COST_COLUMNS, with_cost
from trtbench.errors import SpecError
from trtbench.precision import Precision, default_kv
from trtbench.records import Record, Source, Status
from trtbench.sla import Bounds, best_under, violations
from trtbench.spec import EXTRA_AXES, RankBy, SweepSpec
from trtbench.stats import NOISY_CV, overlaps, summarize
from trtbench.tally import Tally

METRIC_COLUMNS = ("output_tok_per_s", "request_per_s", "total_tok_per_s", "total_latency_s",
                  "avg_latency_s", "avg_concurrency")
MEMORY_COLUMNS = ("gpu_total_gib", "weights_gib", "activation_gib", "overhead_gib", "kv_pool_gib",
                  "kv_tokens", "max_concurrent_seqs", "max_batch_size", "max_num_tokens")
# Derived per point: the simulator's prediction (for measured points), the roofline bound, efficiency.
# Per-request percentiles (ms) as trtllm-bench reports them (streaming for TTFT/TPOT) or the simulator
# predicts them; empty where a run reported none.
# column -> the record's key (trtllm-bench's name)
PERCENTILES = {f"{m}_ms_p{q}": f"{m}_p{q}_ms" for m in ("ttft", "tpot", "latency") for q in (50, 90, 95, 99)}
PERCENTILE_COLUMNS = tuple(PERCENTILES)
DERIVED_COLUMNS = ("ttft_ms", "tpot_ms", "per_user_tok_s", *PERCENTILE_COLUMNS, "gpus", "output_tok_per_s_per_gpu",
                   "request_per_s_per_gpu", "peak_memory_gib", "accuracy",
                   "pred_status", "pred_output_tok_per_s", "pred_error_pct", "roofline_output_tok_per_s",
                   "efficiency_pct", "energy_j", "joules_per_token", "predicted_wall_s")
# Measured points' energy over the benchmark's measured phase (telemetry), summed over the point's GPUs: output
# tokens per joule (1 / joules_per_token), board power, mean SM clock and GPU temperature. Empty when simulated.
# column -> the record's telemetry field
TELEMETRY = {"mean_power_w": "mean_power_w", "peak_power_w": "peak_power_w", "sm_clock_mhz": "mean_sm_clock_mhz",
             "peak_temperature_c": "peak_temperature_c", "energy_source": "energy_source"}
ENERGY_COLUMNS = ("tok_per_joule", *TELEMETRY)
# What ran, on every row of results.csv / results.parquet (first, whether swept or not), so runs concatenate and
# `trtbench calibrate` / `predict --csv` read them back without the spec.
IDENTITY_COLUMNS = ("model", "gpu", "precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp", "trtllm_version")
# results.csv / results.parquet columns after the identity and axis columns, in order; documented in the README.
COLUMNS = ("isl", "osl", "requests", "status", "cause", "borderline", "source", "backend", *METRIC_COLUMNS,
           "total_tokens", *MEMORY_COLUMNS, "point_id", "started_at", "duration_s", *DERIVED_COLUMNS,
           *ENERGY_COLUMNS, *COST_COLUMNS)
# With repeats (runtime.repeats > 1): per point, how many ok repeats, then for output tok/s and each percentile
# with values `<column>_<stat>`, the interval's method ("t" or "bootstrap") and why the point is noisy ("" if not).
STAT_SOURCES = ("output_tok_per_s", *PERCENTILE_COLUMNS)
STATS = ("mean", "median", "std", "cv", "ci_low", "ci_high")
CLOCK_SPREAD = 0.02  # SM clocks this far apart across a point's repeats explain its spread
DISAGREEMENT_PCT = 25.0  # a measurement this far from its prediction is flagged
BALANCED_WITHIN = 0.10  # a balanced production point gives up at most this much token throughput
BAND_WITHIN = 0.10  # an ISL/OSL value is in the best band when its best throughput is this close to the peak


@dataclass(frozen=True)
class Ranking:
    """What "best" means in every table of one analysis (top N, best by length, insights, recommendations, SLA):
    the column, its direction, how the report names it, and why it was chosen ("" when nothing needs saying)."""

    column: str
    ascending: bool
    name: str
    why: str = ""
    within: tuple[tuple[str, float], ...] = ()  # SLA bounds (column, most) a point must meet to rank; () all

    @property
    def bounds(self) -> dict[str, float]:
        return dict(self.within)

    @property
    def per_gpu(self) -> bool:
        return self.column == "output_tok_per_s_per_gpu"

    @property
    def rate_column(self) -> str:
        """Request rate on the same footing: per GPU when throughput is ranked per GPU."""
        return "request_per_s_per_gpu" if self.per_gpu else "request_per_s"


TOTAL = Ranking("output_tok_per_s", False, "output tokens/s")
PER_GPU = Ranking("output_tok_per_s_per_gpu", False, "output tokens/s per GPU")
ENERGY = Ranking("joules_per_token", True, "joules per output token")
TOK_PER_JOULE = Ranking("tok_per_joule", False, "output tokens per joule")
USD = Ranking("usd_per_mtok", True, "USD per million output tokens")


@dataclass(frozen=True)
class Utilisation:
    """GPU telemetry over the measured points."""

    peak_memory_gib: float
    mean_power_w: float
    peak_power_w: float
    energy_kj: float
    best_j_per_output_token: float | None
    gpu_name: str
    driver: str
    mean_sm_clock_mhz: float
    power_limit_w: float | None


@dataclass(frozen=True)
class RunFacts:
    """Where the numbers came from, for the provenance table."""

    start: str | None
    end: str | None
    gpu_hours: float  # measured points' benchmark time x GPUs per point
    command: list[str] | None  # one point's exact command


@dataclass(frozen=True)
class Analysis:
    results: pd.DataFrame  # one row per point of the current grid that has a record, grid order
    missing: int  # points of the grid with no record yet (an interrupted sweep)
    stale: int  # records of points no longer in the grid (the spec changed since)
    axes: list[str]  # extra axes the grid sweeps (group keys), in EXTRA_AXES order
    utilisation: Utilisation | None = None
    facts: RunFacts | None = None
    counts: dict[str, int] = field(default_factory=dict)  # points per source
    sla: pd.DataFrame | None = None  # the best point per ISL/OSL under the spec's `sla:` bounds
    accuracy: dict[Artifact, Verdict] | None = None  # the gate per artifact, where the spec has `accuracy:`
    ranking: Ranking = field(default_factory=lambda: TOTAL)  # what "best" means in every table
    runs: dict[str, list[float]] = field(default_factory=dict)  # point id -> output tok/s of each ok run (compare)


def to_frame(records: list[Record], axes: list[str], parallel: tuple[int, int] = (1, 1)) -> pd.DataFrame:
    """One row per record, its status as recorded; `parallel`: the spec's (tp, pp), where a record's axes do not
    say."""
    rows = []
    for r in records:
        row: dict[str, Any] = {a: r.axes.get(a) for a in axes}
        row.update({"isl": r.isl, "osl": r.osl, "requests": r.requests, "status": r.status.value, "cause": r.cause,
                    "borderline": r.borderline,
                    "source": r.source.value, "backend": r.backend, "total_tokens": r.requests * (r.isl + r.osl),
                    "point_id": r.point_id, "started_at": r.started_at, "duration_s": r.duration_s,
                    "predicted_wall_s": r.predicted_wall_s})
        metrics = r.metrics.model_dump() if r.metrics else {}
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        memory = r.memory.model_dump() if r.memory else {}
        row.update({c: memory.get(c) for c in MEMORY_COLUMNS if c not in axes})  # a swept limit: its axis column
        row.update(_derived(r, metrics))
        n_gpus = int(r.axes.get("tp", parallel[0])) * int(r.axes.get("pp", parallel[1]))
        output, rate = metrics.get("output_tok_per_s"), metrics.get("request_per_s")
        row["gpus"] = n_gpus
        row["output_tok_per_s_per_gpu"] = output / n_gpus if output else None
        row["request_per_s_per_gpu"] = rate / n_gpus if rate else None
        row["peak_memory_gib"] = r.telemetry.peak_memory_used_gib if r.telemetry else None  # measured only
        row.update({column: getattr(r.telemetry, name) if r.telemetry else None for column, name in TELEMETRY.items()})
        percentiles = r.metrics.percentiles if r.metrics else {}
        row.update({column: percentiles.get(key) for column, key in PERCENTILES.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*axes, *(c for c in COLUMNS if c not in axes)])


def _derived(r: Record, metrics: dict[str, Any]) -> dict[str, Any]:
    prediction = r.prediction
    output = metrics.get("output_tok_per_s")
    predicted = prediction.output_tok_per_s if prediction else None
    bound = metrics.get("roofline_output_tok_per_s") or (prediction.roofline_output_tok_per_s if prediction else None)
    per_user = metrics.get("per_user_tok_s")
    if per_user is None and metrics.get("avg_latency_s"):
        per_user = r.osl / metrics["avg_latency_s"]  # trtllm-bench's definition: OSL / request latency
    return {
        "ttft_ms": metrics.get("ttft_ms"),
        "tpot_ms": metrics.get("tpot_ms"),
        "per_user_tok_s": per_user,
        "pred_status": prediction.status.value if prediction else None,
        "pred_output_tok_per_s": predicted,
        "pred_error_pct": 100 * (predicted - output) / output if output and predicted else None,
        "roofline_output_tok_per_s": bound,
        "efficiency_pct": 100 * output / bound if output and bound else None,
        "energy_j": metrics.get("energy_j"),
        "joules_per_token": metrics.get("j_per_output_token"),
        "tok_per_joule": 1 / metrics["j_per_output_token"] if metrics.get("j_per_output_token") else None,
    }


def analyze(records: list[Record], point_ids: list[str], spec: SweepSpec,
            accuracy: Sequence[AccuracyRecord] = (), samples: Mapping[str, list[Record]] | None = None) -> Analysis:
    """`records`: the latest of each point (`RunStore.records`). `accuracy`: the run's trtllm-eval records; with
    the spec's `accuracy:` section they gate each row. `samples`: each point's ok records (`RunStore.samples`);
    a measured point whose latest record is ok and that has several is one row of their means (what it ranks by),
    with its statistics beside them (`with_stats`)."""
    order = {pid: i for i, pid in enumerate(point_ids)}
    latest = sorted((r for r in records if r.point_id in order), key=lambda r: order[r.point_id])
    samples = samples or {}
    repeated = {r.point_id: samples[r.point_id] for r in latest
                if r.status is Status.OK and r.source is Source.MEASURED and len(samples.get(r.point_id, [])) > 1}
    current = [mean_record(repeated[r.point_id]) if r.point_id in repeated else r for r in latest]
    every = [each for r in latest for each in repeated.get(r.point_id, [r])]  # GPU time and energy of every run
    axes = [a for a in EXTRA_AXES if any(a in r.axes for r in current)]
    df = with_cost(with_identity(to_frame(current, axes, (spec.tp, spec.pp)), current, spec), spec.cost)
    if repeated:
        df = with_stats(df, repeated, axes, spec)
    gate = None
    if spec.accuracy is not None and not df.empty:  # each row's artifact, from its identity columns
        row_artifacts = [artifact_of(r) for r in df[["precision", "kv_cache_dtype", "tp", "pp"]].to_dict("records")]
        gate = verdicts(accuracy, spec.accuracy, dict.fromkeys(row_artifacts))
        df["accuracy"] = [gate[a].gate.value for a in row_artifacts]
    counts = {str(k): int(v) for k, v in df["source"].value_counts().items()}
    ranking = choose_ranking(df, spec.rank_by, Bounds.of(spec.sla) if spec.sla else None)
    sla = best_under(eligible(df), Bounds.of(spec.sla), axes, ranking.column, ranking.ascending) \
        if spec.sla and not df.empty else None
    return Analysis(df, len(point_ids) - len(current), len(records) - len(current), axes,
                    utilisation(every), run_facts(every, spec), counts, sla, gate, ranking,
                    {r.point_id: [run.metrics.output_tok_per_s for run in repeated.get(r.point_id, [r]) if run.metrics]
                     for r in latest if r.status is Status.OK})


def mean_record(repeats: list[Record]) -> Record:
    """The latest of a point's repeats with each rate, latency and percentile the mean over all of them."""
    latest, metrics = repeats[-1], [r.metrics for r in repeats if r.metrics is not None]
    if latest.metrics is None:
        return latest
    means = {name: float(np.mean([getattr(m, name) for m in metrics])) for name, value in latest.metrics
             if isinstance(value, float) and all(isinstance(getattr(m, name), float) for m in metrics)}
    percentiles = {key: float(np.mean([m.percentiles[key] for m in metrics])) for key in latest.metrics.percentiles
                   if all(key in m.percentiles for m in metrics)}
    return latest.model_copy(update={"metrics": latest.metrics.model_copy(update={**means,
                                                                                  "percentiles": percentiles})})


def with_stats(df: pd.DataFrame, repeated: Mapping[str, list[Record]], axes: list[str], spec: SweepSpec
               ) -> pd.DataFrame:
    """`df` with the statistics of each point's repeats (STAT_SOURCES x STATS, `repeats`, `ci_method`, `noisy`);
    a point run once has 1 repeat and no statistics."""
    per_point: dict[str, dict[str, Any]] = {}
    for pid, runs in repeated.items():
        frame = to_frame(runs, axes, (spec.tp, spec.pp))
        row: dict[str, Any] = {"repeats": len(runs)}
        for column in STAT_SOURCES:
            values = frame[column].dropna()
            if len(values) > 1:
                summary = summarize(values.to_list())
                row.update(dict(zip((f"{column}_{stat}" for stat in STATS), (
                    summary.mean, summary.median, summary.std, summary.cv, summary.low, summary.high), strict=True)))
                row.setdefault("ci_method", summary.method)
        row["noisy"] = noisy(runs, row.get("output_tok_per_s_cv"), spec)
        per_point[pid] = row
    stats = pd.DataFrame([per_point.get(pid, {"repeats": 1 if status == Status.OK.value else None})
                          for pid, status in zip(df["point_id"], df["status"], strict=True)], index=df.index)
    present = [f"{c}_{s}" for c in STAT_SOURCES for s in STATS if f"{c}_{s}" in stats.columns]
    return pd.concat([df, stats.reindex(columns=["repeats", *present, "ci_method", "noisy"])], axis=1)


def noisy(runs: list[Record], cv: float | None, spec: SweepSpec) -> str:
    """Why a point's throughput varies more than NOISY_CV across its repeats, as far as telemetry and the spec
    show; "" when it does not."""
    if cv is None or not cv > NOISY_CV:
        return ""
    causes = []
    clocks = [r.telemetry.mean_sm_clock_mhz for r in runs if r.telemetry is not None]
    if clocks and max(clocks) > (1 + CLOCK_SPREAD) * min(clocks):
        causes.append(f"SM clock {min(clocks):,.0f}-{max(clocks):,.0f} MHz across repeats")
    concurrency = runs[-1].axes.get("concurrency", spec.runtime.concurrency)
    if isinstance(concurrency, int) and spec.runtime.warmup < concurrency:
        causes.append(f"warm-up of {spec.runtime.warmup} request(s) is shorter than concurrency {concurrency}")
    return f"CV {cv:.1%} above {NOISY_CV:.0%}: " + ("; ".join(causes) or "no cause visible in telemetry")


def with_identity(df: pd.DataFrame, records: list[Record], spec: SweepSpec) -> pd.DataFrame:
    """`df` (rows in `records` order) with IDENTITY_COLUMNS first: a swept axis as recorded, else the spec's
    value; the GPU as the spec names it (or the one telemetry saw for `gpu: auto`); the TensorRT-LLM release a
    measured point ran, or the one the spec pins."""
    scalars = spec.model_dump(mode="json")
    values: dict[str, list[Any]] = {"model": [spec.model.name] * len(df), "gpu": [_gpu(r, spec) for r in records],
                                    "trtllm_version": [r.detail.get("trtllm_version") or spec.trtllm.version
                                                       for r in records]}
    for column in ("precision", "kv_cache_dtype", "tp", "pp", "ep", "attention_dp"):
        values[column] = df[column].tolist() if column in df.columns else [scalars[column]] * len(df)
    # unset: what the run gets (trtllm-bench without --ep splits every expert over the TP ranks; no attention DP)
    values["ep"] = [1 if ep is None else ep for ep in values["ep"]]
    values["attention_dp"] = [bool(on) for on in values["attention_dp"]]
    if "kv_cache_dtype" not in df.columns and spec.kv_cache_dtype is None:  # unset: each row's precision's default
        values["kv_cache_dtype"] = [default_kv(Precision(p)).value for p in values["precision"]]
    rest = [c for c in df.columns if c not in IDENTITY_COLUMNS]
    return pd.concat([pd.DataFrame({c: values[c] for c in IDENTITY_COLUMNS}, index=df.index), df[rest]], axis=1)


def _gpu(r: Record, spec: SweepSpec) -> str:
    if spec.gpu != "auto" or r.telemetry is None:
        return spec.gpu
    try:
        return resolve_gpu(r.telemetry.gpu_name).id
    except SpecError:
        return r.telemetry.gpu_name


def eligible(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that may be called best: all but those of an artifact that failed the accuracy gate."""
    return df[df["accuracy"] != Gate.FAIL.value]


def excluded(df: pd.DataFrame, by: Ranking) -> pd.DataFrame:
    """Successful points of an artifact that failed the accuracy gate, best first: listed, never ranked."""
    ok = df[(df["status"] == Status.OK.value) & (df["accuracy"] == Gate.FAIL.value)]
    return ok.sort_values(by.column, ascending=by.ascending, kind="stable", na_position="last")


def groups(a: Analysis) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(axis values, rows) per combination of the extra axes, in grid order; one group without axes."""
    if not a.axes:
        return [({}, a.results)]
    out = []
    for key, frame in a.results.groupby(a.axes, sort=False):
        values = key if isinstance(key, tuple) else (key,)
        out.append((dict(zip(a.axes, values, strict=True)), frame))
    return out


# rank_by -> the ranking it asks for; the older names rank as the newer ones do.
RANKINGS = {RankBy.PER_GPU: PER_GPU, RankBy.OUTPUT_TOK_PER_S_PER_GPU: PER_GPU, RankBy.TOTAL: TOTAL,
            RankBy.OUTPUT_TOK_PER_S: TOTAL, RankBy.ENERGY: ENERGY, RankBy.TOK_PER_JOULE: TOK_PER_JOULE,
            RankBy.USD_PER_MTOK: USD}


def choose_ranking(df: pd.DataFrame, rank_by: RankBy = RankBy.AUTO, bounds: Bounds | None = None) -> Ranking:
    """`choose_ranking_of_all`, and for a rank_by `..._under_sla` only over the points that meet `bounds`."""
    if not rank_by.under_sla or bounds is None:
        return choose_ranking_of_all(df, rank_by)
    within = tuple(bounds.given().items())
    by = choose_ranking_of_all(df[[not violations(r, dict(within)) for _, r in df.iterrows()]], rank_by.unbounded)
    return replace(by, name=f"{by.name} under the SLA", within=within,
                   why=f"rank_by: {rank_by}: only the points within {bounds.describe()} rank; "
                       f"{by.why or f'by {by.name}'}")


def choose_ranking_of_all(df: pd.DataFrame, rank_by: RankBy = RankBy.AUTO) -> Ranking:
    """Per GPU where the points that may rank use different numbers of GPUs (a TP8 point must not win by
    having 8), else the total; `rank_by` overrides. Energy needs a measurement, cost a price for the points'
    GPU: without one the report says so and ranks as `auto` would."""
    ok = _rankable(df)
    counts = sorted({int(n) for n in ok["gpus"].dropna()}) if "gpus" in ok else []
    mixed = len(counts) > 1
    spread = f"the points use {counts[0]} to {counts[-1]} GPUs (TP x PP)" if mixed else ""
    auto = replace(PER_GPU, why=spread) if mixed else TOTAL
    asked = RANKINGS.get(rank_by)
    if asked is None:
        return auto
    if asked.column in (ENERGY.column, TOK_PER_JOULE.column, USD.column) and not ok[asked.column].notna().any():
        missing = ("a price for the points' GPU (cost.per_gpu)" if asked is USD else
                   "an energy measurement (telemetry of a measured run)")
        return replace(auto, why=f"rank_by: {rank_by}, but no point has {missing}; ranked by {auto.name}")
    if asked is TOTAL and mixed:
        return replace(TOTAL, why=f"rank_by: {rank_by}, although {spread}")
    return replace(asked, why=f"rank_by: {rank_by}")


def _rankable(df: pd.DataFrame) -> pd.DataFrame:
    ok = eligible(df)
    return ok[ok["status"] == Status.OK.value]


def ranked(df: pd.DataFrame, by: Ranking) -> pd.DataFrame:
    """Successful points that passed (or had no) accuracy gate, best first by `by` (points without its value
    last); ties keep grid order."""
    ok = _rankable(df)
    if by.within:
        ok = ok[[not violations(r, by.bounds) for _, r in ok.iterrows()]]
    return ok.sort_values(by.column, ascending=by.ascending, kind="stable", na_position="last")


def top(df: pd.DataFrame, by: Ranking, n: int = 10) -> pd.DataFrame:
    return ranked(df, by).head(n)


def tied(rows: pd.DataFrame, by: Ranking) -> pd.Series:
    """For ranked `rows` (leader first): whether each other row's throughput interval (per GPU where the ranking
    is) overlaps the leader's, so the two cannot be told apart; False without intervals on both (one repeat) or
    for a ranking by energy."""
    if rows.empty or "output_tok_per_s_ci_low" not in rows or by.column not in (TOTAL.column, PER_GPU.column):
        return pd.Series(False, index=rows.index)
    scale = rows["gpus"] if by.per_gpu else 1
    low, high = rows["output_tok_per_s_ci_low"] / scale, rows["output_tok_per_s_ci_high"] / scale
    lead = (low.iloc[0], high.iloc[0])
    if pd.isna(lead[0]):
        return pd.Series(False, index=rows.index)
    return pd.Series([i > 0 and pd.notna(lo) and overlaps(lead, (lo, hi))
                      for i, (lo, hi) in enumerate(zip(low, high, strict=True))], index=rows.index)


def noisy_points(df: pd.DataFrame) -> pd.DataFrame:
    """Points whose repeats vary more than NOISY_CV, with why (`noisy`)."""
    return df[df["noisy"].fillna("") != ""] if "noisy" in df else df.iloc[0:0]


def best_by(df: pd.DataFrame, key: str, by: Ranking) -> pd.DataFrame:
    """The best successful point for each value of `key` ("isl" or "osl"), in ascending key order;
    values where every point failed are absent (the failure table lists them)."""
    return ranked(df, by).groupby(key, sort=True).head(1).sort_values(key)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] != Status.OK.value]


def tally(a: Analysis) -> Tally:
    """The run's points by how they ended; the grid's points without a record are not run."""
    df = a.results
    return Tally.of(zip(df["status"], df["borderline"].notna(), strict=True), a.missing)


def borderline(df: pd.DataFrame) -> pd.DataFrame:
    """Ok points within the model's error of a limit (a simulated run time near the timeout)."""
    return df[(df["status"] == Status.OK.value) & df["borderline"].notna()]


def disagreements(df: pd.DataFrame) -> pd.DataFrame:
    """Measured points whose prediction is off by more than DISAGREEMENT_PCT."""
    measured = df[(df["source"] == Source.MEASURED.value) & df["pred_error_pct"].notna()]
    return measured[measured["pred_error_pct"].abs() > DISAGREEMENT_PCT]


def predicted_vs_measured(df: pd.DataFrame) -> pd.DataFrame:
    """Measured points that have a prediction beside them, with a `flagged` column."""
    measured = df[(df["source"] == Source.MEASURED.value) & df["pred_status"].notna()].copy()
    measured["flagged"] = measured["point_id"].isin(set(disagreements(df)["point_id"]))
    return measured


def near_best(rows: pd.DataFrame, by: Ranking, within: float) -> pd.DataFrame:
    """The rows whose value is within `within` of the best one's (above it, for a lower-is-better ranking)."""
    values = rows[by.column]
    if by.ascending:
        return rows[values <= (1 + within) * values.min()]
    return rows[values >= (1 - within) * values.max()]


def band(best: pd.DataFrame, key: str, by: Ranking, within: float = BAND_WITHIN) -> list[int]:
    """Values of `key` whose best value is within `within` of the overall best."""
    if best.empty:
        return []
    return sorted(int(v) for v in near_best(best, by, within)[key])


@dataclass(frozen=True)
class Insights:
    """The study's "Key Performance Insights", as facts."""

    isl_band: list[int]
    osl_band: list[int]
    best: pd.Series
    worst: pd.Series
    best_over_worst: float
    drop_pct: float
    fastest: pd.Series  # highest request rate


def insights(df: pd.DataFrame, by: Ranking) -> Insights | None:
    ok = ranked(df, by).dropna(subset=[by.column])
    if ok.empty:
        return None
    best, worst = ok.iloc[0], ok.iloc[-1]
    ratio = best[by.column] / worst[by.column]
    if by.ascending:  # fewer joules per token is better: the ratio and drop say how much worse the worst is
        ratio = 1 / ratio
    return Insights(band(best_by(df, "isl", by), "isl", by), band(best_by(df, "osl", by), "osl", by), best, worst,
                    ratio, 100 * (1 - 1 / ratio), _row_of_max(ok, by.rate_column))


def _row_of_max(df: pd.DataFrame, column: str) -> pd.Series:
    """The first row with the largest value of `column`."""
    return df.iloc[int(df[column].to_numpy().argmax())]


GOALS = {ENERGY.column: "Least energy", TOK_PER_JOULE.column: "Least energy", USD.column: "Lowest cost"}


def recommendations(df: pd.DataFrame, by: Ranking) -> list[tuple[str, str, pd.Series]]:
    """(goal, the rule that picked it, the row) for the best by the ranking, maximum request rate, and a
    balanced production point; per GPU where the ranking is."""
    ok = ranked(df, by).dropna(subset=[by.column])
    if ok.empty:
        return []
    rate = "requests/s per GPU" if by.per_gpu else "requests/s"
    goal = GOALS.get(by.column, "Maximum throughput")
    return [
        (goal, f"{'lowest' if by.ascending else 'highest'} {by.name}", ok.iloc[0]),
        ("Maximum request rate", f"highest {rate}", _row_of_max(ok, by.rate_column)),
        ("Balanced production", f"highest {rate} among points within {BALANCED_WITHIN:.0%} of the best "
                                f"{by.name}", _row_of_max(near_best(ok, by, BALANCED_WITHIN), by.rate_column)),
    ]


def efficiency(df: pd.DataFrame, by: Ranking) -> pd.DataFrame:
    return ranked(df, by).dropna(subset=["efficiency_pct"])


def memory_ranges(df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(min, max) over the points that planned or logged a KV pool, per memory column with values."""
    planned = df.dropna(subset=["kv_pool_gib"])
    planned = planned[planned["kv_pool_gib"] > 0]
    out = {}
    for col in MEMORY_COLUMNS:
        values = planned[col].dropna()
        if not values.empty:  # a measured run reports only what trtllm-bench logs
            out[col] = (float(values.min()), float(values.max()))
    return out


def utilisation(records: list[Record]) -> Utilisation | None:
    telemetry = [r.telemetry for r in records if r.telemetry is not None]
    if not telemetry:
        return None
    per_token = [r.metrics.j_per_output_token for r in records if r.metrics and r.metrics.j_per_output_token]
    first = telemetry[0]
    return Utilisation(
        peak_memory_gib=max(t.peak_memory_used_gib for t in telemetry),
        mean_power_w=sum(t.mean_power_w for t in telemetry) / len(telemetry),
        peak_power_w=max(t.peak_power_w for t in telemetry),
        energy_kj=sum(t.energy_j for t in telemetry) / 1000,
        best_j_per_output_token=min(per_token) if per_token else None,
        gpu_name=first.gpu_name, driver=first.driver, mean_sm_clock_mhz=first.mean_sm_clock_mhz,
        power_limit_w=first.power_limit_w,
    )


def run_facts(records: list[Record], spec: SweepSpec) -> RunFacts:
    """Start and end, GPU-hours of the measured points (TP x PP GPUs each), one point's command."""
    ends = [datetime.fromisoformat(r.started_at) + timedelta(seconds=r.duration_s) for r in records]
    gpu_seconds = sum(r.duration_s * int(r.axes.get("tp", spec.tp)) * int(r.axes.get("pp", spec.pp))
                      for r in records if r.source is Source.MEASURED)
    command = next((r.command for r in records if r.command), None)
    return RunFacts(min((r.started_at for r in records), default=None),
                    max(ends).isoformat(timespec="seconds") if ends else None, gpu_seconds / 3600, command)
