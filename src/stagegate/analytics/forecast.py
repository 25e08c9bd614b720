"""Forecast: weighted pipeline per close period, and a seeded Monte Carlo distribution.

Every deal open at ``as_of`` with an amount and an expected close date contributes to the
period of its close date: ``pipeline`` (its amount) and ``weighted`` (amount times its win
probability from the chosen estimator, see :data:`~stagegate.analytics.ESTIMATORS`; the
``dwell`` estimator also uses the time already spent in the stage).

The Monte Carlo draws, in each of ``simulations`` runs, whether each deal is won (with its
probability) and, when ``slip`` is true, when it closes: its expected close date moved by a
draw from history, the days between the expected close date in force when won deals entered
their last open stage and the day they actually closed.

**The rule for dates (overdue or not):** a deal still open at ``as_of`` has not closed before
it, so its slip is drawn from the history's slips *conditional on landing on or after*
``as_of``: a deal 40 days overdue draws among the won deals that closed at least 40 days late
(and closes that much later than its date), a deal due next month among the slips that do not
take it into the past. Overdue close dates are therefore spread over the periods in which such
late deals really closed, not piled onto the ``as_of`` period. A deal overdue by more than any
won deal ever slipped (``beyond_history``), and every deal when there is no history or
``slip`` is false, closes on the later of its date and ``as_of``.

``weighted`` is not simulated: each deal's amount times its probability, in the period of its
expected close date (an overdue one in the ``as_of`` period, where it is due; ``overdue``
counts those). Slippage moves amounts between periods, so a period's weighted point can fall
outside its P10-P90 while the totals agree: ``simulated_mean`` summed over the periods equals
``weighted`` summed, up to Monte Carlo noise. ``p10`` / ``p50`` / ``p90`` are quantiles of the
won amount per period over the runs; ``random.Random(seed)`` makes them reproducible. Deals
without an amount or a close date are counted in ``unscheduled``; ``pipeline`` and
``weighted`` of :class:`Forecast` total every open deal with an amount (scheduled or not).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate.analytics._currency_guard import check_one_currency
from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._stats import quantile
from stagegate.analytics._table import DAY_US
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.probability import (
    DEFAULT_BINS,
    ESTIMATORS,
    bin_of,
    fit_counts,
    predictors,
)
from stagegate.analytics.snapshot import open_deals, open_table, prepared_of

__all__ = ["Forecast", "ForecastPeriod", "forecast", "period_of"]

_EPOCH = date(1970, 1, 1)
LAST_DAY = (date.max - _EPOCH).days
"""The last day a close can land on (9999-12-31, days since 1970): a later slip lands there."""


def period_of(day: date, period: str) -> str:
    """Label of the period a date falls in: ``2026-03`` (month) or ``2026-Q1`` (quarter).

    >>> period_of(date(2026, 5, 2), "quarter"), period_of(date(2026, 5, 2), "month")
    ('2026-Q2', '2026-05')
    """
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


@attrs.frozen(slots=True)
class ForecastPeriod:
    """Forecast of one close period.

    With ``by=``, also of one segment (``segment``; ``small``: fewer than 30 scheduled open
    deals in it) and, with ``rollup=True``, of one ``level`` (a ``by`` column, or ``all``).
    """

    period: str
    deals: int
    pipeline: float
    weighted: float
    simulated_mean: float
    p10: float
    p50: float
    p90: float
    overdue: int
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)
    level: str | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class Forecast:
    """Result of :func:`forecast`.

    Attributes:
        periods: one row per close period (:class:`ForecastPeriod` columns).
        estimator: the estimator used.
        unscheduled: open deals without an amount or a close date (left out).
        slip_samples: the size of the slip history drawn from.
        pipeline: the amount of every open deal with an amount (with or without close date).
        weighted: the same, each amount times the deal's probability by ``estimator``.
        overdue: open deals in ``periods`` whose expected close date is before ``as_of``.
        beyond_history: overdue deals later than any slip in the history (kept at ``as_of``).
    """

    periods: Any
    estimator: str
    unscheduled: int
    slip_samples: int
    pipeline: float = 0.0
    weighted: float = 0.0
    overdue: int = 0
    beyond_history: int = 0

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


def slip_history(prepared: Any) -> dict[int, int]:
    """Days from expected to actual close of won deals, with counts.

    The expected close is the one in force when the deal entered its last open stage. Only won
    deals count: the simulation draws whether a deal is won separately, and then needs when a
    won deal closes; lost deals close (are dropped) long before their expected date, and would
    pull the forecast's won amount into the current period.
    """
    won_kinds = {s for s, k in prepared.outcomes.kinds.items() if k == "won"}
    counts: dict[int, int] = defaultdict(int)
    if prepared.python is not None:
        for v in prepared.python:
            if v.next_stage in won_kinds and v.outcome == "won" and v.close_day is not None:
                assert v.exited_us is not None  # noqa: S101 - exited by construction
                counts[v.exited_us // DAY_US - v.close_day] += 1
        return dict(counts)
    import narwhals as nw  # noqa: PLC0415

    rows = collect_rows(
        prepared.frame.filter(
            nw.col("next_stage").is_in(sorted(won_kinds))
            & (nw.col("outcome") == "won")
            & ~nw.col("close_day").is_null()
        )
        .with_columns(slip=nw.col("exited_us") // DAY_US - nw.col("close_day"))
        .group_by("slip")
        .agg(nw.col("visit").count().alias("n"))
    )
    return {int(r["slip"]): int(r["n"]) for r in rows}


MONTE_CARLO_CHUNK = 1 << 21
"""Most (run, deal) draws the vectorized Monte Carlo holds in memory at once."""
VECTOR_FROM = 50_000
"""The Monte Carlo runs on numpy (when installed) from this many (run, deal) draws on."""


def draw_close(slips: list[int], totals: list[int], close: int, u: float, today: int) -> int:
    """Close day of a won deal: its slip drawn among those landing on or after as_of."""
    first = bisect.bisect_left(slips, today - close)
    if first == len(slips):
        return close  # no history (or later than all of it): kept at max(close, as_of)
    base = totals[first - 1] if first else 0
    point = base + u * (totals[-1] - base)
    return min(close + slips[min(bisect.bisect_right(totals, point), len(slips) - 1)], LAST_DAY)


def simulate_runs(
    deals: list[tuple[float, int, float]],
    slips: list[int],
    totals: list[int],
    *,
    today: int,
    period: str,
    simulations: int,
    seed: int,
    vector: bool | None = None,
) -> dict[str, list[float]]:
    """The won amount of every period in every run, keyed by period label.

    Each run takes, for each deal in order, two numbers of ``random.Random(seed)``: the first
    decides whether it is won (below its probability), the second where a won deal's slip
    lands. The numpy path (``vector``; by default from :data:`VECTOR_FROM` draws on, when numpy
    is installed) reads the very same numbers from the same Mersenne Twister state and adds
    the amounts in the same order, so both give identical results.
    """
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    if vector is None:
        vector = simulations * len(deals) >= VECTOR_FROM and numpy_or_none() is not None
    if vector and deals and simulations:
        np = numpy_or_none()
        amount, close, p = (np.array(column) for column in zip(*deals, strict=True))
        book = _Book(amount.astype(np.float64), close.astype(np.int64), p.astype(np.float64))
        return _vector_runs(rng, book, slips, totals, today, period, simulations)
    labels: dict[int, str] = {}

    def label(day: int) -> str:
        found = labels.get(day)
        if found is None:
            found = labels[day] = period_of(_EPOCH + timedelta(days=max(day, today)), period)
        return found

    runs: dict[str, list[float]] = defaultdict(lambda: [0.0] * simulations)
    uniform = rng.random
    for run in range(simulations):
        for amount, close, p in deals:
            won = uniform() < p
            u = uniform()
            if won:
                runs[label(draw_close(slips, totals, close, u, today))][run] += amount
    return dict(runs)


def numpy_or_none() -> Any:
    try:
        import numpy as np  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return np


@attrs.frozen
class _Book:
    """The scheduled open deals as numpy columns, in the order the runs draw them."""

    amount: Any
    """float64 amounts."""
    close: Any
    """int64 expected close days (days since 1970-01-01)."""
    p: Any
    """float64 win probabilities."""


def _vector_runs(  # noqa: PLR0917 - private, the parts of one simulation
    rng: random.Random,
    book: _Book,
    slips: list[int],
    totals: list[int],
    today: int,
    period: str,
    simulations: int,
) -> dict[str, list[float]]:
    """:func:`simulate_runs` on numpy, a chunk of runs at a time.

    Only the won draws go further: each lands on a (run, period) cell, and one weighted
    ``bincount`` per chunk adds their amounts, deal after deal, as the pure-Python loop does.
    The draws fill one buffer, chunk after chunk (no fresh pages per chunk).
    """
    np = numpy_or_none()
    state = rng.getstate()[1]
    bits = np.random.MT19937()
    key = np.array(state[:624], dtype=np.uint32)
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": state[624]}}
    twister = np.random.Generator(bits)  # its doubles are random.random()'s, 53 bits of two
    amount, close, p = book.amount, book.close, book.p
    n = len(amount)
    slip = np.array(slips, dtype=np.int64)
    total = np.array(totals, dtype=np.int64)
    first = np.searchsorted(slip, today - close, side="left")
    has = first < len(slips)
    base = np.where(first > 0, total[np.maximum(first - 1, 0)] if len(totals) else 0, 0)
    base = base.astype(np.float64)
    span = (float(totals[-1]) if totals else 0.0) - base
    slip_at = _slip_table(np, slip, total)
    # every day a won deal can land on lies in [today, last]: one period key per such day
    last = max(int(close.max()) + (max(int(slip[-1]), 0) if len(slips) else 0), today)
    last = min(last, LAST_DAY)
    calendar = period_keys(np, np.arange(today, last + 1, dtype=np.int64), period)
    low = int(calendar[0])
    cells = calendar - low  # a day's period, counted from the first one
    width = int(cells[-1]) + 1
    per_chunk = max(1, MONTE_CARLO_CHUNK // n)
    sums: dict[int, Any] = {}  # a period's won amount per run, once a deal landed in it
    buffer = np.empty(2 * min(per_chunk, simulations) * n)
    for start in range(0, simulations, per_chunk):
        runs = min(per_chunk, simulations - start)
        u = twister.random(out=buffer[: 2 * runs * n])  # (won?, slip) of each run and deal
        won = np.flatnonzero((u.reshape(runs, n, 2)[:, :, 0] < p).ravel())
        run = won // n  # the won draws, run by run, deal by deal
        deal = won - run * n
        day = close[deal]
        if len(slips):
            point = base[deal] + u[2 * won + 1] * span[deal]
            if slip_at is None:
                pick = np.minimum(np.searchsorted(total, point, side="right"), len(slips) - 1)
                moved = slip[pick]
            else:  # totals are integers: the totals up to the point are those up to its floor
                moved = slip_at[point.astype(np.int64)]
            day = np.minimum(np.where(has[deal], day + moved, day), LAST_DAY)
        cell = cells[np.maximum(day, today) - today]
        chunk = np.bincount(run * width + cell, weights=amount[deal], minlength=runs * width)
        chunk = chunk.reshape(runs, width)
        for k in np.flatnonzero(np.bincount(cell, minlength=width)).tolist():
            sums.setdefault(k, np.zeros(simulations))[start : start + runs] = chunk[:, k]
    return {period_label(low + k, period): sums[k].tolist() for k in sorted(sums)}


SLIP_TABLE_UP_TO = 1 << 22
"""Largest slip history (won deals) whose draws are looked up in a table, not searched."""


def _slip_table(np: Any, slip: Any, total: Any) -> Any:
    """The slip drawn at each whole point ``0 .. total[-1]`` of the cumulative counts.

    ``None`` without history or with more than :data:`SLIP_TABLE_UP_TO` samples (then the
    draws search the totals).
    """
    if not len(total) or int(total[-1]) > SLIP_TABLE_UP_TO:
        return None
    points = np.arange(int(total[-1]) + 1)
    return slip[np.minimum(np.searchsorted(total, points, side="right"), len(slip) - 1)]


def period_keys(np: Any, days: Any, period: str) -> Any:
    """Months since 1970-01 (``month``) or quarters since 1970-Q1 of day numbers.

    The calendar is computed once for the days between the first and the last, then looked up.
    """
    low, high = int(days.min()), int(days.max())
    span = np.arange(low, high + 1, dtype=np.int64)
    months = span.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    table = months if period == "month" else months // 3
    return table[days - low]


def period_label(key: int, period: str) -> str:
    if period == "month":
        year, month = divmod(key, 12)
        return f"{1970 + year:04d}-{month + 1:02d}"
    year, quarter = divmod(key, 4)
    return f"{1970 + year:04d}-Q{quarter + 1}"


@attrs.frozen
class _Scheduled:
    """The open deals' totals, and the scheduled ones (amount and close date) per period."""

    deals: list[tuple[float, int, float]]
    """(amount, close day, probability) of the scheduled deals (pure-Python path only)."""
    unscheduled: int
    pipeline: float
    weighted: float
    expected: dict[str, list[float]]
    """period label -> [deals, pipeline, weighted, overdue deals]."""
    overdue: int
    beyond: int


