"""A seeded simulator of stage-gated pipelines with known truth, for tests and what-ifs.

Each deal arrives at a uniformly random instant, starts in the first open stage and, at each
open stage, advances with that stage's ``advance`` probability or is lost. Its dwell in each
stage is lognormal around the stage's median, multiplied by ``lost_dwell_factor`` in the stage
where the deal is lost (doomed deals linger before they are let go). While in a stage its
expected close date may be pushed. So the true probability of winning from stage ``i`` is the
product of the advance probabilities from ``i`` on, known exactly
(:meth:`PipelineModel.true_win_probabilities`).

**The informative mode** (``PipelineModel(informative=True)``, or
``simulate(..., mode="informative")``) is built to be adversarial to estimators that read a
deal's pace one stage at a time. A deal's fate (won or lost) is drawn when it opens and drives
everything after: a deal that will be lost dwells ``lost_dwell_factor`` times longer (default
2.5x) in *every* stage it visits, not only the last; each deal also has a latent pace (a
lognormal factor with sigma ``pace_sigma``) shared by all its stages; and its close date is
pushed with ``lost_push_probability`` per stage visit instead of ``push_probability``.
Deals open uniformly over the window, independently of their fate. Slow, doomed deals then
reach the later stages late and are still open there at ``as_of``: the deals that reached a
stage by ``as_of`` over-represent the fast winners.

Every deal is simulated to its end; the analytics see it cut at ``as_of``. The truth is
computed from that uncensored population (:class:`SimulationTruth`): the share of deals that
reached each stage and went on to win, and the median dwell of won and lost deals in each
stage.

>>> sim = simulate(200, seed=7)
>>> sim.events[0].kind.value, sim.events[0].stage
('opened', 'lead_generation')
>>> round(sim.model.true_win_probabilities()["contract"], 2)
0.85
>>> simulate(200, seed=7).events == sim.events
True
>>> hard = simulate(2000, seed=7, mode="informative")
>>> hard.truth.reached["lead_generation"], round(hard.truth.win_probability["contract"], 2)
(2000, 0.83)
>>> lost, won = (hard.truth.dwell_median_days["needs_analysis"][o] for o in ("lost", "won"))
>>> round(lost / won, 1)
2.7

**Owners, teams and regions** (``segments=True``): each deal gets an owner from a sales
organization (:data:`DEFAULT_REPS`: reps, each in a team led by a manager, in a region),
recorded as ``reassigned`` and ``attribute_set`` events (``team``, ``manager``, ``region``)
at its opening, and a share of deals (``reassign_probability``) is handed to another rep
once, at a random instant of its life. These draws come from a generator of their own, so
every other field (and the truth) is exactly what ``segments=False`` gives:

>>> owned = simulate(200, seed=7, segments=True)
>>> [e.kind.value for e in owned.events[:3]], [e.subject for e in owned.events[1:5]]
(['opened', 'reassigned', 'attribute_set'], ['Dev Lopez', 'team', 'manager', 'region'])
>>> plain = [e for e in owned.events if e.kind.value not in ("reassigned", "attribute_set")]
>>> [(e.opportunity_id, e.at, e.stage) for e in plain] == [
...     (e.opportunity_id, e.at, e.stage) for e in sim.events]
True
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from stagegate._time import UTC, epoch_us, from_epoch_us
from stagegate.errors import InvalidCommandError
from stagegate.events import Event, EventKind, MoveKind, freeze, recorded_event
from stagegate.process import Process

__all__ = [
    "DEFAULT_REPS",
    "DEFAULT_STAGES",
    "MODES",
    "PipelineModel",
    "SimulatedPipeline",
    "SimulationTruth",
    "simulate",
    "simulate_columns",
]

DEFAULT_STAGES = (
    "lead_generation",
    "qualification",
    "needs_analysis",
    "solution_proposal",
    "negotiation",
    "contract",
)
"""The open stages of the built-in ``b2b`` template, in order."""
_DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)
LOSS_REASONS = ("price", "timing", "competitor", "no_decision")


def _organization() -> tuple[tuple[str, str, str, str], ...]:
    regions = ("east", "central", "west")
    managers = ("Mina Park", "Omar Haddad", "Lena Vogel", "Ravi Iyer", "Sofia Lind", "Jun Mori")
    given = ("Ana", "Ben", "Chloe", "Dev", "Eun", "Femi", "Gia", "Hugo")
    family = ("Kim", "Lopez", "Novak")
    reps = []
    for r, region in enumerate(regions):
        for t in range(2):
            team = f"{region}-{t + 1}"
            for k in range(4):
                n = (r * 2 + t) * 4 + k
                owner = f"{given[n % len(given)]} {family[n // len(given)]}"
                reps.append((owner, team, managers[r * 2 + t], region))
    return tuple(reps)


DEFAULT_REPS = _organization()
"""The simulated sales organization: ``(owner, team, manager, region)`` per rep; 24 reps in
6 teams (each led by its manager) in 3 regions."""
_SEGMENT_SALT = "stagegate.simulate.segments"
MODES = ("markov", "informative")
"""The simulator's modes: the fate shows only where a deal is lost, or in its whole history."""


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@attrs.frozen(slots=True)
class PipelineModel:
    """The true process a simulated pipeline follows.

    Attributes:
        stages: open stage ids, in order; then ``won`` and ``lost``.
        advance: per open stage, the probability of advancing (else the deal is lost there);
            advancing from the last open stage wins.
        dwell_median_days: per open stage, the median dwell of a won deal.
        dwell_sigma: the lognormal sigma of dwell times.
        lost_dwell_factor: how much longer a deal stays in the stage where it is lost.
        lost_dwell_everywhere: apply ``lost_dwell_factor`` to every stage a lost deal visits,
            not only the last; then a deal's fate shows in its earlier pace, which breaks
            the Markov property that stage-level estimators rely on (a harder what-if).
        informative: the fate drives the pace in every stage, a per-deal latent pace and the
            close-date pushes (see the module's docs); implies ``lost_dwell_everywhere``.
        pace_sigma: lognormal sigma of the per-deal pace factor (informative mode only).
        lost_push_probability: chance, per stage visit, of a push for a deal that will be
            lost (informative mode only; won deals use ``push_probability``).
        push_probability: chance, per stage visit, of one close-date push.
        push_median_days: median size of a push (lognormal, sigma 0.5), whole days.
        amount_median: median amount (lognormal, sigma ``amount_sigma``), whole units.
        amount_sigma: lognormal sigma of amounts.
        won: the won stage id.
        lost: the lost stage id.
    """

    stages: tuple[str, ...] = attrs.field(default=DEFAULT_STAGES, converter=tuple)
    advance: tuple[float, ...] = attrs.field(
        default=(0.6, 0.65, 0.7, 0.75, 0.8, 0.85), converter=_floats
    )
    dwell_median_days: tuple[float, ...] = attrs.field(
        default=(6.0, 8.0, 12.0, 14.0, 10.0, 7.0), converter=_floats
    )
    dwell_sigma: float = 0.6
    lost_dwell_factor: float = 2.5
    lost_dwell_everywhere: bool = False
    informative: bool = False
    pace_sigma: float = 0.3
    lost_push_probability: float = 0.5
    push_probability: float = 0.25
    push_median_days: float = 14.0
    amount_median: float = 20_000.0
    amount_sigma: float = 0.8
    won: str = "won"
    lost: str = "lost"

    def __attrs_post_init__(self) -> None:
        n = len(self.stages)
        if not n or len(self.advance) != n or len(self.dwell_median_days) != n:
            raise InvalidCommandError(
                "stages, advance and dwell_median_days must be non-empty and of equal length"
            )
        if any(
            not 0 <= p <= 1
            for p in (*self.advance, self.push_probability, self.lost_push_probability)
        ):
            raise InvalidCommandError("probabilities must lie in [0, 1]")
        positive = (*self.dwell_median_days, self.lost_dwell_factor, self.push_median_days)
        if any(not value > 0 for value in positive) or not self.pace_sigma >= 0:
            raise InvalidCommandError(
                "dwell medians, lost_dwell_factor and push_median_days must be positive and "
                "pace_sigma not negative"
            )

    def true_win_probabilities(self) -> dict[str, float]:
        """The true probability of winning from each open stage."""
        result, p = {}, 1.0
        for stage, advance in reversed(list(zip(self.stages, self.advance, strict=True))):
            p *= advance
            result[stage] = p
        return {s: result[s] for s in self.stages}

    def outcomes(self) -> dict[str, str]:
        """The stage kinds, for :mod:`stagegate.analytics`."""
        kinds = dict.fromkeys(self.stages, "open")
        kinds[self.won] = "won"
        kinds[self.lost] = "lost"
        return kinds


