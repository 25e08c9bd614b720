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

import itertools
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._time import from_epoch_us
from stagegate.analytics._table import (
    DAY_US,
    as_of_us,
    backend_of,
    by_code,
    by_stage,
    epoch_us_expr,
    frame_rows,
    group_rows,
    group_starts,
    in_threads,
    is_frame,
    not_before,
    python_rows,
    running,
    sorts_in_memory,
    with_stage_groups,
)
from stagegate.analytics.outcomes import Outcomes, OutcomesLike

if TYPE_CHECKING:
    import narwhals as nw

__all__ = ["INTERVAL_COLUMNS", "Prepared", "StageInterval", "prepare", "stage_intervals"]

KIND_CODE = {"open": 0, "won": 1, "lost": 2}
ORDER = ["at_us", "seq", "rank"]
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


def frame_intervals(rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int) -> nw.LazyFrame[Any]:
    """The visits of a normalized frame (see :func:`~stagegate.analytics._table.frame_rows`).

    On Polars and pandas the rows are sorted once and neighbours compared with plain shifts
    (:func:`sorted_intervals`); elsewhere ordered window functions do the same.
    """
    if sorts_in_memory(rows):
        return sorted_intervals(rows, outcomes, as_of)
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    prev = nw.col("stage").shift(1).over(opp, order_by=ORDER)
    # narwhals' cum_count over an ordered window is wrong on pandas: sum a column of ones
    entries = rows.with_columns(from_stage=prev, one=nw.lit(1, nw.Int64)).filter(
        nw.col("from_stage").is_null() | (nw.col("from_stage") != nw.col("stage"))
    )
    kind_code = by_stage("stage", {s: KIND_CODE[k] for s, k in outcomes.kinds.items()}, 0)
    entries = entries.with_columns(
        exited_at=nw.col("at").shift(-1).over(opp, order_by=ORDER),
        exited_us=nw.col("at_us").shift(-1).over(opp, order_by=ORDER),
        next_stage=nw.col("stage").shift(-1).over(opp, order_by=ORDER),
        step=nw.col("one").cum_sum().over(opp, order_by=ORDER).cast(nw.Int32),
        visit=nw.col("one").cum_sum().over([opp, "stage"], order_by=ORDER).cast(nw.Int32),
        kind_code=kind_code.cast(nw.Int64),
    )
    last = nw.col("exited_us").is_null()
    open_visit = nw.col("kind_code") == 0
    entries = entries.with_columns(
        final=nw.when(last).then(nw.col("kind_code")).otherwise(nw.lit(-1)).max().over(opp),
        censored=last & open_visit,
        duration_days=nw.when(~last)
        .then((nw.col("exited_us") - nw.col("at_us")) / DAY_US)
        .when(open_visit)
        .then((nw.lit(as_of) - nw.col("at_us")) / DAY_US)
        .otherwise(nw.lit(None, nw.Float64)),
    )
    return entries.select(
        nw.col(opp),
        nw.col("stage"),
        _kind_name("kind_code").alias("kind"),
        nw.col("step"),
        nw.col("visit"),
        nw.col("from_stage"),
        nw.col("at").alias("entered_at"),
        nw.col("exited_at"),
        nw.col("at_us").alias("entered_us"),
        nw.col("exited_us"),
        nw.col("duration_days").cast(nw.Float64),
        nw.col("next_stage"),
        nw.col("censored"),
        _kind_name("final").alias("outcome"),
        nw.col("reason"),
        nw.col("amount"),
        nw.col("close_day"),
    )


VISIT_SHIFTS = 12
"""Up to this many entries per opportunity, visits are numbered by comparing shifted rows."""


def sorted_intervals(rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int) -> nw.LazyFrame[Any]:
    """:func:`frame_intervals` for in-memory backends: at most one sort, then plain shifts.

    ``rows`` may still hold rows after ``as_of``. Rows already ordered by
    ``(opportunity_id, at, seq, stage order)``, as CRM exports and
    :meth:`~stagegate.store.EventStore.to_frame` usually are, are not sorted again; then the
    rows after ``as_of`` (the tail of each opportunity) are dropped in the same pass that
    keeps the stage entries. Stages are compared by their integer rank, never by name.
    """
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    codes: dict[int, list[int]] = {code: [] for code in KIND_CODE.values()}
    for i, stage in enumerate(outcomes.stages):  # stage positions of each kind
        codes[KIND_CODE[outcomes.kinds[stage]]].append(i)
    ordered = rows.collect()
    slices = _whole_deal_slices(ordered)
    visits: list[nw.DataFrame[Any] | None] = []
    if _deals_in_order(slices):
        visits = _each_slice(slices, codes, as_of, check=True)
    if not visits or any(done is None for done in visits):  # out of order: sort, start again
        ordered = ordered.filter(nw.col("at_us") <= as_of).sort(opp, *ORDER)
        visits = _each_slice(_whole_deal_slices(ordered), codes, as_of, check=False)
    del ordered, slices
    done = [v for v in visits if v is not None]  # unchecked slices always give visits
    return (done[0] if len(done) == 1 else nw.concat(done)).lazy()