def _scheduled_python(
    prepared: Any,
    table: dict[tuple[str, int], float],
    today: int,
    period: str,
    slips: list[int],
) -> _Scheduled:
    """:class:`_Scheduled` deal by deal (any input)."""
    deals = []
    unscheduled = 0
    pipeline = weighted = 0.0
    for stage, dwell, amount, close in open_deals(prepared):
        p = table[stage, bin_of(dwell, DEFAULT_BINS)]
        if amount is not None:
            pipeline += float(amount)
            weighted += float(amount) * p
        if amount is None or close is None:
            unscheduled += 1
            continue
        deals.append((float(amount), int(close), p))
    labels: dict[int, str] = {}  # one label per distinct day (deals share few close days)

    def label(day: int) -> str:
        found = labels.get(day)
        if found is None:
            found = labels[day] = period_of(_EPOCH + timedelta(days=max(day, today)), period)
        return found

    expected: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for amount, close, p in deals:
        e = expected[label(close)]
        e[0] += 1
        e[1] += amount
        e[2] += amount * p
        e[3] += close < today
    beyond = sum(
        1 for _, close, _ in deals if close < today and (not slips or slips[-1] < today - close)
    )
    overdue = sum(1 for _, close, _ in deals if close < today)
    return _Scheduled(deals, unscheduled, pipeline, weighted, expected, overdue, beyond)


