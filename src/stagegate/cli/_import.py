"""``stagegate import``: an export into the embedded store, all or nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import click
from rich.markup import escape
from rich.table import Table

from stagegate._progress import Phases
from stagegate.cli import EXIT_BAD_INPUT, EXIT_NEGATIVE, EXIT_OK
from stagegate.cli._app import (  # the group the commands join
    app,
    err_console,
    fail,
    json_option,
    out_console,
    print_json,
    process_option,
)
from stagegate.cli._options import instant_callback, names, pairs, read_mapping
from stagegate.cli._progress import bars
from stagegate.cli._store import STORE
from stagegate.definition import load_process
from stagegate.errors import DefinitionError, StagegateError
from stagegate.io import (
    Finding,
    ImportProblemError,
    ImportResult,
    Severity,
    import_hubspot_history,
    import_hubspot_stage_dates,
    import_log,
    import_pipedrive,
    import_salesforce_field_history,
    import_salesforce_history,
    import_snapshot,
    read_events,
)
from stagegate.io._result import cli_text
from stagegate.process import Process
from stagegate.store import (
    ImportOutcome,
    ImportRecord,
    ImportRefusedError,
    stream_import,
    write_import,
)
from stagegate.store._bulk import bulk_import
from stagegate.store._load import SHOWN
from stagegate.templates import TEMPLATES, template

FORMATS = (
    "events",
    "log",
    "salesforce",
    "salesforce-fields",
    "hubspot",
    "hubspot-dates",
    "pipedrive",
    "snapshot",
)
"""Export formats ``stagegate import`` reads (see docs/importing.md)."""

EXAMPLES = """\b
Examples (one per export; see docs/importing.md):
\b
  # a stagegate log (write_events, simulate)
  stagegate import log.jsonl --store s.sqlite
  # a stage-history table: case id, sequence, state, timestamp
  stagegate import history.csv --store s.sqlite --format log \\
    --column opportunity_id=case_id --column seq=sequence \\
    --column stage=state --column at=timestamp --assume-zone UTC \\
    --stage-order Submitted,Review --map Approved=Won \\
    --map Activated=Won --map Declined=Lost --won Won --lost Lost
  # Salesforce OpportunityHistory / OpportunityFieldHistory
  stagegate import OpportunityHistory.csv --store s.sqlite --format salesforce
  stagegate import OpportunityFieldHistory.csv --store s.sqlite \\
    --format salesforce-fields --template b2b
  # HubSpot property history, and "date entered" columns
  stagegate import deals.csv --store s.sqlite --format hubspot
  stagegate import deals.csv --store s.sqlite --format hubspot-dates \\
    --stage-order appointmentscheduled,qualifiedtobuy,closedwon,closedlost
  # Pipedrive deal changes, with its stage and fields tables
  stagegate import deal_changes.csv --store s.sqlite --format pipedrive \\
    --pipedrive-stages stages.csv --pipedrive-fields fields.csv --assume-zone UTC
  # Maven sales_pipeline.csv (a snapshot: current stage + dates)
  stagegate import sales_pipeline.csv --store s.sqlite --format snapshot \\
    --column stage=deal_stage --column closed_at=close_date \\
    --column amount=close_value --entered Engaging=engage_date \\
    --stage-order Prospecting,Engaging,Won,Lost --assume-zone UTC \\
    --undated-at 2017-12-31
  # everything above in a mapping file (TOML or JSON)
  stagegate import sales_pipeline.csv --store s.sqlite --mapping maven.toml
