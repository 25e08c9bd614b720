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
from stagegate.analytics._segments import SMALL_SAMPLE, read_inputs, segment_columns, segment_order
from stagegate.analytics._table import DAY_US, backend_of, is_frame
from stagegate.analytics.intervals import prepare, stage_intervals
from stagegate.analytics.outcomes import AnalyticsError, Outcomes, OutcomesLike

__all__ = [
    "SEGMENT_FIELDS",
    "Attribution",
    "attribute",
    "by_segment",
    "check_by",
    "cycles_by_segment",
]

SEGMENT_FIELDS = ("segment", "deals", "small")
"""Record fields a ``by=`` result fills; a frame shows the segment columns in their place."""

Segment = tuple[str | None, ...]


def deals_subset(data: Any, items: list[Any], ids: set[str]) -> Any:
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


def clean_value(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN from a pandas column  # noqa: PLR0124
        return None
    try:
        if value is not None and value != value:  # pandas NA  # noqa: PLR0124
            return None
    except TypeError:
        return None
    return value.item() if hasattr(value, "item") else value


def records_of(result: Any, cls: type[Any]) -> list[Any]:
    """The records of one run: a list already, or read back from the frame it returned."""
    if isinstance(result, list):
        return result
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(result)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    names = {f.name for f in attrs.fields(cls) if not f.metadata.get("by")}
    return [
        cls(**{k: clean_value(v) for k, v in row.items() if k in names})
        for row in frame.rows(named=True)
    ]


Visit = tuple[str, str, str, int, int, int | None, str]
"""``(deal, stage, kind, visit, entered us, exited us, outcome)`` of one stage visit."""


def _visits(
    data: Any, items: list[Any], out: Outcomes, as_of: datetime, assume_zone: Any
) -> list[Visit]:
    """Every visit of every deal (computed once, in the input's backend)."""
    if not is_frame(data):
        visits = prepare(items, out, as_of=as_of, assume_zone=assume_zone).python or []
        return [
            (v.opportunity_id, v.stage, v.kind, v.visit, v.entered_us, v.exited_us, v.outcome)
            for v in visits
        ]
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(stage_intervals(data, out, as_of=as_of, assume_zone=assume_zone))
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    names = ("opportunity_id", "stage", "kind", "visit", "entered_us", "exited_us", "outcome")
    return [
        (str(oid), str(stage), str(kind), int(visit), int(entered), _us(exited), str(outcome))
        for oid, stage, kind, visit, entered, exited, outcome in frame.select(*names).rows()
    ]


def _us(value: Any) -> int | None:
    value = clean_value(value)
    return None if value is None else int(value)


def check_by(by: str | Sequence[str], *classes: type[Any]) -> tuple[str, ...]:
    """``by`` as column names, none of them a column of the result ``classes``.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    columns = segment_columns(by)
    names = {f.name for cls in classes for f in attrs.fields(cls)} | set(SEGMENT_FIELDS)
    clash = set(columns) & names
    if clash:
        raise AnalyticsError(
            f"by names result column(s) {', '.join(sorted(clash))}; rename the segment "
            "column(s) in the data first"
        )
    return columns


@attrs.define
class Attribution:
    """Which segment each deal counts for at each stage: the one in force at its first entry.

    Attributes:
        columns: the segment columns.
        inputs: the input, read once (segment history per deal).
        visits: every visit of every deal.
        entered: ``(segment, stage) -> deals`` that first entered the stage under it.
        key_of: ``(deal, stage) -> segment`` at the deal's first entry into the stage.
        members: ``segment -> deals`` that first entered some counted stage under it.
    """

    columns: tuple[str, ...]
    inputs: Any
    visits: list[Visit]
    entered: dict[tuple[Segment, str], set[str]]
    key_of: dict[tuple[str, str], Segment]
    members: dict[Segment, set[str]]

    def deals(self, key: Segment, stage: str) -> int:
        """Deals that first entered ``stage`` under ``key``."""
        return len(self.entered.get((key, stage), ()))

    def segments(self) -> list[Segment]:
        """The segments in order, those without a value last."""
        return sorted(self.members, key=segment_order)

    def runs(
        self, key: Segment, stages: Sequence[str], *, keep_others: bool = False
    ) -> list[tuple[set[str], set[str]]]:
        """``(deals, stages)``: the runs whose rows for ``stages`` give the segment's figures.

        One run on the segment's members for every stage none of them entered under another
        segment; one per other stage on the deals attributed to the segment there: those
        that entered it under ``key`` or, with ``keep_others``, every member but those that
        entered it under another segment (a figure that also counts deals that never reached
        the stage, like the funnel's reach rate).
        """
        ids = self.members[key]
        mixed = {s for s in stages if any(self.key_of.get((oid, s), key) != key for oid in ids)}
        result = [(ids, set(stages) - mixed)]
        for stage in sorted(mixed):
            if keep_others:
                part = {oid for oid in ids if self.key_of.get((oid, stage), key) == key}
            else:
                part = self.entered.get((key, stage), set())
            result.append((part, {stage}))
        return [(part, rows) for part, rows in result if part and rows]

    def subset(self, data: Any, ids: set[str]) -> Any:
        """The input restricted to the deals ``ids`` (a frame in its backend, or a list)."""
        return deals_subset(data, self.inputs.data, ids)


def attribute(
    data: Any,
    out: Outcomes,
    columns: tuple[str, ...],
    *,
    as_of: datetime,
    assume_zone: Any,
    kinds: Sequence[str] = ("open",),
) -> Attribution:
    """Read ``data`` once and attribute every first entry into a stage of ``kinds``."""
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    visits = _visits(data, inputs.data, out, as_of, assume_zone)
    entered: dict[tuple[Segment, str], set[str]] = defaultdict(set)
    key_of: dict[tuple[str, str], Segment] = {}
    for oid, stage, kind, visit, entered_us, _, _ in visits:
        if visit == 1 and kind in kinds:
            key = inputs.at(oid, entered_us, columns)
            entered[key, stage].add(oid)
            key_of[oid, stage] = key
    members: dict[Segment, set[str]] = defaultdict(set)
    for (key, _), ids in entered.items():
        members[key] |= ids
    return Attribution(columns, inputs, visits, dict(entered), key_of, dict(members))


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
    columns = check_by(by, cls)
    out = Outcomes.of(outcomes)
    seen = attribute(data, out, columns, as_of=as_of, assume_zone=assume_zone)
    found: dict[tuple[Segment, str], list[Any]] = defaultdict(list)
    for key in seen.segments():
        for subset, stages in seen.runs(key, out.open):
            for record in records_of(run(seen.subset(data, subset)), cls):
                n = seen.deals(key, record.stage)
                if record.stage in stages and n:
                    found[key, record.stage].append(
                        attrs.evolve(record, segment=key, deals=n, small=n < SMALL_SAMPLE)
                    )
    result = [
        record
        for key in seen.segments()
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

    columns = check_by(by, CycleTime, CycleSummary)
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    members: dict[Segment, set[str]] = defaultdict(set)
    for deal in records_of(run(data).deals, CycleTime):
        closed = epoch_us(to_utc(deal.closed_at, what="closed_at"))
        members[inputs.at(str(deal.opportunity_id), closed, columns)].add(str(deal.opportunity_id))
    deals: list[Any] = []
    summary: list[Any] = []
    for key in sorted(members, key=segment_order):
        part = run(deals_subset(data, inputs.data, members[key]))
        deals += [attrs.evolve(d, segment=key) for d in records_of(part.deals, CycleTime)]
        summary += [
            attrs.evolve(s, segment=key, small=s.deals < SMALL_SAMPLE)
            for s in records_of(part.summary, CycleSummary)
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


def funnel_by_segment(
    run: Callable[[Any], Any],
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """``run`` (:func:`~stagegate.analytics.funnel`, bound) per segment at stage entry.

    A segment's deals are those that first entered some stage under it; its row for a stage
    is the funnel of those deals, less the ones that entered that stage under another
    segment (so reach rate and conversion keep their meaning for a deal handed on).

    Returns:
        ``Funnel`` whose ``stages`` rows carry ``segment``, ``deals`` (deals that entered the
        stage under the segment) and ``small``, and whose ``losses`` rows carry ``segment``
        and ``small`` (of the stage lost from); ``deals`` counts every deal. Frames get the
        segment columns first.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    from stagegate.analytics.funnel import Funnel, FunnelStage, LossReason  # noqa: PLC0415

    columns = check_by(by, FunnelStage, LossReason)
    out = Outcomes.of(outcomes)
    seen = attribute(
        data, out, columns, as_of=as_of, assume_zone=assume_zone, kinds=("open", "won", "lost")
    )
    names = [*out.open, *out.won]
    rows: dict[tuple[Segment, str], list[Any]] = defaultdict(list)
    losses: dict[tuple[Segment, str], list[Any]] = defaultdict(list)
    for key in seen.segments():
        for subset, stages in seen.runs(key, out.stages, keep_others=True):
            part = run(seen.subset(data, subset))
            for record in records_of(part.stages, FunnelStage):
                n = seen.deals(key, record.stage)
                if record.stage in stages and n:
                    small = n < SMALL_SAMPLE
                    rows[key, record.stage].append(
                        attrs.evolve(record, segment=key, deals=n, small=small)
                    )
            for loss in records_of(part.losses, LossReason):
                n = seen.deals(key, loss.stage)
                if loss.stage in stages and n:
                    losses[key, loss.stage].append(
                        attrs.evolve(loss, segment=key, small=n < SMALL_SAMPLE)
                    )
    keys = seen.segments()
    stage_rows = [r for key in keys for s in names for r in rows.get((key, s), [])]
    loss_rows = [r for key in keys for s in out.stages for r in losses.get((key, s), [])]
    deals = len({visit[0] for visit in seen.visits})
    if not is_frame(data):
        return Funnel(stage_rows, loss_rows, deals)
    return Funnel(
        _frame(data, columns, stage_rows, FunnelStage, ("deals", "small")),
        _frame(data, columns, loss_rows, LossReason, ("small",)),
        deals,
    )


def intervals_by_segment(
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """:func:`~stagegate.analytics.stage_intervals` with the segment of each visit's entry.

    Returns:
        The visits, each with ``segment`` (the values of ``by`` in force when that visit
        began); a frame gets the segment columns right after ``opportunity_id``.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names an interval column.
    """
    from stagegate.analytics.intervals import StageInterval  # noqa: PLC0415

    columns = check_by(by, StageInterval)
    inputs = read_inputs(data, columns, assume_zone=assume_zone)
    out = Outcomes.of(outcomes)
    if not is_frame(data):
        return [
            attrs.evolve(v, segment=inputs.at(v.opportunity_id, v.entered_us, columns))
            for v in stage_intervals(inputs.data, out, as_of=as_of, assume_zone=assume_zone)
        ]
    import narwhals as nw  # noqa: PLC0415

    native = stage_intervals(data, out, as_of=as_of, assume_zone=assume_zone)
    frame = nw.from_native(native)
    lazy = isinstance(frame, nw.LazyFrame)
    eager = frame.collect() if isinstance(frame, nw.LazyFrame) else frame
    keys = [
        inputs.at(str(oid), int(us), columns)
        for oid, us in eager.select("opportunity_id", "entered_us").rows()
    ]
    order = ["opportunity_id", *columns, *(c for c in eager.columns if c != "opportunity_id")]
    values = {c: [k[i] for k in keys] for i, c in enumerate(columns)}
    if not lazy:
        impl = eager.implementation
        added = [nw.new_series(c, v, nw.String(), backend=impl) for c, v in values.items()]
        return eager.with_columns(*added).select(order).to_native()
    table = {c: eager.get_column(c).to_list() for c in eager.columns}
    table.update(values)
    rebuilt = nw.from_native(backend_of(data)({c: table[c] for c in order}))
    types = [nw.col(c).cast(nw.String()) for c in columns]
    types += [nw.col(c).cast(dtype) for c, dtype in eager.schema.items()]
    return rebuilt.with_columns(*types).to_native()


def velocity_by_segment(
    run: Callable[[Any], Any],
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """``run`` (:func:`~stagegate.analytics.velocity`, bound) per segment.

    A stage row counts each deal for the segment in force when it first entered the stage;
    the segment's ``overall`` row adds up its stage rows' open deals and expected wins, and
    takes deal size, cycle and closed win rate from the deals closed under the segment (the
    one in force at the close).

    Returns:
        ``Velocity`` records with ``segment``, ``reached`` (deals that entered the stage under
        the segment; for ``overall``, its open deals plus the deals closed under it) and
        ``small``; a frame gets the segment columns first, then ``reached`` and ``small``.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    from stagegate.analytics.velocity import Velocity  # noqa: PLC0415

    columns = check_by(by, Velocity)
    out = Outcomes.of(outcomes)
    seen = attribute(data, out, columns, as_of=as_of, assume_zone=assume_zone)
    found: dict[tuple[Segment, str], Any] = {}
    for key in seen.segments():
        for subset, stages in seen.runs(key, out.open):
            for record in records_of(run(seen.subset(data, subset)), Velocity):
                n = seen.deals(key, record.stage)
                if record.stage in stages and n:
                    found[key, record.stage] = attrs.evolve(
                        record, segment=key, reached=n, small=n < SMALL_SAMPLE
                    )
    opened = {oid for oid, _, kind, *_ in seen.visits if kind == "open"}
    closers: dict[Segment, set[str]] = defaultdict(set)
    for oid, _, kind, _, entered_us, exited_us, _ in seen.visits:
        if exited_us is None and kind != "open" and oid in opened:
            closers[seen.inputs.at(oid, entered_us, columns)].add(oid)
    result = []
    for key in sorted(set(seen.members) | set(closers), key=segment_order):
        rows = [found[key, s] for s in out.open if (key, s) in found]
        closed = closers.get(key, set())
        whole = None
        if closed:
            whole = records_of(run(seen.subset(data, closed)), Velocity)[-1]
        n = sum(r.deals for r in rows)
        wins = sum((r.expected_wins for r in rows), 0.0)  # a float even with no stage row
        rate = wins / n if n else None
        size = whole.deal_size if whole else None
        cycle = whole.cycle_days if whole else None
        value = n * rate * size / cycle if rate is not None and size is not None and cycle else None
        reached = n + len(closed)
        overall = Velocity(
            "overall", n, rate, size, cycle, value, wins, whole.closed_win_rate if whole else None,
            segment=key, reached=reached, small=reached < SMALL_SAMPLE,
        )  # fmt: skip
        result += [*rows, overall]
    if not is_frame(data):
        return result
    return _frame(data, columns, result, Velocity, ("reached", "small"))


def dwell_by_segment(
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    bins: Sequence[float],
    confidence: float,
    as_of: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """:func:`~stagegate.analytics.dwell_probabilities` per segment, in one grouped pass.

    The visits are computed once (by the frame's kernel for a frame); each visit of a closed
    deal to an open stage is counted for the segment the deal had at its first entry into the
    stage, by dwell bin and outcome, and each segment's table is read off its counts. The
    same rows as :func:`by_segment` running the function once per segment (the reference,
    which the tests compare this with).

    Returns:
        ``DwellProbability`` records (or a frame) as :func:`by_segment` gives them.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    from stagegate.analytics.probability import (  # noqa: PLC0415
        Counts,
        DwellProbability,
        bin_of,
        dwell_table,
    )

    columns = check_by(by, DwellProbability)
    out = Outcomes.of(outcomes)
    seen = attribute(data, out, columns, as_of=as_of, assume_zone=assume_zone)
    dwell: dict[Segment, dict[tuple[str, int, str], int]] = defaultdict(lambda: defaultdict(int))
    for oid, stage, kind, _, entered_us, exited_us, outcome in seen.visits:
        if kind == "open" and outcome != "open" and exited_us is not None:
            days = (exited_us - entered_us) / DAY_US
            dwell[seen.key_of[oid, stage]][stage, bin_of(days, bins), outcome] += 1
    result = []
    for key in seen.segments():
        table = dwell_table(Counts({}, {}, dict(dwell.get(key, {}))), out, bins, confidence)
        for record in table:
            n = seen.deals(key, record.stage)
            if n:
                result.append(attrs.evolve(record, segment=key, deals=n, small=n < SMALL_SAMPLE))
    if not is_frame(data):
        return result
    return _frame(data, columns, result, DwellProbability, ("deals", "small"))
