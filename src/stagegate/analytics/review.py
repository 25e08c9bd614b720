"""A manager's weekly review, per rep and team: staleness, changes since last week, rollups.

Every function takes what the other analytics take (events, opportunities, row mappings with
segment columns, or a frame; frames are read into rows), a ``by=`` naming the segment columns
(``"owner"``, or ``("region", "team")``), and returns records whose ``segment`` is the tuple
of those columns' values. Each figure counts a deal for the segment in force at one instant:

- open pipeline, staleness and rollups: at ``as_of``;
- won and lost (and cycle times): at the deal's close;
- changes since ``since``: at ``as_of`` (a won or lost deal: at its close).

**Staleness by activity** (:func:`staleness`) sits beside staleness by dwell
(:func:`~stagegate.analytics.stalled`): a deal open at ``as_of`` is *stale* when nothing was
logged (``activity_logged``) on it for more than ``activity_days`` days (counted from its
opening if nothing ever was), and its *next step is overdue* when its ``next_step_due`` field
(an ISO date, set with ``set_field``; another name with ``next_step_field=``) is before
``as_of``'s date. Both need stagegate events: for tables they are ``None``.

**Changes since** (:func:`changes`) builds on :func:`~stagegate.analytics.waterfall` (which
says which deals are new, won or lost in the window ``(since, as_of]``) and on the two
:func:`~stagegate.analytics.snapshot` s, and flags each deal open at both instants as
``pushed`` / ``pulled_in`` (expected close date later / earlier), ``increased`` /
``decreased`` (amount) and ``moved_in`` / ``moved_out`` (its close date moved into / out of
the period holding ``as_of``). A deal can carry several flags (pushed and decreased).

>>> from datetime import datetime, timedelta, timezone
>>> from stagegate import Opportunity, b2b
>>> t = datetime(2026, 3, 2, tzinfo=timezone.utc)
>>> a = Opportunity.open(b2b(), "a", at=t, actor="crm", owner="kim", amount=100,
...                      attributes={"team": "east"})
>>> _ = a.log_activity("call", at=t + timedelta(days=1), actor="kim")
>>> b = Opportunity.open(b2b(), "b", at=t, actor="crm", owner="lee", amount=50,
...                      attributes={"team": "east"})
>>> _ = b.change_amount(80, at=t + timedelta(days=9), actor="lee")
>>> as_of = t + timedelta(days=20)
>>> [(s.opportunity_id, s.segment, s.days_since_activity, s.stale) for s in
...  staleness([a, b], b2b(), as_of=as_of, activity_days=14)]
[('a', ('kim',), 19.0, True), ('b', ('lee',), 20.0, True)]
>>> [(c.segment, c.change, c.deals) for c in
...  changes([a, b], b2b(), since=t + timedelta(days=7), as_of=as_of)]
[(('lee',), 'increased', 1)]
>>> for r in rollup([a, b], b2b(), as_of=as_of, levels=("owner", "team")):
...     print(r.level, r.segment, r.deals, r.pipeline)
owner ('kim', 'east') 1 100
owner ('lee', 'east') 1 80
team ('east',) 2 180
all () 2 180
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import attrs

from stagegate._time import UTC, epoch_us, parse_date, to_utc
from stagegate.analytics._by import records_of
from stagegate.analytics._segments import (
    SMALL_SAMPLE,
    Inputs,
    Segment,
    activity_gap,
    decimal_of,
    instant_us,
    money,
    period_bounds,
    read_inputs,
    segment_columns,
    segment_order,
)
from stagegate.analytics._table import DAY_US
from stagegate.analytics.deals import StalledDeal, stalled
from stagegate.analytics.durations import cycle_times
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.quota import QuotaTable, coverage
from stagegate.analytics.snapshot import waterfall_in_any_currency
from stagegate.currency import CURRENCY, UNKNOWN, MixedCurrencyError, RateTable
from stagegate.errors import StagegateError
from stagegate.events import EventKind

__all__ = [
    "CHANGES",
    "NEXT_STEP_FIELD",
    "SMALL_SAMPLE",
    "Change",
    "ChangeRow",
    "Review",
    "ReviewRow",
    "RollupRow",
    "ScorecardRow",
    "StaleDeal",
    "changes",
    "deal_changes",
    "rollup",
    "scorecard",
    "staleness",
    "weekly_review",
]

CHANGES = (
    "new",
    "moved_in",
    "moved_out",
    "pushed",
    "pulled_in",
    "increased",
    "decreased",
    "won",
    "lost",
)
"""What changed on a deal since a past instant, in the order the review shows them."""
NEXT_STEP_FIELD = "next_step_due"
"""The custom field that holds a deal's next-step due date (ISO ``YYYY-MM-DD``)."""


