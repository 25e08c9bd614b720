"""The layout of a SQLite store file: its tables, its SQL, its versions and their migration.

Version 3 (:data:`SCHEMA_VERSION`) is the one written: ``meta`` (``schema_version``,
``application``), ``events`` keyed by ``(opportunity_id, seq)`` with a ``digest`` column,
``processes``, and the projection (:mod:`stagegate.store._sqlite_projection`); ``imports`` is
made by the first import (:mod:`stagegate.store._sqlite_records`). Versions 1 (no digests)
and 2 (no projection) are read as they are, with the ``*_V1`` texts for version 1, and
:func:`migrate` brings them to version 3 inside the first write's transaction.
:func:`inspect_file` reads a file's version read-only, so a foreign or newer file is refused
before anything could change it.

>>> import os, tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     path = os.path.join(folder, "deals.sqlite")
...     before = inspect_file(path)
...     conn = sqlite3.connect(path, isolation_level=None)
...     create_tables(conn)
...     conn.close()
...     before, inspect_file(path)
(None, '3')
"""

# ruff: noqa: PTH110, PTH116 - str paths, as the store keeps them

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from stagegate.integrity import event_digest
from stagegate.store._sqlite_errors import store_error
from stagegate.store._sqlite_projection import PROJECTION_DDL, project_table
from stagegate.store._sqlite_records import PROCESSES_DDL
from stagegate.store._stored import stored_event
from stagegate.store.base import StoreDamagedError, StoreError, StoreUnwritableError

__all__ = [
    "COLUMNS",
    "CONTENT_COLUMNS",
    "IDS",
    "INSERT",
    "LAST_EVENTS",
    "LAST_EVENTS_V1",
    "LAST_LINK",
    "LAST_SEQ",
    "LAST_STATES",
    "LAST_STATES_V1",
    "LOAD",
    "LOAD_V1",
    "READABLE",
    "SCAN",
    "SCAN_ROWS",
    "SCAN_V1",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "STAGED_RUNS",
    "check_layout",
    "create_tables",
    "inspect_file",
    "last_link",
    "migrate",
    "stored_seq",
    "version_error",
]

SCHEMA_VERSION = 3
"""The version of the file layout a store writes (it also reads, and migrates, 1 and 2)."""
_OLDEST_VERSION = 1
READABLE = {str(v) for v in range(_OLDEST_VERSION, SCHEMA_VERSION + 1)}
"""The ``schema_version`` texts a store opens."""

SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first bytes of every SQLite database file."""

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
_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

CONTENT_COLUMNS = (
    "opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, "
    "reason, process, process_version, subject, details, gate"
)
"""The stored columns of an event but its digest, in table order."""
COLUMNS = CONTENT_COLUMNS + ", digest"
"""Every column of ``events``, in table order."""
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join('?' * 17)})"  # noqa: S608 - constant
LOAD = f"SELECT {COLUMNS} FROM events WHERE opportunity_id = ? ORDER BY seq"  # noqa: S608
SCAN = f"SELECT {COLUMNS} FROM events ORDER BY opportunity_id, seq"  # noqa: S608
# A version 1 file, read before its first write migrates it: no digests yet.
LOAD_V1 = f"SELECT {CONTENT_COLUMNS}, NULL FROM events WHERE opportunity_id = ? ORDER BY seq"  # noqa: S608
SCAN_V1 = f"SELECT {CONTENT_COLUMNS}, NULL FROM events ORDER BY opportunity_id, seq"  # noqa: S608
LAST_LINK = "SELECT seq, digest FROM events WHERE opportunity_id = ? ORDER BY seq DESC LIMIT 1"
SCAN_ROWS = (
    "SELECT opportunity_id, at_us, seq, stage, amount, close_date, kind, from_stage, move "
    "FROM events ORDER BY opportunity_id, seq"
)
LAST_SEQ = "SELECT max(seq) FROM events WHERE opportunity_id = ?"
STAGED_RUNS = (
    "SELECT s.opportunity_id, min(s.seq), (SELECT max(m.seq) FROM main.events m "
    "WHERE m.opportunity_id = s.opportunity_id) FROM staged.events s GROUP BY s.opportunity_id"
)
IDS = "SELECT DISTINCT opportunity_id FROM events ORDER BY opportunity_id"
# The last event of every opportunity: the primary key finds each one without reading the rest.
_HEADS = (
    "FROM events JOIN (SELECT opportunity_id AS head_id, max(seq) AS head_seq FROM events "
    "GROUP BY opportunity_id) ON opportunity_id = head_id AND seq = head_seq ORDER BY head_id"
)
LAST_EVENTS = f"SELECT {COLUMNS} {_HEADS}"
LAST_EVENTS_V1 = f"SELECT {CONTENT_COLUMNS}, NULL {_HEADS}"
_STATE = (
    "opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, "
    "reason, process, process_version, subject, NULL, NULL"
)
LAST_STATES = f"SELECT {_STATE}, digest {_HEADS}"
LAST_STATES_V1 = f"SELECT {_STATE}, NULL {_HEADS}"


def create_tables(conn: sqlite3.Connection) -> None:
    """Make the tables of an empty file, at :data:`SCHEMA_VERSION`, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_META_DDL)
        conn.execute(_EVENTS_DDL)
        conn.execute(PROCESSES_DDL)
        conn.execute(PROJECTION_DDL)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?), (?, ?)",
            ("schema_version", str(SCHEMA_VERSION), "application", "stagegate"),
        )
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def last_link(conn: sqlite3.Connection, oid: str) -> tuple[int, str | None]:
    """The last stored seq of ``oid`` and its digest (``(0, None)``: no log yet)."""
    found = conn.execute(LAST_LINK, (oid,)).fetchone()
    return (0, None) if found is None else (stored_seq(oid, found[0]), found[1])