@attrs.frozen
class _OpenColumns:
    """Every open deal at ``as_of`` as numpy columns, by opportunity id."""

    amount: Any
    """float64 amounts (0 where missing)."""
    has_amount: Any
    close: Any
    """int64 expected close days (0 where missing)."""
    has_close: Any
    p: Any
    """float64 win probabilities."""


def _open_columns(prepared: Any, table: dict[tuple[str, int], float]) -> _OpenColumns | None:
    """The open deals of a frame as numpy columns; ``None`` on the pure-Python path.

    Also ``None`` without numpy: then :func:`_scheduled_python` takes the frame's deals.
    """
    np = numpy_or_none()
    if not prepared.is_frame or np is None:
        return None
    import pyarrow as pa  # type: ignore[import-untyped]  # noqa: PLC0415
    import pyarrow.compute as pc  # type: ignore[import-untyped]  # noqa: PLC0415

    frame = open_table(prepared)  # the order of open_deals: the runs draw deals in it
    amount, close = frame.column("amount"), frame.column("close_day")  # float64, integers
    stages = prepared.outcomes.stages
    code = pc.index_in(frame.column("stage").cast(pa.string()), value_set=pa.array(stages))
    # (stage position, dwell bin) -> probability; open deals are in open stages only
    grid = np.array([[table.get((s, b), np.nan) for b in range(len(DEFAULT_BINS))]
                     for s in stages])  # fmt: skip
    dwell = frame.column("dwell_days").to_numpy(zero_copy_only=False).astype(np.float64)
    bins = np.maximum(np.searchsorted(DEFAULT_BINS, dwell, side="right") - 1, 0)
    bins[np.isnan(dwell)] = 0  # as bin_of: NaN is below every bound
    return _OpenColumns(
        pc.fill_null(amount, 0).to_numpy().astype(np.float64),
        amount.is_valid().to_numpy(zero_copy_only=False),
        pc.fill_null(close, 0).to_numpy().astype(np.int64),
        close.is_valid().to_numpy(zero_copy_only=False),
        grid[code.to_numpy(zero_copy_only=False).astype(np.int64), bins],
    )


