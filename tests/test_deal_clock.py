"""The deal-clock estimator, the informative simulator and what the backtest makes of them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import analytics as an
from stagegate.analytics._stats import weighted_share, wilson
from stagegate.analytics.probability import configured_known
from stagegate.analytics.survival import follow_up_counts, weighted_median
from stagegate.errors import InvalidCommandError
from stagegate.simulate import MODES, PipelineModel, simulate

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"lead": "open", "demo": "open", "won": "won", "lost": "lost"}


def t(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=timezone.utc)


def hand_rows() -> list[dict[str, Any]]:
    """Five deals, as of day 20: follow-ups 19, 18, 10, 5 and 16 days.

    a won at age 4 (5 deals followed that long: weight 1); b lost at age 12 and e at age 13
    (3 deals followed that long: weight 5/3); c and d are open.
    """
    moves = {
        "a": [(1, "lead"), (3, "demo"), (5, "won")],
        "b": [(2, "lead"), (14, "lost")],
        "c": [(10, "lead")],
        "d": [(15, "lead")],
        "e": [(4, "lead"), (6, "demo"), (17, "lost")],
    }
    return [
        {"opportunity_id": deal, "at": t(day), "stage": stage}
        for deal, steps in moves.items()
        for day, stage in steps
    ]


class TestDealClock:
    def test_weights_closed_deals_by_the_inverse_share_followed_that_long(self) -> None:
        lead, demo = an.stage_probabilities(hand_rows(), KINDS, as_of=t(20), draws=0)
        assert math.isclose(lead.deal_clock, 1 / (1 + 2 * 5 / 3))  # 3/13
        assert math.isclose(demo.deal_clock, 1 / (1 + 5 / 3))  # 3/8
        assert (lead.empirical, demo.empirical) == (1 / 3, 0.5)
        assert lead.deal_clock_low < lead.deal_clock < lead.deal_clock_high

    def test_every_frame_backend_gives_the_hand_computed_numbers(self) -> None:
        pl = pytest.importorskip("polars")
        pytest.importorskip("narwhals")
        frame = pl.DataFrame(hand_rows(), schema={"opportunity_id": pl.String,
                             "at": pl.Datetime("us", "UTC"), "stage": pl.String})  # fmt: skip
        for data in (frame, frame.lazy(), frame.to_pandas()):
            table = an.stage_probabilities(data, KINDS, as_of=t(20), draws=0)
            table = table.collect() if hasattr(table, "collect") else table
            values = list(table["deal_clock"])
            assert math.isclose(values[0], 3 / 13)
            assert math.isclose(values[1], 3 / 8)

    def test_is_the_default_estimator_and_one_of_them(self) -> None:
        assert an.DEFAULT_ESTIMATOR == "deal_clock"
        assert an.DEFAULT_ESTIMATOR in an.ESTIMATORS

    def test_follow_up_counts_include_ties(self) -> None:
        assert follow_up_counts([5, 10, 10, 19], [10, 11, 0]) == [3, 1, 4]

    def test_recovers_the_truth_where_markov_and_the_closed_only_rate_do_not(self) -> None:
        sim = simulate(6000, seed=11, mode="informative")
        kinds = sim.model.outcomes()
        rows = an.stage_probabilities(list(sim.events), kinds, as_of=sim.as_of, draws=0)
        late = rows[3:]  # from solution_proposal on the bias is largest
        for r in rows:
            assert abs(r.deal_clock - sim.truth.win_probability[r.stage]) < 0.035
        for r in late:
            truth = sim.truth.win_probability[r.stage]
            assert r.markov - truth > 0.03
            assert r.empirical - truth > 0.03
        covered = sum(
            r.deal_clock_low <= sim.truth.win_probability[r.stage] <= r.deal_clock_high
            for r in rows
        )
        assert covered >= 5

    def test_its_interval_covers_the_truth_about_95_times_in_100(self) -> None:
        hits = trials = 0
        for seed in range(24):
            sim = simulate(600, seed=100 + seed, mode="informative", span_days=240)
            rows = an.stage_probabilities(
                list(sim.events), sim.model.outcomes(), as_of=sim.as_of, draws=0
            )
            for r in (rows[0], rows[2], rows[4]):
                truth = sim.truth.win_probability[r.stage]
                trials += 1
                hits += r.deal_clock_low <= truth <= r.deal_clock_high
        # 72 intervals: a 95% interval misses 3.6 on average; 10 or more would be rare (<0.3%)
        assert hits >= trials - 9


class TestWeightedShare:
    def test_equal_weights_give_back_wilson(self) -> None:
        share, low, high, effective = weighted_share((7.0, 7.0), (3.0, 3.0))
        assert (share, effective) == pytest.approx((0.7, 10.0))
        assert (low, high) == pytest.approx(wilson(7, 10))

    def test_without_weight_there_is_no_share(self) -> None:
        assert weighted_share((0.0, 0.0), (0.0, 0.0)) is None

    def test_all_won_keeps_an_interval_below_one(self) -> None:
        share, low, high, _ = weighted_share((4.0, 5.0), (0.0, 0.0))
        assert (share, high) == (1.0, 1.0)
        assert low < 1.0

    @given(
        st.lists(
            st.tuples(st.booleans(), st.floats(min_value=1.0, max_value=50.0)),
            min_size=1,
            max_size=40,
        )
    )
    def test_the_share_lies_inside_its_interval(self, deals: list[tuple[bool, float]]) -> None:
        won = (sum(w for y, w in deals if y), sum(w * w for y, w in deals if y))
        lost = (sum(w for y, w in deals if not y), sum(w * w for y, w in deals if not y))
        result = weighted_share(won, lost)
        assert result is not None
        share, low, high, effective = result
        assert 0 <= low <= share + 1e-12
        assert share - 1e-12 <= high <= 1
        assert effective > 0


class TestWeightedMedian:
    def test_is_the_smallest_value_reaching_half_the_weight(self) -> None:
        assert weighted_median([3.0, 1.0, 2.0], [3.0, 1.0, 1.0]) == 3.0
        assert weighted_median([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]) == 2.0

    def test_of_nothing_is_none(self) -> None:
        assert weighted_median([], []) is None


class TestDwellByOutcome:
    def test_deal_clock_medians_and_the_open_share(self) -> None:
        rows = {(r.stage, r.outcome): r for r in an.time_in_stage(hand_rows(), KINDS, as_of=t(20))}
        assert rows["lead", "lost"].deal_clock_median_days == 2.0  # e (2 d) and b (12 d), equal
        assert rows["lead", "won"].deal_clock_median_days == 2.0
        assert rows["lead", "open"].deal_clock_median_days is None
        assert rows["lead", "all"].open_share == 2 / 5
        assert rows["demo", "won"].open_share == 0.0

    def test_recovers_the_true_medians_where_closed_deals_alone_run_short(self) -> None:
        sim = simulate(6000, seed=12, mode="informative")
        rows = an.time_in_stage(list(sim.events), sim.model.outcomes(), as_of=sim.as_of)
        lost = [r for r in rows if r.outcome == "lost"]
        for r in lost[:4]:  # the early stages, where many deals are still open
            truth = sim.truth.dwell_median_days[r.stage]["lost"]
            assert abs(r.deal_clock_median_days / truth - 1) < 0.06
        short = [r.median_days / sim.truth.dwell_median_days[r.stage]["lost"] - 1 for r in lost]
        assert sum(short) / len(short) < -0.03  # the closed-only medians run low


class TestInformativeSimulator:
    def test_lost_deals_linger_in_every_stage_by_the_factor(self) -> None:
        sim = simulate(4000, seed=3, mode="informative", model=PipelineModel(pace_sigma=0.0))
        for stage in sim.model.stages:
            medians = sim.truth.dwell_median_days[stage]
            assert medians["lost"] / medians["won"] == pytest.approx(2.5, rel=0.12)

    def test_truth_is_the_realized_share_of_all_deals(self) -> None:
        sim = simulate(3000, seed=4, mode="informative")
        assert sim.truth.reached["lead_generation"] == 3000
        won = sum(1 for e in sim.events if e.stage == "won")
        assert sim.truth.win_probability["lead_generation"] == won / 3000
        for stage, p in sim.model.true_win_probabilities().items():
            assert abs(sim.truth.win_probability[stage] - p) < 0.05

    def test_doomed_deals_are_pushed_more_often_per_stage_visit(self) -> None:
        sim = simulate(3000, seed=5, mode="informative")
        fate = {e.opportunity_id: e.stage for e in sim.events if e.stage in ("won", "lost")}
        pushes = {"won": 0, "lost": 0}
        visits = {"won": 0, "lost": 0}
        for e in sim.events:
            outcome = fate[e.opportunity_id]
            if e.kind.value == "rescheduled":
                pushes[outcome] += 1
            elif e.stage not in ("won", "lost"):
                visits[outcome] += 1
        assert pushes["won"] / visits["won"] == pytest.approx(0.25, abs=0.03)
        assert pushes["lost"] / visits["lost"] == pytest.approx(0.5, abs=0.03)

    def test_many_deals_are_still_open_at_as_of(self) -> None:
        sim = simulate(2000, seed=6, mode="informative")
        closed = {e.opportunity_id for e in sim.events if e.stage in ("won", "lost")
                  and e.at <= sim.as_of}  # fmt: skip
        assert 0.1 < 1 - len(closed) / 2000 < 0.4

    def test_the_markov_mode_is_the_default_model(self) -> None:
        assert simulate(80, seed=2, mode="markov").events == simulate(80, seed=2).events
        assert MODES == ("markov", "informative")

    def test_an_unknown_mode_or_a_bad_factor_is_refused(self) -> None:
        with pytest.raises(InvalidCommandError, match="mode must be one of"):
            simulate(5, mode="chaotic")
        with pytest.raises(InvalidCommandError, match="lost_dwell_factor"):
            PipelineModel(lost_dwell_factor=0)
        with pytest.raises(InvalidCommandError, match="probabilities"):
            PipelineModel(lost_push_probability=1.5)


class TestBacktestBaselines:
    def scored(self, mode: str = "informative") -> tuple[Any, Any]:
        sim = simulate(900, seed=8, mode=mode, span_days=200)
        return sim, sim.model.outcomes()

    def test_lifts_over_the_static_baseline_and_deal_clock_is_scored(self) -> None:
        sim, kinds = self.scored()
        bt = an.backtest(sim.events, kinds, cutoff=sim.as_of - timedelta(days=70), as_of=sim.as_of)
        scores = {s.estimator: s for s in bt.scores}
        assert "deal_clock" in scores
        assert bt.baselines == ("static_fitted",)  # a plain mapping configures nothing
        assert bt.static is not None
        assert bt.static.brier == scores["empirical"].brier  # empirical at the cut-off, frozen
        assert scores["empirical"].lift_over_static == 0.0
        lift = scores["deal_clock"].lift_over_static
        assert lift == pytest.approx(1 - scores["deal_clock"].brier / bt.static.brier)
        assert all(s.lift_over_configured is None for s in bt.scores)
        assert bt.best in an.ESTIMATORS
        assert bt.best != "configured"

    def test_names_no_winner_when_no_scored_deal_was_won(self) -> None:
        sim, kinds = self.scored()
        never_won = [e for e in sim.events if e.opportunity_id not in {
            x.opportunity_id for x in sim.events if x.stage == "won"}]  # fmt: skip
        cutoff = sim.as_of - timedelta(days=70)
        bt = an.backtest(never_won, kinds, cutoff=cutoff, as_of=sim.as_of)
        assert bt.best is None
        assert "was won" in bt.reason

    def test_a_configured_process_is_a_baseline(self) -> None:
        from stagegate.templates import template

        process = template("b2b")
        assert configured_known(process)
        sim = simulate(600, seed=9, process=process, span_days=200)
        cutoff = sim.as_of - timedelta(days=70)
        bt = an.backtest(sim.events, process, cutoff=cutoff, as_of=sim.as_of)
        assert bt.baselines == ("static_fitted", "configured")
        assert all(s.lift_over_configured is not None for s in bt.scores)


class TestConfiguredKnown:
    def test_zeros_everywhere_are_not_configured(self) -> None:
        zeros = an.Outcomes.of(KINDS, probabilities={"lead": 0.0, "demo": 0.0})
        assert not an.configured_known(zeros)
        assert configured_known(an.Outcomes.of(KINDS, probabilities={"lead": 0.2}))
        assert not configured_known(KINDS)

    def test_smoothed_shrinks_toward_the_pooled_rate_then(self) -> None:
        zeros = an.Outcomes.of(KINDS, probabilities={"lead": 0.0, "demo": 0.0})
        lead, demo = an.stage_probabilities(hand_rows(), zeros, as_of=t(20), draws=0)
        pooled = (1 + 1) / (3 + 2)  # lead: 1 won of 3 closed; demo: 1 of 2
        assert lead.smoothed == pytest.approx((1 + 10 * pooled + 0.5) / (3 + 10 + 1))
        assert demo.smoothed == pytest.approx((1 + 10 * pooled + 0.5) / (2 + 10 + 1))


def test_the_study_runs_small_and_ends_with_one_json_line() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "probability.py"),
         "--deals", "800", "--seeds", "1", "--draws", "20"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    document = json.loads(lines[-1])
    assert document["deals"] == 800
    assert set(document["summary"]) >= {"deal_clock", "markov", "empirical", "goal_met"}
    assert len(document["runs"][0]["stages"]) == 6
    assert any("deal_clock" in line for line in lines[:-1])


def test_the_simulate_command_writes_an_informative_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "sim.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "stagegate", "simulate", "--deals", "300", "--mode",
         "informative", "--lost-dwell-factor", "3", "--out", str(out), "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    summary = json.loads(result.stdout)
    assert summary["mode"] == "informative"
    lead = summary["true_dwell_median_days"]["lead_generation"]
    assert lead["lost"] > 2 * lead["won"]
    assert out.exists()
