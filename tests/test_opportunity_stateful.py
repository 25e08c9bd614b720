"""Random command sequences on an opportunity, checked against the log and the policy."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from stagegate import (
    ActivityCount,
    Approval,
    Deliverable,
    EventKind,
    FieldCheck,
    GateNotMetError,
    MoveKind,
    Opportunity,
    Process,
    StagegateError,
    b2b,
)
from stagegate.segments import values_at
from strategies import (
    BAD_COMMANDS,
    T0,
    decimals,
    full_evidence,
    good_commands,
    lax_process,
    run,
    skipping_process,
)

STEPS = st.sampled_from([timedelta(0), timedelta(minutes=5), timedelta(hours=6), timedelta(days=3)])


def machine_for(chosen: Process) -> type[RuleBasedStateMachine]:
    """A state machine driving one opportunity of ``chosen`` with good and bad commands."""

    class OpportunityMachine(RuleBasedStateMachine):
        process = chosen

        def __init__(self) -> None:
            super().__init__()
            self.deal: Opportunity | None = None
            self.at = T0
            self.rejected = 0

        def snapshot(self):
            deal = self.deal
            return (
                deal.events,
                deal.stage,
                deal.amount,
                deal.close_date,
                dict(deal.fields),
                dict(deal.deliverables),
            )

        @initialize(amount=st.one_of(st.none(), decimals))
        def open(self, amount):
            self.deal = Opportunity.open(self.process, "deal-1", at=T0, actor="ana", amount=amount)

        @rule(command=good_commands(chosen), step=STEPS)
        def command(self, command, step):
            self.at += step
            deal = self.deal
            before = self.snapshot()
            options = {option.target: option for option in deal.available_moves(at=self.at)}
            was_closed = deal.is_closed
            try:
                event = run(deal, command, self.at)
            except StagegateError as error:
                self.rejected += 1
                assert before == self.snapshot()
                if isinstance(error, GateNotMetError):
                    option = options.get(error.target)
                    assert option is None or not option.allowed
                return
            assert before[0] + (event,) == deal.events
            assert len(deal.events) == event.seq
            assert self.at == event.at
            if event.kind is EventKind.STAGE_CHANGED:
                self.check_stage_change(event, options, was_closed=was_closed)

        def check_stage_change(self, event, options, *, was_closed):
            process = self.process
            policies = process.policies
            move = process.lifecycle.move(event.from_stage, event.stage)
            kind = event.move
            if kind is MoveKind.IMPORTED:
                assert event.gate is None
                return
            assert move is not None, (event.from_stage, event.stage)
            option = options[event.stage]
            if kind is MoveKind.OVERRIDE:
                assert policies.allow_override
                assert event.reason
                assert (event.gate is not None) == bool(move.checks)
                return
            assert move.kind == kind
            assert option.allowed
            if kind in (MoveKind.ADVANCE, MoveKind.SKIP, MoveKind.WIN):
                assert not was_closed
                assert event.gate is None or event.gate.passed
                assert (event.gate is None) == (not move.checks)
                if kind is MoveKind.SKIP:
                    assert policies.allow_skip
            elif kind is MoveKind.BACKWARD:
                assert policies.allow_backward
                assert event.reason or not policies.backward_needs_reason
                assert process.index(event.stage) < process.index(event.from_stage)
            elif kind is MoveKind.REOPEN:
                assert was_closed
                assert policies.allow_reopen
                assert event.reason
            elif kind is MoveKind.LOSE:
                assert not was_closed
                assert event.reason
                assert process.stage(event.stage) in process.lost_stages

        @rule(step=STEPS, then_advance=st.booleans())
        def satisfy_the_next_gate(self, step, then_advance):
            """Record what the next stage's gate asks for; then advance must be possible."""
            self.at += step
            deal = self.deal
            nxt = self.process.next_stage(deal.stage)
            if deal.is_closed or nxt is None or nxt.gate is None:
                return
            for criterion in nxt.gate.walk():
                if isinstance(criterion, Deliverable):
                    evidence = full_evidence(self.process, criterion.deliverable)
                    evidence.update(dict.fromkeys(criterion.evidence, "yes"))
                    deal.record_deliverable(
                        criterion.deliverable, at=self.at, actor="ana", evidence=evidence
                    )
                elif isinstance(criterion, ActivityCount):
                    for _ in range(criterion.at_least):
                        deal.log_activity(criterion.activity, at=self.at, actor="ana")
                elif isinstance(criterion, Approval):
                    deal.record_approval(criterion.role, at=self.at, actor="dora")
                elif isinstance(criterion, FieldCheck) and criterion.field == "amount":
                    if not deal.amount:
                        deal.change_amount(1000, at=self.at, actor="ana")
                elif isinstance(criterion, FieldCheck):
                    deal.set_field(criterion.field, 0, at=self.at, actor="ana")
            assert deal.can_advance(), deal.gate_report().explain()
            if then_advance:
                event = deal.advance(at=self.at, actor="ana")
                assert event.move in (MoveKind.ADVANCE, MoveKind.WIN)
                assert event.gate is not None
                assert event.gate.passed

        @rule(name=st.sampled_from(sorted(BAD_COMMANDS)), step=STEPS)
        def bad_command(self, name, step):
            self.at += step
            call, _, _ = BAD_COMMANDS[name]
            before = self.snapshot()
            # which error comes first depends on the state (a closed deal refuses any loss
            # before looking at the reason): any StagegateError, and nothing changed
            with pytest.raises(StagegateError):
                call(self.deal, self.at)
            assert before == self.snapshot()

        @invariant()
        def the_deal_equals_the_replay_of_its_log(self):
            if self.deal is None:
                return
            replayed = Opportunity.replay(self.process, self.deal.events)
            assert self.deal == replayed
            assert self.snapshot() == (
                replayed.events,
                replayed.stage,
                replayed.amount,
                replayed.close_date,
                dict(replayed.fields),
                dict(replayed.deliverables),
            )

        @invariant()
        def the_log_is_in_order(self):
            if self.deal is None:
                return
            events = self.deal.events
            assert list(range(1, len(events) + 1)) == [e.seq for e in events]
            assert all(a.at <= b.at for a, b in itertools.pairwise(events))

        @invariant()
        def durations_add_up(self):
            if self.deal is None:
                return
            metrics = self.deal.metrics(as_of=self.at)
            total = sum(metrics.stage_durations.values(), timedelta(0))
            assert (metrics.age if metrics.cycle_time is None else metrics.cycle_time) == total
            assert 0.0 <= self.process.stage(self.deal.stage).probability <= 1.0

        @invariant()
        def the_owner_and_attributes_are_the_replays_and_the_last_values(self):
            if self.deal is None:
                return
            replayed = Opportunity.replay(self.process, self.deal.events)
            state = (self.deal.owner, dict(self.deal.attributes))
            assert state == (replayed.owner, dict(replayed.attributes))
            last = values_at(self.deal.events)[-1]
            assert self.deal.owner == last.get("owner")
            assert dict(self.deal.attributes) == {
                k: v for k, v in last.items() if k != "owner" and v is not None
            }

    return OpportunityMachine


_SETTINGS = settings(max_examples=100, stateful_step_count=30, deadline=None)

TestTemplateOpportunity = machine_for(b2b()).TestCase
TestTemplateOpportunity.settings = _SETTINGS
TestSkippingOpportunity = machine_for(skipping_process()).TestCase
TestSkippingOpportunity.settings = _SETTINGS
TestLaxOpportunity = machine_for(lax_process()).TestCase
TestLaxOpportunity.settings = _SETTINGS
