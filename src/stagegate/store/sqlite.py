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

The parts this class is made of live beside it: the file's layout, SQL and migrations in
:mod:`stagegate.store._sqlite_schema`, the projection's chunks in
:mod:`stagegate.store._sqlite_projection`, process definitions and import records in
:mod:`stagegate.store._sqlite_records`, the copy of a staging file in
:mod:`stagegate.store._sqlite_staging`, the encoding of rows in :mod:`stagegate.store._rows`
and their decoding in :mod:`stagegate.store._stored`, and SQLite's errors mapped in
:mod:`stagegate.store._sqlite_errors`.

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

# ruff: noqa: PTH100, PTH105, PTH108, PTH116, PTH118, PTH119, PTH120
# str paths: a store is one file plus its "-wal" and "-shm" companions

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from stagegate._progress import Phases
from stagegate.errors import EventLogError
from stagegate.events import Event
from stagegate.store._columnar import frame_of, give_back_freed
from stagegate.store._rows import EncodedBatch, seal_rows, sealable, sealables_of
from stagegate.store._sqlite_errors import read_only_mount, store_error
from stagegate.store._sqlite_projection import (
    COUNTED,
    PROJECT,
    PROJECTED,
    frame_of_stored,
    project,
    projected,
    read_projection,
)
from stagegate.store._sqlite_records import (
    definition_of,
    import_records,
    process_versions,
    put_definition,
    put_record,
    store_definition,
)
from stagegate.store._sqlite_schema import (
    IDS,
    INSERT,
    LAST_EVENTS,
    LAST_EVENTS_V1,
    LAST_SEQ,
    LAST_STATES,
    LAST_STATES_V1,
    LOAD,
    LOAD_V1,
    READABLE,
    SCAN,
    SCAN_ROWS,
    SCAN_V1,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
    check_layout,
    create_tables,
    inspect_file,
    last_link,
    migrate,
    stored_seq,
    version_error,
)
from stagegate.store._sqlite_staging import copy_staged, stage_rows, staged_runs
from stagegate.store._stored import stored_event, stored_row
from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    EventRow,
    EventStore,
    ImportRecord,
    Progress,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreReplacedError,
    StoreUnwritableError,
    batch_size_of,
    check_batch,
    conflicts,
    logs_of_rows,
    stored_definition,
    unencodable,
)

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = [
    "PROJECTION_CHUNK",
    "SCHEMA_VERSION",
    "WAL_LIMIT",
    "SQLiteStore",
    "inspect_file",
    "store_path",
]

PROJECTION_CHUNK = 1 << 16
"""Most events packed into one chunk of the projection."""
MERGE_EVERY = 64
"""Every this many chunks written, the small ones among them are merged (see
:func:`~stagegate.store._sqlite_projection.project`)."""

READ_IN_PLACE = hasattr(sqlite3.Connection, "blobopen")
"""Whether ``to_frame`` reads each column of the projection's chunks where it is stored
(SQLite's incremental blob I/O, Python 3.11+) rather than all the chunks into memory first."""

WAL_LIMIT = 64 * 1024 * 1024
"""Bytes of write-ahead log kept after a checkpoint (``PRAGMA journal_size_limit``); a scan that
ends with a larger log checkpoints and truncates it."""

_PROGRESS_STEP = 20_000

# Private names that tests and benchmarks import from this module, kept since the split.
_sealable, _seal_rows, _sealables_of = sealable, seal_rows, sealables_of
_PROJECT, _PROJECTED = PROJECT, PROJECTED

_T = TypeVar("_T")


