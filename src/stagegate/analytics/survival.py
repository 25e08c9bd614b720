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

    from stagegate.analytics.outcomes import Outcomes

__all__ = [
    "HALF",
    "HALF_WEIGHT",
    "MASK_BITS",
    "clock_visits",
    "deal_clock_frame",
    "deal_clock_python",
    "dwell_order",
    "dwell_us",
    "follow_up_counts",
    "km_curve",
    "km_median",
    "km_medians",
    "reached_expr",
    "risk_sets",
    "weighted_median",
    "weighted_visits",
]

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


MASK_BITS = 62
"""Open stages per reached-stage mask column (bits of a non-negative 64-bit integer)."""


def deal_clock_frame(
    visits: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes, *, ids: bool = False
) -> nw.LazyFrame[Any]:
    """The closed deals of a frame of visits: ``won`` and ``weight`` (and ``opportunity_id``).

    The same weights as :func:`deal_clock_python`. The count of deals followed at least a
    closed deal's age is a running count over every deal's follow-up and every closed deal's
    age, sorted together by one integer key: values descending, a follow-up before an age
    equal to it.

    Columns ``reached_0``, ``reached_1``, ... hold which open stages the deal entered (bit
    ``i % MASK_BITS`` of column ``i // MASK_BITS`` for the ``i``-th open stage, see
    :func:`reached_expr`), so the sums per stage need no join back to the visits.
    """
    import narwhals as nw  # noqa: PLC0415

    from stagegate.analytics._table import by_code, with_stage_groups  # noqa: PLC0415

    needed = ["opportunity_id", "step", "visit", "stage", "entered_us", "exited_us"]
    positions = {s: i for i, s in enumerate(outcomes.stages)}
    chunks = _chunks([positions[s] for s in outcomes.open])
    bits = {
        f"reached_{k}": nw.when(nw.col("visit") == 1)
        .then(by_code("group", {2**i: [p] for i, p in enumerate(chunk)}))
        .otherwise(nw.lit(0))
        .cast(nw.Int64)
        for k, chunk in enumerate(chunks)
    }
    won = [positions[s] for s in outcomes.won]
    closed = [positions[s] for s in (*outcomes.won, *outcomes.lost)]
    coded = with_stage_groups(visits.select(needed), {"group": "stage"}, outcomes.stages)
    final = _final_code(won, closed)
    if sorts_in_memory(coded):
        eager = coded.collect()
        if _by_deal_and_step(eager):
            named = "opportunity_id" if ids else None
            return _clock_in_order(eager, as_of, bits, final, named).lazy()
    deals = (
        coded.with_columns(
            final=nw.when(nw.col("exited_us").is_null()).then(final).otherwise(nw.lit(0)), **bits
        )
        .group_by("opportunity_id")
        .agg(
            nw.col("entered_us").min().alias("opened"),
            nw.col("entered_us").max().alias("last"),
            nw.col("final").max(),
            *(nw.col(name).sum() for name in bits),
        )
    )
    total = int(deals.select(nw.len()).collect().item())
    follow = deals.select(
        "opportunity_id",
        *bits,
        key=(nw.col("opened") - as_of) * 2,  # -(as_of - opened), doubled: follow-ups even
        final=nw.lit(0, nw.Int64),
        one=nw.lit(1, nw.Int64),
    )
    ages = deals.filter(nw.col("final") != 0).select(
        "opportunity_id",
        *bits,
        key=(nw.col("opened") - nw.col("last")) * 2 + 1,  # ages odd: after equal follow-ups
        final=nw.col("final").cast(nw.Int64),
        one=nw.lit(0, nw.Int64),
    )
    both = nw.concat([follow, ages], how="vertical")
    counted = both.with_columns(followed=nw.col("one").cum_sum().over(order_by="key"))
    return counted.filter(nw.col("final") != 0).select(
        *(["opportunity_id"] if ids else []),
        *bits,
        won=nw.col("final") == 1,
        weight=nw.lit(float(total)) / nw.col("followed"),
    )


def _by_deal_and_step(visits: nw.DataFrame[Any]) -> bool:
    """Whether each deal's visits come in one run, by step (as the in-memory path makes them)."""
    import narwhals as nw  # noqa: PLC0415

    step, opp = nw.col("step"), nw.col("opportunity_id")
    follows = (opp == opp.shift(1)) & (step == step.shift(1) + 1)
    ok = (step == 1) | follows.fill_null(value=False)
    return bool(visits.select(ok.all()).item()) if len(visits) else True


