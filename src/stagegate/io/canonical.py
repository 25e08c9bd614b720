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
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from stagegate._progress import Phases, phase_of
from stagegate._time import parse_date
from stagegate.errors import EventLogError, InvalidCommandError, InvalidTimestampError, cut
from stagegate.events import Event
from stagegate.io._build import Record
from stagegate.io._decode import event_of
from stagegate.io._lines import regular_file, text_lines
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
    CsvRows,
    Source,
    _fail,
    is_empty,
    resolve_columns,
    stop_if_interrupted,
    text,
)
from stagegate.io._result import Finding, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import ProcessLike

__all__ = [
    "EVENT_COLUMNS",
    "import_log",
    "log_records",
    "read_events",
    "record_unit",
    "records_in",
    "write_events",
]

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

PARQUET_GROUP = 65_536
"""Rows per row group in the Parquet files :func:`write_events` writes."""

_JSON_COLUMNS = ("gate", "details")
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
_FORMATS[".ndjson"] = "jsonl"

LOG_COLUMNS = ("opportunity_id", "at", "stage")
LOG_OPTIONAL = ("actor", "amount", "close_date", "reason", "seq", "owner")
OWNER = "owner"


def _format(path: Path, fmt: str | None) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gz":  # read as it is decompressed
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
        # groups of a bounded size: a reader that goes group by group (as stagegate import
        # does) holds one of them, not the whole file
        pq.write_table(pa.table(columns, schema=schema), target, row_group_size=PARQUET_GROUP)
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

    ``phases`` is told of the ``reading`` phase (events decoded so far).

    Raises:
        EventLogError: a record is malformed (the message names its line or row).
        ImportProblemError: the file cannot be read, or a CSV row has the wrong number of
            fields (``malformed_row``).
        InvalidCommandError: the format is unknown.
    """
    source = Path(path)
    unit = record_unit(source, format=format)
    events: list[Event] = []
    tick = phase_of(phases, "reading", records_in(source, format=format) if phases else None)
    for number, data in log_records(source, format=format):
        try:
            events.append(event_of(data))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            why = f"a value is out of range ({exc})" if isinstance(exc, OverflowError) else exc
            raise EventLogError(f"{unit} {number}: {why}") from None
        if not len(events) % TICK_ROWS:
            tick(len(events))
    tick(len(events))
    return tuple(events)


def log_records(
    path: str | Path,
    *,
    format: str | None = None,  # noqa: A002
    batch_size: int = 10_000,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The records of a log written by :func:`write_events`, one at a time, in file order.

    Each is ``(number, record)``: the line number in JSON Lines, the row number in CSV (the
    header is row 1) and Parquet (the first row is row 1); the record is what
    :meth:`Event.to_dict <stagegate.events.Event.to_dict>` gives, ready for
    :meth:`Event.from_dict <stagegate.events.Event.from_dict>`. Memory holds one record (one
    ``batch_size`` batch of a Parquet file), whatever the size of the file; gzip is read as
    it is decompressed.

    Raises:
        EventLogError: a record is not JSON, or a cell cannot be a field of an event.
        ImportProblemError: the file cannot be read or breaks a reading rule (see
            :func:`~stagegate.io.read_table`), or a CSV row has the wrong number of fields.
        InvalidCommandError: the format is unknown.
    """
    source = Path(path)
    chosen = _format(source, format)
    if chosen == "jsonl":
        return _json_lines(source)
    if chosen == "csv":
        return _csv_records(source)
    return _parquet_records(source, batch_size)


def record_unit(path: str | Path, *, format: str | None = None) -> str:  # noqa: A002
    """What a record of the log is numbered by in messages: ``"line"`` or ``"row"``.

    Raises:
        InvalidCommandError: the format is unknown.
    """
    return "line" if _format(Path(path), format) == "jsonl" else "row"


def records_in(path: str | Path, *, format: str | None = None) -> int | None:  # noqa: A002
    """About how many records the log holds, for progress; ``None`` when it cannot tell cheaply.

    Exact for Parquet (its metadata) and for logs as :func:`write_events` writes them; a text
    file is counted by its line breaks (one quick read, which also warms the cache for the
    real one), a gzip-compressed one is not counted.
    """
    source = Path(path)
    try:
        chosen = _format(source, format)
        if chosen == "parquet":
            _, pq = _pyarrow()
            return int(pq.ParquetFile(source).metadata.num_rows)
        breaks, last = 0, b"\n"
        with source.open("rb") as handle:
            if handle.read(2) == b"\x1f\x8b":
                return None
            handle.seek(0)
            while chunk := handle.read(1 << 22):
                breaks += chunk.count(b"\n")
                last = chunk[-1:]
    except Exception:  # noqa: BLE001 - only an estimate: reading proper reports the problem
        return None
    lines = breaks + (last != b"\n")
    return lines if chosen == "jsonl" else max(lines - 1, 0)


