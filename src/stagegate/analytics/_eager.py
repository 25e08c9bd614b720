"""The in-memory kernel (Polars, pandas): at most one sort, then shifts and positions.

Where a lazy engine orders a window per deal, an in-memory frame is sorted once (rows already
in order, as CRM exports and :meth:`~stagegate.store.EventStore.to_frame` usually are, are not
sorted again) and neighbours are compared with plain shifts. Risk sets are one sort of one
integer key, each group then a run of the sorted rows; the deal clock's weights are worked out
once per deal and read back by position. Slices of whole deals, and runs of one group, are
worked on in threads (:func:`~stagegate.analytics._table.in_threads`).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import narwhals as nw

from stagegate.analytics._emit import collect_rows
from stagegate.analytics._table import (
    DAY_US,
    KIND_CODE,
    ORDER,
    by_code,
    check_known,
    enum_codes,
    epoch_us_expr,
    group_starts,
    in_threads,
    not_before,
    running,
    with_stage_codes,
)
from stagegate.analytics.outcomes import KINDS, Outcomes
from stagegate.analytics.survival import (
    HALF_WEIGHT,
    dwell_order,
    emptied,
    factor_expr,
    final_code,
    km_medians,
)

__all__ = ["EAGER", "SLICE_ROWS", "VISIT_SHIFTS", "EagerKernel"]

KEY_LIMIT = 2**62
"""Sort keys packed into one integer stay below this (else two columns are sorted)."""

# -- stage visits ---------------------------------------------------------------------------


VISIT_SHIFTS = 12
"""Up to this many entries per opportunity, visits are numbered by comparing shifted rows."""


def sorted_intervals(rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int) -> nw.LazyFrame[Any]:
    """:meth:`EagerKernel.intervals`: at most one sort, then plain shifts.

    ``rows`` may still hold rows after ``as_of``. Rows already ordered by
    ``(opportunity_id, at, seq, stage order)``, as CRM exports and
    :meth:`~stagegate.store.EventStore.to_frame` usually are, are not sorted again; then the
    rows after ``as_of`` (the tail of each opportunity) are dropped in the same pass that
    keeps the stage entries. Stages are compared by their integer rank, never by name.
    """
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
    numbered = by_rank.with_columns(visit=running("one", "stage_first"))
    return numbered.sort("opportunity_id", "step").lazy()  # visits stay in step order


def _finish_visits(entries: nw.LazyFrame[Any], as_of: int) -> nw.LazyFrame[Any]:
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


# -- risk sets and time in stage ------------------------------------------------------------


def _sorted_risk_sets(visits: nw.LazyFrame[Any], tag: tuple[str, int] | None) -> nw.LazyFrame[Any]:
    """:meth:`EagerKernel.risk_sets`: one sort, by one integer key (group, then order).

    The key carries the group, the dwell, the censoring and the ``tag``; only it is made and
    sorted. Each group is then a run of the sorted keys, worked on as a slice of its own:
    its visits at risk are its size less the row's position, and its running sums need no
    restart.
    """
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
    wide = (int(high) + 1) * span * tag_span >= KEY_LIMIT
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
        return part.with_columns(emptied=emptied(), log_survival=factor_expr().cum_sum())

    parts = in_threads(work, runs)
    return nw.concat(parts).lazy()


def _small(span: int) -> Any:
    """The narrowest signed integer type for values ``0 <= value < span``."""
    for dtype, limit in ((nw.Int8, 2**7), (nw.Int16, 2**15), (nw.Int32, 2**31)):
        if span <= limit:
            return dtype
    return nw.Int64


def _aligned(series: nw.Series[Any], frame: nw.DataFrame[Any]) -> nw.Series[Any]:
    """``series`` with the row labels of ``frame`` (pandas aligns columns by label)."""
    if series.implementation.is_pandas_like():
        native = series.to_native().set_axis(frame.to_native().index)
        aligned: nw.Series[Any] = nw.from_native(native, series_only=True)
        return aligned
    return series


def _count_below(ordered: nw.Series[Any], values: nw.Series[Any]) -> nw.Series[Any]:
    """For each value, how many of the sorted ``ordered`` are below it (a binary search)."""
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
    in the same order, and the weights are worked out once per deal (one sort of the
    follow-ups, one binary search of the ages) and read back by position. Columns
    ``group``, ``first``, ``dwell_us``, ``won`` and ``weight``.
    """
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
        .select("entered_us", final=final_code(won, closed))
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
        coded.select("step", "visit", "group", "entered_us", "exited_us")
        .with_columns(deal=(step == 1).cast(nw.Int64).cum_sum() - 1)
        .filter(nw.col("group").is_in(open_positions) & ~exited.is_null())
        .select("deal", "group", first=nw.col("visit") == 1, dwell_us=exited - nw.col("entered_us"))
    )
    at = rows.get_column("deal")
    picked = rows.select("group", "first", "dwell_us").with_columns(
        **{name: _aligned(by_deal.get_column(name)[at], rows) for name in ("won", "weight")}
    )
    return picked.filter(nw.col("weight") > 0)


