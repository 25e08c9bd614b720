r"""Engagements from other systems, read into one shape and recorded as evidence on deals.

An :class:`Engagement` is one event of another system (a HubSpot meeting, a Marketo score
change, a calendar event, a row of any CSV or JSON export): its system, its id there, its type,
when it occurred, the deals it belongs to and its attributes. The readers return an
:class:`EngagementImport` (engagements and findings with row numbers and reasons, like the
history importers); :func:`record_engagements` then records, through an
:class:`~stagegate.io.evidence_map.EvidenceMap`, what each engagement satisfies:

>>> from datetime import datetime, timezone
>>> from stagegate import Opportunity, b2b
>>> from stagegate.io.evidence_map import evidence_map_from_toml
>>> rules = evidence_map_from_toml('''
... [[rule]]
... system = "crm"
... type = "call"
... when = { outcome = "connected" }
... stage = "qualification"
... activity = "discovery_call"
... ''', process=b2b())
>>> t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "acme-1", at=t0, actor="ana")
>>> calls = read_engagements(
...     b"id,deal,type,at,outcome\n"
...     b"c-1,acme-1,call,2026-03-03T10:00:00Z,connected\n"
...     b"c-2,acme-1,call,2026-03-04T10:00:00Z,no answer\n",
...     system="crm", columns={"source_id": "id", "opportunity_id": "deal", "occurred_at": "at"},
... )
>>> outcome = record_engagements({"acme-1": deal}, calls.engagements, rules,
...                              recorded_at=t0.replace(day=5))
>>> [(e.kind.value, e.subject) for e in outcome.events]
[('activity_logged', 'discovery_call')]
>>> [f.code for f in outcome.findings]
['unmapped']
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._time import UTC, parse_instant, to_utc
from stagegate.errors import StagegateError, cut
from stagegate.events import Event, EventKind, freeze
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, _field_limit
from stagegate.io._result import Finding, ImportProblemError, Severity
from stagegate.io.evidence_map import EvidenceMap, EvidenceRule
from stagegate.opportunity import Opportunity
from stagegate.provenance import Provenance

if TYPE_CHECKING:
    from stagegate.process import Process
    from stagegate.store.base import EventStore

__all__ = [
    "MARKETO_ACTIVITY_TYPES",
    "Engagement",
    "EngagementImport",
    "EvidenceOutcome",
    "read_engagements",
    "read_hubspot_engagements",
    "read_marketo_activities",
    "record_engagements",
    "record_evidence",
]

MAX_ENGAGEMENT_BYTES = 512 * 1024 * 1024
"""Largest engagement export read."""
GENERIC_COLUMNS = ("source_id", "opportunity_id", "type", "occurred_at")
"""The columns the generic reader needs (``columns=`` maps them to the file's headers)."""
MARKETO_ACTIVITY_TYPES: Mapping[int, str] = {
    1: "Visit Webpage",
    2: "Fill Out Form",
    6: "Send Email",
    7: "Email Delivered",
    10: "Open Email",
    11: "Click Email",
    12: "New Lead",
    13: "Change Data Value",
    22: "Change Score",
    104: "Change Status in Progression",
}
"""Names of common standard Marketo activity types; pass ``activity_types=`` for the rest."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SNAKE = re.compile(r"[^0-9a-zA-Z]+")


def snake(name: str) -> str:
    """An attribute name as a lowercase identifier: ``New Value`` -> ``new_value``."""
    return _SNAKE.sub("_", name).strip("_").lower() or "_"


def _texts(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _engagements(items: Iterable[Engagement]) -> tuple[Engagement, ...]:
    return tuple(items)


def _findings(items: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(items)


def _events(items: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(items)


def _pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(items)


@attrs.frozen(slots=True)
class Engagement:
    """One event of another system, in one shape for every source.

    Attributes:
        system: the source system (``hubspot``, ``marketo``, ``calendar``, ...).
        source_id: the id the system gave the event.
        type: its type in that system (``MEETING``, ``Change Score``, ``event``, ...).
        occurred_at: when it happened (aware, UTC).
        opportunity_ids: the deals it belongs to.
        attributes: what else the source says (JSON values; names as in the source, or in
            snake case where the source's names are labels).
        actor: who or what to name as the actor of the recorded event.
        row: the row (or item) of the source it was read from, from 1.
    """

    system: str
    source_id: str
    type: str
    occurred_at: datetime = attrs.field(converter=to_utc)
    opportunity_ids: tuple[str, ...] = attrs.field(converter=_texts)
    attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze, hash=False)
    actor: str | None = None
    row: int = 0

    def provenance(self, recorded_at: datetime) -> Provenance:
        """The provenance of evidence recorded from this engagement at ``recorded_at``.

        Raises:
            InvalidCommandError: ``recorded_at`` is before the engagement occurred.
        """
        return Provenance(
            self.system, self.source_id, occurred_at=self.occurred_at, recorded_at=recorded_at
        )


@attrs.frozen(slots=True)
class EngagementImport:
    """What a reader found: the engagements, and every finding about the input.

    Attributes:
        source: the kind of export read (``hubspot``, ``marketo``, ``icalendar``, ``generic``).
        engagements: the engagements, in the order read.
        findings: everything noticed; each row not used is named in a finding with
            ``used=False``.
        rows_read: rows (or items) read.
    """

    source: str
    engagements: tuple[Engagement, ...] = attrs.field(converter=_engagements)
    findings: tuple[Finding, ...] = attrs.field(converter=_findings)
    rows_read: int = 0


@attrs.frozen(slots=True)
class EvidenceOutcome:
    """What :func:`record_engagements` recorded.

    Attributes:
        events: the new events, per deal in ``seq`` order (append them to the store).
        findings: engagements not recorded (unmapped, unknown deal, not yet occurred, ...),
            duplicates, and lead sources recorded or not.
        recorded: engagements that recorded evidence on at least one deal.
        advanced: ``(deal, stage)`` for every stage entered because evidence arrived.
    """

    events: tuple[Event, ...] = attrs.field(converter=_events)
    findings: tuple[Finding, ...] = attrs.field(converter=_findings)
    recorded: int = 0
    advanced: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)


class _ReadError(StagegateError, ValueError):
    """A row cannot be read; the message says why (becomes a finding with ``code``)."""

    def __init__(self, message: str, code: str = "bad_value") -> None:
        self.code = code
        super().__init__(message)


def _raw(source: str | bytes | Path, what: str) -> str:
    if isinstance(source, bytes):
        raw = source
    else:
        try:
            with Path(source).open("rb") as handle:
                raw = handle.read(MAX_ENGAGEMENT_BYTES + 1)
        except OSError as exc:
            from stagegate.io._result import ImportProblemError  # noqa: PLC0415

            raise ImportProblemError(
                what,
                [
                    Finding(
                        "unreadable_file",
                        Severity.ERROR,
                        f"cannot read {str(source)!r}: {exc.strerror or exc}",
                        used=False,
                    )
                ],
            ) from None
    if len(raw) > MAX_ENGAGEMENT_BYTES:
        from stagegate.io._result import ImportProblemError  # noqa: PLC0415

        raise ImportProblemError(
            what,
            [
                Finding(
                    "file_too_large",
                    Severity.ERROR,
                    f"the input is larger than {MAX_ENGAGEMENT_BYTES} bytes; split it",
                    used=False,
                )
            ],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from stagegate.io._result import ImportProblemError  # noqa: PLC0415

        raise ImportProblemError(
            what,
            [
                Finding(
                    "bad_encoding",
                    Severity.ERROR,
                    f"the input is not UTF-8 (bad byte at offset {exc.start}); save it as UTF-8",
                    used=False,
                )
            ],
        ) from None


def _json_items(text: str, what: str, keys: Sequence[str]) -> list[Any]:
    """Items of a JSON array, an object holding one under one of ``keys``, or JSON Lines."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        if stripped.startswith("[") or (stripped.startswith("{") and "\n" not in stripped):
            loaded = json.loads(stripped)
        else:
            try:
                loaded = json.loads(stripped)
            except ValueError:
                loaded = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except (ValueError, RecursionError) as exc:
        from stagegate.io._result import ImportProblemError  # noqa: PLC0415

        raise ImportProblemError(
            what,
            [
                Finding(
                    "unreadable_file", Severity.ERROR, f"the input is not JSON: {exc}", used=False
                )
            ],
        ) from None
    if isinstance(loaded, Mapping):
        for key in keys:
            if isinstance(loaded.get(key), list):
                return list(loaded[key])
        return [loaded]
    if isinstance(loaded, list):
        return loaded
    return [loaded]


@attrs.frozen(slots=True)
class _LongRow:
    """A CSV row with more fields than its header (read as a finding, not as a row)."""

    header: int


def _row_object(item: Any) -> Mapping[Any, Any]:
    """An item of an export as a mapping; one that is not is refused (``malformed_row``)."""
    if isinstance(item, _LongRow):
        raise _ReadError(
            f"has more fields than the header's {item.header}; check the quoting and separators "
            "on that line",
            "malformed_row",
        )
    if not isinstance(item, Mapping):
        raise _ReadError("is not an object", "malformed_row")
    return item


def _csv_items(text: str, what: str) -> list[dict[Any, Any] | _LongRow]:
    """The rows of CSV text as mappings of header -> value (CR, LF or CRLF line ends).

    Raises:
        ImportProblemError: the text is not CSV (``unreadable_file``), or a field is larger
            than :data:`~stagegate.io._read.DEFAULT_MAX_FIELD_SIZE` (``field_too_large``).
    """
    try:
        with _field_limit(DEFAULT_MAX_FIELD_SIZE):
            reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
            header = reader.fieldnames or []
            repeated = sorted(name for name, seen in Counter(header).items() if seen > 1)
            if repeated:
                message = (
                    f"the header repeats {', '.join(map(repr, repeated))}; rename the columns so "
                    "each appears once"
                )
                raise ImportProblemError(
                    what, [Finding("duplicate_columns", Severity.ERROR, message, used=False)]
                )
            return [_LongRow(len(header)) if None in row else row for row in reader]
    except csv.Error as exc:
        too_large = "field larger than field limit" in str(exc)
        message = (
            f"a field is larger than {DEFAULT_MAX_FIELD_SIZE:,} characters (probably an "
            "unclosed quote); fix the quoting and export again"
            if too_large
            else f"the input is not valid CSV ({exc}); fix the file and export again"
        )
        code = "field_too_large" if too_large else "unreadable_file"
        raise ImportProblemError(
            what, [Finding(code, Severity.ERROR, message, used=False)]
        ) from None


def _instant(value: Any, assume_zone: str | None, *, epoch_ms: bool = False) -> datetime:
    """An instant from ISO 8601 text, or from epoch milliseconds (HubSpot)."""
    if isinstance(value, bool) or value is None or value == "":
        raise _ReadError("has no instant", "unparseable_timestamp")
    if isinstance(value, (int, float)) or (epoch_ms and isinstance(value, str) and value.isdigit()):
        try:
            return _EPOCH + timedelta(milliseconds=float(value))
        except (OverflowError, ValueError):
            raise _ReadError(f"has an instant out of range: {cut(repr(value))}") from None
    if not isinstance(value, str):
        raise _ReadError(f"has an instant that is not text: {cut(repr(value))}")
    try:
        return parse_instant(value, assume_zone=assume_zone)
    except StagegateError as exc:
        code = "naive_timestamp" if "naive" in str(exc) else "unparseable_timestamp"
        raise _ReadError(str(exc), code) from None


def _text_id(value: Any, what: str) -> str:
    if isinstance(value, bool) or value is None:
        raise _ReadError(f"has no {what}")
    if isinstance(value, (Mapping, list)):
        raise _ReadError(f"has an unusable {what} (not text or a number): {cut(repr(value))}")
    text = str(value).strip()
    if not text or len(text) > 500 or not text.isprintable():  # noqa: PLR2004
        raise _ReadError(f"has an unusable {what}: {cut(repr(value))}")
    return text


def _scalars(data: Any) -> dict[str, Any]:
    """The JSON scalar values of a mapping (nested objects and lists are left out)."""
    if not isinstance(data, Mapping):
        return {}
    return {
        str(key): value
        for key, value in data.items()
        if value is None or isinstance(value, (str, int, float, bool))
    }


class _Collector:
    """Engagements and findings, gathered row by row."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.engagements: list[Engagement] = []
        self.bad: dict[str, list[int]] = {}
        self.reasons: dict[str, str] = {}
        self.rows = 0

    def add(self, row: int, build: Callable[[], Engagement]) -> None:
        self.rows += 1
        try:
            engagement = build()
        except _ReadError as exc:
            reason = str(exc)
            self.bad.setdefault(reason, []).append(row)
            self.reasons[reason] = exc.code
            return
        except StagegateError as exc:
            reason = cut(str(exc), 300)
            self.bad.setdefault(reason, []).append(row)
            self.reasons[reason] = "bad_value"
            return
        self.engagements.append(attrs.evolve(engagement, row=row))

    def result(self) -> EngagementImport:
        findings = [
            Finding(
                self.reasons[reason],
                Severity.ERROR,
                f"{len(rows)} row{'s' if len(rows) != 1 else ''} not used: the row {reason}",
                rows=rows,
                used=False,
            )
            for reason, rows in self.bad.items()
        ]
        return EngagementImport(self.source, self.engagements, findings, self.rows)


def read_engagements(
    source: str | bytes | Path,
    *,
    system: str,
    columns: Mapping[str, str] | None = None,
    assume_zone: str | None = None,
    actor: str | None = None,
) -> EngagementImport:
    """Read engagements from any CSV or JSON export, through a column mapping.

    The needed columns are ``source_id``, ``opportunity_id`` (several ids may be separated by
    ``;``), ``type`` and ``occurred_at`` (ISO 8601); ``columns`` maps each to the file's header
    when they differ, and names attributes (``{"outcome": "Result"}``: the ``Result`` column is
    the ``outcome`` attribute). Every other column becomes an attribute under its own name.
    JSON input is an array of objects (or JSON Lines, or an object holding the array under
    ``results``).

    Args:
        source: a path, or the file's bytes.
        system: the name of the source system, e.g. ``"outreach"``.
        columns: our column name -> the file's header.
        assume_zone: the zone of instants written without an offset (never guessed).
        actor: the actor of the recorded events (default ``system:<system>``).

    Raises:
        ImportProblemError: the input cannot be read at all.
    """
    names = {name: name for name in GENERIC_COLUMNS} | dict(columns or {})
    text = _raw(source, "generic")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        rows: Sequence[Any] = _json_items(text, "generic", ("results", "engagements", "data"))
        first_row = 1
    else:
        rows = _csv_items(text, "generic")
        first_row = 2
    collector = _Collector("generic")
    used_headers = set(names.values())
    renamed = {name: header for name, header in names.items() if name not in GENERIC_COLUMNS}

    def build(item: Any) -> Engagement:
        item = _row_object(item)
        missing = [name for name in GENERIC_COLUMNS if item.get(names[name]) in (None, "")]
        if missing:
            code = "missing_id" if "opportunity_id" in missing else "bad_value"
            raise _ReadError(f"lacks {', '.join(missing)}", code)
        named = _text_id(item[names["opportunity_id"]], "opportunity_id (ids separated by ';')")
        deals = [part.strip() for part in named.split(";") if part.strip()]
        return Engagement(
            system,
            _text_id(item[names["source_id"]], "source_id"),
            _text_id(item[names["type"]], "type"),
            _instant(item[names["occurred_at"]], assume_zone),
            tuple(_text_id(deal, "opportunity_id") for deal in deals),
            {
                **{
                    key: value
                    for key, value in _scalars(item).items()
                    if key not in used_headers and value not in (None, "")
                },
                **{
                    name: item[header]
                    for name, header in renamed.items()
                    if item.get(header) not in (None, "")
                },
            },
            actor or f"system:{system}",
        )

    for number, item in enumerate(rows, start=first_row):
        collector.add(number, partial(build, item))
    return collector.result()


_HUBSPOT_OUTCOME = {
    "MEETING": ("meetingOutcome", "hs_meeting_outcome"),
    "CALL": ("status", "hs_call_status"),
    "EMAIL": ("status", "hs_email_status"),
}
_HUBSPOT_V3_TYPES = (
    ("hs_meeting_", "MEETING"),
    ("hs_call_", "CALL"),
    ("hs_email_", "EMAIL"),
    ("hs_note_", "NOTE"),
    ("hs_task_", "TASK"),
)


def _hubspot_deals(item: Mapping[str, Any]) -> tuple[str, ...]:
    links = item.get("associations")
    if not isinstance(links, Mapping):
        return ()
    ids = links.get("dealIds")
    if isinstance(ids, list):
        return tuple(_text_id(deal, "deal id") for deal in ids)
    deals = links.get("deals")
    if isinstance(deals, Mapping) and isinstance(deals.get("results"), list):
        return tuple(
            _text_id(deal.get("id") if isinstance(deal, Mapping) else deal, "deal id")
            for deal in deals["results"]
        )
    return ()


def _hubspot_item(item: Any) -> Engagement:
    if not isinstance(item, Mapping):
        raise _ReadError("is not an object", "malformed_row")
    deals = _hubspot_deals(item)
    if "engagement" in item:  # the Engagements API (v1) shape
        head = item["engagement"]
        if not isinstance(head, Mapping):
            raise _ReadError("has an 'engagement' that is not an object")
        kind = _text_id(head.get("type"), "engagement type").upper()
        attributes = _scalars(item.get("metadata"))
        when = head.get("timestamp", head.get("createdAt"))
        source_id, owner = head.get("id"), head.get("ownerId")
    elif "submittedAt" in item:  # a form submission (Forms API)
        kind = "FORM_SUBMISSION"
        values = item.get("values")
        attributes = (
            {
                str(v["name"]): v.get("value")
                for v in values
                if isinstance(v, Mapping) and isinstance(v.get("name"), str)
            }
            if isinstance(values, list)
            else {}
        )
        attributes.update(_scalars({k: item.get(k) for k in ("formId", "pageUrl", "pageTitle")}))
        when = item["submittedAt"]
        source_id = item.get("conversionId", item.get("id"))
        owner = None
    elif isinstance(item.get("properties"), Mapping):  # the CRM objects API (v3) shape
        properties = item["properties"]
        attributes = _scalars(properties)
        kind = str(item.get("type") or "").upper()
        if not kind:
            kind = next(
                (
                    name
                    for prefix, name in _HUBSPOT_V3_TYPES
                    if any(k.startswith(prefix) for k in properties)
                ),
                "",
            )
        if not kind:
            raise _ReadError(
                "has no engagement type (no 'type' and no hs_meeting_/hs_call_/... property)"
            )
        when = properties.get("hs_timestamp", properties.get("hs_createdate"))
        source_id, owner = (
            item.get("id", properties.get("hs_object_id")),
            properties.get("hubspot_owner_id"),
        )
    else:
        raise _ReadError(
            "is not a HubSpot engagement (no 'engagement', 'properties' or 'submittedAt')"
        )
    if not deals:
        raise _ReadError("is associated with no deal (associations.dealIds)", "missing_id")
    for name in _HUBSPOT_OUTCOME.get(kind, ()):
        if attributes.get(name) not in (None, ""):
            attributes.setdefault("outcome", attributes[name])
            break
    actor = "system:hubspot" if owner in (None, "") else f"hubspot:owner:{owner}"
    return Engagement(
        "hubspot",
        _text_id(source_id, "engagement id"),
        kind,
        _instant(when, None, epoch_ms=True),
        deals,
        attributes,
        actor,
    )


def read_hubspot_engagements(source: str | bytes | Path) -> EngagementImport:
    """Read HubSpot engagements: emails, meetings, calls, notes, tasks and form submissions.

    Takes the Engagements API shape (``{"engagement": {"id", "type", "timestamp", "ownerId"},
    "associations": {"dealIds": [...]}, "metadata": {...}}``), the CRM objects shape
    (``{"id", "properties": {"hs_timestamp", "hs_meeting_outcome", ...}, "associations":
    {"deals": {"results": [{"id"}]}}}``) and form submissions (``{"conversionId",
    "submittedAt", "values": [{"name", "value"}], "associations": {"dealIds": [...]}}``), as a
    JSON array, JSON Lines, or an object holding them under ``results`` or ``engagements``.
    Timestamps in epoch milliseconds or ISO 8601. Each engagement's ``type`` is ``EMAIL``,
    ``MEETING``, ``CALL``, ``NOTE``, ``TASK`` or ``FORM_SUBMISSION``; its ``outcome`` attribute
    is the meeting outcome (``COMPLETED``, ``NO_SHOW``, ...) or the call or e-mail status.

    Raises:
        ImportProblemError: the input cannot be read at all.
    """
    items = _json_items(_raw(source, "hubspot"), "hubspot", ("results", "engagements"))
    collector = _Collector("hubspot")
    for number, item in enumerate(items, start=1):
        collector.add(number, partial(_hubspot_item, item))
    return collector.result()


def _marketo_rows(text: str) -> tuple[list[Any], int]:
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return _json_items(text, "marketo", ("result", "results")), 1
    rows: list[Any] = []
    for row in _csv_items(text, "marketo"):
        if isinstance(row, _LongRow):
            rows.append(row)
            continue
        item: dict[str, Any] = dict(row)
        attributes = item.pop("attributes", None)
        if attributes:
            try:
                item["attributes"] = json.loads(attributes)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                item["attributes"] = "unreadable"
        rows.append(item)
    return rows, 2


def read_marketo_activities(
    source: str | bytes | Path,
    *,
    links: Mapping[str, Sequence[str]] | None = None,
    activity_types: Mapping[int, str] | None = None,
) -> EngagementImport:
    """Read a Marketo-style activity log (Get Lead Activities JSON, or its CSV export).

    Each activity has ``id`` (or ``marketoGUID``), ``leadId``, ``activityDate`` (ISO 8601),
    ``activityTypeId`` (or an ``activityType`` name), ``primaryAttributeValue`` and
    ``attributes`` (``[{"name", "value"}]``; in CSV a JSON text column). The engagement's type
    is the activity type's name (:data:`MARKETO_ACTIVITY_TYPES`, or ``activity_types``), else
    the id as text; its attributes are ``primary`` (the primary attribute value), ``lead_id``
    and each attribute in snake case (``New Value`` -> ``new_value``).

    Marketo records activities on leads, not deals: an activity belongs to the deals in an
    ``opportunityId`` field, or to those ``links`` names for its lead (lead id -> deal ids,
    e.g. from an opportunity-role export).

    Raises:
        ImportProblemError: the input cannot be read at all.
    """
    names = dict(MARKETO_ACTIVITY_TYPES) | dict(activity_types or {})
    rows, first_row = _marketo_rows(_raw(source, "marketo"))
    collector = _Collector("marketo")
    linked = {str(lead): tuple(deals) for lead, deals in (links or {}).items()}

    def build(item: Any) -> Engagement:
        item = _row_object(item)
        lead = item.get("leadId")
        type_name = item.get("activityType")
        if not type_name:
            type_id = item.get("activityTypeId")
            try:
                type_name = names.get(int(str(type_id)), str(type_id))
            except ValueError:
                raise _ReadError("has no activityTypeId or activityType") from None
        attributes: dict[str, Any] = {}
        raw = item.get("attributes")
        if raw == "unreadable":
            raise _ReadError("has an 'attributes' column that is not JSON")
        for pair in raw if isinstance(raw, list) else ():
            if isinstance(pair, Mapping) and isinstance(pair.get("name"), str):
                value = pair.get("value")
                if value is None or isinstance(value, (str, int, float, bool)):
                    attributes[snake(pair["name"])] = value
        if item.get("primaryAttributeValue") not in (None, ""):
            attributes["primary"] = item["primaryAttributeValue"]
        if lead not in (None, ""):
            attributes["lead_id"] = str(lead)
        deal = item.get("opportunityId") or attributes.get("opportunity_id")
        deals = (
            (_text_id(deal, "opportunityId"),)
            if deal not in (None, "")
            else linked.get(str(lead), ())
        )
        if not deals:
            raise _ReadError(
                "belongs to no deal (no opportunityId, and no link for its lead)", "missing_id"
            )
        return Engagement(
            "marketo",
            _text_id(item.get("marketoGUID") or item.get("id"), "activity id"),
            _text_id(type_name, "activity type"),
            _instant(item.get("activityDate"), None),
            deals,
            attributes,
            "system:marketo",
        )

    for number, item in enumerate(rows, start=first_row):
        collector.add(number, partial(build, item))
    return collector.result()


def _lead_details(rule: EvidenceRule, engagement: Engagement) -> dict[str, Any] | None:
    details: dict[str, Any] = {}
    attributes = engagement.attributes
    if rule.score is not None:
        value = attributes.get(rule.score)
        if isinstance(value, str):
            try:
                value = float(value)
                value = int(value) if value.is_integer() else value
            except ValueError:
                return None
        details["score"] = value
    if rule.status is not None:
        status = attributes.get(rule.status)
        details["status"] = None if status is None else str(status)
    return details if any(v is not None for v in details.values()) else None


def _group(findings: Iterable[tuple[str, Severity, str, Engagement, bool]]) -> list[Finding]:
    """One finding per (code, deal, reason), naming every row concerned."""
    grouped: dict[tuple[str, str | None, str], tuple[Severity, list[int], bool]] = {}
    for code, severity, what, engagement, used in findings:
        deal = engagement.opportunity_ids[0] if len(engagement.opportunity_ids) == 1 else None
        key = (code, deal, what)
        entry = grouped.setdefault(key, (severity, [], used))
        entry[1].append(engagement.row)
    return [
        Finding(code, severity, what, rows=[r for r in rows if r], opportunity_id=deal, used=used)
        for (code, deal, what), (severity, rows, used) in grouped.items()
    ]


def _rows_of(engagements: Sequence[Engagement]) -> Iterator[Engagement]:
    """Engagements in the order they occurred (ties: as read): evidence arrives in time order."""
    return iter(sorted(engagements, key=lambda e: e.occurred_at))


def record_engagements(
    opportunities: Mapping[str, Opportunity],
    engagements: Sequence[Engagement],
    evidence_map: EvidenceMap,
    *,
    recorded_at: datetime,
    advance: bool = False,
    actor: str = "system:stagegate",
) -> EvidenceOutcome:
    """Record what each engagement satisfies on the deals it belongs to.

    Each engagement is matched against the map (the first matching rule decides); each deal
    it names receives it once (:meth:`Opportunity.receive
    <stagegate.Opportunity.receive>`: a repeat delivery records nothing). A rule's
    ``lead_source`` sets the deal's ``lead_source`` attribute where the deals support segment
    attributes. With ``advance``, a deal whose next gate holds once its evidence is in is
    advanced (by ``actor``, at the instant of its last event), stage after stage, never into
    a closed stage.

    The opportunities are changed in place; the new events are returned to be stored.

    Args:
        opportunities: the deals, by id.
        engagements: what the readers returned.
        evidence_map: which engagement satisfies which evidence.
        recorded_at: when stagegate records it (the provenance's ``recorded_at``).
        advance: whether to advance deals whose gates hold.
        actor: who advances them.
    """
    recorded_at = to_utc(recorded_at, what="recorded_at")
    found: list[tuple[str, Severity, str, Engagement, bool]] = []
    first_seq = {oid: deal.version for oid, deal in opportunities.items()}
    touched: dict[str, None] = {}
    recorded = 0
    for engagement in _rows_of(engagements):
        rule = evidence_map.match(engagement)
        if rule is None:
            found.append(
                (
                    "unmapped",
                    Severity.INFO,
                    (
                        f"no rule of the evidence map takes {engagement.system} "
                        f"{engagement.type!r} events with these attributes: not recorded"
                    ),
                    engagement,
                    False,
                )
            )
            continue
        if engagement.occurred_at > recorded_at:
            found.append(
                (
                    "not_yet",
                    Severity.WARNING,
                    (
                        "occurred after the instant it is recorded at (a meeting still to "
                        "come?): not recorded; import it again once it has happened"
                    ),
                    engagement,
                    False,
                )
            )
            continue
        provenance = engagement.provenance(recorded_at)
        used = False
        for oid in engagement.opportunity_ids:
            deal = opportunities.get(oid)
            if deal is None:
                found.append(
                    (
                        "unknown_deal",
                        Severity.ERROR,
                        f"belongs to deal {oid!r}, which the store does not hold: not recorded",
                        engagement,
                        False,
                    )
                )
                continue
            if deal.received(*provenance.key) is not None:
                found.append(
                    (
                        "duplicate",
                        Severity.INFO,
                        f"{engagement.system} event already recorded for the deal: nothing changed",
                        engagement,
                        True,
                    )
                )
                used = True
                continue
            try:
                _receive(deal, rule, engagement, provenance)
            except StagegateError as exc:
                found.append(
                    ("not_recorded", Severity.ERROR, cut(str(exc), 300), engagement, False)
                )
                continue
            used = True
            touched[oid] = None
            _set_lead_source(deal, rule, engagement, found)
        recorded += used
    advanced: list[tuple[str, str]] = []
    if advance:
        for oid in touched:
            advanced.extend((oid, stage) for stage in _advance(opportunities[oid], actor))
    events = [
        event
        for oid, deal in opportunities.items()
        if deal.version > first_seq[oid]
        for event in deal.events[first_seq[oid] :]
    ]
    return EvidenceOutcome(events, _group(found), recorded, advanced)


def _receive(
    deal: Opportunity, rule: EvidenceRule, engagement: Engagement, provenance: Provenance
) -> Event:
    who = engagement.actor or f"system:{engagement.system}"
    if rule.target == "lead":
        details = _lead_details(rule, engagement)
        if details is None:
            raise _ReadError(
                f"is taken as a lead score by rule {rule.index}, but holds no usable "
                f"{' or '.join(a for a in (rule.score, rule.status) if a)}"
            )
        return deal.receive(
            EventKind.LEAD_SCORED,
            engagement.system,
            provenance=provenance,
            actor=who,
            details=details,
        )
    details = {"type": engagement.type}
    if rule.target == "deliverable":
        details |= {key: engagement.attributes.get(name) for key, name in rule.evidence.items()}
        kind = EventKind.DELIVERABLE_RECORDED
    else:
        kind = EventKind.ACTIVITY_LOGGED
    return deal.receive(kind, rule.subject or "", provenance=provenance, actor=who, details=details)


def _set_lead_source(
    deal: Opportunity,
    rule: EvidenceRule,
    engagement: Engagement,
    found: list[tuple[str, Severity, str, Engagement, bool]],
) -> None:
    if rule.lead_source is None:
        return
    value = engagement.attributes.get(rule.lead_source)
    if value in (None, ""):
        return
    setter = getattr(deal, "set_attribute", None)  # segment attributes (the segments work)
    if setter is None:
        found.append(
            (
                "lead_source_not_recorded",
                Severity.WARNING,
                "carries a lead source, but this stagegate has no deal attributes to record it",
                engagement,
                True,
            )
        )
        return
    current = deal.attributes.get("lead_source") if hasattr(deal, "attributes") else None
    if current == str(value):
        return
    try:
        setter("lead_source", str(value), at=deal.last_at, actor=engagement.actor or "system")
    except StagegateError as exc:
        found.append(
            ("lead_source_not_recorded", Severity.WARNING, cut(str(exc), 300), engagement, True)
        )


def _advance(deal: Opportunity, actor: str) -> list[str]:
    entered = []
    while not deal.is_closed:
        nxt = deal.process.next_stage(deal.stage)
        if nxt is None or not nxt.is_open or not deal.can_advance():
            break
        entered.append(deal.advance(at=deal.last_at, actor=actor).stage)
    return entered


def record_evidence(
    store: EventStore,
    engagements: Sequence[Engagement],
    evidence_map: EvidenceMap,
    *,
    recorded_at: datetime,
    process: Process | None = None,
    advance: bool = False,
    actor: str = "system:stagegate",
    dry_run: bool = False,
) -> EvidenceOutcome:
    """Record engagements as evidence into the deals of a store, all or nothing.

    Each deal named by an engagement is loaded and replayed under the process version it was
    recorded in (kept by the store; ``process`` when the store does not keep it), then
    :func:`record_engagements` runs and the new events are appended in one batch. With
    ``dry_run`` nothing is written.

    Raises:
        ConcurrencyError: another writer changed a deal meanwhile (nothing was written).
        EventLogError: a stored log does not replay under its process.
        UnknownProcessError: the store does not keep a deal's process and ``process`` is not
            that one.
        StoreError: the store cannot be written.
    """
    from stagegate.store.base import UnknownProcessError  # noqa: PLC0415 - the store loads lazily

    wanted = dict.fromkeys(oid for e in engagements for oid in e.opportunity_ids)
    processes: dict[tuple[str, str], Process] = {}
    deals: dict[str, Opportunity] = {}
    for oid in wanted:
        log = store.load(oid)
        if not log:
            continue
        key = (log[0].process, log[0].process_version)
        definition = processes.get(key)
        if definition is None:
            if process is not None and (process.name, process.version) == key:
                definition = process
            else:
                try:
                    definition = store.load_process(*key)
                except UnknownProcessError:
                    if process is None:
                        raise
                    raise UnknownProcessError(key[0], key[1], store.processes()) from None
            processes[key] = definition
        deals[oid] = Opportunity.replay(definition, log)
    outcome = record_engagements(
        deals, engagements, evidence_map, recorded_at=recorded_at, advance=advance, actor=actor
    )
    if outcome.events and not dry_run:
        store.append(outcome.events)
    return outcome
