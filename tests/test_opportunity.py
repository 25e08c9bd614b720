"""Tests of stagegate.opportunity: commands append events; queries explain; replays are equal."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import (
    Event,
    EventKind,
    EventLogError,
    GateNotMetError,
    InvalidCommandError,
    InvalidTimestampError,
    MoveKind,
    MoveNotAllowedError,
    Opportunity,
    OutOfOrderError,
    StagegateError,
    UnknownDeliverableError,
    UnknownStageError,
    b2b,
)
from strategies import (
    BAD_COMMANDS,
    PROCESSES,
    T0,
    full_evidence,
    lax_process,
    opportunities,
    skipping_process,
)

H = timedelta(hours=1)
D = timedelta(days=1)


def snapshot(deal: Opportunity):
    return (
        deal.events,
        deal.stage,
        deal.amount,
        deal.close_date,
        dict(deal.fields),
        dict(deal.deliverables),
    )


def everything_recorded(process=None, *, at=T0) -> Opportunity:
    """A deal of the template with every gate of every stage satisfied, still in the first stage."""
    process = process or b2b()
    deal = Opportunity.open(process, "acme-1", at=at, actor="ana", amount=50_000)
    for deliverable in process.deliverables:
        deal.record_deliverable(
            deliverable, at=at, actor="ana", evidence=full_evidence(process, deliverable)
        )
    for stage in process.stages:
        for activity in stage.activities:
            deal.log_activity(activity.id, at=at, actor="ana")
    deal.set_field("discount_percent", 10, at=at, actor="ana")
    return deal


def deal_in(stage: str, process=None) -> Opportunity:
    """A deal advanced, gates met, into ``stage`` one day per stage."""
    deal = everything_recorded(process)
    at = T0
    while deal.stage != stage:
        at += D
        deal.advance(at=at, actor="ana")
    return deal


# -- invariants over random command sequences -------------------------------------------------


class TestInvariants:
    @given(opportunities())
    def test_replaying_the_events_rebuilds_an_equal_opportunity(self, deal):
        replayed = Opportunity.replay(deal.process, deal.events)
        assert deal == replayed
        assert snapshot(deal) == snapshot(replayed)
        assert deal.is_closed == replayed.is_closed

    @given(opportunities())
    def test_the_log_survives_json_and_replays_equal(self, deal):
        text = json.dumps([event.to_dict() for event in deal.events], allow_nan=False)
        rebuilt = Opportunity.replay(deal.process, [Event.from_dict(d) for d in json.loads(text)])
        assert deal == rebuilt
        assert snapshot(deal) == snapshot(rebuilt)

    @given(opportunities())
    def test_events_are_numbered_without_gaps_and_never_go_back_in_time(self, deal):
        assert list(range(1, len(deal.events) + 1)) == [e.seq for e in deal.events]
        instants = [e.at for e in deal.events]
        assert sorted(instants) == instants
        assert len(deal.events) == deal.version

    @given(opportunities())
    def test_every_event_carries_the_state_in_force_after_it(self, deal):
        for n in range(1, len(deal.events) + 1):
            prefix = Opportunity.replay(deal.process, deal.events[:n])
            last = deal.events[n - 1]
            assert (last.stage, last.amount, last.close_date) == (
                prefix.stage,
                prefix.amount,
                prefix.close_date,
            )

    @given(opportunities(), st.sampled_from([timedelta(0), H, 3 * D]))
    def test_stage_durations_add_up_to_age_or_cycle_time(self, deal, extra):
        metrics = deal.metrics(as_of=deal.last_at + extra)
        total = sum(metrics.stage_durations.values(), timedelta(0))
        if deal.is_closed:
            assert metrics.cycle_time == total
        else:
            assert metrics.cycle_time is None
            assert metrics.age == total
        assert all(value >= timedelta(0) for value in metrics.stage_durations.values())

    @given(opportunities(), st.data())
    def test_durations_add_up_at_every_instant_of_the_history(self, deal, data):
        as_of = data.draw(st.sampled_from([e.at for e in deal.events]))
        metrics = deal.metrics(as_of=as_of)
        total = sum(metrics.stage_durations.values(), timedelta(0))
        expected = metrics.age if metrics.cycle_time is None else metrics.cycle_time
        assert expected == total
        assert deal.state_at(as_of).stage == metrics.stage

    @given(opportunities(), st.data())
    def test_state_at_equals_a_replay_of_the_prefix(self, deal, data):
        event = data.draw(st.sampled_from(deal.events))
        shift = data.draw(st.sampled_from([timedelta(0), timedelta(microseconds=1), H]))
        at = event.at + shift
        prefix = [e for e in deal.events if e.at <= at]
        assert Opportunity.replay(deal.process, prefix) == deal.state_at(at)

    @given(opportunities())
    def test_probabilities_stay_within_zero_and_one(self, deal):
        for event in deal.events:
            assert 0.0 <= deal.process.stage(event.stage).probability <= 1.0
        for stage in deal.process.stages:
            assert 0.0 <= stage.probability <= 1.0

    @given(opportunities(), st.sampled_from(sorted(BAD_COMMANDS)))
    def test_a_rejected_command_changes_nothing(self, deal, name):
        call, error, words = BAD_COMMANDS[name]
        before = snapshot(deal)
        with pytest.raises(error) as caught:
            call(deal, deal.last_at + H)
        assert before == snapshot(deal)
        for word in words:
            assert word in str(caught.value)

    @given(opportunities())
    def test_stage_changes_say_what_kind_of_move_they_were(self, deal):
        for event in deal.events:
            if event.kind is EventKind.STAGE_CHANGED:
                assert event.move is not None
                assert event.from_stage is not None
                assert event.from_stage != event.stage
                if event.move in (MoveKind.LOSE, MoveKind.REOPEN, MoveKind.OVERRIDE):
                    assert event.reason
                if event.move in (MoveKind.ADVANCE, MoveKind.SKIP, MoveKind.WIN):
                    assert event.gate is None or event.gate.passed
            else:
                assert event.move is None


# -- commands ---------------------------------------------------------------------------------


class TestOpen:
    def test_a_new_deal_is_in_the_first_stage_with_one_opened_event(self):
        deal = Opportunity.open(
            b2b(), "acme-1", at=T0, actor="ana", amount="12000.50", close_date=date(2026, 3, 31)
        )
        assert deal.stage == "lead_generation"
        assert tuple(e.kind for e in deal.events) == (EventKind.OPENED,)
        assert Decimal("12000.50") == deal.amount
        assert date(2026, 3, 31) == deal.close_date
        assert not deal.is_closed
        assert deal.opened_at == T0

    def test_opening_fields_are_kept_and_replayed(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana", fields={"region": "emea"})
        assert dict(deal.fields) == {"region": "emea"}
        assert deal == Opportunity.replay(deal.process, deal.events)

    @pytest.mark.parametrize(
        ("kwargs", "error", "words"),
        [
            ({"at": datetime(2026, 1, 5)}, InvalidTimestampError, "naive"),
            ({"actor": ""}, InvalidCommandError, "actor must be non-empty text"),
            ({"amount": "a lot"}, InvalidCommandError, "not a number"),
            ({"amount": -1}, InvalidCommandError, ">= 0"),
            ({"amount": float("inf")}, InvalidCommandError, "finite"),
            ({"close_date": "2026-03-31"}, InvalidCommandError, "calendar date"),
            ({"close_date": T0}, InvalidCommandError, "calendar date"),
            ({"fields": {"amount": 5}}, InvalidCommandError, "not a custom field"),
            ({"fields": {"x": object()}}, InvalidCommandError, "JSON values"),
            ({"opportunity_id": ""}, InvalidCommandError, "opportunity_id"),
            ({"opportunity_id": 7}, InvalidCommandError, "opportunity_id"),
            ({"process": "b2b"}, InvalidCommandError, "must be a Process"),
        ],
    )
    def test_bad_arguments_are_rejected_with_a_typed_error(self, kwargs, error, words):
        arguments = {"process": b2b(), "opportunity_id": "a", "at": T0, "actor": "ana"}
        arguments.update(kwargs)
        process = arguments.pop("process")
        opportunity_id = arguments.pop("opportunity_id")
        with pytest.raises(error, match=words) as caught:
            Opportunity.open(process, opportunity_id, **arguments)
        assert isinstance(caught.value, StagegateError)
        assert isinstance(caught.value, ValueError)


class TestAdvance:
    def test_advance_with_the_gate_met_enters_the_next_stage(self):
        deal = everything_recorded()
        event = deal.advance(at=T0 + D, actor="ana")
        assert deal.stage == "qualification"
        assert (event.move, event.from_stage) == (MoveKind.ADVANCE, "lead_generation")
        assert event.gate is not None
        assert event.gate.passed

    def test_advance_with_the_gate_unmet_raises_and_says_what_is_missing(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        with pytest.raises(GateNotMetError, match="deliverable 'lead_record' not recorded") as e:
            deal.advance(at=T0 + D, actor="ana")
        assert "override" in str(e.value)
        assert e.value.target == "qualification"
        assert not e.value.report.passed

    def test_a_rejected_advance_leaves_the_log_unchanged(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        before = snapshot(deal)
        with pytest.raises(GateNotMetError):
            deal.advance(at=T0 + D, actor="ana")
        assert before == snapshot(deal)

    def test_evidence_missing_from_a_record_blocks_the_gate(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        deal.record_deliverable("lead_record", at=T0, actor="ana", evidence={"source": "web"})
        with pytest.raises(GateNotMetError, match="without evidence 'contact'"):
            deal.advance(at=T0 + D, actor="ana")

    def test_advance_from_the_last_open_stage_wins(self):
        deal = deal_in("contract")
        event = deal.advance(at=T0 + 10 * D, actor="ana")
        assert event.move == MoveKind.WIN
        assert deal.is_won

    def test_advance_from_a_closed_stage_is_not_allowed(self):
        deal = deal_in("won")
        with pytest.raises(MoveNotAllowedError, match="closed; reopen it first"):
            deal.advance(at=T0 + 10 * D, actor="ana")

    def test_advance_checks_the_instant_even_when_the_move_is_impossible(self):
        deal = deal_in("won")
        with pytest.raises(OutOfOrderError):
            deal.advance(at=T0, actor="ana")

    def test_can_advance_predicts_advance(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        assert not deal.can_advance()
        deal = everything_recorded()
        assert deal.can_advance()
        assert not deal_in("won").can_advance()


class TestMoveTo:
    def test_skipping_is_refused_by_default_with_the_allowed_moves(self):
        deal = everything_recorded()
        with pytest.raises(MoveNotAllowedError, match="does not allow skipping") as caught:
            deal.move_to("needs_analysis", at=T0 + D, actor="ana")
        assert caught.value.allowed == ("qualification", "lost")

    def test_skipping_is_allowed_when_the_policy_says_so_and_checks_passed_gates(self):
        deal = Opportunity.open(skipping_process(), "a", at=T0, actor="ana")
        with pytest.raises(GateNotMetError, match="lead_record") as caught:
            deal.move_to("needs_analysis", at=T0 + D, actor="ana")
        first = caught.value.report.results[0]
        assert first.criterion == "gate of passed stage 'qualification'"
        deal = everything_recorded(skipping_process())
        event = deal.move_to("negotiation", at=T0 + D, actor="ana")
        assert event.move == MoveKind.SKIP

    def test_a_lax_skip_checks_only_the_target_gate(self):
        deal = Opportunity.open(lax_process(), "a", at=T0, actor="ana")
        deal.log_activity("discovery_call", at=T0, actor="ana")
        deal.record_deliverable(
            "qualification_checklist",
            at=T0,
            actor="ana",
            evidence={"budget": "y", "need": "y", "timeline": "q3"},
        )
        assert deal.move_to("needs_analysis", at=T0 + D, actor="ana").move == MoveKind.SKIP

    def test_moving_back_needs_a_reason(self):
        deal = deal_in("needs_analysis")
        with pytest.raises(InvalidCommandError, match="backward move needs a reason"):
            deal.move_to("qualification", at=T0 + 5 * D, actor="ana")
        event = deal.move_to("qualification", at=T0 + 5 * D, actor="ana", reason="re-qualify")
        assert (event.move, event.reason) == (MoveKind.BACKWARD, "re-qualify")
        assert event.gate is None

    def test_moving_back_without_a_reason_when_the_policy_allows(self):
        deal = deal_in("needs_analysis", lax_process())
        assert deal.move_to("lead_generation", at=T0 + 5 * D, actor="a").move == MoveKind.BACKWARD

    def test_moving_back_is_refused_when_the_policy_forbids_it(self):
        from strategies import process_with

        deal = deal_in("needs_analysis", process_with(allow_backward=False))
        with pytest.raises(MoveNotAllowedError, match="does not allow moving backward"):
            deal.move_to("qualification", at=T0 + 5 * D, actor="ana", reason="x")

    def test_an_unknown_stage_lists_the_known_ones(self):
        deal = everything_recorded()
        with pytest.raises(UnknownStageError, match="known stages: lead_generation") as caught:
            deal.move_to("Negotiation", at=T0 + D, actor="ana")
        assert isinstance(caught.value, LookupError)


class TestWin:
    def test_win_needs_the_signed_contract(self):
        deal = deal_in("contract")
        deal2 = Opportunity.replay(deal.process, deal.events[:-1])
        assert deal2.stage == "negotiation"
        with pytest.raises(MoveNotAllowedError, match="skipping"):
            deal2.win(at=T0 + 10 * D, actor="ana")

    def test_win_from_the_last_open_stage(self):
        deal = deal_in("contract")
        event = deal.win(at=T0 + 10 * D, actor="ana")
        assert (event.move, deal.stage) == (MoveKind.WIN, "won")
        assert deal.is_won
        assert not deal.is_lost

    def test_win_without_the_deliverable_is_blocked_and_explained(self):
        process = b2b()
        deal = Opportunity.open(process, "a", at=T0, actor="ana")
        for stage in process.stage_ids[1:6]:
            deal.record_history(stage, at=T0, actor="crm")
        with pytest.raises(GateNotMetError, match="signed_contract"):
            deal.win(at=T0 + D, actor="ana")


class TestLose:
    def test_lose_works_from_any_open_stage_with_a_reason(self):
        for stage in b2b().stage_ids[:6]:
            deal = deal_in(stage)
            event = deal.lose(at=T0 + 10 * D, actor="ana", reason="budget cut")
            assert (event.move, deal.stage, event.reason) == (MoveKind.LOSE, "lost", "budget cut")
            assert deal.is_lost

    @pytest.mark.parametrize("reason", [None, "", "   "])
    def test_lose_without_a_reason_is_refused(self, reason):
        deal = everything_recorded()
        with pytest.raises(InvalidCommandError, match="needs a reason"):
            deal.lose(at=T0 + D, actor="ana", reason=reason)

    def test_a_lost_deal_cannot_be_lost_again(self):
        deal = everything_recorded()
        deal.lose(at=T0 + D, actor="ana", reason="gone")
        with pytest.raises(MoveNotAllowedError, match="already there"):
            deal.lose(at=T0 + 2 * D, actor="ana", reason="gone")


class TestReopen:
    def test_reopen_returns_to_the_stage_the_deal_was_closed_from(self):
        deal = deal_in("negotiation")
        deal.lose(at=T0 + 10 * D, actor="ana", reason="gone")
        event = deal.reopen(at=T0 + 20 * D, actor="ana", reason="they came back")
        assert (event.move, deal.stage) == (MoveKind.REOPEN, "negotiation")

    def test_reopen_to_a_named_stage(self):
        deal = deal_in("won")
        deal.reopen(at=T0 + 20 * D, actor="ana", reason="contract voided", stage="qualification")
        assert deal.stage == "qualification"

    def test_reopening_an_open_deal_is_refused(self):
        deal = everything_recorded()
        with pytest.raises(MoveNotAllowedError, match="the opportunity is open"):
            deal.reopen(at=T0 + D, actor="ana", reason="x")

    def test_reopen_needs_a_reason(self):
        deal = everything_recorded()
        deal.lose(at=T0 + D, actor="ana", reason="gone")
        with pytest.raises(InvalidCommandError, match="needs a reason"):
            deal.reopen(at=T0 + 2 * D, actor="ana", reason="")

    def test_reopen_is_refused_when_the_policy_forbids_it(self):
        deal = everything_recorded(lax_process())
        deal.lose(at=T0 + D, actor="ana", reason="gone")
        with pytest.raises(MoveNotAllowedError, match="does not allow reopening"):
            deal.reopen(at=T0 + 2 * D, actor="ana", reason="back")

    def test_time_spent_lost_before_a_reopen_is_counted(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        deal.lose(at=T0 + D, actor="ana", reason="gone")
        deal.reopen(at=T0 + 3 * D, actor="ana", reason="back")
        metrics = deal.metrics(as_of=T0 + 4 * D)
        assert dict(metrics.stage_durations) == {"lead_generation": 2 * D, "lost": 2 * D}
        assert metrics.age == 4 * D


class TestOverride:
    def test_an_override_moves_despite_the_gate_and_keeps_the_unmet_report(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        event = deal.override("qualification", at=T0 + D, actor="boss", reason="known customer")
        assert (event.move, deal.stage) == (MoveKind.OVERRIDE, "qualification")
        assert event.gate is not None
        assert not event.gate.passed

    def test_an_override_needs_a_reason(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        with pytest.raises(InvalidCommandError, match="an override needs a reason"):
            deal.override("qualification", at=T0 + D, actor="boss", reason="")

    def test_an_override_cannot_make_a_move_the_policy_forbids(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        with pytest.raises(MoveNotAllowedError, match="skipping"):
            deal.override("contract", at=T0 + D, actor="boss", reason="x")

    def test_overrides_are_refused_when_the_policy_forbids_them(self):
        deal = Opportunity.open(lax_process(), "a", at=T0, actor="ana")
        with pytest.raises(MoveNotAllowedError, match="does not allow overriding"):
            deal.override("qualification", at=T0 + D, actor="boss", reason="x")


class TestRecordHistory:
    def test_imported_changes_skip_gates_and_are_marked_imported(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="crm")
        event = deal.record_history("contract", at=T0 + D, actor="crm")
        assert (event.move, event.gate, deal.stage) == (MoveKind.IMPORTED, None, "contract")

    def test_importing_the_current_stage_is_refused(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="crm")
        with pytest.raises(MoveNotAllowedError, match="already there"):
            deal.record_history("lead_generation", at=T0 + D, actor="crm")


class TestRecordDeliverable:
    def test_the_latest_record_of_a_deliverable_counts(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        deal.record_deliverable("lead_record", at=T0, actor="ana", evidence={"contact": ""})
        second = deal.record_deliverable(
            "lead_record", at=T0 + H, actor="ana", evidence={"contact": "k@x"}
        )
        assert second == deal.deliverables["lead_record"]
        assert deal.can_advance()

    def test_an_unknown_deliverable_lists_the_declared_ones(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        with pytest.raises(UnknownDeliverableError, match="declared deliverables: lead_record"):
            deal.record_deliverable("nda", at=T0, actor="ana")

    def test_evidence_is_frozen(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        evidence = {"contact": ["k@x"]}
        event = deal.record_deliverable("lead_record", at=T0, actor="ana", evidence=evidence)
        evidence["contact"].append("changed")
        assert event.details["contact"] == ("k@x",)


class TestLogActivityAndApproval:
    def test_any_activity_type_is_logged(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        event = deal.log_activity("email", at=T0, actor="inbox", details={"subject": "hi"})
        assert (event.subject, event.details["subject"]) == ("email", "hi")

    def test_an_approval_opens_the_contract_gate_despite_a_big_discount(self):
        deal = deal_in("negotiation")
        deal.set_field("discount_percent", 30, at=T0 + 5 * D, actor="ana")
        with pytest.raises(GateNotMetError, match="deal_desk"):
            deal.advance(at=T0 + 5 * D, actor="ana")
        deal.record_approval("deal_desk", at=T0 + 6 * D, actor="dora")
        assert deal.advance(at=T0 + 6 * D, actor="ana").move == MoveKind.ADVANCE


class TestSetField:
    def test_a_field_is_set_and_cleared(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        deal.set_field("region", "emea", at=T0, actor="ana")
        assert deal.fields["region"] == "emea"
        deal.set_field("region", None, at=T0, actor="ana")
        assert deal.fields.get("region") is None

    def test_fields_are_read_only(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        with pytest.raises(TypeError):
            deal.fields["x"] = 1  # type: ignore[index]


class TestReschedule:
    def test_a_later_close_date_counts_as_a_push(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana", close_date=date(2026, 3, 1))
        deal.reschedule(date(2026, 3, 31), at=T0 + D, actor="ana", reason="legal")
        deal.reschedule(date(2026, 3, 15), at=T0 + 2 * D, actor="ana")
        deal.reschedule(date(2026, 4, 15), at=T0 + 3 * D, actor="ana")
        metrics = deal.metrics(as_of=T0 + 4 * D)
        assert (metrics.close_date_pushes, metrics.days_pushed) == (2, 30 + 31)
        assert date(2026, 3, 1) == metrics.first_close_date
        assert date(2026, 4, 15) == metrics.close_date == deal.close_date

    def test_the_same_date_is_refused(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana", close_date=date(2026, 3, 1))
        with pytest.raises(InvalidCommandError, match="already 2026-03-01"):
            deal.reschedule(date(2026, 3, 1), at=T0, actor="ana")

    def test_a_closed_deal_cannot_be_rescheduled(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        deal.lose(at=T0, actor="ana", reason="gone")
        with pytest.raises(InvalidCommandError, match="reopen it to reschedule"):
            deal.reschedule(date(2026, 3, 1), at=T0, actor="ana")


class TestChangeAmount:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [(1500, "1500"), ("1500.50", "1500.50"), (0.1, "0.1"), (Decimal("1E+3"), "1E+3")],
    )
    def test_amounts_are_kept_as_exact_decimals(self, given, expected):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        event = deal.change_amount(given, at=T0, actor="ana")
        assert Decimal(expected) == deal.amount == event.amount
        assert dict(event.details) == {"previous": None}

    def test_an_unchanged_amount_is_refused(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana", amount=10)
        with pytest.raises(InvalidCommandError, match="already 10"):
            deal.change_amount("10.00", at=T0, actor="ana")


class TestQueries:
    def test_available_moves_explain_what_blocks_each_move(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        options = {option.target: option for option in deal.available_moves()}
        assert list(options) == ["qualification", "lost"]
        assert not options["qualification"].allowed
        assert options["qualification"].blocked_by == ("deliverable 'lead_record' not recorded",)
        assert options["lost"].allowed
        assert options["lost"].needs_reason

    def test_gate_report_defaults_to_the_next_stage(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        assert deal.gate_report().target == "qualification"

    def test_gate_report_of_a_move_the_policy_forbids_evaluates_the_target_gate(self):
        deal = Opportunity.open(b2b(), "a", at=T0, actor="ana")
        report = deal.gate_report("contract")
        assert not report.passed
        assert report.target != "lead_generation"
        assert deal.gate_report("lost").passed

    def test_gate_report_after_the_last_stage_is_refused(self):
        deal = deal_in("won")
        with pytest.raises(MoveNotAllowedError, match="no next stage"):
            deal.gate_report()

    def test_gate_report_of_an_unknown_stage_is_refused(self):
        with pytest.raises(UnknownStageError):
            everything_recorded().gate_report("nowhere")

    def test_state_at_before_the_opening_is_refused(self):
        deal = everything_recorded()
        with pytest.raises(EventLogError, match="was opened at"):
            deal.state_at(T0 - H)
        with pytest.raises(EventLogError, match="before opportunity"):
            deal.metrics(as_of=T0 - H)

    def test_metrics_of_a_won_deal(self):
        deal = deal_in("won")
        metrics = deal.metrics(as_of=T0 + 30 * D)
        assert 6 * D == metrics.cycle_time == deal.cycle_time()
        assert metrics.age == 30 * D
        assert metrics.time_in_stage == 24 * D
        assert "won" not in metrics.stage_durations
        assert list(b2b().stage_ids[:6]) == list(metrics.stage_durations)

    def test_a_naive_as_of_is_rejected(self):
        with pytest.raises(InvalidTimestampError, match="as_of="):
            everything_recorded().metrics(as_of=datetime(2026, 2, 1))

    def test_repr_names_the_deal_and_its_stage(self):
        assert "'acme-1' in 'lead_generation'" in repr(everything_recorded())

    def test_opportunities_are_not_hashable(self):
        with pytest.raises(TypeError):
            hash(everything_recorded())


class TestReplay:
    def _log(self):
        return deal_in("needs_analysis").events

    def test_an_empty_log_is_refused(self):
        with pytest.raises(EventLogError, match="empty log"):
            Opportunity.replay(b2b(), [])

    @pytest.mark.parametrize(
        ("mutate", "words"),
        [
            (lambda log: log[1:], "must be of kind 'opened'"),
            (lambda log: [log[0], log[2], *log[3:]], "seq must run 1, 2, 3"),
            (
                lambda log: [*log, log[0].__class__(**{**_fields(log[0]), "seq": len(log) + 1})],
                "opens the opportunity again",
            ),
            (
                lambda log: [*log[:-1], _evolve(log[-1], opportunity_id="other")],
                "belongs to opportunity 'other'",
            ),
            (lambda log: [*log[:-1], _evolve(log[-1], at=T0 - H)], "before event"),
            (lambda log: [*log[:-1], _evolve(log[-1], stage="nowhere")], "unknown to process"),
            (lambda log: [*log[:-1], _evolve(log[-1], from_stage="contract")], "leaves 'contract'"),
            (lambda log: [*log, "not an event"], "is not an Event"),
        ],
    )
    def test_an_inconsistent_log_is_refused_with_the_reason(self, mutate, words):
        with pytest.raises(EventLogError, match=words):
            Opportunity.replay(b2b(), mutate(list(self._log())))

    def test_an_event_claiming_another_stage_is_refused(self):
        deal = everything_recorded()
        log = list(deal.events)
        log[-1] = _evolve(log[-1], stage="contract")
        with pytest.raises(EventLogError, match="says the stage is 'contract'"):
            Opportunity.replay(b2b(), log)


def _fields(event):
    import attrs

    return attrs.asdict(event, recurse=False)


def _evolve(event, **changes):
    import attrs

    return attrs.evolve(event, **changes)


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
def test_every_process_variant_opens_in_its_first_stage(process):
    assert process.initial.id == Opportunity.open(process, "a", at=T0, actor="ana").stage


class TestReplayChecksTheProcess:
    def test_events_of_another_process_are_refused(self) -> None:
        import attrs as _attrs

        from stagegate import EventLogError, Opportunity
        from stagegate.templates import b2b

        deal = Opportunity.open(b2b(), "x", at=T0, actor="ana")
        foreign = [_attrs.evolve(event, process="other") for event in deal.events]
        with pytest.raises(EventLogError, match="recorded in process 'other'"):
            Opportunity.replay(b2b(), foreign)
