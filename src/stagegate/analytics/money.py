"""Any analysis in one currency: convert a pipeline's amounts before the figures add them up.

The functions that add amounts (`open_pipeline`, `waterfall`, `forecast`, the report) refuse
input in several currencies with :class:`~stagegate.currency.MixedCurrencyError`, never a
silent sum. :func:`in_currency` turns the input into the stage-history table with every amount
converted into the rate table's reporting currency (at the rates of one day), so every
function gives its figures in that currency; :func:`require_one_currency` is the same check
for your own sums.

>>> from datetime import date, datetime, timezone
>>> from stagegate import analytics as an
>>> from stagegate.currency import RateTable
>>> t = datetime(2026, 3, 2, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t, "stage": "lead", "amount": 100, "currency": "EUR"},
...     {"opportunity_id": "b", "at": t, "stage": "lead", "amount": 50, "currency": "USD"},
... ]
>>> an.currencies_of(rows)
('EUR', 'USD')
>>> an.require_one_currency(rows)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stagegate.currency.MixedCurrencyError: cannot add amounts in EUR, USD without exchange rates; ...
>>> rates = RateTable.of([("2026-01-01", "EUR", "1.10")], reporting="USD")
>>> usd = an.in_currency(rows, rates, on=date(2026, 3, 16))
>>> [(r["amount"], r["currency"]) for r in usd]
[(Decimal('110.00'), 'USD'), (Decimal('50.00'), 'USD')]
>>> sum(s.amount for s in an.open_pipeline(usd, kinds, at=t))
160.0
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, tzinfo
from typing import Any

from stagegate.analytics._segments import decimal_of, read_inputs
from stagegate.analytics._table import OPTIONAL, REQUIRED
from stagegate.currency import (
    CURRENCY,
    UNKNOWN,
    CurrencyError,
    MixedCurrencyError,
    RateTable,
    currency_code,
)
from stagegate.events import Event
from stagegate.segments import names_of, values_at

__all__ = ["currencies_of", "in_currency", "require_one_currency"]

_CANONICAL = (*REQUIRED, *OPTIONAL)


def _table(data: Any, assume_zone: str | tzinfo | None) -> list[dict[str, Any]]:
    """The input as stage-history rows (events: one row each, with their segment columns)."""
    inputs = read_inputs(data, (), assume_zone=assume_zone)
    events = [item for item in inputs.data if isinstance(item, Event)]
    rows = [dict(item) for item in inputs.data if not isinstance(item, Event)]
    if events:
        names = names_of(events)
        for event, values in zip(events, values_at(events, names), strict=True):
            rows.append(
                {
                    "opportunity_id": event.opportunity_id,
                    "at": event.at,
                    "stage": event.stage,
                    "seq": event.seq,
                    "amount": event.amount,
                    "close_date": event.close_date,
                    "reason": event.reason,
                    **values,
                }
            )
    return rows


def currencies_of(
    data: Any, *, default_currency: str | None = None, assume_zone: str | tzinfo | None = None
) -> tuple[str, ...]:
    """The currencies of the amounts in ``data`` (``unknown`` for rows without one), sorted.

    Rows without an amount are left out.

    Raises:
        CurrencyError: a currency is not a three-letter code.
        AnalyticsError: the data is unusable.
    """
    fallback = None if default_currency is None else currency_code(default_currency)
    found = set()
    for row in _table(data, assume_zone):
        if decimal_of(_number(row.get("amount"))) is None:
            continue
        code = row.get(CURRENCY) or fallback
        found.add(UNKNOWN if code is None else currency_code(code))
    return tuple(sorted(found))


def require_one_currency(
    data: Any, *, default_currency: str | None = None, assume_zone: str | tzinfo | None = None
) -> str | None:
    """The one currency of ``data``'s amounts (``None``: none stated, or no amounts).

    Raises:
        MixedCurrencyError: the amounts are in several currencies (an unknown one counts).
    """
    found = currencies_of(data, default_currency=default_currency, assume_zone=assume_zone)
    if len(found) > 1:
        raise MixedCurrencyError(found)
    return None if not found or found[0] == UNKNOWN else found[0]


def _number(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):  # noqa: PLR0124 - NaN
        return None
    return value


def in_currency(
    data: Any,
    rates: RateTable,
    *,
    on: date,
    default_currency: str | None = None,
    columns: Sequence[str] | None = None,
    assume_zone: str | tzinfo | None = None,
) -> list[dict[str, Any]]:
    """The stage-history table of ``data`` with every amount in ``rates.reporting``.

    Each amount is converted at the rate of its currency on day ``on`` (one day for the whole
    table, so a deal's amount changes only when the deal's amount does) and rounded to the
    table's places, half to even; the ``currency`` column becomes the reporting currency.
    Events become one row each, with their segment columns; other columns are kept.

    Args:
        data: events, opportunities, row mappings or a frame.
        rates: the rate table.
        on: the day whose rates are used (the ``as_of`` of the analysis, usually).
        default_currency: the currency of rows without one.
        columns: keep only these columns beside the canonical ones (default: all).
        assume_zone: the zone of naive instants in ``data``, if any.

    Raises:
        MissingRateError: a currency has no rate on ``on``.
        CurrencyError: a row has an amount but no currency and there is no default.
    """
    fallback = None if default_currency is None else currency_code(default_currency)
    result = []
    for original in _table(data, assume_zone):
        amount = decimal_of(_number(original.get("amount")))
        code = original.get(CURRENCY) or fallback
        if amount is not None:
            if code is None:
                raise CurrencyError(
                    f"deal {original['opportunity_id']!r} has an amount but no currency; set its "
                    "'currency' attribute, or pass default_currency="
                )
            amount = rates.convert(amount, code, on)
        row = (
            original
            if columns is None
            else {k: v for k, v in original.items() if k in _CANONICAL or k in columns}
        )
        row["amount"] = amount
        row[CURRENCY] = rates.reporting
        result.append(row)
    return result
