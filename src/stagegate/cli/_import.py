"""``stagegate import``: an export into the embedded store, all or nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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
from stagegate.process import Process
from stagegate.store import ImportOutcome, ImportRefusedError, stream_import, write_import
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


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            msg = f"{what} must look like NAME=VALUE, got {value!r}"
            raise click.BadParameter(msg)
        pairs[key] = target
    return pairs


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
    fmt: str, path: Path, process: Process | None, options: Mapping[str, Any]
) -> ImportResult:
    common = {k: v for k, v in options.items() if k in _COMMON}
    importers: dict[str, Callable[..., ImportResult]] = {
        "log": import_log,
        "salesforce": import_salesforce_history,
        "salesforce-fields": import_salesforce_field_history,
        "hubspot": import_hubspot_history,
        "hubspot-dates": import_hubspot_stage_dates,
    }
    if fmt == "pipedrive":
        return import_pipedrive(
            path,
            process=process,
            stages=options.get("pipedrive_stages"),
            fields=options.get("pipedrive_fields"),
            **common,
        )
    if fmt == "snapshot":
        entered = options.get("entered") or {}
        if not entered:
            msg = "a snapshot import needs --entered STAGE=COLUMN for each dated stage"
            raise click.BadParameter(msg, param_hint="--entered")
        order = options.get("stage_order")
        return import_snapshot(
            path,
            process=process,
            entered=entered,
            stages=None if not order else [s.strip() for s in order.split(",") if s.strip()],
            **common,
        )
    return importers[fmt](path, process=process, **common)


PROGRESS_FROM = 50_000
"""Imports of at least this many events show a progress bar."""

_COMMON = ("stage_map", "columns", "assume_zone", "strict", "encoding", "delimiter")


def _own_log(path: Path, process: Process) -> ImportResult:
    """A stagegate event log (written by ``write_events``) as an import result."""
    events = read_events(path)
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
        examples.setdefault((finding.severity.value, finding.code), finding.message)
        rows.setdefault((finding.severity.value, finding.code), set()).update(finding.rows)
    order = {"error": 0, "warning": 1, "info": 2}
    for key in sorted(counts, key=lambda k: (order.get(k[0], 3), k[1])):
        numbers = sorted(rows[key])
        shown = ", ".join(map(str, numbers[:5])) + (
            f" (+{len(numbers) - 5})" if len(numbers) > 5 else ""  # noqa: PLR2004
        )
        table.add_row(key[0], key[1], str(counts[key]), shown, examples[key])
    return table


@app.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite event store to write (created if missing).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="events",
    show_default=True,
    help="What the file is.",
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
    "--map", "stage_map", multiple=True, help="Source stage label=process stage id (repeat)."
)
@click.option("--column", "columns", multiple=True, help="Canonical column=export header (repeat).")
@click.option("--entered", multiple=True, help="snapshot: stage=column of its entry date.")
@click.option(
    "--stage-order",
    default=None,
    help="snapshot: the source stages in process order, comma-separated (for inference).",
)
@click.option("--pipedrive-stages", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pipedrive-fields", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="CSV text encoding (default: UTF-8).")
@click.option("--delimiter", default=",", show_default=True, help="CSV field separator.")
@click.option("--strict", is_flag=True, help="Refuse the whole file on any warning.")
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
@json_option
def import_command(
    path: Path,
    store_path: Path,
    fmt: str,
    process_path: Path | None,
    template_name: str | None,
    assume_zone: str | None,
    stage_map: tuple[str, ...],
    columns: tuple[str, ...],
    entered: tuple[str, ...],
    stage_order: str | None,
    pipedrive_stages: Path | None,
    pipedrive_fields: Path | None,
    encoding: str | None,
    delimiter: str,
    strict: bool,
    skip_bad_rows: bool,
    replace: bool,
    as_json: bool,
) -> int:
    """Import PATH (a CRM export or a stagegate log) into the event store, all or nothing.

    Rows that cannot be used are listed as findings. With errors among them nothing is written
    (exit 2) unless --skip-bad-rows is given (exit 1). Exit 0 when everything was imported.
    """
    options: dict[str, Any] = {
        "stage_map": _pairs(stage_map, "--map") or None,
        "columns": _pairs(columns, "--column") or None,
        "entered": _pairs(entered, "--entered"),
        "stage_order": stage_order,
        "assume_zone": assume_zone,
        "strict": strict,
        "encoding": encoding,
        "delimiter": delimiter,
        "pipedrive_stages": pipedrive_stages,
        "pipedrive_fields": pipedrive_fields,
    }
    try:
        process = _process(process_path, template_name)
        if fmt == "events" and _streams(path):
            return _stream(path, store_path, process or template("b2b"), replace, as_json)
        if fmt == "events":
            result = _own_log(path, process or template("b2b"))
            process = process or template("b2b")
        else:
            result = _run_importer(fmt, path, process, options)
    except ImportProblemError as error:
        return _refuse(path, error.findings, as_json=as_json)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)

    errors = [f for f in result.findings if f.severity.value == "error"]
    if errors and not skip_bad_rows:
        return _refuse(path, result.findings, as_json=as_json, partial=True)
    if not result.events:
        return _refuse(path, result.findings, as_json=as_json, empty=True)
    target = result.definition
    try:
        outcome = _write(store_path, result, path, replace=replace, quiet=as_json)
    except ImportRefusedError as error:
        return fail(error.summary, as_json=as_json, problems=list(error.problems[:SHOWN]))
    except StagegateError as error:
        return fail(f"nothing was written: {error}", as_json=as_json)
    written = outcome.record.events
    result = attrs.evolve(result, findings=result.findings + outcome.findings)
    code = EXIT_NEGATIVE if errors else EXIT_OK
    summary = {
        "ok": code == EXIT_OK,
        "source": result.source,
        "store": str(store_path),
        "process": result.process,
        "process_version": result.process_version,
        "process_stored": target is not None,
        "rows_read": result.rows_read,
        "rows_used": result.rows_used,
        "opportunities": result.opportunities,
        "events": written,
        "findings": [_finding_dict(f) for f in result.findings],
    }
    if as_json:
        print_json(summary)
        return code
    console = out_console()
    console.print(
        f"imported [bold]{result.opportunities}[/] opportunities ({written} events) from "
        f"{result.rows_used} of {result.rows_read} rows into {store_path}"
    )
    if target is None:
        console.print(
            f"[yellow]note[/]: process {result.process!r} v{result.process_version} is not "
            "stored with the events; pass --process to `stagegate report`"
        )
    if result.findings:
        console.print(_findings_table(result.findings))
    return code


def _streams(path: Path) -> bool:
    """A JSON Lines event log is imported streaming, in bounded memory."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    return suffixes[-1:] in ([".jsonl"], [".ndjson"])


