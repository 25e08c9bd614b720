"""Teach IPython to draw plain lists of stagegate records as tables.

Results with several parts, processes and gate reports draw themselves (``_repr_html_``);
a plain list of records (what most analytics functions return on the pure-Python path) is a
Python ``list``, which cannot: :func:`register` adds an HTML formatter for lists that draws
them as tables when every item is a stagegate record, and leaves every other list alone.
"""

from __future__ import annotations

from typing import Any

import attrs

from stagegate.display._html import html

__all__ = ["list_html", "load_ipython_extension", "register"]


def list_html(value: object) -> str | None:
    """The table of a non-empty list of stagegate records, or ``None`` for any other list.

    >>> from stagegate.analytics import Velocity
    >>> "<table>" in list_html([Velocity("overall", 3, 0.5, 10.0, 20.0, 0.25)])
    True
    >>> list_html([1, 2]) is None, list_html([]) is None
    (True, True)
    """
    if not isinstance(value, (list, tuple)) or not value:
        return None
    kinds = {type(item) for item in value}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if not (attrs.has(kind) and kind.__module__.startswith("stagegate.")):
        return None
    return html(list(value))


def register(shell: Any = None) -> bool:
    """Register :func:`list_html` with IPython's HTML formatter; return whether it was done.

    Args:
        shell: the IPython shell (default: the running one, if any).

    Returns:
        ``False`` outside IPython (nothing to do), ``True`` once registered.
    """
    if shell is None:
        try:
            from IPython import get_ipython  # noqa: PLC0415 - only inside IPython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(list, list_html)
    formatter.for_type(tuple, list_html)
    return True


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext stagegate.display``: lists of stagegate records display as tables."""
    register(shell)
