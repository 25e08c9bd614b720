"""A realistic, deterministic report document for tests, docs and a first look.

The numbers describe a fictional mid-market software vendor on the built-in ``b2b`` process:
412 opportunities over eighteen months, seen on 30 June 2025. They are consistent with one
another (the funnel narrows, lost deals linger longer than won ones) but were written by hand,
not computed.

>>> document = sample_document()
>>> document["summary"]["opportunities"], len(document["process"]["stages"])
(412, 8)
>>> sample_document() == document  # a fresh, equal copy on every call
True
"""

from __future__ import annotations

from typing import Any

from stagegate.report._forecast import OVERDUE_RULE

__all__ = ["sample_document"]

_STAGES = (
    ("lead_generation", "Lead generation", "open", 0.05),
    ("qualification", "Qualification", "open", 0.10),
    ("needs_analysis", "Needs analysis", "open", 0.20),
    ("solution_proposal", "Solution proposal", "open", 0.40),
    ("negotiation", "Negotiation", "open", 0.60),
    ("contract", "Contract", "open", 0.80),
    ("won", "Won", "won", 1.0),
    ("lost", "Lost", "lost", 0.0),
)
_KOREAN = ("리드 발굴", "리드 검증", "니즈 분석", "솔루션 제안", "협상", "계약", "수주", "실주")
"""The Korean labels of the b2b template, for the sample page in Korean."""

# stage, configured, empirical, low, high, n, markov, smoothed
_PROBABILITIES = (
    ("lead_generation", 0.05, 0.11, 0.08, 0.15, 352, 0.10, 0.10),
    ("qualification", 0.10, 0.17, 0.13, 0.22, 268, 0.16, 0.16),
    ("needs_analysis", 0.20, 0.26, 0.20, 0.33, 183, 0.24, 0.25),
    ("solution_proposal", 0.40, 0.38, 0.30, 0.47, 121, 0.35, 0.37),
    ("negotiation", 0.60, 0.61, 0.50, 0.71, 74, 0.55, 0.59),
    ("contract", 0.80, 0.86, 0.72, 0.94, 43, 0.83, 0.84),
)

# stage, won median, lost median, open median, won n, lost n, open n, KM median
_TIME_IN_STAGE = (
    ("lead_generation", 6.0, 11.5, 9.0, 39, 214, 31, 8.5),
    ("qualification", 9.5, 19.0, 14.0, 39, 152, 22, 13.0),
    ("needs_analysis", 14.0, 31.5, 21.0, 39, 98, 19, 19.5),
    ("solution_proposal", 18.5, 44.0, 26.0, 39, 61, 16, 27.0),
    ("negotiation", 12.0, 37.5, 17.5, 39, 29, 11, 18.0),
    ("contract", 8.0, 22.0, 9.5, 37, 6, 7, 9.0),
)

# stage, reached, lost here
_FUNNEL = (
    ("lead_generation", 412, 108),
    ("qualification", 304, 76),
    ("needs_analysis", 228, 63),
    ("solution_proposal", 165, 52),
    ("negotiation", 113, 29),
    ("contract", 84, 6),
    ("won", 52, 0),
)

_STALLED = (
    ("OPP-2024-0318", "solution_proposal", 71.0, 30.0, "stage max_days", 3.84, 184000.0),
    ("OPP-2025-0042", "negotiation", 48.5, 21.0, "stage max_days", 4.04, 92500.0),
    ("OPP-2025-0107", "needs_analysis", 44.0, 30.0, "stage max_days", 3.14, 27800.0),
    ("OPP-2025-0139", "qualification", 33.0, 21.0, "stage max_days", 3.47, 15000.0),
    ("OPP-2025-0151", "contract", 21.5, 14.0, "stage max_days", 2.69, 240000.0),
    ("OPP-2025-0163", "lead_generation", 19.0, 12.0, "2\u00d7 won median", 3.17, None),
)

