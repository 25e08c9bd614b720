"""Cycle times of in-memory visits (read off each deal's run) equal the pure-Python ones."""

from __future__ import annotations

from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, edge_rows, normalize, same, sim_rows
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")


def _frame(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(
        [{k: r[k] for k in ("opportunity_id", "at", "seq", "stage", "reason")} for r in rows],
        schema={
            "opportunity_id": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "seq": pl.Int64,
            "stage": pl.String,
            "reason": pl.String,
        },
    )


def _key(row: dict[str, Any]) -> str:
    return str(row.get("opportunity_id") or row.get("outcome"))


def _same_cycles(expected: Any, actual: Any) -> None:
    same(normalize(expected.deals), normalize(actual.deals), key=_key)
    same(normalize(expected.summary), normalize(actual.summary), key=_key)


class TestInMemoryCycleTimes:
    def test_a_simulated_pipeline_gives_the_python_cycles(self) -> None:
        rows, kinds, _ = sim_rows(300, seed=5)
        as_of = max(r["at"] for r in rows)
        expected = an.cycle_times(rows, kinds, as_of=as_of)
        _same_cycles(expected, an.cycle_times(_frame(rows), kinds, as_of=as_of))

    def test_visits_out_of_deal_order_give_the_same_cycles(self) -> None:
        visits = an.stage_intervals(_frame(edge_rows()), KINDS, as_of=AS_OF)
        shuffled = visits.sample(fraction=1.0, shuffle=True, seed=3)
        expected = an.cycle_times(edge_rows(), KINDS, as_of=AS_OF)
        _same_cycles(expected, an.cycle_times(shuffled, KINDS, as_of=AS_OF))

    def test_steps_out_of_order_within_a_deal_give_the_same_cycles(self) -> None:
        visits = an.stage_intervals(_frame(edge_rows()), KINDS, as_of=AS_OF)
        backwards = visits.sort("opportunity_id", "step", descending=[False, True])
        expected = an.cycle_times(edge_rows(), KINDS, as_of=AS_OF)
        _same_cycles(expected, an.cycle_times(backwards, KINDS, as_of=AS_OF))

    def test_pandas_visits_give_the_python_cycles(self) -> None:
        pytest.importorskip("pandas")
        expected = an.cycle_times(edge_rows(), KINDS, as_of=AS_OF)
        actual = an.cycle_times(_frame(edge_rows()).to_pandas(), KINDS, as_of=AS_OF)
        _same_cycles(expected, actual)
