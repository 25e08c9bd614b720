"""The canonical stage-history table of an import, as a data frame in the backend asked for.

One row per imported event, with the values in force from that event on: the columns of
:meth:`~stagegate.store.EventStore.to_frame` (``opportunity_id, at, seq, stage, amount,
close_date, kind, from_stage, move``), then ``reason``, then the segment columns the import
carried (``owner`` first, then the others in the order first seen), each holding the value in
force at the row's instant (``None``: none).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from stagegate.errors import InvalidCommandError
from stagegate.events import Event

__all__ = [
    "BACKENDS",
    "TABLE_COLUMNS",
    "SegmentChange",
    "segment_names",
    "stage_history_columns",
    "to_backend",
]

TABLE_COLUMNS = (
    "opportunity_id",
    "at",
    "seq",
    "stage",
    "amount",
    "close_date",
    "kind",
    "from_stage",
    "move",
    "reason",
)
"""The columns of :meth:`~stagegate.io.ImportResult.to_frame` before the segment columns."""

BACKENDS = ("polars", "pandas", "pyarrow")
"""The backends :meth:`~stagegate.io.ImportResult.to_frame` can build."""

SegmentChange = tuple[datetime, str, "str | None"]
"""``(at, segment name, value)``: from ``at`` on the segment holds ``value`` (``None``: none)."""

_TYPES = {
    "opportunity_id": "string",
    "at": "instant",
    "seq": "int",
    "stage": "string",
    "amount": "float",
    "close_date": "date",
    "kind": "string",
    "from_stage": "string",
    "move": "string",
    "reason": "string",
}


def segment_names(history: Mapping[str, Sequence[SegmentChange]]) -> tuple[str, ...]:
    """The segment names of a history: ``owner`` first, then the rest as first seen."""
    names: dict[str, None] = {}
    for changes in history.values():
        for _, name, _ in changes:
            names.setdefault(name, None)
    ordered = sorted(names, key=lambda name: name != "owner")  # stable: owner first
    return tuple(ordered)


def stage_history_columns(
    events: Sequence[Event], history: Mapping[str, Sequence[SegmentChange]]
) -> dict[str, list[Any]]:
    """The table as plain Python columns (see the module docs)."""
    names = segment_names(history)
    columns: dict[str, list[Any]] = {name: [] for name in (*TABLE_COLUMNS, *names)}
    add = [columns[name].append for name in TABLE_COLUMNS]
    segment_columns = [columns[name] for name in names]
    oid: str | None = None
    changes: Sequence[SegmentChange] = ()
    position = 0
    in_force: dict[str, str | None] = {}
    for event in events:
        if event.opportunity_id != oid:
            oid = event.opportunity_id
            changes, position, in_force = history.get(oid, ()), 0, {}
        while position < len(changes) and changes[position][0] <= event.at:
            _, name, value = changes[position]
            in_force[name] = value
            position += 1
        values = (
            event.opportunity_id,
            event.at,
            event.seq,
            event.stage,
            None if event.amount is None else float(event.amount),
            event.close_date,
            event.kind.value,
            event.from_stage,
            None if event.move is None else event.move.value,
            event.reason,
        )
        for append, cell in zip(add, values, strict=True):
            append(cell)
        for name, column in zip(names, segment_columns, strict=True):
            column.append(in_force.get(name))
    return columns


def to_backend(columns: Mapping[str, list[Any]], backend: str) -> Any:
    """Build a frame of ``backend`` (one of :data:`BACKENDS`) from plain columns.

    Raises:
        InvalidCommandError: an unknown backend, or its library is not installed.
    """
    if backend not in BACKENDS:
        raise InvalidCommandError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    try:
        module = importlib.import_module(backend)
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidCommandError(
            f"to_frame(backend={backend!r}) needs {backend}: pip install {backend}"
        ) from None
    kinds = {name: _TYPES.get(name, "string") for name in columns}
    if backend == "polars":
        pl = module
        polars_types = {
            "string": pl.String,
            "instant": pl.Datetime("us", "UTC"),
            "int": pl.Int64,
            "float": pl.Float64,
            "date": pl.Date,
        }
        return pl.DataFrame(
            dict(columns), schema={name: polars_types[kinds[name]] for name in columns}
        )
    if backend == "pyarrow":
        pa = module
        arrow_types = {
            "string": pa.string(),
            "instant": pa.timestamp("us", tz="UTC"),
            "int": pa.int64(),
            "float": pa.float64(),
            "date": pa.date32(),
        }
        schema = pa.schema([(name, arrow_types[kinds[name]]) for name in columns])
        return pa.table(dict(columns), schema=schema)
    pd = module
    data: dict[str, Any] = {}
    for name, values in columns.items():
        kind = kinds[name]
        if kind == "instant":
            data[name] = pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
        elif kind == "int":
            data[name] = pd.Series(values, dtype="int64")
        elif kind == "float":
            data[name] = pd.Series(values, dtype="float64")
        else:  # text and calendar dates stay Python objects (None: missing)
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)
