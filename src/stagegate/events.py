"""The immutable records of an opportunity's log.

Every accepted command appends one :class:`Event`. An event carries the values in force *after*
it (``stage``, ``amount``, ``close_date``), so a log reads directly as the canonical stage-history
table: one row per change, with the values in force from that instant on.

Events round-trip losslessly through JSON-able dicts:

>>> from datetime import datetime, timezone
>>> e = Event(
...     opportunity_id="opp-1", seq=1, kind=EventKind.OPENED,
...     at=datetime(2026, 1, 5, 9, tzinfo=timezone.utc), actor="ana",
...     stage="lead", process="b2b", process_version="1",
... )
>>> Event.from_dict(e.to_dict()) == e
True
>>> e.to_dict()["at"]
'2026-01-05T09:00:00+00:00'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import attrs

from stagegate._arguments import MAX_AMOUNT_TEXT, text_problem
from stagegate._time import UTC, parse_date, parse_instant, to_utc
from stagegate.errors import EventLogError, StagegateError, cut
from stagegate.gates import GateReport

__all__ = ["Event", "EventKind", "FrozenMapping", "MoveKind", "freeze", "thaw"]


class EventKind(str, enum.Enum):
    """What an event records."""

    OPENED = "opened"
    """The opportunity was opened in its first stage."""
    STAGE_CHANGED = "stage_changed"
    """The stage changed; ``move`` says how (advance, skip, backward, win, lose, ...)."""
    DELIVERABLE_RECORDED = "deliverable_recorded"
    """A deliverable (``subject``) was recorded, with evidence in ``details``."""
    ACTIVITY_LOGGED = "activity_logged"
    """An activity of type ``subject`` happened, with details in ``details``."""
    APPROVAL_RECORDED = "approval_recorded"
    """Someone in role ``subject`` approved the opportunity."""
    FIELD_SET = "field_set"
    """Field ``subject`` was set to ``details["value"]``."""
    RESCHEDULED = "rescheduled"
    """The expected close date changed to ``close_date`` (previous one in ``details``)."""
    AMOUNT_CHANGED = "amount_changed"
    """The amount changed to ``amount`` (previous one in ``details``)."""
    REASSIGNED = "reassigned"
    """The deal's owner (the rep responsible, not the actor) became ``subject``, from ``at`` on."""
    ATTRIBUTE_SET = "attribute_set"
    """Segment attribute ``subject`` (``team``, ``region``, ...) became ``details["value"]``."""
    MIGRATED = "migrated"
    """The open opportunity moved to another version of its process: ``process_version`` is the
    new version and ``stage`` the stage it is in under it; ``details`` holds ``from_version``,
    ``from_stage`` and the ``mapping`` of stages (and ``deliverables``) applied. Events before it
    are checked against the old version, events after it against the new one."""
    LEAD_SCORED = "lead_scored"
    """Marketing scored or qualified the lead: ``details["score"]`` (a number or null) and
    ``details["status"]`` (text such as ``MQL``, or null), by ``subject`` (who scored it)."""


class MoveKind(str, enum.Enum):
    """How a stage change happened."""

    ADVANCE = "advance"
    """To the next stage, gate met."""
    SKIP = "skip"
    """Forward past one or more stages, gate met, policy allows skipping."""
    BACKWARD = "backward"
    """Back to an earlier open stage, policy allows it."""
    WIN = "win"
    """Into a won stage, gate met."""
    LOSE = "lose"
    """Into a lost stage, with a reason."""
    REOPEN = "reopen"
    """From a closed stage back to an open one, with a reason."""
    OVERRIDE = "override"
    """Despite an unmet gate, with a reason; the gate report shows what was unmet."""
    IMPORTED = "imported"
    """Taken from another system's history; never checked against stagegate's gates."""


MAX_DETAILS_DEPTH = 32
"""Deepest nesting of lists and objects accepted in evidence, details and field values."""
MAX_INT_BITS = 13_000
"""Widest integer (in bits, about 3,900 digits) accepted in details: wider ones cannot be
written as JSON text and read back (Python limits int-to-text conversion to 4,300 digits)."""


