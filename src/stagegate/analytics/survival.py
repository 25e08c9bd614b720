"""Kaplan-Meier survival of stage dwell times, with censored (still open) visits.

A visit still running at ``as_of`` says "at least this long"; dropping it shortens every
estimate, treating it as finished shortens it too. The product-limit estimator uses it for
exactly what it says. Written in-house (no ``lifelines``), one definition for every path:
rows ordered by ``(duration, censored)`` (exits before censorings at the same duration), each
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

if TYPE_CHECKING:
    import narwhals as nw

__all__ = ["HALF", "km_curve", "km_median", "km_median_frame"]

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


def risk_sets(visits: nw.LazyFrame[Any], by: Sequence[str]) -> nw.LazyFrame[Any]:
    """Add the product-limit columns to visits (``duration_days``, ``censored``, ``by``...).

    Rows are ordered by ``(duration_days, censored)`` within each ``by`` group; the result
    adds ``at_risk`` (visits still in the stage, this one included), ``log_factor``
    (``log(1 - 1/at_risk)`` for an exit, 0 for a censored visit) and ``log_survival`` (the
    running sum of ``log_factor``: survival just after this row is its exponential).
    """
    import narwhals as nw  # noqa: PLC0415

    from stagegate.analytics._table import group_starts, running, sorts_in_memory  # noqa: PLC0415

    order = ["duration_days", "censored"]
    exited = ~nw.col("censored")
    factor = (
        nw.when(~exited)
        .then(nw.lit(0.0))
        .when(nw.col("at_risk") <= 1)
        .then(nw.lit(_NEG))
        .otherwise((1 - 1 / nw.col("at_risk").clip(lower_bound=2)).log())
    )
    keyed = visits.with_columns(one=nw.lit(1, nw.Int64))
    if sorts_in_memory(visits):
        ordered = keyed.collect().sort(*by, *order)
        ordered = ordered.with_columns(first=group_starts(list(by)))
        ranked = ordered.with_columns(
            at_risk=nw.col("one").sum().over(*by) - running("one", "first") + 1
        )
        ranked = ranked.with_columns(log_factor=factor)
        return ranked.with_columns(log_survival=running("log_factor", "first")).lazy()
    # narwhals' cum_count over an ordered window is wrong on pandas: sum ones instead
    windowed = keyed.with_columns(
        at_risk=nw.col("one").sum().over(*by)
        - nw.col("one").cum_sum().over(*by, order_by=order)
        + 1,
    ).with_columns(log_factor=factor)
    return windowed.with_columns(
        log_survival=nw.col("log_factor").cum_sum().over(*by, order_by=order)
    )


def km_median_frame(visits: nw.LazyFrame[Any], by: Sequence[str]) -> nw.LazyFrame[Any]:
    """Kaplan-Meier median of ``duration_days`` per group, in narwhals expressions.

    ``visits`` needs ``duration_days`` and ``censored`` and the ``by`` columns; the result has
    ``by`` and ``km_median_days``.
    """
    import narwhals as nw  # noqa: PLC0415

    curve = risk_sets(visits.select(*by, "duration_days", "censored"), by)
    return (
        curve.filter(~nw.col("censored") & (nw.col("log_survival").exp() <= HALF))
        .group_by(*by)
        .agg(nw.col("duration_days").min().alias("km_median_days"))
    )
