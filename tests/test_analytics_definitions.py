"""Each metric means what its one-line definition says (issue 16), on every backend.

Every case is a small log with an expectation worked out by hand; each runs on the
pure-Python path and on Polars, pandas and DuckDB frames, which must give the same answer.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import KINDS, at, canonical_schema, normalize, sim_rows
from stagegate import analytics as an
from stagegate.analytics.velocity import VELOCITY_ESTIMATOR

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pandas")
pytest.importorskip("narwhals")

AS_OF = at(30)
SCHEMA = canonical_schema()
BACKENDS = ["python", "polars", "pandas", "duckdb"]


def log(*rows: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Rows ``(opportunity, day, stage, amount, close_date[, reason])``; seq in given order."""
    result = []
    for seq, (opp, day, stage, amount, close, *reason) in enumerate(rows, start=1):
        result.append(
            {
                "opportunity_id": opp,
                "at": at(day),
                "seq": seq,
                "stage": stage,
                "amount": amount,
                "close_date": close,
                "reason": reason[0] if reason else None,
            }
        )
    return result


def on(backend: str, rows: list[dict[str, Any]]) -> Any:
    if backend == "python":
        return rows
    frame = pl.DataFrame(rows, schema=SCHEMA)
    if backend == "pandas":
        return frame.to_pandas()
    if backend == "duckdb":
        return duckdb.from_arrow(frame.to_arrow())
    return frame


def records(result: Any) -> list[dict[str, Any]]:
    return normalize(result)


def by_id(result: Any) -> dict[str, dict[str, Any]]:
    return {r["opportunity_id"]: r for r in records(result)}


D = date(2026, 1, 1)


def day(month: int, dom: int) -> date:
    return date(2026, month, dom)


