"""Time in stage and cycle time.

**Time in stage** summarizes the visits to each open stage by the opportunity's final outcome
(``won``, ``lost``, ``open``) and over ``all`` visits. Quantiles interpolate linearly.
``km_median_days`` (on the ``all`` rows) is the Kaplan-Meier median that counts visits still
running at ``as_of`` as censored, so slow open deals are not dropped;
``lost_won_ratio`` is the mean dwell of lost deals over that of won deals in the stage.

On the ``won`` and ``lost`` rows the mean and quantiles are those of **closed deals only**:
when lost deals linger, the slow ones are still open at ``as_of`` and these figures run
short (most for lost deals). ``open_share`` (on every row of a stage) says how many of the
stage's visits belong to deals still open. ``deal_clock_median_days`` (won and lost rows) is
the censoring-aware median: each closed deal's visits weighted by the inverse of the share of
deals that could have been followed as long as it took to close (the weights of the
``deal_clock`` win probability, see :mod:`stagegate.analytics.probability`), then the lower
weighted median. It assumes what that estimator assumes: when a deal opened says nothing about
its fate or its pace.

**Cycle time** runs from an opportunity's first row to its last entry into a won or lost stage.
The visits of a closed opportunity tile that span exactly, so its stage durations add up to its
cycle time. The popular shortcut "sum of the average time in each stage"
(``stage_sum_days``) differs from the measured mean cycle because not every deal visits every
stage (skips, early losses: the shortcut overstates) and some visit a stage twice (it
understates). Weighting each stage's mean by visits per deal (``weighted_sum_days``) gives back
the measured mean exactly; ``difference_days`` is shortcut minus measured.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "a", "at": t(3), "stage": "demo"},
...     {"opportunity_id": "a", "at": t(9), "stage": "won"},
...     {"opportunity_id": "b", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "b", "at": t(7), "stage": "lost"},
... ]
>>> [(r.stage, r.outcome, r.mean_days) for r in time_in_stage(rows, kinds, as_of=t(20))]
... # doctest: +NORMALIZE_WHITESPACE
[('lead', 'won', 2.0), ('lead', 'lost', 6.0), ('lead', 'all', 4.0),
 ('demo', 'won', 6.0), ('demo', 'all', 6.0)]
>>> s = cycle_times(rows, kinds, as_of=t(20)).summary
>>> [(r.outcome, r.mean_days, r.stage_sum_days, r.weighted_sum_days) for r in s]
[('won', 8.0, 8.0, 8.0), ('lost', 6.0, 6.0, 6.0), ('closed', 7.0, 10.0, 7.0)]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import is_eager, kernel_of
from stagegate.analytics._stats import mean, quantile
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import (
    Prepared,
    StageInterval,
    by_kind,
    coded_visits,
    prepare,
    to_native,
)
from stagegate.analytics.outcomes import Outcomes, OutcomesLike
from stagegate.analytics.survival import (
    deal_clock_python,
    dwell_us,
    km_median,
    weighted_median,
)

__all__ = ["CycleSummary", "CycleTime", "CycleTimes", "StageTime", "cycle_times", "time_in_stage"]

OUTCOME_ORDER = ("won", "lost", "open", "all")


@attrs.frozen(slots=True)
class StageTime:
    """Dwell statistics of one open stage for one outcome group (or ``all``), in days."""

    stage: str
    outcome: str
    visits: int
    censored: int
    mean_days: float | None
    median_days: float | None
    p75_days: float | None
    p90_days: float | None
    km_median_days: float | None
    lost_won_ratio: float | None
    open_share: float | None = None
    deal_clock_median_days: float | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    deals: int | None = attrs.field(default=None, metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


def _summary(values: list[float]) -> tuple[float | None, ...]:
    values.sort()
    return (mean(values), quantile(values, 0.5), quantile(values, 0.75), quantile(values, 0.9))


def _finish(
    stats: dict[tuple[str, str], dict[str, Any]],
    prepared: Prepared,
    medians: dict[tuple[str, str], float],
) -> list[StageTime]:
    result = []
    for stage in prepared.outcomes.open:
        won = stats.get((stage, "won"), {}).get("mean_days")
        lost = stats.get((stage, "lost"), {}).get("mean_days")
        ratio = lost / won if won and lost is not None else None
        every = stats.get((stage, "all"), {}).get("visits") or 0
        still = stats.get((stage, "open"), {}).get("visits") or 0
        share = still / every if every else None
        for outcome in OUTCOME_ORDER:
            s = stats.get((stage, outcome))
            if s is None or not s["visits"]:
                continue
            result.append(
                StageTime(
                    stage,
                    outcome,
                    int(s["visits"]),
                    int(s["censored"] or 0),
                    s["mean_days"],
                    s["median_days"],
                    s["p75_days"],
                    s["p90_days"],
                    s.get("km_median_days"),
                    ratio,
                    share,
                    medians.get((stage, outcome)),
                )
            )
    return result


def _python_stats(
    visits: Iterable[StageInterval], as_of: int
) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], list[StageInterval]] = defaultdict(list)
    for v in visits:
        if v.kind == "open" and v.duration_days is not None:
            groups[v.stage, v.outcome].append(v)
            groups[v.stage, "all"].append(v)
    stats = {}
    for key, items in groups.items():
        durations = [v.duration_days for v in items if v.duration_days is not None]
        avg, median, p75, p90 = _summary(list(durations))
        stats[key] = {
            "visits": len(items),
            "censored": sum(v.censored for v in items),
            "mean_days": avg,
            "median_days": median,
            "p75_days": p75,
            "p90_days": p90,
            "km_median_days": _km_median_days(items, as_of) if key[1] == "all" else None,
        }
    return stats


def _km_median_days(visits: list[StageInterval], as_of: int) -> float | None:
    """Kaplan-Meier median in days, ordered by exact dwell (see ``dwell_order``)."""
    dwell_us = [(as_of if v.exited_us is None else v.exited_us) - v.entered_us for v in visits]
    median = km_median(dwell_us, [not v.censored for v in visits])
    return None if median is None else median / DAY_US


def _frame_stats(frame: Any, outcomes: Outcomes, as_of: int) -> dict[tuple[str, str], Any]:
    import narwhals as nw  # noqa: PLC0415

    # stages and outcomes travel as small integers, never as names; a visit to an open stage
    # always has a dwell (to its exit, or to as_of)
    visits = coded_visits(
        frame,
        outcomes,
        nw.col("kind") == "open",
        {"group": "stage"},
        ["group", "censored"],
        final=by_kind("outcome"),
        dwell_us=dwell_us(as_of),
    )
    return kernel_of(visits).dwell_stats(visits, outcomes.stages)


def time_in_stage(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Dwell time per open stage and final outcome: count, mean, median, p75, p90 (days).

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals` (reused, not recomputed).
        outcomes: a ``Process`` or a mapping ``{stage_id: "open" | "won" | "lost"}``.
        as_of: the instant the analysis stands at; open visits are censored here.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): rows per segment, stage and outcome, each visit
            counted for the segment in force when the deal first entered the stage, with
            ``segment``, ``deals`` and ``small`` set (a frame gets the segment columns first).

    Returns:
        :class:`StageTime` rows (or a frame with those columns) in process order, outcomes in
        the order won, lost, open, all; groups without visits are left out.

    Raises:
        AnalyticsError: the input has the wrong shape or backend.
        UnknownStageError: a stage is not one of ``outcomes``.
    """
    if by is not None:
        from stagegate.analytics._by import by_segment  # noqa: PLC0415

        def run(part: Any) -> Any:
            return time_in_stage(part, outcomes, as_of=as_of, assume_zone=assume_zone)

        return by_segment(run, data, outcomes, by, StageTime, as_of=as_of, assume_zone=assume_zone)
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    if prepared.python is not None:
        stats = _python_stats(prepared.python, prepared.as_of_us)
        medians = _python_clock_medians(prepared.python, prepared.as_of_us)
    else:
        stats = _frame_stats(prepared.frame, prepared.outcomes, prepared.as_of_us)
        medians = _frame_clock_medians(prepared.frame, prepared.outcomes, prepared.as_of_us)
    return emit(prepared, _finish(stats, prepared, medians), StageTime)