Raw = tuple[str, int, int, str, str, str | None, int, int, str | None]
"""(opportunity_id, at_us, seq, kind, stage, from_stage, amount, close_day, reason)."""


Fate = tuple[bool, tuple[tuple[int, int], ...]]
"""(won, ((stage index, dwell in microseconds), ...)) of one deal, to its end."""


def _generate(deals: int, model: PipelineModel, seed: int, start_us: int, span_days: float,
              *, fates: list[Fate] | None = None) -> Iterator[Raw]:  # fmt: skip
    rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not cryptography
    mus = [math.log(m) for m in model.dwell_median_days]
    push_mu = math.log(model.push_median_days)
    amount_mu = math.log(model.amount_median)
    expected_cycle = sum(model.dwell_median_days)
    width = len(str(deals))
    everywhere = model.lost_dwell_everywhere or model.informative
    for n in range(deals):
        opp = f"sim-{n:0{width}d}"
        at = start_us + int(rng.random() * span_days * _DAY_US)
        amount = max(1, round(rng.lognormvariate(amount_mu, model.amount_sigma)))
        close = (at + int(expected_cycle * _DAY_US)) // _DAY_US
        path = []
        for i, p in enumerate(model.advance):
            path.append(i)
            if rng.random() >= p:
                won = False
                break
        else:
            won = True
        last = path[-1]
        pace, push = 1.0, model.push_probability
        if model.informative:  # drawn only here: the markov mode's sequence is unchanged
            pace = rng.lognormvariate(0.0, model.pace_sigma)
            push = model.push_probability if won else model.lost_push_probability
        seq = 1
        previous: str | None = None
        visits = []
        for i in path:
            stage = model.stages[i]
            kind = "opened" if previous is None else "stage_changed"
            yield (opp, at, seq, kind, stage, previous, amount, close, None)
            seq += 1
            slow = not won and (i == last or everywhere)
            factor = (model.lost_dwell_factor if slow else 1.0) * pace
            dwell = int(rng.lognormvariate(mus[i], model.dwell_sigma) * factor * _DAY_US)
            visits.append((i, dwell))
            if rng.random() < push:
                close += max(1, round(rng.lognormvariate(push_mu, 0.5)))
                yield (opp, at + int(rng.random() * dwell), seq, "rescheduled", stage, None,
                       amount, close, None)  # fmt: skip
                seq += 1
            at += dwell
            previous = stage
        if fates is not None:
            fates.append((won, tuple(visits)))
        end = model.won if won else model.lost
        reason = None if won else LOSS_REASONS[int(rng.random() * len(LOSS_REASONS))]
        yield (opp, at, seq, "stage_changed", end, previous, amount, close, reason)


