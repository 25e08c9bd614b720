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

from stagegate.analytics._table import DAY_US, in_threads, sorts_in_memory

if TYPE_CHECKING:
    import narwhals as nw

__all__ = ["HALF", "dwell_order", "dwell_us", "km_curve", "km_median", "km_medians", "risk_sets"]

HALF = 0.5 + 1e-9
"""Survival at or below this counts as "half have left" (tolerates float rounding)."""
_NEG = -1e9
_KEY_LIMIT = 2**62


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
    import narwhals as nw  # noqa: PLC0415

    if sorts_in_memory(visits):
        return _sorted_risk_sets(visits, tag)
    kept = [tag[0]] if tag is not None else []
    # narwhals' cum_count over an ordered window is wrong on pandas: sum ones instead
    windowed = visits.select(
        "group",
        "censored",
        *kept,
        order=dwell_order(),
        one=nw.lit(1, nw.Int64),
    ).with_columns(
        dwell_us=nw.col("order") // 2,
        at_risk=nw.col("one").sum().over("group")
        - nw.col("one").cum_sum().over("group", order_by="order")
        + 1,
    )
    windowed = windowed.with_columns(log_factor=_factor(), emptied=_emptied())
    windowed = windowed.with_columns(
        log_survival=nw.col("log_factor").cum_sum().over("group", order_by="order")
    )
    return windowed.drop("order", "one", "log_factor")


def _emptied() -> nw.Expr:
    import narwhals as nw  # noqa: PLC0415

    return ~nw.col("censored") & (nw.col("at_risk") <= 1)


def _factor() -> nw.Expr:
    import narwhals as nw  # noqa: PLC0415

    return (
        nw.when(nw.col("censored") | (nw.col("at_risk") <= 1))
        .then(nw.lit(0.0))
        .otherwise((1 - 1 / nw.col("at_risk").clip(lower_bound=2)).log())
    )


def _sorted_risk_sets(visits: nw.LazyFrame[Any], tag: tuple[str, int] | None) -> nw.LazyFrame[Any]:
    """:func:`risk_sets` in memory: one sort, by one integer key (group, then order).

    The key carries the group, the dwell, the censoring and the ``tag``; only it is made and
    sorted. Each group is then a run of the sorted keys, worked on as a slice of its own:
    its visits at risk are its size less the row's position, and its running sums need no
    restart.
    """
    import narwhals as nw  # noqa: PLC0415

    tag_name, tag_span = tag if tag is not None else ("", 1)
    bounds = visits.select(nw.col("group").max(), dwell_order().max())
    high, longest = bounds.collect().row(0)
    sizes = dict(visits.group_by("group").agg(nw.len()).collect().rows())
    kept = [tag_name] if tag is not None else []
    if not sizes:  # nothing at risk (and pandas' max of nothing is not a number)
        return visits.select(
            "group", "censored", *kept, "dwell_us", at_risk=nw.lit(1),
            emptied=nw.col("censored"), log_survival=nw.lit(0.0),
        )  # fmt: skip
    span = int(longest) + 1
    group = nw.col("group").cast(nw.Int64)
    wide = (int(high) + 1) * span * tag_span >= _KEY_LIMIT
    if wide:  # too wide for one integer: sort by two columns
        pairs = visits.select(group.alias("group"), dwell_order().alias("order"), *kept)
        ordered = pairs.collect().sort("group", "order")
    else:
        key = group * span + dwell_order()
        if tag is not None:
            key = key * tag_span + nw.col(tag_name).cast(nw.Int64).fill_null(value=0)
        ordered = visits.select(key.alias("key")).collect().sort("key")
    runs, start = [], 0
    for g in sorted(sizes):
        runs.append((g, ordered[start : start + int(sizes[g])]))
        start += int(sizes[g])
    group_type = _small(int(high) + 1)

    def work(run: tuple[int, nw.DataFrame[Any]]) -> nw.DataFrame[Any]:
        g, part = run
        columns = {"order": nw.col("order"), **{name: nw.col(name) for name in kept}}
        if not wide:  # read the order (and the tag) back from the key
            rest = nw.col("key") // tag_span
            columns["order"] = rest - g * span
            if tag is not None:
                columns[tag_name] = (nw.col("key") - rest * tag_span).cast(_small(tag_span))
        order = columns.pop("order")
        part = part.with_row_index("index").select(
            **columns,
            group=nw.lit(g, group_type),
            dwell_us=order // 2,
            censored=order != (order // 2) * 2,
            at_risk=nw.lit(len(part), nw.UInt32) - nw.col("index"),  # index: UInt32 on Polars
        )
        return part.with_columns(emptied=_emptied(), log_survival=_factor().cum_sum())

    parts = in_threads(work, runs)
    return nw.concat(parts).lazy()


def _small(span: int) -> Any:
    """The narrowest signed integer type for values ``0 <= value < span``."""
    import narwhals as nw  # noqa: PLC0415

    for dtype, limit in ((nw.Int8, 2**7), (nw.Int16, 2**15), (nw.Int32, 2**31)):
        if span <= limit:
            return dtype
    return nw.Int64


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
