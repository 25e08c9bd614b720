"""Backtest: which probability estimator was best calibrated on this data?

History is split at ``cutoff``. Every estimator is fitted on what was known then (rows at or
before ``cutoff``; deals open then are censored there). It is scored on the deals that were
open at ``cutoff`` and closed by ``as_of``: each gets the probability of its stage at the
cut-off (and, for ``dwell``, of the time it had spent there), and its outcome is 1 if won.

Scores: the Brier score (mean squared error, lower is better), the log loss (probabilities
clipped to [1e-6, 1 - 1e-6]), and a reliability table: deals binned by predicted probability
(tenths), with their mean prediction and observed win rate.

Two baselines: ``configured`` (the process's probabilities; skipped when the process has
none worth the name, see :func:`~stagegate.analytics.probability.configured_known`) and
the **static fitted** one: each stage's empirical rate as known at the cut-off, frozen (no
dwell, no censoring correction; its predictions are those of ``empirical`` fitted at the
cut-off). Each score carries its lift over both, the Brier skill ``1 - brier / baseline``
(positive: better than the baseline).

``best`` is the estimator with the lowest Brier score, never ``configured`` when it is no
baseline. No winner is named (``best`` is ``None`` and ``reason`` says why) when fewer than
:data:`MIN_SCORED` deals were scored, or none of them was won, or none lost: on such a set
every score says little (with no won deal, predicting 0 everywhere scores perfectly).

>>> from stagegate.simulate import simulate
>>> from datetime import timedelta
>>> sim = simulate(300, seed=5, span_days=120)
>>> kinds = sim.model.outcomes()
>>> bt = backtest(sim.events, kinds, cutoff=sim.as_of - timedelta(days=60), as_of=sim.as_of)
>>> bt.best is not None, bt.reason, bt.baselines
(True, None, ('static_fitted',))
>>> few = backtest(sim.events[:40], kinds, cutoff=sim.as_of - timedelta(days=60), as_of=sim.as_of)
>>> few.best, few.reason.startswith("too few deals were scored (1")
(None, True)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, overload

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import is_eager
from stagegate.analytics._table import DAY_US, as_of_us
from stagegate.analytics.intervals import Prepared, prepare, prepared_at
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.analytics.probability import (
    DEFAULT_BINS,
    ESTIMATORS,
    bin_expr,
    bin_of,
    configured_known,
    fit_counts,
    predictors,
)

__all__ = ["MIN_SCORED", "STATIC", "Backtest", "BacktestScore", "Reliability", "backtest"]

_EPS = 1e-6
MIN_SCORED = 30
"""Fewest scored deals for :func:`backtest` to name a best estimator."""
STATIC = "static_fitted"
"""The name of the static fitted baseline (empirical rates at the cut-off, frozen)."""


@attrs.frozen(slots=True)
class BacktestScore:
    """How one estimator scored on the deals open at the cut-off and closed later."""

    estimator: str
    deals: int
    brier: float | None
    log_loss: float | None
    mean_predicted: float | None
    observed_rate: float | None
    lift_over_configured: float | None = None
    lift_over_static: float | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen(slots=True)
class Reliability:
    """One bin of the reliability table of one estimator."""

    estimator: str
    bin: int
    deals: int
    mean_predicted: float
    observed_rate: float
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class Backtest:
    """Result of :func:`backtest`.

    Attributes:
        scores: one row per estimator (:class:`BacktestScore` columns).
        reliability: reliability table (:class:`Reliability` columns).
        best: the best-calibrated estimator; ``None`` when no winner can be named.
        reason: why ``best`` is ``None`` (too few scored deals, no won or no lost deal).
        baselines: the baselines the lifts are measured against: :data:`STATIC`, and
            ``configured`` when the process configures probabilities.
        static: the score of the static fitted baseline (a :class:`BacktestScore`).
        segment: with ``by=``, the segment (at the cut-off) this back-test is of.
        small: with ``by=``, whether fewer than 30 of its deals were scored.
    """

    scores: Any
    reliability: Any
    best: str | None
    reason: str | None = None
    baselines: tuple[str, ...] = (STATIC,)
    static: BacktestScore | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on this module

        return html(self)


def _evaluation(first: Any, last: Any) -> dict[tuple[str, int, str], int]:
    """(stage at cut-off, dwell bin, final outcome) -> deals open at cut-off, closed by as_of."""
    if first.python is not None:
        final = {v.opportunity_id: v.outcome for v in last.python}
        groups: dict[tuple[str, int, str], int] = defaultdict(int)
        for v in first.python:
            outcome = final.get(v.opportunity_id, "open")
            if v.censored and outcome != "open" and v.duration_days is not None:
                groups[v.stage, bin_of(v.duration_days, DEFAULT_BINS), outcome] += 1
        return dict(groups)
    import narwhals as nw  # noqa: PLC0415

    opp = "opportunity_id"
    at_cutoff = first.frame.filter(nw.col("censored")).select(
        opp, "stage", bin_expr("duration_days", DEFAULT_BINS).alias("bin")
    )
    final = last.frame.filter(nw.col("exited_us").is_null() & (nw.col("outcome") != "open")).select(
        opp, "outcome"
    )
    rows = collect_rows(
        at_cutoff.join(final, on=opp, how="inner")
        .group_by("stage", "bin", "outcome")
        .agg(nw.col(opp).count().alias("n"))
    )
    return {(r["stage"], int(r["bin"]), r["outcome"]): int(r["n"]) for r in rows}


@overload
def backtest(
    data: Any,
    outcomes: OutcomesLike,
    *,
    cutoff: datetime,
    as_of: datetime,
    prior_strength: float = ...,
    assume_zone: str | tzinfo | None = ...,
    by: None = ...,
) -> Backtest: ...


@overload
def backtest(
    data: Any,
    outcomes: OutcomesLike,
    *,
    cutoff: datetime,
    as_of: datetime,
    prior_strength: float = ...,
    assume_zone: str | tzinfo | None = ...,
    by: str | Sequence[str],
) -> list[Backtest]: ...


def backtest(
    data: Any,
    outcomes: OutcomesLike,
    *,
    cutoff: datetime,
    as_of: datetime,
    prior_strength: float = 10.0,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Backtest | list[Backtest]:
    """Fit every estimator at ``cutoff``, score it on what happened by ``as_of``.

    With ``by=`` (a segment column or several), a list of :class:`Backtest`, one per segment
    in force at ``cutoff`` (deals that existed then; segments in order, no value last): each
    fitted and scored on that segment's deals alone, so it says how well the estimators
    calibrate on them, with ``segment`` and ``small`` (fewer than 30 deals scored) set on it
    and on its rows (frames get the segment columns first).

    Returns:
        :class:`Backtest` (a list of them with ``by=``).

    Raises:
        AnalyticsError: ``as_of`` is not after ``cutoff``, ``by`` names no column or a
            result column, or the input is unusable.
    """
    if as_of <= cutoff:
        raise AnalyticsError(f"as_of={as_of!r} must be after cutoff={cutoff!r}")
    if by is not None:
        from stagegate.analytics._by_deal import backtest_by  # noqa: PLC0415 - a cycle

        def run(part: Any) -> Backtest:
            return backtest(part, outcomes, cutoff=cutoff, as_of=as_of,
                            prior_strength=prior_strength, assume_zone=assume_zone)  # fmt: skip

        return backtest_by(run, data, outcomes, by, cutoff=cutoff, assume_zone=assume_zone)
    first = prepare(data, outcomes, as_of=cutoff, assume_zone=assume_zone)
    last = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    return _scored(first, last, prior_strength)


def backtest_prepared(
    last: Prepared, cutoff: datetime, *, prior_strength: float = 10.0
) -> Backtest:
    """:func:`backtest` of a log already prepared at ``as_of`` with its rows kept.

    The visits at ``cutoff`` are computed from the same prepared rows (no second
    normalization of the log), so the report prepares its log once for every section.

    Raises:
        AnalyticsError: ``last`` stands at or before ``cutoff``.
    """
    if last.as_of_us <= as_of_us(cutoff):
        raise AnalyticsError(f"as_of must be after cutoff={cutoff!r}")
    first = _visits_cut(last, as_of_us(cutoff))
    return _scored(first or prepared_at(last, cutoff), last, prior_strength)


_CUT_COLUMNS = ("opportunity_id", "stage", "kind", "step", "visit", "entered_us", "exited_us",
                "duration_days", "next_stage", "censored", "outcome")  # fmt: skip
"""The columns of the visits at the cut-off that the fit and the evaluation read."""


def _visits_cut(last: Prepared, cutoff: int) -> Prepared | None:
    """The visits at ``cutoff`` read off the visits at ``as_of`` (in-memory frames).

    The visits known at the cut-off are those entered by then, the one running then cut
    short (no exit, no next stage; censored if its stage is open), and every one of a deal
    given the kind of that running visit as its outcome. That needs each deal's visits in
    one run by step, as the in-memory kernel makes them: ``None`` (compute them from the
    rows) when they are not, or on a lazy engine, or on the pure-Python path.

    On Polars the cut stays a lazy query over the visits at ``as_of``, read by the fit and
    the evaluation without a copy of the visits (most of them) in memory; pandas has no lazy
    query, so its cut is computed once.
    """
    if last.frame is None or not is_eager(last.frame):
        return None
    import narwhals as nw  # noqa: PLC0415

    entered = last.frame.filter(nw.col("entered_us") <= cutoff).select(*_CUT_COLUMNS)
    if last.frame.implementation.is_polars():
        import polars as pl  # noqa: PLC0415

        native = entered.to_native()
        if not native.select(_in_runs(pl)).collect().item():
            return None
        frame = nw.from_native(native.with_columns(**_cut_columns(pl, cutoff)))
    else:
        visits = entered.collect()
        if len(visits) and not bool(visits.select(_in_runs(nw)).item()):
            return None
        frame = visits.with_columns(**_cut_columns(nw, cutoff)).lazy()
    return Prepared(last.outcomes, cutoff, frame=frame, build=last.build, lazy_input=False)


def _in_runs(ns: Any) -> Any:
    """True where every deal's visits follow one another by step (``ns``: narwhals or Polars).

    Both spell these expressions alike: the cut is written once for either.
    """
    opp, step = ns.col("opportunity_id"), ns.col("step")
    follows = (opp == opp.shift(1)) & (step == step.shift(1) + 1)
    return ((step == 1) | follows.fill_null(value=False)).all()


def _cut_columns(ns: Any, cutoff: int) -> dict[str, Any]:
    """The columns of the visits entered by ``cutoff`` that the cut changes (see above)."""
    exited = ns.col("exited_us")
    running = exited.is_null() | (exited > cutoff)
    open_visit = ns.col("kind") == "open"
    return {
        "exited_us": ns.when(~running).then(exited),
        "next_stage": ns.when(~running).then(ns.col("next_stage")),
        "censored": running & open_visit,
        "duration_days": ns.when(~running)
        .then(ns.col("duration_days"))
        .when(open_visit)
        .then((ns.lit(cutoff) - ns.col("entered_us")) / DAY_US)
        .otherwise(ns.lit(None, ns.Float64)),
        # a deal's last visit by the cut-off is the running one: its kind fills the others
        "outcome": ns.when(running).then(ns.col("kind")).fill_null(strategy="backward"),
    }


def _scored(first: Prepared, last: Prepared, prior_strength: float) -> Backtest:
    """Fit at ``first`` (the log at the cut-off), score on ``last`` (the log at as_of)."""
    table = predictors(fit_counts(first, DEFAULT_BINS), first.outcomes, DEFAULT_BINS,
                       prior_strength=prior_strength)  # fmt: skip
    groups = _evaluation(first, last)
    table[STATIC] = table["empirical"]  # fitted at the cut-off and frozen
    known = configured_known(first.outcomes)
    raw: dict[str, BacktestScore] = {}
    reliability: list[Reliability] = []
    for name in (*ESTIMATORS, STATIC):
        score, bins = _score(name, table[name], groups)
        raw[name] = score
        if name != STATIC:
            reliability.extend(
                Reliability(name, k, int(c), s / c, w / c) for k, (c, s, w) in sorted(bins.items())
            )
    static = raw.pop(STATIC)
    scores = [
        attrs.evolve(
            score,
            lift_over_configured=_lift(score, raw["configured"]) if known else None,
            lift_over_static=_lift(score, static),
        )
        for score in raw.values()
    ]
    candidates = [
        s for s in scores if s.brier is not None and (known or s.estimator != "configured")
    ]
    reason = _no_winner(groups)
    best = (
        min(candidates, key=lambda s: (s.brier, ESTIMATORS.index(s.estimator))).estimator
        if candidates and reason is None
        else None
    )
    return Backtest(
        emit(last, scores, BacktestScore),
        emit(last, reliability, Reliability),
        best,
        reason,
        (STATIC, "configured") if known else (STATIC,),
        static,
    )


def _score(
    name: str, table: dict[tuple[str, int], float], groups: dict[tuple[str, int, str], int]
) -> tuple[BacktestScore, dict[int, list[float]]]:
    n = brier = loss = predicted = won_total = 0.0
    bins: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for (stage, b, outcome), count in groups.items():
        p = table[stage, b]
        y = 1.0 if outcome == "won" else 0.0
        clipped = min(max(p, _EPS), 1 - _EPS)
        n += count
        brier += count * (p - y) ** 2
        loss -= count * (y * math.log(clipped) + (1 - y) * math.log(1 - clipped))
        predicted += count * p
        won_total += count * y
        r = bins[_tenth(p)]
        r[0] += count
        r[1] += count * p
        r[2] += count * y
    if not n:
        return BacktestScore(name, 0, None, None, None, None), bins
    score = BacktestScore(name, int(n), brier / n, loss / n, predicted / n, won_total / n)
    return score, bins


def _tenth(p: float) -> int:
    """The reliability bin of a prediction, its tenth (0 to 9), read to nine decimals.

    A prediction one rounding error below a boundary (0.49999999999999994 for 0.5, as another
    order of the same sums gives it) falls in the bin of the boundary on every path.
    """
    return min(int(round(p * 10, 9)), 9)


def _lift(score: BacktestScore, baseline: BacktestScore) -> float | None:
    """Brier skill over a baseline: ``1 - brier / baseline brier`` (``None`` if undefined)."""
    if score.brier is None or not baseline.brier:
        return None
    return 1 - score.brier / baseline.brier


def _no_winner(groups: dict[tuple[str, int, str], int]) -> str | None:
    """Why no estimator can be named best on these scored deals, or ``None``."""
    n = sum(groups.values())
    won = sum(c for (_, _, outcome), c in groups.items() if outcome == "won")
    if n < MIN_SCORED:
        return (
            f"too few deals were scored ({n}, open at the cut-off and closed by as_of; at least "
            f"{MIN_SCORED} are needed): move the cut-off earlier or wait for more deals to close"
        )
    if not won or won == n:
        which = "won" if not won else "lost"
        return (
            f"none of the {n} scored deals was {which}: every score is trivially good for "
            "an estimator that predicts only the other outcome; move the cut-off"
        )
    return None
