"""Tests of stagegate.lifecycle: the move table agrees with the real transitions machine."""

from __future__ import annotations

import pytest

from stagegate import Lifecycle, MoveKind, Opportunity, b2b
from strategies import PROCESSES, T0, process_with

VARIANTS = (*PROCESSES, process_with(allow_backward=False, allow_reopen=False))


@pytest.mark.parametrize("process", VARIANTS, ids=lambda p: p.name)
class TestMoveTableAgreesWithTheMachine:
    def test_every_source_target_pair_gives_the_same_decision(self, process):
        life = process.lifecycle
        triggers = list(life.machine.events)
        for source in process.stage_ids:
            for target in process.stage_ids:
                move = life.move(source, target)
                reached_with = {
                    trigger
                    for trigger in triggers
                    if life.fire(source, trigger, gates_passed=True) == target
                }
                if move is None:
                    assert set() == reached_with, (source, target)
                    continue
                assert {move.trigger} == reached_with, (source, target)
                blocked = life.fire(source, move.trigger, gates_passed=False)
                assert (None if move.checks else target) == blocked, (source, target)

    def test_the_moves_follow_the_policies(self, process):
        policies = process.policies
        for source in process.stage_ids:
            for move in process.lifecycle.moves_from(source):
                source_stage = process.stage(move.source)
                target_stage = process.stage(move.target)
                if move.kind is MoveKind.SKIP:
                    assert policies.allow_skip
                if move.kind is MoveKind.BACKWARD:
                    assert policies.allow_backward
                    assert policies.backward_needs_reason == move.needs_reason
                if move.kind is MoveKind.REOPEN:
                    assert policies.allow_reopen
                    assert not source_stage.is_open
                    assert move.needs_reason
                if move.kind is MoveKind.LOSE:
                    assert source_stage.is_open
                    assert move.needs_reason
                if move.kind in (MoveKind.ADVANCE, MoveKind.SKIP, MoveKind.WIN):
                    assert process.index(move.target) > process.index(move.source)
                    assert (target_stage.gate is not None) == (move.target in move.checks)
                assert move.source != move.target

    def test_every_open_stage_can_be_lost(self, process):
        for stage in process.open_stages:
            move = process.lifecycle.move(stage.id, process.lost_stages[0].id)
            assert move is not None
            assert move.kind == MoveKind.LOSE

    def test_the_machine_has_no_auto_transitions(self, process):
        life = process.lifecycle
        assert not life.machine.auto_transitions
        assert not [name for name in life.machine.events if name.startswith("to_")]

    def test_an_unknown_trigger_or_state_fires_nothing(self, process):
        life = process.lifecycle
        assert life.fire(process.initial.id, "teleport", gates_passed=True) is None
        assert life.fire("nowhere", next(iter(life.machine.events)), gates_passed=True) is None

    def test_the_mermaid_diagram_names_every_stage(self, process):
        text = process.to_mermaid()
        assert text.startswith("stateDiagram-v2")
        for stage in process.stages:
            assert f"as s_{stage.id}" in text
        assert f"[*] --> s_{process.initial.id}" in text


class TestLifecycle:
    def test_one_lifecycle_per_process_shared_by_its_opportunities(self):
        process = b2b()
        first = Opportunity.open(process, "a", at=T0, actor="ana")
        second = Opportunity.open(process, "b", at=T0, actor="ana")
        assert first.process.lifecycle is second.process.lifecycle
        assert process.lifecycle is process.lifecycle
        assert isinstance(process.lifecycle, Lifecycle)

    def test_the_machine_holds_no_opportunity_as_a_model(self):
        process = b2b()
        Opportunity.open(process, "a", at=T0, actor="ana").log_activity(
            "outreach", at=T0, actor="ana"
        )
        assert process.lifecycle.machine.models == []

    def test_the_default_template_forbids_skipping(self):
        life = b2b().lifecycle
        assert life.move("qualification", "contract") is None
        assert life.move("qualification", "needs_analysis").kind == MoveKind.ADVANCE
        assert life.move("contract", "won").kind == MoveKind.WIN
        assert life.move("won", "lost") is None

    def test_a_skip_checks_the_gates_passed_over(self):
        from strategies import skipping_process

        move = skipping_process().lifecycle.move("lead_generation", "needs_analysis")
        assert move.kind == MoveKind.SKIP
        assert move.checks == ("qualification", "needs_analysis")

    def test_the_mermaid_diagram_labels_gates_and_policies(self):
        text = b2b().to_mermaid(language="ko")
        assert "s_lead_generation --> s_qualification: advance [deliverable" in text
        assert "lose (reason)" in text
        assert "skip forward: not allowed" in text
        assert "협상 (60%)" in text
        assert "s_won --> [*]" in text
