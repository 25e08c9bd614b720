"""Opening a store by what the user typed: a ``postgresql://`` URL or the path of a file."""

from __future__ import annotations

import os

from stagegate.store.base import EventStore, StoreUnwritableError
from stagegate.store.postgresql import PostgreSQLStore, is_postgresql_url
from stagegate.store.sqlite import SQLiteStore

__all__ = ["open_store", "open_to_read"]


def open_store(
    target: str | os.PathLike[str], *, timeout: float = 30.0, read_only: bool = False
) -> EventStore:
    """Open the event store at ``target``: a ``postgresql://`` URL, or the path of a SQLite file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open_store(os.path.join(folder, "deals.sqlite")) as store:
    ...         type(store).__name__, store.count()
    ('SQLiteStore', 0)

    Args:
        target: ``postgresql://user@host/database`` (``?schema=NAME`` picks the schema, see
            :class:`PostgreSQLStore`), or a file path (created when missing, see
            :class:`SQLiteStore`).
        timeout: seconds to wait for another writer's lock (and for the server to answer).
        read_only: open an existing SQLite file only to read it (see :class:`SQLiteStore`); a
            PostgreSQL store is opened as it is (its role's rights decide what it may write).

    Raises:
        StoreError: the store cannot be opened (its subclasses say why).
    """
    if is_postgresql_url(target):
        return PostgreSQLStore(str(target), timeout=timeout)
    return SQLiteStore(target, timeout=timeout, read_only=read_only)


def open_to_read(target: str | os.PathLike[str], *, timeout: float = 30.0) -> EventStore:
    """Open an existing store to read it, also where it cannot be written (read-only media).

    As :func:`open_store`; a SQLite file that cannot be opened for writing (a read-only file,
    folder or file system) is opened ``read_only`` instead (see :class:`SQLiteStore`).

    Raises:
        StoreError: the store cannot be opened even to read it.
    """
    try:
        return open_store(target, timeout=timeout)
    except StoreUnwritableError:
        if is_postgresql_url(target):
            raise
        return SQLiteStore(target, timeout=timeout, read_only=True)
