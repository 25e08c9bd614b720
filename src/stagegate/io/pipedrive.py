"""Pipedrive-style field-change logs: one row per changed deal field.

Columns (rename with ``columns=``): ``deal_id``, ``change_time``, ``changed_field_key``,
``new_value``; optional ``user_id`` (the actor; a column, not the ``user_id`` field key).

Field keys: ``add_time`` opens the deal; ``stage_id`` changes the stage (ids are turned into
names by the stage table); ``lost_reason`` loses the deal with that reason (its label, from the
fields table, when given); ``status`` ``won`` / ``lost`` / ``open`` wins, loses or reopens it;
``expected_close_date`` reschedules; ``value`` changes the amount; every other key (``user_id``,
...) becomes a ``field_set`` event. Pipedrive closes a deal by its status, not its stage, so a
``stage_id`` change of a closed deal is refused (``change_after_close``).

>>> from stagegate.io import import_pipedrive
>>> rows = [
...     {"deal_id": "7", "change_time": "2024-04-09 21:32:09", "changed_field_key": "add_time",
...      "new_value": "2024-04-09T21:32:09"},
...     {"deal_id": "7", "change_time": "2024-04-20 21:32:09", "changed_field_key": "stage_id",
...      "new_value": "1"},
...     {"deal_id": "7", "change_time": "2024-05-02 10:00:00", "changed_field_key": "stage_id",
...      "new_value": "3"},
...     {"deal_id": "7", "change_time": "2024-05-30 10:00:00", "changed_field_key": "lost_reason",
...      "new_value": "2"},
... ]
>>> result = import_pipedrive(
...     rows, stages={"1": "Lead In", "2": "Contact Made", "3": "Proposal Made"},
...     lost_reasons={"2": "Pricing Issues"}, assume_zone="UTC")
>>> [(e.kind.value, e.stage, e.reason) for e in result.events]  # doctest: +NORMALIZE_WHITESPACE
[('opened', 'lead_in', None), ('stage_changed', 'proposal_made', None),
 ('stage_changed', 'lost', 'Pricing Issues')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate._progress import Phases
from stagegate.errors import InvalidTimestampError
from stagegate.io._build import Record
from stagegate.io._mapping import Export, Reading, read_export
from stagegate.io._pipeline import (
    Owners,
    amount,
    bad_value,
)
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, Source, read_table, text
from stagegate.io._result import Finding, Hint, ImportResult, Severity
from stagegate.io._stages import ProcessLike
from stagegate.io.salesforce import _date

__all__ = ["import_pipedrive", "read_pipedrive_fields", "read_pipedrive_stages"]

COLUMNS = ("deal_id", "change_time", "changed_field_key", "new_value")
OPTIONAL = ("user_id",)
OWNER_FIELDS = frozenset({"user_id"})


def read_pipedrive_stages(
    data: Source | Mapping[str, str], *, columns: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read a stage table (``stage_id``, ``stage_name``; ``order_nr`` if present) in order.

    A mapping passes through. Rows are ordered by ``order_nr`` when the table has it.

    Raises:
        ImportProblemError: the table cannot be read or lacks the columns.
    """
    if isinstance(data, Mapping):
        return {str(k): str(v) for k, v in data.items()}
    table = read_table(
        data,
        source="pipedrive stages",
        required=("stage_id", "stage_name"),
        optional=("order_nr",),
        columns=columns,
    )
    entries = []
    for number, row in table.rows:
        stage_id, name = text(table.get(row, "stage_id")), text(table.get(row, "stage_name"))
        if stage_id is None or name is None:
            continue
        order = text(table.get(row, "order_nr"))
        entries.append((float(order) if order and _is_number(order) else number, stage_id, name))
    entries.sort(key=lambda entry: entry[0])
    return {stage_id: name for _, stage_id, name in entries}


def _id_key(value: str) -> tuple[int, str]:
    """Stage ids in numeric order, then any other id (``²``, thousands of digits) by its text."""
    digits = value.isascii() and value.isdigit() and len(value) < _ID_DIGITS
    return (int(value), value) if digits else (1 << 62, value)


