"""Currencies: amounts keep their currency, and a dated rate table turns them into one.

**Where a deal's currency lives.** A deal's amounts are in the currency named by its
``currency`` segment attribute (``Opportunity.set_attribute("currency", "EUR", ...)``, or
``Opportunity.open(..., attributes={"currency": "EUR"})``; a ``currency`` column in a
stage-history table). Amounts themselves stay plain decimals, so a deal's currency is in force
from its event on, like any segment, and ``by="currency"`` splits any figure by currency. A
deal without one is in the caller's ``default`` currency, if given, else in an unknown one.

**Summing.** :func:`total` adds amounts of one currency as they are. Amounts of several
currencies (an unknown one counts as a currency of its own) need a :class:`RateTable`; without
one, :class:`MixedCurrencyError` is raised, never a silent sum.

**Rates and rounding.** A rate is the value of one unit of a currency in the reporting
currency, dated: the rate used on a day is the latest one dated on or before it. Conversion
is Decimal arithmetic (28 significant digits): each amount is multiplied by its rate
unrounded, the products are added, and only the total is rounded, once, half to even, to
``places`` decimal places (2 by default).

>>> from datetime import date
>>> from decimal import Decimal
>>> rows = [("2026-01-01", "EUR", "1.10"), ("2026-02-01", "EUR", "1.20"),
...         ("2026-01-01", "KRW", "0.00075")]
>>> rates = RateTable.of(rows, reporting="USD")
>>> rates.rate("EUR", date(2026, 1, 31)), rates.rate("EUR", date(2026, 2, 1))
(Decimal('1.10'), Decimal('1.20'))
>>> total([(100, "EUR"), (1_000_000, "KRW"), (5, "USD")], rates=rates, on=date(2026, 2, 3))
Decimal('875.00')
>>> try:
...     total([(100, "EUR"), (5, "USD")])
... except MixedCurrencyError as error:
...     print(error.currencies)
('EUR', 'USD')
"""

from __future__ import annotations

import bisect
import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from stagegate._time import parse_date
from stagegate.errors import StagegateError, cut
from stagegate.segments import CURRENCY

__all__ = [
    "CURRENCY",
    "CurrencyError",
    "MissingRateError",
    "MixedCurrencyError",
    "RateTable",
    "currency_code",
    "total",
]

UNKNOWN = "unknown"
"""How a deal without a currency (and no default) is shown in messages."""
_CODE = re.compile(r"[A-Z]{3}\Z")
_CONTEXT = Context(prec=28)


class CurrencyError(StagegateError, ValueError):
    """A currency, a rate or a rate table is unusable."""


class MixedCurrencyError(CurrencyError):
    """Amounts in different currencies were to be added without exchange rates."""

    def __init__(self, currencies: Sequence[str]) -> None:
        self.currencies = tuple(currencies)
        super().__init__(
            f"cannot add amounts in {', '.join(self.currencies)} without exchange rates; pass "
            "rates=RateTable.of(...) with a rate to the reporting currency for each, or look at "
            'one currency at a time (by="currency")'
        )


class MissingRateError(CurrencyError, LookupError):
    """The rate table has no rate for a currency on or before a day."""

    def __init__(self, currency: str, on: date, reporting: str) -> None:
        self.currency, self.on, self.reporting = currency, on, reporting
        super().__init__(
            f"no rate from {currency} to {reporting} dated on or before {on.isoformat()}; add a "
            f"row (date, {currency!r}, rate) to the rate table, or set the deals' currency"
        )


def currency_code(value: Any) -> str:
    """Check a currency code: three capital letters, as ISO 4217 (``USD``, ``EUR``, ``KRW``).

    Raises:
        CurrencyError: not such a code.
    """
    if not isinstance(value, str) or not _CODE.match(value):
        raise CurrencyError(
            f"currency {cut(repr(value))} is not a three-letter ISO 4217 code such as 'USD', "
            "'EUR' or 'KRW'; write it in capitals"
        )
    return value


def _rate(value: Any, where: str) -> Decimal:
    try:
        number = (
            value
            if isinstance(value, Decimal)
            else Decimal(value if isinstance(value, (int, str)) else str(value))
        )
    except (InvalidOperation, TypeError, ValueError):
        number = Decimal("NaN")
    if isinstance(value, bool) or not number.is_finite() or number <= 0:
        raise CurrencyError(f"{where}: rate {cut(repr(value))} is not a positive finite number")
    return number


