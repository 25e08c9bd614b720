"""The table layout of :class:`~stagegate.store.PostgreSQLStore` and the SQL it runs.

Constants only, and :func:`create_tables`: the store decides when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "COLUMNS",
    "COPY_IN",
    "DDL",
    "IMPORT_COLUMNS",
    "INSERTS",
    "INSERTS_AFTER",
    "INSERT_UP_TO",
    "LAST_SEQS",
    "LOAD",
    "LOCK_TO_CONTINUE",
    "SCAN",
    "SCAN_ROWS",
    "SCHEMA_VERSION",
    "SELECT",
    "TAILS",
    "create_tables",
]

SCHEMA_VERSION = 1
"""The version of the table layout the PostgreSQL store writes."""


EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    opportunity_id  text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 1),
    kind            text   NOT NULL,
    at_us           bigint NOT NULL,
    stage           text   NOT NULL,
    from_stage      text,
    move            text,
    amount          text,
    close_date      date,
    actor           text   NOT NULL,
    reason          text,
    process         text   NOT NULL,
    process_version text   NOT NULL,
    subject         text,
    details         text,
    gate            text,
    digest          text,
    PRIMARY KEY (opportunity_id, seq)
)
"""
DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)",
    EVENTS_DDL,
    (
        'CREATE TABLE IF NOT EXISTS processes (name text COLLATE "C" NOT NULL, '
        'version text COLLATE "C" NOT NULL, definition text NOT NULL, '
        "PRIMARY KEY (name, version))"
    ),
    (
        "CREATE TABLE IF NOT EXISTS imports (id bigint GENERATED ALWAYS AS IDENTITY "
        "PRIMARY KEY, at_us bigint NOT NULL, source text NOT NULL, input_name text NOT NULL, "
        "rows_read bigint NOT NULL, rows_used bigint NOT NULL, opportunities bigint NOT NULL, "
        "events bigint NOT NULL, findings text NOT NULL)"
    ),
)
COLUMNS = (
    "opportunity_id, seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, "
    "reason, process, process_version, subject, details, gate, digest"
)
# close_date is a date in the table (for SQL users) and ISO text to the decoders
SELECT = COLUMNS.replace("close_date", "close_date::text")
COPY_IN = f"COPY events ({COLUMNS}) FROM STDIN"
INSERT_UP_TO = 16
"""Batches of at most this many events are one multi-row ``INSERT``; larger ones a ``COPY``."""
VALUES_ROW = (
    "(%s::text, %s::bigint, %s::text, %s::bigint, %s::text, %s::text, %s::text, %s::text, "
    "%s::date, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text)"
)
INSERTS_AFTER = {
    n: f"INSERT INTO events ({COLUMNS}) SELECT * FROM (VALUES "  # noqa: S608 - constants
    + ", ".join([VALUES_ROW] * n)
    + ") AS v WHERE EXISTS (SELECT 1 FROM events WHERE opportunity_id = %s AND seq = %s "
    "AND digest IS NOT DISTINCT FROM %s)"
    for n in range(1, 17)
}
INSERTS = {
    n: f"INSERT INTO events ({COLUMNS}) VALUES "  # noqa: S608 - constants
    + ", ".join(["(" + ", ".join(["%s"] * 17) + ")"] * n)
    for n in range(1, INSERT_UP_TO + 1)
}
LOAD = f"SELECT {SELECT} FROM events WHERE opportunity_id = %s ORDER BY seq"  # noqa: S608
SCAN = f"SELECT {SELECT} FROM events ORDER BY opportunity_id, seq"  # noqa: S608
SCAN_ROWS = (
    "SELECT opportunity_id, at_us, seq, stage, amount, close_date::text, kind, from_stage, move "
    "FROM events ORDER BY opportunity_id, seq"
)
TAILS = (
    "SELECT DISTINCT ON (opportunity_id) opportunity_id, seq, digest FROM events "
    "WHERE opportunity_id = ANY(%s) ORDER BY opportunity_id, seq DESC"
)
LOCK_TO_CONTINUE = "LOCK TABLE events IN ROW EXCLUSIVE MODE"
"""Taken before reading the logs a batch continues: an import that replaces the store (``LOCK
... EXCLUSIVE``) then waits for the batch, or the batch for it, so no batch continues a log
that was replaced between reading its last event and writing after it."""
LAST_SEQS = (
    "SELECT opportunity_id, max(seq) FROM events WHERE opportunity_id = ANY(%s) "
    "GROUP BY opportunity_id"
)
IMPORT_COLUMNS = (
    "id, at_us, source, input_name, rows_read, rows_used, opportunities, events, findings"
)


def create_tables(
    conn: psycopg.Connection[Any], schema: str
) -> tuple[set[str], bool, tuple[Any, ...] | None]:
    """Create ``schema`` and the tables unless they exist, in one transaction.

    Returns the tables the schema held before, whether they are another application's (tables
    but no ``meta``), and the stored ``schema_version`` row (``None`` for a foreign schema).
    """
    from psycopg import sql  # noqa: PLC0415 - the postgresql extra is optional

    with conn.transaction():
        # One creator at a time: CREATE ... IF NOT EXISTS races with itself.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        }
        foreign = bool(tables) and "meta" not in tables
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists is None:  # a schema a DBA made for us needs no CREATE on the database
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        if not tables:
            for statement in DDL:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s), (%s, %s) ON CONFLICT DO NOTHING",
                ("schema_version", str(SCHEMA_VERSION), "application", "stagegate"),
            )
        found = (
            None
            if foreign
            else conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        )
    return tables, foreign, found
