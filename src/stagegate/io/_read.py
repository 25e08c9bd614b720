"""Reading tabular exports: CSV (stdlib), Parquet (optional pyarrow), or rows already in memory.

Every failure to read is an :class:`~stagegate.io.ImportProblemError` with one finding that says
what is wrong and what to do; nothing is returned half-read.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import io
import math
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Union

import attrs

from stagegate._progress import Phases, phase_of
from stagegate.errors import InvalidCommandError, cut
from stagegate.io._result import Finding, ImportProblemError, Severity

__all__ = [
    "DEFAULT_MAX_FIELD_SIZE",
    "DEFAULT_MAX_INPUT_BYTES",
    "Source",
    "Table",
    "max_input_bytes",
    "read_file",
    "read_table",
]

Source = Union[str, "os.PathLike[str]", IO[str], IO[bytes], Iterable[Mapping[str, Any]], Any]
"""What an importer reads: a path (``.csv``, ``.parquet``), an open file, dict rows, or a data
frame (pandas, Polars, an Arrow table or record batch, or a narwhals frame over one of them)."""

DEFAULT_MAX_FIELD_SIZE = 1_000_000
"""Largest CSV field accepted, in characters; larger ones are refused with ``field_too_large``."""

TICK_ROWS = 20_000
"""Rows between two progress ticks while reading a file."""

DEFAULT_MAX_INPUT_BYTES = 4 * 1024**3
"""Largest input file read, in bytes (after decompression); set ``STAGEGATE_MAX_INPUT_BYTES``
to change it. Larger files are refused with ``file_too_large`` before they fill the memory."""

MAX_INPUT_ENV = "STAGEGATE_MAX_INPUT_BYTES"

_GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSED = {
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"


def _fail(source: str, code: str, message: str, rows: Sequence[int] = ()) -> ImportProblemError:
    return ImportProblemError(source, [Finding(code, Severity.ERROR, message, rows, used=False)])


def shown_header(header: Sequence[str]) -> str:
    """A header as messages show it: its names quoted, cut to a few hundred characters.

    >>> shown_header(["Id", "Stage"])
    "'Id', 'Stage'"
    """
    return cut(", ".join(map(repr, header)))


def normalize_header(name: object) -> str:
    """Header comparison key: case-folded, BOM and surrounding space removed, inner space single."""
    return re.sub(r"\s+", " ", str(name).replace("\ufeff", "").strip()).casefold()


@attrs.frozen(slots=True)
class Table:
    """Rows read from a source, with the header and the resolved column names.

    Attributes:
        header: the column names as written in the source.
        columns: canonical column name -> the source column that holds it (only those found).
        rows: ``(row number, {source column: value})`` in source order. CSV row numbers count
            the header as row 1; for Parquet and in-memory rows the first row is row 1.
        findings: rows that could not be read (too many or too few fields), each not used.
    """

    header: tuple[str, ...]
    columns: Mapping[str, str]
    rows: tuple[tuple[int, Mapping[str, Any]], ...]
    findings: tuple[Finding, ...] = ()

    def get(self, row: Mapping[str, Any], name: str) -> Any:
        """The value of canonical column ``name`` in ``row`` (``None`` without that column)."""
        column = self.columns.get(name)
        return None if column is None else row.get(column)


def read_table(
    data: Source,
    *,
    source: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    delimiter: str = ",",
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
    phases: Phases | None = None,
) -> Table:
    """Read ``data`` and resolve the canonical column names against its header.

    Args:
        data: a path, an open text or binary file, or an iterable of mappings (one per row).
        source: the importer's name, used in messages.
        required: canonical columns that must be present.
        optional: canonical columns used when present.
        columns: canonical name -> the header used in this export (overrides; headers are
            otherwise matched ignoring case and surrounding space).
        encoding: the text encoding of a CSV file; default UTF-8 (a BOM is accepted).
        delimiter: the CSV field separator.
        max_field_size: the largest CSV field accepted, in characters.
        phases: told of the ``reading`` phase (rows read of the lines in the file).

    Raises:
        ImportProblemError: the source cannot be read or lacks required columns.
        InvalidCommandError: ``columns`` names a column the importer does not know.
    """
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise InvalidCommandError(
            f"the delimiter must be one character other than a quote or a line break, got "
            f"{delimiter!r}; pass e.g. ',' or ';' or a tab"
        )
    known = (*required, *optional)
    overrides = dict(columns or {})
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InvalidCommandError(
            f"columns= names {', '.join(map(repr, unknown))}, unknown to the {source} importer; "
            f"its columns are: {', '.join(known)}"
        )
    header, rows, findings = _read_any(data, source, encoding, delimiter, max_field_size, phases)
    if not header and not rows:
        header = [overrides.get(name, name) for name in known]  # no dict rows: nothing missing
    resolved = resolve_columns(header, source, required, optional, overrides)
    return Table(tuple(header), resolved, tuple(rows), tuple(findings))


def resolve_columns(
    header: Sequence[str],
    source: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Canonical column name -> the column of ``header`` that holds it (those found).

    A column is found by its name (or its override), ignoring case and surrounding space.

    Raises:
        ImportProblemError: a required column is missing (``missing_columns``).
    """
    known, overrides = (*required, *optional), overrides or {}
    by_key: dict[str, list[str]] = {}
    for name in header:
        by_key.setdefault(normalize_header(name), []).append(name)
    resolved: dict[str, str] = {}
    for name in known:
        wanted = overrides.get(name, name)
        found = by_key.get(normalize_header(wanted), [])
        if wanted in header:
            resolved[name] = wanted
        elif len(found) > 1:
            raise _fail(
                source,
                "duplicate_columns",
                f"columns {', '.join(map(repr, found))} all match {wanted!r} (headers are "
                f"matched ignoring case and spacing); rename all but one, or name the one to "
                f"use with columns={{{name!r}: ...}}",
            )
        elif found:
            resolved[name] = found[0]
    missing = [name for name in required if name not in resolved]
    if missing:
        wanted_text = ", ".join(repr(overrides.get(m, m)) for m in missing)
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = "; the header looks like one column: pass the right delimiter= (e.g. ';')"
        raise _fail(
            source,
            "missing_columns",
            f"the export has no column {wanted_text} (found: "
            f"{shown_header(header) or 'no columns'}); map your headers with "
            f"columns={{{', '.join(repr(m) + ': ...' for m in missing)}}}{hint}",
        )
    return resolved


