"""Writing an import into a SQLite store: verified first, all or nothing, replaced atomically.

:func:`write_import` is what ``stagegate import`` calls once a file has been read. It

* replays every opportunity's events under the process (the same checks as
  :meth:`~stagegate.opportunity.Opportunity.replay`: known stages, time never going backwards, a
  first event that opens the deal, ...) and refuses the whole import on the first problems, so
  nothing a later ``stagegate report`` could not read ever reaches the store;
* writes the process definition, the events and an :class:`~stagegate.store.ImportRecord` in
  one transaction;
* with ``replace=True``, builds the new store beside the old one under a temporary name and
  swaps it in with one ``os.replace`` only when it is complete, so the path always holds either
  the old store or the new one. It refuses to replace anything that is not a stagegate store of
  this schema version or older, the input file itself, or a store another connection has open.

>>> import os, tempfile
>>> from stagegate import demo
>>> from stagegate.store import SQLiteStore
>>> events = [e for deal in demo.drive_sample_deals() for e in deal.events]
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "deals.sqlite")
>>> outcome = write_import(path, events, process=demo.b2b(), source="events")
>>> outcome.record.events, outcome.record.opportunities
(28, 3)
>>> outcome = write_import(path, events[:5], process=demo.b2b(), source="events", replace=True)
>>> with SQLiteStore(path) as store:
...     store.count(), [r.events for r in store.imports()]
(5, [5])
"""

# ruff: noqa: PTH100, PTH105, PTH108, PTH110, PTH118, PTH119, PTH120, PTH121
# str paths: a store is one file plus its "-wal" and "-shm" companions

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._progress import Phases, Tick, phase_of
from stagegate.errors import ConcurrencyError, StagegateError
from stagegate.events import Event
from stagegate.store._sqlite_errors import store_error
from stagegate.store.base import (
    EventStore,
    ImportRecord,
    Progress,
    StoreError,
    StoreLockedError,
    StoreUnwritableError,
    stored_definition,
)
from stagegate.store.postgresql import is_postgresql_url
from stagegate.store.sqlite import SCHEMA_VERSION, SQLiteStore, inspect_file
from stagegate.store.sqlite import store_path as checked_path

if TYPE_CHECKING:
    from stagegate.io import Finding
    from stagegate.process import Process

__all__ = ["MAX_SEQ", "ImportOutcome", "ImportRefusedError", "write_import"]

MAX_SEQ = 2**63 - 1
"""The largest ``seq`` a store keeps (a signed 64-bit SQLite integer)."""

CHECKPOINT_FROM = 50_000
"""Imports of at least this many events checkpoint and truncate the write-ahead log after."""

SHOWN = 5
"""How many problems a refusal lists (the count says how many there were)."""

TICK_RUNS = 1_000
"""Opportunities between two progress ticks while checking."""

REPLACE_TAG = ".replace-"
"""Temporary stores are named ``.<store name>.replace-<pid>-<random>`` beside the store."""


class ImportRefusedError(StagegateError, ValueError):
    """The import was refused before anything was written; ``problems`` says why, one per line.

    ``code`` names the cause for programs: ``invalid_events`` (they do not replay under the
    process), ``already_imported`` (the store holds these very events),
    ``different_history`` (it holds another history of the same opportunities),
    ``concurrent_writer`` (another process wrote to the same opportunities meanwhile) or
    ``not_replaceable`` (``replace`` would destroy something that is not an old store).
    """

    def __init__(self, code: str, summary: str, problems: Sequence[str] = ()) -> None:
        self.code, self.summary, self.problems = code, summary, tuple(problems)
        lines = "".join(f"\n  - {p}" for p in self.problems[:SHOWN])
        more = len(self.problems) - SHOWN
        if more > 0:
            lines += f"\n  - ... and {more} more"
        super().__init__(f"{summary}{lines}")


