"""Writing rows already checked and sealed into a new SQLite store, all at once.

The bulk import (``stagegate.store._bulk``) builds the stored rows of a plain log (the
``events`` columns with their digests) without :class:`~stagegate.events.Event` objects. This
module writes them: through ADBC (``adbc_driver_sqlite``, the ``bulk`` extra) as Arrow columns
when it is installed, with ``executemany`` otherwise. Either way the projection is packed every
``piece`` rows, as a batch of that many events would pack it, so the store is the one the
ordinary path writes.
"""

# ruff: noqa: SLF001 - the SQLite store's own writers, kept beside it

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from stagegate._ahead import wait_out
from stagegate.store import sqlite
from stagegate.store._columnar import encode_arrow
from stagegate.store._sqlite_projection import add_chunk, project
from stagegate.store._sqlite_records import put_definition, put_record
from stagegate.store._sqlite_schema import COLUMNS, INSERT
from stagegate.store.base import ImportRecord, Progress, StoreError, stored_definition

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = ["ingest_available", "write_sealed_columns", "write_sealed_rows"]

_WAIT = 0.1  # seconds between the caller's looks at the ingest thread
_TEXT_COLUMNS = frozenset(range(17)) - {1, 3}  # every column but seq and at_us holds text


def _definition(process: Process | None) -> tuple[str, str, str] | None:
    if process is None or not process.serializable:
        return None
    return (process.name, process.version, stored_definition(process))


def write_sealed_rows(
    store: sqlite.SQLiteStore,
    batches: Iterable[Sequence[tuple[Any, ...]]],
    *,
    process: Process | None,
    record: Callable[[], ImportRecord],
    piece: int | None = None,
    progress: Progress | None = None,
) -> ImportRecord:
    """Write rows already checked and sealed into a store that holds no events, all at once.

    The rows (the ``events`` columns with their digests) are inserted batch by batch inside
    one transaction, with the projection packed every ``piece`` rows (default
    :data:`~stagegate.store.sqlite.PROJECTION_CHUNK`), the process definition, and
    ``record()`` (called once every batch is written, when its counts are known). Anything
    raised, by the batches or by SQLite, rolls the whole write back.

    Raises:
        StoreError: the store cannot be written, holds a different definition of the process,
            or already holds one of the rows (an opportunity whose events appear twice).
    """
    piece = piece or sqlite.PROJECTION_CHUNK
    definition = _definition(process)
    conn = store._read(lambda conn: conn)
    pending: list[tuple[Any, ...]] = []
    done = 0
    with store._transaction(conn):
        if definition is not None:
            put_definition(conn, store.path, *definition)
        for rows in batches:
            conn.executemany(INSERT, rows)
            pending.extend(rows)
            while len(pending) >= piece:
                _project(conn, list(zip(*pending[:piece], strict=True)))
                del pending[:piece]
            done += len(rows)
            if progress is not None:
                progress(done)
        if pending:
            _project(conn, list(zip(*pending, strict=True)))
        return put_record(conn, record())


def ingest_available() -> bool:
    """Whether the bulk import can write its rows through ADBC (``adbc_driver_sqlite``)."""
    try:
        importlib.import_module("adbc_driver_sqlite.dbapi")  # optional: the ``bulk`` extra
        importlib.import_module("pyarrow")
    except ImportError:
        return False
    return True


def write_sealed_columns(
    store: sqlite.SQLiteStore,
    batches: Iterable[Sequence[Sequence[Any]]],
    *,
    side: str,
    process: Process | None,
    record: Callable[[], ImportRecord],
    piece: int | None = None,
    progress: Progress | None = None,
) -> ImportRecord:
    """:func:`write_sealed_rows` through ADBC, into a store nobody else sees yet.

    Each batch (the 17 ``events`` columns, digest last, as Arrow arrays or lists) is
    ingested by ``adbc_driver_sqlite`` straight into the store's ``events``, in one ADBC
    transaction, while its projection is packed every ``piece`` rows as
    :func:`write_sealed_rows` packs it (by :func:`~stagegate.store._columnar.encode_arrow`)
    and kept in the file ``side``, so memory stays bounded by a batch and a chunk. Then one
    sqlite3 transaction adds the projection, the process definition and ``record()``.

    ADBC runs in a thread of its own while the caller's waits: called from the main thread,
    ADBC catches Ctrl-C itself and turns it into a driver error (which read as a file to import
    the ordinary way) or loses it; from another thread it leaves the signal to Python, and
    ``KeyboardInterrupt`` stops the write at its next batch.

    The rows are committed before the rest: the store must be a new one that the caller
    discards on any error (the bulk import builds it under a staging name); ``side`` is the
    caller's to remove.

    Raises:
        StoreError: as :func:`write_sealed_rows` (a row already there comes from ADBC's
            insert, before the rest is written).
    """
    adbc = importlib.import_module("adbc_driver_sqlite.dbapi")  # optional: the ``bulk`` extra
    pa = importlib.import_module("pyarrow")
    chunk = piece or sqlite.PROJECTION_CHUNK
    try:
        _aside(lambda stop: _ingest(adbc, pa, store.path, side, batches, chunk, progress, stop))
    except adbc.Error as exc:
        raise StoreError(
            f"cannot write the rows into {store.path!r} ({exc}); check the disk space and "
            "permissions, and that no opportunity's events appear twice"
        ) from None
    definition = _definition(process)
    conn = store._read(lambda conn: conn)
    try:
        conn.execute("ATTACH DATABASE ? AS ingested", (side,))
    except sqlite3.Error as exc:
        raise store._error(exc) from None
    try:
        with store._transaction(conn):
            if definition is not None:
                put_definition(conn, store.path, *definition)
            chunks = conn.execute("SELECT events, chunk FROM ingested.chunks ORDER BY rowid")
            for count, blob in chunks:  # one at a time: memory stays one chunk
                _project_encoded(conn, count, blob)
            return put_record(conn, record())
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("DETACH DATABASE ingested")


