"""Reading a *plain* stagegate event log column-wise: Arrow batches, checked without Events.

A log written by :func:`~stagegate.io.write_events` (CSV, JSON Lines or Parquet) whose events
are all of the plain kinds an import produces (``opened``, imported ``stage_changed``,
``rescheduled``, ``amount_changed``; ASCII text without quotes or backslashes, no gate report,
details or subject) can be checked with a few Arrow compute kernels per batch instead of one
:class:`~stagegate.events.Event` and one replay per event. :func:`plain_batches` reads such a
file in bounded batches, applies every rule :meth:`~stagegate.opportunity.Opportunity.replay`
and :func:`~stagegate.io.read_events` would (known stages, ``seq`` 1, 2, 3, ... per deal,
instants in order, a first event that opens the deal, from-stages that follow, values that only
their own events change, ...) and yields each batch as the stored columns plus the canonical
content each digest covers (byte for byte what :mod:`stagegate.integrity` hashes).

Anything outside that shape, or any rule broken, raises :class:`NotPlainError`: the caller then
imports the file the ordinary way, row by row, so findings, row numbers and messages are
exactly those of the ordinary path. This module never decides that a file is bad, only that
it is not plain.

>>> import tempfile, pathlib
>>> from stagegate import demo
>>> from stagegate.io import write_events
>>> from stagegate.templates import b2b
>>> log = demo.drive_sample_deals()[0].events[:1]
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
>>> _ = write_events(path, log)
>>> [batch.count for batch in plain_batches(path, demo.b2b())]
[1]
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from stagegate.errors import StagegateError
from stagegate.io._read import DEFAULT_MAX_FIELD_SIZE, max_input_bytes, stop_if_interrupted
from stagegate.io.canonical import EVENT_COLUMNS
from stagegate.segments import CURRENCY, RESERVED_NAMES

__all__ = ["FORMATS", "NotPlainError", "PlainBatch", "format_of", "plain_batches"]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FORMATS[".pq"] = "parquet"
"""File suffixes the plain reader takes (no compressed files: those go the ordinary way)."""

BLOCK_BYTES = 1 << 20
"""Bytes of text parsed per batch (CSV and JSON Lines); Parquet batches are row groups cut
at :data:`PARQUET_ROWS` rows."""

PARQUET_ROWS = 65_536
SCAN_BYTES = 4 << 20
"""Bytes read at a time by the pre-scan of a text file."""

_TEXT = frozenset(EVENT_COLUMNS) - {"seq", "details"}
_PLAIN = r"^[ !#-\[\]-~]+$"  # printable ASCII without '"' or '\': JSON quotes it as it is
_NAMED = r"^[ !#-\[\]-~]*[!#-\[\]-~][ !#-\[\]-~]*$"  # and not only spaces (ids, actors)
_INSTANT = (
    r"^(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<f>[0-9]{1,6}))?(?P<z>Z|[+-][0-9]{2}:[0-9]{2})$"
)
# Decimal text that str(Decimal(text)) writes back unchanged (no exponent form).
_AMOUNT = r"^(?:(?:0|[1-9][0-9]{0,39})(?:\.[0-9]{1,6})?|[1-9][0-9]{0,39}\.[0-9]{1,40})$"
_DAY = r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$"
_KINDS = ("opened", "stage_changed", "rescheduled", "amount_changed", "reassigned", "attribute_set")
# an owner or attribute value (segments.owner_name): plain, no space at either end, <= 200
_VALUE = r"^[!#-\[\]-~](?:[ !#-\[\]-~]{0,198}[!#-\[\]-~])?$"
# an attribute name (segments.attribute_name), not reserved, not the currency (its own rule)
_ATTRIBUTE = r"^[a-z][a-z0-9_]{0,63}$"
# details of an attribute_set event as write_events writes them (or compact)
_DETAILS = r'^\{"value": ?"(?P<v>[!#-\[\]-~](?:[ !#-\[\]-~]{0,198}[!#-\[\]-~])?)"\}$'
_NOT_ATTRIBUTES = (*RESERVED_NAMES, CURRENCY)
MAX_ATTRIBUTES = 32
"""More attribute names than this in one batch: not plain (each costs a pass)."""
_UNSET = "\x00"  # the value in force of an owner or attribute never set
_US = 1_000_000
_LAST_US = 253_402_214_400 * _US - 86_400 * _US  # 9999-12-30: isoformat stays 4-digit years
_COMPRESSED = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"BZh",
    b"\xfd7zXZ",
    b"\x28\xb5\x2f\xfd",
    b"\xef\xbb\xbf",
)


class NotPlainError(StagegateError):
    """The file is not a plain log this reader checks column-wise (internal: never escapes)."""


@attrs.frozen(slots=True)
class PlainBatch:
    """One checked batch: the stored columns, the canonical contents, where each deal starts.

    Attributes:
        count: events in the batch.
        columns: the 16 stored columns in the ``events`` table's order, as Arrow arrays (text
            as ``string``, ``seq`` and ``at_us`` as ``int64``).
        contents: per event, the canonical content its digest covers (UTF-8 bytes).
        starts: per event, whether it opens its deal (its chain starts from nothing).
        digests: per event, the digest the file carries (JSON Lines), or ``None``.
        opportunities: how many deals open in the batch.
    """

    count: int
    columns: tuple[Any, ...]
    contents: list[bytes]
    starts: list[bool]
    digests: list[str | None] | None
    opportunities: int


def format_of(path: str | os.PathLike[str]) -> str | None:
    """The plain reader's name for the format of ``path`` (by suffix), or ``None``."""
    return FORMATS.get(Path(path).suffix.lower())


