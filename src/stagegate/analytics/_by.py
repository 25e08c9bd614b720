"""``by=`` for the stage-level analytics: the same figures, once per segment.

A stage-level figure counts a deal for the segment in force when it **entered** the stage
(its first visit). Each deal's per-stage segment key is read first; then the estimator runs
once per segment on the deals that entered some stage under that key, and again, for a stage
where one of those deals entered under another key (a reassigned deal), on exactly the deals
that entered that stage under the key. Each stage's figure uses only deals that reached it, so
both give the figure of the deals attributed to the segment at that stage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate._time import epoch_us, to_utc
from stagegate.analytics._segments import SMALL_SAMPLE, read_inputs, segment_columns
from stagegate.analytics._table import backend_of, is_frame
from stagegate.analytics.intervals import prepare, stage_intervals
from stagegate.analytics.outcomes import AnalyticsError, Outcomes, OutcomesLike

__all__ = ["SEGMENT_FIELDS", "by_segment", "cycles_by_segment"]

SEGMENT_FIELDS = ("segment", "deals", "small")
"""Record fields a ``by=`` result fills; a frame shows the segment columns in their place."""

Segment = tuple[str | None, ...]


def _order(key: Segment) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, value or "") for value in key)


def _subset(data: Any, items: list[Any], ids: set[str]) -> Any:
    """The input restricted to the deals ``ids``: a native frame for a frame, else a list."""
    if is_frame(data):
        import narwhals as nw  # noqa: PLC0415

        frame = nw.from_native(data)
        column = nw.col("opportunity_id").cast(nw.String)
        return frame.filter(column.is_in(sorted(ids))).to_native()
    return [
        item
        for item in items
        if str(
            item.get("opportunity_id")
            if isinstance(item, dict)
            else getattr(item, "opportunity_id", None)
        )
        in ids
    ]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN from a pandas column  # noqa: PLR0124
        return None
    try:
        if value is not None and value != value:  # pandas NA  # noqa: PLR0124
            return None
    except TypeError:
        return None
    return value.item() if hasattr(value, "item") else value


def _records(result: Any, cls: type[Any]) -> list[Any]:
    """The records of one run: a list already, or read back from the frame it returned."""
    if isinstance(result, list):
        return result
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(result)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    names = {f.name for f in attrs.fields(cls) if not f.metadata.get("by")}
    return [
        cls(**{k: _clean(v) for k, v in row.items() if k in names})
        for row in frame.rows(named=True)
    ]


def _first_entries(
    data: Any, items: list[Any], out: Outcomes, as_of: datetime, assume_zone: Any
) -> list[tuple[str, str, int]]:
    """``(deal, open stage, epoch us)`` of every deal's first entry into every open stage."""
    if not is_frame(data):
        visits = prepare(items, out, as_of=as_of, assume_zone=assume_zone).python or []
        return [
            (v.opportunity_id, v.stage, v.entered_us)
            for v in visits
            if v.kind == "open" and v.visit == 1
        ]
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(stage_intervals(data, out, as_of=as_of, assume_zone=assume_zone))
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    first = frame.filter((nw.col("kind") == "open") & (nw.col("visit") == 1))
    return [
        (str(oid), str(stage), int(us))
        for oid, stage, us in first.select("opportunity_id", "stage", "entered_us").rows()
    ]


