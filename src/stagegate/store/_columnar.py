"""The columnar projection of an event log: what the analytics read, packed for fast reading.

Reading millions of events row by row (one Python object per value) is what made a report on
a large store slow. A store therefore keeps, beside its events, a *projection*: per written
batch one packed chunk of the analytics columns (integers as machine arrays, text as codes into
a small dictionary). Writing a chunk costs a few Python operations per event and needs only the
standard library; reading joins the chunks' arrays with pyarrow and hands one Arrow table to
Polars, with no Python object per value.

:data:`COLUMNS` is the one list of the projected columns, and :func:`frame_of` the one place
that turns chunks into the frame :meth:`~stagegate.store.EventStore.to_frame` returns. Owner
and segment columns are derived here too (see :data:`SEGMENT_KINDS`): ``owner`` from
``reassigned`` events, one column per attribute from ``attribute_set`` events, each row
carrying the value in force at its instant (after every event of that instant).

A chunk is ``MAGIC``, the length of a JSON header, the header (row count, each column's array
type, offset and size, and each coded column's dictionary), then the arrays, little-endian.
"""

from __future__ import annotations

import array
import ctypes
import functools
import json
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from stagegate.store.base import StoreError

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "SEGMENT_KINDS",
    "ChunkWriter",
    "StoredChunk",
    "encode_chunk",
    "encode_columns",
    "frame_of",
    "frame_of_columns",
    "give_back_freed",
    "requested",
]

MAGIC = b"SGC1"
"""The first bytes of every chunk (format version 1)."""

COLUMNS = (
    "opportunity_id",
    "at",
    "seq",
    "stage",
    "amount",
    "close_date",
    "reason",
    "kind",
    "from_stage",
    "move",
    "process",
    "process_version",
)
"""Every projected column, in frame order; segment columns (``owner``, ...) come after them."""

DEFAULT_COLUMNS = COLUMNS[:10]
"""The columns :meth:`~stagegate.store.EventStore.to_frame` gives by default: the canonical
stage-history table (``opportunity_id, at, seq, stage, amount, close_date, reason``) plus the
event's ``kind``, ``from_stage`` and ``move``, then every segment column."""

SEGMENT_KINDS = {"reassigned": "owner", "attribute_set": None}
"""Event kinds that set a segment: ``reassigned`` sets ``owner`` to its subject;
``attribute_set`` sets the attribute named by its subject to ``details["value"]``."""

BACKENDS = ("polars", "pandas", "pyarrow")
"""The frame libraries :func:`frame_of` can return."""

_CODED = (
    "opportunity_id",
    "stage",
    "reason",
    "kind",
    "from_stage",
    "move",
    "process",
    "process_version",
    "segment",
    "segment_value",
)
_NO_DAY = -(2**31)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NAN = float("nan")
_LITTLE = sys.byteorder == "little"

# Where each value sits in a stored row (the layout of the SQLite store's ``events`` columns).
OID, SEQ, KIND, AT_US, STAGE, FROM_STAGE, MOVE, AMOUNT, CLOSE_DATE = range(9)
REASON, PROCESS, VERSION, SUBJECT, DETAILS = 10, 11, 12, 13, 14


class ColumnarError(StoreError):
    """The projection cannot be read: a library is missing, or a chunk is damaged."""


def _day(value: Any) -> int:
    if isinstance(value, str):
        return date.fromisoformat(value).toordinal() - _EPOCH_ORDINAL
    return int(value.toordinal()) - _EPOCH_ORDINAL


def _segment(kind: str, subject: Any, details: Any) -> tuple[str | None, str | None]:
    """The segment an event sets and its new value (``(None, None)``: it sets none)."""
    if kind == "reassigned":
        return "owner", subject
    if isinstance(details, str):
        return subject, _stored_value(details)
    value = None if details is None else details.get("value")
    return subject, None if value is None else str(value)


@functools.lru_cache(maxsize=4096)
def _stored_value(details: str) -> str | None:
    """The value in stored details (JSON text): few distinct ones, read once each."""
    value = json.loads(details).get("value")
    return None if value is None else str(value)


