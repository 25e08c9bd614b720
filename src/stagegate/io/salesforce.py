"""Salesforce stage history: ``OpportunityHistory`` and ``OpportunityFieldHistory`` exports.

``OpportunityHistory`` (API / Data Loader) has one row per save that touched the stage, amount,
probability or close date, holding the **new** values only; the stage left is rebuilt by
ordering each opportunity's rows by ``CreatedDate``:

>>> from stagegate.io import import_salesforce_history
>>> rows = [
...     {"OpportunityId": "006A", "CreatedDate": "2024-03-01T09:00:00Z",
...      "StageName": "Prospecting", "Amount": "1000", "CloseDate": "2024-06-30"},
...     {"OpportunityId": "006A", "CreatedDate": "2024-03-20T09:00:00Z",
...      "StageName": "Qualification", "Amount": "1000", "CloseDate": "2024-07-31"},
...     {"OpportunityId": "006A", "CreatedDate": "2024-05-02T16:00:00Z",
...      "StageName": "Closed Won", "Amount": "1200", "CloseDate": "2024-05-02"},
... ]
>>> result = import_salesforce_history(rows)
>>> [(e.kind.value, e.stage) for e in result.events]  # doctest: +NORMALIZE_WHITESPACE
[('opened', 'prospecting'), ('rescheduled', 'prospecting'),
 ('stage_changed', 'qualification'), ('amount_changed', 'qualification'),
 ('rescheduled', 'qualification'), ('stage_changed', 'closed_won')]
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

import attrs

from stagegate._progress import Phases
from stagegate._time import parse_date
from stagegate.errors import InvalidTimestampError
from stagegate.io._build import Record
from stagegate.io._mapping import Export, Reading, read_export
from stagegate.io._pipeline import (
    Owners,
    amount,
    bad_value,
    row_segments,
)
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, Source, text
from stagegate.io._result import Finding, ImportResult, Severity
from stagegate.io._stages import ProcessLike

__all__ = ["import_salesforce_field_history", "import_salesforce_history"]

HISTORY_COLUMNS = ("OpportunityId", "CreatedDate", "StageName")
HISTORY_OPTIONAL = (
    "Amount",
    "CloseDate",
    "Probability",
    "ForecastCategory",
    "PrevAmount",
    "PrevCloseDate",
    "CreatedById",
    "IsDeleted",
    "OwnerId",
)
OWNER = "OwnerId"
OWNER_FIELDS = frozenset({"owner", "ownerid"})
FIELD_HISTORY_COLUMNS = ("OpportunityId", "Field", "NewValue", "CreatedDate")
FIELD_HISTORY_OPTIONAL = ("OldValue", "CreatedById", "IsDeleted", "DataType")
_CREATED_FIELDS = frozenset({"created", "opportunitycreatedfromlead"})


def _deleted(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes"}


def _kept(value: Any) -> bool:
    """Whether an ``IsDeleted`` cell says the row is not deleted (blank: not deleted)."""
    return value is None or str(value).strip().lower() in {"false", "0", "no", ""}


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = str(value).strip()
    return parse_date(raw[:10] if len(raw) > 10 and raw[10] in "T " else raw)  # noqa: PLR2004


def _deleted_finding(row: int, oid: str | None) -> Finding:
    return Finding(
        "deleted_row",
        Severity.INFO,
        "IsDeleted is true; not used (Salesforce keeps deleted history rows in exports that "
        "include them)",
        [row],
        oid,
        used=False,
    )


def import_salesforce_history(
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
    """Import a Salesforce ``OpportunityHistory`` export.

    Columns (rename with ``columns=``): ``OpportunityId``, ``CreatedDate``, ``StageName``
    required; ``Amount``, ``CloseDate``, ``CreatedById`` (the actor), ``IsDeleted`` used when
    present; ``Probability``, ``ForecastCategory``, ``PrevAmount``, ``PrevCloseDate`` are read
    but not used (the process defines probabilities; previous values are rebuilt by ordering).

    Each opportunity's first row opens it; a later row that changes the amount records an
    ``amount_changed`` event, one that changes ``CloseDate`` a ``rescheduled`` event, and one
    that changes the stage an imported ``stage_changed`` event, in that order.

    Args:
        data: a path (CSV or Parquet), an open file, or dict rows.
        process: the process whose stages the labels map to; inferred from the data if None.
        stage_map: source stage label -> process stage id, for labels that differ.
        columns: canonical column name -> this export's header.
        assume_zone: the zone of timestamps written without an offset (never guessed).
        won: source labels of won stages (for inference, besides labels like ``Closed Won``).
        lost: source labels of lost stages.
        order: the open stages in process order (for inference; default: guessed from the
            data, with an ``inferred_process`` warning).
        as_of: rows dated later are refused as ``future_date`` (default: now).
        strict: raise instead of returning when any finding is an error or a warning.
        encoding: the CSV text encoding (default UTF-8, BOM accepted).
        delimiter: the CSV field separator.
        max_field_size: the largest CSV field accepted, in characters.
        segments: more columns to carry as segments (``Region__c``, ``Type``): each row's
            value is in force from its instant on. The owner column (``OwnerId``, rename with
            ``columns={"OwnerId": ...}``) is carried as ``owner`` when the export has it. In
            field-change logs (Salesforce field history, HubSpot, Pipedrive) ``segments``
            names changed fields instead, and the owner field (``Owner``,
            ``hubspot_owner_id``, ``user_id``) sets ``owner``.
        owners: an owners table (a path, rows, a frame, or ``{owner: {segment: value}}``):
            its first column the owner, each other column a segment of that owner's deals
            (a team, a manager, a regional office), set whenever the owner is.
        phases: told of the long phases (``reading`` the rows, ``checking`` them) for
            progress bars; see :mod:`stagegate._progress`.

    The owner and segments are carried in :attr:`ImportResult.segments` and as columns of
    :meth:`ImportResult.to_frame`.

    Raises:
        ImportProblemError: the file cannot be read, or ``strict`` and problems were found.
        InvalidCommandError: a bad argument (an unknown column name, a stage_map target).
    """
    return read_export(
        HISTORY,
        data,
        _history_row,
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
        skip=_skip_deleted,
    )


def import_salesforce_field_history(
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
    """Import a Salesforce ``OpportunityFieldHistory`` export.

    Columns: ``OpportunityId``, ``Field``, ``NewValue``, ``CreatedDate`` required;
    ``OldValue``, ``CreatedById`` (the actor), ``IsDeleted`` used when present. ``Field`` values
    ``StageName``, ``Amount`` and ``CloseDate`` become stage changes, amount changes and
    reschedules; ``created`` (or ``opportunityCreatedFromLead``) opens the opportunity; any other
    field becomes a ``field_set`` event. The stage at creation is the ``OldValue`` of the first
    ``StageName`` change (the same for the first amount and close date).

    >>> rows = [
    ...     {"OpportunityId": "006B", "Field": "created", "OldValue": "", "NewValue": "",
    ...      "CreatedDate": "2024-03-01T09:00:00Z"},
    ...     {"OpportunityId": "006B", "Field": "StageName", "OldValue": "Prospecting",
    ...      "NewValue": "Closed Lost", "CreatedDate": "2024-03-09T10:00:00Z"},
    ... ]
    >>> result = import_salesforce_field_history(rows)
    >>> [(e.kind.value, e.from_stage, e.stage) for e in result.events]
    [('opened', None, 'prospecting'), ('stage_changed', 'prospecting', 'closed_lost')]

    Arguments and errors are those of :func:`import_salesforce_history`.
    """
    return read_export(
        FIELD_HISTORY,
        data,
        _field_row,
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
        skip=_skip_deleted,
        finish=_with_initial_values,
    )


HISTORY = Export(
    "salesforce", HISTORY_COLUMNS, HISTORY_OPTIONAL, id="OpportunityId", at="CreatedDate",
    owner=OWNER,
)  # fmt: skip
"""``OpportunityHistory``: one row per save, with the values in force after it."""

FIELD_HISTORY = Export(
    "salesforce", FIELD_HISTORY_COLUMNS, FIELD_HISTORY_OPTIONAL, id="OpportunityId",
    at="CreatedDate", owner_fields=OWNER_FIELDS,
)  # fmt: skip
"""``OpportunityFieldHistory``: one row per changed field, with its old and new value."""


def _skip_deleted(reading: Reading, number: int, row: Mapping[str, Any], oid: str) -> bool:
    """Rows whose ``IsDeleted`` is true are not used (``deleted_row``).

    Nor are rows whose ``IsDeleted`` is neither true nor false (``bad_value``: a localized
    ``WAHR`` may mean deleted).
    """
    value = reading.get(row, "IsDeleted")
    if _deleted(value):
        reading.findings.append(_deleted_finding(number, oid))
        return True
    if not _kept(value):
        hint = "write true or false (or 1 or 0)"
        reading.findings.append(bad_value(number, oid, "IsDeleted", value, hint))
        return True
    return False


def _history_row(
    reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
) -> list[Record]:
    """The record of one ``OpportunityHistory`` row: the stage, amount and close date saved."""
    assert at is not None  # noqa: S101 - the export dates every row
    get = reading.get
    try:
        value_amount = amount(get(row, "Amount"))
    except ValueError:
        reading.findings.append(bad_value(number, oid, "Amount", get(row, "Amount"), "use 1234.50"))
        return []
    try:
        close_date = _date(get(row, "CloseDate"))
    except InvalidTimestampError:
        reading.findings.append(
            bad_value(number, oid, "CloseDate", get(row, "CloseDate"), "use YYYY-MM-DD")
        )
        return []
    return [
        Record(
            oid,
            number,
            at,
            stage=text(get(row, "StageName")),
            amount=value_amount,
            close_date=close_date,
            actor=text(get(row, "CreatedById")),
            segments=row_segments(row, reading.segment_columns),
        )
    ]


_FIRST_VALUES = "first_values"


def _field_row(
    reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
) -> list[Record]:
    """The record of one ``OpportunityFieldHistory`` row: the field it changed, to what."""
    assert at is not None  # noqa: S101 - the export dates every row
    get = reading.get
    field = text(get(row, "Field")) or ""
    new, old = get(row, "NewValue"), get(row, "OldValue")
    actor = text(get(row, "CreatedById"))
    lowered = field.casefold()
    try:
        if lowered in _CREATED_FIELDS:
            record = Record(oid, number, at, opens=True, actor=actor)
        elif lowered == "stagename":
            record = Record(oid, number, at, stage=text(new), actor=actor)
        elif lowered == "amount":
            record = Record(oid, number, at, amount=amount(new), actor=actor)
        elif lowered == "closedate":
            record = Record(oid, number, at, close_date=_date(new), actor=actor)
        else:
            record = Record(oid, number, at, field=field, value=text(new), actor=actor)
    except (ValueError, InvalidTimestampError):
        reading.findings.append(
            bad_value(number, oid, field, new, "amounts as 1234.50, dates as YYYY-MM-DD")
        )
        return []
    if lowered in reading.segment_fields:
        record = attrs.evolve(record, segments=((reading.segment_fields[lowered], text(new)),))
    if lowered in {"stagename", "amount", "closedate"} and text(old) is not None:
        firsts = _firsts(reading)
        previous = firsts.get((oid, lowered))
        if previous is None or (at, number) < previous[:2]:
            firsts[(oid, lowered)] = (at, number, old)
    return [record]


def _firsts(reading: Reading) -> dict[tuple[str, str], tuple[datetime, int, Any]]:
    """The earliest ``OldValue`` of each (opportunity, field) seen so far in this reading."""
    found: dict[tuple[str, str], tuple[datetime, int, Any]] = reading.state.setdefault(
        _FIRST_VALUES, {}
    )
    return found


def _with_initial_values(reading: Reading, records: list[Record]) -> list[Record]:
    """Put the ``OldValue`` of each opportunity's first change on its opening record."""
    firsts = _firsts(reading)
    earliest: dict[str, int] = {}
    for index, record in enumerate(records):
        best = earliest.get(record.oid)
        if best is None or (record.at, record.row) < (records[best].at, records[best].row):
            earliest[record.oid] = index
    result = list(records)
    for oid, index in earliest.items():
        first = result[index]
        stage_old = firsts.get((oid, "stagename"))
        amount_old = firsts.get((oid, "amount"))
        date_old = firsts.get((oid, "closedate"))
        initial: dict[str, Any] = {}
        if stage_old is not None and (first.stage is None or stage_old[1] == first.row):
            initial["stage"] = text(stage_old[2])
        if amount_old is not None and first.amount is None and amount_old[1] != first.row:
            with contextlib.suppress(ValueError):
                initial["amount"] = amount(amount_old[2])
        if date_old is not None and first.close_date is None and date_old[1] != first.row:
            with contextlib.suppress(InvalidTimestampError):
                initial["close_date"] = _date(date_old[2])
        if not initial:
            continue
        if first.opens:
            result[index] = attrs.evolve(first, **initial)
        else:
            # the first row is itself a change: open just before it, at the same instant
            result.append(
                Record(oid, first.row, first.at, opens=True, actor=first.actor, order=-1, **initial)
            )
    return result
