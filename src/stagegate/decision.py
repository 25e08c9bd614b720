"""Decisions: may this deal make this move now? One answer for Python, the CLI and the service.

:func:`decide` takes a process, a deal's events and a :class:`MoveRequest` and returns a
:class:`Decision`: allowed, blocked by the process (with the gate report and what is missing), or
invalid (a bad request: an unknown stage, an instant before the last event, a broken log). It
never raises for a bad request and never changes its inputs: it replays the events into a private
opportunity and tries the move there.

>>> from datetime import datetime, timezone
>>> from stagegate import Opportunity, b2b
>>> t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "acme-1", at=t0, actor="ana")
>>> decision = decide(b2b(), deal.events, MoveRequest(MoveCommand.ADVANCE, actor="ana"))
>>> decision.verdict.value, decision.missing
('blocked', ("deliverable 'lead_record' not recorded",))
>>> facts = ProposedFacts(deliverables={"lead_record": {"source": "webinar", "contact": "kim"}})
>>> decision = decide(b2b(), deal.events, MoveRequest("advance", actor="ana", facts=facts))
>>> decision.allowed, decision.to_stage, [e.kind.value for e in decision.events]
(True, 'qualification', ['deliverable_recorded', 'stage_changed'])
>>> len(deal.events)  # the inputs are unchanged
1

:func:`decide_json` answers untrusted JSON: the request is checked against the shipped request
schema (:func:`request_schema`) and the answer always matches the response schema
(:func:`response_schema`); see ``docs/service.md``.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol

import attrs

from stagegate import _arguments as arguments
from stagegate._schema import compile_schema
from stagegate._time import parse_instant, to_utc
from stagegate.errors import (
    DefinitionError,
    EventLogError,
    GateNotMetError,
    InvalidCommandError,
    InvalidTimestampError,
    MoveNotAllowedError,
    OutOfOrderError,
    StagegateError,
    UnknownStageError,
)
from stagegate.events import Event, EventKind
from stagegate.gates import AllOf, AnyOf, Criterion, Facts, GateReport
from stagegate.opportunity import MoveOption, Opportunity
from stagegate.process import Process

__all__ = [
    "MAX_EVENTS",
    "MAX_NESTING",
    "MAX_REQUEST_BYTES",
    "SCHEMA_VERSION",
    "Decision",
    "EvidenceSources",
    "InvalidRequestError",
    "MissingEvidence",
    "MoveCommand",
    "MoveRequest",
    "ProposedFacts",
    "Verdict",
    "check_nesting",
    "decide",
    "decide_json",
    "error_document",
    "events_from_dicts",
    "internal_error_document",
    "missing_evidence",
    "parse_at",
    "parse_request_text",
    "request_schema",
    "response_schema",
]

SCHEMA_VERSION = 1
"""Version of the request and response documents (their ``version`` field)."""
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Largest JSON request text :func:`decide_json` reads."""
MAX_NESTING = 64
"""Deepest nesting of objects and lists accepted in a JSON request."""
MAX_EVENTS = 10_000
"""Most events one request may carry."""
_MAX_ECHO = 200

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class MoveCommand(str, enum.Enum):
    """What a request asks the deal to do."""

    ADVANCE = "advance"
    """Enter the next stage, gate permitting (no target)."""
    MOVE_TO = "move_to"
    """Enter ``target`` as the policy allows: advance, skip, back, win, lose or reopen."""
    WIN = "win"
    """Close as won (``target``: a won stage; default the first)."""
    LOSE = "lose"
    """Close as lost, with a reason (``target``: a lost stage; default the first)."""
    REOPEN = "reopen"
    """Reopen a closed deal, with a reason (``target``: default the stage it closed from)."""
    OVERRIDE = "override"
    """Enter ``target`` (default: the next stage) despite its gate, with a reason."""


