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
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import collect_rows, emit
from stagegate.analytics._stats import quantile
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import prepare
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.probability import (
    DEFAULT_BINS,
    ESTIMATORS,
    bin_of,
    fit_counts,
    predictors,
)
from stagegate.analytics.snapshot import current_state

__all__ = ["Forecast", "ForecastPeriod", "forecast", "period_of"]

_EPOCH = date(1970, 1, 1)


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
    """Forecast of one close period."""

    period: str
    deals: int
    pipeline: float
    weighted: float
    simulated_mean: float
    p10: float
    p50: float
    p90: float
    overdue: int


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


def _slip_history(prepared: Any) -> dict[int, int]:
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

    Returns:
        :class:`Forecast`, periods in time order.

    Raises:
        AnalyticsError: an argument is unknown or out of range, or the input is unusable.
    """
    if estimator not in ESTIMATORS or period not in ("month", "quarter") or simulations < 0:
        raise AnalyticsError(
            f"estimator must be one of {', '.join(ESTIMATORS)}, period 'month' or 'quarter', "
            f"simulations >= 0; got {estimator!r}, {period!r}, {simulations!r}"
        )
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, keep_rows=True)
    counts = fit_counts(prepared, DEFAULT_BINS)
    table = predictors(counts, prepared.outcomes, DEFAULT_BINS, prior_strength=prior_strength)[
        estimator
    ]
    today = prepared.as_of_us // DAY_US
    deals = []
    unscheduled = 0
    pipeline = weighted = 0.0
    for r in current_state(prepared):
        if r["kind"] != "open":
            continue
        p = table[r["stage"], bin_of(r["dwell_days"], DEFAULT_BINS)]
        if r["amount"] is not None:
            pipeline += float(r["amount"])
            weighted += float(r["amount"]) * p
        if r["amount"] is None or r["close_day"] is None:
            unscheduled += 1
            continue
        deals.append((float(r["amount"]), int(r["close_day"]), p))
    history = _slip_history(prepared) if slip else {}
    slips = sorted(history)
    totals = list(itertools.accumulate(history[s] for s in slips))
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography

    def label(day: int) -> str:
        return period_of(_EPOCH + timedelta(days=max(day, today)), period)

    def draw(close: int) -> int:
        """Close day of a won deal: its slip drawn among those landing on or after as_of."""
        first = bisect.bisect_left(slips, today - close)
        if first == len(slips):
            return close  # no history (or later than all of it): kept at max(close, as_of)
        base = totals[first - 1] if first else 0
        point = base + rng.random() * (totals[-1] - base)
        return close + slips[min(bisect.bisect_right(totals, point), len(slips) - 1)]

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
    runs: dict[str, list[float]] = defaultdict(lambda: [0.0] * simulations)
    for run in range(simulations):
        for amount, close, p in deals:
            if rng.random() < p:
                runs[label(draw(close))][run] += amount
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
        unscheduled,
        totals[-1] if totals else 0,
        pipeline,
        weighted,
        sum(1 for _, close, _ in deals if close < today),
        beyond,
    )
