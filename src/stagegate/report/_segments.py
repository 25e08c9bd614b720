"""The report's segment section: whose deals are stalled and slipping, whose forecast is soft.

One row per segment (``by="owner"``, or several columns such as ``("region", "team")``): the
figures of the review functions of :mod:`stagegate.analytics`, computed from one preparation of
the log (as the report's other sections are) and attributed to segments as those functions do,
so every number can be recomputed from the public API (``tests/test_report_segments.py`` does
it with the calls named here):

- open deals, pipeline, weighted pipeline and the current period's weighted forecast:
  :func:`~stagegate.analytics.rollup` (each deal at its segment at ``as_of``);
- stalled by dwell: :func:`~stagegate.analytics.stalled` with the report's rule; stale by
  activity: :func:`~stagegate.analytics.staleness` (on events, or on a store's frame, whose
  ``kind`` column carries the ``activity_logged`` rows); when the log records no activity at
  all (a table without ``kind``, or a CRM that feeds none), the ``stale`` figures are ``None``:
  unknown, not every deal;
- slipping: :func:`~stagegate.analytics.slippage` (open deals pushed at least ``flag_pushes``
  times), and every push of the segment's open deals;
- overdue: open deals whose expected close date is before ``as_of``'s date
  (:func:`~stagegate.analytics.snapshot`);
- won, lost, win rate and the median won cycle: :func:`~stagegate.analytics.scorecard` (each
  closed deal at its segment at its close), ``small`` under 30 closed deals.

The **soft forecast** of a segment is the part of its weighted forecast for the current period
that rests on deals at risk: stalled by dwell, stale by activity, slipping, or past their
expected close date (:data:`SOFT_FORECAST`). Rows come riskiest first: the largest soft
forecast, then the largest amount at risk. The section is computed only when asked for
(``build_document(..., by=...)``): without ``by`` it costs nothing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import attrs

from stagegate._time import epoch_us, to_utc
from stagegate.errors import StagegateError
from stagegate.report._deals import count_of
from stagegate.segments import OWNER, RESERVED_NAMES, names_of

__all__ = [
    "RISKS",
    "SOFT_FORECAST",
    "UnknownSegmentColumnError",
    "check_columns",
    "segment_columns_of",
    "segment_inputs",
    "segment_section",
]

SOFT_FORECAST = (
    "Soft forecast: the share of a segment's weighted forecast for the current period that "
    "rests on deals at risk (stalled in their stage, without activity for {activity_days} "
    "days, pushed at least {flag_pushes} times, or past their expected close date). Firm up "
    "or take out those deals first."
)
"""The one-line definition the report prints beside the section (a format string)."""
RISKS = ("stalled", "stale", "slipping", "overdue")
"""Why a deal is at risk, in the order a deal's first reason is taken for the chart."""
PERIOD = "quarter"
"""The period of the section's forecast: the quarter holding ``as_of``."""
ACTIVITY_DAYS = 14.0
"""Days without a logged activity after which an open deal is stale."""
_NONE = "(none)"


class UnknownSegmentColumnError(StagegateError, LookupError):
    """``by`` names a column the data does not carry; ``available`` lists the ones it does."""

    def __init__(self, missing: Sequence[str], available: Sequence[str]) -> None:
        self.missing, self.available = tuple(missing), tuple(available)
        listed = ", ".join(repr(c) for c in self.missing)
        there = (
            f"the data has {', '.join(self.available)}"
            if self.available
            else "the data records no owner and no segment attribute (record them with "
            "Opportunity.reassign / set_attribute, or import an owner column)"
        )
        super().__init__(
            f"cannot report by {listed}: no such segment column; {there}; "
            "pass one of those to --by (by=)"
        )


UnknownSegmentColumnError.__module__ = "stagegate.report"


