"""Segment values per deal and instant, read from events, row mappings or a frame.

The review functions (:mod:`stagegate.analytics.review`, :mod:`stagegate.analytics.quota`)
attribute each figure to the segment in force at one instant per deal (see the rule in
``docs/analytics.md``); this module answers "what was deal X's ``owner`` (``team``, ...) at
instant t" for any input the analytics take.
"""

from __future__ import annotations

import bisect
import math
import sys
from calendar import monthrange
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stagegate._time import epoch_us, from_epoch_us, parse_instant, to_utc
from stagegate.analytics._table import DAY_US, is_frame
from stagegate.analytics.forecast import period_of
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.probability import stage_probabilities
from stagegate.analytics.snapshot import snapshot
from stagegate.currency import RateTable, total
from stagegate.events import Event, EventKind
from stagegate.segments import values_at

__all__ = ["FrameInputs", "Inputs", "frame_inputs", "read_inputs", "segment_columns"]

Segment = tuple[str | None, ...]


def segment_order(key: Segment) -> tuple[tuple[bool, str], ...]:
    """The sort key of a segment: its values in order, a missing value after every other."""
    return tuple((value is None, value or "") for value in key)


def segment_columns(by: str | Sequence[str]) -> tuple[str, ...]:
    """``by`` as a tuple of column names (one name, or a non-empty sequence of them).

    Raises:
        AnalyticsError: ``by`` is empty or holds something other than names.
    """
    columns = (by,) if isinstance(by, str) else tuple(by) if isinstance(by, Iterable) else ()
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise AnalyticsError(
            f"by must be a column name or a sequence of them (e.g. 'owner' or "
            f"('region', 'team')), got {by!r}"
        )
    return columns


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if value != value:  # pandas NA, NaT  # noqa: PLR0124
            return None
    except TypeError:  # pandas.NA refuses to be compared
        return None
    return str(value)


def _instant(value: Any, assume_zone: Any) -> int:
    if isinstance(value, str):
        value = parse_instant(value, assume_zone=assume_zone)
    return epoch_us(to_utc(value, assume_zone=assume_zone, what="at"))


class Inputs:
    """The input of a review, read once: the analytics' data, events by deal, segment history.

    Attributes:
        data: what to pass to the analytics functions (events, or row mappings).
        events: each deal's events, in ``seq`` order (empty for tables, which carry none).
        activities: for a table with a ``kind`` column (a store's frame), each deal's
            ``activity_logged`` instants in epoch microseconds, in order; ``None`` for a table
            without one (activities unknown) and for events (read them from ``events``).
    """

    def __init__(
        self,
        data: Any,
        events: dict[str, list[Event]],
        history: dict[str, tuple[list[int], list[Segment]]],
        columns: tuple[str, ...],
        activities: dict[str, list[int]] | None = None,
    ) -> None:
        self.data = data
        self.events = events
        self.columns = columns
        self._activities = activities
        self._history = history
        self._index = {name: i for i, name in enumerate(columns)}
        self._cache: dict[tuple[Any, ...], Any] = {}

    @property
    def activities(self) -> dict[str, list[int]] | None:
        """Each deal's ``activity_logged`` instants (see the class), or ``None``."""
        return self._activities

    def snapshot(self, outcomes: OutcomesLike, at: datetime, assume_zone: Any) -> list[Any]:
        """:func:`~stagegate.analytics.snapshot` of every deal at ``at`` (computed once)."""
        key = ("snapshot", id(outcomes), at, assume_zone)
        if key not in self._cache:
            from stagegate.analytics._by import records_of  # noqa: PLC0415 - it imports this
            from stagegate.analytics.snapshot import Snapshot  # noqa: PLC0415

            found = snapshot(self.data, outcomes, at=at, assume_zone=assume_zone)
            # a frame's snapshot is a frame (frame_inputs): its rows as records
            self._cache[key] = (
                list(found) if isinstance(found, list) else records_of(found, Snapshot)
            )
        result: list[Any] = self._cache[key]
        return result

    def probabilities(
        self, outcomes: OutcomesLike, as_of: datetime, estimator: str
    ) -> dict[str, float]:
        """:func:`win_probabilities` of the data (computed once per estimator)."""
        key = ("probabilities", id(outcomes), as_of, estimator)
        if key not in self._cache:
            self._cache[key] = win_probabilities(self.data, outcomes, as_of, estimator)
        result: dict[str, float] = self._cache[key]
        return result

    @property
    def has_events(self) -> bool:
        """Whether the input was stagegate events (activities and fields are known)."""
        return bool(self.events)

    def last_activity(self, opportunity_id: str, at_us: int) -> tuple[int | None, int | None]:
        """(last ``activity_logged`` instant, first row instant) of a deal up to ``at_us``.

        For tables with a ``kind`` column; instants in epoch microseconds, ``None`` if none.
        """
        instants, _ = self._history.get(opportunity_id, ([], []))
        first = instants[0] if instants and instants[0] <= at_us else None
        logged = (self.activities or {}).get(opportunity_id, [])
        i = bisect.bisect_right(logged, at_us)
        return (logged[i - 1] if i else None), first

    def at(self, opportunity_id: str, at_us: int, columns: Sequence[str]) -> Segment:
        """The values of ``columns`` in force for a deal at an instant (``None``: none)."""
        instants, values = self._history.get(opportunity_id, ([], []))
        i = bisect.bisect_right(instants, at_us) - 1
        if i < 0:
            return (None,) * len(columns)
        row = values[i]
        return tuple(row[self._index[c]] for c in columns)

    def segments_at(
        self, opportunity_ids: Sequence[str], at_us: int | Sequence[int], columns: Sequence[str]
    ) -> list[Segment]:
        """:meth:`at` of many deals at once: each deal at its instant (or all at ``at_us``)."""
        instants = [at_us] * len(opportunity_ids) if isinstance(at_us, int) else at_us
        return [
            self.at(oid, us, columns) for oid, us in zip(opportunity_ids, instants, strict=True)
        ]

    def last_activities(
        self, opportunity_ids: Sequence[str], at_us: int
    ) -> list[tuple[int | None, int | None]]:
        """:meth:`last_activity` of many deals at one instant."""
        return [self.last_activity(oid, at_us) for oid in opportunity_ids]

    def logs_activities(self) -> bool:
        """Whether the input records any ``activity_logged`` event (or row)."""
        return any(
            e.kind is EventKind.ACTIVITY_LOGGED for events in self.events.values() for e in events
        ) or any((self.activities or {}).values())


