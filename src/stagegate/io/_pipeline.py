"""The steps every importer shares after parsing: stage mapping (or inference), then build."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from stagegate._progress import Phases
from stagegate._time import now, to_utc
from stagegate.errors import InvalidCommandError
from stagegate.io._build import Clock, Record, build
from stagegate.io._read import Table, decimal, normalize_header, read_table, shown_header, text
from stagegate.io._result import Finding, Hint, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import ProcessLike, infer_process, key, resolve_stages

__all__ = [
    "amount",
    "assemble",
    "bad_value",
    "field_segments",
    "missing_id",
    "read_owners",
    "resolve_segments",
    "row_segments",
]

CANONICAL_NAMES = frozenset(
    {
        "opportunity_id",
        "at",
        "seq",
        "stage",
        "amount",
        "close_date",
        "reason",
        "kind",
        "from_stage",
        "move",
    }
)
"""Names of the stage-history table's own columns: no segment may take one."""

Owners = Mapping[str, Mapping[str, "str | None"]]
"""Owner -> the segments their deals carry (``{"ana": {"manager": "bo", "region": "EMEA"}}``)."""


def segment_name(column: str) -> str:
    """The segment a source column becomes: a lowercase identifier.

    ``Regional Office`` becomes ``regional_office``.

    Raises:
        InvalidCommandError: the name is empty or one of the table's own columns.
    """
    name = re.sub(r"[^0-9a-z]+", "_", key(str(column))).strip("_")
    if not name or name in CANONICAL_NAMES:
        raise InvalidCommandError(
            f"segment column {column!r} would be named {name!r}, which the stage-history table "
            f"uses itself ({', '.join(sorted(CANONICAL_NAMES))}); rename the column, or leave "
            "it out of segments="
        )
    return name


def resolve_segments(
    table: Table, segments: Iterable[str], source: str, *, owner: str = "owner"
) -> tuple[tuple[str, str], ...]:
    """``(segment name, source column)`` for each column named in ``segments``.

    The owner column (the importer's canonical column ``owner``, when the export has it)
    comes first.

    Raises:
        ImportProblemError: a named column is not in the export (``missing_columns``).
        InvalidCommandError: a column would take a name of the table's own columns.
    """
    pairs: list[tuple[str, str]] = []
    owner_column = table.columns.get(owner)
    if owner_column is not None:
        pairs.append(("owner", owner_column))
    by_key = {normalize_header(h): h for h in table.header}
    for wanted in segments:
        column = wanted if wanted in table.header else by_key.get(normalize_header(wanted))
        if column is None:
            raise ImportProblemError(
                source,
                [
                    Finding(
                        "missing_columns",
                        Severity.ERROR,
                        f"segments= names column {wanted!r}, which the export does not have "
                        f"(found: {shown_header(table.header)}); name one of its "
                        "columns",
                        used=False,
                    )
                ],
            )
        pairs.append((segment_name(wanted), column))
    return tuple(pairs)


def field_segments(segments: Iterable[str], owner_fields: Iterable[str]) -> dict[str, str]:
    """For a field-change log: changed field (case-folded) -> the segment it sets.

    The owner fields (``hubspot_owner_id``, Pipedrive's ``user_id``, Salesforce's ``Owner``)
    set ``owner``; each field named in ``segments`` sets the segment of its name.

    Raises:
        InvalidCommandError: a field would take a name of the table's own columns.
    """
    found = {field.casefold(): "owner" for field in owner_fields}
    found.update({field.casefold(): segment_name(field) for field in segments})
    return found


def row_segments(
    row: Mapping[str, object], pairs: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str | None], ...]:
    """The segment values a row sets (blank: none)."""
    return tuple((name, text(row.get(column))) for name, column in pairs)


def read_owners(data: object, source: str) -> dict[str, dict[str, str | None]]:
    """Read an owners table: its first column the owner, every other one a segment of theirs.

    A mapping (owner -> {segment: value}) passes through. Maven's ``sales_teams.csv``
    (``sales_agent, manager, regional_office``) gives each agent's deals a ``manager`` and a
    ``regional_office``.

    Raises:
        ImportProblemError: the table cannot be read, or has no column besides the owner.
        InvalidCommandError: a column would take a name of the table's own columns.
    """
    if isinstance(data, Mapping):
        return {
            str(owner): {segment_name(k): text(v) for k, v in dict(values).items()}
            for owner, values in data.items()
        }
    table = read_table(data, source=f"{source} owners", required=())
    if len(table.header) < 2:  # noqa: PLR2004 - the owner and at least one segment
        raise ImportProblemError(
            f"{source} owners",
            [
                Finding(
                    "missing_columns",
                    Severity.ERROR,
                    "the owners table needs the owner in its first column and at least one "
                    f"segment column after it (found: {shown_header(table.header)})",
                    used=False,
                )
            ],
        )
    first, *others = table.header
    names = [(segment_name(column), column) for column in others]
    owners: dict[str, dict[str, str | None]] = {}
    for _, row in table.rows:
        owner = text(row.get(first))
        if owner is not None:
            owners.setdefault(owner, {name: text(row.get(column)) for name, column in names})
    return owners


