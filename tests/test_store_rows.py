"""The column-wise batch encoder: the same rows, contents and digests as event by event.

``encode_batch`` (store/_rows.py) is what every batched append of the SQLite and PostgreSQL
stores runs; ``_sealable`` (store/sqlite.py) encodes one event at a time and is held to
:func:`~stagegate.integrity.canonical_bytes` by the digest tests. These properties hold the
fast path to both, and check that what it cannot encode falls back to the per-event encoder
(with its errors) rather than being stored differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate.errors import EventLogError
from stagegate.events import Event, EventKind, FrozenMapping, MoveKind
from stagegate.integrity import canonical_bytes, chain_digest, chain_digests, event_digest
from stagegate.store import SQLiteStore
from stagegate.store._columnar import encode_chunk, encode_columns
from stagegate.store._rows import encode_batch, rows_of, seal
from stagegate.store.sqlite import _seal_rows, _sealable, _sealables_of
from strategies import events

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def one_by_one(batch: Sequence[Event], links: dict[str, str | None]) -> list[tuple[Any, ...]]:
    """The sealed rows of a batch, each event encoded and chained on its own."""
    rows = []
    for event in batch:
        row, content = _sealable(event)
        assert content == canonical_bytes(event)
        digest = event_digest(event, links.get(event.opportunity_id))
        links[event.opportunity_id] = digest
        rows.append((*row, digest))
    return rows


def renumbered(drawn: list[Event], owners: list[int]) -> list[Event]:
    """The drawn events spread over a few opportunities, each run numbered 1, 2, 3, ..."""
    seqs: dict[str, int] = {}
    batch = []
    for event, owner in zip(drawn, owners, strict=True):
        oid = f"{event.opportunity_id}#{owner}"
        seqs[oid] = seqs.get(oid, 0) + 1
        batch.append(attrs.evolve(event, opportunity_id=oid, seq=seqs[oid]))
    return batch


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(events(), min_size=1, max_size=12).flatmap(
        lambda drawn: st.tuples(
            st.just(drawn), st.lists(st.integers(0, 2), min_size=len(drawn), max_size=len(drawn))
        )
    )
)
def test_a_batch_encodes_column_wise_exactly_as_event_by_event(
    drawn: tuple[list[Event], list[int]],
) -> None:
    batch = renumbered(*drawn)
    encoded = encode_batch(batch)
    assert encoded is not None  # well-typed events take the fast path
    assert encoded.contents == [canonical_bytes(e) for e in batch]
    rows = rows_of(encoded, seal(batch, encoded, {}))
    expected = one_by_one(batch, {})
    assert rows == expected
    assert [type(v) for row in rows for v in row] == [
        str if isinstance(v, str) else type(v) for row in expected for v in row
    ]  # enums are bound as their text, and nothing else changes type
    assert encode_columns(encoded.columns) == encode_chunk(expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(events(), min_size=1, max_size=6), st.data())
def test_a_batch_chains_from_the_stored_links(drawn: list[Event], data: st.DataObject) -> None:
    oid = "deal#0"
    batch = renumbered([attrs.evolve(e, opportunity_id="deal") for e in drawn], [0] * len(drawn))
    link = data.draw(st.one_of(st.none(), st.just("f" * 64), st.text(max_size=70)))
    links: dict[str, str | None] = {oid: link}
    encoded = encode_batch(batch)
    assert encoded is not None
    digests = seal(batch, encoded, dict(links))
    previous = link
    for event, digest in zip(batch, digests, strict=True):
        assert digest == chain_digest(canonical_bytes(event), previous)
        previous = digest
    chained = dict(links)
    assert chain_digests([oid] * len(batch), encoded.contents, chained) == digests
    assert chained == {oid: digests[-1]}


def test_carried_digests_are_checked_and_the_unsealed_keep_theirs() -> None:
    opened = Event("a", 1, EventKind.OPENED, T0, "ana", "lead", "b2b", "1")
    other = Event("b", 4, EventKind.ACTIVITY_LOGGED, T0, "ana", "lead", "b2b", "1", subject="call")
    right = event_digest(opened, None)
    sealed = attrs.evolve(opened, digest=right)
    batch = [sealed, attrs.evolve(other, digest="0" * 64)]
    encoded = _sealables_of(batch)
    assert seal(batch, encoded, {}, frozenset({"b"})) == [right, "0" * 64]
    wrong = [attrs.evolve(opened, digest="1" * 64)]
    with pytest.raises(EventLogError, match="digest_mismatch"):
        _seal_rows(wrong, _sealables_of(wrong), {})


def odd(event: Event, **changes: Any) -> Event:
    """The event with fields set past its converters (values no stagegate code makes)."""
    changed = attrs.evolve(event)
    for name, value in changes.items():
        object.__setattr__(changed, name, value)
    return changed


class Timestamp(datetime):
    """A datetime subclass that formats itself its own way (as pandas' Timestamp does)."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "elsewhere"


BASE = Event(
    "acme-1",
    1,
    EventKind.STAGE_CHANGED,
    T0,
    "ana",
    "qualification",
    "b2b",
    "1",
    from_stage="lead",
    move=MoveKind.ADVANCE,
    amount=Decimal("1.50"),
    details=FrozenMapping({"b": (1, 2.5, None), "a": 'é\n"x"'}),
)


@pytest.mark.parametrize(
    "event",
    [
        odd(BASE, kind="stage_changed"),  # text, not the enum
        odd(BASE, move="advance"),
        odd(BASE, at=Timestamp(2026, 1, 5, 9, tzinfo=timezone.utc)),
        odd(BASE, details=MappingProxyType({"z": [1], "a": None})),  # a Mapping, not a dict
        odd(BASE, close_date=datetime(2026, 3, 1, 12, tzinfo=timezone.utc)),
        odd(BASE, amount=7),
    ],
    ids=["text kind", "text move", "datetime subclass", "proxy details", "datetime date", "int"],
)
def test_odd_values_are_encoded_as_event_by_event(event: Event) -> None:
    """The fast path either encodes them as the per-event encoder does, or leaves them to it."""
    try:
        expected_content = [_sealable(event)[1]]
    except AttributeError:  # the per-event encoder refuses it: so must the batch
        with pytest.raises(EventLogError):
            _sealables_of([event])
        return
    expected = one_by_one([event], {})
    encoded = _sealables_of([event])
    assert encoded.contents == expected_content
    assert _seal_rows([event], encoded, {}) == expected


def cyclic() -> dict[str, Any]:
    """Details that hold themselves (no stagegate code makes them: ``freeze`` refuses them)."""
    details: dict[str, Any] = {"a": 1}
    details["self"] = [details]
    return details


@pytest.mark.parametrize(
    "changes",
    [
        {"actor": "lone \ud800 surrogate"},
        {"details": FrozenMapping({"x": object()})},
        {"kind": "opened"},
        {"close_date": "2026-01-01"},
        {"details": cyclic()},
    ],
    ids=["surrogate", "object in details", "text kind", "text date", "cyclic details"],
)
def test_what_cannot_be_stored_is_refused_and_nothing_is_written(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    good = Event("good-1", 1, EventKind.OPENED, T0, "ana", "lead", "b2b", "1")
    bad = odd(
        Event("bad-1", 1, EventKind.OPENED, T0 + timedelta(hours=1), "ana", "lead", "b2b", "1"),
        **changes,
    )
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(EventLogError, match=r"bad-1|cannot store the batch"):
            store.append([good, bad])
        assert store.count() == 0
        store.append([good])
        assert [e.seq for e in store.load("good-1")] == [1]
