"""Commands of the ``stagegate`` command line (click + rich)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from stagegate._time import parse_instant
from stagegate.cli import EXIT_BAD_INPUT, EXIT_NEGATIVE, EXIT_OK
from stagegate.definition import load_process
from stagegate.errors import (
    DefinitionError,
    GateNotMetError,
    MoveNotAllowedError,
    StagegateError,
)
from stagegate.events import Event
from stagegate.opportunity import Opportunity
from stagegate.process import Process
from stagegate.templates import TEMPLATES, template


@click.group(
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
    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """A console on standard output for results."""
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
        StagegateError: the file cannot be read or holds malformed events.
    """
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
    return [Event.from_dict(item) for item in items]


@app.command()
@click.argument("events_path", metavar="EVENTS")
@click.argument("move", metavar="MOVE")
@process_option
@template_option
@click.option("--at", default=None, help="ISO 8601 instant of the move; default: the last event's.")
@click.option("--actor", default="cli", show_default=True, help="Who asks for the move.")
@click.option("--reason", default=None, help="Reason, where the move needs one.")
@click.option("--override", is_flag=True, help="Override an unmet gate (needs --reason).")
def check(
    events_path: str,
    move: str,
    process_path: Path | None,
    template_name: str,
    at: str | None,
    actor: str,
    reason: str | None,
    override: bool,
) -> int:
    """Decide MOVE for the opportunity whose events are in EVENTS; print the decision as JSON.

    EVENTS is a JSON array or JSON Lines file of events (as written by Event.to_dict), or - for
    standard input. MOVE is advance, win, lose, reopen, or a target stage id.
    Exit 0 when the move is allowed, 1 when it is blocked, 2 for bad input.
    """
    try:
        process = resolve_process(process_path, template_name)
        deal = Opportunity.replay(process, read_events(events_path))
        instant = deal.last_at if at is None else parse_instant(at)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=True,
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        return fail(str(error), as_json=True)
    decision: dict[str, Any] = {
        "opportunity_id": deal.id,
        "from_stage": deal.stage,
        "requested": move,
        "at": instant.isoformat(),
    }
    try:
        event = _attempt(deal, move, at=instant, actor=actor, reason=reason, override=override)
    except GateNotMetError as error:
        decision.update(
            allowed=False,
            error="GateNotMetError",
            message=str(error),
            missing=list(error.report.missing),
            report=error.report.to_dict(),
        )
    except MoveNotAllowedError as error:
        decision.update(
            allowed=False,
            error="MoveNotAllowedError",
            message=str(error),
            why=error.why,
            allowed_targets=list(error.allowed),
        )
    except StagegateError as error:
        decision.update(allowed=False, error=type(error).__name__, message=str(error))
    else:
        decision.update(allowed=True, to_stage=event.stage, event=event.to_dict())
    if not decision["allowed"]:
        decision["available_moves"] = [
            {
                "target": option.target,
                "kind": option.kind.value,
                "allowed": option.allowed,
                "needs_reason": option.needs_reason,
                "blocked_by": list(option.blocked_by),
            }
            for option in deal.available_moves(at=instant)
        ]
    print_json(decision)
    return EXIT_OK if decision["allowed"] else EXIT_NEGATIVE


def _attempt(
    deal: Opportunity,
    move: str,
    *,
    at: Any,
    actor: str,
    reason: str | None,
    override: bool,
) -> Event:
    if override:
        if move == "advance":
            nxt = deal.process.next_stage(deal.stage)
            move = deal.stage if nxt is None else nxt.id
        return deal.override(move, at=at, actor=actor, reason=reason or "")
    if move == "advance":
        return deal.advance(at=at, actor=actor)
    if move == "win":
        return deal.win(at=at, actor=actor)
    if move == "lose":
        return deal.lose(at=at, actor=actor, reason=reason or "")
    if move == "reopen":
        return deal.reopen(at=at, actor=actor, reason=reason or "")
    return deal.move_to(move, at=at, actor=actor, reason=reason)


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