def _coded(values: Sequence[Any]) -> tuple[array.array[int], list[str]]:
    """Codes into a dictionary of the distinct values; ``None`` is ``len(dictionary)``."""
    uniques = dict.fromkeys(values)
    none = None in uniques
    if none:
        del uniques[None]
    if len(uniques) + none == 1:  # one value throughout (the common case of many columns)
        codes = array.array("i", [0]) * len(values)
    else:
        index = {v: i for i, v in enumerate(uniques)}
        if none:
            index[None] = len(uniques)
        codes = array.array("i", map(index.__getitem__, values))
    return codes, [getattr(v, "value", v) for v in uniques]


def _converted(values: Sequence[Any], convert: Callable[[Any], Any], missing: Any) -> list[Any]:
    """``convert`` of each value (``missing`` for ``None``), converting each distinct one once."""
    table = {v: missing if v is None else convert(v) for v in dict.fromkeys(values)}
    return list(map(table.__getitem__, values))


def encode_chunk(rows: Sequence[Sequence[Any]]) -> bytes:
    """Pack the analytics columns of stored rows (the ``events`` layout) into one chunk.

    ``kind`` and ``move`` may be text or the enums; ``amount`` decimal text or a number;
    ``close_date`` ISO text or a date; ``details`` JSON text or a mapping.
    """
    return encode_columns(list(zip(*rows, strict=True)) if rows else [()] * (DETAILS + 1))


def encode_columns(columns: Sequence[Sequence[Any]]) -> bytes:
    """:func:`encode_chunk` of rows given as their columns.

    ``columns[i]`` holds the ``i``-th value of every row: what a store that encodes a batch
    column by column hands over, with no rows to transpose.
    """
    kinds = columns[KIND]
    if any(kind in SEGMENT_KINDS for kind in dict.fromkeys(kinds)):
        segments = [
            _segment(kind, subject, details) if kind in SEGMENT_KINDS else (None, None)
            for kind, subject, details in zip(
                kinds, columns[SUBJECT], columns[DETAILS], strict=True
            )
        ]
        segment_names: Sequence[Any] = [s for s, _ in segments]
        segment_values: Sequence[Any] = [v for _, v in segments]
    else:
        segment_names = segment_values = (None,) * len(kinds)
    arrays: dict[str, array.array[Any]] = {
        "at_us": array.array("q", columns[AT_US]),
        "seq": array.array("q", columns[SEQ]),
        "amount": array.array("d", _converted(columns[AMOUNT], float, _NAN)),
        "close_day": array.array("i", _converted(columns[CLOSE_DATE], _day, _NO_DAY)),
    }
    sources = _coded_sources(columns, segment_names, segment_values)
    dictionaries: dict[str, list[str]] = {}
    for name in _CODED:
        arrays[name], dictionaries[name] = _coded(sources[name])
    packed = []
    for name, values in arrays.items():
        if not _LITTLE:  # pragma: no cover - big-endian machines
            values.byteswap()
        packed.append((name, values.typecode, values.tobytes()))
    return _pack(len(kinds), packed, dictionaries)


def _coded_sources(columns: Sequence[Any], names: Any, values: Any) -> dict[str, Any]:
    """The column each coded array of a chunk is made from (``events`` layout, segments apart)."""
    return {
        "opportunity_id": columns[OID],
        "stage": columns[STAGE],
        "reason": columns[REASON],
        "kind": columns[KIND],
        "from_stage": columns[FROM_STAGE],
        "move": columns[MOVE],
        "process": columns[PROCESS],
        "process_version": columns[VERSION],
        "segment": names,
        "segment_value": values,
    }


def _pack(n: int, arrays: Sequence[tuple[str, str, bytes]], dictionaries: Any) -> bytes:
    """A chunk of ``n`` rows: its header, then each array's little-endian bytes in order."""
    layout = []
    offset = 0
    for name, typecode, data in arrays:
        layout.append([name, typecode, offset, len(data)])
        offset += len(data)
    header = json.dumps(
        {"n": n, "arrays": layout, "dictionaries": dictionaries},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *(a[2] for a in arrays)])


