"""The back-test of a prepared frame reads the cut-off's visits off the visits at as_of."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, at, canonical_schema, edge_rows, normalize, same, sim_rows
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")

BACKTEST = importlib.import_module("stagegate.analytics.backtest")  # not an.backtest
INTERVALS = importlib.import_module("stagegate.analytics.intervals")

SCHEMA = canonical_schema()

BACKENDS = {
    "polars": lambda rows: pl.DataFrame(rows, schema=SCHEMA),
    "pandas": lambda rows: pl.DataFrame(rows, schema=SCHEMA).to_pandas(),
}


def outcome(bt: Any) -> tuple[Any, ...]:
    return normalize(bt.scores), normalize(bt.reliability), bt.best, bt.reason


def cases() -> list[tuple[list[dict[str, Any]], Any, Any, Any]]:
    rows, kinds, sim = sim_rows(300)
    return [
        (edge_rows(), KINDS, AS_OF, at(4)),
        (rows, kinds, sim.as_of, sim.as_of - timedelta(days=40)),
    ]


class TestVisitsAtTheCutoff:
    @pytest.mark.parametrize("backend", list(BACKENDS))
    @pytest.mark.parametrize("case", [0, 1], ids=["edge", "simulated"])
    def test_the_prepared_backtest_of_a_frame_scores_as_the_rows_do(
        self, backend: str, case: int
    ) -> None:
        rows, kinds, as_of, cutoff = cases()[case]
        expected = an.backtest(rows, kinds, cutoff=cutoff, as_of=as_of)
        prepared = INTERVALS.prepare(BACKENDS[backend](rows), kinds, as_of=as_of, keep_rows=True)
        assert BACKTEST._visits_cut(prepared, INTERVALS.as_of_us(cutoff)) is not None
        actual = BACKTEST.backtest_prepared(prepared, cutoff)
        e, a = outcome(expected), outcome(actual)
        same(e[0], a[0])
        same(e[1], a[1])
        assert e[2:] == a[2:]

    def test_the_cut_visits_equal_those_computed_from_the_rows(self) -> None:
        rows, kinds, as_of, cutoff = cases()[1]
        prepared = INTERVALS.prepare(BACKENDS["polars"](rows), kinds, as_of=as_of, keep_rows=True)
        cut = BACKTEST._visits_cut(prepared, INTERVALS.as_of_us(cutoff)).frame.collect()
        fresh = INTERVALS.prepared_at(prepared, cutoff).frame.collect().select(cut.columns)
        order = ["opportunity_id", "step"]
        assert cut.sort(order).to_native().equals(fresh.sort(order).to_native())

    def test_visits_out_of_step_order_are_computed_from_the_rows(self) -> None:
        rows, kinds, as_of, cutoff = cases()[0]
        prepared = INTERVALS.prepare(BACKENDS["polars"](rows), kinds, as_of=as_of, keep_rows=True)
        shuffled = prepared.frame.sort("step", descending=True)
        moved = INTERVALS.Prepared(prepared.outcomes, prepared.as_of_us, frame=shuffled,
                                   rows=prepared.rows, build=prepared.build)  # fmt: skip
        assert BACKTEST._visits_cut(moved, INTERVALS.as_of_us(cutoff)) is None
        expected = an.backtest(rows, kinds, cutoff=cutoff, as_of=as_of)
        assert outcome(expected)[2:] == outcome(BACKTEST.backtest_prepared(moved, cutoff))[2:]

    def test_rows_in_python_take_the_rows_path(self) -> None:
        rows, kinds, as_of, cutoff = cases()[0]
        prepared = INTERVALS.prepare(rows, kinds, as_of=as_of, keep_rows=True)
        assert BACKTEST._visits_cut(prepared, INTERVALS.as_of_us(cutoff)) is None