def _clock_in_order(
    visits: nw.DataFrame[Any],
    as_of: int,
    bits: dict[str, nw.Expr],
    final: nw.Expr,
    key: str | None,
) -> nw.DataFrame[Any]:
    """:func:`deal_clock_frame` of visits by deal and step: positions, no grouping.

    A closed deal's last visit is its terminal one, ``step - 1`` rows below its first: its
    opening instant is read at that position, and the stages it reached are the difference
    of running sums of the stage bits at the two ends.
    """
    import narwhals as nw  # noqa: PLC0415

    first_rows = visits.filter(nw.col("step") == 1)
    follow = first_rows.select(follow=as_of - nw.col("entered_us")).get_column("follow")
    total = len(follow)
    named = [key] if key is not None else []
    ends = (
        visits.with_row_index("index")
        .filter(nw.col("exited_us").is_null())
        .with_columns(final=final)
        .filter(nw.col("final") != 0)
        .select(
            *named,
            "entered_us",
            won=nw.col("final") == 1,
            last=nw.col("index"),
            start=nw.col("index") - nw.col("step") + 1,
        )
    )
    entered = visits.get_column("entered_us")
    start = ends.get_column("start")
    ages = ends.get_column("entered_us") - entered[start]
    columns = {"age": ages}
    if bits:
        sums = visits.select(**{name: expr.cum_sum() for name, expr in bits.items()})
        last, before = ends.get_column("last"), (start - 1).clip(lower_bound=0)
        empty = start == 0
        for name in bits:
            running = sums.get_column(name)
            high, low = running[last], running[before]
            columns[name] = high - low.zip_with(~empty, low * 0)
    shorter = _count_below(follow.sort(), ages)
    result = ends.select(*named, "won").with_columns(
        **{name: _aligned(series, ends) for name, series in columns.items()},
        shorter=_aligned(shorter, ends),
    )
    return result.select(
        *named,
        *bits,
        "won",
        weight=nw.lit(float(total)) / (nw.lit(total) - nw.col("shorter")),
    )


def _aligned(series: nw.Series[Any], frame: nw.DataFrame[Any]) -> nw.Series[Any]:
    """``series`` with the row labels of ``frame`` (pandas aligns columns by label)."""
    import narwhals as nw  # noqa: PLC0415

    if series.implementation.is_pandas_like():
        native = series.to_native().set_axis(frame.to_native().index)
        aligned: nw.Series[Any] = nw.from_native(native, series_only=True)
        return aligned
    return series


def _count_below(ordered: nw.Series[Any], values: nw.Series[Any]) -> nw.Series[Any]:
    """For each value, how many of the sorted ``ordered`` are below it (a binary search)."""
    import narwhals as nw  # noqa: PLC0415

    native = ordered.to_native()
    if ordered.implementation.is_polars():
        found = native.search_sorted(values.to_native(), side="left").cast(int)
    else:  # pandas-like: its values are NumPy arrays
        found = native.__class__(
            native.to_numpy().searchsorted(values.to_numpy(), side="left"),
            index=values.to_native().index,
        )
    result: nw.Series[Any] = nw.from_native(found, series_only=True).alias("shorter")
    return result


