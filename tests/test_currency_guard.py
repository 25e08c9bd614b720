"""Adding amounts in several currencies is a typed error everywhere, never a silent sum."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from stagegate import Opportunity
from stagegate import analytics as an
from stagegate.currency import MixedCurrencyError, RateTable
from stagegate.report import build_document
from stagegate.templates import b2b

UTC = timezone.utc
T = datetime(2026, 3, 2, tzinfo=UTC)
KINDS = {"lead": "open", "won": "won", "lost": "lost"}


def rows(*currencies: str | None) -> list[dict[str, Any]]:
    return [
        {"opportunity_id": f"d{i}", "at": T, "stage": "lead", "amount": 100, "currency": code}
        for i, code in enumerate(currencies)
    ]


ADDERS = {
    "open_pipeline": lambda data: an.open_pipeline(data, KINDS, at=T),
    "waterfall": lambda data: an.waterfall(data, KINDS, start=T, end=T + timedelta(days=1)),
    "forecast": lambda data: an.forecast(data, KINDS, as_of=T, simulations=10),
}


def frames(data: list[dict[str, Any]]) -> dict[str, Any]:
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    polars = pl.DataFrame(data)
    return {"polars": polars, "duckdb": duckdb.from_arrow(polars.to_arrow())}


@pytest.mark.parametrize("adder", ADDERS)
def test_several_currencies_are_refused_on_rows_and_frames(adder: str) -> None:
    mixed = rows("EUR", "USD")
    with pytest.raises(MixedCurrencyError, match="EUR, USD"):
        ADDERS[adder](mixed)
    for name, frame in frames(mixed).items():
        with pytest.raises(MixedCurrencyError, match="EUR, USD"):
            ADDERS[adder](frame)
        assert name


@pytest.mark.parametrize("adder", ADDERS)
def test_one_currency_or_none_stated_adds_as_before(adder: str) -> None:
    ADDERS[adder](rows("EUR", "EUR"))
    plain = [{k: v for k, v in r.items() if k != "currency"} for r in rows("x", "y")]
    ADDERS[adder](plain)
    for frame in frames(rows("EUR", "EUR")).values():
        ADDERS[adder](frame)


def test_a_deal_without_a_currency_beside_one_with_counts_as_another() -> None:
    with pytest.raises(MixedCurrencyError, match="unknown"):
        an.open_pipeline(rows("EUR", None), KINDS, at=T)


def test_events_with_currency_attributes_are_checked() -> None:
    process = b2b()
    deals = []
    for oid, code in (("a", "EUR"), ("b", "KRW")):
        deal = Opportunity.open(process, oid, at=T, actor="ana", amount=1000)
        deal.set_attribute("currency", code, at=T, actor="ana")
        deals.append(deal)
    events = [e for d in deals for e in d.events]
    with pytest.raises(MixedCurrencyError, match="EUR, KRW"):
        an.open_pipeline(events, process, at=T)
    with pytest.raises(MixedCurrencyError):
        build_document(events, process, as_of=T + timedelta(days=1))


def test_converted_amounts_add_up() -> None:
    rates = RateTable.of([("2026-01-01", "EUR", "1.10")], reporting="USD")
    usd = an.in_currency(rows("EUR", "USD"), rates, on=T.date())
    assert 210.0 == sum(s.amount for s in an.open_pipeline(usd, KINDS, at=T))
