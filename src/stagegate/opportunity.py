"""Opportunities: changed only by commands, each of which appends immutable events.

>>> from datetime import datetime, timedelta, timezone
>>> from stagegate.templates import b2b
>>> t0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "acme-1", at=t0, actor="ana", amount=12_000)
>>> deal.stage
'lead_generation'
>>> try:
...     deal.advance(at=t0 + timedelta(hours=1), actor="ana")
... except GateNotMetError as error:
...     print(error.report.missing)
("deliverable 'lead_record' not recorded",)
>>> _ = deal.record_deliverable("lead_record", at=t0 + timedelta(hours=2), actor="ana",
...                             evidence={"source": "webinar", "contact": "kim@acme.example"})
>>> deal.advance(at=t0 + timedelta(days=2), actor="ana").move.value
'advance'
>>> deal.stage, len(deal.events)
('qualification', 3)
>>> deal.time_in_stage(as_of=t0 + timedelta(days=3))
datetime.timedelta(days=1)

A rejected command raises and changes nothing; every raising command has a query that explains
instead (:meth:`Opportunity.available_moves`, :meth:`Opportunity.gate_report`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from stagegate import _arguments as arguments
from stagegate._replay import (
    RECEIVABLE,
    RESERVED_FIELDS,
    ReplayRules,
    lead_problem,
    migration_target,
    versions_by_text,
)
from stagegate._time import UTC, to_utc
from stagegate.errors import (
    EventLogError,
    GateNotMetError,
    InvalidCommandError,
    MoveNotAllowedError,
    OutOfOrderError,
    UnknownDeliverableError,
    UnknownStageError,
    cut,
)
from stagegate.events import Event, EventKind, MoveKind, freeze, recorded_event
from stagegate.gates import CriterionResult, Facts, GateReport
from stagegate.integrity import event_digest
from stagegate.lifecycle import Move
from stagegate.metrics import OpportunityMetrics, measure
from stagegate.process import Process, StageKind
from stagegate.provenance import PROVENANCE_KEY, Provenance, occurred_at
from stagegate.segments import attribute_name, attribute_value, owner_name

__all__ = ["MoveOption", "Opportunity"]

_WIN_KINDS = frozenset({MoveKind.WIN})
_LOSE_KINDS = frozenset({MoveKind.LOSE})
_REOPEN_KINDS = frozenset({MoveKind.REOPEN})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Enum members as module constants: ``EventKind.X`` is a metaclass lookup, ~10x a global's cost.
_OPENED = EventKind.OPENED
_STAGE_CHANGED = EventKind.STAGE_CHANGED
_ACTIVITY_LOGGED = EventKind.ACTIVITY_LOGGED
_DELIVERABLE_RECORDED = EventKind.DELIVERABLE_RECORDED
_LEAD_SCORED = EventKind.LEAD_SCORED
_REASSIGNED = EventKind.REASSIGNED
_ATTRIBUTE_SET = EventKind.ATTRIBUTE_SET
_MIGRATED = EventKind.MIGRATED
_IMPORTED = MoveKind.IMPORTED
_new_facts = tuple.__new__  # skips Facts.__new__'s argument binding: built on every move


def _hand_entered(value: Any, what: str) -> Mapping[str, Any]:
    """Evidence or details given by a caller: a mapping without the provenance key."""
    checked = arguments.mapping(value, what)
    if PROVENANCE_KEY in checked:
        raise InvalidCommandError(
            f"{what} may not hold {PROVENANCE_KEY!r}: it is kept for evidence from other "
            "systems; record such evidence with receive(..., provenance=Provenance(...))"
        )
    return checked


def in_current_names(events: list[Event] | tuple[Event, ...]) -> list[Event] | tuple[Event, ...]:
    """A log with the stages of events before its migrations renamed to the names in force now.

    Each ``migrated`` event's mapping takes the stages of the version it left to the version it
    entered; composed from the last migration back, every event's ``stage`` and ``from_stage``
    read as stages of the version the log ends in (for durations and other per-deal figures).
    A log without migrations is returned as it is.
    """
    if not any(event.kind is _MIGRATED for event in events):
        return events
    mapping: dict[str, str] = {}
    out: list[Event] = []
    for event in reversed(events):
        stage, before = event.stage, event.from_stage
        if mapping and (stage in mapping or (before is not None and before in mapping)):
            event = attrs.evolve(  # noqa: PLW2901 - the renamed copy replaces it
                event,
                stage=mapping.get(stage, stage),
                from_stage=None if before is None else mapping.get(before, before),
                digest=None,
            )
        out.append(event)
        if event.kind is _MIGRATED:
            step = (event.details or _EMPTY).get("mapping") or _EMPTY
            composed = {old: mapping.get(new, new) for old, new in step.items()}
            for old, new in mapping.items():
                composed.setdefault(old, new)
            mapping = {old: new for old, new in composed.items() if old != new}
    out.reverse()
    return out


@attrs.frozen(slots=True)
class MoveOption:
    """A stage change the policy allows from the current stage, and whether it can happen now.

    Attributes:
        target: the stage that would be entered.
        kind: advance, skip, backward, win, lose or reopen.
        allowed: whether the move would be accepted now (given a reason when one is needed).
        needs_reason: whether a reason must be given.
        report: the gate report for the move (empty when the move checks no gate).
        blocked_by: why the move is blocked (unmet gate criteria); empty when allowed.
    """

    target: str
    kind: MoveKind
    allowed: bool
    needs_reason: bool
    report: GateReport
    blocked_by: tuple[str, ...] = ()


class Opportunity(ReplayRules):
    """A deal moving through a :class:`~stagegate.process.Process`.

    Create one with :meth:`open` (or rebuild one with :meth:`replay`) and change it only with its
    commands. Each accepted command appends exactly one :class:`~stagegate.events.Event` and
    returns it; a rejected command raises a :class:`~stagegate.errors.StagegateError` and leaves
    the opportunity and its log exactly as they were.
    """

    __slots__ = (
        "_activities",
        "_amount",
        "_approvals",
        "_attributes",
        "_close_date",
        "_deliverables",
        "_earlier",
        "_events",
        "_fields",
        "_id",
        "_lead",
        "_owner",
        "_process",
        "_sourced",
        "_stage",
        "_stage_entered_at",
    )

    def __init__(self, process: Process, opportunity_id: str) -> None:
        """Prefer :meth:`open` or :meth:`replay`: this makes an empty, unopened shell."""
        if not isinstance(process, Process):
            raise InvalidCommandError(f"process must be a Process, got {process!r}")
        self._process = process
        self._id = arguments.name(opportunity_id, "opportunity_id")
        self._events: list[Event] = []
        self._stage = process.initial.id
        self._stage_entered_at: datetime | None = None
        self._amount: Decimal | None = None
        self._close_date: date | None = None
        self._deliverables: dict[str, Event] | None = None
        self._activities: list[Event] | None = None
        self._approvals: dict[str, Event] | None = None
        self._fields: dict[str, Any] | None = None
        self._lead: Event | None = None
        self._sourced: dict[tuple[str, str], Event] | None = None
        self._owner: str | None = None
        self._attributes: dict[str, str] | None = None
        self._earlier: tuple[Process, ...] = ()  # the versions it was migrated from

    # -- creation --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        process: Process,
        opportunity_id: str,
        *,
        at: datetime,
        actor: str,
        amount: float | Decimal | str | None = None,
        close_date: date | None = None,
        fields: Mapping[str, Any] | None = None,
        owner: str | None = None,
        attributes: Mapping[str, str | None] | None = None,
    ) -> Opportunity:
        """Open an opportunity in the first stage of ``process``.

        With ``owner`` and ``attributes`` (segment attributes such as ``team`` or ``region``),
        it also records a ``reassigned`` event and one ``attribute_set`` event per attribute
        (``None`` values skipped), at the opening instant, right after ``opened``.

        Raises:
            InvalidTimestampError: ``at`` is naive or not a datetime.
            InvalidCommandError: an argument has the wrong type or value.
        """
        opportunity = cls(process, opportunity_id)
        instant = to_utc(at)
        who = arguments.actor(actor)
        money = None if amount is None else arguments.amount(amount)
        closing = None if close_date is None else arguments.close_date(close_date)
        details = None
        if fields:
            for name in fields:
                cls._check_field_name(name)
            details = freeze({"fields": dict(fields)}, path="fields")
        owned = None if owner is None else owner_name(owner)
        segments = cls._check_attributes(attributes)
        opportunity._apply(
            Event(
                opportunity._id,
                1,
                EventKind.OPENED,
                instant,
                who,
                process.initial.id,
                process.name,
                process.version,
                amount=money,
                close_date=closing,
                details=details,
            )
        )
        if owned is not None:
            opportunity._record(_REASSIGNED, instant, who, subject=owned)
        for name, value in segments:
            opportunity._record(
                _ATTRIBUTE_SET, instant, who, subject=name, details=freeze({"value": value})
            )
        return opportunity

    @staticmethod
    def _check_attributes(attributes: Mapping[str, str | None] | None) -> list[tuple[str, str]]:
        if attributes is None:
            return []
        checked = []
        for name, value in arguments.mapping(attributes, "attributes").items():
            text = attribute_value(value, attribute_name(name))
            if text is not None:
                checked.append((name, text))
        return checked

    @classmethod
    def replay(
        cls,
        process: Process,
        events: Iterable[Event],
        *,
        versions: Iterable[Process] | Mapping[str, Process] = (),
    ) -> Opportunity:
        """Rebuild an opportunity from its events, verifying each one against ``process``.

        The result equals the one that made the events. Every event is checked for shape (one
        opportunity, ``seq`` 1, 2, 3, ..., instants in order, the process's name and version,
        known stages) and for meaning: each stage change is a move the policies allow, recorded
        with its kind; a gate-checked move's gate holds when evaluated again from the facts of
        the log as of that instant, and its recorded gate report is that evaluation (the same
        criteria, results and satisfying events; the wording of reasons may differ); an
        override is allowed and gives a reason, as do losses, reopenings and the backward moves
        that need one; values are well-formed (amounts finite and >= 0, declared deliverables,
        custom field names) and change only through the events that change them; a closed deal
        is not rescheduled. Events that carry a ``digest`` must chain (see
        :mod:`stagegate.integrity`).

        History imported from another system is taken as it was recorded: stage changes of
        kind :attr:`~stagegate.events.MoveKind.IMPORTED` are never gate- or policy-checked, and
        a log that opens in a stage other than the first (only imports do) may also reschedule
        closed deals. :func:`stagegate.verify` can refuse imported history
        (``allow_imported=False``).

        A log migrated between versions of its process (events of kind
        :attr:`~stagegate.events.EventKind.MIGRATED`) is checked against the version in force at
        each event: the events before a migration against the version it left, the events after
        it against the version it entered. ``process`` is the version the log ends in (usually
        the current one); ``versions`` gives the earlier ones it passed through (Process
        objects, or a mapping of version text to Process). A migration must leave the version
        in force, from the stage the deal was in, to the stage its mapping names, of an open
        deal, with the amount and close date unchanged.

        Raises:
            EventLogError: the log breaks a rule; ``seq`` names the event and ``rule`` the rule.
        """
        log = list(events)
        if not log:
            raise EventLogError(
                "cannot replay an empty log: an opportunity starts with 'opened'", rule="empty_log"
            )
        first = log[0]
        if not isinstance(first, Event) or first.kind is not EventKind.OPENED:
            raise EventLogError(
                f"the first event must be of kind 'opened', got {cut(repr(first))}",
                seq=1,
                rule="first_not_opened",
            )
        if not isinstance(process, Process):
            raise InvalidCommandError(f"process must be a Process, got {cut(repr(process))}")
        try:
            opportunity = cls(process, first.opportunity_id)
        except InvalidCommandError as exc:
            raise EventLogError(
                f"event 1 has an unusable opportunity id: {exc}", seq=1, rule="bad_id"
            ) from None
        previous_digest: str | None = None
        chained = True
        known = versions_by_text(process, versions)
        if first.process_version != process.version and first.process_version in known:
            opportunity._process = known[first.process_version]  # the version it opened in
        opportunity._earlier = tuple(v for v in known.values() if v is not process)
        imported = first.stage != opportunity._process.initial.id  # commands open there
        for position, event in enumerate(log, start=1):
            target = None
            if type(event) is Event and event.kind is _MIGRATED:
                target = opportunity._check_migration(event, position, known)
            else:
                opportunity._check_replayed(event, position)
                opportunity._check_meaning(event, imported=imported)
            if event.move is _IMPORTED:
                imported = True
            if event.digest is not None:
                if not chained:
                    raise opportunity._broken(
                        event,
                        "digest_gap",
                        "carries a digest after an event without one: a sealed log is sealed "
                        "from its first event on; seal the whole log again with "
                        "stagegate.seal()",
                    )
                expected = event_digest(event, previous_digest)
                if event.digest != expected:
                    raise opportunity._broken(
                        event,
                        "digest_mismatch",
                        f"has digest {event.digest[:12]}..., but its content and the digest "
                        f"before it give {expected[:12]}...: the event or one before it was "
                        "changed after it was sealed; restore the log from a trusted copy",
                    )
                previous_digest = event.digest
            else:
                chained = False
            if target is not None:
                opportunity._process = target
            opportunity._apply(event)
        return opportunity

    def _apply(self, event: Event) -> None:
        """Append ``event`` and update the state; the only place state changes."""
        kind = event.kind
        if kind is _STAGE_CHANGED or kind is _OPENED:
            if kind is _OPENED and event.details is not None:
                opening_fields = event.details.get("fields")
                if opening_fields:
                    self._fields = dict(opening_fields)
            self._stage = event.stage
            self._stage_entered_at = event.at
        elif kind is EventKind.DELIVERABLE_RECORDED:
            self._apply_deliverable(event)
        elif kind is EventKind.ACTIVITY_LOGGED:
            if self._activities is None:
                self._activities = []
            self._activities.append(event)
            details = event.details
            if details is not None and PROVENANCE_KEY in details:
                self._index_source(event)
        elif kind is _LEAD_SCORED:
            if self._lead is None or occurred_at(event) >= occurred_at(self._lead):
                self._lead = event
            self._index_source(event)
        elif kind is EventKind.APPROVAL_RECORDED:
            if self._approvals is None:
                self._approvals = {}
            self._approvals[event.subject or ""] = event
        elif kind is _MIGRATED:
            self._stage = event.stage  # a new name for the same place: not a stage entry
            renamed = (event.details or _EMPTY).get("deliverables")
            if renamed and self._deliverables:
                self._deliverables = {
                    renamed.get(key, key): recorded for key, recorded in self._deliverables.items()
                }
        elif kind is EventKind.FIELD_SET:
            if self._fields is None:
                self._fields = {}
            self._fields[event.subject or ""] = (event.details or {}).get("value")
        elif kind is _REASSIGNED:
            self._owner = event.subject
        elif kind is _ATTRIBUTE_SET:
            if self._attributes is None:
                self._attributes = {}
            value = (event.details or {}).get("value")
            if value is None:
                self._attributes.pop(event.subject or "", None)
            else:
                self._attributes[event.subject or ""] = value
        self._amount = event.amount
        self._close_date = event.close_date
        self._events.append(event)

    def _apply_deliverable(self, event: Event) -> None:
        if self._deliverables is None:
            self._deliverables = {}
        details = event.details
        if details is None or PROVENANCE_KEY not in details:
            self._deliverables[event.subject or ""] = event  # at >= every occurrence before
            return
        latest = self._deliverables.get(event.subject or "")
        if latest is None or occurred_at(event) >= occurred_at(latest):  # late: maybe older
            self._deliverables[event.subject or ""] = event
        self._index_source(event)

    def _index_source(self, event: Event) -> None:
        details = event.details
        if details is None or PROVENANCE_KEY not in details:
            return
        source = details[PROVENANCE_KEY]  # checked by the command or by replay
        if self._sourced is None:
            self._sourced = {}
        self._sourced[source["system"], source["source_id"]] = event

    @property
    def id(self) -> str:
        """The opportunity id."""
        return self._id

    @property
    def process(self) -> Process:
        """The process the opportunity moves through."""
        return self._process

    @property
    def stage(self) -> str:
        """The id of the current stage."""
        return self._stage

    @property
    def events(self) -> tuple[Event, ...]:
        """The log: every event, oldest first."""
        return tuple(self._events)

    @property
    def version(self) -> int:
        """The ``seq`` of the last event (the number of events)."""
        return len(self._events)

    @property
    def amount(self) -> Decimal | None:
        """The amount in force."""
        return self._amount

    @property
    def close_date(self) -> date | None:
        """The expected close date in force (the actual one once closed, if rescheduled so)."""
        return self._close_date

    @property
    def fields(self) -> Mapping[str, Any]:
        """The custom fields in force (read-only)."""
        return MappingProxyType(dict(self._fields or {}))

    @property
    def owner(self) -> str | None:
        """The owner in force (the rep responsible), or ``None`` if never assigned."""
        return self._owner

    @property
    def attributes(self) -> Mapping[str, str]:
        """The segment attributes in force (read-only; cleared ones left out)."""
        return MappingProxyType(dict(self._attributes or {}))

    @property
    def deliverables(self) -> Mapping[str, Event]:
        """The latest event recording each deliverable (read-only)."""
        return MappingProxyType(dict(self._deliverables or {}))

    @property
    def is_closed(self) -> bool:
        """Whether the current stage is won or lost."""
        return self._process.stage(self._stage).kind is not StageKind.OPEN

    @property
    def is_won(self) -> bool:
        """Whether the current stage is a won stage."""
        return self._process.stage(self._stage).kind is StageKind.WON

    @property
    def is_lost(self) -> bool:
        """Whether the current stage is a lost stage."""
        return self._process.stage(self._stage).kind is StageKind.LOST

    @property
    def opened_at(self) -> datetime:
        """When the opportunity was opened."""
        return self._events[0].at

    @property
    def last_at(self) -> datetime:
        """The instant of the last event; commands must be at or after it."""
        return self._events[-1].at

    def __repr__(self) -> str:
        return (
            f"<Opportunity {self._id!r} in {self._stage!r} of {self._process.name!r} "
            f"v{self._process.version}, {len(self._events)} events>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Opportunity):
            return NotImplemented
        return self._process == other._process and self._events == other._events

    __hash__ = None  # type: ignore[assignment] # mutable

    # -- command plumbing ------------------------------------------------------------------

    def _instant(self, at: datetime) -> datetime:
        instant = at if type(at) is datetime and at.tzinfo is UTC else to_utc(at)
        if self._events and instant < self._events[-1].at:
            raise OutOfOrderError(instant, self._events[-1].at, self._id)
        return instant

    def _record(
        self,
        kind: EventKind,
        at: datetime,
        actor: str,
        *,
        stage: str | None = None,
        from_stage: str | None = None,
        move: MoveKind | None = None,
        reason: str | None = None,
        gate: GateReport | None = None,
        amount: Decimal | None = None,
        close_date: date | None = None,
        subject: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        process = self._process
        event = recorded_event(
            self._id,
            len(self._events) + 1,
            kind,
            at,
            actor,
            self._stage if stage is None else stage,
            process.name,
            process.version,
            from_stage,
            move,
            reason,
            gate,
            self._amount if amount is None else amount,
            self._close_date if close_date is None else close_date,
            subject,
            details,
        )
        self._apply(event)
        return event

    def _facts(self, at: datetime) -> Facts:
        return _new_facts(
            Facts,
            (
                at,
                self._stage_entered_at,
                self._deliverables or _EMPTY,
                self._activities or (),
                self._approvals or _EMPTY,
                self._fields or _EMPTY,
                self._amount,
                self._close_date,
                self._lead,
            ),
        )

    def _report(self, move: Move, at: datetime) -> GateReport:
        """Evaluate the gates a move checks, as one report for its target."""
        if not move.checks:
            return GateReport(move.target)
        facts = self._facts(at)
        if len(move.gates) == 1:
            return move.gates[0].report(move.target, facts)
        results: list[CriterionResult] = []
        for stage_id, gate in zip(move.checks, move.gates, strict=True):
            if stage_id == move.target:
                results.extend(gate.report(stage_id, facts).results)
            else:
                inner = gate.report(stage_id, facts)
                results.append(
                    CriterionResult(
                        f"gate of passed stage {stage_id!r}",
                        inner.passed,
                        "met" if inner.passed else "unmet: " + "; ".join(inner.missing),
                        children=inner.results,
                    )
                )
        return GateReport(move.target, tuple(results))

    def _allowed_targets(self) -> tuple[str, ...]:
        return tuple(m.target for m in self._process.lifecycle.moves_from(self._stage))

    def _find_move(self, target: str) -> Move:
        process = self._process
        if target not in process:
            raise UnknownStageError(target, process.stage_ids, process=process.name)
        if target == self._stage:
            raise MoveNotAllowedError(
                self._stage, target, "the opportunity is already there", self._allowed_targets()
            )
        move = process.lifecycle.move(self._stage, target)
        if move is None:
            raise MoveNotAllowedError(
                self._stage, target, self._why_not(target), self._allowed_targets()
            )
        return move

    def _why_not(self, target: str) -> str:
        process = self._process
        source, policies = process.stage(self._stage), process.policies
        goal = process.stage(target)
        if source.kind is not StageKind.OPEN:
            if goal.kind is not StageKind.OPEN:
                return f"the opportunity is closed ({source.kind.value}); reopen it first"
            return "the policy does not allow reopening closed deals"
        if process.index(target) < process.index(self._stage):
            if goal.kind is not StageKind.OPEN:  # pragma: no cover - closed stages come last
                return "that stage cannot be entered from here"
            return "the policy does not allow moving backward"
        if not policies.allow_skip:
            return "the policy does not allow skipping stages; advance one stage at a time"
        return "that stage cannot be entered from here"  # pragma: no cover

    def _change(
        self,
        target: str,
        *,
        at: datetime,
        actor: str,
        reason: str | None,
        kinds: frozenset[MoveKind] | None = None,
        override: bool = False,
    ) -> Event:
        instant = self._instant(at)
        who = arguments.actor(actor)
        if reason is not None and not isinstance(reason, str):
            raise InvalidCommandError(f"reason must be text, got {reason!r}")
        move = self._find_move(target)
        return self._perform(move, instant, who, reason=reason, kinds=kinds, override=override)

    def _perform(
        self,
        move: Move,
        instant: datetime,
        who: str,
        *,
        reason: str | None,
        kinds: frozenset[MoveKind] | None = None,
        override: bool = False,
    ) -> Event:
        target = move.target
        if kinds is not None and move.kind not in kinds:
            wanted = " or ".join(sorted(k.value for k in kinds))
            raise MoveNotAllowedError(
                self._stage,
                target,
                f"that is a {move.kind.value} move, not a {wanted}",
                self._allowed_targets(),
            )
        if override:
            if not self._process.policies.allow_override:
                raise MoveNotAllowedError(
                    self._stage,
                    target,
                    "the policy does not allow overriding gates",
                    self._allowed_targets(),
                )
            why = arguments.reason(reason, required=True, what="an override")
        elif reason is None and not move.needs_reason:
            why = None
        else:
            why = arguments.reason(
                reason, required=move.needs_reason, what=f"a {move.kind.value} move"
            )
        return self._enter(move, instant, who, why, override)

    def _enter(
        self, move: Move, instant: datetime, who: str, why: str | None, override: bool
    ) -> Event:
        """Check the move's gates (unless overridden), then record and apply the stage change."""
        report = self._report(move, instant)
        if not override and not report.passed:
            raise GateNotMetError(move.target, report)
        process = self._process
        event = recorded_event(
            self._id,
            len(self._events) + 1,
            _STAGE_CHANGED,
            instant,
            who,
            move.target,
            process.name,
            process.version,
            self._stage,
            MoveKind.OVERRIDE if override else move.kind,
            why,
            report if move.checks else None,
            self._amount,
            self._close_date,
            None,
            None,
        )
        self._apply(event)
        return event

    # -- stage commands --------------------------------------------------------------------

    def advance(self, *, at: datetime, actor: str) -> Event:
        """Move to the next stage (into the won stage from the last open one), gate permitting.

        Raises:
            MoveNotAllowedError: the opportunity is closed, or there is no next stage.
            GateNotMetError: the next stage's gate does not hold; ``report`` says why.
            InvalidTimestampError: ``at`` is naive or before the last event.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        move = self._process.lifecycle.advance_from(self._stage)
        if move is None:
            nxt = self._process.next_stage(self._stage)
            why = (
                "the opportunity is closed; reopen it first"
                if self.is_closed
                else "there is no next stage"
            )
            target = self._stage if nxt is None else nxt.id
            raise MoveNotAllowedError(self._stage, target, why, self._allowed_targets())
        if move.needs_reason:  # pragma: no cover - advancing and winning need no reason
            return self._perform(move, instant, who, reason=None)
        return self._enter(move, instant, who, None, False)

    def move_to(self, stage: str, *, at: datetime, actor: str, reason: str | None = None) -> Event:
        """Move to a named stage, as the policy allows: advance, skip, back, win, lose, reopen.

        Raises:
            UnknownStageError: no such stage.
            MoveNotAllowedError: the policy does not allow the move; ``allowed`` lists what is.
            GateNotMetError: a gate the move checks does not hold.
            InvalidCommandError: the move needs a reason and none was given.
        """
        return self._change(stage, at=at, actor=actor, reason=reason)

    def win(self, *, at: datetime, actor: str, stage: str | None = None) -> Event:
        """Close the opportunity as won (the first won stage unless ``stage`` names one).

        Raises:
            MoveNotAllowedError: the won stage cannot be entered from here.
            GateNotMetError: the won stage's gate does not hold.
        """
        target = stage or self._process.won_stages[0].id
        return self._change(target, at=at, actor=actor, reason=None, kinds=_WIN_KINDS)

    def lose(self, *, at: datetime, actor: str, reason: str, stage: str | None = None) -> Event:
        """Close the opportunity as lost, from any open stage, with a reason.

        Raises:
            InvalidCommandError: no reason was given.
            MoveNotAllowedError: the opportunity is already closed.
        """
        arguments.reason(reason, required=True, what="losing a deal")
        target = stage or self._process.lost_stages[0].id
        return self._change(target, at=at, actor=actor, reason=reason, kinds=_LOSE_KINDS)

    def reopen(self, *, at: datetime, actor: str, reason: str, stage: str | None = None) -> Event:
        """Reopen a closed opportunity, by default in the stage it was closed from.

        Raises:
            MoveNotAllowedError: the opportunity is open, or the policy forbids reopening.
            InvalidCommandError: no reason was given.
        """
        arguments.reason(reason, required=True, what="reopening a deal")
        target = stage
        if target is None:
            if not self.is_closed:
                self._instant(at)
                raise MoveNotAllowedError(
                    self._stage, self._stage, "the opportunity is open", self._allowed_targets()
                )
            target = self._closed_from()
        return self._change(target, at=at, actor=actor, reason=reason, kinds=_REOPEN_KINDS)

    def _closed_from(self) -> str:
        """The open stage the opportunity was in when it last closed."""
        for event in reversed(self._events):
            if event.kind is EventKind.STAGE_CHANGED and event.from_stage is not None:
                if self._process.stage(event.from_stage).is_open:
                    return event.from_stage
                break
        return self._process.open_stages[-1].id

    def override(self, stage: str, *, at: datetime, actor: str, reason: str) -> Event:
        """Move despite an unmet gate, with a reason; recorded as an override with the report.

        The policy still decides which moves exist; only the gate is set aside.

        Raises:
            MoveNotAllowedError: the move itself is not allowed, or overrides are disabled.
            InvalidCommandError: no reason was given.
        """
        arguments.reason(reason, required=True, what="an override")
        return self._change(stage, at=at, actor=actor, reason=reason, override=True)

    def record_history(
        self, stage: str, *, at: datetime, actor: str, reason: str | None = None
    ) -> Event:
        """Record a stage change taken from another system's history (an import).

        Such changes are recorded as :attr:`~stagegate.events.MoveKind.IMPORTED`: never checked
        against gates or policies, and never presented as gate-approved.

        Raises:
            UnknownStageError: no such stage.
            MoveNotAllowedError: the opportunity is already in that stage.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        process = self._process
        if stage not in process:
            raise UnknownStageError(stage, process.stage_ids, process=process.name)
        if stage == self._stage:
            raise MoveNotAllowedError(
                self._stage, stage, "the opportunity is already there", self._allowed_targets()
            )
        why = arguments.reason(reason, required=False, what="an imported change")
        return self._record(
            EventKind.STAGE_CHANGED,
            instant,
            who,
            stage=stage,
            from_stage=self._stage,
            move=MoveKind.IMPORTED,
            reason=why,
        )

    def migrate(
        self,
        process: Process,
        *,
        at: datetime,
        actor: str,
        mapping: Mapping[str, str] | None = None,
        deliverables: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> Event:
        """Move this open deal to another version of its process, recorded as ``migrated``.

        The deal keeps its place: it is in the stage ``mapping`` names for its current stage
        (else the new version's :attr:`~stagegate.process.Process.renamed` map names, else the
        stage of the same id), without a stage change, a gate check or a new stage-entry
        instant. Its history stays as it was, checked against the old version on replay.
        ``deliverables`` renames recorded deliverables (old id to new id) for the new gates.

        Raises:
            InvalidCommandError: ``process`` is not another version of this deal's process, the
                deal is closed (closed deals keep their version), or the current stage has no
                open place in the new version (map it).
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        before = self._process
        if not isinstance(process, Process) or process.name != before.name:
            raise InvalidCommandError(
                f"a deal of process {before.name!r} migrates to another version of it, got "
                f"{cut(repr(process))}"
            )
        if process.version == before.version:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is in version {process.version!r} already; give the "
                "new definition another version"
            )
        if self.is_closed:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is closed ({self._stage!r}); closed deals keep the "
                "version they were closed in"
            )
        stages = dict(arguments.mapping(mapping or {}, "mapping"))
        renamed = dict(arguments.mapping(deliverables or {}, "deliverables"))
        for key, value in (*stages.items(), *renamed.items()):
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidCommandError(
                    f"a mapping takes old ids to new ids (text), got {cut(repr(key))}: "
                    f"{cut(repr(value))}"
                )
        target = migration_target(self._stage, process, stages)
        if target is None or not process.stage(target).is_open:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is in {self._stage!r}, which version "
                f"{process.version!r} does not have as an open stage; map it to one, e.g. "
                f"mapping={{{self._stage!r}: {process.open_stages[0].id!r}}}"
            )
        why = arguments.reason(reason, required=False, what="a migration")
        details: dict[str, Any] = {
            "from_version": before.version,
            "from_stage": self._stage,
            "mapping": {**process.renamed, **stages},
        }
        if renamed:
            details["deliverables"] = renamed
        event = recorded_event(
            self._id,
            len(self._events) + 1,
            _MIGRATED,
            instant,
            who,
            target,
            process.name,
            process.version,
            None,
            None,
            why,
            None,
            self._amount,
            self._close_date,
            None,
            freeze(details),
        )
        self._earlier = (*self._earlier, before)
        self._process = process
        self._apply(event)
        return event

    # -- evidence and data commands --------------------------------------------------------

    def record_deliverable(
        self,
        deliverable: str,
        *,
        at: datetime,
        actor: str,
        evidence: Mapping[str, Any] | None = None,
    ) -> Event:
        """Record a deliverable declared by the process, with its evidence (JSON values).

        Raises:
            UnknownDeliverableError: the process declares no such deliverable.
            InvalidCommandError: the id is not text, or the evidence is not a mapping of
                JSON values.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        if not isinstance(deliverable, str):
            raise InvalidCommandError(
                f"deliverable must be a deliverable id (text), got {deliverable!r}"
            )
        if deliverable not in self._process.deliverables:
            raise UnknownDeliverableError(deliverable, tuple(self._process.deliverables))
        details = (
            None
            if evidence is None
            else freeze(_hand_entered(evidence, "evidence"), path="evidence")
        )
        return self._record(
            EventKind.DELIVERABLE_RECORDED, instant, who, subject=deliverable, details=details
        )

    def log_activity(
        self,
        activity: str,
        *,
        at: datetime,
        actor: str,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        """Log an activity (a call, a meeting, an email), e.g. fed from a calendar or inbox.

        Any activity type is accepted, so automated sources can feed evidence in; only the
        types the process declares count toward its gates.

        Raises:
            InvalidCommandError: the type is empty or the details are not JSON-like.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        kind = arguments.name(activity, "activity")
        frozen = (
            None if details is None else freeze(_hand_entered(details, "details"), path="details")
        )
        return self._record(EventKind.ACTIVITY_LOGGED, instant, who, subject=kind, details=frozen)

    def score_lead(
        self,
        score: float | None = None,
        status: str | None = None,
        *,
        at: datetime,
        actor: str,
        scored_by: str | None = None,
    ) -> Event:
        """Record marketing's lead score and/or qualification status (e.g. ``72``, ``"MQL"``).

        The score in force is the one that occurred last; gates check it with
        :class:`~stagegate.gates.LeadQualification`. ``scored_by`` names the scoring system or
        model (default: ``actor``).

        Raises:
            InvalidCommandError: neither a score nor a status, a score that is not a finite
                number, or a status that is not text.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        by = who if scored_by is None else arguments.name(scored_by, "scored_by")
        details = {"score": score, "status": status}
        problem = lead_problem(details)
        if problem is not None:
            raise InvalidCommandError(f"cannot score a lead with {problem}")
        return self._record(_LEAD_SCORED, instant, who, subject=by, details=freeze(details))

    def receive(
        self,
        kind: EventKind | str,
        subject: str,
        *,
        provenance: Provenance,
        actor: str,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        """Record an activity, a deliverable or a lead score that another system reported.

        ``kind`` is ``activity_logged`` (``subject``: the activity type),
        ``deliverable_recorded`` (``subject``: a declared deliverable; ``details``: its
        evidence) or ``lead_scored`` (``subject``: who scored; ``details``: ``score`` and/or
        ``status``). The provenance is kept in ``details["provenance"]``.

        Idempotent: a source event (``provenance.key``) already recorded for this deal is not
        recorded again; the event that recorded it is returned and nothing changes. An event
        takes its place in the log at the instant it occurred, or, when it arrives after later
        events were recorded, at the instant of the last event: the log stays in time order and
        what was decided before it arrived stands (a gate already passed is not re-evaluated).
        Stage timing still sees its real instant (:func:`~stagegate.provenance.occurred_at`).

        Raises:
            InvalidCommandError: an unknown kind, a bad subject or details, or details that
                carry a ``provenance`` of their own.
            UnknownDeliverableError: the process declares no such deliverable.
        """
        if not isinstance(provenance, Provenance):
            raise InvalidCommandError(
                f"provenance must be a stagegate.Provenance, got {cut(repr(provenance))}"
            )
        try:
            event_kind = EventKind(kind)
        except ValueError:
            event_kind = None
        if event_kind not in RECEIVABLE:
            raise InvalidCommandError(
                f"cannot receive {cut(repr(kind))} from another system; receive one of "
                f"{', '.join(k.value for k in RECEIVABLE)}"
            )
        first = None if self._sourced is None else self._sourced.get(provenance.key)
        if first is not None:
            return first
        who = arguments.actor(actor)
        last = self._events[-1].at
        instant = max(provenance.occurred_at, last)
        body = dict(_hand_entered(details, "details")) if details is not None else {}
        body[PROVENANCE_KEY] = provenance.to_dict()
        if event_kind is _ACTIVITY_LOGGED:
            name = arguments.name(subject, "activity")
        elif event_kind is _DELIVERABLE_RECORDED:
            if not isinstance(subject, str):
                raise InvalidCommandError(
                    f"deliverable must be a deliverable id (text), got {cut(repr(subject))}"
                )
            if subject not in self._process.deliverables:
                raise UnknownDeliverableError(subject, tuple(self._process.deliverables))
            name = subject
        else:
            name = arguments.name(subject, "scored_by")
            problem = lead_problem(body)
            if problem is not None:
                raise InvalidCommandError(f"cannot score a lead with {problem}")
        frozen = freeze(body, path="details")
        return self._record(event_kind, instant, who, subject=name, details=frozen)

    def received(self, system: str, source_id: str) -> Event | None:
        """The event that recorded ``source_id`` of ``system`` for this deal, if any."""
        if self._sourced is None:
            return None
        return self._sourced.get((system, str(source_id)))

    @property
    def lead(self) -> Event | None:
        """The ``lead_scored`` event in force (the one that occurred last), if any."""
        return self._lead

    def record_approval(self, role: str, *, at: datetime, actor: str) -> Event:
        """Record that ``actor``, acting in ``role``, approved the opportunity.

        Raises:
            InvalidCommandError: the role is empty.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        return self._record(
            EventKind.APPROVAL_RECORDED, instant, who, subject=arguments.name(role, "role")
        )

    @staticmethod
    def _check_field_name(name: Any) -> str:
        field = arguments.name(name, "field name")
        if field in RESERVED_FIELDS:
            raise InvalidCommandError(
                f"{field!r} is not a custom field: use change_amount(), reschedule() or the "
                "stage commands"
            )
        return field

    def set_field(self, name: str, value: Any, *, at: datetime, actor: str) -> Event:
        """Set a custom field to a JSON value (``None`` clears it).

        Raises:
            InvalidCommandError: the name is reserved or empty, or the value is not JSON-like.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        field = self._check_field_name(name)
        details = freeze({"value": value}, path=f"fields.{field}")
        return self._record(EventKind.FIELD_SET, instant, who, subject=field, details=details)

    def reassign(self, owner: str, *, at: datetime, actor: str) -> Event:
        """Make ``owner`` (the rep responsible, not the actor) the deal's owner from ``at`` on.

        >>> from datetime import datetime, timezone
        >>> from stagegate.templates import b2b
        >>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
        >>> deal = Opportunity.open(b2b(), "d-1", at=t, actor="crm", owner="kim")
        >>> deal.reassign("lee", at=t, actor="manager:park").subject, deal.owner
        ('lee', 'lee')

        Raises:
            InvalidCommandError: the owner is not non-empty single-line text (at most 200
                characters), or already owns the deal.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        new = owner_name(owner)
        if new == self._owner:
            raise InvalidCommandError(
                f"{new!r} already owns opportunity {self._id!r}; name another owner"
            )
        return self._record(_REASSIGNED, instant, who, subject=new)

    def set_attribute(self, name: str, value: str | None, *, at: datetime, actor: str) -> Event:
        """Set segment attribute ``name`` (``team``, ``region``, ...) to ``value`` from ``at`` on.

        ``None`` clears it. Attributes are the deal's segments, read by the analytics' ``by=``;
        custom facts that gates check are fields (:meth:`set_field`).

        Raises:
            InvalidCommandError: the name is not a lowercase identifier or is reserved (see
                :func:`stagegate.segments.attribute_name`), the value is neither text nor
                ``None``, or it is the value in force.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        attribute = attribute_name(name)
        text = attribute_value(value, attribute)
        if text == (self._attributes or {}).get(attribute):
            raise InvalidCommandError(
                f"attribute {attribute!r} of opportunity {self._id!r} is already {text!r}"
            )
        return self._record(
            _ATTRIBUTE_SET, instant, who, subject=attribute, details=freeze({"value": text})
        )

    def reschedule(
        self, close_date: date, *, at: datetime, actor: str, reason: str | None = None
    ) -> Event:
        """Change the expected close date; a later date counts as a push (a slip).

        Raises:
            InvalidCommandError: not a date, the same date as now, or the deal is closed.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        new = arguments.close_date(close_date)
        if self.is_closed:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is closed ({self._stage!r}); reopen it to reschedule"
            )
        if new == self._close_date:
            raise InvalidCommandError(f"the expected close date is already {new.isoformat()}")
        previous = None if self._close_date is None else self._close_date.isoformat()
        why = arguments.reason(reason, required=False, what="a reschedule")
        details = freeze({"previous": previous})
        return self._record(
            EventKind.RESCHEDULED, instant, who, reason=why, close_date=new, details=details
        )

    def change_amount(
        self,
        amount: float | Decimal | str,
        *,
        at: datetime,
        actor: str,
        reason: str | None = None,
    ) -> Event:
        """Change the amount (a non-negative number, kept exactly as a decimal).

        Raises:
            InvalidCommandError: not a finite non-negative number, or unchanged.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        new = arguments.amount(amount)
        if new == self._amount:
            raise InvalidCommandError(f"the amount is already {new}")
        previous = None if self._amount is None else str(self._amount)
        why = arguments.reason(reason, required=False, what="an amount change")
        return self._record(
            EventKind.AMOUNT_CHANGED,
            instant,
            who,
            reason=why,
            amount=new,
            details=freeze({"previous": previous}),
        )

    # -- queries ---------------------------------------------------------------------------

    def _query_instant(self, at: datetime | None) -> datetime:
        return self._events[-1].at if at is None else to_utc(at)

    def gate_report(self, stage: str | None = None, *, at: datetime | None = None) -> GateReport:
        """Explain whether the gates of a move to ``stage`` (default: the next stage) hold.

        ``at`` defaults to the instant of the last event. For a move the policy does not allow,
        the target stage's own gate is evaluated.

        Raises:
            UnknownStageError: no such stage.
            MoveNotAllowedError: ``stage`` was omitted and there is no next stage.
        """
        instant = self._query_instant(at)
        if stage is None:
            nxt = self._process.next_stage(self._stage)
            if nxt is None:
                raise MoveNotAllowedError(
                    self._stage, self._stage, "there is no next stage", self._allowed_targets()
                )
            stage = nxt.id
        target = self._process.stage(stage)
        move = self._process.lifecycle.move(self._stage, target.id)
        if move is not None:
            return self._report(move, instant)
        if target.gate is None:
            return GateReport(target.id)
        return target.gate.report(target.id, self._facts(instant))

    def facts(self, *, at: datetime | None = None) -> Facts:
        """What the gates look at as of ``at`` (default: the instant of the last event)."""
        return self._facts(self._query_instant(at))

    def can_advance(self, *, at: datetime | None = None) -> bool:
        """Whether :meth:`advance` would be accepted now."""
        nxt = self._process.next_stage(self._stage)
        if nxt is None or self.is_closed:
            return False
        return self.gate_report(nxt.id, at=at).passed

    def available_moves(self, *, at: datetime | None = None) -> tuple[MoveOption, ...]:
        """Every move the policy allows from here, and for each blocked one, why.

        >>> from datetime import datetime, timezone
        >>> from stagegate.templates import b2b
        >>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
        >>> deal = Opportunity.open(b2b(), "d-1", at=t, actor="ana")
        >>> [(m.target, m.kind.value, m.allowed) for m in deal.available_moves()]
        [('qualification', 'advance', False), ('lost', 'lose', True)]
        """
        instant = self._query_instant(at)
        options = []
        for move in self._process.lifecycle.moves_from(self._stage):
            report = self._report(move, instant)
            options.append(
                MoveOption(
                    move.target,
                    move.kind,
                    report.passed,
                    move.needs_reason,
                    report,
                    report.missing,
                )
            )
        return tuple(options)

    def state_at(self, at: datetime) -> Opportunity:
        """The opportunity as it stood at ``at``: a replay of the events up to and including it.

        Raises:
            InvalidTimestampError: ``at`` is naive.
            EventLogError: the opportunity did not exist yet at ``at``.
        """
        instant = to_utc(at)
        log = [event for event in self._events if event.at <= instant]
        if not log:
            raise EventLogError(
                f"opportunity {self._id!r} was opened at {self.opened_at.isoformat()}, "
                f"after {instant.isoformat()}"
            )
        return Opportunity.replay(self._process, log, versions=self._earlier)

    def metrics(self, *, as_of: datetime) -> OpportunityMetrics:
        """The per-opportunity numbers as of ``as_of`` (events after it are ignored).

        Stage durations add up to :attr:`~OpportunityMetrics.age` for an open deal and to
        :attr:`~OpportunityMetrics.cycle_time` for a closed one.

        Raises:
            InvalidTimestampError: ``as_of`` is naive.
            EventLogError: ``as_of`` is before the opportunity was opened.
        """
        return measure(self._process, in_current_names(self._events), as_of=as_of)

    def time_in_stage(self, *, as_of: datetime) -> timedelta:
        """Time since the current stage (as of ``as_of``) was entered."""
        return self.metrics(as_of=as_of).time_in_stage

    def stage_durations(self, *, as_of: datetime) -> Mapping[str, timedelta]:
        """Total time in each stage, re-entries summed (see :meth:`metrics`)."""
        return self.metrics(as_of=as_of).stage_durations

    def age(self, *, as_of: datetime) -> timedelta:
        """Time from opening to ``as_of``."""
        return self.metrics(as_of=as_of).age

    def cycle_time(self, *, as_of: datetime | None = None) -> timedelta | None:
        """Time from opening to closing, or ``None`` while open (as of ``as_of``, default now)."""
        return self.metrics(as_of=self._query_instant(as_of)).cycle_time