def _sorted_stats(visits: Any, stages: Sequence[str]) -> dict[tuple[str, str], Any]:
    """:meth:`EagerKernel.dwell_stats`: every figure read off the one risk-set sort.

    There the visits of a stage come in one run, ordered by dwell: its quantiles are values
    at known positions, and an outcome's visits are the rows of the run that carry it.
    """
    lazy = _sorted_risk_sets(
        visits.select("group", "dwell_us", "censored", "final"), ("final", len(KINDS))
    )
    ranked = lazy.collect()
    km = {r["group"]: r["km_median_days"] for r in collect_rows(km_medians(ranked.lazy()))}
    runs, start = [], 0
    for group, size in sorted(ranked.group_by("group").agg(nw.len()).rows()):
        runs.append((group, ranked[start : start + size].select("final", "censored", "dwell_us")))
        start += size

    def summaries(run: tuple[int, Any]) -> dict[tuple[str, str], Any]:
        group, rows = run
        found = {(stages[group], "all"): _ordered_summary(rows) | {"km_median_days": km.get(group)}}
        for code, outcome in enumerate(KINDS):
            of_outcome = rows.filter(nw.col("final") == code)
            if len(of_outcome):
                found[stages[group], outcome] = _ordered_summary(of_outcome)
        return found

    stats: dict[tuple[str, str], Any] = {}
    for found in in_threads(summaries, runs):
        stats.update(found)
    return stats


def _ordered_summary(run: Any) -> dict[str, Any]:
    """Count, censored, mean and quantiles (in days) of visits ordered by ``dwell_us``."""
    dwell = run.get_column("dwell_us")
    n = len(dwell)

    def at(q: float) -> float:
        position = q * (n - 1)
        low = math.floor(position)
        high = min(low + 1, n - 1)
        value, upper = float(dwell.item(low)), float(dwell.item(high))
        return (value + (position - low) * (upper - value)) / DAY_US

    return {
        "visits": n,
        "censored": int(run.get_column("censored").sum()),
        "mean_days": float(dwell.mean()) / DAY_US,
        "median_days": at(0.5),
        "p75_days": at(0.75),
        "p90_days": at(0.9),
    }


