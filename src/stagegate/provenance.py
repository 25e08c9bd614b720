"""Where a piece of evidence came from: the other system, its event id, and two instants.

Marketing automation, e-mail, calendars and e-signature tools record activities, deliverables
and lead scores for the reps. Each such event carries a :class:`Provenance`: the source
``system`` (``"hubspot"``), the ``source_id`` the system gave the event, when it ``occurred_at``
and when stagegate ``recorded_at`` it. The two instants are kept apart: stage timing (a gate's
"since stage entry", a deliverable's maximum age, activity recency) uses ``occurred_at``; audit
uses ``recorded_at``.

Provenance lives in the event's ``details`` under :data:`PROVENANCE_KEY`, so it is stored,
sealed and exported with the event like any other detail:

>>> from datetime import datetime, timezone
>>> source = Provenance(
...     "hubspot", "9137", occurred_at=datetime(2026, 3, 2, 14, tzinfo=timezone.utc),
...     recorded_at=datetime(2026, 3, 3, 8, tzinfo=timezone.utc),
... )
>>> source.to_dict()["occurred_at"]
'2026-03-02T14:00:00+00:00'
>>> Provenance.from_dict(source.to_dict()) == source
True
>>> source.key
('hubspot', '9137')
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from stagegate import _arguments as arguments
from stagegate._time import parse_instant, to_utc
from stagegate.errors import InvalidCommandError, StagegateError, cut

if TYPE_CHECKING:
    from stagegate.events import Event

__all__ = ["PROVENANCE_KEY", "Provenance", "occurred_at", "provenance_of"]

PROVENANCE_KEY = "provenance"
"""The key of ``Event.details`` that holds the provenance of evidence from another system."""
MAX_SYSTEM = 100
"""Longest source system name accepted (characters)."""
MAX_SOURCE_ID = 500
"""Longest source event id accepted (characters)."""
_FIELDS = ("system", "source_id", "occurred_at", "recorded_at")


def _system(value: Any) -> str:
    name = arguments.name(value, "source system")
    if len(name) > MAX_SYSTEM:
        raise InvalidCommandError(
            f"source system {cut(repr(name))} is longer than {MAX_SYSTEM} characters; name the "
            "system briefly (e.g. 'hubspot')"
        )
    return name


def _source_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommandError(
            f"source_id must be the id the other system gave the event (text), got "
            f"{cut(repr(value))}"
        )
    if len(value) > MAX_SOURCE_ID or arguments.text_problem(value, single_line=True):
        raise InvalidCommandError(
            f"source_id {cut(repr(value))} is not one line of at most {MAX_SOURCE_ID} "
            "characters; pass the other system's event id"
        )
    return value


@attrs.frozen(slots=True)
class Provenance:
    """The origin of a piece of evidence recorded from another system.

    Attributes:
        system: the source system, e.g. ``"hubspot"``, ``"marketo"``, ``"calendar"``.
        source_id: the id the source system gave the event; ``(system, source_id)`` is
            recorded at most once per deal.
        occurred_at: when it happened (aware, UTC): what stage timing uses.
        recorded_at: when stagegate recorded it (aware, UTC): what audit uses; never before
            ``occurred_at``.

    Raises:
        InvalidCommandError: an empty system or id, or ``recorded_at`` before ``occurred_at``.
        InvalidTimestampError: a naive instant.
    """

    system: str = attrs.field(converter=_system)
    source_id: str = attrs.field(converter=_source_id)
    occurred_at: datetime = attrs.field(kw_only=True, converter=to_utc)
    recorded_at: datetime = attrs.field(kw_only=True, converter=to_utc)

    def __attrs_post_init__(self) -> None:
        if self.recorded_at < self.occurred_at:
            raise InvalidCommandError(
                f"{self.system} event {self.source_id!r} is recorded at "
                f"{self.recorded_at.isoformat()}, before it occurred at "
                f"{self.occurred_at.isoformat()}; an event is recorded after it happens: check "
                "the source's time zone"
            )

    @property
    def key(self) -> tuple[str, str]:
        """``(system, source_id)``: what makes a delivery of the same event a duplicate."""
        return (self.system, self.source_id)

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-able dict (instants as ISO 8601 text with offset)."""
        return {
            "system": self.system,
            "source_id": self.source_id,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        """Rebuild provenance from :meth:`to_dict` output.

        Raises:
            InvalidCommandError: not an object with exactly the four fields, or a bad value.
        """
        if not isinstance(data, Mapping) or set(data) != set(_FIELDS):
            raise InvalidCommandError(
                f"provenance must be an object with exactly {', '.join(_FIELDS)}; got "
                f"{cut(repr(data))}"
            )
        for key in ("occurred_at", "recorded_at"):
            if not isinstance(data[key], str):
                raise InvalidCommandError(
                    f"provenance {key} must be ISO 8601 text, got {cut(repr(data[key]))}"
                )
        try:
            return cls(
                data["system"],
                data["source_id"],
                occurred_at=parse_instant(data["occurred_at"]),
                recorded_at=parse_instant(data["recorded_at"]),
            )
        except InvalidCommandError:
            raise
        except StagegateError as exc:
            raise InvalidCommandError(f"provenance is malformed: {exc}") from None


def provenance_of(event: Event) -> Provenance | None:
    """The provenance an event carries, or ``None`` for evidence entered by hand.

    Raises:
        InvalidCommandError: the event's details hold malformed provenance.
    """
    details = event.details
    if details is None or PROVENANCE_KEY not in details:
        return None
    return Provenance.from_dict(details[PROVENANCE_KEY])


def occurred_at(event: Event) -> datetime:
    """When the evidence an event records happened: its provenance's ``occurred_at``, else ``at``.

    An event from another system that arrived after later events were recorded takes its place
    in the log at the instant it was recorded there; this is its real instant.
    """
    details = event.details
    if not details or PROVENANCE_KEY not in details or not isinstance(details, Mapping):
        return event.at  # the common case first: gates ask on every evaluation
    source = details[PROVENANCE_KEY]
    text = source.get("occurred_at") if isinstance(source, Mapping) else None
    if isinstance(text, str):
        try:
            return parse_instant(text)
        except StagegateError:
            return event.at
    return event.at
