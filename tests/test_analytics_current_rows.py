"""The in-memory snapshot and slippage read the rows ordered by deal: any log, any order."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import KINDS, at, canonical_schema, normalize, same
from stagegate import analytics as an
from stagegate.analytics.intervals import prepare
from stagegate.analytics.snapshot import current_frame, open_deals, ordered_rows

pl = pytest.importorskip("polars")
pytest.importorskip("pandas")
pytest.importorskip("narwhals")

STAGES = list(KINDS)
SETTINGS = settings(max_examples=60, deadline=None)
AS_OF = at(30)
SCHEMA = {k: v for k, v in canonical_schema().items() if k != "reason"}  # no lost reasons
BACKENDS = {
    "polars": lambda rows: pl.DataFrame(rows, schema=SCHEMA),
    "pandas": lambda rows: pl.DataFrame(rows, schema=SCHEMA).to_pandas(),
}


@st.composite
def dated_logs(draw: Any) -> list[dict[str, Any]]:
    """Deals with stage moves, amounts and close dates: set, repeated, cleared, moved."""
    rows = []
    closes = st.one_of(
        st.none(), st.integers(-40, 400).map(lambda d: date(2026, 1, 1) + timedelta(d))
    )
    for n in range(draw(st.integers(1, 6))):
        t = draw(st.floats(0, 5))
        close = draw(closes)
        for seq in range(1, draw(st.integers(1, 7)) + 1):
            if draw(st.booleans()):  # a reschedule, a clearing, or the same date again
                close = draw(st.one_of(closes, st.just(close)))
            stage = draw(st.sampled_from(STAGES))
            amount = draw(st.one_of(st.none(), st.sampled_from([5.0, 10.0])))
            rows.append(
                {
                    "opportunity_id": f"o{n}",
                    "at": at(t),
                    "stage": stage,
                    "seq": seq,
                    "amount": amount,
                    "close_date": close,
                }
            )
            t += draw(st.sampled_from([0.0, 0.5, 1.0, 7.0, 20.0]))  # some rows after as_of
    return rows


def _slippage(data: Any, fiscal_year_start: int) -> dict[str, Any]:
    slips = an.slippage(
        data, KINDS, as_of=AS_OF, flag_pushes=2, fiscal_year_start=fiscal_year_start
    )
    return {
        "deals": normalize(slips.deals),
        "by_pushes": normalize(slips.by_pushes),
        "by_pushes_and_age": normalize(slips.by_pushes_and_age),
        "slip_rate": slips.slip_rate,
        "flagged": slips.flagged,
    }


class TestSnapshot:
    @SETTINGS
    @given(dated_logs(), st.sampled_from(sorted(BACKENDS)), st.randoms(use_true_random=False))
    def test_in_memory_snapshot_equals_the_python_one_in_any_row_order(
        self, rows: Any, backend: str, shuffle: random.Random
    ) -> None:
        expected = normalize(an.snapshot(rows, KINDS, at=AS_OF))
        shuffled = rows[:]
        shuffle.shuffle(shuffled)
        for order in (rows, shuffled):
            actual = an.snapshot(BACKENDS[backend](order), KINDS, at=AS_OF)
            same(expected, normalize(actual))  # by id, not sorted afterwards

    @SETTINGS
    @given(dated_logs(), st.randoms(use_true_random=False))
    def test_open_deals_of_rows_in_any_order_equal_the_python_ones(
        self, rows: Any, shuffle: random.Random
    ) -> None:
        names = ("stage", "dwell_days", "amount", "close_day")
        expected = open_deals(prepare(rows, KINDS, as_of=AS_OF, keep_rows=True))
        shuffle.shuffle(rows)
        frame = pl.DataFrame(rows, schema=SCHEMA)
        actual = open_deals(prepare(frame, KINDS, as_of=AS_OF, keep_rows=True))
        same([dict(zip(names, r, strict=True)) for r in expected],
             [dict(zip(names, r, strict=True)) for r in actual])  # fmt: skip

    def test_the_ordered_rows_are_computed_once_per_prepared_log(self) -> None:
        rows = [{"opportunity_id": "a", "at": at(1), "stage": "lead", "seq": 1,
                 "amount": 1.0, "close_date": None}]  # fmt: skip
        prepared = prepare(pl.DataFrame(rows, schema=SCHEMA), KINDS, as_of=AS_OF, keep_rows=True)
        first, marks = ordered_rows(prepared)
        assert ordered_rows(prepared)[0] is first
        assert [True] == marks["start"].to_list() == marks["end"].to_list()

    def test_threads_asking_at_once_share_one_current_state(self) -> None:
        rows = [{"opportunity_id": f"o{i}", "at": at(1), "stage": "lead", "seq": 1,
                 "amount": 1.0, "close_date": None} for i in range(50)]  # fmt: skip
        prepared = prepare(pl.DataFrame(rows, schema=SCHEMA), KINDS, as_of=AS_OF, keep_rows=True)
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda _: current_frame(prepared), range(8)))
        assert all(frame is found[0] for frame in found)


class TestSlippage:
    @SETTINGS
    @given(
        dated_logs(),
        st.sampled_from(sorted(BACKENDS)),
        st.sampled_from([1, 2, 11]),
        st.randoms(use_true_random=False),
    )
    def test_in_memory_slippage_equals_the_python_one_in_any_row_order(
        self, rows: Any, backend: str, fiscal_year_start: int, shuffle: random.Random
    ) -> None:
        expected = _slippage(rows, fiscal_year_start)
        shuffled = rows[:]
        shuffle.shuffle(shuffled)
        for order in (rows, shuffled):
            actual = _slippage(BACKENDS[backend](order), fiscal_year_start)
            for name in ("deals", "by_pushes", "by_pushes_and_age"):
                same(expected[name], actual[name])
            assert expected["slip_rate"] == actual["slip_rate"]
            assert expected["flagged"] == actual["flagged"]

    def test_a_deal_without_any_close_date_is_left_out_between_dated_ones(self) -> None:
        c = date(2026, 3, 1)
        rows = [
            {
                "opportunity_id": o,
                "at": at(1),
                "stage": "lead",
                "seq": 1,
                "amount": None,
                "close_date": close,
            }
            for o, close in (("a", c), ("b", None), ("c", c + timedelta(5)))
        ]
        rows.append({"opportunity_id": "c", "at": at(2), "stage": "won", "seq": 2,
                     "amount": None, "close_date": c + timedelta(40)})  # fmt: skip
        slips = an.slippage(pl.DataFrame(rows, schema=SCHEMA), KINDS, as_of=AS_OF)
        deals = slips.deals.select("opportunity_id", "outcome", "pushes", "age_days").rows()
        assert [("a", "open", 0, 29.0), ("c", "won", 1, 1.0)] == deals