@attrs.frozen(slots=True)
class ImportOutcome:
    """What :func:`write_import` did.

    Attributes:
        record: the import record stored beside the events.
        findings: findings the verification added (``negative_amount``), also in the record.
        replaced: whether an existing store was replaced.
    """

    record: ImportRecord
    findings: tuple[Finding, ...] = ()
    replaced: bool = False


def write_import(
    store_path: str | os.PathLike[str],
    events: Sequence[Event],
    *,
    process: Process | None,
    source: str,
    input_path: str | os.PathLike[str] | None = None,
    rows_read: int | None = None,
    rows_used: int | None = None,
    findings: Iterable[Finding] = (),
    replace: bool = False,
    progress: Progress | None = None,
    timeout: float = 30.0,
    phases: Phases | None = None,
) -> ImportOutcome:
    """Verify ``events`` and write them into the store at ``store_path``, all or nothing.

    Args:
        store_path: the SQLite store (created when missing), or a ``postgresql://`` URL.
        events: the imported events, grouped per opportunity in ``seq`` order.
        process: the process they belong to; stored with them and used to verify them
            (``None`` skips the replay check: only shape and order are checked).
        source: the kind of file read, for the import record.
        input_path: the file read: named in the record, and never replaced.
        rows_read: data rows read (default: the number of events).
        rows_used: data rows used (default: the number of events).
        findings: the importer's findings, kept in the record.
        replace: build a new store from these events and swap it in for the old one.
        progress: called with the number of events written so far.
        timeout: seconds to wait for another writer's lock.
        phases: told of the ``checking`` (events replayed) and ``writing`` (events written)
            phases, for progress bars.

    Raises:
        ImportRefusedError: the events do not replay, the store already holds them or another
            history of them, another process wrote meanwhile, or the path cannot be replaced.
        StoreError: the store cannot be opened or written (its subclasses say why).
        DefinitionError: ``process`` would not load back from a store (see
            :meth:`~stagegate.store.EventStore.save_process`); nothing was written.
    """
    if process is not None and process.serializable:
        stored_definition(process)  # one that would not load back: refused before any file
    if is_postgresql_url(store_path):  # a PostgreSQL store: the same checks, one transaction
        from stagegate.store._pg_import import write_import_postgresql  # noqa: PLC0415

        return write_import_postgresql(
            str(store_path), events, process, source, input_path, rows_read, rows_used,
            findings, replace, progress, timeout,
        )  # fmt: skip
    path = checked_path(store_path)
    fresh = replace or not os.path.exists(path)
    added = verify_events(process, events, replay=fresh, phases=phases if fresh else None)
    found = tuple(findings) + added
    count = len(events)
    record = ImportRecord(
        id=0,
        at=datetime(1970, 1, 1, tzinfo=timezone.utc),
        source=source,
        input_name="" if input_path is None else os.path.basename(os.fspath(input_path)),
        rows_read=count if rows_read is None else rows_read,
        rows_used=count if rows_used is None else rows_used,
        opportunities=len({e.opportunity_id for e in events}),
        events=count,
        findings=tuple(_finding_dict(f) for f in found),
    )
    if phases is not None:
        progress = _writing(phases, count, progress)
    if replace:
        stored = _replace(path, events, process, record, input_path, progress, timeout)
        return ImportOutcome(stored, added, replaced=True)
    with SQLiteStore(path, timeout=timeout) as store:
        # events replayed above need no second replay where the store holds none of them
        _check_against(store, events, None if fresh else process, None if fresh else phases)
        try:
            written = store.write_import(events, process=process, record=record, progress=progress)
        except ConcurrencyError as error:
            raise ImportRefusedError(
                "concurrent_writer",
                f"another process wrote to the store {path!r} during this import; nothing was "
                "written: import again when it is done (or import into a store of its own)",
                [str(error)],
            ) from None
        if count >= CHECKPOINT_FROM:
            store.checkpoint()
    assert written is not None  # noqa: S101 - a record was given
    return ImportOutcome(written, added)


