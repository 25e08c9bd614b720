"""Deals that need attention: stalled in a stage, or slipping their close date.

**Stalled**: an open deal whose current visit (censored at ``as_of``) has lasted longer than
its stage's limit. The limit is the configured one (``Stage.max_days``), the one learned from
history (a quantile, ``p90`` by default, of the dwell of *won* deals in the stage), or the
stricter of both (``rule="strictest"``, the default). Rows are sorted by risk: how many times
the won-deal median dwell the deal has spent (``times_won_median``), then by dwell.

**Slipping**: a reschedule is a change between two consecutive *known* close dates of a
deal (rows without a close date are skipped, so clearing the date and setting a later one is
a push); a later date is a *push*, an earlier one a *pull*. Per deal: pushes, pulls, days
pushed and pulled, the first known versus the current expected close, pushes that move the
date into a later month or (fiscal) quarter and the boundaries they cross, the deal's age,
and a flag for at least ``flag_pushes`` pushes. For the portfolio: the slip rate (deals with
a push among deals with a close date) and the win rate by push count, overall and within
deal-age bands (long-lived deals gather pushes, so compare deals of similar age).

>>> from datetime import date, datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead", "close_date": date(2026, 1, 30)},
...     {"opportunity_id": "a", "at": t(5), "stage": "lead", "close_date": date(2026, 2, 15)},
...     {"opportunity_id": "a", "at": t(9), "stage": "lead", "close_date": date(2026, 2, 20)},
... ]
>>> (d,) = slippage(rows, kinds, as_of=t(10)).deals
>>> d.pushes, d.days_pushed, d.month_pushes, d.first_close_date, d.current_close_date
(2, 21, 1, datetime.date(2026, 1, 30), datetime.date(2026, 2, 20))
>>> (s,) = stalled(rows, {"lead": "open", "won": "won"}, as_of=t(10), max_days={"lead": 7})
>>> s.opportunity_id, s.dwell_days, s.limit_days, s.limit_source
('a', 9.0, 7.0, 'configured')
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import is_eager
from stagegate.analytics._stats import quantile
from stagegate.analytics._table import DAY_US, by_stage
from stagegate.analytics.intervals import KIND_CODE, ORDER, prepare, to_native
from stagegate.analytics.outcomes import AnalyticsError, Outcomes, OutcomesLike
from stagegate.analytics.snapshot import current_frame, ordered_rows, prepared_of

__all__ = [
    "DEFAULT_AGE_BANDS",
    "PushAgeCount",
    "PushCount",
    "Slippage",
    "SlippingDeal",
    "StalledDeal",
    "slippage",
    "stalled",
]

_LEARNED = {"median": 0.5, "p75": 0.75, "p90": 0.9}
_RULES = ("strictest", "configured", "learned")
_EPOCH = date(1970, 1, 1)


@attrs.frozen(slots=True)
class StalledDeal:
    """An open deal that has stayed in its current stage longer than the limit."""

    opportunity_id: str
    stage: str
    entered_at: datetime
    dwell_days: float
    limit_days: float
    limit_source: str
    configured_days: float | None
    learned_days: float | None
    won_median_days: float | None
    times_won_median: float | None
    amount: float | None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)


def stalled(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    learned: str = "p90",
    rule: str = "strictest",
    max_days: Mapping[str, float] | None = None,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Open deals whose current dwell exceeds the stage's limit, riskiest first.

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals`.
        outcomes: a ``Process`` (configured limits come from ``Stage.max_days``) or a mapping.
        as_of: the instant the analysis stands at.
        learned: which dwell of won deals is the learned limit: ``median``, ``p75`` or ``p90``.
        rule: ``strictest`` (the lower of configured and learned), ``configured`` or
            ``learned``.
        max_days: configured limits that override the process's, by stage.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): each row gets the ``segment`` in force at
            ``as_of``, rows grouped by segment (no value last), riskiest first within one; a
            frame gets the segment columns first. The learned limits stay those of the whole
            process (every deal's history), not the segment's.

    Returns:
        :class:`StalledDeal` rows (or a frame with those columns).

    Raises:
        AnalyticsError: ``learned`` or ``rule`` is unknown, ``by`` names no column or a
            result column, or the input is unusable.
    """
    if by is not None:
        from stagegate.analytics._by_deal import per_deal_by  # noqa: PLC0415 - a cycle

        def run(part: Any) -> Any:
            return stalled(part, outcomes, as_of=as_of, learned=learned, rule=rule,
                           max_days=max_days, assume_zone=assume_zone)  # fmt: skip

        return per_deal_by(run, data, by, StalledDeal, at=as_of, assume_zone=assume_zone)
    if learned not in _LEARNED or rule not in _RULES:
        raise AnalyticsError(
            f"learned must be one of {', '.join(_LEARNED)} and rule one of {', '.join(_RULES)}; "
            f"got learned={learned!r}, rule={rule!r}"
        )
    out = Outcomes.of(outcomes, max_days=max_days)
    prepared = prepare(data, out, as_of=as_of, assume_zone=assume_zone)
    if prepared.python is not None:
        won_dwell: dict[str, list[float]] = defaultdict(list)
        for v in prepared.python:
            if v.kind == "open" and v.outcome == "won" and v.duration_days is not None:
                won_dwell[v.stage].append(v.duration_days)
        stats_py = {}
        for s, values in won_dwell.items():
            values.sort()
            stats_py[s] = (quantile(values, _LEARNED[learned]), quantile(values, 0.5))
        limits = _limits_from_stats(stats_py, out, rule)
        rows = []
        for v in prepared.python:
            if not v.censored or v.stage not in limits or v.duration_days is None:
                continue
            limit, source, configured, learned_days, median = limits[v.stage]
            if v.duration_days > limit:
                times = v.duration_days / median if median else None
                rows.append(
                    StalledDeal(
                        v.opportunity_id,
                        v.stage,
                        v.entered_at,
                        v.duration_days,
                        limit,
                        source,
                        configured,
                        learned_days,
                        median,
                        times,
                        v.amount,
                    )
                )
        rows.sort(key=lambda r: (r.times_won_median is None, -(r.times_won_median or 0),
                                 -r.dwell_days, r.opportunity_id))  # fmt: skip
        return rows
    import narwhals as nw  # noqa: PLC0415

    frame = prepared.frame
    stats = collect_rows(
        frame.filter(
            (nw.col("kind") == "open")
            & (nw.col("outcome") == "won")
            & ~nw.col("duration_days").is_null()
        )
        .group_by("stage")
        .agg(
            nw.col("duration_days").quantile(_LEARNED[learned], interpolation="linear").alias("q"),
            nw.col("duration_days").median().alias("m"),
        )
    )
    limits = _limits_from_stats({r["stage"]: (r["q"], r["m"]) for r in stats}, out, rule)
    if not limits:
        return emit(prepared, [], StalledDeal)

    def const(i: int, dtype: Any) -> Any:
        return by_stage("stage", {s: v[i] for s, v in limits.items()}, dtype=dtype).cast(dtype)

    current = frame.filter(nw.col("censored")).with_columns(
        limit_days=const(0, nw.Float64),
        limit_source=const(1, nw.String()),
        configured_days=const(2, nw.Float64),
        learned_days=const(3, nw.Float64),
        won_median_days=const(4, nw.Float64),
    )
    result = (
        current.filter(nw.col("duration_days") > nw.col("limit_days"))
        .with_columns(times_won_median=_times_median())
        .select(
            "opportunity_id",
            "stage",
            "entered_at",
            nw.col("duration_days").alias("dwell_days"),
            "limit_days",
            "limit_source",
            "configured_days",
            "learned_days",
            "won_median_days",
            "times_won_median",
            "amount",
        )
        .sort(
            ["times_won_median", "dwell_days", "opportunity_id"],
            descending=[True, True, False],
            nulls_last=True,
        )
    )
    return to_native(prepared, result)