def by_segment(
    run: Callable[[Any], Any],
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    cls: type[Any],
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """``run`` (one analytics function, arguments bound) per segment of ``by``, per stage.

    Returns:
        ``cls`` records with ``segment``, ``deals`` (deals that entered the stage under the
        segment; a stage none entered under it has no row) and ``small`` (fewer than
        :data:`SMALL_SAMPLE`) set, segments in order (no value last), stages in process order;
        for a frame input, a frame in its backend with the segment columns first, then
        ``deals`` and ``small``.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    columns = segment_columns(by)
    clash = set(columns) & ({f.name for f in attrs.fields(cls)} | set(SEGMENT_FIELDS))
    if clash:
        raise AnalyticsError(
            f"by names result column(s) {', '.join(sorted(clash))}; rename the segment "
            "column(s) in the data first"
        )
    out = Outcomes.of(outcomes)
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    entered: dict[tuple[Segment, str], set[str]] = defaultdict(set)  # (key, stage) -> deals
    key_of: dict[tuple[str, str], Segment] = {}  # (deal, stage) -> key at entry
    for oid, stage, entered_us in _first_entries(data, inputs.data, out, as_of, assume_zone):
        key = inputs.at(oid, entered_us, columns)
        entered[key, stage].add(oid)
        key_of[oid, stage] = key
    members: dict[Segment, set[str]] = defaultdict(set)
    for (key, _), ids in entered.items():
        members[key] |= ids
    found: dict[tuple[Segment, str], list[Any]] = defaultdict(list)
    for key, ids in members.items():
        mixed = {
            stage for stage in out.open if any(key_of.get((oid, stage), key) != key for oid in ids)
        }
        runs = [(ids, set(out.open) - mixed)]
        runs += [(entered.get((key, stage), set()), {stage}) for stage in sorted(mixed)]
        for subset, stages in runs:
            if not subset or not stages:
                continue
            for record in _records(run(_subset(data, inputs.data, subset)), cls):
                n = len(entered.get((key, record.stage), ()))
                if record.stage in stages and n:
                    found[key, record.stage].append(
                        attrs.evolve(record, segment=key, deals=n, small=n < SMALL_SAMPLE)
                    )
    result = [
        record
        for key in sorted(members, key=_order)
        for stage in out.open
        for record in found.get((key, stage), [])
    ]
    if not is_frame(data):
        return result
    return _frame(data, columns, result, cls, ("deals", "small"))


def cycles_by_segment(
    run: Callable[[Any], Any],
    data: Any,
    by: str | Sequence[str],
    *,
    assume_zone: str | tzinfo | None,
) -> Any:
    """``run`` (:func:`~stagegate.analytics.cycle_times`, bound) per segment in force at close.

    Returns:
        ``CycleTimes`` whose ``deals`` carry their ``segment`` and whose ``summary`` has rows
        per segment and outcome with ``segment`` and ``small`` (fewer than
        :data:`SMALL_SAMPLE` deals); frames get the segment columns first.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    from stagegate.analytics.durations import CycleSummary, CycleTime, CycleTimes  # noqa: PLC0415

    columns = segment_columns(by)
    names = {f.name for f in attrs.fields(CycleTime)} | {f.name for f in attrs.fields(CycleSummary)}
    clash = set(columns) & (names | set(SEGMENT_FIELDS))
    if clash:
        raise AnalyticsError(
            f"by names result column(s) {', '.join(sorted(clash))}; rename the segment "
            "column(s) in the data first"
        )
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    members: dict[Segment, set[str]] = defaultdict(set)
    for deal in _records(run(data).deals, CycleTime):
        closed = epoch_us(to_utc(deal.closed_at, what="closed_at"))
        members[inputs.at(str(deal.opportunity_id), closed, columns)].add(str(deal.opportunity_id))
    deals: list[Any] = []
    summary: list[Any] = []
    for key in sorted(members, key=_order):
        part = run(_subset(data, inputs.data, members[key]))
        deals += [attrs.evolve(d, segment=key) for d in _records(part.deals, CycleTime)]
        summary += [
            attrs.evolve(s, segment=key, small=s.deals < SMALL_SAMPLE)
            for s in _records(part.summary, CycleSummary)
        ]
    if not is_frame(data):
        return CycleTimes(deals, summary)
    return CycleTimes(
        _frame(data, columns, deals, CycleTime, ()),
        _frame(data, columns, summary, CycleSummary, ("small",)),
    )


def _frame(
    data: Any, columns: Sequence[str], records: list[Any], cls: type[Any], extra: Sequence[str]
) -> Any:
    table: dict[str, list[Any]] = {
        c: [r.segment[i] for r in records] for i, c in enumerate(columns)
    }
    table.update({name: [getattr(r, name) for r in records] for name in extra})
    fields = [f.name for f in attrs.fields(cls) if not f.metadata.get("by")]
    table.update({name: [getattr(r, name) for r in records] for name in fields})
    return backend_of(data)(table)
