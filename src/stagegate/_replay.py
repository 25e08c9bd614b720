"""The rules :meth:`~stagegate.opportunity.Opportunity.replay` checks each event against.

A replayed log is trusted only as far as these rules go: every event must be one a command could
have recorded at that place (its shape, the move the policies allow, the gate that held, the
values only the right kind of event changes), and a migration must leave the version in force
for the one its mapping names. :class:`ReplayRules` holds them as methods of the opportunity
being rebuilt, so each rule reads the state the events before it left; each broken rule raises
an :class:`~stagegate.errors.EventLogError` naming the event (``seq``) and the rule.

>>> from datetime import datetime, timezone
>>> from stagegate import Opportunity, b2b
>>> from stagegate.events import Event, EventKind
>>> opened = Event("acme-1", 1, EventKind.OPENED, datetime(2026, 1, 5, tzinfo=timezone.utc),
...                " ", "lead_generation", "b2b", b2b().version)
>>> try:
...     Opportunity.replay(b2b(), [opened])
... except Exception as error:
...     print(error.rule)
actor_missing
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from stagegate._moves import StageMoves
from stagegate.errors import EventLogError, InvalidCommandError, cut
from stagegate.events import Event, EventKind, MoveKind
from stagegate.gates import CriterionResult, GateReport
from stagegate.integrity import event_digest
from stagegate.process import Process
from stagegate.provenance import PROVENANCE_KEY, Provenance
from stagegate.segments import attribute_name, attribute_value, owner_name

__all__ = [
    "RECEIVABLE",
    "RESERVED_FIELDS",
    "ReplayRules",
    "lead_problem",
    "migration_target",
    "versions_by_text",
]

RESERVED_FIELDS = frozenset({"amount", "close_date", "stage"})
"""Names a custom field may not take: amount, close date and stage have commands of their own."""
RECEIVABLE = {
    EventKind.ACTIVITY_LOGGED: "activity",
    EventKind.DELIVERABLE_RECORDED: "deliverable",
    EventKind.LEAD_SCORED: "lead score",
}
"""The kinds of events evidence from another system may be recorded as, and their names."""
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Enum members as module constants: ``EventKind.X`` is a metaclass lookup, ~10x a global's cost.
_OPENED = EventKind.OPENED
_STAGE_CHANGED = EventKind.STAGE_CHANGED
_ACTIVITY_LOGGED = EventKind.ACTIVITY_LOGGED
_APPROVAL_RECORDED = EventKind.APPROVAL_RECORDED
_DELIVERABLE_RECORDED = EventKind.DELIVERABLE_RECORDED
_FIELD_SET = EventKind.FIELD_SET
_RESCHEDULED = EventKind.RESCHEDULED
_AMOUNT_CHANGED = EventKind.AMOUNT_CHANGED
_LEAD_SCORED = EventKind.LEAD_SCORED
_REASSIGNED = EventKind.REASSIGNED
_ATTRIBUTE_SET = EventKind.ATTRIBUTE_SET


def lead_problem(details: Mapping[str, Any] | None) -> str | None:
    """What is wrong with the details of a lead score, or ``None``."""
    if details is None:
        return "no details: give a score, a status or both"
    score, status = details.get("score"), details.get("status")
    if score is None and status is None:
        return "neither a score nor a status"
    if score is not None and (
        isinstance(score, bool)
        or not isinstance(score, (int, float))
        or (isinstance(score, float) and not math.isfinite(score))
    ):
        return f"score {cut(repr(score))}: a score is a finite number"
    if status is not None and (not isinstance(status, str) or not status.strip()):
        return f"status {cut(repr(status))}: a status is non-empty text"
    return None


def versions_by_text(
    process: Process, versions: Iterable[Process] | Mapping[str, Process]
) -> dict[str, Process]:
    """The versions a log may pass through, by version text (``process`` among them).

    Raises:
        InvalidCommandError: an item is not a Process of the same name.
    """
    items = versions.values() if isinstance(versions, Mapping) else versions
    known: dict[str, Process] = {}
    for item in items:
        if not isinstance(item, Process) or item.name != process.name:
            raise InvalidCommandError(
                f"versions must be earlier versions of process {process.name!r} (Process "
                f"objects), got {cut(repr(item))}"
            )
        known[item.version] = item
    known[process.version] = process
    return known


def migration_target(stage: str, process: Process, mapping: Mapping[str, str]) -> str | None:
    """The stage of ``process`` a deal in ``stage`` of an earlier version is in once migrated.

    An explicit ``mapping`` entry wins, then the process's own :attr:`~Process.renamed` map,
    then the same id; ``None`` when the stage has no place in ``process``.
    """
    target = mapping.get(stage) or process.renamed.get(stage) or stage
    return target if target in process else None


def _same_result(recorded: CriterionResult, expected: CriterionResult) -> bool:
    if (recorded.criterion, recorded.holds, recorded.evidence) != (
        expected.criterion,
        expected.holds,
        expected.evidence,
    ) or len(recorded.children) != len(expected.children):
        return False
    return all(map(_same_result, recorded.children, expected.children))


def _same_report(recorded: GateReport | None, expected: GateReport | None) -> bool:
    """Whether a recorded gate report is the evaluation ``expected``.

    The criteria, whether each holds and the events that satisfied it must match; the wording of
    the reasons may differ (it is an explanation, and may read better in a later version).
    """
    if recorded == expected:
        return True
    if recorded is None or expected is None or not isinstance(recorded, GateReport):
        return False
    return (
        recorded.target == expected.target
        and len(recorded.results) == len(expected.results)
        and all(map(_same_result, recorded.results, expected.results))
    )


class ReplayRules(StageMoves):
    """The replay rules, as methods of the opportunity the log rebuilds (its state so far).

    :class:`~stagegate.opportunity.Opportunity` inherits them; a rule reads the state (see
    :class:`~stagegate._state.OpportunityState`) and evaluates gates and explains refused moves
    as the commands do (:class:`~stagegate._moves.StageMoves`), and never changes the state
    (``Opportunity._apply`` alone does, once an event has passed every rule).
    """

    __slots__ = ()

    def _broken(self, event: Event | int, rule: str, what: str) -> EventLogError:
        seq = event if isinstance(event, int) else event.seq
        return EventLogError(
            f"event {seq} of {self._id!r} {what} [rule: {rule}]",
            seq=seq,
            rule=rule,
            opportunity_id=self._id,
        )

    def _check_replayed(self, event: Event, position: int) -> None:
        if not isinstance(event, Event):
            raise self._broken(position, "not_an_event", f"is not an Event: {cut(repr(event))}")
        if event.opportunity_id != self._id:
            raise self._broken(
                position,
                "opportunity_mismatch",
                f"belongs to opportunity {cut(repr(event.opportunity_id))}, not {self._id!r}; "
                "replay one opportunity's events at a time",
            )
        if event.seq != position:
            raise self._broken(
                position,
                "seq_order",
                f"has seq {event.seq}: seq must run 1, 2, 3, ... without gaps or repeats",
            )
        if event.kind is _OPENED and position != 1:
            raise self._broken(position, "opened_again", "opens the opportunity again")
        if self._events and event.at < self._events[-1].at:
            raise self._broken(
                position,
                "time_order",
                f"is at {event.at.isoformat()}, before event {position - 1} at "
                f"{self._events[-1].at.isoformat()}",
            )
        process = self._process
        if event.process != process.name:
            raise self._broken(
                position,
                "process_mismatch",
                f"was recorded in process {cut(repr(event.process))}, not {process.name!r}; "
                "replay it with the process it was recorded in",
            )
        if event.process_version != process.version:
            raise self._broken(
                position,
                "version_mismatch",
                f"was recorded in version {cut(repr(event.process_version))} of process "
                f"{process.name!r}, not {process.version!r}; replay it with the version it was "
                "recorded in",
            )
        if event.stage not in process:
            raise self._broken(
                position,
                "unknown_stage",
                f"names stage {cut(repr(event.stage))}, unknown to process {process.name!r}; "
                "load it with the process it was recorded in",
            )
        if event.kind is _STAGE_CHANGED:
            if event.from_stage != self._stage:
                raise self._broken(
                    position,
                    "from_stage_mismatch",
                    f"leaves {cut(repr(event.from_stage))}, but the opportunity was in "
                    f"{self._stage!r}",
                )
        elif event.kind is not _OPENED and event.stage != self._stage:
            raise self._broken(
                position,
                "stage_mismatch",
                f"says the stage is {event.stage!r}, but the opportunity was in {self._stage!r}",
            )

    def _check_digest(
        self, event: Event, digest: str, *, previous: str | None, chained: bool
    ) -> None:
        """Check that ``digest``, the one ``event`` carries, chains to ``previous``.

        ``previous`` is the digest of the event before (``None`` for the first); ``chained``
        says whether every event before carried one.
        """
        if not chained:
            raise self._broken(
                event,
                "digest_gap",
                "carries a digest after an event without one: a sealed log is sealed "
                "from its first event on; seal the whole log again with "
                "stagegate.seal()",
            )
        expected = event_digest(event, previous)
        if digest != expected:
            raise self._broken(
                event,
                "digest_mismatch",
                f"has digest {digest[:12]}..., but its content and the digest "
                f"before it give {expected[:12]}...: the event or one before it was "
                "changed after it was sealed; restore the log from a trusted copy",
            )

    def _check_migration(
        self, event: Event, position: int, known: Mapping[str, Process]
    ) -> Process:
        """Check a ``migrated`` event and return the version it enters."""
        if event.opportunity_id != self._id:
            raise self._broken(
                position,
                "opportunity_mismatch",
                f"belongs to opportunity {cut(repr(event.opportunity_id))}, not {self._id!r}; "
                "replay one opportunity's events at a time",
            )
        if event.seq != position or position == 1:
            raise self._broken(
                position,
                "seq_order" if event.seq != position else "first_not_opened",
                f"has seq {event.seq}: seq must run 1, 2, 3, ... and a log opens with 'opened'",
            )
        if event.at < self._events[-1].at:
            raise self._broken(
                position,
                "time_order",
                f"is at {event.at.isoformat()}, before event {position - 1} at "
                f"{self._events[-1].at.isoformat()}",
            )
        before = self._process
        details = event.details if isinstance(event.details, Mapping) else _EMPTY
        mapping = details.get("mapping", _EMPTY)
        target = known.get(event.process_version) if event.process == before.name else None
        if target is None or target.version == before.version:
            raise self._broken(
                event,
                "version_unknown",
                f"migrates to version {cut(repr(event.process_version))} of process "
                f"{cut(repr(event.process))}, which is not a known later version of "
                f"{before.name!r} (known: {', '.join(sorted(known))}); replay it with every "
                "version the log passed through (versions=...)",
            )
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise self._broken(event, "malformed_details", "has a mapping that is not text to text")
        if (
            details.get("from_version") != before.version
            or details.get("from_stage") != self._stage
        ):
            raise self._broken(
                event,
                "migration_mismatch",
                f"says it migrates from version {cut(repr(details.get('from_version')))}, stage "
                f"{cut(repr(details.get('from_stage')))}, but the deal was in {self._stage!r} of "
                f"version {before.version!r}",
            )
        if self.is_closed:
            raise self._broken(
                event,
                "closed_deal",
                f"migrates a deal closed as {self._stage!r}; closed deals keep their version",
            )
        expected = migration_target(self._stage, target, mapping)
        if expected is None or event.stage != expected or not target.stage(expected).is_open:
            raise self._broken(
                event,
                "migration_mismatch",
                f"puts the deal in {cut(repr(event.stage))}, but its mapping takes "
                f"{self._stage!r} to {expected!r}, which must be an open stage of version "
                f"{target.version!r}",
            )
        if (
            event.move is not None
            or event.from_stage is not None
            or event.gate is not None
            or event.amount != self._amount
            or event.close_date != self._close_date
            or type(event.actor) is not str
            or not event.actor.strip()
        ):
            raise self._broken(
                event,
                "migration_fields",
                "is a migration with a move, a stage left, a gate report, a changed amount or "
                "close date, or no actor; a migration changes only the version and the stage id",
            )
        return target

    def _check_meaning(self, event: Event, *, imported: bool) -> None:
        """Check that ``event`` is what a command could have recorded here (shape checked).

        One rule per branch, the common cases first: replay runs this on every event.
        """
        kind = event.kind
        actor = event.actor
        if type(actor) is not str or not actor or actor.isspace():
            raise self._broken(event, "actor_missing", "has no actor: name who or what acted")
        amount = event.amount
        if amount is not None and (
            type(amount) is not Decimal or not amount.is_finite() or amount < 0
        ):
            raise self._broken(
                event, "amount_invalid", f"has amount {cut(repr(amount))}: not a number >= 0"
            )
        if kind is _STAGE_CHANGED:
            self._check_move(event)
            return
        if event.move is not None or event.from_stage is not None or event.gate is not None:
            raise self._broken(
                event,
                "move_fields",
                f"is a {kind.value!r} event but carries a move, a stage left or a gate report, "
                "which only stage changes carry",
            )
        details = event.details
        if details is not None and not isinstance(details, Mapping):
            raise self._broken(event, "malformed_details", "has details that are not a mapping")
        if details is not None and PROVENANCE_KEY in details:
            self._check_provenance(event, details[PROVENANCE_KEY])
        if kind is _OPENED:
            opening = None if details is None else details.get("fields")
            if opening is not None:
                if not isinstance(opening, Mapping):
                    raise self._broken(
                        event, "malformed_details", "has opening fields that are not a mapping"
                    )
                for name in opening:
                    self._check_field(event, name)
            return
        if amount != self._amount and kind is not _AMOUNT_CHANGED:
            raise self._broken(
                event,
                "amount_changed",
                f"changes the amount from {self._amount} to {amount}, which only an "
                "'amount_changed' event does",
            )
        if event.close_date != self._close_date and kind is not _RESCHEDULED:
            raise self._broken(
                event,
                "close_date_changed",
                "changes the expected close date, which only a 'rescheduled' event does",
            )
        subject = event.subject
        if kind is _ACTIVITY_LOGGED or kind is _APPROVAL_RECORDED:
            if type(subject) is not str or not subject or subject.isspace():
                raise self._broken(
                    event, "subject_missing", f"is a {kind.value!r} event without a subject"
                )
        elif kind is _DELIVERABLE_RECORDED:
            if subject not in self._process.deliverables:
                raise self._broken(
                    event,
                    "unknown_deliverable",
                    f"records deliverable {cut(repr(subject))}, which process "
                    f"{self._process.name!r} does not declare",
                )
        elif kind is _LEAD_SCORED:
            self._check_lead(event)
        elif kind is _FIELD_SET:
            self._check_field(event, subject)
            if details is None or "value" not in details:
                raise self._broken(event, "malformed_details", "sets a field without a 'value'")
        elif kind is _RESCHEDULED:
            if event.close_date is None or event.close_date == self._close_date:
                raise self._broken(
                    event, "unchanged_value", "reschedules without changing the close date"
                )
            if self.is_closed and not imported:  # imported histories do reschedule closed deals
                raise self._broken(
                    event,
                    "closed_deal",
                    f"reschedules a deal closed as {self._stage!r}; a closed deal is reopened "
                    "first",
                )
        elif kind is _REASSIGNED or kind is _ATTRIBUTE_SET:
            self._check_segment(event)
        elif amount is None or amount == self._amount:  # an amount change
            raise self._broken(event, "unchanged_value", "changes the amount to the same value")

    def _check_lead(self, event: Event) -> None:
        subject = event.subject
        if type(subject) is not str or not subject or subject.isspace():
            raise self._broken(
                event, "subject_missing", "is a 'lead_scored' event without a subject"
            )
        problem = lead_problem(event.details)
        if problem is not None:
            raise self._broken(event, "malformed_details", f"scores a lead with {problem}")

    def _check_provenance(self, event: Event, data: Any) -> None:
        """Check the provenance of evidence from another system (replay)."""
        if event.kind not in RECEIVABLE:
            raise self._broken(
                event,
                "provenance_kind",
                f"is a {event.kind.value!r} event with provenance, which only activities, "
                "deliverables and lead scores carry",
            )
        try:
            source = Provenance.from_dict(data)
        except InvalidCommandError as exc:
            raise self._broken(
                event, "malformed_provenance", f"has bad provenance: {exc}"
            ) from None
        if self._sourced is not None and source.key in self._sourced:
            first = self._sourced[source.key]
            raise self._broken(
                event,
                "duplicate_source_event",
                f"records {source.system} event {source.source_id!r} again (event {first.seq} "
                "recorded it): an event from another system is recorded once per deal",
            )
        if event.at < source.occurred_at:
            raise self._broken(
                event,
                "before_occurrence",
                f"is at {event.at.isoformat()}, before its source event occurred at "
                f"{source.occurred_at.isoformat()}",
            )

    def _check_segment(self, event: Event) -> None:
        """Check a ``reassigned`` or ``attribute_set`` event (amount and close date checked)."""
        value: str | None
        try:
            if event.kind is _REASSIGNED:
                name, value = "owner", owner_name(event.subject)
                before = self._owner
            else:
                name = attribute_name(event.subject)
                details = event.details
                if details is None or "value" not in details:
                    raise self._broken(
                        event, "malformed_details", "sets an attribute without a 'value'"
                    )
                value = attribute_value(details["value"], name)
                before = (self._attributes or {}).get(name)
        except InvalidCommandError as exc:
            raise self._broken(event, "bad_segment", f"is malformed: {exc}") from None
        if value == before:
            raise self._broken(
                event, "unchanged_value", f"sets {name!r} to {value!r}, the value in force"
            )

    def _check_field(self, event: Event, name: Any) -> None:
        if not isinstance(name, str) or not name.strip() or name in RESERVED_FIELDS:
            raise self._broken(
                event,
                "bad_field",
                f"sets field {cut(repr(name))}, which is not a custom field name",
            )

    def _check_move(self, event: Event) -> None:
        """Check a stage change against the policies and, unless imported, the gates."""
        if event.move is not MoveKind.IMPORTED and (
            event.amount != self._amount or event.close_date != self._close_date
        ):
            raise self._broken(
                event,
                "amount_changed",
                "changes the amount or close date with a stage change; a command records "
                "those as events of their own",
            )
        recorded = event.move
        source, target = self._stage, event.stage
        if recorded is MoveKind.IMPORTED:
            if target == source:
                raise self._broken(event, "move_not_allowed", f"moves from {source!r} to itself")
            if event.gate is not None:
                raise self._broken(
                    event,
                    "imported_with_gate",
                    "is an imported stage change carrying a gate report; imported history is "
                    "never presented as gate-approved",
                )
            return
        if not isinstance(recorded, MoveKind):
            raise self._broken(event, "move_missing", "is a stage change without a move kind")
        move = self._process.lifecycle.move(source, target)
        if move is None:
            raise self._broken(
                event,
                "move_not_allowed",
                f"moves from {source!r} to {target!r} as {recorded.value!r}, which the policies "
                f"of process {self._process.name!r} do not allow ({self._why_not(target)})",
            )
        override = recorded is MoveKind.OVERRIDE
        if not override and recorded is not move.kind:
            raise self._broken(
                event,
                "move_kind_mismatch",
                f"records a {recorded.value!r} from {source!r} to {target!r}, which is a "
                f"{move.kind.value!r} move",
            )
        if override and not self._process.policies.allow_override:
            raise self._broken(
                event, "override_not_allowed", "is an override, which the policy does not allow"
            )
        if (override or move.needs_reason) and (
            not isinstance(event.reason, str) or not event.reason.strip()
        ):
            what = "an override" if override else f"a {move.kind.value} move"
            raise self._broken(event, "reason_missing", f"is {what} without the reason it needs")
        report = self._report(move, event.at)
        if not override and not report.passed:
            raise self._broken(
                event,
                "gate_not_met",
                f"enters {target!r} as {recorded.value!r}, but its gate does not hold as of "
                f"{event.at.isoformat()}: {cut('; '.join(report.missing))}; only an override "
                "may enter despite an unmet gate",
            )
        expected = report if move.checks else None
        if not _same_report(event.gate, expected):
            found = "none expected" if expected is None else "met" if report.passed else "NOT MET"
            raise self._broken(
                event,
                "gate_report_mismatch",
                f"carries a gate report that differs from the gate's evaluation as of "
                f"{event.at.isoformat()} ({found}); "
                "a recorded report must be the one the move was decided on",
            )
