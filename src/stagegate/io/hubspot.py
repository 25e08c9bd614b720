"""HubSpot deals: property history (``dealstage``, ``closedate``, ``amount``) and stage dates.

Property history comes as one row per property revision: ``deal_id``, ``property``, ``value``,
``timestamp`` (ISO 8601 or epoch milliseconds), optionally ``user_id`` (HubSpot's
``updatedByUserId``, the actor). Flatten the API's ``propertiesWithHistory`` into such rows
with :func:`hubspot_history_rows`. HubSpot keeps at most 20 revisions per property: older
stage changes are simply absent.

>>> from stagegate.io import import_hubspot_history
>>> rows = [
...     {"deal_id": "9", "property": "dealstage", "value": "appointmentscheduled",
...      "timestamp": "1709283600000"},
...     {"deal_id": "9", "property": "closedate", "value": "2024-06-30T00:00:00Z",
...      "timestamp": "1709283600000"},
...     {"deal_id": "9", "property": "closedate", "value": "2024-07-31T00:00:00Z",
...      "timestamp": "2024-04-02T08:00:00Z"},
...     {"deal_id": "9", "property": "dealstage", "value": "closedwon",
...      "timestamp": "2024-07-20T08:00:00Z"},
... ]
>>> result = import_hubspot_history(rows)
>>> [(e.kind.value, e.stage, e.close_date.isoformat())
...  for e in result.events]  # doctest: +NORMALIZE_WHITESPACE
[('opened', 'appointmentscheduled', '2024-06-30'),
 ('rescheduled', 'appointmentscheduled', '2024-07-31'),
 ('stage_changed', 'closedwon', '2024-07-31')]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

import attrs

from stagegate._progress import Phases
from stagegate._time import UTC, from_epoch_us, parse_instant
from stagegate.errors import InvalidTimestampError
from stagegate.io._build import Record
from stagegate.io._mapping import Export, Reading, read_export
from stagegate.io._pipeline import (
    Owners,
    amount,
    bad_value,
)
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, Source, text
from stagegate.io._result import Finding, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import ProcessLike
from stagegate.io.salesforce import _date
from stagegate.io.snapshot import import_snapshot

__all__ = ["hubspot_history_rows", "import_hubspot_history", "import_hubspot_stage_dates"]

COLUMNS = ("deal_id", "property", "value", "timestamp")
OPTIONAL = ("user_id",)
OWNER_FIELDS = frozenset({"hubspot_owner_id"})
OWNER_COLUMN = "hubspot_owner_id"
DATE_ENTERED = re.compile(r"^hs(?:_v2)?_date_entered_(?P<stage>.+)$", re.IGNORECASE)


def _not_api_shaped(number: int, what: str) -> ImportProblemError:
    return ImportProblemError(
        "hubspot",
        [
            Finding(
                "malformed_row",
                Severity.ERROR,
                f"deal {number} of the API response {what}; pass the deals as the "
                "API returns them (results with propertiesWithHistory=...)",
                used=False,
            )
        ],
    )


def hubspot_history_rows(deals: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Flatten HubSpot API deal objects into property-history rows.

    Each deal is ``{"id": ..., "propertiesWithHistory": {name: [{value, timestamp,
    updatedByUserId, ...}, ...]}}`` as returned with ``propertiesWithHistory=dealstage,...``.

    >>> deal = {"id": "9", "propertiesWithHistory": {"dealstage": [
    ...     {"value": "closedwon", "timestamp": "2024-07-20T08:00:00Z", "updatedByUserId": 5},
    ...     {"value": "qualifiedtobuy", "timestamp": "2024-03-01T09:00:00Z"}]}}
    >>> [row["value"] for row in hubspot_history_rows([deal])]
    ['closedwon', 'qualifiedtobuy']

    Raises:
        ImportProblemError: a deal or its history is not shaped like the API's
            (``malformed_row``), raised when the rows get there.
    """
    for number, deal in enumerate(deals, start=1):
        history = deal.get("propertiesWithHistory") if isinstance(deal, Mapping) else None
        if not isinstance(deal, Mapping) or not isinstance(history or {}, Mapping):
            raise _not_api_shaped(number, "is not an object with a propertiesWithHistory object")
        deal_id = deal.get("id")
        for name, revisions in (history or {}).items():
            if not isinstance(revisions or [], list) or not all(
                isinstance(revision, Mapping) for revision in revisions or ()
            ):
                raise _not_api_shaped(number, f"has no list of revision objects under {name!r}")
            for revision in revisions or ():
                user = revision.get("updatedByUserId")
                yield {
                    "deal_id": deal_id,
                    "property": name,
                    "value": revision.get("value"),
                    "timestamp": revision.get("timestamp"),
                    "user_id": None if user is None else str(user),
                }


def _hubspot_date(value: Any) -> date | None:
    """A HubSpot date property: ``YYYY-MM-DD``, an ISO instant, or epoch milliseconds (UTC)."""
    raw = text(value)
    if raw is None:
        return None
    if raw.isdigit():
        return from_epoch_us(int(raw) * 1000).date()
    if len(raw) > 10:  # noqa: PLR2004
        return parse_instant(raw, assume_zone=UTC).date()
    return _date(raw)