class Verdict(str, enum.Enum):
    """The answer of a decision."""

    ALLOWED = "allowed"
    """The move would be accepted now; :attr:`Decision.events` holds what it would append."""
    BLOCKED = "blocked"
    """The request is well formed but the process refuses it (a gate, a policy, a reason)."""
    INVALID = "invalid"
    """The request itself is bad (an unknown stage, an instant out of order, a broken log)."""


class InvalidRequestError(StagegateError, ValueError):
    """A decision request is not a well-formed document; ``problems`` lists what is wrong."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message)


def _texts(items: Iterable[str]) -> tuple[str, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidCommandError(f"approvals must be a list of roles, got {_echo(items)}")
    return tuple(items)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not value:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise InvalidCommandError(f"expected a mapping of names to values, got {_echo(value)}")
    return MappingProxyType(dict(value))


def _activities(items: Iterable[tuple[str, Mapping[str, Any] | None]]) -> tuple[Any, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidCommandError(
            f"activities must be a list of (type, details) pairs, got {_echo(items)}"
        )
    return tuple(tuple(pair) if isinstance(pair, list) else pair for pair in items)


@attrs.frozen(slots=True)
class ProposedFacts:
    """Facts to record (at the move's instant, before the move) for a what-if decision.

    They are recorded in this order: deliverables, fields, activities, approvals; the events they
    would append come first in :attr:`Decision.events`.

    Attributes:
        deliverables: deliverable id to its evidence (a mapping of JSON values, or ``None``).
        fields: custom field name to its new JSON value.
        activities: ``(activity type, details or None)`` pairs.
        approvals: roles that approve (the request's actor approves).
    """

    deliverables: Mapping[str, Mapping[str, Any] | None] = attrs.field(
        default=_EMPTY, converter=_frozen_mapping
    )
    fields: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=_frozen_mapping)
    activities: tuple[tuple[str, Mapping[str, Any] | None], ...] = attrs.field(
        default=(), converter=_activities
    )
    approvals: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    def __bool__(self) -> bool:
        return bool(self.deliverables or self.fields or self.activities or self.approvals)


_WORDS = {
    "advance": MoveCommand.ADVANCE,
    "win": MoveCommand.WIN,
    "lose": MoveCommand.LOSE,
    "reopen": MoveCommand.REOPEN,
}


def _command(value: MoveCommand | str) -> MoveCommand:
    if isinstance(value, MoveCommand):
        return value
    try:
        return MoveCommand(value)
    except ValueError:
        choices = ", ".join(c.value for c in MoveCommand)
        raise InvalidCommandError(f"command must be one of {choices}, got {_echo(value)}") from None


@attrs.frozen(slots=True)
class MoveRequest:
    """A requested move: what to do, who asks, when, why, and any facts to record first.

    Attributes:
        command: what to do (a :class:`MoveCommand` or its value).
        actor: who asks: non-empty text.
        target: the stage to enter (``move_to`` and ``override``; optional for ``win``, ``lose``,
            ``reopen``; none for ``advance``).
        at: the instant of the move (aware); ``None`` means the instant of the last event.
        reason: the reason, where the move needs one.
        facts: facts to record before the move.
    """

    command: MoveCommand = attrs.field(converter=_command)
    actor: str
    target: str | None = None
    at: datetime | None = None
    reason: str | None = None
    facts: ProposedFacts = attrs.field(factory=ProposedFacts)

    @classmethod
    def from_words(
        cls,
        move: str,
        *,
        actor: str,
        at: datetime | None = None,
        reason: str | None = None,
        override: bool = False,
    ) -> MoveRequest:
        """Build a request as the command line says it.

        ``move`` is ``advance``, ``win``, ``lose``, ``reopen`` or a target stage id; with
        ``override`` the move sets the gate aside (``advance``: into the next stage).

        >>> MoveRequest.from_words("contract", actor="ana", override=True).command.value
        'override'
        """
        if override:
            target = None if move == "advance" else move
            return cls(MoveCommand.OVERRIDE, actor, target, at, reason)
        if move in _WORDS:
            return cls(_WORDS[move], actor, None, at, reason)
        return cls(MoveCommand.MOVE_TO, actor, move, at, reason)

    def to_dict(self) -> dict[str, Any]:
        """Return the request's ``move`` object as JSON (its facts left out).

        ``at`` is ``null`` for an instant the request cannot carry: naive, or outside what UTC
        can represent (the decision of such a request is invalid and says why).
        """
        return {
            "command": self.command.value,
            "target": _text_or_none(self.target),
            "actor": _text_or_none(self.actor),
            "at": _instant_text(self.at),
            "reason": _text_or_none(self.reason),
        }


def _instant_text(at: object) -> str | None:
    if not isinstance(at, datetime) or at.utcoffset() is None:
        return None
    try:
        return to_utc(at).isoformat()
    except InvalidTimestampError:
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen(slots=True, eq=False)
class Decision:
    """The answer to a :class:`MoveRequest`.

    Attributes:
        verdict: allowed, blocked or invalid.
        request: the request decided.
        opportunity_id: the deal's id (``None`` when its log could not be read).
        from_stage: the deal's stage before the move (``None`` when the log could not be read).
        to_stage: the stage the move would enter, when allowed.
        at: the instant the move was decided at (UTC).
        report: the gate report of the move (also for a blocked move whose gate failed).
        missing: what is missing, one line per unmet criterion; empty when allowed.
        available_moves: every move the policy allows from the current stage, with whether each
            could happen now (after the proposed facts).
        events: the events the move would append (proposed facts first), when allowed.
        error: why the move is blocked or the request invalid; ``None`` when allowed.
    """

    verdict: Verdict
    request: MoveRequest | None = None
    opportunity_id: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    at: datetime | None = None
    report: GateReport | None = None
    missing: tuple[str, ...] = ()
    available_moves: tuple[MoveOption, ...] = ()
    events: tuple[Event, ...] = ()
    error: StagegateError | None = None

    @property
    def allowed(self) -> bool:
        """Whether the move would be accepted."""
        return self.verdict is Verdict.ALLOWED

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as a response document (see :func:`response_schema`)."""
        event = self.events[-1].to_dict() if self.events else None
        return {
            "version": SCHEMA_VERSION,
            "status": self.verdict.value,
            "allowed": self.allowed,
            "opportunity_id": self.opportunity_id,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "requested": None if self.request is None else self.request.to_dict(),
            "at": None if self.at is None else self.at.isoformat(),
            "report": None if self.report is None else self.report.to_dict(),
            "missing": list(self.missing),
            "available_moves": [_option(m) for m in self.available_moves],
            "event": event,
            "events": [e.to_dict() for e in self.events],
            "error": None if self.error is None else error_document(self.error),
        }


def _option(option: MoveOption) -> dict[str, Any]:
    return {
        "target": option.target,
        "kind": option.kind.value,
        "allowed": option.allowed,
        "needs_reason": option.needs_reason,
        "blocked_by": list(option.blocked_by),
    }


def _echo(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."


def error_document(error: BaseException) -> dict[str, Any]:
    """Return the ``error`` object of a response document for ``error``."""
    message = str(error)
    document: dict[str, Any] = {"type": type(error).__name__, "message": message}
    if isinstance(error, MoveNotAllowedError):
        document["why"] = error.why
        document["allowed_targets"] = list(error.allowed)
    elif isinstance(error, DefinitionError):
        document["problems"] = [str(p) for p in error.problems]
    elif isinstance(error, InvalidRequestError):
        document["problems"] = list(error.problems)
    return document


# -- deciding --------------------------------------------------------------------------------


def decide(
    process: Process,
    events: Iterable[Event],
    request: MoveRequest,
    *,
    versions: Iterable[Process] = (),
) -> Decision:
    """Decide whether the deal whose log is ``events`` may make the move ``request`` asks for.

    The events are replayed into a private opportunity, the request's facts recorded there, and
    the move tried there: the inputs never change. A bad request is answered with an
    :attr:`Verdict.INVALID` decision rather than raised.

    A deal migrated between versions of its process (its log holds ``migrated`` events) is
    replayed as :meth:`Opportunity.replay` does: ``process`` is the version the log ends in and
    ``versions`` the earlier ones it passed through. A log that names a version neither gives is
    invalid (rule ``version_unknown``, naming the version and its first event).

    Args:
        process: the process the deal moves through (the version its log ends in).
        events: the deal's log, oldest first (as :meth:`Opportunity.replay` takes it).
        request: the requested move.
        versions: the earlier versions of ``process`` a migrated log passed through.

    Returns:
        The decision: allowed (with the events the move would append), blocked (with the gate
        report, what is missing and the moves available instead) or invalid (with the error).
    """
    if not isinstance(request, MoveRequest):
        error = InvalidCommandError(f"request must be a MoveRequest, got {_echo(request)}")
        return Decision(Verdict.INVALID, error=error)
    if not isinstance(process, Process):
        error = InvalidCommandError(f"process must be a Process, got {_echo(process)}")
        return Decision(Verdict.INVALID, request, error=error)
    try:
        log = list(events)
    except TypeError:
        error = EventLogError(f"events must be an iterable of Event, got {_echo(events)}")
        return Decision(Verdict.INVALID, request, error=error)
    try:
        earlier = tuple(versions)
    except TypeError:
        refused = InvalidCommandError(
            f"versions must be an iterable of Process, got {_echo(versions)}"
        )
        return Decision(Verdict.INVALID, request, error=refused)
    try:
        _check_versions(process, earlier, log)
        deal = Opportunity.replay(process, log, versions=earlier)
    except StagegateError as error:
        return Decision(Verdict.INVALID, request, error=error)
    oid, source = deal.id, deal.stage
    try:
        at = _check_request(deal, request)
        before = len(log)
        _record_facts(deal, request, at)
    except StagegateError as error:
        return Decision(Verdict.INVALID, request, oid, source, error=error)
    moves = deal.available_moves(at=at)
    try:
        event = _attempt(deal, request, at)
    except GateNotMetError as error:
        return Decision(
            Verdict.BLOCKED,
            request,
            oid,
            source,
            at=at,
            report=error.report,
            missing=error.report.missing,
            available_moves=moves,
            error=error,
        )
    except (MoveNotAllowedError, InvalidCommandError) as error:
        return Decision(
            Verdict.BLOCKED, request, oid, source, at=at, available_moves=moves, error=error
        )
    except StagegateError as error:
        return Decision(Verdict.INVALID, request, oid, source, at=at, error=error)
    return Decision(
        Verdict.ALLOWED,
        request,
        oid,
        source,
        to_stage=event.stage,
        at=at,
        report=event.gate if event.gate is not None else GateReport(event.stage),
        available_moves=moves,
        events=deal.events[before:],
    )


def _check_versions(process: Process, versions: tuple[Any, ...], log: list[Event]) -> None:
    """Refuse a migrated log that names a version of ``process`` the request does not give."""
    if not any(type(e) is Event and e.kind is EventKind.MIGRATED for e in log):
        return  # a log in one version: replay says when it is not the process's
    known = {process.version} | {v.version for v in versions if isinstance(v, Process)}
    for event in log:
        if (
            type(event) is Event
            and event.process == process.name
            and event.process_version not in known
        ):
            raise EventLogError(
                f"event {event.seq} of {event.opportunity_id!r} was recorded in version "
                f"{_echo(event.process_version)} of process {process.name!r}, which the "
                f"request does not give (given: {', '.join(map(repr, sorted(known)))}); "
                "give the version the deal's log ends in as the process and every earlier "
                "version it was migrated from in versions [rule: version_unknown]",
                seq=event.seq,
                rule="version_unknown",
                opportunity_id=event.opportunity_id,
            )


def _check_request(deal: Opportunity, request: MoveRequest) -> datetime:
    """Check what the process cannot judge: actor, instant, reason type, target, shape."""
    arguments.actor(request.actor)
    try:
        at = deal.last_at if request.at is None else to_utc(request.at)
    except OverflowError:
        raise InvalidTimestampError(
            request.at, f"at={request.at!r} is outside the representable range once in UTC"
        ) from None
    if at < deal.last_at:
        raise OutOfOrderError(at, deal.last_at, deal.id)
    if request.reason is not None and not isinstance(request.reason, str):
        raise InvalidCommandError(f"reason must be text or null, got {_echo(request.reason)}")
    target, command = request.target, request.command
    if not isinstance(request.facts, ProposedFacts):
        raise InvalidCommandError(f"facts must be ProposedFacts, got {_echo(request.facts)}")
    if target is not None:
        if not isinstance(target, str):
            raise InvalidCommandError(f"target must be a stage id, got {_echo(target)}")
        if command is MoveCommand.ADVANCE:
            raise InvalidCommandError(
                "advance takes no target (it enters the next stage); use move_to to name one"
            )
        if target not in deal.process:
            process = deal.process
            raise UnknownStageError(target, process.stage_ids, process=process.name)
    elif command is MoveCommand.MOVE_TO:
        raise InvalidCommandError("move_to needs a target stage id")
    return at


def _record_facts(deal: Opportunity, request: MoveRequest, at: datetime) -> None:
    facts, actor = request.facts, request.actor
    for deliverable, evidence in facts.deliverables.items():
        deal.record_deliverable(deliverable, at=at, actor=actor, evidence=evidence)
    for name, value in facts.fields.items():
        deal.set_field(name, value, at=at, actor=actor)
    for pair in facts.activities:
        if not isinstance(pair, tuple) or len(pair) != 2:  # noqa: PLR2004 - a pair
            raise InvalidCommandError(
                f"an activity must be a (type, details) pair, got {_echo(pair)}"
            )
        deal.log_activity(pair[0], at=at, actor=actor, details=pair[1])
    for role in facts.approvals:
        deal.record_approval(role, at=at, actor=actor)


def _attempt(deal: Opportunity, request: MoveRequest, at: datetime) -> Event:
    command, target, actor, reason = request.command, request.target, request.actor, request.reason
    if command is MoveCommand.ADVANCE:
        return deal.advance(at=at, actor=actor)
    if command is MoveCommand.MOVE_TO:
        return deal.move_to(target or "", at=at, actor=actor, reason=reason)
    if command is MoveCommand.WIN:
        return deal.win(at=at, actor=actor, stage=target)
    if command is MoveCommand.LOSE:
        return deal.lose(at=at, actor=actor, reason=reason or "", stage=target)
    if command is MoveCommand.REOPEN:
        return deal.reopen(at=at, actor=actor, reason=reason or "", stage=target)
    if target is None:
        nxt = deal.process.next_stage(deal.stage)
        target = deal.stage if nxt is None else nxt.id
    return deal.override(target, at=at, actor=actor, reason=reason or "")


# -- JSON documents --------------------------------------------------------------------------


def _schema_text(name: str) -> str:
    return resources.files("stagegate").joinpath(f"schema/{name}.schema.json").read_text("utf-8")


@cache
def request_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of decision requests (draft 2020-12)."""
    loaded: Mapping[str, Any] = json.loads(_schema_text("decision-request"))
    return loaded


@cache
def response_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of decision responses (draft 2020-12)."""
    loaded: Mapping[str, Any] = json.loads(_schema_text("decision-response"))
    return loaded


@cache
def _request_check() -> Callable[[Any], list[str]]:
    return compile_schema(request_schema())


def _refuse_constant(name: str) -> Any:
    raise InvalidRequestError(f"the request holds {name}, which JSON cannot hold; send numbers")


def parse_request_text(text: str | bytes) -> Any:
    """Parse a JSON request text within the size and nesting limits.

    Raises:
        InvalidRequestError: the text is too large, not UTF-8, not JSON, holds NaN or
            infinities, or is nested deeper than :data:`MAX_NESTING`.
    """
    if len(text) > MAX_REQUEST_BYTES:
        raise InvalidRequestError(
            f"the request is larger than {MAX_REQUEST_BYTES} bytes; send fewer events"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(
                f"the request is not UTF-8 (bad byte at offset {exc.start}); send UTF-8 JSON"
            ) from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except InvalidRequestError:
        raise
    except RecursionError:
        raise InvalidRequestError(
            f"the request is nested deeper than {MAX_NESTING} levels; flatten it"
        ) from None
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise InvalidRequestError(f"the request is not JSON: {exc}") from None
    check_nesting(document, parsed=True)
    return document


def check_nesting(document: Any, *, limit: int = MAX_NESTING, parsed: bool = False) -> None:
    """Refuse a JSON value nested deeper than ``limit`` levels, or holding a non-finite number.

    ``parsed`` says the value comes from :func:`parse_request_text`, whose parser already refused
    non-finite numbers: only the nesting is checked then.

    Raises:
        InvalidRequestError: too deep (or containing itself), or a number JSON cannot hold.
    """
    level: list[Any] = [document]
    depth = 0
    containers = _CONTAINERS
    while level:
        depth += 1
        below: list[Any] = []
        for value in level:
            if isinstance(value, dict):
                children: Iterable[Any] = value.values()
            elif isinstance(value, list):
                children = value
            else:
                _check_number(value)
                continue
            if depth > limit:
                raise InvalidRequestError(
                    f"the request is nested deeper than {limit} levels; flatten it"
                )
            if parsed:
                below.extend(child for child in children if type(child) in containers)
                continue
            for child in children:
                if isinstance(child, (dict, list)):
                    below.append(child)
                elif type(child) is float:
                    _check_number(child)
        level = below


_CONTAINERS = frozenset({dict, list})


def _check_number(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequestError(
            f"the request holds the number {value!r}, which JSON cannot hold; send a finite one"
        )


def _finite(text: str) -> float:
    value = float(text)
    _check_number(value)
    return value


def _schema_problems(document: Any) -> list[str]:
    return _request_check()(document)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."


ProcessResolver = Callable[[str], Process]
"""Looks a process up by name; raises a :class:`StagegateError` when there is none."""


def _builtin(name: str) -> Process:
    from stagegate.templates import TEMPLATES, template  # noqa: PLC0415 - loaded on demand

    if name not in TEMPLATES:
        raise InvalidRequestError(
            f"no process named {name!r}; send the definition inline, or one of: "
            f"{', '.join(TEMPLATES)}"
        )
    return template(name)


def _process_of(spec: Any, resolve: ProcessResolver) -> Process:
    if isinstance(spec, str):
        return resolve(spec)
    from stagegate.definition import process_from_dict  # noqa: PLC0415 - avoid a cycle

    return process_from_dict(spec)


def _facts_of(data: Mapping[str, Any] | None) -> ProposedFacts:
    if not data:
        return ProposedFacts()
    activities = tuple((item["type"], item.get("details")) for item in data.get("activities", ()))
    return ProposedFacts(
        deliverables=data.get("deliverables"),
        fields=data.get("fields"),
        activities=activities,
        approvals=data.get("approvals", ()),
    )


def parse_at(text: str) -> datetime:
    """Parse the instant of a move: ISO 8601 text with an offset, within the calendar, in UTC.

    Raises:
        InvalidTimestampError: the text is not ISO 8601, is naive, or is outside the years
            1-9999 once in UTC.
    """
    try:
        return parse_instant(text)
    except OverflowError:
        raise InvalidTimestampError(
            text, f"{_echo(text)} is outside the representable range once in UTC; use years 1-9999"
        ) from None


def _request_of(move: Mapping[str, Any]) -> MoveRequest:
    at = move.get("at")
    return MoveRequest(
        move["command"],
        move["actor"],
        move.get("target"),
        None if at is None else parse_at(at),
        move.get("reason"),
        _facts_of(move.get("facts")),
    )


def events_from_dicts(items: Iterable[Any]) -> list[Event]:
    """Read untrusted event records (as :meth:`Event.to_dict` writes them) into events.

    Raises:
        EventLogError: a record is malformed; the message names its position in the log.
    """
    records = list(items)
    try:
        return [Event.from_dict(item) for item in records]
    except EventLogError:
        raise
    except (StagegateError, OverflowError, ValueError, TypeError):  # e.g. out-of-range instants
        pass
    for position, item in enumerate(records, start=1):  # find the record, name it
        try:
            Event.from_dict(item)
        except EventLogError:  # noqa: PERF203 - runs only to name a record already refused
            raise
        except (StagegateError, OverflowError, ValueError, TypeError) as exc:
            raise EventLogError(f"event {position} is malformed: {_short(str(exc))}") from None
    raise EventLogError("the events cannot be read")  # pragma: no cover - a failure repeats


def _invalid(error: StagegateError) -> dict[str, Any]:
    return Decision(Verdict.INVALID, error=error).to_dict()


def decide_json(document: Any, *, processes: ProcessResolver | None = None) -> dict[str, Any]:
    """Decide a JSON request (text, bytes, or an already parsed document); return the response.

    The request is checked against :func:`request_schema`; the response always matches
    :func:`response_schema`, for any input: a bad request is answered with status ``invalid``,
    never raised. ``processes`` looks up a process named by the request (default: the built-in
    templates).

    >>> import json
    >>> answer = decide_json('{"version": 1, "process": "b2b", "events": [], '
    ...                      '"move": {"command": "advance", "actor": "ana"}}')
    >>> answer["status"], answer["error"]["type"]
    ('invalid', 'InvalidRequestError')
    """
    try:
        return _decide_document(document, processes or _builtin)
    except Exception as exc:  # noqa: BLE001 - the answer must be a document, even for a bug
        return internal_error_document(exc)


def internal_error_document(exc: BaseException) -> dict[str, Any]:
    """Return the response document of an unexpected internal error (status ``error``)."""
    line = " ".join(str(exc).split())
    return {
        **Decision(Verdict.INVALID).to_dict(),
        "status": "error",
        "error": {
            "type": "InternalError",
            "message": _short(
                f"internal error ({type(exc).__name__}: {line}); this is a bug in stagegate, "
                "please report it with the request"
            ),
        },
    }


def _decide_document(document: Any, processes: ProcessResolver) -> dict[str, Any]:
    try:
        if isinstance(document, (str, bytes)):
            document = parse_request_text(document)
        else:
            check_nesting(document)
        problems = _schema_problems(document)
        if problems:
            raise InvalidRequestError(
                f"the request does not match the decision-request schema v{SCHEMA_VERSION}: "
                f"{problems[0]}",
                problems,
            )
        request = _request_of(document["move"])
    except StagegateError as error:
        return _invalid(error)
    try:
        process = _process_of(document["process"], processes)
        versions = [_version_of(spec, n) for n, spec in enumerate(document.get("versions", ()))]
        events = events_from_dicts(document["events"])
    except StagegateError as error:
        return Decision(Verdict.INVALID, request, error=error).to_dict()
    return decide(process, events, request, versions=versions).to_dict()


def _version_of(spec: Mapping[str, Any], position: int) -> Process:
    """An earlier version given inline in the request's ``versions`` list."""
    from stagegate.definition import process_from_dict  # noqa: PLC0415 - avoid a cycle

    try:
        return process_from_dict(spec)
    except DefinitionError as error:
        source = f"process definition at versions[{position}] of the request"
        raise DefinitionError(error.problems, source=source) from None


class EvidenceSources(Protocol):
    """What can name the sources of evidence: an :class:`~stagegate.io.EvidenceMap`."""

    def sources_for(self, criterion: Criterion) -> tuple[str, ...]:
        """Which source events could satisfy ``criterion``, one readable line each."""
        ...  # pragma: no cover - a protocol


@attrs.frozen(slots=True)
class MissingEvidence:
    """One unmet criterion of a gate, and the sources that could satisfy it.

    Attributes:
        target: the stage whose gate it is.
        criterion: the criterion (e.g. ``1 x 'discovery_call'``).
        reason: why it does not hold now.
        sources: the source events that could satisfy it, per the evidence map (e.g.
            ``hubspot 'MEETING' where outcome = 'COMPLETED'``); empty when no source maps to
            it: it is recorded by hand.
    """

    target: str
    criterion: str
    reason: str
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "target": self.target,
            "criterion": self.criterion,
            "reason": self.reason,
            "sources": list(self.sources),
        }


def _unmet(criterion: Criterion, facts: Facts) -> list[tuple[Criterion, str]]:
    """The leaf criteria whose evidence would help ``criterion`` hold (none if it holds)."""
    result = criterion.evaluate(facts)
    if result.holds:
        return []
    if isinstance(criterion, (AllOf, AnyOf)):
        return [leaf for part in criterion.criteria for leaf in _unmet(part, facts)]
    return [(criterion, result.reason)]


def missing_evidence(
    process: Process,
    events: Iterable[Event],
    sources: EvidenceSources | None = None,
    *,
    target: str | None = None,
    at: datetime | None = None,
) -> tuple[MissingEvidence, ...]:
    """What evidence is still missing for the deal to move, and which sources could supply it.

    The gates a move to ``target`` (default: the next stage) checks are evaluated as of ``at``
    (default: the last event); each unmet leaf criterion is listed with the source events the
    map says satisfy it. An empty answer means the gates hold (or the move checks none).

    >>> from datetime import datetime, timezone
    >>> from stagegate import Opportunity, b2b
    >>> deal = Opportunity.open(b2b(), "acme-1", at=datetime(2026, 3, 2, tzinfo=timezone.utc),
    ...                         actor="ana")
    >>> [(m.criterion, m.sources) for m in missing_evidence(b2b(), deal.events)]
    [("deliverable 'lead_record'", ())]

    Raises:
        EventLogError: the events do not replay under ``process``.
        UnknownStageError: ``target`` is not a stage of the process.
        MoveNotAllowedError: there is no next stage (``target`` omitted on a closed deal), or
            the policies allow no move to ``target``.
    """
    deal = Opportunity.replay(process, events)
    instant = None if at is None else to_utc(at)
    if target is None:
        nxt = process.next_stage(deal.stage)
        if nxt is None or deal.is_closed:
            raise MoveNotAllowedError(deal.stage, deal.stage, "there is no next stage", ())
        target = nxt.id
    stage = process.stage(target)
    move = process.lifecycle.move(deal.stage, stage.id)
    if move is None:
        raise MoveNotAllowedError(
            deal.stage,
            stage.id,
            "the policies allow no such move",
            tuple(m.target for m in process.lifecycle.moves_from(deal.stage)),
        )
    facts = deal.facts(at=instant)
    found: list[MissingEvidence] = []
    for stage_id, gate in zip(move.checks, move.gates, strict=True):
        for criterion, reason in _unmet(gate, facts):
            named = () if sources is None else tuple(sources.sources_for(criterion))
            found.append(MissingEvidence(stage_id, criterion.describe(), reason, named))
    return tuple(found)
