"""Funnel and conversion: how many deals reach each stage, and where they are lost and why.

Rows are the open stages and then the won stage(s), in process order (lost stages are where
deals leave, reported in ``losses``). Two counts per stage:

- ``reached``: deals that ever entered the stage, by any path (skips, backward moves and
  re-entries included; a deal counts once per stage);
- ``reached_in_order``: deals that entered the first funnel stage and then every later one,
  each for the first time after the previous one (a skip or an out-of-order first entry stops
  the deal's strict path there).

``conversion`` is ``reached`` of the next row over ``reached`` of this row (and
``conversion_in_order`` the same for the strict counts); ``lost_here`` counts the deals lost
from this stage (the stage left when entering a lost stage); ``open_here`` the deals in it at
``as_of``. ``losses`` breaks the losses down by stage and recorded reason.

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
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import collect_rows, emit
from stagegate.analytics._table import by_stage
from stagegate.analytics.intervals import StageInterval, prepare
from stagegate.analytics.outcomes import Outcomes, OutcomesLike

__all__ = ["Funnel", "FunnelStage", "LossReason", "funnel"]


@attrs.frozen(slots=True)
class FunnelStage:
    """One funnel row."""

    stage: str
    reached: int
    reached_rate: float | None
    conversion: float | None
    reached_in_order: int
    conversion_in_order: float | None
    lost_here: int
    open_here: int


@attrs.frozen(slots=True)
class LossReason:
    """Deals lost from ``stage`` with a given ``reason`` (``None``: no reason recorded)."""

    stage: str
    reason: str | None
    deals: int


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


def _positions(outcomes: Outcomes) -> dict[str, int]:
    opens = outcomes.open
    pos = {s: i for i, s in enumerate(opens)}
    pos.update(dict.fromkeys(outcomes.won, len(opens)))
    return pos


def _python_counts(
    visits: list[StageInterval], outcomes: Outcomes
) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str | None], int], dict[str, int], int]:
    pos = _positions(outcomes)
    firsts: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    reached: dict[str, int] = defaultdict(int)
    losses: dict[tuple[str, str | None], int] = defaultdict(int)
    open_here: dict[str, int] = defaultdict(int)
    deals = set()
    for v in visits:
        deals.add(v.opportunity_id)
        if v.censored:
            open_here[v.stage] += 1
        if v.kind == "lost" and v.from_stage is not None:
            losses[v.from_stage, v.reason] += 1
        if v.visit == 1 and v.stage in pos:
            reached[v.stage] += 1
            firsts[v.opportunity_id].append((pos[v.stage], v.step, v.stage))
    strict: dict[str, int] = defaultdict(int)
    for items in firsts.values():
        items.sort()
        previous: tuple[int, int] | None = None
        for p, step, stage in items:
            ok = p == 0 if previous is None else (previous[0] == p - 1 and previous[1] < step)
            if not ok:
                break
            strict[stage] += 1
            previous = (p, step)
    return dict(reached), dict(strict), dict(losses), dict(open_here), len(deals)


def _frame_counts(
    frame: Any, outcomes: Outcomes
) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str | None], int], dict[str, int], int]:
    import narwhals as nw  # noqa: PLC0415

    pos = _positions(outcomes)
    opp = "opportunity_id"
    firsts = frame.filter((nw.col("visit") == 1) & nw.col("stage").is_in(list(pos))).with_columns(
        pos=by_stage("stage", pos, -1).cast(nw.Int64)
    )
    order = ["pos", "step"]
    firsts = firsts.with_columns(
        prev_pos=nw.col("pos").shift(1).over(opp, order_by=order),
        prev_step=nw.col("step").shift(1).over(opp, order_by=order),
    )
    ok = (nw.col("prev_pos").is_null() & (nw.col("pos") == 0)) | (
        (nw.col("prev_pos") == nw.col("pos") - 1) & (nw.col("prev_step") < nw.col("step"))
    )
    firsts = firsts.with_columns(bad=nw.when(ok).then(nw.lit(0)).otherwise(nw.lit(1))).with_columns(
        strict=nw.col("bad").cum_sum().over(opp, order_by=order) == 0
    )
    firsts = firsts.with_columns(strict_n=nw.when(nw.col("strict")).then(1).otherwise(0))
    counted = collect_rows(
        firsts.group_by("stage").agg(
            nw.col("visit").count().alias("reached"), nw.col("strict_n").sum().alias("strict")
        )
    )
    losses = collect_rows(
        frame.filter((nw.col("kind") == "lost") & ~nw.col("from_stage").is_null())
        .group_by("from_stage", "reason")
        .agg(nw.col("visit").count().alias("n"))
    )
    open_here = collect_rows(
        frame.filter(nw.col("censored")).group_by("stage").agg(nw.col("visit").count().alias("n"))
    )
    deals = collect_rows(frame.select(nw.col(opp).n_unique().alias("n")))[0]["n"]
    return (
        {r["stage"]: int(r["reached"]) for r in counted},
        {r["stage"]: int(r["strict"]) for r in counted},
        {(r["from_stage"], r["reason"]): int(r["n"]) for r in losses},
        {r["stage"]: int(r["n"]) for r in open_here},
        int(deals),
    )


def funnel(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    assume_zone: str | tzinfo | None = None,
) -> Funnel:
    """Reach and stage-to-stage conversion, any path and strictly in order, with losses.

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals`.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the analysis stands at.
        assume_zone: the zone of naive instants in ``data``, if any.

    Returns:
        :class:`Funnel` with tables in the caller's representation.

    Raises:
        AnalyticsError: the input is unusable.
    """
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    out = prepared.outcomes
    if prepared.python is not None:
        reached, strict, losses, open_here, deals = _python_counts(prepared.python, out)
    else:
        reached, strict, losses, open_here, deals = _frame_counts(prepared.frame, out)
    lost_here: dict[str, int] = defaultdict(int)
    for (stage, _), n in losses.items():
        lost_here[stage] += n
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
            )
        )
    loss_rows = [
        LossReason(s, r, n)
        for (s, r), n in sorted(
            losses.items(), key=lambda kv: (out.stages.index(kv[0][0]), kv[0][1] or "")
        )
    ]
    return Funnel(emit(prepared, rows, FunnelStage), emit(prepared, loss_rows, LossReason), deals)
