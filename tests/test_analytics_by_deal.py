"""``by=`` on the deal-level analytics: each deal for the segment in force at one instant."""

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
from stagegate.currency import MixedCurrencyError

UTC = timezone.utc
AT = at(20)  # the snapshot instant
START, END = at(10), at(40)  # the waterfall's window
AS_OF = at(60)
CUTOFF = at(25)
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
BY_FIELDS = ("segment", "deals", "small", "level")

Deal = tuple[str, tuple[str, ...], int, str | None, int, int, tuple[int, str] | None]


def rows_of(deals: list[Deal]) -> list[dict[str, Any]]:
    """Rows of deals ``(owner, path, start, region, amount, push, handoff)``.

    One stage every 4 days; each step moves the close date by ``push`` days; ``handoff``
    ``(day, owner)`` passes the deal to another owner on that day after its start (a row that
    changes no stage), later rows carrying the new owner.
    """
    rows = []
    for n, (owner, path, start, region, amount, push, handoff) in enumerate(deals):
        close = date(2026, 2, 1) + timedelta(days=start)
        steps = [(start + 4 * i + 0.01 * n, stage) for i, stage in enumerate(path)]
        if handoff is not None:
            steps.append((start + handoff[0] + 0.005, None))
            steps.sort(key=lambda s: s[0])
        stage, current, seq = path[0], owner, 0
        for day, step in steps:
            seq += 1
            if step is None:
                current = handoff[1] if handoff else owner
            else:
                if seq > 1:
                    close += timedelta(days=push)
                stage = step
            if day > 100:
                continue
            rows.append(
                {
                    "opportunity_id": f"d{n:02d}",
                    "at": at(day),
                    "seq": seq,
                    "stage": stage,
                    "amount": float(amount),
                    "close_date": close,
                    "owner": current,
                    "region": region,
                }
            )
    return rows


def owner_at(rows: list[dict[str, Any]], deal: str, instant: datetime) -> str | None:
    """The owner of ``deal`` at ``instant``, read straight from its rows (``None``: no row)."""
    mine = sorted(
        (r for r in rows if r["opportunity_id"] == deal and r["at"] <= instant),
        key=lambda r: (r["at"], r["seq"]),
    )
    return mine[-1]["owner"] if mine else None


def attributed(rows: list[dict[str, Any]], instant: datetime) -> dict[str, list[dict[str, Any]]]:
    """Each owner's deals' rows, a deal for the owner in force at ``instant``."""
    result: dict[str, list[dict[str, Any]]] = {}
    for deal in sorted({r["opportunity_id"] for r in rows}):
        owner = owner_at(rows, deal, instant)
        if owner is not None:
            result.setdefault(owner, []).extend(r for r in rows if r["opportunity_id"] == deal)
    return result


def plain(records: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in attrs.asdict(r).items() if k not in BY_FIELDS} for r in records]


def of(records: Any, owner: str) -> list[Any]:
    return [r for r in records if r.segment == (owner,)]


