"""``by=`` for the deal-level analytics: one figure per deal, the segment at one instant per deal.

A deal-level figure (a snapshot row, a stalled or slipping deal, a waterfall movement, an open
deal of the forecast) counts for the segment in force at **one instant**: the snapshot instant,
``as_of``, the end of the waterfall, the back-test's cut-off. Where the figure is per deal it
is computed once, on every deal, then each row gets its ``segment`` and the rows are grouped:
a segment's rows are exactly the rows the function gives on that segment's deals. Only where a
figure is not per deal does the work run per segment: the forecast's Monte Carlo (one joint
simulation whose runs are added per segment, so that the segments' means add up to the whole
while their percentiles do not) and the back-test (fitted and scored on the segment's deals).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._time import epoch_us, from_epoch_us, to_utc
from stagegate.analytics._by import SEGMENT_FIELDS, clean_value, deals_subset, records_of
from stagegate.analytics._currency_guard import check_one_currency
from stagegate.analytics._segments import (
    SMALL_SAMPLE,
    Inputs,
    read_inputs,
    segment_columns,
    segment_order,
)
from stagegate.analytics._stats import quantile
from stagegate.analytics._table import DAY_US, backend_of, is_frame
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike

if TYPE_CHECKING:
    from stagegate.analytics.backtest import Backtest
    from stagegate.analytics.deals import Slippage
    from stagegate.analytics.forecast import Forecast
    from stagegate.analytics.snapshot import Waterfall

__all__ = [
    "SegmentTotal",
    "SegmentsAt",
    "backtest_by",
    "forecast_by",
    "per_deal_by",
    "segment_totals",
    "slippage_by",
    "waterfall_by",
]

Segment = tuple[str | None, ...]
LEVEL = "level"
"""The column naming a rollup level in a frame: a ``by`` column, or ``all`` for the total."""


@attrs.frozen(slots=True)
class SegmentTotal:
    """Deals and amount of one segment in a per-deal ``by=`` result (see :func:`segment_totals`)."""

    segment: Segment
    deals: int
    amount: float
    small: bool


def check_columns(by: str | Sequence[str], *classes: type[Any]) -> tuple[str, ...]:
    """``by`` as column names, none of them a column of the results of ``classes``.

    Raises:
        AnalyticsError: ``by`` is not a name or names, or names a result column.
    """
    columns = segment_columns(by)
    names = {f.name for cls in classes for f in attrs.fields(cls)}
    clash = set(columns) & (names | set(SEGMENT_FIELDS) | {LEVEL})
    if clash:
        raise AnalyticsError(
            f"by names result column(s) {', '.join(sorted(clash))}; rename the segment "
            "column(s) in the data first"
        )
    return columns


def materialized(data: Any) -> Any:
    """``data`` readable twice: a one-shot iterator of events or rows becomes a list."""
    if is_frame(data) or isinstance(data, (Sequence, Mapping, Inputs)):
        return data
    if isinstance(data, Iterable):
        return list(data)
    return data


def _us(at: datetime, what: str) -> int:
    return epoch_us(to_utc(at, what=what))


def _with_segments(records: list[Any], segment_of: Callable[[str], Segment]) -> list[Any]:
    """``records`` with their ``segment`` (``segment_of`` their deal), grouped by segment.

    Within a segment the records keep the order the function gave them.
    """
    tagged = [attrs.evolve(r, segment=segment_of(str(r.opportunity_id))) for r in records]
    return sorted(tagged, key=lambda r: segment_order(r.segment))


class SegmentsAt:
    """Every deal's segment at one instant, read from events, row mappings or a frame.

    A frame whose ``at`` is an aware datetime column is read by its own engine (the last row
    of each deal at or before the instant, by ``(at, seq)``); anything else, and a frame with
    two such last rows of one deal, through :func:`~stagegate.analytics._segments.read_inputs`.

    Attributes:
        items: the events or rows read, for :func:`~stagegate.analytics._by._subset` (empty
            for a frame, which is filtered in its engine).
    """

    def __init__(
        self, data: Any, columns: tuple[str, ...], instant_us: int, assume_zone: Any
    ) -> None:
        self.columns = columns
        self.items: list[Any] = []
        self._found = _frame_segments(data, columns, instant_us) if is_frame(data) else None
        if self._found is None:
            inputs = read_inputs(data, columns, assume_zone=assume_zone)
            self.items = inputs.data
            self._inputs: Inputs | None = inputs
            self._instant = instant_us
        else:
            self._inputs = None

    def __call__(self, opportunity_id: str) -> Segment:
        """The segment of a deal at the instant (all ``None``: no value, or no row by then)."""
        if self._inputs is not None:
            return self._inputs.at(opportunity_id, self._instant, self.columns)
        assert self._found is not None  # noqa: S101 - set when there is no Inputs
        return self._found.get(opportunity_id, (None,) * len(self.columns))


def _frame_segments(
    data: Any, columns: tuple[str, ...], instant_us: int
) -> dict[str, Segment] | None:
    """Per deal, the segment columns of its last row at or before the instant.

    ``None`` when the frame's instants are not aware datetimes, or a deal has two last rows.
    """
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(data)
    lazy = frame.lazy() if isinstance(frame, nw.DataFrame) else frame
    schema = lazy.collect_schema()
    at = schema.get("at")
    if not isinstance(at, nw.Datetime) or at.time_zone is None:
        return None
    oid = "opportunity_id"
    seq = nw.col("seq").fill_null(0) if "seq" in schema else nw.lit(0)
    values = [
        (nw.col(c).cast(nw.String) if c in schema else nw.lit(None, nw.String)).alias(f"_s{i}")
        for i, c in enumerate(columns)
    ]
    instant = from_epoch_us(instant_us)
    rows = lazy.filter(nw.col("at") <= nw.lit(instant)).select(
        nw.col(oid).cast(nw.String).alias("_oid"),
        nw.col("at").alias("_at"),
        seq.cast(nw.Int64).alias("_seq"),
        *values,
    )
    for key in ("_at", "_seq"):
        rows = rows.filter(nw.col(key) == nw.col(key).max().over("_oid"))
    found = rows.collect().rows()
    result = {str(r[0]): tuple(clean_value(v) for v in r[3:]) for r in found}
    return result if len(result) == len(found) else None


def _table(columns: Sequence[str], records: list[Any], cls: type[Any], extra: Sequence[str]) -> Any:
    """``{column: values}`` of records: segment columns (and ``level``), ``extra``, then fields."""
    table: dict[str, list[Any]] = {}
    if any(getattr(r, "level", None) is not None for r in records):
        table[LEVEL] = [r.level for r in records]
        for i, c in enumerate(columns):
            table[c] = [_value_of(r, columns, i) for r in records]
    else:
        table.update({c: [r.segment[i] for r in records] for i, c in enumerate(columns)})
    table.update({name: [getattr(r, name) for r in records] for name in extra})
    fields = [f.name for f in attrs.fields(cls) if not f.metadata.get("by")]
    table.update({name: [getattr(r, name) for r in records] for name in fields})
    return table


def _value_of(record: Any, columns: Sequence[str], i: int) -> str | None:
    """The value of column ``i`` in a rollup record (whose segment holds its level's tail)."""
    offset = len(columns) - len(record.segment)
    return record.segment[i - offset] if i >= offset else None


def _frame(
    data: Any, columns: Sequence[str], records: list[Any], cls: type[Any], extra: Sequence[str]
) -> Any:
    return backend_of(data)(_table(columns, records, cls, extra))


def _out(
    data: Any, columns: Sequence[str], records: list[Any], cls: type[Any], extra: Sequence[str]
) -> Any:
    return _frame(data, columns, records, cls, extra) if is_frame(data) else records


# -- per-deal rows: snapshot, open pipeline, stalled ---------------------------------------------


def per_deal_by(
    run: Callable[[Any], Any],
    data: Any,
    by: str | Sequence[str],
    cls: type[Any],
    *,
    at: datetime,
    assume_zone: str | tzinfo | None,
) -> Any:
    """``run`` (a per-deal function, bound) once, each row tagged with its segment at ``at``.

    Returns:
        ``cls`` records with ``segment`` set, grouped by segment (no value last) in the order
        ``run`` gave them; for a frame input, a frame in its backend, segment columns first.

    Raises:
        AnalyticsError: ``by`` is not a column name or names, or names a result column.
    """
    columns = check_columns(by, cls)
    data = materialized(data)
    segment_of = SegmentsAt(data, columns, _us(at, "at"), assume_zone)
    records = _with_segments(records_of(run(data), cls), segment_of)
    return _out(data, columns, records, cls, ())


def segment_totals(result: Any, by: str | Sequence[str] | None = None) -> Any:
    """Deals and amount per segment of a per-deal ``by=`` result (snapshot, open pipeline, ...).

    ``result``: the records of ``snapshot``, ``open_pipeline`` or ``stalled`` called with
    ``by=``, or their frame (then ``by`` names its segment columns). An unknown amount counts
    as 0; ``small``: fewer than :data:`~stagegate.analytics.review.SMALL_SAMPLE` deals.

    >>> from stagegate.analytics import Snapshot
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> rows = [Snapshot("a", "lead", "open", t, 1.0, 10.0, None, segment=("ann",)),
    ...         Snapshot("b", "lead", "open", t, 1.0, None, None, segment=("ann",)),
    ...         Snapshot("c", "lead", "open", t, 1.0, 5.0, None, segment=("bob",))]
    >>> [(s.segment, s.deals, s.amount) for s in segment_totals(rows)]
    [(('ann',), 2, 10.0), (('bob',), 1, 5.0)]

    Raises:
        AnalyticsError: a frame without ``by``, or records without a segment.
    """
    if is_frame(result):
        if by is None:
            raise AnalyticsError("segment_totals of a frame needs by=, its segment columns")
        import narwhals as nw  # noqa: PLC0415

        frame = nw.from_native(result)
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect()
        columns = segment_columns(by)
        pairs = [
            (tuple(clean_value(row[c]) for c in columns), row.get("amount"))
            for row in frame.rows(named=True)
        ]
    else:
        pairs = [(r.segment, r.amount) for r in result]
        if any(not segment for segment, _ in pairs):
            raise AnalyticsError(
                "segment_totals needs the result of a by= call (its rows carry no segment)"
            )
    totals: dict[Segment, list[float]] = {}
    for segment, amount in pairs:
        t = totals.setdefault(segment, [0, 0.0])
        t[0] += 1
        value = clean_value(amount)  # NaN and pandas NA are unknown amounts
        t[1] += 0.0 if value is None else float(value)
    return [
        SegmentTotal(key, int(n), amount, n < SMALL_SAMPLE)
        for key, (n, amount) in sorted(totals.items(), key=lambda kv: segment_order(kv[0]))
    ]


# -- waterfall -------------------------------------------------------------------------------


def waterfall_by(
    waterfall: Any,
    data: Any,
    by: str | Sequence[str],
    *,
    end: datetime,
    assume_zone: str | tzinfo | None,
) -> Waterfall:
    """The waterfall ``waterfall(data)`` per segment in force at ``end`` (one pass).

    Returns:
        a ``Waterfall`` whose ``deals`` carry their segment, whose ``summary`` has one row
        per segment and category (with ``segment`` and ``small``: the segment has fewer than
        :data:`SMALL_SAMPLE` deals in the waterfall), and whose ``segments`` has each
        segment's open pipeline at ``start`` and ``end``; ``open_start`` and ``open_end``
        stay the totals.
    """
    from stagegate.analytics.snapshot import (  # noqa: PLC0415 - snapshot calls this module
        CATEGORIES,
        Waterfall,
        WaterfallDeal,
        WaterfallRow,
        WaterfallSegment,
    )

    columns = check_columns(by, WaterfallDeal, WaterfallRow, WaterfallSegment)
    data = materialized(data)
    whole = waterfall(data)
    segment_of = SegmentsAt(data, columns, _us(end, "end"), assume_zone)
    deals = _with_segments(records_of(whole.deals, WaterfallDeal), segment_of)
    sizes: dict[Segment, int] = defaultdict(int)
    totals: dict[tuple[Segment, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0.0])
    pipeline: dict[Segment, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for d in deals:
        sizes[d.segment] += 1
        t = totals[d.segment, d.category]
        t[0] += 1
        t[1] += d.amount_start or 0.0
        t[2] += d.amount_end or 0.0
        t[3] += d.stage_start is None
        t[4] += d.pipeline_change
        open_end = 0.0 if d.category in ("won", "lost") else float(d.amount_end or 0.0)
        pipeline[d.segment][0] += open_end - d.pipeline_change
        pipeline[d.segment][1] += open_end
    keys = sorted(sizes, key=segment_order)
    summary = [
        WaterfallRow(
            c, int(n[0]), n[1], n[2], int(n[3]), n[4], segment=key, small=sizes[key] < SMALL_SAMPLE
        )
        for key in keys
        for c in CATEGORIES
        if (n := totals.get((key, c)))
    ]
    segments = [
        WaterfallSegment(
            key, sizes[key], pipeline[key][0], pipeline[key][1], sizes[key] < SMALL_SAMPLE
        )
        for key in keys
    ]
    return Waterfall(
        _out(data, columns, deals, WaterfallDeal, ()),
        _out(data, columns, summary, WaterfallRow, ("small",)),
        whole.open_start,
        whole.open_end,
        _out(data, columns, segments, WaterfallSegment, ()),
    )


# -- slippage --------------------------------------------------------------------------------


def slippage_by(
    slippage: Any,
    data: Any,
    by: str | Sequence[str],
    *,
    as_of: datetime,
    flag_pushes: int,
    age_bands: Sequence[float],
    assume_zone: str | tzinfo | None,
) -> Slippage:
    """``slippage(data)`` once; its deals tagged with the segment at ``as_of``, tables per segment.

    Returns:
        a ``Slippage`` whose ``deals`` carry their segment and whose ``by_pushes`` and
        ``by_pushes_and_age`` have rows per segment (with ``segment`` and ``small``: fewer than
        :data:`SMALL_SAMPLE` deals with a close date in the segment); ``slip_rate`` and
        ``flagged`` stay those of every deal.
    """
    from stagegate.analytics.deals import (  # noqa: PLC0415 - deals calls this module
        PushAgeCount,
        PushCount,
        Slippage,
        SlippingDeal,
    )

    columns = check_columns(by, SlippingDeal, PushCount, PushAgeCount)
    data = materialized(data)
    whole = slippage(data)
    segment_of = SegmentsAt(data, columns, _us(as_of, "as_of"), assume_zone)
    deals = _with_segments(records_of(whole.deals, SlippingDeal), segment_of)
    bands = tuple(float(b) for b in age_bands)
    sizes: dict[Segment, int] = defaultdict(int)
    by_push: dict[tuple[Segment, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    by_age: dict[tuple[Segment, int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for d in deals:
        sizes[d.segment] += 1
        key = min(d.pushes, flag_pushes)
        band = max(0, bisect.bisect_right(bands, d.age_days) - 1)
        for bucket in (by_push[d.segment, key], by_age[d.segment, key, band]):
            bucket[0] += 1
            bucket[1] += d.outcome != "open"
            bucket[2] += d.outcome == "won"

    def small(key: Segment) -> bool:
        return sizes[key] < SMALL_SAMPLE

    pushes = [
        PushCount(k, n, c, w, w / c if c else None, segment=s, small=small(s))
        for (s, k), (n, c, w) in sorted(
            by_push.items(), key=lambda i: (segment_order(i[0][0]), i[0][1])
        )
    ]
    aged = [
        PushAgeCount(
            k,
            bands[b],
            bands[b + 1] if b + 1 < len(bands) else None,
            n,
            c,
            w,
            w / c if c else None,
            segment=s,
            small=small(s),
        )
        for (s, k, b), (n, c, w) in sorted(
            by_age.items(), key=lambda i: (segment_order(i[0][0]), i[0][1], i[0][2])
        )
    ]
    return Slippage(
        _out(data, columns, deals, SlippingDeal, ()),
        _out(data, columns, pushes, PushCount, ("small",)),
        whole.slip_rate,
        whole.flagged,
        _out(data, columns, aged, PushAgeCount, ("small",)),
    )


# -- forecast --------------------------------------------------------------------------------


def levels_of(columns: Sequence[str], leaves: Iterable[Segment], *, rollup: bool) -> list[Any]:
    """``(level, key, leaves)``: each segment of each level and the leaf segments it holds.

    Without ``rollup`` the levels are the leaves alone (level ``None``). With it, level ``c``
    (each of ``columns`` in turn) groups the leaves by their values from ``c`` on, then the
    total (level ``"all"``, key ``()``) holds every leaf.
    """
    ordered = sorted(set(leaves), key=segment_order)
    if not rollup:
        return [(None, leaf, [leaf]) for leaf in ordered]
    result: list[Any] = []
    for i, column in enumerate(columns):
        groups: dict[Segment, list[Segment]] = defaultdict(list)
        for leaf in ordered:
            groups[leaf[i:]].append(leaf)
        result += [(column, key, groups[key]) for key in sorted(groups, key=segment_order)]
    result.append(("all", (), ordered))
    return result


def simulate_by_segment(
    deals: list[tuple[float, int, float]],
    groups: list[int],
    slips: list[int],
    totals: list[int],
    *,
    today: int,
    period: str,
    simulations: int,
    seed: int,
) -> dict[tuple[int, str], list[float]]:
    """The won amount of every (group, period) in every run: one joint simulation.

    The runs draw exactly the numbers :func:`~stagegate.analytics.forecast.simulate_runs`
    draws for ``deals`` (same seed, same order), so every deal is won or lost, and lands, alike
    in each group's sum and in the whole's: the groups' runs add up to the whole's runs.
    """
    from stagegate.analytics.forecast import VECTOR_FROM, draw_close, numpy_or_none, period_of  # noqa: PLC0415

    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    if (
        deals
        and simulations
        and simulations * len(deals) >= VECTOR_FROM
        and numpy_or_none() is not None
    ):
        return _vector_by_segment(rng, deals, groups, slips, totals, today, period, simulations)
    epoch = date(1970, 1, 1)
    labels: dict[int, str] = {}
    runs: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0] * simulations)
    uniform = rng.random
    for run in range(simulations):
        for (amount, close, p), group in zip(deals, groups, strict=True):
            won = uniform() < p
            u = uniform()
            if won:
                day = draw_close(slips, totals, close, u, today)
                label = labels.get(day)
                if label is None:
                    label = labels[day] = period_of(epoch + timedelta(days=max(day, today)), period)
                runs[group, label][run] += amount
    return dict(runs)


_GROUP_SPAN = 1 << 24
_EPOCH = date(1970, 1, 1)
"""Period keys (months or quarters since 1970) stay below this: a group's keys start at it."""


def _vector_by_segment(  # noqa: PLR0917 - private, the parts of one simulation
    rng: random.Random,
    deals: list[tuple[float, int, float]],
    groups: list[int],
    slips: list[int],
    totals: list[int],
    today: int,
    period: str,
    simulations: int,
) -> dict[tuple[int, str], list[float]]:
    """:func:`simulate_by_segment` on numpy: the twister state of ``rng``, chunks of runs."""
    from stagegate.analytics.forecast import (  # noqa: PLC0415
        LAST_DAY,
        MONTE_CARLO_CHUNK,
        numpy_or_none,
        period_keys,
        period_label,
    )

    np = numpy_or_none()
    state = rng.getstate()[1]
    twister = np.random.RandomState()
    twister.set_state(("MT19937", np.array(state[:624], dtype=np.uint32), state[624]))
    amount = np.array([d[0] for d in deals], dtype=np.float64)
    close = np.array([d[1] for d in deals], dtype=np.int64)
    p = np.array([d[2] for d in deals], dtype=np.float64)
    group = np.array(groups, dtype=np.int64) * _GROUP_SPAN
    n = len(deals)
    slip = np.array(slips, dtype=np.int64)
    total = np.array(totals, dtype=np.int64)
    first = np.searchsorted(slip, today - close, side="left")
    has = first < len(slips)
    base = np.where(first > 0, total[np.maximum(first - 1, 0)] if len(totals) else 0, 0)
    base = base.astype(np.float64)
    span = (float(totals[-1]) if totals else 0.0) - base
    per_chunk = max(1, MONTE_CARLO_CHUNK // n)
    sums: dict[int, Any] = {}
    for start in range(0, simulations, per_chunk):
        runs = min(per_chunk, simulations - start)
        u = twister.random_sample(2 * runs * n).reshape(runs, n, 2)
        won = u[:, :, 0] < p
        point = base + u[:, :, 1] * span
        pick = np.minimum(np.searchsorted(total, point, side="right"), max(len(slips) - 1, 0))
        day = np.minimum(np.where(has, close + (slip[pick] if len(slips) else 0), close), LAST_DAY)
        day = np.broadcast_to(day, (runs, n))
        key = period_keys(np, np.maximum(day, today), period) + group
        for offset in range(runs):
            mask = won[offset]
            landed = key[offset][mask]
            if not landed.size:
                continue
            found, index = np.unique(landed, return_inverse=True)
            weights = np.bincount(index, weights=amount[mask])
            for k, w in zip(found.tolist(), weights.tolist(), strict=True):
                if k not in sums:
                    sums[k] = np.zeros(simulations)
                sums[k][start + offset] = w
    return {
        (k // _GROUP_SPAN, period_label(k % _GROUP_SPAN, period)): sums[k].tolist()
        for k in sorted(sums)
    }


def forecast_by(
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    rollup: bool,
    as_of: datetime,
    estimator: str,
    period: str,
    simulations: int,
    seed: int,
    slip: bool,
    prior_strength: float,
    assume_zone: str | tzinfo | None,
) -> Forecast:
    """The forecast per segment in force at ``as_of`` (and per rollup level with ``rollup``).

    The probabilities by stage and the slip history are fitted on every deal; the open deals
    are split by segment; one joint simulation gives every segment's runs, and each level's
    runs are the sums of its segments' runs, so that the means add up while the percentiles
    are those of each level's own distribution.
    """
    from stagegate.analytics.forecast import (  # noqa: PLC0415 - forecast calls this module
        ForecastPeriod,
        forecast,
        period_of,
        slip_history,
    )
    from stagegate.analytics.probability import (  # noqa: PLC0415
        DEFAULT_BINS,
        bin_of,
        fit_counts,
        predictors,
    )
    from stagegate.analytics.snapshot import open_deals_by_id, prepared_of  # noqa: PLC0415

    columns = check_columns(by, ForecastPeriod)
    data = materialized(data)
    check_one_currency(data)
    prepared = prepared_of(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    # the whole, unsegmented: checks the arguments, gives the totals
    whole = forecast(
        prepared, outcomes, as_of=as_of, estimator=estimator, period=period, simulations=0,
        seed=seed, slip=slip, prior_strength=prior_strength, assume_zone=assume_zone,
    )  # fmt: skip
    segment_of = SegmentsAt(data, columns, prepared.as_of_us, assume_zone)
    table = predictors(
        fit_counts(prepared, DEFAULT_BINS), prepared.outcomes, DEFAULT_BINS,
        prior_strength=prior_strength,
    )[estimator]  # fmt: skip
    today = prepared.as_of_us // DAY_US
    leaves: dict[Segment, int] = {}
    deals: list[tuple[float, int, float]] = []
    groups: list[int] = []
    for oid, stage, dwell, amount, close in open_deals_by_id(prepared):
        if amount is None or close is None:
            continue
        leaf = segment_of(oid)
        deals.append((float(amount), int(close), table[stage, bin_of(dwell, DEFAULT_BINS)]))
        groups.append(leaves.setdefault(leaf, len(leaves)))
    history = slip_history(prepared) if slip else {}
    slips = sorted(history)
    totals = list(itertools.accumulate(history[s] for s in slips))
    runs = simulate_by_segment(
        deals, groups, slips, totals, today=today, period=period, simulations=simulations,
        seed=seed,
    )  # fmt: skip
    expected: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    sizes: dict[int, int] = defaultdict(int)
    for (amount, close, p), g in zip(deals, groups, strict=True):
        e = expected[g, period_of(_EPOCH + timedelta(days=max(close, today)), period)]
        e[0] += 1
        e[1] += amount
        e[2] += amount * p
        e[3] += close < today
        sizes[g] += 1
    rows = []
    for level, key, members in levels_of(columns, leaves, rollup=rollup):
        ids = [leaves[m] for m in members]
        wanted = set(ids)
        n = sum(sizes[g] for g in ids)
        labels = sorted({lb for (g, lb) in itertools.chain(expected, runs) if g in wanted})
        for label in labels:
            parts = [expected.get((g, label), [0, 0.0, 0.0, 0]) for g in ids]
            e = [sum(x) for x in zip(*parts, strict=True)]
            found = [runs[g, label] for g in ids if (g, label) in runs]
            values = [math.fsum(v) for v in zip(*found, strict=True)] if found else []
            values += [0.0] * (simulations - len(values))
            values.sort()
            rows.append(
                ForecastPeriod(
                    label,
                    int(e[0]),
                    e[1],
                    e[2],
                    sum(values) / simulations if simulations else 0.0,
                    quantile(values, 0.1) or 0.0,
                    quantile(values, 0.5) or 0.0,
                    quantile(values, 0.9) or 0.0,
                    int(e[3]),
                    segment=key,
                    small=n < SMALL_SAMPLE,
                    level=level,
                )
            )
    extra = ("small",)
    return attrs.evolve(whole, periods=_out(data, columns, rows, ForecastPeriod, extra))


# -- backtest --------------------------------------------------------------------------------


def backtest_by(
    backtest: Callable[[Any], Backtest],
    data: Any,
    outcomes: OutcomesLike,
    by: str | Sequence[str],
    *,
    cutoff: datetime,
    assume_zone: str | tzinfo | None,
) -> list[Backtest]:
    """``backtest`` (bound) per segment in force at ``cutoff``, on that segment's deals.

    Returns:
        one ``Backtest`` per segment of the deals that existed at the cut-off (segments in
        order, no value last), each with its ``segment`` and ``small`` (fewer than
        :data:`SMALL_SAMPLE` deals scored), its rows tagged likewise.
    """
    from stagegate.analytics.backtest import BacktestScore, Reliability  # noqa: PLC0415
    from stagegate.analytics.snapshot import Snapshot, snapshot  # noqa: PLC0415

    columns = check_columns(by, BacktestScore, Reliability)
    data = materialized(data)
    segment_of = SegmentsAt(data, columns, _us(cutoff, "cutoff"), assume_zone)
    at_cutoff = snapshot(data, outcomes, at=cutoff, assume_zone=assume_zone)
    existing = {str(s.opportunity_id) for s in records_of(at_cutoff, Snapshot)}
    members: dict[Segment, set[str]] = defaultdict(set)
    for oid in existing:
        members[segment_of(oid)].add(oid)
    result = []
    for key in sorted(members, key=segment_order):
        part = backtest(deals_subset(data, segment_of.items, members[key]))
        scored = max((s.deals for s in records_of(part.scores, BacktestScore)), default=0)
        small = scored < SMALL_SAMPLE
        scores = [
            attrs.evolve(s, segment=key, small=small)
            for s in records_of(part.scores, BacktestScore)
        ]
        reliability = [
            attrs.evolve(r, segment=key, small=small)
            for r in records_of(part.reliability, Reliability)
        ]
        result.append(
            attrs.evolve(
                part,
                scores=_out(data, columns, scores, BacktestScore, ("small",)),
                reliability=_out(data, columns, reliability, Reliability, ("small",)),
                segment=key,
                small=small,
            )
        )
    return result
