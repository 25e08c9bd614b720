"""An event store in memory: for tests, examples, and as the model the other backends match.

Appended events are kept sealed (each a copy carrying its digest, see
:mod:`stagegate.integrity`), equal to the events appended.

Thread-safe: one lock guards every read and write. Nothing survives the process.

>>> from datetime import datetime, timezone
>>> from stagegate.events import Event, EventKind
>>> at = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> opened = Event("opp-1", 1, EventKind.OPENED, at, "ana", "lead", "b2b", "1")
>>> store = MemoryStore()
>>> store.append([opened])
>>> store.load("opp-1") == (opened,)
True
>>> store.append([opened])
Traceback (most recent call last):
...
stagegate.errors.ConcurrencyError: opportunity 'opp-1' has events up to seq 1, expected 0: \
another writer appended first; reload it and retry
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from stagegate.events import Event
from stagegate.integrity import _with_digest, chain_digest
from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    EventRow,
    EventStore,
    Progress,
    StoreClosedError,
    batch_size_of,
    canonical_batch,
    check_batch,
    conflicts,
    digest_refused,
)

__all__ = ["MemoryStore"]


class MemoryStore(EventStore):
    """Keep every opportunity's log in a dict of lists; safe to share between threads."""

    __slots__ = ("_closed", "_count", "_ids", "_lock", "_logs")

    def __init__(self) -> None:
        self._logs: dict[str, list[Event]] = {}
        self._ids: list[str] = []  # sorted, for ordered scans
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._processes: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._count} events"
        return f"<MemoryStore {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this MemoryStore")

    def append(
        self,
        events: Sequence[Event],
        *,
        expected_seq: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Append a batch all-or-nothing; see :meth:`EventStore.append`."""
        runs = check_batch(events, expected_seq=expected_seq)
        canonical = canonical_batch(events)  # outside the lock
        with self._lock:
            self._check_open()
            logs = self._logs
            error = conflicts(runs, ((oid, len(logs.get(oid, ()))) for oid in runs))
            if error is not None:
                raise error
            links = {oid: logs[oid][-1].digest for oid in runs if logs.get(oid)}
            sealed: list[Event] = []
            for event, content in zip(events, canonical, strict=True):
                digest = chain_digest(content, links.get(event.opportunity_id))
                if event.digest is None:
                    event = _with_digest(event, digest)  # noqa: PLW2901 - the sealed copy
                elif event.digest != digest:
                    raise digest_refused(event)
                links[event.opportunity_id] = digest
                sealed.append(event)
            for event in sealed:
                log = logs.get(event.opportunity_id)
                if log is None:
                    log = logs[event.opportunity_id] = []
                    bisect.insort(self._ids, event.opportunity_id)
                log.append(event)
            self._count += len(events)
        if progress is not None and events:
            progress(len(events))

    def load(self, opportunity_id: str) -> tuple[Event, ...]:
        """Return one opportunity's events; ``()`` if it has none."""
        with self._lock:
            self._check_open()
            return tuple(self._logs.get(opportunity_id, ()))

    def last_seq(self, opportunity_id: str) -> int:
        """Return the ``seq`` of the opportunity's last event; ``0`` if it has none."""
        with self._lock:
            self._check_open()
            return len(self._logs.get(opportunity_id, ()))

    def opportunity_ids(self) -> Iterator[str]:
        """Yield every opportunity id in sorted order (a snapshot)."""
        with self._lock:
            self._check_open()
            ids = tuple(self._ids)
        return iter(ids)

    def _snapshot(self) -> list[tuple[list[Event], int]]:
        with self._lock:
            self._check_open()
            return [(self._logs[oid], len(self._logs[oid])) for oid in self._ids]

    def scan(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Event]:
        """Yield every event ordered by ``(opportunity_id, seq)``; see :meth:`EventStore.scan`."""
        batch_size_of(batch_size)
        return self._scan(self._snapshot())

    @staticmethod
    def _scan(snapshot: list[tuple[list[Event], int]]) -> Iterator[Event]:
        for log, length in snapshot:
            yield from log[:length]

    def scan_rows(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[EventRow]:
        """Yield the analytics columns of every event; see :meth:`EventStore.scan_rows`."""
        batch_size_of(batch_size)
        return self._scan_rows(self._snapshot())

    @staticmethod
    def _scan_rows(snapshot: list[tuple[list[Event], int]]) -> Iterator[EventRow]:
        for log, length in snapshot:
            for e in log[:length]:
                yield EventRow(
                    e.opportunity_id,
                    e.at,
                    e.seq,
                    e.stage,
                    e.amount,
                    e.close_date,
                    e.kind.value,
                    e.from_stage,
                    None if e.move is None else e.move.value,
                )

    def count(self) -> int:
        """Return the number of stored events."""
        with self._lock:
            self._check_open()
            return self._count

    def _store_definition(self, name: str, version: str, definition: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._processes.setdefault((name, version), definition)

    def _definition(self, name: str, version: str) -> str | None:
        with self._lock:
            self._check_open()
            return self._processes.get((name, version))

    def processes(self) -> list[tuple[str, str]]:
        """The (name, version) of every stored process definition, sorted."""
        with self._lock:
            self._check_open()
            return sorted(self._processes)

    def close(self) -> None:
        """Drop every event; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            self._logs = {}
            self._ids = []