def segment_columns_of(log: Any) -> tuple[str, ...]:
    """The segment columns events or a stage-history frame carry (``owner`` first).

    >>> segment_columns_of([])
    ()
    """
    if hasattr(log, "columns") and hasattr(log, "lazy"):
        return tuple(
            c for c in log.columns if c == OWNER or (c not in RESERVED_NAMES and c != "currency")
        )
    return tuple(c for c in names_of(log) if c != "currency")


def check_columns(log: Any, by: str | Sequence[str]) -> tuple[str, ...]:
    """``by`` as segment columns, each one the data carries.

    Raises:
        UnknownSegmentColumnError: a column is not in the data (the error lists those that are).
        AnalyticsError: ``by`` is empty.
    """
    columns = _by(by)
    available = segment_columns_of(log)
    missing = [c for c in columns if c not in available]
    if missing:
        raise UnknownSegmentColumnError(missing, available)
    return columns


def _float(value: Decimal | float | None) -> float:
    return 0.0 if value is None else float(value)


def _label(segment: Sequence[str | None]) -> str:
    return " / ".join(_NONE if v is None else v for v in segment)


def _by(by: str | Sequence[str]) -> tuple[str, ...]:
    from stagegate.analytics._segments import segment_columns  # noqa: PLC0415

    columns = segment_columns(by.split(",") if isinstance(by, str) else by)
    return tuple(dict.fromkeys(c.strip() for c in columns if c.strip()))


@attrs.frozen
class Computed:
    """What the report already computed on the same log: the section reuses it.

    Attributes:
        prepared: the prepared log (``prepare(..., keep_rows=True)``).
        visits: its visits, as the analytics take them.
        slippage: ``slippage`` of ``prepared``.
        cycles: ``cycle_times`` of ``visits``.
        probabilities: ``stage_probabilities`` of ``visits`` (``draws=0``), as records.
        inputs: :func:`segment_inputs` of the log, read before the report let go of it
            (``None``: the section reads the log).
    """

    prepared: Any
    visits: Any
    slippage: Any
    cycles: Any
    probabilities: Sequence[Any]
    inputs: Any = None


def segment_inputs(log: Any, by: str | Sequence[str]) -> Any:
    """The segment history of every deal the section reads, without the log's other columns.

    Read once, so that the report can let go of the log after preparing it: for a frame, the
    rows where a deal's segment changes and its activity instants (as frames); for events,
    each deal's events.

    Raises:
        UnknownSegmentColumnError: ``by`` names a column the data does not carry.
    """
    from stagegate.analytics._segments import frame_inputs, read_inputs  # noqa: PLC0415

    columns = check_columns(log, by)
    return frame_inputs(log, columns, history_only=True) or read_inputs(log, columns)