def _with_owner_segments(records: Sequence[Record], owners: Owners) -> list[Record]:
    """Each record that sets an owner also sets the segments of that owner (``None``: none)."""
    names = list(dict.fromkeys(name for values in owners.values() for name in values))
    result: list[Record] = []
    for record in records:
        owner = next((v for n, v in record.segments if n == "owner"), _NO_OWNER)
        if owner is _NO_OWNER:
            result.append(record)
            continue
        values = owners.get(owner, {}) if isinstance(owner, str) else {}
        added = tuple((name, values.get(name)) for name in names)
        result.append(attrs.evolve(record, segments=(*record.segments, *added)))
    return result


_NO_OWNER = object()


def assemble(
    records: Sequence[Record],
    *,
    source: str,
    process: ProcessLike | None,
    stage_map: Mapping[str, str] | None,
    clock: Clock,
    findings: Iterable[Finding],
    rows_read: int,
    as_of: datetime | None,
    strict: bool,
    won: Iterable[str] = (),
    lost: Iterable[str] = (),
    order: Sequence[str] | None = None,
    add_terminal: bool = False,
    stage_after_close: str = "reopen",
    owners: Owners | None = None,
    phases: Phases | None = None,
) -> ImportResult:
    """Map stages (or infer the process), then :func:`~stagegate.io._build.build`.

    With a ``process``, ``stage_map`` maps source labels to its stage ids. Without one,
    ``stage_map`` renames source labels before the process is inferred (several labels mapped
    to one name become one stage), and ``won`` / ``lost`` / ``order`` may name either.
    With ``owners`` (see :func:`read_owners`), a record that sets an owner also sets that
    owner's segments. ``phases`` is told of the ``checking`` phase (records checked).
    """
    found: list[Finding] = list(findings)
    found.extend(clock.findings())
    if rows_read == 0:
        found.append(
            Finding(
                "no_rows",
                Severity.WARNING,
                "the export has a header but no rows; nothing was imported",
            )
        )
    records = _checked_amounts(records, found)
    if owners:
        records = _with_owner_segments(records, owners)
    labels = [r.stage for r in records if r.stage is not None]
    mapping: dict[str, str]
    if process is None:
        renamed = _renames(labels, stage_map or {})
        histories: dict[str, list[str]] = {}
        for record in sorted(records, key=lambda r: (r.at, r.order, r.row)):
            if record.stage is not None:
                histories.setdefault(record.oid, []).append(renamed[record.stage])
        try:
            inferred, inferred_map, notes = infer_process(
                histories.values(),
                order=None if order is None else [_renamed(x, stage_map) for x in order],
                won=[_renamed(x, stage_map) for x in won],
                lost=[_renamed(x, stage_map) for x in lost],
                add_won=add_terminal,
                add_lost=add_terminal,
                source=source,
            )
        except ImportProblemError as error:
            # rows refused before inference (naive timestamps, ...) are often the real cause
            earlier = [f for f in found if f.severity is Severity.ERROR]
            raise ImportProblemError(source, [*earlier, *error.findings]) from None
        target: ProcessLike = inferred
        found.extend(notes)
        by_key = {key(label): stage_id for label, stage_id in inferred_map.items()}
        mapping = {}
        spelled: dict[str, str] = {}
        for label in dict.fromkeys(labels):
            name = renamed[label]
            first = spelled.setdefault(key(name), name)
            mapping[label] = by_key.get(key(name), "")
            if first != name:
                found.append(
                    Finding(
                        "stage_case",
                        Severity.WARNING,
                        f"source stages {first!r} and {name!r} differ only in case or "
                        f"spacing; taken as one stage {mapping[label]!r}",
                    )
                )
    else:
        target = process
        mapping, notes = resolve_stages(labels, process, stage_map=stage_map)
        found.extend(notes)
    unknown: dict[str, list[int]] = {}
    mapped: list[Record] = []
    for record in records:
        if record.stage is None:
            mapped.append(record)
        elif mapping.get(record.stage):
            mapped.append(attrs.evolve(record, stage=mapping[record.stage], label=record.stage))
        else:
            unknown.setdefault(record.stage, []).append(record.row)
    stage_ids = [s.id for s in target.stages]
    for label, rows in unknown.items():
        found.append(
            Finding(
                "unknown_stage",
                Severity.ERROR,
                f"source stage {label!r} is not a stage of process {target.name!r} "
                f"(stages: {', '.join(stage_ids)}); its {len(rows)} row(s) were not used",
                rows,
                used=False,
                hint=Hint(
                    f"map it with stage_map={{{label!r}: '<stage id>'}}",
                    f"map it with --map {_shell(label + '=<stage id>')}",
                ),
            )
        )
    used_map = {label: mapping[label] for label in dict.fromkeys(labels) if mapping.get(label)}
    limit = to_utc(as_of) if as_of is not None else now()
    return build(
        mapped,
        process=target,
        source=source,
        rows_read=rows_read,
        stage_map=used_map,
        findings=found,
        as_of=limit,
        stage_after_close=stage_after_close,
        strict=strict,
        phases=phases,
    )