def _python_clock_medians(
    visits: Sequence[StageInterval], as_of: int
) -> dict[tuple[str, str], float]:
    """Deal-clock (weighted) median dwell in days per (open stage, won or lost)."""
    weights = deal_clock_python(visits, as_of)
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for v in visits:
        if v.kind == "open" and v.exited_us is not None and v.opportunity_id in weights:
            outcome, w = weights[v.opportunity_id]
            values, ws = groups[v.stage, outcome]
            values.append(float(v.exited_us - v.entered_us))
            ws.append(w)
    result = {}
    for key, (values, ws) in groups.items():
        median = weighted_median(values, ws)
        if median is not None:
            result[key] = median / DAY_US
    return result


def _frame_clock_medians(
    frame: Any, outcomes: Outcomes, as_of: int
) -> dict[tuple[str, str], float]:
    """:func:`_python_clock_medians` of a frame of visits (the same numbers)."""
    kernel = kernel_of(frame)
    weighted = kernel.weighted(frame, as_of, outcomes).select("group", "won", "dwell_us", "weight")
    return kernel.clock_medians(weighted, outcomes)


def _eager_per_deal(frame: Any) -> Any:
    """Each deal's first and last visit, side by side: in-memory visits by deal and step.

    The columns of the grouping in :func:`cycle_times` (``opened_us``, ``closed_us``,
    ``opened_at``, ``closed_at``, ``last_step``) read off the first and last row of each
    deal's run, for the closed deals; no id is hashed. ``None`` (the grouping does the work)
    for visits out of that order, a deal of two outcomes, or entries going back in time.
    """
    import narwhals as nw  # noqa: PLC0415

    opp, step, entered = nw.col("opportunity_id"), nw.col("step"), nw.col("entered_us")
    if frame.select(opp.null_count()).collect().item():
        return None
    rows = frame.select("opportunity_id", "outcome", "step", "entered_us", "entered_at").collect()
    if not rows.get_column("opportunity_id").is_sorted():
        return None
    new_deal = (opp != opp.shift(1)).fill_null(value=True)
    # within a deal, each row a later entry than the one above it, of the same outcome
    later = (step > step.shift(1)) & (entered >= entered.shift(1))
    later = later & (nw.col("outcome") == nw.col("outcome").shift(1))
    ends = rows.select(
        ok=(new_deal | later).fill_null(value=False),
        first=new_deal,
        last=new_deal.shift(-1).fill_null(value=True),
    )
    if not ends.get_column("ok").all():
        return None
    firsts = rows.select(opened_us=entered, opened_at=nw.col("entered_at"))
    firsts = firsts.filter(ends.get_column("first"))
    lasts = rows.select(
        "opportunity_id",
        "outcome",
        closed_us=entered,
        closed_at=nw.col("entered_at"),
        last_step=step,
    ).filter(ends.get_column("last"))
    both = nw.concat([lasts, firsts], how="horizontal")
    return both.filter(nw.col("outcome") != "open").lazy()