def _times_median() -> Any:
    """Dwell over the won median, none when that median is zero (as on the Python path)."""
    import narwhals as nw  # noqa: PLC0415

    median = nw.col("won_median_days")
    return nw.when(median > 0).then(nw.col("duration_days") / median)


def _limits_from_stats(
    stats: Mapping[str, tuple[float | None, float | None]], outcomes: Outcomes, rule: str
) -> dict[str, tuple[float, str, float | None, float | None, float | None]]:
    limits = {}
    for s in outcomes.open:
        learned_days, median = stats.get(s, (None, None))
        configured = outcomes.max_days.get(s)
        options = []
        if configured is not None and rule in ("strictest", "configured"):
            options.append((configured, "configured"))
        if learned_days is not None and rule in ("strictest", "learned"):
            options.append((learned_days, "learned"))
        if options:
            limit, source = min(options)
            limits[s] = (limit, source, configured, learned_days, median)
    return limits


@attrs.frozen(slots=True)
class SlippingDeal:
    """Close-date history of one opportunity (dates are calendar dates, days are whole).

    Attributes:
        opportunity_id: the opportunity.
        outcome: ``"won"``, ``"lost"`` or ``"open"`` at ``as_of``.
        pushes: reschedules to a later date (between consecutive *known* close dates: a date
            cleared and later set again is compared with the date before the gap).
        pulls: reschedules to an earlier date, by the same rule.
        days_pushed: days added by the pushes.
        first_close_date: the first known close date.
        current_close_date: the close date in force at ``as_of`` (``None`` if cleared).
        net_days: ``current_close_date - first_close_date`` in days (``None`` if the current
            date is cleared); equals ``days_pushed - days_pulled``.
        month_pushes: pushes whose new date is in a later calendar month than the old one.
        quarter_pushes: pushes whose new date is in a later (fiscal) quarter than the old one.
        flagged: pushed at least ``flag_pushes`` times.
        days_pulled: days removed by the pulls.
        months_crossed: month boundaries crossed by the pushes, summed (a push from 31 Jan
            to 1 Mar crosses 2).
        quarters_crossed: (fiscal) quarter boundaries crossed by the pushes, summed.
        age_days: days from the deal's first row to its closing (closed deals) or to
            ``as_of`` (open deals).
    """

    opportunity_id: str
    outcome: str
    pushes: int
    pulls: int
    days_pushed: int
    first_close_date: date | None
    current_close_date: date | None
    net_days: int | None
    month_pushes: int
    quarter_pushes: int
    flagged: bool
    days_pulled: int
    months_crossed: int
    quarters_crossed: int
    age_days: float
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)