@attrs.frozen
class SimulationTruth:
    """What really happened to every simulated deal, followed to its end (never censored).

    Attributes:
        reached: per open stage, the deals that ever reached it.
        win_probability: per open stage, the share of those that went on to win (``None``
            if none reached it): the target of the win-probability estimators.
        dwell_median_days: per open stage, the median dwell (days) of the visits of deals
            that were won and of those that were lost (keys ``"won"``, ``"lost"``; ``None``
            without such visits): the target of censoring-aware dwell medians.
    """

    reached: Mapping[str, int]
    win_probability: Mapping[str, float | None]
    dwell_median_days: Mapping[str, Mapping[str, float | None]]


def _median(values: list[int]) -> float | None:
    """The median of microseconds, in days (linear interpolation, as the analytics)."""
    if not values:
        return None
    values.sort()
    middle = (len(values) - 1) / 2
    low, high = values[math.floor(middle)], values[math.ceil(middle)]
    return (low + high) / 2 / _DAY_US


def _truth(fates: list[Fate], model: PipelineModel) -> SimulationTruth:
    n = len(model.stages)
    reached, won_from = [0] * n, [0] * n
    dwell: list[dict[str, list[int]]] = [{"won": [], "lost": []} for _ in range(n)]
    for won, visits in fates:
        outcome = "won" if won else "lost"
        for i, us in visits:
            reached[i] += 1
            won_from[i] += won
            dwell[i][outcome].append(us)
    stages = model.stages
    return SimulationTruth(
        MappingProxyType(dict(zip(stages, reached, strict=True))),
        MappingProxyType(
            {s: (w / r if r else None) for s, w, r in zip(stages, won_from, reached, strict=True)}
        ),
        MappingProxyType(
            {
                s: MappingProxyType({o: _median(d[o]) for o in ("won", "lost")})
                for s, d in zip(stages, dwell, strict=True)
            }
        ),
    )


