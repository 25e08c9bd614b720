"""The rows a batch of events is written as, encoded column by column for both stores.

SQLite and PostgreSQL store the same columns (:data:`CONTENT`, then the digest). A batch is
encoded once, before the write lock is taken: :func:`encode_batch` turns each field of every
event into its column (text, integers, sorted JSON) with one C-level pass per column where it
can, and builds from the same encoded values each event's canonical content, byte for byte
:func:`~stagegate.integrity.canonical_bytes`. Inside the transaction :func:`seal` chains the
digests onto each opportunity's stored log and :func:`rows_of` zips the columns into rows.

:func:`encode_batch` handles the common shapes of values (enum kinds and moves, datetimes,
decimals, dates, frozen details, gate reports); for anything else it returns ``None`` and
:func:`sealables_of`, which the stores call, encodes the batch event by event
(:func:`sealable`), which also names the event that cannot be stored.

>>> from datetime import datetime, timezone
>>> from stagegate.events import Event, EventKind
>>> from stagegate.integrity import canonical_bytes
>>> e = Event("opp-1", 1, EventKind.OPENED, datetime(2026, 1, 5, tzinfo=timezone.utc), "ana",
...           "lead", "b2b", "1")
>>> batch = encode_batch([e])
>>> batch.contents == [canonical_bytes(e)]
True
>>> rows_of(batch, seal([e], batch, {}))[0][:4]
('opp-1', 1, 'opened', 1767571200000000)
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from itertools import repeat
from typing import Any

from stagegate._time import epoch_us
from stagegate.errors import EventLogError
from stagegate.events import Event, EventKind, MoveKind, thaw
from stagegate.gates import GateReport
from stagegate.integrity import chain_digests
from stagegate.store.base import digest_refused

__all__ = [
    "CONTENT",
    "EncodedBatch",
    "details_json",
    "encode_batch",
    "gate_json",
    "rows_of",
    "seal",
    "seal_rows",
    "sealable",
    "sealables_of",
]

CONTENT = (
    "opportunity_id",
    "seq",
    "kind",
    "at_us",
    "stage",
    "from_stage",
    "move",
    "amount",
    "close_date",
    "actor",
    "reason",
    "process",
    "process_version",
    "subject",
    "details",
    "gate",
)
"""The stored columns of an event, in table order (the ``digest`` column follows them)."""

_quote = json.encoder.encode_basestring
_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_encode_sorted = _SORTED.encode


def _direct_encoder() -> Any:
    """The C encoder ``_encode_sorted`` builds on every call, built once (``None``: not here).

    Made without circular-reference markers (frozen details cannot hold themselves): a value
    that recurses anyway is encoded again by ``_encode_sorted``, which names the cycle.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython ships the C accelerator
        return None
    try:
        encoder = make(None, _SORTED.default, _quote, None, ":", ",", True, False, True)
        sample = {"b": [1, 2.5, None, True], "a": {"é": "x\n"}}
        if "".join(encoder(sample, 0)) != _encode_sorted(sample):  # pragma: no cover
            return None
    except TypeError:  # pragma: no cover - another signature in another Python
        return None
    return encoder


_DIRECT = _direct_encoder()
_join = "".join


def details_json(details: Mapping[str, Any]) -> str:
    """Details as compact JSON with sorted keys (tuples become lists), as they are stored."""
    if isinstance(details, dict):  # FrozenMapping: JSON-ready as it is
        if _DIRECT is not None:
            try:
                return _join(_DIRECT(details, 0))
            except RecursionError:  # a value holding itself: the checked encoder says so
                pass
        return _encode_sorted(details)
    return _encode_sorted(thaw(details))


_GATE_TEXTS: dict[GateReport, str] = {}
_GATE_TEXTS_KEPT = 4096


def gate_json(gate: GateReport) -> str:
    """A gate report as sorted JSON text, remembered: the same reports recur across deals.

    Reports are tuples of text, booleans and integers (``GateReport.from_dict`` and the gates
    make no others), so equal reports have equal text.
    """
    text = _GATE_TEXTS.get(gate)
    if text is None:
        text = _encode_sorted(gate.to_dict())
        if len(_GATE_TEXTS) >= _GATE_TEXTS_KEPT:
            _GATE_TEXTS.clear()
        _GATE_TEXTS[gate] = text
    return text


class EncodedBatch:
    """A batch encoded for writing.

    ``columns`` in :data:`CONTENT` order, each event's canonical ``contents``, and the
    ``digests`` the events carry (``None`` for an event not sealed yet).
    """

    __slots__ = ("columns", "contents", "digests")

    def __init__(
        self,
        columns: list[Sequence[Any]],
        contents: list[bytes],
        digests: Sequence[str | None],
    ) -> None:
        self.columns = columns
        self.contents = contents
        self.digests = digests

    @classmethod
    def of_rows(
        cls, rows: Sequence[Sequence[Any]], contents: list[bytes], digests: Sequence[str | None]
    ) -> EncodedBatch:
        """The batch of rows encoded one event at a time."""
        columns: list[Sequence[Any]] = [list(c) for c in zip(*rows, strict=True)] if rows else []
        return cls(columns or [[] for _ in CONTENT], contents, digests)

    def __len__(self) -> int:
        return len(self.contents)