@attrs.frozen(slots=True)
class PushCount:
    """Deals and win rate by number of pushes (the last row counts ``flag_pushes`` or more)."""

    pushes: int
    deals: int
    closed: int
    won: int
    win_rate: float | None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen(slots=True)
class PushAgeCount:
    """Deals and win rate by number of pushes, among deals of similar age.

    The age band runs from ``age_from_days`` (included) to ``age_to_days`` (excluded;
    ``None``: no upper bound); a deal's age is :attr:`SlippingDeal.age_days`.
    """

    pushes: int
    age_from_days: float
    age_to_days: float | None
    deals: int
    closed: int
    won: int
    win_rate: float | None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class Slippage:
    """Result of :func:`slippage`.

    Attributes:
        deals: per opportunity with a known close date (:class:`SlippingDeal` columns).
        by_pushes: win rate by push count (:class:`PushCount` columns). Long-lived deals
            gather pushes, so this table mixes the effect of pushes with that of deal age:
            read it beside ``by_pushes_and_age``.
        slip_rate: share of deals with a close date that were pushed at least once.
        flagged: number of deals pushed at least ``flag_pushes`` times.
        by_pushes_and_age: win rate by push count within each age band
            (:class:`PushAgeCount` columns), empty bands left out.
    """

    deals: Any
    by_pushes: Any
    slip_rate: float | None
    flagged: int
    by_pushes_and_age: Any = ()

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


DEFAULT_AGE_BANDS = (0.0, 30.0, 90.0, 180.0, 365.0)
"""Lower bounds, in days, of the deal-age bands of :attr:`Slippage.by_pushes_and_age`."""


def _day(value: int | None) -> date | None:
    return None if value is None else _EPOCH + timedelta(days=value)


