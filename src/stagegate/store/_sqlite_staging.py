"""Imports through a staging file: events staged in a store file of their own, then copied.

A large import is written first into a *staging* store (a new file), batch by batch, where a
deal's run may start at any ``seq`` (it continues a log kept in the target store).
:func:`stage_rows` seals what it can as it writes; :func:`staged_runs` and :func:`copy_staged`
then check and copy every staged event into the target inside SQLite (``INSERT ... SELECT``
from the attached file ``staged``) and seal the runs that continue a log kept there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from stagegate.errors import ConcurrencyError
from stagegate.events import Event
from stagegate.integrity import event_digest
from stagegate.store._rows import EncodedBatch, seal_rows
from stagegate.store._sqlite_projection import copy_projection
from stagegate.store._sqlite_schema import (
    COLUMNS,
    CONTENT_COLUMNS,
    INSERT,
    STAGED_RUNS,
    last_link,
)
from stagegate.store._stored import stored_event
from stagegate.store.base import digest_refused

__all__ = ["copy_staged", "stage_rows", "staged_runs"]


def stage_rows(
    conn: sqlite3.Connection,
    runs: dict[str, tuple[int, int]],
    events: Sequence[Event],
    batch: EncodedBatch,
) -> None:
    """Inside a write transaction of the staging file: insert a batch's rows (not projected).

    A run that opens its deal, or continues a sealed staged run, is sealed now, so a staging
    file swapped or linked into place is sealed already; a run that continues a log kept
    elsewhere is sealed when it is copied there (:func:`copy_staged`).

    Raises:
        ConcurrencyError: a run does not continue the staged run of its deal.
    """
    links: dict[str, str | None] = {}
    unsealed: set[str] = set()
    for oid, (first, _) in runs.items():
        last, digest = last_link(conn, oid)
        if last and first != last + 1:
            raise ConcurrencyError(oid, first - 1, last)
        if first == 1 or digest is not None:
            links[oid] = digest
        else:
            unsealed.add(oid)
    conn.executemany(INSERT, seal_rows(events, batch, links, frozenset(unsealed)))


def staged_runs(conn: sqlite3.Connection) -> list[tuple[str, int, int | None]]:
    """Each staged deal's first staged seq and its last seq in the target (``None``: none).

    Raises:
        ConcurrencyError: a staged deal does not continue its log in the target.
    """
    runs: list[tuple[str, int, int | None]] = conn.execute(STAGED_RUNS).fetchall()
    for oid, first, last in runs:
        if first != (last or 0) + 1:
            raise ConcurrencyError(oid, first - 1, last or 0)
    return runs


def copy_staged(
    conn: sqlite3.Connection, runs: list[tuple[str, int, int | None]], *, most: int
) -> None:
    """Inside the target's write transaction: copy the staged events, projection and seals.

    ``runs`` are :func:`staged_runs`; a staging file without a projection has its events
    packed in chunks of at most ``most`` events.

    Raises:
        ConcurrencyError: a staged event is stored in the target already.
        EventLogError: a copied event carries a digest that is not its place in the chain.
    """
    staged = {r[1] for r in conn.execute("PRAGMA staged.table_info(events)")}
    source = COLUMNS if "digest" in staged else f"{CONTENT_COLUMNS}, NULL"
    try:
        conn.execute(
            f"INSERT INTO main.events ({COLUMNS}) "  # noqa: S608 - constants
            f"SELECT {source} FROM staged.events"
        )
    except sqlite3.IntegrityError:
        raise ConcurrencyError("(a staged opportunity)", 0, 1) from None
    copy_projection(conn, most=most)
    _seal_copied(conn, runs)


def _seal_copied(conn: sqlite3.Connection, runs: list[tuple[str, int, int | None]]) -> None:
    """Seal the runs just copied from a staging file (its digests are the caller's, unchecked).

    Raises:
        EventLogError: a copied event carries a digest that is not its place in the chain.
    """
    updates: list[tuple[str, str, int]] = []
    for oid, first, _ in runs:
        found = conn.execute(
            "SELECT digest FROM main.events WHERE opportunity_id = ? AND seq = ?", (oid, first - 1)
        ).fetchone()
        previous: str | None = None if found is None else found[0]
        copied = conn.execute(
            f"SELECT {COLUMNS} FROM main.events "  # noqa: S608 - constant
            "WHERE opportunity_id = ? AND seq >= ? ORDER BY seq",
            (oid, first),
        )
        for row in copied:
            event = stored_event(row)
            digest = event_digest(event, previous)
            if event.digest is None:
                updates.append((digest, oid, event.seq))
            elif event.digest != digest:
                raise digest_refused(event)
            previous = digest
    conn.executemany(
        "UPDATE main.events SET digest = ? WHERE opportunity_id = ? AND seq = ?", updates
    )