_SLIPPING = (
    ("OPP-2024-0318", 4, 133.0, "2025-02-28", "2025-07-11", "solution_proposal", 184000.0),
    ("OPP-2024-0377", 3, 92.0, "2025-03-31", "2025-07-01", "negotiation", 61000.0),
    ("OPP-2025-0042", 3, 61.0, "2025-05-15", "2025-07-15", "negotiation", 92500.0),
    ("OPP-2025-0151", 2, 30.0, "2025-06-30", "2025-07-30", "contract", 240000.0),
    ("OPP-2025-0088", 1, 14.0, "2025-06-20", "2025-07-04", "contract", 38500.0),
)

# period, weighted, simulated mean, p10, p50, p90, deals, overdue
_FORECAST = (
    ("2025-07", 412000.0, 301000.0, 205000.0, 398000.0, 640000.0, 31, 9),
    ("2025-08", 356000.0, 372000.0, 120000.0, 331000.0, 590000.0, 27, 0),
    ("2025-09", 298000.0, 311000.0, 60000.0, 262000.0, 540000.0, 24, 0),
    ("2025-Q4", 521000.0, 603000.0, 150000.0, 470000.0, 910000.0, 41, 0),
)


def _reliability(estimator: str, bias: float) -> list[dict[str, Any]]:
    """Return ten reliability bins for an estimator whose predictions run ``bias`` high."""
    rows = []
    counts = (61, 48, 37, 29, 22, 18, 14, 11, 8, 6)
    for index, n in enumerate(counts):
        low = index / 10
        predicted = round(low + 0.05, 3)
        observed = round(min(1.0, max(0.0, predicted - bias * (0.5 + index / 20))), 3)
        rows.append(
            {
                "estimator": estimator,
                "bin_low": low,
                "bin_high": round(low + 0.1, 1),
                "predicted": predicted,
                "observed": observed,
                "n": n,
            }
        )
    return rows


