"""The pipeline as it stood at any past instant, and the waterfall between two instants.

A snapshot at ``at`` replays only the rows at or before ``at``: each opportunity's stage,
when it entered it, the dwell so far, and the amount and expected close date in force then.
``snapshot`` lists every opportunity that existed then, closed ones included (``state=`` picks
open, won, lost or closed ones); :func:`open_pipeline` is the open pipeline alone, the rows
whose amounts add up to the pipeline.

The waterfall compares two snapshots over the window ``(start, end]``. Each opportunity falls
in exactly one category, checked in this order:

- ``won`` / ``lost``: closed at ``end`` and its closing (its last entry into a won or lost
  stage) falls inside the window, whether it was open at ``start``, created inside the window,
  or closed at ``start``, reopened and closed again;
- ``new``: did not exist at ``start``, open at ``end``;
- ``reopened``: closed at ``start``, open at ``end``;
- ``advanced`` / ``regressed``: open at both, in a later / earlier stage in the process order;
- ``increased`` / ``decreased``: open at both, same stage, a larger / smaller amount (an
  unknown amount counts as 0);
- ``slipped`` / ``pulled_in``: open at both, same stage and amount, a later / earlier
  expected close date;
- ``unchanged``: open at both, none of the above.

Deals closed at both instants and not closed again inside the window are left out. Every
deal also carries its ``pipeline_change``: its open amount at ``end`` minus its open amount at
``start`` (the amount of a deal not open counts as 0), so the categories' changes add up from
``open_start`` to ``open_end``.

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
>>> [(r.category, r.deals, r.amount_end, r.pipeline_change) for r in w.summary]
[('won', 1, 5.0, -5.0), ('new', 1, 7.0, 7.0), ('advanced', 1, 10.0, 0.0)]
>>> w.open_start + sum(r.pipeline_change for r in w.summary) == w.open_end
True
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate._time import from_epoch_us
from stagegate.analytics._currency_guard import check_one_currency
from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import is_eager
from stagegate.analytics._table import DAY_US, KIND_CODE, as_of_us, by_code, sorted_rows
from stagegate.analytics.intervals import ORDER, Prepared, prepare, to_native
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike

__all__ = [
    "CATEGORIES",
    "STATES",
    "Snapshot",
    "Waterfall",
    "WaterfallDeal",
    "WaterfallRow",
    "WaterfallSegment",
    "open_pipeline",
    "snapshot",
    "waterfall",
]

CATEGORIES = (
    "won",
    "lost",
    "new",
    "reopened",
    "advanced",
    "regressed",
    "increased",
    "decreased",
    "slipped",
    "pulled_in",
    "unchanged",
)
"""The waterfall categories, in their order of precedence."""
STATES = ("all", "open", "closed", "won", "lost")
"""What :func:`snapshot` can keep: every deal, or those of one kind (``closed``: won or lost)."""
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
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)


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
    result = collect_rows(current_frame(prepared).drop("entered_at", "close_date"))
    result.sort(key=lambda r: r["opportunity_id"])
    return result


_CURRENT: dict[int, tuple[weakref.ref[Prepared], Any]] = {}
"""In-memory current states computed once per prepared log (by ``id``; dropped with it)."""
_ONCE = threading.RLock()
"""Held while the current states or the ordered rows are computed: threads share one."""


def current_frame(prepared: Prepared) -> Any:
    """:func:`current_state` as a lazy narwhals frame (frame path).

    Columns: ``opportunity_id, stage, kind, entered_us, entered_at, dwell_days, amount,
    close_day, close_date``. On in-memory backends it comes by opportunity id and is computed
    once per prepared log: the report's snapshot, forecast and slippage read the same one; on
    lazy engines it comes in no particular order (see :func:`by_id`).
    """
    with _ONCE:  # a report's second thread waits for the first one's, not computing its own
        found = _CURRENT.get(id(prepared))
        if found is not None and found[0]() is prepared:
            return found[1]
        current = _current_frame(prepared)
        if is_eager(current):
            current = current.collect().lazy()
            key = id(prepared)
            _CURRENT[key] = (weakref.ref(prepared, lambda _: _CURRENT.pop(key, None)), current)
        return current


def _current_frame(prepared: Prepared) -> Any:
    if is_eager(prepared.rows):
        return _current_in_memory(prepared)
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    last_rows = prepared.rows.with_columns(
        last=nw.col("at_us").shift(-1).over(opp, order_by=ORDER).is_null()
    ).filter(nw.col("last"))
    last_rows = last_rows.select(
        opp,
        nw.col("amount").alias("cur_amount"),
        nw.col("close_day").alias("cur_close"),
        nw.col("close_date").alias("cur_date"),
    )
    visits = prepared.frame.filter(nw.col("exited_us").is_null()).select(
        opp, "stage", "kind", "entered_us", "entered_at", "duration_days"
    )
    return visits.join(last_rows, on=opp, how="left").select(
        opp,
        "stage",
        "kind",
        "entered_us",
        "entered_at",
        nw.col("duration_days").alias("dwell_days"),
        nw.col("cur_amount").alias("amount"),
        nw.col("cur_close").alias("close_day"),
        nw.col("cur_date").alias("close_date"),
    )


def _current_in_memory(prepared: Prepared) -> Any:
    """:func:`current_frame` of in-memory rows, by opportunity id, from the rows alone.

    A deal's last row holds its stage, amount and close date; its current visit started at
    its last change of stage, as in :func:`~stagegate.analytics.stage_intervals` (the same
    rows, the same order). No join and no group by: the deals' entries and last rows come
    out of the ordered rows in the same order.
    """
    import narwhals as nw  # noqa: PLC0415

    rows, marks = ordered_rows(prepared)
    start, rank = nw.col("start"), nw.col("rank")
    entry = marks.with_columns(rows.get_column("rank")).select(
        entry=start | (rank != rank.shift(1)).fill_null(value=True)
    )["entry"]
    starts = marks.filter(entry)["start"]
    entered = (
        rows.select(nw.col("at_us").alias("entered_us"), nw.col("at").alias("entered_at"))
        .filter(entry)
        .filter(starts.shift(-1).fill_null(value=True))
    )
    kinds = prepared.outcomes.kinds
    codes: dict[int, list[int]] = {code: [] for code in KIND_CODE.values()}
    for i, stage in enumerate(prepared.outcomes.stages):
        codes[KIND_CODE[kinds[stage]]].append(i)
    last = (
        rows.select("opportunity_id", "stage", "amount", "close_day", "close_date", "rank")
        .filter(marks["end"])
        .with_columns(code=by_code("rank", codes))
    )
    kind = nw.when(nw.col("code") == KIND_CODE["won"]).then(nw.lit("won"))
    kind = kind.when(nw.col("code") == KIND_CODE["lost"]).then(nw.lit("lost"))
    dwell = (nw.lit(prepared.as_of_us) - nw.col("entered_us")) / DAY_US
    return (
        nw.concat([last, entered], how="horizontal")
        .select(
            "opportunity_id",
            "stage",
            kind.otherwise(nw.lit("open")).alias("kind"),
            "entered_us",
            "entered_at",
            nw.when(nw.col("code") == KIND_CODE["open"]).then(dwell).alias("dwell_days"),
            "amount",
            "close_day",
            "close_date",
        )
        .lazy()
    )


_ROW_COLUMNS = ("opportunity_id", *ORDER, "at", "stage", "amount", "close_day", "close_date")
_ORDERED: dict[int, tuple[weakref.ref[Prepared], Any]] = {}
"""In-memory rows ordered by deal, once per prepared log (by ``id``; dropped with it)."""


def ordered_rows(prepared: Prepared) -> tuple[Any, Any]:
    """The in-memory rows of ``prepared`` ordered by ``(opportunity_id, *ORDER)``, and marks.

    Checked (or sorted) once per prepared log: the snapshot and the slippage read the same
    eager frames. The rows: ``opportunity_id, at_us, seq, rank, at, stage, amount,
    close_day, close_date``; the marks, row for row: ``start`` / ``end``, the row is its
    deal's first / last (the ids are compared once). The marks are a frame of their own:
    a column added to the rows would copy them (their columns come in many chunks).
    """
    import narwhals as nw  # noqa: PLC0415

    with _ONCE:
        found = _ORDERED.get(id(prepared))
        if found is not None and found[0]() is prepared:
            return found[1]  # type: ignore[no-any-return]
        rows = sorted_rows(prepared.rows.select(*_ROW_COLUMNS))
        opp = nw.col("opportunity_id")
        marks = rows.select(start=(opp != opp.shift(1)).fill_null(value=True))
        marks = marks.with_columns(end=nw.col("start").shift(-1).fill_null(value=True))
        key = id(prepared)
        _ORDERED[key] = (weakref.ref(prepared, lambda _: _ORDERED.pop(key, None)), (rows, marks))
        return rows, marks


def by_id(prepared: Prepared, frame: Any) -> Any:
    """``frame`` (rows of :func:`current_frame`, in its order) sorted by opportunity id.

    In memory the current states already come by id: they are not sorted again.
    """
    return frame if is_eager(prepared.rows) else frame.sort("opportunity_id")


def prepared_of(
    data: Any, outcomes: OutcomesLike, *, as_of: datetime, assume_zone: str | tzinfo | None = None
) -> Prepared:
    """``prepare(..., keep_rows=True)``, or ``data`` itself when it is one for ``as_of``.

    The report prepares the log once and hands the result to every analysis that reads the
    rows (snapshot, forecast, slippage).
    """
    if isinstance(data, Prepared) and data.rows is not None and data.as_of_us == as_of_us(as_of):
        return data
    return prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, keep_rows=True)


def open_table(prepared: Prepared) -> Any:
    """The open deals of a frame's current states, by opportunity id, as a ``pyarrow.Table``.

    Columns ``opportunity_id, stage, dwell_days, amount, close_day``; a missing value is a
    plain null whatever the backend.
    """
    import narwhals as nw  # noqa: PLC0415

    return (
        current_frame(prepared)
        .filter(nw.col("kind") == "open")
        .select("opportunity_id", "stage", "dwell_days", "amount", "close_day")
        .pipe(lambda frame: by_id(prepared, frame))
        .collect(backend="pyarrow")
        .to_native()
    )


def open_deals(prepared: Prepared) -> list[tuple[str, float, float | None, int | None]]:
    """``(stage, dwell_days, amount, close_day)`` of every open deal, by opportunity id."""
    if not prepared.is_frame:
        return [
            (r["stage"], r["dwell_days"], r["amount"], r["close_day"])
            for r in current_state(prepared)
            if r["kind"] == "open"
        ]
    frame = open_table(prepared)
    names = ("stage", "dwell_days", "amount", "close_day")
    return list(zip(*(frame.column(name).to_pylist() for name in names), strict=True))


def open_deals_by_id(
    prepared: Prepared,
) -> list[tuple[str, str, float, float | None, int | None]]:
    """:func:`open_deals` with each deal's id first, in the same order."""
    if not prepared.is_frame:
        return [
            (r["opportunity_id"], r["stage"], r["dwell_days"], r["amount"], r["close_day"])
            for r in current_state(prepared)
            if r["kind"] == "open"
        ]
    frame = open_table(prepared)
    names = ("opportunity_id", "stage", "dwell_days", "amount", "close_day")
    rows = zip(*(frame.column(name).to_pylist() for name in names), strict=True)
    return [(str(oid), *rest) for oid, *rest in rows]


