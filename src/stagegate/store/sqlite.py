"""The embedded default event store: one SQLite file, written through the stdlib ``sqlite3``.

Layout: a table ``events`` keyed by ``(opportunity_id, seq)`` (``WITHOUT ROWID``) with one column
per :class:`~stagegate.events.Event` field. Instants are ``at_us``, integer microseconds since the
Unix epoch in UTC; amounts are exact decimal text; close dates ISO text; ``details`` and ``gate``
JSON text with sorted keys; ``digest`` the event's link in its opportunity's digest chain (see
:mod:`stagegate.integrity`), computed by every write. A table ``projection`` holds the columnar
projection of the events that :meth:`SQLiteStore.to_frame` reads (see
:mod:`stagegate.store._columnar`): every write adds the packed analytics columns of the events
it writes, in the same transaction. A table ``meta`` records ``schema_version`` (currently
``3``).

Version 1 files (no ``digest`` column) and version 2 files (no projection) open and read as they
are (a version 1 file's events unsealed; ``to_frame`` on either reads the events table, more
slowly); the first write migrates them in its own transaction: it adds the column and seals
every stored opportunity's history as it stands (from its first event on), builds the
projection of every stored event, and sets the version to 3. Reading never rewrites its data.

Concurrency: the file is in WAL mode, so readers never block the writer and the writer never
blocks readers. A batch is one ``BEGIN IMMEDIATE`` transaction: writers (threads or processes)
take turns, each waiting up to ``timeout`` seconds for the lock, and a batch that does not
continue an opportunity's log raises :class:`~stagegate.errors.ConcurrencyError` and is rolled
back whole. The primary key makes a duplicate ``(opportunity_id, seq)`` impossible even for
writers that bypass this class.

Durability: with the default ``synchronous=NORMAL`` a committed batch survives the process being
killed, but the last batches before a power failure or operating-system crash may be lost (the
file stays consistent either way). ``durable=True`` uses ``synchronous=FULL``: every commit waits
for the disk, which costs one ``fsync`` per batch.

Threads: a store may be shared between threads; each thread gets its own connection, made on
first use and kept until :meth:`SQLiteStore.close` (so prefer a pool of long-lived threads to a
thread per request); call ``close()`` once the other threads are done with the store. Each scan
reads through a connection of its own, so it sees a consistent snapshot and does not hold up
writers. Processes: do not share one object across ``fork``; open the same path in each process
(a store pickles as its path, so it can be passed to ``multiprocessing``).

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> from stagegate.events import Event, EventKind
>>> at = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> with tempfile.TemporaryDirectory() as folder:
...     with SQLiteStore(os.path.join(folder, "deals.sqlite")) as store:
...         store.append([Event("opp-1", 1, EventKind.OPENED, at, "ana", "lead", "b2b", "1")])
...         [event.seq for event in store.load("opp-1")], store.count()
([1], 1)
"""

# ruff: noqa: PTH100, PTH105, PTH108, PTH110, PTH112, PTH116, PTH118, PTH119, PTH120
# str paths: a store is one file plus its "-wal" and "-shm" companions

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from stagegate._progress import Phases, phase_of
from stagegate._time import epoch_us, from_epoch_us, now
from stagegate.errors import ConcurrencyError, EventLogError, StagegateError
from stagegate.events import Event, EventKind, FrozenMapping, MoveKind, freeze
from stagegate.gates import GateReport
from stagegate.integrity import event_digest
from stagegate.store._columnar import (
    StoredChunk,
    encode_chunk,
    encode_columns,
    frame_of,
    give_back_freed,
    merge_chunks,
)
from stagegate.store._rows import (
    EncodedBatch,
    details_json,
    encode_batch,
    gate_json,
    rows_of,
    seal,
)
from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    EventRow,
    EventStore,
    ImportRecord,
    Progress,
    StoreClosedError,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
    StoreReplacedError,
    StoreUnwritableError,
    batch_size_of,
    check_batch,
    conflicts,
    digest_refused,
    logs_of_rows,
)

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = ["PROJECTION_CHUNK", "SCHEMA_VERSION", "WAL_LIMIT", "SQLiteStore", "inspect_file"]

SCHEMA_VERSION = 3
"""The version of the file layout this module writes (it also reads, and migrates, 1 and 2)."""
_OLDEST_VERSION = 1
PROJECTION_CHUNK = 1 << 16
"""Most events packed into one chunk of the projection."""
MERGE_EVERY = 64
"""Every this many chunks written, the small ones among them are merged (see ``_project``)."""

_T = TypeVar("_T")