def _renamed(label: str, stage_map: Mapping[str, str] | None) -> str:
    """A source label renamed by ``stage_map`` (exact key, then ignoring case)."""
    if not stage_map:
        return label
    if label in stage_map:
        return stage_map[label]
    loose = {key(k): v for k, v in stage_map.items()}
    return loose.get(key(label), label)


def _renames(labels: Iterable[str], stage_map: Mapping[str, str]) -> dict[str, str]:
    return {label: _renamed(label, stage_map) for label in dict.fromkeys(labels)}


def _shell(text: str) -> str:
    """``text`` quoted for a POSIX shell when it needs quoting."""
    return shlex.quote(text)


LARGEST_AMOUNT = Decimal("1e300")
"""Amounts of this size or more are refused: beyond it a float (analytics) is infinite or lossy."""


def amount(value: object) -> Decimal | None:
    """A cell as an amount: a finite decimal a float can hold, or ``None`` when empty.

    Raises:
        ValueError: not a number, not finite, or too large to be an amount (``1e999999``).
    """
    result = decimal(value)
    if result is not None and abs(result) >= LARGEST_AMOUNT:
        msg = f"{value!r} is too large to be an amount"
        raise ValueError(msg)
    return result


def _checked_amounts(records: Sequence[Record], found: list[Finding]) -> list[Record]:
    """Refuse rows whose amount is not finite; leave out negative amounts, with a finding.

    A deal's amount is never negative (replay refuses one), so a negative amount in an export
    is not recorded; the rest of the row is used.
    """
    kept: list[Record] = []
    negative: dict[str | None, list[int]] = {}
    for record in records:
        value = record.amount
        if value is not None and (not value.is_finite() or abs(value) >= LARGEST_AMOUNT):
            found.append(bad_value(record.row, record.oid, "amount", str(value), "use 1234.50"))
            continue
        if value is not None and value < 0:
            negative.setdefault(record.oid, []).append(record.row)
            record = attrs.evolve(record, amount=None)  # noqa: PLW2901 - the row, less its amount
        kept.append(record)
    for oid, rows in negative.items():
        found.append(
            Finding(
                "negative_amount",
                Severity.WARNING,
                "the amount is negative, which no deal's amount can be; the row was used "
                "without it",
                rows,
                oid,
                hint=Hint(
                    "check the export (a refund or a sign error?); with strict=True such rows "
                    "refuse the import",
                    "check the export (a refund or a sign error?); with --strict such rows "
                    "refuse the import",
                ),
            )
        )
    return kept


def bad_value(row: int, oid: str | None, what: str, value: object, hint: str) -> Finding:
    """A cell that cannot be read; its row is not used."""
    shown = repr(value)
    if len(shown) > 60:  # noqa: PLR2004
        shown = shown[:57] + "..."
    return Finding(
        "bad_value",
        Severity.ERROR,
        f"{what} {shown} cannot be read; the row was not used: {hint}",
        [row],
        oid,
        used=False,
    )


def missing_id(row: int, column: str) -> Finding:
    """A row without an opportunity id; not used."""
    return Finding(
        "missing_id",
        Severity.ERROR,
        f"the row has no {column}; not used: every row needs the id of its deal",
        [row],
        used=False,
    )
