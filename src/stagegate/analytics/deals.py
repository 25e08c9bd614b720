"""Deals that need attention: stalled in a stage, or slipping their close date.

**Stalled**: an open deal whose current visit (censored at ``as_of``) has lasted longer than
its stage's limit. The limit is the configured one (``Stage.max_days``), the one learned from
history (a quantile, ``p90`` by default, of the dwell of *won* deals in the stage), or the
stricter of both (``rule="strictest"``, the default). Rows are sorted by risk: how many times
the won-deal median dwell the deal has spent (``times_won_median``), then by dwell.

**Slipping**: a row whose ``close_date`` differs from the previous row's (both known) is a
reschedule; a later date is a *push*, an earlier one a *pull*. Per deal: pushes, pulls, days
pushed, first versus current expected close, pushes that cross a month or quarter boundary,
and a flag for at least ``flag_pushes`` pushes. For the portfolio: the slip rate (deals with
a push among deals with a close date) and the win rate by push count.

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

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import collect_rows, emit
from stagegate.analytics._stats import quantile
from stagegate.analytics._table import by_stage
from stagegate.analytics.intervals import KIND_CODE, ORDER, prepare, to_native
from stagegate.analytics.outcomes import AnalyticsError, Outcomes, OutcomesLike

__all__ = ["PushCount", "Slippage", "SlippingDeal", "StalledDeal", "slippage", "stalled"]

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


def stalled(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    learned: str = "p90",
    rule: str = "strictest",
    max_days: Mapping[str, float] | None = None,
    assume_zone: str | tzinfo | None = None,
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

    Returns:
        :class:`StalledDeal` rows (or a frame with those columns).

    Raises:
        AnalyticsError: ``learned`` or ``rule`` is unknown, or the input is unusable.
    """
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
        return by_stage("stage", {s: v[i] for s, v in limits.items()}).cast(dtype)

    current = frame.filter(nw.col("censored")).with_columns(
        limit_days=const(0, nw.Float64),
        limit_source=const(1, nw.String()),
        configured_days=const(2, nw.Float64),
        learned_days=const(3, nw.Float64),
        won_median_days=const(4, nw.Float64),
    )
    result = (
        current.filter(nw.col("duration_days") > nw.col("limit_days"))
        .with_columns(times_won_median=nw.col("duration_days") / nw.col("won_median_days"))
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
    """Close-date history of one opportunity (dates are calendar dates, days are whole)."""

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


@attrs.frozen(slots=True)
class PushCount:
    """Deals and win rate by number of pushes (the last row counts ``flag_pushes`` or more)."""

    pushes: int
    deals: int
    closed: int
    won: int
    win_rate: float | None


@attrs.frozen
class Slippage:
    """Result of :func:`slippage`.

    Attributes:
        deals: per opportunity with a known close date (:class:`SlippingDeal` columns).
        by_pushes: win rate by push count (:class:`PushCount` columns).
        slip_rate: share of deals with a close date that were pushed at least once.
        flagged: number of deals pushed at least ``flag_pushes`` times.
    """

    deals: Any
    by_pushes: Any
    slip_rate: float | None
    flagged: int


def _day(value: int | None) -> date | None:
    return None if value is None else _EPOCH + timedelta(days=value)


def _month(day: int) -> int:
    d = _EPOCH + timedelta(days=day)
    return d.year * 12 + d.month - 1


def _per_deal_python(groups: Mapping[str, list[Any]], outcomes: Outcomes) -> list[dict[str, Any]]:
    result = []
    for opp, rows in groups.items():
        pushes = pulls = pushed = months = quarters = net = 0
        prev: int | None = None
        for i, row in enumerate(rows):
            prev = rows[i - 1].close_day if i else None
            close = row.close_day
            if prev is None or close is None or close == prev:
                continue
            net += close - prev
            if close > prev:
                pushes += 1
                pushed += close - prev
                months += _month(close) > _month(prev)
                quarters += _month(close) // 3 > _month(prev) // 3
            else:
                pulls += 1
        current = rows[-1].close_day
        result.append(
            {
                "opportunity_id": opp,
                "final": KIND_CODE[outcomes.kinds[rows[-1].stage]],
                "pushes": pushes,
                "pulls": pulls,
                "days_pushed": pushed,
                "net_days": net,
                "month_pushes": months,
                "quarter_pushes": quarters,
                "current": current,
                "any_close": any(r.close_day is not None for r in rows),
            }
        )
    return result


def _per_deal_frame(rows: Any, outcomes: Outcomes) -> list[dict[str, Any]]:
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    prev = nw.col("close_day").shift(1).over(opp, order_by=ORDER)
    prev_month = nw.col("month").shift(1).over(opp, order_by=ORDER)
    month = nw.col("close_date").dt.year().cast(nw.Int64) * 12 + nw.col(
        "close_date"
    ).dt.month().cast(nw.Int64)
    frame = rows.with_columns(month=month - 1).with_columns(
        prev=prev,
        prev_month=prev_month,
        last=nw.col("at_us").shift(-1).over(opp, order_by=ORDER).is_null(),
        kind_code=by_stage("stage", {s: KIND_CODE[k] for s, k in outcomes.kinds.items()}, 0),
    )
    delta = nw.col("close_day") - nw.col("prev")
    push = delta > 0
    frame = frame.with_columns(
        push_n=nw.when(push).then(nw.lit(1)).otherwise(nw.lit(0)),
        pull_n=nw.when(delta < 0).then(nw.lit(1)).otherwise(nw.lit(0)),
        pushed=nw.when(push).then(delta).otherwise(nw.lit(0)),
        net=delta.fill_null(0),
        month_n=nw.when(push & (nw.col("month") > nw.col("prev_month")))
        .then(nw.lit(1))
        .otherwise(nw.lit(0)),
        quarter_n=nw.when(push & (nw.col("month") // 3 > nw.col("prev_month") // 3))
        .then(nw.lit(1))
        .otherwise(nw.lit(0)),
        final_code=nw.when(nw.col("last")).then(nw.col("kind_code")).otherwise(nw.lit(-1)),
        current_close=nw.when(nw.col("last")).then(nw.col("close_day")),
        has_close=nw.when(nw.col("close_day").is_null()).then(nw.lit(0)).otherwise(nw.lit(1)),
    )
    per_deal = frame.group_by(opp).agg(
        nw.col("final_code").max().alias("final"),
        nw.col("push_n").sum().alias("pushes"),
        nw.col("pull_n").sum().alias("pulls"),
        nw.col("pushed").sum().alias("days_pushed"),
        nw.col("net").sum().alias("net_days"),
        nw.col("month_n").sum().alias("month_pushes"),
        nw.col("quarter_n").sum().alias("quarter_pushes"),
        nw.col("current_close").max().alias("current"),
        nw.col("has_close").max().alias("any_close"),
    )
    return sorted(collect_rows(per_deal), key=lambda r: r[opp])


def slippage(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    flag_pushes: int = 3,
    assume_zone: str | tzinfo | None = None,
) -> Slippage:
    """Close-date pushes per deal and for the portfolio.

    Args:
        data: events, opportunities, row mappings, or a stage-history frame with
            ``close_date``.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the analysis stands at.
        flag_pushes: deals pushed at least this many times are flagged.
        assume_zone: the zone of naive instants in ``data``, if any.

    Returns:
        :class:`Slippage`; ``deals`` lists the deals that ever had a close date, by id.

    Raises:
        AnalyticsError: ``flag_pushes`` is below 1, or the input is unusable.
    """
    if flag_pushes < 1:
        raise AnalyticsError(f"flag_pushes must be at least 1, got {flag_pushes!r}")
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, keep_rows=True)
    if prepared.rows is None:
        raise AnalyticsError(
            "slippage needs the stage-history rows (close-date changes happen between stage "
            "changes), not stage intervals"
        )
    out = prepared.outcomes
    if prepared.is_frame:
        raw = _per_deal_frame(prepared.rows, out)
    else:
        raw = _per_deal_python(prepared.rows, out)
    names = {v: k for k, v in KIND_CODE.items()}
    deals = []
    by: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in raw:
        if not r["any_close"]:
            continue
        current = r["current"]
        outcome = names.get(int(r["final"]), "open")
        pushes = int(r["pushes"])
        deals.append(
            SlippingDeal(
                r["opportunity_id"],
                outcome,
                pushes,
                int(r["pulls"]),
                int(r["days_pushed"]),
                None if current is None else _day(int(current) - int(r["net_days"])),
                _day(None if current is None else int(current)),
                None if current is None else int(r["net_days"]),
                int(r["month_pushes"]),
                int(r["quarter_pushes"]),
                pushes >= flag_pushes,
            )
        )
        bucket = by[min(pushes, flag_pushes)]
        bucket[0] += 1
        bucket[1] += outcome != "open"
        bucket[2] += outcome == "won"
    table = [PushCount(k, n, c, w, w / c if c else None) for k, (n, c, w) in sorted(by.items())]
    slipped = sum(1 for d in deals if d.pushes)
    return Slippage(
        emit(prepared, deals, SlippingDeal),
        emit(prepared, table, PushCount),
        slipped / len(deals) if deals else None,
        sum(d.flagged for d in deals),
    )