def _libraries() -> tuple[Any, Any]:
    try:
        pa = importlib.import_module("pyarrow")
        pc = importlib.import_module("pyarrow.compute")
    except ImportError:  # pragma: no cover - the test environment has pyarrow
        raise NotPlainError("pyarrow is not installed") from None
    return pa, pc


@attrs.define(slots=True)
class _Scan:
    lines: int = 0
    first: bytes = b""
    quoted: bool = False  # the file has quotes (CSV)


def _scan(path: str, fmt: str) -> _Scan:
    """Read a text file once in blocks: its line count, and refuse what Arrow reads otherwise.

    Lone carriage returns, NUL bytes, a byte-order mark and compressed files are left to the
    ordinary reader, which reads them its own way.
    """
    scan = _Scan()
    starts = 0  # lines that begin with '{' (JSON Lines)
    previous = b""
    with open(path, "rb") as handle:  # noqa: PTH123 - a str path, read in blocks
        while block := handle.read(SCAN_BYTES):
            if not scan.first:
                scan.first = block[:4096]
                if block.startswith(_COMPRESSED) or (fmt == "jsonl" and block[:1] != b"{"):
                    raise NotPlainError("not plain text")
            if b"\x00" in block:
                raise NotPlainError("NUL bytes")
            scan.quoted = scan.quoted or (fmt == "csv" and b'"' in block)
            edge = previous + block[:1]
            returns = block.count(b"\r")
            if returns and returns != block.count(b"\r\n") + (block.endswith(b"\r")):
                raise NotPlainError("lone carriage returns")
            if previous == b"\r" and block[:1] != b"\n":
                raise NotPlainError("lone carriage returns")
            if fmt == "jsonl" and (returns or b"\r" in edge):
                raise NotPlainError("carriage returns in JSON Lines")
            scan.lines += block.count(b"\n")
            starts += block.count(b"\n{") + (edge == b"\n{")
            previous = block[-1:]
    if not scan.first:
        raise NotPlainError("empty file")
    if previous not in {b"\n", b""}:
        if previous == b"\r":
            raise NotPlainError("lone carriage return at the end")
        scan.lines += 1

    if fmt == "jsonl" and starts + 1 != scan.lines:
        # every line must open an object: a blank line, or two objects on one line, is read
        # differently by the ordinary reader
        raise NotPlainError("a line that is not one object")
    return scan


