"""Moving open deals to a new version of their process: impact, plans and migrations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stagegate import _arguments as arguments
from stagegate._progress import Phases, phase_of
from stagegate._replay import migration_target
from stagegate._time import now, to_utc
from stagegate.errors import cut
from stagegate.events import Event, EventKind, freeze, recorded_event
from stagegate.evolution._diff import (
    EvolutionError,
    given_mapping,
    required_process,
    stage_mapping,
)
from stagegate.opportunity import Opportunity
from stagegate.process import Process

if TYPE_CHECKING:
    from stagegate.store.base import EventStore

__all__ = [
    "DealImpact",
    "DealMove",
    "Impact",
    "MigrationPlan",
    "StrandedDealsError",
    "impact",
    "migrate",
    "plan_migration",
    "store_impact",
    "stored_versions",
]

_MIGRATED = EventKind.MIGRATED


@attrs.frozen(slots=True)
class DealImpact:
    """What a new version means for one open deal.

    Attributes:
        opportunity_id: the deal.
        version: the version it is in now.
        stage: its stage now.
        target: its stage under the new version, or ``None`` (stranded: no place, no mapping).
        exit: the stage its next advance would enter under the new version, if any.
        missing: what the new exit gate lacks (empty when it holds).
    """

    opportunity_id: str
    version: str
    stage: str
    target: str | None
    exit: str | None = None
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "opportunity_id": self.opportunity_id,
            "version": self.version,
            "stage": self.stage,
            "target": self.target,
            "exit": self.exit,
            "missing": list(self.missing),
        }


@attrs.frozen(slots=True)
class Impact:
    """Which open deals a new version blocks, strands or lets through.

    Attributes:
        version: the new version.
        open_deals: open deals of the process not in the new version already (the ones compared).
        blocked: deals whose exit gate holds now but not under the new version.
        stranded: deals in a stage the new version lacks, with no mapping for it.
        newly_eligible: deals whose exit gate fails now but holds under the new version.
    """

    version: str
    open_deals: int
    blocked: tuple[DealImpact, ...]
    stranded: tuple[DealImpact, ...]
    newly_eligible: tuple[DealImpact, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "version": self.version,
            "open_deals": self.open_deals,
            "blocked": [d.to_dict() for d in self.blocked],
            "stranded": [d.to_dict() for d in self.stranded],
            "newly_eligible": [d.to_dict() for d in self.newly_eligible],
        }

    def lines(self, *, limit: int = 20) -> list[str]:
        """Readable lines: counts, then up to ``limit`` deals of each group."""
        head = (
            f"{self.open_deals} open deals compared with version {self.version}: "
            f"{len(self.blocked)} blocked, {len(self.stranded)} stranded, "
            f"{len(self.newly_eligible)} newly eligible"
        )
        out = [head]
        groups = (
            ("blocked", self.blocked),
            ("stranded", self.stranded),
            ("newly eligible", self.newly_eligible),
        )
        for name, deals in groups:
            for deal in deals[:limit]:
                if deal.target is None:
                    why = f"in {deal.stage!r}, which the new version lacks: map it"
                elif deal.missing:
                    why = f"{deal.target!r} -> {deal.exit!r} needs {'; '.join(deal.missing)}"
                else:
                    why = f"{deal.target!r} -> {deal.exit!r} can advance"
                out.append(f"  {name} {deal.opportunity_id}: {why}")
            if len(deals) > limit:
                out.append(f"  ... and {len(deals) - limit} more {name}")
        return out


def _exit_report(deal: Opportunity, at: datetime) -> tuple[str | None, tuple[str, ...], bool]:
    """The next stage of an open deal, what its gate lacks at ``at``, and whether it holds."""
    nxt = deal.process.next_stage(deal.stage)
    if nxt is None:
        return None, (), False
    report = deal.gate_report(nxt.id, at=at)
    return nxt.id, report.missing, report.passed


def impact(
    deals: Iterable[Opportunity],
    process: Process,
    *,
    mapping: Mapping[str, str] | None = None,
    at: datetime | None = None,
    versions: Iterable[Process] = (),
) -> Impact:
    """Which open deals ``process`` (a new version) would block, strand or newly let advance.

    Each open deal of the same process in another version is migrated on a copy and its exit
    gate (the gate of the stage its next advance enters) evaluated at ``at`` (default now)
    under both versions. Closed deals and deals already in ``process``'s version are left out.
    ``versions`` are earlier versions deals passed through (to replay the copies of deals
    migrated before).

    Raises:
        InvalidTimestampError: ``at`` is naive.
        EvolutionError: ``process`` is not a Process, ``deals`` not deals, or ``mapping`` not a
            mapping.
    """
    required_process(process, "impact")
    instant = now() if at is None else to_utc(at)
    given = given_mapping(mapping)
    if isinstance(deals, (str, bytes)) or not isinstance(deals, Iterable):
        raise EvolutionError(
            f"impact takes open deals (an iterable), got {cut(repr(deals))}; pass a list, "
            "e.g. [deal]"
        )
    earlier = tuple(v for v in versions if v.name == process.name and v.version != process.version)
    blocked, stranded, eligible = [], [], []
    compared = 0
    for deal in deals:
        if not isinstance(deal, Opportunity):
            raise EvolutionError(f"impact takes open deals (Opportunity), got {cut(repr(deal))}")
        old = deal.process
        if old.name != process.name or old.version == process.version or deal.is_closed:
            continue
        compared += 1
        where = max(instant, deal.last_at)
        target = migration_target(deal.stage, process, _applicable(given, old))
        if target is None or not process.stage(target).is_open:
            stranded.append(DealImpact(deal.id, old.version, deal.stage, None))
            continue
        _, _, before = _exit_report(deal, where)
        trial = Opportunity.replay(  # a deal migrated back may have passed through ``process``
            old, deal.events, versions=[*(v for v in earlier if v.version != old.version), process]
        )
        trial.migrate(process, at=where, actor="system:impact", mapping=_applicable(given, old))
        exit_stage, missing, after = _exit_report(trial, where)
        found = DealImpact(deal.id, old.version, deal.stage, target, exit_stage, missing)
        if before and not after:
            blocked.append(found)
        elif after and not before:
            eligible.append(found)
    return Impact(process.version, compared, tuple(blocked), tuple(stranded), tuple(eligible))


def _applicable(mapping: Mapping[str, str], old: Process) -> dict[str, str]:
    """The entries of a mapping that concern stages of ``old``."""
    return {k: v for k, v in mapping.items() if k in old}


def store_impact(
    store: EventStore,
    process: Process,
    *,
    mapping: Mapping[str, str] | None = None,
    at: datetime | None = None,
    phases: Phases | None = None,
) -> Impact:
    """:func:`impact` for every open deal of a store, replayed under its stored versions.

    Raises:
        EvolutionError: a deal is in a version the store holds no definition of.
        EventLogError: a stored log does not replay under its versions.
    """
    versions = stored_versions(store, process.name)  # with the new one: a log may return
    earlier = [v for v in versions.values() if v.version != process.version]
    return impact(
        _open_deals(store, process, versions, phases),
        process,
        mapping=mapping,
        at=at,
        versions=earlier,
    )


def _open_deals(
    store: EventStore, process: Process, versions: Mapping[str, Process], phases: Phases | None
) -> Iterator[Opportunity]:
    """The open deals of the process in another version than ``process``'s, replayed."""
    tick = phase_of(phases, "replay", store.count())
    log: list[Event] = []

    def deal_of(log: list[Event]) -> Opportunity | None:
        last = log[-1]
        if last.process != process.name or last.process_version == process.version:
            return None
        old = versions.get(last.process_version)
        if old is None or last.stage not in old or not old.stage(last.stage).is_open:
            return None
        return Opportunity.replay(old, log, versions=versions)

    for done, event in enumerate(store.scan(), start=1):
        if log and log[0].opportunity_id != event.opportunity_id:
            deal = deal_of(log)
            if deal is not None:
                yield deal
            log = []
        log.append(event)
        if tick is not None and done % 10_000 == 0:
            tick(done)
    if log:
        deal = deal_of(log)
        if deal is not None:
            yield deal