_FIELDS = (
    "opportunity_id",
    "seq",
    "kind",
    "at",
    "actor",
    "stage",
    "process",
    "process_version",
    "from_stage",
    "move",
    "reason",
    "gate",
    "amount",
    "close_date",
    "subject",
    "details",
    "digest",
)
_GETTERS = tuple(map(operator.attrgetter, _FIELDS))
"""One getter per field: a column read with ``map`` is a list of the values themselves, no
row tuples to build and transpose (which made a 150,000-event batch spend a third of its
encoding time allocating, and the collector scanning, tuples)."""
_VALUE = operator.attrgetter("_value_")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_NONE = type(None)
_KIND_TYPES = frozenset({EventKind})
_MOVE_TYPES = frozenset({MoveKind, _NONE})
_AT_TYPES = frozenset({datetime})
# Each event's canonical content: its to_dict() without the digest, keys sorted, compact JSON.
_CANONICAL = (
    '{"actor":%s,"amount":%s,"at":"%s","close_date":%s,"details":%s,"from_stage":%s,'
    '"gate":%s,"kind":%s,"move":%s,"opportunity_id":%s,"process":%s,"process_version":%s,'
    '"reason":%s,"seq":%s,"stage":%s,"subject":%s}'
)


def _json(values: Sequence[Any]) -> list[str]:
    """Each text value as a JSON string, ``None`` as ``null``."""
    q = _quote
    return ["null" if v is None else q(v) for v in values]


def encode_batch(events: Sequence[Event]) -> EncodedBatch | None:
    """Encode a batch column by column; ``None`` when a value needs the per-event encoder.

    The columns and contents are exactly what encoding each event on its own gives (the tests
    hold them to that): the same conversions, applied to whole columns.
    """
    if not events:
        return None
    try:
        return _encoded(events)
    except Exception:  # noqa: BLE001 - any odd value: the per-event encoder decides
        return None


def _encoded(events: Sequence[Event]) -> EncodedBatch | None:
    (oids, seqs, kinds, ats, actors, stages, processes, versions, from_stages, moves) = (
        fields := [list(map(get, events)) for get in _GETTERS]
    )[:10]
    reasons, gates, amounts, close_dates, subjects, details, digests = fields[10:]
    if (
        not set(map(type, kinds)) <= _KIND_TYPES
        or not set(map(type, moves)) <= _MOVE_TYPES
        or not set(map(type, ats)) <= _AT_TYPES
    ):
        return None  # subclasses may format or bind differently: encode them one by one
    kind_values = list(map(_VALUE, kinds))
    move_values = [None if m is None else m._value_ for m in moves]
    at_us = list(
        map(operator.floordiv, map(operator.sub, ats, repeat(_EPOCH)), repeat(_MICROSECOND))
    )
    amount_texts = [None if a is None else str(a) for a in amounts]
    date_texts = [None if d is None else d.isoformat() for d in close_dates]
    details_texts = [None if d is None else details_json(d) for d in details]
    gate_texts = [None if g is None else gate_json(g) for g in gates]
    q = _quote
    texts = map(
        _CANONICAL.__mod__,
        zip(
            map(q, actors),
            _json(amount_texts),
            map(datetime.isoformat, ats),
            _json(date_texts),
            ["null" if d is None else d for d in details_texts],
            _json(from_stages),
            ["null" if g is None else g for g in gate_texts],
            map(q, kind_values),
            _json(move_values),
            map(q, oids),
            map(q, processes),
            map(q, versions),
            _json(reasons),
            map(int.__repr__, seqs),
            map(q, stages),
            _json(subjects),
            strict=True,
        ),
    )
    contents = list(map(str.encode, texts))
    columns: list[Sequence[Any]] = [
        oids,
        seqs,
        kind_values,
        at_us,
        stages,
        from_stages,
        move_values,
        amount_texts,
        date_texts,
        actors,
        reasons,
        processes,
        versions,
        subjects,
        details_texts,
        gate_texts,
    ]
    return EncodedBatch(columns, contents, digests)