def stop_if_interrupted(exc: BaseException) -> None:
    """Raise ``KeyboardInterrupt`` when ``exc`` is pyarrow's ``ArrowCancelled``.

    pyarrow turns Ctrl-C during a read into ``ArrowCancelled``: the user stopped the command,
    the file is not unreadable, and nothing may carry on another way.

    Raises:
        KeyboardInterrupt: ``exc`` is ``ArrowCancelled``.
    """
    if type(exc).__name__ == "ArrowCancelled":
        raise KeyboardInterrupt from None


def max_input_bytes() -> int:
    """The input size limit: ``STAGEGATE_MAX_INPUT_BYTES`` if set, else the default.

    Raises:
        InvalidCommandError: the variable is not a positive integer.
    """
    raw = os.environ.get(MAX_INPUT_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise InvalidCommandError(
            f"{MAX_INPUT_ENV}={raw!r} is not a positive number of bytes; set it like "
            f"{MAX_INPUT_ENV}=8000000000"
        )
    return int(raw)


def read_file(path: str | os.PathLike[str], source: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, gzip decompressed, at most ``max_bytes`` of them.

    Raises:
        ImportProblemError: the path cannot be opened, is not a regular file (a folder, a
            named pipe, a device such as ``/dev/zero``), is compressed other than with gzip,
            or is larger than the limit (:func:`max_input_bytes` by default).
    """
    shown = os.fspath(path)
    limit = max_input_bytes() if max_bytes is None else max_bytes
    _regular(shown, source)
    try:
        with open(shown, "rb") as handle:  # noqa: PTH123 - a bounded read of a str path
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise _fail(
            source, "unreadable_file", f"cannot read {shown!r}: {exc.strerror or exc}"
        ) from None
    if raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(raw, shown, source, limit)
    _not_compressed(raw, shown, source)
    if len(raw) > limit:
        raise _too_large(shown, source, limit)
    return raw


def _regular(shown: str, source: str) -> os.stat_result:
    """The file's status; refuse a path that cannot be opened or is not a regular file."""
    try:
        found = Path(shown).stat()
    except OSError as exc:
        raise _fail(
            source, "unreadable_file", f"cannot open {shown!r}: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISREG(found.st_mode):
        kind = "a folder" if stat.S_ISDIR(found.st_mode) else "a pipe or device"
        raise _fail(
            source,
            "not_a_file",
            f"{shown!r} is {kind}, not a regular file; save the export to a file and import that",
        )
    return found


def _not_compressed(head: bytes, shown: str, source: str) -> None:
    """Refuse content that starts like a compressed file other than gzip."""
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise _fail(
                source,
                "compressed_file",
                f"{shown!r} is a {name}-compressed file; decompress it (or gzip it) and import "
                "the result",
            )


def _gunzip(raw: bytes, shown: str, source: str, limit: int) -> bytes:
    reader = gzip.GzipFile(fileobj=io.BytesIO(raw))
    try:
        data = reader.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(
            source,
            "unreadable_file",
            f"{shown!r} looks gzip-compressed but cannot be decompressed ({exc}); check the "
            "download, or decompress it yourself",
        ) from None
    if len(data) > limit:
        raise _too_large(shown, source, limit, "once decompressed ")
    return data


def _too_large(shown: str, source: str, limit: int, how: str = "") -> ImportProblemError:
    return _fail(
        source,
        "file_too_large",
        f"{shown!r} is {how}larger than {limit:,} bytes, the input limit; split the export, "
        f"or raise the limit with {MAX_INPUT_ENV}=<bytes>",
    )


def _read_any(  # noqa: PLR0917 - private, the options of read_table
    data: Source,
    source: str,
    encoding: str | None,
    delimiter: str,
    max_field_size: int,
    phases: Phases | None = None,
) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]], list[Finding]]:
    frame = frame_columns(data)
    if frame is not None:
        return _read_columns(*frame, source, phases)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        raw = read_file(path, source)
        if path.suffix.lower() in _PARQUET_SUFFIXES or raw[:4] == _PARQUET_MAGIC:
            return _read_parquet(path, source, phases)
        text = _decode(raw, source, encoding)
        return _read_csv(text, source, delimiter, max_field_size, phases)
    if hasattr(data, "read"):
        limit = max_input_bytes()
        content = data.read(limit + 1)
        if len(content) > limit:
            raise _too_large(repr(data), source, limit)
        text = (
            _decode(bytes(content), source, encoding)
            if isinstance(content, (bytes, bytearray))
            else str(content)
        )
        return _read_csv(text, source, delimiter, max_field_size, phases)
    return _read_rows(data, source, phases)


