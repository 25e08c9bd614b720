"""The funnel of in-memory visits (counted on stage codes) equals the pure-Python funnel."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import AS_OF, KINDS, at, edge_rows, normalize
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")
pytest.importorskip("numpy")

STAGES = list(KINDS)


def _frame(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(
        rows,
        schema={
            "opportunity_id": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "seq": pl.Int64,
            "stage": pl.String,
            "reason": pl.String,
        },
    )


def _tables(result: Any) -> tuple[Any, Any, int]:
    return normalize(result.stages), normalize(result.losses), result.deals


@st.composite
def _logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Deals wandering over the stages: skips, backward moves, re-entries, reopenings."""
    rows = []
    for deal in range(draw(st.integers(1, 8))):
        path = draw(st.lists(st.sampled_from(STAGES), min_size=1, max_size=9))
        for seq, stage in enumerate(path, start=1):
            reason = draw(st.sampled_from([None, "price", "timing"])) if stage == "lost" else None
            rows.append(
                {
                    "opportunity_id": f"d{deal}",
                    "at": at(seq),
                    "seq": seq,
                    "stage": stage,
                    "reason": reason,
                }
            )
    return rows


class TestInMemoryFunnel:
    @settings(max_examples=60, deadline=None)
    @given(_logs())
    def test_random_logs_give_the_python_funnel(self, rows: list[dict[str, Any]]) -> None:
        expected = an.funnel(rows, KINDS, as_of=at(30))
        assert _tables(expected) == _tables(an.funnel(_frame(rows), KINDS, as_of=at(30)))

    def test_visits_out_of_deal_order_give_the_same_funnel(self) -> None:
        visits = an.stage_intervals(_frame(edge_rows()), KINDS, as_of=AS_OF)
        shuffled = visits.sample(fraction=1.0, shuffle=True, seed=7)
        expected = _tables(an.funnel(edge_rows(), KINDS, as_of=AS_OF))
        assert expected == _tables(an.funnel(shuffled, KINDS, as_of=AS_OF))

    def test_steps_out_of_order_within_a_deal_give_the_same_funnel(self) -> None:
        visits = an.stage_intervals(_frame(edge_rows()), KINDS, as_of=AS_OF)
        backwards = visits.sort("opportunity_id", "step", descending=[False, True])
        expected = _tables(an.funnel(edge_rows(), KINDS, as_of=AS_OF))
        assert expected == _tables(an.funnel(backwards, KINDS, as_of=AS_OF))

    def test_pandas_visits_give_the_python_funnel(self) -> None:
        pytest.importorskip("pandas")
        expected = _tables(an.funnel(edge_rows(), KINDS, as_of=AS_OF))
        actual = an.funnel(_frame(edge_rows()).to_pandas(), KINDS, as_of=AS_OF)
        assert expected == _tables(actual)