def _date(day: int | None) -> date | None:
    return None if day is None else _EPOCH + timedelta(days=int(day))


def snapshot(
    data: Any,
    outcomes: OutcomesLike,
    *,
    at: datetime,
    state: str = "all",
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """The pipeline as it stood at ``at``: one row per opportunity that existed then.

    The default keeps closed deals too: sum ``amount`` over ``state="open"`` (or use
    :func:`open_pipeline`) for the open pipeline.

    Args:
        data: events, opportunities, row mappings, or a stage-history frame.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        at: the instant of the snapshot.
        state: one of :data:`STATES`: ``all`` (the default), ``open``, ``closed`` (won or
            lost), ``won`` or ``lost``.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): each row gets the ``segment`` in force at ``at``,
            rows grouped by segment (no value last), by id within one; a frame gets the
            segment columns first. :func:`~stagegate.analytics.segment_totals` adds them up.

    Returns:
        :class:`Snapshot` rows (or a frame with those columns), by opportunity id; the
        dwell of closed deals is ``None``.

    Raises:
        AnalyticsError: ``state`` is unknown, ``by`` names no column or a result column, or
            the input is unusable.
    """
    if state not in STATES:
        raise AnalyticsError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if by is not None:
        from stagegate.analytics._by_deal import per_deal_by  # noqa: PLC0415 - a cycle

        def run(part: Any) -> Any:
            return snapshot(part, outcomes, at=at, state=state, assume_zone=assume_zone)

        return per_deal_by(run, data, by, Snapshot, at=at, assume_zone=assume_zone)
    prepared = prepared_of(data, outcomes, as_of=at, assume_zone=assume_zone)
    if prepared.is_frame:
        import narwhals as nw  # noqa: PLC0415

        current = current_frame(prepared)
        if state == "closed":
            current = current.filter(nw.col("kind") != "open")
        elif state != "all":
            current = current.filter(nw.col("kind") == state)
        result = current.select(
            "opportunity_id",
            "stage",
            "kind",
            "entered_at",
            "dwell_days",
            "amount",
            "close_date",
        )
        return to_native(prepared, by_id(prepared, result))
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
        if state == "all" or r["kind"] == state or (state == "closed" and r["kind"] != "open")
    ]
    return emit(prepared, rows, Snapshot)