def encode_arrow(columns: Sequence[Any]) -> bytes:
    """:func:`encode_columns` of Arrow arrays (the ``events`` layout), byte for byte.

    The codes, the integers and the floats are Arrow kernels and buffers, with no Python
    object per value: each distinct amount, close date and segment value is converted once, by
    the same functions :func:`encode_columns` applies. Needs pyarrow (the bulk import's).
    """
    pa, pc = _arrow_libraries()
    kinds = columns[KIND]
    n = len(kinds)
    if pc.any(pc.is_in(kinds, value_set=pa.array(list(SEGMENT_KINDS)))).as_py():
        reassigned = pc.fill_null(pc.equal(kinds, "reassigned"), False)
        attribute = pc.fill_null(pc.equal(kinds, "attribute_set"), False)
        none = pa.nulls(n, pa.string())
        subject = columns[SUBJECT].cast(pa.string())
        segment_names = pc.if_else(
            reassigned, pa.scalar("owner"), pc.if_else(attribute, subject, none)
        )
        details = pc.if_else(attribute, columns[DETAILS].cast(pa.string()), none)
        stored = _mapped(pa, pc, details, _stored_value, pa.string())
        segment_values = pc.if_else(reassigned, subject, stored)
    else:
        segment_names = segment_values = pa.nulls(n, pa.string())
    floats = _mapped(pa, pc, columns[AMOUNT], float, pa.float64())
    days = _mapped(pa, pc, columns[CLOSE_DATE], _day, pa.int32())
    packed = [
        ("at_us", "q", _raw(pa, columns[AT_US].cast(pa.int64()), 8)),
        ("seq", "q", _raw(pa, columns[SEQ].cast(pa.int64()), 8)),
        ("amount", "d", _raw(pa, pc.fill_null(floats, _NAN), 8)),
        ("close_day", "i", _raw(pa, pc.fill_null(days, _NO_DAY), 4)),
    ]
    sources = _coded_sources(columns, segment_names, segment_values)
    dictionaries: dict[str, list[str]] = {}
    for name in _CODED:
        encoded = pc.dictionary_encode(sources[name])  # codes in order of first appearance
        dictionary = encoded.dictionary.to_pylist()
        codes = pc.fill_null(encoded.indices, pa.scalar(len(dictionary), pa.int32()))
        packed.append((name, "i", _raw(pa, codes.cast(pa.int32()), 4)))
        dictionaries[name] = dictionary
    return _pack(n, packed, dictionaries)


def _mapped(pa: Any, pc: Any, column: Any, convert: Callable[[Any], Any], type_: Any = None) -> Any:
    """``convert`` of each distinct value of an Arrow array, taken to every row (nulls kept)."""
    encoded = pc.dictionary_encode(column)
    converted = pa.array([convert(v) for v in encoded.dictionary.to_pylist()], type=type_)
    return converted.take(encoded.indices)


