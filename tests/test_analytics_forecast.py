"""The forecast's rule for close dates: slips drawn from history, landing on or after as_of."""

from __future__ import annotations

import importlib
from datetime import date, datetime, timedelta, timezone

import pytest

from stagegate import analytics as an

KINDS = {"lead": "open", "won": "won", "lost": "lost"}
AS_OF = datetime(2026, 3, 1, tzinfo=timezone.utc)


def history(slips: list[int]) -> list[dict[str, object]]:
    """Won deals whose close came ``slip`` days after the date expected on entering ``lead``."""
    rows: list[dict[str, object]] = []
    for i, slip in enumerate(slips):
        due = date(2025, 6, 1) + timedelta(days=10 * i)
        opened = datetime(2025, 5, 1, tzinfo=timezone.utc)
        rows.append(
            {
                "opportunity_id": f"w{i}",
                "at": opened,
                "stage": "lead",
                "amount": 10.0,
                "close_date": due,
            }
        )
        closed = datetime.combine(due + timedelta(days=slip), datetime.min.time(), timezone.utc)
        rows.append({"opportunity_id": f"w{i}", "at": closed, "stage": "won", "amount": 10.0})
    return rows


def open_deal(close: date) -> dict[str, object]:
    opened = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return {
        "opportunity_id": "x",
        "at": opened,
        "stage": "lead",
        "amount": 100.0,
        "close_date": close,
    }


class TestOverdueCloseDates:
    def test_an_overdue_deal_lands_where_deals_that_late_closed_not_on_as_of(self) -> None:
        # 40 days overdue: only the slips of 80 and 110 days are at least that late, so the
        # deal closes 40 or 70 days after as_of (April or May), never in March.
        rows = [*history([-5, 10, 80, 110]), open_deal(date(2026, 1, 20))]
        fc = an.forecast(rows, KINDS, as_of=AS_OF, estimator="empirical", simulations=400)
        periods = {p.period: p for p in fc.periods}
        assert 0.0 == periods["2026-03"].simulated_mean
        assert 100.0 == periods["2026-03"].weighted  # not simulated: due now
        assert 1 == periods["2026-03"].overdue
        april, may = periods["2026-04"].simulated_mean, periods["2026-05"].simulated_mean
        assert 100.0 == pytest.approx(april + may)
        assert 30.0 < april < 70.0  # the two slips are equally likely
        assert (1, 0) == (fc.overdue, fc.beyond_history)

    def test_a_deal_later_than_all_history_stays_on_as_of(self) -> None:
        rows = [*history([-5, 10]), open_deal(date(2026, 1, 20))]
        fc = an.forecast(rows, KINDS, as_of=AS_OF, estimator="empirical", simulations=50)
        (march,) = fc.periods
        assert ("2026-03", 100.0, 1) == (march.period, march.simulated_mean, fc.beyond_history)

    def test_a_future_deal_never_draws_a_slip_into_the_past(self) -> None:
        # due 19 days after as_of: the slip of -30 days would put it before as_of; left out.
        rows = [*history([-30, 5]), open_deal(date(2026, 3, 20))]
        fc = an.forecast(rows, KINDS, as_of=AS_OF, estimator="empirical", simulations=50)
        (march,) = fc.periods
        assert (100.0, 0) == (march.simulated_mean, fc.overdue)

    def test_totals_cover_deals_without_a_close_date(self) -> None:
        rows = [*history([5]), open_deal(date(2026, 3, 20))]
        rows.append(
            {
                "opportunity_id": "y",
                "at": AS_OF - timedelta(days=3),
                "stage": "lead",
                "amount": 50.0,
            }
        )
        fc = an.forecast(rows, KINDS, as_of=AS_OF, estimator="empirical", simulations=0)
        assert (150.0, 150.0, 1) == (fc.pipeline, fc.weighted, fc.unscheduled)


class TestMonteCarloPaths:
    """The numpy Monte Carlo reads the very numbers of ``random.Random(seed)``."""

    @pytest.mark.parametrize("period", ["month", "quarter"])
    @pytest.mark.parametrize("table", [True, False], ids=["slip-table", "slip-search"])
    def test_numpy_and_pure_python_runs_are_identical(
        self, period: str, table: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytest.importorskip("numpy")
        from hypothesis import given, settings
        from hypothesis import strategies as st

        from stagegate.analytics.forecast import simulate_runs

        module = importlib.import_module("stagegate.analytics.forecast")  # not an.forecast
        monkeypatch.setattr(module, "SLIP_TABLE_UP_TO", module.SLIP_TABLE_UP_TO if table else -1)

        deal = st.tuples(
            st.floats(0, 1e6, allow_nan=False),
            st.integers(20_000, 20_800),
            st.floats(0, 1),
        )

        @settings(max_examples=40, deadline=None)
        @given(
            st.lists(deal, max_size=30),
            st.lists(st.integers(-60, 200), max_size=12, unique=True),
            st.integers(1, 6),
            st.integers(0, 2**40),
        )
        def check(deals: list, slips: list, runs: int, seed: int) -> None:
            slips = sorted(slips)
            totals = [3 * (i + 1) for i in range(len(slips))]
            arguments = {"today": 20_400, "period": period, "simulations": runs, "seed": seed}
            python = simulate_runs(deals, slips, totals, vector=False, **arguments)
            vector = simulate_runs(deals, slips, totals, vector=True, **arguments)
            assert python == vector

        check()

    def test_a_close_date_centuries_ahead_draws_alike_on_both_paths(self) -> None:
        pytest.importorskip("numpy")
        from stagegate.analytics.forecast import simulate_runs

        deals = [(10.0, 20_390, 0.5), (20.0, 400_000, 0.9), (5.0, 20_450, 0.3)]
        arguments = {"today": 20_400, "period": "month", "simulations": 50, "seed": 3}
        python = simulate_runs(deals, [-5, 0, 30], [2, 5, 6], vector=False, **arguments)
        vector = simulate_runs(deals, [-5, 0, 30], [2, 5, 6], vector=True, **arguments)
        assert python == vector
        assert "3065-03" in vector