def _identity(path: str) -> tuple[int, int] | None:
    """The (device, inode) of ``path``; ``None`` when it does not exist."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a name too long, a folder that is a file, a loop of links
        raise StoreError(
            f"cannot use {path!r} as an event store ({exc.strerror or exc}); choose another path"
        ) from None
    return found.st_dev, found.st_ino


def store_path(path: str | os.PathLike[str]) -> str:
    """The path of a store file as text, refusing what SQLite would not read as a plain file.

    Raises:
        StoreError: ``path`` is empty, ``":memory:"``, a ``file:`` URI, or not UTF-8 text.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or text in {"", ":memory:"} or text.startswith("file:"):
        raise StoreError(
            f"SQLiteStore needs the path of a file, got {text!r}; give a plain file path "
            "(./file:... for a name that starts with 'file:'), or use MemoryStore for a store "
            "in memory"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding in a file name: SQLite cannot open it
        raise StoreError(
            f"the store path {text!r} is not UTF-8 text, which SQLite needs; rename the file "
            "(or its folder) to a UTF-8 name"
        ) from None
    return text


class SQLiteStore(EventStore):
    """An event store in one SQLite file (created on first use); see the module docs.

    Args:
        path: the database file; its folder must exist. ``":memory:"`` is refused (use
            :class:`~stagegate.store.MemoryStore`).
        timeout: seconds a writer waits for another writer's batch before giving up.
        durable: ``True`` for ``synchronous=FULL`` (survives power loss, slower commits).
        read_only: open an existing store only to read it (``mode=ro``): the file is never
            changed (in a writable folder SQLite may leave its ``-wal`` and ``-shm`` files
            beside it), and it reads on a read-only file system or from read-only media;
            writing raises :class:`~stagegate.store.StoreUnwritableError`.

    Raises:
        StoreError: the file cannot be opened or created, is not a SQLite database, is not a
            stagegate store, or has another schema version.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        durable: bool = False,
        read_only: bool = False,
    ) -> None:
        self._path = store_path(path)
        self._timeout = float(timeout)
        self._durable = bool(durable)
        self._read_only = bool(read_only)
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
        return (_reopen, (self._path, self._timeout, self._durable, self._read_only))

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
                    self._read_only_uri() if self._read_only else self._path,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    uri=self._read_only,
                )
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            self._connections.append(conn)
        mode = "wal"
        try:
            if reader or self._read_only:
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
        if self._read_only:
            self._open_to_read()
            return
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

    def _open_to_read(self) -> None:
        """Open an existing store only to read it: no tables made, no mode switched."""
        if inspect_file(self._path, timeout=self._timeout) is None:
            raise StoreError(
                f"there is no event store at {self._path!r} (no file, or an empty one); give "
                "the path of a store file"
            )
        self._check_existing()
        self._initialize(self._writer())
        self._identity = _identity(self._path)

    def _read_only_uri(self) -> str:
        """The URI a read-only store is opened by: ``mode=ro``, or ``immutable=1`` where needed.

        On a read-only file system SQLite cannot make the ``-shm`` file a WAL store is read
        with; nobody can write the store through it either, so it is read as immutable.
        """
        where = Path(self._path).absolute()
        uri = where.as_uri()
        if read_only_mount(str(where.parent)) and not Path(f"{self._path}-wal").exists():
            return uri + "?immutable=1"
        return uri + "?mode=ro"

    def _refuse_if_read_only(self) -> None:
        if self._read_only:
            raise StoreUnwritableError(
                f"the event store {self._path!r} was opened read-only; nothing was written: "
                "open it without read_only=True to write"
            )

    def _check_existing(self) -> None:
        """Refuse a foreign, damaged or newer file before anything could change it."""
        with contextlib.suppress(OSError), open(self._path, "rb") as handle:  # noqa: PTH123
            head = handle.read(19)
            if head[: len(SQLITE_MAGIC)] == SQLITE_MAGIC and head[18:19] == b"\x02":
                return  # in WAL mode already: opening changes nothing before _initialize checks
        version = inspect_file(self._path, timeout=self._timeout)
        if version is None or version in READABLE:
            return
        raise version_error(self._path, version)

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
                create_tables(conn)
            row = conn.execute("SELECT value FROM meta WHERE key = ?", ("schema_version",))
            found = row.fetchone()
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None
        if found is None or found[0] not in READABLE:
            self.close()
            raise version_error(self._path, None if found is None else found[0])
        try:
            check_layout(conn, self._path, found[0])
        except (sqlite3.Error, StoreError) as exc:
            self.close()
            if isinstance(exc, StoreError):
                raise
            raise self._error(exc) from None
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
        """Inside a write transaction: bring an older file to the current version, if it is one.

        See :func:`~stagegate.store._sqlite_schema.migrate`.
        """
        if self._version == SCHEMA_VERSION:
            return
        migrate(conn, most=PROJECTION_CHUNK)

    def upgrade(self) -> bool:
        """Migrate an older file to the current layout now, rather than on its first write.

        Returns:
            ``True`` when the file was migrated; ``False`` when it was current already.

        Raises:
            StoreError: the file cannot be written (see :meth:`append`).
        """
        self._refuse_if_read_only()
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
        self._refuse_if_read_only()
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
        batch = sealables_of(events)
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
        runs = check_batch(events)
        conn = self._read(lambda conn: conn)
        batch = sealables_of(events)
        stored: ImportRecord | None = None
        definition = None
        if process is not None and process.serializable:
            definition = (process.name, process.version, stored_definition(process))
        with self._transaction(conn):
            if definition is not None:
                put_definition(conn, self._path, *definition)
            if record is not None:
                stored = put_record(conn, record)
            self._write(conn, runs, events, batch, progress)
        return stored

    def _stage(self, events: Sequence[Event]) -> None:
        """Append a batch to a staging store: a new opportunity's run may start at any seq."""
        runs = check_batch(events)
        batch = sealables_of(events)
        conn = self._read(lambda conn: conn)
        with self._transaction(conn, migrate=False):
            stage_rows(conn, runs, events, batch)
            project(conn, batch.columns, most=PROJECTION_CHUNK, merge_every=MERGE_EVERY)

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
        conn = self._read(lambda conn: conn)
        definition = None
        if process is not None and process.serializable:
            definition = (process.name, process.version, stored_definition(process))
        stored: ImportRecord | None = None
        try:
            conn.execute("ATTACH DATABASE ? AS staged", (os.fspath(staging),))
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            with self._transaction(conn):
                runs = staged_runs(conn)
                if definition is not None:
                    put_definition(conn, self._path, *definition)
                if record is not None:
                    stored = put_record(conn, record)
                copy_staged(conn, runs, most=PROJECTION_CHUNK)
        finally:
            try:
                conn.execute("DETACH DATABASE staged")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        return stored

    def imports(self) -> tuple[ImportRecord, ...]:
        """What each ``stagegate import`` into this store wrote and found, oldest first."""
        return self._read(import_records)

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and truncate the log to zero bytes.

        Waits at most one second for readers and writers; call it when they are done.

        Returns:
            ``True`` when the whole log was copied and truncated; ``False`` when a reader or
            writer kept part of it (nothing is lost: the log is copied later).
        """
        self._refuse_if_read_only()
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
            return stored_seq(oid, conn.execute(LAST_SEQ, (oid,)).fetchone()[0])

        # A run starting at 1 needs no read: the primary key refuses it if the log exists.
        tails = {oid: last_link(conn, oid) for oid, run in runs.items() if run[0] > 1}
        error = conflicts(runs, ((oid, seq) for oid, (seq, _) in tails.items()))
        if error is None:
            links = {oid: digest for oid, (_, digest) in tails.items()}
            rows = seal_rows(events, batch, links)
            conn.execute("SAVEPOINT batch")
            try:
                if progress is None:
                    conn.executemany(INSERT, rows)
                else:
                    for start in range(0, len(rows), _PROGRESS_STEP):
                        conn.executemany(INSERT, rows[start : start + _PROGRESS_STEP])
                        progress(min(start + _PROGRESS_STEP, len(rows)))
                project(conn, batch.columns, most=PROJECTION_CHUNK, merge_every=MERGE_EVERY)
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
        if unencodable(opportunity_id):  # such an id is never stored: none
            return ()
        sql = LOAD if self._version > 1 else LOAD_V1
        rows = self._read(lambda conn: conn.execute(sql, (opportunity_id,)).fetchall())
        return tuple(map(stored_event, rows))

    def last_seq(self, opportunity_id: str) -> int:
        """Return the ``seq`` of the opportunity's last event; ``0`` if it has none."""
        if unencodable(opportunity_id):  # such an id is never stored: none
            return 0
        found = self._read(lambda conn: conn.execute(LAST_SEQ, (opportunity_id,)).fetchone())
        return stored_seq(opportunity_id, found[0])

    def _store_definition(self, name: str, version: str, definition: str) -> str | None:
        conn = self._read(lambda conn: conn)
        with self._transaction(conn, migrate=False):
            return store_definition(conn, name, version, definition)

    def _definition(self, name: str, version: str) -> str | None:
        return self._read(lambda conn: definition_of(conn, name, version))

    def processes(self) -> list[tuple[str, str]]:
        """The (name, version) of every stored process definition, sorted."""
        return self._read(process_versions)

    def count(self) -> int:
        """Return the number of stored events.

        Read from the projection (one row per chunk, written in the same transaction as its
        events), so a store of millions of events answers at once; a file written before the
        projection (version 1 or 2) counts its table.
        """
        sql = COUNTED if self._version == SCHEMA_VERSION else "SELECT count(*) FROM events"
        return int(self._read(lambda conn: conn.execute(sql).fetchone()[0]))

    def opportunity_ids(self) -> Iterator[str]:
        """Yield every opportunity id in sorted order, streaming from a snapshot."""
        return self._stream(IDS, _first, DEFAULT_BATCH_SIZE)

    def scan(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Event]:
        """Yield every event ordered by ``(opportunity_id, seq)`` from a snapshot."""
        sql = SCAN if self._version > 1 else SCAN_V1
        return self._stream(sql, stored_event, batch_size_of(batch_size))

    def _stored_logs(self) -> Iterator[tuple[str, list[Event] | EventLogError]]:
        """Each stored log from one snapshot; a row that cannot be read spoils only its log."""
        sql = SCAN if self._version > 1 else SCAN_V1
        return logs_of_rows(self._stream(sql, tuple, DEFAULT_BATCH_SIZE), stored_event)

    def last_events(self, *, light: bool = False) -> Iterator[Event]:
        """Yield the last event of every opportunity in id order, found through the index.

        ``light=True`` leaves out gate reports and details (``None``): what a reader of the
        state each deal is in (stage, version, amount, close date) does not need to decode.
        """
        if light:
            sql = LAST_STATES if self._version == SCHEMA_VERSION else LAST_STATES_V1
        else:
            sql = LAST_EVENTS if self._version == SCHEMA_VERSION else LAST_EVENTS_V1
        return self._stream(sql, stored_event, DEFAULT_BATCH_SIZE)

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
                frame = frame_of_stored(conn, phases, options)
            else:
                chunks = (
                    read_projection(conn, phases)
                    if int(version) >= SCHEMA_VERSION
                    else projected(conn, phases, most=PROJECTION_CHUNK)
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


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _first(row: tuple[Any, ...]) -> Any:
    return row[0]


def _reopen(path: str, timeout: float, durable: bool, read_only: bool = False) -> SQLiteStore:
    return SQLiteStore(path, timeout=timeout, durable=durable, read_only=read_only)