def _writing(phases: Phases, total: int, progress: Progress | None) -> Progress:
    """A progress callback that starts the ``writing`` phase when the store begins to write."""
    tick: Tick | None = None

    def report(done: int) -> None:
        nonlocal tick
        if tick is None:
            tick = phase_of(phases, "writing", total)
        tick(done)
        if progress is not None:
            progress(done)

    return report


# -- verification ----------------------------------------------------------------------------


def verify_events(
    process: Process | None,
    events: Sequence[Event],
    *,
    replay: bool = True,
    phases: Phases | None = None,
) -> tuple[Finding, ...]:
    """Check values and replay each opportunity's events; return the findings to add.

    With ``replay=False`` only the values are checked (the caller replays against a store).
    ``phases`` is told of the ``checking`` phase (events replayed).

    Raises:
        ImportRefusedError: an amount is not finite, a ``seq`` is beyond :data:`MAX_SEQ`, or an
            opportunity's events do not replay under ``process``.
    """
    problems: list[str] = []
    negative: dict[str, list[int]] = {}
    for event in events:
        if isinstance(event, Event):
            problems.extend(_value_problems(event))
            if event.amount is not None and event.amount.is_finite() and event.amount < 0:
                negative.setdefault(event.opportunity_id, []).append(event.seq)
    if not problems and process is not None and replay:
        tick = phase_of(phases, "checking", len(events))
        done = 0
        for number, run in enumerate(_runs(events)):
            problems.extend(_replay_problems(process, run))
            done += len(run)
            if not number % TICK_RUNS:
                tick(done)
            if len(problems) > SHOWN * 4:
                break
        tick(done)
    if problems:
        raise ImportRefusedError(
            "invalid_events",
            f"{len(problems)} problem(s) in the events; nothing was written: fix the file (or "
            "pass the process the events were recorded in) and import again",
            problems,
        )
    return _negative_findings(negative)


def _negative_findings(negative: Mapping[str, Sequence[int]]) -> tuple[Finding, ...]:
    from stagegate.io import Finding, Severity  # noqa: PLC0415 - io sits beside the store

    return tuple(
        Finding(
            "negative_amount",
            Severity.WARNING,
            f"opportunity {oid!r} has a negative amount at seq {', '.join(map(str, seqs[:5]))}; "
            "imported as given: check the sign in the source",
            opportunity_id=oid,
        )
        for oid, seqs in negative.items()
    )


def _value_problems(event: Event) -> list[str]:
    problems = []
    if isinstance(event.seq, int) and event.seq > MAX_SEQ:
        problems.append(
            f"opportunity {event.opportunity_id!r} has seq {event.seq}, beyond {MAX_SEQ} "
            "(2^63 - 1), the largest a store keeps: number each deal's events 1, 2, 3, ..."
        )
    amount = event.amount
    if amount is not None and (not amount.is_finite() or not math.isfinite(float(amount))):
        problems.append(
            f"event {event.seq} of opportunity {event.opportunity_id!r} has amount {amount}, "
            "which is not a finite number a report can show: fix the amount"
        )
    return problems


def _runs(events: Sequence[Event]) -> list[list[Event]]:
    runs: dict[str, list[Event]] = {}
    for event in events:
        runs.setdefault(event.opportunity_id, []).append(event)
    return list(runs.values())


def _replay_problems(
    process: Process,
    run: Sequence[Event],
    stored: Sequence[Event] = (),
    versions: Sequence[Process] = (),
) -> list[str]:
    from stagegate.opportunity import Opportunity  # noqa: PLC0415 - the domain loads lazily

    oid = run[0].opportunity_id
    if not stored and run[0].seq != 1:
        return [
            (
                f"opportunity {oid!r} starts at seq {run[0].seq}, and the store holds none of "
                "its events: each deal's events are numbered from 1 (its 'opened' event), or "
                "import the earlier events first"
            )
        ]
    try:
        Opportunity.replay(process, (*stored, *run), versions=versions)
    except (StagegateError, ValueError, TypeError, LookupError) as exc:
        return [f"opportunity {oid!r}: {exc}"]
    return []


