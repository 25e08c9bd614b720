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
from typing import Any

import attrs

from stagegate import _arguments as arguments
from stagegate._evidence import EvidenceCommands
from stagegate._history import HistoryCommands, in_current_names
from stagegate._replay import RESERVED_FIELDS, ReplayRules, versions_by_text
from stagegate._time import to_utc
from stagegate.errors import (
    EventLogError,
    GateNotMetError,  # noqa: F401 - the module's doctest catches it
    InvalidCommandError,
    MoveNotAllowedError,
    cut,
)
from stagegate.events import Event, EventKind, MoveKind, freeze
from stagegate.gates import Facts, GateReport
from stagegate.metrics import OpportunityMetrics, measure
from stagegate.process import Process
from stagegate.segments import attribute_name, attribute_value, owner_name

__all__ = ["MoveOption", "Opportunity"]

_WIN_KINDS = frozenset({MoveKind.WIN})
_LOSE_KINDS = frozenset({MoveKind.LOSE})
_REOPEN_KINDS = frozenset({MoveKind.REOPEN})
_REASSIGNED = EventKind.REASSIGNED
_ATTRIBUTE_SET = EventKind.ATTRIBUTE_SET
_MIGRATED = EventKind.MIGRATED
_IMPORTED = MoveKind.IMPORTED


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


class Opportunity(ReplayRules, HistoryCommands, EvidenceCommands):
    """A deal moving through a :class:`~stagegate.process.Process`.

    Create one with :meth:`open` (or rebuild one with :meth:`replay`) and change it only with its
    commands. Each accepted command appends exactly one :class:`~stagegate.events.Event` and
    returns it; a rejected command raises a :class:`~stagegate.errors.StagegateError` and leaves
    the opportunity and its log exactly as they were.
    """

    # Built in layers, each a module of its own: the state and the one place events change it
    # (stagegate._state), finding and entering stage moves (_moves), the rules a replayed event
    # must meet (_replay), evidence (_evidence) and history from outside (_history). Here:
    # creation, the stage and data commands, and the queries.
    __slots__ = ()

    # -- creation ------------------------------------------------------------------------------

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
                opportunity._check_digest(
                    event, event.digest, previous=previous_digest, chained=chained
                )
                previous_digest = event.digest
            else:
                chained = False
            if target is not None:
                opportunity._process = target
            opportunity._apply(event)
        return opportunity

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

    # -- stage commands ------------------------------------------------------------------------

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

    def override(self, stage: str, *, at: datetime, actor: str, reason: str) -> Event:
        """Move despite an unmet gate, with a reason; recorded as an override with the report.

        The policy still decides which moves exist; only the gate is set aside.

        Raises:
            MoveNotAllowedError: the move itself is not allowed, or overrides are disabled.
            InvalidCommandError: no reason was given.
        """
        arguments.reason(reason, required=True, what="an override")
        return self._change(stage, at=at, actor=actor, reason=reason, override=True)

    # -- data commands -------------------------------------------------------------------------

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

    # -- queries -------------------------------------------------------------------------------

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