def _with_mode(model: PipelineModel, mode: str | None) -> PipelineModel:
    if mode is None:
        return model
    if mode not in MODES:
        raise InvalidCommandError(f"mode must be one of {MODES}, got {mode!r}")
    return attrs.evolve(model, informative=mode == "informative")


def simulate_columns(
    deals: int,
    *,
    model: PipelineModel | None = None,
    seed: int = 0,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    span_days: float = 365.0,
    mode: str | None = None,
    segments: bool = False,
    reassign_probability: float = 0.15,
) -> dict[str, list[Any]]:
    """The simulated log as columns (fast; for benchmarks and data frames).

    The same deals as :func:`simulate` with the same arguments (``mode`` as there).

    With ``segments``, the same owners and handovers as ``simulate(..., segments=True)``, as
    the columns ``owner``, ``team``, ``manager`` and ``region`` (the values in force from each
    row on); a handover is a row of its own (same stage, amount and close date), so ``seq``
    counts the table's rows, not the events.

    Returns:
        ``opportunity_id``, ``at_us`` (epoch microseconds, UTC), ``seq``, ``stage``,
        ``amount`` (float), ``close_day`` (days since 1970-01-01) and ``reason``: the
        canonical stage-history table, with integer instants and dates.

    Raises:
        InvalidCommandError: ``mode`` is not one of :data:`MODES`.
    """
    chosen = _with_mode(model or PipelineModel(), mode)
    names = ("opportunity_id", "at_us", "seq", "stage", "amount", "close_day", "reason")
    columns: dict[str, list[Any]] = {name: [] for name in names}
    appends = [columns[name].append for name in names]
    raws = _generate(deals, chosen, seed, epoch_us(start), span_days)
    if segments:
        return _segment_columns(raws, columns, seed, reassign_probability)
    for raw in raws:
        opp, at, seq, _, stage, _, amount, close, reason = raw
        for append, value in zip(appends, (opp, at, seq, stage, float(amount), close, reason),
                                 strict=True):  # fmt: skip
            append(value)
    return columns


def _segment_columns(
    raws: Iterator[Raw], columns: dict[str, list[Any]], seed: int, reassign_probability: float
) -> dict[str, list[Any]]:
    if not 0 <= reassign_probability <= 1:
        raise InvalidCommandError(
            f"reassign_probability must lie in [0, 1], got {reassign_probability!r}"
        )
    plan = _SegmentPlan(seed, reassign_probability)
    extra = ("owner", "team", "manager", "region")
    columns.update({name: [] for name in extra})
    for _, group in itertools.groupby(raws, key=lambda r: r[0]):
        for raw, rep in _segment_rows(list(group), plan):
            opp, at, seq, _, stage, _, amount, close, reason = raw
            for name, value in zip(
                (*tuple(columns)[:7], *extra),
                (opp, at, seq, stage, float(amount), close, reason, *rep),
                strict=True,
            ):
                columns[name].append(value)
    return columns


@attrs.frozen
class SimulatedPipeline:
    """A simulated pipeline: its events, the model that made them and a natural ``as_of``.

    Attributes:
        events: every event of every deal, by deal then ``seq``.
        model: the true process (see :meth:`PipelineModel.true_win_probabilities`).
        as_of: the end of the arrival window; deals still running then are open.
        truth: what the deals really did, uncensored (:class:`SimulationTruth`).
        true_win_probabilities: the model's probability of winning from each open stage
            (the truth's ``win_probability`` is the realized share, which it approaches).
    """

    events: tuple[Event, ...]
    model: PipelineModel
    as_of: datetime
    truth: SimulationTruth
    true_win_probabilities: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self, "true_win_probabilities", MappingProxyType(self.model.true_win_probabilities())
        )


