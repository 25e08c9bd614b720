"""The canonical stage-history table, from events or from a data frame.

One row per change, with the values in force from that instant on::

    opportunity_id  at (aware instant)  seq (optional)  stage  amount  close_date  reason

Rows of one opportunity are ordered by ``(at, seq, stage order)``: ``seq`` breaks ties between
rows at the same instant; without it, the process order does, so that results never depend
on the order of the input rows.

Two representations live here:

- the pure-Python one: :class:`Row` tuples grouped by opportunity (no data-frame library);
- the frame one: a narwhals frame with the canonical columns plus integer companions
  (``at_us``: epoch microseconds; ``close_day``: days since 1970-01-01; ``rank``: stage order).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from stagegate._time import epoch_us, parse_date, to_utc
from stagegate.analytics.outcomes import AnalyticsError, Outcomes
from stagegate.errors import InvalidTimestampError
from stagegate.events import Event

if TYPE_CHECKING:
    import narwhals as nw

__all__ = [
    "DAY_US",
    "KIND_CODE",
    "ORDER",
    "REQUIRED",
    "Row",
    "as_of_us",
    "day_of",
    "frame_rows",
    "group_rows",
    "is_frame",
    "python_rows",
    "sorted_rows",
]

DAY_US = 86_400_000_000
"""Microseconds in a day: durations are ``(b_us - a_us) / DAY_US`` float days."""
KIND_CODE = {"open": 0, "won": 1, "lost": 2}
"""The outcome codes of the frame path: stage kinds travel as these small integers."""
ORDER = ["at_us", "seq", "rank"]
"""The order of one opportunity's rows: instant, then sequence, then stage order."""
REQUIRED = ("opportunity_id", "at", "stage")
"""Columns every stage-history table must have."""
OPTIONAL = ("seq", "amount", "close_date", "reason")
"""Columns used when present."""
_UTC_NAMES = ("UTC", "Etc/UTC", "utc", "+00:00", "Z", "GMT", "Etc/GMT")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Row(NamedTuple):
    """One normalized row of the canonical table (pure-Python path)."""

    opportunity_id: str
    at_us: int
    seq: int
    rank: int
    stage: str
    amount: float | None
    close_day: int | None
    reason: str | None