def _reader(path: str, fmt: str, pa: Any) -> tuple[Iterator[Any], int | None]:
    """Record batches of the file, and the number of rows the ordinary reader would read."""
    if fmt == "parquet":
        pq = importlib.import_module("pyarrow.parquet")
        try:
            file = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            stop_if_interrupted(exc)
            raise NotPlainError(str(exc)) from None
        names = file.schema_arrow.names
        if len(set(names)) != len(names) or not set(EVENT_COLUMNS) <= set(names):
            raise NotPlainError("not the columns of a log")
        return file.iter_batches(batch_size=PARQUET_ROWS, columns=list(EVENT_COLUMNS)), None
    scan = _scan(path, fmt)
    if fmt == "csv":
        csv = importlib.import_module("pyarrow.csv")
        header = scan.first.split(b"\n", 1)[0].rstrip(b"\r").split(b",")
        if sorted(header) != sorted(name.encode() for name in EVENT_COLUMNS):
            raise NotPlainError("not the header of a log")
        reader = csv.open_csv(
            path,
            read_options=csv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=csv.ParseOptions(
                quote_char='"' if scan.quoted else False,
                double_quote=True,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=csv.ConvertOptions(
                column_types=dict.fromkeys(EVENT_COLUMNS, pa.string()), strings_can_be_null=False
            ),
        )
        if scan.quoted:
            return _verbatim(reader, path, scan.first), scan.lines - 1
        return reader, scan.lines - 1
    json = importlib.import_module("pyarrow.json")
    # details are objects in JSON Lines: read as {"value": text}, and any other key (at any
    # level, so in details too) stops the reader rather than being dropped
    details = pa.struct([("value", pa.string())])
    schema = pa.schema(
        [
            (n, pa.int64() if n == "seq" else details if n == "details" else pa.string())
            for n in (*EVENT_COLUMNS, "digest")
        ]
    )
    reader = json.open_json(
        path,
        read_options=json.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    )
    return reader, scan.lines


def _verbatim(reader: Iterator[Any], path: str, first: bytes) -> Iterator[Any]:
    """The batches of a CSV file with quotes, each checked to be the text it was read from.

    Arrow and Python's ``csv`` module agree on text that Python's writer writes (a field
    quoted when it holds a quote, a comma or a line break, quotes doubled) but not on every
    other use of quotes. Each batch is therefore written back that way and compared byte for
    byte with the file: any other quoting is not plain.
    """
    _, pc = _libraries()
    end = b"\r\n" if first.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    terminator = end.decode("ascii")
    with open(path, "rb") as raw:  # noqa: PTH123 - a str path, read alongside Arrow's reader
        raw.readline()  # the header, checked by name
        for batch in reader:
            if not batch.num_rows:
                yield batch
                continue
            fields = []
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                # the checks refuse quotes and line breaks in every column but the details
                # (JSON, always quoted): a comma is all that makes Python's writer quote
                special = (
                    pc.not_equal(column, "")
                    if name == "details"
                    else pc.match_substring(column, ",")
                )
                if pc.any(special).as_py():
                    doubled = pc.replace_substring(column, '"', '""')
                    column = pc.if_else(  # noqa: PLW2901 - the field as written
                        special, pc.binary_join_element_wise('"', doubled, '"', ""), column
                    )
                fields.append(column)
            lines = pc.binary_join_element_wise(
                pc.binary_join_element_wise(*fields, ","), terminator, ""
            )
            _, offsets, values = lines.buffers()  # the lines lie back to back in one buffer
            where = memoryview(offsets).cast("i")  # int32, in the machine's order like Arrow's
            start, stop = where[lines.offset], where[lines.offset + len(lines)]
            text = values[start:stop].to_pybytes()
            found = raw.read(len(text))
            if found != text and not (found == text[: -len(end)] and not raw.read(1)):
                raise NotPlainError("quotes other than Python's csv writes them")
            yield batch


def plain_batches(
    path: str | os.PathLike[str], process: Any, *, counts: list[int] | None = None
) -> Iterator[PlainBatch]:
    """Read ``path`` in checked batches (see the module); ``counts`` receives the lines read.

    Raises:
        NotPlainError: the file is not a plain log, or breaks a rule; import it the ordinary way.
    """
    shown = os.fspath(path)
    fmt = format_of(shown)
    if fmt is None:
        raise NotPlainError("not a log suffix")
    try:
        if not Path(shown).is_file() or Path(shown).stat().st_size > max_input_bytes():
            raise NotPlainError("not a regular file within the input limit")
    except (OSError, StagegateError):
        raise NotPlainError("not readable") from None
    pa, pc = _libraries()
    checker = _Checker(process, fmt, pa, pc)
    try:
        reader, expected = _reader(shown, fmt, pa)
        rows = 0
        for batch in reader:
            if batch.num_rows:
                rows += batch.num_rows
                yield checker.check(batch)
    except NotPlainError:
        raise
    except (OSError, pa.ArrowException) as exc:  # a file Arrow reads otherwise, or not at all
        stop_if_interrupted(exc)  # Ctrl-C stops the import: it does not go the ordinary way
        raise NotPlainError(f"{type(exc).__name__}: {exc}") from None
    if expected is not None and rows != expected:
        raise NotPlainError("lines and rows differ")
    if rows == 0:
        raise NotPlainError("no events")
    if counts is not None:
        counts.append(rows if expected is None else expected)


class _Checker:
    """The rules, column-wise, with the last event of the previous batch carried over."""

    def __init__(self, process: Any, fmt: str, pa: Any, pc: Any) -> None:
        self.pa, self.pc, self.fmt = pa, pc, fmt
        ids = [stage.id for stage in process.stages]
        names = [*ids, process.name, process.version]
        if not all(_plain_text(name) for name in names):
            raise NotPlainError("the process has names JSON would escape")
        self.stages = pa.array(ids, pa.string())
        self.name, self.version = process.name, process.version
        self.kinds = pa.array(_KINDS, pa.string())
        # the last event of the batch before: oid, seq, at_us, stage, amount key, close_date
        self.carry: tuple[Any, ...] | None = None
        # the owner and attributes in force after it, for its deal
        self.owner = _UNSET
        self.attributes: dict[str, str] = {}
        self._last = _UNSET
        self.not_attributes = pa.array(_NOT_ATTRIBUTES, pa.string())

    def _all(self, mask: Any, why: str) -> None:
        if not self.pc.all(self.pc.fill_null(mask, False)).as_py():
            raise NotPlainError(why)

    def _fields_within_limit(self, batch: Any) -> None:
        """No field longer than the CSV reader's limit, in bytes (characters, for ASCII)."""
        pc = self.pc
        for column in batch.columns:
            longest = pc.max(pc.binary_length(column)).as_py()
            if longest is not None and longest > DEFAULT_MAX_FIELD_SIZE:
                raise NotPlainError("a field larger than the CSV field limit")

    def _text(self, batch: Any, name: str) -> Any:
        pa, pc = self.pa, self.pc
        column = batch.column(name)
        if pa.types.is_null(column.type):
            return pa.nulls(len(column), pa.string())
        if pa.types.is_large_string(column.type) or pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        if not pa.types.is_string(column.type):
            raise NotPlainError(f"column {name!r} is not text")
        if self.fmt != "jsonl":  # CSV and Parquet: an empty cell is no value
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        return column

    def _details(self, batch: Any) -> Any:
        """The details column: JSON text (CSV, Parquet), or ``{"value": text}`` structs."""
        if self.fmt != "jsonl":
            return self._text(batch, "details")
        column = batch.column("details")
        if self.pa.types.is_null(column.type):
            return self.pa.nulls(len(column), self.pa.struct([("value", self.pa.string())]))
        return column

    def _seq(self, batch: Any) -> Any:
        pa, pc = self.pa, self.pc
        column = batch.column("seq")
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            self._all(pc.match_substring_regex(column, r"^[0-9]{1,18}$"), "seq text")
            return column.cast(pa.int64())
        if not pa.types.is_integer(column.type):
            raise NotPlainError("seq is not whole numbers")
        return column.cast(pa.int64())

    def check(self, batch: Any) -> PlainBatch:  # noqa: PLR0915 - one pass, rule by rule
        """Check one batch; return it as stored columns and canonical contents."""
        pa, pc = self.pa, self.pc
        n = batch.num_rows
        if self.fmt == "csv":  # read_events refuses a larger field (field_too_large)
            self._fields_within_limit(batch)
        text = {name: self._text(batch, name) for name in _TEXT}
        text["details"] = self._details(batch)
        seq = self._seq(batch)
        oid, kind, stage, actor = text["opportunity_id"], text["kind"], text["stage"], text["actor"]
        from_stage, move, reason = text["from_stage"], text["move"], text["reason"]
        amount, day = text["amount"], text["close_date"]
        all_ = self._all
        all_(pc.is_null(text["gate"]), "gate values")
        if self.fmt == "jsonl":
            digest_column = batch.column("digest")
            has_digest = digest_column.null_count < n
        else:
            has_digest = False
        all_(pc.match_substring_regex(oid, _NAMED), "ids")
        all_(pc.match_substring_regex(actor, _NAMED), "actors")
        all_(pc.is_in(kind, value_set=self.kinds), "kinds")
        all_(pc.is_in(stage, value_set=self.stages), "stages")
        all_(pc.equal(text["process"], self.name), "process")
        all_(pc.equal(text["process_version"], self.version), "version")
        all_(pc.or_kleene(pc.is_null(reason), pc.match_substring_regex(reason, _PLAIN)), "reasons")
        all_(pc.or_kleene(pc.is_null(amount), pc.match_substring_regex(amount, _AMOUNT)), "amounts")
        all_(pc.or_kleene(pc.is_null(day), pc.match_substring_regex(day, _DAY)), "close dates")
        all_(pc.greater_equal(seq, 1), "seq")
        if day.null_count < n:
            pc.cast(pc.drop_null(day), pa.date32())  # raises on a day that does not exist
        at_us, at_text = self._instants(text["at"])
        # amounts compared as numbers: trailing fraction zeros dropped ("5.50" is "5.5")
        key = pc.if_else(
            pc.match_substring(amount, "."),
            pc.replace_substring_regex(amount, r"\.?0+$", ""),
            amount,
        )
        # the event before each one (the last of the previous batch before the first)
        carry = self.carry
        if carry is None:
            carry = (None, None, None, None, None, None)
        before = [
            pa.concat_arrays([pa.array([value], array.type), array.slice(0, n - 1)])
            for value, array in zip(carry, (oid, seq, at_us, stage, key, day), strict=True)
        ]
        prev_oid, prev_seq, prev_at, prev_stage, prev_key, prev_day = before
        same = pc.fill_null(pc.equal(oid, prev_oid), False)
        start = pc.invert(same)
        opened = pc.equal(kind, "opened")
        changed = pc.equal(kind, "stage_changed")
        rescheduled = pc.equal(kind, "rescheduled")
        amount_changed = pc.equal(kind, "amount_changed")
        all_(pc.equal(opened, start), "a deal's first event opens it, and only that one")
        expected_seq = pc.if_else(start, pa.scalar(1, pa.int64()), pc.add(prev_seq, 1))
        all_(pc.equal(seq, expected_seq), "seq order")
        all_(pc.or_kleene(start, pc.greater_equal(at_us, prev_at)), "time order")
        no_move = pc.and_kleene(pc.is_null(from_stage), pc.is_null(move))
        all_(pc.or_kleene(changed, no_move), "move fields")
        all_(
            pc.or_kleene(
                pc.invert(changed),
                pc.and_kleene(
                    pc.and_kleene(pc.equal(move, "imported"), pc.equal(from_stage, prev_stage)),
                    pc.not_equal(stage, prev_stage),
                ),
            ),
            "stage changes",
        )
        stays = pc.or_kleene(pc.or_kleene(opened, changed), pc.equal(stage, prev_stage))
        all_(stays, "stage of events that do not move")
        same_key = _same(pc, key, prev_key)
        same_day = _same(pc, day, prev_day)
        details = self._segments(text, start, pc.and_kleene(same_key, same_day))
        all_(
            pc.or_kleene(
                pc.invert(rescheduled),
                pc.and_kleene(pc.and_kleene(pc.invert(same_day), pc.is_valid(day)), same_key),
            ),
            "reschedules",
        )
        all_(
            pc.or_kleene(
                pc.invert(amount_changed),
                pc.and_kleene(pc.and_kleene(pc.invert(same_key), pc.is_valid(amount)), same_day),
            ),
            "amount changes",
        )
        last = n - 1
        self.carry = tuple(array[last].as_py() for array in (oid, seq, at_us, stage, key, day))
        contents = self._contents(text, seq, at_text, details)
        columns = self._stored(text, seq, at_us, details)
        starts = start.to_pylist()
        digests = digest_column.to_pylist() if has_digest else None
        return PlainBatch(n, columns, contents, starts, digests, sum(starts))

    def _segments(self, text: dict[str, Any], start: Any, unchanged: Any) -> Any:
        """Check the owner and attribute events; their details as stored (compact JSON).

        A ``reassigned`` event names a new owner, an ``attribute_set`` event a new value of
        an attribute: each differs from the value in force, carried over from the batch
        before while its deal runs on. Both leave the amount and the close date as they are.
        """
        pa, pc, all_ = self.pa, self.pc, self._all
        kind, subject, raw = text["kind"], text["subject"], text["details"]
        reassigned = pc.equal(kind, "reassigned")
        attribute = pc.equal(kind, "attribute_set")
        segment = pc.or_kleene(reassigned, attribute)
        all_(pc.equal(pc.is_valid(subject), segment), "subjects")
        all_(pc.equal(pc.is_valid(raw), attribute), "details")
        none = pa.scalar(None, pa.string())
        continues = not pc.any(start).as_py()  # one deal runs on: what it had stays in force
        if not pc.any(segment).as_py():
            if not continues:
                self.owner, self.attributes = _UNSET, {}
            return pa.nulls(len(kind), pa.string())
        all_(pc.or_kleene(pc.invert(segment), unchanged), "segment events change nothing else")
        all_(
            pc.or_kleene(pc.invert(reassigned), pc.match_substring_regex(subject, _VALUE)), "owners"
        )
        named = pc.and_kleene(
            pc.match_substring_regex(subject, _ATTRIBUTE),
            pc.invert(pc.is_in(subject, value_set=self.not_attributes)),
        )
        all_(pc.or_kleene(pc.invert(attribute), named), "attribute names")
        if self.fmt == "jsonl":  # {"value": text}: the text must be a plain value
            given = pc.if_else(pc.is_valid(raw), pc.struct_field(raw, [0]), none)
            value = pc.if_else(pc.match_substring_regex(given, _VALUE), given, none)
        else:
            parts = pc.extract_regex(raw, _DETAILS)  # a null struct's field is not null
            value = pc.if_else(pc.is_valid(parts), parts.field("v"), none)
        all_(pc.or_kleene(pc.invert(attribute), pc.is_valid(value)), "attribute details")
        value = pc.if_else(attribute, value, none)
        owners = self._changes(reassigned, subject, start, self.owner)
        all_(pc.or_kleene(pc.invert(reassigned), owners), "owners change")
        self.owner = self._last
        names = pc.unique(pc.drop_null(pc.if_else(attribute, subject, none))).to_pylist()
        if len(names) > MAX_ATTRIBUTES:
            raise NotPlainError("too many attribute names")
        kept = dict(self.attributes) if continues else {}
        for name in names:
            sets = pc.and_kleene(attribute, pc.equal(subject, name))
            changes = self._changes(sets, value, start, self.attributes.get(name, _UNSET))
            all_(pc.or_kleene(pc.invert(sets), changes), "attributes change")
            kept[name] = self._last
        self.attributes = {k: v for k, v in kept.items() if v != _UNSET}
        return pc.if_else(
            attribute, pc.binary_join_element_wise('{"value":"', value, '"}', ""), none
        )

    def _changes(self, sets: Any, values: Any, start: Any, carried: str) -> Any:
        """Whether each event that ``sets`` the value gives it a new one (``_last``: in force)."""
        pa, pc = self.pa, self.pc
        none = pa.scalar(None, pa.string())
        marked = pc.if_else(sets, values, pc.if_else(start, pa.scalar(_UNSET), none))
        filled = pc.fill_null_forward(pa.concat_arrays([pa.array([carried], pa.string()), marked]))
        n = len(marked)
        self._last = filled[n].as_py()
        return pc.not_equal(values, filled.slice(0, n))

    def _instants(self, at: Any) -> tuple[Any, Any]:
        """Epoch microseconds (UTC) and ``datetime.isoformat()`` text of the instants."""
        pa, pc = self.pa, self.pc
        parts = pc.extract_regex(at, _INSTANT)
        self._all(pc.is_valid(parts), "instants")
        days = pc.cast(pc.cast(pc.cast(parts.field("day"), pa.date32()), pa.int32()), pa.int64())
        hour = pc.cast(parts.field("h"), pa.int64())
        minute = pc.cast(parts.field("m"), pa.int64())
        second = pc.cast(parts.field("s"), pa.int64())
        self._all(
            pc.and_kleene(
                pc.and_kleene(pc.less_equal(hour, 23), pc.less_equal(minute, 59)),
                pc.less_equal(second, 59),
            ),
            "clock times",
        )
        micro = pc.cast(pc.utf8_rpad(parts.field("f"), width=6, padding="0"), pa.int64())
        zone = parts.field("z")
        utc = pc.equal(zone, "Z")
        zone_h = pc.cast(pc.if_else(utc, "00", pc.utf8_slice_codeunits(zone, 1, 3)), pa.int64())
        zone_m = pc.cast(pc.if_else(utc, "00", pc.utf8_slice_codeunits(zone, 4, 6)), pa.int64())
        self._all(pc.and_kleene(pc.less_equal(zone_h, 23), pc.less_equal(zone_m, 59)), "offsets")
        offset = pc.multiply(pc.add(pc.multiply(zone_h, 60), zone_m), 60 * _US)
        offset = pc.if_else(pc.starts_with(zone, "-"), pc.negate(offset), offset)
        local = pc.add(
            pc.multiply(days, 86_400 * _US),
            pc.add(
                pc.multiply(
                    pc.add(pc.multiply(pc.add(pc.multiply(hour, 60), minute), 60), second), _US
                ),
                micro,
            ),
        )
        at_us = pc.subtract(local, offset)
        self._all(
            pc.and_kleene(pc.greater_equal(at_us, 0), pc.less_equal(at_us, _LAST_US)), "years"
        )
        fraction_text = parts.field("f")
        as_written = pc.and_kleene(
            pc.equal(zone, "+00:00"),
            pc.or_kleene(
                pc.equal(fraction_text, ""),
                pc.and_kleene(
                    pc.equal(pc.utf8_length(fraction_text), 6),
                    pc.not_equal(fraction_text, "000000"),
                ),
            ),
        )
        if pc.all(as_written).as_py():  # what isoformat() writes in UTC: the text as it is
            return at_us, at
        seconds = pc.divide(at_us, _US)
        fraction = pc.subtract(at_us, pc.multiply(seconds, _US))
        whole = pc.strftime(
            pc.cast(pc.cast(seconds, pa.timestamp("s")), pa.timestamp("s")),
            format="%Y-%m-%dT%H:%M:%S",
        )
        shown = pc.if_else(
            pc.equal(fraction, 0),
            "",
            pc.binary_join_element_wise(
                ".", pc.utf8_lpad(pc.cast(fraction, pa.string()), width=6, padding="0"), ""
            ),
        )
        return at_us, pc.binary_join_element_wise(whole, shown, "+00:00", "")

    def _contents(self, text: dict[str, Any], seq: Any, at_text: Any, details: Any) -> list[bytes]:
        """The canonical content of each event (sorted keys, compact JSON, UTF-8)."""
        pa, pc = self.pa, self.pc

        def quoted(column: Any) -> Any:
            return pc.fill_null(pc.binary_join_element_wise('"', column, '"', ""), "null")

        pieces = [
            '{"actor":',
            quoted(text["actor"]),
            ',"amount":',
            quoted(text["amount"]),
            ',"at":"',
            at_text,
            '","close_date":',
            quoted(text["close_date"]),
            ',"details":',
            pc.fill_null(details, "null"),
            ',"from_stage":',
            quoted(text["from_stage"]),
            ',"gate":null,"kind":"',
            text["kind"],
            '","move":',
            quoted(text["move"]),
            ',"opportunity_id":"',
            text["opportunity_id"],
            '","process":"',
            text["process"],
            '","process_version":"',
            text["process_version"],
            '","reason":',
            quoted(text["reason"]),
            ',"seq":',
            pc.cast(seq, pa.string()),
            ',"stage":"',
            text["stage"],
            '","subject":',
            quoted(text["subject"]),
            "}",
        ]
        joined = pc.binary_join_element_wise(*pieces, "")
        result: list[bytes] = joined.cast(pa.binary()).to_pylist()
        return result

    def _stored(self, text: dict[str, Any], seq: Any, at_us: Any, details: Any) -> tuple[Any, ...]:
        """The ``events`` columns (no digest) as Arrow arrays (text as ``string``)."""
        pa = self.pa
        n = len(seq)

        def whole(column: Any, type_: Any) -> Any:
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            return column.cast(type_)

        string, int64 = pa.string(), pa.int64()
        return (
            whole(text["opportunity_id"], string),
            whole(seq, int64),
            whole(text["kind"], string),
            whole(at_us, int64),
            whole(text["stage"], string),
            whole(text["from_stage"], string),
            whole(text["move"], string),
            whole(text["amount"], string),
            whole(text["close_date"], string),
            whole(text["actor"], string),
            whole(text["reason"], string),
            pa.repeat(pa.scalar(self.name, string), n),
            pa.repeat(pa.scalar(self.version, string), n),
            whole(text["subject"], string),
            whole(details, string),
            pa.nulls(n, string),
        )


def _same(pc: Any, left: Any, right: Any) -> Any:
    """Element-wise equality in which two missing values are equal."""
    both = pc.and_kleene(pc.is_null(left), pc.is_null(right))
    return pc.or_kleene(pc.fill_null(pc.equal(left, right), False), both)


def _plain_text(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
    )