def _month(day: int) -> int:
    d = _EPOCH + timedelta(days=day)
    return d.year * 12 + d.month - 1


def _quarter(month: int, fiscal_year_start: int) -> int:
    """The (fiscal) quarter number of a month number (``year * 12 + month - 1``)."""
    return (month - (fiscal_year_start - 1)) // 3


def _per_deal_python(
    groups: Mapping[str, list[Any]], outcomes: Outcomes, fiscal_year_start: int
) -> list[dict[str, Any]]:
    result = []
    for opp, rows in groups.items():
        known = [r.close_day for r in rows if r.close_day is not None]
        if not known:
            continue
        pushes = pulls = pushed = pulled = months = quarters = crossed = q_crossed = 0
        for prev, close in itertools.pairwise(known):
            if close > prev:
                pushes += 1
                pushed += close - prev
                m0, m1 = _month(prev), _month(close)
                q0, q1 = _quarter(m0, fiscal_year_start), _quarter(m1, fiscal_year_start)
                months += m1 > m0
                quarters += q1 > q0
                crossed += m1 - m0
                q_crossed += q1 - q0
            elif close < prev:
                pulls += 1
                pulled += prev - close
        result.append(
            {
                "opportunity_id": opp,
                "final": KIND_CODE[outcomes.kinds[rows[-1].stage]],
                "pushes": pushes,
                "pulls": pulls,
                "days_pushed": pushed,
                "days_pulled": pulled,
                "month_pushes": months,
                "quarter_pushes": quarters,
                "months_crossed": crossed,
                "quarters_crossed": q_crossed,
                "first": known[0],
                "current": rows[-1].close_day,
            }
        )
    return result


def _per_deal_frame(rows: Any, outcomes: Outcomes, fiscal_year_start: int) -> Any:
    """The push and pull counts of every deal with a known close date (lazy engines)."""
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    close = nw.col("close_date")
    month = close.dt.year().cast(nw.Int64) * 12 + close.dt.month().cast(nw.Int64) - 1
    rows = rows.select(opp, *ORDER, "stage", "close_day", "close_date")
    known = rows.filter(~nw.col("close_day").is_null())
    known = known.with_columns(month=month)
    known = known.with_columns(
        quarter=(nw.col("month") - (fiscal_year_start - 1)) // 3,
    )
    known = known.with_columns(
        prev=nw.col("close_day").shift(1).over(opp, order_by=ORDER),
        prev_month=nw.col("month").shift(1).over(opp, order_by=ORDER),
        prev_quarter=nw.col("quarter").shift(1).over(opp, order_by=ORDER),
    )
    delta = nw.col("close_day") - nw.col("prev")
    push = delta > 0
    zero = nw.lit(0)

    def when_push(value: Any) -> Any:
        return nw.when(push).then(value).otherwise(zero)

    known = known.with_columns(
        push_n=when_push(nw.lit(1)),
        pull_n=nw.when(delta < 0).then(nw.lit(1)).otherwise(zero),
        pushed=when_push(delta),
        pulled=nw.when(delta < 0).then(-delta).otherwise(zero),
        month_n=when_push(
            nw.when(nw.col("month") > nw.col("prev_month")).then(nw.lit(1)).otherwise(zero)
        ),
        quarter_n=when_push(
            nw.when(nw.col("quarter") > nw.col("prev_quarter")).then(nw.lit(1)).otherwise(zero)
        ),
        crossed=when_push(nw.col("month") - nw.col("prev_month")),
        q_crossed=when_push(nw.col("quarter") - nw.col("prev_quarter")),
        first_close=nw.when(nw.col("prev").is_null()).then(nw.col("close_day")),
        first_date=nw.when(nw.col("prev").is_null()).then(nw.col("close_date")),
    )
    per_deal = known.group_by(opp).agg(
        nw.col("push_n").sum().alias("pushes"),
        nw.col("pull_n").sum().alias("pulls"),
        nw.col("pushed").sum().alias("days_pushed"),
        nw.col("pulled").sum().alias("days_pulled"),
        nw.col("month_n").sum().alias("month_pushes"),
        nw.col("quarter_n").sum().alias("quarter_pushes"),
        nw.col("crossed").sum().alias("months_crossed"),
        nw.col("q_crossed").sum().alias("quarters_crossed"),
        nw.col("first_close").max().alias("first"),
        nw.col("first_date").max().alias("first_close_date"),
    )
    last = (
        rows.with_columns(
            last=nw.col("at_us").shift(-1).over(opp, order_by=ORDER).is_null(),
            kind_code=by_stage("stage", {s: KIND_CODE[k] for s, k in outcomes.kinds.items()}, 0),
        )
        .filter(nw.col("last"))
        .select(
            opp,
            nw.col("kind_code").alias("final"),
            nw.col("close_day").alias("current"),
            nw.col("close_date").alias("current_close_date"),
        )
    )
    return per_deal.join(last, on=opp, how="left").lazy()


