r"""Calendar events (iCalendar, RFC 5545) as engagements: the meetings reps actually held.

Needs the ``calendar`` extra (``pip install 'stagegate[calendar]'``, the ``icalendar`` parser).
Each ``VEVENT`` becomes an :class:`~stagegate.io.engagements.Engagement` of system
``calendar`` and type ``event``: its ``UID`` (with ``RECURRENCE-ID`` for a moved occurrence) is
the source id, and it occurred when it ended (``DTEND``, else ``DTSTART`` plus ``DURATION``,
else ``DTSTART``): a meeting counts as held once it is over.

The deals of an event are named by an ``X-STAGEGATE-OPPORTUNITY`` property (several ids
separated by commas), or found in its summary and description by ``deal_pattern``, a regular
expression whose first group is the deal id:

>>> ics = b'''BEGIN:VCALENDAR\r
... VERSION:2.0\r
... PRODID:-//example//EN\r
... BEGIN:VEVENT\r
... UID:7f3a@example\r
... DTSTART:20260303T100000Z\r
... DTEND:20260303T110000Z\r
... SUMMARY:Discovery call [acme-1]\r
... STATUS:CONFIRMED\r
... END:VEVENT\r
... END:VCALENDAR\r
... '''
>>> result = read_icalendar(ics, deal_pattern=r"\[([a-z0-9-]+)\]")
>>> event = result.engagements[0]
>>> event.source_id, event.opportunity_ids, event.occurred_at.isoformat()
('7f3a@example', ('acme-1',), '2026-03-03T11:00:00+00:00')
>>> event.attributes["status"], event.attributes["summary"]
('CONFIRMED', 'Discovery call [acme-1]')
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from stagegate._time import resolve_zone, to_utc
from stagegate.errors import InvalidCommandError, InvalidTimestampError, cut
from stagegate.io._result import Finding, ImportProblemError, Severity
from stagegate.io.engagements import (
    Engagement,
    EngagementImport,
    _Collector,
    _raw,
    _ReadError,
    _text_id,
)

__all__ = ["DEAL_PROPERTY", "read_icalendar"]

DEAL_PROPERTY = "X-STAGEGATE-OPPORTUNITY"
"""The iCalendar property that names an event's deals."""


def _instant(value: Any, zone: str | None, what: str) -> datetime:
    moment = getattr(value, "dt", value)
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            if zone is None:
                raise _ReadError(
                    f"has a floating {what} (no time zone); pass assume_zone= (--assume-zone)",
                    "naive_timestamp",
                )
            try:  # a floating time in a daylight-saving gap or fold names no single instant
                return to_utc(moment, assume_zone=resolve_zone(zone), what=what)
            except InvalidTimestampError as exc:
                raise _ReadError(str(exc), "unparseable_timestamp") from None
        return to_utc(moment)
    if isinstance(moment, date):
        raise _ReadError(
            f"is an all-day event ({what} is a date): no instant to record", "no_instant"
        )
    raise _ReadError(f"has no usable {what}")


