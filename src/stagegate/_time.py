"""Instants: the one place that reads the clock and normalizes datetimes to UTC.

Every instant that crosses the public API is a timezone-aware :class:`~datetime.datetime`.
Naive datetimes are rejected, or interpreted in a zone the caller names explicitly.

>>> from datetime import datetime, timezone, timedelta
>>> to_utc(datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))))
datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone.utc)
>>> parse_instant("2026-03-29T01:30:00Z")
datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

from dateutil import parser as _dateutil_parser
from dateutil import tz as _dateutil_tz

from stagegate.errors import InvalidTimestampError

__all__ = ["UTC", "now", "parse_date", "parse_instant", "resolve_zone", "to_utc"]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> datetime:
    """Return the current instant in UTC; the only place stagegate reads the clock."""
    return datetime.now(UTC)  # noqa: TID251 - the one place that reads the clock


def resolve_zone(zone: str | tzinfo) -> tzinfo:
    """Return a tzinfo for an IANA zone name (``"Europe/Berlin"``) or pass a tzinfo through.

    Raises:
        InvalidTimestampError: the zone name is unknown, empty or not text.
    """
    if isinstance(zone, tzinfo):
        return zone
    if not isinstance(zone, str) or not zone.strip():
        # dateutil reads "" as the machine's local zone: that would be a guess, never wanted.
        raise InvalidTimestampError(
            zone, f"time zone must be an IANA name such as 'Europe/Berlin', got {zone!r}"
        )
    resolved = _dateutil_tz.gettz(zone)
    if resolved is None:
        raise InvalidTimestampError(
            zone, f"unknown time zone {zone!r}; pass an IANA name such as 'Europe/Berlin'"
        )
    return resolved


def to_utc(at: datetime, *, assume_zone: str | tzinfo | None = None, what: str = "at") -> datetime:
    """Return ``at`` as an aware datetime in UTC.

    Args:
        at: the instant; must be timezone-aware unless ``assume_zone`` is given.
        assume_zone: the zone in which to interpret a naive ``at`` (never guessed).
        what: the argument name used in error messages.

    Raises:
        InvalidTimestampError: ``at`` is not a datetime, or is naive and no zone was named.
    """
    if not isinstance(at, datetime):
        raise InvalidTimestampError(
            at, f"{what} must be a timezone-aware datetime, got {type(at).__name__} {at!r}"
        )
    if at.tzinfo is None or at.utcoffset() is None:
        if assume_zone is None:
            raise InvalidTimestampError(
                at,
                f"{what}={at!r} is naive; pass an aware datetime such as "
                "datetime(..., tzinfo=timezone.utc), or name the zone it was recorded in",
            )
        zone = resolve_zone(assume_zone)
        try:
            unclear = _dateutil_tz.datetime_ambiguous(at, zone) or not _dateutil_tz.datetime_exists(
                at, zone
            )
        except (OverflowError, ValueError):
            raise InvalidTimestampError(
                at,
                f"{what}={at.isoformat()} in {zone!s} is outside the instants UTC can represent "
                "(the years 1 to 9999); pass an instant in that range",
            ) from None
        if unclear:
            raise InvalidTimestampError(
                at,
                f"{what}={at!r} is ambiguous or does not exist in {zone!s} "
                "(a daylight-saving change); record it with an explicit offset",
            )
        at = at.replace(tzinfo=zone)
    if at.tzinfo is UTC:
        return at
    try:
        return at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidTimestampError(
            at,
            f"{what}={at.isoformat()} is outside the instants UTC can represent "
            "(0001-01-01T00:00Z to 9999-12-31T23:59:59.999999Z); pass an instant in that range",
        ) from None


def parse_instant(text: str, *, assume_zone: str | tzinfo | None = None) -> datetime:
    """Parse ISO 8601 text into an aware UTC datetime.

    Raises:
        InvalidTimestampError: the text is not ISO 8601, or is naive and no zone was named.
    """
    try:
        parsed = _dateutil_parser.isoparse(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidTimestampError(
            text,
            f"cannot parse {text!r} as an ISO 8601 instant ({exc}); use e.g. 2026-01-31T09:00Z",
        ) from None
    return to_utc(parsed, assume_zone=assume_zone)


def parse_date(text: str | date) -> date:
    """Parse an ISO calendar date (``2026-01-31``); a ``date`` passes through.

    Raises:
        InvalidTimestampError: the text is not an ISO date.
    """
    if isinstance(text, datetime):
        raise InvalidTimestampError(
            text, f"expected a calendar date, got the datetime {text!r}; pass text.date()"
        )
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text)
    except (ValueError, TypeError):
        raise InvalidTimestampError(
            text, f"cannot parse {text!r} as a calendar date; use YYYY-MM-DD"
        ) from None


def epoch_us(at: datetime) -> int:
    """Microseconds since the Unix epoch for an aware datetime (exact integer arithmetic)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(us: int) -> datetime:
    """Inverse of :func:`epoch_us` (seconds and microseconds split first: no big-int timedelta).

    Raises:
        InvalidTimestampError: the instant is outside the years 1 to 9999.
    """
    try:
        return _EPOCH + timedelta(0, us // 1_000_000, us % 1_000_000)
    except (OverflowError, ValueError):
        raise InvalidTimestampError(
            us,
            f"{us} microseconds since the Unix epoch is outside the instants UTC can represent "
            "(the years 1 to 9999); check the unit (seconds, milliseconds) and the value",
        ) from None
