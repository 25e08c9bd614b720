"""``stagegate diff`` and ``stagegate migrate``: a process changes, the deals in flight follow."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from stagegate.cli import EXIT_NEGATIVE, EXIT_OK
from stagegate.cli._app import app, fail, json_option, out_console, print_json
from stagegate.cli._options import pairs
from stagegate.cli._progress import bars
from stagegate.definition import load_process
from stagegate.errors import DefinitionError, StagegateError
from stagegate.process import Process

_MAP_HELP = (
    "OLD=NEW: the stage OLD of the earlier version is NEW in the new one (a rename, or a "
    "removed stage merged into NEW); repeat for each. Renames are never guessed."
)


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    from stagegate._time import parse_instant  # noqa: PLC0415

    return parse_instant(text)


def _definition(path: Path, as_json: bool) -> Process | int:
    try:
        return load_process(path)
    except DefinitionError as error:
        return fail(
            f"the process definition {str(path)!r} is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )


def _open_store(path: Path) -> Any:
    from stagegate.store import SQLiteStore, inspect_file  # noqa: PLC0415 - loads lazily

    if not path.is_file():
        msg = f"no event store at {str(path)!r}; give the path of a store file"
        raise click.UsageError(msg)
    if inspect_file(path) is None:
        msg = f"{str(path)!r} is empty, not an event store"
        raise click.UsageError(msg)
    return SQLiteStore(path)


@app.command("diff")
@click.argument("old_path", metavar="OLD", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new_path", metavar="NEW", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW", help=_MAP_HELP)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also say which open deals of this store NEW would block, strand or let advance.",
)
@click.option("--at", "at_text", default=None, help="ISO 8601 instant gates are evaluated at.")
@click.option("--limit", default=20, show_default=True, help="Deals listed per group.")
@click.option("--quiet", is_flag=True, help="Draw no progress bars.")
@json_option
def diff_command(
    old_path: Path,
    new_path: Path,
    maps: tuple[str, ...],
    store_path: Path | None,
    at_text: str | None,
    limit: int,
    quiet: bool,
    as_json: bool,
) -> int:
    """Say what changed from the process definition OLD to NEW (two versions of one process).

    Stages added, removed, renamed, merged or reordered; gates tightened or loosened;
    deliverables, activities, probabilities and policies. A removed stage that resembles an
    added one is suggested as a rename, never assumed. With --store, each open deal is
    compared under its version and under NEW: blocked (its next gate holds now, not under NEW),
    stranded (its stage is gone and not mapped) or newly eligible. Exit 0, or 1 when some open
    deal would be stranded; 2 for bad input.
    """
    from stagegate.evolution import diff, store_impact  # noqa: PLC0415 - loads lazily

    mapping = pairs(maps, "--map", shape="OLD=NEW", strip=True)
    old = _definition(old_path, as_json)
    if isinstance(old, int):
        return old
    new = _definition(new_path, as_json)
    if isinstance(new, int):
        return new
    try:
        found = diff(old, new, mapping=mapping)
        effect = None
        if store_path is not None:
            with _open_store(store_path) as store, bars(quiet=quiet or as_json) as phases:
                effect = store_impact(
                    store, new, mapping=mapping, at=_instant(at_text), phases=phases
                )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)
    stranded = effect is not None and bool(effect.stranded)
    if as_json:
        document = found.to_dict()
        if effect is not None:
            document["store"] = effect.to_dict()
        print_json(document)
    else:
        console = out_console()
        for line in found.lines():
            console.print(line, markup=False, highlight=False)
        if effect is not None:
            for line in effect.lines(limit=limit):
                console.print(line, markup=False, highlight=False)
    return EXIT_NEGATIVE if stranded else EXIT_OK


@app.command("migrate")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite event store whose open deals move to the new version.",
)
@click.option(
    "--to",
    "to_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The new version's definition (.toml, .json, .yaml).",
)
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW", help=_MAP_HELP)
@click.option(
    "--map-deliverable",
    "deliverable_maps",
    multiple=True,
    metavar="OLD=NEW",
    help="A deliverable renamed in the new version: its records count under NEW.",
)
@click.option("--actor", default="cli", show_default=True, help="Who migrates.")
@click.option("--at", "at_text", default=None, help="ISO 8601 instant of the migration; now.")
@click.option("--reason", default=None, help="Why, recorded on every migrated event.")
@click.option("--dry-run", is_flag=True, help="Print what would happen; write nothing.")
@click.option("--limit", default=20, show_default=True, help="Stranded deals listed.")
@click.option("--quiet", is_flag=True, help="Draw no progress bars.")
@json_option
def migrate_command(
    store_path: Path,
    to_path: Path,
    maps: tuple[str, ...],
    deliverable_maps: tuple[str, ...],
    actor: str,
    at_text: str | None,
    reason: str | None,
    dry_run: bool,
    limit: int,
    quiet: bool,
    as_json: bool,
) -> int:
    """Move every open deal of the store to the version defined in --to, all or nothing.

    Each open deal gets one 'migrated' event (who, when, from which version and stage to which,
    the mapping); closed deals keep their version and history is never rewritten. A deal in a
    stage the new version lacks needs --map OLD=NEW (or renamed.OLD in the definition); while
    one lacks it nothing is written. The new definition and every event are written in one
    transaction: a failure or a kill leaves the store as it was. Exit 0 when migrated (or, with
    --dry-run, when it would be), 1 when open deals are stranded, 2 for bad input.
    """
    from stagegate.evolution import (  # noqa: PLC0415 - loads lazily
        StrandedDealsError,
        migrate,
        plan_migration,
    )

    mapping = pairs(maps, "--map", shape="OLD=NEW", strip=True)
    renamed = pairs(deliverable_maps, "--map-deliverable", shape="OLD=NEW", strip=True)
    process = _definition(to_path, as_json)
    if isinstance(process, int):
        return process
    try:
        with _open_store(store_path) as store, bars(quiet=quiet or as_json) as phases:
            if dry_run:
                plan = plan_migration(  # refuses what the migration would refuse
                    store,
                    process,
                    mapping=mapping,
                    phases=phases,
                    at=_instant(at_text),
                    deliverables=renamed,
                )
            else:
                plan = migrate(
                    store,
                    process,
                    actor=actor,
                    mapping=mapping,
                    deliverables=renamed,
                    at=_instant(at_text),
                    reason=reason,
                    phases=phases,
                )
    except StrandedDealsError as error:
        plan = error.plan
    except StagegateError as error:
        return fail(f"nothing was migrated: {error}", as_json=as_json)
    if as_json:
        print_json({"ok": plan.ready, "dry_run": dry_run, **plan.to_dict()})
    else:
        console = out_console()
        for line in plan.lines(limit=limit):
            console.print(line, markup=False, highlight=False)
        if not plan.ready:
            console.print("nothing was migrated", markup=False, highlight=False)
    return EXIT_OK if plan.ready else EXIT_NEGATIVE