DEALS = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy"]),
        st.sampled_from(PATHS),
        st.integers(0, 36),
        st.sampled_from(["east", "west", None]),
        st.integers(1, 9).map(lambda n: 100 * n),
        st.integers(-5, 20),
        st.none() | st.tuples(st.integers(1, 14), st.sampled_from(["ann", "bob", "dee"])),
    ),
    min_size=1,
    max_size=14,
)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(DEALS)
def test_per_deal_figures_of_a_segment_are_those_of_its_own_deals(deals: list[Deal]) -> None:
    rows = rows_of(deals)
    limits = {"lead": 3.0, "demo": 3.0, "proposal": 3.0}
    cases: list[tuple[Any, datetime]] = [
        (lambda d, **kw: an.snapshot(d, KINDS, at=AT, **kw), AT),
        (lambda d, **kw: an.snapshot(d, KINDS, at=AT, state="closed", **kw), AT),
        (lambda d, **kw: an.open_pipeline(d, KINDS, at=AT, **kw), AT),
        (lambda d, **kw: an.slippage(d, KINDS, as_of=AS_OF, flag_pushes=2, **kw).deals, AS_OF),
        (lambda d, **kw: an.waterfall(d, KINDS, start=START, end=END, **kw).deals, END),
    ]
    for function, instant in cases:
        result = function(rows, by="owner")
        parts = attributed(rows, instant)
        owners = sorted({r.segment[0] for r in result})
        assert list(dict.fromkeys(r.segment for r in result)) == [(o,) for o in owners]
        for owner in owners:
            assert plain(of(result, owner)) == plain(function(parts[owner]))
        assert sorted(plain(result), key=str) == sorted(plain(function(rows)), key=str)
    # stalled: the limits learned from every deal, so the whole's rows, split by segment
    whole = an.stalled(rows, KINDS, as_of=AS_OF, max_days=limits)
    split = an.stalled(rows, KINDS, as_of=AS_OF, max_days=limits, by="owner")
    assert sorted(plain(split), key=str) == sorted(plain(whole), key=str)
    for r in split:
        assert r.segment == (owner_at(rows, r.opportunity_id, AS_OF),)
    for owner in {r.segment[0] for r in split}:
        assert plain(of(split, owner)) == [
            plain([r])[0] for r in whole if owner_at(rows, r.opportunity_id, AS_OF) == owner
        ]


@SETTINGS
@given(DEALS)
def test_segment_tables_add_up_to_the_whole(deals: list[Deal]) -> None:
    rows = rows_of(deals)
    pipeline = an.open_pipeline(rows, KINDS, at=AT, by=("owner", "region"))
    totals = an.segment_totals(pipeline)
    whole = an.open_pipeline(rows, KINDS, at=AT)
    assert sum(t.deals for t in totals) == len(whole)
    assert sum(t.amount for t in totals) == pytest.approx(sum(r.amount or 0 for r in whole))
    assert all(t.small == (t.deals < SMALL_SAMPLE) for t in totals)

    w = an.waterfall(rows, KINDS, start=START, end=END, by="owner")
    plain_w = an.waterfall(rows, KINDS, start=START, end=END)
    parts = attributed(rows, END)
    for s in w.segments:
        own = an.waterfall(parts[s.segment[0]], KINDS, start=START, end=END)
        assert (s.open_start, s.open_end) == pytest.approx((own.open_start, own.open_end))
        assert plain([r for r in w.summary if r.segment == s.segment]) == plain(own.summary)
        change = sum(r.pipeline_change for r in w.summary if r.segment == s.segment)
        assert s.open_start + change == pytest.approx(s.open_end)
    assert sum(s.open_start for s in w.segments) == pytest.approx(plain_w.open_start)
    assert sum(s.open_end for s in w.segments) == pytest.approx(plain_w.open_end)
    for row in plain_w.summary:
        mine = [r for r in w.summary if r.category == row.category]
        assert sum(r.deals for r in mine) == row.deals
        assert sum(r.pipeline_change for r in mine) == pytest.approx(row.pipeline_change)

    slip = an.slippage(rows, KINDS, as_of=AS_OF, flag_pushes=2, by="owner")
    parts = attributed(rows, AS_OF)
    for owner in {d.segment[0] for d in slip.deals}:
        own = an.slippage(parts[owner], KINDS, as_of=AS_OF, flag_pushes=2)
        assert plain(of(slip.by_pushes, owner)) == plain(own.by_pushes)
        assert plain(of(slip.by_pushes_and_age, owner)) == plain(own.by_pushes_and_age)
    whole_slip = an.slippage(rows, KINDS, as_of=AS_OF, flag_pushes=2)
    assert (slip.slip_rate, slip.flagged) == (whole_slip.slip_rate, whole_slip.flagged)
    for row in whole_slip.by_pushes:
        assert sum(r.deals for r in slip.by_pushes if r.pushes == row.pushes) == row.deals


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS, st.integers(0, 3))
def test_forecast_levels_add_up_and_the_total_is_the_plain_forecast(
    deals: list[Deal], seed: int
) -> None:
    rows = rows_of(deals)
    kw: dict[str, Any] = {"as_of": AT, "simulations": 200, "seed": seed, "estimator": "empirical"}
    whole = an.forecast(rows, KINDS, **kw)
    f = an.forecast(rows, KINDS, by=("owner", "region"), rollup=True, **kw)
    assert (f.pipeline, f.weighted, f.unscheduled) == (
        whole.pipeline,
        whole.weighted,
        whole.unscheduled,
    )
    total = [p for p in f.periods if p.level == "all"]
    assert [p.segment for p in total] == [()] * len(total)
    same(plain(whole.periods), plain(total))  # the same draws: the same percentiles
    for level in ("owner", "region"):
        mine = [p for p in f.periods if p.level == level]
        for period in whole.periods:
            here = [p for p in mine if p.period == period.period]
            for name in ("deals", "pipeline", "weighted", "simulated_mean", "overdue"):
                assert sum(getattr(p, name) for p in here) == pytest.approx(getattr(period, name))
    leaves = {p.segment for p in f.periods if p.level == "owner"}
    parts = attributed(rows, AT)
    for owner, region in leaves:
        assert owner is not None
        own = [r for r in parts[owner] if r["region"] == region]
        expected = an.open_pipeline(own, KINDS, at=AT)
        got = [p for p in f.periods if p.level == "owner" and p.segment == (owner, region)]
        assert sum(p.pipeline for p in got) == pytest.approx(sum(r.amount for r in expected))
        assert {p.small for p in got} == {sum(p.deals for p in got) < SMALL_SAMPLE}
    plain_by = an.forecast(rows, KINDS, by=("owner", "region"), **kw)
    assert {p.level for p in plain_by.periods} <= {None}
    assert plain(plain_by.periods) == plain([p for p in f.periods if p.level == "owner"])


