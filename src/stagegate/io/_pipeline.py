"""The steps every importer shares after parsing: stage mapping (or inference), then build."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from stagegate._time import now, to_utc
from stagegate.io._build import Clock, Record, build
from stagegate.io._read import decimal
from stagegate.io._result import Finding, Hint, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import ProcessLike, infer_process, key, resolve_stages

__all__ = ["amount", "assemble", "bad_value", "missing_id"]


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
) -> ImportResult:
    """Map stages (or infer the process), then :func:`~stagegate.io._build.build`.

    With a ``process``, ``stage_map`` maps source labels to its stage ids. Without one,
    ``stage_map`` renames source labels before the process is inferred (several labels mapped
    to one name become one stage), and ``won`` / ``lost`` / ``order`` may name either.
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