def _project(conn: sqlite3.Connection, columns: Sequence[Sequence[Any]]) -> None:
    """:func:`project` with the store's settings (read at each call, as the store reads them)."""
    project(conn, columns, most=sqlite.PROJECTION_CHUNK, merge_every=sqlite.MERGE_EVERY)


def _project_encoded(conn: sqlite3.Connection, count: int, chunk: bytes) -> None:
    """:func:`_project` of one chunk already encoded (at most ``PROJECTION_CHUNK`` events)."""
    add_chunk(conn, count, chunk, most=sqlite.PROJECTION_CHUNK, merge_every=sqlite.MERGE_EVERY)


def _aside(work: Callable[[threading.Event], None]) -> None:
    """Run ``work(stop)`` in a thread of its own; the caller's thread waits, interruptibly.

    When the wait is interrupted (Ctrl-C), ``stop`` is set, the thread is joined (``work``
    stops at its next look at ``stop``), and the interrupt goes on. What ``work`` raises is
    raised here.
    """
    stop, done = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="stagegate-ingest", daemon=True)
    worker.start()
    try:
        while not done.wait(_WAIT):  # an Event, not a join: see _ahead.wait_out
            pass
    except BaseException:
        stop.set()
        wait_out(done)
        raise
    worker.join()
    if failed:
        raise failed[0]


def _ingest(  # noqa: PLR0917 - write_sealed_columns' own helper
    adbc: Any,
    pa: Any,
    path: str,
    side: str,
    batches: Iterable[Sequence[Sequence[Any]]],
    piece: int,
    progress: Progress | None,
    stop: threading.Event,
) -> None:
    """Ingest the batches' rows into ``path``'s ``events``, their projection's chunks into ``side``.

    The chunks, encoded every ``piece`` rows, go to table ``chunks`` of ``side``, so that
    memory holds one batch and one chunk whatever the size of the file.
    """
    names = [name.strip() for name in COLUMNS.split(",")]
    types = [pa.string() if i in _TEXT_COLUMNS else pa.int64() for i in range(len(names))]
    schema = pa.schema(list(zip(names, types, strict=True)))
    packed = pa.schema([("events", pa.int64()), ("chunk", pa.binary())])
    pending: list[list[Any]] = []  # the arrays of the rows not packed yet, batch by batch
    waiting = done = 0
    with (
        adbc.connect(path) as conn,
        conn.cursor() as cursor,
        adbc.connect(side) as side_conn,
        side_conn.cursor() as side_cursor,
    ):
        side_cursor.adbc_ingest("chunks", packed.empty_table(), mode="create")

        def keep(columns: list[Any], start: int, count: int) -> None:
            chunk = encode_arrow([column.slice(start, count) for column in columns])
            table = pa.Table.from_arrays([pa.array([count]), pa.array([chunk])], schema=packed)
            side_cursor.adbc_ingest("chunks", table, mode="append")

        for columns in batches:
            if stop.is_set():
                raise KeyboardInterrupt  # the caller was interrupted: nothing is committed
            arrays = [
                column.cast(kind) if isinstance(column, pa.Array) else pa.array(column, type=kind)
                for column, kind in zip(columns, types, strict=True)
            ]
            cursor.adbc_ingest("events", pa.Table.from_arrays(arrays, schema=schema), mode="append")
            pending.append(arrays)
            waiting += len(arrays[0])
            if waiting >= piece:
                merged = [pa.concat_arrays(parts) for parts in zip(*pending, strict=True)]
                start = 0
                while waiting - start >= piece:
                    keep(merged, start, piece)
                    start += piece
                pending = [[column.slice(start) for column in merged]]
                waiting -= start
            done += len(arrays[0])
            if progress is not None:
                progress(done)
        if waiting:
            keep([pa.concat_arrays(parts) for parts in zip(*pending, strict=True)], 0, waiting)
        conn.commit()
        side_conn.commit()