_ID_DIGITS = 18
"""Stage ids of fewer digits sort as numbers (below the ``1 << 62`` of other ids)."""


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def read_pipedrive_fields(data: Source) -> dict[str, dict[str, str]]:
    """Read a fields table (``FIELD_KEY``, ``FIELD_VALUE_OPTIONS`` as JSON ``[{id, label}]``).

    Returns ``{field key: {option id: label}}``, e.g. the labels of ``lost_reason`` ids.

    Raises:
        ImportProblemError: the table cannot be read or lacks the columns.
    """
    table = read_table(
        data, source="pipedrive fields", required=("FIELD_KEY",), optional=("FIELD_VALUE_OPTIONS",)
    )
    options: dict[str, dict[str, str]] = {}
    for _, row in table.rows:
        field_key = text(table.get(row, "FIELD_KEY"))
        raw = text(table.get(row, "FIELD_VALUE_OPTIONS"))
        if field_key is None or raw is None:
            continue
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, too many digits, nested too deep
            continue
        if isinstance(items, list):
            options[field_key] = {
                str(item["id"]): str(item["label"])
                for item in items
                if isinstance(item, dict) and "id" in item and "label" in item
            }
    return options


def import_pipedrive(
    data: Source,
    *,
    stages: Source | Mapping[str, str] | None = None,
    fields: Source | None = None,
    lost_reasons: Mapping[str, str] | None = None,
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
    """Import a Pipedrive-style deal field-change log.

    The deal is in its first recorded ``stage_id`` from its ``add_time`` on (Pipedrive deals
    always have a stage). A deal id with a second ``add_time`` holds two deals: they are split
    into ``"<id>"`` and ``"<id>#2"`` (earliest creation first) with a ``reused_id`` warning,
    by time when the first was closed before the second was created, else by file order when
    each deal's rows are listed together from its ``add_time``; otherwise the id is refused.

    Without ``process``, one is inferred: the open stages in the stage table's order, then
    ``won`` and ``lost`` (Pipedrive records winning and losing as a status, not a stage).

    Args:
        data: the change log: a path (CSV or Parquet), an open file, or dict rows.
        stages: the stage table (path, file, rows, or ``{stage_id: name}``) naming stage ids.
        fields: the fields table, for the labels of ``lost_reason`` (and stage) ids.
        lost_reasons: ``{lost_reason id: label}`` (overrides ``fields``).
        process: the target process; inferred when None.
        stage_map: stage name (or id) -> process stage id, for names that differ.
        columns: canonical column name -> this export's header.
        assume_zone: the zone of naive timestamps (Pipedrive writes UTC: ``"UTC"``).
        won: stage names (or ids) that are won stages (for inference; Pipedrive usually
            records winning as a status, and a ``won`` stage is added).
        lost: the same for lost stages.
        order: the open stages in process order (default: the stage table's order).
        as_of: rows dated later are refused as ``future_date`` (default: now).
        strict: raise instead of returning when any finding is an error or a warning.
        encoding: the CSV text encoding.
        delimiter: the CSV field separator.
        max_field_size: the largest CSV field accepted, in characters.
        segments: changed fields whose values are segments of the deal (the ``user_id``
            field, the deal's owner, is carried as ``owner``).
        owners: an owners table (see :func:`~stagegate.io.import_salesforce_history`).
        phases: told of the long phases (``reading`` the rows, ``checking`` them) for
            progress bars; see :mod:`stagegate._progress`.

    Raises:
        ImportProblemError: a file cannot be read, or ``strict`` and problems were found.
        InvalidCommandError: a bad argument.
    """
    options = read_pipedrive_fields(fields) if fields is not None else {}
    names = (
        read_pipedrive_stages(stages) if stages is not None else dict(options.get("stage_id", {}))
    )
    reasons = dict(options.get("lost_reason", {}))
    reasons.update(lost_reasons or {})
    changes = _Changes(names, reasons)
    return read_export(
        CHANGES,
        data,
        changes.record,
        process=process,
        stage_map=stage_map,
        columns=columns,
        assume_zone=assume_zone,
        won=won,
        lost=lost,
        order=order if order is not None else (list(names.values()) if names else None),
        as_of=as_of,
        strict=strict,
        encoding=encoding,
        delimiter=delimiter,
        max_field_size=max_field_size,
        segments=segments,
        owners=owners,
        phases=phases,
        finish=changes.finish,
    )


CHANGES = Export(
    "pipedrive", COLUMNS, OPTIONAL, id="deal_id", at="change_time", owner_fields=OWNER_FIELDS,
    stage_after_close="refuse", add_terminal=True,
)  # fmt: skip
"""The deal field-change log: one row per changed field; a status, not a stage, closes."""


class _Changes:
    """Parses change rows with the stage and lost-reason tables, noting ids they lack."""

    def __init__(self, names: Mapping[str, str], reasons: Mapping[str, str]) -> None:
        self.names, self.reasons = names, reasons
        self.unknown_ids: dict[str, list[int]] = {}
        self.unknown_reasons: dict[str, list[int]] = {}
        self.stage_rows: dict[str, int] = {}

    def record(
        self, reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
    ) -> list[Record]:
        """The record of one change row."""
        assert at is not None  # noqa: S101 - the export dates every row
        get = reading.get
        field = (text(get(row, "changed_field_key")) or "").casefold()
        new: Any = get(row, "new_value")
        value = text(new)
        actor = text(get(row, "user_id"))
        try:
            if field == "add_time":
                record = Record(oid, number, at, opens=True, actor=actor)
            elif field == "stage_id":
                if value is None:
                    reading.findings.append(
                        bad_value(number, oid, "stage_id", new, "give a stage id")
                    )
                    return []
                if self.names and value not in self.names:
                    self.unknown_ids.setdefault(value, []).append(number)
                    return []
                record = Record(oid, number, at, stage=self.names.get(value, value), actor=actor)
                self.stage_rows.setdefault(value, 0)
                self.stage_rows[value] += 1
            elif field == "lost_reason":
                label = value
                if value is not None and self.reasons and value not in self.reasons:
                    self.unknown_reasons.setdefault(value, []).append(number)
                elif value is not None:
                    label = self.reasons.get(value, value)
                record = Record(oid, number, at, close="lost", reason=label, actor=actor)
            elif field == "status":
                status = (value or "").casefold()
                if status not in {"won", "lost", "open"}:
                    reading.findings.append(
                        bad_value(number, oid, "status", new, "use won, lost or open")
                    )
                    return []
                record = Record(
                    oid,
                    number,
                    at,
                    close=status if status != "open" else None,
                    reopen=status == "open",
                    actor=actor,
                )
            elif field == "value":
                record = Record(oid, number, at, amount=amount(new), actor=actor)
            elif field == "expected_close_date":
                record = Record(oid, number, at, close_date=_date(new), actor=actor)
            else:
                record = Record(oid, number, at, field=field or None, value=value, actor=actor)
        except (ValueError, InvalidTimestampError):
            reading.findings.append(
                bad_value(number, oid, field, new, "amounts as 1234.50, dates as YYYY-MM-DD")
            )
            return []
        if not record.changes_state and not record.opens:
            reading.findings.append(
                bad_value(number, oid, "changed_field_key", field, "name the changed field")
            )
            return []
        if field in reading.segment_fields:
            record = attrs.evolve(record, segments=((reading.segment_fields[field], value),))
        return [record]

    def finish(self, reading: Reading, records: list[Record]) -> list[Record]:
        """After the last row: the findings about ids the tables do not name."""
        for stage_id, rows in self.unknown_ids.items():
            reading.findings.append(
                Finding(
                    "unknown_stage",
                    Severity.ERROR,
                    f"stage id {stage_id!r} is not in the stage table (ids: "
                    f"{', '.join(self.names)}); its {len(rows)} row(s) were not used: add it "
                    "to the table",
                    rows,
                    used=False,
                )
            )
        if not self.names and self.stage_rows:
            reading.findings.append(
                Finding(
                    "unnamed_stages",
                    Severity.WARNING,
                    f"no stage table was given, so the {sum(self.stage_rows.values())} "
                    "stage_id row(s) name stages by id only "
                    f"({', '.join(map(repr, sorted(self.stage_rows, key=_id_key)))}) "
                    "and their order is guessed from the data",
                    hint=Hint(
                        "pass the stage table with stages= (a stages.csv with stage_id, "
                        "stage_name), or fields= with the stage_id options",
                        "pass the stage table with --pipedrive-stages stages.csv (stage_id, "
                        "stage_name), or --pipedrive-fields fields.csv",
                    ),
                )
            )
        for reason, rows in self.unknown_reasons.items():
            reading.findings.append(
                Finding(
                    "unknown_value",
                    Severity.WARNING,
                    f"lost_reason id {reason!r} has no label in the fields table; recorded as "
                    f"{reason!r}",
                    rows,
                    hint=Hint(
                        f"add its label with lost_reasons={{{reason!r}: '...'}}",
                        "add its label to the fields table given with --pipedrive-fields",
                    ),
                )
            )
        return records
