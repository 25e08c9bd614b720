r"""Reading a text file as a stream of lines, in bounded memory, under the importers' rules.

:func:`text_lines` is :func:`~stagegate.io._read.read_file` then decoding, for files too large to
hold: the same refusals (not a regular file, compressed other than with gzip, larger than the
input limit once decompressed, undecodable bytes, NUL characters) with the same finding codes,
raised when the reader gets there. Memory holds one chunk of the file and one line.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
>>> _ = path.write_bytes(b"\xef\xbb\xbfa,b\r\n1,2\r\n")
>>> with text_lines(path, "canonical") as lines:
...     list(lines)
['a,b\r\n', '1,2\r\n']
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from typing import IO, cast

from stagegate.errors import InvalidCommandError
from stagegate.io._read import (
    _GZIP_MAGIC,
    _fail,
    _not_compressed,
    _regular,
    _too_large,
    max_input_bytes,
)

__all__ = ["regular_file", "text_lines"]

_CHUNK = 1 << 20


class _Counted(io.RawIOBase):
    """The bytes of a (decompressed) file, counted against the input limit as they are read."""

    def __init__(self, inner: IO[bytes], shown: str, source: str, limit: int) -> None:
        self.inner, self.shown, self.source, self.limit = inner, shown, source, limit
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            chunk = self.inner.read(min(len(buffer), _CHUNK))
        except (OSError, EOFError, zlib.error) as exc:
            raise _fail(
                self.source,
                "unreadable_file",
                f"{self.shown!r} looks gzip-compressed but cannot be decompressed ({exc}); check "
                "the download, or decompress it yourself"
                if isinstance(self.inner, gzip.GzipFile)
                else f"cannot read {self.shown!r}: {exc}",
            ) from None
        self.read_so_far += len(chunk)
        if self.read_so_far > self.limit:
            how = "once decompressed " if isinstance(self.inner, gzip.GzipFile) else ""
            raise _too_large(self.shown, self.source, self.limit, how)
        buffer[: len(chunk)] = chunk
        return len(chunk)


@contextlib.contextmanager
def text_lines(
    path: str | os.PathLike[str],
    source: str,
    *,
    encoding: str | None = None,
    newline: str | None = "",
) -> Iterator[Iterator[str]]:
    r"""The lines of a text file (gzip allowed), decoded as they are read.

    Args:
        path: the file.
        source: the importer's name, used in findings.
        encoding: the text encoding; default UTF-8 with an optional byte order mark.
        newline: as for :func:`open`: ``""`` keeps line ends as written (what CSV needs),
            ``None`` reads ``\r\n`` and ``\r`` as ``\n``.

    Raises:
        ImportProblemError: the file cannot be opened or read, or breaks a rule (raised when
            the lines that break it are read).
        InvalidCommandError: the encoding is unknown.
    """
    name = encoding or "utf-8-sig"
    try:
        codecs.lookup(name)
    except LookupError:
        raise InvalidCommandError(
            f"unknown encoding {name!r}; use a Python codec name such as 'utf-8' or 'cp1252'"
        ) from None
    shown = os.fspath(path)
    raw = _open(shown, source)
    with raw:
        head = raw.read(8)
        raw.seek(0)
        inner: IO[bytes] = raw
        if head.startswith(_GZIP_MAGIC):
            unzipped = gzip.GzipFile(fileobj=raw)
            inner = cast("IO[bytes]", unzipped)
            try:
                head = unzipped.peek(8)[:8]
            except (OSError, EOFError, zlib.error):
                head = b""  # reported when the lines are read
        _not_compressed(head, shown, source)
        counted = _Counted(inner, shown, source, max_input_bytes())
        text = io.TextIOWrapper(
            io.BufferedReader(counted, _CHUNK), encoding=name, errors="strict", newline=newline
        )
        yield _decoded(text, shown, source, name)


def regular_file(path: str | os.PathLike[str], source: str) -> int:
    """The size of a regular file within the input limit, in bytes.

    Raises:
        ImportProblemError: the path cannot be opened, is not a regular file, or is larger
            than the input limit.
    """
    shown = os.fspath(path)
    size = _regular(shown, source).st_size
    if size > max_input_bytes():
        raise _too_large(shown, source, max_input_bytes())
    return size


def _open(shown: str, source: str) -> IO[bytes]:
    _regular(shown, source)
    try:
        return open(shown, "rb")  # noqa: PTH123 - the caller closes it
    except OSError as exc:
        raise _fail(
            source, "unreadable_file", f"cannot open {shown!r}: {exc.strerror or exc}"
        ) from None


def _decoded(text: IO[str], shown: str, source: str, name: str) -> Iterator[str]:
    number = 0
    try:
        for number, line in enumerate(text, start=1):
            if "\x00" in line:
                raise _fail(
                    source,
                    "bad_encoding",
                    f"the file contains NUL characters (line {number}): it is probably UTF-16 "
                    "or binary; pass encoding='utf-16' or export as UTF-8 CSV",
                    [number],
                )
            yield line
    except UnicodeDecodeError:
        offset, at, bad = _undecodable(shown, name)
        raise _fail(
            source,
            "bad_encoding",
            f"the file is not valid {name}: undecodable bytes {bad} at byte offset {offset} "
            f"(line {at}); save the export as UTF-8, or pass its encoding, e.g. "
            "encoding='cp1252' or encoding='utf-16'",
            [at],
        ) from None
    if not number:
        raise _fail(
            source,
            "empty_file",
            f"{shown!r} is empty (no header, no rows); export again with a header line",
        )


def _undecodable(shown: str, name: str) -> tuple[int, int, str]:
    """Where the file stops decoding: byte offset, line and the first bytes there.

    Read again from the start (only once decoding has failed), chunk by chunk.
    """
    decoder = codecs.getincrementaldecoder(name)(errors="strict")
    offset = lines = 0
    with open(shown, "rb") as raw:  # noqa: PTH123 - a str path
        inner: IO[bytes] = raw
        if raw.read(2) == _GZIP_MAGIC:
            inner = cast("IO[bytes]", gzip.GzipFile(fileobj=raw))
        raw.seek(0)
        while chunk := inner.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # the decoder may hold up to a few bytes of the chunk before
                start = max(exc.start - (len(exc.object) - len(chunk)), 0)
                lines += chunk.count(b"\n", 0, start)
                return offset + start, lines + 1, chunk[start : start + 4].hex(" ")
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return offset, lines + 1, ""