def stored_seq(oid: str, value: object) -> int:
    """A ``seq`` read back from the file (``None``: no log yet, ``0``).

    Raises:
        StoreDamagedError: it is not an integer (the file was changed outside stagegate).
    """
    if value is None:
        return 0
    if type(value) is not int:
        raise StoreDamagedError(
            f"opportunity {oid!r} has a stored seq {value!r} that is not an integer; the file "
            "was changed outside stagegate: restore it from a backup"
        )
    return value


def check_layout(conn: sqlite3.Connection, path: str, version: str) -> None:
    """Refuse a file whose tables do not have the layout its ``schema_version`` claims.

    A version 1 file is read without digests; a sealed file set back to version 1 by hand
    would pass ``verify`` whatever was edited in it.

    Raises:
        StoreDamagedError: a file claiming version 1 whose events carry a ``digest`` column.
    """
    if version != "1":
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "digest" in columns:
        raise StoreDamagedError(
            f"the event store {path!r} says it is schema version 1 (before digests), but its "
            "events carry digests: the file was changed outside stagegate; restore it from a "
            "backup"
        )


def version_error(path: str, version: str | None) -> StoreError:
    """The error for a store file whose schema version this stagegate does not read."""
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
    if head[: len(SQLITE_MAGIC)] != SQLITE_MAGIC:
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
    if "schema_version" not in rows:  # another application's table named meta
        raise StoreError(
            f"{text!r} is a SQLite database but not a stagegate event store (its meta table "
            "has no schema_version); choose another file"
        )
    return rows["schema_version"]


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


def migrate(conn: sqlite3.Connection, *, most: int) -> None:
    """Inside a write transaction: bring a version 1 or 2 file to version 3.

    Version 1: adds the ``digest`` column and seals every stored opportunity's history as
    it stands, from its first event on (one pass over the table). Versions 1 and 2: builds
    the projection of every stored event, in chunks of at most ``most`` events (another
    pass). Another process may have migrated the file first: the version is read here, under
    the write lock.
    """
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version == str(SCHEMA_VERSION):
        return
    if version == "1":
        _seal_history(conn)
    conn.execute(PROJECTION_DDL)
    conn.execute("DELETE FROM projection")
    project_table(conn, "events", most=most)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _seal_history(conn: sqlite3.Connection) -> None:
    """Add the ``digest`` column to a version 1 file and seal every stored log."""
    conn.execute("ALTER TABLE events ADD COLUMN digest TEXT")
    links: dict[str, str | None] = {}
    updates: list[tuple[str, str, int]] = []
    for row in conn.execute(SCAN).fetchall():
        event = stored_event(row)
        digest = event_digest(event, links.get(event.opportunity_id))
        links[event.opportunity_id] = digest
        updates.append((digest, event.opportunity_id, event.seq))
    conn.executemany("UPDATE events SET digest = ? WHERE opportunity_id = ? AND seq = ?", updates)
