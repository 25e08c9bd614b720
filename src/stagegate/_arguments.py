"""Checks of the arguments commands take: each returns the value or raises a clear error.

>>> amount("1200.50")
Decimal('1200.50')
>>> name("  ", "role")
Traceback (most recent call last):
...
stagegate.errors.InvalidCommandError: role must be non-empty text, got '  '
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from stagegate.errors import InvalidCommandError, cut

__all__ = ["actor", "amount", "close_date", "mapping", "name", "reason", "text_problem"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def text_problem(value: str, *, single_line: bool) -> str | None:
    r"""Why ``value`` cannot be stored as text, or ``None`` when it can.

    Lone surrogates (``"\ud800"``) cannot be written as UTF-8; names and ids (``single_line``)
    also refuse control characters such as a trailing newline.

    >>> text_problem("contract_sent\n", single_line=True)
    'holds a control character (such as a newline or tab)'
    >>> text_problem("two\nlines", single_line=False) is None
    True
    """
    if value.isascii() and value.isprintable():  # the common case, decided in C
        return None
    if not value.isascii() and _SURROGATE.search(value):
        return "holds a lone surrogate, which UTF-8 cannot encode"
    if single_line and _CONTROL.search(value):
        return "holds a control character (such as a newline or tab)"
    return None


def _checked(value: str, what: str, *, single_line: bool) -> str:
    problem = text_problem(value, single_line=single_line)
    if problem is not None:
        raise InvalidCommandError(f"{what} {cut(repr(value))} {problem}; pass plain text")
    return value


def actor(value: Any) -> str:
    """Who or what acted: non-empty text."""
    if type(value) is str and value.isascii() and value.isprintable() and value.strip():
        return value  # the common case first: every command checks its actor
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommandError(
            f"actor must be non-empty text naming who or what acted (e.g. 'ana' or "
            f"'system:hubspot'), got {cut(repr(value))}"
        )
    return _checked(value, "actor", single_line=True)


def reason(value: Any, *, required: bool, what: str) -> str | None:
    """A reason: text, or ``None`` where none is ``required``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidCommandError(f"{what} needs a reason: pass reason='...'")
        return None
    if not isinstance(value, str):
        raise InvalidCommandError(f"reason must be text, got {cut(repr(value))}")
    return _checked(value, "reason", single_line=False)


def amount(value: Any) -> Decimal:
    """A deal amount: a finite number >= 0, as a ``Decimal``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InvalidCommandError(f"amount must be a number, got {value!r}")
    if isinstance(value, str) and len(value) > MAX_AMOUNT_TEXT:
        raise InvalidCommandError(f"amount text is longer than {MAX_AMOUNT_TEXT} characters")
    try:
        amount = (
            value
            if isinstance(value, Decimal)
            else Decimal(value if isinstance(value, int) else str(value))
        )
    except InvalidOperation:
        raise InvalidCommandError(f"amount {cut(repr(value))} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidCommandError(f"amount must be a finite number >= 0, got {cut(repr(value))}")
    if len(str(amount)) > MAX_AMOUNT_TEXT:
        raise InvalidCommandError(
            f"amount {cut(str(amount), 40)} has more than {MAX_AMOUNT_TEXT} characters as text; "
            "pass an amount of ordinary size"
        )
    return amount


MAX_AMOUNT_TEXT = 100
"""Longest amount accepted, as decimal text (event records are held to the same limit)."""


def close_date(value: Any) -> date:
    """An expected close: a calendar date, not a datetime."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidCommandError(
            f"close_date must be a calendar date (datetime.date), got {value!r}"
        )
    return value


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    """Details or evidence: a mapping of names to values."""
    if not isinstance(value, Mapping):
        raise InvalidCommandError(
            f"{what} must be a mapping of names to JSON values (e.g. {{'document': 'url'}}), "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def name(value: Any, what: str) -> str:
    """A name (of a deliverable, activity, role or field): non-empty text."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommandError(f"{what} must be non-empty text, got {cut(repr(value))}")
    return _checked(value, what, single_line=True)
