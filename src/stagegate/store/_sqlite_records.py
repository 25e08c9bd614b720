"""The tables a SQLite store keeps beside its log: process definitions and import records.

``processes`` holds each stored process definition once per ``(name, version)``; ``imports``
one row per ``stagegate import`` (its counts and findings). Both are created on first use, so a
file that never stored one has no such table. The writers run inside the caller's write
transaction, with the events they belong to.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:")
>>> has_processes(conn)
False
>>> put_definition(conn, "deals.sqlite", "b2b", "1", '{"stages": []}')
>>> has_processes(conn), process_versions(conn), import_records(conn)
(True, [('b2b', '1')], ())
"""

from __future__ import annotations

import sqlite3

import attrs

from stagegate._time import epoch_us, from_epoch_us, now
from stagegate.store._stored import encode_json, import_record
from stagegate.store.base import ImportRecord, StoreError

__all__ = [
    "IMPORTS_DDL",
    "IMPORT_COLUMNS",
    "PROCESSES_DDL",
    "definition_of",
    "has_processes",
    "import_records",
    "process_versions",
    "put_definition",
    "put_record",
    "store_definition",
]

PROCESSES_DDL = (
    "CREATE TABLE IF NOT EXISTS processes (name TEXT NOT NULL, version TEXT NOT NULL, "
    "definition TEXT NOT NULL, PRIMARY KEY (name, version)) WITHOUT ROWID"
)
IMPORTS_DDL = (
    "CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, "
    "source TEXT NOT NULL, input_name TEXT NOT NULL, rows_read INTEGER NOT NULL, "
    "rows_used INTEGER NOT NULL, opportunities INTEGER NOT NULL, events INTEGER NOT NULL, "
    "findings TEXT NOT NULL)"
)
IMPORT_COLUMNS = (
    "id, at_us, source, input_name, rows_read, rows_used, opportunities, events, findings"
)


def has_processes(conn: sqlite3.Connection) -> bool:
    """Whether the file has a ``processes`` table (it stored a definition once)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'processes'"
    ).fetchone()
    return row is not None


def store_definition(
    conn: sqlite3.Connection, name: str, version: str, definition: str
) -> str | None:
    """Inside a write transaction: store a process definition unless that version is stored.

    Returns:
        The definition stored for that name and version (an earlier one wins).
    """
    conn.execute(PROCESSES_DDL)
    conn.execute(
        "INSERT OR IGNORE INTO processes (name, version, definition) VALUES (?, ?, ?)",
        (name, version, definition),
    )
    row = conn.execute(
        "SELECT definition FROM processes WHERE name = ? AND version = ?",
        (name, version),
    ).fetchone()
    return None if row is None else str(row[0])


def put_definition(
    conn: sqlite3.Connection, path: str, name: str, version: str, definition: str
) -> None:
    """Inside a write transaction: store a process definition, or check the one stored.

    Raises:
        StoreError: the store at ``path`` holds a different definition of that version.
    """
    conn.execute(PROCESSES_DDL)
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


def definition_of(conn: sqlite3.Connection, name: str, version: str) -> str | None:
    """The stored definition of a process version; ``None`` when none is stored."""
    if not has_processes(conn):
        return None
    row = conn.execute(
        "SELECT definition FROM processes WHERE name = ? AND version = ?",
        (name, version),
    ).fetchone()
    return None if row is None else str(row[0])


def process_versions(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """The (name, version) of every stored process definition, sorted."""
    if not has_processes(conn):
        return []
    rows = conn.execute("SELECT name, version FROM processes ORDER BY name, version")
    return [(str(name), str(version)) for name, version in rows]


def put_record(conn: sqlite3.Connection, record: ImportRecord) -> ImportRecord:
    """Inside a write transaction: store an import record; return it with its ``id`` and ``at``."""
    conn.execute(IMPORTS_DDL)
    at = now()
    cursor = conn.execute(
        f"INSERT INTO imports ({IMPORT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            epoch_us(at),
            record.source,
            record.input_name,
            record.rows_read,
            record.rows_used,
            record.opportunities,
            record.events,
            encode_json([dict(f) for f in record.findings]),
        ),
    )
    return attrs.evolve(record, id=int(cursor.lastrowid or 0), at=from_epoch_us(epoch_us(at)))


def import_records(conn: sqlite3.Connection) -> tuple[ImportRecord, ...]:
    """Every stored import record, oldest first; ``()`` when the file has none."""
    listed = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'imports'"
    ).fetchone()
    if listed is None:
        return ()
    rows = conn.execute(f"SELECT {IMPORT_COLUMNS} FROM imports ORDER BY id")  # noqa: S608
    return tuple(map(import_record, rows))
