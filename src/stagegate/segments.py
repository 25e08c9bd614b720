"""Owners and segment attributes: who a deal belonged to, and which segment it was in, when.

A deal's *owner* (the rep responsible for it, not the actor who recorded an event) and its
*segment attributes* (``team``, ``region``, ``product``, ``lead_source``, ``size_band``, ...)
are part of its history: :meth:`Opportunity.reassign <stagegate.Opportunity.reassign>` records
a :attr:`~stagegate.events.EventKind.REASSIGNED` event and :meth:`Opportunity.set_attribute
<stagegate.Opportunity.set_attribute>` an :attr:`~stagegate.events.EventKind.ATTRIBUTE_SET`
event, and each value is in force from its event's ``at`` on.

:func:`values_at` reads a log into the values in force after each event, the segment columns
of the stage-history table (``owner`` and one column per attribute):

>>> from datetime import datetime, timezone
>>> from stagegate import Opportunity, b2b
>>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "d-1", at=t, actor="crm", owner="kim",
...                         attributes={"region": "east"})
>>> _ = deal.reassign("lee", at=t.replace(day=9), actor="manager:park")
>>> for event, values in zip(deal.events, values_at(deal.events)):
...     print(event.seq, event.kind.value, dict(values))
1 opened {'owner': 'kim', 'region': 'east'}
2 reassigned {'owner': 'kim', 'region': 'east'}
3 attribute_set {'owner': 'kim', 'region': 'east'}
4 reassigned {'owner': 'lee', 'region': 'east'}
>>> dict(in_force(deal.events, t))
{'owner': 'kim', 'region': 'east'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from stagegate import _arguments as arguments
from stagegate._time import to_utc
from stagegate.errors import InvalidCommandError, cut
from stagegate.events import Event, EventKind

__all__ = [
    "CURRENCY",
    "MAX_VALUE_LENGTH",
    "OWNER",
    "RESERVED_NAMES",
    "attribute_name",
    "attribute_value",
    "in_force",
    "names_of",
    "owner_name",
    "values_at",
]

OWNER = "owner"
"""The segment column that holds a deal's owner."""
RESERVED_NAMES = frozenset(
    {
        "opportunity_id",
        "at",
        "at_us",
        "seq",
        "stage",
        "amount",
        "close_date",
        "close_day",
        "reason",
        "kind",
        "from_stage",
        "move",
        "actor",
        "process",
        "process_version",
        "subject",
        "details",
        "gate",
        "digest",
        "rank",
        OWNER,
    }
)
"""Names an attribute may not take: the stage-history table's own columns, and ``owner``
(changed only by :meth:`~stagegate.Opportunity.reassign`)."""
MAX_VALUE_LENGTH = 200
"""Longest owner or attribute value, in characters."""
MAX_NAME_LENGTH = 64
"""Longest attribute name, in characters."""
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")
CURRENCY = "currency"
"""The attribute naming the currency of a deal's amounts (see :mod:`stagegate.currency`)."""
_REASSIGNED = EventKind.REASSIGNED
_ATTRIBUTE_SET = EventKind.ATTRIBUTE_SET


def attribute_name(value: Any) -> str:
    """Check an attribute name: a lowercase identifier, not one of :data:`RESERVED_NAMES`.

    >>> attribute_name("lead_source")
    'lead_source'
    >>> attribute_name("Region")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stagegate.errors.InvalidCommandError: attribute name 'Region' is not a lowercase identifier...

    Raises:
        InvalidCommandError: not text, not a lowercase identifier, or reserved.
    """
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _NAME.match(value):
        raise InvalidCommandError(
            f"attribute name {cut(repr(value))} is not a lowercase identifier (a-z, then a-z, "
            f"0-9 or _, at most {MAX_NAME_LENGTH} characters); use e.g. 'region' or 'lead_source'"
        )
    if value in RESERVED_NAMES:
        what = (
            "the owner changes only through reassign(owner, ...)"
            if value == OWNER
            else "it is a column of the stage-history table"
        )
        raise InvalidCommandError(f"{value!r} cannot be an attribute name: {what}; pick another")
    return value