def sample_document() -> dict[str, Any]:
    """Return a realistic, deterministic report document (a new copy on every call).

    Every section is filled, so the sample shows every chart and table of the report.
    """
    funnel = []
    previous = None
    for stage, reached, lost_here in _FUNNEL:
        funnel.append(
            {
                "stage": stage,
                "reached": reached,
                "reach_rate": round(reached / _FUNNEL[0][1], 4),
                "reached_in_order": reached,
                "conversion_from_previous": None
                if previous is None
                else round(reached / previous, 4),
                "lost_here": lost_here,
            }
        )
        previous = reached
    return {
        "title": "Pipeline health — Northwind Software EMEA",
        "generated_at": "2025-07-01T06:00:00+00:00",
        "as_of": "2025-06-30T23:59:59+00:00",
        "currency": "EUR",
        "process": {
            "name": "b2b",
            "version": "1",
            "stages": [
                {
                    "id": i,
                    "label": label,
                    "labels": {"en": label, "ko": ko},
                    "kind": kind,
                    "probability": p,
                }
                for (i, label, kind, p), ko in zip(_STAGES, _KOREAN, strict=True)
            ],
            "configured_known": True,
        },
        "summary": {
            "opportunities": 412,
            "open": 106,
            "won": 52,
            "lost": 254,
            "win_rate": round(52 / 306, 4),
            "open_amount": 4870000.0,
            "weighted_amount": 1587000.0,
            "weighted_estimator": "markov",
            "median_cycle_days": 74.5,
        },
        "estimator": {
            "name": "markov",
            "chosen_by": "backtest",
            "reason": (
                "markov is the best-calibrated estimator in the backtest (lowest Brier score, "
                "0.128 on 214 deals open at the cut-off and closed since)."
            ),
        },
        "probabilities": [
            {
                "stage": stage,
                "configured": configured,
                "empirical": empirical,
                "low": low,
                "high": high,
                "n": n,
                "markov": markov,
                "smoothed": smoothed,
            }
            for stage, configured, empirical, low, high, n, markov, smoothed in _PROBABILITIES
        ],
        "backtest": {
            "cutoff": "2025-01-01T00:00:00+00:00",
            "best": "markov",
            "warning": None,
            "scored": 214,
            "scored_won": 41,
            "scored_lost": 173,
            "excluded": [],
            "scores": [
                {"estimator": "configured", "brier": 0.162, "log_loss": 0.503, "n": 214},
                {"estimator": "empirical", "brier": 0.141, "log_loss": 0.452, "n": 214},
                {"estimator": "markov", "brier": 0.128, "log_loss": 0.417, "n": 214},
                {"estimator": "smoothed", "brier": 0.131, "log_loss": 0.423, "n": 214},
                {"estimator": "dwell", "brier": 0.133, "log_loss": 0.431, "n": 214},
            ],
            "reliability": _reliability("configured", 0.08)
            + _reliability("empirical", 0.05)
            + _reliability("markov", 0.02)
            + _reliability("smoothed", 0.03)
            + _reliability("dwell", -0.02),
        },
        "time_in_stage": [
            {
                "stage": stage,
                "won_median_days": won,
                "lost_median_days": lost,
                "open_median_days": open_,
                "lost_to_won_median_ratio": round(lost / won, 2),
                "lost_to_won_mean_ratio": round(lost / won * 1.12, 2),
                "won_n": won_n,
                "lost_n": lost_n,
                "open_n": open_n,
                "km_median_days": km,
            }
            for stage, won, lost, open_, won_n, lost_n, open_n, km in _TIME_IN_STAGE
        ],
        "cycle_time": {
            "won": {"n": 52, "mean_days": 81.2, "median_days": 74.5},
            "lost": {"n": 254, "mean_days": 63.9, "median_days": 41.0},
            "sum_of_stage_means_days": 96.4,
            "measured_mean_days": 81.2,
            "explanation": (
                "The sum of the per-stage means (96.4 d) exceeds the measured mean cycle of won "
                "deals (81.2 d): stage means mix won, lost and still-open deals, and a deal that "
                "skips or repeats a stage does not spend one visit in each. Read the measured "
                "cycle as the answer and the stage means as where the time goes."
            ),
        },
        "funnel": funnel,
        "stalled_count": {"total": len(_STALLED), "shown": len(_STALLED), "capped": False},
        "stalled": [
            {
                "opportunity_id": opp,
                "stage": stage,
                "days_in_stage": days_in,
                "limit_days": limit,
                "limit_source": source,
                "times_won_median": times,
                "amount": amount,
            }
            for opp, stage, days_in, limit, source, times, amount in _STALLED
        ],
        "slipping_count": {"total": 9, "shown": len(_SLIPPING), "capped": True},
        "slipping": [
            {
                "opportunity_id": opp,
                "pushes": pushes,
                "days_pushed": pushed,
                "first_close_date": first,
                "close_date": close,
                "stage": stage,
                "amount": amount,
            }
            for opp, pushes, pushed, first, close, stage, amount in _SLIPPING
        ],
        "slip_summary": {
            "slip_rate": 0.37,
            "win_rate_by_pushes": [
                {"pushes": 0, "n": 193, "win_rate": 0.21},
                {"pushes": 1, "n": 71, "win_rate": 0.15},
                {"pushes": 2, "n": 29, "win_rate": 0.10},
                {"pushes": 3, "n": 13, "win_rate": 0.08},
            ],
        },
        "forecast": [
            {
                "period": period,
                "weighted": w,
                "simulated_mean": mean,
                "p10": p10,
                "p50": p50,
                "p90": p90,
                "n": n,
                "overdue": overdue,
                "outside_range": not p10 <= w <= p90,
            }
            for period, w, mean, p10, p50, p90, n, overdue in _FORECAST
        ],
        "forecast_method": {
            "estimator": "markov",
            "simulations": 1000,
            "seed": 0,
            "slip_samples": 52,
            "overdue_deals": 9,
            "beyond_history": 0,
            "unscheduled": 17,
            "overdue_rule": OVERDUE_RULE,
        },
        "data_quality": [
            {
                "code": "missing_amount",
                "severity": "warning",
                "count": 17,
                "message": "Open opportunities without an amount count as zero in every total.",
                "source": "log",
            },
            {
                "code": "reused_id",
                "severity": "warning",
                "count": 2,
                "message": "An opportunity id was reused for a new deal: the rows were split.",
                "source": "import",
            },
            {
                "code": "backdated_event",
                "severity": "info",
                "count": 4,
                "message": "Events recorded more than 7 days after they happened.",
                "source": "log",
            },
            {
                "code": "close_date_in_past",
                "severity": "error",
                "count": 9,
                "message": "Open opportunities whose expected close date has already passed.",
                "source": "log",
            },
        ],
    }
