"""Sales velocity: opportunities x win rate x average deal size / cycle length, per day.

Per open stage: ``deals`` open in it at ``as_of``; ``win_rate`` their win probability under a
censoring-aware estimator (``estimator=``, one of :data:`~stagegate.analytics.ESTIMATORS`,
``deal_clock`` by default): the mean over the stage's open deals of the estimator's probability
for their stage and dwell (the probability at entry when the stage has no open deal);
``expected_wins`` the sum of those probabilities; ``deal_size`` the mean current amount of
the won deals that reached the stage; ``cycle_days`` the mean days from their first entry into
the stage to closing. ``closed_win_rate`` is the naive figure beside it: won over closed
among the closed deals that reached the stage (biased upward when lost deals linger open).

The ``overall`` row covers every open deal: its ``expected_wins`` is the sum of the stages'
and its ``win_rate`` is ``expected_wins / deals`` (``None`` without open deals), so
``deals * win_rate`` adds up over the stage rows; ``deal_size`` and ``cycle_days`` are the
mean won amount and the mean won cycle (first row to close), and ``closed_win_rate`` the
share won among all closed deals.
``velocity`` is ``deals * win_rate * deal_size / cycle_days``: the amount expected to close
per day.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1), "stage": "lead", "amount": 10.0},
...     {"opportunity_id": "a", "at": t(5), "stage": "won", "amount": 10.0},
...     {"opportunity_id": "b", "at": t(1), "stage": "lead", "amount": 10.0},
...     {"opportunity_id": "b", "at": t(3), "stage": "lost", "amount": 10.0},
...     {"opportunity_id": "c", "at": t(2), "stage": "lead", "amount": 10.0},
... ]
>>> lead, overall = velocity(rows, kinds, as_of=t(9), estimator="empirical")
>>> lead.deals, lead.win_rate, lead.expected_wins, lead.cycle_days, lead.velocity
(1, 0.5, 0.5, 4.0, 1.25)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import prepare
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.probability import (
    DEFAULT_BINS,
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    bin_of,
    fit_counts,
    predictors,
)
from stagegate.analytics.snapshot import current_state

__all__ = ["VELOCITY_ESTIMATOR", "Velocity", "velocity"]

VELOCITY_ESTIMATOR = DEFAULT_ESTIMATOR
"""The estimator :func:`velocity` uses unless told otherwise: the censoring-aware default."""


@attrs.frozen(slots=True)
class Velocity:
    """Sales velocity of one stage (or ``overall``); see the module for each figure.

    With ``by=``: ``segment``, ``reached`` (the sample: deals that entered the stage under the
    segment; for ``overall`` its open deals plus those closed under it) and ``small``.
    """

    stage: str
    deals: int
    win_rate: float | None
    deal_size: float | None
    cycle_days: float | None
    velocity: float | None
    expected_wins: float = 0.0
    closed_win_rate: float | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    reached: int | None = attrs.field(default=None, metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


def _per_deal(prepared: Any) -> list[dict[str, Any]]:
    """Per (deal, stage first reached): outcome, first entry, closing instant, opened."""
    if prepared.python is not None:
        closing: dict[str, int] = {}
        opened: dict[str, int] = {}
        for v in prepared.python:
            opened[v.opportunity_id] = min(opened.get(v.opportunity_id, v.entered_us),
                                           v.entered_us)  # fmt: skip
            if v.exited_us is None and v.kind != "open":
                closing[v.opportunity_id] = v.entered_us
        return [
            {
                "opportunity_id": v.opportunity_id,
                "stage": v.stage,
                "outcome": v.outcome,
                "entered_us": v.entered_us,
                "closed_us": closing.get(v.opportunity_id),
                "opened_us": opened[v.opportunity_id],
            }
            for v in prepared.python
            if v.visit == 1 and v.kind == "open"
        ]
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    frame = prepared.frame.with_columns(
        closed_us=nw.when(nw.col("exited_us").is_null() & (nw.col("kind") != "open"))
        .then(nw.col("entered_us"))
        .max()
        .over(opp),
        opened_us=nw.col("entered_us").min().over(opp),
    )
    return collect_rows(
        frame.filter((nw.col("visit") == 1) & (nw.col("kind") == "open")).select(
            opp, "stage", "outcome", "entered_us", "closed_us", "opened_us"
        )
    )


def velocity(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    estimator: str = VELOCITY_ESTIMATOR,
    prior_strength: float = 10.0,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Sales velocity per open stage and overall.

    Args:
        data: events, opportunities, row mappings, or a stage-history frame.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the analysis stands at.
        estimator: the win-probability estimator, one of
            :data:`~stagegate.analytics.ESTIMATORS`.
        prior_strength: pseudo-deals of the ``smoothed`` estimator.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): per segment, its open stages then its
            ``overall``; a stage row counts each deal for the segment in force when it first
            entered the stage, ``overall`` takes deal size and cycle from the deals closed
            under the segment. Rows gain ``segment``, ``reached`` (the sample) and ``small``
            (a frame gets the segment columns first).

    Returns:
        :class:`Velocity` rows (or a frame): open stages in process order, then ``overall``.

    Raises:
        AnalyticsError: ``estimator`` is unknown, ``prior_strength`` negative, or the input
            is unusable.
    """
    if estimator not in ESTIMATORS or not prior_strength >= 0:
        raise AnalyticsError(
            f"estimator must be one of {', '.join(ESTIMATORS)} and prior_strength at least 0; "
            f"got {estimator!r}, {prior_strength!r}"
        )
    if by is not None:
        from stagegate.analytics._by import velocity_by_segment  # noqa: PLC0415

        def run(part: Any) -> Any:
            return velocity(
                part, outcomes, as_of=as_of, estimator=estimator,
                prior_strength=prior_strength, assume_zone=assume_zone,
            )  # fmt: skip

        return velocity_by_segment(run, data, outcomes, by, as_of=as_of, assume_zone=assume_zone)
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone, keep_rows=True)
    out = prepared.outcomes
    table = predictors(
        fit_counts(prepared, DEFAULT_BINS), out, DEFAULT_BINS, prior_strength=prior_strength
    )[estimator]
    state = current_state(prepared)
    amount = {r["opportunity_id"]: r["amount"] for r in state}
    open_now: dict[str, int] = defaultdict(int)
    expected: dict[str, float] = defaultdict(float)
    for r in state:
        if r["kind"] == "open":
            open_now[r["stage"]] += 1
            expected[r["stage"]] += table[r["stage"], bin_of(r["dwell_days"], DEFAULT_BINS)]
    stats: dict[str, list[Any]] = defaultdict(lambda: [0, 0, [], []])
    overall: dict[str, tuple[str, int | None, int]] = {}
    for r in _per_deal(prepared):
        s = stats[r["stage"]]
        overall[r["opportunity_id"]] = (r["outcome"], r["closed_us"], r["opened_us"])
        if r["outcome"] == "open":
            continue
        s[0] += 1
        if r["outcome"] == "won":
            s[1] += 1
            if amount.get(r["opportunity_id"]) is not None:
                s[2].append(amount[r["opportunity_id"]])
            s[3].append((r["closed_us"] - r["entered_us"]) / DAY_US)
    everything: list[Any] = [0, 0, [], []]
    for opp, (outcome, closed_us, opened_us) in overall.items():
        if outcome == "open" or closed_us is None:
            continue
        everything[0] += 1
        if outcome == "won":
            everything[1] += 1
            if amount.get(opp) is not None:
                everything[2].append(amount[opp])
            everything[3].append((closed_us - opened_us) / DAY_US)
    rows = []
    for stage in out.open:
        n = open_now.get(stage, 0)
        rate = expected[stage] / n if n else table[stage, 0]
        rows.append(_row(stage, n, rate, expected.get(stage, 0.0), stats[stage]))
    n = sum(open_now.values())
    wins = sum(r.expected_wins for r in rows)
    rows.append(_row("overall", n, wins / n if n else None, wins, everything))
    return emit(prepared, rows, Velocity)


def _row(stage: str, deals: int, win_rate: float | None, wins: float, s: list[Any]) -> Velocity:
    closed_rate = s[1] / s[0] if s[0] else None
    size = sum(s[2]) / len(s[2]) if s[2] else None
    cycle = sum(s[3]) / len(s[3]) if s[3] else None
    value = None
    if win_rate is not None and size is not None and cycle:
        value = deals * win_rate * size / cycle
    return Velocity(stage, deals, win_rate, size, cycle, value, wins, closed_rate)