\b
Exit codes: 0 every row used; 1 imported, some rows skipped (see the findings);
2 refused, nothing written.
"""


def accept(result: ImportResult, codes: Iterable[str]) -> ImportResult:
    """``result`` with the warnings of ``codes`` turned into info (checked by the user).

    Errors are never accepted: their rows were not used.
    """
    wanted = set(codes)
    if not wanted:
        return result
    findings = tuple(
        attrs.evolve(f, severity=Severity.INFO, message=f"{f.what} (accepted with --accept)")
        if f.code in wanted and f.severity is Severity.WARNING
        else f
        for f in result.findings
    )
    return attrs.evolve(result, findings=findings)


def _process(path: Path | None, name: str | None) -> Process | None:
    if path is not None:
        return load_process(path)
    if name is None:
        return None
    if name not in TEMPLATES:
        msg = f"no built-in template {name!r}; choose one of {', '.join(TEMPLATES)}"
        raise click.BadParameter(msg, param_hint="--template")
    return template(name)


def _run_importer(
    fmt: str,
    path: Path,
    process: Process | None,
    options: Mapping[str, Any],
    phases: Phases | None = None,
) -> ImportResult:
    common = {k: v for k, v in options.items() if k in _COMMON}
    common["phases"] = phases
    order = options.get("stage_order") or None
    won, lost = tuple(options.get("won") or ()), tuple(options.get("lost") or ())
    undated_at = options.get("undated_at")
    if undated_at is not None and fmt not in {"snapshot", "hubspot-dates"}:
        msg = "--undated-at is for snapshot tables (--format snapshot or hubspot-dates)"
        raise click.BadParameter(msg, param_hint="--undated-at")
    if options.get("entered") and fmt not in {"snapshot", "hubspot-dates"}:
        msg = "--entered is for snapshot tables (--format snapshot or hubspot-dates)"
        raise click.BadParameter(msg, param_hint="--entered")
    importers: dict[str, Callable[..., ImportResult]] = {
        "log": import_log,
        "salesforce": import_salesforce_history,
        "salesforce-fields": import_salesforce_field_history,
        "hubspot": import_hubspot_history,
    }
    if fmt == "pipedrive":
        return import_pipedrive(
            path,
            process=process,
            stages=options.get("pipedrive_stages"),
            fields=options.get("pipedrive_fields"),
            won=won,
            lost=lost,
            order=order,
            **common,
        )
    if fmt == "hubspot-dates":
        return import_hubspot_stage_dates(
            path,
            process=process,
            entered=options.get("entered") or None,
            stages=order,
            won=won,
            lost=lost,
            undated_at=undated_at,
            **{k: v for k, v in common.items() if k != "max_field_size"},
        )
    if fmt == "snapshot":
        entered = options.get("entered") or {}
        if not entered:
            msg = "a snapshot import needs --entered STAGE=COLUMN for each dated stage"
            raise click.BadParameter(msg, param_hint="--entered")
        return import_snapshot(
            path,
            process=process,
            entered=entered,
            stages=order,
            won=won,
            lost=lost,
            undated_at=undated_at,
            **common,
        )
    return importers[fmt](path, process=process, won=won, lost=lost, order=order, **common)


PROGRESS_FROM = 50_000
"""Imports of at least this many events show progress bars while checking and writing."""

_COMMON = (
    "stage_map",
    "columns",
    "assume_zone",
    "as_of",
    "strict",
    "encoding",
    "delimiter",
    "max_field_size",
    "segments",
    "owners",
)


def _own_log(path: Path, process: Process, phases: Phases | None = None) -> ImportResult:
    """A stagegate event log (written by ``write_events``) as an import result."""
    events = read_events(path, phases=phases)
    foreign = sorted({e.process for e in events if e.process != process.name})
    if foreign:
        raise ImportProblemError(
            "events",
            [
                Finding(
                    "unknown_process",
                    Severity.ERROR,
                    f"the log holds events of process {', '.join(map(repr, foreign))}, not "
                    f"{process.name!r}; pass --process with the definition they were recorded in",
                    used=False,
                )
            ],
        )
    return ImportResult(
        source="events",
        events=events,
        findings=(),
        stage_map={},
        process=process.name,
        process_version=process.version,
        rows_read=len(events),
        rows_used=len(events),
        definition=process,
    )


def _findings_table(findings: tuple[Finding, ...]) -> Table:
    table = Table(title="findings", title_justify="left")
    for column in ("severity", "code", "count", "rows", "example"):
        table.add_column(column, overflow="fold")
    counts = Counter((f.severity.value, f.code) for f in findings)
    examples: dict[tuple[str, str], str] = {}
    rows: dict[tuple[str, str], set[int]] = {}
    for finding in findings:
        examples.setdefault((finding.severity.value, finding.code), _shown(finding))
        rows.setdefault((finding.severity.value, finding.code), set()).update(finding.rows)
    order = {"error": 0, "warning": 1, "info": 2}
    for key in sorted(counts, key=lambda k: (order.get(k[0], 3), k[1])):
        numbers = sorted(rows[key])
        shown = ", ".join(map(str, numbers[:5])) + (
            f" (+{len(numbers) - 5})" if len(numbers) > 5 else ""  # noqa: PLR2004
        )
        # escaped: a stage named "Won [emea]" shows as typed, not as rich markup
        table.add_row(
            escape(key[0]), escape(key[1]), str(counts[key]), shown, escape(examples[key])
        )
    return table


def _shown(finding: Finding) -> str:
    """A finding as the command line shows it: where, then the message with its CLI hint."""
    where = []
    if finding.opportunity_id is not None:
        where.append(f"opportunity {finding.opportunity_id!r}")
    if finding.rows:
        rows = ", ".join(str(r) for r in finding.rows[:5])
        more = f" (+{len(finding.rows) - 5} more)" if len(finding.rows) > 5 else ""  # noqa: PLR2004
        where.append(f"row{'s' if len(finding.rows) > 1 else ''} {rows}{more}")
    text = finding.text("cli")
    return f"{', '.join(where)}: {text}" if where else text


def _stages_table(process: Process) -> Table:
    """The stages of an inferred process, by label, with their unconfigured probabilities."""
    table = Table(title=f"process {process.name!r} (inferred)", title_justify="left")
    for column in ("stage", "id", "kind", "probability"):
        table.add_column(column, overflow="fold")
    for stage in process.stages:
        label = stage.labels.get("en") or next(iter(stage.labels.values()), stage.id)
        shown = "not configured" if stage.kind.value == "open" else f"{stage.probability:g}"
        table.add_row(escape(label), escape(stage.id), stage.kind.value, shown)
    return table


def _skipped(findings: tuple[Finding, ...]) -> tuple[int, bool]:
    """How many rows were skipped, and whether any were.

    A row is skipped when an error or a warning finding says it was not used; rows named only by
    info findings (a repeat, a change to values already in force) add nothing, so none is lost.
    """
    lost = [f for f in findings if not f.used and f.severity is not Severity.INFO]
    return len({row for finding in lost for row in finding.rows}), bool(lost)


_PAIR_FLAGS = {"columns": "--column", "map": "--map", "entered": "--entered"}


def _settings(
    mapping_path: Path | None, flags: Mapping[str, Any], repeated: Mapping[str, tuple[str, ...]]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The format, the settings chosen (flags over the mapping file) and the importer options.

    ``repeated`` holds the repeated ``KEY=VALUE`` flags (``columns``, ``map``, ``entered``), each
    merged key by key over the mapping file's table of the same name.

    Raises:
        click.BadParameter: the mapping file names an unknown format.
    """
    file = read_mapping(mapping_path) if mapping_path is not None else {}
    chosen = {**file, **{k: v for k, v in flags.items() if v is not None}}
    for name, given in repeated.items():
        chosen[name] = {**file.get(name, {}), **pairs(given, _PAIR_FLAGS[name])}
    fmt = chosen.get("format") or "events"
    if fmt not in FORMATS:
        msg = f"format {fmt!r} is not one of {', '.join(FORMATS)}"
        raise click.BadParameter(msg, param_hint="--mapping")
    options: dict[str, Any] = {
        "stage_map": chosen["map"] or None,
        "columns": chosen["columns"] or None,
        "entered": chosen["entered"],
        "stage_order": chosen.get("stage_order"),
        "won": chosen.get("won"),
        "lost": chosen.get("lost"),
        "undated_at": chosen.get("undated_at"),
        "as_of": chosen.get("as_of"),
        "assume_zone": chosen.get("assume_zone"),
        "strict": False,  # the command applies it, after --accept
        "encoding": chosen.get("encoding"),
        "delimiter": chosen.get("delimiter") or ",",
        "pipedrive_stages": chosen.get("pipedrive_stages"),
        "pipedrive_fields": chosen.get("pipedrive_fields"),
        "segments": tuple(chosen.get("segments") or ()),
        "owners": chosen.get("owners"),
    }
    if chosen.get("max_field_size") is not None:
        options["max_field_size"] = chosen["max_field_size"]
    return fmt, chosen, options


