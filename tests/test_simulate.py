"""The simulator: seeded, well-formed logs, known truth, fast columns."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from stagegate import Opportunity, b2b
from stagegate._time import epoch_us, from_epoch_us
from stagegate.errors import InvalidCommandError
from stagegate.events import Event, EventKind, MoveKind
from stagegate.segments import in_force
from stagegate.simulate import DEFAULT_REPS, PipelineModel, simulate, simulate_columns


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


class TestSegments:
    @pytest.mark.parametrize("mode", ["markov", "informative"])
    def test_segments_leave_every_other_field_and_the_truth_unchanged(self, mode: str) -> None:
        plain = simulate(300, seed=13, mode=mode)
        owned = simulate(300, seed=13, mode=mode, segments=True)
        kept = [e for e in owned.events if e.kind not in _SEGMENT_KINDS]
        fields = ("opportunity_id", "kind", "at", "stage", "from_stage", "amount", "close_date")
        assert [tuple(getattr(e, f) for f in fields) for e in kept] == [
            tuple(getattr(e, f) for f in fields) for e in plain.events
        ]
        assert owned.truth == plain.truth

    def test_every_deal_replays_with_an_owner_of_the_organization(self) -> None:
        sim = simulate(200, seed=3, process=b2b(), segments=True)
        reps = {rep[0]: rep[1:] for rep in DEFAULT_REPS}
        for _, group in itertools.groupby(sim.events, key=lambda e: e.opportunity_id):
            deal = Opportunity.replay(b2b(), list(group))
            assert deal.owner in reps
            team, manager, region = reps[deal.owner]
            assert dict(deal.attributes) == {"team": team, "manager": manager, "region": region}

    def test_about_the_reassign_probability_of_deals_change_hands_once(self) -> None:
        sim = simulate(2000, seed=5, segments=True, reassign_probability=0.2)
        owners = Counter(e.opportunity_id for e in sim.events if e.kind is EventKind.REASSIGNED)
        assert set(owners.values()) == {1, 2}
        share = sum(n == 2 for n in owners.values()) / len(owners)
        assert 0.17 < share < 0.23  # binomial(2000, 0.2): sd 0.009

    def test_the_organization_has_reps_in_teams_in_regions(self) -> None:
        assert len(DEFAULT_REPS) == len({rep[0] for rep in DEFAULT_REPS}) == 24
        assert {rep[3] for rep in DEFAULT_REPS} == {"east", "central", "west"}
        teams = Counter(rep[1] for rep in DEFAULT_REPS)
        assert set(teams.values()) == {4}
        assert len({(rep[1], rep[2]) for rep in DEFAULT_REPS}) == len(teams) == 6

    def test_a_bad_reassign_probability_is_rejected(self) -> None:
        with pytest.raises(InvalidCommandError, match="reassign_probability"):
            simulate(5, segments=True, reassign_probability=1.5)
        with pytest.raises(InvalidCommandError, match="reassign_probability"):
            simulate_columns(5, segments=True, reassign_probability=-0.1)

    def test_columns_carry_the_segments_of_the_events(self) -> None:
        sim = simulate(300, seed=4, segments=True)
        columns = simulate_columns(300, seed=4, segments=True)
        plain = simulate_columns(300, seed=4)
        names = ("owner", "team", "manager", "region")
        logs: dict[str, list[Event]] = {}
        for e in sim.events:
            logs.setdefault(e.opportunity_id, []).append(e)
        rows = list(zip(*(columns[c] for c in ("opportunity_id", "at_us", "stage", *names)),
                        strict=True))  # fmt: skip
        for oid, at_us, stage, *values in rows:
            expected = in_force(logs[oid], from_epoch_us(at_us), names)
            assert [expected[n] for n in names] == values
            assert stage == next(e.stage for e in reversed(logs[oid]) if epoch_us(e.at) <= at_us)
        handovers = sum(e.kind is EventKind.REASSIGNED for e in sim.events) - len(logs)
        assert len(columns["seq"]) == len(plain["seq"]) + handovers
        assert handovers > 0
        pairs = zip(columns["opportunity_id"], columns["seq"], strict=True)
        for _, group in itertools.groupby(pairs, key=lambda pair: pair[0]):
            seqs = [seq for _, seq in group]
            assert list(range(1, len(seqs) + 1)) == seqs


_SEGMENT_KINDS = (EventKind.REASSIGNED, EventKind.ATTRIBUTE_SET)