def _raw(pa: Any, values: Any, width: int) -> bytes:
    """The little-endian bytes of a fixed-width Arrow array without nulls."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    data: bytes = values.buffers()[1].slice(values.offset * width, len(values) * width).to_pybytes()
    if not _LITTLE:  # pragma: no cover - big-endian machines
        swapped = array.array({8: "q", 4: "i"}[width], data)
        swapped.byteswap()
        data = swapped.tobytes()
    return data


def _arrow_libraries() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]  # noqa: PLC0415 - optional
        import pyarrow.compute as pc  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:
        raise ColumnarError("encode_arrow() needs pyarrow: pip install 'stagegate[bulk]'") from None
    return pa, pc


def merge_chunks(chunks: Sequence[bytes]) -> bytes:
    """One chunk holding the rows of ``chunks``, in order (standard library only).

    Stores merge the small chunks that single-event appends leave, so that a log written one
    event at a time still reads as a few large chunks.
    """
    arrays: dict[str, array.array[Any]] = {}
    dictionaries: dict[str, dict[Any, int]] = {name: {} for name in _CODED}
    total = 0
    for chunk in chunks:
        header, body = _parse(chunk)
        total += int(header["n"])
        for name, typecode, offset, size in header["arrays"]:
            values = array.array(typecode)
            values.frombytes(body[offset : offset + size])
            if not _LITTLE:  # pragma: no cover - big-endian machines
                values.byteswap()
            if name in dictionaries:
                index = dictionaries[name]
                local = header["dictionaries"][name]
                remap = [index.setdefault(v, len(index)) for v in local]
                remap.append(-1)  # None: resolved once every dictionary is known
                values = array.array("i", map(remap.__getitem__, values))
            arrays.setdefault(name, array.array(typecode)).extend(values)
    layout = []
    parts = []
    offset = 0
    for name, values in arrays.items():
        if name in dictionaries:  # None is the code past the real values
            none = len(dictionaries[name])
            values = array.array("i", (none if c < 0 else c for c in values))  # noqa: PLW2901
        if not _LITTLE:  # pragma: no cover - big-endian machines
            values.byteswap()
        data = values.tobytes()
        layout.append([name, values.typecode, offset, len(data)])
        parts.append(data)
        offset += len(data)
    encoded = json.dumps(
        {
            "n": total,
            "arrays": layout,
            "dictionaries": {name: list(index) for name, index in dictionaries.items()},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(encoded)), encoded, *parts])


class ChunkWriter:
    """Chunks of at most ``size`` rows from rows fed in any number of pieces."""

    def __init__(self, write: Callable[[int, bytes], None], size: int = 1 << 16) -> None:
        self._write, self._size = write, size
        self._rows: list[Sequence[Any]] = []

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        """Take rows; write a chunk whenever ``size`` rows are waiting."""
        self._rows.extend(rows)
        while len(self._rows) >= self._size:
            head, self._rows = self._rows[: self._size], self._rows[self._size :]
            self._write(len(head), encode_chunk(head))

    def close(self) -> None:
        """Write the rows still waiting."""
        if self._rows:
            self._write(len(self._rows), encode_chunk(self._rows))
            self._rows = []


def _libraries() -> tuple[Any, Any, Any]:
    try:
        import polars as pl  # noqa: PLC0415 - optional
        import pyarrow as pa  # noqa: PLC0415 - optional
        import pyarrow.compute as pc  # noqa: PLC0415
    except ImportError:
        raise ColumnarError(
            "to_frame() needs Polars and pyarrow: pip install 'stagegate[frames]' polars"
        ) from None
    return pa, pc, pl


class StoredChunk:
    """A packed chunk read where it is stored, one column's bytes at a time.

    ``blob`` is a file-like view of the chunk (``read``, ``seek``; SQLite's incremental blob
    I/O gives one): :func:`frame_of` reads its header, then each column's array as it joins
    that column, so the chunks are never all in memory beside the frame they make.
    """

    def __init__(self, blob: Any) -> None:
        self._blob = blob

    def parse(self) -> tuple[dict[str, Any], _StoredBody]:
        """The chunk's header, and its arrays to slice (see :func:`_parse`)."""
        blob = self._blob
        blob.seek(0)
        start = blob.read(8)
        if start[:4] != MAGIC:
            _parse(start)  # raises the damaged-chunk error, naming what it starts with
        if len(start) < 8:  # noqa: PLR2004 - the magic and the header's length
            raise _shorter()
        (size,) = struct.unpack_from("<I", start, 4)
        return _header(blob.read(size)), _StoredBody(blob, 8 + size)


def _shorter() -> ColumnarError:
    return ColumnarError(
        "a chunk of the store's projection is shorter than its header says: the file was "
        "changed outside stagegate; restore it from a backup"
    )


class _StoredBody:
    """The arrays of a :class:`StoredChunk`: a slice reads its bytes from the store."""

    def __init__(self, blob: Any, base: int) -> None:
        self._blob, self._base = blob, base

    def __getitem__(self, where: slice) -> bytes:
        self._blob.seek(self._base + where.start)
        found: bytes = self._blob.read(where.stop - where.start)
        if len(found) != where.stop - where.start:
            raise _shorter()
        return found


