"""Properties of the analytics that hold for any log."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import KINDS, at
from stagegate import analytics as an

STAGES = list(KINDS)
SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def logs(draw: Any) -> list[dict[str, Any]]:
    rows = []
    for n in range(draw(st.integers(1, 6))):
        t = draw(st.floats(0, 5))
        stages = draw(st.lists(st.sampled_from(STAGES), min_size=1, max_size=7))
        for seq, stage in enumerate(stages, start=1):
            rows.append({"opportunity_id": f"o{n}", "at": at(t), "stage": stage, "seq": seq})
            t += draw(st.sampled_from([0.0, 0.5, 1.0, 2.25, 7.0]))
    return rows


AS_OF = at(40)


@SETTINGS
@given(logs())
def test_stage_durations_of_a_closed_deal_add_up_to_its_cycle_time(rows: Any) -> None:
    visits = an.stage_intervals(rows, KINDS, as_of=AS_OF)
    cycles = {
        c.opportunity_id: c.cycle_days for c in an.cycle_times(rows, KINDS, as_of=AS_OF).deals
    }
    for opp, cycle in cycles.items():
        total = sum(v.duration_days or 0.0 for v in visits if v.opportunity_id == opp)
        assert math.isclose(cycle, total, abs_tol=1e-9)


@SETTINGS
@given(logs())
def test_every_probability_lies_between_zero_and_one(rows: Any) -> None:
    for p in an.stage_probabilities(rows, KINDS, as_of=AS_OF, draws=10):
        for value in (p.empirical, p.empirical_low, p.empirical_high, p.markov, p.markov_low,
                      p.markov_high, p.smoothed, p.smoothed_low, p.smoothed_high):  # fmt: skip
            assert value is None or 0.0 <= value <= 1.0
        if p.empirical is not None:
            assert p.empirical_low <= p.empirical <= p.empirical_high
    for d in an.dwell_probabilities(rows, KINDS, as_of=AS_OF):
        assert d.probability is None or 0.0 <= d.probability <= 1.0


@SETTINGS
@given(logs(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_row_order(rows: Any, rnd: random.Random) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert an.stage_intervals(rows, KINDS, as_of=AS_OF) == an.stage_intervals(
        shuffled, KINDS, as_of=AS_OF
    )
    assert an.time_in_stage(rows, KINDS, as_of=AS_OF) == an.time_in_stage(
        shuffled, KINDS, as_of=AS_OF
    )
    assert (
        an.funnel(rows, KINDS, as_of=AS_OF).stages == an.funnel(shuffled, KINDS, as_of=AS_OF).stages
    )


@SETTINGS
@given(logs())
def test_results_without_seq_do_not_depend_on_row_order(rows: Any) -> None:
    bare = [{k: v for k, v in r.items() if k != "seq"} for r in rows]
    assert an.stage_intervals(bare, KINDS, as_of=AS_OF) == an.stage_intervals(
        bare[::-1], KINDS, as_of=AS_OF
    )


@SETTINGS
@given(logs(), st.floats(0, 30), st.floats(0, 30))
def test_censoring_never_shortens_a_duration(rows: Any, a: float, b: float) -> None:
    early, late = at(min(a, b)), at(max(a, b))
    before = {(v.opportunity_id, v.step): v for v in an.stage_intervals(rows, KINDS, as_of=early)}
    after = {(v.opportunity_id, v.step): v for v in an.stage_intervals(rows, KINDS, as_of=late)}
    for key, v in before.items():
        if v.duration_days is None:
            continue
        assert v.duration_days >= 0
        assert after[key].duration_days is not None
        assert after[key].duration_days >= v.duration_days - 1e-12
        if v.censored:
            expected = (early - v.entered_at) / timedelta(days=1)
            assert math.isclose(v.duration_days, expected, abs_tol=1e-9)


@SETTINGS
@given(logs())
def test_mean_cycle_equals_stage_means_weighted_by_visits_per_deal(rows: Any) -> None:
    for s in an.cycle_times(rows, KINDS, as_of=AS_OF).summary:
        if s.deals and s.weighted_sum_days is not None:
            assert math.isclose(s.mean_days, s.weighted_sum_days, rel_tol=1e-9, abs_tol=1e-9)
