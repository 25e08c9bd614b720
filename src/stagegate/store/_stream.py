"""Importing a stagegate event log in bounded memory, still all or nothing.

:func:`stream_import` reads the log (JSON Lines, CSV or Parquet, as
:func:`~stagegate.io.write_events` writes them) record by record into a *staging* store beside
the target (same folder, a hidden temporary name), ``batch_size`` events at a time, and replays
each opportunity (the checks of :func:`~stagegate.store.write_import`): into a new store, as
soon as its last event has streamed past when the log lists each deal's events together (as
``write_events`` writes them); otherwise from the staging store, one opportunity at a time.
Only then is anything written where it counts:

* with ``replace=True`` the staging store *is* the new store: it is swapped in for the old one
  with one ``os.replace``;
* into a store that does not exist yet, the staging store is linked into place (``os.link``,
  which never overwrites a file that appeared meanwhile);
* otherwise its events are copied into the target inside one transaction (``ATTACH`` and
  ``INSERT ... SELECT``), with the process definition and the import record.

Memory holds one batch of events, one opportunity's history and the set of opportunity ids
replayed so far, whatever the size of the file.

>>> import os, tempfile
>>> from stagegate import demo
>>> from stagegate.io import write_events
>>> folder = tempfile.mkdtemp()
>>> log = os.path.join(folder, "log.jsonl")
>>> _ = write_events(log, [e for deal in demo.drive_sample_deals() for e in deal.events])
>>> outcome = stream_import(os.path.join(folder, "s.sqlite"), log, process=demo.b2b())
>>> outcome.record.events, outcome.record.opportunities
(28, 3)
"""

# ruff: noqa: PTH110, PTH118, PTH119, PTH120, PTH100, PTH108
# str paths: a store is one file plus its "-wal" and "-shm" companions

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from stagegate._progress import Phases, phase_of
from stagegate.errors import ConcurrencyError, EventLogError
from stagegate.events import Event, recorded_event
from stagegate.io._decode import event_of
from stagegate.io._result import Finding, ImportProblemError, Severity
from stagegate.io.canonical import log_records, record_unit, records_in
from stagegate.store._load import (
    CHECKPOINT_FROM,
    REPLACE_TAG,
    SHOWN,
    TICK_RUNS,
    ImportOutcome,
    ImportRefusedError,
    _check_replaceable,
    _Comparison,
    _negative_findings,
    _remove_stale,
    _replay_problems,
    _settle,
    _swap,
    _value_problems,
)
from stagegate.store._sqlite_schema import SCAN_V1 as _SCAN_UNSEALED
from stagegate.store._stored import stored_event as _stored_event
from stagegate.store.base import DEFAULT_BATCH_SIZE, ImportRecord
from stagegate.store.postgresql import is_postgresql_url
from stagegate.store.sqlite import SQLiteStore
from stagegate.store.sqlite import store_path as checked_path

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = ["STREAM_BATCH", "stream_import"]

STREAM_BATCH = 10_000
"""Events parsed and staged at a time."""


def stream_import(
    store_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    *,
    process: Process,
    replace: bool = False,
    batch_size: int = STREAM_BATCH,
    timeout: float = 30.0,
    phases: Phases | None = None,
) -> ImportOutcome:
    """Import an event log (JSON Lines, CSV or Parquet; gzip allowed) in bounded memory.

    Args:
        store_path: the SQLite store (created when missing), or a ``postgresql://`` URL.
        input_path: the log, as :func:`~stagegate.io.write_events` writes it: one
            :meth:`~stagegate.events.Event.to_dict` object per line (``.jsonl``), or one row
            per event (``.csv``, ``.parquet``).
        process: the process the events were recorded in; every opportunity is replayed under
            it before anything is written.
        replace: build a new store from the log and swap it in for the old one.
        batch_size: events parsed and staged at a time.
        timeout: seconds to wait for another writer's lock.
        phases: told of the ``reading`` (lines staged), ``checking`` (events replayed) and
            ``writing`` phases, for progress bars.

    Raises:
        ImportRefusedError: see :func:`~stagegate.store.write_import`.
        ImportProblemError: the file cannot be read (not a regular file, too large, ...).
        StoreError: the store cannot be opened or written.
    """
    if is_postgresql_url(store_path):  # staged in a temporary file, then copied in at once
        from stagegate.store._pg_import import stream_import_postgresql  # noqa: PLC0415

        return stream_import_postgresql(
            str(store_path), input_path, process=process, replace=replace,
            batch_size=batch_size, timeout=timeout,
        )  # fmt: skip
    path, source = checked_path(store_path), os.fspath(input_path)
    if replace:
        _check_replaceable(path, source, timeout)
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale(folder, os.path.basename(path))
    staging = os.path.join(
        folder, f".{os.path.basename(path)}{REPLACE_TAG}{os.getpid()}-{secrets.token_hex(4)}"
    )
    fresh = replace or not os.path.exists(path)  # the staging store becomes the store
    try:
        with SQLiteStore(staging, timeout=timeout) as staged:
            replayer = _Replayer(process) if fresh else None
            lines, negative = _stage(staged, source, batch_size, phases, replayer, process=process)
            if replayer is not None and replayer.complete:
                opportunities = replayer.verdict()
                phase_of(phases, "checking", staged.count() if phases else None)(staged.count())
            else:
                opportunities = _verify(staged, process, None if fresh else path, phases)
            added = _negative_findings(negative)
            record = ImportRecord(
                id=0,
                at=datetime(1970, 1, 1, tzinfo=timezone.utc),
                source="events",
                input_name=os.path.basename(source),
                rows_read=lines,
                rows_used=staged.count(),
                opportunities=opportunities,
                events=staged.count(),
                findings=tuple(_finding_dict(f) for f in added),
            )
            if fresh:
                stored = staged.write_import((), process=process, record=record)
        if fresh:
            _settle(staging, timeout)
        if replace:
            _swap(path, staging, timeout)
        elif not fresh or not _link(staging, path):
            tick = phase_of(phases, "writing", record.events)
            with SQLiteStore(path, timeout=timeout) as store:
                stored = _absorb(store, staging, process, record)
                if record.events >= CHECKPOINT_FROM:
                    store.checkpoint()
            tick(record.events)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(staging + suffix)
    assert stored is not None  # noqa: S101 - a record was given
    return ImportOutcome(stored, added, replaced=replace)