@pytest.mark.parametrize("backend", BACKENDS)
class TestSlippage:
    def test_a_cleared_date_keeps_the_first_known_date_and_the_push_across_it(
        self, backend: str
    ) -> None:
        rows = log(
            ("a", 0, "lead", 1.0, day(1, 30)),
            ("a", 1, "lead", 1.0, None),
            ("a", 2, "lead", 1.0, day(2, 20)),
        )
        a = by_id(an.slippage(on(backend, rows), KINDS, as_of=AS_OF).deals)["a"]
        assert (a["first_close_date"], a["current_close_date"]) == (day(1, 30), day(2, 20))
        assert (a["pushes"], a["days_pushed"], a["net_days"]) == (1, 21, 21)
        assert (a["month_pushes"], a["months_crossed"]) == (1, 1)

    def test_a_date_cleared_at_the_end_keeps_the_first_date_and_no_current_one(
        self, backend: str
    ) -> None:
        rows = log(
            ("b", 0, "lead", 1.0, day(1, 30)),
            ("b", 1, "lead", 1.0, day(2, 15)),
            ("b", 2, "lead", 1.0, None),
        )
        b = by_id(an.slippage(on(backend, rows), KINDS, as_of=AS_OF).deals)["b"]
        assert b["first_close_date"] == day(1, 30)
        assert b["current_close_date"] is None
        assert b["net_days"] is None
        assert (b["pushes"], b["days_pushed"]) == (1, 16)

    def test_clearing_then_setting_an_earlier_date_is_a_pull(self, backend: str) -> None:
        rows = log(
            ("c", 0, "lead", 1.0, day(3, 10)),
            ("c", 1, "lead", 1.0, None),
            ("c", 2, "lead", 1.0, day(2, 1)),
        )
        c = by_id(an.slippage(on(backend, rows), KINDS, as_of=AS_OF).deals)["c"]
        assert (c["pushes"], c["pulls"], c["days_pulled"], c["net_days"]) == (0, 1, 37, -37)

    def test_month_pushes_count_pushes_and_months_crossed_count_boundaries(
        self, backend: str
    ) -> None:
        rows = log(
            ("d", 0, "lead", 1.0, day(1, 31)),
            ("d", 1, "lead", 1.0, day(4, 1)),  # Jan -> Apr: one push, three month boundaries
            ("d", 2, "lead", 1.0, day(4, 20)),  # within April: a push, no boundary
        )
        d = by_id(an.slippage(on(backend, rows), KINDS, as_of=AS_OF).deals)["d"]
        assert (d["pushes"], d["month_pushes"], d["months_crossed"]) == (2, 1, 3)
        assert (d["quarter_pushes"], d["quarters_crossed"]) == (1, 1)

    def test_quarters_follow_the_fiscal_year_start(self, backend: str) -> None:
        rows = log(
            ("e", 0, "lead", 1.0, day(1, 15)),
            ("e", 1, "lead", 1.0, day(2, 10)),  # calendar Q1 -> Q1; fiscal (Feb) Q4 -> Q1
            ("e", 2, "lead", 1.0, day(3, 20)),
            ("e", 3, "lead", 1.0, day(4, 5)),  # calendar Q1 -> Q2; fiscal Feb-Apr: same
        )
        data = on(backend, rows)
        calendar = by_id(an.slippage(data, KINDS, as_of=AS_OF).deals)["e"]
        fiscal = by_id(an.slippage(data, KINDS, as_of=AS_OF, fiscal_year_start=2).deals)["e"]
        assert (calendar["quarter_pushes"], calendar["quarters_crossed"]) == (1, 1)
        assert (fiscal["quarter_pushes"], fiscal["quarters_crossed"]) == (1, 1)
        rows_b = log(("f", 0, "lead", 1.0, day(1, 15)), ("f", 1, "lead", 1.0, day(2, 10)))
        f = by_id(an.slippage(on(backend, rows_b), KINDS, as_of=AS_OF, fiscal_year_start=2).deals)
        assert f["f"]["quarter_pushes"] == 1
        f = by_id(an.slippage(on(backend, rows_b), KINDS, as_of=AS_OF).deals)
        assert f["f"]["quarter_pushes"] == 0

    def test_win_rate_by_pushes_is_also_given_within_age_bands(self, backend: str) -> None:
        rows = log(
            ("y", 0, "lead", 1.0, day(1, 10)),  # young, never pushed, won at day 10
            ("y", 10, "won", 1.0, day(1, 10)),
            ("o", 0, "lead", 1.0, day(1, 10)),  # old, pushed twice, lost at day 100
            ("o", 20, "lead", 1.0, day(2, 10)),
            ("o", 40, "lead", 1.0, day(3, 10)),
            ("o", 100, "lost", 1.0, day(3, 10)),
            ("p", 0, "lead", 1.0, day(1, 10)),  # old, never pushed, won at day 90
            ("p", 90, "won", 1.0, day(1, 10)),
        )
        result = an.slippage(on(backend, rows), KINDS, as_of=at(120), age_bands=(0, 30))
        ages = {k: v["age_days"] for k, v in by_id(result.deals).items()}
        assert ages == {"y": 10.0, "o": 100.0, "p": 90.0}
        table = [
            (r["pushes"], r["age_from_days"], r["age_to_days"], r["deals"], r["won"])
            for r in sorted(
                records(result.by_pushes_and_age), key=lambda r: (r["pushes"], r["age_from_days"])
            )
        ]
        assert table == [(0, 0.0, 30.0, 1, 1), (0, 30.0, None, 1, 1), (2, 30.0, None, 1, 0)]

    def test_bad_fiscal_starts_and_age_bands_are_refused(self, backend: str) -> None:
        data = on(backend, log(("a", 0, "lead", 1.0, D)))
        for bad in (0, 13):
            with pytest.raises(an.AnalyticsError, match="fiscal_year_start"):
                an.slippage(data, KINDS, as_of=AS_OF, fiscal_year_start=bad)
        for bands in ((), (5.0, 10.0), (0.0, 10.0, 10.0)):
            with pytest.raises(an.AnalyticsError, match="age_bands"):
                an.slippage(data, KINDS, as_of=AS_OF, age_bands=bands)


def _reference(dates: list[date | None]) -> dict[str, Any]:
    """Slippage of one close-date history, computed the obvious way."""
    known = [d for d in dates if d is not None]
    steps = [(b - a).days for a, b in itertools.pairwise(known)]
    months = [
        (b.year * 12 + b.month) - (a.year * 12 + a.month)
        for a, b in itertools.pairwise(known)
        if b > a
    ]
    return {
        "first_close_date": known[0],
        "current_close_date": dates[-1],
        "pushes": sum(s > 0 for s in steps),
        "pulls": sum(s < 0 for s in steps),
        "days_pushed": sum(s for s in steps if s > 0),
        "days_pulled": -sum(s for s in steps if s < 0),
        "net_days": None if dates[-1] is None else (dates[-1] - known[0]).days,
        "month_pushes": sum(m > 0 for m in months),
        "months_crossed": sum(months),
    }