def _deals_in_memory(prepared: Any, fiscal_year_start: int, flag_pushes: int) -> Any:
    """The per-deal columns of :func:`slippage` on in-memory rows, by id (a lazy frame).

    One pass over the rows ordered by deal, with integer deal numbers instead of ids, and
    no group by or join: a deal's sums are read off running sums at its last row, and the
    rows that change its known close date are the only ones kept for them. The outcome,
    the current close date and the last entry come from the current states of the snapshot
    (:func:`~stagegate.analytics.snapshot.current_frame`, by id, computed once).
    """
    import narwhals as nw  # noqa: PLC0415

    rows, marks = ordered_rows(prepared)
    close, deal = nw.col("close_day"), nw.col("deal")
    numbered = rows.select("close_day", "close_date").with_columns(
        marks.select(deal=nw.col("start").cast(nw.Int64).cum_sum())["deal"]
    )
    # the rows that set a deal's close date to a new value: its first known one, and each
    # reschedule (a row repeating the deal's known date before it adds nothing)
    known = numbered.filter(~close.is_null())
    same = (deal == deal.shift(1)).fill_null(value=False)
    known = known.filter(~(same & (close == close.shift(1))).fill_null(value=False))
    date = nw.col("close_date")
    month = date.dt.year().cast(nw.Int64) * 12 + date.dt.month().cast(nw.Int64) - 1
    known = known.with_columns(same=same, month=month)
    later = nw.col("same")
    known = known.with_columns(
        quarter=(nw.col("month") - (fiscal_year_start - 1)) // 3,
        delta=nw.when(later).then(close - close.shift(1)),
        months=nw.when(later).then(nw.col("month") - nw.col("month").shift(1)),
    )
    known = known.with_columns(
        quarters=nw.when(later).then(nw.col("quarter") - nw.col("quarter").shift(1)),
    )
    delta = nw.col("delta")
    push, pull, zero = delta > 0, delta < 0, nw.lit(0, nw.Int64)

    def when_push(value: Any) -> Any:
        return nw.when(push).then(value).otherwise(zero)

    parts = {
        "pushes": when_push(nw.lit(1, nw.Int64)),
        "pulls": nw.when(pull).then(nw.lit(1, nw.Int64)).otherwise(zero),
        "days_pushed": when_push(delta),
        "days_pulled": nw.when(pull).then(-delta).otherwise(zero),
        "month_pushes": when_push((nw.col("months") > 0).cast(nw.Int64)),
        "quarter_pushes": when_push((nw.col("quarters") > 0).cast(nw.Int64)),
        "months_crossed": when_push(nw.col("months")),
        "quarters_crossed": when_push(nw.col("quarters")),
    }
    summed = known.select(
        first=nw.when(~later).then(close).fill_null(strategy="forward"),
        first_close_date=nw.when(~later).then(date).fill_null(strategy="forward"),
        last=(deal != deal.shift(-1)).fill_null(value=True),
        **{name: value.cum_sum() for name, value in parts.items()},
    ).filter(nw.col("last"))
    per_deal = summed.select(
        "first",
        "first_close_date",
        **{name: (nw.col(name) - nw.col(name).shift(1).fill_null(0)) for name in parts},
    )
    current = (
        current_frame(prepared)
        .collect()
        .select("opportunity_id", "kind", "entered_us", "close_day", "close_date")
    )
    current = current.with_columns(opened=rows["at_us"].filter(marks["start"]))
    if len(per_deal) < len(current):  # deals without a known close date are left out
        known_so_far = (~close.is_null()).cast(nw.Int64).cum_sum()
        ends = rows.select(n=known_so_far).filter(marks["end"])
        n = nw.col("n")
        dated = ends.select(dated=n > n.shift(1).fill_null(0)).get_column("dated")
        current = current.filter(dated)
    end = nw.when(nw.col("kind") == "open").then(nw.lit(prepared.as_of_us))
    return (
        nw.concat([current, per_deal], how="horizontal")
        .select(
            "opportunity_id",
            nw.col("kind").alias("outcome"),
            nw.col("pushes").cast(nw.Int64),
            nw.col("pulls").cast(nw.Int64),
            nw.col("days_pushed").cast(nw.Int64),
            "first_close_date",
            nw.col("close_date").alias("current_close_date"),
            (close - nw.col("first")).cast(nw.Int64).alias("net_days"),
            nw.col("month_pushes").cast(nw.Int64),
            nw.col("quarter_pushes").cast(nw.Int64),
            (nw.col("pushes") >= flag_pushes).alias("flagged"),
            nw.col("days_pulled").cast(nw.Int64),
            nw.col("months_crossed").cast(nw.Int64),
            nw.col("quarters_crossed").cast(nw.Int64),
            ((end.otherwise(nw.col("entered_us")) - nw.col("opened")) / DAY_US)
            .cast(nw.Float64)
            .alias("age_days"),
        )
        .lazy()
    )