def _parse(chunk: bytes | StoredChunk) -> tuple[dict[str, Any], Any]:
    if isinstance(chunk, StoredChunk):
        return chunk.parse()
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise ColumnarError(
            f"a chunk of the store's projection is a {type(chunk).__name__}, not bytes: the "
            "file was changed outside stagegate; restore it from a backup"
        )
    if chunk[:4] != MAGIC:
        raise ColumnarError(
            f"a chunk of the store's projection starts with {bytes(chunk[:4])!r}, not "
            f"{MAGIC!r}: the file was changed outside stagegate; restore it from a backup"
        )
    if len(chunk) < 8:  # noqa: PLR2004 - the magic and the header's length
        raise _shorter()
    (size,) = struct.unpack_from("<I", chunk, 4)
    view = memoryview(chunk)
    if len(view) < 8 + size:
        raise _shorter()
    return _header(bytes(view[8 : 8 + size])), _CheckedBody(view[8 + size :])


class _CheckedBody:
    """The arrays of a chunk in memory: a slice past the end is a damaged chunk."""

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def __getitem__(self, where: slice) -> memoryview:
        found = self._view[where]
        if len(found) != where.stop - where.start:
            raise _shorter()
        return found


def _header(text: bytes) -> dict[str, Any]:
    """A chunk's header, checked for the shape the readers rely on."""
    try:
        header = json.loads(text)
        good = (
            isinstance(header, dict)
            and isinstance(header["n"], int)
            and isinstance(header["dictionaries"], dict)
            and all(len(a) == 4 for a in header["arrays"])  # noqa: PLR2004 - name, type, where
        )
    except (ValueError, TypeError, KeyError):
        good = False
    if not good:
        raise ColumnarError(
            "a chunk of the store's projection has a damaged header: the file was changed "
            "outside stagegate; restore it from a backup"
        )
    return dict(header)


_TYPES = {"q": "int64", "i": "int32", "d": "float64"}


