"""The ``stagegate`` command line: a thin shell over the library.

Exit codes scripts can rely on:

* ``0``: success (the definition is valid, the move is allowed, the report was written).
* ``1``: a negative answer (``check``: a well-formed request the process blocks; ``validate``:
  warnings with ``--strict``).
* ``2``: bad input: an invalid definition, an unreadable or malformed file, a bad option, a
  broken event log, an unknown stage, an instant before the log's last event, an empty actor.
* ``3``: an unexpected internal error (a bug): one line on standard error, never a traceback.

Every command that prints a result accepts ``--json`` for machines.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["OutputError", "main"]

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

COMMAND_MODULES = {
    "backup": "stagegate.cli._store",
    "diff": "stagegate.cli._evolve",
    "evidence": "stagegate.cli._evidence",
    "import": "stagegate.cli._import",
    "migrate": "stagegate.cli._evolve",
    "report": "stagegate.cli._report",
    "review": "stagegate.cli._review",
    "simulate": "stagegate.cli._report",
    "verify": "stagegate.cli._verify",
}
"""Commands defined outside ``_app``, imported only when named (``check`` starts fast)."""


def internal_error_line(exc: BaseException) -> str:
    """The one line printed for an unexpected internal error."""
    text = " ".join(str(exc).split())[:300]
    return (
        f"stagegate: internal error ({type(exc).__name__}: {text}); this is a bug, please "
        "report it with the command that caused it\n"
    )


class OutputError(Exception):
    """Standard output refused the command's output: a broken pipe, a full disk, an I/O error.

    Not a :class:`~stagegate.errors.StagegateError` on purpose: no command catches it as a
    refusal of its input; :func:`main` reports it and exits with the bad-input code.
    """


class _GuardedOutput:
    """Standard output as the commands see it: a write it refuses raises :class:`OutputError`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def output_error_line(reason: str) -> str:
    """The one line printed when standard output cannot take the command's output."""
    return (
        f"stagegate: cannot write the output to standard output ({reason}); it is incomplete: "
        "send it to a file or to a program that reads all of it\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it)."""
    if sys.stdout is None:  # closed (>&-): refuse before any command changes anything
        sys.stderr.write(
            "stagegate: standard output is closed; nothing was done: send the output to a "
            "file or a pipe\n"
        )
        return EXIT_BAD_INPUT
    stdout, sys.stdout = sys.stdout, _GuardedOutput(sys.stdout)
    try:
        return _main(argv)
    except OutputError as exc:
        sys.stderr.write(output_error_line(str(exc)))
        return EXIT_BAD_INPUT
    finally:
        sys.stdout = stdout


def _main(argv: list[str] | None) -> int:
    """:func:`main` with standard output guarded."""
    try:
        import click  # noqa: PLC0415 - the cli extra is optional

        from stagegate.cli._app import app  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        sys.stderr.write(
            f"stagegate's command line needs its extra ({exc.name} is missing): "
            "pip install 'stagegate[cli]'\n"
        )
        return EXIT_BAD_INPUT
    try:
        result = app(args=argv, prog_name="stagegate", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except click.exceptions.Abort:  # pragma: no cover - Ctrl-C
        sys.stderr.write("aborted\n")
        return EXIT_BAD_INPUT
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug gets its own code and one line
        sys.stderr.write(internal_error_line(exc))
        return EXIT_INTERNAL
    sys.stdout.flush()  # a full disk or a closed pipe is told now, not at exit
    return result if isinstance(result, int) else EXIT_OK


FRAME_ALLOCATOR = "muzzy_decay_ms:0"
"""What the command asks of Polars' allocator (jemalloc) for its own process.

Polars keeps freed pages "muzzy" (released lazily: still counted as resident until the
system runs short) for ever; the command returns them at once, which lowers the resident
peak of ``stagegate report`` at 1,000,000 deals by about 190 MB at no cost in time. Polars
reads ``_RJEM_MALLOC_CONF`` when it is first imported and adds it to its own settings.
"""


def tune_process() -> None:
    """Settings of the process the command runs in, made before any frame library is loaded.

    Only the console script calls it (a program that runs :func:`main` keeps its own
    process as it is); a ``_RJEM_MALLOC_CONF`` already set is left alone.
    """
    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", FRAME_ALLOCATOR)


def run() -> None:  # pragma: no cover - the console script entry point
    """Entry point of the ``stagegate`` console script."""
    tune_process()
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:  # told already: what is left in the buffer goes nowhere, not to a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
