"""Evidence commands: the deliverables, activities, lead scores and approvals gates check.

Evidence is entered by hand (``record_deliverable``, ``log_activity``, ``score_lead``,
``record_approval``) or received from another system with its
:class:`~stagegate.provenance.Provenance` (``receive``), once per source event (``received``).
Hand-entered evidence may not claim a provenance of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stagegate import _arguments as arguments
from stagegate._replay import RECEIVABLE, lead_problem
from stagegate._state import OpportunityState
from stagegate.errors import InvalidCommandError, UnknownDeliverableError, cut
from stagegate.events import Event, EventKind, freeze
from stagegate.provenance import PROVENANCE_KEY, Provenance

__all__ = ["EvidenceCommands"]

_ACTIVITY_LOGGED = EventKind.ACTIVITY_LOGGED
_DELIVERABLE_RECORDED = EventKind.DELIVERABLE_RECORDED
_LEAD_SCORED = EventKind.LEAD_SCORED


def _hand_entered(value: Any, what: str) -> Mapping[str, Any]:
    """Evidence or details given by a caller: a mapping without the provenance key."""
    checked = arguments.mapping(value, what)
    if PROVENANCE_KEY in checked:
        raise InvalidCommandError(
            f"{what} may not hold {PROVENANCE_KEY!r}: it is kept for evidence from other "
            "systems; record such evidence with receive(..., provenance=Provenance(...))"
        )
    return checked


class EvidenceCommands(OpportunityState):
    """The commands of :class:`~stagegate.opportunity.Opportunity` that record evidence."""

    __slots__ = ()

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