CLOSE_DATES = st.lists(
    st.one_of(st.none(), st.dates(min_value=date(2025, 11, 1), max_value=date(2026, 6, 30))),
    min_size=1,
    max_size=8,
).filter(lambda ds: any(d is not None for d in ds))


@settings(max_examples=60, deadline=None)
@given(st.lists(CLOSE_DATES, min_size=1, max_size=4))
def test_slippage_matches_a_direct_computation_of_each_history(
    histories: list[list[date | None]],
) -> None:
    rows = log(
        *(
            (f"o{i}", j, "lead", 1.0, d)
            for i, dates in enumerate(histories)
            for j, d in enumerate(dates)
        )
    )
    deals = by_id(an.slippage(rows, KINDS, as_of=AS_OF).deals)
    for i, dates in enumerate(histories):
        expected = _reference(dates)
        actual = deals[f"o{i}"]
        assert expected == {k: actual[k] for k in expected}
        if actual["net_days"] is not None:
            assert actual["net_days"] == actual["days_pushed"] - actual["days_pulled"]


@pytest.mark.parametrize("backend", BACKENDS)
class TestFunnel:
    def test_a_deal_lost_twice_from_a_stage_counts_once_there(self, backend: str) -> None:
        rows = log(
            ("a", 0, "lead", 1.0, D),
            ("a", 1, "lost", 1.0, D, "price"),
            ("a", 2, "lead", 1.0, D),
            ("a", 3, "lost", 1.0, D, "price"),
            ("b", 0, "lead", 1.0, D),
            ("b", 1, "lost", 1.0, D, "timing"),
        )
        f = an.funnel(on(backend, rows), KINDS, as_of=AS_OF)
        lead = next(r for r in records(f.stages) if r["stage"] == "lead")
        assert (lead["reached"], lead["lost_here"], lead["losses_here"]) == (2, 2, 3)
        losses = {(r["reason"], r["deals"], r["losses"]) for r in records(f.losses)}
        assert losses == {("price", 1, 2), ("timing", 1, 1)}

    def test_the_in_order_path_uses_any_entry_not_only_the_first(self, backend: str) -> None:
        rows = log(
            ("a", 0, "lead", 1.0, D),
            ("a", 1, "proposal", 1.0, D),  # a skip: demo not yet reached
            ("a", 2, "demo", 1.0, D),
            ("a", 3, "proposal", 1.0, D),  # now lead, demo, proposal in order
            ("a", 4, "won", 1.0, D),
            ("b", 0, "lead", 1.0, D),
            ("b", 1, "proposal", 1.0, D),  # skips demo for good
            ("b", 2, "won", 1.0, D),
        )
        stages = records(an.funnel(on(backend, rows), KINDS, as_of=AS_OF).stages)
        counts = {r["stage"]: (r["reached"], r["reached_in_order"]) for r in stages}
        assert counts == {"lead": (2, 2), "demo": (1, 1), "proposal": (2, 1), "won": (2, 1)}
        rates = {r["stage"]: r["conversion_in_order"] for r in stages}
        assert rates == {"lead": 0.5, "demo": 1.0, "proposal": 1.0, "won": None}


@pytest.mark.parametrize("backend", BACKENDS)
class TestSnapshot:
    def test_the_open_pipeline_leaves_closed_deals_out(self, backend: str) -> None:
        rows = log(
            ("a", 0, "lead", 10.0, D),
            ("b", 0, "lead", 20.0, D),
            ("b", 1, "won", 20.0, D),
            ("c", 0, "demo", 40.0, D),
            ("c", 1, "lost", 40.0, D),
        )
        data = on(backend, rows)
        everything = records(an.snapshot(data, KINDS, at=AS_OF))
        assert [r["opportunity_id"] for r in everything] == ["a", "b", "c"]
        pipeline = records(an.open_pipeline(data, KINDS, at=AS_OF))
        assert [(r["opportunity_id"], r["amount"]) for r in pipeline] == [("a", 10.0)]
        assert records(an.snapshot(data, KINDS, at=AS_OF, state="open")) == pipeline
        closed = records(an.snapshot(data, KINDS, at=AS_OF, state="closed"))
        assert [r["opportunity_id"] for r in closed] == ["b", "c"]
        won = records(an.snapshot(data, KINDS, at=AS_OF, state="won"))
        assert [r["opportunity_id"] for r in won] == ["b"]
        with pytest.raises(an.AnalyticsError, match="state"):
            an.snapshot(data, KINDS, at=AS_OF, state="pipeline")


