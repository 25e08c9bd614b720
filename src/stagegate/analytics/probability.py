"""Probability of winning by stage: configured, empirical, Markov, smoothed, deal clock, dwell.

Side by side, per open stage:

- ``configured``: the probability the process assigns to the stage.
- ``empirical``: won / closed among the deals that reached the stage and are closed at
  ``as_of``, with a Wilson interval and its sample size (``closed``). Biased when lost deals
  are slower than won ones: the slow, doomed deals are still open and left out.
- ``markov``: the probability of absorption into a won stage from this stage, in the Markov
  chain of observed moves (every visit, open deals included, re-entries and backward moves
  too). Won and lost stages are absorbing. Each stage's exit probabilities are competing-risks
  (Aalen-Johansen) cumulative incidences, so visits still running at ``as_of`` count for as
  long as they were seen: when lost deals linger, plain exit counts would over-weight the fast
  exits (the advances) and overstate the win probability. The interval comes from ``draws``
  samples of the transition rows from a Dirichlet posterior with the observed exits spread by
  incidence (seeded). ``None`` when the stage, or a stage it leads to, was never left.
- ``smoothed``: the empirical rate shrunk toward the configured one: the mean of the Beta
  posterior with ``prior_strength`` pseudo-deals at the configured probability (plus the
  Jeffreys half-deal on each side), with its equal-tailed interval. With few closed deals it
  stays near the configured value; with many, near the empirical one. When the process
  configures no probability worth the name (:func:`configured_known`: an inferred process
  gives every open stage 0), it shrinks toward the pooled empirical rate instead.
- ``deal_clock`` (:data:`DEFAULT_ESTIMATOR`): won / closed among the deals that reached the
  stage, each closed deal weighted by ``1 / G(age at close)``, where ``G(t)`` is the share of
  all deals opened at least ``t`` before ``as_of`` (inverse probability of censoring
  weighting on the deal's own clock: every deal's potential follow-up is known, so ``G`` is
  known exactly). Interval: Wilson at the effective sample size of the delta-method variance
  of the weighted ratio (:func:`~stagegate.analytics._stats.weighted_share`). Assumes that
  when a deal opened says nothing about its fate or pace, and a stationary process.

``markov`` assumes that censoring is independent of a deal's next move given its time in the
current stage. When a deal's pace carries its fate across stages (doomed deals slow
everywhere), slow deals reach later stages late and are censored there more often, and
``markov`` overstates the later stages' win probability much as ``empirical`` does;
``deal_clock`` does not rely on that assumption (see docs/analytics.md, "Which probability
to trust").

:func:`dwell_probabilities` adds the time already spent: the win rate of closed deals whose
visit to the stage lasted at least ``dwell_from_days``.

>>> from datetime import datetime, timezone
>>> t = lambda d: datetime(2026, 1, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "won": "won", "lost": "lost"}
>>> rows = [{"opportunity_id": str(i), "at": t(1), "stage": "lead"} for i in range(4)]
>>> rows += [{"opportunity_id": str(i), "at": t(5), "stage": "won" if i < 3 else "lost"}
...          for i in range(4)]
>>> (p,) = stage_probabilities(rows, kinds, as_of=t(9))
>>> p.stage, p.closed, p.won, p.empirical, p.markov
('lead', 4, 3, 0.75, 0.75)
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate.analytics._emit import BY_ONLY, collect_rows, emit
from stagegate.analytics._kernel import kernel_of
from stagegate.analytics._stats import beta_interval, quantile, weighted_share, wilson
from stagegate.analytics._table import DAY_US
from stagegate.analytics.intervals import (
    KIND_CODE,
    Prepared,
    StageInterval,
    by_kind,
    coded_visits,
    prepare,
)
from stagegate.analytics.outcomes import KINDS, AnalyticsError, Outcomes, OutcomesLike
from stagegate.analytics.survival import _log_factor, deal_clock_python, dwell_us, risk_sets

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "DwellProbability",
    "StageProbability",
    "configured_known",
    "dwell_probabilities",
    "stage_probabilities",
]

DEFAULT_BINS = (0.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0)
"""Default lower bounds (days) of the dwell bins of :func:`dwell_probabilities`."""


@attrs.frozen(slots=True)
class StageProbability:
    """Probability of winning from one open stage, by every estimator."""

    stage: str
    configured: float | None
    reached: int
    closed: int
    won: int
    empirical: float | None
    empirical_low: float | None
    empirical_high: float | None
    markov: float | None
    markov_low: float | None
    markov_high: float | None
    markov_exits: int
    smoothed: float | None
    smoothed_low: float | None
    smoothed_high: float | None
    deal_clock: float | None = None
    deal_clock_low: float | None = None
    deal_clock_high: float | None = None
    deal_clock_effective: float | None = None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    deals: int | None = attrs.field(default=None, metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen(slots=True)
class DwellProbability:
    """Win rate of closed deals whose visit to ``stage`` lasted at least ``dwell_from_days``."""

    stage: str
    dwell_from_days: float
    dwell_to_days: float | None
    closed: int
    won: int
    probability: float | None
    low: float | None
    high: float | None
    segment: tuple[str | None, ...] = attrs.field(default=(), metadata=BY_ONLY)
    deals: int | None = attrs.field(default=None, metadata=BY_ONLY)
    small: bool | None = attrs.field(default=None, metadata=BY_ONLY)


@attrs.frozen
class Counts:
    """The sufficient statistics every estimator is computed from (small, per stage)."""

    reached: Mapping[tuple[str, str], int]
    """(stage, outcome) -> deals that reached the stage, by outcome at ``as_of``."""
    moves: Mapping[tuple[str, str], int]
    """(stage, next stage) -> observed exits."""
    dwell: Mapping[tuple[str, int, str], int]
    """(stage, bin index, outcome) -> visits of closed deals, by dwell bin."""
    incidence: Mapping[tuple[str, str], float] = attrs.field(factory=dict)
    """(stage, next stage) -> Aalen-Johansen cumulative incidence of that exit."""
    clock: Mapping[tuple[str, str], tuple[float, float, int]] = attrs.field(factory=dict)
    """(stage, outcome) -> deal-clock weights of the closed deals that reached the stage:
    their sum, the sum of their squares, and the deals."""


def bin_of(duration: float, bins: Sequence[float]) -> int:
    """Index of the last bin whose lower bound is at most ``duration`` (0 below the first)."""
    if bins is DEFAULT_BINS and not math.isnan(duration):  # sorted bounds: bisect
        return max(bisect.bisect_right(bins, duration) - 1, 0)
    index = 0
    for i, low in enumerate(bins):
        if duration >= low:
            index = i
    return index


def counts_python(visits: Sequence[StageInterval], bins: Sequence[float], as_of: int) -> Counts:
    """Counts from pure-Python visits."""
    reached: dict[tuple[str, str], int] = defaultdict(int)
    moves: dict[tuple[str, str], int] = defaultdict(int)
    dwell: dict[tuple[str, int, str], int] = defaultdict(int)
    for v in visits:
        if v.kind != "open":
            continue
        if v.visit == 1:
            reached[v.stage, v.outcome] += 1
        if v.next_stage is not None:
            moves[v.stage, v.next_stage] += 1
        if v.outcome != "open" and v.duration_days is not None:
            dwell[v.stage, bin_of(v.duration_days, bins), v.outcome] += 1
    return Counts(
        dict(reached),
        dict(moves),
        dict(dwell),
        incidence_python(visits, as_of),
        clock_python(visits, as_of),
    )


def clock_python(
    visits: Sequence[StageInterval], as_of: int
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """:attr:`Counts.clock` of pure-Python visits."""
    weights = deal_clock_python(visits, as_of)
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for v in visits:
        if v.kind == "open" and v.visit == 1 and v.opportunity_id in weights:
            outcome, w = weights[v.opportunity_id]
            total = sums[v.stage, outcome]
            total[0] += w
            total[1] += w * w
            total[2] += 1
    return {key: (w, w2, int(n)) for key, (w, w2, n) in sums.items()}


def incidence_python(visits: Sequence[StageInterval], as_of: int) -> dict[tuple[str, str], float]:
    """Aalen-Johansen cumulative incidence of each exit of each open stage.

    Each exit adds ``S(t-) / n`` to its destination (``S``: Kaplan-Meier survival in the stage
    just before it, ``n``: visits still at risk), so visits still running at ``as_of`` count
    for as long as they were observed and the slower exits are not under-counted.
    """
    by_stage: dict[str, list[StageInterval]] = defaultdict(list)
    for v in visits:
        if v.kind == "open" and v.duration_days is not None:
            by_stage[v.stage].append(v)
    result: dict[tuple[str, str], float] = defaultdict(float)
    for stage, items in by_stage.items():
        items.sort(key=lambda v: (_dwell_us(v, as_of), v.censored))
        total, log_s = len(items), 0.0
        for i, v in enumerate(items):
            factor = _log_factor(total - i, not v.censored)
            if not v.censored and v.next_stage is not None:
                result[stage, v.next_stage] += math.exp(log_s) / (total - i)
            log_s += factor
    return dict(result)


def _dwell_us(visit: StageInterval, as_of: int) -> int:
    """A visit's exact dwell: to its exit, or to ``as_of`` (an exit at the epoch is an exit)."""
    return (as_of if visit.exited_us is None else visit.exited_us) - visit.entered_us