# -- staleness by activity ---------------------------------------------------------------------


@attrs.frozen(slots=True)
class StaleDeal:
    """One deal open at ``as_of``: its staleness by dwell and by activity.

    Attributes:
        opportunity_id: the deal.
        segment: its ``by`` values at ``as_of``.
        stage: its stage at ``as_of``.
        dwell_days: days in that stage.
        stalled: its dwell is over the stage's limit (:func:`~stagegate.analytics.stalled`).
        last_activity_at: its last logged activity at or before ``as_of``, if any.
        days_since_activity: days from that (or from its opening) to ``as_of``; ``None`` for
            tables, which hold no activities.
        stale: no activity for more than ``activity_days`` days (``None`` for tables).
        next_step_due: its next-step due date in force at ``as_of``, if any.
        next_step_overdue: that date is before ``as_of``'s (``None`` for tables).
        amount: its amount at ``as_of``.
    """

    opportunity_id: str
    segment: Segment
    stage: str
    dwell_days: float | None
    stalled: bool
    last_activity_at: datetime | None
    days_since_activity: float | None
    stale: bool | None
    next_step_due: date | None
    next_step_overdue: bool | None
    amount: Decimal | None


def _activity(inputs: Inputs, oid: str, as_of_us: int, field: str) -> tuple[Any, ...]:
    """(last activity instant, reference instant in us, next-step date) of one deal."""
    last = None
    reference = None
    due: date | None = None
    for event in inputs.events.get(oid, ()):
        at_us = epoch_us(event.at)
        if at_us > as_of_us:
            break
        if reference is None:
            reference = at_us
        if event.kind is EventKind.ACTIVITY_LOGGED:
            last = event.at
            reference = at_us
        elif event.kind is EventKind.FIELD_SET and event.subject == field:
            due = _due((event.details or {}).get("value"))
        elif event.kind is EventKind.OPENED and event.details is not None:
            opening = event.details.get("fields") or {}
            if field in opening:
                due = _due(opening[field])
    return last, reference, due


