"""Engagement readers (HubSpot, Marketo, iCalendar, generic), the evidence map, recording."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import (
    ActivityCount,
    AllOf,
    DefinitionError,
    InvalidCommandError,
    LeadQualification,
    Opportunity,
    Process,
    Stage,
    StageKind,
    b2b,
    missing_evidence,
)
from stagegate.io import (
    Engagement,
    ImportProblemError,
    evidence_map_from_dict,
    evidence_map_from_toml,
    load_evidence_map,
    read_engagements,
    read_hubspot_engagements,
    read_icalendar,
    read_marketo_activities,
    record_engagements,
    record_evidence,
)
from stagegate.process import ActivitySpec
from stagegate.store import MemoryStore, SQLiteStore

T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
LATER = T0 + timedelta(days=30)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class TestHubSpot:
    def test_reads_v1_engagements_with_their_outcome(self) -> None:
        items = [
            {
                "engagement": {"id": 9, "type": "MEETING", "timestamp": ms(T0), "ownerId": 4},
                "associations": {"dealIds": [111, 112]},
                "metadata": {"title": "Intro", "meetingOutcome": "COMPLETED", "body": None},
            },
            {
                "engagement": {"id": 10, "type": "call", "timestamp": ms(T0)},
                "associations": {"dealIds": [111]},
                "metadata": {"status": "NO_ANSWER", "durationMilliseconds": 0},
            },
        ]
        result = read_hubspot_engagements(json.dumps({"results": items}).encode())
        first, second = result.engagements
        assert ("9", "MEETING", ("111", "112")) == (
            first.source_id,
            first.type,
            first.opportunity_ids,
        )
        assert T0 == first.occurred_at
        assert "COMPLETED" == first.attributes["outcome"]
        assert "hubspot:owner:4" == first.actor
        assert ("CALL", "NO_ANSWER", "system:hubspot") == (
            second.type,
            second.attributes["outcome"],
            second.actor,
        )
        assert (1, 2) == (first.row, second.row)
        assert () == result.findings

    def test_reads_v3_objects_and_form_submissions(self) -> None:
        lines = [
            {
                "id": "77",
                "properties": {
                    "hs_timestamp": "2026-03-02T09:00:00Z",
                    "hs_call_status": "COMPLETED",
                },
                "associations": {"deals": {"results": [{"id": "5"}]}},
            },
            {
                "conversionId": "c-1",
                "submittedAt": ms(T0),
                "values": [
                    {"name": "email", "value": "kim@acme.example"},
                    {"name": "hubspotscore", "value": "65"},
                ],
                "pageUrl": "https://acme.example/demo",
                "associations": {"dealIds": ["5"]},
            },
        ]
        text = "\n".join(json.dumps(line) for line in lines).encode()
        call, form = read_hubspot_engagements(text).engagements
        assert ("CALL", "COMPLETED", T0) == (
            call.type,
            call.attributes["outcome"],
            call.occurred_at,
        )
        assert ("FORM_SUBMISSION", "c-1") == (form.type, form.source_id)
        assert "kim@acme.example" == form.attributes["email"]
        assert "https://acme.example/demo" == form.attributes["pageUrl"]

    def test_unusable_items_become_findings_with_their_rows(self) -> None:
        items = [
            {"engagement": {"id": 1, "type": "EMAIL", "timestamp": ms(T0)}, "associations": {}},
            {"engagement": {"id": 2, "type": "EMAIL"}, "associations": {"dealIds": [1]}},
            {
                "engagement": {"id": 3, "type": "EMAIL", "timestamp": ms(T0)},
                "associations": {"dealIds": [1]},
            },
            "nonsense",
            {"properties": {"x": 1}, "associations": {"dealIds": [1]}},
        ]
        result = read_hubspot_engagements(json.dumps(items).encode())
        assert ["3"] == [e.source_id for e in result.engagements]
        assert 5 == result.rows_read
        unused = sorted(row for f in result.findings for row in f.rows)
        assert [1, 2, 4, 5] == unused
        assert all(not f.used for f in result.findings)
        assert any("no deal" in f.message for f in result.findings)

    def test_a_file_that_is_not_json_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "x.json"
        path.write_text("{nope", "utf-8")
        with pytest.raises(ImportProblemError, match="not JSON"):
            read_hubspot_engagements(path)
        with pytest.raises(ImportProblemError, match="cannot read"):
            read_hubspot_engagements(tmp_path / "absent.json")
        with pytest.raises(ImportProblemError, match="UTF-8"):
            read_hubspot_engagements(b"\xff\xfe[")


class TestMarketo:
    def test_reads_the_rest_shape_and_links_leads_to_deals(self) -> None:
        data = {
            "result": [
                {
                    "id": 1,
                    "marketoGUID": "g-1",
                    "leadId": 6,
                    "activityDate": "2026-03-02T09:00:00Z",
                    "activityTypeId": 22,
                    "primaryAttributeValue": "Behavior Score",
                    "attributes": [
                        {"name": "New Value", "value": 70},
                        {"name": "Old Value", "value": 40},
                    ],
                },
                {
                    "id": 2,
                    "leadId": 6,
                    "activityDate": "2026-03-02T09:00:00Z",
                    "activityTypeId": 999,
                },
                {"id": 3, "leadId": 8, "activityDate": "2026-03-02T09:00:00Z", "activityTypeId": 2},
            ]
        }
        result = read_marketo_activities(
            json.dumps(data).encode(), links={"6": ["d-1"]}, activity_types={999: "Webinar"}
        )
        score, webinar = result.engagements
        assert ("g-1", "Change Score", ("d-1",)) == (
            score.source_id,
            score.type,
            score.opportunity_ids,
        )
        assert {
            "new_value": 70,
            "old_value": 40,
            "primary": "Behavior Score",
            "lead_id": "6",
        } == dict(score.attributes)
        assert "Webinar" == webinar.type
        assert [3] == [row for f in result.findings for row in f.rows]

    def test_reads_the_csv_export(self) -> None:
        text = (
            "id,leadId,activityDate,activityType,opportunityId,attributes\n"
            "5,1,2026-03-02T09:00:00+01:00,Fill Out Form,d-2,"
            '"[{""name"": ""Form Fields"", ""value"": ""x""}]"\n'
            "6,1,2026-03-02T09:00:00,Fill Out Form,d-2,\n"
            "7,1,2026-03-02T09:00:00Z,Fill Out Form,d-2,{nope\n"
        )
        result = read_marketo_activities(text.encode())
        (form,) = result.engagements
        assert T0 - timedelta(hours=1) == form.occurred_at
        assert "x" == form.attributes["form_fields"]
        reasons = " ".join(f.message for f in result.findings)
        assert "naive" in reasons
        assert "not JSON" in reasons


class TestICalendar:
    ICS = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260302T090000Z\r\nDURATION:PT30M\r\n"
        "X-STAGEGATE-OPPORTUNITY:d-1, d-2\r\nATTENDEE:mailto:a@x\r\nATTENDEE:mailto:b@x\r\n"
        "CATEGORIES:sales,demo\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20260302\r\nSUMMARY:[d-1]\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20260302T090000\r\nSUMMARY:[d-1]\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20260302T090000Z\r\nSUMMARY:lunch\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:e\r\nDTSTART:20260302T090000Z\r\nRRULE:FREQ=WEEKLY\r\n"
        "SUMMARY:weekly [d-3]\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )

    def test_reads_events_their_deals_and_end_instants(self) -> None:
        result = read_icalendar(self.ICS.encode(), deal_pattern=r"\[(d-\d)\]")
        first, weekly = result.engagements
        assert ("a", ("d-1", "d-2"), T0 + timedelta(minutes=30)) == (
            first.source_id,
            first.opportunity_ids,
            first.occurred_at,
        )
        assert (2, "sales, demo") == (first.attributes["attendees"], first.attributes["categories"])
        assert ("d-3",) == weekly.opportunity_ids
        codes = {f.code for f in result.findings}
        assert "recurring" in codes
        reasons = " ".join(f.message for f in result.findings)
        assert "all-day" in reasons
        assert "floating" in reasons
        assert "names no deal" in reasons

    def test_floating_times_take_the_assumed_zone(self) -> None:
        result = read_icalendar(self.ICS.encode(), deal_pattern=r"\[(d-\d)\]", assume_zone="UTC")
        assert "c" in [e.source_id for e in result.engagements]

    @pytest.mark.parametrize("pattern", ["(", "d-1"])
    def test_a_deal_pattern_needs_a_group(self, pattern: str) -> None:
        with pytest.raises(InvalidCommandError):
            read_icalendar(self.ICS.encode(), deal_pattern=pattern)

    def test_a_file_that_is_not_icalendar_is_refused(self) -> None:
        with pytest.raises(ImportProblemError, match="not iCalendar"):
            read_icalendar(b"hello")


class TestGeneric:
    def test_reads_json_with_other_columns_as_attributes(self) -> None:
        rows = [
            {
                "source_id": "x",
                "opportunity_id": "d-1;d-2",
                "type": "sms",
                "occurred_at": "2026-03-02T09:00:00Z",
                "body": "hi",
            },
            {"source_id": "y", "type": "sms", "occurred_at": "2026-03-02T09:00:00Z"},
        ]
        result = read_engagements(json.dumps(rows).encode(), system="twilio")
        (sms,) = result.engagements
        assert (("d-1", "d-2"), {"body": "hi"}, "system:twilio") == (
            sms.opportunity_ids,
            dict(sms.attributes),
            sms.actor,
        )
        assert "lacks opportunity_id" in result.findings[0].message


def handoff() -> Process:
    return Process(
        "handoff",
        "1",
        (
            Stage(
                "lead",
                probability=0.05,
                activities=(ActivitySpec("meeting"),),
            ),
            Stage(
                "qualify",
                probability=0.2,
                gate=AllOf((LeadQualification(60), ActivityCount("meeting"))),
            ),
            Stage("won", probability=1.0, kind=StageKind.WON),
            Stage("lost", probability=0.0, kind=StageKind.LOST),
        ),
    )


MAP = """
[[rule]]
system = "crm"
type = "meeting"
when = { outcome = ["held", "completed"], attendees = 2 }
stage = "lead"
activity = "meeting"

