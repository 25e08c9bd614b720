"""PostgreSQL's column-wise frame: ``COPY (SELECT ...) TO STDOUT`` as CSV, parsed by Arrow.

:meth:`~stagegate.store.PostgreSQLStore.to_frame` asks the server for the requested columns
only, each in a form Arrow parses with no Python object per value: ``at`` as its integer
microseconds, ``close_date`` as days since 1970-01-01, ``amount`` as its decimal text (Arrow's
parser rounds it as Python's ``float()`` does). The segment an event sets is derived in the
same statement, as :func:`~stagegate.store._columnar.encode_chunk` derives it for SQLite: a
``reassigned`` event sets ``owner`` to its subject, an ``attribute_set`` event the attribute
named by its subject to ``details["value"]``. The server extracts that value when the details
are the plain ``{"value":"..."}`` the store writes; any other details text (an escape, a
number, a null) is sent whole and decoded here, so the frame equals SQLite's byte for byte.

The CSV arrives one row per message; rows are gathered into pieces of
:data:`PIECE_BYTES` and each piece is parsed (on Arrow's threads) while the next one is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from stagegate.store._columnar import ColumnarError, _libraries, frame_of_columns

__all__ = [
    "PIECE_BYTES",
    "copy_statement",
    "frame_of_tables",
    "parsed_pieces",
    "pieces",
    "stored_columns",
]

PIECE_BYTES = 16 * 1024 * 1024
"""How much CSV is parsed at a time (whole rows): the text is never held whole."""

# An attribute_set's details as the store writes them: {"value":"..."} with nothing to unescape.
_PLAIN = r"""'^\{"value":"([^"\\[:cntrl:]]*)"\}$'"""
_SOURCES = {
    "opportunity_id": "opportunity_id",
    "at": "at_us",
    "seq": "seq",
    "stage": "stage",
    "amount": "amount",
    "close_date": "close_date - DATE '1970-01-01'",
    "reason": "reason",
    "kind": "kind",
    "from_stage": "from_stage",
    "move": "move",
    "process": "process",
    "process_version": "process_version",
    "segment": "CASE kind WHEN 'reassigned' THEN 'owner' WHEN 'attribute_set' THEN subject END",
    "segment_value": (
        "CASE kind WHEN 'reassigned' THEN subject "
        f"WHEN 'attribute_set' THEN substring(details FROM {_PLAIN}) END"
    ),
    "segment_details": (
        f"CASE WHEN kind = 'attribute_set' AND details !~ {_PLAIN} THEN details END"
    ),
}
_INTEGERS = {"at": "int64", "seq": "int64", "close_date": "int32"}


def stored_columns(wanted: Sequence[str]) -> list[str]:
    """The columns to read for the frame columns ``wanted``: keys, segments and ``at`` too."""
    segments = ("at", "segment", "segment_value", "segment_details")
    return list(dict.fromkeys(("opportunity_id", "seq", *wanted, *segments)))


def copy_statement(names: Sequence[str]) -> str:
    """The ``COPY`` of the stored columns ``names`` (from :func:`stored_columns`) as CSV.

    No ``ORDER BY``: the server reads the table in its own order (no sort on the server);
    the frame is put in ``(opportunity_id, seq)`` order when it is not in it already.
    """
    select = ", ".join(f"{_SOURCES[name]} AS {name}" for name in names)
    return f"COPY (SELECT {select} FROM events) TO STDOUT (FORMAT csv)"  # noqa: S608


def pieces(rows: Iterable[Any], size: int = PIECE_BYTES) -> Iterator[bytearray]:
    """Rows of CSV (bytes-like, one whole row each) gathered into pieces of about ``size``."""
    piece = bytearray()
    for row in rows:
        piece += row
        if len(piece) >= size:
            yield piece
            piece = bytearray()
    if piece:
        yield piece


def parsed_pieces(
    chunks: Iterable[bytearray], names: Sequence[str], tick: Callable[[int], None]
) -> list[Any]:
    """The Arrow tables of the CSV ``chunks`` of the stored columns ``names``, in order.

    Each piece is parsed on a worker thread while the next one is read; ``tick`` gets the
    rows parsed so far.

    Raises:
        ColumnarError: Polars or pyarrow is missing.
    """
    pa, _, _ = _libraries()
    from pyarrow import csv  # type: ignore[import-untyped]  # noqa: PLC0415 - optional

    types = {name: pa.string() for name in names}
    types.update((name, pa.type_for_alias(kind)) for name, kind in _INTEGERS.items())
    types["amount"] = pa.float64()
    read = csv.ReadOptions(column_names=list(names))
    parse = csv.ParseOptions(newlines_in_values=True)
    convert = csv.ConvertOptions(
        column_types={name: types[name] for name in names},
        null_values=[""],  # the server writes NULL as an empty field, '' as ""
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )

    def parsed(piece: bytearray) -> Any:
        return csv.read_csv(
            pa.BufferReader(pa.py_buffer(piece)),
            read_options=read,
            parse_options=parse,
            convert_options=convert,
        )

    tables: list[Any] = []
    done = 0
    with ThreadPoolExecutor(1) as pool:
        waiting: Future[Any] | None = None
        for piece in chunks:
            ahead = pool.submit(parsed, piece)
            if waiting is not None:
                tables.append(waiting.result())
                done += tables[-1].num_rows
                tick(done)
            waiting = ahead
        if waiting is not None:
            tables.append(waiting.result())
            tick(done + tables[-1].num_rows)
    return tables


def frame_of_tables(
    tables: list[Any],
    *,
    backend: str,
    columns: Sequence[str],
    categorical: bool,
    segments: bool = True,
) -> Any:
    """The frame of the tables :func:`parsed_pieces` gave (emptied as they are joined).

    Raises:
        ColumnarError: an event's details are not JSON, or a segment is named like a column.
    """
    pa, _, pl = _libraries()
    if not tables:
        return frame_of_columns(
            pl.DataFrame(), backend=backend, columns=columns, categorical=categorical
        )
    table = pa.concat_tables(tables)
    tables.clear()
    frame = _typed(pl.from_arrow(table), pl)
    del table
    return frame_of_columns(
        frame, backend=backend, columns=columns, categorical=categorical, segments=segments
    )


def _typed(frame: Any, pl: Any) -> Any:
    """Instants, dates and amounts in their frame types; every segment value decoded."""
    typed = [pl.col("at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")]
    if "amount" in frame.columns:  # NaN is no amount, as in the chunks SQLite keeps
        typed.append(pl.when(~pl.col("amount").is_nan()).then(pl.col("amount")).alias("amount"))
    if "close_date" in frame.columns:
        typed.append(pl.col("close_date").cast(pl.Date))
    frame = frame.with_columns(typed)
    details = frame.get_column("segment_details")
    if details.null_count() < frame.height:
        frame = frame.with_columns(_decoded(frame, pl))
    return frame.drop("segment_details")


def _decoded(frame: Any, pl: Any) -> Any:
    """``segment_value`` with the values of the details the server sent whole decoded."""
    rows = frame.select(
        pl.int_range(pl.len()).alias("row"), "opportunity_id", "seq", "segment_details"
    ).filter(pl.col("segment_details").is_not_null())
    values = []
    for _, opportunity_id, seq, text in rows.iter_rows():
        try:
            details = json.loads(text)
        except ValueError:
            raise ColumnarError(
                f"event {seq} of {opportunity_id!r} holds details that are not JSON "
                f"({text[:40]!r}): the row was changed outside stagegate; restore it from a "
                "backup (stagegate verify names every damaged log)"
            ) from None
        value = details.get("value") if isinstance(details, dict) else None
        values.append(None if value is None else str(value))
    return frame.get_column("segment_value").scatter(
        rows.get_column("row"), pl.Series(values, dtype=pl.String)
    )
