"""Each metric on a small log whose answers are worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest

from analytics_data import AS_OF, KINDS, at, edge_rows
from stagegate import analytics as an


class TestTimeInStage:
    def test_groups_by_stage_and_outcome_with_an_all_row(self) -> None:
        rows = an.time_in_stage(edge_rows(), KINDS, as_of=AS_OF)
        lead = {r.outcome: r for r in rows if r.stage == "lead"}
        assert set(lead) == {"won", "lost", "open", "all"}
        assert lead["won"].visits == 1
        assert lead["won"].mean_days == 2.0
        assert lead["lost"].visits == 3
        assert lead["lost"].mean_days == pytest.approx(7.75 / 3)

    def test_lost_won_ratio_compares_mean_dwell(self) -> None:
        rows = an.time_in_stage(edge_rows(), KINDS, as_of=AS_OF)
        lead = {r.outcome: r for r in rows if r.stage == "lead"}
        assert lead["all"].lost_won_ratio == pytest.approx(lead["lost"].mean_days / 2.0)

    def test_kaplan_meier_median_counts_open_visits_as_censored(self) -> None:
        assert an.km_median([1.0, 9.0, 9.0], [True, False, False]) is None
        assert an.km_median([1.0, 2.0, 9.0, 9.0], [True, True, False, False]) == 2.0
        assert an.km_median([1.0, 2.0, 3.0], [True, False, True]) == 3.0


class TestCycleTimes:
    def test_cycle_runs_from_the_first_row_to_the_last_closing(self) -> None:
        deals = {d.opportunity_id: d for d in an.cycle_times(edge_rows(), KINDS, as_of=AS_OF).deals}
        assert deals["a"].cycle_days == 9.0
        assert deals["a"].outcome == "won"
        assert deals["e"].cycle_days == 7.0
        assert deals["e"].outcome == "lost"
        assert "d" not in deals

    def test_the_sum_of_stage_means_is_shown_beside_the_measured_mean(self) -> None:
        summary = {s.outcome: s for s in an.cycle_times(edge_rows(), KINDS, as_of=AS_OF).summary}
        closed = summary["closed"]
        assert closed.difference_days == pytest.approx(closed.stage_sum_days - closed.mean_days)
        assert closed.weighted_sum_days == pytest.approx(closed.mean_days)


class TestProbabilities:
    def test_configured_probabilities_come_from_the_outcomes(self) -> None:
        out = an.Outcomes.of(KINDS, probabilities={"lead": 0.1})
        (lead, *_) = an.stage_probabilities(edge_rows(), out, as_of=AS_OF)
        assert lead.configured == 0.1

    def test_smoothing_stays_near_the_configured_value_with_little_data(self) -> None:
        out = an.Outcomes.of(KINDS, probabilities={"proposal": 0.9})
        rows = an.stage_probabilities(edge_rows(), out, as_of=AS_OF, prior_strength=1000)
        proposal = next(r for r in rows if r.stage == "proposal")
        assert proposal.smoothed == pytest.approx(0.9, abs=0.01)

    def test_arguments_out_of_range_are_rejected(self) -> None:
        with pytest.raises(an.AnalyticsError):
            an.stage_probabilities(edge_rows(), KINDS, as_of=AS_OF, confidence=1.5)
        with pytest.raises(an.AnalyticsError):
            an.dwell_probabilities(edge_rows(), KINDS, as_of=AS_OF, bins=(1, 2))

    def test_dwell_rows_are_cumulative_from_their_lower_bound(self) -> None:
        rows = an.dwell_probabilities(edge_rows(), KINDS, as_of=AS_OF, bins=(0, 2))
        lead = [r for r in rows if r.stage == "lead"]
        assert lead[0].closed >= lead[1].closed
        assert (lead[0].dwell_to_days, lead[1].dwell_to_days) == (2.0, None)

    def test_markov_uses_moves_of_open_deals(self) -> None:
        only_open = [
            {"opportunity_id": "x", "at": at(0), "stage": "lead"},
            {"opportunity_id": "x", "at": at(1), "stage": "demo"},
            {"opportunity_id": "y", "at": at(0), "stage": "demo"},
            {"opportunity_id": "y", "at": at(1), "stage": "won"},
        ]
        (lead, demo, _) = an.stage_probabilities(only_open, KINDS, as_of=AS_OF)
        assert lead.empirical is None  # no closed deal ever reached lead
        assert lead.markov == 1.0  # but every observed move from lead leads to a win
        assert demo.markov == 1.0


class TestBacktest:
    def test_scores_every_estimator_but_names_no_best_on_two_deals(self) -> None:
        result = an.backtest(edge_rows(), KINDS, cutoff=at(4), as_of=AS_OF)
        assert [s.estimator for s in result.scores] == list(an.ESTIMATORS)
        assert result.best is None
        assert result.reason is not None
        assert "too few deals" in result.reason
        assert all(0 <= s.brier <= 1 for s in result.scores)

    def test_as_of_must_follow_the_cutoff(self) -> None:
        with pytest.raises(an.AnalyticsError):
            an.backtest(edge_rows(), KINDS, cutoff=AS_OF, as_of=at(1))


class TestDeals:
    def test_stalled_deals_exceed_the_configured_limit(self) -> None:
        stalled = an.stalled(
            edge_rows(), KINDS, as_of=AS_OF, max_days={"lead": 5}, rule="configured"
        )
        assert [(s.opportunity_id, s.limit_source) for s in stalled] == [("f", "configured")]

    def test_stalled_rejects_unknown_rules(self) -> None:
        with pytest.raises(an.AnalyticsError):
            an.stalled(edge_rows(), KINDS, as_of=AS_OF, rule="loosest")

    def test_slippage_counts_pushes_and_boundaries(self) -> None:
        result = an.slippage(edge_rows(), KINDS, as_of=AS_OF, flag_pushes=2)
        a = next(d for d in result.deals if d.opportunity_id == "a")
        assert (a.pushes, a.days_pushed, a.month_pushes, a.quarter_pushes, a.flagged) == (
            2, 60, 2, 1, True
        )  # fmt: skip
        assert a.first_close_date == date(2026, 2, 1)
        assert a.current_close_date == date(2026, 4, 2)
        assert result.flagged == 1
        assert result.slip_rate == pytest.approx(3 / 6)

    def test_slippage_rejects_a_zero_flag(self) -> None:
        with pytest.raises(an.AnalyticsError):
            an.slippage(edge_rows(), KINDS, as_of=AS_OF, flag_pushes=0)


class TestFunnelSnapshotForecastVelocity:
    def test_funnel_counts_strict_paths_and_losses(self) -> None:
        f = an.funnel(edge_rows(), KINDS, as_of=AS_OF)
        rows = {r.stage: r for r in f.stages}
        assert rows["proposal"].reached == 3
        assert rows["proposal"].reached_in_order == 2
        assert {(r.stage, r.reason) for r in f.losses} == {
            ("demo", "price"), ("demo", "timing"), ("lead", None)
        }  # fmt: skip

    def test_snapshot_and_waterfall(self) -> None:
        snap = {s.opportunity_id: s for s in an.snapshot(edge_rows(), KINDS, at=at(4))}
        assert snap["a"].stage == "demo"
        assert snap["a"].amount == 120.0
        w = an.waterfall(edge_rows(), KINDS, start=at(4), end=AS_OF)
        cats = {d.opportunity_id: d.category for d in w.deals}
        assert cats["a"] == "won"
        assert cats["b"] == "lost"
        assert cats["c"] == "unchanged"
        assert cats["d"] == "advanced"
        with pytest.raises(an.AnalyticsError):
            an.waterfall(edge_rows(), KINDS, start=AS_OF, end=at(1))

    def test_forecast_is_seeded_and_ordered(self) -> None:
        one = an.forecast(edge_rows(), KINDS, as_of=AS_OF, simulations=200, seed=5)
        two = an.forecast(edge_rows(), KINDS, as_of=AS_OF, simulations=200, seed=5)
        assert one == two
        assert [p.period for p in one.periods] == sorted(p.period for p in one.periods)
        assert all(p.p10 <= p.p50 <= p.p90 for p in one.periods)
        assert one.unscheduled == 1
        with pytest.raises(an.AnalyticsError):
            an.forecast(edge_rows(), KINDS, as_of=AS_OF, estimator="oracle")

    def test_velocity_has_an_overall_row(self) -> None:
        rows = an.velocity(edge_rows(), KINDS, as_of=AS_OF)
        assert rows[-1].stage == "overall"
        assert rows[-1].deals == 3