def _json_lines(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with text_lines(source, "canonical", newline=None) as lines:  # a BOM is ignored, as in CSV
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (ValueError, RecursionError) as exc:  # ValueError: also too many digits
                raise EventLogError(
                    f"line {number} of {str(source)!r} is not JSON: {exc}"
                ) from None


def _csv_records(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with text_lines(source, "canonical") as lines:
        reader = CsvRows(lines, "canonical", ",", DEFAULT_MAX_FIELD_SIZE)
        resolved = resolve_columns(reader.header, "canonical", EVENT_COLUMNS)
        where = [reader.header.index(resolved[name]) for name in EVENT_COLUMNS]
        width = len(reader.header)
        for number, values in reader:
            if len(values) != width:
                raise ImportProblemError(
                    "canonical",
                    [
                        Finding(
                            "malformed_row",
                            Severity.ERROR,
                            f"the row has {len(values)} fields, the header {width}; "
                            "nothing was read: check quoting and separators on that line",
                            [number],
                            used=False,
                        )
                    ],
                )
            yield number, _record(number, [values[i] for i in where])


def _parquet_records(source: Path, batch_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    regular_file(source, "canonical")
    _, pq = _pyarrow()
    try:
        parquet = pq.ParquetFile(source)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        stop_if_interrupted(exc)
        raise _unreadable(source, exc) from None
    with parquet:
        header = [str(name) for name in parquet.schema_arrow.names]
        duplicates = sorted(name for name, seen in Counter(header).items() if seen > 1)
        if duplicates:
            raise _fail(
                "canonical",
                "duplicate_columns",
                f"the file repeats column {', '.join(map(repr, duplicates))}; rename the "
                "columns so each appears once",
            )
        resolved = resolve_columns(header, "canonical", EVENT_COLUMNS)
        names = [resolved[name] for name in EVENT_COLUMNS]
        number = 0
        batches = parquet.iter_batches(batch_size=batch_size, columns=names)
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 - as above
                stop_if_interrupted(exc)
                raise _unreadable(source, exc) from None
            if batch is None:
                return
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                number += 1
                yield number, _record(number, [None if is_empty(v) else v for v in values])


def _unreadable(source: Path, exc: Exception) -> ImportProblemError:
    return _fail(
        "canonical", "unreadable_file", f"{str(source)!r} is not a readable Parquet file: {exc}"
    )


_MAX_SEQ_DIGITS = 19
"""Most digits a ``seq`` is read with (a store keeps it as a 64-bit integer)."""


def _record(number: int, values: list[Any]) -> dict[str, Any]:
    """A row of a table-format log (CSV text, typed Parquet cells) as a record of the log."""
    data = dict(zip(EVENT_COLUMNS, values, strict=True))
    for name, value in data.items():
        if value == "":
            data[name] = None
        elif value is not None and not isinstance(value, (str, int)):
            data[name] = _typed(value, name, number)
    seq = data["seq"]
    if type(seq) is str and seq.isascii() and seq.isdigit():
        if len(seq) > _MAX_SEQ_DIGITS:
            raise EventLogError(
                f"row {number}: seq {cut(seq, 40)} has {len(seq)} digits, more than a position "
                "in a deal's log can have; write the event's place in its deal, from 1"
            )
        data["seq"] = int(seq)
    for name in _JSON_COLUMNS:
        value = data[name]
        if isinstance(value, str):
            try:
                data[name] = json.loads(value)
            except (ValueError, RecursionError) as exc:  # ValueError: also too many digits
                raise EventLogError(f"row {number}: column {name!r} is not JSON: {exc}") from None
    return data


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


def _whole(raw: str) -> int | None:
    """The whole number ``raw`` writes, or ``None`` (``--5``, ``²``, thousands of digits)."""
    if not raw.lstrip("-").isdigit():
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _log_row(
    reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
) -> list[Record]:
    """The record of one stage-history row (its values in force after a change)."""
    assert at is not None  # noqa: S101 - the export dates every row
    get = reading.get
    raw_seq = text(get(row, "seq"))
    order = None if raw_seq is None else _whole(raw_seq)
    if raw_seq is not None and order is None:
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
            order=order or 0,
            segments=row_segments(row, reading.segment_columns),
        )
    ]