@attrs.frozen(slots=True)
class CycleTime:
    """The cycle of one closed opportunity.

    Attributes:
        opportunity_id: the opportunity.
        outcome: ``"won"`` or ``"lost"``.
        opened_at: its first row.
        closed_at: its last entry into a won or lost stage.
        cycle_days: ``closed_at - opened_at`` in days.
        stages: number of stage entries before closing (re-entries counted).
    """

    opportunity_id: str
    outcome: str
    opened_at: datetime
    closed_at: datetime
    cycle_days: float
    stages: int
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)


@attrs.frozen(slots=True)
class CycleSummary:
    """Cycle time by outcome (``won``, ``lost``, ``closed`` = both), in days."""

    outcome: str
    deals: int
    mean_days: float | None
    median_days: float | None
    p75_days: float | None
    p90_days: float | None
    stage_sum_days: float | None
    weighted_sum_days: float | None
    difference_days: float | None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class CycleTimes:
    """Result of :func:`cycle_times`: per closed deal, and summarized by outcome.

    Attributes:
        deals: one row per closed opportunity (:class:`CycleTime` columns).
        summary: one row per outcome (:class:`CycleSummary` columns).
    """

    deals: Any
    summary: Any

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


def _cycle_python(
    visits: list[StageInterval],
) -> tuple[list[CycleTime], dict[tuple[str, str], tuple[int, float | None]]]:
    by_opp: dict[str, list[StageInterval]] = defaultdict(list)
    for v in visits:
        by_opp[v.opportunity_id].append(v)
    deals = []
    stage_durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for opp, items in by_opp.items():
        last = max(items, key=lambda v: v.step)
        if last.outcome == "open":
            continue
        first = min(items, key=lambda v: v.step)
        deals.append(
            CycleTime(
                opp,
                last.outcome,
                first.entered_at,
                last.entered_at,
                (last.entered_us - first.entered_us) / DAY_US,
                last.step - 1,
            )
        )
        for v in items:
            if v.duration_days is not None:
                stage_durations[v.stage, last.outcome].append(v.duration_days)
    return deals, {k: (len(d), mean(d)) for k, d in stage_durations.items()}