class FrozenMapping(dict[str, Any]):
    """A read-only dict: the evidence and details of events, which must never change.

    A dict subclass (rather than a ``MappingProxyType`` over a copy) keeps events small.

    >>> details = FrozenMapping({"signed_by": "CFO"})
    >>> details["signed_by"]
    'CFO'
    >>> details["signed_by"] = "CEO"
    Traceback (most recent call last):
    ...
    TypeError: event details are read-only; record a new event instead
    """

    __slots__ = ()

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        msg = "event details are read-only; record a new event instead"
        raise TypeError(msg)

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __copy__(self) -> FrozenMapping:
        return self

    def __deepcopy__(self, memo: Any) -> FrozenMapping:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMapping, (dict(self),))


def freeze(value: Any, *, path: str = "details", _depth: int = 0) -> Any:
    """Return a deeply immutable copy of a JSON-like value (read-only mappings, tuples).

    Raises:
        InvalidCommandError: the value holds something that is not JSON-like (including NaN
            and infinities, which JSON cannot hold), or is nested deeper than
            :data:`MAX_DETAILS_DEPTH` (or contains itself).
    """
    from stagegate.errors import InvalidCommandError  # noqa: PLC0415 - avoid a cycle in typing

    if isinstance(value, str):
        if not value.isascii() and text_problem(value, single_line=False):
            raise InvalidCommandError(
                f"{path} holds text with a lone surrogate, which UTF-8 cannot encode; "
                "pass plain text"
            )
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCommandError(
                f"{path} holds {value!r}; JSON cannot hold it: use finite numbers, or text or null"
            )
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise InvalidCommandError(
                f"{path} holds an integer of about {int(value.bit_length() * 0.30103)} digits; "
                "numbers can have at most 3,900 digits to be written and read back: "
                "store it as text"
            )
        return value
    if _depth >= MAX_DETAILS_DEPTH:
        raise InvalidCommandError(
            f"{path} is nested deeper than {MAX_DETAILS_DEPTH} levels (or contains itself); "
            "flatten it"
        )
    if isinstance(value, Mapping):
        frozen: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidCommandError(
                    f"{path} has a non-text key {key!r}; use text keys (JSON objects)"
                )
            frozen[key] = freeze(item, path=f"{path}.{key}", _depth=_depth + 1)
        return FrozenMapping(frozen)
    if isinstance(value, (list, tuple)):
        return tuple(
            freeze(item, path=f"{path}[{i}]", _depth=_depth + 1) for i, item in enumerate(value)
        )
    raise InvalidCommandError(
        f"{path} holds {type(value).__name__} {value!r}; use JSON values "
        "(text, numbers, booleans, null, lists, objects)"
    )


