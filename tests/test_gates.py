"""Tests of stagegate.gates: criteria explain themselves and never raise for missing data."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given

from stagegate import (
    ActivityCount,
    AllOf,
    AnyOf,
    Approval,
    CriterionResult,
    Deliverable,
    Event,
    EventKind,
    EventLogError,
    Facts,
    FieldCheck,
    GateReport,
    Not,
    Predicate,
)
from stagegate.events import freeze
from strategies import T0, criteria, facts, gate_reports


def _recorded(kind, subject, *, seq=1, at=T0, details=None, actor="ana"):
    return Event("o", seq, kind, at, actor, "s", "p", "1", subject=subject, details=details)


FEB_1 = date(2026, 2, 1)


def _facts(**kwargs):
    return Facts(at=T0 + timedelta(days=1), **kwargs)


class TestEvaluate:
    @given(criteria(predicates=True), facts())
    def test_evaluation_never_raises_for_arbitrary_facts(self, criterion, given_facts):
        result = criterion.evaluate(given_facts)
        assert isinstance(result.holds, bool)
        report = criterion.report("target", given_facts)
        assert report.passed == all(r.holds for r in report.results)
        assert report.passed == (report.missing == ())
        assert report.explain().startswith("gate of 'target'")

    @given(criteria(), facts())
    def test_a_not_holds_exactly_when_its_part_does_not(self, criterion, given_facts):
        assert criterion.evaluate(given_facts).holds != Not(criterion).evaluate(given_facts).holds

    @given(criteria(), criteria(), facts())
    def test_all_of_and_any_of_agree_with_and_and_or(self, first, second, given_facts):
        a = first.evaluate(given_facts).holds
        b = second.evaluate(given_facts).holds
        assert (a and b) == AllOf((first, second)).evaluate(given_facts).holds
        assert (a or b) == AnyOf((first, second)).evaluate(given_facts).holds

    def test_nothing_recorded_means_nothing_holds(self):
        empty = Facts(at=T0)
        for criterion in (
            Deliverable("nda"),
            FieldCheck("amount", "exists"),
            FieldCheck("region", "==", "emea"),
            ActivityCount("call"),
            Approval("finance"),
        ):
            assert not criterion.evaluate(empty).holds


class TestDeliverable:
    def test_a_recorded_deliverable_holds_and_cites_its_event(self):
        event = _recorded(EventKind.DELIVERABLE_RECORDED, "nda", seq=4)
        result = Deliverable("nda").evaluate(_facts(deliverables={"nda": event}))
        assert result.holds
        assert result.evidence == (4,)

    def test_missing_evidence_is_named(self):
        event = _recorded(EventKind.DELIVERABLE_RECORDED, "nda", details=freeze({"signed_by": ""}))
        result = Deliverable("nda", ("signed_by", "document")).evaluate(
            _facts(deliverables={"nda": event})
        )
        assert not result.holds
        assert "without evidence 'signed_by', 'document'" in result.reason

    def test_a_record_with_details_that_are_not_a_mapping_counts_as_without_evidence(self):
        event = _recorded(EventKind.DELIVERABLE_RECORDED, "nda", details=("signed_by",))
        result = Deliverable("nda", ("signed_by",)).evaluate(_facts(deliverables={"nda": event}))
        assert not result.holds
        assert "without evidence" in result.reason

    def test_a_record_older_than_max_age_does_not_hold(self):
        event = _recorded(EventKind.DELIVERABLE_RECORDED, "nda")
        criterion = Deliverable("nda", max_age=timedelta(hours=12))
        result = criterion.evaluate(_facts(deliverables={"nda": event}))
        assert not result.holds
        assert "older than 12:00:00" in result.reason
        assert (
            Deliverable("nda", max_age=timedelta(days=1))
            .evaluate(_facts(deliverables={"nda": event}))
            .holds
        )


class TestFieldCheck:
    @pytest.mark.parametrize(
        ("criterion", "given_facts", "holds"),
        [
            (FieldCheck("amount", ">", 0), _facts(amount=Decimal("0.01")), True),
            (FieldCheck("amount", ">", "1000"), _facts(amount=Decimal(999)), False),
            (FieldCheck("amount", "==", 5.5), _facts(amount=Decimal("5.5")), True),
            (
                FieldCheck("close_date", "<=", "2026-03-01"),
                _facts(close_date=date(2026, 2, 1)),
                True,
            ),
            (FieldCheck("close_date", "exists"), _facts(), False),
            (FieldCheck("region", "in", ("emea", "apac")), _facts(fields={"region": "apac"}), True),
            (FieldCheck("region", "in", "emea"), _facts(fields={"region": "emea"}), True),
            (FieldCheck("region", "!=", "emea"), _facts(fields={"region": "emea"}), False),
            (FieldCheck("discount", "<=", 15), _facts(fields={"discount": 15}), True),
        ],
    )
    def test_comparisons(self, criterion, given_facts, holds):
        assert holds == criterion.evaluate(given_facts).holds

    def test_incomparable_values_do_not_hold_and_say_why(self):
        result = FieldCheck("discount", "<", 5).evaluate(_facts(fields={"discount": "ten"}))
        assert not result.holds
        assert "cannot be compared" in result.reason

    @pytest.mark.parametrize("value", ["NaN", "sNaN", float("nan")])
    @pytest.mark.parametrize("op", ["<", ">=", "==", "in"])
    def test_a_nan_threshold_never_raises(self, value, op):
        result = FieldCheck("amount", op, value).evaluate(_facts(amount=Decimal(5)))
        assert not result.holds

    def test_an_unknown_operator_is_refused_at_construction(self):
        with pytest.raises(ValueError, match="unknown operator '=~'"):
            FieldCheck("amount", "=~", 1)

    def test_an_unset_field_says_so(self):
        result = FieldCheck("region", "==", "emea").evaluate(_facts())
        assert result.reason == "region is not set"


class TestActivityCount:
    def test_activities_are_counted_by_type(self):
        calls = tuple(
            _recorded(EventKind.ACTIVITY_LOGGED, kind, seq=i)
            for i, kind in enumerate(["call", "mail", "call", "call"], start=1)
        )
        result = ActivityCount("call", 2).evaluate(_facts(activities=calls))
        assert result.holds
        assert result.evidence == (3, 4)
        assert not ActivityCount("call", 4).evaluate(_facts(activities=calls)).holds

    def test_since_stage_entry_ignores_older_activities(self):
        old = _recorded(EventKind.ACTIVITY_LOGGED, "call", at=T0)
        new = _recorded(EventKind.ACTIVITY_LOGGED, "call", seq=2, at=T0 + timedelta(hours=2))
        given_facts = _facts(stage_entered_at=T0 + timedelta(hours=1), activities=(old, new))
        assert not ActivityCount("call", 2, since_stage_entry=True).evaluate(given_facts).holds
        assert ActivityCount("call", 2).evaluate(given_facts).holds
        result = ActivityCount("call", 2, since_stage_entry=True).evaluate(given_facts)
        assert result.reason == "1 of 2 x 'call' logged since stage entry"


class TestApproval:
    def test_an_approval_names_who_approved(self):
        event = _recorded(EventKind.APPROVAL_RECORDED, "finance", actor="cfo")
        result = Approval("finance").evaluate(_facts(approvals={"finance": event}))
        assert result.holds
        assert result.reason == "approved by 'cfo' as 'finance'"


class TestPredicate:
    def test_a_raising_predicate_does_not_hold_and_names_the_exception(self):
        def boom(facts):
            raise KeyError("x")

        result = Predicate("custom", boom).evaluate(_facts())
        assert not result.holds
        assert "KeyError" in result.reason

    @pytest.mark.parametrize("outcome", [(), (True,), "yes", [1, 2, 3]])
    def test_a_malformed_outcome_does_not_raise(self, outcome):
        result = Predicate("custom", lambda facts: outcome).evaluate(_facts())
        assert isinstance(result.holds, bool)

    def test_a_reasoned_outcome_keeps_its_reason(self):
        result = Predicate("custom", lambda facts: (False, "too small")).evaluate(_facts())
        assert (result.criterion, result.holds, result.reason) == ("custom", False, "too small")

    def test_predicates_are_equal_by_label_and_not_serializable(self):
        assert Predicate("p", lambda f: True) == Predicate("p", lambda f: False)
        assert not Predicate.serializable


class TestGateReport:
    @given(gate_reports)
    def test_reports_round_trip_through_json(self, report):
        assert report == GateReport.from_dict(json.loads(json.dumps(report.to_dict())))

    def test_an_empty_report_passes(self):
        assert GateReport("won").passed
        assert GateReport("won").missing == ()

    def test_a_top_level_all_of_reports_each_part(self):
        gate = AllOf((Deliverable("nda"), Approval("finance")))
        report = gate.report("proposal", _facts())
        assert len(report.results) == 2
        assert report.missing == ("deliverable 'nda' not recorded", "no approval by 'finance'")

    def test_an_unmet_any_of_is_one_missing_line(self):
        gate = AnyOf((Deliverable("nda"), Approval("finance")))
        report = gate.report("proposal", _facts())
        assert len(report.missing) == 1
        assert report.missing[0].startswith("none holds")

    def test_explain_marks_met_and_unmet_criteria(self):
        event = _recorded(EventKind.APPROVAL_RECORDED, "finance", seq=7)
        gate = AllOf((Deliverable("nda"), Approval("finance")))
        text = gate.report("won", _facts(approvals={"finance": event})).explain()
        assert "gate of 'won': NOT MET" in text
        assert "[ ] deliverable 'nda'" in text
        assert "[x] approval by 'finance'" in text
        assert "(events 7)" in text

    @pytest.mark.parametrize(
        "data",
        [None, {"target": 5}, {"target": "x", "results": [5]}, {"target": "x", "results": [{}]}],
    )
    def test_a_malformed_report_gives_an_event_log_error(self, data):
        with pytest.raises(EventLogError):
            GateReport.from_dict(data)


class TestCriterionResult:
    def test_missing_lists_the_unmet_leaves(self):
        result = CriterionResult(
            "all of",
            False,
            "1 of 2 unmet",
            children=(CriterionResult("a", True, "ok"), CriterionResult("b", False, "b missing")),
        )
        assert result.missing() == ("b missing",)
        assert CriterionResult("a", True, "ok").missing() == ()


class TestCoercion:
    def test_an_unparseable_date_threshold_is_incomparable_not_an_error(self):
        result = FieldCheck("close_date", "<", "soon").evaluate(_facts(close_date=FEB_1))
        assert not result.holds
        assert "cannot be compared" in result.reason

    def test_an_unparseable_amount_threshold_is_incomparable_not_an_error(self):
        result = FieldCheck("amount", "<", "lots").evaluate(_facts(amount=Decimal(5)))
        assert not result.holds


class TestFieldCheckNeedsAValue:
    def test_a_comparison_without_a_value_is_refused_when_built(self) -> None:
        with pytest.raises(ValueError, match="needs a value"):
            FieldCheck("amount", ">=")

    def test_a_definition_comparison_without_a_value_is_a_definition_error(self) -> None:
        from stagegate import DefinitionError, process_from_dict, process_to_dict
        from stagegate.templates import b2b

        data = process_to_dict(b2b())
        data["stages"][1]["gate"] = {"field": "amount", "op": ">="}
        with pytest.raises(DefinitionError) as caught:
            process_from_dict(data)
        assert any(
            p.path == "stages[1].gate" and "'value' is a required property" in p.message
            for p in caught.value.problems
        )


class TestStoredResultDepth:
    def test_a_stored_report_nested_too_deep_is_refused(self) -> None:
        from stagegate import EventLogError

        node: dict[str, object] = {"criterion": "x", "holds": True, "reason": "r"}
        for _ in range(200):
            node = {"criterion": "all of", "holds": True, "reason": "r", "children": [node]}
        with pytest.raises(EventLogError, match="nested deeper"):
            GateReport.from_dict({"target": "won", "results": [node]})
