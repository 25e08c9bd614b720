"""The pipeline as it stood at any past instant, and the waterfall between two instants.

A snapshot at ``at`` replays only the rows at or before ``at``: each opportunity's stage,
when it entered it, the dwell so far, and the amount and expected close date in force then.

The waterfall compares two snapshots. Each opportunity falls in exactly one category, checked
in this order: ``won`` / ``lost`` (closed between the instants), ``new`` (did not exist at
``start``, open at ``end``), ``reopened`` (closed at ``start``, open at ``end``),
``advanced`` / ``regressed`` (open at both, later / earlier stage in the process order),
``slipped`` (same stage, later expected close date), ``unchanged``. Deals closed at both
instants are left out.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead", "amount": 10},
...     {"opportunity_id": "a", "at": t(5), "stage": "demo", "amount": 10},
...     {"opportunity_id": "b", "at": t(1), "stage": "lead", "amount": 5},
...     {"opportunity_id": "b", "at": t(6), "stage": "won", "amount": 5},
...     {"opportunity_id": "c", "at": t(4), "stage": "lead", "amount": 7},
... ]
>>> [(s.opportunity_id, s.stage, s.dwell_days) for s in snapshot(rows, kinds, at=t(3))]
[('a', 'lead', 2.0), ('b', 'lead', 2.0)]
>>> w = waterfall(rows, kinds, start=t(3), end=t(9))
>>> [(r.category, r.deals, r.amount_end) for r in w.summary]
[('won', 1, 5.0), ('new', 1, 7.0), ('advanced', 1, 10.0)]
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate._time import from_epoch_us
from stagegate.analytics._emit import collect_rows, emit
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import ORDER, Prepared, prepare
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike

__all__ = ["CATEGORIES", "Snapshot", "Waterfall", "WaterfallDeal", "WaterfallRow", "snapshot",
           "waterfall"]  # fmt: skip

CATEGORIES = ("won", "lost", "new", "reopened", "advanced", "regressed", "slipped", "unchanged")
_EPOCH = date(1970, 1, 1)


@attrs.frozen(slots=True)
class Snapshot:
    """One opportunity as it stood at the snapshot instant."""

    opportunity_id: str
    stage: str
    kind: str
    entered_at: datetime
    dwell_days: float | None
    amount: float | None
    close_date: date | None


def current_state(prepared: Prepared) -> list[dict[str, Any]]:
    """Per opportunity: stage, kind, entry, dwell, current amount and close day (as dicts)."""
    if prepared.rows is None:
        raise AnalyticsError(
            "this analysis needs the stage-history rows (amounts and close dates change between "
            "stage changes), not stage intervals"
        )
    if not prepared.is_frame:
        assert prepared.python is not None  # noqa: S101 - python path
        last_visit = {}
        for v in prepared.python:
            if v.exited_us is None:
                last_visit[v.opportunity_id] = v
        result = []
        for opp, rows in prepared.rows.items():
            v = last_visit[opp]
            result.append(
                {
                    "opportunity_id": opp,
                    "stage": v.stage,
                    "kind": v.kind,
                    "entered_us": v.entered_us,
                    "dwell_days": v.duration_days,
                    "amount": rows[-1].amount,
                    "close_day": rows[-1].close_day,
                }
            )
        return result
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    last_rows = (
        prepared.rows.with_columns(
            last=nw.col("at_us").shift(-1).over(opp, order_by=ORDER).is_null()
        )
        .filter(nw.col("last"))
        .select(opp, nw.col("amount").alias("cur_amount"), nw.col("close_day").alias("cur_close"))
    )
    visits = prepared.frame.filter(nw.col("exited_us").is_null()).select(
        opp, "stage", "kind", "entered_us", "duration_days"
    )
    joined = visits.join(last_rows, on=opp, how="left")
    result = collect_rows(
        joined.select(
            opp,
            "stage",
            "kind",
            "entered_us",
            nw.col("duration_days").alias("dwell_days"),
            nw.col("cur_amount").alias("amount"),
            nw.col("cur_close").alias("close_day"),
        )
    )
    result.sort(key=lambda r: r[opp])
    return result


def _date(day: int | None) -> date | None:
    return None if day is None else _EPOCH + timedelta(days=int(day))


def snapshot(
    data: Any, outcomes: OutcomesLike, *, at: datetime, assume_zone: str | tzinfo | None = None
) -> Any:
    """The pipeline as it stood at ``at``: one row per opportunity that existed then.

    Returns:
        :class:`Snapshot` rows (or a frame with those columns), by opportunity id; the
        dwell of closed deals is ``None``.

    Raises:
        AnalyticsError: the input is unusable.
    """
    prepared = prepare(data, outcomes, as_of=at, assume_zone=assume_zone, keep_rows=True)
    rows = [
        Snapshot(
            r["opportunity_id"],
            r["stage"],
            r["kind"],
            from_epoch_us(int(r["entered_us"])),
            r["dwell_days"],
            r["amount"],
            _date(r["close_day"]),
        )
        for r in current_state(prepared)
    ]
    return emit(prepared, rows, Snapshot)


@attrs.frozen(slots=True)
class WaterfallDeal:
    """One opportunity's movement between the two instants."""

    opportunity_id: str
    category: str
    stage_start: str | None
    stage_end: str
    amount_start: float | None
    amount_end: float | None


