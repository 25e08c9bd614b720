"""Commands of the ``stagegate`` command line (click; rich only where tables are drawn).

``check`` must start fast: this module imports nothing heavy at the top (no rich, no
``jsonschema``, no analytics, I/O or store); the commands of other modules are imported when
they are named (:data:`stagegate.cli.COMMAND_MODULES`).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stagegate.cli import (
    COMMAND_MODULES,
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_NEGATIVE,
    EXIT_OK,
    OutputError,
    internal_error_line,
)
from stagegate.definition import load_process
from stagegate.errors import DefinitionError, StagegateError
from stagegate.events import Event
from stagegate.process import Process
from stagegate.templates import TEMPLATES, template

if TYPE_CHECKING:
    from rich.console import Console


class _Commands(click.Group):
    """The command group: commands of other modules are imported when they are named."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click's signature
        return sorted({*self.commands, *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])  # its commands join this group
        return self.commands.get(cmd_name)


@click.group(
    cls=_Commands,
    name="stagegate",
    help="Stage-gated B2B pipelines: validate processes, check moves, import history, report.",
    no_args_is_help=True,
)
@click.version_option(package_name="stagegate")
def app() -> None:
    """The command group."""


MAX_INPUT_BYTES = 256 * 1024 * 1024
"""Largest events file ``check`` reads."""

process_option = click.option(
    "--process",
    "-p",
    "process_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Process definition file (.toml, .json, .yaml). Default: the built-in template.",
)
template_option = click.option(
    "--template",
    "template_name",
    default="b2b",
    show_default=True,
    help=f"Built-in template: {', '.join(TEMPLATES)}.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
language_option = click.option(
    "--language", default="en", show_default=True, help="Label language, e.g. en or ko."
)


def err_console() -> Console:
    """A console on standard error for messages."""
    from rich.console import Console  # noqa: PLC0415 - slow to import; check never needs it

    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """A console on standard output for results."""
    from rich.console import Console  # noqa: PLC0415 - slow to import; check never needs it

    return Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, *, as_json: bool = False, problems: list[str] | None = None) -> int:
    """Report bad input and return the bad-input exit code."""
    if as_json:
        print_json({"ok": False, "error": message, "problems": problems or []})
    else:
        err_console().print(f"[bold red]error:[/] {message}", markup=True)
        for problem in problems or []:
            err_console().print(f"  - {problem}", markup=False)
    return EXIT_BAD_INPUT


def resolve_process(path: Path | None, name: str) -> Process:
    """Load the process from ``path``, or the named built-in template.

    Raises:
        DefinitionError: the file or the template name is invalid.
    """
    if path is not None:
        return load_process(path)
    if name not in TEMPLATES:
        from stagegate.errors import Problem  # noqa: PLC0415

        raise DefinitionError(
            [Problem("", f"no built-in template {name!r}; choose one of {', '.join(TEMPLATES)}")]
        )
    return template(name)


