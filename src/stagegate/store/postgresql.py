"""An event store in a PostgreSQL database, for teams whose services write at once (psycopg 3).

Install the extra: ``pip install 'stagegate[postgresql]'``. Open it with a ``postgresql://`` URL
(any libpq connection URL); the store keeps its tables in one schema of that database (default
``stagegate``, or ``?schema=NAME`` in the URL, or ``schema=``), created on first use, so it sits
beside a CRM's own tables without touching them.

Layout, the same columns as :class:`~stagegate.store.SQLiteStore`: a table ``events`` keyed by
``(opportunity_id, seq)`` (the primary key; ``opportunity_id`` in the ``"C"`` collation, so ids
sort the same everywhere), ``at_us`` integer microseconds since the Unix epoch in UTC, amounts as
exact decimal text, ``close_date`` a ``date``, details and gate reports JSON text with sorted
keys, and each event's ``digest`` (see :mod:`stagegate.integrity`); tables ``processes``,
``imports`` and ``meta`` (``schema_version``, currently ``1``).

Concurrency is the database's: a batch is one transaction (more than a few events are written
with ``COPY``), or, for a few events that continue a log whose last event this store object has
seen, one ``INSERT`` that inserts only if that event is still the one stored. Two writers that
continue the same log both try to insert the same ``(opportunity_id, seq)``; the primary key lets
one commit, and the other gets :class:`~stagegate.errors.ConcurrencyError` with nothing written.
A writer killed mid-batch leaves nothing behind: the server rolls back its transaction.

Text: PostgreSQL cannot store the character NUL (code point 0) in text; an event holding one is
refused with :class:`~stagegate.errors.EventLogError` and nothing is written.

Threads: a store may be shared between threads; each gets a connection of its own, made on first
use. Each scan reads through a connection of its own in one ``REPEATABLE READ`` transaction (a
consistent snapshot). Processes: a store pickles as its URL and schema.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from stagegate._progress import Phases, phase_of
from stagegate._time import epoch_us, from_epoch_us, now
from stagegate.errors import ConcurrencyError, EventLogError
from stagegate.events import Event
from stagegate.store._columnar import ColumnarError, _libraries, requested
from stagegate.store._pg_frame import (
    copy_statement,
    frame_of_tables,
    parsed_pieces,
    pieces,
    stored_columns,
)
from stagegate.store._pg_schema import (
    COPY_IN,
    IMPORT_COLUMNS,
    INSERT_UP_TO,
    INSERTS,
    INSERTS_AFTER,
    LAST_SEQS,
    LOAD,
    LOCK_TO_CONTINUE,
    SCAN,
    SCAN_ROWS,
    SCHEMA_VERSION,
    TAILS,
    create_tables,
)
from stagegate.store._pg_url import (
    DEFAULT_SCHEMA,
    is_postgresql_url,
    psycopg_module,
    redact,
    split_url,
)
from stagegate.store._rows import EncodedBatch, seal_rows, sealables_of
from stagegate.store._stored import encode_json, import_record, stored_event, stored_row
from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    EventRow,
    EventStore,
    ImportRecord,
    Progress,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreUnwritableError,
    batch_size_of,
    check_batch,
    conflicts,
    logs_of_rows,
    stored_definition,
    unencodable,
)
from stagegate.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    import psycopg

    from stagegate.process import Process

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "PostgreSQLStore",
    "is_postgresql_url",
]

_T = TypeVar("_T")
_PROGRESS_STEP = 20_000
_LONGEST_WAIT_MS = 2**31 - 1
"""The longest ``lock_timeout`` PostgreSQL takes, in milliseconds."""
_TAILS_KEPT = 100_000
"""How many opportunities' last (seq, digest) a store remembers for one-statement appends."""