def open_pipeline(
    data: Any,
    outcomes: OutcomesLike,
    *,
    at: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """The open pipeline at ``at``: :func:`snapshot` with ``state="open"``.

    Summing its ``amount`` gives the open pipeline amount (unknown amounts left out). With
    ``by=``, each deal counts for the segment in force at ``at`` (see :func:`snapshot`).

    Raises:
        AnalyticsError: the input is unusable, or ``by`` names no column or a result column.
        MixedCurrencyError: the amounts are in several currencies (convert them first with
            :func:`~stagegate.analytics.in_currency`).
    """
    if by is not None:
        from stagegate.analytics._by_deal import materialized  # noqa: PLC0415 - a cycle

        data = materialized(data)  # read by the guard, the snapshot and the segments
    check_one_currency(data)
    return snapshot(data, outcomes, at=at, state="open", assume_zone=assume_zone, by=by)


@attrs.frozen(slots=True)
class WaterfallDeal:
    """One opportunity's movement between the two instants.

    ``amount_start`` is the amount in force at ``start`` (whatever the deal's state then,
    ``None`` if it did not exist); ``pipeline_change`` is its open amount at ``end`` minus its
    open amount at ``start`` (0 for a deal not open, or without an amount).
    """

    opportunity_id: str
    category: str
    stage_start: str | None
    stage_end: str
    amount_start: float | None
    amount_end: float | None
    pipeline_change: float = 0.0
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)