def _check_against(
    store: SQLiteStore,
    events: Sequence[Event],
    process: Process | None,
    phases: Phases | None = None,
) -> None:
    """Compare the events with what the store holds; refuse re-imports and other histories."""
    comparison = _Comparison()
    tick = phase_of(phases, "checking", len(events))
    done = 0
    for number, run in enumerate(_runs(events)):
        comparison.add(store, run, process)
        done += len(run)
        if not number % TICK_RUNS:
            tick(done)
    tick(done)
    comparison.verdict()


class _Comparison:
    """What the store already holds of the imported opportunities, one run at a time.

    A log migrated between versions of the process (``migrated`` events) is replayed with the
    definitions of its earlier versions that the store holds.
    """

    def __init__(self) -> None:
        self.same: list[str] = []
        self.other: list[str] = []
        self.problems: list[str] = []
        self.definitions: dict[str, Process | None] = {}  # stored versions by version text

    def earlier(self, store: EventStore, log: Iterable[Event], process: Process) -> list[Process]:
        """The stored definitions of the other versions of ``process`` that ``log`` names."""
        name, definitions = process.name, self.definitions
        wanted = {
            e.process_version
            for e in log
            if e.process == name and e.process_version != process.version
        }
        missing = sorted(wanted - definitions.keys())
        if missing:
            stored = set(store.processes())
            for version in missing:
                known = (name, version) in stored
                definitions[version] = store.load_process(name, version) if known else None
        return [p for v in sorted(wanted) if (p := definitions[v]) is not None]

    def add(self, store: SQLiteStore, run: Sequence[Event], process: Process | None) -> None:
        oid, first = run[0].opportunity_id, run[0].seq
        last = store.last_seq(oid)
        if last == 0:
            if process is not None:
                versions = self.earlier(store, run, process)
                self.problems.extend(_replay_problems(process, run, versions=versions))
            return
        if first == 1:
            held = store.load(oid)
            if tuple(run) == held[: len(run)]:
                self.same.append(oid)
            else:
                self.other.append(oid)
        elif first != last + 1:
            self.problems.append(
                f"opportunity {oid!r}: the file continues it from seq {first}, but the store "
                f"holds events up to seq {last}"
            )
        elif process is not None:
            held = store.load(oid)
            versions = self.earlier(store, (*held, *run), process)
            self.problems.extend(_replay_problems(process, run, held, versions))

    def verdict(self) -> None:
        """Raise the refusal the comparison calls for, if any."""
        same, other, problems = self.same, self.other, self.problems
        if same and not other and not problems:
            raise ImportRefusedError(
                "already_imported",
                f"the store already holds these events ({len(same)} opportunities, e.g. "
                f"{same[0]!r}): this file was imported before; nothing was written (pass "
                "--replace to rebuild the store from this file)",
            )
        if same or other:
            listed = ", ".join(map(repr, (same + other)[:3]))
            raise ImportRefusedError(
                "different_history",
                f"the store already holds {len(same) + len(other)} of these opportunities "
                f"({listed}, ...), {len(other)} of them with a different history; nothing was "
                "written: import into a new store, or pass --replace to rebuild it from this "
                "file",
            )
        if problems:
            raise ImportRefusedError(
                "invalid_events",
                f"{len(problems)} problem(s) in the events; nothing was written: fix the file "
                "(or pass the process the events were recorded in) and import again",
                problems,
            )


def _finding_dict(finding: Finding) -> Mapping[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "rows": list(finding.rows),
        "opportunity_id": finding.opportunity_id,
        "used": finding.used,
    }


# -- replacing -------------------------------------------------------------------------------