class PostgreSQLStore(EventStore):
    """An event store in a PostgreSQL database; see the module docs.

    Args:
        url: a ``postgresql://`` URL (libpq's form: user, password, host, port, database and
            query options such as ``sslmode`` or ``host=/run/postgresql`` for a socket); an
            extra ``schema=NAME`` in its query names the schema the tables live in.
        schema: the schema (default :data:`DEFAULT_SCHEMA`); created when missing.
        timeout: seconds to wait for the connection and for a lock another writer holds.

    Raises:
        StoreError: the URL is malformed, the server cannot be reached or refuses the login,
            the schema holds tables that are not a stagegate store, or another layout version.
    """

    def __init__(self, url: str, *, schema: str | None = None, timeout: float = 30.0) -> None:
        self._url = url
        self._libpq, self._schema = split_url(url, schema)
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._pid = os.getpid()
        self._closed = False
        self._tails: dict[str, tuple[int, str | None]] = {}  # see _append_at_once
        self._initialize(self._writer())

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return f"PostgreSQLStore({redact(self._url)!r}, schema={self._schema!r}{closed})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._url, self._schema, self._timeout))

    @property
    def schema(self) -> str:
        """The database schema holding the store's tables."""
        return self._schema

    @property
    def where(self) -> str:
        """The store's URL without its password, and its schema: for messages."""
        return f"{redact(self._url)} (schema {self._schema})"

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        pg = psycopg_module()
        self._disown_after_fork()
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"the event store {self.where}")
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self._libpq,
                autocommit=True,
                connect_timeout=_connect_timeout(self._timeout),
                application_name="stagegate",
            )
        except pg.Error as exc:
            raise StoreError(
                f"cannot connect to the event store {self.where}: {_first_line(exc)}; check "
                "the URL (user, host, port, database), that the server runs and accepts you"
            ) from None
        try:
            conn.execute(  # one round trip
                "SELECT set_config('search_path', %s, false), set_config('TimeZone', 'UTC', "
                "false), set_config('DateStyle', 'ISO', false), "
                "set_config('lock_timeout', %s, false)",
                (self._schema, _lock_timeout(self._timeout)),
            )
        except pg.Error as exc:
            conn.close()
            raise self._error(exc) from None
        with self._lock:
            if self._closed:
                conn.close()
                raise StoreClosedError(f"the event store {self.where}")
            self._connections.append(conn)
        return conn

    def _disown_after_fork(self) -> None:
        """In a forked child, drop the parent's connections: closing one ends its session."""
        if self._pid != os.getpid():
            with self._lock:
                self._pid, self._connections, self._local = os.getpid(), [], threading.local()

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def _writer(self) -> psycopg.Connection[Any]:
        """This thread's connection, made on first use (again after a fork or a lost one)."""
        self._disown_after_fork()
        if self._closed:
            raise StoreClosedError(f"the event store {self.where}")
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            if conn is not None:
                self._forget(conn)
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _error(self, exc: Exception) -> StoreError:
        """The typed error for a failed database call."""
        pg = psycopg_module()
        errors = pg.errors
        text = _first_line(exc)
        if self._closed:
            return StoreClosedError(f"the event store {self.where}")
        if isinstance(exc, errors.QueryCanceled):
            return StoreLockedError(
                f"a call on the event store {self.where} was canceled by the server ({text}), "
                "by its statement_timeout or an administrator; nothing was written: retry, or "
                "raise statement_timeout for this user"
            )
        if isinstance(exc, errors.LockNotAvailable):
            return StoreLockedError(
                f"the event store {self.where} stayed locked by another connection for "
                f"{self._timeout:g} s ({text}); nothing was written: retry later or pass a "
                "longer timeout="
            )
        if isinstance(exc, errors.DiskFull):
            return StoreUnwritableError(
                f"the database of the event store {self.where} is out of disk space ({text}); "
                "nothing was written: free some space and retry"
            )
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return StoreUnwritableError(
                f"the event store {self.where} is read-only here ({text}): a standby server, "
                "or default_transaction_read_only is on; nothing was written: connect to the "
                "primary, or turn default_transaction_read_only off for this user"
            )
        if isinstance(exc, errors.InsufficientPrivilege):
            return StoreUnwritableError(
                f"the event store {self.where} cannot be written by this user ({text}); "
                "nothing was written: grant it CREATE on the database and write on the schema"
            )
        if isinstance(exc, pg.OperationalError):
            return StoreError(
                f"lost the connection to the event store {self.where} ({text}); nothing was "
                "written by the failed call: check the server and retry"
            )
        return StoreError(f"cannot use the event store {self.where}: {text}")

    def _call(self, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        conn = self._writer()
        pg = psycopg_module()
        try:
            return work(conn)
        except pg.Error as exc:
            raise self._error(exc) from None

    def _initialize(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema and tables unless they exist; refuse a foreign or newer layout."""
        pg = psycopg_module()
        try:
            tables, foreign, found = create_tables(conn, self._schema)
        except pg.Error as exc:
            error = self._error(exc)
            self.close()
            raise error from None
        if foreign:
            self.close()
            raise StoreError(
                f"the schema {self._schema!r} of {redact(self._url)} holds tables that are not "
                f"a stagegate event store ({', '.join(sorted(tables))}); choose another schema "
                "(?schema=NAME)"
            )
        if found is None or found[0] != str(SCHEMA_VERSION):
            self.close()
            version = None if found is None else found[0]
            advice = (
                "upgrade stagegate to read it"
                if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION
                else "it was not written by this stagegate; choose another schema"
            )
            raise StoreError(
                f"the event store {self.where} has layout version {version!r}, this stagegate "
                f"reads version {SCHEMA_VERSION}: {advice}"
            )

    # -- writing -------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[Event],
        *,
        expected_seq: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Append a batch all or nothing: one statement, or one transaction with ``COPY``.

        See :meth:`EventStore.append` and the module docs.

        Raises:
            ConcurrencyError: an opportunity's log does not end where the batch starts (another
                writer's batch committed first, or is committing: the primary key decides).
            EventLogError: the batch is malformed, or holds what PostgreSQL cannot store (a NUL
                character in text, a ``seq`` beyond 64 bits, an opportunity id too long for the
                primary key).
            StoreError: the server cannot be reached, or the store cannot be written.
        """
        runs = check_batch(events, expected_seq=expected_seq)
        conn = self._writer()
        if not events:
            return
        if len(events) <= INSERT_UP_TO and self._append_at_once(conn, runs, events):
            if progress is not None:
                progress(len(events))
            return
        self._transaction(conn, [(runs, events)], progress, before=None)

    def _append_at_once(
        self,
        conn: psycopg.Connection[Any],
        runs: dict[str, tuple[int, int]],
        events: Sequence[Event],
    ) -> bool:
        """A few events in one statement, one round trip; ``False``: take the long way.

        Possible when every run opens its log (the primary key refuses an existing one) or the
        batch continues one log whose last event this store has seen: its (seq, digest) never
        change, and the statement inserts only if that event is still the one stored, so a
        deleted or replaced store (or a changed row) inserts nothing and falls back.
        """
        pg = psycopg_module()
        (oid, (first, _)), *others = runs.items()
        if others and any(run[0] != 1 for run in runs.values()):
            return False
        link: str | None = None
        if first > 1:
            known = self._tails.get(oid)  # one read: another thread may clear the dict
            if others or known is None or known[0] != first - 1:
                return False
            link = known[1]
        links = {oid: link} if first > 1 else {}
        sealed = seal_rows(events, sealables_of(events), links)
        values = [value for row in sealed for value in row]
        try:
            if first == 1:
                cursor = conn.execute(INSERTS[len(sealed)], values)
            else:
                cursor = conn.execute(INSERTS_AFTER[len(sealed)], [*values, oid, first - 1, link])
        except pg.errors.UniqueViolation:
            raise self._conflict(conn, runs) from None
        except (
            pg.errors.DataError,
            pg.errors.CharacterNotInRepertoire,
            pg.errors.ProgramLimitExceeded,
        ) as exc:
            raise _unstorable(exc) from None
        except pg.Error as exc:
            raise self._error(exc) from None
        if cursor.rowcount != len(sealed):
            return False
        self._remember(sealed)
        return True

    def _remember(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Keep the last (seq, digest) of each opportunity in ``rows`` (stored, so immutable)."""
        if len(self._tails) > _TAILS_KEPT:
            self._tails.clear()
        for row in rows:
            self._tails[row[0]] = (row[1], row[-1])

    def write_import(
        self,
        events: Sequence[Event],
        *,
        process: Process | None = None,
        record: ImportRecord | None = None,
        progress: Progress | None = None,
        replace: bool = False,
    ) -> ImportRecord | None:
        """Append an import's events, its process definition and its record in one transaction.

        Like :meth:`~stagegate.store.SQLiteStore.write_import`: either all three are stored or
        none. With ``replace=True`` the same transaction first deletes every stored event,
        process definition and import record, so readers see the old store or the new one.

        Returns:
            The stored import record (``None`` without ``record``).

        Raises:
            ConcurrencyError: another writer appended to one of the opportunities first.
            StoreError: a different definition of the same process version is stored, or the
                store cannot be written.
        """
        runs = check_batch(events)
        return self._import([(runs, events)], process, record, progress, replace=replace)

    def write_import_from(
        self,
        source: EventStore,
        *,
        process: Process | None = None,
        record: ImportRecord | None = None,
        replace: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> ImportRecord | None:
        """Copy every event of another store into this one in one transaction, in bounded memory.

        Like :meth:`write_import` for events held in another store (a staging SQLite file, or a
        whole SQLite store moving to PostgreSQL): each opportunity's events must continue its
        log here; events that carry digests must chain as they are (so the copy is verified).

        Raises:
            ConcurrencyError: a copied opportunity does not continue its log here.
            EventLogError: a copied event's digest does not chain.
            StoreError: see :meth:`write_import`.
        """
        size = batch_size_of(batch_size)

        def batches() -> Iterator[tuple[dict[str, tuple[int, int]], Sequence[Event]]]:
            chunk: list[Event] = []
            for event in source.scan(batch_size=size):
                chunk.append(event)
                if len(chunk) >= size:
                    yield check_batch(chunk), chunk
                    chunk = []
            if chunk:
                yield check_batch(chunk), chunk

        return self._import(batches(), process, record, None, replace=replace)

    def _import(
        self,
        batches: Iterable[tuple[dict[str, tuple[int, int]], Sequence[Event]]],
        process: Process | None,
        record: ImportRecord | None,
        progress: Progress | None,
        *,
        replace: bool,
    ) -> ImportRecord | None:
        conn = self._writer()
        definition = None
        if process is not None and process.serializable:
            definition = (process.name, process.version, stored_definition(process))
        stored: list[ImportRecord] = []

        def before(conn: psycopg.Connection[Any]) -> None:
            if replace:
                conn.execute("LOCK TABLE events, processes, imports IN EXCLUSIVE MODE")
                conn.execute("DELETE FROM events")
                conn.execute("DELETE FROM processes")
                conn.execute("DELETE FROM imports")
            if definition is not None:
                self._put_definition(conn, *definition)
            if record is not None:
                stored.append(_put_record(conn, record))

        self._transaction(conn, batches, progress, before=before)
        return stored[0] if stored else None

    def _transaction(
        self,
        conn: psycopg.Connection[Any],
        batches: Iterable[tuple[dict[str, tuple[int, int]], Sequence[Event]]],
        progress: Progress | None,
        *,
        before: Callable[[psycopg.Connection[Any]], None] | None,
    ) -> None:
        """Check, seal and copy batches in one transaction; map failures to typed errors."""
        pg = psycopg_module()
        errors = pg.errors
        current: dict[str, tuple[int, int]] = {}
        written: list[tuple[Any, ...]] = []
        try:
            with conn.transaction():
                if before is not None:
                    before(conn)
                for runs, events in batches:
                    current = runs
                    sealed = self._write(conn, runs, events, sealables_of(events), progress)
                    if len(sealed) <= INSERT_UP_TO:  # the writes of a service, not an import
                        written.extend(sealed)
            if before is not None:
                self._tails.clear()  # an import may have replaced every log
            self._remember(written)
        except errors.UniqueViolation:
            # Another writer's batch holds one of these (opportunity_id, seq): it committed.
            raise self._conflict(conn, current) from None
        except (
            errors.DataError,
            errors.CharacterNotInRepertoire,
            errors.ProgramLimitExceeded,  # an opportunity id too long for the primary key
        ) as exc:
            raise _unstorable(exc) from None
        except pg.Error as exc:
            raise self._error(exc) from None
        except (UnicodeEncodeError, OverflowError) as exc:
            raise EventLogError(
                f"cannot store the batch: {exc}; events hold text and ints"
            ) from None

    def _write(
        self,
        conn: psycopg.Connection[Any],
        runs: dict[str, tuple[int, int]],
        events: Sequence[Event],
        encoded: EncodedBatch,
        progress: Progress | None,
    ) -> list[tuple[Any, ...]]:
        """Inside the transaction: check each run continues its log, seal, and copy."""
        continued = [oid for oid, run in runs.items() if run[0] > 1]
        tails: dict[str, tuple[int, str | None]] = {}
        if continued:
            conn.execute(LOCK_TO_CONTINUE)
            for oid, seq, digest in conn.execute(TAILS, (continued,)):
                tails[oid] = (int(seq), digest)
        error = conflicts(runs, ((oid, tails.get(oid, (0, None))[0]) for oid in continued))
        if error is not None:
            raise error
        links = {oid: digest for oid, (_, digest) in tails.items()}
        sealed = seal_rows(events, encoded, links)
        self._copy(conn, sealed, progress)
        return sealed

    @staticmethod
    def _copy(
        conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]], progress: Progress | None
    ) -> None:
        if len(rows) <= INSERT_UP_TO:  # one statement: cheaper than a COPY for a few rows
            conn.execute(INSERTS[len(rows)], [value for row in rows for value in row])
            if progress is not None:
                progress(len(rows))
            return
        with conn.cursor() as cursor, cursor.copy(COPY_IN) as copy:
            write = copy.write_row
            step = _PROGRESS_STEP if progress is not None else len(rows)
            for start in range(0, len(rows), step):
                for row in rows[start : start + step]:
                    write(row)
                if progress is not None:
                    progress(min(start + step, len(rows)))

    def _conflict(
        self, conn: psycopg.Connection[Any], runs: dict[str, tuple[int, int]]
    ) -> ConcurrencyError:
        pg = psycopg_module()
        try:
            found = dict(conn.execute(LAST_SEQS, (list(runs),)).fetchall())
        except pg.Error as exc:
            raise self._error(exc) from None
        error = conflicts(runs, ((oid, int(found.get(oid, 0))) for oid in runs))
        if error is None:  # pragma: no cover - the key refused a seq someone else holds
            oid = next(iter(runs))
            return ConcurrencyError(oid, runs[oid][0] - 1, int(found.get(oid, 0)))
        return error

    def _put_definition(
        self, conn: psycopg.Connection[Any], name: str, version: str, definition: str
    ) -> None:
        stored = _upsert_definition(conn, name, version, definition)
        if stored != definition:
            raise StoreError(
                f"the event store {self.where} holds a different definition of process "
                f"{name!r} version {version!r}; give the changed definition a new version"
            )

    def _store_definition(self, name: str, version: str, definition: str) -> str | None:
        def work(conn: psycopg.Connection[Any]) -> str:
            with conn.transaction():
                return _upsert_definition(conn, name, version, definition)

        return self._call(work)

    # -- reading -------------------------------------------------------------------------

    def load(self, opportunity_id: str) -> tuple[Event, ...]:
        """Return one opportunity's events in ``seq`` order; ``()`` if it has none."""
        if self._never_stored(opportunity_id):
            return ()
        rows = self._call(lambda conn: conn.execute(LOAD, (opportunity_id,)).fetchall())
        events = tuple(map(stored_event, rows))
        if rows:
            self._remember(rows[-1:])
        return events

    def last_seq(self, opportunity_id: str) -> int:
        """Return the ``seq`` of the opportunity's last event; ``0`` if it has none."""
        if self._never_stored(opportunity_id):
            return 0
        found = self._call(
            lambda conn: conn.execute(
                "SELECT opportunity_id, seq, digest FROM events WHERE opportunity_id = %s "
                "ORDER BY seq DESC LIMIT 1",
                (opportunity_id,),
            ).fetchone()
        )
        if found is None:
            return 0
        self._remember([found])
        return int(found[1])

    def count(self) -> int:
        """Return the number of stored events (counts the table: linear in its size)."""
        found = self._call(lambda conn: conn.execute("SELECT count(*) FROM events").fetchone())
        return 0 if found is None else int(found[0])

    def held(self, opportunity_ids: Iterable[str]) -> set[str]:
        """Which of ``opportunity_ids`` the store holds events of (one query)."""
        wanted = [oid for oid in dict.fromkeys(opportunity_ids) if not self._never_stored(oid)]
        rows = self._call(
            lambda conn: conn.execute(
                "SELECT DISTINCT opportunity_id FROM events WHERE opportunity_id = ANY(%s)",
                (wanted,),
            ).fetchall()
        )
        return {str(row[0]) for row in rows}

    def _never_stored(self, opportunity_id: str) -> bool:
        """Whether the id is one PostgreSQL cannot hold (a NUL, a lone surrogate): none stored.

        As SQLite answers for an id it does not hold, rather than a server error.
        """
        if self._closed:
            raise StoreClosedError(f"the event store {self.where}")
        return "\x00" in opportunity_id or unencodable(opportunity_id)

    def _definition(self, name: str, version: str) -> str | None:
        found = self._call(
            lambda conn: conn.execute(
                "SELECT definition FROM processes WHERE name = %s AND version = %s",
                (name, version),
            ).fetchone()
        )
        return None if found is None else str(found[0])

    def processes(self) -> list[tuple[str, str]]:
        """The (name, version) of every stored process definition, sorted."""
        rows = self._call(
            lambda conn: conn.execute(
                "SELECT name, version FROM processes ORDER BY name, version"
            ).fetchall()
        )
        return [(str(name), str(version)) for name, version in rows]

    def imports(self) -> tuple[ImportRecord, ...]:
        """What each import into this store wrote and found, oldest first."""
        rows = self._call(
            lambda conn: conn.execute(
                f"SELECT {IMPORT_COLUMNS} FROM imports ORDER BY id"  # noqa: S608 - constant
            ).fetchall()
        )
        return tuple(map(import_record, rows))

    def opportunity_ids(self) -> Iterator[str]:
        """Yield every opportunity id in sorted order, streaming from a snapshot."""
        return self._stream(
            "SELECT DISTINCT opportunity_id FROM events ORDER BY opportunity_id",
            _first,
            DEFAULT_BATCH_SIZE,
        )

    def scan(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Event]:
        """Yield every event ordered by ``(opportunity_id, seq)`` from a snapshot."""
        return self._stream(SCAN, stored_event, batch_size_of(batch_size))

    def _stored_logs(self) -> Iterator[tuple[str, list[Event] | EventLogError]]:
        """Each stored log from one snapshot; a row that cannot be read spoils only its log."""
        return logs_of_rows(self._stream(SCAN, tuple, DEFAULT_BATCH_SIZE), stored_event)

    def scan_rows(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[EventRow]:
        """Yield the analytics columns of every event from a snapshot; no Events are built."""
        return self._stream(SCAN_ROWS, stored_row, batch_size_of(batch_size))

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
        """The whole log as one frame, read column-wise with ``COPY``; see the protocol.

        The server sends only the columns asked for (and the segment columns), as CSV from
        one snapshot (``REPEATABLE READ``), and Arrow parses it with no Python object per
        value (see :mod:`stagegate.store._pg_frame`); ``owner`` and the segment columns are
        derived as :class:`~stagegate.store.SQLiteStore` derives them, so the two stores give
        equal frames for equal events. ``batch_size`` is accepted for the protocol: the CSV is
        parsed :data:`~stagegate.store._pg_frame.PIECE_BYTES` at a time.
        """
        batch_size_of(batch_size)
        wanted = requested(backend, columns)
        pa, _, _ = _libraries()  # a missing library fails before the server is asked anything
        if self._closed:
            raise StoreClosedError(f"the event store {self.where}")
        names = stored_columns(wanted)
        pg = psycopg_module()
        conn = self._connect()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            total = None
            if phases is not None:
                (total,) = conn.execute("SELECT count(*) FROM events").fetchone() or (0,)
            tick = phase_of(phases, "reading", total)
            with conn.cursor() as cursor, cursor.copy(copy_statement(names)) as copy:
                tables = parsed_pieces(pieces(copy), names, tick)
            conn.execute("COMMIT")
        except pg.Error as exc:
            raise self._error(exc) from None
        except pa.ArrowInvalid as exc:  # e.g. an amount changed into text that is no number
            raise ColumnarError(
                f"the event store {self.where} holds a row the frame cannot read "
                f"({_first_line(exc)}): it was changed outside stagegate; stagegate verify "
                "names every damaged log: restore them from a backup"
            ) from None
        finally:
            self._forget(conn)
        return frame_of_tables(
            tables, backend=backend, columns=wanted, categorical=categorical, segments=segments
        )

    def _stream(
        self, sql: str, convert: Callable[[tuple[Any, ...]], _T], batch_size: int
    ) -> Iterator[_T]:
        if self._closed:
            raise StoreClosedError(f"the event store {self.where}")
        return self._rows(sql, convert, batch_size)

    def _rows(
        self, sql: str, convert: Callable[[tuple[Any, ...]], _T], batch_size: int
    ) -> Iterator[_T]:
        pg = psycopg_module()
        conn = self._connect()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor(name="stagegate_scan") as cursor:
                cursor.itersize = batch_size
                cursor.execute(sql)
                while True:
                    rows = cursor.fetchmany(batch_size)
                    if not rows:
                        break
                    yield from map(convert, rows)
            conn.execute("COMMIT")
        except pg.Error as exc:
            raise self._error(exc) from None
        finally:
            self._forget(conn)

    # -- copying -------------------------------------------------------------------------

    def backup(self, path: str | os.PathLike[str]) -> int:
        """Write a consistent copy of the store to ``path`` as a SQLite store file.

        Everything is read from one snapshot (``REPEATABLE READ``): the copy holds every batch
        committed before it started and none after, with the process definitions and import
        records. The SQLite store re-checks each event's digest as it is written, so a copy of
        a log changed in the database is refused. The copy is written beside ``path`` under a
        temporary name and renamed into place at the end; ``path`` never holds half a copy.

        Returns:
            The number of events in the copy.

        Raises:
            StoreError: ``path`` exists already or cannot be written, or the server cannot be
                read.
            EventLogError: a stored event's digest does not chain (the log was changed).
        """
        import sqlite3  # noqa: PLC0415 - only a backup needs it

        from stagegate.store._sqlite_records import IMPORTS_DDL  # noqa: PLC0415

        target = os.fspath(path)
        if os.path.lexists(target):
            raise StoreError(
                f"the backup target {target!r} exists already; choose a new file name (a "
                "backup never overwrites a file)"
            )
        folder = os.path.dirname(os.path.abspath(target))  # noqa: PTH100, PTH120
        temporary = os.path.join(folder, f".{os.path.basename(target)}.backup-{os.getpid()}")  # noqa: PTH118, PTH119
        pg = psycopg_module()
        conn = self._connect()
        count = 0
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            definitions = conn.execute(
                "SELECT name, version, definition FROM processes ORDER BY name, version"
            ).fetchall()
            records = conn.execute(
                f"SELECT {IMPORT_COLUMNS} FROM imports ORDER BY id"  # noqa: S608 - constant
            ).fetchall()
            with SQLiteStore(temporary) as copy:
                for name, version, definition in definitions:
                    copy._store_definition(name, version, definition)  # noqa: SLF001
                with conn.cursor(name="stagegate_backup") as cursor:
                    cursor.itersize = DEFAULT_BATCH_SIZE
                    cursor.execute(SCAN)
                    while rows := cursor.fetchmany(DEFAULT_BATCH_SIZE):
                        copy.append([stored_event(row) for row in rows])
                        count += len(rows)
                copy.checkpoint()
            conn.execute("COMMIT")
            with contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as lite:
                lite.execute(IMPORTS_DDL)
                lite.executemany(
                    f"INSERT INTO imports ({IMPORT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    records,
                )
                lite.execute("PRAGMA journal_mode = DELETE")
            os.replace(temporary, target)  # noqa: PTH105
        except pg.Error as exc:
            _unlink_all(temporary)
            raise self._error(exc) from None
        except OSError as exc:
            _unlink_all(temporary)
            raise StoreError(
                f"cannot write the backup {target!r}: {exc.strerror or exc}; choose a writable "
                "folder with enough free space"
            ) from None
        except BaseException:
            _unlink_all(temporary)
            raise
        finally:
            self._forget(conn)
        return count

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (an unfinished scan then raises); closing twice is harmless."""
        self._disown_after_fork()
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _upsert_definition(
    conn: psycopg.Connection[Any], name: str, version: str, definition: str
) -> str:
    conn.execute(
        "INSERT INTO processes (name, version, definition) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (name, version, definition),
    )
    found = conn.execute(
        "SELECT definition FROM processes WHERE name = %s AND version = %s", (name, version)
    ).fetchone()
    return str(found[0]) if found is not None else definition


def _put_record(conn: psycopg.Connection[Any], record: ImportRecord) -> ImportRecord:
    at = now()
    found = conn.execute(
        f"INSERT INTO imports ({IMPORT_COLUMNS.partition(', ')[2]}) "  # noqa: S608 - constant
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
    ).fetchone()
    number = 0 if found is None else int(found[0])
    return attrs.evolve(record, id=number, at=from_epoch_us(epoch_us(at)))


def _unstorable(exc: Exception) -> EventLogError:
    return EventLogError(
        f"cannot store the batch: {_first_line(exc)}; events hold text without NUL characters, "
        "seqs within 64 bits and opportunity ids within 2,000 bytes; nothing was written"
    )


def _unlink_all(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(path + suffix)  # noqa: PTH108


def _lock_timeout(seconds: float) -> str:
    """``lock_timeout`` for a wait of ``seconds``: at least 1 ms, as ``0`` waits for ever.

    A wait past PostgreSQL's limit (about 24 days; ``inf``) is for ever, as SQLite's is.
    """
    if not seconds * 1000 < _LONGEST_WAIT_MS:  # NaN too
        return "0"
    return f"{max(1, int(seconds * 1000))}ms"


def _connect_timeout(seconds: float) -> int:
    """The ``connect_timeout`` for ``seconds``: at least 1 s; ``0`` (for ever) past the limit."""
    return max(1, round(seconds)) if seconds * 1000 < _LONGEST_WAIT_MS else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _reopen(url: str, schema: str, timeout: float) -> PostgreSQLStore:
    return PostgreSQLStore(url, schema=schema, timeout=timeout)