class FrameInputs(Inputs):
    """:class:`Inputs` of a Polars frame, its segment history kept as a frame.

    ``points`` holds ``oid``, ``at_us`` and the segment values ``s0``, ``s1``, ... of the rows
    where a deal's values change (its first row included), one row per deal and instant (the
    last); ``logged`` the ``oid`` and ``at_us`` of its ``activity_logged`` rows (``None``: the
    frame has no ``kind`` column). :meth:`segments_at` and :meth:`last_activities` answer with
    as-of joins; the per-deal lookups build the Python history the first time they are used.
    """

    def __init__(self, data: Any, points: Any, logged: Any, columns: tuple[str, ...]) -> None:
        super().__init__(data, {}, {}, columns)
        self._points = points
        self._logged = logged
        self._read = False

    def _python(self) -> None:
        if self._read:
            return
        history = self._history
        for oid, at_us, *segment in self._points.iter_rows():
            instants, segments = history.setdefault(oid, ([], []))
            instants.append(at_us)
            segments.append(tuple(segment))
        if self._logged is not None:
            activities: dict[str, list[int]] = defaultdict(list)
            for oid, at_us in self._logged.iter_rows():
                activities[oid].append(at_us)
            self._activities = dict(activities)
        self._read = True

    @property
    def activities(self) -> dict[str, list[int]] | None:
        """Each deal's ``activity_logged`` instants (built from the frame when first asked)."""
        self._python()
        return self._activities

    def at(self, opportunity_id: str, at_us: int, columns: Sequence[str]) -> Segment:
        """The values of ``columns`` in force for a deal at an instant (``None``: none)."""
        self._python()
        return super().at(opportunity_id, at_us, columns)

    def last_activity(self, opportunity_id: str, at_us: int) -> tuple[int | None, int | None]:
        """See :meth:`Inputs.last_activity`."""
        self._python()
        return super().last_activity(opportunity_id, at_us)

    @staticmethod
    def _keys(opportunity_ids: Any, at_us: int | Sequence[int]) -> Any:
        import polars as pl  # noqa: PLC0415 - a frame's inputs: Polars is there

        instants = (
            pl.lit(at_us, dtype=pl.Int64)
            if isinstance(at_us, int)
            else pl.Series(at_us, dtype=pl.Int64)
        )
        ids = pl.Series(opportunity_ids, dtype=pl.String)
        return pl.DataFrame({"oid": ids}).with_columns(instants.alias("at_us"))

    @staticmethod
    def _asof(right: Any, keys: Any) -> Any:
        """Each row of ``keys`` joined to its deal's last row in ``right`` at or before it.

        Both have ``oid`` and ``at_us``; ``right`` is sorted by ``at_us``. Rows stay in the
        keys' order.
        """
        return (
            keys.with_row_index("_row")
            .sort("at_us")
            .join_asof(right, on="at_us", by="oid", strategy="backward", check_sortedness=False)
            .sort("_row")
            .drop("_row")
        )

    def segments_at(
        self, opportunity_ids: Sequence[str], at_us: int | Sequence[int], columns: Sequence[str]
    ) -> list[Segment]:
        """:meth:`at` of many deals at once, as one as-of join on the frame."""
        if not len(opportunity_ids):
            return []
        found = self.segments_of(self._keys(opportunity_ids, at_us), columns)
        return list(found.select(f"s{i}" for i in range(len(columns))).iter_rows())

    def segments_of(self, keys: Any, columns: Sequence[str]) -> Any:
        """``keys`` with the values of ``columns`` in force for each row's deal at its instant.

        ``keys`` is a Polars frame with ``oid`` (text) and ``at_us`` (epoch microseconds); the
        values come as columns ``s0``, ``s1``, ... in the order of ``columns`` (null: none).
        """
        import polars as pl  # noqa: PLC0415

        right = self._points.select(
            "oid",
            "at_us",
            *(pl.col(f"s{self._index[c]}").alias(f"s{i}") for i, c in enumerate(columns)),
        )
        if 4 * keys.height < right.height:  # a few deals (the open ones): their rows first
            right = right.join(keys.select("oid"), on="oid", how="semi", maintain_order="left")
        return self._asof(right, keys.drop([f"s{i}" for i in range(len(columns))], strict=False))

    def last_activities(
        self, opportunity_ids: Sequence[str], at_us: int
    ) -> list[tuple[int | None, int | None]]:
        """:meth:`last_activity` of many deals at one instant, as as-of joins on the frame."""
        import polars as pl  # noqa: PLC0415

        if not len(opportunity_ids):
            return []
        col = pl.col
        first = self._points.group_by("oid").agg(col("at_us").min().alias("first_us"))
        logged = (
            self._logged.with_columns(col("at_us").alias("logged_us"))
            if self._logged is not None
            else pl.DataFrame(schema={"oid": pl.String, "at_us": pl.Int64, "logged_us": pl.Int64})
        )
        found = (
            self._asof(logged, self._keys(opportunity_ids, at_us))
            .join(first, on="oid", how="left", maintain_order="left")
            .select(
                "logged_us",
                pl.when(col("first_us") <= at_us).then(col("first_us")).alias("first_us"),
            )
        )
        return list(found.iter_rows())

    def logs_activities(self) -> bool:
        """Whether the frame has any ``activity_logged`` row."""
        return self._logged is not None and self._logged.height > 0