def import_hubspot_history(
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
    """Import HubSpot deal property history.

    ``dealstage`` revisions change the stage (its first revision opens the deal),
    ``closedate`` revisions reschedule (the date part, in UTC), ``amount`` revisions change the
    amount, ``createdate`` opens the deal, any other property becomes a ``field_set`` event.
    Stage values are HubSpot's internal stage ids (``closedwon``) or labels; map them with
    ``stage_map=`` or let the process be inferred (``closedwon`` / ``closedlost`` are
    recognized as won and lost).

    Arguments and errors are those of
    :func:`~stagegate.io.import_salesforce_history`.
    """
    return read_export(
        HISTORY,
        data,
        _revision,
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


HISTORY = Export(
    "hubspot", COLUMNS, OPTIONAL, id="deal_id", at="timestamp", owner_fields=OWNER_FIELDS,
    epoch_ms=True,
)  # fmt: skip
"""Deal property history: one row per revision of a property."""


def _revision(
    reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
) -> list[Record]:
    """The record of one property revision: ``dealstage``, ``closedate``, ``amount``, ..."""
    assert at is not None  # noqa: S101 - the export dates every row
    get = reading.get
    name = (text(get(row, "property")) or "").casefold()
    value = get(row, "value")
    actor = text(get(row, "user_id"))
    try:
        if name == "dealstage":
            record = Record(oid, number, at, stage=text(value), actor=actor)
        elif name == "closedate":
            record = Record(oid, number, at, close_date=_hubspot_date(value), actor=actor)
        elif name == "amount":
            record = Record(oid, number, at, amount=amount(value), actor=actor)
        elif name == "createdate":
            record = Record(oid, number, at, opens=True, actor=actor)
        else:
            record = Record(oid, number, at, field=name or None, value=text(value))
    except (ValueError, InvalidTimestampError):
        reading.findings.append(
            bad_value(number, oid, name, value, "amounts as 1234.50, dates as ISO 8601")
        )
        return []
    if not record.changes_state and not record.opens:
        reading.findings.append(
            bad_value(number, oid, name or "property", value, "a revision needs a value")
        )
        return []
    if name in reading.segment_fields:
        record = attrs.evolve(record, segments=((reading.segment_fields[name], text(value)),))
    return [record]


def import_hubspot_stage_dates(
    data: Source,
    *,
    stages: Sequence[str] | None = None,
    entered: Mapping[str, str] | None = None,
    process: ProcessLike | None = None,
    stage_map: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    assume_zone: str | tzinfo | None = None,
    undated_at: datetime | None = None,
    won: tuple[str, ...] = (),
    lost: tuple[str, ...] = (),
    as_of: datetime | None = None,
    strict: bool = False,
    encoding: str | None = None,
    delimiter: str = ",",
    segments: Sequence[str] = (),
    owners: Source | Owners | None = None,
    phases: Phases | None = None,
) -> ImportResult:
    """Import HubSpot's per-stage "date entered" snapshot columns.

    Columns named ``hs_v2_date_entered_<stage id>`` (or ``hs_date_entered_<stage id>``) are
    found automatically; pass ``entered={stage: column}`` for report exports with other
    headers. The deal id column is ``hs_object_id`` and the current stage ``dealstage``
    (rename with ``columns={"opportunity_id": "Record ID", "stage": "Deal Stage"}``). This is
    :func:`~stagegate.io.import_snapshot`: each stage is entered at most once, so a deal that
    moved back and forth shows only its latest entry into each stage. The
    ``hubspot_owner_id`` column, when present, is the deal's ``owner``; ``segments`` and
    ``owners`` are those of :func:`~stagegate.io.import_snapshot`.

    >>> rows = [{"hs_object_id": "9", "dealstage": "closedwon",
    ...          "hs_v2_date_entered_qualifiedtobuy": "2024-03-01T09:00:00Z",
    ...          "hs_v2_date_entered_closedwon": "2024-07-20T08:00:00Z"}]
    >>> result = import_hubspot_stage_dates(rows, stages=["qualifiedtobuy", "closedwon"])
    >>> [(e.kind.value, e.stage) for e in result.events]
    [('opened', 'qualifiedtobuy'), ('stage_changed', 'closedwon')]

    Raises:
        ImportProblemError: the file cannot be read, or ``strict`` and problems were found.
        InvalidCommandError: no date-entered column was found and ``entered`` is not given.
    """
    # the owner column is optional: an export without it imports without owners
    canonical = {"opportunity_id": "hs_object_id", "stage": "dealstage", "owner": OWNER_COLUMN}
    canonical.update(columns or {})
    return import_snapshot(
        data,
        entered=DATE_ENTERED if entered is None else entered,
        stages=stages,
        process=process,
        stage_map=stage_map,
        columns=canonical,
        assume_zone=assume_zone,
        undated_at=undated_at,
        won=won,
        lost=lost,
        as_of=as_of,
        strict=strict,
        encoding=encoding,
        delimiter=delimiter,
        source="hubspot",
        segments=segments,
        owners=owners,
        phases=phases,
    )
