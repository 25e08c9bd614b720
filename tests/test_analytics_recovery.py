"""On simulated pipelines with a known truth, each estimator recovers it within its interval."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stagegate import analytics as an
from stagegate.simulate import PipelineModel, simulate


@pytest.fixture(scope="module")
def censored() -> object:
    return simulate(6000, seed=11, span_days=240)


def test_markov_recovers_the_true_win_probability_despite_censoring(censored: object) -> None:
    sim = censored
    rows = an.stage_probabilities(sim.events, sim.model.outcomes(), as_of=sim.as_of, draws=200)
    for r in rows:
        truth = sim.true_win_probabilities[r.stage]
        assert r.markov_low <= truth <= r.markov_high, (r.stage, truth, r)


def test_the_naive_empirical_rate_is_biased_when_lost_deals_linger(censored: object) -> None:
    sim = censored
    rows = an.stage_probabilities(sim.events, sim.model.outcomes(), as_of=sim.as_of, draws=0)
    first = rows[0]
    assert first.empirical < sim.true_win_probabilities[first.stage]
    assert first.empirical_high < sim.true_win_probabilities[first.stage]


def test_the_empirical_rate_recovers_the_truth_once_every_deal_has_closed() -> None:
    sim = simulate(4000, seed=5, span_days=120)
    later = sim.as_of + timedelta(days=2000)
    for r in an.stage_probabilities(sim.events, sim.model.outcomes(), as_of=later, draws=0):
        assert r.empirical_low <= sim.true_win_probabilities[r.stage] <= r.empirical_high
        assert r.smoothed_low <= sim.true_win_probabilities[r.stage] <= r.smoothed_high


def test_time_in_stage_recovers_the_dwell_medians_and_the_lost_won_ratio() -> None:
    model = PipelineModel(lost_dwell_everywhere=True)
    sim = simulate(4000, model=model, seed=8, span_days=60)
    later = sim.as_of + timedelta(days=2000)
    rows = an.time_in_stage(sim.events, model.outcomes(), as_of=later)
    for stage, median in zip(model.stages, model.dwell_median_days, strict=False):
        won = next(r for r in rows if r.stage == stage and r.outcome == "won")
        assert won.median_days == pytest.approx(median, rel=0.15)
        assert won.lost_won_ratio == pytest.approx(model.lost_dwell_factor, rel=0.2)


def test_kaplan_meier_median_is_closer_to_the_truth_than_the_naive_median(censored: object) -> None:
    sim = censored
    later = sim.as_of + timedelta(days=2000)
    kinds = sim.model.outcomes()
    truth = {r.stage: r.median_days for r in an.time_in_stage(sim.events, kinds, as_of=later)
             if r.outcome == "all"}  # fmt: skip
    now = [r for r in an.time_in_stage(sim.events, kinds, as_of=sim.as_of) if r.outcome == "all"]
    for r in now:
        naive_closed = r.median_days  # includes censored visits as if finished
        assert abs(r.km_median_days - truth[r.stage]) <= abs(naive_closed - truth[r.stage]) + 0.25


def test_the_backtest_prefers_an_estimator_that_uses_open_deals(censored: object) -> None:
    sim = censored
    result = an.backtest(
        sim.events, sim.model.outcomes(), cutoff=sim.as_of - timedelta(days=60), as_of=sim.as_of
    )
    scores = {s.estimator: s.brier for s in result.scores}
    assert result.best == min(scores, key=scores.__getitem__)
    assert scores["markov"] <= scores["configured"]
