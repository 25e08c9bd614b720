"""The fast path of ``stagegate import`` for plain event logs: checked column-wise, sealed in bulk.

:func:`bulk_import` imports a log that :func:`~stagegate.io.write_events` (or ``stagegate
simulate``) wrote, as CSV, JSON Lines or Parquet, into a new store (or one it replaces): the
file is read in bounded Arrow batches and checked column-wise (see ``stagegate.io._arrow``);
each event's stored row and digest are built from the columns, without an
:class:`~stagegate.events.Event`, and written in one transaction into a staging store beside
the target, which is then linked or swapped into place like :func:`~stagegate.store.stream_import`
does. The rows, digests and projection are byte for byte those of the ordinary path
(:func:`~stagegate.store.write_import` for CSV and Parquet, ``stream_import`` for JSON Lines).

Whenever the file is not plain, breaks any rule, or the target is a store that already exists,
it returns ``None`` having written nothing: the caller imports the ordinary way, row by row, so
that every finding, row number and message is the ordinary path's.

>>> import os, tempfile
>>> from stagegate import demo
>>> from stagegate.io import write_events
>>> folder = tempfile.mkdtemp()
>>> log = os.path.join(folder, "log.csv")
>>> _ = write_events(log, [e for deal in demo.drive_sample_deals() for e in deal.events])
>>> bulk_import(os.path.join(folder, "s.sqlite"), log, process=demo.b2b()) is None  # gates
True
>>> from stagegate.simulate import simulate
>>> sim = simulate(50, seed=1, process=demo.b2b())
>>> _ = write_events(log, [e for e in sim.events if e.at <= sim.as_of])
>>> outcome = bulk_import(os.path.join(folder, "s.sqlite"), log, process=demo.b2b())
>>> outcome.record.opportunities
50
"""

# ruff: noqa: PTH110, PTH118, PTH119, PTH120, PTH100, PTH108
# str paths: a store is one file plus its "-wal" and "-shm" companions

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Generator, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from stagegate._ahead import ahead
from stagegate._progress import Phases, phase_of
from stagegate.integrity import DIGEST_SCHEME
from stagegate.io._arrow import NotPlainError, PlainBatch, format_of, plain_batches
from stagegate.store._ingest import ingest_available, write_sealed_columns, write_sealed_rows
from stagegate.store._load import (
    CHECKPOINT_FROM,
    REPLACE_TAG,
    ImportOutcome,
    ImportRefusedError,
    _check_replaceable,
    _remove_stale,
    _settle,
    _swap,
)
from stagegate.store._stream import STREAM_BATCH, _link
from stagegate.store.base import ImportRecord, StoreError
from stagegate.store.postgresql import is_postgresql_url
from stagegate.store.sqlite import PROJECTION_CHUNK, SQLiteStore
from stagegate.store.sqlite import store_path as checked_path

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = ["bulk_import"]

_PREFIX = DIGEST_SCHEME.encode("ascii") + b"\n"
_GENESIS = _PREFIX + b"-\n"
_SIDE = "-rows"  # the file beside the staging store the rows are ingested into (ADBC)


