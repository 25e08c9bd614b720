"""Decoding the records of a stagegate log into events, fast where a record is plain.

:func:`event_of` gives exactly :meth:`Event.from_dict <stagegate.events.Event.from_dict>`: a
record whose every field has the plain shape :meth:`~stagegate.events.Event.to_dict` writes
(ASCII text, an ISO instant with an offset, decimal text, an ISO date, 64 hex digits) is
checked here with a few type tests and built without the public constructor's conversions;
any other record, including every malformed one, goes through ``Event.from_dict``, which
decodes it or raises the error that names what is wrong.

>>> from stagegate.events import Event, EventKind
>>> from datetime import datetime, timezone
>>> event = Event("A-1", 1, EventKind.OPENED, datetime(2024, 1, 5, 9, tzinfo=timezone.utc),
...               "ana", "lead", "b2b", "1", amount=None)
>>> event_of(event.to_dict()) == event
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stagegate._time import UTC
from stagegate.events import Event, EventKind, MoveKind, freeze, recorded_event
from stagegate.gates import GateReport

__all__ = ["event_of"]

_KINDS = {kind.value: kind for kind in EventKind}
_MOVES = {move.value: move for move in MoveKind}
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")
_DAY = re.compile(r"\d{4}-\d\d-\d\d\Z")
_AMOUNT = re.compile(r"(?:0|[1-9]\d{0,39})(?:\.\d{1,40})?\Z")
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")


_str = str


def event_of(data: Mapping[str, Any]) -> Event:
    """The event a record of a log describes; ``Event.from_dict(data)``, faster.

    Raises:
        EventLogError: the record is malformed (the error of ``Event.from_dict``).
    """
    event = _fast(data) if type(data) is dict else None
    return Event.from_dict(data) if event is None else event


def _fast(data: dict[str, Any]) -> Event | None:
    """The event, when every field has its plain shape; ``None`` for anything else."""
    get = data.get
    oid, actor, stage = get("opportunity_id"), get("actor"), get("stage")
    process, version = get("process"), get("process_version")
    # non-empty ASCII text without control characters (what Event.from_dict passes), checked
    # for all five at once
    if not (
        type(oid) is _str
        and type(actor) is _str
        and type(stage) is _str
        and type(process) is _str
        and type(version) is _str
        and oid
        and actor
        and stage
        and process
        and version
    ):
        return None
    text = oid + actor + stage + process + version
    if not (text.isascii() and text.isprintable()):
        return None
    seq = get("seq")
    if type(seq) is not int or seq < 1:
        return None
    kind_text, move_text = get("kind"), get("move")
    if type(kind_text) is not str or (move_text is not None and type(move_text) is not str):
        return None
    kind = _KINDS.get(kind_text)
    move = None if move_text is None else _MOVES.get(move_text)
    if kind is None or (move_text is not None and move is None):
        return None
    at_text = get("at")
    if type(at_text) is not str or not _INSTANT.match(at_text):
        return None
    try:
        at = datetime.fromisoformat(at_text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    from_stage, reason, subject = get("from_stage"), get("reason"), get("subject")
    optional = [t for t in (from_stage, reason, subject) if t is not None]
    if optional:
        if any(type(t) is not _str for t in optional):
            return None
        text = "".join(optional)
        if not (text.isascii() and text.isprintable()):
            return None
    amount_text, day_text = get("amount"), get("close_date")
    amount: Decimal | None = None
    if amount_text is not None:
        if type(amount_text) is not str or not _AMOUNT.match(amount_text):
            return None
        amount = Decimal(amount_text)
    close_date: date | None = None
    if day_text is not None:
        if type(day_text) is not str or not _DAY.match(day_text):
            return None
        try:
            close_date = date.fromisoformat(day_text)
        except ValueError:
            return None
    digest = get("digest")
    if digest is not None and (type(digest) is not str or not _DIGEST.match(digest)):
        return None
    gate_data, details_data = get("gate"), get("details")
    if (gate_data is not None and type(gate_data) is not dict) or (
        details_data is not None and type(details_data) is not dict
    ):
        return None
    try:  # malformed nested values: let Event.from_dict say what is wrong
        gate = None if gate_data is None else GateReport.from_dict(gate_data)
        details = None if details_data is None else freeze(details_data)
    except Exception:  # noqa: BLE001
        return None
    return recorded_event(
        oid,
        seq,
        kind,
        at,
        actor,
        stage,
        process,
        version,
        from_stage,
        move,
        reason,
        gate,
        amount,
        close_date,
        subject,
        details,
        digest,
    )