@pytest.mark.parametrize("backend", BACKENDS)
class TestWaterfall:
    def test_each_case_falls_in_its_category(self, backend: str) -> None:
        start, end = at(10), at(20)
        rows = log(
            ("relost", 5, "lead", 5.0, D),
            ("relost", 10, "lost", 5.0, D),  # lost at the start instant itself
            ("relost", 12, "lead", 5.0, D),  # reopened
            ("relost", 15, "won", 5.0, D),  # and won inside the window
            ("stays", 5, "lead", 6.0, D),
            ("stays", 10, "lost", 6.0, D),  # lost at the start, nothing after: left out
            ("inside", 11, "lead", 7.0, D),  # created and won inside the window
            ("inside", 14, "won", 7.0, D),
            ("up", 5, "demo", 10.0, day(2, 1)),
            ("up", 12, "demo", 15.0, day(3, 1)),  # more, and later: an amount change first
            ("down", 5, "demo", 10.0, D),
            ("down", 12, "demo", 8.0, D),
            ("late", 5, "demo", 10.0, day(2, 1)),
            ("late", 12, "demo", 10.0, day(3, 1)),
            ("same", 5, "demo", 10.0, D),
            ("early", 5, "demo", 1.0, day(3, 1)),
            ("early", 12, "demo", 1.0, day(2, 1)),
            ("back", 5, "proposal", 3.0, D),
            ("back", 13, "demo", 3.0, D),
            ("fresh", 16, "lead", 4.0, D),
            ("revived", 2, "lead", 9.0, D),
            ("revived", 3, "lost", 9.0, D),
            ("revived", 18, "demo", 9.0, D),
            ("lostnow", 5, "lead", 2.0, D),
            ("lostnow", 19, "lost", 2.0, D),
        )
        w = an.waterfall(on(backend, rows), KINDS, start=start, end=end)
        deals = by_id(w.deals)
        assert {k: v["category"] for k, v in deals.items()} == {
            "relost": "won",
            "inside": "won",
            "up": "increased",
            "down": "decreased",
            "late": "slipped",
            "same": "unchanged",
            "early": "pulled_in",
            "back": "regressed",
            "fresh": "new",
            "revived": "reopened",
            "lostnow": "lost",
        }
        assert deals["relost"]["pipeline_change"] == 0.0
        assert deals["inside"]["stage_start"] is None
        assert deals["up"]["pipeline_change"] == 5.0
        assert deals["lostnow"]["pipeline_change"] == -2.0
        assert deals["revived"]["pipeline_change"] == 9.0
        summary = {r["category"]: r for r in records(w.summary)}
        assert (summary["won"]["deals"], summary["won"]["created"]) == (2, 1)
        assert summary["won"]["amount_end"] == 12.0
        assert summary["new"]["created"] == 1
        assert (w.open_start, w.open_end) == (46.0, 60.0)


@st.composite
def pipelines(draw: Any) -> list[dict[str, Any]]:
    stages = list(KINDS)
    rows = []
    for n in range(draw(st.integers(1, 6))):
        t = draw(st.floats(0, 10))
        amount = draw(st.sampled_from([None, 5.0, 10.0]))
        for _ in range(draw(st.integers(1, 6))):
            stage = draw(st.sampled_from(stages))
            amount = draw(st.sampled_from([amount, None, 5.0, 12.5]))
            close = draw(st.sampled_from([None, D, day(2, 1), day(3, 1)]))
            rows.append((f"o{n}", t, stage, amount, close))
            t += draw(st.sampled_from([0.0, 1.0, 3.5, 6.0]))
    return log(*rows)


