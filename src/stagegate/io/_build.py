"""From normalized source rows to a canonical log: the rules every importer shares.

Each importer turns its rows into :class:`Record` objects (one per source row, with the source
stage label already mapped to a process stage id); :func:`build` then orders them, finds
duplicates, reused ids and rows after a close, and emits the events.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any

import attrs
from dateutil import parser as _dateutil_parser
from dateutil import tz as _dateutil_tz

from stagegate._progress import Phases, phase_of
from stagegate._time import UTC, from_epoch_us, resolve_zone, to_utc
from stagegate.errors import InvalidCommandError, InvalidTimestampError
from stagegate.events import Event, EventKind, MoveKind, freeze
from stagegate.io._frame import SegmentChange
from stagegate.io._result import Finding, Hint, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import ProcessLike, stage_kinds
from stagegate.process import Process

__all__ = ["Clock", "Record", "build", "finish"]

_OPEN, _WON, _LOST = "open", "won", "lost"
TICK_DEALS = 2_000
"""Deals between two progress ticks while checking."""


@attrs.frozen(slots=True)
class Record:
    """One source row, normalized.

    Attributes:
        oid: the opportunity id as written in the source.
        row: the source row number.
        at: when the change happened (UTC).
        opens: the row records the deal's creation (Pipedrive ``add_time``, a ``created`` row).
        stage: the process stage id the row sets, if any.
        amount: the amount the row sets, if any.
        close_date: the expected close date the row sets, if any.
        close: ``"won"`` / ``"lost"`` when the row closes the deal without naming a stage.
        reopen: the row reopens a closed deal (into the last open stage).
        reason: the reason given (a lost reason).
        field: a field the row sets that is not stage, amount or close date.
        value: that field's new value.
        actor: who made the change, if the source says.
        order: the position of the row among rows at the same instant (the export's ``seq``,
            a snapshot's stage rank); rows at one instant are applied by ``order``, then by
            file position.
        label: the source stage label, before mapping (set by the shared pipeline).
        segments: the owner and segment values the row sets, ``(name, value)`` pairs
            (``("owner", "ana")``, ``("team", "emea")``; a ``None`` value: none from then on).
    """

    oid: str
    row: int
    at: datetime
    opens: bool = False
    stage: str | None = None
    amount: Decimal | None = None
    close_date: date | None = None
    close: str | None = None
    reopen: bool = False
    reason: str | None = None
    field: str | None = None
    value: str | None = None
    actor: str | None = None
    order: int = 0
    label: str | None = None
    segments: tuple[tuple[str, str | None], ...] = ()

    def content(self) -> tuple[Any, ...]:
        """Everything but the row number: the source row as read (to find duplicates)."""
        return (*self.mapped_content(), self.order, self.label)

    def mapped_content(self) -> tuple[Any, ...]:
        """What the row sets after stage mapping (its source label and position left out)."""
        return (
            self.oid,
            self.at,
            self.opens,
            self.stage,
            self.amount,
            self.close_date,
            self.close,
            self.reopen,
            self.reason,
            self.field,
            self.value,
            self.actor,
            self.segments,
        )

    @property
    def changes_state(self) -> bool:
        """Whether the row sets anything."""
        return (
            self.stage is not None
            or self.amount is not None
            or self.close_date is not None
            or self.close is not None
            or self.reopen
            or self.field is not None
        )


def _plain(moment: datetime) -> datetime:
    """``moment`` as a plain ``datetime``, cut to the microseconds an event holds.

    A pandas ``Timestamp`` (a pandas or Parquet nanosecond column) would keep its nanoseconds.
    """
    if type(moment) is datetime:
        return moment
    return datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        moment.tzinfo,
        fold=moment.fold,
    )


class Clock:
    """Parses the instants of one import, remembering naive and aware ones for ``mixed_zones``."""

    def __init__(self, assume_zone: str | tzinfo | None, *, epoch_ms: bool = False) -> None:
        self.assume_zone = assume_zone
        self.epoch_ms = epoch_ms
        zone = None if assume_zone is None else resolve_zone(assume_zone)
        # zones without daylight saving need no ambiguity check: a fast path for them
        self._fixed = zone if isinstance(zone, (timezone, _dateutil_tz.tzutc)) else None
        self.naive_rows: list[int] = []
        self.aware_rows: list[int] = []
        self.unparseable: list[tuple[int, str]] = []
        self.nonexistent: list[tuple[int, str]] = []
        self.refused_naive: list[int] = []

    def instant(self, value: Any, row: int, what: str) -> datetime | None:
        """Return ``value`` as a UTC instant, or ``None`` after remembering why not."""
        parsed: datetime
        day: date | None = None
        if isinstance(value, datetime):
            parsed = _plain(value)
        elif isinstance(value, date):
            day = value
            parsed = datetime(value.year, value.month, value.day)  # noqa: DTZ001 - naive on purpose
        elif value is None or (isinstance(value, str) and not value.strip()):
            self.unparseable.append((row, f"{what} is empty"))
            return None
        else:
            text = str(value).strip()
            if self.epoch_ms and text.isascii() and text.isdigit():
                try:
                    return from_epoch_us(int(text) * 1000)
                except (InvalidTimestampError, OverflowError, ValueError):
                    self.unparseable.append((row, f"{what} {text[:40]!r} is outside UTC's range"))
                    return None
            if _DATE_ONLY.match(text):
                try:
                    day = date.fromisoformat(text)
                except ValueError:
                    self.unparseable.append((row, f"{what} {text!r} is not a calendar date"))
                    return None
                parsed = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - naive on purpose
            else:
                try:
                    parsed = datetime.fromisoformat(text)
                except ValueError:
                    try:
                        parsed = _dateutil_parser.isoparse(text)
                    except (ValueError, OverflowError):
                        self.unparseable.append((row, f"{what} {text[:40]!r} is not ISO 8601"))
                        return None
        try:
            return self._utc(parsed, day, row, what)
        except (OverflowError, ValueError):
            self.unparseable.append((row, f"{what} {parsed!s} is outside UTC's range"))
            return None

    def _utc(self, parsed: datetime, day: date | None, row: int, what: str) -> datetime | None:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.naive_rows.append(row)
            if self.assume_zone is None:
                self.refused_naive.append(row)
                return None
            if self._fixed is not None:
                return parsed.replace(tzinfo=self._fixed).astimezone(UTC)
            if day is not None:
                return first_instant(day, self.assume_zone)
        else:
            self.aware_rows.append(row)
            return parsed.astimezone(UTC)
        try:
            return to_utc(parsed, assume_zone=self.assume_zone, what=what)
        except InvalidTimestampError:
            self.nonexistent.append((row, f"{what} {parsed.isoformat()}"))
            return None

    def findings(self) -> list[Finding]:
        """The findings about instants: unparseable, naive without a zone, mixed zones."""
        found: list[Finding] = []
        if self.refused_naive:
            found.append(
                Finding(
                    "naive_timestamp",
                    Severity.ERROR,
                    f"{len(self.refused_naive)} timestamp(s) have no time zone and no zone was "
                    "named; those rows were not used (never guessed)",
                    self.refused_naive,
                    used=False,
                    hint=Hint(
                        "pass the zone the export was written in, e.g. assume_zone='UTC' or "
                        "assume_zone='Europe/Berlin'",
                        "pass the zone the export was written in, e.g. --assume-zone UTC or "
                        "--assume-zone Europe/Berlin",
                    ),
                )
            )
        if self.unparseable:
            reasons = "; ".join(reason for _, reason in self.unparseable[:3])
            found.append(
                Finding(
                    "unparseable_timestamp",
                    Severity.ERROR,
                    f"{len(self.unparseable)} timestamp(s) cannot be read ({reasons}); those "
                    "rows were not used: write instants as ISO 8601, e.g. 2024-04-09T21:32:09Z",
                    [row for row, _ in self.unparseable],
                    used=False,
                )
            )
        if self.nonexistent:
            reasons = "; ".join(reason for _, reason in self.nonexistent[:3])
            found.append(
                Finding(
                    "unparseable_timestamp",
                    Severity.ERROR,
                    f"{len(self.nonexistent)} local time(s) do not exist or are ambiguous in "
                    f"{self.assume_zone!s} (a daylight-saving change: {reasons}); those rows "
                    "were not used",
                    [row for row, _ in self.nonexistent],
                    used=False,
                    hint=Hint(
                        "write those instants with their UTC offset, e.g. "
                        "2017-10-15T01:30:00-02:00, or name the zone they were really "
                        "written in with assume_zone=",
                        "write those instants with their UTC offset, e.g. "
                        "2017-10-15T01:30:00-02:00, or name the zone they were really "
                        "written in with --assume-zone",
                    ),
                )
            )
        if self.naive_rows and self.aware_rows:
            found.append(
                Finding(
                    "mixed_zones",
                    Severity.WARNING,
                    f"{len(self.aware_rows)} timestamp(s) carry a UTC offset and "
                    f"{len(self.naive_rows)} do not"
                    + (
                        f"; the naive ones were read in {self.assume_zone!s}"
                        if self.assume_zone is not None
                        else ""
                    )
                    + ": check that the export did not mix local and UTC times",
                    self.naive_rows,
                )
            )
        return found


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def first_instant(day: date, zone: str | tzinfo) -> datetime:
    """The first instant of the calendar ``day`` in ``zone``, in UTC.

    That is midnight, unless the zone's clocks jumped over midnight that day (a daylight-saving
    gap: in ``America/Sao_Paulo`` 2017-10-15 began at 01:00): then it is the end of the gap.
    Where midnight happened twice (clocks turned back over it), it is the earlier one.

    >>> from datetime import date
    >>> first_instant(date(2017, 10, 15), "America/Sao_Paulo").isoformat()
    '2017-10-15T03:00:00+00:00'
    >>> first_instant(date(2017, 10, 16), "America/Sao_Paulo").isoformat()
    '2017-10-16T02:00:00+00:00'
    """
    local = datetime(day.year, day.month, day.day, tzinfo=resolve_zone(zone))
    if not _dateutil_tz.datetime_exists(local):
        local = _dateutil_tz.resolve_imaginary(local)
    elif _dateutil_tz.datetime_ambiguous(local):
        local = _dateutil_tz.enfold(local, fold=0)
    return local.astimezone(UTC)


@attrs.define(slots=True)
class _State:
    stage: str
    amount: Decimal | None
    close_date: date | None
    last_open_stage: str


def build(  # noqa: PLR0915 - one pass, many rules, kept together
    records: Iterable[Record],
    *,
    process: ProcessLike,
    source: str,
    rows_read: int,
    stage_map: Mapping[str, str],
    findings: Sequence[Finding],
    as_of: datetime | None,
    stage_after_close: str = "reopen",
    default_actor: str | None = None,
    strict: bool = False,
    phases: Phases | None = None,
) -> ImportResult:
    """Turn records into an :class:`ImportResult` (or raise, when ``strict``).

    Args:
        records: the normalized rows.
        process: the process whose stages the records name.
        source: the importer's name.
        rows_read: how many data rows the source had.
        stage_map: the mapping used, for the result.
        findings: findings so far (reading, stage mapping, instants).
        as_of: rows after this instant are refused as ``future_date``; None: no check.
        stage_after_close: what a stage change of a closed deal means: ``"reopen"`` (recorded,
            with a ``change_after_close`` warning; Salesforce, HubSpot, generic logs) or
            ``"refuse"`` (not used; Pipedrive, where the status, not the stage, closes a deal).
        default_actor: the actor of rows that name none (default ``import:<source>``).
        strict: raise :class:`ImportProblemError` if any finding is an error or a warning.
        phases: told of the ``checking`` phase (records turned into events).
    """
    found: list[Finding] = list(findings)
    actor_default = default_actor or f"import:{source}"
    kinds = stage_kinds(process)
    lost_stage = next((s for s, k in kinds.items() if k == _LOST), None)
    won_stage = next((s for s, k in kinds.items() if k == _WON), None)
    by_oid: dict[str, list[Record]] = {}
    for record in records:
        if as_of is not None and record.at > as_of:
            found.append(
                Finding(
                    "future_date",
                    Severity.ERROR,
                    f"the change is dated {record.at.isoformat()}, after {as_of.isoformat()}; "
                    "not used",
                    [record.row],
                    record.oid,
                    used=False,
                    hint=Hint(
                        "check the export's clock or time zone (or pass a later as_of=)",
                        "check the export's clock or time zone (or pass a later --as-of)",
                    ),
                )
            )
            continue
        by_oid.setdefault(record.oid, []).append(record)

    events: list[Event] = []
    used_rows: set[int] = set()
    segments: dict[str, list[SegmentChange]] = {}
    emitted: set[str] = set()
    tick = phase_of(phases, "checking", sum(map(len, by_oid.values())) if phases else None)
    checked = 0
    for number, (oid, group) in enumerate(by_oid.items()):
        checked += len(group)
        if not number % TICK_DEALS:
            tick(checked)
        group.sort(key=lambda r: (r.row, r.order))
        _find_out_of_order(oid, group, found)
        kept = _drop_duplicates(oid, group, found)
        for new_oid, part in _split_reused(oid, kept, found, kinds):
            part.sort(key=lambda r: (r.at, r.order, r.row))
            _find_ties(new_oid, part, found)
            _collect_segments(new_oid, part, segments)
            opening_index = 0
            opening_stage = part[0].stage
            if opening_stage is None:
                for index, later in enumerate(part):
                    if later.close is not None or later.reopen:
                        break
                    if later.stage is not None:
                        opening_stage, opening_index = later.stage, index
                        break
            if opening_stage is None:
                found.append(
                    Finding(
                        "no_stage",
                        Severity.ERROR,
                        "no row says which stage the deal was in before it closed; its rows "
                        "were not used: add its stage history, or drop the deal from the export",
                        [r.row for r in part],
                        oid,
                        used=False,
                    )
                )
                continue
            first = part[0]
            opp_events: list[Event] = []
            consumed = {opening_index}
            initial_amount, initial_date = first.amount, first.close_date
            for index, later in enumerate(part[1:], start=1):
                if later.at != first.at:
                    break
                only_values = later.stage is None and later.close is None and not later.reopen
                if only_values and later.field is None and not later.opens:
                    if later.amount is not None and initial_amount is None:
                        initial_amount = later.amount
                        consumed.add(index)
                    if later.close_date is not None and initial_date is None:
                        initial_date = later.close_date
                        consumed.add(index)

            def emit(
                kind: EventKind,
                record: Record,
                state: _State,
                *,
                from_stage: str | None = None,
                move: MoveKind | None = None,
                reason: str | None = None,
                subject: str | None = None,
                details: Mapping[str, Any] | None = None,
                opp_id: str = new_oid,
                sink: list[Event] = opp_events,
            ) -> None:
                sink.append(
                    Event(
                        opp_id,
                        len(sink) + 1,
                        kind,
                        record.at,
                        record.actor or actor_default,
                        state.stage,
                        process.name,
                        process.version,
                        from_stage,
                        move,
                        reason,
                        None,
                        state.amount,
                        state.close_date,
                        subject,
                        None if details is None else freeze(details),
                    )
                )
                used_rows.add(record.row)

            state = _State(opening_stage, initial_amount, initial_date, opening_stage)
            emit(EventKind.OPENED, first, state)
            used_rows.update(part[i].row for i in consumed)
            if first.field is not None:
                emit(
                    EventKind.FIELD_SET,
                    first,
                    state,
                    subject=first.field,
                    details={"value": first.value},
                )
            for index, record in enumerate(part[1:], start=1):
                if index in consumed and index != opening_index:
                    continue  # its value is part of the opening
                is_opening = index == opening_index  # its stage opened the deal
                target = None if is_opening else record.stage
                if record.close == _LOST:
                    target = lost_stage
                elif record.close == _WON:
                    target = won_stage
                elif record.reopen:
                    target = state.last_open_stage
                produced = len(opp_events)
                moves = target is not None and target != state.stage
                if kinds.get(state.stage) != _OPEN:
                    may_move = moves and (stage_after_close == "reopen" or record.reopen)
                    money = (record.amount is not None and record.amount != state.amount) or (
                        record.close_date is not None and record.close_date != state.close_date
                    )
                    if (moves or money) and not may_move:
                        what = " and ".join(
                            w
                            for w, differs in (("stage", moves), ("amount or close date", money))
                            if differs
                        )
                        found.append(
                            Finding(
                                "change_after_close",
                                Severity.ERROR,
                                f"the row changes the {what} of a deal closed as "
                                f"{state.stage!r}; not used: a closed deal changes only when "
                                "it is reopened, and the export does not say it was",
                                [record.row],
                                oid,
                                used=False,
                            )
                        )
                    else:
                        if moves and target is not None:
                            found.append(
                                Finding(
                                    "change_after_close",
                                    Severity.WARNING,
                                    f"the deal was closed as {state.stage!r} and this row moves "
                                    f"it to {target!r}; recorded as an imported stage change "
                                    "(a reopening)",
                                    [record.row],
                                    oid,
                                )
                            )
                            _move(record, state, target, kinds, emit)
                        _money_and_date(record, state, emit)
                else:
                    _money_and_date(record, state, emit)
                    if moves and target is not None:
                        _move(record, state, target, kinds, emit)
                if record.field is not None:
                    emit(
                        EventKind.FIELD_SET,
                        record,
                        state,
                        subject=record.field,
                        details={"value": record.value},
                    )
                if len(opp_events) == produced and not is_opening:
                    found.append(
                        Finding(
                            "no_change",
                            Severity.INFO,
                            f"the row sets values already in force (stage {state.stage!r}); "
                            "nothing to record",
                            [record.row],
                            oid,
                            used=False,
                        )
                    )
            if new_oid in segments and opp_events:
                opp_events = _with_segment_events(opp_events, part, found, used_rows)
            events.extend(opp_events)
            emitted.add(new_oid)
    tick(checked)
    return finish(
        source=source,
        process=process,
        events=events,
        findings=found,
        stage_map=stage_map,
        rows_read=rows_read,
        rows_used=len(used_rows),
        strict=strict,
        segments={oid: changes for oid, changes in segments.items() if oid in emitted},
    )


def _collect_segments(
    oid: str, part: Sequence[Record], history: dict[str, list[SegmentChange]]
) -> None:
    """Each change of an owner or segment value among ``part`` (in time order), from ``at`` on."""
    in_force: dict[str, str | None] = {}
    changes: list[SegmentChange] = []
    for record in part:
        for name, value in record.segments:
            if in_force.get(name, _UNSET) == value or (value is None and name not in in_force):
                continue
            if value is None and name == "owner":
                continue  # a deal always has an owner once it has one: a blank is no change
            in_force[name] = value
            changes.append((record.at, name, value))
    if changes:
        history[oid] = changes


_UNSET = object()


def _with_segment_events(
    opp_events: list[Event], part: Sequence[Record], found: list[Finding], used: set[int]
) -> list[Event]:
    """The deal's events with a ``reassigned`` / ``attribute_set`` event per segment change.

    Each change is recorded before the deal's first later or simultaneous event (never before
    the opening), carrying the stage, amount and close date in force there, so every event
    sees the values the row set; the log is then numbered again. A name or value a deal
    attribute cannot take is a ``bad_value`` finding, and a row whose only news was a segment
    value is used, not ``no_change``.
    """
    from stagegate.segments import attribute_name, attribute_value, owner_name  # noqa: PLC0415

    oid = opp_events[0].opportunity_id
    in_force: dict[str, str | None] = {}
    changes: list[tuple[datetime, int, str, str | None]] = []
    refused: set[str] = set()
    for record in part:
        for name, value in record.segments:
            if in_force.get(name, _UNSET) == value or (value is None and name not in in_force):
                continue
            try:
                if name == "owner":
                    if value is None:
                        continue  # an owner is never cleared by an export's blank
                    owner_name(value)
                else:
                    attribute_value(value, attribute_name(name))
            except InvalidCommandError as exc:
                if name not in refused:
                    refused.add(name)
                    found.append(
                        Finding(
                            "bad_value",
                            Severity.WARNING,
                            f"segment {name!r} is not recorded: {exc}",
                            [record.row],
                            oid,
                        )
                    )
                continue
            in_force[name] = value
            changes.append((record.at, record.row, name, value))
    if not changes:
        return opp_events
    rows = {row for _, row, _, _ in changes}
    used.update(rows)
    found[:] = [
        f
        for f in found
        if not (f.code == "no_change" and f.opportunity_id == oid and set(f.rows) <= rows)
    ]
    merged: list[Event] = [opp_events[0]]
    pending = iter(changes)
    change = next(pending, None)
    for event in [*opp_events[1:], None]:
        while change is not None and (event is None or change[0] <= event.at):
            at, _, name, value = change
            before = merged[-1]
            merged.append(
                attrs.evolve(
                    before,
                    kind=EventKind.REASSIGNED if name == "owner" else EventKind.ATTRIBUTE_SET,
                    at=max(at, before.at),
                    from_stage=None,
                    move=None,
                    reason=None,
                    gate=None,
                    subject=value if name == "owner" else name,
                    details=None if name == "owner" else freeze({"value": value}),
                )
            )
            change = next(pending, None)
        if event is not None:
            merged.append(event)
    return [e if e.seq == n else attrs.evolve(e, seq=n) for n, e in enumerate(merged, start=1)]


def finish(
    *,
    source: str,
    process: ProcessLike,
    events: Sequence[Event],
    findings: Sequence[Finding],
    stage_map: Mapping[str, str],
    rows_read: int,
    rows_used: int,
    strict: bool,
    segments: Mapping[str, Sequence[SegmentChange]] | None = None,
) -> ImportResult:
    """Wrap up: the result, or :class:`ImportProblemError` when ``strict`` and not clean."""
    result = ImportResult(
        source=source,
        events=events,
        findings=findings,
        stage_map=stage_map,
        process=process.name,
        process_version=process.version,
        rows_read=rows_read,
        rows_used=rows_used,
        definition=process if isinstance(process, Process) else None,
        segments=segments or {},
    )
    if strict and result.problems:
        raise ImportProblemError(source, result.findings)
    return result


def _move(
    record: Record,
    state: _State,
    target: str,
    kinds: Mapping[str, str],
    emit: Callable[..., None],
) -> None:
    previous = state.stage
    state.stage = target
    if kinds.get(target) == _OPEN:
        state.last_open_stage = target
    emit(
        EventKind.STAGE_CHANGED,
        record,
        state,
        from_stage=previous,
        move=MoveKind.IMPORTED,
        reason=record.reason,
    )


def _money_and_date(
    record: Record,
    state: _State,
    emit: Callable[..., None],
) -> None:
    if record.amount is not None and record.amount != state.amount:
        previous = None if state.amount is None else str(state.amount)
        state.amount = record.amount
        emit(EventKind.AMOUNT_CHANGED, record, state, details={"previous": previous})
    if record.close_date is not None and record.close_date != state.close_date:
        previous = None if state.close_date is None else state.close_date.isoformat()
        state.close_date = record.close_date
        emit(EventKind.RESCHEDULED, record, state, details={"previous": previous})


def _find_out_of_order(oid: str, group: list[Record], found: list[Finding]) -> None:
    """Report each pair of rows (in file order) whose instants go backwards."""
    for before, after in itertools.pairwise(group):
        if after.at < before.at:
            found.append(
                Finding(
                    "out_of_order",
                    Severity.INFO,
                    f"row {after.row} ({after.at.isoformat()}) is listed after row {before.row} "
                    f"({before.at.isoformat()}); rows are ordered by time, not file position",
                    [before.row, after.row],
                    oid,
                )
            )


def _drop_duplicates(oid: str, group: list[Record], found: list[Finding]) -> list[Record]:
    """Drop exact repeats of source rows, and rows that repeat another only after mapping.

    A source row that repeats an earlier one exactly is a ``duplicate_row`` warning. Rows that
    differ in their source stage but set the same thing once mapped (three "won" states logged
    at one instant and mapped to one won stage) are ``mapped_together`` (info): nothing is lost.
    """
    kept: dict[tuple[Any, ...], Record] = {}
    by_mapped: dict[tuple[Any, ...], Record] = {}
    result: list[Record] = []
    for record in group:
        original = kept.get(record.content())
        if original is not None:
            found.append(
                Finding(
                    "duplicate_row",
                    Severity.WARNING,
                    f"the row repeats row {original.row} exactly; not used (the first one is)",
                    [record.row],
                    oid,
                    used=False,
                )
            )
            continue
        mapped = record.mapped_content()
        twin = by_mapped.get(mapped)
        if twin is not None and twin.label != record.label and record.stage is not None:
            found.append(
                Finding(
                    "mapped_together",
                    Severity.INFO,
                    f"source stage {record.label!r} maps to stage {record.stage!r}, as "
                    f"{twin.label!r} on row {twin.row} does at the same instant; this row adds "
                    "nothing and was not used",
                    [record.row],
                    oid,
                    used=False,
                )
            )
            continue
        kept[record.content()] = record
        by_mapped.setdefault(mapped, record)
        result.append(record)
    return result


def _find_ties(oid: str, part: list[Record], found: list[Finding]) -> None:
    for before, after in itertools.pairwise(part):
        if (
            after.at == before.at
            and after.row != before.row
            and before.stage != after.stage
            and before.stage is not None
            and after.stage is not None
            and before.order == after.order  # else the export says the order (its seq)
        ):
            found.append(
                Finding(
                    "tied_timestamps",
                    Severity.WARNING,
                    f"rows {before.row} and {after.row} set different stages at the same instant "
                    f"{after.at.isoformat()}; applied in file order",
                    [before.row, after.row],
                    oid,
                    hint=Hint(
                        "check the export's timestamp precision, or give the order in a seq column",
                        "check the export's timestamp precision, or, for a generic log "
                        "(--format log), give the order in a seq column (--column seq=HEADER)",
                    ),
                )
            )


def _split_reused(
    oid: str, group: list[Record], found: list[Finding], kinds: Mapping[str, str]
) -> list[tuple[str, list[Record]]]:
    """Split a source id that holds several deals (more than one creation row).

    First by time, when each deal closed before the next was created; else by file order,
    when each deal's rows are listed together starting with its creation row. Otherwise the
    id's rows are refused (never merged by guess).
    """
    opens = [r for r in group if r.opens]
    if len(opens) <= 1:
        return [(oid, group)]
    by_time = sorted(group, key=lambda r: (r.at, r.order, r.row))
    parts = _split_at_opens(by_time)
    how = ""
    if parts is not None and all(
        any(r.close is not None or kinds.get(r.stage or "", _OPEN) != _OPEN for r in part)
        for part in parts[:-1]
    ):
        how = "by time (each deal closed before the next was created)"
    else:
        parts = _split_at_opens(group)  # file order
        if parts is not None and all(min(r.at for r in part) == part[0].at for part in parts):
            how = "by file order (the deals overlap in time, but each one's rows are listed "
            how += "together, starting with its creation row)"
        else:
            parts = None
    if parts is None:
        found.append(
            Finding(
                "reused_id",
                Severity.ERROR,
                f"the id has {len(opens)} creation rows whose deals cannot be told apart (they "
                "overlap in time and their rows are interleaved in the file); not used: give "
                "each deal its own id",
                [r.row for r in group],
                oid,
                used=False,
            )
        )
        return []
    parts.sort(key=lambda part: (part[0].at, part[0].row))
    named = [(oid if i == 0 else f"{oid}#{i + 1}", part) for i, part in enumerate(parts)]
    detail = "; ".join(
        f"{name!r}: rows {part[0].row}..{part[-1].row} from {part[0].at.isoformat()}"
        for name, part in named
    )
    found.append(
        Finding(
            "reused_id",
            Severity.WARNING,
            f"the id has {len(opens)} creation rows: split {how} into {detail}",
            [r.row for r in group],
            oid,
            hint=Hint(
                "if they are really one deal, give its rows one creation row in your source",
                "if they are really one deal, give its rows one creation row in your source; "
                "once you have checked the split, pass --accept reused_id",
            ),
        )
    )
    return named


def _split_at_opens(ordered: list[Record]) -> list[list[Record]] | None:
    if not ordered[0].opens:
        return None
    parts: list[list[Record]] = []
    for record in ordered:
        if record.opens:
            parts.append([])
        parts[-1].append(record)
    return parts
