"""Sales velocity: opportunities x win rate x average deal size / cycle length, per day.

Per open stage: ``deals`` open in it at ``as_of``, ``win_rate`` of closed deals that reached
it, ``deal_size`` the mean current amount of the won deals that reached it, ``cycle_days``
the mean days from their first entry into the stage to closing. The ``overall`` row uses every
open deal, the win rate of all closed deals, the mean won amount and the mean won cycle
(first row to close). ``velocity`` is the amount expected to close per day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import collect_rows, emit
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import prepare
from stagegate.analytics.outcomes import OutcomesLike
from stagegate.analytics.snapshot import current_state

__all__ = ["Velocity", "velocity"]


@attrs.frozen(slots=True)
class Velocity:
    """Sales velocity of one stage (or ``overall``)."""

    stage: str
    deals: int
    win_rate: float | None
    deal_size: float | None
    cycle_days: float | None
    velocity: float | None


def _per_deal(prepared: Any) -> list[dict[str, Any]]:
    """Per (deal, stage first reached): outcome, first entry, closing instant, opened."""
    if prepared.python is not None:
        closing: dict[str, int] = {}
        opened: dict[str, int] = {}
        for v in prepared.python:
            opened[v.opportunity_id] = min(opened.get(v.opportunity_id, v.entered_us),
                                           v.entered_us)  # fmt: skip
            if v.exited_us is None and v.kind != "open":
                closing[v.opportunity_id] = v.entered_us
        return [
            {
                "opportunity_id": v.opportunity_id,
                "stage": v.stage,
                "outcome": v.outcome,
                "entered_us": v.entered_us,
                "closed_us": closing.get(v.opportunity_id),
                "opened_us": opened[v.opportunity_id],
            }
            for v in prepared.python
            if v.visit == 1 and v.kind == "open"
        ]
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    frame = prepared.frame.with_columns(
        closed_us=nw.when(nw.col("exited_us").is_null() & (nw.col("kind") != "open"))
        .then(nw.col("entered_us"))
        .max()
        .over(opp),
        opened_us=nw.col("entered_us").min().over(opp),
    )
    return collect_rows(
        frame.filter((nw.col("visit") == 1) & (nw.col("kind") == "open")).select(
            opp, "stage", "outcome", "entered_us", "closed_us", "opened_us"
        )
    )


def velocity(
    data: Any, outcomes: OutcomesLike, *, as_of: datetime, assume_zone: str | tzinfo | None = None
) -> Any:
    """Sales velocity per open stage and overall.

    Returns:
        :class:`Velocity` rows (or a frame): open stages in process order, then ``overall``.

    Raises:
        AnalyticsError: the input is unusable.
    """
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, keep_rows=True)
    state = current_state(prepared)
    amount = {r["opportunity_id"]: r["amount"] for r in state}
    open_now: dict[str, int] = defaultdict(int)
    for r in state:
        if r["kind"] == "open":
            open_now[r["stage"]] += 1
    stats: dict[str, list[Any]] = defaultdict(lambda: [0, 0, [], []])
    overall: dict[str, tuple[str, int | None, int]] = {}
    for r in _per_deal(prepared):
        s = stats[r["stage"]]
        overall[r["opportunity_id"]] = (r["outcome"], r["closed_us"], r["opened_us"])
        if r["outcome"] == "open":
            continue
        s[0] += 1
        if r["outcome"] == "won":
            s[1] += 1
            if amount.get(r["opportunity_id"]) is not None:
                s[2].append(amount[r["opportunity_id"]])
            s[3].append((r["closed_us"] - r["entered_us"]) / DAY_US)
    everything: list[Any] = [0, 0, [], []]
    for opp, (outcome, closed_us, opened_us) in overall.items():
        if outcome == "open" or closed_us is None:
            continue
        everything[0] += 1
        if outcome == "won":
            everything[1] += 1
            if amount.get(opp) is not None:
                everything[2].append(amount[opp])
            everything[3].append((closed_us - opened_us) / DAY_US)
    rows = [_row(s, open_now.get(s, 0), stats[s]) for s in prepared.outcomes.open]
    rows.append(_row("overall", sum(open_now.values()), everything))
    return emit(prepared, rows, Velocity)


def _row(stage: str, deals: int, s: list[Any]) -> Velocity:
    win_rate = s[1] / s[0] if s[0] else None
    size = sum(s[2]) / len(s[2]) if s[2] else None
    cycle = sum(s[3]) / len(s[3]) if s[3] else None
    value = None
    if win_rate is not None and size is not None and cycle:
        value = deals * win_rate * size / cycle
    return Velocity(stage, deals, win_rate, size, cycle, value)