@attrs.frozen(slots=True)
class WaterfallRow:
    """Deals and amounts per waterfall category.

    ``created`` counts the category's deals that did not exist at ``start``;
    ``pipeline_change`` sums the deals' changes of the open pipeline.
    """

    category: str
    deals: int
    amount_start: float
    amount_end: float
    created: int = 0
    pipeline_change: float = 0.0
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen(slots=True)
class WaterfallSegment:
    """One segment's open pipeline at both instants of a ``by=`` waterfall.

    ``open_start`` plus the segment's ``pipeline_change`` in the summary is ``open_end``;
    ``deals`` counts the segment's deals in the waterfall, ``small`` fewer than 30 of them.
    """

    segment: tuple[str | None, ...] = attrs.field(metadata=BY_ONLY)
    deals: int
    open_start: float
    open_end: float
    small: bool


@attrs.frozen
class Waterfall:
    """Result of :func:`waterfall`.

    Attributes:
        deals: one row per opportunity (:class:`WaterfallDeal` columns).
        summary: one row per category (:class:`WaterfallRow` columns), in
            :data:`CATEGORIES` order, empty categories left out.
        open_start: open pipeline amount at ``start``.
        open_end: open pipeline amount at ``end``; equals ``open_start`` plus the summary's
            ``pipeline_change``.
        segments: with ``by=``, each segment's open pipeline at both instants
            (:class:`WaterfallSegment` columns); empty otherwise.
    """

    deals: Any
    summary: Any
    open_start: float
    open_end: float
    segments: Any = ()

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