@app.command("import", epilog=EXAMPLES)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=STORE,
    required=True,
    help="The event store to write (created if missing): a SQLite file or a postgresql:// URL.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="What the file is (default: events, a stagegate log).",
)
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A TOML or JSON file with these options (format, columns, map, won, lost, "
    "stage_order, entered, assume_zone, undated_at, ...); flags given too win.",
)
@process_option
@click.option(
    "--template",
    "template_name",
    default=None,
    help="Built-in template to map stages to (default for --format events: b2b). Without "
    "--process or --template, CRM imports infer a process from the data.",
)
@click.option("--assume-zone", default=None, help="IANA zone of naive timestamps, e.g. UTC.")
@click.option(
    "--map",
    "stage_map",
    multiple=True,
    help="SOURCE=TARGET (repeat): a source stage to a process stage id, or, for an inferred "
    "process, to the stage name it becomes (several sources may share one).",
)
@click.option("--column", "columns", multiple=True, help="Canonical column=export header (repeat).")
@click.option(
    "--won", multiple=True, help="A stage that closes a deal as won (repeat, or comma-separated)."
)
@click.option(
    "--lost", multiple=True, help="A stage that closes a deal as lost (repeat, or comma-separated)."
)
@click.option(
    "--stage-order",
    default=None,
    help="The stages of an inferred process in order, comma-separated (default: guessed).",
)
@click.option("--entered", multiple=True, help="snapshot: STAGE=COLUMN of its entry date (repeat).")
@click.option(
    "--undated-at",
    default=None,
    callback=instant_callback,
    help="snapshot: open deals with no dated stage at this date or instant (else skipped).",
)
@click.option(
    "--as-of",
    default=None,
    callback=instant_callback,
    help="Refuse changes dated later (default: now). A date means the start of that day in UTC.",
)
@click.option(
    "--pipedrive-stages",
    type=click.Path(dir_okay=False, path_type=Path),
    help="pipedrive: the stage table (stage_id, stage_name[, order_nr]) naming stage ids.",
)
@click.option(
    "--pipedrive-fields",
    type=click.Path(dir_okay=False, path_type=Path),
    help="pipedrive: the fields table labelling lost_reason (and stage) ids.",
)
@click.option("--encoding", default=None, help="CSV text encoding (default: UTF-8).")
@click.option("--delimiter", default=None, help="CSV field separator (default: ,).")
@click.option(
    "--max-field-size",
    type=click.IntRange(min=1),
    default=None,
    help="The largest CSV field accepted, in characters (default: 1,000,000).",
)
@click.option(
    "--segment",
    "segments",
    multiple=True,
    help="A column (or, for field-change logs, a field) to carry as a segment of each deal, "
    "e.g. product or region (repeat, or comma-separated). Map the owner with --column "
    "owner=HEADER.",
)
@click.option(
    "--owners",
    "owners_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A table of owners (first column the owner, then e.g. manager, regional_office) "
    "whose columns become segments of each owner's deals.",
)
@click.option("--strict", is_flag=True, help="Refuse the whole file on any warning.")
@click.option(
    "--accept",
    "accepted",
    multiple=True,
    help="A warning code you have checked (e.g. reused_id): shown as info, and --strict "
    "accepts it (repeat, or comma-separated). Errors cannot be accepted.",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Import the usable rows even when some rows cannot be used (exit 1).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Build a new store from PATH and swap it in for the old one only when complete "
    "(refused when the old one is open elsewhere).",
)
@click.option(
    "--quiet", is_flag=True, help="Draw no progress bars (none are drawn off a terminal either)."
)
@json_option
def import_command(
    path: Path,
    store_path: Path,
    fmt: str | None,
    mapping_path: Path | None,
    process_path: Path | None,
    template_name: str | None,
    assume_zone: str | None,
    stage_map: tuple[str, ...],
    columns: tuple[str, ...],
    won: tuple[str, ...],
    lost: tuple[str, ...],
    stage_order: str | None,
    entered: tuple[str, ...],
    undated_at: datetime | None,
    as_of: datetime | None,
    pipedrive_stages: Path | None,
    pipedrive_fields: Path | None,
    encoding: str | None,
    delimiter: str | None,
    max_field_size: int | None,
    segments: tuple[str, ...],
    owners_path: Path | None,
    strict: bool,
    accepted: tuple[str, ...],
    skip_bad_rows: bool,
    replace: bool,
    quiet: bool,
    as_json: bool,
) -> int:
    """Import PATH (a CRM export or a stagegate log) into the event store, all or nothing.

    Rows that cannot be used are listed as findings, each with what to type to fix it. With
    errors among them nothing is written (exit 2) unless --skip-bad-rows is given. Exit 0 when
    every row was used, 1 when rows were skipped, 2 when the file was refused.
    """
    flags: dict[str, Any] = {
        "format": fmt,
        "process": process_path,
        "template": template_name,
        "assume_zone": assume_zone,
        "stage_order": names((stage_order,)) if stage_order else None,
        "won": names(won) or None,
        "lost": names(lost) or None,
        "undated_at": undated_at,
        "as_of": as_of,
        "pipedrive_stages": pipedrive_stages,
        "pipedrive_fields": pipedrive_fields,
        "encoding": encoding,
        "delimiter": delimiter,
        "max_field_size": max_field_size,
        "accept": names(accepted) or None,
        "segments": names(segments) or None,
        "owners": owners_path,
    }
    repeated = {"columns": columns, "map": stage_map, "entered": entered}
    fmt, chosen, options = _settings(mapping_path, flags, repeated)
    given_process = chosen.get("process")
    try:
        process = _process(
            None if given_process is None else Path(given_process), chosen.get("template")
        )
        silent = quiet or as_json
        if fmt == "events":
            fast = _fast(path, store_path, process or template("b2b"), replace, as_json, silent)
            if fast is not None:
                return fast
        if fmt == "events" and _streams(path):
            return _stream(path, store_path, process or template("b2b"), replace, as_json, silent)
        with bars(quiet=silent) as phases:
            if fmt == "events":
                result = _own_log(path, process or template("b2b"), phases)
                process = process or template("b2b")
            else:
                result = _run_importer(fmt, path, process, options, phases)
    except ImportProblemError as error:
        return _refuse(path, error.findings, as_json=as_json)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        # the library's errors name keyword arguments; the user here types flags
        return fail(escape(cli_text(str(error))), as_json=as_json)

    result = accept(result, chosen.get("accept") or ())
    if strict and result.problems:
        return _refuse(path, result.findings, as_json=as_json, strict=True)
    errors = [f for f in result.findings if f.severity.value == "error"]
    if errors and not skip_bad_rows:
        return _refuse(path, result.findings, as_json=as_json, partial=True)
    if not result.events:
        return _refuse(path, result.findings, as_json=as_json, empty=True)
    try:
        outcome = _write(store_path, result, path, replace=replace, quiet=silent)
    except ImportRefusedError as error:
        return fail(error.summary, as_json=as_json, problems=list(error.problems[:SHOWN]))
    except StagegateError as error:
        return fail(f"nothing was written: {escape(str(error))}", as_json=as_json)
    return _imported(
        result, outcome, store_path, process_given=process is not None, as_json=as_json
    )