def _ages_frame(prepared: Any) -> Any:
    """Per opportunity (a lazy frame): ``age_days``, from its first row to its closing or as_of."""
    import narwhals as nw  # noqa: PLC0415

    terminal = nw.col("exited_us").is_null() & (nw.col("kind") != "open")
    spans = (
        prepared.frame.with_columns(closing=nw.when(terminal).then(nw.col("entered_us")))
        .group_by("opportunity_id")
        .agg(nw.col("entered_us").min().alias("opened"), nw.col("closing").max().alias("closed"))
    )
    end = nw.when(nw.col("closed").is_null()).then(nw.lit(prepared.as_of_us))
    return spans.select(
        "opportunity_id",
        ((end.otherwise(nw.col("closed")) - nw.col("opened")) / DAY_US).alias("age_days"),
    )


def _deals_lazy(prepared: Any, fiscal_year_start: int, flag_pushes: int) -> Any:
    """The per-deal columns of :func:`slippage` on a lazy engine, by id (a lazy frame)."""
    import narwhals as nw  # noqa: PLC0415

    raw = _per_deal_frame(prepared.rows, prepared.outcomes, fiscal_year_start)
    outcome = (
        nw.when(nw.col("final") == KIND_CODE["won"])
        .then(nw.lit("won"))
        .when(nw.col("final") == KIND_CODE["lost"])
        .then(nw.lit("lost"))
        .otherwise(nw.lit("open"))
    )
    return (
        raw.join(_ages_frame(prepared), on="opportunity_id", how="left")
        .with_columns(outcome=outcome)
        .select(
            "opportunity_id",
            "outcome",
            nw.col("pushes").cast(nw.Int64),
            nw.col("pulls").cast(nw.Int64),
            nw.col("days_pushed").cast(nw.Int64),
            "first_close_date",
            "current_close_date",
            (nw.col("current") - nw.col("first")).cast(nw.Int64).alias("net_days"),
            nw.col("month_pushes").cast(nw.Int64),
            nw.col("quarter_pushes").cast(nw.Int64),
            (nw.col("pushes") >= flag_pushes).alias("flagged"),
            nw.col("days_pulled").cast(nw.Int64),
            nw.col("months_crossed").cast(nw.Int64),
            nw.col("quarters_crossed").cast(nw.Int64),
            nw.col("age_days").cast(nw.Float64),
        )
        .sort("opportunity_id")
    )