def _columns(
    parsed: Sequence[tuple[dict[str, Any], memoryview]],
    names: Sequence[str],
    libraries: tuple[Any, Any, Any],
    dictionaries: frozenset[str],
    tick: Callable[[int], None],
) -> Iterable[Any]:
    """The packed columns ``names`` of the parsed chunks, each joined into one array in turn.

    Numbers come back as Arrow arrays; coded columns as Polars text series (gathered from the
    joined dictionaries: a view per row, no copy of the text), those in ``dictionaries`` as
    Arrow dictionary arrays (one code per row into the distinct values). One column's
    intermediate arrays are alive at a time. ``tick`` is called with the rows read so far,
    a column's worth of rows (a share of the total) after each column.
    """
    pa, pc, pl = libraries
    total = sum(int(header["n"]) for header, _ in parsed)
    # the system allocator gives large arrays back as soon as they are freed: one column's
    # intermediates never pile up on the next one's
    pool = pa.system_memory_pool()
    run_ends = pa.array(
        list(_accumulate(int(h["n"]) for h, _ in parsed)), type=pa.int32(), memory_pool=pool
    )
    where = [{name: (code, offset, size) for name, code, offset, size in h["arrays"]}
             for h, _ in parsed]  # fmt: skip
    for column, name in enumerate(names, 1):
        parts = []
        typecode = "i"
        for (_, body), layout in zip(parsed, where, strict=True):
            typecode, offset, size = layout[name]
            parts.append(body[offset : offset + size])
        values = pa.Array.from_buffers(
            pa.type_for_alias(_TYPES[typecode]), total, [None, pa.py_buffer(b"".join(parts))]
        )
        del parts
        if name in _CODED:
            dictionary: list[str | None] = []
            offsets = []
            for header, _ in parsed:
                offsets.append(len(dictionary))
                dictionary.extend(header["dictionaries"][name])
                dictionary.append(None)
            shift = pc.run_end_decode(
                pa.RunEndEncodedArray.from_arrays(
                    run_ends, pa.array(offsets, type=pa.int32(), memory_pool=pool)
                ),
                memory_pool=pool,
            )
            codes = pc.add(values, shift, memory_pool=pool)
            del shift
            if name in dictionaries:
                distinct: dict[str, int] = {}
                remap = [None if v is None else distinct.setdefault(v, len(distinct))
                         for v in dictionary]  # fmt: skip
                unified = pc.take(pa.array(remap, type=pa.int32()), codes, memory_pool=pool)
                values = pa.DictionaryArray.from_arrays(
                    unified, pa.array(list(distinct), type=pa.string())
                )
            else:
                text = pl.Series(dictionary, dtype=pl.String)
                values = text.gather(pl.from_arrow(codes))
        if (done := total * column // len(names)) > total * (column - 1) // len(names):
            tick(done)
        yield values


def _typed(name: str, values: Any, pa: Any, pc: Any) -> Any:
    """A packed column in its frame type: instants, nullable amounts, nullable dates."""
    pool = pa.system_memory_pool()
    if name == "at":
        return values.cast(pa.timestamp("us", tz="UTC"))
    if name == "amount":
        missing = pc.is_nan(values, memory_pool=pool)
        return pc.if_else(missing, pa.scalar(None, pa.float64()), values, memory_pool=pool)
    if name == "close_date":
        missing = pc.equal(values, _NO_DAY, memory_pool=pool)
        known = pc.if_else(missing, pa.scalar(None, pa.int32()), values, memory_pool=pool)
        return known.cast(pa.date32())
    return values


def _accumulate(counts: Iterable[int]) -> Iterable[int]:
    total = 0
    for count in counts:
        total += count
        yield total


def frame_of(
    chunks: Sequence[bytes | StoredChunk],
    *,
    backend: str = "polars",
    columns: Sequence[str] | None = None,
    segments: bool = True,
    categorical: bool = False,
    tick: Callable[[int], None] | None = None,
) -> Any:
    """The frame of the events packed in ``chunks``, ordered by ``(opportunity_id, seq)``.

    Args:
        chunks: packed chunks (:func:`encode_chunk`), in any order, as bytes or read where
            they are stored (:class:`StoredChunk`).
        backend: ``"polars"`` (a ``polars.DataFrame``), ``"pandas"`` (a ``pandas.DataFrame``
            with pyarrow-backed, nullable columns) or ``"pyarrow"`` (a ``pyarrow.Table``).
        columns: which of :data:`COLUMNS` to give (default :data:`DEFAULT_COLUMNS`).
        segments: add the owner and segment columns, when the log sets any.
        categorical: give the text columns of few values (every one but ``opportunity_id``)
            as categoricals (Polars ``Categorical``, Arrow dictionaries, pandas categories):
            four bytes a row instead of the text.
        tick: called with the rows read so far as the columns are read (progress).

    Raises:
        ColumnarError: the backend or a column is unknown, a library is missing, or a chunk
            is damaged.
    """
    if backend not in BACKENDS:
        raise ColumnarError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    wanted = tuple(DEFAULT_COLUMNS if columns is None else columns)
    unknown = [c for c in wanted if c not in COLUMNS]
    if unknown:
        raise ColumnarError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; choose among {', '.join(COLUMNS)}"
        )
    pa, pc, pl = _libraries()
    parsed = [_parse(chunk) for chunk in chunks]
    headers = [header for header, _ in parsed]
    total = sum(int(header["n"]) for header in headers)
    # a log that sets no segment (the common case) needs no segment columns at all
    segments = segments and any(header["dictionaries"]["segment"] for header in headers)
    if not total:
        schema = _schema(pl)
        frame = pl.DataFrame(schema={name: schema[name] for name in wanted})
        return _convert(frame, backend)
    packed = {
        "opportunity_id": "opportunity_id",
        "at": "at_us",
        "seq": "seq",
        "stage": "stage",
        "amount": "amount",
        "close_date": "close_day",
    }
    packed.update((name, name) for name in _CODED[2:])
    extra = ("at", "segment", "segment_value") if segments else ()  # segments read "at"
    need = list(dict.fromkeys(("opportunity_id", "seq", *wanted, *extra)))
    series = []
    coded = frozenset(_CODED[1:8]) if categorical else frozenset()
    # segment values as codes into their distinct values: the fill below moves four bytes a
    # row, not a text view of sixteen, for every segment column
    coded |= {"segment_value"}
    arrays = _columns(
        parsed, [packed[n] for n in need], (pa, pc, pl), coded, tick or (lambda _done: None)
    )
    values_of = None
    for name, values in zip(need, arrays, strict=True):
        if name == "segment_value":
            values_of = values.dictionary
            values = values.indices  # noqa: PLW2901 - the codes, decoded after the fill
        series.append(pl.Series(name, _typed(name, values, pa, pc)))
        del values
    frame = pl.DataFrame(series)
    del series
    if not _in_order(frame, pl):
        frame = frame.sort("opportunity_id", "seq")
    kept: list[Any] = []
    if segments:
        frame, named = _with_segments(frame, pl)
        kept = _decoded(frame, named, values_of, categorical, (pa, pl))
    frame = frame.select(*wanted, *kept)
    return _convert(frame, backend)