def _in_order_sum(np: Any, values: Any) -> float:
    """The sum of ``values`` added one after another from 0.0, as a Python loop adds them."""
    if not len(values):
        return 0.0
    return float(np.bincount(np.zeros(len(values), dtype=np.intp), weights=values)[0])


def _scheduled_numpy(
    columns: _OpenColumns, today: int, period: str, slips: list[int]
) -> tuple[_Scheduled, _Book]:
    """:class:`_Scheduled` of numpy columns (the same numbers), and the deals to simulate."""
    np = numpy_or_none()
    priced = columns.amount[columns.has_amount]
    scheduled = columns.has_amount & columns.has_close
    book = _Book(columns.amount[scheduled], columns.close[scheduled], columns.p[scheduled])
    late = book.close < today
    expected: dict[str, list[float]] = {}
    if len(book.close):
        keys, cell = np.unique(
            period_keys(np, np.maximum(book.close, today), period), return_inverse=True
        )
        deals = np.bincount(cell)
        pipeline = np.bincount(cell, weights=book.amount)
        weighted = np.bincount(cell, weights=book.amount * book.p)
        overdue = np.bincount(cell, weights=late)
        for i, key in enumerate(keys.tolist()):
            expected[period_label(key, period)] = [
                int(deals[i]), float(pipeline[i]), float(weighted[i]), int(overdue[i])
            ]  # fmt: skip
    beyond = late & (today - book.close > slips[-1]) if slips else late
    return _Scheduled(
        [],
        int(len(columns.amount) - scheduled.sum()),
        _in_order_sum(np, priced),
        _in_order_sum(np, priced * columns.p[columns.has_amount]),
        expected,
        int(late.sum()),
        int(beyond.sum()),
    ), book


