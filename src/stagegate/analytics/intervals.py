"""Stage intervals: every visit of every opportunity to every stage.

A *stage entry* is a row whose stage differs from the previous row's stage of the same
opportunity (the first row is always one). A *visit* runs from an entry to the next entry:

- **re-entries** (a deal comes back to a stage) are separate visits, numbered by ``visit``;
- **skips** and **backward moves** need no special case: a visit ends when the next stage is
  entered, whatever it is (``next_stage`` says which);
- **same-instant ties** are ordered by ``seq`` (or, without ``seq``, by the process order) and
  give zero-length visits, which still count as having reached the stage;
- a visit to an **open** stage with no later entry is **censored** at ``as_of``: its duration
  runs to ``as_of`` (never shorter than what was observed) and ``censored`` is true;
- a visit to a **won or lost** stage with no later entry is *terminal*: no exit, no duration;
- rows after ``as_of`` are ignored: results describe the pipeline as known at ``as_of``.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "a", "at": t(4), "stage": "demo"},
...     {"opportunity_id": "a", "at": t(9), "stage": "won"},
...     {"opportunity_id": "b", "at": t(2), "stage": "lead"},
... ]
>>> kinds = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}
>>> for v in stage_intervals(rows, kinds, as_of=t(11)):
...     print(v.opportunity_id, v.stage, v.duration_days, v.next_stage, v.censored, v.outcome)
a lead 3.0 demo False won
a demo 5.0 won False won
a won None None False won
b lead 9.0 None True open
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._time import from_epoch_us
from stagegate.analytics._kernel import kernel_of
from stagegate.analytics._table import (
    DAY_US,
    KIND_CODE,
    ORDER,
    as_of_us,
    backend_of,
    by_stage,
    check_known,
    frame_rows,
    group_rows,
    is_frame,
    python_rows,
)
from stagegate.analytics.outcomes import Outcomes, OutcomesLike

if TYPE_CHECKING:
    import narwhals as nw

__all__ = [
    "INTERVAL_COLUMNS",
    "KIND_CODE",
    "ORDER",
    "Prepared",
    "StageInterval",
    "prepare",
    "prepared_at",
    "stage_intervals",
]

INTERVAL_COLUMNS = (
    "opportunity_id",
    "stage",
    "kind",
    "step",
    "visit",
    "from_stage",
    "entered_at",
    "exited_at",
    "entered_us",
    "exited_us",
    "duration_days",
    "next_stage",
    "censored",
    "outcome",
    "reason",
    "amount",
    "close_day",
)
"""The columns of :func:`stage_intervals` on the frame path, in order (``step`` and ``visit``
are 32-bit integers there)."""


@attrs.frozen(slots=True)
class StageInterval:
    """One visit of one opportunity to one stage.

    Attributes:
        opportunity_id: the opportunity.
        stage: the stage visited.
        kind: ``"open"``, ``"won"`` or ``"lost"``: the kind of ``stage``.
        step: 1 for the opportunity's first stage entry, 2 for the next, ...
        visit: 1 for the first visit of this opportunity to this stage, 2 for a re-entry, ...
        from_stage: the stage left to enter this one (``None`` for the first).
        entered_at: when the stage was entered (UTC).
        exited_at: when the next stage was entered; ``None`` if not (yet) exited.
        entered_us: ``entered_at`` in epoch microseconds.
        exited_us: ``exited_at`` in epoch microseconds, or ``None``.
        duration_days: days in the stage: to the exit, or to ``as_of`` for a censored visit;
            ``None`` for a terminal (won or lost, never reopened) visit.
        next_stage: the stage entered next, or ``None``.
        censored: the visit to an open stage is still running at ``as_of``.
        outcome: the opportunity's outcome at ``as_of``: ``"won"``, ``"lost"`` or ``"open"``.
        reason: the reason recorded on entering the stage (why a deal was lost), if any.
        amount: the amount in force when the stage was entered, if known.
        close_day: the expected close date in force on entry, as days since 1970-01-01.
        segment: with ``by=``, the segment values in force when the visit began.
    """

    opportunity_id: str
    stage: str
    kind: str
    step: int
    visit: int
    from_stage: str | None
    entered_at: datetime
    exited_at: datetime | None
    entered_us: int
    exited_us: int | None
    duration_days: float | None
    next_stage: str | None
    censored: bool
    outcome: str
    reason: str | None = None
    amount: float | None = None
    close_day: int | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata={"by": True})


def python_intervals(
    groups: dict[str, list[Any]], outcomes: Outcomes, as_of: int
) -> list[StageInterval]:
    """The visits of grouped, ordered :class:`~stagegate.analytics._table.Row` lists."""
    result: list[StageInterval] = []
    kinds = outcomes.kinds
    for opp, rows in groups.items():
        entries = [r for i, r in enumerate(rows) if i == 0 or r.stage != rows[i - 1].stage]
        outcome = kinds[entries[-1].stage]
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            nxt = entries[i + 1] if i + 1 < len(entries) else None
            kind = kinds[entry.stage]
            seen[entry.stage] = seen.get(entry.stage, 0) + 1
            if nxt is not None:
                duration: float | None = (nxt.at_us - entry.at_us) / DAY_US
            elif kind == "open":
                duration = (as_of - entry.at_us) / DAY_US
            else:
                duration = None
            result.append(
                StageInterval(
                    opp,
                    entry.stage,
                    kind,
                    i + 1,
                    seen[entry.stage],
                    entries[i - 1].stage if i else None,
                    from_epoch_us(entry.at_us),
                    None if nxt is None else from_epoch_us(nxt.at_us),
                    entry.at_us,
                    None if nxt is None else nxt.at_us,
                    duration,
                    None if nxt is None else nxt.stage,
                    nxt is None and kind == "open",
                    outcome,
                    entry.reason,
                    entry.amount,
                    entry.close_day,
                )
            )
    return result


def by_kind(column: str) -> nw.Expr:
    """The :data:`KIND_CODE` of the kind names (``open``, ``won``, ``lost``) in ``column``."""
    import narwhals as nw  # noqa: PLC0415

    closed = {kind: code for kind, code in KIND_CODE.items() if kind != "open"}
    return by_stage(column, closed, KIND_CODE["open"]).cast(nw.Int8)


@attrs.frozen
class Prepared:
    """Input ready for a metric: visits (python list or lazy narwhals frame) and context."""

    outcomes: Outcomes
    as_of_us: int
    python: list[StageInterval] | None = None
    frame: Any = None
    rows: Any = None
    build: Any = None
    lazy_input: bool = False

    @property
    def is_frame(self) -> bool:
        """Whether the input was a data frame."""
        return self.frame is not None


def prepare(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
    keep_rows: bool = False,
    materialize: bool = True,
) -> Prepared:
    """Turn any accepted input into stage visits as known at ``as_of``.

    ``data`` may be: an iterable of events, opportunities or row mappings; a list of
    :class:`StageInterval` (reused as is); a data frame of the canonical table; or a frame
    returned by :func:`stage_intervals` (recognised by its ``entered_us`` column, reused).
    """
    out = Outcomes.of(outcomes)
    cutoff = as_of_us(as_of)
    if is_frame(data):
        import narwhals as nw  # noqa: PLC0415

        frame = nw.from_native(data)
        is_lazy = isinstance(frame, nw.LazyFrame)
        build = backend_of(data)
        if "entered_us" in frame.columns:
            lazy = _shared(data)
            if lazy is None:
                lazy = frame.lazy() if isinstance(frame, nw.DataFrame) else frame
            if is_lazy and materialize:
                lazy = kernel_of(lazy).keep(lazy)
            return Prepared(out, cutoff, frame=lazy, build=build, lazy_input=is_lazy)
        whole = frame_rows(data, out, cutoff_us=None, assume_zone=assume_zone)
        kernel = kernel_of(whole)
        rows = whole.filter(nw.col("at_us") <= cutoff)
        visits = kernel.intervals(whole, out, cutoff)  # it leaves the rows after as_of out
        if materialize:  # computed once, then read by several small aggregations
            visits = kernel.keep(visits)
            rows = kernel.keep(rows) if keep_rows else rows
        return Prepared(
            out,
            cutoff,
            frame=visits,
            rows=rows if keep_rows else None,
            build=build,
            lazy_input=is_lazy,
        )
    items = data if isinstance(data, list) else list(data)
    if items and all(isinstance(i, StageInterval) for i in items):
        return Prepared(out, cutoff, python=items)
    rows_py = python_rows(items, out, assume_zone=assume_zone)
    groups = group_rows(rows_py, cutoff)
    return Prepared(
        out,
        cutoff,
        python=python_intervals(groups, out, cutoff),
        rows=groups if keep_rows else None,
    )


def prepared_at(prepared: Prepared, as_of: datetime) -> Prepared:
    """The same log prepared at an earlier ``as_of``, from the rows ``prepared`` kept.

    ``prepared`` must come from :func:`prepare` with ``keep_rows=True``; its rows are
    normalized once, and only the visits are computed again (rows after ``as_of`` are left
    out, open visits censored there).

    Raises:
        AnalyticsError: ``prepared`` kept no rows.
    """
    from stagegate.analytics.outcomes import AnalyticsError  # noqa: PLC0415

    if prepared.rows is None:
        raise AnalyticsError("prepared_at needs a log prepared with keep_rows=True")
    cutoff = as_of_us(as_of)
    out = prepared.outcomes
    if prepared.python is not None:
        groups = {
            opp: [r for r in rows if r.at_us <= cutoff] for opp, rows in prepared.rows.items()
        }
        groups = {opp: rows for opp, rows in groups.items() if rows}
        return Prepared(out, cutoff, python=python_intervals(groups, out, cutoff))
    kernel = kernel_of(prepared.rows)
    visits = kernel.keep(kernel.intervals(prepared.rows, out, cutoff))
    return Prepared(out, cutoff, frame=visits, build=prepared.build, lazy_input=prepared.lazy_input)


def coded_visits(
    frame: nw.LazyFrame[Any],
    outcomes: Outcomes,
    predicate: nw.Expr,
    codes: dict[str, str],
    columns: list[str],
    **computed: nw.Expr,
) -> nw.LazyFrame[Any]:
    """The visits several aggregations read, stage columns replaced by positions (``codes``).

    Only the rows of ``predicate`` and these columns are gathered (``computed`` ones after
    the filter), computed once by the frame's kernel.

    Raises:
        UnknownStageError: a stage in one of the coded columns is not one of ``outcomes``
            (a frame of visits computed for another process).
    """
    import narwhals as nw  # noqa: PLC0415

    kernel = kernel_of(frame)
    try:
        coded = kernel.stage_groups(frame, codes, outcomes)
        return kernel.keep(coded.filter(predicate).select(*columns, **computed))
    except nw.exceptions.InvalidOperationError:
        check_known(frame, codes, outcomes)
        raise


def to_native(prepared: Prepared, frame: nw.LazyFrame[Any], *, text: bool = True) -> Any:
    """Return a lazy narwhals frame in the caller's backend and eagerness.

    Stages travel as an ``Enum`` of the process's stages on Polars (one byte a row); the
    frame handed back holds them as text, as they came in, unless ``text`` is false (the
    report keeps its visits coded: they are never shown as a frame).

    The visits of ``prepared`` handed out in memory are remembered: :func:`prepare` of that
    very frame gives back the same visits object, so what is computed once per visits (the
    counts of :func:`~stagegate.analytics.probability.fit_counts`, the deal clock's
    weights) is shared by every analysis of them.
    """
    shown = as_text(frame) if text else frame
    if prepared.lazy_input:
        return shown.to_native()
    native = shown.collect().to_native()
    if frame is prepared.frame:
        key = id(native)
        try:
            forget = _SHARED.pop  # bound now: at exit the module's names may be gone
            ref = weakref.ref(native, lambda _: forget(key, None))
        except TypeError:  # pragma: no cover - a backend without weak references
            return native
        _SHARED[key] = (ref, frame)
    return native


def as_text(frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """``frame`` with its ``Enum`` columns (the stages, on Polars) cast to text."""
    import narwhals as nw  # noqa: PLC0415

    if not frame.implementation.is_polars():
        return frame
    coded = [c for c, dtype in frame.collect_schema().items() if isinstance(dtype, nw.Enum)]
    if not coded:
        return frame
    return frame.with_columns(nw.col(*coded).cast(nw.String()))


_SHARED: dict[int, tuple[weakref.ref[Any], Any]] = {}
"""Native frames of visits handed out by :func:`to_native`, with the visits they came from."""


def _shared(native: Any) -> Any:
    """The visits a native frame of :func:`to_native` came from (``None``: another frame)."""
    found = _SHARED.get(id(native))
    return found[1] if found is not None and found[0]() is native else None


def stage_intervals(
    data: Iterable[Any] | Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Every visit of every opportunity to every stage, as known at ``as_of``.

    Args:
        data: events, opportunities or row mappings (pure Python), or a stage-history data
            frame (pandas, Polars, DuckDB, PySpark).
        outcomes: a ``Process``, or a mapping ``{stage_id: "open" | "won" | "lost"}``.
        as_of: the instant the analysis stands at (aware); later rows are ignored and open
            visits are censored here.
        assume_zone: the zone of naive instants in ``data``, if any (never guessed).
        by: a segment column (or several): each visit gains the values in force when it
            began (``segment`` on a record; on a frame, the columns right after
            ``opportunity_id``).

    Returns:
        A list of :class:`StageInterval` ordered by opportunity and step (pure Python), or a
        frame in the caller's backend with the columns :data:`INTERVAL_COLUMNS` (rows in no
        particular order: sort by ``opportunity_id, step`` if you need one). Pass the
        result to the other functions to reuse it instead of recomputing the visits: on
        DuckDB it is a relation over visits computed once and held by DuckDB, on Spark a
        cached frame.

    Raises:
        AnalyticsError: the input has the wrong shape or backend.
        UnknownStageError: a stage is not one of ``outcomes``.
        InvalidTimestampError: an instant is naive and no zone was named.
    """
    if by is not None:
        from stagegate.analytics._by import intervals_by_segment  # noqa: PLC0415

        return intervals_by_segment(data, outcomes, by, as_of=as_of, assume_zone=assume_zone)
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, materialize=False)
    if prepared.python is not None:
        return prepared.python
    frame = prepared.frame
    if prepared.lazy_input:  # DuckDB computes them once, Spark caches them on first use
        frame = kernel_of(frame).keep(frame)
    return to_native(prepared, frame)