@settings(max_examples=60, deadline=None)
@given(pipelines(), st.floats(0, 20), st.floats(0, 20))
def test_waterfall_categories_partition_the_deals_and_bridge_the_pipeline(
    rows: list[dict[str, Any]], a: float, b: float
) -> None:
    start, end = at(min(a, b)), at(max(a, b))
    w = an.waterfall(rows, KINDS, start=start, end=end)
    before = {s.opportunity_id: s for s in an.snapshot(rows, KINDS, at=start)}
    after = {s.opportunity_id: s for s in an.snapshot(rows, KINDS, at=end)}
    ids = [d.opportunity_id for d in w.deals]
    assert len(ids) == len(set(ids))
    # every deal open at either instant is in exactly one category
    expected = {o for o, s in {**before, **after}.items() if s.kind == "open"}
    expected |= {o for o, s in before.items() if s.kind == "open"}
    assert expected <= set(ids)
    for d in w.deals:
        assert d.category in an.CATEGORIES
        if d.opportunity_id not in expected:  # closed at both: re-closed inside the window
            assert d.category in ("won", "lost")
            assert after[d.opportunity_id].entered_at > start
    summary = {r.category: r for r in w.summary}
    assert sum(r.deals for r in w.summary) == len(ids)
    open_start = sum(s.amount or 0.0 for s in before.values() if s.kind == "open")
    open_end = sum(s.amount or 0.0 for s in after.values() if s.kind == "open")
    assert math.isclose(w.open_start, open_start, abs_tol=1e-9)
    assert math.isclose(w.open_end, open_end, abs_tol=1e-9)
    change = sum(r.pipeline_change for r in summary.values())
    assert math.isclose(open_start + change, open_end, abs_tol=1e-9)


class TestVelocity:
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_the_win_rate_comes_from_the_estimator_and_the_naive_rate_stands_beside(
        self, backend: str
    ) -> None:
        rows = log(
            # two wins after 2 days, a loss after 8, and a deal 4 days into lead (censored)
            ("w1", 0, "lead", 10.0, D),
            ("w1", 2, "won", 10.0, D),
            ("w2", 0, "lead", 10.0, D),
            ("w2", 2, "won", 10.0, D),
            ("l1", 0, "lead", 10.0, D),
            ("l1", 8, "lost", 10.0, D),
            ("o1", 5, "lead", 10.0, D),
        )
        data = on(backend, rows)
        lead, *_, overall = records(an.velocity(data, KINDS, as_of=at(9), estimator="empirical"))
        assert lead["win_rate"] == pytest.approx(2 / 3)  # won / closed: 2 of 3
        assert lead["expected_wins"] == pytest.approx(2 / 3)
        assert lead["velocity"] == pytest.approx(1 * (2 / 3) * 10.0 / 2.0)
        assert overall["win_rate"] == pytest.approx(2 / 3)
        lead, *_, overall = records(an.velocity(data, KINDS, as_of=at(9)))
        # the default, deal_clock: follow-up is 9 days for w1, w2, l1 and 4 for o1, so every
        # deal is observable at age 2 (weight 1 for each win) but 3 of 4 at age 8 (weight 4/3
        # for the loss): 2 / (2 + 4/3) = 0.6
        assert VELOCITY_ESTIMATOR == an.DEFAULT_ESTIMATOR == "deal_clock"
        assert lead["win_rate"] == pytest.approx(0.6)
        assert lead["velocity"] == pytest.approx(1 * 0.6 * 10.0 / 2.0)
        assert overall["win_rate"] == pytest.approx(0.6)
        lead, *_, overall = records(an.velocity(data, KINDS, as_of=at(9), estimator="markov"))
        # Aalen-Johansen on the stage clock: at day 2, 2 of 4 at risk win (won: 1/2); the open
        # deal leaves the risk set at day 4; at day 8 the 1 left is lost (lost: 1/2 * 1).
        assert lead["win_rate"] == pytest.approx(0.5)
        assert lead["closed_win_rate"] == pytest.approx(2 / 3)
        assert lead["velocity"] == pytest.approx(1 * 0.5 * 10.0 / 2.0)
        assert (overall["win_rate"], overall["closed_win_rate"]) == (
            pytest.approx(0.5),
            pytest.approx(2 / 3),
        )

    def test_every_estimator_is_accepted_and_an_unknown_one_refused(self) -> None:
        rows, kinds, sim = sim_rows(120)
        for name in an.ESTIMATORS:
            assert an.velocity(rows, kinds, as_of=sim.as_of, estimator=name)[-1].deals > 0
        with pytest.raises(an.AnalyticsError, match="estimator"):
            an.velocity(rows, kinds, as_of=sim.as_of, estimator="oracle")
        with pytest.raises(an.AnalyticsError, match="prior_strength"):
            an.velocity(rows, kinds, as_of=sim.as_of, prior_strength=-1.0)
        with pytest.raises(an.AnalyticsError, match="prior_strength"):
            an.velocity(rows, kinds, as_of=sim.as_of, prior_strength=math.nan)

    @pytest.mark.parametrize("estimator", ["markov", "empirical", "smoothed", "dwell"])
    def test_stage_rows_add_up_to_the_overall_expected_wins(self, estimator: str) -> None:
        rows, kinds, sim = sim_rows(200)
        *stages, overall = an.velocity(rows, kinds, as_of=sim.as_of, estimator=estimator)
        assert overall.deals == sum(s.deals for s in stages)
        total = sum(s.deals * s.win_rate for s in stages if s.deals)
        assert overall.expected_wins == pytest.approx(total)
        assert overall.deals * overall.win_rate == pytest.approx(total)

    def test_a_stage_without_open_deals_shows_its_entry_probability(self) -> None:
        rows = log(
            ("a", 0, "lead", 1.0, D),
            ("a", 1, "demo", 1.0, D),
            ("a", 2, "won", 1.0, D),
            ("b", 0, "lead", 1.0, D),
        )
        lead, demo, proposal, overall = an.velocity(rows, KINDS, as_of=at(5), estimator="empirical")
        assert (demo.deals, demo.win_rate, demo.expected_wins) == (0, 1.0, 0.0)
        assert (lead.deals, lead.win_rate, overall.win_rate) == (1, 1.0, 1.0)
        assert proposal.win_rate is not None  # smoothed fallback: never reached

    def test_without_open_deals_the_overall_win_rate_is_unknown(self) -> None:
        rows = log(("a", 0, "lead", 1.0, D), ("a", 2, "won", 1.0, D))
        overall = an.velocity(rows, KINDS, as_of=at(5), estimator="empirical")[-1]
        assert (overall.deals, overall.win_rate, overall.velocity) == (0, None, None)
        assert (overall.closed_win_rate, overall.cycle_days) == (1.0, 2.0)