def _each_slice(
    slices: list[nw.DataFrame[Any]], codes: dict[int, list[int]], as_of: int, *, check: bool
) -> list[nw.DataFrame[Any] | None]:
    """:func:`_slice_intervals` of every slice, in order (``None`` for a slice out of order)."""
    return in_threads(lambda part: _slice_intervals(part, codes, as_of, check=check), slices)


SLICE_ROWS = 1 << 18
"""Rows of the log in one slice (two slices are turned into visits at a time, in threads)."""


def _whole_deal_slices(rows: nw.DataFrame[Any]) -> list[nw.DataFrame[Any]]:
    """Cut ordered rows into slices of about :data:`SLICE_ROWS` rows of whole deals.

    Slices are views, not copies, and no deal is cut in two, so each is computed on its own;
    new columns are only ever made for one slice at a time.
    """
    ids = rows.get_column("opportunity_id")
    cuts = [0]
    for wanted in range(SLICE_ROWS, len(rows), SLICE_ROWS):
        cut = _deal_start(ids, max(wanted, cuts[-1] + 1))
        if cut < len(rows):
            cuts.append(cut)
    cuts.append(len(rows))
    return [rows[a:b] for a, b in itertools.pairwise(cuts)]


def _deals_in_order(slices: list[nw.DataFrame[Any]]) -> bool:
    """Whether each slice's first deal sorts after the previous slice's last deal."""
    ids = [(part.item(0, "opportunity_id"), part.item(len(part) - 1, "opportunity_id"))
           for part in slices if len(part)]  # fmt: skip
    return all(last < first for (_, last), (first, _) in itertools.pairwise(ids))


def _deal_start(ids: nw.Series[Any], row: int) -> int:
    """The first row at or after ``row`` that starts a deal (``len(ids)`` if none)."""
    before, window = ids[row - 1], 64
    while row < len(ids):
        for i, value in enumerate(ids[row : row + window].to_list()):
            if value != before:
                return row + i
        row, window = row + window, window * 2
    return len(ids)


def _slice_intervals(
    rows: nw.DataFrame[Any], codes: dict[int, list[int]], as_of: int, *, check: bool
) -> nw.DataFrame[Any] | None:
    """The visits of rows of whole deals (see :func:`sorted_intervals`).

    ``check``: first make sure the rows are ordered by ``(opportunity_id, *ORDER)``, and
    return ``None`` if not. Within a deal ``(at_us, seq, rank)`` must not fall; a deal's first
    row must sort after the row above it (the previous deal's last), so each deal comes in
    one run.
    """
    import narwhals as nw  # noqa: PLC0415

    opp = nw.col("opportunity_id")
    same = opp == opp.shift(1)
    rows = rows.with_columns(same=same.fill_null(value=False))
    if check and not _in_order(rows):
        return None
    moved = (nw.col("rank") != nw.col("rank").shift(1)).fill_null(value=True)
    # the first row of a deal is at or before as_of if any is: ``first`` survives the filter;
    # only the columns used later are gathered, and the epoch microseconds are read back
    # from ``at`` (no copy when it is in microseconds)
    keep = rows.select(keep=(nw.col("at_us") <= as_of) & (~nw.col("same") | moved))["keep"]
    entries = rows.select(*_GATHERED).filter(keep)
    last = nw.col("first").shift(-1).fill_null(value=True)
    entries = entries.with_columns(
        one=nw.lit(1, nw.Int64),
        first=~nw.col("same"),
        kind_code=by_code("rank", codes),
        at_us=epoch_us_expr("at", fast=True),
    ).with_columns(last=last)
    entries = entries.with_columns(
        step=running("one", "first"),
        from_stage=nw.when(~nw.col("first")).then(nw.col("stage").shift(1)),
        exited_at=nw.when(~nw.col("last")).then(nw.col("at").shift(-1)),
        next_stage=nw.when(~nw.col("last")).then(nw.col("stage").shift(-1)),
        final=nw.when(nw.col("last")).then(nw.col("kind_code")).fill_null(strategy="backward"),
        back=~nw.col("first") & (nw.col("rank") < nw.col("rank").shift(1)).fill_null(value=False),
    ).with_columns(exited_us=epoch_us_expr("exited_at", fast=True))
    return _finish_visits(number_visits(entries), as_of).collect()