class StrandedDealsError(EvolutionError):
    """Open deals have no open stage in the new version, unmapped; nothing was migrated."""

    def __init__(self, plan: MigrationPlan) -> None:
        self.plan = plan
        stages = sorted({m.from_stage for m in plan.stranded})
        target = plan.moves[0].to_stage if plan.moves else "NEW"
        super().__init__(
            f"{len(plan.stranded)} open deals are in stages with no open place in version "
            f"{plan.to_version!r} ({', '.join(map(repr, stages))}: gone, or mapped or turned "
            "into a closed stage); nothing was migrated: map each to an open stage of the new "
            f"version, e.g. mapping={{{stages[0]!r}: {target!r}}} (--map "
            f"{stages[0]}={target})"
        )


@attrs.frozen(slots=True)
class DealMove:
    """One open deal a migration moves (or cannot move).

    Attributes:
        opportunity_id: the deal.
        from_version: the version it leaves.
        from_stage: its stage there.
        to_stage: its stage in the new version; ``None`` when it has no place there.
    """

    opportunity_id: str
    from_version: str
    from_stage: str
    to_stage: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "opportunity_id": self.opportunity_id,
            "from_version": self.from_version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
        }


@attrs.frozen(slots=True)
class MigrationPlan:
    """What a migration of a store does (or did).

    Attributes:
        process: the process name.
        to_version: the version open deals move to.
        mapping: the explicit stage mapping given (old id to new id).
        moves: the open deals moved, in opportunity-id order.
        stranded: open deals in a stage with no place in the new version (nothing is migrated
            while there are any: map their stages).
        closed: closed deals, which keep their version.
        current: deals in the new version already.
        other: deals of other processes.
        applied: whether the migration was written (``False`` for a dry run).
    """

    process: str
    to_version: str
    mapping: Mapping[str, str]
    moves: tuple[DealMove, ...]
    stranded: tuple[DealMove, ...]
    closed: int
    current: int
    other: int
    applied: bool = False

    @property
    def ready(self) -> bool:
        """Whether every open deal has a place in the new version."""
        return not self.stranded

    def by_stage(self) -> dict[tuple[str, str, str], int]:
        """How many deals move from (version, stage) to each new stage."""
        counts: dict[tuple[str, str, str], int] = {}
        for move in self.moves:
            key = (move.from_version, move.from_stage, move.to_stage or "")
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (moves counted by stage, stranded deals listed)."""
        return {
            "process": self.process,
            "to_version": self.to_version,
            "mapping": dict(self.mapping),
            "applied": self.applied,
            "migrated": len(self.moves),
            "moves": [
                {"from_version": v, "from_stage": s, "to_stage": t, "deals": n}
                for (v, s, t), n in self.by_stage().items()
            ],
            "stranded": [m.to_dict() for m in self.stranded],
            "closed": self.closed,
            "current": self.current,
            "other": self.other,
        }

    def lines(self, *, limit: int = 20) -> list[str]:
        """Readable lines."""
        verb = "migrated" if self.applied else "would migrate"
        head = (
            f"{verb} {len(self.moves)} open deals of {self.process!r} to version "
            f"{self.to_version}; {self.closed} closed deals keep their version, "
            f"{self.current} are in version {self.to_version} already"
        )
        out = [head]
        for (version, stage, target), count in self.by_stage().items():
            arrow = "stay in" if stage == target else f"-> {target!r} from"
            out.append(f"  {count} deals {arrow} {stage!r} (version {version})")
        if self.stranded:
            out.append(
                f"  {len(self.stranded)} open deals are in stages with no open place in version "
                f"{self.to_version}; map each to an open stage with --map OLD=NEW:"
            )
            for move in self.stranded[:limit]:
                out.append(f"    {move.opportunity_id} in {move.from_stage!r}")
            if len(self.stranded) > limit:
                out.append(f"    ... and {len(self.stranded) - limit} more")
        return out


def stored_versions(store: EventStore, name: str) -> dict[str, Process]:
    """Every stored version of the process ``name``, by version text.

    Raises:
        DefinitionError: a stored definition no longer loads.
    """
    return {v: store.load_process(n, v) for n, v in store.processes() if n == name}


def _last_events(store: EventStore, phases: Phases | None) -> Iterator[Event]:
    """The last event of every stored opportunity, in id order, from one scan."""
    tick = phase_of(phases, "read")
    done = 0
    for done, event in enumerate(store.last_events(light=True), start=1):
        if done % 10_000 == 0:
            tick(done)
        yield event
    tick(done)


def plan_migration(
    store: EventStore,
    process: Process,
    *,
    mapping: Mapping[str, str] | None = None,
    phases: Phases | None = None,
    at: datetime | None = None,
    deliverables: Mapping[str, str] | None = None,
) -> MigrationPlan:
    """What :func:`migrate` would do: where each open deal of the process goes (a dry run).

    ``at`` and ``deliverables``, when given, are checked as :func:`migrate` checks them, so the
    dry run refuses what the migration would refuse.

    Raises:
        EvolutionError: the store holds no definition of a version its deals are in, nor any
            version or deal of the process, or another definition of the new version, or the
            mapping is not a mapping, names a stage no stored version has, or a stage the new
            version lacks; or ``at`` is before a deal's last event, or ``deliverables`` is
            wrong.
    """
    required_process(process, "plan_migration")
    _deliverable_renames(deliverables, process)
    plan, lasts = _plan(store, process, mapping, phases)
    if at is not None:
        _check_instant(lasts, to_utc(at))
    return plan


def _check_instant(lasts: list[Event], instant: datetime) -> None:
    """Refuse a migration instant before the last event of a deal it moves."""
    late = [e for e in lasts if e.at > instant]
    if late:
        raise EvolutionError(
            f"opportunity {late[0].opportunity_id!r} has an event at {late[0].at.isoformat()}, "
            f"after the migration instant {instant.isoformat()} ({len(late)} deals do); "
            "nothing was migrated: migrate at a later instant"
        )


def _plan(
    store: EventStore,
    process: Process,
    mapping: Mapping[str, str] | None,
    phases: Phases | None,
) -> tuple[MigrationPlan, list[Event]]:
    if not isinstance(process, Process):
        raise EvolutionError(f"migrate to a Process, got {cut(repr(process))}")
    given = given_mapping(mapping)
    versions = stored_versions(store, process.name)
    stored = bool(versions)
    _check_same(versions.pop(process.version, None), process)
    for version in versions.values():  # check the mapping once against every old version
        stage_mapping(version, process, _applicable(given, version))
    unknown = [k for k in given if not any(k in v for v in versions.values())]
    if unknown:
        raise EvolutionError(
            f"the mapping names {', '.join(map(repr, unknown))}, which no stored version of "
            f"{process.name!r} has; stages are mapped from the version deals are in"
        )
    moves: list[DealMove] = []
    stranded: list[DealMove] = []
    lasts: list[Event] = []
    closed = current = other = 0
    applicable: dict[str, dict[str, str]] = {}  # the mapping's entries for each old version
    for last in _last_events(store, phases):
        if last.process != process.name:
            other += 1
            continue
        if last.process_version == process.version:
            current += 1
            continue
        old = versions.get(last.process_version)
        if old is None:
            raise EvolutionError(
                f"opportunity {last.opportunity_id!r} is in version {last.process_version!r} "
                f"of {process.name!r}, which the store holds no definition of; save it with "
                "store.save_process(...) first"
            )
        if last.stage not in old or not old.stage(last.stage).is_open:
            closed += 1
            continue
        if old.version not in applicable:
            applicable[old.version] = _applicable(given, old)
        target = migration_target(last.stage, process, applicable[old.version])
        if target is not None and not process.stage(target).is_open:
            target = None
        move = DealMove(last.opportunity_id, old.version, last.stage, target)
        (moves if target is not None else stranded).append(move)
        if target is not None:
            lasts.append(last)
    if not stored and not (moves or stranded or closed or current):
        raise _not_stored(store, process)
    plan = MigrationPlan(
        process.name,
        process.version,
        given,
        tuple(moves),
        tuple(stranded),
        closed,
        current,
        other,
    )
    return plan, lasts


def _check_same(stored: Process | None, process: Process) -> None:
    """Refuse a new definition under a version the store holds another definition of."""
    if stored is not None and stored != process:
        raise EvolutionError(
            f"the store holds another definition of version {process.version!r} of "
            f"{process.name!r}; nothing was migrated: give the changed definition a new version"
        )


def _not_stored(store: EventStore, process: Process) -> EvolutionError:
    """A migration to a process the store holds no version of (a misspelt name, say)."""
    names = sorted({n for n, _ in store.processes()})
    return EvolutionError(
        f"the store holds no version of process {process.name!r} (it holds "
        f"{', '.join(map(repr, names)) or 'none'}); a migration moves the deals of a stored "
        "process to its new version: give the definition the name of the process it changes"
    )


def migrate(
    store: EventStore,
    process: Process,
    *,
    actor: str,
    mapping: Mapping[str, str] | None = None,
    deliverables: Mapping[str, str] | None = None,
    at: datetime | None = None,
    reason: str | None = None,
    phases: Phases | None = None,
) -> MigrationPlan:
    """Move every open deal of the process to ``process``'s version, all or nothing.

    Each open deal gets one ``migrated`` event (who, when, from which version and stage to
    which, the mapping); closed deals keep their version; history is never rewritten. The new
    definition is saved in the store and every event appended in one transaction, so an error
    or a kill half-way leaves the store as it was; a writer that appends to a deal meanwhile
    makes the migration fail whole (:class:`~stagegate.errors.ConcurrencyError`; run it again).

    Raises:
        StrandedDealsError: an open deal has no place in the new version (its ``plan`` lists
            them in :attr:`MigrationPlan.stranded`).
        EvolutionError: ``at`` is before a deal's last event, ``deliverables`` renames one to
            an id the new version has no deliverable of, or see :func:`plan_migration`.
        StoreError: the store cannot be written, or holds another definition of the version.
    """
    required_process(process, "migrate")
    who = arguments.actor(actor)
    instant = now() if at is None else to_utc(at)
    why = arguments.reason(reason, required=False, what="a migration")
    renamed = _deliverable_renames(deliverables, process)
    plan, lasts = _plan(store, process, mapping, phases)
    if plan.stranded:
        raise StrandedDealsError(plan)
    _check_instant(lasts, instant)
    events = _migration_events(plan, lasts, process, instant, who, why, renamed)
    tick = phase_of(phases, "write", len(events))
    write = getattr(store, "write_import", None)
    if write is not None:
        write(events, process=process, progress=tick)
    else:
        store.save_process(process)
        store.append(events, progress=tick)
    return attrs.evolve(plan, applied=True)


def _deliverable_renames(
    deliverables: Mapping[str, str] | None, process: Process
) -> dict[str, str]:
    """The deliverables renamed (old id to new id), each to a deliverable of ``process``."""
    renamed = dict(arguments.mapping(deliverables or {}, "deliverables"))
    wrong = [(k, v) for k, v in renamed.items() if not isinstance(k, str) or not isinstance(v, str)]
    if wrong:
        raise EvolutionError(
            f"deliverables takes old deliverable ids to new ids (text), got "
            f"{cut(repr(wrong[0][0]))}: {cut(repr(wrong[0][1]))}; nothing was migrated"
        )
    unknown = [(k, v) for k, v in renamed.items() if v not in process.deliverables]
    if unknown:
        raise EvolutionError(
            f"deliverables renames {unknown[0][0]!r} to {cut(repr(unknown[0][1]))}, which is no "
            f"deliverable of version {process.version!r} ({', '.join(process.deliverables)}); "
            "nothing was migrated: name a deliverable of the new version"
        )
    return renamed


def _migration_events(  # noqa: PLR0917 - private, the parts of one migration
    plan: MigrationPlan,
    lasts: list[Event],
    process: Process,
    at: datetime,
    actor: str,
    reason: str | None,
    renamed: Mapping[str, str],
) -> list[Event]:
    details: dict[tuple[str, str], Any] = {}
    events = []
    for move, last in zip(plan.moves, lasts, strict=True):
        key = (move.from_version, move.from_stage)
        if key not in details:
            body: dict[str, Any] = {
                "from_version": move.from_version,
                "from_stage": move.from_stage,
                "mapping": {**process.renamed, **_mapping_for(plan.mapping, move)},
            }
            if renamed:
                body["deliverables"] = dict(renamed)
            details[key] = freeze(body)
        events.append(
            recorded_event(  # every field checked above: the fast constructor
                last.opportunity_id,
                last.seq + 1,
                _MIGRATED,
                at,
                actor,
                move.to_stage or "",
                process.name,
                process.version,
                None,
                None,
                reason,
                None,
                last.amount,
                last.close_date,
                None,
                details[key],
            )
        )
    return events


def _mapping_for(mapping: Mapping[str, str], move: DealMove) -> dict[str, str]:
    """The whole explicit mapping: history analytics map every old stage through it."""
    del move
    return dict(mapping)
