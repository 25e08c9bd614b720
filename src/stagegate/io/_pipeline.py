"""The steps every importer shares after parsing: stage mapping (or inference), then build."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from stagegate._time import now, to_utc
from stagegate.errors import InvalidCommandError
from stagegate.io._build import Clock, Record, build
from stagegate.io._result import Finding, ImportResult, Severity
from stagegate.io._stages import ProcessLike, infer_process, key, resolve_stages

__all__ = ["assemble"]


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
    """Map stages (or infer the process), then :func:`~stagegate.io._build.build`."""
    if process is None and stage_map:
        raise InvalidCommandError(
            "stage_map= maps source stages to the stages of a process: pass process= too "
            "(without it, the process is inferred and its stage ids come from the labels)"
        )
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
    labels = [r.stage for r in records if r.stage is not None]
    if process is None:
        histories: dict[str, list[str]] = {}
        for record in sorted(records, key=lambda r: (r.at, r.row, r.order)):
            if record.stage is not None:
                histories.setdefault(record.oid, []).append(record.stage)
        inferred, mapping, notes = infer_process(
            histories.values(),
            order=order,
            won=won,
            lost=lost,
            add_won=add_terminal,
            add_lost=add_terminal,
            source=source,
        )
        # the user's own stage_map overrides, applied on the inferred ids
        target: ProcessLike = inferred
        found.extend(notes)
        by_key = {key(label): stage_id for label, stage_id in mapping.items()}
        spelled: dict[str, str] = {}
        for label in dict.fromkeys(labels):
            first = spelled.setdefault(key(label), label)
            mapping.setdefault(label, by_key.get(key(label), ""))
            if first != label:
                found.append(
                    Finding(
                        "stage_case",
                        Severity.WARNING,
                        f"source stages {first!r} and {label!r} differ only in case or "
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
            mapped.append(attrs.evolve(record, stage=mapping[record.stage]))
        else:
            unknown.setdefault(record.stage, []).append(record.row)
    stage_ids = [s.id for s in target.stages]
    for label, rows in unknown.items():
        found.append(
            Finding(
                "unknown_stage",
                Severity.ERROR,
                f"source stage {label!r} is not a stage of process {target.name!r} "
                f"(stages: {', '.join(stage_ids)}); its {len(rows)} row(s) were not used: map "
                f"it with stage_map={{{label!r}: '<stage id>'}}",
                rows,
                used=False,
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