def _simulate_book(
    book: _Book,
    slips: list[int],
    totals: list[int],
    *,
    today: int,
    period: str,
    simulations: int,
    seed: int,
) -> dict[str, list[float]]:
    """:func:`simulate_runs` of numpy columns: the numbers of that function, on either path."""
    if simulations * len(book.amount) >= VECTOR_FROM and len(book.amount) and simulations:
        rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
        return _vector_runs(rng, book, slips, totals, today, period, simulations)
    deals = list(zip(book.amount.tolist(), book.close.tolist(), book.p.tolist(), strict=True))
    return simulate_runs(deals, slips, totals, today=today, period=period,
                         simulations=simulations, seed=seed, vector=False)  # fmt: skip


def forecast(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    estimator: str = "smoothed",
    period: str = "month",
    simulations: int = 1000,
    seed: int = 0,
    slip: bool = True,
    prior_strength: float = 10.0,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
    rollup: bool = False,
) -> Forecast:
    """Weighted pipeline and Monte Carlo won amount (P10 / P50 / P90) per close period.

    Args:
        data: events, opportunities, row mappings, or a stage-history frame.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the forecast stands at.
        estimator: one of :data:`~stagegate.analytics.ESTIMATORS`.
        period: ``month`` or ``quarter``.
        simulations: Monte Carlo runs (0: weighted pipeline only).
        seed: seed of the runs.
        slip: also draw close-date slippage from history.
        prior_strength: pseudo-deals of the ``smoothed`` estimator.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): ``periods`` has rows per segment in force at
            ``as_of`` and period, with ``segment`` and ``small``. The probabilities by stage
            and the slip history stay fitted on every deal; one joint simulation draws every
            deal once per run, and each segment's percentiles are those of its own runs.
        rollup: with ``by=("owner", "team", "region")``, rows per level: each owner (its
            segment ``(owner, team, region)``), each team (``(team, region)``), each region,
            then ``all`` (``()``), with ``level`` set. A level's runs are the sums of its
            members' runs: means and weighted amounts add up, percentiles do not.

    Returns:
        :class:`Forecast`, periods in time order (by segment, then period, with ``by=``;
        the scalar totals stay those of every deal).

    Raises:
        AnalyticsError: an argument is unknown or out of range, ``by`` names no column or a
            result column, ``rollup`` is set without ``by``, or the input is unusable.
    """
    if by is not None:
        from stagegate.analytics._by_deal import forecast_by  # noqa: PLC0415 - a cycle

        return forecast_by(data, outcomes, by, rollup=rollup, as_of=as_of, estimator=estimator,
                           period=period, simulations=simulations, seed=seed, slip=slip,
                           prior_strength=prior_strength, assume_zone=assume_zone)  # fmt: skip
    if rollup:
        raise AnalyticsError("rollup=True needs by=, the levels (e.g. ('owner', 'team'))")
    check_one_currency(data)
    if estimator not in ESTIMATORS or period not in ("month", "quarter") or simulations < 0:
        raise AnalyticsError(
            f"estimator must be one of {', '.join(ESTIMATORS)}, period 'month' or 'quarter', "
            f"simulations >= 0; got {estimator!r}, {period!r}, {simulations!r}"
        )
    prepared = prepared_of(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    counts = fit_counts(prepared, DEFAULT_BINS)
    table = predictors(counts, prepared.outcomes, DEFAULT_BINS, prior_strength=prior_strength)[
        estimator
    ]
    today = prepared.as_of_us // DAY_US
    history = slip_history(prepared) if slip else {}
    slips = sorted(history)
    totals = list(itertools.accumulate(history[s] for s in slips))
    found = _open_columns(prepared, table)
    if found is None:
        book = _scheduled_python(prepared, table, today, period, slips)
        runs = simulate_runs(book.deals, slips, totals, today=today, period=period,
                             simulations=simulations, seed=seed)  # fmt: skip
    else:
        book, deals = _scheduled_numpy(found, today, period, slips)
        runs = _simulate_book(deals, slips, totals, today=today, period=period,
                              simulations=simulations, seed=seed)  # fmt: skip
    expected = book.expected
    rows = []
    for key in sorted(set(expected) | set(runs)):
        e = expected.get(key, [0, 0.0, 0.0, 0])
        values = sorted(runs.get(key, [0.0] * simulations))
        mean = sum(values) / simulations if simulations else 0.0
        rows.append(
            ForecastPeriod(
                key,
                int(e[0]),
                e[1],
                e[2],
                mean,
                quantile(values, 0.1) or 0.0,
                quantile(values, 0.5) or 0.0,
                quantile(values, 0.9) or 0.0,
                int(e[3]),
            )
        )
    return Forecast(
        emit(prepared, rows, ForecastPeriod),
        estimator,
        book.unscheduled,
        totals[-1] if totals else 0,
        book.pipeline,
        book.weighted,
        book.overdue,
        book.beyond,
    )