def day_of(value: date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return value.toordinal() - _EPOCH_ORDINAL


def as_of_us(as_of: datetime, what: str = "as_of") -> int:
    """Epoch microseconds of an aware instant.

    Raises:
        InvalidTimestampError: the instant is naive or not a datetime.
    """
    return epoch_us(to_utc(as_of, what=what))


_FRAME_MODULES = ("pandas", "polars", "duckdb", "pyspark", "sqlframe", "modin", "cudf", "ibis")


def is_frame(data: Any) -> bool:
    """Whether ``data`` is a data frame (of any library) rather than an iterable of records.

    Raises:
        AnalyticsError: ``data`` is a Dask frame or a bare PyArrow table (no ordered windows).
    """
    module = type(data).__module__.split(".", 1)[0]
    if module == "dask":
        raise AnalyticsError(
            "Dask frames are not supported: narwhals has no ordered window functions on Dask; "
            "compute it to pandas (df.compute()) or load the data with Polars or DuckDB"
        )
    if module == "pyarrow":
        raise AnalyticsError(
            "bare PyArrow tables are not supported (no grouped ordered windows); convert with "
            "polars.from_arrow(table) or duckdb.from_arrow(table)"
        )
    if module == "narwhals":
        return True
    return module in _FRAME_MODULES


# -- the pure-Python path ----------------------------------------------------------------------


def _amount(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        number = float(value)
        return None if math.isnan(number) else number
    raise AnalyticsError(f"amount {value!r} is not a number")


def _record(item: Any, index: int, outcomes: Outcomes, assume_zone: str | tzinfo | None) -> Row:
    if isinstance(item, Mapping):
        get = item.get
        missing = [c for c in REQUIRED if get(c) is None]
        if missing:
            raise AnalyticsError(
                f"row {index} lacks {', '.join(missing)}; every row needs opportunity_id, at "
                "and stage"
            )
    elif hasattr(item, "opportunity_id") and hasattr(item, "stage") and hasattr(item, "at"):

        def get(name: str, default: Any = None) -> Any:
            return getattr(item, name, default)

    else:
        raise AnalyticsError(
            f"item {index} is a {type(item).__name__}; pass Event objects, Opportunity objects "
            "(with .events), mappings with the canonical columns, or a data frame"
        )
    at: Any = get("at")
    if isinstance(at, str):
        from stagegate._time import parse_instant  # noqa: PLC0415

        at = parse_instant(at, assume_zone=assume_zone)
    at = to_utc(at, assume_zone=assume_zone, what=f"row {index} at")
    stage = str(get("stage"))
    close = get("close_date")
    seq = get("seq")
    reason = get("reason")
    return Row(
        str(get("opportunity_id")),
        epoch_us(at),
        0 if seq is None else int(seq),
        outcomes.rank(stage),
        stage,
        _amount(get("amount")),
        None if close is None else day_of(parse_date(close)),
        None if reason is None else str(reason),
    )


def python_rows(
    data: Iterable[Any], outcomes: Outcomes, *, assume_zone: str | tzinfo | None = None
) -> list[Row]:
    """Normalize events, opportunities or mappings into :class:`Row` tuples.

    Raises:
        AnalyticsError: an item is of an unknown shape or lacks a required field.
        UnknownStageError: a stage is not one of ``outcomes``.
        InvalidTimestampError: an instant is naive and no zone was named.
    """
    rows: list[Row] = []
    index = 0
    ranks = {s: i for i, s in enumerate(outcomes.stages)}
    for item in data:
        events = getattr(item, "events", None)
        items = events if events is not None and not isinstance(item, Mapping) else (item,)
        for one in items:
            if type(one) is Event and one.stage in ranks:
                rows.append(_event_row(one, ranks))
            else:
                rows.append(_record(one, index, outcomes, assume_zone))
            index += 1
    return rows


def _event_row(event: Event, ranks: Mapping[str, int]) -> Row:
    """Fast path for stagegate's own events (already validated, instants already UTC)."""
    amount = event.amount
    close = event.close_date
    return Row(
        event.opportunity_id,
        epoch_us(event.at),
        event.seq,
        ranks[event.stage],
        event.stage,
        None if amount is None else float(amount),
        None if close is None else close.toordinal() - _EPOCH_ORDINAL,
        event.reason,
    )


def group_rows(rows: Iterable[Row], cutoff_us: int | None = None) -> dict[str, list[Row]]:
    """Group rows by opportunity, keep those at or before ``cutoff_us``, order each group."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if cutoff_us is None or row.at_us <= cutoff_us:
            groups[row.opportunity_id].append(row)
    for group in groups.values():
        group.sort(key=lambda r: (r.at_us, r.seq, r.rank))
    return dict(sorted(groups.items()))


# -- the frame path ---------------------------------------------------------------------------


def _civil_days(year: nw.Expr, month: nw.Expr, day: nw.Expr) -> nw.Expr:
    """Days since 1970-01-01 from calendar parts, in integer arithmetic (Hinnant's algorithm)."""
    import narwhals as nw  # noqa: PLC0415

    y = year - (month <= 2).cast(nw.Int64)  # noqa: PLR2004
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _parts(col: nw.Expr) -> tuple[nw.Expr, nw.Expr, nw.Expr]:
    import narwhals as nw  # noqa: PLC0415

    return (
        col.dt.year().cast(nw.Int64),
        col.dt.month().cast(nw.Int64),
        col.dt.day().cast(nw.Int64),
    )


def epoch_us_expr(name: str, *, fast: bool) -> nw.Expr:
    import narwhals as nw  # noqa: PLC0415

    col = nw.col(name)
    if fast:
        return col.dt.timestamp("us").cast(nw.Int64)
    return (
        _civil_days(*_parts(col)) * DAY_US
        + col.dt.hour().cast(nw.Int64) * 3_600_000_000
        + col.dt.minute().cast(nw.Int64) * 60_000_000
        + col.dt.second().cast(nw.Int64) * 1_000_000
        + col.dt.microsecond().cast(nw.Int64)
    )


def by_stage(
    column: str, values: Mapping[str, Any], default: Any = None, dtype: Any = None
) -> nw.Expr:
    """A ``when/then`` chain mapping stage ids to constants (portable on every backend).

    With ``dtype``, every constant is typed and stages mapped to ``None`` fall through to the
    default: pandas 2 would otherwise infer an object column from the untyped nulls.
    """
    import narwhals as nw  # noqa: PLC0415

    items = list(values.items())
    if dtype is not None and default is None:
        items = [(key, value) for key, value in items if value is not None]
    if not items:
        return nw.lit(default, dtype)
    stage = nw.col(column)
    expr: Any = nw.when(stage == items[0][0]).then(nw.lit(items[0][1], dtype))
    for key, value in items[1:]:
        expr = expr.when(stage == key).then(nw.lit(value, dtype))
    return expr.otherwise(nw.lit(default, dtype))  # type: ignore[no-any-return]


def _close_exprs(close_type: Any, impl: Any, *, fast: bool) -> tuple[nw.Expr, nw.Expr]:
    """The normalized ``close_date`` column and its day number, whatever the input type.

    Raises:
        AnalyticsError: the column holds something other than dates.
    """
    import narwhals as nw  # noqa: PLC0415

    if close_type is None:
        return nw.lit(None, nw.Date()).alias("close_date"), nw.lit(None, nw.Int64)
    close = nw.col("close_date")
    if isinstance(close_type, nw.Datetime):
        date_expr = close.dt.replace_time_zone(None).dt.date().alias("close_date")
    elif close_type == nw.Date:
        date_expr = close
    elif close_type == nw.Object and impl.is_pandas_like():
        raise AnalyticsError(
            "column 'close_date' holds Python objects; convert it with "
            "pandas.to_datetime(df['close_date']) first"
        )
    else:
        raise AnalyticsError(
            f"column 'close_date' must hold calendar dates, got {close_type}; parse it first"
        )
    # the day number is computed after ``date_expr`` has made the column a Date
    if impl.is_polars():
        return date_expr, close.cast(nw.Int64)
    if fast:
        return date_expr, close.cast(nw.Datetime("us")).dt.timestamp("us") // DAY_US
    return date_expr, _civil_days(*_parts(close))


def frame_rows(
    native: Any,
    outcomes: Outcomes,
    *,
    cutoff_us: int | None,
    assume_zone: str | tzinfo | None = None,
) -> nw.LazyFrame[Any]:
    """Validate and normalize a stage-history frame into the canonical lazy narwhals frame.

    The result has ``opportunity_id, at, at_us, seq, rank, stage, amount, close_date,
    close_day, reason``; rows after ``cutoff_us`` are dropped.

    Raises:
        AnalyticsError: a required column is missing, of the wrong type or has empty values.
        InvalidTimestampError: ``at`` is naive and no zone was named.
        UnknownStageError: a stage is not one of ``outcomes``.
    """
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(native)
    if frame.implementation.is_pandas():
        frame = nw.from_native(_pandas_nullable(native))
    if isinstance(frame, nw.DataFrame):
        impl = frame.implementation
        lazy = frame.lazy()
    else:
        impl = frame.implementation
        lazy = frame
    schema = lazy.collect_schema()
    missing = [c for c in REQUIRED if c not in schema]
    if missing:
        raise AnalyticsError(
            f"the stage-history table lacks the column(s) {', '.join(missing)}; it needs "
            f"opportunity_id, at, stage (and optionally seq, amount, close_date, reason); "
            f"found {', '.join(schema)}"
        )
    at_type = schema["at"]
    if not isinstance(at_type, nw.Datetime):
        raise AnalyticsError(
            f"column 'at' must hold instants (a datetime column), got {at_type}; parse it first"
        )
    at = nw.col("at")
    if at_type.time_zone is None:
        if assume_zone is None:
            raise InvalidTimestampError(
                "at",
                "column 'at' holds naive datetimes; pass assume_zone='Europe/Berlin' (the zone "
                "they were recorded in) or convert them to aware instants first",
            )
        zone = assume_zone if isinstance(assume_zone, str) else str(assume_zone)
        at = at.dt.replace_time_zone(zone)
    zone_now = at_type.time_zone or str(assume_zone)
    if zone_now not in _UTC_NAMES:
        if not (impl.is_polars() or impl.is_pandas_like()):
            raise AnalyticsError(
                f"column 'at' is in time zone {zone_now!r}; set the session or connection time "
                "zone to UTC (DuckDB: SET TimeZone='UTC'; Spark: spark.sql.session.timeZone=UTC)"
            )
        at = at.dt.convert_time_zone("UTC")
    fast = impl.is_polars() or impl.is_pandas_like()
    stage_type = schema["stage"]
    # on Polars text or categorical stages become an Enum of the process's stages (_with_rank)
    coded = impl.is_polars() and (
        stage_type == nw.String or isinstance(stage_type, (nw.Categorical, nw.Enum))
    )
    exprs: list[nw.Expr] = [
        nw.col("opportunity_id").cast(nw.String()).alias("opportunity_id"),
        at.alias("at"),
        (nw.col("stage") if coded else nw.col("stage").cast(nw.String())).alias("stage"),
        (nw.col("seq").cast(nw.Int64) if "seq" in schema else nw.lit(0, nw.Int64)).alias("seq"),
        (
            nw.col("amount").cast(nw.Float64) if "amount" in schema else nw.lit(None, nw.Float64)
        ).alias("amount"),
        (
            nw.col("reason").cast(nw.String()) if "reason" in schema else nw.lit(None, nw.String())
        ).alias("reason"),
    ]
    close_date, close_day = _close_exprs(schema.get("close_date"), impl, fast=fast)
    exprs.append(close_date)
    # an eager in-memory frame is computed eagerly: a lazy collect may cut the new columns
    # into chunks unlike the old ones, and the next operation would then copy the whole log
    work: Any = frame if isinstance(frame, nw.DataFrame) and fast else lazy
    work = work.select(exprs)
    derived = (
        epoch_us_expr("at", fast=fast).alias("at_us"),
        close_day.cast(nw.Int64).alias("close_day"),
    )
    _check_present(work)
    ranked = _with_rank(work, outcomes, fast=fast)
    if impl.is_duckdb() and hasattr(ranked.to_native(), "query"):
        result = _duckdb_derived(ranked)  # its own functions: far shorter SQL than the parts
    else:
        result = ranked.with_columns(*derived).lazy()
    if cutoff_us is not None:
        result = result.filter(nw.col("at_us") <= cutoff_us)
    return result


def _duckdb_derived(ranked: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """``at_us`` and ``close_day`` of rows on DuckDB, by ``epoch_us`` and ``datediff``."""
    import narwhals as nw  # noqa: PLC0415

    sql = (
        'SELECT *, epoch_us("at") AS at_us, '
        "CAST(datediff('day', DATE '1970-01-01', close_date) AS BIGINT) AS close_day "
        "FROM canonical"
    )
    derived: nw.LazyFrame[Any] = nw.from_native(ranked.to_native().query("canonical", sql))
    return derived.lazy()


def _check_present(work: Any) -> None:
    """Raise if a row lacks its opportunity or its instant (as the pure-Python path does)."""
    import narwhals as nw  # noqa: PLC0415

    counts = work.select(nw.col(c).null_count() for c in ("opportunity_id", "at"))
    if isinstance(counts, nw.LazyFrame):
        counts = counts.collect()
    for column, empty in zip(("opportunity_id", "at"), counts.row(0), strict=True):
        if empty:
            raise AnalyticsError(
                f"column {column!r} has {empty} empty value(s); every row needs "
                "opportunity_id, at and stage: drop or fill those rows first"
            )


def _with_rank(work: Any, outcomes: Outcomes, *, fast: bool) -> Any:
    """Add ``rank`` (the stage's process position), refusing empty and unknown stages.

    On Polars the stage column becomes an ``Enum`` of the process's stages (one byte a row
    rather than its text; the rank is its code), and so do the stage columns of the visits.
    """
    import narwhals as nw  # noqa: PLC0415

    if not isinstance(work, nw.DataFrame):
        _check_stages(work, outcomes)
        if work.implementation.is_polars():
            return _enum_ranked(work, outcomes)
        return work.with_columns(stage_rank("stage", outcomes, fast=fast).alias("rank"))
    if work.select(nw.col("stage").is_null().any()).item():
        _check_stages(work.lazy(), outcomes)
    try:  # the lookup itself fails on an unknown stage: no extra pass when all are known
        if work.implementation.is_polars():
            return _enum_ranked(work, outcomes)
        return with_stage_codes(work, {"rank": "stage"}, outcomes.stages)
    except nw.exceptions.InvalidOperationError:
        _check_stages(work.lazy(), outcomes)
        raise


def _enum_ranked(work: Any, outcomes: Outcomes) -> Any:
    """Polars rows with ``stage`` an ``Enum`` of the process's stages and ``rank`` its code.

    Raises:
        narwhals' ``InvalidOperationError``: a stage is not one of the process's (eager rows).
    """
    import narwhals as nw  # noqa: PLC0415
    import polars as pl  # noqa: PLC0415

    enum = pl.Enum(list(outcomes.stages))
    try:
        native = work.to_native().with_columns(pl.col("stage").cast(enum))
    except pl.exceptions.InvalidOperationError as error:
        raise nw.exceptions.InvalidOperationError(str(error)) from error
    return nw.from_native(native.with_columns(rank=pl.col("stage").to_physical()))


def _check_stages(rows: nw.LazyFrame[Any], outcomes: Outcomes) -> None:
    """Raise if a stage is empty (null, or pandas' NA) or not one of ``outcomes``."""
    import narwhals as nw  # noqa: PLC0415

    if rows.select(nw.col("stage").is_null().any()).collect().item():
        raise AnalyticsError("column 'stage' has empty values; every row needs a stage")
    seen = rows.select("stage").unique().collect().get_column("stage").to_list()
    outcomes.check(seen)


def stage_rank(column: str, outcomes: Outcomes, *, fast: bool) -> nw.Expr:
    """The process position of the stage in ``column`` (every stage is known by now).

    ``fast`` (in-memory backends): one hash lookup per row instead of a chain of string
    compares. A null stays null.
    """
    import narwhals as nw  # noqa: PLC0415

    ranks = {s: i for i, s in enumerate(outcomes.stages)}
    if fast:
        return nw.col(column).replace_strict(ranks, return_dtype=nw.Int64)
    return by_stage(column, ranks).cast(nw.Int64)


def with_stage_codes(
    frame: nw.DataFrame[Any], codes: Mapping[str, str], stages: Sequence[str]
) -> nw.DataFrame[Any]:
    """Add ``{name: column}`` columns of stage positions in ``stages`` to an in-memory frame.

    A null stays null. On Polars the stages are cast to an ``Enum`` of ``stages`` and its
    physical codes read (no string hashing per row); elsewhere one hash lookup per row.
    The code columns are of any integer type: cast before arithmetic that may overflow.

    Raises:
        narwhals' ``InvalidOperationError``: a stage is not one of ``stages``.
    """
    import narwhals as nw  # noqa: PLC0415

    if frame.implementation.is_polars():
        import polars as pl  # noqa: PLC0415

        try:
            native = enum_codes(frame.to_native(), codes, stages)
        except pl.exceptions.InvalidOperationError as error:
            raise nw.exceptions.InvalidOperationError(str(error)) from error
        return nw.from_native(native, eager_only=True)
    ranks = {s: i for i, s in enumerate(stages)}
    return frame.with_columns(
        nw.col(column).replace_strict(ranks, return_dtype=nw.Int64).alias(name)
        for name, column in codes.items()
    )


def enum_codes(native: Any, codes: Mapping[str, str], stages: Sequence[str]) -> Any:
    """A Polars frame (eager or lazy) with the physical codes of an ``Enum`` of ``stages``."""
    import polars as pl  # noqa: PLC0415

    enum = pl.Enum(list(stages))
    return native.with_columns(
        pl.col(column).cast(enum).to_physical().alias(name) for name, column in codes.items()
    )


def by_code(column: str, groups: Mapping[int, Sequence[int]]) -> nw.Expr:
    """``value`` where ``column`` is one of ``groups[value]``, else 0 (few distinct values).

    A chain of ``is_in`` tests is many times faster than a hash lookup per row when the
    values fall into a few classes (stage positions into open, won and lost).
    """
    import narwhals as nw  # noqa: PLC0415

    expr: Any = None
    for value, members in groups.items():
        if value and members:
            test = nw.col(column).is_in(list(members))
            expr = (nw.when(test) if expr is None else expr.when(test)).then(nw.lit(value))
    if expr is None:
        return nw.lit(0, nw.Int64)
    return expr.otherwise(nw.lit(0)).cast(nw.Int64)  # type: ignore[no-any-return]


def _pandas_nullable(native: Any) -> Any:
    """A pandas frame with pyarrow-backed (nullable) columns and every optional column."""
    import pandas as pd  # noqa: PLC0415
    import pyarrow as pa  # type: ignore[import-untyped]  # noqa: PLC0415

    frame = native.convert_dtypes(dtype_backend="pyarrow")
    types = {"amount": pa.float64(), "close_date": pa.date32(), "reason": pa.string()}
    for column, kind in types.items():
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=pd.ArrowDtype(kind))
    return frame


def backend_of(native: Any) -> Any:
    """Return a function that turns a ``{column: list}`` dict into the caller's backend."""
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(native)
    impl = frame.implementation
    is_lazy = isinstance(frame, nw.LazyFrame)
    spark = impl.is_pyspark() or impl.is_pyspark_connect() or impl.is_sqlframe()
    session = native.sparkSession if spark else None  # never the frame itself: it may be big
    del frame, native

    def build(columns: Mapping[str, list[Any]]) -> Any:
        if impl.is_polars() or impl.is_pandas():
            eager = nw.from_dict(dict(columns), backend=impl)
            return eager.lazy().to_native() if is_lazy else eager.to_native()
        eager = nw.from_dict(dict(columns), backend="pyarrow")
        if impl.is_duckdb():
            return eager.lazy(backend="duckdb").to_native()
        if spark:
            return eager.lazy(backend=impl, session=session).to_native()
        return eager.lazy().to_native() if is_lazy else eager.to_native()

    return build


WORKERS = 2
"""Pieces of one in-memory computation run at once: Polars runs many steps on one core each."""

_T = TypeVar("_T")
_R = TypeVar("_R")


def in_threads(work: Callable[[_T], _R], pieces: Sequence[_T]) -> list[_R]:
    """``[work(p) for p in pieces]``, in :data:`WORKERS` threads (Polars releases the GIL)."""
    if len(pieces) < 2 or WORKERS < 2:  # noqa: PLR2004
        return [work(piece) for piece in pieces]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(work, pieces))


def group_starts(keys: list[str]) -> nw.Expr:
    """True on the first row of each run of equal ``keys`` in a sorted eager frame."""
    import narwhals as nw  # noqa: PLC0415

    same: Any = None
    for key in keys:
        equal = (nw.col(key) == nw.col(key).shift(1)).fill_null(value=False)
        same = equal if same is None else same & equal
    return ~same  # type: ignore[no-any-return]


def not_before(keys: list[str]) -> nw.Expr:
    """True where a row does not sort before the row above it by ``keys`` (null on row one).

    Any null key makes the result null.
    """
    import narwhals as nw  # noqa: PLC0415

    *leading, last = keys
    after = nw.col(last) >= nw.col(last).shift(1)
    for key in reversed(leading):
        here, before = nw.col(key), nw.col(key).shift(1)
        after = (here > before) | ((here == before) & after)
    return after


def running(column: str, start: str) -> nw.Expr:
    """Running sum of ``column`` restarting where ``start`` is true (sorted eager frame)."""
    import narwhals as nw  # noqa: PLC0415

    total = nw.col(column).cum_sum()
    offset = nw.when(nw.col(start)).then(total - nw.col(column)).fill_null(strategy="forward")
    return total - offset


def check_known(frame: nw.LazyFrame[Any], codes: Mapping[str, str], outcomes: Outcomes) -> None:
    """Raise ``UnknownStageError`` if a stage in a ``codes`` column is not in ``outcomes``."""
    seen: set[str] = set()
    for column in codes.values():
        values = frame.select(column).unique().collect().get_column(column)
        seen.update(v for v in values.to_list() if isinstance(v, str))
    outcomes.check(sorted(seen))


def sorted_rows(rows: Any) -> Any:
    """In-memory rows as an eager frame ordered by ``(opportunity_id, *ORDER)``.

    Rows already in that order (as ``EventStore.to_frame`` gives them) are checked in one pass
    and kept as they are.
    """
    import narwhals as nw  # noqa: PLC0415

    eager = rows.collect()
    keys = ["opportunity_id", *ORDER]
    if not any(eager.select(nw.col(k).null_count() for k in keys).row(0)):
        key, previous = nw.col("opportunity_id"), nw.col("opportunity_id").shift(1)
        after = nw.lit(value=True)
        for name in reversed(ORDER):
            here, before = nw.col(name), nw.col(name).shift(1)
            after = (here > before) | ((here == before) & after)
        wrong = (key < previous) | ((key == previous) & ~after)
        if not eager.select(wrong.fill_null(value=False).any()).item():
            return eager
    return eager.sort(*keys)
