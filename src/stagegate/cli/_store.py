"""``--store`` (a SQLite file or a ``postgresql://`` URL) and ``stagegate backup``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stagegate.cli import EXIT_OK
from stagegate.cli._app import app, fail, json_option, out_console, print_json
from stagegate.errors import StagegateError
from stagegate.store import (
    PostgreSQLStore,
    SQLiteStore,
    StoreError,
    inspect_file,
    is_postgresql_url,
)
from stagegate.store._open import open_to_read
from stagegate.store.sqlite import store_path

if TYPE_CHECKING:  # click 8.2+ types its ParamType generically; older ones do not subscript
    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType


class StoreTarget(_ParamType):
    """A ``--store``: a ``postgresql://`` URL as typed, or the path of a SQLite store file.

    A URL stays text (a :class:`~pathlib.Path` would fold its ``//``); a path is checked like
    ``click.Path(dir_okay=False)``, and must exist when ``exists`` is set.
    """

    name = "PATH|URL"

    def __init__(self, *, exists: bool = False) -> None:
        self.exists = exists

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the URL as ``str`` or the path as :class:`~pathlib.Path`."""
        if isinstance(value, str) and is_postgresql_url(value):
            return value
        checked = click.Path(dir_okay=False, exists=self.exists, path_type=Path)
        path = checked.convert(value, param, ctx)
        try:
            store_path(path)
            path.exists()  # a name too long, or a folder that is a file, raises here
        except StoreError as error:
            self.fail(str(error), param, ctx)
        except OSError as exc:
            self.fail(f"cannot use {str(path)!r}: {exc.strerror or exc}; choose another path")
        return path


STORE = StoreTarget()
"""``type=`` of every ``--store`` option that may create the store."""
EXISTING_STORE = StoreTarget(exists=True)
"""``type=`` of a ``--store`` option that reads a store: a path must exist."""


@app.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=STORE,
    required=True,
    help="The event store to copy (it may be in use): a SQLite file or a postgresql:// URL.",
)
@json_option
def backup_command(out: Path, store_path: Path | str, as_json: bool) -> int:
    """Copy the event store to OUT, safely while other processes write to it.

    The copy holds every batch committed before it started and none after; OUT must not exist.
    A PostgreSQL store is copied into OUT as a SQLite store file (its digests checked on the
    way), which every stagegate command reads.
    """
    try:
        if isinstance(store_path, str):
            with PostgreSQLStore(store_path) as pg:
                events = pg.backup(out)
                shown = pg.where
        else:
            if not store_path.exists():
                return fail(
                    f"there is no event store {str(store_path)!r} to back up", as_json=as_json
                )
            if inspect_file(store_path) is None:  # read-only: an empty file is no store
                return fail(
                    f"{str(store_path)!r} is empty, not an event store; no backup was written",
                    as_json=as_json,
                )
            with open_to_read(store_path) as store:
                assert isinstance(store, SQLiteStore)  # noqa: S101 - a file path, not a URL
                events = store.backup(out)
            shown = str(store_path)
    except StagegateError as error:
        return fail(f"no backup was written: {error}", as_json=as_json)
    if as_json:
        print_json({"ok": True, "store": shown, "backup": str(out), "events": events})
    else:
        out_console().print(f"backed up {events} events from {shown} to {out}", markup=False)
    return EXIT_OK