def segment_section(  # noqa: PLR0915 - one figure after another
    log: Any,
    process: Any,
    *,
    as_of: datetime,
    by: str | Sequence[str],
    estimator: str,
    stalled_rule: str = "strictest",
    flag_pushes: int = 2,
    top: int = 25,
    activity_days: float = ACTIVITY_DAYS,
    computed: Computed | None = None,
) -> dict[str, Any]:
    """The segment section of the report document (see ``docs/report.md``).

    Args:
        log: the report's events (or its stage-history frame), up to ``as_of``; unused (and
            may be ``None``) when ``computed`` carries the :func:`segment_inputs`.
        process: the process they were recorded under.
        as_of: the report's instant.
        by: the segment column(s): ``"owner"``, ``"region,team"`` or ``("region", "team")``.
        estimator: the report's estimator; one without a per-stage column (``dwell``) weighs
            the section by ``deal_clock`` instead, and the section says so.
        stalled_rule: how stall limits combine (as the report's stalled list).
        flag_pushes: deals pushed at least this many times are slipping.
        top: most deals at risk listed per segment.
        activity_days: days without activity after which a deal is stale.
        computed: what the report computed on the same log already (computed here if not
            given): prepared once, the log is not held twice.

    Raises:
        UnknownSegmentColumnError: ``by`` names a column the data does not carry.
        AnalyticsError: ``by`` is empty.
    """
    from stagegate import analytics as an  # noqa: PLC0415
    from stagegate.analytics._segments import (  # noqa: PLC0415
        SMALL_SAMPLE,
        STAGE_ESTIMATORS,
        activity_gap,
        decimal_of,
    )
    from stagegate.analytics.intervals import prepare, to_native  # noqa: PLC0415

    if computed is not None and computed.inputs is not None:
        inputs = computed.inputs  # read by the report, which checked ``by`` against the log
    else:
        inputs = segment_inputs(log, by)
    columns = _by(by)
    weighed_by = estimator if estimator in STAGE_ESTIMATORS else "deal_clock"
    as_of_us = epoch_us(as_of)
    # The log is prepared once for every analysis below (as the report's own sections are);
    # the inputs give each deal's segment history, to attribute each figure at its instant.
    if computed is None:
        prepared = prepare(log, process, as_of=as_of, keep_rows=True)
        visits = (
            list(prepared.python or ())
            if prepared.frame is None
            else to_native(prepared, prepared.frame)
        )
        computed = Computed(
            prepared,
            visits,
            an.slippage(prepared, process, as_of=as_of, flag_pushes=flag_pushes),
            an.cycle_times(visits, process, as_of=as_of),
            _records(an.stage_probabilities(visits, process, as_of=as_of, draws=0)),
        )
    prepared, visits = computed.prepared, computed.visits
    # frames are cut to what is needed before their rows become Python values: the open deals,
    # the ids of the stalled ones, the pushes of the open ones, (id, close, outcome, days)
    now = {
        s.opportunity_id: s
        for s in _records(
            an.snapshot(prepared, process, at=as_of),
            kind="open",
            fields=("opportunity_id", "kind", "stage", "amount", "close_date", "dwell_days"),
        )
        if s.kind == "open"
    }
    segment_of = dict(zip(now, inputs.segments_at(list(now), as_of_us, columns), strict=True))
    slow = _ids(an.stalled(visits, process, as_of=as_of, rule=stalled_rule))
    pushes = {
        d.opportunity_id: d
        for d in _records(
            computed.slippage.deals, among=now, fields=("opportunity_id", "pushes", "flagged")
        )
        if d.opportunity_id in now
    }
    p = {
        r.stage: 0.0 if getattr(r, weighed_by) is None else float(getattr(r, weighed_by))
        for r in computed.probabilities
    }
    closed = _closed_by_segment(inputs, computed.cycles, columns)
    # A log that records no activity at all comes from a CRM that does not feed them: the
    # staleness by activity of its deals is unknown, not "every deal stale".
    activities = inputs.logs_activities()
    activity: dict[str, Any] = {}
    if activities and inputs.has_events:  # staleness of the open deals' own events
        mine_only = [e for oid in now for e in inputs.events.get(oid, ())]
        activity = {
            d.opportunity_id: d
            for d in an.staleness(
                mine_only, process, as_of=as_of, by=columns, activity_days=activity_days
            )
        }
    elif activities:  # a store's frame: its activity_logged rows (the kind column), as
        # staleness reads them (activity_gap), for the open deals at once
        open_ids = list(now)
        activity = {
            oid: SimpleNamespace(stale=stale, days_since_activity=days)
            for oid, (_, days, stale) in zip(
                open_ids,
                (
                    activity_gap(logged, first, as_of_us, activity_days)
                    for logged, first in inputs.last_activities(open_ids, as_of_us)
                ),
                strict=True,
            )
        }
    day = as_of.date()
    period, first, last = _period(day)
    at_risk: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    parts: dict[Any, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    totals: dict[Any, dict[str, Any]] = defaultdict(lambda: defaultdict(Decimal))
    for oid, snap in now.items():
        segment = segment_of[oid]
        exact = decimal_of(snap.amount)
        amount = _float(exact)
        weight = exact * Decimal(repr(p.get(snap.stage, 0.0))) if exact is not None else None
        weighted = _float(weight)
        close = snap.close_date
        due = close is not None and first <= close <= last
        slip = pushes.get(oid)
        stale = activity.get(oid)
        total = totals[segment]
        total["deals"] += 1
        total["pipeline"] += exact or 0
        total["weighted"] += weight or 0
        if due:
            total["period_deals"] += 1
            total["forecast"] += weight or 0
        reasons = [
            reason
            for reason, holds in (
                ("stalled", oid in slow),
                ("stale", stale is not None and bool(stale.stale)),
                ("slipping", slip is not None and slip.flagged),
                ("overdue", close is not None and close < day),
            )
            if holds
        ]
        mine = parts[segment]
        mine["pushes"] += 0 if slip is None else slip.pushes
        for reason in reasons:
            mine[f"{reason}_deals"] += 1
            mine[f"{reason}_amount"] += amount
        if reasons:
            mine["at_risk_deals"] += 1
            mine["at_risk_amount"] += amount
        if due:
            mine[f"forecast_{reasons[0] if reasons else 'healthy'}"] += weighted
        if reasons:
            at_risk[segment].append(
                {
                    "opportunity_id": oid,
                    "stage": snap.stage,
                    "amount": None if exact is None else amount,
                    "weighted": weighted,
                    "close_date": None if close is None else close.isoformat(),
                    "in_period": due,
                    "days_in_stage": snap.dwell_days,
                    "days_since_activity": None if stale is None else stale.days_since_activity,
                    "pushes": 0 if slip is None else slip.pushes,
                    "reasons": reasons,
                }
            )
    rows = []
    for key in set(totals) | set(closed):
        total, mine = totals.get(key, {}), parts.get(key, {})
        closes, won_days = closed.get(key, (0, []))
        forecast = round(float(total.get("forecast", 0)), 2)
        soft = round(sum(mine.get(f"forecast_{r}", 0.0) for r in RISKS), 2)
        listed = sorted(
            at_risk.get(key, []),
            key=lambda d: (-d["weighted"], -(d["amount"] or 0.0), d["opportunity_id"]),
        )
        row: dict[str, Any] = {
            "segment": list(key),
            "label": _label(key),
            "open_deals": int(total.get("deals", 0)),
            "pipeline": float(total.get("pipeline", 0)),
            "weighted": round(float(total.get("weighted", 0)), 2),
            "period_deals": int(total.get("period_deals", 0)),
            "forecast": forecast,
            "soft_forecast": soft,
            "soft_share": min(1.0, soft / forecast) if forecast > 0 else None,
            "pushes": int(mine.get("pushes", 0)),
            "at_risk_deals": int(mine.get("at_risk_deals", 0)),
            "at_risk_amount": float(mine.get("at_risk_amount", 0.0)),
            "closed": closes,
            "won": len(won_days),
            "lost": closes - len(won_days),
            "win_rate": len(won_days) / closes if closes else None,
            "median_cycle_days": statistics.median(won_days) if won_days else None,
            "small": closes < SMALL_SAMPLE,
            "deals_count": count_of(len(listed), top),
            "deals": listed[:top],
        }
        for reason in RISKS:
            known = reason != "stale" or activities
            row[f"{reason}_deals"] = int(mine.get(f"{reason}_deals", 0)) if known else None
            row[f"{reason}_amount"] = float(mine.get(f"{reason}_amount", 0.0)) if known else None
        row["forecast_parts"] = {
            part: round(float(mine.get(f"forecast_{part}", 0.0)), 2) for part in ("healthy", *RISKS)
        }
        rows.append(row)
    rows.sort(key=_riskiest)
    return {
        "by": list(columns),
        "period": period,
        "estimator": weighed_by,
        "flag_pushes": flag_pushes,
        "activity_days": activity_days,
        "activities": activities,
        "stalled_rule": stalled_rule,
        "definition": SOFT_FORECAST.format(
            activity_days=f"{activity_days:g}", flag_pushes=flag_pushes
        ),
        "rows": rows,
    }


def _records(
    result: Any,
    *,
    kind: str | None = None,
    among: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
) -> list[Any]:
    """Records from either analytics path: a list of records, or a frame of them.

    A frame is first cut to the rows of ``kind`` (its ``kind`` column), to the deals
    ``among`` (its ``opportunity_id``) and to the columns ``fields``; a list is returned whole
    (the caller filters).
    """
    frame = _frame(result)
    if frame is None:
        return list(result)
    import polars as pl  # noqa: PLC0415 - a frame result is a Polars one

    if kind is not None:
        frame = frame.filter(pl.col("kind") == kind)
    if among is not None:
        frame = frame.filter(pl.col("opportunity_id").is_in(list(among)))
    if fields is not None:
        frame = frame.select(fields)
    return [SimpleNamespace(**row) for row in frame.to_dicts()]


def _frame(result: Any) -> Any:
    """``result`` as an eager Polars frame, or ``None`` when it is a list of records."""
    if hasattr(result, "to_dicts"):
        return result
    if hasattr(result, "collect") and hasattr(result, "columns"):  # a lazy frame
        return result.collect()
    return None


def _ids(result: Any) -> set[str]:
    """The ``opportunity_id`` of every record."""
    frame = _frame(result)
    if frame is None:
        return {r.opportunity_id for r in result}
    return set(frame.get_column("opportunity_id").to_list())


def _closed_by_segment(
    inputs: Any, cycles: Any, columns: Sequence[str]
) -> dict[Any, tuple[int, list[float]]]:
    """How many deals closed in each segment, and the cycle days of the won ones.

    Each closed deal counts in its segment at its close (as
    :func:`~stagegate.analytics.scorecard` attributes it).
    """
    from stagegate.analytics._segments import FrameInputs  # noqa: PLC0415

    frame = _frame(cycles.deals)
    if frame is not None:
        import polars as pl  # noqa: PLC0415 - a frame result is a Polars one

        keys = frame.select(
            pl.col("opportunity_id").cast(pl.String).alias("oid"),
            pl.col("closed_at").dt.epoch("us").alias("at_us"),
            (pl.col("outcome").cast(pl.String) == "won").alias("won"),
            pl.col("cycle_days").cast(pl.Float64).alias("days"),
        )
    if frame is not None and isinstance(inputs, FrameInputs):  # one as-of join, one group-by
        values = [f"s{i}" for i in range(len(columns))]
        grouped = (
            inputs.segments_of(keys, columns)
            .group_by(values)
            .agg(pl.len().alias("closed"), pl.col("days").filter(pl.col("won")).alias("won"))
        )
        return {
            tuple(row[:-2]): (row[-2], row[-1])
            for row in grouped.select(*values, "closed", "won").iter_rows()
        }
    if frame is None:
        deals = [
            (c.opportunity_id, epoch_us(to_utc(c.closed_at)), c.outcome == "won", c.cycle_days)
            for c in cycles.deals
        ]
    else:
        deals = list(keys.iter_rows())
    segments = inputs.segments_at([d[0] for d in deals], [d[1] for d in deals], columns)
    found: dict[Any, tuple[int, list[float]]] = {}
    for segment, (_, _, won, days) in zip(segments, deals, strict=True):
        closes, won_days = found.get(segment, (0, []))
        if won:
            won_days.append(days)
        found[segment] = (closes + 1, won_days)
    return found


def _riskiest(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Largest soft forecast first, then the largest amount at risk, then the segment."""
    segment = tuple((v is None, v or "") for v in row["segment"])
    return (-row["soft_forecast"], -row["at_risk_amount"], -row["forecast"], segment)


def _period(day: Any) -> tuple[str, Any, Any]:
    from stagegate.analytics._segments import period_bounds  # noqa: PLC0415

    return period_bounds(day, PERIOD)