def _link(staging: str, path: str) -> bool:
    """Put the staged store at ``path`` unless a file appeared there meanwhile."""
    try:
        os.link(staging, path)
    except FileExistsError:
        return False
    except OSError:  # pragma: no cover - a file system without hard links
        return False
    return True


def _finding_dict(finding: object) -> dict[str, object]:
    from stagegate.store._load import _finding_dict as convert  # noqa: PLC0415

    return dict(convert(finding))  # type: ignore[arg-type]


def _unsealed(e: Event) -> Event:
    """The event without its digest (equal to it: the digest is not part of equality)."""
    return recorded_event(
        e.opportunity_id, e.seq, e.kind, e.at, e.actor, e.stage, e.process, e.process_version,
        e.from_stage, e.move, e.reason, e.gate, e.amount, e.close_date, e.subject, e.details,
    )  # fmt: skip


class _Replayer:
    """Replays each deal's events as they stream past, when the log lists each deal's together.

    A log written by ``write_events`` (or ``stagegate simulate``) groups each opportunity's
    events, so each can be replayed once its last event has been read, without reading the
    staged events back. If a deal's events are split across the file, or too many deals fail,
    :attr:`complete` is false and the staged events are replayed from the staging store instead.
    The problems found are those the staged replay would give, in the same (sorted) order.
    """

    MAX_PROBLEMS = 1_000
    """More failing deals than this: leave the verdict to the staged replay (bounded memory)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.run: list[Event] = []
        self.seen: set[str] = set()
        self.problems: list[tuple[str, list[str]]] = []
        self.complete = True

    def add(self, event: Event) -> None:
        """Take the next event of the log (in file order)."""
        if not self.complete:
            return
        if self.run and event.opportunity_id != self.run[0].opportunity_id:
            self._close()
        if not self.run and event.opportunity_id in self.seen:
            self.complete, self.run = False, []  # the deal's events are split
            return
        # its digest is checked where it is staged: the replay need not hash it again
        self.run.append(event if event.digest is None else _unsealed(event))

    def _close(self) -> None:
        oid = self.run[0].opportunity_id
        self.seen.add(oid)
        found = _replay_problems(self.process, self.run)
        if found:
            self.problems.append((oid, found))
            if len(self.problems) > self.MAX_PROBLEMS:
                self.complete = False
        self.run = []

    def finish(self) -> None:
        """After the last event."""
        if self.complete and self.run:
            self._close()

    def verdict(self) -> int:
        """The number of opportunities replayed; raise as the staged replay would.

        Raises:
            ImportRefusedError: some deals do not replay (the first of them by id).
        """
        problems: list[str] = []
        for _, found in sorted(self.problems):
            problems.extend(found)
            if len(problems) > SHOWN * 4:
                break
        if problems:
            raise _invalid(problems)
        return len(self.seen)


def _stage(
    staged: SQLiteStore,
    source: str,
    batch_size: int,
    phases: Phases | None = None,
    replayer: _Replayer | None = None,
    *,
    process: Process | None = None,
) -> tuple[int, dict[str, list[int]]]:
    """Parse the log into the staging store; return the events read and the negative amounts.

    With a ``replayer``, each event is also handed to it (see :class:`_Replayer`). With a
    ``process``, events recorded in another process are refused as the ordinary import
    refuses them (``unknown_process``).
    """
    tick = phase_of(phases, "reading", records_in(source) if phases else None)
    unit = record_unit(source)
    batch: list[Event] = []
    negative: dict[str, list[int]] = {}
    problems: list[str] = []
    foreign: set[str] = set()
    read = 0  # events
    records = log_records(source, batch_size=batch_size)
    while True:
        try:
            item = next(records, None)
        except EventLogError as exc:
            raise ImportRefusedError(
                "invalid_events", f"{exc}; nothing was written: fix the {unit}"
            ) from None
        if item is None:
            break
        number, data = item
        read += 1
        event = _event(number, data, source, unit)
        if process is not None and event.process != process.name:
            foreign.add(event.process)
        problems.extend(_value_problems(event))
        if event.amount is not None and event.amount.is_finite() and event.amount < 0:
            negative.setdefault(event.opportunity_id, []).append(event.seq)
        batch.append(event)
        if replayer is not None:
            replayer.add(event)
        if len(batch) >= batch_size:
            _flush(staged, batch, problems)
            tick(read)
    _flush(staged, batch, problems)
    tick(read)
    if foreign:
        raise _foreign(foreign, process)
    if replayer is not None:
        replayer.finish()
    if problems:
        raise _invalid(problems)
    if staged.count() == 0:
        raise ImportRefusedError(
            "invalid_events", f"{source!r} holds no events; nothing was written"
        )
    return staged.count(), negative


def _foreign(names: set[str], process: Process | None) -> ImportProblemError:
    shown = ", ".join(map(repr, sorted(names)))
    expected = "" if process is None else f", not {process.name!r}"
    return ImportProblemError(
        "events",
        [
            Finding(
                "unknown_process",
                Severity.ERROR,
                f"the log holds events of process {shown}{expected}; pass --process with the "
                "definition they were recorded in",
                used=False,
            )
        ],
    )


def _event(number: int, data: dict[str, object], source: str, unit: str) -> Event:
    try:
        return event_of(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        why = f"a value is out of range ({exc})" if isinstance(exc, OverflowError) else exc
        raise ImportRefusedError(
            "invalid_events",
            f"{unit} {number} of {source!r}: {why}; nothing was written: fix the {unit}",
        ) from None


def _flush(staged: SQLiteStore, batch: list[Event], problems: list[str]) -> None:
    if not batch or problems:
        batch.clear()
        return
    try:
        staged._stage(batch)  # noqa: SLF001 - the staging store is this module's own
    except (ConcurrencyError, EventLogError) as exc:
        problems.append(
            f"{exc} (each opportunity's events must appear in the file in seq order, once)"
        )
    batch.clear()


def _invalid(problems: list[str]) -> ImportRefusedError:
    return ImportRefusedError(
        "invalid_events",
        f"{len(problems)} problem(s) in the events; nothing was written: fix the file (or "
        "pass the process the events were recorded in) and import again",
        problems,
    )


def _verify(
    staged: SQLiteStore, process: Process, target: str | None, phases: Phases | None = None
) -> int:
    """Replay every staged opportunity, one at a time; compare with the target store."""
    tick = phase_of(phases, "checking", staged.count() if phases else None)
    checked = 0
    problems: list[str] = []
    comparison = _Comparison()
    store = None if target is None or not os.path.exists(target) else SQLiteStore(target)
    opportunities = 0
    try:
        run: list[Event] = []
        # Into a new store every staged run opens its deal and was sealed (its digests checked)
        # as it was staged: replay it without them rather than hash every event again. A run
        # continuing a log kept elsewhere is checked against that log's chain here.
        events = (
            staged.scan()
            if store is not None
            else staged._stream(_SCAN_UNSEALED, _stored_event, DEFAULT_BATCH_SIZE)  # noqa: SLF001
        )
        for event in events:
            if run and event.opportunity_id != run[0].opportunity_id:
                opportunities += 1
                _check_run(run, process, store, comparison, problems)
                checked += len(run)
                if not opportunities % TICK_RUNS:
                    tick(checked)
                run = []
                if len(problems) > SHOWN * 4:
                    break
            run.append(event)
        if run:
            opportunities += 1
            _check_run(run, process, store, comparison, problems)
            checked += len(run)
        tick(checked)
    finally:
        if store is not None:
            store.close()
    if problems:
        raise _invalid(problems)
    comparison.verdict()
    return opportunities


def _check_run(
    run: list[Event],
    process: Process,
    store: SQLiteStore | None,
    comparison: _Comparison,
    problems: list[str],
) -> None:
    if store is None:
        problems.extend(_replay_problems(process, run))
    else:
        comparison.add(store, run, process)


def _absorb(
    store: SQLiteStore, staging: str, process: Process, record: ImportRecord
) -> ImportRecord:
    try:
        stored = store.write_import_from(staging, process=process, record=record)
    except ConcurrencyError as error:
        raise ImportRefusedError(
            "concurrent_writer",
            f"another process wrote to the store {store.path!r} during this import; nothing "
            "was written: import again when it is done (or import into a store of its own)",
            [str(error)],
        ) from None
    assert stored is not None  # noqa: S101 - a record was given
    return stored
