"""Number formatting for the report: one place decides how a value reads.

Every formatter takes ``None`` (or a non-finite float) for "no value" and returns an em dash,
so that a missing number never crashes a page nor prints ``nan``.

>>> count(1234567), percent(0.4237), percent(0.4237, digits=1), days(12.345)
('1,234,567', '42%', '42.4%', '12.3 d')
>>> amount(1234567.0), compact(1234567.0), compact(950.0), ratio(2.456) == "2.46" + chr(0xD7)
('1,234,567', '1.23M', '950', True)
>>> compact(60000.0), compact(-1500.0), compact(2.5e9)
('60k', '-1.5k', '2.5B')
>>> count(None), percent(float("nan")), days(None)
('—', '—', '—')
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["DASH", "amount", "compact", "count", "days", "finite", "gap", "percent", "ratio"]

DASH = "—"


def finite(value: object) -> float | None:
    """Return ``value`` as a finite float, or ``None`` when it is missing, NaN or infinite.

    >>> finite(3), finite(Decimal("2.5")), finite(float("inf")), finite(None), finite(True)
    (3.0, 2.5, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        result = float(value)
    except (OverflowError, ValueError):  # pragma: no cover - huge ints or Decimal('sNaN')
        return None
    return result if math.isfinite(result) else None


def count(value: object) -> str:
    """Format a count with thousands separators (``1,234``)."""
    number = finite(value)
    return DASH if number is None else f"{round(number):,}"


def amount(value: object) -> str:
    """Format a money amount in full, without decimals (``1,234,567``)."""
    number = finite(value)
    return DASH if number is None else f"{number:,.0f}"


def compact(value: object) -> str:
    """Format a money amount in at most about four significant characters (``1.23M``)."""
    number = finite(value)
    if number is None:
        return DASH
    size = abs(number)
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= threshold:
            scaled = number / threshold
            digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0  # noqa: PLR2004
            text = f"{scaled:.{digits}f}"
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{number:.0f}"


def percent(value: object, *, digits: int = 0) -> str:
    """Format a fraction in ``[0, 1]`` as a percentage (``0.42`` reads ``42%``)."""
    number = finite(value)
    return DASH if number is None else f"{number * 100:.{digits}f}%"


def days(value: object, *, digits: int = 1) -> str:
    """Format a duration in days (``12.3 d``)."""
    number = finite(value)
    return DASH if number is None else f"{number:,.{digits}f} d"


def ratio(value: object) -> str:
    """Format a ratio as a multiplier (``2.46x`` with a multiplication sign)."""
    number = finite(value)
    return DASH if number is None else f"{number:.2f}\u00d7"


def gap(value: float) -> str:
    """Format a signed difference in days to one decimal; one that rounds to zero reads ``+0.0``.

    >>> gap(2.345), gap(-0.04), gap(-1e-15)
    ('+2.3', '+0.0', '+0.0')
    """
    return f"{round(value, 1) + 0.0:+.1f}"