def _value(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE_LENGTH:
        raise InvalidCommandError(
            f"{what} must be non-empty text of at most {MAX_VALUE_LENGTH} characters, "
            f"got {cut(repr(value))}"
        )
    return arguments.name(value, what)


def owner_name(value: Any) -> str:
    """Check an owner: non-empty, single-line text of at most :data:`MAX_VALUE_LENGTH`.

    Raises:
        InvalidCommandError: not such text.
    """
    return _value(value, "owner")


def attribute_value(value: Any, name: str = "attribute") -> str | None:
    """Check an attribute value: text as :func:`owner_name` requires, or ``None`` (cleared).

    The ``currency`` attribute (the currency of the deal's amounts) takes an ISO 4217 code.

    Raises:
        InvalidCommandError: neither such text nor ``None``.
    """
    if value is None:
        return None
    text = _value(value, f"attribute {name!r} value")
    if name == CURRENCY and not _CURRENCY.match(text):
        raise InvalidCommandError(
            f"currency {cut(repr(text))} is not a three-letter ISO 4217 code such as 'USD', "
            "'EUR' or 'KRW'; write it in capitals"
        )
    return text


def names_of(events: Iterable[Event]) -> tuple[str, ...]:
    """The segment columns a log has: ``owner`` if it was ever set, then attributes, sorted.

    >>> names_of([])
    ()
    """
    owner = False
    names: set[str] = set()
    for event in events:
        kind = event.kind
        if kind is _REASSIGNED:
            owner = True
        elif kind is _ATTRIBUTE_SET and event.subject is not None:
            names.add(event.subject)
    return ((OWNER,) if owner else ()) + tuple(sorted(names))


def _set(event: Event) -> tuple[str, str | None] | None:
    kind = event.kind
    if kind is _REASSIGNED:
        return OWNER, event.subject
    if kind is _ATTRIBUTE_SET and event.subject is not None:
        details = event.details or {}
        value = details.get("value")
        return event.subject, value if isinstance(value, str) else None
    return None


def values_at(
    events: Sequence[Event], names: Sequence[str] | None = None
) -> tuple[Mapping[str, str | None], ...]:
    """The segment values in force at each event of one deal's log, aligned with it.

    Each mapping has one key per column of ``names`` (default :func:`names_of` the log) and
    the value in force from that event's instant on: the value after every event of the deal
    at that instant (so the ``opened`` row already carries the owner set at the opening), or
    ``None`` (none yet, or cleared). This is the ``owner`` and segment columns of the
    stage-history table, row for row.

    Events of several deals may be passed, grouped by deal and in ``seq`` order: the values
    restart at each deal's first event.
    """
    log = list(events)
    columns = names_of(log) if names is None else tuple(names)
    empty = dict.fromkeys(columns)
    current = dict(empty)
    result: list[Mapping[str, str | None]] = []
    frozen: Mapping[str, str | None] = MappingProxyType(dict(current))
    start = 0  # the first event of the current (deal, instant) group
    for i, event in enumerate(log):
        if i and event.opportunity_id != log[i - 1].opportunity_id:
            current = dict(empty)
            frozen = MappingProxyType(dict(current))
        if i and (event.opportunity_id, event.at) != (log[i - 1].opportunity_id, log[i - 1].at):
            start = i
        change = _set(event)
        if change is not None and change[0] in current and current[change[0]] != change[1]:
            current[change[0]] = change[1]
            frozen = MappingProxyType(dict(current))
            result[start:i] = [frozen] * (i - start)  # in force from the instant on
        result.append(frozen)
    return tuple(result)


def in_force(
    events: Iterable[Event], at: datetime, names: Sequence[str] | None = None
) -> Mapping[str, str | None]:
    """The segment values of one deal in force at ``at`` (events at ``at`` included).

    Raises:
        InvalidTimestampError: ``at`` is naive.
    """
    instant = to_utc(at)
    log = [event for event in events if event.at <= instant]
    columns = names_of(log) if names is None else tuple(names)
    values = values_at(log, columns)
    return values[-1] if values else MappingProxyType(dict.fromkeys(columns))
