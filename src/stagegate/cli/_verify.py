"""The ``verify`` command: check logs (a file, or a store) against their process and digests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stagegate.cli import EXIT_NEGATIVE, EXIT_OK
from stagegate.cli._app import (
    app,
    fail,
    json_option,
    out_console,
    print_json,
    process_option,
    read_events,
    resolve_process,
    template_option,
)
from stagegate.cli._store import STORE
from stagegate.errors import DefinitionError, EventLogError, StagegateError
from stagegate.events import Event
from stagegate.integrity import seal, verify


def _by_opportunity(events: list[Event]) -> dict[str, list[Event]]:
    logs: dict[str, list[Event]] = {}
    for event in events:
        logs.setdefault(event.opportunity_id, []).append(event)
    return logs


@app.command(name="verify")
@click.argument("events_path", metavar="EVENTS", required=False)
@click.option(
    "--store",
    "store_path",
    type=STORE,
    default=None,
    help="Verify every opportunity in this event store (a SQLite file or a postgresql:// URL) "
    "instead of an EVENTS file.",
)
@process_option
@template_option
@click.option(
    "--require-digests", is_flag=True, help="Refuse a log in which any event lacks a digest."
)
@click.option(
    "--refuse-imported",
    is_flag=True,
    help="Refuse history imported from another system (never checked against the gates).",
)
@click.option(
    "--seal",
    "seal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the verified events, sealed with their digest chain, to this JSON Lines file.",
)
@json_option
def verify_command(
    events_path: str | None,
    store_path: Path | None,
    process_path: Path | None,
    template_name: str,
    require_digests: bool,
    refuse_imported: bool,
    seal_path: Path | None,
    as_json: bool,
) -> int:
    """Verify every opportunity's log in EVENTS against the process, and its digest chain.

    EVENTS is a JSON array or JSON Lines file of events (as written by Event.to_dict), or - for
    standard input; it may hold several opportunities. Each event must be a move the policies
    allow, with the gate report its gate gives, the reasons and values it needs; events that
    carry a digest must chain. Exit 0 when every log verifies, 1 when one breaks a rule (the
    event's seq and the rule are printed), 2 for bad input.

    With --store PATH instead of EVENTS, every opportunity in the store is verified: its digest
    chain first (an event changed, removed or reordered in the file breaks it at that event),
    then its process's rules, under --process or --template when given, else under the
    definition the store holds for it (or, without one, the chain alone).
    """
    if (events_path is None) == (store_path is None):
        return fail("give either EVENTS or --store PATH (one of them)", as_json=as_json)
    if store_path is not None:
        if seal_path is not None:
            return fail("--seal writes an EVENTS file; a store is sealed already", as_json=as_json)
        explicit = click.get_current_context().get_parameter_source("template_name")
        chosen = process_path is not None or explicit is not click.core.ParameterSource.DEFAULT
        return _verify_store(
            store_path,
            (process_path, template_name) if chosen else None,
            require_digests=require_digests,
            refuse_imported=refuse_imported,
            as_json=as_json,
        )
    assert events_path is not None  # noqa: S101 - checked above
    try:
        process = resolve_process(process_path, template_name)
        events = read_events(events_path)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)
    results: list[dict[str, Any]] = []
    sealed: list[Event] = []
    for opportunity_id, log in _by_opportunity(events).items():
        try:
            verification = verify(
                process, log, require_digests=require_digests, allow_imported=not refuse_imported
            )
        except EventLogError as error:
            results.append(
                {
                    "opportunity_id": opportunity_id,
                    "ok": False,
                    "seq": error.seq,
                    "rule": error.rule,
                    "error": str(error),
                }
            )
            continue
        results.append({"ok": True, **verification.to_dict()})
        sealed.extend(seal(log))
    ok = all(result["ok"] for result in results)
    if seal_path is not None and ok:
        try:
            with seal_path.open("w", encoding="utf-8", newline="\n") as handle:
                for event in sealed:
                    handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        except OSError as exc:
            return fail(f"cannot write {seal_path}: {exc.strerror or exc}", as_json=as_json)
    if as_json:
        print_json({"ok": ok, "logs": results})
    else:
        _print(results)
    return EXIT_OK if ok else EXIT_NEGATIVE


def _verify_store(
    path: Path | str,
    chosen: tuple[Path | None, str] | None,
    *,
    require_digests: bool,
    refuse_imported: bool,
    as_json: bool,
) -> int:
    from stagegate.store import inspect_file  # noqa: PLC0415 - lazily
    from stagegate.store._open import open_to_read  # noqa: PLC0415

    try:
        process = None if chosen is None else resolve_process(*chosen)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)
    url = isinstance(path, str)  # a postgresql:// URL (see cli._store.STORE)
    if isinstance(path, Path) and not path.is_file():
        return fail(
            f"no event store at {str(path)!r}; give the path of a store file", as_json=as_json
        )
    try:
        if not url and inspect_file(path) is None:  # read-only: an empty file is no store
            return fail(f"{str(path)!r} is empty, not an event store", as_json=as_json)
        with open_to_read(path) as store:
            verdicts = store.verify(
                process, require_digests=require_digests, allow_imported=not refuse_imported
            )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)
    results = [verdict.to_dict() for verdict in verdicts]
    ok = all(verdict.ok for verdict in verdicts)
    if as_json:
        print_json({"ok": ok, "store": str(path), "logs": results})
    else:
        _print(results)
        if not results:
            out_console().print(f"the store {str(path)!r} holds no events", markup=False)
    return EXIT_OK if ok else EXIT_NEGATIVE


def _print(results: list[dict[str, Any]]) -> None:
    console = out_console()
    for result in results:
        if result["ok"]:
            digests = (
                "sealed"
                if result["fully_sealed"]
                else f"{result['sealed']} of {result['events']} events sealed"
            )
            unchecked = "" if result.get("checked_process", True) else " (no process: chain only)"
            console.print(
                f"ok {result['opportunity_id']}: {result['events']} events, ends in "
                f"{result['stage']!r}, {digests}{unchecked}",
                markup=False,
            )
        else:
            console.print(
                f"BROKEN {result['opportunity_id']}: event {result['seq']} breaks "
                f"{result['rule']}: {result['error']}",
                markup=False,
            )