def _summarize(
    cycles: dict[str, list[float]], stage_stats: dict[tuple[str, str], tuple[int, float | None]]
) -> list[CycleSummary]:
    result = []
    for outcome in ("won", "lost", "closed"):
        values = sorted(cycles.get(outcome, []))
        keys = [k for k in stage_stats if outcome in ("closed", k[1])]
        per_stage: dict[str, tuple[int, float]] = {}
        for stage, group in keys:
            count, avg = stage_stats[stage, group]
            if avg is None:
                continue
            n0, m0 = per_stage.get(stage, (0, 0.0))
            per_stage[stage] = (n0 + count, (n0 * m0 + count * avg) / (n0 + count))
        n = len(values)
        stage_sum = sum(m for _, m in per_stage.values()) if per_stage else None
        weighted = sum(c * m for c, m in per_stage.values()) / n if n and per_stage else None
        avg_cycle = mean(values)
        result.append(
            CycleSummary(
                outcome,
                n,
                avg_cycle,
                quantile(values, 0.5),
                quantile(values, 0.75),
                quantile(values, 0.9),
                stage_sum,
                weighted,
                None if stage_sum is None or avg_cycle is None else stage_sum - avg_cycle,
            )
        )
    return result


def cycle_times(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> CycleTimes:
    """Cycle time of every closed opportunity, and summarized by outcome.

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals`.
        outcomes: a ``Process`` or a mapping ``{stage_id: "open" | "won" | "lost"}``.
        as_of: the instant the analysis stands at; deals open then are left out.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): each closed deal counts for the segment in force
            at its close; ``deals`` rows carry their ``segment``, ``summary`` has rows per
            segment and outcome with ``segment`` and ``small`` (a frame gets the segment
            columns first).

    Returns:
        :class:`CycleTimes`: ``deals`` (per closed opportunity; frames in no
        particular order) and ``summary`` (won, lost, closed), both in the caller's representation.

    Raises:
        AnalyticsError: the input has the wrong shape or backend.
    """
    if by is not None:
        from stagegate.analytics._by import cycles_by_segment  # noqa: PLC0415

        def run(part: Any) -> Any:
            return cycle_times(part, outcomes, as_of=as_of, assume_zone=assume_zone)

        return cycles_by_segment(run, data, by, assume_zone=assume_zone)  # type: ignore[no-any-return]
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    if prepared.python is not None:
        deals, stage_stats = _cycle_python(prepared.python)
        cycles: dict[str, list[float]] = defaultdict(list)
        for d in deals:
            cycles[d.outcome].append(d.cycle_days)
            cycles["closed"].append(d.cycle_days)
        return CycleTimes(deals, _summarize(cycles, stage_stats))
    import narwhals as nw  # noqa: PLC0415

    frame = prepared.frame
    closed = frame.filter(nw.col("outcome") != "open")
    per_deal = _eager_per_deal(frame) if is_eager(frame) else None
    if per_deal is None:
        per_deal = closed.group_by("opportunity_id", "outcome").agg(
            nw.col("entered_us").min().alias("opened_us"),
            nw.col("entered_us").max().alias("closed_us"),
            nw.col("entered_at").min().alias("opened_at"),
            nw.col("entered_at").max().alias("closed_at"),
            nw.col("step").max().alias("last_step"),
        )
    per_deal = per_deal.select(
        "opportunity_id",
        "outcome",
        "opened_at",
        "closed_at",
        ((nw.col("closed_us") - nw.col("opened_us")) / DAY_US).alias("cycle_days"),
        (nw.col("last_step") - 1).alias("stages"),
    )
    stage_rows = collect_rows(
        closed.filter(~nw.col("duration_days").is_null())
        .group_by("stage", "outcome")
        .agg(
            nw.col("duration_days").count().alias("n"),
            nw.col("duration_days").mean().alias("m"),
        )
    )
    stage_stats = {(r["stage"], r["outcome"]): (r["n"], r["m"]) for r in stage_rows}
    if is_eager(frame):  # computed once: read for the summary and handed out
        per_deal = per_deal.collect().lazy()
    # the cycle days of each outcome as one column each (no Python object per deal but the
    # floats themselves), sorted there: _summarize sorts them again, in one linear pass
    values = per_deal.select("outcome", "cycle_days").collect()
    cycles = defaultdict(list)
    for outcome in ("won", "lost"):
        days = values.filter(nw.col("outcome") == outcome).get_column("cycle_days").sort()
        if len(days):
            cycles[outcome] = days.to_list()
    closed_days = cycles.get("won", []) + cycles.get("lost", [])
    if closed_days:
        cycles["closed"] = closed_days
    summary = emit(prepared, _summarize(cycles, stage_stats), CycleSummary)
    return CycleTimes(to_native(prepared, per_deal), summary)