def activity_gap(
    logged_us: int | None, first_us: int | None, as_of_us: int, activity_days: float
) -> tuple[datetime | None, float | None, bool | None]:
    """(last activity, days since it, stale) of a deal of a table with a ``kind`` column.

    From its last ``activity_logged`` instant and its first row's (epoch microseconds, ``None``
    when it has none up to ``as_of_us``): without an activity, days count from its first row.
    """
    reference = logged_us if logged_us is not None else first_us
    last = None if logged_us is None else from_epoch_us(logged_us)
    days = None if reference is None else (as_of_us - reference) / DAY_US
    return last, days, None if days is None else days > activity_days


def _flatten(data: Any) -> list[Any]:
    if is_frame(data):
        import narwhals as nw  # noqa: PLC0415

        frame = nw.from_native(data)
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect()
        if "close_date" in frame.columns and frame.schema["close_date"] == nw.Datetime:
            # pandas has no date dtype: a Polars or Arrow date column arrives as midnights
            frame = frame.with_columns(nw.col("close_date").cast(nw.Date))
        return list(frame.rows(named=True))
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise AnalyticsError(
            f"data must be events, opportunities, row mappings or a frame, got "
            f"{type(data).__name__}"
        )
    items: list[Any] = []
    for item in data:
        events = getattr(item, "events", None)
        if events is not None and not isinstance(item, Mapping):
            items.extend(events)
        else:
            items.append(item)
    return items


