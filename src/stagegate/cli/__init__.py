"""The ``stagegate`` command line: a thin shell over the library.

Exit codes scripts can rely on:

* ``0``: success (the definition is valid, the move is allowed, the report was written).
* ``1``: a negative answer (``check``: the move is blocked; ``validate``: warnings with
  ``--strict``).
* ``2``: bad input: an invalid definition, an unreadable or malformed file, a bad option.

Every command that prints a result accepts ``--json`` for machines.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it)."""
    try:
        import click  # noqa: PLC0415 - the cli extra is optional

        from stagegate.cli import (  # noqa: F401, PLC0415 - register commands
            _import,
            _report,
            _store,
            _verify,
        )
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
    return result if isinstance(result, int) else EXIT_OK


def run() -> None:  # pragma: no cover - the console script entry point
    """Entry point of the ``stagegate`` console script."""
    sys.exit(main())
