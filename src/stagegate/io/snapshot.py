"""Snapshot tables: one row per deal with its current stage and the dates it entered stages.

Such a table (Maven's ``sales_pipeline.csv``, HubSpot's "date entered" columns) holds at most
one entry per stage, so each deal yields at most one transition per stage column: the earliest
dated stage opens the deal, each later one is an imported stage change. Stages without a date
column (Maven's *Prospecting*) have no known entry time: a deal whose history starts later is
opened in its first dated stage, and a deal with no date at all is not imported
(``no_instant``), unless ``undated_at=`` names an instant to open it at.

>>> from stagegate.io import import_snapshot
>>> rows = [
...     {"id": "D1", "deal_stage": "Won", "engage_date": "2017-01-03",
...      "close_date": "2017-02-14", "close_value": "1054"},
...     {"id": "D2", "deal_stage": "Engaging", "engage_date": "2017-03-01",
...      "close_date": "", "close_value": ""},
...     {"id": "D3", "deal_stage": "Prospecting", "engage_date": "", "close_date": "",
...      "close_value": ""},
... ]
>>> result = import_snapshot(
...     rows, stages=["Prospecting", "Engaging", "Won", "Lost"],
...     entered={"Engaging": "engage_date"},
...     columns={"opportunity_id": "id", "stage": "deal_stage", "closed_at": "close_date",
...              "amount": "close_value"},
...     assume_zone="UTC")
>>> [(e.opportunity_id, e.kind.value, e.stage, e.at.date().isoformat())
...  for e in result.events]  # doctest: +NORMALIZE_WHITESPACE
[('D1', 'opened', 'engaging', '2017-01-03'), ('D1', 'stage_changed', 'won', '2017-02-14'),
 ('D2', 'opened', 'engaging', '2017-03-01')]
>>> sorted(f.code for f in result.findings)
['inferred_process', 'no_instant']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import attrs

from stagegate._progress import Phases
from stagegate._time import to_utc
from stagegate.errors import InvalidCommandError
from stagegate.io._build import Record
from stagegate.io._mapping import Export, Reading, read_export
from stagegate.io._pipeline import (
    Owners,
    amount,
    bad_value,
    row_segments,
)
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, Source, shown_header, text
from stagegate.io._result import Finding, Hint, ImportResult, Severity
from stagegate.io._stages import ProcessLike, key, terminal_kind

__all__ = ["import_snapshot"]

COLUMNS = ("opportunity_id", "stage")
OPTIONAL = ("closed_at", "amount", "actor", "owner")


def import_snapshot(
    data: Source,
    *,
    entered: Mapping[str, str] | re.Pattern[str],
    stages: Sequence[str] | None = None,
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
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
    source: str = "snapshot",
    segments: Sequence[str] = (),
    owners: Source | Owners | None = None,
    phases: Phases | None = None,
) -> ImportResult:
    """Import a table of deals with their current stage and stage entry dates.

    Columns (rename with ``columns=``): ``opportunity_id`` and ``stage`` (the current stage)
    required; ``closed_at`` (when the deal entered its current stage, if that stage is won or
    lost), ``amount`` (taken as in force over the whole history) and ``actor`` optional.
    Dates without a time are instants at midnight in ``assume_zone`` (never guessed).

    Args:
        data: a path (CSV or Parquet), an open file, or dict rows.
        entered: source stage label -> the column holding when the deal entered it; or a
            compiled regular expression whose named group ``stage`` picks the stage out of
            date column names (``re.compile(r"^date_entered_(?P<stage>.+)$")``).
        stages: the source stage labels in process order (used to infer the process, and to
            order entries on the same instant); default: the order of ``entered``.
        process: the target process; inferred from ``stages`` when None.
        stage_map: source stage label -> process stage id, for labels that differ.
        columns: canonical column name -> this export's header.
        assume_zone: the zone of dates and naive timestamps.
        undated_at: open deals that have no dated entry at this instant (in their current
            stage); by default they are not imported (``no_instant``).
        won: source labels of won stages (for inference).
        lost: source labels of lost stages (for inference).
        as_of: entries dated later are refused as ``future_date`` (default: now).
        strict: raise instead of returning when any finding is an error or a warning.
        encoding: the CSV text encoding.
        delimiter: the CSV field separator.
        max_field_size: the largest CSV field accepted, in characters.
        source: the name used in the result and messages.
        segments: more columns to carry as segments of each deal (``product``, ``account``),
            in force from its opening on, like the ``owner`` column.
        owners: an owners table (a path, rows, a frame, or ``{owner: {segment: value}}``):
            its first column the owner, each other column a segment their deals carry
            (Maven's ``sales_teams.csv`` adds ``manager`` and ``regional_office``).
        phases: told of the long phases (``reading`` the rows, ``checking`` them) for
            progress bars; see :mod:`stagegate._progress`.

    Raises:
        ImportProblemError: the file cannot be read, or ``strict`` and problems were found.
        InvalidCommandError: a bad argument.
    """
    snapshot = _Snapshot(entered, stages, won, lost, undated_at)
    return read_export(
        attrs.evolve(SNAPSHOT, source=source),
        data,
        snapshot.record,
        process=process,
        stage_map=stage_map,
        columns=columns,
        assume_zone=assume_zone,
        won=won,
        lost=lost,
        order=None,
        as_of=as_of,
        strict=strict,
        encoding=encoding,
        delimiter=delimiter,
        max_field_size=max_field_size,
        segments=segments,
        owners=owners,
        phases=phases,
        prepare=snapshot.prepare,
        order_of=snapshot.order_of,
    )


SNAPSHOT = Export("snapshot", COLUMNS, OPTIONAL, id="opportunity_id", at=None)
"""One row per deal: its current stage, and the dates it entered stages (dated per row)."""


class _Snapshot:
    """Parses snapshot rows: each dated stage column is one entry of the deal's history."""

    def __init__(
        self,
        entered: Mapping[str, str] | re.Pattern[str],
        stages: Sequence[str] | None,
        won: tuple[str, ...],
        lost: tuple[str, ...],
        undated_at: datetime | None,
    ) -> None:
        self.entered, self.stages = entered, stages
        self.won, self.lost, self.undated_at = won, lost, undated_at
        self.stage_columns: dict[str, str] = {}
        self.rank: dict[str, int] = {}
        self.order: list[str] = []
        self.seen: dict[str, int] = {}

    def prepare(self, reading: Reading) -> None:
        """Find the date column of each stage in the header, before the rows are read.

        Raises:
            InvalidCommandError: no date column, or one named that the export lacks.
        """
        header = reading.table.header
        entered = self.entered
        if isinstance(entered, re.Pattern):
            pattern = entered
            entered = {}
            for column in header:
                match = pattern.match(column)
                if match:
                    entered.setdefault(match.group("stage"), column)
        if not entered:
            raise InvalidCommandError(
                "entered= must map at least one stage to the column of its entry date, e.g. "
                "entered={'Engaging': 'engage_date'}; no such column was found"
            )
        by_key = {key(h): h for h in header}
        for label, column in entered.items():
            found_column = column if column in header else by_key.get(key(column))
            if found_column is None:
                raise InvalidCommandError(
                    f"entered= names column {column!r} for stage {label!r}, but the export has "
                    f"no such column (found: {shown_header(header)})"
                )
            self.stage_columns[label] = found_column
        self.order = list(self.stages) if self.stages is not None else list(entered)
        self.rank = {key(label): i for i, label in enumerate(self.order)}

    def order_of(self, reading: Reading) -> list[str]:
        """The stages in process order: ``stages=``, else the order of ``entered``."""
        del reading
        return self.order

    def record(
        self, reading: Reading, number: int, row: Mapping[str, Any], oid: str, at: datetime | None
    ) -> list[Record]:
        """The records of one deal's row: its dated stage entries, in time order."""
        del at  # a snapshot row is dated by its stage columns
        records: list[Record] = []
        if oid in self.seen:
            reading.findings.append(
                Finding(
                    "reused_id",
                    Severity.ERROR,
                    f"the id is also on row {self.seen[oid]}; a snapshot has one row per deal, so "
                    "this row was not used: give each deal its own id",
                    [number],
                    oid,
                    used=False,
                )
            )
            return []
        self.seen[oid] = number
        current = text(reading.get(row, "stage"))
        if current is None:
            reading.findings.append(bad_value(number, oid, "stage", None, "give the current stage"))
            return []
        try:
            value_amount = amount(reading.get(row, "amount"))
        except ValueError:
            reading.findings.append(
                bad_value(number, oid, "amount", reading.get(row, "amount"), "1234.5")
            )
            return []
        entries: list[tuple[str, object]] = [
            (label, row.get(column))
            for label, column in self.stage_columns.items()
            if text(row.get(column)) is not None
        ]
        closed_value = reading.get(row, "closed_at")
        is_terminal = terminal_kind(current) is not None or key(current) in {
            key(x) for x in (*self.won, *self.lost)
        }
        if text(closed_value) is not None and not is_terminal:
            reading.findings.append(
                Finding(
                    "inconsistent_history",
                    Severity.WARNING,
                    f"closed_at is set but the current stage {current!r} is not won or lost; "
                    "closed_at was not used",
                    [number],
                    oid,
                )
            )
        elif is_terminal and current not in self.stage_columns:
            if text(closed_value) is None:
                reading.findings.append(
                    Finding(
                        "missing_date",
                        Severity.ERROR,
                        f"the deal is {current!r} but has no closed_at date; not used: fill in "
                        "the date it closed",
                        [number],
                        oid,
                        used=False,
                    )
                )
                return []
            entries.append((current, closed_value))
        parsed: list[tuple[datetime, int, str]] = []
        bad = False
        for label, value in entries:
            at = reading.clock.instant(value, number, self.stage_columns.get(label, "closed_at"))
            if at is None:
                bad = True
                break
            parsed.append((at, self.rank.get(key(label), len(self.rank)), label))
        if bad:
            return []
        if not parsed:
            if self.undated_at is None:
                reading.findings.append(
                    Finding(
                        "no_instant",
                        Severity.WARNING,
                        f"the deal is in {current!r} and no column dates its entry; not imported",
                        [number],
                        oid,
                        used=False,
                        hint=Hint(
                            "pass undated_at= (e.g. the snapshot's date) to open such deals then",
                            "pass --undated-at DATE (e.g. the snapshot's date, 2017-12-31) to "
                            "open such deals then",
                        ),
                    )
                )
                return []
            parsed.append(
                (to_utc(self.undated_at), self.rank.get(key(current), len(self.rank)), current)
            )
        parsed.sort()
        if parsed[-1][2] != current:
            reading.findings.append(
                Finding(
                    "inconsistent_history",
                    Severity.WARNING,
                    f"the latest dated stage is {parsed[-1][2]!r} but the current stage is "
                    f"{current!r}; imported as dated (the current stage was not used)",
                    [number],
                    oid,
                )
            )
        actor = text(reading.get(row, "actor"))
        values = row_segments(row, reading.segment_columns)
        for i, (at, position, label) in enumerate(parsed):
            records.append(
                Record(
                    oid,
                    number,
                    at,
                    stage=label,
                    amount=value_amount if i == 0 else None,
                    actor=actor,
                    order=position,
                    segments=values if i == 0 else (),
                )
            )
        return records