_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    opportunity_id  TEXT    NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    kind            TEXT    NOT NULL,
    at_us           INTEGER NOT NULL,
    stage           TEXT    NOT NULL,
    from_stage      TEXT,
    move            TEXT,
    amount          TEXT,
    close_date      TEXT,
    actor           TEXT    NOT NULL,
    reason          TEXT,
    process         TEXT    NOT NULL,
    process_version TEXT    NOT NULL,
    subject         TEXT,
    details         TEXT,
    gate            TEXT,
    digest          TEXT,
    PRIMARY KEY (opportunity_id, seq)
) WITHOUT ROWID
"""
_PROJECTION_DDL = (
    "CREATE TABLE IF NOT EXISTS projection (id INTEGER PRIMARY KEY, events INTEGER NOT NULL, "
    "chunk BLOB NOT NULL)"
)
_PROJECT = "INSERT INTO projection (events, chunk) VALUES (?, ?)"
_COUNTED = "SELECT coalesce(sum(events), 0) FROM projection"
# The columns the projection packs, in the ``events`` layout (no actor, gate or digest).
_PROJECTED = (
    "SELECT opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, NULL, "
    "reason, process, process_version, subject, details FROM {table} ORDER BY opportunity_id, seq"
)
_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_PROCESSES_DDL = (
    "CREATE TABLE IF NOT EXISTS processes (name TEXT NOT NULL, version TEXT NOT NULL, "
    "definition TEXT NOT NULL, PRIMARY KEY (name, version)) WITHOUT ROWID"
)
_IMPORTS_DDL = (
    "CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, "
    "source TEXT NOT NULL, input_name TEXT NOT NULL, rows_read INTEGER NOT NULL, "
    "rows_used INTEGER NOT NULL, opportunities INTEGER NOT NULL, events INTEGER NOT NULL, "
    "findings TEXT NOT NULL)"
)
_IMPORT_COLUMNS = (
    "id, at_us, source, input_name, rows_read, rows_used, opportunities, events, findings"
)

READ_IN_PLACE = hasattr(sqlite3.Connection, "blobopen")
"""Whether ``to_frame`` reads each column of the projection's chunks where it is stored
(SQLite's incremental blob I/O, Python 3.11+) rather than all the chunks into memory first."""

WAL_LIMIT = 64 * 1024 * 1024
"""Bytes of write-ahead log kept after a checkpoint (``PRAGMA journal_size_limit``); a scan that
ends with a larger log checkpoints and truncates it."""

_CONTENT = (
    "opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, "
    "reason, process, process_version, subject, details, gate"
)
_COLUMNS = _CONTENT + ", digest"
_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608 - constant
_LOAD = f"SELECT {_COLUMNS} FROM events WHERE opportunity_id = ? ORDER BY seq"  # noqa: S608
_SCAN = f"SELECT {_COLUMNS} FROM events ORDER BY opportunity_id, seq"  # noqa: S608
# A version 1 file, read before its first write migrates it: no digests yet.
_LOAD_V1 = f"SELECT {_CONTENT}, NULL FROM events WHERE opportunity_id = ? ORDER BY seq"  # noqa: S608
_SCAN_V1 = f"SELECT {_CONTENT}, NULL FROM events ORDER BY opportunity_id, seq"  # noqa: S608
_LAST_LINK = "SELECT seq, digest FROM events WHERE opportunity_id = ? ORDER BY seq DESC LIMIT 1"
_SCAN_ROWS = (
    "SELECT opportunity_id, at_us, seq, stage, amount, close_date, kind, from_stage, move "
    "FROM events ORDER BY opportunity_id, seq"
)
_LAST_SEQ = "SELECT max(seq) FROM events WHERE opportunity_id = ?"
_STAGED_RUNS = (
    "SELECT s.opportunity_id, min(s.seq), (SELECT max(m.seq) FROM main.events m "
    "WHERE m.opportunity_id = s.opportunity_id) FROM staged.events s GROUP BY s.opportunity_id"
)
_IDS = "SELECT DISTINCT opportunity_id FROM events ORDER BY opportunity_id"
# The last event of every opportunity: the primary key finds each one without reading the rest.
_HEADS = (
    "FROM events JOIN (SELECT opportunity_id AS head_id, max(seq) AS head_seq FROM events "
    "GROUP BY opportunity_id) ON opportunity_id = head_id AND seq = head_seq ORDER BY head_id"
)
_LAST_EVENTS = f"SELECT {_COLUMNS} {_HEADS}"
_LAST_EVENTS_V1 = f"SELECT {_CONTENT}, NULL {_HEADS}"
_STATE = (
    "opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, "
    "reason, process, process_version, subject, NULL, NULL"
)
_LAST_STATES = f"SELECT {_STATE}, digest {_HEADS}"
_LAST_STATES_V1 = f"SELECT {_STATE}, NULL {_HEADS}"

_new_row = tuple.__new__  # skips EventRow.__new__'s argument binding: 9 columns x millions
_KINDS = {kind.value: kind for kind in EventKind}
_MOVES = {move.value: move for move in MoveKind}


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Details and gate reports are stored with sorted keys: the same text is then part of the
# canonical content the digest covers (stagegate.integrity.canonical_bytes), encoded once.
_encode_sorted = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
_quote = json.encoder.encode_basestring
_decode = json.JSONDecoder().decode
_decode_flat = json.JSONDecoder(object_hook=FrozenMapping).decode


_PROGRESS_STEP = 20_000


def _has_processes(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'processes'"
    ).fetchone()
    return row is not None


def _details(text: str) -> Mapping[str, Any]:
    """Decode details JSON into the read-only values :func:`~stagegate.events.freeze` makes."""
    if "[" not in text:  # no lists (the common case): objects become FrozenMappings directly
        return _decode_flat(text)  # type: ignore[no-any-return]
    return freeze(_decode(text))  # type: ignore[no-any-return]


def _row(e: Event) -> tuple[Any, ...]:
    """Return the column values of one event, in :data:`_CONTENT` order (no digest)."""
    return _sealable(e)[0]


def _sealable(e: Event) -> tuple[tuple[Any, ...], bytes]:
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


def _event(row: tuple[Any, ...]) -> Event:
    """Rebuild an event from its column values."""
    (oid, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, reason) = row[:11]
    process, process_version, subject, details, gate, digest = row[11:]
    try:
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
            None if gate is None else GateReport.from_dict(_decode(gate)),
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


def _event_row(row: tuple[Any, ...]) -> EventRow:
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


def _sealables_of(events: Sequence[Event]) -> EncodedBatch:
    """Encode a batch and the canonical content of each event, or say which cannot be stored.

    Column by column (:func:`~stagegate.store._rows.encode_batch`) when it can, else event by
    event (:func:`_sealable`, which also names the event that cannot be stored).
    """
    batch = encode_batch(events)
    if batch is not None:
        return batch
    try:
        pairs = [_sealable(event) for event in events]
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
        _row(event)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _seal_rows(
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


def _seal_copied(conn: sqlite3.Connection, runs: list[tuple[str, int, int | None]]) -> None:
    """Seal the runs just copied from a staging file (its digests are the caller's, unchecked).

    Raises:
        EventLogError: a copied event carries a digest that is not its place in the chain.
    """
    updates: list[tuple[str, str, int]] = []
    for oid, first, _ in runs:
        found = conn.execute(
            "SELECT digest FROM main.events WHERE opportunity_id = ? AND seq = ?", (oid, first - 1)
        ).fetchone()
        previous: str | None = None if found is None else found[0]
        copied = conn.execute(
            f"SELECT {_COLUMNS} FROM main.events "  # noqa: S608 - constant
            "WHERE opportunity_id = ? AND seq >= ? ORDER BY seq",
            (oid, first),
        )
        for row in copied:
            event = _event(row)
            digest = event_digest(event, previous)
            if event.digest is None:
                updates.append((digest, oid, event.seq))
            elif event.digest != digest:
                raise digest_refused(event)
            previous = digest
    conn.executemany(
        "UPDATE main.events SET digest = ? WHERE opportunity_id = ? AND seq = ?", updates
    )


def _read_projection(conn: sqlite3.Connection, phases: Phases | None) -> list[bytes]:
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


def _frame_of_stored(
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


def _projected(conn: sqlite3.Connection, phases: Phases | None) -> list[bytes]:
    """Chunks packed from the events table itself (a file written before the projection)."""
    (total,) = conn.execute("SELECT count(*) FROM events").fetchone()
    tick = phase_of(phases, "reading", int(total))
    chunks: list[bytes] = []
    done = 0
    cursor = conn.execute(_PROJECTED.format(table="events"))
    while rows := cursor.fetchmany(PROJECTION_CHUNK):
        chunks.append(encode_chunk(rows))
        done += len(rows)
        tick(done)
    return chunks


def _project(conn: sqlite3.Connection, columns: Sequence[Sequence[Any]]) -> None:
    """Inside a write transaction: add the projection of columns just inserted into ``events``.

    Small batches leave small chunks; every :data:`MERGE_EVERY` chunks the small ones just
    written are merged (and every ``MERGE_EVERY ** 2`` the merged ones, and so on), so a log
    appended one event at a time still reads as a few large chunks.
    """
    total = len(columns[0]) if columns else 0
    for start in range(0, total, PROJECTION_CHUNK):
        part = [column[start : start + PROJECTION_CHUNK] for column in columns]
        last = conn.execute(_PROJECT, (len(part[0]), encode_columns(part))).lastrowid or 0
        span = MERGE_EVERY
        while last % span == 0:
            _merge_small(conn, last - span, last)
            span *= MERGE_EVERY


def _merge_small(conn: sqlite3.Connection, after: int, upto: int) -> None:
    """Merge the chunks of ids ``(after, upto]`` smaller than a full one into the first's id."""
    found = conn.execute(
        "SELECT id, events, chunk FROM projection WHERE id > ? AND id <= ? AND events < ? "
        "ORDER BY id",
        (after, upto, PROJECTION_CHUNK),
    ).fetchall()
    if len(found) < 2:  # noqa: PLR2004 - nothing to merge
        return
    group: list[tuple[int, int, bytes]] = []
    for row in [*found, None]:
        if row is not None and sum(r[1] for r in group) + row[1] <= PROJECTION_CHUNK:
            group.append(row)
            continue
        if len(group) > 1:
            conn.execute(
                "DELETE FROM projection WHERE id >= ? AND id <= ? AND events < ?",
                (group[0][0], group[-1][0], PROJECTION_CHUNK),
            )
            conn.execute(
                "INSERT INTO projection (id, events, chunk) VALUES (?, ?, ?)",
                (group[0][0], sum(r[1] for r in group), merge_chunks([r[2] for r in group])),
            )
        group = [] if row is None else [row]


def _project_table(conn: sqlite3.Connection, table: str) -> None:
    """Inside a write transaction: add the projection of every event of ``table``."""
    cursor = conn.execute(_PROJECTED.format(table=table))
    while rows := cursor.fetchmany(PROJECTION_CHUNK):
        conn.execute(_PROJECT, (len(rows), encode_chunk(rows)))


def _copy_projection(conn: sqlite3.Connection) -> None:
    """Inside a write transaction: add the projection of the events copied from ``staged``."""
    listed = conn.execute(
        "SELECT 1 FROM staged.sqlite_master WHERE type = 'table' AND name = 'projection'"
    ).fetchone()
    if listed is None:  # staged by an older stagegate: project its events here
        _project_table(conn, "staged.events")
        return
    conn.execute(
        "INSERT INTO main.projection (events, chunk) "
        "SELECT events, chunk FROM staged.projection ORDER BY id"
    )


def _link(conn: sqlite3.Connection, oid: str) -> tuple[int, str | None]:
    """The last stored seq of ``oid`` and its digest (``(0, None)``: no log yet)."""
    found = conn.execute(_LAST_LINK, (oid,)).fetchone()
    return (0, None) if found is None else (int(found[0]), found[1])


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _identity(path: str) -> tuple[int, int] | None:
    """The (device, inode) of ``path``; ``None`` when it does not exist."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


_READABLE = {str(v) for v in range(_OLDEST_VERSION, SCHEMA_VERSION + 1)}


def _version_error(path: str, version: str | None) -> StoreError:
    if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
        advice = "upgrade stagegate to read it"
    else:
        advice = "it was not written by this stagegate; export and re-import its events"
    return StoreError(
        f"the event store {path!r} has schema version {version!r}, this stagegate reads "
        f"version {SCHEMA_VERSION}: {advice}"
    )


def inspect_file(path: str | os.PathLike[str], *, timeout: float = 5.0) -> str | None:
    """Return the schema version of the stagegate store at ``path``, reading it read-only.

    ``None`` means there is nothing to keep: no file, or an empty one. The file is opened
    read-only, so a foreign database is left exactly as it was.

    Raises:
        StoreError: the path is a folder or a device, or a SQLite database that is not a
            stagegate store.
        StoreDamagedError: the file is not a SQLite database, or is damaged.
        StoreLockedError: another connection holds it locked for longer than ``timeout``.
    """
    text = os.fspath(path)
    try:
        found = os.stat(text)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(found.st_mode):
        raise StoreError(f"{text!r} is not a regular file; give the path of a store file")
    if found.st_size == 0:
        return None
    try:
        with open(text, "rb") as handle:  # noqa: PTH123 - a plain read of the header
            head = handle.read(100)  # the database header
    except OSError as exc:
        raise StoreUnwritableError(
            f"cannot read the event store {text!r}: {exc.strerror or exc}; check its permissions"
        ) from None
    if head[: len(_SQLITE_MAGIC)] != _SQLITE_MAGIC:
        raise StoreDamagedError(
            f"{text!r} is not a SQLite database (it starts with {head[:8]!r}), so not a "
            "stagegate store: choose another file; if it was a store, it is damaged (sqlite3 "
            "FILE 'PRAGMA integrity_check'): restore it from a backup"
        )
    # A read-only connection to a WAL database nobody has open would leave -wal and -shm files
    # behind: read such a file as immutable (its whole content is in the main file then).
    wal_mode = len(head) > 18 and head[18] == 2  # noqa: PLR2004 - header byte 18: 2 is WAL
    quiet = wal_mode and not os.path.exists(f"{text}-wal")
    base = Path(text).absolute().as_uri()
    try:
        rows = _meta(base + ("?immutable=1" if quiet else "?mode=ro"), text, timeout)
    except StoreDamagedError:
        if not quiet:
            raise
        rows = _meta(base + "?mode=ro", text, timeout)  # it was being written meanwhile
    if rows is None:
        return None
    version = rows.get("schema_version")
    return None if version is None else str(version)


def _meta(uri: str, text: str, timeout: float) -> dict[str, str] | None:
    """The ``meta`` table of a database opened read-only (``None``: it has no tables)."""
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(text, exc, timeout) from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return None
        if "meta" not in tables:
            raise StoreError(
                f"{text!r} is a SQLite database but not a stagegate event store (it holds "
                f"{', '.join(sorted(tables))}); choose another file"
            )
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    except sqlite3.Error as exc:
        raise store_error(text, exc, timeout) from None
    finally:
        conn.close()


def store_error(path: str, exc: sqlite3.Error, timeout: float) -> StoreError:
    """The error to raise for a failed SQLite call on the store at ``path``: one type per cause."""
    message = str(exc)
    name = str(getattr(exc, "sqlite_errorname", ""))
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in message:
        return StoreClosedError(f"the event store {path!r}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
        return StoreLockedError(
            f"the event store {path!r} stayed locked by another connection for {timeout:g} s "
            f"({message}); nothing was written: retry later or pass a longer timeout="
        )
    if name == "SQLITE_FULL" or "disk is full" in message:
        return StoreUnwritableError(
            f"the disk holding the event store {path!r} is full ({message}); nothing was "
            "written: free some space and retry"
        )
    if name in {"SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE"}:
        return StoreUnwritableError(
            f"the disk refused to write the event store {path!r} ({message}: it is full, over "
            "a size quota, or failing); nothing was written: free some space and retry"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in message:
        if not os.path.isdir(folder):
            why = f"its folder {folder!r} does not exist: create it first"
        elif os.path.exists(path) and not os.access(path, os.W_OK):
            why = "the file is read-only: make it writable (chmod u+w) or import into a copy"
        elif not os.access(folder, os.W_OK):
            why = (
                f"its folder {folder!r} is read-only (a store needs to create its -wal and "
                "-shm files beside it): make the folder writable or choose another one"
            )
        else:
            why = "check the file's and its folder's permissions"
        return StoreUnwritableError(f"cannot write the event store {path!r} ({message}): {why}")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in message:
        return StoreDamagedError(
            f"the event store {path!r} is damaged ({message}); restore it from a backup "
            "(stagegate backup makes one), or check it with sqlite3 FILE 'PRAGMA integrity_check'"
        )
    return StoreError(
        f"cannot use the event store {path!r}: {message}; check that the file is a "
        "stagegate SQLite store on a local disk and not damaged "
        "(sqlite3 FILE 'PRAGMA integrity_check'), or restore it from a backup"
    )


class SQLiteStore(EventStore):
    """An event store in one SQLite file (created on first use); see the module docs.

    Args:
        path: the database file; its folder must exist. ``":memory:"`` is refused (use
            :class:`~stagegate.store.MemoryStore`).
        timeout: seconds a writer waits for another writer's batch before giving up.
        durable: ``True`` for ``synchronous=FULL`` (survives power loss, slower commits).

    Raises:
        StoreError: the file cannot be opened or created, is not a SQLite database, is not a
            stagegate store, or has another schema version.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, durable: bool = False
    ) -> None:
        text = os.fspath(path)
        if not isinstance(text, str) or text in {"", ":memory:"} or text.startswith("file:"):
            raise StoreError(
                f"SQLiteStore needs the path of a file, got {path!r}; use MemoryStore for a "
                "store in memory"
            )
        self._path = text
        self._timeout = float(timeout)
        self._durable = bool(durable)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._identity: tuple[int, int] | None = None
        self._version = SCHEMA_VERSION
        self._open()

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r}{', closed' if self._closed else ''})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._path, self._timeout, self._durable))

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    # -- connections ---------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> StoreError:
        return store_error(self._path, exc, self._timeout)

    def _connect(self, *, reader: bool = False) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the event store {self._path!r}")
            try:
                conn = sqlite3.connect(
                    self._path,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            self._connections.append(conn)
        mode = "wal"
        try:
            if reader:
                conn.execute("PRAGMA query_only = ON")
            else:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        except sqlite3.Error as exc:
            self._forget(conn)
            raise self._error(exc) from None
        if str(mode).lower() != "wal":
            self._forget(conn)
            raise StoreError(
                f"the event store {self._path!r} cannot use write-ahead logging "
                f"(journal mode {mode!r}); put it on a local file system"
            )
        return conn

    def _forget(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def _writer(self) -> sqlite3.Connection:
        """Return this thread's connection, made on first use."""
        if self._pid != os.getpid():  # forked: never touch the parent's connections
            with self._lock:
                self._pid, self._connections, self._local = os.getpid(), [], threading.local()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._closed:
            conn = self._local.conn = self._connect()
        return conn

    def _open(self) -> None:
        """Check the file read-only, then open it for writing; retry if it was swapped meanwhile."""
        for _ in range(3):
            before = _identity(self._path)
            if before is not None:
                self._check_existing()
            self._initialize(self._writer())
            self._identity = _identity(self._path)
            if before is None or before == self._identity:
                return
            self._drop_connections()  # replaced between the check and the open: again
        raise StoreLockedError(  # pragma: no cover - three swaps in a row
            f"the event store {self._path!r} was replaced three times while opening it; retry"
        )

    def _check_existing(self) -> None:
        """Refuse a foreign, damaged or newer file before anything could change it."""
        with contextlib.suppress(OSError), open(self._path, "rb") as handle:  # noqa: PTH123
            head = handle.read(19)
            if head[: len(_SQLITE_MAGIC)] == _SQLITE_MAGIC and head[18:19] == b"\x02":
                return  # in WAL mode already: opening changes nothing before _initialize checks
        version = inspect_file(self._path, timeout=self._timeout)
        if version is None or version in _READABLE:
            return
        raise _version_error(self._path, version)

    def _drop_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()

    def _initialize(self, conn: sqlite3.Connection) -> None:
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None
        if tables and "meta" not in tables:  # tables only in the -wal of a foreign database
            self.close()
            raise StoreError(
                f"{self._path!r} is a SQLite database but not a stagegate event store "
                f"(it holds {', '.join(sorted(tables))}); choose another file"
            )
        try:
            if not tables:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(_META_DDL)
                    conn.execute(_EVENTS_DDL)
                    conn.execute(_PROCESSES_DDL)
                    conn.execute(_PROJECTION_DDL)
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?), (?, ?)",
                        ("schema_version", str(SCHEMA_VERSION), "application", "stagegate"),
                    )
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            row = conn.execute("SELECT value FROM meta WHERE key = ?", ("schema_version",))
            found = row.fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None
        if found is None or found[0] not in _READABLE:
            self.close()
            raise _version_error(self._path, None if found is None else found[0])
        self._version = int(found[0])

    def _check_same_file(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: refuse to write into a file that was swapped out."""
        if _identity(self._path) != self._identity:
            conn.execute("ROLLBACK")
            raise StoreReplacedError(
                f"the event store {self._path!r} was replaced (stagegate import --replace) "
                "while this process had it open; nothing was written: open it again and retry"
            )

    def _read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return work(self._writer())
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    # -- writing -------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The file's schema version as last seen (version 1 becomes 2 on the first write)."""
        return self._version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: bring a version 1 or 2 file to version 3.

        Version 1: adds the ``digest`` column and seals every stored opportunity's history as
        it stands, from its first event on (one pass over the table). Versions 1 and 2: builds
        the projection of every stored event (another pass). Another process may have migrated
        the file first: the version is read again under the write lock.
        """
        if self._version == SCHEMA_VERSION:
            return
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version == str(SCHEMA_VERSION):
            return
        if version == "1":
            self._seal_history(conn)
        conn.execute(_PROJECTION_DDL)
        conn.execute("DELETE FROM projection")
        _project_table(conn, "events")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    @staticmethod
    def _seal_history(conn: sqlite3.Connection) -> None:
        """Add the ``digest`` column to a version 1 file and seal every stored log."""
        conn.execute("ALTER TABLE events ADD COLUMN digest TEXT")
        links: dict[str, str | None] = {}
        updates: list[tuple[str, str, int]] = []
        for row in conn.execute(_SCAN).fetchall():
            event = _event(row)
            digest = event_digest(event, links.get(event.opportunity_id))
            links[event.opportunity_id] = digest
            updates.append((digest, event.opportunity_id, event.seq))
        conn.executemany(
            "UPDATE events SET digest = ? WHERE opportunity_id = ? AND seq = ?", updates
        )

    def upgrade(self) -> bool:
        """Migrate an older file to the current layout now, rather than on its first write.

        Returns:
            ``True`` when the file was migrated; ``False`` when it was current already.

        Raises:
            StoreError: the file cannot be written (see :meth:`append`).
        """
        conn = self._read(lambda conn: conn)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_same_file(conn)
                (version,) = conn.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
                self._migrate(conn)
                conn.execute("COMMIT")
                self._migrated()
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return bool(version != str(SCHEMA_VERSION))

    def _migrated(self) -> None:
        """After a write committed: the file is at the current version."""
        self._version = SCHEMA_VERSION

    @contextlib.contextmanager
    def _transaction(
        self, conn: sqlite3.Connection, *, migrate: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), all or nothing.

        Committed when the body ends without an error (unless it committed itself), rolled
        back whole on any error. Inside it the file is checked to be the one opened (not
        swapped by ``import --replace``) and, with ``migrate``, brought to the current
        schema version. SQLite's errors leave it as :class:`~stagegate.store.StoreError`
        subclasses; text or integers SQLite cannot store, as
        :class:`~stagegate.errors.EventLogError`.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_same_file(conn)
                if migrate:
                    self._migrate(conn)
                yield conn
                if conn.in_transaction:
                    conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        except (UnicodeEncodeError, OverflowError) as exc:
            raise EventLogError(
                f"cannot store the batch: {exc}; events hold text and ints"
            ) from None
        if migrate:
            self._migrated()

    def append(
        self,
        events: Sequence[Event],
        *,
        expected_seq: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Append a batch in one transaction, all or nothing; see :meth:`EventStore.append`.

        Raises:
            ConcurrencyError: an opportunity's log does not end where the batch starts.
            EventLogError: the batch is malformed, or holds text SQLite cannot store (lone
                surrogates) or an integer beyond 64 bits.
            StoreError: the file is locked for longer than ``timeout``, unwritable or damaged.
        """
        runs = check_batch(events, expected_seq=expected_seq)
        conn = self._read(lambda conn: conn)
        if not events:
            return
        batch = _sealables_of(events)
        with self._transaction(conn):
            self._write(conn, runs, events, batch, progress)

    def write_import(
        self,
        events: Sequence[Event],
        *,
        process: Process | None = None,
        record: ImportRecord | None = None,
        progress: Progress | None = None,
    ) -> ImportRecord | None:
        """Append an import's events, its process definition and its record in one transaction.

        Either all three are stored or none is: a process killed half-way leaves the store as
        it was. The events are checked like :meth:`append`, the process like
        :meth:`save_process` (one that uses Python callables is not stored). The record's ``id``
        and ``at`` are assigned here.

        Returns:
            The stored import record (``None`` without ``record``).

        Raises:
            ConcurrencyError: another writer appended to one of the opportunities first.
            StoreError: a different definition of the same process version is stored, or the
                store cannot be written (see :meth:`append`).
        """
        from stagegate.definition import process_to_json  # noqa: PLC0415 - loads lazily

        runs = check_batch(events)
        conn = self._read(lambda conn: conn)
        batch = _sealables_of(events)
        stored: ImportRecord | None = None
        definition = None
        if process is not None and process.serializable:
            definition = (process.name, process.version, process_to_json(process, indent=None))
        with self._transaction(conn):
            if definition is not None:
                _put_definition(conn, self._path, *definition)
            if record is not None:
                stored = _put_record(conn, record)
            self._write(conn, runs, events, batch, progress)
        return stored

    def _stage(self, events: Sequence[Event]) -> None:
        """Append a batch to a staging store: a new opportunity's run may start at any seq."""
        runs = check_batch(events)
        batch = _sealables_of(events)
        conn = self._read(lambda conn: conn)
        with self._transaction(conn, migrate=False):
            # A run that opens its deal, or continues a sealed staged run, is sealed now, so
            # a staging file swapped or linked into place is sealed already; a run that
            # continues a log kept elsewhere is sealed when it is copied there.
            links: dict[str, str | None] = {}
            unsealed: set[str] = set()
            for oid, (first, _) in runs.items():
                last, digest = _link(conn, oid)
                if last and first != last + 1:
                    raise ConcurrencyError(oid, first - 1, last)
                if first == 1 or digest is not None:
                    links[oid] = digest
                else:
                    unsealed.add(oid)
            conn.executemany(_INSERT, _seal_rows(events, batch, links, frozenset(unsealed)))
            _project(conn, batch.columns)

    def write_import_from(
        self,
        staging: str | os.PathLike[str],
        *,
        process: Process | None = None,
        record: ImportRecord | None = None,
    ) -> ImportRecord | None:
        """Copy every event of another store file into this one, in one transaction.

        Like :meth:`write_import` for events already staged in a store file (written by this
        class): each opportunity's staged events must continue its log here. The copy runs
        inside SQLite (``INSERT ... SELECT``), so it needs no memory per event.

        Raises:
            ConcurrencyError: a staged opportunity does not continue its log here.
            StoreError: see :meth:`write_import`.
        """
        from stagegate.definition import process_to_json  # noqa: PLC0415 - loads lazily

        conn = self._read(lambda conn: conn)
        definition = None
        if process is not None and process.serializable:
            definition = (process.name, process.version, process_to_json(process, indent=None))
        stored: ImportRecord | None = None
        try:
            conn.execute("ATTACH DATABASE ? AS staged", (os.fspath(staging),))
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            with self._transaction(conn):
                runs = conn.execute(_STAGED_RUNS).fetchall()
                for oid, first, last in runs:
                    if first != (last or 0) + 1:
                        raise ConcurrencyError(oid, first - 1, last or 0)
                if definition is not None:
                    _put_definition(conn, self._path, *definition)
                if record is not None:
                    stored = _put_record(conn, record)
                staged = {r[1] for r in conn.execute("PRAGMA staged.table_info(events)")}
                source = _COLUMNS if "digest" in staged else f"{_CONTENT}, NULL"
                try:
                    conn.execute(
                        f"INSERT INTO main.events ({_COLUMNS}) "  # noqa: S608 - constants
                        f"SELECT {source} FROM staged.events"
                    )
                except sqlite3.IntegrityError:
                    raise ConcurrencyError("(a staged opportunity)", 0, 1) from None
                _copy_projection(conn)
                _seal_copied(conn, runs)
        finally:
            try:
                conn.execute("DETACH DATABASE staged")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        return stored

    def imports(self) -> tuple[ImportRecord, ...]:
        """What each ``stagegate import`` into this store wrote and found, oldest first."""

        def work(conn: sqlite3.Connection) -> tuple[ImportRecord, ...]:
            listed = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'imports'"
            ).fetchone()
            if listed is None:
                return ()
            rows = conn.execute(f"SELECT {_IMPORT_COLUMNS} FROM imports ORDER BY id")  # noqa: S608
            return tuple(map(_import_record, rows))

        return self._read(work)

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and truncate the log to zero bytes.

        Waits at most one second for readers and writers; call it when they are done.

        Returns:
            ``True`` when the whole log was copied and truncated; ``False`` when a reader or
            writer kept part of it (nothing is lost: the log is copied later).
        """
        conn = self._writer()
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return not busy

    def backup(self, path: str | os.PathLike[str]) -> int:
        """Write a consistent copy of the store to ``path``, safe while others write to it.

        Uses SQLite's online backup from one read snapshot: the copy holds every batch committed
        before it started (those still in the write-ahead log included) and none after. The copy
        is written beside ``path`` under a temporary name and renamed into place at the end, so
        ``path`` never holds half a copy.

        Returns:
            The number of events in the copy.

        Raises:
            StoreError: ``path`` exists already, is the store itself, or cannot be written.
        """
        target = os.fspath(path)
        if os.path.lexists(target):
            raise StoreError(
                f"the backup target {target!r} exists already; choose a new file name (a "
                "backup never overwrites a file)"
            )
        folder = os.path.dirname(os.path.abspath(target))
        temporary = os.path.join(folder, f".{os.path.basename(target)}.backup-{os.getpid()}")
        source = self._connect(reader=True)
        try:
            copy = sqlite3.connect(temporary, isolation_level=None)
            try:
                source.backup(copy)
                (count,) = copy.execute("SELECT count(*) FROM events").fetchone()
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
            os.replace(temporary, target)
        except sqlite3.Error as exc:
            _unlink(temporary)
            raise store_error(target, exc, self._timeout) from None
        except OSError as exc:
            _unlink(temporary)
            raise StoreUnwritableError(
                f"cannot write the backup {target!r}: {exc.strerror or exc}; choose a writable "
                "folder with enough free space"
            ) from None
        finally:
            self._forget(source)
        return int(count)

    @staticmethod
    def _write(
        conn: sqlite3.Connection,
        runs: dict[str, tuple[int, int]],
        events: Sequence[Event],
        batch: EncodedBatch,
        progress: Progress | None = None,
    ) -> None:
        """Check, seal and insert inside the open transaction, then commit."""

        def last(oid: str) -> int:
            found = conn.execute(_LAST_SEQ, (oid,)).fetchone()[0]
            return 0 if found is None else int(found)

        # A run starting at 1 needs no read: the primary key refuses it if the log exists.
        tails = {oid: _link(conn, oid) for oid, run in runs.items() if run[0] > 1}
        error = conflicts(runs, ((oid, seq) for oid, (seq, _) in tails.items()))
        if error is None:
            links = {oid: digest for oid, (_, digest) in tails.items()}
            rows = _seal_rows(events, batch, links)
            conn.execute("SAVEPOINT batch")
            try:
                if progress is None:
                    conn.executemany(_INSERT, rows)
                else:
                    for start in range(0, len(rows), _PROGRESS_STEP):
                        conn.executemany(_INSERT, rows[start : start + _PROGRESS_STEP])
                        progress(min(start + _PROGRESS_STEP, len(rows)))
                _project(conn, batch.columns)
            except sqlite3.IntegrityError:
                # Undo this batch's rows but keep the write lock: the last seqs read next are
                # the ones the batch collided with.
                conn.execute("ROLLBACK TO batch")
                error = conflicts(runs, ((oid, last(oid)) for oid in runs))
                if error is None:  # pragma: no cover - the checks above rule this out
                    raise
        if error is not None:
            raise error
        conn.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------

    def load(self, opportunity_id: str) -> tuple[Event, ...]:
        """Return one opportunity's events in ``seq`` order; ``()`` if it has none."""
        sql = _LOAD if self._version > 1 else _LOAD_V1
        rows = self._read(lambda conn: conn.execute(sql, (opportunity_id,)).fetchall())
        return tuple(map(_event, rows))

    def last_seq(self, opportunity_id: str) -> int:
        """Return the ``seq`` of the opportunity's last event; ``0`` if it has none."""
        found = self._read(lambda conn: conn.execute(_LAST_SEQ, (opportunity_id,)).fetchone())
        return 0 if found[0] is None else int(found[0])

    def _store_definition(self, name: str, version: str, definition: str) -> str | None:
        conn = self._read(lambda conn: conn)
        with self._transaction(conn, migrate=False):
            conn.execute(_PROCESSES_DDL)
            conn.execute(
                "INSERT OR IGNORE INTO processes (name, version, definition) VALUES (?, ?, ?)",
                (name, version, definition),
            )
            row = conn.execute(
                "SELECT definition FROM processes WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        return None if row is None else str(row[0])

    def _definition(self, name: str, version: str) -> str | None:
        def work(conn: sqlite3.Connection) -> str | None:
            if not _has_processes(conn):
                return None
            row = conn.execute(
                "SELECT definition FROM processes WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
            return None if row is None else str(row[0])

        return self._read(work)

    def processes(self) -> list[tuple[str, str]]:
        """The (name, version) of every stored process definition, sorted."""

        def work(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            if not _has_processes(conn):
                return []
            rows = conn.execute("SELECT name, version FROM processes ORDER BY name, version")
            return [(str(name), str(version)) for name, version in rows]

        return self._read(work)

    def count(self) -> int:
        """Return the number of stored events.

        Read from the projection (one row per chunk, written in the same transaction as its
        events), so a store of millions of events answers at once; a file written before the
        projection (version 1 or 2) counts its table.
        """
        sql = _COUNTED if self._version == SCHEMA_VERSION else "SELECT count(*) FROM events"
        return int(self._read(lambda conn: conn.execute(sql).fetchone()[0]))

    def opportunity_ids(self) -> Iterator[str]:
        """Yield every opportunity id in sorted order, streaming from a snapshot."""
        return self._stream(_IDS, _first, DEFAULT_BATCH_SIZE)

    def scan(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Event]:
        """Yield every event ordered by ``(opportunity_id, seq)`` from a snapshot."""
        sql = _SCAN if self._version > 1 else _SCAN_V1
        return self._stream(sql, _event, batch_size_of(batch_size))

    def _stored_logs(self) -> Iterator[tuple[str, list[Event] | EventLogError]]:
        """Each stored log from one snapshot; a row that cannot be read spoils only its log."""
        sql = _SCAN if self._version > 1 else _SCAN_V1
        return logs_of_rows(self._stream(sql, tuple, DEFAULT_BATCH_SIZE), _event)

    def last_events(self, *, light: bool = False) -> Iterator[Event]:
        """Yield the last event of every opportunity in id order, found through the index.

        ``light=True`` leaves out gate reports and details (``None``): what a reader of the
        state each deal is in (stage, version, amount, close date) does not need to decode.
        """
        if light:
            sql = _LAST_STATES if self._version == SCHEMA_VERSION else _LAST_STATES_V1
        else:
            sql = _LAST_EVENTS if self._version == SCHEMA_VERSION else _LAST_EVENTS_V1
        return self._stream(sql, _event, DEFAULT_BATCH_SIZE)

    def scan_rows(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[EventRow]:
        """Yield the analytics columns of every event from a snapshot; no Events are built."""
        return self._stream(_SCAN_ROWS, _event_row, batch_size_of(batch_size))

    def to_frame(
        self,
        *,
        backend: str = "polars",
        columns: Sequence[str] | None = None,
        categorical: bool = False,
        segments: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        phases: Phases | None = None,
    ) -> Any:
        """The whole log as one frame, read column-wise from the projection; see the protocol.

        One read snapshot: events appended meanwhile are not seen. A version 1 or 2 file (no
        projection until its first write) is read from its events table instead, more slowly.
        """
        batch_size_of(batch_size)
        if self._closed:
            raise StoreClosedError(f"the event store {self._path!r}")
        conn = self._connect(reader=True)
        options: dict[str, Any] = {
            "backend": backend,
            "columns": columns,
            "segments": segments,
            "categorical": categorical,
        }
        try:
            conn.execute("BEGIN")  # the version, the count and the chunks: one snapshot
            (version,) = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if int(version) >= SCHEMA_VERSION and READ_IN_PLACE:
                # each column's bytes are read from the file as the frame is made: the
                # chunks are never all in memory beside it
                frame = _frame_of_stored(conn, phases, options)
            else:
                chunks = (
                    _read_projection(conn, phases)
                    if int(version) >= SCHEMA_VERSION
                    else _projected(conn, phases)
                )
                frame = None
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            self._forget(conn)
        if frame is None:
            frame = frame_of(chunks, **options)
            del chunks  # read once: their memory goes back to the system, not to the heap
        give_back_freed()
        return frame

    def _stream(
        self, sql: str, convert: Callable[[tuple[Any, ...]], _T], batch_size: int
    ) -> Iterator[_T]:
        if self._closed:
            raise StoreClosedError(f"the event store {self._path!r}")
        return self._rows(sql, convert, batch_size)

    def _rows(
        self, sql: str, convert: Callable[[tuple[Any, ...]], _T], batch_size: int
    ) -> Iterator[_T]:
        conn = self._connect(reader=True)
        try:
            cursor = conn.execute(sql)  # one statement: one read transaction, one snapshot
            while True:
                rows = cursor.fetchmany(batch_size)
                if not rows:
                    break
                yield from map(convert, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            self._forget(conn)
            self._trim_wal()

    def _trim_wal(self) -> None:
        """After a scan: checkpoint and truncate a log that grew past :data:`WAL_LIMIT`."""
        try:
            size = os.stat(f"{self._path}-wal").st_size
        except OSError:
            return
        if size > WAL_LIMIT and not self._closed:
            with contextlib.suppress(StoreError):
                self.checkpoint()

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (an unfinished scan then raises); closing twice is harmless."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _put_definition(
    conn: sqlite3.Connection, path: str, name: str, version: str, definition: str
) -> None:
    conn.execute(_PROCESSES_DDL)
    conn.execute(
        "INSERT OR IGNORE INTO processes (name, version, definition) VALUES (?, ?, ?)",
        (name, version, definition),
    )
    (stored,) = conn.execute(
        "SELECT definition FROM processes WHERE name = ? AND version = ?", (name, version)
    ).fetchone()
    if stored != definition:
        raise StoreError(
            f"the event store {path!r} holds a different definition of process {name!r} "
            f"version {version!r}; give the changed definition a new version"
        )


def _put_record(conn: sqlite3.Connection, record: ImportRecord) -> ImportRecord:
    conn.execute(_IMPORTS_DDL)
    at = now()
    cursor = conn.execute(
        f"INSERT INTO imports ({_IMPORT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            epoch_us(at),
            record.source,
            record.input_name,
            record.rows_read,
            record.rows_used,
            record.opportunities,
            record.events,
            _encode([dict(f) for f in record.findings]),
        ),
    )
    return attrs.evolve(record, id=int(cursor.lastrowid or 0), at=from_epoch_us(epoch_us(at)))


def _import_record(row: tuple[Any, ...]) -> ImportRecord:
    number, at_us, source, input_name, rows_read, rows_used, opportunities, events, found = row
    return ImportRecord(
        id=int(number),
        at=from_epoch_us(int(at_us)),
        source=str(source),
        input_name=str(input_name),
        rows_read=int(rows_read),
        rows_used=int(rows_used),
        opportunities=int(opportunities),
        events=int(events),
        findings=tuple(freeze(f) for f in _decode(found)),
    )


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _reopen(path: str, timeout: float, durable: bool) -> SQLiteStore:
    return SQLiteStore(path, timeout=timeout, durable=durable)
