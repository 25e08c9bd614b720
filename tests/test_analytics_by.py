"""``by=`` on stage_probabilities and time_in_stage: per segment, attributed at stage entry."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_data import KINDS, at, normalize, same
from stagegate import Opportunity, b2b
from stagegate import analytics as an
from stagegate.analytics.outcomes import AnalyticsError
from stagegate.analytics.review import SMALL_SAMPLE

UTC = timezone.utc
AS_OF = at(60)
PATHS = (
    ("lead",),
    ("lead", "demo"),
    ("lead", "won"),
    ("lead", "lost"),
    ("lead", "demo", "won"),
    ("lead", "demo", "lost"),
    ("lead", "demo", "proposal", "won"),
    ("lead", "demo", "proposal", "lost"),
    ("lead", "demo", "proposal"),
    ("lead", "proposal", "lost"),
)


def rows_of(deals: list[tuple[str, tuple[str, ...], int, str | None]]) -> list[dict[str, Any]]:
    """Rows of deals ``(owner, path, start day, region)``, one stage every 3 days."""
    rows = []
    for n, (owner, path, start, region) in enumerate(deals):
        for step, stage in enumerate(path):
            rows.append(
                {
                    "opportunity_id": f"d{n}",
                    "at": at(start + 3 * step + 0.5 * n / len(deals)),
                    "seq": step + 1,
                    "stage": stage,
                    "amount": 100.0,
                    "close_date": date(2026, 3, 1),
                    "reason": None,
                    "owner": owner,
                    "region": region,
                }
            )
    return rows


def plain(records: list[Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in attrs.asdict(r).items() if k not in ("segment", "deals", "small")}
        for r in records
    ]


DEALS = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy"]),
        st.sampled_from(PATHS),
        st.integers(0, 30),
        st.sampled_from(["east", "west", None]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS)
def test_each_segment_equals_the_function_on_its_own_deals(
    deals: list[tuple[str, tuple[str, ...], int, str | None]],
) -> None:
    rows = rows_of(deals)
    for function in (an.stage_probabilities, an.time_in_stage):
        kwargs: dict[str, Any] = {"draws": 0} if function is an.stage_probabilities else {}
        result = function(rows, KINDS, as_of=AS_OF, by=("owner", "region"), **kwargs)
        keys = sorted({(d[0], d[3]) for d in deals}, key=lambda k: (k[0], k[1] is None, k[1]))
        assert list(dict.fromkeys(r.segment for r in result)) == keys
        for key in keys:
            subset = [r for r in rows if (r["owner"], r["region"]) == key]
            expected = function(subset, KINDS, as_of=AS_OF, **kwargs)
            expected = [r for r in expected if getattr(r, "reached", 1)]  # stages none reached
            got = [r for r in result if r.segment == key]
            assert plain(got) == plain(expected)
            n = len({r["opportunity_id"] for r in subset if r["stage"] == "lead"})
            lead = [r for r in got if r.stage == "lead"]
            assert {r.deals for r in lead} == {n}
            assert {r.small for r in lead} == {n < SMALL_SAMPLE}


def test_a_reassigned_deal_counts_for_its_owner_at_stage_entry() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    process = b2b()
    moved = Opportunity.open(process, "moved", at=t, actor="crm", owner="ann")
    moved.record_history("qualification", at=t + timedelta(days=2), actor="crm")
    moved.reassign("bob", at=t + timedelta(days=3), actor="boss")
    moved.record_history("needs_analysis", at=t + timedelta(days=5), actor="crm")
    moved.record_history("won", at=t + timedelta(days=9), actor="crm")
    stays = Opportunity.open(process, "stays", at=t, actor="crm", owner="bob")
    stays.record_history("qualification", at=t + timedelta(days=1), actor="crm")
    stays.record_history("lost", at=t + timedelta(days=4), actor="crm")
    as_of = t + timedelta(days=20)
    got = an.stage_probabilities([moved, stays], process, as_of=as_of, by="owner", draws=0)
    table = {(r.segment, r.stage): r for r in got}
    # ann owned "moved" when it entered lead and qualification; bob when it entered needs analysis
    assert (table[("ann",), "lead_generation"].reached, table[("ann",), "lead_generation"].won) == (
        1,
        1,
    )
    assert table[("ann",), "qualification"].deals == 1
    assert (("ann",), "needs_analysis") not in table
    assert (table[("bob",), "needs_analysis"].reached, table[("bob",), "needs_analysis"].won) == (
        1,
        1,
    )
    assert (table[("bob",), "qualification"].reached, table[("bob",), "qualification"].won) == (
        1,
        0,
    )
    assert table[("bob",), "qualification"].small
    times = an.time_in_stage([moved, stays], process, as_of=as_of, by="owner")
    dwell = {(r.segment, r.stage, r.outcome): r.mean_days for r in times}
    assert dwell[("ann",), "qualification", "won"] == pytest.approx(3.0)
    assert dwell[("bob",), "needs_analysis", "won"] == pytest.approx(4.0)
    assert (("bob",), "needs_analysis", "lost") not in dwell


@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
def test_frames_give_the_pure_python_numbers_with_the_segment_columns_first(
    backend: str,
) -> None:
    pl = pytest.importorskip("polars")
    rows = rows_of(
        [("ann", PATHS[i % len(PATHS)], i, ["east", "west", None][i % 3]) for i in range(24)]
    )
    frame = pl.DataFrame(rows)
    if backend == "pandas":
        frame = frame.to_pandas()
    elif backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        frame = duckdb.from_arrow(frame.to_arrow())
    for function in (an.stage_probabilities, an.time_in_stage):
        kwargs: dict[str, Any] = {"draws": 0} if function is an.stage_probabilities else {}
        expected = function(rows, KINDS, as_of=AS_OF, by="region", **kwargs)
        result = normalize(function(frame, KINDS, as_of=AS_OF, by="region", **kwargs))
        assert list(result[0])[:3] == ["region", "deals", "small"]
        reference = []
        for r in expected:
            record = {"region": r.segment[0], "deals": r.deals, "small": r.small}
            record.update(plain([r])[0])
            reference.append(record)
        same(
            [{k: v for k, v in r.items() if v is not None} for r in reference],
            [{k: v for k, v in r.items() if v is not None} for r in result],
        )


def test_by_must_name_columns_that_are_not_result_columns() -> None:
    rows = rows_of([("ann", ("lead",), 0, None)])
    with pytest.raises(AnalyticsError, match="column name"):
        an.time_in_stage(rows, KINDS, as_of=AS_OF, by=())
    with pytest.raises(AnalyticsError, match="rename"):
        an.time_in_stage(rows, KINDS, as_of=AS_OF, by="outcome")
    with pytest.raises(AnalyticsError, match="rename"):
        an.cycle_times(rows, KINDS, as_of=AS_OF, by="stages")


@pytest.mark.parametrize("backend", ["python", "polars", "pandas", "duckdb"])
def test_a_table_row_that_changes_the_owner_moves_the_later_stages(backend: str) -> None:
    pl = pytest.importorskip("polars")
    rows = rows_of(
        [("ann", ("lead", "demo", "won"), 0, "east"), ("bob", ("lead", "lost"), 1, "east")]
    )
    # deal d0 passes to bob on day 2, in lead (a row that changes no stage): demo is bob's
    rows.append({**rows[0], "at": at(2), "seq": 9, "owner": "bob"})
    for r in rows:
        if r["opportunity_id"] == "d0" and r["stage"] != "lead":
            r["owner"] = "bob"  # a row carries the owner in force from its instant on
    data: Any = rows
    if backend != "python":
        data = pl.DataFrame(rows)
        if backend == "pandas":
            data = data.to_pandas()
        elif backend == "duckdb":
            duckdb = pytest.importorskip("duckdb")
            data = duckdb.from_arrow(data.to_arrow())
    got = normalize(an.stage_probabilities(data, KINDS, as_of=AS_OF, by="owner", draws=0))
    table = {(r.get("owner") or r["segment"][0], r["stage"]): r for r in got}
    assert sorted(table) == [("ann", "lead"), ("bob", "demo"), ("bob", "lead")]
    assert (table["ann", "lead"]["reached"], table["ann", "lead"]["won"]) == (1, 1)
    assert (table["bob", "lead"]["reached"], table["bob", "lead"]["won"]) == (1, 0)
    assert (table["bob", "demo"]["deals"], table["bob", "demo"]["won"]) == (1, 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS)
def test_cycle_times_per_segment_equal_those_of_its_own_deals(
    deals: list[tuple[str, tuple[str, ...], int, str | None]],
) -> None:
    rows = rows_of(deals)
    result = an.cycle_times(rows, KINDS, as_of=AS_OF, by="owner")
    closed = {d[0] for d in deals if d[1][-1] in ("won", "lost")}
    assert list(dict.fromkeys(r.segment for r in result.summary)) == [(o,) for o in sorted(closed)]
    for owner in sorted(closed):
        expected = an.cycle_times([r for r in rows if r["owner"] == owner], KINDS, as_of=AS_OF)
        assert [attrs.evolve(d, segment=(owner,)) for d in expected.deals] == [
            d for d in result.deals if d.segment == (owner,)
        ]
        summary = [s for s in result.summary if s.segment == (owner,)]
        assert [
            attrs.evolve(s, segment=(owner,), small=s.deals < SMALL_SAMPLE)
            for s in expected.summary
        ] == summary


@pytest.mark.parametrize("backend", ["python", "polars", "pandas", "duckdb"])
def test_a_deal_reassigned_before_its_close_counts_for_the_new_owner(backend: str) -> None:
    pl = pytest.importorskip("polars")
    rows = rows_of(
        [("ann", ("lead", "demo", "won"), 0, "east"), ("ann", ("lead", "lost"), 1, "east")]
    )
    for r in rows:
        if r["opportunity_id"] == "d0" and r["stage"] == "won":
            r["owner"] = "bob"  # d0 passed to bob when it was won, on day 6
    data: Any = rows
    if backend != "python":
        data = pl.DataFrame(rows)
        if backend == "pandas":
            data = data.to_pandas()
        elif backend == "duckdb":
            duckdb = pytest.importorskip("duckdb")
            data = duckdb.from_arrow(data.to_arrow())
    result = an.cycle_times(data, KINDS, as_of=AS_OF, by="owner")
    summary = normalize(result.summary)
    table = {(r.get("owner") or r["segment"][0], r["outcome"]): r for r in summary}
    assert (table["bob", "won"]["deals"], table["bob", "won"]["mean_days"]) == (1, 6.0)
    assert (table["ann", "lost"]["deals"], table["ann", "won"]["deals"]) == (1, 0)
    assert table["ann", "closed"]["small"]
    if backend != "python":
        assert list(summary[0])[:2] == ["owner", "small"]
        assert sorted(r["owner"] for r in normalize(result.deals)) == ["ann", "bob"]
