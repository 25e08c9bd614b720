"""One reader for every importer: an export is described once, and read by :func:`read_export`.

An :class:`Export` says what an importer needs from its source: the columns it requires and
uses, which one holds the deal id and which the instant, where the owner is, how instants are
written, and the rules that differ between CRMs (what a stage change of a closed deal means,
whether won and lost are stages or a status). :func:`read_export` does what every importer
does the same way: read the table (a file, rows or a data frame), resolve the owner and
segment columns and the owners table, refuse rows without an id (``missing_id``) or with an
instant that cannot be read (the clock's findings), and hand each remaining row to the
importer's own row parser, then map the stages and build the events (:func:`assemble`).
The row parser is the only code an importer writes: its source columns -> canonical fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate._arguments import text_problem
from stagegate._progress import Phases
from stagegate._replay import RESERVED_FIELDS
from stagegate.io._build import Clock, Record
from stagegate.io._pipeline import (
    Owners,
    assemble,
    bad_value,
    field_segments,
    missing_id,
    read_owners,
    resolve_segments,
)
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, Source, Table, read_table, text
from stagegate.io._result import Finding, ImportResult
from stagegate.io._stages import ProcessLike

__all__ = ["Export", "Reading", "read_export"]


@attrs.frozen(slots=True)
class Export:
    """What one kind of export holds, and the rules its importer follows.

    Attributes:
        source: the importer's name (``"salesforce"``), used in results and messages.
        required: canonical columns the export must have.
        optional: canonical columns used when present.
        id: the canonical column of the deal id (rows without one: ``missing_id``).
        at: the canonical column of the row's instant; ``None`` when the row parser dates
            its rows itself (a snapshot: one row, several dated stages).
        owner: the canonical column of the deal's owner, for exports with one row per state.
        owner_fields: for field-change logs, the fields whose changes set the owner.
        epoch_ms: instants may be written as epoch milliseconds (HubSpot).
        stage_after_close: ``"reopen"`` or ``"refuse"``, see :func:`~stagegate.io._build.build`.
        add_terminal: add ``won`` / ``lost`` stages to an inferred process when the data has
            none (a CRM that records winning as a status).
    """

    source: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    id: str
    at: str | None
    owner: str = "owner"
    owner_fields: frozenset[str] = frozenset()
    epoch_ms: bool = False
    stage_after_close: str = "reopen"
    add_terminal: bool = False


@attrs.define(slots=True)
class Reading:
    """What a row parser may use: the table, the clock, the findings so far, the segments.

    Attributes:
        table: the table read.
        clock: parses instants and remembers why it could not.
        findings: findings so far; a parser adds one for each row it does not use.
        segment_columns: ``(segment, source column)`` pairs, for exports with one row per
            state (see :func:`~stagegate.io._pipeline.row_segments`).
        segment_fields: changed field -> segment, for field-change logs.
        state: what a parser keeps from row to row of this reading (values that only the
            whole export tells, used by ``finish``).
    """

    table: Table
    clock: Clock
    findings: list[Finding]
    segment_columns: tuple[tuple[str, str], ...]
    segment_fields: dict[str, str]
    state: dict[str, Any] = attrs.field(factory=dict)

    def get(self, row: Mapping[str, Any], name: str) -> Any:
        """The value of canonical column ``name`` in ``row`` (``None`` without that column)."""
        return self.table.get(row, name)


RowParser = Callable[[Reading, int, Mapping[str, Any], str, "datetime | None"], Iterable[Record]]
"""``parse(reading, row number, row, deal id, instant)`` -> the records of that row (none:
the row is not used, and the parser said why in ``reading.findings``)."""


def _nested(table: Table, row: Mapping[str, Any]) -> str | None:
    """The first column of ``row`` the importer reads that holds a list, a mapping or bytes.

    A frame or Parquet column of lists, structs or binary would otherwise be read as its
    Python text (``"['A']"``).
    """
    for column in table.columns.values():
        if isinstance(row.get(column), (list, tuple, Mapping, bytes, bytearray)):
            return column
    return None


def _storable(reading: Reading, number: int, oid: str, parsed: Iterable[Record]) -> list[Record]:
    r"""A row's records, or none (with a ``bad_value`` finding) when an event cannot hold one.

    A lone surrogate (a JSON ``\ud800`` escape) cannot be stored as UTF-8, and a custom field
    must have a name other than the table's own ``stage``, ``amount`` and ``close_date``.
    """
    records = list(parsed)
    for record in records:
        field = record.field
        if field is not None and (not field.strip() or field in RESERVED_FIELDS):
            hint = "rename the field, or drop its rows from the export"
            reading.findings.append(bad_value(number, oid, "field name", field, hint))
            return []
        for what in ("actor", "reason", "field", "value"):
            value = getattr(record, what)
            if value is not None and text_problem(value, single_line=False) is not None:
                hint = "it holds a lone surrogate; export the file as UTF-8 again"
                reading.findings.append(bad_value(number, oid, what, value, hint))
                return []
    return records


def read_export(
    export: Export,
    data: Source,
    parse: RowParser,
    *,
    process: ProcessLike | None,
    stage_map: Mapping[str, str] | None,
    columns: Mapping[str, str] | None,
    assume_zone: str | tzinfo | None,
    won: Iterable[str],
    lost: Iterable[str],
    order: Sequence[str] | None,
    as_of: datetime | None,
    strict: bool,
    encoding: str | None = None,
    delimiter: str = ",",
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
    segments: Sequence[str] = (),
    owners: Source | Owners | None = None,
    phases: Phases | None = None,
    prepare: Callable[[Reading], None] | None = None,
    skip: Callable[[Reading, int, Mapping[str, Any], str], bool] | None = None,
    finish: Callable[[Reading, list[Record]], list[Record]] | None = None,
    order_of: Callable[[Reading], Sequence[str] | None] | None = None,
) -> ImportResult:
    """Read ``data`` as ``export`` describes it, parse each row with ``parse``, and assemble.

    ``prepare`` looks at the table once it is read (its header), before any row. ``skip``
    (before the instant is read) drops rows the source marks as not to be used (a deleted
    row), having said why in ``reading.findings``. ``finish`` rewrites the records once every
    row is parsed (values that only the whole export tells). ``order_of`` gives the process
    order once the rows are read, when ``order`` is not given.
    """
    table = read_table(
        data,
        source=export.source,
        required=export.required,
        optional=export.optional,
        columns=columns,
        encoding=encoding,
        delimiter=delimiter,
        max_field_size=max_field_size,
        phases=phases,
    )
    by_row = not export.owner_fields
    reading = Reading(
        table=table,
        clock=Clock(assume_zone, epoch_ms=export.epoch_ms),
        findings=list(table.findings),
        segment_columns=resolve_segments(table, segments, export.source, owner=export.owner)
        if by_row
        else (),
        segment_fields={} if by_row else field_segments(segments, export.owner_fields),
    )
    if prepare is not None:
        prepare(reading)
    owner_map = None if owners is None else read_owners(owners, export.source)
    records: list[Record] = []
    id_column, at_column, clock = export.id, export.at, reading.clock
    for number, row in table.rows:
        oid = text(table.get(row, id_column))
        if oid is None:
            reading.findings.append(missing_id(number, table.columns[id_column]))
            continue
        nested = _nested(table, row)
        if nested is not None:
            hint = "write it as text or a number"
            reading.findings.append(bad_value(number, oid, nested, row[nested], hint))
            continue
        if text_problem(oid, single_line=True) is not None:
            reading.findings.append(
                bad_value(
                    number, None, table.columns[id_column], oid, "write the id as one line of text"
                )
            )
            continue
        if skip is not None and skip(reading, number, row, oid):
            continue
        at = None
        if at_column is not None:
            at = clock.instant(table.get(row, at_column), number, at_column)
            if at is None:
                continue
        records.extend(_storable(reading, number, oid, parse(reading, number, row, oid, at)))
    if finish is not None:
        records = finish(reading, records)
    if order is None and order_of is not None:
        order = order_of(reading)
    return assemble(
        records,
        source=export.source,
        process=process,
        stage_map=stage_map,
        clock=clock,
        findings=reading.findings,
        rows_read=len(table.rows) + len(table.findings),
        as_of=as_of,
        strict=strict,
        won=won,
        lost=lost,
        order=order,
        add_terminal=export.add_terminal,
        stage_after_close=export.stage_after_close,
        owners=owner_map,
        phases=phases,
    )
