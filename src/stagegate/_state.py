"""The state of an opportunity: what its log folds into, and the one place it changes.

:class:`OpportunityState` keeps the values in force (stage, amount, close date, evidence, owner,
segment attributes, ...) and the log they come from. :meth:`~OpportunityState._apply` folds one
event into them, whether a command has just recorded it (:meth:`~OpportunityState._record`) or
:meth:`~stagegate.opportunity.Opportunity.replay` has checked it; nothing else changes the state.
The read-only views of it and the :class:`~stagegate.gates.Facts` the gates look at are read
here too. :class:`~stagegate.opportunity.Opportunity` is built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from stagegate import _arguments as arguments
from stagegate._time import UTC, to_utc
from stagegate.errors import InvalidCommandError, OutOfOrderError
from stagegate.events import Event, EventKind, MoveKind, recorded_event
from stagegate.gates import Facts, GateReport
from stagegate.process import Process, StageKind
from stagegate.provenance import PROVENANCE_KEY, occurred_at

__all__ = ["OpportunityState"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Enum members as module constants: ``EventKind.X`` is a metaclass lookup, ~10x a global's cost.
_OPENED = EventKind.OPENED
_STAGE_CHANGED = EventKind.STAGE_CHANGED
_LEAD_SCORED = EventKind.LEAD_SCORED
_REASSIGNED = EventKind.REASSIGNED
_ATTRIBUTE_SET = EventKind.ATTRIBUTE_SET
_MIGRATED = EventKind.MIGRATED
_new_facts = tuple.__new__  # skips Facts.__new__'s argument binding: built on every move


class OpportunityState:
    """The state an opportunity's events build, the views of it, and the log it is kept in.

    Events change it through :meth:`_apply` alone, once a command or a replay has accepted them
    (``migrate`` and ``replay`` also set the version of the process in force); the rest of
    :class:`~stagegate.opportunity.Opportunity` reads it.
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

    # -- applying events -----------------------------------------------------------------------

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

    # -- views ---------------------------------------------------------------------------------

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

    @property
    def lead(self) -> Event | None:
        """The ``lead_scored`` event in force (the one that occurred last), if any."""
        return self._lead

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

    # -- appending to the log ------------------------------------------------------------------

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
