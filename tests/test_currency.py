"""Currencies: dated rates, Decimal conversion, rounding once, and no silent mixed sums."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import StagegateError
from stagegate.currency import (
    CurrencyError,
    MissingRateError,
    MixedCurrencyError,
    RateTable,
    currency_code,
    total,
)

RATES = RateTable.of(
    [
        ("2026-01-01", "EUR", "1.10"),
        (date(2026, 2, 1), "EUR", Decimal("1.20")),
        {"date": "2026-01-01", "currency": "KRW", "rate": "0.00075"},
    ],
    reporting="USD",
)


class TestRateTable:
    def test_the_rate_on_a_day_is_the_latest_dated_on_or_before_it(self) -> None:
        assert Decimal("1.10") == RATES.rate("EUR", date(2026, 1, 1))
        assert Decimal("1.10") == RATES.rate("EUR", date(2026, 1, 31))
        assert Decimal("1.20") == RATES.rate("EUR", date(2026, 2, 1))
        assert Decimal("1.20") == RATES.rate("EUR", date(2030, 1, 1))

    def test_the_reporting_currency_is_worth_one(self) -> None:
        assert Decimal(1) == RATES.rate("USD", date(1990, 1, 1))
        assert ("EUR", "KRW", "USD") == RATES.currencies

    def test_no_rate_before_the_first_is_a_lookup_error_naming_what_to_add(self) -> None:
        with pytest.raises(MissingRateError, match="add a row") as caught:
            RATES.rate("EUR", date(2025, 12, 31))
        assert isinstance(caught.value, LookupError)
        assert (caught.value.currency, caught.value.reporting) == ("EUR", "USD")
        with pytest.raises(MissingRateError):
            RATES.rate("JPY", date(2026, 3, 1))

    def test_convert_rounds_half_to_even(self) -> None:
        table = RateTable.of([("2026-01-01", "EUR", "1")], reporting="USD")
        on = date(2026, 1, 2)
        assert Decimal("0.12") == table.convert("0.125", "EUR", on)
        assert Decimal("0.14") == table.convert("0.135", "EUR", on)
        assert Decimal("110.00") == RATES.convert(100, "EUR", on)
        assert Decimal("0.11") == RATES.convert(0.1, "EUR", on)  # the float 0.1 read as 0.1

    @pytest.mark.parametrize(
        ("rows", "words"),
        [
            ([("2026-01-01", "eur", "1")], "three-letter ISO 4217"),
            ([("2026-01-01", "EUR", "0")], "not a positive finite number"),
            ([("2026-01-01", "EUR", "x")], "not a positive finite number"),
            ([("2026-01-01", "EUR", True)], "not a positive finite number"),
            ([("someday", "EUR", "1")], "not a calendar date"),
            ([("2026-01-01", "EUR")], "give (date, currency, rate)"),
            ([{"date": "2026-01-01", "currency": "EUR"}], "lacks rate"),
            ([("2026-01-01", "EUR", "1"), ("2026-01-01", "EUR", "2")], "two rates dated"),
        ],
    )
    def test_a_malformed_table_is_refused(self, rows: list[Any], words: str) -> None:
        with pytest.raises(CurrencyError, match=words[:20].replace("(", r"\(")):
            RateTable.of(rows, reporting="USD")

    def test_places_must_be_a_small_integer(self) -> None:
        with pytest.raises(CurrencyError, match="places"):
            RateTable.of([], reporting="USD", places=13)

    def test_a_csv_file_reads_into_the_same_table(self, tmp_path: Path) -> None:
        path = tmp_path / "rates.csv"
        path.write_text(
            "date,currency,rate\n2026-01-01,EUR,1.10\n2026-02-01,EUR,1.20\n"
            "2026-01-01,KRW,0.00075\n",
            encoding="utf-8",
        )
        assert RATES == RateTable.read_csv(path, reporting="USD")
        with pytest.raises(CurrencyError, match="cannot read rates"):
            RateTable.read_csv(tmp_path / "missing.csv", reporting="USD")


class TestTotal:
    def test_one_currency_adds_without_a_table(self) -> None:
        assert Decimal("30.25") == total([(10, "EUR"), ("20.25", "EUR"), (None, "EUR")])
        assert Decimal(0) == total([])

    def test_amounts_without_a_currency_add_among_themselves(self) -> None:
        assert Decimal(3) == total([(1, None), (2, None)])

    def test_different_currencies_without_a_table_are_a_typed_error(self) -> None:
        with pytest.raises(MixedCurrencyError, match="without exchange rates") as caught:
            total([(1, "EUR"), (2, "USD")])
        assert ("EUR", "USD") == caught.value.currencies
        assert isinstance(caught.value, StagegateError)

    def test_an_unknown_currency_does_not_mix_silently_with_a_known_one(self) -> None:
        with pytest.raises(MixedCurrencyError, match="EUR, unknown"):
            total([(1, "EUR"), (2, None)])
        assert Decimal(3) == total([(1, "EUR"), (2, None)], default="EUR")

    def test_a_table_converts_and_rounds_the_total_once(self) -> None:
        on = date(2026, 2, 3)
        assert Decimal("875.00") == total(
            [(100, "EUR"), (1_000_000, "KRW"), (5, "USD")], rates=RATES, on=on
        )
        # 3 x 0.005 KRW-in-USD: rounding each would give 0.03, rounding the total gives 0.02
        table = RateTable.of([("2026-01-01", "KRW", "0.001")], reporting="USD")
        assert Decimal("0.02") == total([(5, "KRW")] * 3, rates=table, on=on)

    def test_a_table_needs_the_day_and_a_currency_for_every_amount(self) -> None:
        with pytest.raises(CurrencyError, match="on="):
            total([(1, "EUR")], rates=RATES)
        with pytest.raises(CurrencyError, match="no currency"):
            total([(1, None)], rates=RATES, on=date(2026, 3, 1))
        with pytest.raises(MissingRateError):
            total([(1, "JPY")], rates=RATES, on=date(2026, 3, 1))

    def test_a_bad_amount_or_code_is_a_typed_error(self) -> None:
        with pytest.raises(CurrencyError, match="not a number"):
            total([("lots", "EUR")])
        with pytest.raises(CurrencyError, match="ISO 4217"):
            currency_code("Euro")

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.decimals(min_value=0, max_value=10**9, places=2),
                st.sampled_from(["EUR", "KRW", "USD"]),
            ),
            max_size=20,
        ),
        st.decimals(min_value=Decimal("0.0001"), max_value=100, places=4),
    )
    def test_the_total_is_the_exact_sum_rounded_half_to_even(
        self, amounts: list[tuple[Decimal, str]], eur: Decimal
    ) -> None:
        table = RateTable.of(
            [("2026-01-01", "EUR", eur), ("2026-01-01", "KRW", "0.00073")], reporting="USD"
        )
        rate = {"EUR": Fraction(eur), "KRW": Fraction("0.00073"), "USD": Fraction(1)}
        exact = sum((Fraction(a) * rate[c] for a, c in amounts), Fraction(0))
        expected = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_EVEN
        )
        assert expected == total(amounts, rates=table, on=date(2026, 6, 1))
