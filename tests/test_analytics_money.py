"""Any analysis in one currency: converted tables, and the check before adding amounts."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from stagegate import Opportunity, b2b
from stagegate import analytics as an
from stagegate.currency import CurrencyError, MissingRateError, MixedCurrencyError, RateTable

UTC = timezone.utc
PROCESS = b2b()
T = datetime(2026, 3, 2, tzinfo=UTC)
AS_OF = T + timedelta(days=10)
RATES = RateTable.of([("2026-01-01", "EUR", "2"), ("2026-01-01", "KRW", "0.001")], reporting="USD")


def deal(
    oid: str, amount: int, currency: str | None, close: date = date(2026, 4, 10)
) -> Opportunity:
    return Opportunity.open(
        PROCESS,
        oid,
        at=T,
        actor="crm",
        owner="kim",
        amount=amount,
        close_date=close,
        attributes=None if currency is None else {"currency": currency},
    )


class TestInCurrency:
    def test_the_forecast_of_a_converted_pipeline_is_in_the_reporting_currency(self) -> None:
        mixed = [deal("a", 100, "EUR"), deal("b", 30_000, "KRW"), deal("c", 5, "USD")]
        same = [deal("a", 200, "USD"), deal("b", 30, "USD"), deal("c", 5, "USD")]
        converted = an.in_currency(mixed, RATES, on=AS_OF.date())
        expected = an.forecast(same, PROCESS, as_of=AS_OF, simulations=200)
        got = an.forecast(converted, PROCESS, as_of=AS_OF, simulations=200)
        assert (235.0, expected.periods) == (got.pipeline, got.periods)
        assert {"USD"} == {row["currency"] for row in converted}
        assert {"owner"} <= set(converted[0])

    def test_amounts_are_rounded_to_the_tables_places(self) -> None:
        rows = [
            {"opportunity_id": "a", "at": T, "stage": "lead_generation", "amount": 3,
             "currency": "KRW"},
            {"opportunity_id": "b", "at": T, "stage": "lead_generation", "amount": float("nan")},
        ]  # fmt: skip
        converted = an.in_currency(rows, RATES, on=AS_OF.date(), columns=())
        assert [Decimal("0.00"), None] == [r["amount"] for r in converted]
        assert {"opportunity_id", "at", "stage", "amount", "currency"} == set(converted[0])

    def test_a_row_without_currency_needs_a_default(self) -> None:
        with pytest.raises(CurrencyError, match="no currency"):
            an.in_currency([deal("a", 1, None)], RATES, on=AS_OF.date())
        [opened, _] = an.in_currency(
            [deal("a", 1, None)], RATES, on=AS_OF.date(), default_currency="EUR"
        )
        assert Decimal("2.00") == opened["amount"]

    def test_a_currency_without_a_rate_is_a_lookup_error(self) -> None:
        with pytest.raises(MissingRateError, match="JPY"):
            an.in_currency([deal("a", 1, "JPY")], RATES, on=AS_OF.date())


class TestOneCurrency:
    def test_one_currency_or_none_is_named(self) -> None:
        assert an.require_one_currency([deal("a", 1, None)]) is None
        assert "EUR" == an.require_one_currency([deal("a", 1, "EUR"), deal("b", 2, "EUR")])
        assert "EUR" == an.require_one_currency([deal("a", 1, None)], default_currency="EUR")
        assert an.require_one_currency([]) is None

    def test_several_currencies_are_a_typed_error(self) -> None:
        with pytest.raises(MixedCurrencyError) as caught:
            an.require_one_currency([deal("a", 1, "EUR"), deal("b", 2, None)])
        assert ("EUR", "unknown") == caught.value.currencies

    def test_a_deal_whose_currency_changes_shows_both(self) -> None:
        switched = deal("a", 1, "EUR")
        switched.set_attribute("currency", "USD", at=T + timedelta(days=1), actor="ana")
        assert ("EUR", "USD") == an.currencies_of([switched])
