"""Funnel and conversion: how many deals reach each stage, and where they are lost and why.

Rows are the open stages and then the won stage(s), in process order (lost stages are where
deals leave, reported in ``losses``). Two counts per stage:

- ``reached``: deals that ever entered the stage, by any path (skips, backward moves and
  re-entries included; a deal counts once per stage);
- ``reached_in_order``: deals that entered the first funnel stage and then every later one in
  process order, each entry after the previous one; any entry counts, not only the first (a
  deal going lead, proposal, demo, proposal reached proposal in order through its second
  entry), and a skipped stage stops the deal's in-order path there.

``conversion`` is ``reached`` of the next row over ``reached`` of this row (and
``conversion_in_order`` the same for the in-order counts, never above 1). ``lost_here``
counts the *deals* lost from this stage (the stage left when entering a lost stage), each
deal once per stage however often it was lost from it; ``losses_here`` counts the losses
themselves (a deal lost, reopened and lost again from the stage counts twice there).
``open_here`` counts the deals in the stage at ``as_of``. ``losses`` breaks the losses down
by stage and recorded reason, in deals and in losses.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "a", "at": t(2), "stage": "demo"},
...     {"opportunity_id": "a", "at": t(3), "stage": "won"},
...     {"opportunity_id": "b", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "b", "at": t(2), "stage": "won"},
...     {"opportunity_id": "c", "at": t(1), "stage": "lead"},
...     {"opportunity_id": "c", "at": t(4), "stage": "lost", "reason": "price"},
... ]
>>> f = funnel(rows, kinds, as_of=t(9))
>>> [(r.stage, r.reached, r.reached_in_order, r.lost_here) for r in f.stages]
[('lead', 3, 3, 1), ('demo', 1, 1, 0), ('won', 2, 1, 0)]
>>> [(r.stage, r.reason, r.deals) for r in f.losses]
[('lead', 'price', 1)]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import is_eager
from stagegate.analytics.intervals import StageInterval, coded_visits, prepare
from stagegate.analytics.outcomes import Outcomes, OutcomesLike

__all__ = ["Funnel", "FunnelStage", "LossReason", "funnel"]


@attrs.frozen(slots=True)
class FunnelStage:
    """One funnel row (with ``by=``: its ``segment``, ``deals`` entered under it, ``small``)."""

    stage: str
    reached: int
    reached_rate: float | None
    conversion: float | None
    reached_in_order: int
    conversion_in_order: float | None
    lost_here: int
    open_here: int
    losses_here: int
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    deals: int | None = attrs.field(default=None, metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen(slots=True)
class LossReason:
    """Deals lost from ``stage`` with a given ``reason`` (``None``: no reason recorded).

    ``deals`` counts each deal once; ``losses`` counts each loss (a deal lost, reopened and
    lost again from the same stage with the same reason counts twice there). With ``by=``,
    ``segment`` and ``small`` (fewer than 30 deals of the segment entered ``stage``).
    """

    stage: str
    reason: str | None
    deals: int
    losses: int
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class Funnel:
    """Result of :func:`funnel`.

    Attributes:
        stages: one row per funnel stage (:class:`FunnelStage` columns).
        losses: deals lost by stage and reason (:class:`LossReason` columns).
        deals: the number of opportunities.
    """

    stages: Any
    losses: Any
    deals: int

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


def _positions(outcomes: Outcomes) -> dict[str, int]:
    opens = outcomes.open
    pos = {s: i for i, s in enumerate(opens)}
    pos.update(dict.fromkeys(outcomes.won, len(opens)))
    return pos


Counts = tuple[
    dict[str, int],
    dict[str, int],
    dict[tuple[str, str | None], tuple[int, int]],
    dict[str, int],
    dict[str, int],
    int,
]
"""reached, reached in order, (deals, losses) by (stage, reason), deals lost by stage, open
by stage, deals."""


def _python_counts(visits: list[StageInterval], outcomes: Outcomes) -> Counts:
    pos = _positions(outcomes)
    entries: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    reached: dict[str, int] = defaultdict(int)
    losses: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [set(), 0])
    lost_deals: dict[str, set[str]] = defaultdict(set)
    open_here: dict[str, int] = defaultdict(int)
    deals = set()
    for v in visits:
        deals.add(v.opportunity_id)
        if v.censored:
            open_here[v.stage] += 1
        if v.kind == "lost" and v.from_stage is not None:
            counted = losses[v.from_stage, v.reason]
            counted[0].add(v.opportunity_id)
            counted[1] += 1
            lost_deals[v.from_stage].add(v.opportunity_id)
        if v.stage in pos:
            reached[v.stage] += v.visit == 1
            entries[v.opportunity_id].append((v.step, pos[v.stage], v.stage))
    strict: dict[str, int] = defaultdict(int)
    for items in entries.values():
        level = -1  # the deepest funnel position reached in order so far
        for _, p, stage in sorted(items):
            if p == level + 1:
                strict[stage] += 1
                level = p
    return (
        dict(reached),
        dict(strict),
        {key: (len(ids), n) for key, (ids, n) in losses.items()},
        {s: len(ids) for s, ids in lost_deals.items()},
        dict(open_here),
        len(deals),
    )


def _frame_counts(frame: Any, outcomes: Outcomes) -> Counts:
    import narwhals as nw  # noqa: PLC0415

    if is_eager(frame):
        in_memory = _eager_counts(frame, outcomes)
        if in_memory is not None:
            return in_memory
    pos = _positions(outcomes)
    opp = "opportunity_id"
    counted = collect_rows(
        frame.filter((nw.col("visit") == 1) & nw.col("stage").is_in(list(pos)))
        .group_by("stage")
        .agg(nw.col("visit").count().alias("reached"))
    )
    strict = _frame_in_order(frame, outcomes)
    lost = frame.filter((nw.col("kind") == "lost") & ~nw.col("from_stage").is_null())
    losses = collect_rows(
        lost.group_by("from_stage", "reason").agg(
            nw.col(opp).n_unique().alias("deals"), nw.col("visit").count().alias("n")
        )
    )
    lost_deals = collect_rows(lost.group_by("from_stage").agg(nw.col(opp).n_unique().alias("n")))
    open_here = collect_rows(
        frame.filter(nw.col("censored")).group_by("stage").agg(nw.col("visit").count().alias("n"))
    )
    deals = collect_rows(frame.select(nw.col(opp).n_unique().alias("n")))[0]["n"]
    return (
        {r["stage"]: int(r["reached"]) for r in counted},
        strict,
        {(r["from_stage"], r["reason"]): (int(r["deals"]), int(r["n"])) for r in losses},
        {r["from_stage"]: int(r["n"]) for r in lost_deals},
        {r["stage"]: int(r["n"]) for r in open_here},
        int(deals),
    )


def _eager_counts(frame: Any, outcomes: Outcomes) -> Counts | None:
    """:func:`_frame_counts` of in-memory visits by deal and step, on stage codes.

    One collect of integer and flag columns; reach, open visits and the in-order chains are
    counted on them (see :func:`chain_entries`), only the lost visits are grouped by their
    texts. ``None`` for visits out of that order or with a null id (the joins do the work).
    """
    import narwhals as nw  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415 - every in-memory frame library brings it

    opp, step = nw.col("opportunity_id"), nw.col("step")
    if frame.select(opp.null_count()).collect().item():
        return None
    columns = ["opportunity_id", "group", "step", "visit", "censored", "from_stage", "reason"]
    every = ~nw.col("group").is_null()  # every visit has a stage
    coded = coded_visits(frame, outcomes, every, {"group": "stage"}, columns).collect()
    if not coded.get_column("opportunity_id").is_sorted():  # deals then are runs of rows
        return None
    new_deal = (opp != opp.shift(1)).fill_null(value=True)
    table = coded.select(
        "group",
        "from_stage",
        "reason",
        deal=new_deal.cast(nw.Int64).cum_sum() - 1,
        # each row a later deal than the one above it, or a later step of the same deal
        ahead=new_deal | (step > step.shift(1)).fill_null(value=False),
        first_visit=(nw.col("visit") == 1).fill_null(value=False),
        censored=nw.col("censored").fill_null(value=False),
    )
    if not table.get_column("ahead").all():
        return None
    stages = outcomes.stages
    group = table.get_column("group").to_numpy()
    deal = table.get_column("deal").to_numpy()
    deals = int(deal[-1]) + 1 if len(deal) else 0
    level = np.full(len(stages), -1, dtype=np.int16)  # a stage's funnel position (-1: none)
    for s, p in _positions(outcomes).items():
        level[stages.index(s)] = p
    levels = level[group]
    first = table.get_column("first_visit").to_numpy()
    reached = np.bincount(group[first & (levels >= 0)], minlength=len(stages))
    open_here = np.bincount(group[table.get_column("censored").to_numpy()], minlength=len(stages))
    strict: dict[str, int] = {}
    chains = chain_entries(deal, levels, len(outcomes.open) + bool(outcomes.won), deals)
    for rows in chains:
        for code, n in enumerate(np.bincount(group[rows], minlength=len(stages))):
            if n:
                strict[stages[code]] = int(n)
    lost_codes = [i for i, s in enumerate(stages) if outcomes.kinds[s] == "lost"]
    lost = table.filter(nw.col("group").is_in(lost_codes) & ~nw.col("from_stage").is_null())
    losses = lost.group_by("from_stage", "reason").agg(
        nw.col("deal").n_unique().alias("deals"), nw.len().alias("n")
    )
    lost_deals = lost.group_by("from_stage").agg(nw.col("deal").n_unique().alias("n"))
    return (
        {stages[c]: int(n) for c, n in enumerate(reached) if n},
        strict,
        {
            (r["from_stage"], r["reason"]): (int(r["deals"]), int(r["n"]))
            for r in losses.rows(named=True)
        },
        {r["from_stage"]: int(r["n"]) for r in lost_deals.rows(named=True)},
        {stages[c]: int(n) for c, n in enumerate(open_here) if n},
        deals,
    )


def chain_entries(deal: Any, levels: Any, depth: int, deals: int) -> list[Any]:
    """The rows of each deal's in-order chain, level by level (numpy arrays of row numbers).

    ``deal`` numbers the deals of rows ordered by deal and step (``0 <= deal < deals``),
    ``levels`` is each row's funnel position (negative: none). A chain enters level ``i``
    at the deal's first row of that level after its entry into level ``i - 1``; one pass over
    the rows of each level (``depth`` levels), none over the others.

    >>> import numpy as np
    >>> deal = np.array([0, 0, 0, 0, 1, 1])
    >>> levels = np.array([0, 2, 1, 2, 1, 0])
    >>> [rows.tolist() for rows in chain_entries(deal, levels, 3, 2)]
    [[0, 5], [2], [3]]
    """
    import numpy as np  # noqa: PLC0415

    after = np.full(deals, -1, dtype=np.int64)  # each deal's chain row so far (-1: none yet)
    chains = []
    for here in range(depth):
        rows = np.flatnonzero(levels == here)
        rows = rows[rows > after[deal[rows]]]
        owners = deal[rows]
        rows = rows[np.concatenate(([True], owners[1:] != owners[:-1]))] if len(rows) else rows
        chains.append(rows)
        after = np.full(deals, len(deal), dtype=np.int64)  # no chain row: nothing comes later
        after[deal[rows]] = rows
    return chains


def _frame_in_order(frame: Any, outcomes: Outcomes) -> dict[str, int]:
    """Deals that reached each stage in order: the earliest chain of entries, stage by stage.

    The chain's entry into funnel position ``i`` is the deal's first entry into it after its
    chain entry into position ``i - 1``; one join per position (positions are few).
    """
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    entries = _deal_coded(frame.select(opp, "stage", "step"))
    if entries is not None:  # the joins below match small integers, not the deal ids' text
        opp = "deal"
    else:
        entries = frame.select(opp, "stage", "step")
    chain = None
    pieces = []
    for stage in [*outcomes.open, None]:
        members = [stage] if stage is not None else list(outcomes.won)
        if not members:
            break
        here = entries.filter(nw.col("stage").is_in(members))
        if chain is not None:
            here = here.join(chain, on=opp, how="inner").filter(nw.col("step") > nw.col("t"))
            here = here.drop("t")
        chain = here.group_by(opp).agg(nw.col("step").min().alias("t"))
        if stage is not None:
            pieces.append(chain.select(nw.len().alias("n")).with_columns(stage=nw.lit(stage)))
        else:  # the won stages share the last position: count the stage entered first
            first = here.join(chain, on=opp, how="inner").filter(nw.col("step") == nw.col("t"))
            pieces.append(first.group_by("stage").agg(nw.len().alias("n")))
    counts = nw.concat(
        [p.select(nw.col("stage").cast(nw.String()), nw.col("n").cast(nw.Int64)) for p in pieces]
    )
    return {r["stage"]: int(r["n"]) for r in collect_rows(counts) if r["n"]}


def _deal_coded(entries: Any) -> Any:
    """In-memory visits with ``deal`` (a number per opportunity) for the opportunity id.

    Visits of the in-memory kernel come ordered by opportunity: each deal is then one run and
    numbered by counting where the id changes. ``None`` for a lazy frame, or visits out of
    that order (their ids are matched as they are).
    """
    import narwhals as nw  # noqa: PLC0415

    if not is_eager(entries):
        return None
    eager = entries.collect()
    opp = nw.col("opportunity_id")
    if eager.select(opp.null_count()).item() or eager.select((opp < opp.shift(1)).any()).item():
        return None
    changed = (opp != opp.shift(1)).fill_null(value=True).cast(nw.Int64)
    return eager.select(deal=changed.cum_sum(), stage=nw.col("stage"), step=nw.col("step")).lazy()


def funnel(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Funnel:
    """Reach and stage-to-stage conversion, any path and strictly in order, with losses.

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals`.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the analysis stands at.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): per segment, each deal counted at a stage for the
            segment in force when it first entered that stage (``stages`` rows gain
            ``segment``, ``deals``, ``small``; ``losses`` rows ``segment`` and ``small``; a
            frame gets the segment columns first). See ``docs/analytics.md``.

    Returns:
        :class:`Funnel` with tables in the caller's representation.

    Raises:
        AnalyticsError: the input is unusable.
    """
    if by is not None:
        from stagegate.analytics._by import funnel_by_segment  # noqa: PLC0415

        def run(part: Any) -> Funnel:
            return funnel(part, outcomes, as_of=as_of, assume_zone=assume_zone)

        return funnel_by_segment(  # type: ignore[no-any-return]
            run, data, outcomes, by, as_of=as_of, assume_zone=assume_zone
        )
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    out = prepared.outcomes
    if prepared.python is not None:
        reached, strict, losses, lost_here, open_here, deals = _python_counts(prepared.python, out)
    else:
        reached, strict, losses, lost_here, open_here, deals = _frame_counts(prepared.frame, out)
    losses_here: dict[str, int] = defaultdict(int)
    for (stage, _), (_, n) in losses.items():
        losses_here[stage] += n
    names = [*out.open, *out.won]
    rows = []
    for i, s in enumerate(names):
        after = names[i + 1] if i + 1 < len(out.open) + (1 if out.won else 0) else None
        if s in out.won:
            after = None
        nxt = reached.get(after, 0) if after else None
        here = reached.get(s, 0)
        nxt_strict: int | None
        if s == out.open[-1] and out.won:
            nxt = sum(reached.get(w, 0) for w in out.won)
            nxt_strict = sum(strict.get(w, 0) for w in out.won)
        else:
            nxt_strict = strict.get(after, 0) if after else None
        rows.append(
            FunnelStage(
                s,
                here,
                here / deals if deals else None,
                nxt / here if nxt is not None and here else None,
                strict.get(s, 0),
                nxt_strict / strict[s] if nxt_strict is not None and strict.get(s) else None,
                lost_here.get(s, 0),
                open_here.get(s, 0),
                losses_here.get(s, 0),
            )
        )
    loss_rows = [
        LossReason(s, r, n, visits)
        for (s, r), (n, visits) in sorted(
            losses.items(), key=lambda kv: (out.stages.index(kv[0][0]), kv[0][1] or "")
        )
    ]
    return Funnel(emit(prepared, rows, FunnelStage), emit(prepared, loss_rows, LossReason), deals)