def _imported(
    result: ImportResult,
    outcome: ImportOutcome,
    store_path: Path,
    *,
    process_given: bool,
    as_json: bool,
) -> int:
    """Say what an import wrote (a summary, or its JSON) and return the exit code."""
    target = result.definition
    skipped_rows, skipped = _skipped(result.findings)
    code = EXIT_NEGATIVE if skipped else EXIT_OK
    inferred = target is not None and not process_given
    written = outcome.record.events
    result = attrs.evolve(result, findings=result.findings + outcome.findings)
    summary = {
        "ok": code == EXIT_OK,
        "source": result.source,
        "store": str(store_path),
        "process": result.process,
        "process_version": result.process_version,
        "process_stored": target is not None,
        "process_inferred": inferred,
        "stages": None
        if target is None
        else [_stage_dict(s, inferred=inferred) for s in target.stages],
        "rows_read": result.rows_read,
        "rows_used": result.rows_used,
        "rows_skipped": skipped_rows,
        "opportunities": result.opportunities,
        "events": written,
        "segments": list(result.segment_names),
        "findings": [_finding_dict(f) for f in result.findings],
    }
    if as_json:
        print_json(summary)
        return code
    console = out_console()
    console.print(
        f"imported [bold]{result.opportunities}[/] opportunities ({written} events) from "
        f"{result.rows_used} of {result.rows_read} rows into {escape(str(store_path))}"
        + (f"; [yellow]{skipped_rows} row(s) skipped[/] (see the findings)" if skipped else "")
    )
    if target is None:
        console.print(
            f"[yellow]note[/]: process {escape(repr(result.process))} "
            f"v{escape(result.process_version)} is not stored with the events; pass --process "
            "to `stagegate report`"
        )
    elif inferred:
        console.print(_stages_table(target))
    if result.segment_names:
        console.print(
            f"segments read: {escape(', '.join(result.segment_names))} (see "
            "ImportResult.segments; the store keeps them once owner and attribute events exist)"
        )
    if result.findings:
        console.print(_findings_table(result.findings))
    return code


