"""The simulator: seeded, well-formed logs, known truth, fast columns."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from stagegate.errors import InvalidCommandError
from stagegate.events import EventKind, MoveKind
from stagegate.simulate import PipelineModel, simulate, simulate_columns


def test_the_same_seed_gives_the_same_pipeline_and_another_seed_another() -> None:
    assert simulate(50, seed=1) == simulate(50, seed=1)
    assert simulate(50, seed=1).events != simulate(50, seed=2).events


def test_logs_are_well_formed_per_opportunity() -> None:
    sim = simulate(100, seed=4)
    by_opp: dict[str, list] = {}
    for e in sim.events:
        by_opp.setdefault(e.opportunity_id, []).append(e)
    for events in by_opp.values():
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[0].kind is EventKind.OPENED
        assert all(a.at <= b.at for a, b in itertools.pairwise(events))
        assert events[-1].stage in ("won", "lost")
        for e in events:
            if e.kind is EventKind.STAGE_CHANGED:
                assert e.move is MoveKind.IMPORTED
                assert e.gate is None
            assert e.amount is not None
            assert e.close_date is not None


def test_losses_carry_a_reason_and_pushes_are_reschedules() -> None:
    sim = simulate(300, seed=9)
    kinds = Counter(e.kind for e in sim.events)
    assert kinds[EventKind.RESCHEDULED] > 0
    assert all(e.reason for e in sim.events if e.stage == "lost")


def test_true_probabilities_are_products_of_advance_probabilities() -> None:
    model = PipelineModel(stages=("a", "b"), advance=(0.5, 0.8), dwell_median_days=(1, 2))
    assert model.true_win_probabilities() == {"a": 0.4, "b": 0.8}
    assert model.outcomes() == {"a": "open", "b": "open", "won": "won", "lost": "lost"}


def test_columns_match_the_events() -> None:
    sim = simulate(40, seed=3)
    columns = simulate_columns(40, seed=3)
    assert columns["opportunity_id"] == [e.opportunity_id for e in sim.events]
    assert columns["stage"] == [e.stage for e in sim.events]
    assert columns["seq"] == [e.seq for e in sim.events]


def test_bad_models_and_counts_are_rejected() -> None:
    with pytest.raises(InvalidCommandError):
        PipelineModel(stages=("a",), advance=(0.5, 0.5), dwell_median_days=(1,))
    with pytest.raises(InvalidCommandError):
        PipelineModel(stages=("a",), advance=(1.5,), dwell_median_days=(1,))
    with pytest.raises(InvalidCommandError):
        simulate(-1)
