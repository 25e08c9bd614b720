"""The forecast's numpy path over a frame's open deals gives the pure-Python path's numbers."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, canonical_schema, edge_rows, normalize, same, sim_rows
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pytest.importorskip("numpy")
pytest.importorskip("narwhals")
duckdb = pytest.importorskip("duckdb")

FORECAST = importlib.import_module("stagegate.analytics.forecast")  # not an.forecast

SCHEMA = canonical_schema()

BACKENDS = {
    "polars": lambda rows: pl.DataFrame(rows, schema=SCHEMA),
    "pandas": lambda rows: pl.DataFrame(rows, schema=SCHEMA).to_pandas(),
    "duckdb": lambda rows: duckdb.from_arrow(pl.DataFrame(rows, schema=SCHEMA).to_arrow()),
    "polars-decimal": lambda rows: pl.DataFrame(  # amounts become floats in the frame
        rows, schema={**SCHEMA, "amount": pl.Decimal(12, 2)}
    ),
}


def summary(fc: Any) -> tuple[Any, ...]:
    scalars = (fc.unscheduled, fc.slip_samples, fc.pipeline, fc.weighted, fc.overdue)
    return (*scalars, fc.beyond_history)


def loop_forecast(monkeypatch: pytest.MonkeyPatch, rows: Any, kinds: Any, **kw: Any) -> Any:
    """The pure-Python forecast: deal by deal, and the Monte Carlo loop of random.random."""
    with monkeypatch.context() as patch:
        patch.setattr(FORECAST, "VECTOR_FROM", 10**15)
        return an.forecast(rows, kinds, **kw)


class TestFrameForecast:
    @pytest.mark.parametrize("backend", list(BACKENDS))
    @pytest.mark.parametrize("runs", [0, 7, 2000])
    def test_a_simulated_pipeline_forecasts_alike_on_frames_and_rows(
        self, monkeypatch: pytest.MonkeyPatch, backend: str, runs: int
    ) -> None:
        rows, kinds, sim = sim_rows(300)
        kw = {"as_of": sim.as_of, "simulations": runs, "seed": 4, "estimator": "dwell"}
        expected = loop_forecast(monkeypatch, rows, kinds, **kw)
        actual = an.forecast(BACKENDS[backend](rows), kinds, **kw)
        assert summary(expected) == summary(actual)
        same(normalize(expected.periods), normalize(actual.periods))

    @pytest.mark.parametrize("period", ["month", "quarter"])
    def test_missing_amounts_dates_and_overdue_deals_forecast_alike(
        self, monkeypatch: pytest.MonkeyPatch, period: str
    ) -> None:
        rows = edge_rows()
        kw = {"as_of": AS_OF, "simulations": 20_000, "period": period, "seed": 9}
        expected = loop_forecast(monkeypatch, rows, KINDS, **kw)
        actual = an.forecast(BACKENDS["polars"](rows), KINDS, **kw)
        assert summary(expected) == summary(actual)
        same(normalize(expected.periods), normalize(actual.periods))

    def test_the_large_runs_are_drawn_on_numpy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        drawn = []
        monkeypatch.setattr(FORECAST, "_vector_runs", lambda *a: drawn.append(a) or {})
        rows, kinds, sim = sim_rows(300)
        an.forecast(BACKENDS["polars"](rows), kinds, as_of=sim.as_of, simulations=2000)
        assert 1 == len(drawn)
