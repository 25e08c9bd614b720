"""Events and analytics rows rebuilt from their stored columns, for both stores.

The inverse of :mod:`stagegate.store._rows`: SQLite and PostgreSQL hand back the same columns
(:data:`~stagegate.store._rows.CONTENT`, then the digest), and :func:`stored_event` turns one
such row into an :class:`~stagegate.events.Event`, :func:`stored_row` the analytics columns of
a scan into an :class:`~stagegate.store.EventRow`. A row that cannot be read (a file changed
outside stagegate) raises :class:`~stagegate.errors.EventLogError` naming the event.

>>> event = stored_event(
...     ("opp-1", 1, "opened", 1767571200000000, "lead", None, None, "12.50", None, "ana",
...      None, "b2b", "1", None, '{"source":"web"}', None, None)
... )
>>> event.kind, event.at.isoformat(), event.amount, dict(event.details)
(<EventKind.OPENED: 'opened'>, '2026-01-05T00:00:00+00:00', Decimal('12.50'), {'source': 'web'})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from stagegate._time import from_epoch_us
from stagegate.errors import EventLogError, StagegateError
from stagegate.events import Event, EventKind, FrozenMapping, MoveKind, freeze
from stagegate.gates import GateReport
from stagegate.store.base import EventRow, ImportRecord, StoreDamagedError

__all__ = ["decode_json", "encode_json", "import_record", "stored_event", "stored_row"]

encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Compact JSON text, keys in their given order (an import record's findings)."""
decode_json = json.JSONDecoder().decode
"""The value of stored JSON text (a gate report, an import record's findings)."""
_decode_flat = json.JSONDecoder(object_hook=FrozenMapping).decode

_new_row = tuple.__new__  # skips EventRow.__new__'s argument binding: 9 columns x millions
_KINDS = {kind.value: kind for kind in EventKind}
_MOVES = {move.value: move for move in MoveKind}


def _details(text: str) -> Mapping[str, Any]:
    """Decode details JSON into the read-only values :func:`~stagegate.events.freeze` makes."""
    if "[" not in text:  # no lists (the common case): objects become FrozenMappings directly
        return _decode_flat(text)  # type: ignore[no-any-return]
    return freeze(decode_json(text))  # type: ignore[no-any-return]


def stored_event(row: tuple[Any, ...]) -> Event:
    """Rebuild an event from its column values.

    Raises:
        EventLogError: a value is not one stagegate writes (the store was changed outside it).
    """
    (oid, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, reason) = row[:11]
    process, process_version, subject, details, gate, digest = row[11:]
    try:
        _check_key(oid, seq)
        return Event(
            oid,
            seq,
            _KINDS[kind],
            from_epoch_us(at_us),
            actor,
            stage,
            process,
            process_version,
            from_stage,
            None if move is None else _MOVES[move],
            reason,
            None if gate is None else GateReport.from_dict(decode_json(gate)),
            None if amount is None else Decimal(amount),
            None if close_date is None else date.fromisoformat(close_date),
            subject,
            None if details is None else _details(details),
            digest=digest,
        )
    except (KeyError, ValueError, TypeError, ArithmeticError, StagegateError) as exc:
        raise EventLogError(
            f"stored event {seq!r} of opportunity {oid!r} is malformed ({exc!r}); the file was "
            "changed outside stagegate: restore it from a backup",
            seq=seq if isinstance(seq, int) else None,
            opportunity_id=oid if isinstance(oid, str) else None,
        ) from None


def _check_key(oid: Any, seq: Any) -> None:
    """Refuse a stored key of another type than stagegate writes (text id, integer seq)."""
    if not isinstance(oid, str) or type(seq) is not int:
        raise TypeError(f"its key ({oid!r}, {seq!r}) is not an id text and an integer seq")


def stored_row(row: tuple[Any, ...]) -> EventRow:
    """Rebuild the analytics columns of one event, in the order a row scan selects them.

    Raises:
        EventLogError: a value is not one stagegate writes (the store was changed outside it).
    """
    oid, at_us, seq, stage, amount, close_date, kind, from_stage, move = row
    try:
        return _new_row(
            EventRow,
            (
                oid,
                from_epoch_us(at_us),
                seq,
                stage,
                None if amount is None else Decimal(amount),
                None if close_date is None else date.fromisoformat(close_date),
                kind,
                from_stage,
                move,
            ),
        )
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise EventLogError(
            f"stored event {seq!r} of opportunity {oid!r} is malformed ({exc!r}); the file was "
            "changed outside stagegate: restore it from a backup"
        ) from None


def import_record(row: tuple[Any, ...]) -> ImportRecord:
    """The import record of one row of ``imports`` (its columns in the order both stores select)."""
    number, at_us, source, input_name, rows_read, rows_used, opportunities, events, found = row
    try:
        return ImportRecord(
            id=int(number),
            at=from_epoch_us(int(at_us)),
            source=str(source),
            input_name=str(input_name),
            rows_read=int(rows_read),
            rows_used=int(rows_used),
            opportunities=int(opportunities),
            events=int(events),
            findings=_findings(decode_json(found)),
        )
    except (ValueError, TypeError, ArithmeticError, StagegateError) as exc:
        raise StoreDamagedError(
            f"import record {number!r} of the event store is malformed ({exc!r}); the file was "
            "changed outside stagegate: restore it from a backup"
        ) from None


def _findings(found: Any) -> tuple[Mapping[str, Any], ...]:
    """An import record's findings: a list of objects, each frozen."""
    if not isinstance(found, list) or not all(isinstance(f, dict) for f in found):
        raise TypeError(f"its findings are {type(found).__name__}, not a list of objects")
    return tuple(freeze(f) for f in found)