def test_percentiles_do_not_add_up_but_means_do() -> None:
    # 40 deals of 100 in lead, half of past lead deals won: p = 0.5 each, ten deals per rep
    rows = rows_of(
        [(f"r{i % 4}", ("lead",), 30, "east", 1, 0, None) for i in range(40)]
        + [("old", ("lead", "won"), 0, "west", 1, 0, None)] * 10
        + [("old", ("lead", "lost"), 0, "west", 1, 0, None)] * 10
    )
    f = an.forecast(rows, KINDS, as_of=AS_OF, by="owner", rollup=True, simulations=4000,
                    slip=False, estimator="empirical")  # fmt: skip
    reps = [p for p in f.periods if p.level == "owner" and p.segment[0] != "old"]
    (everyone,) = [p for p in f.periods if p.level == "all"]
    assert sum(p.simulated_mean for p in reps) == pytest.approx(everyone.simulated_mean)
    assert sum(p.weighted for p in reps) == pytest.approx(everyone.weighted)
    # the P10 of the sum is above the sum of the P10s: the reps' bad runs rarely coincide
    assert everyone.p10 > sum(p.p10 for p in reps)
    assert everyone.p90 < sum(p.p90 for p in reps)


def test_the_vectorized_simulation_gives_the_plain_forecast_too() -> None:
    rows = rows_of(
        [(["ann", "bob"][i % 2], PATHS[i % len(PATHS)], i % 30, "east", 1 + i % 7, i % 9 - 2, None)
         for i in range(60)]
    )  # fmt: skip
    kw: dict[str, Any] = {"as_of": AT, "simulations": 3000, "seed": 7}
    whole = an.forecast(rows, KINDS, **kw)
    f = an.forecast(rows, KINDS, by="owner", rollup=True, **kw)
    same(plain(whole.periods), plain([p for p in f.periods if p.level == "all"]))
    reps = [p for p in f.periods if p.level == "owner"]
    for period in whole.periods:
        here = [p.simulated_mean for p in reps if p.period == period.period]
        assert sum(here) == pytest.approx(period.simulated_mean)