def simulate(
    deals: int = 1000,
    *,
    model: PipelineModel | None = None,
    seed: int = 0,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    span_days: float = 365.0,
    process: Process | None = None,
    mode: str | None = None,
    segments: bool = False,
    reassign_probability: float = 0.15,
) -> SimulatedPipeline:
    """Simulate ``deals`` opportunities as :class:`~stagegate.events.Event` logs.

    With ``process``, the events are recorded under that process (its name and version) and
    must use its stage ids; the default model uses those of the built-in b2b template.

    Stage changes are :attr:`~stagegate.events.MoveKind.IMPORTED` (never gate-checked);
    close-date pushes are :attr:`~stagegate.events.EventKind.RESCHEDULED`; every event
    carries the amount and close date in force. The same seed gives the same pipeline.
    Every deal runs to its end: events after ``as_of`` are in ``events`` (the analytics ignore
    them; cut them off before writing an export), and ``truth`` is computed from all of them.

    ``mode``: ``"informative"`` sets :attr:`PipelineModel.informative` on the model (the
    default one if none is given), ``"markov"`` clears it; ``None`` keeps the model as is.

    ``segments``: give deals owners, teams, managers and regions from :data:`DEFAULT_REPS`,
    and reassign a share ``reassign_probability`` of them once (see the module's docs); drawn
    from a generator of their own (seeded by ``seed``), so nothing else changes.

    Raises:
        InvalidCommandError: ``deals`` is negative, ``mode`` is not one of :data:`MODES`, or
            ``reassign_probability`` is not in [0, 1].
    """
    if deals < 0:
        raise InvalidCommandError(f"deals must not be negative, got {deals!r}")
    if not 0 <= reassign_probability <= 1:
        raise InvalidCommandError(
            f"reassign_probability must lie in [0, 1], got {reassign_probability!r}"
        )
    chosen = _with_mode(model or PipelineModel(), mode)
    name, version = ("simulated", "1") if process is None else (process.name, process.version)
    if process is not None:
        unknown = [stage for stage in chosen.stages if stage not in process]
        if unknown:
            raise InvalidCommandError(
                f"the model's stages {unknown} are not stages of process {process.name!r}; "
                "give the model the process's stage ids"
            )
    events = []
    kinds = {"opened": EventKind.OPENED, "stage_changed": EventKind.STAGE_CHANGED,
             "rescheduled": EventKind.RESCHEDULED}  # fmt: skip
    fates: list[Fate] = []
    for opp, at, seq, kind, stage, from_stage, amount, close, reason in _generate(
        deals, chosen, seed, epoch_us(start), span_days, fates=fates
    ):
        moved = kind == "stage_changed"
        events.append(
            Event(
                opportunity_id=opp,
                seq=seq,
                kind=kinds[kind],
                at=from_epoch_us(at),
                actor="simulator",
                stage=stage,
                process=name,
                process_version=version,
                from_stage=from_stage if moved else None,
                move=MoveKind.IMPORTED if moved else None,
                reason=reason,
                amount=Decimal(amount),
                close_date=_EPOCH + timedelta(days=close),
            )
        )
    truth = _truth(fates, chosen)
    if segments:
        events = _with_segments(events, seed, reassign_probability)
    return SimulatedPipeline(tuple(events), chosen, start + timedelta(days=span_days), truth)