def _due(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except (StagegateError, ValueError, TypeError):
        return None  # not a date: no next step we can hold the deal to


def staleness(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    by: str | Sequence[str] = "owner",
    activity_days: float = 14.0,
    next_step_field: str = NEXT_STEP_FIELD,
    learned: str = "p90",
    assume_zone: str | tzinfo | None = None,
) -> list[StaleDeal]:
    """Every deal open at ``as_of``: stalled by dwell, stale by activity, next step overdue.

    Sorted by segment, then most days since activity first (then longest dwell).

    Args:
        data: events or opportunities (activities and next steps known), a table with a
            ``kind`` column such as a store's frame (activities known, next steps not), or
            another table (dwell only).
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the review stands at.
        by: the segment column(s).
        activity_days: days without activity after which a deal is stale.
        next_step_field: the field holding the next-step due date.
        learned: the learned dwell limit of :func:`~stagegate.analytics.stalled`.
        assume_zone: the zone of naive instants in ``data``, if any.

    Raises:
        AnalyticsError: an argument is unusable.
    """
    columns = segment_columns(by)
    if not activity_days > 0:
        raise AnalyticsError(f"activity_days must be a positive number, got {activity_days!r}")
    as_of_us = instant_us(as_of, "as_of")
    today = to_utc(as_of).date()
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    found = stalled(inputs.data, outcomes, as_of=as_of, learned=learned, assume_zone=assume_zone)
    slow = {r.opportunity_id for r in records_of(found, StalledDeal)}
    result = []
    for s in inputs.snapshot(outcomes, as_of, assume_zone):
        if s.kind != "open":
            continue
        oid = s.opportunity_id
        if inputs.has_events:
            last, reference, due = _activity(inputs, oid, as_of_us, next_step_field)
            days = (as_of_us - reference) / DAY_US
            stale: bool | None = days > activity_days
            overdue: bool | None = due is not None and due < today
        elif inputs.activities is not None:  # a store's frame: activities by kind, no fields
            last, days, stale = activity_gap(
                *inputs.last_activity(oid, as_of_us), as_of_us, activity_days
            )
            due, overdue = None, None
        else:
            last, days, stale, due, overdue = None, None, None, None, None
        result.append(
            StaleDeal(
                oid,
                inputs.at(oid, as_of_us, columns),
                s.stage,
                s.dwell_days,
                oid in slow,
                last,
                days,
                stale,
                due,
                overdue,
                decimal_of(s.amount),
            )
        )
    result.sort(
        key=lambda d: (
            segment_order(d.segment),
            -(d.days_since_activity or 0.0),
            -(d.dwell_days or 0.0),
            d.opportunity_id,
        )
    )
    return result


# -- changes since a past instant ----------------------------------------------------------


@attrs.frozen(slots=True)
class Change:
    """One change of one deal between ``since`` and ``as_of``."""

    opportunity_id: str
    segment: Segment
    change: str
    amount_since: Decimal | None
    amount: Decimal | None
    close_date_since: date | None
    close_date: date | None


@attrs.frozen(slots=True)
class ChangeRow:
    """Deals and amounts of one kind of change, for one segment.

    ``amount`` adds the deals' amounts at ``as_of`` (for ``won`` / ``lost``: at the close);
    ``delta`` adds their change of amount since ``since`` (0 for a deal that did not exist).
    """

    segment: Segment
    change: str
    deals: int
    amount: Decimal
    delta: Decimal


def deal_changes(
    data: Any,
    outcomes: OutcomesLike,
    *,
    since: datetime,
    as_of: datetime,
    by: str | Sequence[str] = "owner",
    period: str = "quarter",
    assume_zone: str | tzinfo | None = None,
) -> list[Change]:
    """Every change of every deal in ``(since, as_of]``: the rows :func:`changes` adds up.

    Raises:
        AnalyticsError: ``as_of`` is before ``since``, or an argument is unusable.
    """
    columns = segment_columns(by)
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    return _deal_changes(inputs, outcomes, since, as_of, columns, period, assume_zone)


def _deal_changes(  # noqa: PLR0917 - a private helper of two public functions
    inputs: Inputs,
    outcomes: OutcomesLike,
    since: datetime,
    as_of: datetime,
    columns: tuple[str, ...],
    period: str,
    assume_zone: Any,
) -> list[Change]:
    as_of_us = instant_us(as_of, "as_of")
    _, first, last = period_bounds(to_utc(as_of).date(), period)
    moved = waterfall_in_any_currency(
        inputs.data, outcomes, start=since, end=as_of, assume_zone=assume_zone
    )
    before = {s.opportunity_id: s for s in inputs.snapshot(outcomes, since, assume_zone)}
    after = {s.opportunity_id: s for s in inputs.snapshot(outcomes, as_of, assume_zone)}
    result = []
    for deal in moved.deals:
        oid, category = deal.opportunity_id, deal.category
        s, e = before.get(oid), after[oid]
        kinds: list[str] = []
        if category in ("won", "lost", "new"):
            kinds.append(category)
        elif s is not None and s.kind == "open" and e.kind == "open":
            kinds.extend(_flags(s, e, first, last))
        at_us = epoch_us(e.entered_at) if category in ("won", "lost") else as_of_us
        segment = inputs.at(oid, at_us, columns)
        for kind in kinds:
            result.append(
                Change(
                    oid,
                    segment,
                    kind,
                    None if s is None else decimal_of(s.amount),
                    decimal_of(e.amount),
                    None if s is None else s.close_date,
                    e.close_date,
                )
            )
    result.sort(key=lambda c: (segment_order(c.segment), CHANGES.index(c.change), c.opportunity_id))
    return result


def _flags(s: Any, e: Any, first: date, last: date) -> list[str]:
    flags = []
    if s.close_date is not None and e.close_date is not None:
        inside_before = first <= s.close_date <= last
        inside_after = first <= e.close_date <= last
        if inside_after and not inside_before:
            flags.append("moved_in")
        elif inside_before and not inside_after:
            flags.append("moved_out")
        if e.close_date > s.close_date:
            flags.append("pushed")
        elif e.close_date < s.close_date:
            flags.append("pulled_in")
    a0, a1 = s.amount or 0.0, e.amount or 0.0
    if a1 > a0:
        flags.append("increased")
    elif a1 < a0:
        flags.append("decreased")
    return flags


def changes(
    data: Any,
    outcomes: OutcomesLike,
    *,
    since: datetime,
    as_of: datetime,
    by: str | Sequence[str] = "owner",
    period: str = "quarter",
    rates: RateTable | None = None,
    default_currency: str | None = None,
    assume_zone: str | tzinfo | None = None,
) -> list[ChangeRow]:
    """What changed since ``since``, per segment and kind of change (see :data:`CHANGES`).

    One row per segment and change that happened, by segment then in :data:`CHANGES` order.
    ``period`` is the kind of period (``quarter`` or ``month``) ``moved_in`` / ``moved_out``
    refer to: the one holding ``as_of``.

    Raises:
        MixedCurrencyError: amounts in several currencies and no ``rates``.
        AnalyticsError: ``as_of`` is before ``since``, or an argument is unusable.
    """
    columns = segment_columns(by)
    inputs = read_inputs(data, (*columns, CURRENCY), assume_zone=assume_zone)
    day = to_utc(as_of).date()
    as_of_us = instant_us(as_of, "as_of")
    groups: dict[tuple[Segment, str], list[Change]] = defaultdict(list)
    for change in _deal_changes(inputs, outcomes, since, as_of, columns, period, assume_zone):
        groups[change.segment, change.change].append(change)
    rows = []
    for (segment, kind), items in groups.items():

        def currency(oid: str) -> str | None:
            return inputs.at(oid, as_of_us, (CURRENCY,))[0]

        amount = money(
            ((c.amount, currency(c.opportunity_id)) for c in items), rates, day, default_currency
        )
        delta = money(
            (
                (
                    (c.amount or Decimal(0)) - (c.amount_since or Decimal(0)),
                    currency(c.opportunity_id),
                )
                for c in items
            ),
            rates,
            day,
            default_currency,
        )
        rows.append(ChangeRow(segment, kind, len(items), amount, delta))
    rows.sort(key=lambda r: (segment_order(r.segment), CHANGES.index(r.change)))
    return rows


# -- rollups: rep -> team -> region ------------------------------------------------------------


@attrs.frozen(slots=True)
class RollupRow:
    """Open pipeline and its point forecast at one level of the hierarchy.

    Attributes:
        level: the column this row is a subtotal of (``owner``, ``team``, ...), or ``all``.
        segment: the values from that level up (an owner row: owner, team, region).
        deals: deals open at ``as_of``.
        pipeline: their amount.
        weighted: their amount, each times its stage's win probability.
        period_deals: of those, the ones expected to close in the period holding ``as_of``.
        period_pipeline: their amount (the period's open pipeline).
        period_weighted: their weighted amount (the period's point forecast).
        small: fewer than 30 open deals.
    """

    level: str
    segment: Segment
    deals: int
    pipeline: Decimal
    weighted: Decimal
    period_deals: int
    period_pipeline: Decimal
    period_weighted: Decimal
    small: bool


def rollup(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    levels: Sequence[str] = ("owner", "team", "region"),
    period: str = "quarter",
    estimator: str = "deal_clock",
    rates: RateTable | None = None,
    default_currency: str | None = None,
    assume_zone: str | tzinfo | None = None,
) -> list[RollupRow]:
    """Pipeline and forecast per rep, subtotalled up the hierarchy ``levels`` and in total.

    ``levels`` go from the finest to the coarsest (rep, team or manager, region). The rows
    come level by level, finest first, and end with one ``all`` row (also when nothing is
    open); a level's rows add up to the ``all`` row. A deal counts where its segments stood
    at ``as_of``.

    Raises:
        MixedCurrencyError: amounts in several currencies and no ``rates``.
        AnalyticsError: an argument is unusable.
    """
    columns = segment_columns(levels)
    as_of_us = instant_us(as_of, "as_of")
    day = to_utc(as_of).date()
    _, first, last = period_bounds(day, period)
    inputs = read_inputs(data, (*columns, CURRENCY), assume_zone=assume_zone)
    p = inputs.probabilities(outcomes, as_of, estimator)
    deals = []
    for s in inputs.snapshot(outcomes, as_of, assume_zone):
        if s.kind != "open":
            continue
        *segment, currency = inputs.at(s.opportunity_id, as_of_us, (*columns, CURRENCY))
        amount = decimal_of(s.amount)
        weight = None if amount is None else amount * Decimal(repr(p.get(s.stage, 0.0)))
        due = s.close_date is not None and first <= s.close_date <= last
        deals.append((tuple(segment), amount, weight, currency, due))
    rows = []
    for depth in range(len(columns) + 1):
        level = columns[depth] if depth < len(columns) else "all"
        groups: dict[Segment, list[Any]] = defaultdict(list)
        if level == "all":
            groups[()] = []  # the total, even of nothing
        for deal in deals:
            groups[deal[0][depth:]].append(deal)
        for key in sorted(groups, key=segment_order):
            items = groups[key]
            due = [d for d in items if d[4]]
            rows.append(
                RollupRow(
                    level,
                    key,
                    len(items),
                    money(((d[1], d[3]) for d in items), rates, day, default_currency),
                    money(((d[2], d[3]) for d in items), rates, day, default_currency, places=2),
                    len(due),
                    money(((d[1], d[3]) for d in due), rates, day, default_currency),
                    money(((d[2], d[3]) for d in due), rates, day, default_currency, places=2),
                    len(items) < SMALL_SAMPLE,
                )
            )
    return rows


# -- a scorecard per segment: win rate, cycle time, stalled ------------------------------------


@attrs.frozen(slots=True)
class ScorecardRow:
    """Outcomes and pipeline health of one segment.

    ``won``, ``lost``, ``win_rate`` (won over closed) and the cycle times count each closed
    deal for the segment at its close; ``open_deals`` and ``stalled`` for the segment at
    ``as_of``. ``small`` flags fewer than 30 closed deals: a win rate on so few says little.
    """

    segment: Segment
    closed: int
    won: int
    lost: int
    win_rate: float | None
    cycle_mean_days: float | None
    cycle_median_days: float | None
    won_cycle_median_days: float | None
    open_deals: int
    stalled: int
    small: bool


def scorecard(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    by: str | Sequence[str] = "owner",
    learned: str = "p90",
    assume_zone: str | tzinfo | None = None,
) -> list[ScorecardRow]:
    """Win rate, cycle time and stalled deals per segment, as of ``as_of``.

    Built on :func:`~stagegate.analytics.cycle_times` and
    :func:`~stagegate.analytics.stalled`: the same numbers, split by segment.

    Raises:
        AnalyticsError: an argument is unusable.
    """
    columns = segment_columns(by)
    as_of_us = instant_us(as_of, "as_of")
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    cycles: dict[Segment, list[Any]] = defaultdict(list)
    for deal in cycle_times(inputs.data, outcomes, as_of=as_of, assume_zone=assume_zone).deals:
        cycles[inputs.at(deal.opportunity_id, epoch_us(deal.closed_at), columns)].append(deal)
    open_deals: Counter[Segment] = Counter(
        inputs.at(s.opportunity_id, as_of_us, columns)
        for s in inputs.snapshot(outcomes, as_of, assume_zone)
        if s.kind == "open"
    )
    slow: Counter[Segment] = Counter(
        inputs.at(r.opportunity_id, as_of_us, columns)
        for r in stalled(
            inputs.data, outcomes, as_of=as_of, learned=learned, assume_zone=assume_zone
        )
    )
    rows = []
    for key in sorted(set(cycles) | set(open_deals), key=segment_order):
        closed = cycles.get(key, [])
        days = [c.cycle_days for c in closed]
        won_days = [c.cycle_days for c in closed if c.outcome == "won"]
        won = len(won_days)
        rows.append(
            ScorecardRow(
                key,
                len(closed),
                won,
                len(closed) - won,
                won / len(closed) if closed else None,
                statistics.fmean(days) if days else None,
                statistics.median(days) if days else None,
                statistics.median(won_days) if won_days else None,
                open_deals.get(key, 0),
                slow.get(key, 0),
                len(closed) < SMALL_SAMPLE,
            )
        )
    return rows


# -- the review: everything above, one row per segment -----------------------------------------


@attrs.frozen(slots=True)
class ReviewRow:
    """One segment's line of the weekly review.

    Attributes:
        segment: the ``by`` values.
        open_deals: deals open at ``as_of``.
        pipeline: their amount; ``weighted``: each times its stage's win probability.
        period_pipeline: the open amount expected to close in the period holding ``as_of``.
        period_weighted: its weighted amount (the period's point forecast).
        quota: the segment's quota in that period (``None`` without a quota table or row).
        won: won in the period so far (at the close's segment).
        remaining: quota minus won, never below 0.
        coverage: ``period_pipeline`` over ``remaining``; ``None`` without a remaining quota.
        stalled: open deals stalled by dwell.
        stale: open deals without activity for ``activity_days`` (``None`` for tables).
        next_step_overdue: open deals whose next step is overdue (``None`` for tables).
        changes: deals per kind of change since ``since`` (:data:`CHANGES` keys, all present).
        small: fewer than 30 open deals.
    """

    segment: Segment
    open_deals: int
    pipeline: Decimal
    weighted: Decimal
    period_pipeline: Decimal
    period_weighted: Decimal
    quota: Decimal | None
    won: Decimal
    remaining: Decimal | None
    coverage: float | None
    stalled: int
    stale: int | None
    next_step_overdue: int | None
    changes: Any
    small: bool


@attrs.frozen
class Review:
    """Result of :func:`weekly_review`.

    Attributes:
        by: the segment columns.
        period: the label of the period holding ``as_of``.
        rows: one :class:`ReviewRow` per segment, by segment (no value last).
        deals: every open deal's staleness (:class:`StaleDeal`), by segment.
        changes: every change since ``since`` (:class:`Change`), by segment.
        currency: the currency of the amounts (the rate table's reporting one; ``None``
            when the deals name none).
    """

    by: tuple[str, ...]
    period: str
    rows: tuple[ReviewRow, ...]
    deals: tuple[StaleDeal, ...]
    changes: tuple[Change, ...]
    currency: str | None


def _week_before(as_of: datetime) -> datetime:
    """A week before ``as_of``, or the first instant there is (0001-01-01) in the first week."""
    first, instant = datetime.min.replace(tzinfo=UTC), to_utc(as_of, what="as_of")
    return first if instant - first < _WEEK else instant - _WEEK


_WEEK = timedelta(days=7)


def _one_currency(
    inputs: Inputs, outcomes: OutcomesLike, as_of: datetime, default: str | None, zone: Any
) -> str | None:
    """The currency of every amount the review adds, or ``None`` if none is named.

    Raises:
        MixedCurrencyError: several (an unknown one included).
    """
    as_of_us = instant_us(as_of, "as_of")
    found = {
        inputs.at(s.opportunity_id, as_of_us, (CURRENCY,))[0] or default
        for s in inputs.snapshot(outcomes, as_of, zone)
        if s.amount is not None
    }
    if len(found) > 1:
        raise MixedCurrencyError(sorted(UNKNOWN if code is None else code for code in found))
    return next(iter(found), None)


def weekly_review(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    since: datetime | None = None,
    by: str | Sequence[str] = "owner",
    quotas: QuotaTable | None = None,
    period: str = "quarter",
    estimator: str = "deal_clock",
    activity_days: float = 14.0,
    next_step_field: str = NEXT_STEP_FIELD,
    rates: RateTable | None = None,
    default_currency: str | None = None,
    assume_zone: str | tzinfo | None = None,
) -> Review:
    """A manager's weekly review per segment: pipeline, quota coverage, health, changes.

    Combines :func:`rollup` (one level: ``by``), :func:`~stagegate.analytics.coverage` (with
    ``quotas``, a :class:`~stagegate.analytics.QuotaTable` for the first ``by`` column),
    :func:`staleness` and :func:`changes` (since ``since``, default a week before ``as_of``).

    Raises:
        MixedCurrencyError: amounts in several currencies and no ``rates``.
        AnalyticsError: an argument is unusable.
    """
    columns = segment_columns(by)
    start = _week_before(as_of) if since is None else since
    common: dict[str, Any] = {"rates": rates, "default_currency": default_currency}
    data = read_inputs(data, (*columns, CURRENCY), assume_zone=assume_zone)  # once for all
    currency = (
        rates.reporting
        if rates is not None
        else _one_currency(data, outcomes, as_of, default_currency, assume_zone)
    )
    label = period_bounds(to_utc(as_of).date(), period)[0]
    totals = {
        r.segment: r
        for r in rollup(
            data,
            outcomes,
            as_of=as_of,
            levels=columns,
            period=period,
            estimator=estimator,
            assume_zone=assume_zone,
            **common,
        )
        if r.level == columns[0]
    }
    quota_rows: dict[Segment, Any] = {}
    if quotas is not None:
        if quotas.by != columns[0]:
            raise AnalyticsError(
                f"the quotas are per {quotas.by!r} but the review is by {columns[0]!r}; "
                f"pass by={quotas.by!r} (or a quota table per {columns[0]!r})"
            )
        quota_rows = {
            r.segment: r
            for r in coverage(
                data,
                outcomes,
                as_of=as_of,
                quotas=quotas,
                period=period,
                estimator=estimator,
                assume_zone=assume_zone,
                **common,
            )
        }
    deals = staleness(
        data,
        outcomes,
        as_of=as_of,
        by=columns,
        activity_days=activity_days,
        next_step_field=next_step_field,
        assume_zone=assume_zone,
    )
    moved = deal_changes(
        data, outcomes, since=start, as_of=as_of, by=columns, period=period,
        assume_zone=assume_zone,
    )  # fmt: skip
    health: dict[Segment, list[StaleDeal]] = defaultdict(list)
    for d in deals:
        health[d.segment].append(d)
    counts: dict[Segment, Counter[str]] = defaultdict(Counter)
    for c in moved:
        counts[c.segment][c.change] += 1
    keys = set(totals) | set(counts) | {k[: len(columns)] for k in quota_rows if len(k) == 1}
    zero = Decimal(0)
    rows = []
    for key in sorted(keys, key=segment_order):
        total = totals.get(key)
        quota = quota_rows.get(key[:1]) if len(columns) == 1 else None
        mine = health.get(key, [])
        tables = not any(d.stale is not None for d in mine) and bool(mine)
        rows.append(
            ReviewRow(
                key,
                0 if total is None else total.deals,
                zero if total is None else total.pipeline,
                zero if total is None else total.weighted,
                zero if total is None else total.period_pipeline,
                zero if total is None else total.period_weighted,
                None if quota is None else quota.quota,
                zero if quota is None else quota.won,
                None if quota is None else quota.remaining,
                None if quota is None else quota.coverage,
                sum(d.stalled for d in mine),
                None if tables else sum(bool(d.stale) for d in mine),
                None if tables else sum(bool(d.next_step_overdue) for d in mine),
                {kind: counts[key][kind] for kind in CHANGES},
                total is None or total.deals < SMALL_SAMPLE,
            )
        )
    return Review(columns, label, tuple(rows), tuple(deals), tuple(moved), currency)
