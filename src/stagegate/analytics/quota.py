"""Quotas per owner and period, and pipeline coverage (open and weighted over what is left).

A :class:`QuotaTable` holds one amount per segment value (an owner by default, or a team or
region) and period (``2026-Q1`` or ``2026-03``, as :func:`~stagegate.analytics.period_of`
labels them). :func:`coverage` stands at ``as_of``, in the period that holds it:

- ``won``: the amount of deals won inside the period up to ``as_of``, counted for the segment
  in force at their close;
- ``remaining``: the quota minus ``won``, never below 0;
- ``pipeline`` / ``weighted``: the amount of the deals open at ``as_of`` whose expected close
  date falls in the period (weighted: each times its stage's win probability), counted for the
  segment in force at ``as_of``;
- ``coverage`` / ``weighted_coverage``: those over ``remaining`` (``None`` once the quota is
  met: nothing is left to cover).

Amounts are decimals in one currency (see :mod:`stagegate.currency`): pass ``rates`` when the
deals are in several.

>>> from datetime import datetime, timezone
>>> t = lambda m, d: datetime(2026, m, d, tzinfo=timezone.utc)
>>> kinds = {"lead": "open", "won": "won", "lost": "lost"}
>>> rows = [
...     {"opportunity_id": "a", "at": t(1, 5), "stage": "lead", "amount": 400,
...      "close_date": "2026-03-20", "owner": "kim"},
...     {"opportunity_id": "b", "at": t(1, 6), "stage": "lead", "amount": 100, "owner": "kim"},
...     {"opportunity_id": "b", "at": t(2, 1), "stage": "won", "amount": 100, "owner": "kim"},
...     {"opportunity_id": "c", "at": t(1, 7), "stage": "lead", "amount": 50,
...      "close_date": "2026-06-01", "owner": "kim"},
... ]
>>> quotas = QuotaTable.of([("kim", "2026-Q1", 300)])
>>> [row] = coverage(rows, kinds, as_of=t(2, 15), quotas=quotas, estimator="configured")
>>> row.segment, row.quota, row.won, row.remaining, row.pipeline, row.coverage
(('kim',), Decimal('300'), Decimal('100'), Decimal('200'), Decimal('400'), 2.0)
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from stagegate._time import UTC, epoch_us, to_utc
from stagegate.analytics._segments import (
    SMALL_SAMPLE,
    Segment,
    decimal_of,
    instant_us,
    money,
    period_bounds,
    read_inputs,
    segment_columns,
)
from stagegate.analytics.outcomes import AnalyticsError, OutcomesLike
from stagegate.currency import CURRENCY, RateTable, currency_code
from stagegate.errors import cut

__all__ = ["CoverageRow", "QuotaTable", "coverage"]

_PERIOD_TEXT = "a period label such as '2026-Q1' or '2026-03'"


def _quota_amount(value: Any, where: str) -> Decimal:
    amount = decimal_of(value) if isinstance(value, float) else None
    if amount is None:
        try:
            amount = Decimal(str(value).strip()) if not isinstance(value, bool) else None
        except ArithmeticError:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise AnalyticsError(f"{where}: quota {cut(repr(value))} is not a number >= 0")
    return amount


def _period(value: Any, where: str) -> str:
    text = str(value).strip() if isinstance(value, str) else ""
    valid = len(text) == 7 and text[:4].isdigit() and text[4] == "-"  # noqa: PLR2004
    if valid and not (text[5:] in ("Q1", "Q2", "Q3", "Q4") or "01" <= text[5:] <= "12"):
        valid = False
    if not valid:
        raise AnalyticsError(f"{where}: period {cut(repr(value))} is not {_PERIOD_TEXT}")
    return text


@attrs.frozen
class QuotaTable:
    """Quota amounts per segment value and period.

    Attributes:
        by: the segment column the quotas are for (``owner``, ``team``, ``region``, ...).
        amounts: ``{(value, period): amount}``.
        currency: the quotas' currency, if stated (``None``: the deals' own, unconverted).
    """

    by: str
    amounts: Mapping[tuple[str, str], Decimal]
    currency: str | None = None

    @classmethod
    def of(
        cls,
        rows: Iterable[Sequence[Any] | Mapping[str, Any]],
        *,
        by: str = "owner",
        currency: str | None = None,
    ) -> QuotaTable:
        """A table of ``(value, period, amount)`` rows (or mappings: ``by``, period, amount).

        Raises:
            AnalyticsError: a row is malformed or repeats a (value, period).
            CurrencyError: ``currency`` is not a currency code.
        """
        code = None if currency is None else currency_code(currency)
        amounts: dict[tuple[str, str], Decimal] = {}
        for number, row in enumerate(rows, start=1):
            where = f"quota row {number}"
            if isinstance(row, Mapping):
                value, period, amount = row.get(by), row.get("period"), row.get("amount")
            elif isinstance(row, Sequence) and not isinstance(row, str) and len(row) == 3:  # noqa: PLR2004
                value, period, amount = row
            else:
                raise AnalyticsError(
                    f"{where} is {cut(repr(row))}; give ({by}, period, amount) or a mapping"
                )
            if not isinstance(value, str) or not value.strip():
                raise AnalyticsError(f"{where}: {by} {cut(repr(value))} is not a name")
            key = (value, _period(period, where))
            if key in amounts:
                raise AnalyticsError(f"{where}: {by} {value!r} has a second quota for {key[1]}")
            amounts[key] = _quota_amount(amount, where)
        return cls(by, amounts, code)

    @classmethod
    def read_csv(
        cls, path: str | Path, *, by: str = "owner", currency: str | None = None
    ) -> QuotaTable:
        """Read a CSV file with a header naming ``by``, ``period`` and ``amount``.

        Raises:
            AnalyticsError: the file cannot be read, or a row is malformed.
        """
        try:
            with Path(path).open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise AnalyticsError(f"cannot read quotas from {str(path)!r}: {exc}") from None
        return cls.of(rows, by=by, currency=currency)

    def quota(self, value: str | None, period: str) -> Decimal | None:
        """The quota of one segment value in a period, or ``None`` if it has none."""
        if value is None:
            return None
        return self.amounts.get((value, period))


@attrs.frozen(slots=True)
class CoverageRow:
    """Quota attainment and pipeline coverage of one segment in the period holding ``as_of``.

    ``open_deals`` counts the deals open at ``as_of`` closing in the period; ``small`` flags a
    segment with fewer than 30 deals (open in the period, or won in it).
    """

    segment: Segment
    period: str
    quota: Decimal | None
    won: Decimal
    remaining: Decimal | None
    pipeline: Decimal
    weighted: Decimal
    coverage: float | None
    weighted_coverage: float | None
    open_deals: int
    won_deals: int
    small: bool


def _ratio(part: Decimal, whole: Decimal | None) -> float | None:
    if whole is None or whole == 0:
        return None
    return float(part / whole)


def coverage(
    data: Any,
    outcomes: OutcomesLike,
    *,
    as_of: datetime,
    quotas: QuotaTable,
    period: str = "quarter",
    estimator: str = "deal_clock",
    rates: RateTable | None = None,
    default_currency: str | None = None,
    assume_zone: str | tzinfo | None = None,
) -> list[CoverageRow]:
    """Quota, won, remaining and pipeline coverage per segment (``quotas.by``) at ``as_of``.

    One row per segment value with a quota in the period or deals in it, sorted by value
    (no value, ``None``, last).

    Args:
        data: events, opportunities, row mappings or a frame, with the ``quotas.by`` column.
        outcomes: a ``Process`` or a mapping ``{stage_id: kind}``.
        as_of: the instant the review stands at; the period is the one holding its date.
        quotas: the quota table.
        period: ``quarter`` or ``month``: the kind of period the quotas are for.
        estimator: the per-stage probability that weights ``weighted`` (see
            :data:`~stagegate.analytics.ESTIMATORS`; one with a per-stage column).
        rates: exchange rates, needed when the deals (or the quotas) are in several
            currencies; amounts are converted at the rates of ``as_of``'s date.
        default_currency: the currency of deals without a ``currency`` attribute.
        assume_zone: the zone of naive instants in ``data``, if any.

    Raises:
        MixedCurrencyError: amounts in several currencies and no ``rates``.
        AnalyticsError: an argument is unknown, or the input is unusable.
    """
    by = segment_columns(quotas.by)
    as_of_us = instant_us(as_of, "as_of")
    day = to_utc(as_of).date()
    label, first, last = period_bounds(day, period)
    inputs = read_inputs(data, (*by, CURRENCY), assume_zone=assume_zone)
    states = inputs.snapshot(outcomes, as_of, assume_zone)
    p = inputs.probabilities(outcomes, as_of, estimator)
    pipeline: dict[Segment, list[tuple[Decimal | None, str | None]]] = defaultdict(list)
    weighted: dict[Segment, list[tuple[Decimal | None, str | None]]] = defaultdict(list)
    won: dict[Segment, list[tuple[Decimal | None, str | None]]] = defaultdict(list)
    start_us = epoch_us(datetime(first.year, first.month, first.day, tzinfo=UTC))
    for s in states:
        oid = s.opportunity_id
        if s.kind == "open":
            if s.close_date is None or not first <= s.close_date <= last:
                continue
            *segment, currency = inputs.at(oid, as_of_us, (*by, CURRENCY))
            amount = decimal_of(s.amount)
            pipeline[tuple(segment)].append((amount, currency))
            factor = Decimal(repr(p.get(s.stage, 0.0)))
            weighted[tuple(segment)].append((None if amount is None else amount * factor, currency))
        elif s.kind == "won":
            closed_us = epoch_us(s.entered_at)
            if closed_us < start_us or closed_us > as_of_us:
                continue
            *segment, currency = inputs.at(oid, closed_us, (*by, CURRENCY))
            won[tuple(segment)].append((decimal_of(s.amount), currency))
    keys: set[Segment] = set(pipeline) | set(won)
    keys |= {(value,) for value, when in quotas.amounts if when == label}
    rows = []
    for key in sorted(keys, key=lambda k: tuple((v is None, v or "") for v in k)):
        quota = quotas.quota(key[0], label)
        won_amount = money(won[key], rates, day, default_currency)
        if quota is not None and rates is not None and quotas.currency is not None:
            quota = rates.convert(quota, quotas.currency, day)
        remaining = None if quota is None else max(quota - won_amount, Decimal(0))
        open_amount = money(pipeline[key], rates, day, default_currency)
        weighted_amount = money(weighted[key], rates, day, default_currency, places=2)
        rows.append(
            CoverageRow(
                key,
                label,
                quota,
                won_amount,
                remaining,
                open_amount,
                weighted_amount,
                _ratio(open_amount, remaining),
                _ratio(weighted_amount, remaining),
                len(pipeline[key]),
                len(won[key]),
                len(pipeline[key]) + len(won[key]) < SMALL_SAMPLE,
            )
        )
    return rows