def test_a_reassigned_deal_counts_for_its_owner_at_each_instant() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    process = b2b()
    moved = Opportunity.open(
        process, "moved", at=t, actor="crm", owner="ann", amount=500, close_date=date(2026, 2, 20)
    )
    moved.record_history("qualification", at=t + timedelta(days=2), actor="crm")
    moved.reassign("bob", at=t + timedelta(days=10), actor="boss")
    stays = Opportunity.open(
        process, "stays", at=t, actor="crm", owner="bob", amount=200, close_date=date(2026, 2, 10)
    )
    deals, as_of = [moved, stays], t + timedelta(days=20)
    before = an.open_pipeline(deals, process, at=t + timedelta(days=5), by="owner")
    assert [(r.segment, r.opportunity_id) for r in before] == [
        (("ann",), "moved"),
        (("bob",), "stays"),
    ]
    now = an.open_pipeline(deals, process, at=as_of, by="owner")
    assert [(r.segment, r.opportunity_id) for r in now] == [
        (("bob",), "moved"),
        (("bob",), "stays"),
    ]
    assert [(t.segment, t.deals, t.amount) for t in an.segment_totals(now)] == [(("bob",), 2, 700)]
    late = an.stalled(deals, process, as_of=as_of, by="owner", max_days={"qualification": 1})
    assert [(r.segment, r.opportunity_id) for r in late] == [(("bob",), "moved")]
    f = an.forecast(deals, process, as_of=as_of, by="owner", estimator="configured")
    assert {p.segment for p in f.periods} == {("bob",)}
    assert sum(p.pipeline for p in f.periods) == 700
    w = an.waterfall(deals, process, start=t + timedelta(days=5), end=as_of, by="owner")
    assert [(s.segment, s.deals, s.open_start, s.open_end) for s in w.segments] == [
        (("bob",), 2, 700, 700)
    ]


def frame_of(rows: list[dict[str, Any]], backend: str) -> Any:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(rows)
    if backend == "pandas":
        return frame.to_pandas()
    if backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        return duckdb.from_arrow(frame.to_arrow())
    return frame