def _ended(start: datetime, duration: Any) -> datetime:
    """When an event of ``duration`` that began at ``start`` ended (a non-duration: at once)."""
    if not isinstance(duration, timedelta):
        return start
    try:
        return start + duration
    except OverflowError:
        raise _ReadError(
            f"has a DURATION ({duration}) that ends outside the years 1 to 9999; fix its "
            "DURATION or DTEND"
        ) from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def read_icalendar(
    source: str | bytes | Path,
    *,
    deal_pattern: str | None = None,
    system: str = "calendar",
    assume_zone: str | None = None,
) -> EngagementImport:
    """Read the events of an iCalendar file (``.ics``) as engagements.

    Attributes of each engagement: ``summary``, ``status`` (``CONFIRMED``, ``TENTATIVE``,
    ``CANCELLED``), ``location``, ``organizer``, ``attendees`` (how many), ``categories`` and
    ``description``, where present. A recurring event is read as its first occurrence (with a
    warning); events without an instant (all-day) or without a deal are not used.

    Args:
        source: a path, or the file's bytes.
        deal_pattern: a regular expression whose first group finds a deal id in the summary or
            description, for events without the :data:`DEAL_PROPERTY` property.
        system: the source system name to record (``calendar``; e.g. ``google`` or ``outlook``).
        assume_zone: the zone of floating (zone-less) times.

    Raises:
        ImportProblemError: the file cannot be read or is not iCalendar.
        InvalidCommandError: ``deal_pattern`` is not a regular expression with a group.
    """
    try:
        import icalendar  # noqa: PLC0415 - an optional extra
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportProblemError(
            "icalendar",
            [
                Finding(
                    "missing_dependency",
                    Severity.ERROR,
                    "reading calendars needs the calendar extra: pip install 'stagegate[calendar]'",
                    used=False,
                )
            ],
        ) from None
    pattern = None
    if deal_pattern is not None:
        try:
            pattern = re.compile(deal_pattern)
        except re.error as exc:
            raise InvalidCommandError(
                f"deal_pattern {cut(repr(deal_pattern))} is not a regular expression: {exc}"
            ) from None
        if pattern.groups < 1:
            raise InvalidCommandError(
                f"deal_pattern {cut(repr(deal_pattern))} needs a group around the deal id, "
                r"e.g. '\[(opp-\d+)\]'"
            )
    text = _raw(source, "icalendar")
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ImportProblemError(
            "icalendar",
            [
                Finding(
                    "unreadable_file",
                    Severity.ERROR,
                    f"the input is not iCalendar: {cut(str(exc), 200)}",
                    used=False,
                )
            ],
        ) from None
    collector = _Collector("icalendar")
    recurring: list[int] = []

    number = 0
    for calendar in calendars:
        for event in calendar.walk("VEVENT"):
            number += 1
            try:
                collector.add(
                    number,
                    partial(
                        _event,
                        event,
                        number,
                        pattern=pattern,
                        assume_zone=assume_zone,
                        system=system,
                        recurring=recurring,
                    ),
                )
            except (ValueError, TypeError, AttributeError) as exc:  # a malformed property
                collector.rows -= 1
                collector.add(number, _failing(f"has a malformed property: {cut(str(exc))}"))
    result = collector.result()
    if recurring:
        result = EngagementImport(
            result.source,
            result.engagements,
            (
                *result.findings,
                Finding(
                    "recurring",
                    Severity.WARNING,
                    "recurring events were read as their first occurrence only; export the "
                    "occurrences (expanded) to record each",
                    rows=recurring,
                ),
            ),
            result.rows_read,
        )
    return result


def _event(
    event: Any,
    number: int,
    *,
    pattern: re.Pattern[str] | None,
    assume_zone: str | None,
    system: str,
    recurring: list[int],
) -> Engagement:
    uid = event.get("UID")
    if uid is None or not str(uid).strip():
        raise _ReadError("has no UID")
    source_id = _text_id(uid if isinstance(uid, list) else str(uid), "UID")
    if event.get("RECURRENCE-ID") is not None:
        moved = _instant(event.get("RECURRENCE-ID"), assume_zone, "RECURRENCE-ID")
        source_id += f"#{moved.isoformat()}"
    start = _instant(event.get("DTSTART"), assume_zone, "DTSTART")
    if event.get("DTEND") is not None:
        end = _instant(event.get("DTEND"), assume_zone, "DTEND")
    elif event.get("DURATION") is not None:
        end = _ended(start, getattr(event.get("DURATION"), "dt", None))
    else:
        end = start
    if event.get("RRULE") is not None:
        recurring.append(number)
    summary = _text(event.get("SUMMARY"))
    description = _text(event.get("DESCRIPTION"))
    named = _text(event.get(DEAL_PROPERTY))
    deals: list[str] = []
    if named:
        deals = [part.strip() for part in named.split(",") if part.strip()]
    elif pattern is not None:
        for field in (summary, description):
            if field:
                deals.extend(match.group(1) for match in pattern.finditer(field))
    deals = [_text_id(deal, "deal id") for deal in deals]
    if not deals:
        raise _ReadError(
            f"names no deal (no {DEAL_PROPERTY} property"
            + (", and deal_pattern finds none)" if pattern is not None else ")"),
            "missing_id",
        )
    attendees = event.get("ATTENDEE")
    count = len(attendees) if isinstance(attendees, list) else int(attendees is not None)
    attributes = {
        "summary": summary,
        "status": _text(event.get("STATUS")),
        "location": _text(event.get("LOCATION")),
        "organizer": _text(event.get("ORGANIZER")),
        "attendees": count,
        "categories": _categories(event.get("CATEGORIES")),
        "description": description,
    }
    return Engagement(
        system,
        source_id,
        "event",
        max(start, end),
        tuple(dict.fromkeys(deals).keys()),
        {k: v for k, v in attributes.items() if v not in (None, "")},
        f"system:{system}",
    )


def _categories(value: Any) -> str | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        cats = getattr(item, "cats", None)
        names.extend(str(c) for c in cats) if cats is not None else names.append(str(item))
    return ", ".join(names) or None


def _failing(reason: str) -> Any:
    def build() -> Engagement:
        raise _ReadError(reason)

    return build
