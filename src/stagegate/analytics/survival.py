"""Kaplan-Meier survival of stage dwell times, with censored (still open) visits.

A visit still running at ``as_of`` says "at least this long"; dropping it shortens every
estimate, treating it as finished shortens it too. The product-limit estimator uses it for
exactly what it says. Written in-house (no ``lifelines``), one definition for every path:
rows ordered by ``(duration, censored)`` (exits before censorings at the same duration; the
analytics order by the exact dwell in microseconds, see :func:`dwell_order`), each
exit multiplies survival by ``1 - 1/n`` with ``n`` the visits still at risk. At the end of a
group of tied durations this equals the textbook ``1 - d/n``, so the median (the smallest
duration where survival falls to one half or below) is the textbook one.

>>> km_median([2.0, 4.0, 6.0, 8.0], [True, True, True, True])
4.0
>>> km_median([2.0, 4.0, 6.0, 8.0], [True, False, False, False]) is None
True
>>> km_median([1.0, 3.0, 5.0], [True, False, True])
5.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stagegate.analytics._table import DAY_US

if TYPE_CHECKING:
    import narwhals as nw


__all__ = [
    "HALF",
    "HALF_WEIGHT",
    "deal_clock_python",
    "dwell_order",
    "dwell_us",
    "emptied",
    "factor_expr",
    "final_code",
    "follow_up_counts",
    "km_curve",
    "km_median",
    "km_medians",
    "risk_sets",
    "weighted_median",
]

HALF = 0.5 + 1e-9
"""Survival at or below this counts as "half have left" (tolerates float rounding)."""
_NEG = -1e9


def _log_factor(at_risk: int, exited: bool) -> float:
    if not exited:
        return 0.0
    if at_risk <= 1:
        return _NEG
    return math.log(1 - 1 / at_risk)


def km_curve(durations: Sequence[float], exited: Sequence[bool]) -> list[tuple[float, float]]:
    """Return ``(duration, survival)`` after each distinct duration with at least one exit."""
    order = sorted(zip(durations, exited, strict=True), key=lambda p: (p[0], not p[1]))
    total, log_s = len(order), 0.0
    curve: list[tuple[float, float]] = []
    for i, (duration, did_exit) in enumerate(order):
        log_s += _log_factor(total - i, did_exit)
        if did_exit:
            survival = math.exp(log_s)
            if curve and curve[-1][0] == duration:
                curve[-1] = (duration, survival)
            else:
                curve.append((duration, survival))
    return curve


def km_median(durations: Sequence[float], exited: Sequence[bool]) -> float | None:
    """Kaplan-Meier median duration; ``None`` while half or more are still in the stage."""
    for duration, survival in km_curve(durations, exited):
        if survival <= HALF:
            return duration
    return None


def dwell_us(as_of: int) -> nw.Expr:
    """The exact dwell of a visit in microseconds: to ``exited_us``, or to ``as_of``."""
    import narwhals as nw  # noqa: PLC0415

    return nw.col("exited_us").fill_null(value=as_of) - nw.col("entered_us")


def dwell_order() -> nw.Expr:
    """The order of visits in a risk set as one integer: dwell, then exits before censorings.

    Twice the exact dwell in microseconds (column ``dwell_us``, see :func:`dwell_us`), plus
    one for a censored visit. One integer key sorts several times faster than the pair
    ``(duration_days, censored)`` and never rounds two dwells together.
    """
    import narwhals as nw  # noqa: PLC0415

    return nw.col("dwell_us") * 2 + nw.col("censored").cast(nw.Int64)


def risk_sets(
    visits: nw.LazyFrame[Any], *, tag: tuple[str, int] | None = None
) -> nw.LazyFrame[Any]:
    """The product-limit columns of visits (``group``, ``dwell_us``, ``censored``).

    ``group`` holds small non-negative integers (stage positions): each group is a risk set,
    its rows ordered by :func:`dwell_order`. The result has ``group``, ``dwell_us``,
    ``censored``, ``at_risk`` (visits still in the stage, this one included),
    ``log_survival`` (the running sum of ``log(1 - 1/at_risk)`` over exits: survival just
    after this row is its exponential) and ``emptied`` (an exit that leaves no one at risk:
    survival falls to zero there, which the running sum leaves out to stay finite).

    ``tag``: the name of a further column of small integers ``0 <= value < span`` (nulls
    read back as 0), kept in the result; in memory it travels packed into the sort key.

    In memory (Polars, pandas) the rows come group by group, in increasing order, each group
    in :func:`dwell_order`; elsewhere in no particular order.
    """
    from stagegate.analytics._kernel import kernel_of  # noqa: PLC0415

    return kernel_of(visits).risk_sets(visits, tag=tag)


def emptied() -> nw.Expr:
    """An exit that leaves no one at risk (survival falls to zero there)."""
    import narwhals as nw  # noqa: PLC0415

    return ~nw.col("censored") & (nw.col("at_risk") <= 1)


def factor_expr() -> nw.Expr:
    """``log(1 - 1/at_risk)`` of an exit; 0 for a censoring and for an exit that empties."""
    import narwhals as nw  # noqa: PLC0415

    return (
        nw.when(nw.col("censored") | (nw.col("at_risk") <= 1))
        .then(nw.lit(0.0))
        .otherwise((1 - 1 / nw.col("at_risk").clip(lower_bound=2)).log())
    )


def km_medians(ranked: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """Kaplan-Meier median dwell per group, from :func:`risk_sets`: ``group``, ``km_median_days``.

    The median is the shortest dwell of an exit after which survival is one half or below.
    """
    import narwhals as nw  # noqa: PLC0415

    half = nw.col("emptied") | (nw.col("log_survival").exp() <= HALF)
    return (
        ranked.filter(~nw.col("censored") & half)
        .group_by("group")
        .agg(nw.col("dwell_us").min())
        .select("group", km_median_days=nw.col("dwell_us") / DAY_US)
    )


# ---------------------------------------------------------------------------------------------
# The deal clock: inverse probability of censoring weights
# ---------------------------------------------------------------------------------------------


def follow_up_counts(follow_ups: Sequence[int], ages: Sequence[int]) -> list[int]:
    """For each age, how many deals could be followed that long (follow-up at least the age).

    ``follow_ups``: every deal's potential follow-up ``as_of - opened`` (microseconds);
    ``ages``: the ages at close of the closed deals. Each count is at least one when the age
    is that of a deal among ``follow_ups`` (its own follow-up covers its age).

    >>> follow_up_counts([10, 20, 30], [5, 20, 25])
    [3, 2, 1]
    """
    import bisect  # noqa: PLC0415

    ordered = sorted(follow_ups)
    total = len(ordered)
    return [total - bisect.bisect_left(ordered, age) for age in ages]


def deal_clock_python(visits: Sequence[Any], as_of: int) -> dict[str, tuple[str, float]]:
    """The closed deals of pure-Python visits: ``{deal: (outcome, weight)}``.

    The weight is ``1 / G(age)``: ``age`` is the deal's time from its first stage entry to its
    close, ``G(t)`` the share of all deals opened at least ``t`` before ``as_of``.
    """
    opened: dict[str, int] = {}
    closing: dict[str, tuple[str, int]] = {}
    for v in visits:
        if v.step == 1:
            opened[v.opportunity_id] = v.entered_us
        if v.kind != "open" and v.exited_us is None:
            closing[v.opportunity_id] = (v.kind, v.entered_us)
    deals = sorted(closing)
    ages = [closing[d][1] - opened[d] for d in deals]
    counts = follow_up_counts([as_of - at for at in opened.values()], ages)
    total = len(opened)
    return {d: (closing[d][0], total / n) for d, n in zip(deals, counts, strict=True)}


def final_code(won: list[int], closed: list[int]) -> nw.Expr:
    """1 where ``group`` is a won stage's position, 2 a lost one's, else 0."""
    from stagegate.analytics._table import by_code  # noqa: PLC0415

    return by_code("group", {1: won, 2: [p for p in closed if p not in won]})


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float | None:
    """The lower weighted median: the smallest value whose cumulative weight reaches half.

    >>> weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 3.0])
    3.0
    >>> weighted_median([1.0, 2.0], [1.0, 1.0])
    1.0
    """
    pairs = sorted(zip(values, weights, strict=True))
    half = sum(weights) * HALF_WEIGHT
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= half:
            return value
    return None


HALF_WEIGHT = 0.5 - 1e-12
"""A cumulative weight at or above this share of the total "reaches half" (float rounding)."""
