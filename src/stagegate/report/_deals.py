"""The deal lists: stalled and slipping deals, capped at ``top`` rows, and the slip summary.

A list keeps its first ``top`` rows and says how many there are in all (:func:`count_of`), so
that a large pipeline's page stays short and its numbers stay true.

>>> count_of(40, 25)
{'total': 40, 'shown': 25, 'capped': True}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stagegate.report._results import Current, records

__all__ = ["count_of", "slip_summary", "slipping_rows", "stalled_rows"]


def count_of(total: int, top: int) -> dict[str, Any]:
    """How many rows a list of ``total`` shows when capped at ``top``, and whether it is."""
    shown = min(total, top)
    return {"total": total, "shown": shown, "capped": total > shown}


def stalled_rows(stalled: Sequence[Any]) -> list[dict[str, Any]]:
    """The stalled list: deals past their stage's limit, with where the limit came from."""
    return [
        {
            "opportunity_id": s.opportunity_id,
            "stage": s.stage,
            "days_in_stage": s.dwell_days,
            "limit_days": s.limit_days,
            "limit_source": s.limit_source,
            "times_won_median": s.times_won_median,
            "amount": s.amount,
        }
        for s in stalled
    ]


def slipping_rows(slipping: Sequence[Any], current: Current) -> list[dict[str, Any]]:
    """The slipping list: deals pushed again and again, with their stage and amount now."""
    shown = current.of([d.opportunity_id for d in slipping])
    amounts = {s.opportunity_id: s.amount for s in shown}
    stage_now = {s.opportunity_id: s.stage for s in shown}
    return [
        {
            "opportunity_id": d.opportunity_id,
            "pushes": d.pushes,
            "days_pushed": d.days_pushed,
            "first_close_date": _iso(d.first_close_date),
            "close_date": _iso(d.current_close_date),
            "stage": stage_now.get(d.opportunity_id, ""),
            "amount": amounts.get(d.opportunity_id),
        }
        for d in slipping
    ]


def slip_summary(slips: Any) -> dict[str, Any]:
    """How often close dates slip, and the win rate by number of pushes."""
    return {
        "slip_rate": slips.slip_rate,
        "win_rate_by_pushes": [
            {"pushes": p.pushes, "n": p.closed, "win_rate": p.win_rate}
            for p in sorted(records(slips.by_pushes), key=lambda p: p.pushes)
        ],
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