def bulk_import(
    store_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    *,
    process: Process,
    replace: bool = False,
    timeout: float = 30.0,
    phases: Phases | None = None,
) -> ImportOutcome | None:
    """Import a plain event log fast; ``None`` (nothing written) when it takes the ordinary way.

    Args:
        store_path: the SQLite store to create (or, with ``replace``, to replace).
        input_path: the log (``.csv``, ``.jsonl`` / ``.ndjson``, ``.parquet`` / ``.pq``).
        process: the process the events were recorded in (stored with them).
        replace: build a new store and swap it in for the old one.
        timeout: seconds to wait for another writer's lock.
        phases: told of the ``reading``, ``checking`` and ``writing`` phases.

    Returns:
        What was imported, as :func:`~stagegate.store.write_import` says it; ``None`` when the
        file is not a plain log, breaks a rule, or the store exists and ``replace`` is false:
        import it with ``write_import`` or ``stream_import`` then.

    Raises:
        StoreError: ``store_path`` is no plain file path (see
            :func:`~stagegate.store.sqlite.store_path`), or the new store was built but
            cannot be put in place (the old store, if any, is unchanged).
    """
    fmt = format_of(input_path)
    if fmt is None or is_postgresql_url(store_path):
        return None
    path, source = checked_path(store_path), os.fspath(input_path)
    if not replace and os.path.exists(path):
        return None  # compared with what the store holds: the ordinary way
    if replace:
        try:
            _check_replaceable(path, source, timeout)
        except (ImportRefusedError, StoreError):
            return None  # the ordinary way refuses it, after reading the file as it does
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale(folder, os.path.basename(path))
    staging = os.path.join(
        folder, f".{os.path.basename(path)}{REPLACE_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    )
    try:
        try:
            with SQLiteStore(staging, timeout=timeout) as store:
                record = _write(store, source, fmt, process, phases, staging + _SIDE)
            _settle(staging, timeout)
        except (NotPlainError, StoreError):
            return None
        if replace:
            _swap(path, staging, timeout)
        elif not _link(staging, path):
            return None  # a store appeared meanwhile: compared with it the ordinary way
    finally:
        for suffix in ("", "-wal", "-shm", "-journal", _SIDE, f"{_SIDE}-journal"):
            with contextlib.suppress(OSError):
                os.unlink(staging + suffix)
    return ImportOutcome(record, (), replaced=replace)


def _write(  # noqa: PLR0917 - the import's settings, passed on
    store: SQLiteStore,
    source: str,
    fmt: str,
    process: Process,
    phases: Phases | None,
    side: str,
) -> ImportRecord:
    counts: list[int] = []
    totals = {"events": 0, "opportunities": 0}
    # the phases run together, batch by batch: each batch is read, checked, then written
    reading = phase_of(phases, "reading")
    checking = phase_of(phases, "checking")
    writing = phase_of(phases, "writing")
    chain = _Chain()

    def checked() -> Iterator[tuple[PlainBatch, tuple[Sequence[Any], ...]]]:
        for batch in ahead(plain_batches(source, process, counts=counts)):
            yield batch, chain.seal_columns(batch)

    def sealed() -> Generator[tuple[Sequence[Any], ...], None, None]:
        # three threads, each a batch or two ahead of the next: one reads and checks (mostly
        # Arrow kernels), one seals (hashing), this one writes (mostly SQLite); Arrow and
        # SQLite let go of the interpreter lock, so both cores work
        for batch, columns in ahead(checked()):
            totals["events"] += batch.count
            totals["opportunities"] += batch.opportunities
            reading(totals["events"])
            checking(totals["events"])
            yield columns

    def record() -> ImportRecord:
        return ImportRecord(
            id=0,
            at=datetime(1970, 1, 1, tzinfo=timezone.utc),
            source="events",
            input_name=os.path.basename(source),
            rows_read=counts[0],
            rows_used=totals["events"],
            opportunities=totals["opportunities"],
            events=totals["events"],
            findings=(),
        )

    piece = STREAM_BATCH if fmt == "jsonl" else PROJECTION_CHUNK
    # closed here whatever happens: its threads stop and the file is closed at once, not when
    # a traceback that holds the generator is collected
    with contextlib.closing(sealed()) as batches:
        if ingest_available():
            stored = write_sealed_columns(
                store,
                batches,
                side=side,
                process=process,
                record=record,
                piece=piece,
                progress=writing,
            )
        else:
            rows = (list(zip(*map(_values, columns), strict=True)) for columns in batches)
            stored = write_sealed_rows(
                store, rows, process=process, record=record, piece=piece, progress=writing
            )
    if stored.events >= CHECKPOINT_FROM:
        store.checkpoint()
    return stored


def _values(column: Any) -> Sequence[Any]:
    """A column as Python values (the batch's columns are Arrow arrays, its digests a list)."""
    return column if isinstance(column, list) else column.to_pylist()


class _Chain:
    """Seals batches in file order; a deal's chain may run on from one batch into the next."""

    def __init__(self) -> None:
        self.head = _GENESIS  # what the next digest hashes before the content

    def seal_columns(self, batch: PlainBatch) -> tuple[Sequence[Any], ...]:
        """The batch's columns with their digests last (the ``events`` layout).

        Raises:
            NotPlainError: the file carries a digest that is not the event's place in the chain.
        """
        sha256, genesis, prefix = hashlib.sha256, _GENESIS, _PREFIX
        digests: list[str] = []
        add = digests.append
        head = self.head
        for start, content in zip(batch.starts, batch.contents, strict=True):
            digest = sha256((genesis if start else head) + content).hexdigest()
            add(digest)
            head = prefix + digest.encode("ascii") + b"\n"
        self.head = head
        given = batch.digests
        if given is not None and any(
            carried is not None and carried != digest
            for carried, digest in zip(given, digests, strict=True)
        ):
            raise NotPlainError("a carried digest is not its place in the chain")
        return (*batch.columns, digests)