def _decode(raw: bytes, source: str, encoding: str | None) -> str:
    name = encoding or "utf-8-sig"
    try:
        return raw.decode(name)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start : exc.start + 4].hex(" ")
        raise _fail(
            source,
            "bad_encoding",
            f"the file is not valid {name}: undecodable bytes {bad} at byte offset {exc.start} "
            f"(line {line}); save the export as UTF-8, or pass its encoding, e.g. "
            "encoding='cp1252' or encoding='utf-16'",
            [line],
        ) from None
    except LookupError:
        raise InvalidCommandError(
            f"unknown encoding {name!r}; use a Python codec name such as 'utf-8' or 'cp1252'"
        ) from None


@contextlib.contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(
    text: str, source: str, delimiter: str, max_field_size: int, phases: Phases | None = None
) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]], list[Finding]]:
    if not text.strip():
        raise _fail(
            source,
            "empty_file",
            "the file is empty (no header, no rows); export again with a header line",
        )
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise _fail(
            source,
            "bad_encoding",
            f"the file contains NUL characters (line {line}): it is probably UTF-16 or binary; "
            "pass encoding='utf-16' or export as UTF-8 CSV",
            [line],
        )
    rows: list[tuple[int, Mapping[str, Any]]] = []
    findings: list[Finding] = []
    tick = phase_of(phases, "reading", max(text.count("\n") - 1, 0) if phases else None)
    reader = CsvRows(io.StringIO(text, newline=""), source, delimiter, max_field_size)
    header = reader.header
    record = 1
    for record, values in reader:
        if len(values) != len(header):
            findings.append(
                Finding(
                    "malformed_row",
                    Severity.ERROR,
                    f"the row has {len(values)} fields, the header {len(header)}; "
                    "not used: check quoting and separators on that line",
                    [record],
                    used=False,
                )
            )
            continue
        rows.append((record, dict(zip(header, values, strict=False))))
        if not record % TICK_ROWS:
            tick(record - 1)
    tick(record - 1)
    return header, rows, findings


