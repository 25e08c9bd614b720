"""The per-stage tables: probabilities, time in stage and the funnel; and the cycle time.

Each table has one row per stage, in the order of the process (a stage the process does not
know comes last); the cycle-time section compares the measured cycle with the sum of the
per-stage averages, the shortcut it explains away.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stagegate.process import Process
from stagegate.report._format import gap
from stagegate.report._results import records

__all__ = [
    "PROBABILITY_KEYS",
    "cycle_time_section",
    "funnel_rows",
    "ordered",
    "probability_rows",
    "time_in_stage_rows",
]

PROBABILITY_KEYS = frozenset({"configured", "empirical", "markov", "smoothed", "dwell"})
"""Estimators with their own probability column (``dwell`` depends on the time in stage and
is not one number per stage); any newer estimator of ``ESTIMATORS`` gets a column by name."""


def ordered(rows: list[Any], process: Process) -> list[Any]:
    """``rows`` (records with a ``stage``) in the order of the stages of ``process``."""
    order = {s.id: i for i, s in enumerate(process.stages)}
    return sorted(rows, key=lambda row: order.get(row.stage, len(order)))


def probability_rows(an: Any, probabilities: list[Any], process: Process) -> list[dict[str, Any]]:
    """The probability table: every estimator's probability of winning from each stage."""
    return [
        {
            "stage": p.stage,
            "configured": p.configured,
            "empirical": p.empirical,
            "low": p.empirical_low,
            "high": p.empirical_high,
            "n": p.closed,
            "markov": p.markov,
            "smoothed": p.smoothed,
            **{
                e: getattr(p, e)
                for e in an.ESTIMATORS
                if e not in PROBABILITY_KEYS and hasattr(p, e)
            },
        }
        for p in ordered(probabilities, process)
    ]


def time_in_stage_rows(an: Any, visits: Any, process: Process, as_of: datetime) -> list[Any]:
    """The time-in-stage table: median dwell by outcome, and how lost deals linger."""
    rows: dict[str, dict[str, Any]] = {}
    for row in records(an.time_in_stage(visits, process, as_of=as_of)):
        entry = rows.setdefault(
            row.stage,
            {
                "stage": row.stage,
                "won_median_days": None,
                "lost_median_days": None,
                "open_median_days": None,
                "lost_to_won_median_ratio": None,
                "lost_to_won_mean_ratio": None,
                "won_n": 0,
                "lost_n": 0,
                "open_n": 0,
                "km_median_days": None,
                "won_deal_clock_median_days": None,
                "lost_deal_clock_median_days": None,
                "open_share": None,
            },
        )
        if row.outcome in ("won", "lost", "open"):
            entry[f"{row.outcome}_median_days"] = row.median_days
            entry[f"{row.outcome}_n"] = row.visits
        if row.outcome in ("won", "lost"):
            entry[f"{row.outcome}_deal_clock_median_days"] = row.deal_clock_median_days
        if row.open_share is not None:
            entry["open_share"] = row.open_share
        if row.outcome == "all":
            entry["km_median_days"] = row.km_median_days
        if row.lost_won_ratio is not None:
            entry["lost_to_won_mean_ratio"] = row.lost_won_ratio
    for entry in rows.values():
        won, lost = entry["won_median_days"], entry["lost_median_days"]
        if won and lost is not None:
            entry["lost_to_won_median_ratio"] = lost / won
    order = {s.id: i for i, s in enumerate(process.stages)}
    return sorted(rows.values(), key=lambda r: order.get(r["stage"], len(order)))


def funnel_rows(rows: list[Any]) -> list[dict[str, Any]]:
    """The funnel table from the funnel's stages (``rows``, in process order)."""
    return [
        {
            "stage": f.stage,
            "reached": f.reached,
            "reach_rate": f.reached_rate,
            "reached_in_order": f.reached_in_order,
            # the strict conversion into this stage: the previous row's conversion onwards
            "conversion_from_previous": rows[i - 1].conversion_in_order if i else None,
            "lost_here": f.lost_here,
        }
        for i, f in enumerate(rows)
    ]


def cycle_time_section(cycles: Any) -> dict[str, Any]:
    """The cycle time of won and lost deals, and why the sum of stage averages differs."""
    by = {s.outcome: s for s in records(cycles.summary)}

    def part(outcome: str) -> dict[str, Any]:
        summary = by.get(outcome)
        if summary is None:
            return {"n": 0, "mean_days": None, "median_days": None}
        return {
            "n": summary.deals,
            "mean_days": summary.mean_days,
            "median_days": summary.median_days,
        }

    closed = by.get("closed")
    stage_sum = None if closed is None else closed.stage_sum_days
    measured = None if closed is None else closed.mean_days
    if stage_sum is None or measured is None:
        explanation = "No closed deals yet: the cycle time is measured once deals close."
    else:
        explanation = (
            f"The sum of the per-stage average durations is {stage_sum:.1f} days, the measured "
            f"average cycle {measured:.1f} days ({gap(stage_sum - measured)}). The shortcut adds "
            "a stage's average even for deals that skipped the stage or were lost before it, and "
            "counts a re-entered stage once: weighting each stage by its visits per deal gives "
            "back the measured cycle exactly."
        )
    return {
        "won": part("won"),
        "lost": part("lost"),
        "sum_of_stage_means_days": stage_sum,
        "measured_mean_days": measured,
        "explanation": explanation,
    }
