"""The deal clock's in-memory shortcut (weights read by position) and its general path agree.

The in-memory path reads each deal's weight at its position when the visits come by deal
and step; visits in any other order take the join by id. Both must give the pure-Python
numbers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, edge_rows, sim_rows
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pytest.importorskip("pandas")


def to_polars(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(rows, schema={
        "opportunity_id": pl.String, "at": pl.Datetime("us", "UTC"), "seq": pl.Int64,
        "stage": pl.String, "amount": pl.Float64, "close_date": pl.Date, "reason": pl.String,
    })  # fmt: skip


def clock_figures(data: Any, kinds: dict[str, str], as_of: Any) -> dict[tuple[str, str], Any]:
    """The deal-clock columns of ``stage_probabilities`` and ``time_in_stage``, by key."""
    figures: dict[tuple[str, str], Any] = {}
    probabilities = an.stage_probabilities(data, kinds, as_of=as_of, draws=0)
    times = an.time_in_stage(data, kinds, as_of=as_of)
    for table in (probabilities, times):
        records = table
        if not isinstance(table, list):
            native = table if isinstance(table, pl.DataFrame) else pl.from_pandas(table)
            records = [type("Row", (), r) for r in native.to_dicts()]
        for r in records:
            outcome = getattr(r, "outcome", "")
            for name in ("deal_clock", "deal_clock_low", "deal_clock_effective",
                         "deal_clock_median_days", "open_share"):  # fmt: skip
                if hasattr(r, name):
                    figures[r.stage, f"{outcome}/{name}"] = getattr(r, name)
    return figures


def assert_same(expected: dict[Any, Any], actual: dict[Any, Any]) -> None:
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        other = actual[key]
        if value is None or other is None:
            assert value is other, key
        else:
            assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), (key, value, other)


def edge_case() -> tuple[list[dict[str, Any]], dict[str, str], Any]:
    return edge_rows(), KINDS, AS_OF


def simulated() -> tuple[list[dict[str, Any]], dict[str, str], Any]:
    rows, kinds, sim = sim_rows(300, seed=5)
    return rows, kinds, sim.as_of


@pytest.mark.parametrize("case", [edge_case, simulated])
@pytest.mark.parametrize("backend", ["polars", "pandas"])
def test_visits_out_of_deal_order_give_the_numbers_of_the_python_path(
    case: Any, backend: str
) -> None:
    rows, kinds, as_of = case()
    expected = clock_figures(rows, kinds, as_of)
    assert any(v is not None for v in expected.values())
    log = to_polars(rows)
    if backend == "polars":
        in_order = an.stage_intervals(log, kinds, as_of=as_of)
        mixed = in_order.sample(fraction=1.0, shuffle=True, seed=7)
    else:
        in_order = an.stage_intervals(log.to_pandas(), kinds, as_of=as_of)
        mixed = in_order.sample(frac=1.0, random_state=7)
    assert_same(expected, clock_figures(in_order, kinds, as_of))  # weights by position
    assert_same(expected, clock_figures(mixed, kinds, as_of))  # weights joined by id


@pytest.mark.parametrize("backend", ["python", "polars"])
def test_no_closed_deal_gives_no_deal_clock_median(backend: str) -> None:
    rows = [r for r in edge_rows() if KINDS[r["stage"]] == "open"]
    data = rows if backend == "python" else to_polars(rows)
    figures = clock_figures(data, KINDS, AS_OF)
    medians = [v for (_, name), v in figures.items() if name.endswith("deal_clock_median_days")]
    assert medians
    assert all(v is None for v in medians)