def _in_order(rows: nw.DataFrame[Any]) -> bool:
    """Whether rows (with ``same``: same deal as the row above) are in ``(deal, *ORDER)`` order.

    Within a deal the instants must not fall, and rows at one instant must not fall by
    ``(seq, rank)``; deals come in one run each, in increasing order. Deal ids are compared
    only where a deal starts (a row with a null key counts as out of order).
    """
    import narwhals as nw  # noqa: PLC0415

    keys = ["opportunity_id", *ORDER]
    if any(rows.select(nw.col(k).null_count() for k in keys).row(0)):
        return False
    step = nw.col("at_us") - nw.col("at_us").shift(1)
    back, ties = rows.select(
        back=(nw.col("same") & (step < 0)).sum(), ties=(nw.col("same") & (step == 0)).sum()
    ).row(0)
    if back:
        return False
    if ties:
        tie = nw.col("same") & (step == 0)
        if rows.select((tie & ~not_before(["seq", "rank"])).sum()).item():
            return False
    starts = rows.filter(~nw.col("same")).select("opportunity_id")
    start = nw.col("opportunity_id")
    return not starts.select((start <= start.shift(1)).sum()).item()


_GATHERED = ("opportunity_id", "at", "stage", "rank", "same", "reason", "amount", "close_day")
"""The columns of the log that the visits of a slice are computed from."""


def number_visits(entries: nw.DataFrame[Any], shifts: int = VISIT_SHIFTS) -> nw.LazyFrame[Any]:
    """Add ``visit`` to entries ordered by ``(opportunity_id, step)`` (with ``back``).

    A visit's number is one plus the earlier entries of the same opportunity into the same
    stage. With no move backward (``back``: a lower rank than the entry before) no stage is
    entered twice. Otherwise, when no opportunity has more than ``shifts`` entries, the number
    is a sum of compares with the ``step - 1`` rows before; else the entries are sorted.
    """
    import narwhals as nw  # noqa: PLC0415

    backward, longest = entries.select(nw.col("back").any(), nw.col("step").max()).row(0)
    if not backward:
        return entries.with_columns(visit=nw.lit(1, nw.Int64)).lazy()
    if int(longest) <= shifts:
        visit = nw.lit(1, nw.Int64)
        for back in range(1, int(longest)):
            earlier = (nw.col("step") > back) & (nw.col("rank") == nw.col("rank").shift(back))
            visit = visit + earlier.fill_null(value=False).cast(nw.Int64)
        return entries.with_columns(visit=visit).lazy()
    by_rank = entries.sort("opportunity_id", "rank", "step")
    by_rank = by_rank.with_columns(stage_first=group_starts(["opportunity_id", "rank"]))
    return by_rank.with_columns(visit=running("one", "stage_first")).lazy()


def _finish_visits(entries: nw.LazyFrame[Any], as_of: int) -> nw.LazyFrame[Any]:
    import narwhals as nw  # noqa: PLC0415

    last = nw.col("exited_us").is_null()
    open_visit = nw.col("kind_code") == 0
    entries = entries.with_columns(
        censored=last & open_visit,
        duration_days=nw.when(~last)
        .then((nw.col("exited_us") - nw.col("at_us")) / DAY_US)
        .when(open_visit)
        .then((nw.lit(as_of) - nw.col("at_us")) / DAY_US)
        .otherwise(nw.lit(None, nw.Float64)),
    )
    names = {code: kind for kind, code in KIND_CODE.items()}
    return entries.select(
        nw.col("opportunity_id"),
        nw.col("stage"),
        nw.col("kind_code").replace_strict(names, return_dtype=nw.String()).alias("kind"),
        nw.col("step").cast(nw.Int32),
        nw.col("visit").cast(nw.Int32),
        nw.col("from_stage"),
        nw.col("at").alias("entered_at"),
        nw.col("exited_at"),
        epoch_us_expr("at", fast=True).alias("entered_us"),
        epoch_us_expr("exited_at", fast=True).alias("exited_us"),
        nw.col("duration_days").cast(nw.Float64),
        nw.col("next_stage"),
        nw.col("censored"),
        nw.col("final").replace_strict(names, return_dtype=nw.String()).alias("outcome"),
        nw.col("reason"),
        nw.col("amount"),
        nw.col("close_day"),
    )


def by_kind(column: str) -> nw.Expr:
    """The :data:`KIND_CODE` of the kind names (``open``, ``won``, ``lost``) in ``column``."""
    import narwhals as nw  # noqa: PLC0415

    closed = {kind: code for kind, code in KIND_CODE.items() if kind != "open"}
    return by_stage(column, closed, KIND_CODE["open"]).cast(nw.Int8)