def _sorted_clock_medians(joined: Any, outcomes: Outcomes) -> dict[tuple[str, str], float]:
    """:meth:`EagerKernel.clock_medians`: one sort, then each run on its own.

    One integer key (stage, outcome, dwell) is sorted with the weights; each (stage, outcome)
    is then a run of the sorted rows, whose median is the first row where the running weight
    reaches half the run's total.
    """
    if not len(joined):
        return {}
    longest = joined.select(nw.col("dwell_us").max()).item()
    span = int(longest or 0) + 1
    code = nw.col("group").cast(nw.Int64) * 2 + nw.col("won").cast(nw.Int64)
    if (len(outcomes.stages) * 2 + 2) * span < KEY_LIMIT:  # one integer key sorts fastest
        ordered = joined.select("weight", key=code * span + nw.col("dwell_us")).sort("key")
        key = nw.col("key")  # no modulo: pyarrow-backed pandas has none
        ordered = ordered.with_columns(dwell_us=key - key // span * span)
    else:
        ordered = joined.select("dwell_us", "weight", key=code).sort("key", "dwell_us")
    sizes = sorted(joined.group_by("group", "won").agg(nw.len()).rows())
    runs, start = [], 0
    for group, won, size in sizes:
        runs.append(((int(group), bool(won)), ordered[start : start + int(size)]))
        start += int(size)

    def median(run: tuple[tuple[int, bool], Any]) -> tuple[tuple[str, str], float | None]:
        (group, won), rows = run
        total = float(rows.get_column("weight").sum())
        reached = rows.with_columns(running=nw.col("weight").cum_sum()).filter(
            nw.col("running") >= total * HALF_WEIGHT
        )
        name = (outcomes.stages[group], "won" if won else "lost")
        return name, float(reached.item(0, "dwell_us")) / DAY_US if len(reached) else None

    return {name: value for name, value in in_threads(median, runs) if value is not None}


class EagerKernel:
    """The kernel of in-memory frames: see the module's docstring."""

    def intervals(
        self, rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int
    ) -> nw.LazyFrame[Any]:
        """Stage visits by at most one sort and plain shifts (see :func:`sorted_intervals`)."""
        return sorted_intervals(rows, outcomes, as_of)

    def keep(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Collected: the next reads start from rows in memory."""
        return frame.collect().lazy()

    def stage_groups(
        self, frame: nw.LazyFrame[Any], codes: Mapping[str, str], outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """On Polars by an ``Enum`` of the stages, lazily; elsewhere one lookup per row."""
        if frame.implementation.is_polars():
            # lazily: a column added to an eager frame of many chunks copies the frame
            native = enum_codes(frame.to_native(), codes, outcomes.stages)
            coded: nw.LazyFrame[Any] = nw.from_native(native)
            return coded
        return with_stage_codes(frame.collect(), codes, outcomes.stages).lazy()

    def risk_sets(
        self, visits: nw.LazyFrame[Any], *, tag: tuple[str, int] | None = None
    ) -> nw.LazyFrame[Any]:
        """One sort of one integer key (see :func:`_sorted_risk_sets`)."""
        return _sorted_risk_sets(visits, tag)

    def weighted(
        self, visits: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """Weights per deal read back by position (see :func:`weighted_visits`).

        Visits not by deal and step (a frame of visits built elsewhere) are sorted so first;
        should they still not fit (a deal with two running visits) the lazy kernel's joins
        do the work.
        """
        key = (id(visits), as_of)
        found = _WEIGHTED.get(key)
        if found is not None and found[0]() is visits and found[1] == outcomes:
            return found[2]  # type: ignore[no-any-return]
        done = self._weighted(visits, as_of, outcomes)
        forget = _WEIGHTED.pop  # bound now: at exit the module's names may be gone
        _WEIGHTED[key] = (weakref.ref(visits, lambda _: forget(key, None)), outcomes, done)
        return done

    def _weighted(
        self, visits: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        needed = ["opportunity_id", "step", "visit", "stage", "entered_us", "exited_us"]
        try:  # pandas refuses an unknown stage here, Polars when collecting
            coded = self.stage_groups(visits.select(needed), {"group": "stage"}, outcomes)
            eager = coded.collect()
        except nw.exceptions.InvalidOperationError:
            check_known(visits, {"group": "stage"}, outcomes)
            raise
        done = weighted_visits(eager, as_of, outcomes)
        if done is None:
            done = weighted_visits(eager.sort("opportunity_id", "step"), as_of, outcomes)
        if done is None:  # pragma: no cover - not a frame of visits stage_intervals makes
            from stagegate.analytics._lazy import LAZY  # noqa: PLC0415

            return LAZY.weighted(visits, as_of, outcomes)
        return done.lazy()

    def dwell_stats(
        self, visits: nw.LazyFrame[Any], stages: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Every figure read off the one risk-set sort (see :func:`_sorted_stats`)."""
        return _sorted_stats(visits, stages)

    def clock_medians(
        self, weighted: nw.LazyFrame[Any], outcomes: Outcomes
    ) -> dict[tuple[str, str], float]:
        """One sort of one integer key, then each run on its own."""
        return _sorted_clock_medians(weighted.collect(), outcomes)


_WEIGHTED: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
"""The deal clock's table, computed once per in-memory frame of visits (by ``id``)."""

EAGER = EagerKernel()
