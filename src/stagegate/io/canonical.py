"""The canonical log on disk: write events to CSV, Parquet or JSON Lines and read them back.

:func:`write_events` / :func:`read_events` round-trip every field of every event (gate reports
and details as JSON text in CSV and Parquet). :func:`import_log` reads a *stage-history table*
in the canonical columns from any system (one row per change, with the values in force after
it) and rebuilds the events, with findings like every importer.

>>> import tempfile, pathlib
>>> from stagegate.io import import_log, read_events, write_events
>>> rows = [
...     {"opportunity_id": "A-1", "at": "2024-01-05T09:00:00Z", "stage": "Lead",
...      "close_date": "2024-03-31"},
...     {"opportunity_id": "A-1", "at": "2024-02-01T09:00:00Z", "stage": "Lead",
...      "close_date": "2024-04-30"},
...     {"opportunity_id": "A-1", "at": "2024-04-20T09:00:00Z", "stage": "Won",
...      "close_date": "2024-04-30"},
... ]
>>> result = import_log(rows)
>>> [(e.kind.value, e.stage) for e in result.events]
[('opened', 'lead'), ('rescheduled', 'lead'), ('stage_changed', 'won')]
>>> with tempfile.TemporaryDirectory() as folder:
...     path = pathlib.Path(folder) / "log.csv"
...     _ = write_events(path, result.events)
...     read_events(path) == result.events
True
"""

from __future__ import annotations

import csv
import importlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from stagegate._progress import Phases, phase_of
from stagegate._time import parse_date
from stagegate.errors import EventLogError, InvalidCommandError, InvalidTimestampError
from stagegate.events import Event
from stagegate.io._build import Record
from stagegate.io._decode import event_of
from stagegate.io._mapping import Export, Reading, read_export
from stagegate.io._pipeline import (
    Owners,
    amount,
    bad_value,
    row_segments,
)
from stagegate.io._read import (
    DEFAULT_MAX_FIELD_SIZE,
    TICK_ROWS,
    Source,
    read_file,
    read_table,
    text,
)
from stagegate.io._result import ImportResult
from stagegate.io._stages import ProcessLike

__all__ = ["EVENT_COLUMNS", "import_log", "read_events", "write_events"]

EVENT_COLUMNS = (
    "opportunity_id",
    "seq",
    "kind",
    "at",
    "actor",
    "stage",
    "process",
    "process_version",
    "from_stage",
    "move",
    "reason",
    "gate",
    "amount",
    "close_date",
    "subject",
    "details",
)
"""The columns of a written log, in order (the keys of :meth:`Event.to_dict`)."""

_JSON_COLUMNS = ("gate", "details")
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
_FORMATS[".ndjson"] = "jsonl"

LOG_COLUMNS = ("opportunity_id", "at", "stage")
LOG_OPTIONAL = ("actor", "amount", "close_date", "reason", "seq", "owner")
OWNER = "owner"


def _format(path: Path, fmt: str | None) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gz":  # read_file decompresses gzip
        suffix = Path(path.stem).suffix.lower()
    chosen = fmt or _FORMATS.get(suffix)
    if chosen not in {"csv", "parquet", "jsonl"}:
        raise InvalidCommandError(
            f"cannot tell the format of {str(path)!r}: name it .csv, .parquet or .jsonl, or "
            "pass format='csv' | 'parquet' | 'jsonl'"
        )
    return chosen


def _flat(event: Event) -> dict[str, Any]:
    row = event.to_dict()
    row.pop("digest", None)  # the table formats have no digest column: JSON Lines keeps it
    for column in _JSON_COLUMNS:
        if row[column] is not None:
            row[column] = json.dumps(row[column], sort_keys=True, ensure_ascii=False)
    return row