def _slippage_frame(
    prepared: Any, fiscal_year_start: int, flag_pushes: int, bands: tuple[float, ...]
) -> Slippage:
    """:func:`slippage` on the frame path: per-deal rows and the tables, without a row loop."""
    import narwhals as nw  # noqa: PLC0415

    if is_eager(prepared.rows):
        deals = _deals_in_memory(prepared, fiscal_year_start, flag_pushes)
    else:
        deals = _deals_lazy(prepared, fiscal_year_start, flag_pushes)
    deals = _materialized(deals)
    band = nw.lit(0, nw.Int64)
    for low in bands[1:]:
        band = band + (nw.col("age_days") >= low).cast(nw.Int64)
    counted = deals.with_columns(
        key=nw.when(nw.col("pushes") < flag_pushes)
        .then(nw.col("pushes"))
        .otherwise(nw.lit(flag_pushes, nw.Int64)),
        band=band,
        closed=(nw.col("outcome") != "open").cast(nw.Int64),
        won=(nw.col("outcome") == "won").cast(nw.Int64),
    )

    def table(keys: list[str]) -> list[dict[str, Any]]:
        rows = collect_rows(
            counted.group_by(keys).agg(
                nw.len().alias("n"), nw.col("closed").sum().alias("c"), nw.col("won").sum()
            )
        )
        return sorted(rows, key=lambda r: tuple(r[k] for k in keys))

    by = [
        PushCount(int(r["key"]), int(r["n"]), int(r["c"]), int(r["won"]),
                  int(r["won"]) / int(r["c"]) if r["c"] else None)
        for r in table(["key"])
    ]  # fmt: skip
    aged = [
        PushAgeCount(
            int(r["key"]),
            bands[int(r["band"])],
            bands[int(r["band"]) + 1] if int(r["band"]) + 1 < len(bands) else None,
            int(r["n"]),
            int(r["c"]),
            int(r["won"]),
            int(r["won"]) / int(r["c"]) if r["c"] else None,
        )
        for r in table(["key", "band"])
    ]
    total, slipped, flagged = collect_rows(
        deals.select(
            nw.len().alias("n"),
            (nw.col("pushes") > 0).cast(nw.Int64).sum().alias("s"),
            nw.col("flagged").cast(nw.Int64).sum().alias("f"),
        )
    )[0].values()
    return Slippage(
        to_native(prepared, deals),
        emit(prepared, by, PushCount),
        int(slipped or 0) / int(total) if total else None,
        int(flagged or 0),
        emit(prepared, aged, PushAgeCount),
    )


def _materialized(frame: Any) -> Any:
    """A lazy frame computed once when in memory (it is read several times)."""
    return frame.collect().lazy() if is_eager(frame) else frame


def _ages(prepared: Any) -> dict[str, float]:
    """Per opportunity: days from its first row to its closing, or to ``as_of`` if open."""
    opened: dict[str, int] = {}
    closed: dict[str, int] = {}
    for v in prepared.python:
        first = opened.get(v.opportunity_id)
        opened[v.opportunity_id] = v.entered_us if first is None else min(first, v.entered_us)
        if v.exited_us is None and v.kind != "open":
            closed[v.opportunity_id] = v.entered_us
    as_of = prepared.as_of_us
    return {o: (closed.get(o, as_of) - t) / DAY_US for o, t in opened.items()}


def _band(age: float, bands: tuple[float, ...]) -> int:
    return max(0, bisect.bisect_right(bands, age) - 1)


