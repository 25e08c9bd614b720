"""Opening a store by what the user typed: a ``postgresql://`` URL or the path of a file."""

from __future__ import annotations

import os

from stagegate.store.base import EventStore
from stagegate.store.postgresql import PostgreSQLStore, is_postgresql_url
from stagegate.store.sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(target: str | os.PathLike[str], *, timeout: float = 30.0) -> EventStore:
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

    Raises:
        StoreError: the store cannot be opened (its subclasses say why).
    """
    if is_postgresql_url(target):
        return PostgreSQLStore(str(target), timeout=timeout)
    return SQLiteStore(target, timeout=timeout)