def write_events(path: str | Path, events: Iterable[Event], *, format: str | None = None) -> int:  # noqa: A002
    """Write events to ``path`` (CSV, Parquet or JSON Lines, by suffix or ``format``).

    Returns the number of events written. Empty text cells in CSV mean ``None``.

    Raises:
        InvalidCommandError: the format is unknown, or an item is not an Event.
        ImportProblemError: Parquet was asked for and pyarrow is not installed.
    """
    target = Path(path)
    chosen = _format(target, format)
    items = list(events)
    for item in items:
        if not isinstance(item, Event):
            raise InvalidCommandError(f"write_events() takes Event objects, got {item!r}")
    if chosen == "jsonl":
        with target.open("w", encoding="utf-8", newline="\n") as handle:
            for event in items:
                handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
    elif chosen == "csv":
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
            writer.writeheader()
            for event in items:
                writer.writerow({k: "" if v is None else v for k, v in _flat(event).items()})
    else:
        pa, pq = _pyarrow()
        columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
        for event in items:
            for name, value in _flat(event).items():
                columns[name].append(value)
        schema = pa.schema(
            [(name, pa.int64() if name == "seq" else pa.string()) for name in EVENT_COLUMNS]
        )
        pq.write_table(pa.table(columns, schema=schema), target)
    return len(items)


def _pyarrow() -> tuple[Any, Any]:
    try:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:  # pragma: no cover - the test environment has pyarrow
        from stagegate.io._read import _fail  # noqa: PLC0415

        raise _fail(
            "canonical",
            "missing_dependency",
            "Parquet needs pyarrow: pip install 'stagegate[parquet]'",
        ) from None
    return pa, pq


def _typed(value: object, name: str, number: int) -> object:
    """A typed Parquet cell as the text ``write_events`` would have written for it.

    Tables written by data tools carry instants as timestamps, amounts as decimals and close
    dates as dates rather than text: aware timestamps and exact numbers read as their text;
    a timestamp without a time zone is refused (it names no instant).

    Raises:
        EventLogError: the cell is a timestamp without a time zone.
    """
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise EventLogError(
                f"row {number}: column {name!r} holds a timestamp without a time zone "
                f"({value.isoformat()}), which names no instant; write it as a timestamp "
                "with a time zone (for example UTC) or as ISO 8601 text with an offset"
            )
        return value.isoformat()
    if isinstance(value, (date, Decimal)):
        return value.isoformat() if isinstance(value, date) else str(value)
    return value