def test_a_sim_pipeline_gives_the_same_new_figures_on_every_backend() -> None:
    rows, kinds, sim = sim_rows(150)
    start = sim.as_of - timedelta(days=40)

    def run(data: Any) -> dict[str, Any]:
        slips = an.slippage(data, kinds, as_of=sim.as_of, fiscal_year_start=4)
        return {
            "slip": records(slips.deals),
            "aged": records(slips.by_pushes_and_age),
            "pipeline": records(an.open_pipeline(data, kinds, at=start)),
            "velocity": records(an.velocity(data, kinds, as_of=sim.as_of, estimator="smoothed")),
            "losses": records(an.funnel(data, kinds, as_of=sim.as_of).losses),
        }

    expected = run(rows)
    for backend in BACKENDS[1:]:
        actual = run(on(backend, rows))
        for name, value in expected.items():
            key = lambda r: tuple(str(v) for v in r.values() if not isinstance(v, float))  # noqa: E731
            e, a = sorted(value, key=key), sorted(actual[name], key=key)
            assert len(e) == len(a), (name, backend)
            for x, y in zip(e, a, strict=True):
                assert x.keys() == y.keys()
                for k in x:
                    if isinstance(x[k], float):
                        assert math.isclose(x[k], y[k], rel_tol=1e-9), (name, backend, k)
                    else:
                        assert x[k] == y[k], (name, backend, k, x, y)


@settings(max_examples=60, deadline=None)
@given(pipelines())
def test_funnel_counts_nest_and_deals_never_exceed_losses(rows: list[dict[str, Any]]) -> None:
    f = an.funnel(rows, KINDS, as_of=AS_OF)
    lost_from: dict[str, set[str]] = {}
    for v in an.stage_intervals(rows, KINDS, as_of=AS_OF):
        if v.kind == "lost" and v.from_stage is not None:
            lost_from.setdefault(v.from_stage, set()).add(v.opportunity_id)
    previous = None
    for r in f.stages:
        assert r.lost_here == len(lost_from.get(r.stage, ()))
        assert r.lost_here <= r.losses_here
        assert r.reached_in_order <= r.reached
        if previous is not None:
            assert r.reached_in_order <= previous.reached_in_order
        assert r.conversion_in_order is None or 0 <= r.conversion_in_order <= 1
        previous = r
    for loss in f.losses:
        assert 1 <= loss.deals <= loss.losses
