"""The forecast section: the periods of the Monte Carlo forecast, and how it was made.

The report caps its draws (:data:`MAX_DRAWS`, never under :data:`MIN_SIMULATIONS` runs) so
that a large pipeline costs no more than a small one, and prints the rule by which an overdue
deal's close date moves (:data:`OVERDUE_RULE`) beside the method.

>>> simulation_runs(1000, open_deals=500), simulation_runs(1000, open_deals=50_000)
(1000, 200)
"""

from __future__ import annotations

from typing import Any

from stagegate.report._results import records

__all__ = [
    "MAX_DRAWS",
    "MIN_SIMULATIONS",
    "OVERDUE_RULE",
    "forecast_method",
    "forecast_rows",
    "simulation_runs",
]

OVERDUE_RULE = (
    "An open deal has not closed before as_of, so its close date moves by a slip drawn from "
    "history (won deals: actual close minus the expected close in force when they entered "
    "their last open stage) among the slips that land on or after as_of: an overdue date is "
    "spread over the periods in which deals that late really closed, not piled onto the "
    "as_of period. The weighted column is not simulated: it puts each deal in the period of "
    "its expected close date (an overdue one in the as_of period)."
)

MAX_DRAWS = 2_000_000
"""Most Monte Carlo draws (runs x open deals) the report's forecast makes."""
MIN_SIMULATIONS = 200
"""Fewest Monte Carlo runs of the report's forecast."""


def simulation_runs(simulations: int, *, open_deals: int) -> int:
    """The forecast's runs: at most ``simulations``, fewer (never under 200) for large pipelines.

    Runs x open deals stays under :data:`MAX_DRAWS` wherever :data:`MIN_SIMULATIONS` allows.
    """
    return min(simulations, max(MIN_SIMULATIONS, MAX_DRAWS // max(1, open_deals)))


def forecast_rows(fc: Any) -> list[dict[str, Any]]:
    """One row per period of the forecast ``fc``, without the empty periods at its end."""
    periods = sorted(records(fc.periods), key=lambda p: p.period)
    while periods and periods[-1].deals == 0 and periods[-1].p90 == 0:
        periods.pop()  # nothing is expected to close there
    return [
        {
            "period": p.period,
            "weighted": p.weighted,
            "simulated_mean": p.simulated_mean,
            "p10": p.p10,
            "p50": p.p50,
            "p90": p.p90,
            "n": p.deals,
            "overdue": p.overdue,
            "outside_range": not p.p10 <= p.weighted <= p.p90,
        }
        for p in periods
    ]


def forecast_method(fc: Any, runs: int, seed: int) -> dict[str, Any]:
    """How the forecast ``fc`` was made: ``runs`` simulations from ``seed``, and its rules."""
    return {
        "estimator": fc.estimator,
        "simulations": runs,
        "seed": seed,
        "slip_samples": fc.slip_samples,
        "overdue_deals": fc.overdue,
        "beyond_history": fc.beyond_history,
        "unscheduled": fc.unscheduled,
        "overdue_rule": OVERDUE_RULE,
    }