@attrs.frozen(slots=True)
class WaterfallRow:
    """Deals and amounts per waterfall category."""

    category: str
    deals: int
    amount_start: float
    amount_end: float


@attrs.frozen
class Waterfall:
    """Result of :func:`waterfall`.

    Attributes:
        deals: one row per opportunity (:class:`WaterfallDeal` columns).
        summary: one row per category (:class:`WaterfallRow` columns), in
            :data:`CATEGORIES` order, empty categories left out.
        open_start: open pipeline amount at ``start``.
        open_end: open pipeline amount at ``end``.
    """

    deals: Any
    summary: Any
    open_start: float
    open_end: float


def _category(s: dict[str, Any] | None, e: dict[str, Any], rank: dict[str, int]) -> str | None:
    start_open = s is not None and s["kind"] == "open"
    if e["kind"] != "open":
        return e["kind"] if (s is None or start_open) else None
    if s is None:
        return "new"
    if not start_open:
        return "reopened"
    if rank[e["stage"]] != rank[s["stage"]]:
        return "advanced" if rank[e["stage"]] > rank[s["stage"]] else "regressed"
    if (
        s["close_day"] is not None
        and e["close_day"] is not None
        and e["close_day"] > s["close_day"]
    ):
        return "slipped"
    return "unchanged"


def waterfall(
    data: Any,
    outcomes: OutcomesLike,
    *,
    start: datetime,
    end: datetime,
    assume_zone: str | tzinfo | None = None,
) -> Waterfall:
    """How the pipeline moved between ``start`` and ``end``.

    Raises:
        AnalyticsError: ``end`` is before ``start``, or the input is unusable.
    """
    if end < start:
        raise AnalyticsError(f"end={end!r} is before start={start!r}; pass start <= end")
    first = prepare(data, outcomes, as_of=start, assume_zone=assume_zone, keep_rows=True)
    last = prepare(data, outcomes, as_of=end, assume_zone=assume_zone, keep_rows=True)
    rank = {s: i for i, s in enumerate(first.outcomes.stages)}
    before = {r["opportunity_id"]: r for r in current_state(first)}
    deals = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for e in current_state(last):
        s = before.get(e["opportunity_id"])
        category = _category(s, e, rank)
        if category is None:
            continue
        a0 = None if s is None else s["amount"]
        deals.append(
            WaterfallDeal(
                e["opportunity_id"],
                category,
                None if s is None else s["stage"],
                e["stage"],
                a0,
                e["amount"],
            )
        )
        t = totals[category]
        t[0] += 1
        t[1] += a0 or 0.0
        t[2] += e["amount"] or 0.0
    summary = [
        WaterfallRow(c, int(totals[c][0]), totals[c][1], totals[c][2])
        for c in CATEGORIES
        if c in totals
    ]
    open_start = sum(r["amount"] or 0.0 for r in before.values() if r["kind"] == "open")
    open_end = sum(d.amount_end or 0.0 for d in deals if d.category not in ("won", "lost"))
    return Waterfall(
        emit(last, deals, WaterfallDeal), emit(last, summary, WaterfallRow), open_start, open_end
    )


_ = DAY_US