def read_inputs(data: Any, columns: Sequence[str], *, assume_zone: Any = None) -> Inputs:
    """Read ``data`` and the history of the segment ``columns`` of every deal.

    Raises:
        AnalyticsError: the data is of an unknown shape, or a row lacks its id or instant.
    """
    names = tuple(dict.fromkeys(columns))
    if isinstance(data, Inputs) and set(names) <= set(data.columns):
        return data  # read once by weekly_review for all its figures
    items = _flatten(data)
    events: dict[str, list[Event]] = defaultdict(list)
    rows: dict[str, list[tuple[int, int, Segment]]] = defaultdict(list)
    activities: dict[str, list[int]] | None = None
    for index, item in enumerate(items):
        if isinstance(item, Event):
            events[item.opportunity_id].append(item)
            continue
        if not isinstance(item, Mapping):
            raise AnalyticsError(
                f"item {index} is a {type(item).__name__}; pass Event objects, Opportunity "
                "objects, mappings with the canonical columns, or a data frame"
            )
        oid, at = item.get("opportunity_id"), item.get("at")
        if oid is None or at is None:
            raise AnalyticsError(f"row {index} lacks opportunity_id or at")
        seq = item.get("seq")
        instant = _instant(at, assume_zone)
        rows[str(oid)].append(
            (
                instant,
                0 if seq is None or _text(seq) is None else int(seq),
                tuple(_text(item.get(name)) for name in names),
            )
        )
        if "kind" in item:
            if activities is None:
                activities = defaultdict(list)
            if _text(item["kind"]) == EventKind.ACTIVITY_LOGGED.value:
                activities[str(oid)].append(instant)
    history: dict[str, tuple[list[int], list[Segment]]] = {}
    for oid, log in events.items():
        log.sort(key=lambda e: e.seq)
        values = values_at(log, names)
        history[oid] = (
            [epoch_us(e.at) for e in log],
            [tuple(v[name] for name in names) for v in values],
        )
    for oid, table in rows.items():
        table.sort(key=lambda r: (r[0], r[1]))
        history[oid] = ([r[0] for r in table], [r[2] for r in table])
    if activities is not None:
        activities = {oid: sorted(instants) for oid, instants in activities.items()}
    return Inputs(items, dict(events), history, names, activities)


def frame_inputs(
    data: Any, columns: Sequence[str], *, history_only: bool = False
) -> FrameInputs | None:
    """:func:`read_inputs` of a Polars frame, column-wise; ``None`` for anything else.

    Only the rows where a deal's segment values change (and each deal's first row) are kept,
    as a frame (:class:`FrameInputs`): the value in force at an instant is that of the last
    such row at or before it, as :meth:`Inputs.at` finds it among all rows. The analytics'
    data stays the frame.
    A frame whose ``at`` is not an aware datetime, or whose segment columns are not text, is
    read by :func:`read_inputs`.

    With ``history_only``, the inputs keep the segment history and activities, not the frame
    (their ``data`` is ``None``): for a caller that analyses the frame itself and lets go of it.

    Raises:
        AnalyticsError: a row lacks its id or instant.
    """
    polars = sys.modules.get("polars")
    if polars is None or not isinstance(data, (polars.DataFrame, polars.LazyFrame)):
        return None
    names = tuple(dict.fromkeys(columns))
    frame = data.lazy()
    schema = frame.collect_schema()
    text = (polars.String, polars.Categorical, polars.Enum)
    at_type = schema.get("at")
    if (
        not isinstance(at_type, polars.Datetime)
        or at_type.time_zone is None
        or not all(
            name in schema and isinstance(schema[name], text) for name in ("opportunity_id", *names)
        )
    ):
        return None
    col = polars.col
    seq = col("seq").cast(polars.Int64).fill_null(0) if "seq" in schema else polars.lit(0)
    values = [f"s{i}" for i in range(len(names))]
    picked = frame.select(  # native types: text is made of the few rows kept, below
        col("opportunity_id").alias("oid"),
        col("at").dt.epoch("us").alias("at_us"),
        seq.alias("seq"),
        *(col(name).alias(value) for name, value in zip(names, values, strict=True)),
        *(
            [(col("kind").cast(polars.String) == EventKind.ACTIVITY_LOGGED.value).alias("act")]
            if "kind" in schema
            else []
        ),
    ).collect()
    if picked.get_column("oid").null_count() or picked.get_column("at_us").null_count():
        raise AnalyticsError("a row lacks opportunity_id or at")
    if not _in_deal_order(picked):  # a store's frame is (opportunity_id, seq) order already
        picked = picked.sort("oid", "at_us", "seq", maintain_order=True)
    changes = (
        polars.lit(True)
        if not values
        else polars.any_horizontal(*(col(v).ne_missing(col(v).shift(1)) for v in values))
    )
    first = col("oid").ne_missing(col("oid").shift(1))
    as_text = [col(c).cast(polars.String) for c in ("oid", *values)]
    points = (
        picked.lazy()
        .filter(first | changes)
        .select(as_text[0], "at_us", *as_text[1:])
        .unique(subset=["oid", "at_us"], keep="last", maintain_order=True)
        .sort("at_us", "oid")  # the order an as-of join by deal wants (no ties left)
        .collect()
    )
    logged = None
    if "kind" in schema:
        logged = (
            picked.lazy()
            .filter(col("act"))
            .select(as_text[0], "at_us")
            .sort("at_us", "oid")
            .collect()
        )
    return FrameInputs(None if history_only else data, points, logged, names)