def bin_expr(column: str, bins: Sequence[float]) -> Any:
    """A narwhals expression giving :func:`bin_of` of a column."""
    import narwhals as nw  # noqa: PLC0415

    expr: Any = None
    for i in range(len(bins) - 1, 0, -1):
        cond = nw.col(column) >= bins[i]
        expr = nw.when(cond).then(nw.lit(i)) if expr is None else expr.when(cond).then(nw.lit(i))
    if expr is None:
        return nw.lit(0, nw.Int64)
    return expr.otherwise(nw.lit(0)).cast(nw.Int64)


_COUNTED = ["group", "next_rank", "censored"]
"""The columns of the visits that the counts read."""


def clock_frame(
    frame: Any, outcomes: Outcomes, as_of: int
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """:attr:`Counts.clock` of a frame of visits: the kernel's weighted first visits, summed."""
    import narwhals as nw  # noqa: PLC0415

    weighted = kernel_of(frame).weighted(frame, as_of, outcomes)
    rows = collect_rows(
        weighted.filter(nw.col("first"))
        .with_columns(square=nw.col("weight") * nw.col("weight"))
        .group_by("group", "won")
        .agg(
            nw.col("weight").sum().alias("w"),
            nw.col("square").sum().alias("w2"),
            nw.len().alias("n"),
        )
    )
    return {
        (outcomes.stages[int(r["group"])], "won" if r["won"] else "lost"): (
            float(r["w"]),
            float(r["w2"]),
            int(r["n"]),
        )
        for r in rows
    }


def counts_frame(
    frame: Any,
    outcomes: Outcomes,
    bins: Sequence[float],
    as_of: int,
    *,
    dwell: bool = True,
    clock: bool = True,
) -> Counts:
    """Counts from a frame of visits (see :func:`~stagegate.analytics.stage_intervals`)."""
    import narwhals as nw  # noqa: PLC0415

    stages = outcomes.stages
    # first, while nothing else is held: the deal clock's table is the largest made here
    clocked = clock_frame(frame, outcomes, as_of) if clock else {}
    # stages and outcomes travel as small integers, never as names
    open_visits = coded_visits(
        frame,
        outcomes,
        nw.col("kind") == "open",
        {"group": "stage", "next_rank": "next_stage"},
        _COUNTED,
        final=by_kind("outcome"),
        dwell_us=dwell_us(as_of),
        first=nw.col("visit") == 1,
    )
    reached = collect_rows(
        open_visits.filter(nw.col("first")).group_by("group", "final").agg(nw.len().alias("n"))
    )
    dwell_rows = []
    if dwell:
        dwell_rows = collect_rows(
            open_visits.filter(nw.col("final") != KIND_CODE["open"])
            .with_columns(duration_days=nw.col("dwell_us") / DAY_US)  # as on the visits
            .with_columns(bin=bin_expr("duration_days", bins))
            .group_by("group", "bin", "final")
            .agg(nw.len().alias("n"))
        )
    # the destination travels through the risk-set sort as its position: packed in the key
    ranked = risk_sets(
        open_visits.select("group", "dwell_us", "censored", "next_rank"),
        tag=("next_rank", len(stages)),
    )
    # every exit (not censored) of an open stage has a next stage: the exits are the moves
    incidence = collect_rows(
        ranked.filter(~nw.col("censored"))
        .with_columns(  # S(t-) / n, with S(t) = S(t-) * (1 - 1/n) unless the exit empties
            share=nw.when(nw.col("emptied"))
            .then(nw.col("log_survival").exp())
            .otherwise(nw.col("log_survival").exp() / (nw.col("at_risk") - 1))
        )
        .group_by("group", "next_rank")
        .agg(nw.col("share").sum().alias("cif"), nw.len().alias("n"))
    )
    moves = {(stages[r["group"]], stages[r["next_rank"]]): r for r in incidence}
    return Counts(
        {(stages[r["group"]], KINDS[r["final"]]): int(r["n"]) for r in reached},
        {key: int(r["n"]) for key, r in moves.items()},
        {(stages[r["group"]], int(r["bin"]), KINDS[r["final"]]): int(r["n"]) for r in dwell_rows},
        {key: float(r["cif"]) for key, r in moves.items()},
        clocked,
    )


def fit_counts(
    prepared: Prepared, bins: Sequence[float], *, dwell: bool = True, clock: bool = True
) -> Counts:
    """Counts of a prepared input, on whichever path it is.

    On the frame path the counts of one frame of visits are computed once (see
    :data:`_FITTED`): the report's forecast and probability table read the same ones.
    """
    if prepared.python is not None:
        return counts_python(prepared.python, bins, prepared.as_of_us)
    frame = prepared.frame
    key = (id(frame), prepared.as_of_us, tuple(bins))
    found = _FITTED.get(key)
    if found is not None and found[0]() is frame and found[1] == prepared.outcomes:
        done, had_dwell, had_clock = found[2]
        if (had_dwell or not dwell) and (had_clock or not clock):
            return attrs.evolve(
                done,
                dwell=done.dwell if dwell else {},
                clock=done.clock if clock else {},
            )
    counts = counts_frame(
        frame, prepared.outcomes, bins, prepared.as_of_us, dwell=dwell, clock=clock
    )
    if not prepared.lazy_input:  # in memory: kept while the frame lives
        forget = _FITTED.pop  # bound now: at exit the module's names may be gone
        _FITTED[key] = (
            weakref.ref(frame, lambda _: forget(key, None)),
            prepared.outcomes,
            (counts, dwell, clock),
        )
    return counts


_FITTED: dict[tuple[int, int, tuple[float, ...]], tuple[Any, Any, tuple[Counts, bool, bool]]] = {}
"""Counts computed once per in-memory frame of visits (by ``id``; dropped with it)."""


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting; ``None`` if singular."""
    n = len(rhs)
    a = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:  # noqa: PLR2004
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col]:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def absorption(
    rows: Mapping[str, Mapping[str, float]], outcomes: Outcomes
) -> dict[str, float | None]:
    """Probability of absorption into a won stage from each open stage.

    ``rows`` maps each open stage to its transition probabilities (or counts) by next stage.
    """
    known = {s for s in outcomes.open if sum(rows.get(s, {}).values()) > 0}
    changed = True
    while changed:  # a stage that can move to a stage of unknown fate is unknown too
        changed = False
        for s in list(known):
            if any(outcomes.kinds[t] == "open" and t not in known for t in rows[s]):
                known.discard(s)
                changed = True
    order = [s for s in outcomes.open if s in known]
    index = {s: i for i, s in enumerate(order)}
    matrix = [[0.0] * len(order) for _ in order]
    rhs = [0.0] * len(order)
    for s in order:
        i = index[s]
        total = sum(rows[s].values())
        matrix[i][i] += 1.0
        for t, weight in rows[s].items():
            p = weight / total
            kind = outcomes.kinds[t]
            if kind == "won":
                rhs[i] += p
            elif kind == "open":
                matrix[i][index[t]] -= p
    solution = _solve(matrix, rhs) if order else []
    result: dict[str, float | None] = dict.fromkeys(outcomes.open)
    if solution is not None:
        for s, x in zip(order, solution, strict=True):
            result[s] = min(1.0, max(0.0, x))
    return result


def _dirichlet(rng: random.Random, weights: Mapping[str, float]) -> dict[str, float]:
    draws = {t: rng.gammavariate(n, 1.0) for t, n in sorted(weights.items())}
    total = sum(draws.values()) or 1.0
    return {t: x / total for t, x in draws.items()}


def markov_estimates(
    counts: Counts, outcomes: Outcomes, *, confidence: float, draws: int, seed: int
) -> dict[str, tuple[float | None, float | None, float | None, int]]:
    """Markov absorption point estimate, posterior interval and exits, per open stage."""
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    exits: dict[str, int] = defaultdict(int)
    for (s, _), n in counts.moves.items():
        if outcomes.kinds.get(s) == "open":
            exits[s] += n
    for (s, t), cif in counts.incidence.items():
        if outcomes.kinds.get(s) == "open" and cif > 0:
            rows[s][t] = cif
    point = absorption(rows, outcomes)
    # posterior draws: Dirichlet with the exits spread by incidence (effective counts)
    effective = {
        s: {t: round(exits[s] * c / sum(w.values()), 9) for t, c in w.items()}
        for s, w in rows.items()
    }  # rounded so that every backend draws the same sequence from the same seed
    rng = random.Random(seed)  # noqa: S311 - seeded posterior draws, not cryptography
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(draws):
        sampled = {s: _dirichlet(rng, w) for s, w in sorted(effective.items())}
        for s, x in absorption(sampled, outcomes).items():
            if x is not None:
                samples[s].append(x)
    tail = (1 - confidence) / 2
    result = {}
    for s in outcomes.open:
        values = sorted(samples.get(s, []))
        low = quantile(values, tail) if values and point[s] is not None else None
        high = quantile(values, 1 - tail) if values and point[s] is not None else None
        result[s] = (point[s], low, high, exits.get(s, 0))
    return result


def estimate(
    counts: Counts,
    outcomes: Outcomes,
    *,
    confidence: float = 0.95,
    prior_strength: float = 10.0,
    draws: int = 400,
    seed: int = 0,
) -> list[StageProbability]:
    """Every estimator, per open stage, from the counts."""
    markov = markov_estimates(counts, outcomes, confidence=confidence, draws=draws, seed=seed)
    known = configured_known(outcomes)
    won_all = sum(counts.reached.get((s, "won"), 0) for s in outcomes.open)
    closed_all = won_all + sum(counts.reached.get((s, "lost"), 0) for s in outcomes.open)
    pooled = won_all / closed_all if closed_all else None
    result = []
    for s in outcomes.open:
        won = counts.reached.get((s, "won"), 0)
        lost = counts.reached.get((s, "lost"), 0)
        reached = won + lost + counts.reached.get((s, "open"), 0)
        closed = won + lost
        empirical = won / closed if closed else None
        low, high = wilson(won, closed, confidence) if closed else (None, None)
        configured = outcomes.probability(s)
        prior = 0.5 if configured is None else configured
        strength = prior_strength if configured is not None else 0.0
        if not known and configured is not None:  # all zeros (inferred): shrink to the pool
            prior = 0.5 if pooled is None else pooled
            strength = 0.0 if pooled is None else prior_strength
        a = won + strength * prior + 0.5
        b = lost + strength * (1 - prior) + 0.5
        s_low, s_high = beta_interval(a, b, confidence)
        m, m_low, m_high, exits = markov[s]
        won_w, won_w2, _ = counts.clock.get((s, "won"), (0.0, 0.0, 0))
        lost_w, lost_w2, _ = counts.clock.get((s, "lost"), (0.0, 0.0, 0))
        clock = weighted_share((won_w, won_w2), (lost_w, lost_w2), confidence)
        result.append(
            StageProbability(
                s,
                configured,
                reached,
                closed,
                won,
                empirical,
                low,
                high,
                m,
                m_low,
                m_high,
                exits,
                a / (a + b),
                s_low,
                s_high,
                *(clock if clock is not None else (None, None, None, None)),
            )
        )
    return result


def configured_known(outcomes: OutcomesLike) -> bool:
    """Whether the process really configures win probabilities for its open stages.

    ``False`` when no open stage has one, or when every one given is 0 (what a process
    inferred from the data carries): then ``configured`` is no baseline, and ``smoothed``
    shrinks toward the pooled empirical rate instead.

    >>> configured_known({"a": "open", "w": "won"})
    False
    """
    out = Outcomes.of(outcomes)
    given = [p for p in (out.probability(s) for s in out.open) if p is not None]
    return any(p > 0 for p in given)


def _check(confidence: float, prior_strength: float = 0.0, draws: int = 0) -> None:
    if not 0 < confidence < 1:
        raise AnalyticsError(f"confidence must be between 0 and 1, got {confidence!r}")
    if prior_strength < 0 or draws < 0:
        raise AnalyticsError("prior_strength and draws must not be negative")


def stage_probabilities(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    confidence: float = 0.95,
    prior_strength: float = 10.0,
    draws: int = 400,
    seed: int = 0,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Probability of winning from each open stage, by every estimator, side by side.

    Args:
        data: events, opportunities, row mappings, a stage-history frame, or the result of
            :func:`~stagegate.analytics.stage_intervals`.
        outcomes: a ``Process`` (configured probabilities come from it) or a mapping.
        as_of: the instant the analysis stands at.
        confidence: level of every interval.
        prior_strength: pseudo-deals behind the configured probability in ``smoothed``.
        draws: posterior samples for the Markov interval (0: no interval).
        seed: seed of those samples.
        assume_zone: the zone of naive instants in ``data``, if any.
        by: a segment column (or several): one row per segment and stage, each deal counted
            for the segment in force when it entered the stage, with ``segment``, ``deals``
            and ``small`` set (a frame gets the segment columns first).

    Returns:
        :class:`StageProbability` rows (or a frame with those columns), in process order.

    Raises:
        AnalyticsError: an argument is out of range, or the input is unusable.
    """
    _check(confidence, prior_strength, draws)
    if by is not None:
        from stagegate.analytics._by import by_segment  # noqa: PLC0415

        def run(part: Any) -> Any:
            return stage_probabilities(
                part,
                outcomes,
                as_of=as_of,
                confidence=confidence,
                prior_strength=prior_strength,
                draws=draws,
                seed=seed,
                assume_zone=assume_zone,
            )

        return by_segment(
            run, data, outcomes, by, StageProbability, as_of=as_of, assume_zone=assume_zone
        )
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    counts = fit_counts(prepared, DEFAULT_BINS, dwell=False)
    rows = estimate(
        counts,
        prepared.outcomes,
        confidence=confidence,
        prior_strength=prior_strength,
        draws=draws,
        seed=seed,
    )
    return emit(prepared, rows, StageProbability)


def dwell_table(
    counts: Counts, outcomes: Outcomes, bins: Sequence[float], confidence: float = 0.95
) -> list[DwellProbability]:
    """Win rate by stage and minimum dwell, from the counts."""
    result = []
    for s in outcomes.open:
        for i, low in enumerate(bins):
            won = sum(counts.dwell.get((s, j, "won"), 0) for j in range(i, len(bins)))
            lost = sum(counts.dwell.get((s, j, "lost"), 0) for j in range(i, len(bins)))
            closed = won + lost
            lo, hi = wilson(won, closed, confidence) if closed else (None, None)
            result.append(
                DwellProbability(
                    s,
                    float(low),
                    float(bins[i + 1]) if i + 1 < len(bins) else None,
                    closed,
                    won,
                    won / closed if closed else None,
                    lo,
                    hi,
                )
            )
    return result


def check_bins(bins: Sequence[float]) -> tuple[float, ...]:
    """Validate dwell bins: non-empty, starting at 0, strictly increasing.

    Raises:
        AnalyticsError: they are not.
    """
    values = tuple(float(b) for b in bins)
    if not values or values[0] != 0 or any(b <= a for a, b in itertools.pairwise(values)):
        raise AnalyticsError(
            f"bins must start at 0 and increase strictly, got {tuple(bins)!r}; "
            "e.g. (0, 7, 14, 30, 60, 90)"
        )
    return values


def dwell_probabilities(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    bins: Sequence[float] = DEFAULT_BINS,
    confidence: float = 0.95,
    assume_zone: str | tzinfo | None = None,
    by: str | Sequence[str] | None = None,
) -> Any:
    """Probability of winning given the stage and the time already spent in it.

    For each open stage and each bin lower bound ``b``: among the visits of closed deals to the
    stage that lasted at least ``b`` days, the share whose deal was won, with a Wilson
    interval. A deal in the stage for ``a`` days is read off the last row with
    ``dwell_from_days <= a``.

    With ``by=`` (a segment column or several), the rows are per segment: every visit of a
    deal to a stage counts for the segment in force when the deal first entered the stage;
    rows gain ``segment``, ``deals`` (deals that entered the stage under it) and ``small``
    (a frame gets the segment columns first).

    Returns:
        :class:`DwellProbability` rows (or a frame), by stage in process order, then bin.

    Raises:
        AnalyticsError: the bins or the input are unusable.
    """
    _check(confidence)
    edges = check_bins(bins)
    if by is not None:
        from stagegate.analytics._by import dwell_by_segment  # noqa: PLC0415

        return dwell_by_segment(
            data, outcomes, by, bins=edges, confidence=confidence, as_of=as_of,
            assume_zone=assume_zone,
        )  # fmt: skip
    prepared = prepare(data, outcomes, as_of=as_of, assume_zone=assume_zone)
    counts = fit_counts(prepared, edges)
    return emit(
        prepared, dwell_table(counts, prepared.outcomes, edges, confidence), DwellProbability
    )


ESTIMATORS = ("configured", "empirical", "markov", "smoothed", "dwell", "deal_clock")
"""The probability estimators, by name."""
DEFAULT_ESTIMATOR = "deal_clock"
"""The estimator to use when nothing else is said: the one that is right under censoring."""


def predictors(
    counts: Counts,
    outcomes: Outcomes,
    bins: Sequence[float] = DEFAULT_BINS,
    *,
    prior_strength: float = 10.0,
    draws: int = 0,
) -> dict[str, dict[tuple[str, int], float]]:
    """Win probability per (open stage, dwell bin) for every estimator.

    A missing estimate falls back to ``smoothed`` (which is always defined): a stage never
    closed from, a Markov chain that never left a stage, a dwell bin without closed deals.
    """
    table = {p.stage: p for p in estimate(counts, outcomes, prior_strength=prior_strength,
                                          draws=draws)}  # fmt: skip
    dwell = {(d.stage, bins.index(d.dwell_from_days)): d.probability
             for d in dwell_table(counts, outcomes, bins)}  # fmt: skip
    result: dict[str, dict[tuple[str, int], float]] = {e: {} for e in ESTIMATORS}
    for s in outcomes.open:
        p = table[s]
        fallback = p.smoothed if p.smoothed is not None else 0.0
        for i in range(len(bins)):
            values = {
                "configured": p.configured,
                "empirical": p.empirical,
                "markov": p.markov,
                "smoothed": p.smoothed,
                "dwell": dwell.get((s, i)),
                "deal_clock": p.deal_clock,
            }
            for name, value in values.items():
                result[name][s, i] = fallback if value is None else value
    return result
