"""Evidence from other systems: provenance, idempotent delivery, late events, lead scores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import (
    ActivityCount,
    AllOf,
    EventKind,
    EventLogError,
    GateNotMetError,
    InvalidCommandError,
    InvalidTimestampError,
    LeadQualification,
    Opportunity,
    Process,
    Provenance,
    Stage,
    StageKind,
    b2b,
    seal,
    verify,
)
from stagegate.definition import process_from_dict, process_to_dict
from stagegate.events import Event
from stagegate.gates import Facts
from stagegate.process import ActivitySpec
from stagegate.provenance import occurred_at, provenance_of
from stagegate.store import MemoryStore, SQLiteStore

T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


def handoff() -> Process:
    """Lead -> qualify needs an MQL score of at least 60 and a meeting held."""
    return Process(
        "handoff",
        "1",
        (
            Stage("lead", probability=0.05, activities=(ActivitySpec("meeting"),)),
            Stage(
                "qualify",
                probability=0.2,
                activities=(ActivitySpec("demo"),),
                gate=AllOf((LeadQualification(60, ("MQL", "SQL")), ActivityCount("meeting"))),
            ),
            Stage(
                "propose",
                probability=0.5,
                gate=ActivityCount("demo", since_stage_entry=True),
            ),
            Stage("won", probability=1.0, kind=StageKind.WON),
            Stage("lost", probability=0.0, kind=StageKind.LOST),
        ),
    )


def source(system: str, sid: str, hours: float, *, late: float = 1) -> Provenance:
    return Provenance(
        system,
        sid,
        occurred_at=T0 + timedelta(hours=hours),
        recorded_at=T0 + timedelta(hours=hours + late),
    )


class TestProvenance:
    def test_round_trips_through_a_dict(self) -> None:
        p = source("hubspot", "77", 3)
        assert p == Provenance.from_dict(p.to_dict())

    def test_an_integer_source_id_becomes_text(self) -> None:
        assert "77" == Provenance("hubspot", 77, occurred_at=T0, recorded_at=T0).source_id

    def test_recorded_before_it_occurred_is_refused(self) -> None:
        with pytest.raises(InvalidCommandError, match="before it occurred"):
            Provenance("hubspot", "1", occurred_at=T0, recorded_at=T0 - timedelta(seconds=1))

    def test_a_naive_instant_is_refused(self) -> None:
        with pytest.raises(InvalidTimestampError):
            Provenance("hubspot", "1", occurred_at=datetime(2026, 1, 1), recorded_at=T0)

    @pytest.mark.parametrize(
        "data",
        [None, {}, {"system": "x"}, {**source("a", "1", 0).to_dict(), "occurred_at": 5}],
    )
    def test_malformed_dicts_are_refused(self, data: object) -> None:
        with pytest.raises(InvalidCommandError):
            Provenance.from_dict(data)

    @pytest.mark.parametrize("sid", ["", "  ", "a\nb", None, "x" * 501])
    def test_bad_source_ids_are_refused(self, sid: object) -> None:
        with pytest.raises(InvalidCommandError):
            Provenance("hubspot", sid, occurred_at=T0, recorded_at=T0)  # type: ignore[arg-type]


class TestReceive:
    def test_evidence_keeps_its_provenance_in_details(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        event = deal.receive(
            EventKind.ACTIVITY_LOGGED,
            "meeting",
            provenance=source("hubspot", "m-1", 2),
            actor="system:hubspot",
            details={"title": "Discovery"},
        )
        assert T0 + timedelta(hours=2) == event.at
        assert source("hubspot", "m-1", 2) == provenance_of(event)
        assert "Discovery" == event.details["title"]
        assert event is deal.received("hubspot", "m-1")

    def test_the_same_source_event_twice_is_recorded_once(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        first = deal.receive(
            "activity_logged",
            "meeting",
            provenance=source("hubspot", "m-1", 2),
            actor="system:hubspot",
        )
        before = deal.events
        again = deal.receive(
            "activity_logged",
            "meeting",
            provenance=source("hubspot", "m-1", 5),
            actor="system:hubspot",
        )
        assert first is again
        assert before == deal.events

    def test_the_same_id_from_another_system_is_another_event(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.receive("activity_logged", "meeting", provenance=source("hubspot", "1", 2), actor="s")
        deal.receive("activity_logged", "meeting", provenance=source("calendar", "1", 2), actor="s")
        assert 3 == len(deal.events)

    def test_a_late_event_keeps_its_real_instant_and_the_decision_stands(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(72, "MQL", at=T0 + timedelta(hours=1), actor="system:marketo")
        deal.receive("activity_logged", "meeting", provenance=source("hubspot", "m", 2), actor="s")
        moved = deal.advance(at=T0 + timedelta(hours=10), actor="ana")
        late = deal.receive(
            "lead_scored",
            "marketo",
            provenance=source("marketo", "s-9", 0.5, late=20),
            actor="system:marketo",
            details={"score": 10, "status": "open"},
        )
        assert moved.at == late.at  # placed after the decision, at the last event's instant
        assert T0 + timedelta(hours=0.5) == occurred_at(late)
        assert "qualify" == deal.stage
        assert 72 == deal.lead.details["score"]  # the late score occurred earlier: not in force
        replayed = Opportunity.replay(handoff(), deal.events)
        assert replayed == deal

    def test_late_evidence_does_not_count_as_since_stage_entry(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(80, "SQL", at=T0, actor="m")
        deal.log_activity("meeting", at=T0 + timedelta(hours=1), actor="ana")
        deal.advance(at=T0 + timedelta(hours=5), actor="ana")
        deal.receive("activity_logged", "demo", provenance=source("cal", "d", 4, late=3), actor="s")
        with pytest.raises(GateNotMetError, match="0 of 1"):
            deal.advance(at=T0 + timedelta(hours=9), actor="ana")
        deal.receive("activity_logged", "demo", provenance=source("cal", "e", 6), actor="s")
        assert "propose" == deal.advance(at=T0 + timedelta(hours=9), actor="ana").stage

    def test_a_deliverable_from_a_source_must_be_declared(self) -> None:
        deal = Opportunity.open(b2b(), "d-1", at=T0, actor="crm")
        with pytest.raises(Exception, match="nope"):
            deal.receive("deliverable_recorded", "nope", provenance=source("x", "1", 1), actor="s")
        assert 1 == len(deal.events)
        deal.receive(
            "deliverable_recorded",
            "lead_record",
            provenance=source("hubspot", "f-1", 1),
            actor="system:hubspot",
            details={"source": "webinar", "contact": "kim@acme.example"},
        )
        assert deal.can_advance(at=T0 + timedelta(days=1))

    @pytest.mark.parametrize(
        ("kind", "subject", "details"),
        [
            ("approval_recorded", "cfo", None),
            ("nonsense", "x", None),
            ("lead_scored", "marketo", {"score": "high"}),
            ("lead_scored", "marketo", {}),
            ("activity_logged", "", None),
            ("activity_logged", "meeting", {"provenance": {}}),
        ],
    )
    def test_bad_requests_change_nothing(self, kind: str, subject: str, details: object) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        with pytest.raises(InvalidCommandError):
            deal.receive(kind, subject, provenance=source("s", "1", 1), actor="s", details=details)  # type: ignore[arg-type]
        assert 1 == len(deal.events)
        assert deal.received("s", "1") is None

    def test_hand_entered_details_may_not_claim_provenance(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        with pytest.raises(InvalidCommandError, match="receive"):
            deal.log_activity("meeting", at=T0, actor="a", details={"provenance": "me"})

    def test_provenance_must_be_a_provenance(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        with pytest.raises(InvalidCommandError, match="Provenance"):
            deal.receive("activity_logged", "m", provenance={"system": "x"}, actor="s")  # type: ignore[arg-type]


class TestReplay:
    def _deal(self) -> Opportunity:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.receive("activity_logged", "meeting", provenance=source("hubspot", "m", 2), actor="s")
        deal.receive(
            "lead_scored",
            "marketo",
            provenance=source("marketo", "s", 3),
            actor="s",
            details={"score": 65, "status": "MQL"},
        )
        return deal

    def test_sealed_evidence_verifies_and_round_trips_through_stores(self, tmp_path) -> None:
        deal = self._deal()
        log = seal(deal.events)
        assert 3 == verify(handoff(), log, require_digests=True).sealed
        assert log == tuple(Event.from_dict(e.to_dict()) for e in log)
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.append(log)
            assert log == store.load("d-1")
            assert provenance_of(store.load("d-1")[1]) == source("hubspot", "m", 2)
        memory = MemoryStore()
        memory.append(log)
        assert log == memory.load("d-1")

    @pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
    def test_exported_files_round_trip_the_provenance(self, tmp_path, suffix) -> None:
        from stagegate.io import read_events, write_events

        log = seal(self._deal().events)
        write_events(tmp_path / f"log{suffix}", log)
        back = read_events(tmp_path / f"log{suffix}")
        assert log == back
        assert source("hubspot", "m", 2) == provenance_of(back[1])
        assert 3 == verify(handoff(), back).events

    def test_a_duplicated_source_event_is_refused(self) -> None:
        deal = self._deal()
        copy = attrs.evolve(deal.events[1], seq=4, at=deal.events[2].at)
        with pytest.raises(EventLogError) as error:
            Opportunity.replay(handoff(), [*deal.events, copy])
        assert "duplicate_source_event" == error.value.rule

    def test_an_event_placed_before_its_occurrence_is_refused(self) -> None:
        deal = self._deal()
        early = attrs.evolve(deal.events[1], at=T0 + timedelta(hours=1))
        with pytest.raises(EventLogError) as error:
            Opportunity.replay(handoff(), [deal.events[0], early])
        assert "before_occurrence" == error.value.rule

    def test_malformed_provenance_is_refused(self) -> None:
        deal = self._deal()
        bad = attrs.evolve(deal.events[1], details={"provenance": {"system": "x"}})
        with pytest.raises(EventLogError) as error:
            Opportunity.replay(handoff(), [deal.events[0], bad])
        assert "malformed_provenance" == error.value.rule

    def test_provenance_on_another_kind_is_refused(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.set_field("x", 1, at=T0, actor="a")
        bad = attrs.evolve(deal.events[1], details={"value": 1, "provenance": {}})
        with pytest.raises(EventLogError) as error:
            Opportunity.replay(handoff(), [deal.events[0], bad])
        assert "provenance_kind" == error.value.rule

    @pytest.mark.parametrize(
        ("subject", "details", "rule"),
        [
            ("", {"score": 1}, "subject_missing"),
            ("m", {"score": None, "status": None}, "malformed_details"),
            ("m", {"score": True}, "malformed_details"),
            ("m", {"status": ""}, "malformed_details"),
            ("m", None, "malformed_details"),
        ],
    )
    def test_malformed_lead_scores_are_refused(self, subject, details, rule) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(1, at=T0, actor="m")
        bad = attrs.evolve(deal.events[1], subject=subject or None, details=details)
        with pytest.raises(EventLogError) as error:
            Opportunity.replay(handoff(), [deal.events[0], bad])
        assert rule == error.value.rule

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.tuples(st.integers(0, 5), st.floats(0, 48), st.floats(0, 24)),
            min_size=1,
            max_size=12,
        )
    )
    def test_any_delivery_order_replays_and_records_each_source_event_once(self, items) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        for sid, hours, late in items:
            deal.receive(
                "activity_logged",
                "meeting",
                provenance=source("cal", str(sid), hours, late=late),
                actor="s",
            )
        assert len({sid for sid, _, _ in items}) + 1 == len(deal.events)
        ats = [e.at for e in deal.events]
        assert sorted(ats) == ats
        assert all(e.at >= occurred_at(e) for e in deal.events)
        assert deal == Opportunity.replay(handoff(), seal(deal.events))


class TestLeadQualification:
    def _facts(self, score=None, status=None, *, hours: float = 0) -> Facts:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(score, status, at=T0 + timedelta(hours=hours), actor="marketo")
        return deal._facts(T0 + timedelta(days=1))

    def test_a_score_at_the_minimum_holds(self) -> None:
        result = LeadQualification(60).evaluate(self._facts(60))
        assert result.holds
        assert (2,) == result.evidence

    def test_a_lower_score_does_not_hold_and_says_why(self) -> None:
        result = LeadQualification(60).evaluate(self._facts(59.5))
        assert not result.holds
        assert "lead score is 59.5 (by 'marketo'), needs lead score >= 60" == result.reason

    def test_status_compares_without_case(self) -> None:
        assert LeadQualification(statuses=("MQL",)).evaluate(self._facts(status="mql")).holds
        result = LeadQualification(statuses=("MQL",)).evaluate(self._facts(status="open"))
        assert "lead status is 'open' (by 'marketo'), needs one of 'MQL'" == result.reason

    def test_a_missing_part_does_not_hold(self) -> None:
        assert (
            "the lead has no score" in LeadQualification(1).evaluate(self._facts(status="x")).reason
        )
        assert "no status" in LeadQualification(statuses=("a",)).evaluate(self._facts(5)).reason
        assert not LeadQualification(1).evaluate(Facts(at=T0)).holds

    def test_an_old_score_does_not_hold(self) -> None:
        criterion = LeadQualification(1, max_age=timedelta(hours=12))
        assert not criterion.evaluate(self._facts(5)).holds
        assert criterion.evaluate(self._facts(5, hours=20)).holds

    def test_needs_a_score_or_a_status(self) -> None:
        with pytest.raises(ValueError, match="min_score"):
            LeadQualification()

    def test_the_lead_in_force_is_the_one_that_occurred_last(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(70, at=T0 + timedelta(hours=5), actor="m")
        deal.receive(
            "lead_scored", "m", provenance=source("m", "1", 1), actor="m", details={"score": 20}
        )
        assert 70 == deal.lead.details["score"]
        deal.score_lead(20, at=T0 + timedelta(hours=6), actor="m")
        assert 20 == deal.lead.details["score"]

    @pytest.mark.parametrize(("score", "status"), [(None, None), (float("nan"), None), (1, 5)])
    def test_score_lead_refuses_bad_values(self, score, status) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        with pytest.raises(InvalidCommandError):
            deal.score_lead(score, status, at=T0, actor="m")
        assert deal.lead is None

    def test_the_handoff_gate_needs_score_and_meeting(self) -> None:
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        deal.score_lead(45, "MQL", at=T0, actor="m")
        deal.log_activity("meeting", at=T0, actor="ana")
        assert not deal.can_advance()
        deal.score_lead(61, "MQL", at=T0 + timedelta(hours=1), actor="m")
        assert deal.can_advance()

    def test_definitions_round_trip_the_lead_criterion(self) -> None:
        data = process_to_dict(handoff())
        assert {"lead": {"min_score": 60.0, "status": ["MQL", "SQL"]}} in (
            data["stages"][1]["gate"]["all_of"]
        )
        assert handoff() == process_from_dict(data)
        data["stages"][1]["gate"] = {"lead": {"status": ["MQL"], "max_age_days": 30}}
        gate = process_from_dict(data).stage("qualify").gate
        assert LeadQualification(None, ("MQL",), timedelta(days=30)) == gate
        assert process_from_dict(process_to_dict(process_from_dict(data))) == process_from_dict(
            data
        )

    @pytest.mark.parametrize(
        "lead", [{}, {"max_age_days": 3}, {"min_score": "60"}, {"status": []}, {"x": 1}]
    )
    def test_definitions_refuse_bad_lead_criteria(self, lead) -> None:
        from stagegate import DefinitionError

        data = process_to_dict(handoff())
        data["stages"][1]["gate"] = {"lead": lead}
        with pytest.raises(DefinitionError):
            process_from_dict(data)


class TestLeadGateEvolution:
    def _with(self, criterion: LeadQualification, version: str) -> Process:
        data = process_to_dict(handoff())
        data["version"] = version
        data["stages"][1]["gate"] = process_to_dict(
            Process(
                "x",
                "1",
                (
                    Stage("a", probability=0.1),
                    Stage("b", probability=0.2, gate=criterion),
                    Stage("won", probability=1.0, kind=StageKind.WON),
                    Stage("lost", probability=0.0, kind=StageKind.LOST),
                ),
            )
        )["stages"][1]["gate"]
        return process_from_dict(data)

    @pytest.mark.parametrize(
        ("before", "after", "kind"),
        [
            (LeadQualification(60), LeadQualification(70), "gate_tightened"),
            (LeadQualification(60), LeadQualification(50), "gate_loosened"),
            (LeadQualification(60), LeadQualification(60, ("MQL",)), "gate_tightened"),
            (
                LeadQualification(statuses=("MQL", "SQL")),
                LeadQualification(statuses=("sql",)),
                "gate_tightened",
            ),
            (
                LeadQualification(60, max_age=timedelta(days=9)),
                LeadQualification(60),
                "gate_loosened",
            ),
            (
                LeadQualification(60, ("MQL",)),
                LeadQualification(70, ("MQL", "SQL")),
                "gate_changed",
            ),
        ],
    )
    def test_a_changed_lead_gate_reads_as_tightened_or_loosened(self, before, after, kind) -> None:
        from stagegate.evolution import diff

        changes = diff(self._with(before, "1"), self._with(after, "2")).changes
        assert [kind] == [c.kind for c in changes if c.kind.startswith("gate_")]