def _segment_events(
    at_event: Event, at: datetime, rep: tuple[str, str, str, str], previous: tuple[str, ...]
) -> list[Event]:
    """The events that give a deal ``rep``'s owner and attributes (unchanged ones left out).

    They carry the stage, amount and close date in force after ``at_event``; ``seq`` 0 until
    the deal's log is numbered again.
    """
    owner, team, manager, region = rep
    old = previous or (None, None, None, None)
    changes: list[tuple[EventKind, str, Any]] = []
    if owner != old[0]:
        changes.append((EventKind.REASSIGNED, owner, None))
    for name, value, before in (
        ("team", team, old[1]),
        ("manager", manager, old[2]),
        ("region", region, old[3]),
    ):
        if value != before:
            changes.append((EventKind.ATTRIBUTE_SET, name, freeze({"value": value})))
    e = at_event
    return [
        recorded_event(
            e.opportunity_id,
            0,
            kind,
            at,
            e.actor,
            e.stage,
            e.process,
            e.process_version,
            None,
            None,
            None,
            None,
            e.amount,
            e.close_date,
            subject,
            details,
        )
        for kind, subject, details in changes
    ]


Rep = tuple[str, str, str, str]
"""(owner, team, manager, region) of one simulated rep."""


class _SegmentPlan:
    """Per deal, from a generator of its own: the first rep, and maybe a handover."""

    def __init__(self, seed: int, reassign_probability: float) -> None:
        self._rng = random.Random(f"{_SEGMENT_SALT}:{seed}")  # noqa: S311 - a simulation
        self._p = reassign_probability

    def deal(self, start_us: int, end_us: int, events: int) -> tuple[Rep, tuple[int, Rep] | None]:
        """The rep a deal opens with, and ``(instant, rep)`` of its handover, if any."""
        rng, reps = self._rng, DEFAULT_REPS
        # the same five draws per deal, used or not: a deal's segments depend on its index only
        first = reps[int(rng.random() * len(reps))]
        reassigned = rng.random() < self._p
        when = rng.random()
        same_team = rng.random() < 0.6  # noqa: PLR2004 - most handovers stay in the team
        pick = rng.random()
        if not reassigned or events < 2:  # noqa: PLR2004 - a deal with a history
            return first, None
        team = [r for r in reps if r[1] == first[1] and r != first]
        others = team if same_team else [r for r in reps if r != first]
        return first, (start_us + int(when * (end_us - start_us)), others[int(pick * len(others))])


def _with_segments(events: list[Event], seed: int, reassign_probability: float) -> list[Event]:
    """Insert owner and attribute events into each deal's log, then number them again."""
    plan = _SegmentPlan(seed, reassign_probability)
    result: list[Event] = []
    for _, group in itertools.groupby(events, key=lambda e: e.opportunity_id):
        log = list(group)
        first, handover = plan.deal(epoch_us(log[0].at), epoch_us(log[-1].at), len(log))
        merged = [log[0], *_segment_events(log[0], log[0].at, first, ())]
        rest = log[1:]
        if handover is not None:
            instant = from_epoch_us(handover[0])
            before = [e for e in rest if e.at <= instant]
            in_force = before[-1] if before else log[0]
            merged += before
            merged += _segment_events(in_force, instant, handover[1], first)
            merged += rest[len(before) :]
        else:
            merged += rest
        result.extend(_numbered(e, i) for i, e in enumerate(merged, start=1))
    return result


def _numbered(e: Event, seq: int) -> Event:
    """``e`` with ``seq`` (its fields are already checked: no conversion, as attrs.evolve does)."""
    if e.seq == seq:
        return e
    return recorded_event(
        e.opportunity_id, seq, e.kind, e.at, e.actor, e.stage, e.process, e.process_version,
        e.from_stage, e.move, e.reason, e.gate, e.amount, e.close_date, e.subject, e.details,
    )  # fmt: skip


def _segment_rows(raws: list[Raw], plan: _SegmentPlan) -> Iterator[tuple[Raw, Rep]]:
    """One deal's rows with the rep in force on each, a handover as a row of its own."""
    first, handover = plan.deal(raws[0][1], raws[-1][1], len(raws))
    seq = 0
    for i, raw in enumerate(raws):
        seq += 1
        yield (*raw[:2], seq, *raw[3:]), first
        if (
            handover is not None
            and raw[1] <= handover[0]
            and (i + 1 == len(raws) or raws[i + 1][1] > handover[0])
        ):
            seq += 1
            opp, _, _, _, stage, _, amount, close, _ = raw
            yield (
                (opp, handover[0], seq, "reassigned", stage, None, amount, close, None),
                handover[1],
            )
            first = handover[1]