def _category(
    s: dict[str, Any] | None, e: dict[str, Any], rank: dict[str, int], start_us: int
) -> str | None:
    if e["kind"] != "open":
        # closed at the end: counted when the closing itself falls inside (start, end]
        return str(e["kind"]) if int(e["entered_us"]) > start_us else None
    if s is None:
        return "new"
    if s["kind"] != "open":
        return "reopened"
    if rank[e["stage"]] != rank[s["stage"]]:
        return "advanced" if rank[e["stage"]] > rank[s["stage"]] else "regressed"
    before, after = s["amount"] or 0.0, e["amount"] or 0.0
    if after != before:
        return "increased" if after > before else "decreased"
    if s["close_day"] is not None and e["close_day"] is not None:
        if e["close_day"] > s["close_day"]:
            return "slipped"
        if e["close_day"] < s["close_day"]:
            return "pulled_in"
    return "unchanged"


def _open_amount(state: dict[str, Any] | None) -> float:
    if state is None or state["kind"] != "open":
        return 0.0
    return float(state["amount"] or 0.0)


def waterfall(
    data: Any,
    outcomes: OutcomesLike,
    *,
    start: datetime,
    end: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Waterfall:
    """How the pipeline moved between ``start`` and ``end`` (the window ``(start, end]``).

    With ``by=`` (a segment column or several), each deal counts for the segment in force at
    ``end``: ``deals`` carry their ``segment``, ``summary`` has the categories of each segment
    (with ``segment`` and ``small``), ``segments`` each segment's open pipeline at both
    instants; frames get the segment columns first.

    Returns:
        :class:`Waterfall`; ``deals`` by opportunity id (grouped by segment with ``by=``).

    Raises:
        AnalyticsError: ``end`` is before ``start``, ``by`` names no column or a result
            column, or the input is unusable.
        MixedCurrencyError: the amounts are in several currencies (convert them first with
            :func:`~stagegate.analytics.in_currency`).
    """
    if by is not None:
        from stagegate.analytics._by_deal import waterfall_by  # noqa: PLC0415 - a cycle

        def run(part: Any) -> Waterfall:
            return waterfall(part, outcomes, start=start, end=end, assume_zone=assume_zone)

        return waterfall_by(run, data, by, end=end, assume_zone=assume_zone)
    check_one_currency(data)
    return waterfall_in_any_currency(data, outcomes, start=start, end=end, assume_zone=assume_zone)


def waterfall_in_any_currency(
    data: Any,
    outcomes: OutcomesLike,
    *,
    start: datetime,
    end: datetime,
    assume_zone: str | tzinfo | None = None,
) -> Waterfall:
    """:func:`waterfall` without the currency guard, for callers that convert per deal."""
    if end < start:
        raise AnalyticsError(f"end={end!r} is before start={start!r}; pass start <= end")
    first = prepare(data, outcomes, as_of=start, assume_zone=assume_zone, keep_rows=True)
    last = prepare(data, outcomes, as_of=end, assume_zone=assume_zone, keep_rows=True)
    rank = {s: i for i, s in enumerate(first.outcomes.stages)}
    before = {r["opportunity_id"]: r for r in current_state(first)}
    deals = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0.0])
    for e in current_state(last):
        s = before.get(e["opportunity_id"])
        category = _category(s, e, rank, first.as_of_us)
        if category is None:
            continue
        a0 = None if s is None else s["amount"]
        change = _open_amount(e) - _open_amount(s)
        deals.append(
            WaterfallDeal(
                e["opportunity_id"],
                category,
                None if s is None else s["stage"],
                e["stage"],
                a0,
                e["amount"],
                change,
            )
        )
        t = totals[category]
        t[0] += 1
        t[1] += a0 or 0.0
        t[2] += e["amount"] or 0.0
        t[3] += s is None
        t[4] += change
    summary = [
        WaterfallRow(c, int(n[0]), n[1], n[2], int(n[3]), n[4])
        for c in CATEGORIES
        if (n := totals.get(c))
    ]
    open_start = sum(_open_amount(r) for r in before.values())
    open_end = sum(d.amount_end or 0.0 for d in deals if d.category not in ("won", "lost"))
    return Waterfall(
        emit(last, deals, WaterfallDeal), emit(last, summary, WaterfallRow), open_start, open_end
    )