def thaw(value: Any) -> Any:
    """Return a plain JSON-able copy of a value made by :func:`freeze`."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def _utc(value: datetime) -> datetime:
    if type(value) is datetime and value.tzinfo is UTC:
        return value
    return to_utc(value)


def _amount(value: Decimal | float | None) -> Decimal | None:
    """An event's amount as a ``Decimal``: ints and floats are taken as their decimal text.

    Raises:
        EventLogError: the amount is not a number (text, a boolean, ...).
    """
    if value is None or type(value) is Decimal:
        return value
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventLogError(
            f"an event's amount must be a Decimal, got {type(value).__name__} "
            f"{cut(repr(value))}; pass Decimal('12000.50')"
        )
    return Decimal(str(value))


@attrs.frozen(slots=True, weakref_slot=False)
class Event:
    """One immutable entry of an opportunity's log.

    Attributes:
        opportunity_id: the opportunity the event belongs to.
        seq: position in the opportunity's log, from 1, without gaps.
        kind: what the event records.
        at: when it happened, timezone-aware, in UTC; never earlier than the previous event.
        actor: who or what caused it (a user id, ``"system:hubspot"``, ...).
        stage: the stage in force after the event.
        process: name of the process definition in force.
        process_version: version of that definition.
        from_stage: for stage changes, the stage left.
        move: for stage changes, how the stage changed.
        reason: the reason given (required for losses, overrides, reopenings, backward moves).
        gate: for stage changes, the gate report that allowed (or, for overrides, did not allow)
            the move; ``None`` for imported history and for moves into ungated stages.
        amount: the amount in force after the event, if known (an int or float is taken as
            its decimal text; anything else is an :class:`~stagegate.errors.EventLogError`).
        close_date: the expected (or actual) close date in force after the event, if known.
        subject: the deliverable, activity type, approving role or field the event is about.
        details: evidence, field value or previous value: a read-only JSON-like mapping.
        digest: the event's link in the log's digest chain (SHA-256, hex), or ``None`` for an
            event not sealed yet; see :mod:`stagegate.integrity`. Not part of equality.
    """

    opportunity_id: str
    seq: int
    kind: EventKind
    at: datetime = attrs.field(converter=_utc)
    actor: str
    stage: str
    process: str
    process_version: str
    from_stage: str | None = None
    move: MoveKind | None = None
    reason: str | None = None
    gate: GateReport | None = None
    amount: Decimal | None = attrs.field(default=None, converter=_amount)
    close_date: date | None = None
    subject: str | None = None
    details: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    digest: str | None = attrs.field(default=None, eq=False, hash=False, repr=False)

    @property
    def is_stage_change(self) -> bool:
        """Whether this event entered a stage (opening included)."""
        return self.kind is EventKind.STAGE_CHANGED or self.kind is EventKind.OPENED

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; :meth:`from_dict` rebuilds an equal event.

        Amounts are decimal text (no float rounding), instants ISO 8601 with offset, dates ISO.
        ``digest`` is present only for a sealed event.
        """
        data: dict[str, Any] = {
            "opportunity_id": self.opportunity_id,
            "seq": self.seq,
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "stage": self.stage,
            "process": self.process,
            "process_version": self.process_version,
            "from_stage": self.from_stage,
            "move": None if self.move is None else self.move.value,
            "reason": self.reason,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "amount": None if self.amount is None else str(self.amount),
            "close_date": None if self.close_date is None else self.close_date.isoformat(),
            "subject": self.subject,
            "details": None if self.details is None else thaw(self.details),
        }
        if self.digest is not None:
            data["digest"] = self.digest
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output.

        Raises:
            EventLogError: a field is missing, of the wrong type, or has an unknown value.
        """
        if not isinstance(data, Mapping):
            raise EventLogError(f"an event must be a JSON object, got {type(data).__name__}")
        seq = data.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            seq = None
        try:
            return cls(
                opportunity_id=_text(data, "opportunity_id"),
                seq=_seq(data),
                kind=EventKind(data["kind"]),
                at=parse_instant(_text(data, "at")),
                actor=_text(data, "actor"),
                stage=_text(data, "stage"),
                process=_text(data, "process"),
                process_version=_text(data, "process_version"),
                from_stage=_opt_text(data, "from_stage"),
                move=None if data.get("move") is None else MoveKind(data["move"]),
                reason=_opt_text(data, "reason"),
                gate=None if data.get("gate") is None else GateReport.from_dict(data["gate"]),
                amount=None if data.get("amount") is None else _decimal(data["amount"]),
                close_date=None
                if data.get("close_date") is None
                else parse_date(data["close_date"]),
                subject=_opt_text(data, "subject"),
                details=_details(data.get("details")),
                digest=_digest(data.get("digest")),
            )
        except KeyError as exc:
            raise EventLogError(
                f"event {_label(seq)} lacks the field {cut(repr(exc.args[0]))}; "
                "events must carry every field written by Event.to_dict()",
                seq=seq,
            ) from None
        except (StagegateError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            where = data.get("opportunity_id")
            of = f" of opportunity {cut(repr(where))}" if isinstance(where, str) else ""
            raise EventLogError(
                f"event {_label(seq)}{of} is malformed: {cut(str(exc), 1000)}", seq=seq
            ) from None


def _label(seq: int | None) -> str:
    return "?" if seq is None else str(seq)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise EventLogError(f"event field {key!r} must be non-empty text, got {cut(repr(value))}")
    problem = text_problem(value, single_line=False)
    if problem is not None:
        raise EventLogError(f"event field {key!r} {problem}")
    return value


def _opt_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventLogError(f"event field {key!r} must be text or null, got {cut(repr(value))}")
    problem = text_problem(value, single_line=False)
    if problem is not None:
        raise EventLogError(f"event field {key!r} {problem}")
    return value


def _details(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EventLogError(
            f"event field 'details' must be an object or null, got {type(value).__name__}"
        )
    frozen: Mapping[str, Any] = freeze(value)
    return frozen


DIGEST_LENGTH = 64
"""Length of an event digest: SHA-256 as lowercase hexadecimal."""
_HEX = frozenset("0123456789abcdef")


def _digest(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != DIGEST_LENGTH or not _HEX.issuperset(value):
        raise EventLogError(
            f"event field 'digest' must be {DIGEST_LENGTH} lowercase hexadecimal digits "
            f"(SHA-256), got {cut(repr(value), 80)}"
        )
    return value


def _seq(data: Mapping[str, Any]) -> int:
    value = data["seq"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EventLogError(f"event field 'seq' must be a positive integer, got {value!r}")
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise EventLogError(f"amount must be decimal text, got {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_AMOUNT_TEXT:
        raise EventLogError(f"amount text is longer than {MAX_AMOUNT_TEXT} characters")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise EventLogError(f"amount {cut(repr(value))} is not a decimal number") from None
    if not result.is_finite() or result < 0:
        raise EventLogError(f"amount {cut(repr(value))} is not a finite number >= 0")
    return result


class _EventDraft:
    """An unfrozen twin of :class:`Event` (same slots) that :func:`recorded_event` fills in."""

    __slots__ = Event.__slots__  # the same names in the same order: the same memory layout
    opportunity_id: str
    seq: int
    kind: EventKind
    at: datetime
    actor: str
    stage: str
    process: str
    process_version: str
    from_stage: str | None
    move: MoveKind | None
    reason: str | None
    gate: GateReport | None
    amount: Decimal | None
    close_date: date | None
    subject: str | None
    details: Mapping[str, Any] | None
    digest: str | None


_new_draft = object.__new__


def recorded_event(  # noqa: PLR0917 - the fields of Event, in order, as Event takes them
    opportunity_id: str,
    seq: int,
    kind: EventKind,
    at: datetime,
    actor: str,
    stage: str,
    process: str,
    process_version: str,
    from_stage: str | None,
    move: MoveKind | None,
    reason: str | None,
    gate: GateReport | None,
    amount: Decimal | None,
    close_date: date | None,
    subject: str | None,
    details: Mapping[str, Any] | None,
    digest: str | None = None,
) -> Event:
    """Return ``Event(...)`` of arguments a command has already checked, at a third of the cost.

    For :class:`~stagegate.opportunity.Opportunity` commands only: ``at`` must already be an
    aware datetime in UTC and ``amount`` a ``Decimal`` or ``None`` (``Event`` would convert
    them). A frozen attrs ``__init__`` sets each field through ``object.__setattr__``; this
    fills an unfrozen twin with the same slots and then makes it an ``Event``, which equals,
    hashes and prints as the public constructor's.
    """
    draft = _new_draft(_EventDraft)
    draft.opportunity_id = opportunity_id
    draft.seq = seq
    draft.kind = kind
    draft.at = at
    draft.actor = actor
    draft.stage = stage
    draft.process = process
    draft.process_version = process_version
    draft.from_stage = from_stage
    draft.move = move
    draft.reason = reason
    draft.gate = gate
    draft.amount = amount
    draft.close_date = close_date
    draft.subject = subject
    draft.details = details
    draft.digest = digest
    draft.__class__ = Event  # type: ignore[assignment] # same slots: a legal layout change
    return draft  # type: ignore[return-value] # now an Event
