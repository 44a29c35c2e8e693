"""The report's account of a guided sweep: what it spent against the full grid, why it stopped, how likely an
unmeasured point beats the winner, and every grid point with its measurement or its refitted prediction and why
it was not measured. It renders the plan the sweep recorded in run.json (`guided`), computing nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from trtbench.guided.strategy import Plan, State

STOPS = {"settled": "the top {k} is settled", "budget": "the budget of {budget} GPU-hours is spent",
         "": "it has not finished (resume it with the same command)"}


def summary(plan: Plan) -> str:
    """One line for the sweep's output and the report: points and GPU-hours used, why it stopped, the risk."""
    measured = sum(e.state in (State.MEASURED, State.FAILED) for e in plan.entries)
    share = plan.used_gpu_s / plan.full_gpu_s if plan.full_gpu_s else 0.0
    stop = STOPS[plan.stopped].format(k=plan.top_k, budget=f"{(plan.budget_gpu_s or 0) / 3600:,.2f}")
    return (f"guided: ran {measured} of {len(plan.entries)} points, {plan.used_gpu_s / 3600:,.2f} GPU-hours of the "
            f"full grid's predicted {plan.full_gpu_s / 3600:,.2f} ({share:.0%}); stopped: {stop}; probability that "
            f"an unmeasured point beats the winner: {_chance(plan.p_beats_winner)}")


def recorded(data: Any) -> Plan | str:
    """The plan run.json holds, or why it cannot be read."""
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        return f"run.json holds a guided plan this trtbench cannot read ({exc.error_count()} error(s)); rerun the sweep"


def guided_status(data: Any) -> str:
    """`summary` of a plan as run.json holds it, and how many points each reason skipped."""
    plan = recorded(data)
    if isinstance(plan, str):
        return plan
    skipped = Counter(str(e.reason) for e in plan.entries if e.state is State.PREDICTED)
    reasons = ", ".join(f"{reason} {count}" for reason, count in skipped.most_common())
    return f"{summary(plan)}; not measured: {reasons or 'none'}"


def guided_section(meta: Mapping[str, Any]) -> str | None:
    """The section, or None for a sweep that was not guided."""
    from trtbench.report import fmt_rate, md_table  # the report imports this module

    if "guided" not in meta:
        return None
    plan = recorded(meta["guided"])
    if isinstance(plan, str):
        return plan
    rate = "output tokens/s per GPU" if plan.per_gpu else "output tokens/s"
    fitted = ", ".join(f"{regime} x{factor:.3f}" for regime, factor in plan.correction.items())
    head = (f"{summary(plan)[0].upper()}{summary(plan)[1:]}. Measured values are means of the point's ok runs; "
            f"every other value is **predicted**: the simulator's prediction times this run's refitted correction "
            f"({fitted}; residual scatter {plan.scatter_pct:.1f}%), with its {plan.confidence:.0%} interval. A point "
            f"is dominated when it enters the measured top {plan.top_k} with a probability under "
            f"{1 - plan.confidence:.0%}. Ranked by {rate}.")
    order = sorted(plan.entries, key=lambda e: (e.state is State.FAILED, -(e.value or 0.0)))
    rows = [(e.label, _state(e.state), fmt_rate(e.value) if e.value is not None else "-",
             f"{fmt_rate(e.low)} - {fmt_rate(e.high)}" if e.low is not None and e.high is not None else "-",
             fmt_rate(e.simulated) if e.simulated is not None else "-",
             _chance(e.p_top) if e.p_top is not None else "-",
             f"{e.reason}: {e.why}" if e.reason and e.why else e.reason or e.why or "-")
            for e in order]
    table = md_table(("Point", "State", rate.capitalize(), "Interval", "Simulator (uncorrected)",
                      f"P(top {plan.top_k})", "Why not measured / failure"), rows)
    return f"{head}\n\n{table}"


def _state(state: State) -> str:
    return {State.MEASURED: "measured", State.FAILED: "failed", State.PREDICTED: "predicted (refitted)",
            State.NEXT: "next batch (not yet run)"}[state]


def _chance(p: float) -> str:
    return "< 0.1%" if p < 0.001 else f"{p:.1%}"