def weighted_visits(
    coded: nw.DataFrame[Any], as_of: int, outcomes: Outcomes
) -> nw.DataFrame[Any] | None:
    """The visits of closed deals to open stages, weighted, from visits by deal and step.

    ``coded``: visits with ``group`` (stage position), in memory. ``None`` unless each deal's
    visits come in one run by step, with its last visit (and only that one) still running
    (as the in-memory path makes them): then each deal has one first row and one last row,
    in the same order, and :func:`deal_clock_frame`'s weights are worked out once per deal
    (one sort of the follow-ups, one binary search of the ages) and read back by position.
    Columns ``group``, ``won``, ``dwell_us`` and ``weight``.
    """
    import narwhals as nw  # noqa: PLC0415

    step, opp, exited = nw.col("step"), nw.col("opportunity_id"), nw.col("exited_us")
    follows = ((opp == opp.shift(1)) & (step == step.shift(1) + 1)).fill_null(value=False)
    last = (step.shift(-1) == 1).fill_null(value=True)
    ok = ((step == 1) | follows) & (exited.is_null() == last)
    if len(coded) and not bool(coded.select(ok.all()).item()):
        return None
    positions = {s: i for i, s in enumerate(outcomes.stages)}
    won = [positions[s] for s in outcomes.won]
    closed = [positions[s] for s in (*outcomes.won, *outcomes.lost)]
    open_positions = [positions[s] for s in outcomes.open]
    # each step selects its few columns first: a filter copies every column it keeps
    firsts = coded.select("entered_us", "step").filter(step == 1)
    opened = firsts.get_column("entered_us")  # one per deal, in order
    ends = (
        coded.select("entered_us", "exited_us", "group")
        .filter(exited.is_null())
        .select("entered_us", final=_final_code(won, closed))
    )
    ends = ends.with_columns(age=nw.col("entered_us") - _aligned(opened, ends))
    follow = (opened * -1 + as_of).sort()
    total = len(follow)
    ends = ends.with_columns(shorter=_aligned(_count_below(follow, ends.get_column("age")), ends))
    by_deal = ends.select(
        won=nw.col("final") == 1,
        weight=nw.when(nw.col("final") != 0)
        .then(nw.lit(float(total)) / (nw.lit(total) - nw.col("shorter")))
        .otherwise(nw.lit(0.0)),
    )
    rows = (
        coded.select("step", "group", "entered_us", "exited_us")
        .with_columns(deal=(step == 1).cast(nw.Int64).cum_sum() - 1)
        .filter(nw.col("group").is_in(open_positions) & ~exited.is_null())
        .select("deal", "group", dwell_us=exited - nw.col("entered_us"))
    )
    at = rows.get_column("deal")
    picked = rows.select("group", "dwell_us").with_columns(
        **{name: _aligned(by_deal.get_column(name)[at], rows) for name in ("won", "weight")}
    )
    return picked.filter(nw.col("weight") > 0)


def clock_visits(frame: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes) -> nw.LazyFrame[Any]:
    """The visits of closed deals to open stages, with their deal's weight.

    Columns ``group`` (stage position), ``won``, ``dwell_us`` and ``weight`` (see
    :func:`deal_clock_frame`). In memory, with the visits by deal and step, the weights are
    read by position (see :func:`weighted_visits`) instead of joined by id.
    """
    import narwhals as nw  # noqa: PLC0415

    from stagegate.analytics._table import with_stage_groups  # noqa: PLC0415

    positions = {s: i for i, s in enumerate(outcomes.stages)}
    open_positions = [positions[s] for s in outcomes.open]
    needed = ["opportunity_id", "step", "stage", "entered_us", "exited_us"]
    coded = with_stage_groups(frame.select(needed), {"group": "stage"}, outcomes.stages)
    chosen = nw.col("group").is_in(open_positions) & ~nw.col("exited_us").is_null()
    dwell = nw.col("exited_us") - nw.col("entered_us")
    if sorts_in_memory(coded):
        weighted = weighted_visits(coded.collect(), as_of, outcomes)
        if weighted is not None:
            return weighted.lazy()
    weights_lazy = deal_clock_frame(frame, as_of, outcomes, ids=True)
    visits = coded.filter(chosen).select("opportunity_id", "group", dwell_us=dwell)
    return visits.join(
        weights_lazy.select("opportunity_id", "won", "weight"), on="opportunity_id", how="inner"
    ).select("group", "won", "dwell_us", "weight")


def _final_code(won: list[int], closed: list[int]) -> nw.Expr:
    from stagegate.analytics._table import by_code  # noqa: PLC0415

    return by_code("group", {1: won, 2: [p for p in closed if p not in won]})


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + MASK_BITS] for i in range(0, len(items), MASK_BITS)]


def reached_expr(index: int) -> nw.Expr:
    """Whether a deal of :func:`deal_clock_frame` entered open stage ``index``."""
    import narwhals as nw  # noqa: PLC0415

    bit = 2 ** (index % MASK_BITS)
    reached: nw.Expr = (nw.col(f"reached_{index // MASK_BITS}") // bit) % 2 == 1
    return reached


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