class CsvRows:
    """The records of a CSV text read one at a time: the header at once, then the rows.

    Iterating yields ``(record number, fields)`` for each row that is not blank, the header
    being record 1; a row may have more or fewer fields than the header (the caller decides).
    Lines are read as they are needed, so a file of any size takes the memory of one record.

    Raises (on construction or while iterating):
        ImportProblemError: the text is not valid CSV, a field is larger than
            ``max_field_size``, or the header repeats a column.
    """

    def __init__(
        self, lines: Iterable[str], source: str, delimiter: str, max_field_size: int
    ) -> None:
        self.source, self.max_field_size = source, max_field_size
        self._reader = csv.reader(lines, delimiter=delimiter, strict=True)
        self._record = 0  # the record read last
        with _field_limit(max_field_size):
            first = self._next()
        self._record = 1
        self.header = [h.replace("\ufeff", "").strip() for h in first or []]
        duplicates = sorted(name for name, seen in Counter(self.header).items() if seen > 1)
        if duplicates:
            raise _fail(
                source,
                "duplicate_columns",
                f"the header repeats {', '.join(map(repr, duplicates))}; rename the columns so "
                "each appears once",
                [1],
            )

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with _field_limit(self.max_field_size):
            while (values := self._next()) is not None:
                self._record += 1
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue  # a blank line
                yield self._record, values

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            message, record = str(exc), self._record + 1
            if "field larger than field limit" in message:
                raise _fail(
                    self.source,
                    "field_too_large",
                    f"a field of row {record} is larger than {self.max_field_size:,} "
                    "characters (probably an unclosed quote); fix the quoting, or pass a larger "
                    "max_field_size=",
                    [record],
                ) from None
            raise _fail(
                self.source,
                "unreadable_file",
                f"row {record} is not valid CSV ({message}); fix the file and import again",
                [record],
            ) from None


def _read_parquet(
    path: Path, source: str, phases: Phases | None = None
) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]], list[Finding]]:
    try:
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise _fail(
            source,
            "missing_dependency",
            "reading Parquet needs pyarrow: pip install 'stagegate[parquet]'",
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        stop_if_interrupted(exc)
        raise _fail(
            source, "unreadable_file", f"{str(path)!r} is not a readable Parquet file: {exc}"
        ) from None
    return _read_columns(*_arrow_columns(table), source, phases)


def _read_rows(
    data: Iterable[Mapping[str, Any]], source: str, phases: Phases | None = None
) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]], list[Finding]]:
    header: dict[str, None] = {}
    rows: list[tuple[int, Mapping[str, Any]]] = []
    try:
        iterator = iter(data)
    except TypeError:
        raise InvalidCommandError(
            f"cannot read {type(data).__name__} {data!r}: pass a path, an open file, or an "
            "iterable of dict rows"
        ) from None
    for number, row in enumerate(iterator, start=1):
        if not isinstance(row, Mapping):
            raise _fail(
                source,
                "malformed_row",
                f"row {number} is {type(row).__name__}, not a mapping of column -> value; pass "
                "dict rows (or a path)",
                [number],
            )
        for key in row:
            header.setdefault(str(key), None)
        rows.append((number, {str(k): None if is_empty(v) else v for k, v in row.items()}))
    phase_of(phases, "reading", len(rows))(len(rows))
    return list(header), rows, []


