"""Hostile-but-valid logs: the numbers stay right and both paths agree (regressions of fuzzing)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from analytics_data import KINDS, canonical_schema, normalize, same
from stagegate import Opportunity, b2b, evolution
from stagegate import analytics as an
from stagegate.gates import AllOf
from stagegate.report._format import gap
from stagegate.report._i18n import catalogue, cycle_explanation
from stagegate.report._stages import cycle_time_section
from stagegate.store import MemoryStore

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(opp: str, at: datetime, stage: str, seq: int, amount: float | None = None) -> Any:
    """A canonical row without close date or reason."""
    return {"opportunity_id": opp, "at": at, "seq": seq, "stage": stage, "amount": amount,
            "close_date": None, "reason": None}  # fmt: skip


def frame(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(rows, schema=canonical_schema())


def days(n: float, start: datetime = T0) -> datetime:
    return start + timedelta(days=n)


# -- a won median dwell of zero (a won deal passed the stage in one instant) -----------------


def zero_won_median_rows() -> list[dict[str, Any]]:
    return [
        row("w", days(0), "lead", 1),
        row("w", days(1), "demo", 2),
        row("w", days(1), "won", 3),  # demo passed at one instant: the won median is 0
        row("s", days(0), "demo", 1, amount=10.0),  # open in demo since day 0
        row("p", days(0), "lead", 1),
        row("p", days(0.25), "proposal", 2),
        row("p", days(0.5), "won", 3),
        row("q", days(1), "proposal", 1, amount=20.0),  # open in proposal since day 1
    ]


def test_stalled_against_a_zero_won_median_has_no_ratio_on_either_path() -> None:
    rows, as_of = zero_won_median_rows(), days(4)
    expected = an.stalled(rows, KINDS, as_of=as_of, learned="median")
    actual = an.stalled(frame(rows), KINDS, as_of=as_of, learned="median")
    assert [(r.opportunity_id, r.times_won_median) for r in expected] == [("q", 12.0), ("s", None)]
    same(normalize(expected), normalize(actual))  # in order: riskiest first, no ratio last


# -- instants at the Unix epoch: an exit at microsecond 0 is an exit --------------------------


def epoch_rows() -> list[dict[str, Any]]:
    return [
        row("a", days(-1, EPOCH), "lead", 1),
        row("a", EPOCH, "demo", 2),  # leaves lead after one day, at the epoch itself
        row("a", days(0.5, EPOCH), "won", 3),
        row("b", days(-3, EPOCH), "lead", 1),
        row("b", days(-1, EPOCH), "lost", 2),  # two days in lead
        row("c", days(3.5, EPOCH), "lead", 1),  # open in lead for 1.5 days at as_of
    ]


def test_a_visit_that_ends_at_the_epoch_lasts_until_the_epoch() -> None:
    rows, as_of = epoch_rows()[:2], days(5, EPOCH)
    times = an.time_in_stage(rows, KINDS, as_of=as_of)
    (lead,) = [t for t in times if (t.stage, t.outcome) == ("lead", "all")]
    assert lead.km_median_days == lead.median_days == 1.0
    table = an.time_in_stage(frame(rows), KINDS, as_of=as_of)
    same(normalize(times), normalize(table))


def test_markov_exits_at_the_epoch_agree_with_the_frame_path() -> None:
    rows, as_of = epoch_rows(), days(5, EPOCH)
    # lead: exit to demo at 1 day (1/3), censored at 1.5, exit to lost at 2 (2/3); demo: won
    expected = an.stage_probabilities(rows, KINDS, as_of=as_of, draws=0)
    assert math.isclose(expected[0].markov, 1 / 3, abs_tol=1e-12)
    same(normalize(expected), normalize(an.stage_probabilities(frame(rows), KINDS, as_of=as_of,
                                                               draws=0)))  # fmt: skip


# -- the report's cycle-time gap: float noise never reads "-0.0" ------------------------------


def equal_cycle_rows() -> list[dict[str, Any]]:
    """Three won deals whose stage means add up to the mean cycle, bar float rounding."""
    hours = [(1, 7), (2, 1), (3, 2)]
    rows = []
    for n, (lead, demo) in enumerate(hours):
        opp = f"o{n}"
        rows += [
            row(opp, T0, "lead", 1),
            row(opp, T0 + timedelta(hours=lead), "demo", 2),
            row(opp, T0 + timedelta(hours=lead + demo), "won", 3),
        ]
    return rows


def test_the_cycle_gap_of_equal_figures_reads_plus_zero() -> None:
    cycles = an.cycle_times(equal_cycle_rows(), KINDS, as_of=days(9))
    (closed,) = [s for s in cycles.summary if s.outcome == "closed"]
    assert closed.stage_sum_days - closed.mean_days < 0  # the noise the report must hide
    section = cycle_time_section(cycles)
    assert "(+0.0)" in section["explanation"]
    assert "(+0.0)" in cycle_explanation(section, catalogue("ko"))
    assert (gap(-1e-15), gap(-0.04), gap(0.05), gap(-2.26)) == ("+0.0", "+0.0", "+0.1", "-2.3")


# -- velocity by owner: a rep who only closed a deal (its stages entered under another) ------


def handed_over_events() -> list[Any]:
    handed = Opportunity.open(b2b(), "h", at=T0, actor="crm", owner="ann", amount=100)
    handed.reassign("abe", at=days(2), actor="manager")
    handed.record_history("won", at=days(3), actor="crm")
    kept = Opportunity.open(b2b(), "k", at=T0, actor="crm", owner="ann", amount=50)
    return [*handed.events, *kept.events]


def test_velocity_by_owner_of_a_rep_without_stage_rows_on_a_frame() -> None:
    events, as_of = handed_over_events(), days(5)
    store = MemoryStore()
    store.append(events)
    expected = an.velocity(events, b2b(), as_of=as_of, by="owner")
    (abe,) = [v for v in expected if v.segment == ("abe",)]
    assert (abe.stage, abe.deals, abe.expected_wins, abe.reached) == ("overall", 0, 0.0, 1)
    assert isinstance(abe.expected_wins, float)
    table = an.velocity(store.to_frame(backend="polars"), b2b(), as_of=as_of, by="owner")
    got = table.filter(pl.col("owner") == "abe").select("stage", "expected_wins", "reached")
    assert got.rows() == [("overall", 0.0, 1)]


# -- the weekly review refuses a missing ``by`` with the library's own error ------------------


@pytest.mark.parametrize("name", ["scorecard", "staleness", "changes", "deal_changes"])
def test_review_functions_refuse_by_none_with_an_analytics_error(name: str) -> None:
    times = {"since": T0} if name in ("changes", "deal_changes") else {}
    with pytest.raises(an.AnalyticsError, match="by must be a column name"):
        getattr(an, name)(handed_over_events(), b2b(), as_of=days(5), by=None, **times)


# -- a deal migrated to a version that merged two stages it passed through --------------------


def test_time_in_a_merged_stage_runs_from_its_first_entry() -> None:
    v1 = b2b()
    stages = tuple(
        attrs.evolve(s, gate=AllOf(())) if s.id == "solution_proposal" else s
        for s in v1.stages
        if s.id != "needs_analysis"
    )
    v2 = attrs.evolve(v1, version="2", stages=stages, renamed={"needs_analysis": "qualification"})
    deal = Opportunity.open(v1, "m", at=T0, actor="crm")
    deal.override("qualification", at=days(1), actor="crm", reason="call")
    deal.override("needs_analysis", at=days(2), actor="crm", reason="call")
    deal.migrate(v2, at=days(4), actor="ops")
    as_of = days(10)
    numbers = deal.metrics(as_of=as_of)
    (visit,) = [
        v
        for v in an.stage_intervals(evolution.map_history(deal.events, v2), v2, as_of=as_of)
        if v.stage == "qualification"
    ]
    assert (visit.visit, visit.duration_days) == (1, 9.0)
    assert numbers.time_in_stage == timedelta(days=9) == numbers.stage_durations["qualification"]


# -- the backtest's reliability bins: a prediction a rounding error below 0.5 -----------------


def test_reliability_bins_agree_when_a_prediction_rounds_below_a_tenth() -> None:
    rows = [
        row("o1", days(12.5), "demo", 1),
        row("o1", days(12.5), "proposal", 2),
        row("o2", days(10), "demo", 1),
        row("o2", days(10), "lost", 2),
        row("o3", days(1), "proposal", 1),
        row("o3", days(11.5), "won", 2),
        row("o4", days(10), "demo", 1),
        row("o4", days(20), "lost", 2),
    ]
    cutoff, as_of = days(19), days(20)
    expected = an.backtest(rows, KINDS, cutoff=cutoff, as_of=as_of)
    (markov,) = [r for r in expected.reliability if r.estimator == "markov"]
    assert math.isclose(markov.mean_predicted, 0.5, abs_tol=1e-12)
    assert markov.bin == 5
    actual = an.backtest(frame(rows), KINDS, cutoff=cutoff, as_of=as_of)
    same(normalize(expected.reliability), normalize(actual.reliability))


# -- the forecast at the end of the calendar: a slip past 9999-12-31 lands on that day --------


def last_days_rows() -> list[dict[str, Any]]:
    end = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    due = date(9999, 12, 31)

    def at(opp: str, back: int, stage: str, seq: int, close: date) -> dict[str, Any]:
        values = row(opp, end - timedelta(days=back), stage, seq, amount=100.0)
        return values | {"close_date": close, "owner": "kim" if opp < "c" else "lee"}

    return [
        at("a", 300, "lead", 1, date(9999, 6, 1)),
        at("a", 200, "lead", 2, due),  # pushed 213 days, then won: the slip history
        at("a", 100, "won", 3, due),
        at("b", 50, "lead", 1, due),  # open, due on the calendar's last day
        at("c", 50, "lead", 1, date(9999, 1, 1)),  # open, overdue
    ]


@pytest.mark.parametrize("simulations", [200, 40_000], ids=["python", "numpy"])
def test_a_forecast_due_on_the_last_day_of_the_calendar(simulations: int) -> None:
    rows, as_of = last_days_rows(), datetime(9999, 12, 21, tzinfo=UTC)
    expected = an.forecast(rows, KINDS, as_of=as_of, simulations=simulations, seed=1)
    assert [p.period for p in expected.periods] == ["9999-12"]
    table = pl.DataFrame(rows, schema=canonical_schema() | {"owner": pl.String})
    actual = an.forecast(table, KINDS, as_of=as_of, simulations=simulations, seed=1)
    same(normalize(expected.periods), normalize(actual.periods))
    split = an.forecast(rows, KINDS, as_of=as_of, simulations=simulations, seed=1, by="owner")
    assert [(p.segment, p.period) for p in split.periods] == [
        (("kim",), "9999-12"),
        (("lee",), "9999-12"),
    ]


def test_the_weekly_review_in_the_last_quarter_of_the_calendar() -> None:
    end = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    deal = Opportunity.open(b2b(), "z", at=end - timedelta(days=40), actor="crm", owner="kim",
                            amount=10, close_date=date(9999, 12, 30))  # fmt: skip
    deal.reschedule(date(9999, 12, 31), at=end - timedelta(days=20), actor="kim")
    as_of = end - timedelta(days=1)
    quotas = an.QuotaTable.of([("kim", "9999-Q4", 600)])
    review = an.weekly_review(deal.events, b2b(), as_of=as_of, quotas=quotas)
    (kim,) = review.rows
    assert (kim.segment, kim.quota, kim.pipeline) == (("kim",), 600, 10)
    (monthly,) = an.rollup(deal.events, b2b(), as_of=as_of, levels=("owner",), period="month")[:1]
    assert monthly.pipeline == 10


def test_the_weekly_review_in_the_first_week_of_the_calendar() -> None:
    first = datetime(1, 1, 1, tzinfo=UTC)
    deal = Opportunity.open(b2b(), "a", at=first, actor="crm", owner="kim", amount=10,
                            close_date=date(1, 1, 30))  # fmt: skip
    review = an.weekly_review(deal.events, b2b(), as_of=first + timedelta(days=2))
    assert [(r.segment, r.open_deals, r.pipeline) for r in review.rows] == [(("kim",), 1, 10)]
