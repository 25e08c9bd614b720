"""``write_import`` and ``stream_import`` into a PostgreSQL store: the same checks, one transaction.

:func:`~stagegate.store.write_import` and :func:`~stagegate.store.stream_import` hand a
``postgresql://`` target here. The events are verified exactly as for a SQLite file (replayed
under the process, compared with what the store holds), then written in one transaction, so
a concurrent reader sees the store before the import or after it. ``replace=True`` deletes the
old contents in that same transaction instead of swapping a file. A JSON Lines log is staged in
a temporary SQLite file first (bounded memory), then copied in with ``COPY``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from stagegate.errors import ConcurrencyError
from stagegate.events import Event
from stagegate.store._load import (
    SHOWN,
    ImportOutcome,
    ImportRefusedError,
    _check_against,
    _Comparison,
    _finding_dict,
    _negative_findings,
    _replay_problems,
    verify_events,
)
from stagegate.store.base import ImportRecord, Progress
from stagegate.store.postgresql import PostgreSQLStore
from stagegate.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from stagegate.io import Finding
    from stagegate.process import Process

__all__ = ["stream_import_postgresql", "write_import_postgresql"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def write_import_postgresql(  # noqa: PLR0917 - the arguments of write_import, in its order
    url: str,
    events: Sequence[Event],
    process: Process | None,
    source: str,
    input_path: str | os.PathLike[str] | None,
    rows_read: int | None,
    rows_used: int | None,
    findings: Iterable[Finding],
    replace: bool,
    progress: Progress | None,
    timeout: float,
) -> ImportOutcome:
    """:func:`~stagegate.store.write_import` for a ``postgresql://`` store."""
    with PostgreSQLStore(url, timeout=timeout) as store:
        ids = {event.opportunity_id for event in events if isinstance(event, Event)}
        fresh = replace or not store.held(ids)
        added = verify_events(process, events, replay=fresh)
        count = len(events)
        record = ImportRecord(
            id=0,
            at=_EPOCH,
            source=source,
            input_name="" if input_path is None else Path(input_path).name,
            rows_read=count if rows_read is None else rows_read,
            rows_used=count if rows_used is None else rows_used,
            opportunities=len(ids),
            events=count,
            findings=tuple(_finding_dict(f) for f in (*tuple(findings), *added)),
        )
        if not fresh:
            _check_against(store, events, process)  # type: ignore[arg-type]  # it reads any EventStore
        try:
            stored = store.write_import(
                events, process=process, record=record, progress=progress, replace=replace
            )
        except ConcurrencyError as error:
            raise _concurrent(store, error) from None
    assert stored is not None  # noqa: S101 - a record was given
    return ImportOutcome(stored, added, replaced=replace)


def stream_import_postgresql(
    url: str,
    input_path: str | os.PathLike[str],
    *,
    process: Process,
    replace: bool,
    batch_size: int,
    timeout: float,
) -> ImportOutcome:
    """:func:`~stagegate.store.stream_import` for a ``postgresql://`` store."""
    from stagegate.store._stream import _stage  # noqa: PLC0415 - _stream imports this module

    source = os.fspath(input_path)
    with (
        PostgreSQLStore(url, timeout=timeout) as store,
        tempfile.TemporaryDirectory(prefix="stagegate-import-") as folder,
        SQLiteStore(os.path.join(folder, "staged.sqlite"), timeout=timeout) as staged,  # noqa: PTH118
    ):
        lines, negative = _stage(staged, source, batch_size, process=process)
        opportunities = _verify(staged, process, None if replace else store)
        added = _negative_findings(negative)
        events = staged.count()
        record = ImportRecord(
            id=0,
            at=_EPOCH,
            source="events",
            input_name=Path(source).name,
            rows_read=lines,
            rows_used=events,
            opportunities=opportunities,
            events=events,
            findings=tuple(_finding_dict(f) for f in added),
        )
        try:
            stored = store.write_import_from(
                staged, process=process, record=record, replace=replace, batch_size=batch_size
            )
        except ConcurrencyError as error:
            raise _concurrent(store, error) from None
    assert stored is not None  # noqa: S101 - a record was given
    return ImportOutcome(stored, added, replaced=replace)


def _verify(staged: SQLiteStore, process: Process, store: PostgreSQLStore | None) -> int:
    """Replay every staged opportunity, one at a time; compare with what the store holds."""
    problems: list[str] = []
    comparison = _Comparison()
    opportunities = 0
    run: list[Event] = []
    held: set[str] = set()

    def check(run: list[Event]) -> None:
        if store is None:
            problems.extend(_replay_problems(process, run))
        elif run[0].opportunity_id not in held:  # new to the store, maybe not to its versions
            versions = comparison.earlier(store, run, process)
            problems.extend(_replay_problems(process, run, versions=versions))
        else:
            comparison.add(store, run, process)  # type: ignore[arg-type]  # it reads any EventStore

    if store is not None:
        held = store.held(staged.opportunity_ids())
    for event in staged.scan():
        if run and event.opportunity_id != run[0].opportunity_id:
            opportunities += 1
            check(run)
            run = []
            if len(problems) > SHOWN * 4:
                break
        run.append(event)
    if run:
        opportunities += 1
        check(run)
    if problems:
        raise ImportRefusedError(
            "invalid_events",
            f"{len(problems)} problem(s) in the events; nothing was written: fix the file (or "
            "pass the process the events were recorded in) and import again",
            problems,
        )
    comparison.verdict()
    return opportunities


def _concurrent(store: PostgreSQLStore, error: ConcurrencyError) -> ImportRefusedError:
    return ImportRefusedError(
        "concurrent_writer",
        f"another process wrote to the store {store.where} during this import; nothing was "
        "written: import again when it is done (or import into a store of its own)",
        [str(error)],
    )