def _stage_dict(stage: Any, *, inferred: bool) -> dict[str, Any]:
    open_stage = stage.kind.value == "open"
    return {
        "id": stage.id,
        "label": stage.labels.get("en") or stage.id,
        "kind": stage.kind.value,
        # an inferred process has no configured probabilities: say so, not 0.0
        "probability": None if inferred and open_stage else stage.probability,
    }


def _suffix(path: Path) -> str:
    """The suffix that names a log's format (``.gz`` looked through)."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _streams(path: Path) -> bool:
    """A stagegate event log is imported streaming, in bounded memory."""
    return _suffix(path) in {".jsonl", ".ndjson", ".csv", ".parquet", ".pq"}


def _json_lines(path: Path) -> bool:
    return _suffix(path) in {".jsonl", ".ndjson"}


def _stream(
    path: Path, store_path: Path, process: Process, replace: bool, as_json: bool, quiet: bool
) -> int:
    """Import a stagegate event log with stagegate.store.stream_import."""
    try:
        with bars(quiet=quiet) as phases:
            outcome = stream_import(
                store_path, path, process=process, replace=replace, phases=phases
            )
    except ImportRefusedError as error:
        return fail(error.summary, as_json=as_json, problems=list(error.problems[:SHOWN]))
    except ImportProblemError as error:
        return _refuse(path, error.findings, as_json=as_json)
    except StagegateError as error:
        return fail(f"nothing was written: {escape(cli_text(str(error)))}", as_json=as_json)
    return _log_summary(path, outcome, store_path, process, as_json=as_json)


def _streamed(
    record: ImportRecord,
    store_path: Path,
    process: Process,
    *,
    as_json: bool,
    findings: tuple[Finding, ...],
) -> int:
    """Print the summary of a streamed import."""
    if as_json:
        print_json(
            {
                "ok": True,
                "source": record.source,
                "store": str(store_path),
                "process": process.name,
                "process_version": process.version,
                "process_stored": process.serializable,
                "rows_read": record.rows_read,
                "rows_used": record.rows_used,
                "opportunities": record.opportunities,
                "events": record.events,
                "findings": [dict(f) for f in record.findings],
            }
        )
        return EXIT_OK
    console = out_console()
    console.print(
        f"imported [bold]{record.opportunities}[/] opportunities ({record.events} events) from "
        f"{record.rows_used} of {record.rows_read} rows into {escape(str(store_path))}"
    )
    if findings:
        console.print(_findings_table(findings))
    return EXIT_OK


def _fast(
    path: Path, store_path: Path, process: Process, replace: bool, as_json: bool, quiet: bool
) -> int | None:
    """Import a plain stagegate log with the bulk path; ``None`` when it takes the ordinary way.

    What it prints is what the ordinary path prints for the same file (``_stream``'s summary for
    JSON Lines, the import summary for CSV and Parquet).
    """
    try:
        with bars(quiet=quiet) as phases:
            outcome = bulk_import(store_path, path, process=process, replace=replace, phases=phases)
    except StagegateError as error:
        return fail(f"nothing was written: {escape(cli_text(str(error)))}", as_json=as_json)
    if outcome is None:
        return None
    return _log_summary(path, outcome, store_path, process, as_json=as_json)


def _log_summary(
    path: Path, outcome: ImportOutcome, store_path: Path, process: Process, *, as_json: bool
) -> int:
    """What an import of a stagegate log prints, whichever way it went.

    JSON Lines has the summary of a streamed import; CSV and Parquet the summary of any other
    import, as when they were read whole.
    """
    record = outcome.record
    if _json_lines(path):
        return _streamed(record, store_path, process, as_json=as_json, findings=outcome.findings)
    if as_json:
        print_json(
            {
                "ok": True,
                "source": record.source,
                "store": str(store_path),
                "process": process.name,
                "process_version": process.version,
                "process_stored": True,
                "process_inferred": False,
                "stages": [_stage_dict(s, inferred=False) for s in process.stages],
                "rows_read": record.rows_read,
                "rows_used": record.rows_used,
                "rows_skipped": 0,
                "opportunities": record.opportunities,
                "events": record.events,
                "segments": [],
                "findings": [_finding_dict(f) for f in outcome.findings],
            }
        )
        return EXIT_OK
    console = out_console()
    console.print(
        f"imported [bold]{record.opportunities}[/] opportunities ({record.events} events) from "
        f"{record.rows_used} of {record.rows_read} rows into {escape(str(store_path))}"
    )
    if outcome.findings:
        console.print(_findings_table(outcome.findings))
    return EXIT_OK


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.text("cli"),
        "hint": None if finding.hint is None else finding.hint.cli,
        "rows": list(finding.rows),
        "opportunity_id": finding.opportunity_id,
        "used": finding.used,
    }


def _refuse(
    path: Path,
    findings: tuple[Finding, ...],
    *,
    as_json: bool,
    partial: bool = False,
    empty: bool = False,
    strict: bool = False,
) -> int:
    if strict:
        why = (
            "--strict refuses any error or warning; nothing was written (fix them, or pass "
            "--accept CODE for a warning you have checked)"
        )
    elif partial:
        why = "some rows cannot be used; nothing was written (fix them, or pass --skip-bad-rows)"
    elif empty:
        why = "the file holds no usable rows; nothing was written"
    else:
        why = "the file cannot be imported; nothing was written"
    if as_json:
        print_json(
            {
                "ok": False,
                "error": f"{path}: {why}",
                "findings": [_finding_dict(f) for f in findings],
            }
        )
    else:
        console = err_console()
        console.print(f"[bold red]error:[/] {escape(str(path))}: {why}")
        if findings:
            console.print(_findings_table(findings))
    return EXIT_BAD_INPUT


def _write(
    store_path: Path, result: ImportResult, path: Path, *, replace: bool, quiet: bool
) -> ImportOutcome:
    """Verify and write the import (see stagegate.store.write_import), with progress bars."""
    options: dict[str, Any] = {
        "process": result.definition,
        "source": result.source,
        "input_path": path,
        "rows_read": result.rows_read,
        "rows_used": result.rows_used,
        "findings": result.findings,
        "replace": replace,
    }
    with bars(quiet=quiet or len(result.events) < PROGRESS_FROM) as phases:
        return write_import(store_path, result.events, phases=phases, **options)