def slippage(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    flag_pushes: int = 3,
    fiscal_year_start: int = 1,
    age_bands: Sequence[float] = DEFAULT_AGE_BANDS,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Slippage:
    """Close-date pushes per deal and for the portfolio.

    A *reschedule* is a change between two consecutive known close dates of a deal, in row
    order: rows without a close date are skipped, so clearing the date and then setting a
    later one is a push (and an earlier one a pull).

    Args:
        data: events, opportunities, row mappings, or a stage-history frame with
            ``close_date``.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the analysis stands at.
        flag_pushes: deals pushed at least this many times are flagged.
        fiscal_year_start: the month (1-12) the fiscal year starts in; quarters are counted
            from it (1: calendar quarters; 2: Feb-Apr, May-Jul, ...).
        age_bands: increasing lower bounds, in days, of the deal-age bands of
            ``by_pushes_and_age``; the first must be 0.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): each deal gets the ``segment`` in force at
            ``as_of`` (deals grouped by segment), and ``by_pushes`` and ``by_pushes_and_age``
            have rows per segment with ``segment`` and ``small`` (fewer than 30 deals with a
            close date in the segment); ``slip_rate`` and ``flagged`` stay the whole's.

    Returns:
        :class:`Slippage`; ``deals`` lists the deals that ever had a close date, by id.

    Raises:
        AnalyticsError: ``flag_pushes`` is below 1, ``fiscal_year_start`` is not a month,
            ``age_bands`` is not increasing from 0, ``by`` names no column or a result
            column, or the input is unusable.
    """
    if by is not None:
        from stagegate.analytics._by_deal import slippage_by  # noqa: PLC0415 - a cycle

        def run(part: Any) -> Slippage:
            return slippage(part, outcomes, as_of=as_of, flag_pushes=flag_pushes,
                            fiscal_year_start=fiscal_year_start, age_bands=age_bands,
                            assume_zone=assume_zone)  # fmt: skip

        return slippage_by(run, data, by, as_of=as_of, flag_pushes=flag_pushes,
                           age_bands=age_bands, assume_zone=assume_zone)  # fmt: skip
    if flag_pushes < 1:
        raise AnalyticsError(f"flag_pushes must be at least 1, got {flag_pushes!r}")
    if not isinstance(fiscal_year_start, int) or not 1 <= fiscal_year_start <= 12:  # noqa: PLR2004
        raise AnalyticsError(
            f"fiscal_year_start must be a month number from 1 to 12, got {fiscal_year_start!r}"
        )
    bands = tuple(float(b) for b in age_bands)
    if not bands or bands[0] != 0 or any(b >= c for b, c in itertools.pairwise(bands)):
        raise AnalyticsError(
            f"age_bands must be increasing lower bounds in days starting at 0, got {age_bands!r}"
        )
    prepared = prepared_of(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    if prepared.rows is None:
        raise AnalyticsError(
            "slippage needs the stage-history rows (close-date changes happen between stage "
            "changes), not stage intervals"
        )
    out = prepared.outcomes
    if prepared.is_frame:
        return _slippage_frame(prepared, fiscal_year_start, flag_pushes, bands)
    raw = _per_deal_python(prepared.rows, out, fiscal_year_start)
    ages = _ages(prepared)
    names = {v: k for k, v in KIND_CODE.items()}
    deals = []
    pushed: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_age: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in raw:
        current = None if r["current"] is None else int(r["current"])
        first = int(r["first"])
        outcome = names.get(int(r["final"]), "open")
        pushes = int(r["pushes"])
        age = ages[r["opportunity_id"]]
        deals.append(
            SlippingDeal(
                r["opportunity_id"],
                outcome,
                pushes,
                int(r["pulls"]),
                int(r["days_pushed"]),
                _day(first),
                _day(current),
                None if current is None else current - first,
                int(r["month_pushes"]),
                int(r["quarter_pushes"]),
                pushes >= flag_pushes,
                int(r["days_pulled"]),
                int(r["months_crossed"]),
                int(r["quarters_crossed"]),
                age,
            )
        )
        key = min(pushes, flag_pushes)
        for bucket in (pushed[key], by_age[key, _band(age, bands)]):
            bucket[0] += 1
            bucket[1] += outcome != "open"
            bucket[2] += outcome == "won"
    table = [PushCount(k, n, c, w, w / c if c else None) for k, (n, c, w) in sorted(pushed.items())]
    aged = [
        PushAgeCount(
            k,
            bands[b],
            bands[b + 1] if b + 1 < len(bands) else None,
            n,
            c,
            w,
            w / c if c else None,
        )
        for (k, b), (n, c, w) in sorted(by_age.items())
    ]
    slipped = sum(1 for d in deals if d.pushes)
    return Slippage(
        emit(prepared, deals, SlippingDeal),
        emit(prepared, table, PushCount),
        slipped / len(deals) if deals else None,
        sum(d.flagged for d in deals),
        emit(prepared, aged, PushAgeCount),
    )