def read_events(
    path: str | Path,
    *,
    format: str | None = None,  # noqa: A002
    phases: Phases | None = None,
) -> tuple[Event, ...]:
    """Read events written by :func:`write_events`.

    ``phases`` is told of the ``reading`` phase (events decoded of the records in the file).

    Raises:
        EventLogError: a record is malformed (the message names its line or row).
        ImportProblemError: the file cannot be read.
        InvalidCommandError: the format is unknown.
    """
    source = Path(path)
    chosen = _format(source, format)
    records: list[tuple[int, dict[str, Any]]] = []
    if chosen == "jsonl":
        try:
            content = read_file(source, "canonical").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventLogError(f"cannot read {str(source)!r}: {exc}") from None
        for number, line in enumerate(io.StringIO(content), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except (json.JSONDecodeError, RecursionError) as exc:
                raise EventLogError(
                    f"line {number} of {str(source)!r} is not JSON: {exc}"
                ) from None
    else:
        table = read_table(source, source="canonical", required=EVENT_COLUMNS)
        pairs = [(name, table.columns[name]) for name in EVENT_COLUMNS]
        for number, row in table.rows:
            get = row.get
            data: dict[str, Any] = {name: get(column) for name, column in pairs}
            for name, value in data.items():
                if value == "":
                    data[name] = None
                elif not isinstance(value, (str, int)):
                    data[name] = _typed(value, name, number)
            seq = data["seq"]
            if type(seq) is str and seq.isascii() and seq.isdigit():
                data["seq"] = int(seq)
            for name in _JSON_COLUMNS:
                value = data[name]
                if isinstance(value, str):
                    try:
                        data[name] = json.loads(value)
                    except (json.JSONDecodeError, RecursionError) as exc:
                        raise EventLogError(
                            f"row {number}: column {name!r} is not JSON: {exc}"
                        ) from None
            records.append((number, data))
    events: list[Event] = []
    tick = phase_of(phases, "reading", len(records))
    for index, (number, data) in enumerate(records):
        if not index % TICK_ROWS:
            tick(index)
        try:
            events.append(event_of(data))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            why = f"a value is out of range ({exc})" if isinstance(exc, OverflowError) else exc
            raise EventLogError(
                f"{'line' if chosen == 'jsonl' else 'row'} {number}: {why}"
            ) from None
    tick(len(records))
    return tuple(events)


def import_log(
    data: Source,
    *,
    process: ProcessLike | None = None,
    stage_map: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    assume_zone: str | tzinfo | None = None,
    won: tuple[str, ...] = (),
    lost: tuple[str, ...] = (),
    order: Sequence[str] | None = None,
    as_of: datetime | None = None,
    strict: bool = False,
    encoding: str | None = None,
    delimiter: str = ",",
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
    segments: Sequence[str] = (),
    owners: Source | Owners | None = None,
    phases: Phases | None = None,
) -> ImportResult:
    """Import a generic stage-history table in the canonical columns.

    Columns (rename with ``columns=``): ``opportunity_id``, ``at``, ``stage`` required;
    ``actor``, ``amount``, ``close_date``, ``reason``, ``seq`` optional. ``seq`` (a whole
    number) orders rows at the same instant; without it they are applied in file order (with
    a ``tied_timestamps`` warning when they set different stages). Each row holds the values in
    force after a change; a row whose stage differs from the previous one is a stage change, a
    different ``close_date`` a reschedule, a different ``amount`` an amount change. A log
    written by :func:`write_events` is such a table (its extra columns are ignored).

    Arguments and errors are those of :func:`~stagegate.io.import_salesforce_history`.
    """
    return read_export(
        LOG,
        data,
        _log_row,
        process=process,
        stage_map=stage_map,
        columns=columns,
        assume_zone=assume_zone,
        won=won,
        lost=lost,
        order=order,
        as_of=as_of,
        strict=strict,
        encoding=encoding,
        delimiter=delimiter,
        max_field_size=max_field_size,
        segments=segments,
        owners=owners,
        phases=phases,
    )


LOG = Export("log", LOG_COLUMNS, LOG_OPTIONAL, id="opportunity_id", at="at", owner=OWNER)
"""The generic stage-history table: one row per change, the values in force after it."""


def _log_row(
    reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
) -> list[Record]:
    """The record of one stage-history row (its values in force after a change)."""
    assert at is not None  # noqa: S101 - the export dates every row
    get = reading.get
    raw_seq = text(get(row, "seq"))
    if raw_seq is not None and not raw_seq.lstrip("-").isdigit():
        reading.findings.append(bad_value(number, oid, "seq", raw_seq, "use a whole number"))
        return []
    try:
        value_amount = amount(get(row, "amount"))
        raw_date = text(get(row, "close_date"))
        close_date = None if raw_date is None else parse_date(raw_date)
    except (ValueError, InvalidTimestampError):
        reading.findings.append(
            bad_value(
                number,
                oid,
                "amount or close_date",
                (get(row, "amount"), get(row, "close_date")),
                "amounts as 1234.50, dates as YYYY-MM-DD",
            )
        )
        return []
    return [
        Record(
            oid,
            number,
            at,
            stage=text(get(row, "stage")),
            amount=value_amount,
            close_date=close_date,
            reason=text(get(row, "reason")),
            actor=text(get(row, "actor")),
            order=0 if raw_seq is None else int(raw_seq),
            segments=row_segments(row, reading.segment_columns),
        )
    ]