@app.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings.")
def validate(path: Path, as_json: bool, strict: bool) -> int:
    """Check a process definition; list every problem with its path."""
    import warnings  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            process = load_process(path)
    except DefinitionError as error:
        return fail(
            f"{path} is not a valid process definition",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    notes = [str(p) for p in process.warnings]
    if as_json:
        print_json(
            {
                "ok": True,
                "name": process.name,
                "version": process.version,
                "stages": list(process.stage_ids),
                "serializable": process.serializable,
                "warnings": notes,
            }
        )
    else:
        console = out_console()
        console.print(
            f"[green]valid[/]: process {process.name!r} v{process.version}, "
            f"{len(process.stages)} stages"
        )
        for note in notes:
            console.print(f"  [yellow]warning[/] {note}")
    return EXIT_NEGATIVE if strict and notes else EXIT_OK


@app.command()
@process_option
@template_option
@language_option
def diagram(process_path: Path | None, template_name: str, language: str) -> int:
    """Print the stage graph of a process as a Mermaid state diagram."""
    try:
        process = resolve_process(process_path, template_name)
    except DefinitionError as error:
        return fail("the process definition is invalid", problems=[str(p) for p in error.problems])
    sys.stdout.write(process.to_mermaid(language=language))
    return EXIT_OK


def read_events(path: str) -> list[Event]:
    """Read events written by ``Event.to_dict`` from a JSON array or JSON Lines file.

    Raises:
        EventLogError: the file cannot be read or holds malformed events.
    """
    from stagegate.decision import events_from_dicts  # noqa: PLC0415
    from stagegate.errors import EventLogError  # noqa: PLC0415

    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise EventLogError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise EventLogError(f"{path} is larger than {MAX_INPUT_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EventLogError(
            f"{path} is not UTF-8 (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None
    stripped = text.strip()
    if not stripped:
        raise EventLogError(f"{path} is empty; it must hold the opportunity's events")
    try:
        if stripped.startswith("["):
            items = json.loads(stripped)
        elif stripped.startswith("{") and "\n" not in stripped:
            loaded = json.loads(stripped)
            items = loaded.get("events", [loaded]) if isinstance(loaded, dict) else loaded
        else:
            items = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except (ValueError, RecursionError) as exc:
        raise EventLogError(f"{path} is not JSON or JSON Lines: {exc}") from None
    if isinstance(items, dict):
        items = items.get("events", [])
    if not isinstance(items, list):
        raise EventLogError(f"{path} must hold a list of events")
    return events_from_dicts(items)


def print_document(document: Any) -> None:
    """Write a decision document as JSON (ASCII: any text, even a lone surrogate, survives)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


_EXIT_OF = {"allowed": EXIT_OK, "blocked": EXIT_NEGATIVE, "invalid": EXIT_BAD_INPUT}


@app.command()
@click.argument("events_path", metavar="EVENTS")
@click.argument("move", metavar="MOVE")
@process_option
@template_option
@click.option("--at", default=None, help="ISO 8601 instant of the move; default: the last event's.")
@click.option("--actor", default="cli", show_default=True, help="Who asks for the move.")
@click.option("--reason", default=None, help="Reason, where the move needs one.")
@click.option("--override", is_flag=True, help="Override an unmet gate (needs --reason).")
@click.option(
    "--earlier",
    "earlier_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="An earlier version of the process the deal was migrated from (repeatable).",
)
def check(
    events_path: str,
    move: str,
    process_path: Path | None,
    template_name: str,
    at: str | None,
    actor: str,
    reason: str | None,
    override: bool,
    earlier_paths: tuple[Path, ...],
) -> int:
    """Decide MOVE for the opportunity whose events are in EVENTS; print the decision as JSON.

    EVENTS is a JSON array or JSON Lines file of events (as written by Event.to_dict), or - for
    standard input. MOVE is advance, win, lose, reopen, or a target stage id. The decision is a
    decision-response document (docs/service.md). A log that was migrated between versions of
    its process needs the earlier versions (--earlier FILE each) beside the current one.
    Exit 0 when the move is allowed, 1 when the process blocks it, 2 for bad input (a malformed
    or broken log, an unknown stage, an instant before the last event, an empty actor), 3 for
    an internal error.
    """
    from stagegate.decision import (  # noqa: PLC0415 - keeps --help fast
        Decision,
        MoveRequest,
        Verdict,
        decide,
        internal_error_document,
        parse_at,
    )

    try:
        try:
            process = resolve_process(process_path, template_name)
            versions = [load_process(path) for path in earlier_paths]
            events = read_events(events_path)
            instant = None if at is None else parse_at(at)
            request = MoveRequest.from_words(
                move, actor=actor, at=instant, reason=reason, override=override
            )
        except StagegateError as error:
            document = Decision(Verdict.INVALID, error=error).to_dict()
        else:
            document = decide(process, events, request, versions=versions).to_dict()
        print_document(document)
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug gets its own code, never a traceback
        sys.stderr.write(internal_error_line(exc))
        print_document(internal_error_document(exc))
        return EXIT_INTERNAL
    return _EXIT_OF[document["status"]]


@app.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--processes",
    "processes_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder of process definitions (.toml, .json, .yaml), served by their names.",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, processes_dir: Path | None, workers: int) -> int:
    """Serve decisions over HTTP (needs the service extra: pip install 'stagegate[service]')."""
    try:
        from stagegate.service import load_processes, run_server  # noqa: PLC0415
    except ImportError as exc:
        sys.stderr.write(
            f"stagegate serve needs its extra ({exc.name} is missing): "
            "pip install 'stagegate[service]'\n"
        )
        return EXIT_BAD_INPUT
    try:
        processes = load_processes(processes_dir)
    except DefinitionError as error:
        return fail(
            f"a process definition in {processes_dir} is invalid",
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        return fail(str(error))
    run_server(processes, host=host, port=port, workers=workers, processes_dir=processes_dir)
    return EXIT_OK


@app.command()
@process_option
@template_option
@language_option
@json_option
def stages(process_path: Path | None, template_name: str, language: str, as_json: bool) -> int:
    """List the stages of a process with their probability and gate."""
    try:
        process = resolve_process(process_path, template_name)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    if as_json:
        from stagegate.definition import process_to_dict  # noqa: PLC0415

        print_json(process_to_dict(process))
        return EXIT_OK
    from rich.table import Table  # noqa: PLC0415 - slow to import; check never needs it

    table = Table(title=f"{process.name} v{process.version}")
    table.add_column("stage", no_wrap=True)
    for column in ("label", "probability", "kind", "forecast", "gate to enter"):
        table.add_column(column)
    for stage in process.stages:
        table.add_row(
            stage.id,
            stage.labels.get(language, stage.label),
            f"{stage.probability:.0%}",
            stage.kind.value,
            stage.forecast_category,
            "-" if stage.gate is None else stage.gate.describe(),
        )
    out_console().print(table)
    return EXIT_OK