def _in_deal_order(picked: Any) -> bool:
    """Whether each deal's rows are together and in ``(at_us, seq)`` order (no sort needed)."""
    import polars as pl  # noqa: PLC0415

    col = pl.col
    same = col("oid") == col("oid").shift(1)
    at, before = col("at_us"), col("at_us").shift(1)
    back = same & ((at < before) | ((at == before) & (col("seq") < col("seq").shift(1))))
    runs, deals, backwards = picked.select(
        col("oid").ne_missing(col("oid").shift(1)).sum().alias("runs"),
        col("oid").n_unique().alias("deals"),
        back.any().alias("backwards"),
    ).row(0)
    return bool(runs == deals and not backwards)


def instant_us(at: datetime, what: str) -> int:
    """Epoch microseconds of an aware instant (an argument of a review function)."""
    return epoch_us(to_utc(at, what=what))


# -- what every review figure needs ------------------------------------------------------------

SMALL_SAMPLE = 30
"""A segment with fewer deals than this is flagged ``small``: too few to say much."""
PERIODS = ("month", "quarter")


def period_bounds(day: date, period: str) -> tuple[str, date, date]:
    """The label, first and last day of the ``month`` or ``quarter`` holding ``day``.

    Raises:
        AnalyticsError: ``period`` is neither ``month`` nor ``quarter``.
    """
    if period not in PERIODS:
        raise AnalyticsError(f"period must be 'month' or 'quarter', got {period!r}")
    months = 1 if period == "month" else 3
    first_month = (day.month - 1) // months * months + 1
    last_month = first_month + months - 1
    last = date(day.year, last_month, monthrange(day.year, last_month)[1])  # 9999-12 too
    return period_of(day, period), date(day.year, first_month, 1), last


def decimal_of(value: Any) -> Decimal | None:
    """An amount the analytics carried as a float, back as the decimal it was written as.

    The shortest text that reads back as the float (``repr``) recovers every amount of up to
    15 significant digits exactly.
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:  # noqa: PLR2004
        return Decimal(int(number))
    return Decimal(repr(number))


def win_probabilities(
    data: Any, outcomes: OutcomesLike, as_of: datetime, estimator: str
) -> dict[str, float]:
    """Per open stage, the win probability by ``estimator`` (0 where it has none).

    Raises:
        AnalyticsError: the estimator is not one with a per-stage column.
    """
    if estimator not in STAGE_ESTIMATORS:
        raise AnalyticsError(
            f"estimator must be one of {', '.join(STAGE_ESTIMATORS)}, got {estimator!r}"
        )
    table = stage_probabilities(data, outcomes, as_of=as_of, draws=0)
    result = {}
    for row in table:
        value = getattr(row, estimator)
        result[row.stage] = 0.0 if value is None else float(value)
    return result


STAGE_ESTIMATORS = ("deal_clock", "empirical", "markov", "smoothed", "configured")
"""The estimators whose per-stage probability weights a deal's amount (``deal_clock`` first:
right under censoring)."""


def money(
    pairs: Iterable[tuple[Decimal | None, str | None]],
    rates: RateTable | None,
    on: date,
    default: str | None,
    *,
    places: int | None = None,
) -> Decimal:
    """Add ``(amount, currency)`` pairs into one currency (see :func:`stagegate.currency.total`).

    ``places``: round to that many places (default: the rate table's, or not at all without).

    Raises:
        MixedCurrencyError: several currencies and no rate table.
    """
    if rates is not None and places is not None:
        places = rates.places
    return total(list(pairs), rates=rates, on=on, default=default, places=places)