def _replace(  # noqa: PLR0917 - private, called once
    path: str,
    events: Sequence[Event],
    process: Process | None,
    record: ImportRecord,
    input_path: str | os.PathLike[str] | None,
    progress: Progress | None,
    timeout: float,
) -> ImportRecord:
    _check_replaceable(path, input_path, timeout)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale(folder, os.path.basename(path))
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}{REPLACE_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    )
    try:
        with SQLiteStore(temporary, timeout=timeout) as store:
            stored = store.write_import(events, process=process, record=record, progress=progress)
        _settle(temporary, timeout)
        _swap(path, temporary, timeout)
    except BaseException:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(temporary + suffix)
        raise
    assert stored is not None  # noqa: S101 - a record was given
    return stored


def _check_replaceable(
    path: str, input_path: str | os.PathLike[str] | None, timeout: float
) -> None:
    if input_path is not None and os.path.exists(path):
        with contextlib.suppress(OSError):
            if os.path.samefile(path, input_path):
                raise ImportRefusedError(
                    "not_replaceable",
                    f"--store {path!r} is the input file itself; nothing was written: choose "
                    "another store path",
                )
    try:
        version = inspect_file(path, timeout=timeout)
    except StoreError as error:
        raise ImportRefusedError(
            "not_replaceable",
            f"refusing to replace {path!r}: it is not a stagegate store ({error}); nothing was "
            "written: choose another store path",
        ) from None
    if version is not None and (not version.isdigit() or int(version) > SCHEMA_VERSION):
        raise ImportRefusedError(
            "not_replaceable",
            f"refusing to replace {path!r}: it is a store of schema version {version!r}, newer "
            f"than this stagegate's {SCHEMA_VERSION}; nothing was written: upgrade stagegate, "
            "or choose another store path",
        )


def _remove_stale(folder: str, name: str) -> None:
    """Delete temporary stores left by replaces that were killed (their process is gone)."""
    prefix = f".{name}{REPLACE_TAG}"
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            pid_text = entry.name[len(prefix) :].split("-", 1)[0]
            if pid_text.isdigit() and not _alive(int(pid_text)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - someone else's process
        return True
    return True


def _settle(temporary: str, timeout: float) -> None:
    """Leave the new store as one self-contained file on disk (no -wal, no -shm)."""
    try:
        conn = sqlite3.connect(temporary, timeout=timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except sqlite3.Error as exc:
        raise store_error(temporary, exc, timeout) from None
    except OSError as exc:
        raise StoreUnwritableError(f"cannot write {temporary!r}: {exc}") from None


def _swap(path: str, temporary: str, timeout: float) -> None:
    """Rename the new store over the old one while holding the old one exclusively."""
    if not os.path.exists(path):
        _rename(temporary, path)
        return
    try:
        conn = sqlite3.connect(path, timeout=min(timeout, 2.0), isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(path, exc, timeout) from None
    try:
        try:
            # Leaving WAL mode needs every other connection closed: SQLite's own test of
            # "nobody has this store open". It also folds the old -wal into the file.
            conn.execute("PRAGMA journal_mode = DELETE").fetchone()
            conn.execute("BEGIN EXCLUSIVE")  # new connections wait until the swap is done
        except sqlite3.Error as exc:
            error = store_error(path, exc, timeout)
            if isinstance(error, StoreLockedError):
                raise StoreLockedError(
                    f"refusing to replace the event store {path!r}: another process has it "
                    "open (a writer, or a reader such as stagegate report); nothing was "
                    "written and the old store is unchanged: stop it or wait, then retry"
                ) from None
            raise error from None
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
        _rename(temporary, path)
    finally:
        conn.close()


def _rename(temporary: str, path: str) -> None:
    try:
        os.replace(temporary, path)
    except OSError as exc:
        raise StoreUnwritableError(
            f"cannot put the new store in place of {path!r}: {exc.strerror or exc}; the old "
            "store is unchanged"
        ) from None
    with contextlib.suppress(OSError):  # make the rename durable (not possible on Windows)
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
