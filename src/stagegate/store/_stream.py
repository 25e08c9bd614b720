"""Importing a stagegate event log (JSON Lines) in bounded memory, still all or nothing.

:func:`stream_import` reads the log line by line into a *staging* store beside the target (same
folder, a hidden temporary name), ``batch_size`` events at a time, then replays each opportunity
from the staging store one at a time (the checks of :func:`~stagegate.store.write_import`).
Only then is anything written where it counts:

* with ``replace=True`` the staging store *is* the new store: it is swapped in for the old one
  with one ``os.replace``;
* into a store that does not exist yet, the staging store is linked into place (``os.link``,
  which never overwrites a file that appeared meanwhile);
* otherwise its events are copied into the target inside one transaction (``ATTACH`` and
  ``INSERT ... SELECT``), with the process definition and the import record.

Memory holds one batch of events and one opportunity's history, whatever the size of the file.

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
import gzip
import io
import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from stagegate.errors import ConcurrencyError, EventLogError
from stagegate.events import Event
from stagegate.store._load import (
    CHECKPOINT_FROM,
    REPLACE_TAG,
    SHOWN,
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
from stagegate.store.base import ImportRecord
from stagegate.store.postgresql import is_postgresql_url
from stagegate.store.sqlite import SQLiteStore

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
) -> ImportOutcome:
    """Import a JSON Lines event log (gzip allowed) into a store in bounded memory.

    Args:
        store_path: the SQLite store (created when missing), or a ``postgresql://`` URL.
        input_path: the log, one :meth:`~stagegate.events.Event.to_dict` object per line.
        process: the process the events were recorded in; every opportunity is replayed under
            it before anything is written.
        replace: build a new store from the log and swap it in for the old one.
        batch_size: events parsed and staged at a time.
        timeout: seconds to wait for another writer's lock.

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
    path, source = os.fspath(store_path), os.fspath(input_path)
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
            lines, negative = _stage(staged, source, batch_size)
            opportunities = _verify(staged, process, None if fresh else path)
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
            with SQLiteStore(path, timeout=timeout) as store:
                stored = _absorb(store, staging, process, record)
                if record.events >= CHECKPOINT_FROM:
                    store.checkpoint()
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


def _lines(source: str) -> Iterator[tuple[int, str]]:
    """The numbered lines of the log, read with the size limit of the importers."""
    from stagegate.io._read import _fail, _too_large, max_input_bytes  # noqa: PLC0415

    limit = max_input_bytes()
    _check_file(source)
    try:
        raw: IO[bytes] = open(source, "rb")  # noqa: PTH123, SIM115 - closed below
    except OSError as exc:
        raise _fail("events", "unreadable_file", f"cannot open {source!r}: {exc}") from None
    with raw:
        binary: IO[bytes] = raw
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            binary = cast("IO[bytes]", gzip.GzipFile(fileobj=raw))
        else:
            raw.seek(0)
        text = io.TextIOWrapper(binary, encoding="utf-8")
        read = 0
        try:
            for number, line in enumerate(text, start=1):
                read += len(line)
                if read > limit:
                    raise _too_large(source, "events", limit)
                yield number, line
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise _fail(
                "events", "unreadable_file", f"cannot read {source!r}: {exc}; save it as UTF-8"
            ) from None


def _check_file(source: str) -> None:
    from stagegate.io._read import read_file  # noqa: PLC0415

    if not Path(source).is_file():
        read_file(source, "events", 0)  # raises the importers' finding for what it is


def _stage(staged: SQLiteStore, source: str, batch_size: int) -> tuple[int, dict[str, list[int]]]:
    """Parse the log into the staging store; return the lines read and the negative amounts."""
    batch: list[Event] = []
    negative: dict[str, list[int]] = {}
    problems: list[str] = []
    lines = 0
    for number, line in _lines(source):
        lines = number
        if not line.strip():
            continue
        event = _event(number, line, source)
        problems.extend(_value_problems(event))
        if event.amount is not None and event.amount.is_finite() and event.amount < 0:
            negative.setdefault(event.opportunity_id, []).append(event.seq)
        batch.append(event)
        if len(batch) >= batch_size:
            _flush(staged, batch, problems)
    _flush(staged, batch, problems)
    if problems:
        raise _invalid(problems)
    if staged.count() == 0:
        raise ImportRefusedError(
            "invalid_events", f"{source!r} holds no events; nothing was written"
        )
    return lines, negative


def _event(number: int, line: str, source: str) -> Event:
    try:
        return Event.from_dict(json.loads(line))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        why = f"a value is out of range ({exc})" if isinstance(exc, OverflowError) else exc
        if isinstance(exc, json.JSONDecodeError):
            why = f"not JSON: {exc}"
        raise ImportRefusedError(
            "invalid_events",
            f"line {number} of {source!r}: {why}; nothing was written: fix the line",
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


def _verify(staged: SQLiteStore, process: Process, target: str | None) -> int:
    """Replay every staged opportunity, one at a time; compare with the target store."""
    problems: list[str] = []
    comparison = _Comparison()
    store = None if target is None or not os.path.exists(target) else SQLiteStore(target)
    opportunities = 0
    try:
        run: list[Event] = []
        for event in staged.scan():
            if run and event.opportunity_id != run[0].opportunity_id:
                opportunities += 1
                _check_run(run, process, store, comparison, problems)
                run = []
                if len(problems) > SHOWN * 4:
                    break
            run.append(event)
        if run:
            opportunities += 1
            _check_run(run, process, store, comparison, problems)
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