# -- data frames ---------------------------------------------------------------------------


def is_empty(value: Any) -> bool:
    """Whether a cell means "no value": ``None``, a float NaN, pandas' ``NaT`` or ``NA``.

    >>> is_empty(float("nan")), is_empty(None), is_empty(""), is_empty(0)
    (True, True, False, False)
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in _EMPTY_TYPES


_EMPTY_TYPES = frozenset({"NaTType", "NAType", "NaTType_"})


def frame_columns(data: Any) -> tuple[list[str], list[list[Any]]] | None:
    """The header and the column values of a data frame, or ``None`` when ``data`` is none.

    Takes pandas and Polars data frames (a Polars ``LazyFrame`` is collected), Arrow tables and
    record batches, and narwhals frames over any of them. Values are Python objects; nulls,
    NaN and ``NaT`` become ``None`` (an empty cell), as a blank does in a CSV file.
    """
    module = type(data).__module__.partition(".")[0]
    if module == "narwhals":
        to_native = getattr(data, "to_native", None)
        return None if to_native is None else frame_columns(to_native())
    if module == "pyarrow" and hasattr(data, "column_names") and hasattr(data, "column"):
        return _arrow_columns(data)
    if module == "polars" and hasattr(data, "collect_schema"):
        if hasattr(data, "collect") and not hasattr(data, "to_arrow"):  # a LazyFrame
            data = data.collect()
        header = [str(name) for name in data.columns]
        return header, [_cleaned(data.get_column(name).to_list()) for name in data.columns]
    if module == "pandas" and hasattr(data, "columns") and hasattr(data, "iloc"):
        header = [str(name) for name in data.columns]
        columns = []
        for index in range(len(header)):
            series = data.iloc[:, index]
            empty = series.isna().tolist()
            values = series.astype(object).tolist()
            columns.append([None if gone else v for v, gone in zip(values, empty, strict=True)])
        return header, columns
    return None


def _arrow_columns(table: Any) -> tuple[list[str], list[list[Any]]]:
    header = [str(name) for name in table.column_names]
    return header, [_cleaned(table.column(i).to_pylist()) for i in range(len(header))]


def _cleaned(values: list[Any]) -> list[Any]:
    """A column's values with NaN (a float) as ``None``."""
    return [None if isinstance(v, float) and v != v else v for v in values]  # noqa: PLR0124 - NaN


def _read_columns(
    header: list[str], columns: list[list[Any]], source: str, phases: Phases | None = None
) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]], list[Finding]]:
    duplicates = sorted(name for name, seen in Counter(header).items() if seen > 1)
    if duplicates:
        raise _fail(
            source,
            "duplicate_columns",
            f"the frame repeats column {', '.join(map(repr, duplicates))}; rename the columns "
            "so each appears once",
        )
    rows: list[tuple[int, Mapping[str, Any]]] = [
        (number, dict(zip(header, values, strict=True)))
        for number, values in enumerate(zip(*columns, strict=True), start=1)
    ]
    phase_of(phases, "reading", len(rows))(len(rows))
    return header, rows, []


# -- values --------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A cell as stripped text, or ``None`` when empty."""
    if value is None:
        return None
    result = value.strip() if isinstance(value, str) else str(value)
    return result or None


def decimal(value: Any) -> Decimal | None:
    """A cell as a finite decimal (``1,234.50`` and ``1234,5`` are refused), or ``None``.

    A float is read as its shortest text (``0.1``, not its binary expansion), a whole one as
    an integer (``1054.0`` is ``1054``).

    Raises:
        ValueError: the value is not a finite number.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")  # noqa: TRY004 - a cell value, not an argument
    if isinstance(value, float) and value.is_integer():
        # a whole number in a float column (pandas makes an integer column with gaps float):
        # the number as written, 1054 rather than 1054.0
        return Decimal(int(value))
    try:
        result = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not result.is_finite() or not math.isfinite(float(result)):
        raise ValueError(f"{value!r} is not a finite number")
    return result