[[rule]]
system = "crm"
type = "score"
lead = { score = "value" }
lead_source = "channel"
"""


def engagement(
    sid: str, kind: str, hours: float, deal: str = "d-1", **attributes: object
) -> Engagement:
    return Engagement("crm", sid, kind, T0 + timedelta(hours=hours), (deal,), attributes)


class TestEvidenceMap:
    def test_matches_on_system_type_and_conditions_without_case(self) -> None:
        rules = evidence_map_from_toml(MAP, process=handoff())
        assert (
            rules.match(engagement("1", "MEETING", 1, outcome="Held", attendees="2"))
            is rules.rules[0]
        )
        assert rules.match(engagement("1", "meeting", 1, outcome="held", attendees=3)) is None
        assert rules.match(engagement("1", "meeting", 1, attendees=2)) is None
        assert rules.match(engagement("1", "score", 1)) is rules.rules[1]

    def test_names_the_sources_of_a_criterion(self) -> None:
        rules = evidence_map_from_toml(MAP)
        assert ("crm 'meeting' where outcome = 'held' or 'completed' and attendees = 2",) == (
            rules.sources_for(ActivityCount("meeting"))
        )
        assert ("crm 'score'",) == rules.sources_for(LeadQualification(1))
        assert () == rules.sources_for(LeadQualification(statuses=("MQL",)))

    @pytest.mark.parametrize(
        ("text", "path"),
        [
            ('[[rule]]\nsystem = "a"\ntype = "b"\n', "rule[0]"),
            ('[[rule]]\nsystem = "a"\ntype = "b"\nactivity = "meeting"\n', "rule[0]"),
            (
                '[[rule]]\nsystem = "a"\ntype = "b"\nstage = "nope"\nactivity = "meeting"\n',
                "rule[0].stage",
            ),
            (
                '[[rule]]\nsystem = "a"\ntype = "b"\nstage = "lead"\ndeliverable = "x"\n',
                "rule[0].deliverable",
            ),
            (
                'process = "other"\n[[rule]]\nsystem = "a"\ntype = "b"\nlead = { score = "s" }\n',
                "process",
            ),
            ("rule = 5", "rule"),
            ("not toml [", ""),
        ],
    )
    def test_a_bad_map_names_the_path_of_each_problem(self, text: str, path: str) -> None:
        with pytest.raises(DefinitionError) as error:
            evidence_map_from_toml(text, process=handoff())
        assert path == error.value.problems[0].path

    def test_loads_toml_and_json_files(self, tmp_path: Path) -> None:
        (tmp_path / "m.toml").write_text(MAP, "utf-8")
        rules = load_evidence_map(tmp_path / "m.toml", process=handoff())
        data = {"rule": [{"system": "crm", "type": "score", "lead": {"score": "value"}}]}
        (tmp_path / "m.json").write_text(json.dumps(data), "utf-8")
        assert rules.rules[1].target == load_evidence_map(tmp_path / "m.json").rules[0].target
        (tmp_path / "bad.json").write_text("{", "utf-8")
        with pytest.raises(DefinitionError, match="not valid JSON"):
            load_evidence_map(tmp_path / "bad.json")
        with pytest.raises(DefinitionError, match="cannot read"):
            load_evidence_map(tmp_path / "absent.toml")
        assert evidence_map_from_dict(data).rules[0].score == "value"


class TestRecord:
    def _deals(self) -> dict[str, Opportunity]:
        return {oid: Opportunity.open(handoff(), oid, at=T0, actor="crm") for oid in ("d-1", "d-2")}

    def test_records_in_occurrence_order_and_advances_when_the_gate_holds(self) -> None:
        deals = self._deals()
        rules = evidence_map_from_toml(MAP, process=handoff())
        items = [
            engagement("s", "score", 5, value="75"),
            engagement("m", "meeting", 2, outcome="held", attendees=2),
            engagement("z", "score", 5, deal="d-2", value="lots"),
            engagement("f", "meeting", 24 * 60, outcome="held", attendees=2),
        ]
        outcome = record_engagements(deals, items, rules, recorded_at=LATER, advance=True)
        assert [("d-1", "qualify")] == list(outcome.advanced)
        assert ["activity_logged", "lead_scored", "stage_changed"] == [
            e.kind.value for e in outcome.events
        ]
        assert 75 == outcome.events[1].details["score"]
        codes = {f.code: f for f in outcome.findings}
        assert "not_recorded" in codes  # "lots" is not a score
        assert "not_yet" in codes  # a meeting after recorded_at
        assert 2 == outcome.recorded

    def test_lead_source_needs_deal_attributes(self) -> None:
        deals = self._deals()
        rules = evidence_map_from_toml(MAP, process=handoff())
        outcome = record_engagements(
            deals,
            [engagement("s", "score", 5, value=70, channel="webinar")],
            rules,
            recorded_at=LATER,
        )
        if hasattr(deals["d-1"], "set_attribute"):  # pragma: no cover - with segment attributes
            assert "webinar" == deals["d-1"].attributes["lead_source"]
        else:
            assert "lead_source_not_recorded" in {f.code for f in outcome.findings}

    def test_recording_into_a_store_is_all_or_nothing_and_idempotent(self, tmp_path: Path) -> None:
        rules = evidence_map_from_toml(MAP, process=handoff())
        items = [
            engagement("m", "meeting", 2, outcome="held", attendees=2),
            engagement("s", "score", 3, value=61),
        ]
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.save_process(handoff())
            for deal in self._deals().values():
                store.save(deal, expected_seq=0)
            first = record_evidence(store, items, rules, recorded_at=LATER, advance=True)
            assert 3 == len(first.events)
            assert "qualify" == store.load_opportunity(handoff(), "d-1").stage
            again = record_evidence(store, items, rules, recorded_at=LATER, advance=True)
            assert () == again.events
            assert 4 == len(store.load("d-1"))

    def test_a_store_without_the_process_needs_it_given(self) -> None:
        from stagegate.store import UnknownProcessError

        store = MemoryStore()
        store.save(Opportunity.open(handoff(), "d-1", at=T0, actor="crm"), expected_seq=0)
        rules = evidence_map_from_toml(MAP)
        items = [engagement("s", "score", 3, value=61)]
        with pytest.raises(UnknownProcessError):
            record_evidence(store, items, rules, recorded_at=LATER)
        with pytest.raises(UnknownProcessError):
            record_evidence(store, items, rules, recorded_at=LATER, process=b2b())
        outcome = record_evidence(store, items, rules, recorded_at=LATER, process=handoff())
        assert 1 == len(outcome.events)


class TestMissingEvidence:
    def test_names_the_sources_of_each_unmet_criterion(self) -> None:
        rules = evidence_map_from_toml(MAP, process=handoff())
        deal = Opportunity.open(handoff(), "d-1", at=T0, actor="crm")
        found = missing_evidence(handoff(), deal.events, rules)
        assert [
            ("lead score >= 60", ("crm 'score'",)),
            (
                "1 x 'meeting'",
                ("crm 'meeting' where outcome = 'held' or 'completed' and attendees = 2",),
            ),
        ] == [(m.criterion, m.sources) for m in found]
        deal.log_activity("meeting", at=T0, actor="ana")
        assert ["lead score >= 60"] == [
            m.criterion for m in missing_evidence(handoff(), deal.events, rules)
        ]
        deal.score_lead(90, at=T0, actor="m")
        assert () == missing_evidence(handoff(), deal.events, rules)
        assert {"target": "won", "criterion": "x", "reason": "y", "sources": []} == (
            type(found[0])("won", "x", "y").to_dict()
        )

    def test_an_any_of_lists_every_way_and_a_held_one_nothing(self) -> None:
        deal = Opportunity.open(b2b(), "d-1", at=T0, actor="ana")
        for stage in ("qualification", "needs_analysis", "solution_proposal", "negotiation"):
            deal.override(stage, at=T0, actor="ana", reason="test")
        found = missing_evidence(b2b(), deal.events)
        criteria = [m.criterion for m in found]
        assert "1 x 'proposal_review'" not in criteria  # negotiation -> contract needs terms
        assert "deliverable 'negotiated_terms'" in criteria
        assert any("discount_percent" in c for c in criteria)
        assert any("deal_desk" in c for c in criteria)

    def test_a_closed_deal_or_a_move_the_policy_refuses_is_an_error(self) -> None:
        from stagegate import MoveNotAllowedError

        deal = Opportunity.open(b2b(), "d-1", at=T0, actor="ana")
        with pytest.raises(MoveNotAllowedError):
            missing_evidence(b2b(), deal.events, target="contract")
        deal.lose(at=T0, actor="ana", reason="budget")
        with pytest.raises(MoveNotAllowedError):
            missing_evidence(b2b(), deal.events)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "engagement",
    "associations",
    "metadata",
    "properties",
    "submittedAt",
    "values",
    "id",
    "type",
    "timestamp",
    "dealIds",
    "leadId",
    "activityDate",
    "activityTypeId",
    "attributes",
    "opportunityId",
    "source_id",
    "opportunity_id",
    "occurred_at",
    "result",
]
ITEMS = st.lists(st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=6), max_size=5)


def _read_or_refusal(read, raw):
    try:
        return read(raw)
    except ImportProblemError as error:
        return error


class TestHostileInput:
    @settings(max_examples=60, deadline=None)
    @given(st.one_of(ITEMS, JSONISH))
    def test_json_readers_answer_with_engagements_or_findings(self, document) -> None:
        raw = json.dumps(document).encode()
        for read in (
            read_hubspot_engagements,
            read_marketo_activities,
            lambda data: read_engagements(data, system="x"),
        ):
            result = _read_or_refusal(read, raw)
            if isinstance(result, ImportProblemError):
                continue
            assert result.rows_read >= len(result.engagements)
            unused = {row for f in result.findings if not f.used for row in f.rows}
            assert unused.isdisjoint(e.row for e in result.engagements)

    @settings(max_examples=40, deadline=None)
    @given(st.binary(max_size=200))
    def test_any_bytes_are_read_or_refused_with_a_finding(self, raw) -> None:
        for read in (
            read_hubspot_engagements,
            read_marketo_activities,
            read_icalendar,
            lambda data: read_engagements(data, system="x"),
        ):
            outcome = _read_or_refusal(read, raw)
            if isinstance(outcome, ImportProblemError):
                assert outcome.findings

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    "BEGIN:VEVENT",
                    "END:VEVENT",
                    "UID:x",
                    "UID:",
                    "DTSTART:20260302T090000Z",
                    "DTSTART:2026",
                    "DTSTART;VALUE=DATE:20260302",
                    "DTEND:20260301T090000Z",
                    "DURATION:PT1H",
                    "DURATION:nope",
                    "RRULE:FREQ=DAILY",
                    "SUMMARY:[d-1]",
                    "X-STAGEGATE-OPPORTUNITY:d-2",
                    "RECURRENCE-ID:20260302T090000Z",
                    "RECURRENCE-ID:bad",
                    "ATTENDEE:mailto:a@x",
                    "CATEGORIES:a,b",
                    "STATUS:CONFIRMED",
                ]
            ),
            max_size=14,
        )
    )
    def test_calendar_lines_in_any_order_are_read_or_refused(self, lines) -> None:
        text = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", *lines, "END:VCALENDAR", ""])
        result = _read_or_refusal(
            lambda data: read_icalendar(data, deal_pattern=r"\[(d-\d)\]"), text.encode()
        )
        if isinstance(result, ImportProblemError):
            assert result.findings
            return
        for engagement in result.engagements:
            assert engagement.opportunity_ids
            assert engagement.occurred_at.tzinfo is not None


class TestEvidenceMapSchemaCost:
    """jsonschema took 1.9 s for a valid map of 1,000 rules with conditions."""

    def test_a_large_map_is_judged_without_jsonschema(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import jsonschema

        def refuse(*_: object) -> None:
            raise AssertionError("jsonschema was asked")

        monkeypatch.setattr(jsonschema.validators, "validator_for", refuse)
        rules = [
            {"system": "crm", "type": f"t{i}", "stage": "lead", "activity": "meeting",
             "when": {f"k{j}": [f"v{k}" for k in range(20)] for j in range(5)}}
            for i in range(1000)
        ]  # fmt: skip
        assert 1000 == len(evidence_map_from_dict({"rule": rules}).rules)
        broken = [*rules[:-1], {"system": "crm"}]
        with pytest.raises(DefinitionError) as caught:
            evidence_map_from_dict({"rule": broken})
        assert {"rule[999]"} == {p.path for p in caught.value.problems}