def _stream(path: Path, store_path: Path, process: Process, replace: bool, as_json: bool) -> int:
    """Import a stagegate JSON Lines log with stagegate.store.stream_import."""
    try:
        outcome = stream_import(store_path, path, process=process, replace=replace)
    except ImportRefusedError as error:
        return fail(error.summary, as_json=as_json, problems=list(error.problems[:SHOWN]))
    except ImportProblemError as error:
        return _refuse(path, error.findings, as_json=as_json)
    except StagegateError as error:
        return fail(f"nothing was written: {error}", as_json=as_json)
    record = outcome.record
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
        f"{record.rows_used} of {record.rows_read} rows into {store_path}"
    )
    if outcome.findings:
        console.print(_findings_table(outcome.findings))
    return EXIT_OK


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
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
) -> int:
    if partial:
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
        console.print(f"[bold red]error:[/] {path}: {why}")
        if findings:
            console.print(_findings_table(findings))
    return EXIT_BAD_INPUT


def _write(
    store_path: Path, result: ImportResult, path: Path, *, replace: bool, quiet: bool
) -> ImportOutcome:
    """Verify and write the import (see stagegate.store.write_import), with a progress bar."""
    events = result.events
    options: dict[str, Any] = {
        "process": result.definition,
        "source": result.source,
        "input_path": path,
        "rows_read": result.rows_read,
        "rows_used": result.rows_used,
        "findings": result.findings,
        "replace": replace,
    }
    if quiet or len(events) < PROGRESS_FROM:
        return write_import(store_path, events, **options)
    with Progress(
        TextColumn("writing events"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("write", total=len(events))
        return write_import(
            store_path,
            events,
            progress=lambda done: bar.update(task, completed=done),
            **options,
        )