def reference(records: Any, columns: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[Any]:
    """What a frame of ``by=`` records should hold: segment columns, ``extra``, then fields."""
    result = []
    for r in records:
        values = attrs.asdict(r)
        row: dict[str, Any] = {}
        if values.get("level") is not None:
            row["level"] = values["level"]
            offset = len(columns) - len(r.segment)
            row.update({c: r.segment[i - offset] if i >= offset else None
                        for i, c in enumerate(columns)})  # fmt: skip
        else:
            row.update(dict(zip(columns, r.segment, strict=True)))
        row.update({k: values[k] for k in extra})
        row.update(
            {f.name: values[f.name] for f in attrs.fields(type(r)) if not f.metadata.get("by")}
        )
        result.append(row)
    return normalize(result)


def _drop_none(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def matches(expected: Any, got: Any, by: tuple[str, ...], extra: tuple[str, ...] = ()) -> None:
    """A ``by=`` frame holds the records' numbers, its segment columns (and ``extra``) first."""
    result = normalize(got)
    columns = ("level", *by) if any(getattr(r, "level", None) for r in expected) else by
    if result:
        assert tuple(result[0])[: len(columns) + len(extra)] == (*columns, *extra)
    same(
        sorted(_drop_none(reference(expected, by, extra)), key=str),
        sorted(_drop_none(result), key=str),
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS)
def test_a_polars_frame_gives_the_pure_python_numbers(deals: list[Deal]) -> None:
    rows = rows_of(deals)
    frame = frame_of(rows, "polars")
    by = ("owner",)
    for function in (
        lambda d: an.snapshot(d, KINDS, at=AT, by=by),
        lambda d: an.stalled(d, KINDS, as_of=AS_OF, max_days={"lead": 3.0}, by=by),
        lambda d: an.slippage(d, KINDS, as_of=AS_OF, by=by).deals,
        lambda d: an.waterfall(d, KINDS, start=START, end=END, by=by).deals,
    ):
        matches(function(rows), function(frame), by)
    w_rows = an.waterfall(rows, KINDS, start=START, end=END, by=by)
    matches(w_rows.summary, an.waterfall(frame, KINDS, start=START, end=END, by=by).summary,
            by, ("small",))  # fmt: skip
    f_rows = an.forecast(rows, KINDS, as_of=AT, by=by, rollup=True, simulations=50)
    f_frame = an.forecast(frame, KINDS, as_of=AT, by=by, rollup=True, simulations=50)
    matches(f_rows.periods, f_frame.periods, by, ("small",))


@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
def test_frames_give_the_pure_python_numbers_with_the_segment_columns_first(
    backend: str,
) -> None:
    deals: list[Deal] = [
        (["ann", "bob", "cy"][i % 3], PATHS[i % len(PATHS)], i % 37, ["east", "west", None][i % 3],
         100 * (1 + i % 5), i % 11 - 3, (3, "dee") if i % 7 == 0 else None)
        for i in range(45)
    ]  # fmt: skip
    rows = rows_of(deals)
    frame = frame_of(rows, backend)
    by = ("owner", "region")

    def check(
        expected: Any, got: Any, extra: tuple[str, ...] = (), by: tuple[str, ...] = by
    ) -> None:
        matches(expected, got, by, extra)

    check(an.snapshot(rows, KINDS, at=AT, by=by), an.snapshot(frame, KINDS, at=AT, by=by))
    check(an.open_pipeline(rows, KINDS, at=AT, by=by), an.open_pipeline(frame, KINDS, at=AT, by=by))
    limits = {"lead": 3.0, "demo": 3.0}
    check(
        an.stalled(rows, KINDS, as_of=AS_OF, max_days=limits, by=by),
        an.stalled(frame, KINDS, as_of=AS_OF, max_days=limits, by=by),
    )
    s_rows = an.slippage(rows, KINDS, as_of=AS_OF, by=by)
    s_frame = an.slippage(frame, KINDS, as_of=AS_OF, by=by)
    check(s_rows.deals, s_frame.deals)
    check(s_rows.by_pushes, s_frame.by_pushes, ("small",))
    check(s_rows.by_pushes_and_age, s_frame.by_pushes_and_age, ("small",))
    w_rows = an.waterfall(rows, KINDS, start=START, end=END, by=by)
    w_frame = an.waterfall(frame, KINDS, start=START, end=END, by=by)
    check(w_rows.deals, w_frame.deals)
    check(w_rows.summary, w_frame.summary, ("small",))
    check(w_rows.segments, w_frame.segments)
    assert (w_rows.open_start, w_rows.open_end) == pytest.approx(
        (w_frame.open_start, w_frame.open_end)
    )
    for rollup in (False, True):
        f_rows = an.forecast(rows, KINDS, as_of=AT, by=by, rollup=rollup, simulations=100)
        f_frame = an.forecast(frame, KINDS, as_of=AT, by=by, rollup=rollup, simulations=100)
        check(f_rows.periods, f_frame.periods, ("small",))
    b_rows = an.backtest(rows, KINDS, cutoff=CUTOFF, as_of=AS_OF, by="owner")
    b_frame = an.backtest(frame, KINDS, cutoff=CUTOFF, as_of=AS_OF, by="owner")
    assert [(b.segment, b.small, b.best) for b in b_rows] == [
        (b.segment, b.small, b.best) for b in b_frame
    ]
    for one, other in zip(b_rows, b_frame, strict=True):
        check(one.scores, other.scores, ("small",), ("owner",))
        check(one.reliability, other.reliability, ("small",), ("owner",))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS)
def test_backtest_per_segment_is_the_backtest_of_its_deals_at_the_cutoff(
    deals: list[Deal],
) -> None:
    rows = rows_of(deals)
    result = an.backtest(rows, KINDS, cutoff=CUTOFF, as_of=AS_OF, by="owner")
    parts = attributed(rows, CUTOFF)
    assert [b.segment for b in result] == [(o,) for o in sorted(parts)]
    for b in result:
        own = an.backtest(parts[b.segment[0]], KINDS, cutoff=CUTOFF, as_of=AS_OF)
        assert (b.best, b.reason, b.baselines, b.static) == (
            own.best,
            own.reason,
            own.baselines,
            own.static,
        )
        assert plain(b.scores) == plain(own.scores)
        assert plain(b.reliability) == plain(own.reliability)
        scored = max(s.deals for s in own.scores)
        assert b.small == (scored < SMALL_SAMPLE)
        assert {(s.segment, s.small) for s in b.scores} == {(b.segment, b.small)}


def test_by_must_name_columns_that_are_not_result_columns() -> None:
    rows = rows_of([("ann", ("lead",), 0, None, 100, 0, None)])
    with pytest.raises(AnalyticsError, match="column name"):
        an.snapshot(rows, KINDS, at=AT, by=())
    calls = [
        lambda by: an.snapshot(rows, KINDS, at=AT, by=by),
        lambda by: an.open_pipeline(rows, KINDS, at=AT, by=by),
        lambda by: an.stalled(rows, KINDS, as_of=AS_OF, by=by),
        lambda by: an.slippage(rows, KINDS, as_of=AS_OF, by=by),
        lambda by: an.waterfall(rows, KINDS, start=START, end=END, by=by),
        lambda by: an.forecast(rows, KINDS, as_of=AS_OF, by=by),
        lambda by: an.backtest(rows, KINDS, cutoff=CUTOFF, as_of=AS_OF, by=by),
    ]
    for call, column in zip(
        calls,
        ["stage", "amount", "limit_days", "pushes", "category", "period", "brier"],
        strict=True,
    ):
        with pytest.raises(AnalyticsError, match="rename"):
            call(column)
        with pytest.raises(AnalyticsError, match="rename"):
            call(("owner", "small"))
    with pytest.raises(AnalyticsError, match="rollup"):
        an.forecast(rows, KINDS, as_of=AS_OF, rollup=True)
    with pytest.raises(AnalyticsError, match="estimator"):
        an.forecast(rows, KINDS, as_of=AS_OF, by="owner", estimator="nope")


@pytest.mark.parametrize("backend", ["python", "polars"])
def test_mixed_currencies_are_refused_per_call_with_by(backend: str) -> None:
    rows = rows_of(
        [("ann", ("lead",), 0, None, 100, 0, None), ("bob", ("lead",), 1, None, 5, 0, None)]
    )
    rows[0]["currency"], rows[1]["currency"] = "EUR", "USD"
    data: Any = rows if backend == "python" else frame_of(rows, backend)
    for call in (
        lambda: an.open_pipeline(data, KINDS, at=AT, by="owner"),
        lambda: an.waterfall(data, KINDS, start=START, end=END, by="owner"),
        lambda: an.forecast(data, KINDS, as_of=AT, by="owner", rollup=True),
    ):
        with pytest.raises(MixedCurrencyError):
            call()


def test_a_one_shot_iterator_is_read_once() -> None:
    rows = rows_of([("ann", ("lead", "demo"), 0, None, 100, 3, None)])
    got = an.open_pipeline(iter(rows), KINDS, at=AT, by="owner")
    assert [(r.segment, r.opportunity_id) for r in got] == [(("ann",), "d00")]
    f = an.forecast(iter(rows), KINDS, as_of=AT, by="owner", simulations=10)
    assert [p.segment for p in f.periods] == [("ann",)]


@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
def test_segment_totals_of_a_frame_equal_those_of_the_rows(backend: str) -> None:
    deals: list[Deal] = [
        (["ann", "bob"][i % 2], PATHS[i % len(PATHS)], i % 20, ["east", None][i % 2], 100 * i,
         0, None)
        for i in range(12)
    ]  # fmt: skip
    rows = rows_of(deals)
    rows[0]["amount"] = None  # an unknown amount counts as 0
    frame = frame_of(rows, backend)
    expected = an.segment_totals(an.open_pipeline(rows, KINDS, at=AT, by=("owner", "region")))
    got = an.segment_totals(
        an.open_pipeline(frame, KINDS, at=AT, by=("owner", "region")), by=("owner", "region")
    )
    assert got == expected
    with pytest.raises(AnalyticsError, match="by="):
        an.segment_totals(an.open_pipeline(frame, KINDS, at=AT, by="owner"))
    with pytest.raises(AnalyticsError, match="by="):
        an.segment_totals(an.open_pipeline(rows, KINDS, at=AT))
