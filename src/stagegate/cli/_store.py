"""``stagegate backup``: a consistent copy of a live event store."""

from __future__ import annotations

from pathlib import Path

import click

from stagegate.cli import EXIT_OK
from stagegate.cli._app import app, fail, json_option, out_console, print_json
from stagegate.errors import StagegateError
from stagegate.store import SQLiteStore, inspect_file


@app.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite event store to copy (it may be in use).",
)
@json_option
def backup_command(out: Path, store_path: Path, as_json: bool) -> int:
    """Copy the event store to OUT, safely while other processes write to it.

    The copy holds every batch committed before it started and none after; OUT must not exist.
    """
    try:
        if not store_path.exists():
            return fail(f"there is no event store {str(store_path)!r} to back up", as_json=as_json)
        inspect_file(store_path)
        with SQLiteStore(store_path) as store:
            events = store.backup(out)
    except StagegateError as error:
        return fail(f"no backup was written: {error}", as_json=as_json)
    if as_json:
        print_json({"ok": True, "store": str(store_path), "backup": str(out), "events": events})
    else:
        out_console().print(f"backed up {events} events from {store_path} to {out}")
    return EXIT_OK
