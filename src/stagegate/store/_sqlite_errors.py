"""What a failed SQLite call on a store file becomes: one ``StoreError`` subclass per cause.

:func:`store_error` reads SQLite's error name and message and returns the
:class:`~stagegate.store.StoreError` subclass that fits (closed, locked, full, read-only,
damaged), its message naming the file and saying what to do.

>>> import sqlite3
>>> error = store_error("deals.sqlite", sqlite3.OperationalError("database is locked"), 5.0)
>>> type(error).__name__
'StoreLockedError'
>>> str(error).split(" (")[0]
"the event store 'deals.sqlite' stayed locked by another connection for 5 s"
"""

# ruff: noqa: PTH100, PTH110, PTH112, PTH120 - str paths, as the store keeps them

from __future__ import annotations

import os
import sqlite3

from stagegate.store.base import (
    StoreClosedError,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
    StoreUnwritableError,
)

__all__ = ["read_only_mount", "store_error"]


def store_error(path: str, exc: sqlite3.Error, timeout: float) -> StoreError:
    """The error to raise for a failed SQLite call on the store at ``path``: one type per cause."""
    message = str(exc)
    name = str(getattr(exc, "sqlite_errorname", ""))
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in message:
        return StoreClosedError(f"the event store {path!r}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
        return StoreLockedError(
            f"the event store {path!r} stayed locked by another connection for {timeout:g} s "
            f"({message}); nothing was written: retry later or pass a longer timeout="
        )
    if name == "SQLITE_FULL" or "disk is full" in message:
        return StoreUnwritableError(
            f"the disk holding the event store {path!r} is full ({message}); nothing was "
            "written: free some space and retry"
        )
    if name in {"SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE"}:
        return StoreUnwritableError(
            f"the disk refused to write the event store {path!r} ({message}: it is full, over "
            "a size quota, or failing); nothing was written: free some space and retry"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in message:
        if not os.path.isdir(folder):
            why = f"its folder {folder!r} does not exist: create it first"
        elif read_only_mount(folder):
            why = (
                f"the file system holding {folder!r} is mounted read-only, and a store is read "
                "with its -wal and -shm files beside it: copy the store to a writable folder "
                "(cp works) and use the copy"
            )
        elif os.path.exists(path) and not os.access(path, os.W_OK):
            why = "the file is read-only: make it writable (chmod u+w) or import into a copy"
        elif not os.access(folder, os.W_OK):
            why = (
                f"its folder {folder!r} is read-only (a store needs to create its -wal and "
                "-shm files beside it): make the folder writable or choose another one"
            )
        else:
            why = "check the file's and its folder's permissions"
        return StoreUnwritableError(f"cannot write the event store {path!r} ({message}): {why}")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in message:
        return StoreDamagedError(
            f"the event store {path!r} is damaged ({message}); restore it from a backup "
            "(stagegate backup makes one), or check it with sqlite3 FILE 'PRAGMA integrity_check'"
        )
    return StoreError(
        f"cannot use the event store {path!r}: {message}; check that the file is a "
        "stagegate SQLite store on a local disk and not damaged "
        "(sqlite3 FILE 'PRAGMA integrity_check'), or restore it from a backup"
    )


def read_only_mount(folder: str) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (``chmod`` cannot help there)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows): the other advice applies
        return False