def _kind_name(column: str) -> nw.Expr:
    import narwhals as nw  # noqa: PLC0415

    code = nw.col(column)
    return (
        nw.when(code == 1)
        .then(nw.lit("won"))
        .when(code == 2)  # noqa: PLR2004
        .then(nw.lit("lost"))
        .otherwise(nw.lit("open"))
    )


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
            lazy = frame.lazy() if isinstance(frame, nw.DataFrame) else frame
            if is_lazy and materialize:
                lazy = _materialize(lazy)
            return Prepared(out, cutoff, frame=lazy, build=build, lazy_input=is_lazy)
        whole = frame_rows(data, out, cutoff_us=None, assume_zone=assume_zone)
        rows = whole.filter(nw.col("at_us") <= cutoff)
        # in memory, the intervals drop the rows after as_of themselves (one pass fewer)
        visits = frame_intervals(whole if sorts_in_memory(whole) else rows, out, cutoff)
        if materialize:  # computed once, then read by several small aggregations
            visits = _materialize(visits)
            rows = _materialize(rows) if keep_rows else rows
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


def _materialize(frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """Compute a lazy frame once and return it as a lazy frame of the same backend."""
    import narwhals as nw  # noqa: PLC0415

    impl = frame.implementation
    if impl.is_polars() or impl.is_pandas_like():
        return frame.collect().lazy()
    if impl.is_duckdb():
        import duckdb  # noqa: PLC0415

        table = frame.collect(backend="pyarrow").to_native()
        return nw.from_native(duckdb.from_arrow(table)).lazy()
    if impl.is_pyspark() or impl.is_pyspark_connect():
        cached: nw.LazyFrame[Any] = nw.from_native(frame.to_native().cache()).lazy()
        return cached
    return frame


def narrowed(
    frame: nw.LazyFrame[Any], predicate: nw.Expr, columns: list[str], **computed: nw.Expr
) -> nw.LazyFrame[Any]:
    """The rows and columns several aggregations read, computed once on in-memory backends.

    Only these columns are gathered (``computed`` ones after the filter).
    """
    lazy = frame.filter(predicate).select(*columns, **computed)
    return lazy.collect().lazy() if sorts_in_memory(lazy) else lazy


def coded_visits(
    frame: nw.LazyFrame[Any],
    outcomes: Outcomes,
    predicate: nw.Expr,
    codes: dict[str, str],
    columns: list[str],
    **computed: nw.Expr,
) -> nw.LazyFrame[Any]:
    """:func:`narrowed` visits with stage columns replaced by their positions (``codes``).

    Raises:
        UnknownStageError: a stage in one of the coded columns is not one of ``outcomes``
            (a frame of visits computed for another process).
    """
    import narwhals as nw  # noqa: PLC0415

    def check() -> None:
        seen: set[str] = set()
        for column in codes.values():
            values = frame.select(column).unique().collect().get_column(column)
            seen.update(v for v in values.to_list() if isinstance(v, str))
        outcomes.check(sorted(seen))

    if not sorts_in_memory(frame):  # there an unknown stage would read as null: look first
        check()
    try:
        return narrowed(with_stage_groups(frame, codes, outcomes.stages), predicate, columns,
                        **computed)  # fmt: skip
    except nw.exceptions.InvalidOperationError:
        check()
        raise


def to_native(prepared: Prepared, frame: nw.LazyFrame[Any]) -> Any:
    """Return a lazy narwhals frame in the caller's backend and eagerness."""
    if prepared.lazy_input:
        return frame.to_native()
    return frame.collect().to_native()


def stage_intervals(
    data: Iterable[Any] | Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
) -> Any:
    """Every visit of every opportunity to every stage, as known at ``as_of``.

    Args:
        data: events, opportunities or row mappings (pure Python), or a stage-history data
            frame (pandas, Polars, DuckDB, PySpark).
        outcomes: a ``Process``, or a mapping ``{stage_id: "open" | "won" | "lost"}``.
        as_of: the instant the analysis stands at (aware); later rows are ignored and open
            visits are censored here.
        assume_zone: the zone of naive instants in ``data``, if any (never guessed).

    Returns:
        A list of :class:`StageInterval` ordered by opportunity and step (pure Python), or a
        frame in the caller's backend with the columns :data:`INTERVAL_COLUMNS` (rows in no
        particular order: sort by ``opportunity_id, step`` if you need one). Pass an eager
        result to the other functions to reuse it instead of recomputing the visits.

    Raises:
        AnalyticsError: the input has the wrong shape or backend.
        UnknownStageError: a stage is not one of ``outcomes``.
        InvalidTimestampError: an instant is naive and no zone was named.
    """
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, materialize=False)
    if prepared.python is not None:
        return prepared.python
    return to_native(prepared, prepared.frame)