def seal(
    events: Sequence[Event],
    batch: EncodedBatch,
    links: dict[str, str | None],
    unsealed: frozenset[str] = frozenset(),
) -> list[str | None]:
    """Each event's digest, chained from ``links`` (each opportunity's last stored digest).

    ``links`` is updated to the batch's last digests. The events of ``unsealed`` opportunities
    keep the digest they carry (sealed later).

    Raises:
        EventLogError: an event already carries a digest that is not its place in the chain.
    """
    oids = batch.columns[0]
    if unsealed:
        digests: list[str | None] = list(batch.digests)
        chained = [i for i, oid in enumerate(oids) if oid not in unsealed]
        found = chain_digests(
            [oids[i] for i in chained], [batch.contents[i] for i in chained], links
        )
        for i, digest in zip(chained, found, strict=True):
            digests[i] = digest
        checked = [(i, batch.digests[i]) for i in chained]
    else:
        digests = list(chain_digests(oids, batch.contents, links))
        if batch.digests.count(None) == len(batch.digests):  # none carried: nothing to check
            return digests
        checked = list(enumerate(batch.digests))
    for i, carried in checked:
        if carried is not None and carried != digests[i]:
            raise digest_refused(events[i])
    return digests


def rows_of(batch: EncodedBatch, digests: Sequence[str | None]) -> list[tuple[Any, ...]]:
    """The rows to insert: the batch's columns and the digests, in table order."""
    return list(zip(*batch.columns, digests, strict=True))


def sealable(e: Event) -> tuple[tuple[Any, ...], bytes]:
    """The column values of one event (no digest) and the canonical content its digest covers.

    The content is byte for byte :func:`~stagegate.integrity.canonical_bytes` (the tests hold
    it to that), built from the same encoded values as the row instead of a second encoding.
    """
    details, gate, amount, close_date, move = e.details, e.gate, e.amount, e.close_date, e.move
    amount_text = None if amount is None else str(amount)
    date_text = None if close_date is None else close_date.isoformat()
    details_text = None if details is None else details_json(details)
    gate_text = None if gate is None else gate_json(gate)
    row = (
        e.opportunity_id,
        e.seq,
        e.kind,  # a str enum: SQLite stores its text value; no .value lookup per row
        epoch_us(e.at),
        e.stage,
        e.from_stage,
        move,
        amount_text,
        date_text,
        e.actor,
        e.reason,
        e.process,
        e.process_version,
        e.subject,
        details_text,
        gate_text,
    )
    q = _quote
    content = (
        f'{{"actor":{q(e.actor)},"amount":{"null" if amount_text is None else q(amount_text)},'
        f'"at":{q(e.at.isoformat())},"close_date":{"null" if date_text is None else q(date_text)},'
        f'"details":{"null" if details_text is None else details_text},'
        f'"from_stage":{"null" if e.from_stage is None else q(e.from_stage)},'
        f'"gate":{"null" if gate_text is None else gate_text},"kind":{q(e.kind._value_)},'
        f'"move":{"null" if move is None else q(move._value_)},'
        f'"opportunity_id":{q(e.opportunity_id)},"process":{q(e.process)},'
        f'"process_version":{q(e.process_version)},'
        f'"reason":{"null" if e.reason is None else q(e.reason)},"seq":{int.__repr__(e.seq)},'
        f'"stage":{q(e.stage)},"subject":{"null" if e.subject is None else q(e.subject)}}}'
    )
    return row, content.encode("utf-8")


def sealables_of(events: Sequence[Event]) -> EncodedBatch:
    """Encode a batch and the canonical content of each event, or say which cannot be stored.

    Column by column (:func:`encode_batch`) when it can, else event by event
    (:func:`sealable`, which also names the event that cannot be stored).

    Raises:
        EventLogError: an event holds a value that cannot be stored.
    """
    batch = encode_batch(events)
    if batch is not None:
        return batch
    try:
        pairs = [sealable(event) for event in events]
    except UnicodeEncodeError as exc:
        raise EventLogError(f"cannot store the batch: {exc}; events hold text and ints") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise _unstorable(events, exc) from None
    return EncodedBatch.of_rows(
        [row for row, _ in pairs], [content for _, content in pairs], [e.digest for e in events]
    )


def _unstorable(events: Sequence[Event], exc: Exception) -> EventLogError:
    bad = next(e for e in events if not _encodes(e))
    return EventLogError(
        f"event {bad.seq} of opportunity {bad.opportunity_id!r} cannot be stored ({exc}); "
        "details must be JSON values (use stagegate.events.freeze), amount a Decimal, "
        "close_date a date"
    )


def _encodes(event: Event) -> bool:
    try:
        sealable(event)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def seal_rows(
    events: Sequence[Event],
    batch: EncodedBatch,
    links: dict[str, str | None],
    unsealed: frozenset[str] = frozenset(),
) -> list[tuple[Any, ...]]:
    """The rows with their digests, chained from ``links`` (each opportunity's last digest).

    The events of ``unsealed`` opportunities keep the digest they carry (sealed later).

    Raises:
        EventLogError: an event already carries a digest that is not its place in the chain.
    """
    return rows_of(batch, seal(events, batch, links, unsealed))
