"""The table ``projection`` of a SQLite store: chunks written beside the events, read as a frame.

:mod:`stagegate.store._columnar` packs the analytics columns of events into chunks; this module
keeps those chunks in the table ``projection`` (one row per chunk: its id, its number of events,
its bytes), inside the write transaction of their events. :func:`project` adds the chunks of a
batch just inserted, merging small ones as they accumulate (:func:`add_chunk`);
:func:`project_table` packs a whole table (a migration, a staging file of an older stagegate);
:func:`copy_projection` copies a staging file's chunks. Reading, :func:`frame_of_stored` makes
the frame from the chunks where they are stored, :func:`read_projection` reads the chunks into
memory, and :func:`projected` packs chunks from the events of a file without a projection.

The sizes are the caller's (``most`` events per chunk, a merge every ``merge_every`` chunks), so
the store's settings stay where the store reads them.

>>> import sqlite3
>>> from datetime import datetime, timezone
>>> from stagegate.events import Event, EventKind
>>> from stagegate.store._rows import encode_batch
>>> at = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> batch = encode_batch(
...     [Event(oid, 1, EventKind.OPENED, at, "ana", "lead", "b2b", "1") for oid in "abc"]
... )
>>> conn = sqlite3.connect(":memory:")
>>> _ = conn.execute(PROJECTION_DDL)
>>> project(conn, batch.columns, most=2, merge_every=64)
>>> conn.execute(COUNTED).fetchone(), len(read_projection(conn, None))
((3,), 2)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from stagegate._progress import Phases, phase_of
from stagegate.store._columnar import (
    StoredChunk,
    encode_chunk,
    encode_columns,
    frame_of,
    merge_chunks,
)

__all__ = [
    "COUNTED",
    "PROJECT",
    "PROJECTED",
    "PROJECTION_DDL",
    "add_chunk",
    "copy_projection",
    "frame_of_stored",
    "project",
    "project_table",
    "projected",
    "read_projection",
]

PROJECTION_DDL = (
    "CREATE TABLE IF NOT EXISTS projection (id INTEGER PRIMARY KEY, events INTEGER NOT NULL, "
    "chunk BLOB NOT NULL)"
)
PROJECT = "INSERT INTO projection (events, chunk) VALUES (?, ?)"
COUNTED = "SELECT coalesce(sum(events), 0) FROM projection"
# The columns the projection packs, in the ``events`` layout (no actor, gate or digest).
PROJECTED = (
    "SELECT opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, NULL, "
    "reason, process, process_version, subject, details FROM {table} ORDER BY opportunity_id, seq"
)


def read_projection(conn: sqlite3.Connection, phases: Phases | None) -> list[bytes]:
    """The chunks of the projection, in the order they were written."""
    (total,) = conn.execute("SELECT total(events) FROM projection").fetchone()
    tick = phase_of(phases, "reading", int(total))
    chunks: list[bytes] = []
    done = 0
    for events, chunk in conn.execute("SELECT events, chunk FROM projection ORDER BY id"):
        chunks.append(chunk)
        done += events
        tick(done)
    return chunks


def frame_of_stored(
    conn: sqlite3.Connection, phases: Phases | None, options: dict[str, Any]
) -> Any:
    """:func:`frame_of` the projection's chunks, read from the file a column at a time.

    Inside the caller's read transaction (one snapshot); SQLite's incremental blob I/O
    (Python 3.11+) reads each column's bytes of each chunk where they are stored.
    """
    (total,) = conn.execute("SELECT total(events) FROM projection").fetchone()
    tick = phase_of(phases, "reading", int(total))
    blob_of = conn.blobopen  # type: ignore[attr-defined]  # Python 3.11+: see the caller
    with contextlib.ExitStack() as blobs:
        rowids = [rowid for (rowid,) in conn.execute("SELECT id FROM projection ORDER BY id")]
        chunks = [
            StoredChunk(blobs.enter_context(blob_of("projection", "chunk", rowid, readonly=True)))
            for rowid in rowids
        ]
        return frame_of(chunks, tick=tick, **options)


def projected(conn: sqlite3.Connection, phases: Phases | None, *, most: int) -> list[bytes]:
    """Chunks of at most ``most`` events packed from the events table itself.

    For a file written before the projection (schema version 1 or 2).
    """
    (total,) = conn.execute("SELECT count(*) FROM events").fetchone()
    tick = phase_of(phases, "reading", int(total))
    chunks: list[bytes] = []
    done = 0
    cursor = conn.execute(PROJECTED.format(table="events"))
    while rows := cursor.fetchmany(most):
        chunks.append(encode_chunk(rows))
        done += len(rows)
        tick(done)
    return chunks


def project(
    conn: sqlite3.Connection, columns: Sequence[Sequence[Any]], *, most: int, merge_every: int
) -> None:
    """Inside a write transaction: add the projection of columns just inserted into ``events``.

    Chunks hold at most ``most`` events. Small batches leave small chunks; every
    ``merge_every`` chunks the small ones just written are merged (and every
    ``merge_every ** 2`` the merged ones, and so on), so a log appended one event at a time
    still reads as a few large chunks.
    """
    total = len(columns[0]) if columns else 0
    for start in range(0, total, most):
        part = [column[start : start + most] for column in columns]
        add_chunk(conn, len(part[0]), encode_columns(part), most=most, merge_every=merge_every)


def add_chunk(
    conn: sqlite3.Connection, events: int, chunk: bytes, *, most: int, merge_every: int
) -> None:
    """Inside a write transaction: add one chunk of ``events`` events, then merge as due.

    See :func:`project`: when the chunk's id is a multiple of ``merge_every`` (of its square,
    ...), the small chunks of the ids just before it are merged.
    """
    last = conn.execute(PROJECT, (events, chunk)).lastrowid or 0
    span = merge_every
    while last % span == 0:
        _merge_small(conn, last - span, last, most)
        span *= merge_every


def _merge_small(conn: sqlite3.Connection, after: int, upto: int, most: int) -> None:
    """Merge the chunks of ids ``(after, upto]`` smaller than ``most`` into the first's id."""
    found = conn.execute(
        "SELECT id, events, chunk FROM projection WHERE id > ? AND id <= ? AND events < ? "
        "ORDER BY id",
        (after, upto, most),
    ).fetchall()
    if len(found) < 2:  # noqa: PLR2004 - nothing to merge
        return
    group: list[tuple[int, int, bytes]] = []
    for row in [*found, None]:
        if row is not None and sum(r[1] for r in group) + row[1] <= most:
            group.append(row)
            continue
        if len(group) > 1:
            conn.execute(
                "DELETE FROM projection WHERE id >= ? AND id <= ? AND events < ?",
                (group[0][0], group[-1][0], most),
            )
            conn.execute(
                "INSERT INTO projection (id, events, chunk) VALUES (?, ?, ?)",
                (group[0][0], sum(r[1] for r in group), merge_chunks([r[2] for r in group])),
            )
        group = [] if row is None else [row]


def project_table(conn: sqlite3.Connection, table: str, *, most: int) -> None:
    """Inside a write transaction: add the projection of every event of ``table``."""
    cursor = conn.execute(PROJECTED.format(table=table))
    while rows := cursor.fetchmany(most):
        conn.execute(PROJECT, (len(rows), encode_chunk(rows)))


def copy_projection(conn: sqlite3.Connection, *, most: int) -> None:
    """Inside a write transaction: add the projection of the events copied from ``staged``.

    A staging file of an older stagegate (no projection) has its events packed here, in chunks
    of at most ``most`` events.
    """
    listed = conn.execute(
        "SELECT 1 FROM staged.sqlite_master WHERE type = 'table' AND name = 'projection'"
    ).fetchone()
    if listed is None:  # staged by an older stagegate: project its events here
        project_table(conn, "staged.events", most=most)
        return
    conn.execute(
        "INSERT INTO main.projection (events, chunk) "
        "SELECT events, chunk FROM staged.projection ORDER BY id"
    )