def _day(value: Any, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return parse_date(value)
    except (StagegateError, ValueError, TypeError):
        raise CurrencyError(
            f"{where}: {cut(repr(value))} is not a calendar date (YYYY-MM-DD)"
        ) from None


@attrs.frozen
class RateTable:
    """Dated exchange rates into one reporting currency.

    Build one with :meth:`of` (rows) or :meth:`read_csv` (a file with columns ``date``,
    ``currency``, ``rate``).

    Attributes:
        reporting: the currency every amount is converted into.
        places: decimal places the totals are rounded to (half to even).
    """

    reporting: str
    rates: Mapping[str, tuple[tuple[date, Decimal], ...]] = attrs.field(repr=False)
    places: int = 2

    @classmethod
    def of(
        cls,
        rows: Iterable[Sequence[Any] | Mapping[str, Any]],
        *,
        reporting: str,
        places: int = 2,
    ) -> RateTable:
        """A table of ``(date, currency, rate)`` rows (tuples, or mappings with those keys).

        ``rate`` is the value of one unit of ``currency`` in ``reporting`` (decimal text keeps
        it exact). The reporting currency's own rate is always 1.

        Raises:
            CurrencyError: a row is malformed, a currency has two rates on one date, or
                ``places`` is not between 0 and 12.
        """
        target = currency_code(reporting)
        if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 12:  # noqa: PLR2004
            raise CurrencyError(f"places must be an integer from 0 to 12, got {places!r}")
        found: dict[str, dict[date, Decimal]] = defaultdict(dict)
        for number, row in enumerate(rows, start=1):
            where = f"rate row {number}"
            if isinstance(row, Mapping):
                missing = [k for k in ("date", "currency", "rate") if row.get(k) in (None, "")]
                if missing:
                    raise CurrencyError(f"{where} lacks {', '.join(missing)}")
                day, code, rate = row["date"], row["currency"], row["rate"]
            elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) == 3:  # noqa: PLR2004
                day, code, rate = row
            else:
                raise CurrencyError(
                    f"{where} is {cut(repr(row))}; give (date, currency, rate) or a mapping "
                    "with those keys"
                )
            when, currency = _day(day, where), currency_code(code)
            if when in found[currency]:
                raise CurrencyError(
                    f"{where}: {currency} has two rates dated {when.isoformat()}; keep one"
                )
            found[currency][when] = _rate(rate, where)
        return cls(
            target,
            {code: tuple(sorted(by_day.items())) for code, by_day in found.items()},
            places,
        )

    @classmethod
    def read_csv(cls, path: str | Path, *, reporting: str, places: int = 2) -> RateTable:
        """Read a CSV file with a header ``date,currency,rate``.

        Raises:
            CurrencyError: the file cannot be read or a row is malformed.
        """
        try:
            with Path(path).open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CurrencyError(f"cannot read rates from {str(path)!r}: {exc}") from None
        return cls.of(rows, reporting=reporting, places=places)

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies the table converts (the reporting one included), sorted."""
        return tuple(sorted({self.reporting, *self.rates}))

    def rate(self, currency: str, on: date) -> Decimal:
        """The value of one unit of ``currency`` in the reporting currency on day ``on``.

        Raises:
            MissingRateError: no rate dated on or before ``on``.
            CurrencyError: ``currency`` is not a currency code.
        """
        code = currency_code(currency)
        if code == self.reporting:
            return Decimal(1)
        dated = self.rates.get(code, ())
        index = bisect.bisect_right(dated, on, key=lambda item: item[0]) - 1
        if index < 0:
            raise MissingRateError(code, on, self.reporting)
        return dated[index][1]

    def convert(self, amount: Decimal | float | str, currency: str, on: date) -> Decimal:
        """``amount`` of ``currency`` in the reporting currency on ``on``, rounded to places.

        Raises:
            MissingRateError: no rate for the currency on that day.
        """
        value = _amount(amount) * self.rate(currency, on)
        return _round(value, self.places)


def _amount(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as the float
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise CurrencyError(f"amount {cut(repr(value))} is not a number")


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_CONTEXT)


def total(
    amounts: Iterable[tuple[Decimal | float | int | str | None, str | None]],
    *,
    rates: RateTable | None = None,
    on: date | None = None,
    default: str | None = None,
    places: int | None = None,
) -> Decimal:
    """Add ``(amount, currency)`` pairs; ``None`` amounts are left out.

    A ``None`` currency is ``default`` (or unknown). Amounts of one currency are added as they
    are (rounded to ``places`` if given). Several currencies are converted with ``rates`` on
    day ``on`` (required then) and the total rounded once to the table's places.

    Raises:
        MixedCurrencyError: several currencies (an unknown one included) and no ``rates``.
        MissingRateError: the table lacks a rate, or a deal's currency is unknown.
        CurrencyError: a currency is not a code, or ``rates`` was given without ``on``.
    """
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    fallback = None if default is None else currency_code(default)
    for amount, currency in amounts:
        if amount is None:
            continue
        code = fallback if currency is None else currency_code(currency)
        key = UNKNOWN if code is None else code
        by_currency[key] = _CONTEXT.add(by_currency[key], _amount(amount))
    if rates is None:
        if len(by_currency) > 1:
            raise MixedCurrencyError(sorted(by_currency))
        value = next(iter(by_currency.values()), Decimal(0))
        return value if places is None else _round(value, places)
    if on is None:
        raise CurrencyError("converting with a rate table needs the day of the rates: pass on=")
    if UNKNOWN in by_currency:
        raise CurrencyError(
            "some amounts have no currency: set the deals' 'currency' attribute, or pass "
            f"default= (e.g. default={rates.reporting!r})"
        )
    converted = Decimal(0)
    for code, value in by_currency.items():
        converted = _CONTEXT.add(converted, _CONTEXT.multiply(value, rates.rate(code, on)))
    return _round(converted, rates.places if places is None else places)