def give_back_freed() -> None:
    """Hand the heap memory freed since the chunks were read back to the system.

    The chunks are a few megabytes each: glibc serves such blocks from its heap once it has
    freed a first one (its mmap threshold moves up), and keeps the freed heap for reuse. Hundreds
    of megabytes of chunks read and dropped would then stay resident for the whole analysis.
    Elsewhere (no glibc ``malloc_trim``) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - a C library without malloc_trim
        return
    trim(0)


def requested(backend: str, columns: Sequence[str] | None) -> tuple[str, ...]:
    """The columns a frame request asks for, checked as :func:`frame_of` checks them.

    Raises:
        ColumnarError: the backend or a column is unknown.
    """
    if backend not in BACKENDS:
        raise ColumnarError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    wanted = tuple(DEFAULT_COLUMNS if columns is None else columns)
    unknown = [c for c in wanted if c not in COLUMNS]
    if unknown:
        raise ColumnarError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; choose among {', '.join(COLUMNS)}"
        )
    return wanted


def frame_of_columns(
    frame: Any,
    *,
    backend: str = "polars",
    columns: Sequence[str] | None = None,
    categorical: bool = False,
    segments: bool = True,
) -> Any:
    """The frame :func:`frame_of` gives, from the stored columns already in a Polars frame.

    For a store that reads its columns itself (PostgreSQL's ``COPY``) rather than from chunks.
    ``frame`` holds ``opportunity_id``, ``seq`` and every requested column in its frame type
    (text as ``String``, ``at`` an aware UTC instant, ``amount`` a float, ``close_date`` a
    date), plus ``segment`` and ``segment_value`` (the segment each event sets and its new
    value, as :func:`encode_chunk` derives them; null where it sets none) and, when a segment
    is set, ``at``. Rows may come in any order.

    Raises:
        ColumnarError: the backend or a column is unknown, or a segment is named like a column.
    """
    wanted = requested(backend, columns)
    _, _, pl = _libraries()
    if not frame.height:
        return frame_of([], backend=backend, columns=wanted)
    segments = segments and frame.get_column("segment").null_count() < frame.height
    if categorical:
        coded = [name for name in _CODED[1:8] if name in frame.columns]
        frame = frame.with_columns(pl.col(coded).cast(pl.Categorical))
    if not _in_order(frame, pl):
        frame = frame.sort("opportunity_id", "seq")
    kept: list[Any] = []
    if segments:
        pa = _libraries()[0]
        given = _dictionary_of(pa, frame.get_column("segment_value").to_arrow())
        frame = frame.with_columns(pl.Series("segment_value", given.indices))
        frame, named = _with_segments(frame, pl)
        kept = _decoded(frame, named, given.dictionary, categorical, (pa, pl))
    return _convert(frame.select(*wanted, *kept), backend)


def _schema(pl: Any) -> dict[str, Any]:
    return {
        "opportunity_id": pl.String,
        "at": pl.Datetime("us", "UTC"),
        "seq": pl.Int64,
        "stage": pl.String,
        "amount": pl.Float64,
        "close_date": pl.Date,
        "reason": pl.String,
        "kind": pl.String,
        "from_stage": pl.String,
        "move": pl.String,
        "process": pl.String,
        "process_version": pl.String,
    }


def _in_order(frame: Any, pl: Any) -> bool:
    """Whether rows are ordered by ``(opportunity_id, seq)``, each key once."""
    oid, seq = pl.col("opportunity_id"), pl.col("seq")
    before = (oid < oid.shift(1)) | ((oid == oid.shift(1)) & (seq <= seq.shift(1)))
    return not bool(frame.select(before.fill_null(value=False).any()).item())


_CLEARED = -1  # codes of the fill: a value cleared, and a deal's start before any value
_UNSET = -2


def _dictionary_of(pa: Any, values: Any) -> Any:
    """An Arrow text column as one dictionary array: codes in order of first appearance."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string()).dictionary_encode()


def _decoded(
    frame: Any, named: Sequence[str], values: Any, categorical: bool, libraries: tuple[Any, Any]
) -> list[Any]:
    """The segment columns (codes into ``values`` after the fill) as text or categoricals."""
    pa, pl = libraries
    if categorical:  # straight from the codes: no text per row on the way
        return [
            pl.Series(
                name,
                pa.DictionaryArray.from_arrays(
                    frame.get_column(name).cast(pl.Int32).to_arrow(), values
                ),
            )
            for name in named
        ]
    text = pl.Series(values.to_pylist(), dtype=pl.String)
    return [text.gather(frame.get_column(name)).alias(name) for name in named]


def _with_segments(frame: Any, pl: Any) -> tuple[Any, list[str]]:
    """Add ``owner`` and one column per attribute: the value in force at each row's instant.

    ``segment_value`` holds codes (null: no value); so do the columns added, to be decoded.
    """
    names = frame.get_column("segment").drop_nulls().unique().sort().to_list()
    ordered = (["owner"] if "owner" in names else []) + [n for n in names if n != "owner"]
    taken = [n for n in ordered if n in COLUMNS]
    if taken:
        raise ColumnarError(
            f"a segment is named {taken[0]!r}, like a column of the stage-history table; "
            "rename the attribute"
        )
    segment, value = pl.col("segment"), pl.col("segment_value").cast(pl.Int32)
    oid, at = pl.col("opportunity_id"), pl.col("at")
    start = oid.ne_missing(oid.shift(1))
    back = frame.select((~start & (at < at.shift(1))).fill_null(value=False).any()).item()
    if back:  # instants that go back within a deal: an instant's rows are not together
        return _with_segments_by_window(frame, pl, ordered)
    # Rows are in (opportunity_id, seq) order and a deal's instants never go back, so each
    # deal and each of its instants is a run of rows: a fill that starts every deal afresh
    # (a marker on its first row) is the value in force after each row, and the value at the
    # last row of an instant's run, filled back over the run, the value in force at it.
    filled = frame.with_columns(
        pl.when(segment == name)
        .then(value.fill_null(_CLEARED))
        .when(start)
        .then(pl.lit(_UNSET, pl.Int32))
        .otherwise(None)
        .forward_fill()
        .alias(name)
        for name in ordered
    )
    last = oid.ne_missing(oid.shift(-1)) | at.ne_missing(at.shift(-1))
    at_end = [pl.when(last).then(pl.col(name)).backward_fill() for name in ordered]
    return filled.with_columns(
        pl.when(v >= 0).then(v).alias(name) for name, v in zip(ordered, at_end, strict=True)
    ), ordered


def _with_segments_by_window(frame: Any, pl: Any, ordered: list[str]) -> tuple[Any, list[str]]:
    """:func:`_with_segments` as windows over each deal and each of its instants."""
    oid = "opportunity_id"
    segment, value = pl.col("segment"), pl.col("segment_value").cast(pl.Int32)
    filled = frame.with_columns(
        pl.when(segment == name)
        .then(value.fill_null(_CLEARED))
        .forward_fill()
        .over(oid)
        .alias(name)
        for name in ordered
    )
    # the value in force at a row's instant: after every event of that instant
    at_end = [pl.col(name).last().over([oid, "at"]) for name in ordered]
    return filled.with_columns(
        pl.when(v >= 0).then(v).alias(name) for name, v in zip(ordered, at_end, strict=True)
    ), ordered


def _convert(frame: Any, backend: str) -> Any:
    if backend == "polars":
        return frame
    if backend == "pyarrow":
        return frame.to_arrow()
    try:
        return frame.to_pandas(use_pyarrow_extension_array=True)
    except ImportError:  # pragma: no cover - depends on the environment
        raise ColumnarError("backend='pandas' needs pandas: pip install pandas") from None
