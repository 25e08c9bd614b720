"""Each importer on small inline fixtures: events, findings, stage mapping, strict mode."""

from __future__ import annotations

import io
import itertools
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from stagegate import EventKind, MoveKind
from stagegate.errors import InvalidCommandError, StagegateError
from stagegate.io import (
    ImportProblemError,
    Severity,
    hubspot_history_rows,
    import_hubspot_history,
    import_hubspot_stage_dates,
    import_log,
    import_pipedrive,
    import_salesforce_field_history,
    import_salesforce_history,
    import_snapshot,
    read_pipedrive_fields,
    read_pipedrive_stages,
)
from stagegate.opportunity import Opportunity
from stagegate.templates import b2b

AS_OF = datetime(2030, 1, 1, tzinfo=timezone.utc)


def codes(result):
    return sorted({f.code for f in result.findings})


def unused_rows(result):
    return {row for f in result.findings if not f.used for row in f.rows}


def assert_replays(result, process):
    for events in result.by_opportunity().values():
        Opportunity.replay(process, events)


def assert_well_formed(result):
    """seq from 1 without gaps and `at` non-decreasing, per opportunity, grouped."""
    seen: list[str] = []
    for oid, events in result.by_opportunity().items():
        seen.append(oid)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert all(a.at <= b.at for a, b in itertools.pairwise(events))
        assert events[0].kind is EventKind.OPENED
    ids = [e.opportunity_id for e in result.events]
    assert [k for i, k in enumerate(ids) if i == 0 or ids[i - 1] != k] == seen


SF_ROWS = [
    {
        "OpportunityId": "006A",
        "CreatedDate": "2024-03-01T09:00:00Z",
        "StageName": "Lead generation",
        "Amount": "1000",
        "CloseDate": "2024-06-30",
        "CreatedById": "005X",
    },
    {
        "OpportunityId": "006A",
        "CreatedDate": "2024-03-20T09:00:00Z",
        "StageName": "Qualification",
        "Amount": "1000",
        "CloseDate": "2024-07-31",
        "CreatedById": "005Y",
    },
    {
        "OpportunityId": "006A",
        "CreatedDate": "2024-05-02T16:00:00Z",
        "StageName": "Won",
        "Amount": "1200",
        "CloseDate": "2024-05-02",
        "CreatedById": "005Y",
    },
]


class TestSalesforceHistory:
    def test_the_first_row_opens_and_later_rows_become_imported_changes(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF)
        kinds = [(e.kind, e.stage) for e in result.events]
        assert [
            (EventKind.OPENED, "lead_generation"),
            (EventKind.RESCHEDULED, "lead_generation"),
            (EventKind.STAGE_CHANGED, "qualification"),
            (EventKind.AMOUNT_CHANGED, "qualification"),
            (EventKind.RESCHEDULED, "qualification"),
            (EventKind.STAGE_CHANGED, "won"),
        ] == kinds
        assert_replays(result, b2b())
        assert_well_formed(result)

    def test_stage_changes_are_imported_moves_without_a_gate_report(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF)
        changes = [e for e in result.events if e.kind is EventKind.STAGE_CHANGED]
        assert all(e.move is MoveKind.IMPORTED and e.gate is None for e in changes)
        assert ["lead_generation", "qualification"] == [e.from_stage for e in changes]

    def test_a_close_date_change_is_a_reschedule_with_the_previous_date(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF)
        first = next(e for e in result.events if e.kind is EventKind.RESCHEDULED)
        assert date(2024, 7, 31) == first.close_date
        assert {"previous": "2024-06-30"} == dict(first.details or {})

    def test_the_actor_comes_from_created_by_id(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF)
        assert ["005X", "005Y"] == sorted({e.actor for e in result.events})

    def test_the_actor_defaults_to_the_source(self):
        rows = [{k: v for k, v in row.items() if k != "CreatedById"} for row in SF_ROWS]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert {"import:salesforce"} == {e.actor for e in result.events}

    def test_process_name_and_version_come_from_the_target_process(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF)
        assert {("b2b", "1")} == {(e.process, e.process_version) for e in result.events}

    def test_an_unknown_stage_is_reported_and_its_rows_not_used(self):
        rows = [*SF_ROWS[:2], {**SF_ROWS[2], "StageName": "Gagné"}]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings_of("unknown_stage")
        assert (3,) == finding.rows  # dict rows count from 1
        assert finding.severity is Severity.ERROR
        assert "stage_map=" in finding.message
        assert "won" not in {e.stage for e in result.events}

    def test_stage_map_maps_a_label_the_process_does_not_have(self):
        rows = [*SF_ROWS[:2], {**SF_ROWS[2], "StageName": "Gagné"}]
        result = import_salesforce_history(
            rows, process=b2b(), stage_map={"Gagné": "won"}, as_of=AS_OF
        )
        assert "won" == result.events[-1].stage
        assert "won" == result.stage_map["Gagné"]

    def test_a_stage_map_target_outside_the_process_is_refused(self):
        with pytest.raises(InvalidCommandError, match="not stages of process"):
            import_salesforce_history(SF_ROWS, process=b2b(), stage_map={"x": "nope"})

    def test_a_case_difference_maps_with_a_warning(self):
        rows = [{**SF_ROWS[0], "StageName": "LEAD GENERATION"}]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert "lead_generation" == result.events[0].stage
        assert ["stage_case"] == codes(result)

    def test_strict_refuses_a_result_with_problems(self):
        rows = [*SF_ROWS[:2], {**SF_ROWS[2], "StageName": "Gagné"}]
        with pytest.raises(ImportProblemError) as caught:
            import_salesforce_history(rows, process=b2b(), as_of=AS_OF, strict=True)
        assert ["unknown_stage"] == [f.code for f in caught.value.findings]
        assert isinstance(caught.value, StagegateError)
        assert isinstance(caught.value, ValueError)
        assert "Gagné" in str(caught.value)

    def test_strict_accepts_a_clean_export(self):
        result = import_salesforce_history(SF_ROWS, process=b2b(), as_of=AS_OF, strict=True)
        assert [] == list(result.problems)

    def test_the_column_mapping_reads_localized_headers(self):
        header = "Id de l'opportunité;Date de création;Étape\n"
        body = "006A;2024-03-01T09:00:00Z;Lead generation\n006A;2024-03-02T09:00:00Z;Lost\n"
        result = import_salesforce_history(
            io.StringIO(header + body),
            process=b2b(),
            delimiter=";",
            columns={
                "OpportunityId": "Id de l'opportunité",
                "CreatedDate": "Date de création",
                "StageName": "Étape",
            },
            as_of=AS_OF,
        )
        assert ["lead_generation", "lost"] == [e.stage for e in result.events]

    def test_an_unknown_column_name_in_the_mapping_is_refused(self):
        with pytest.raises(InvalidCommandError, match="unknown to the salesforce importer"):
            import_salesforce_history(SF_ROWS, columns={"Opportunity": "x"})

    def test_a_reopening_after_close_is_recorded_with_a_warning(self):
        rows = [
            *SF_ROWS,
            {**SF_ROWS[1], "CreatedDate": "2024-06-01T09:00:00Z", "CloseDate": "2024-09-30"},
        ]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert ["change_after_close"] == codes(result)
        assert "qualification" == result.events[-1].stage
        assert EventKind.RESCHEDULED is result.events[-1].kind
        assert_replays(result, b2b())

    def test_an_amount_change_after_close_is_not_used(self):
        rows = [*SF_ROWS, {**SF_ROWS[2], "CreatedDate": "2024-06-01T09:00:00Z", "Amount": "9"}]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings_of("change_after_close")
        assert not finding.used
        assert (4,) == finding.rows
        assert Decimal(1200) == result.events[-1].amount

    def test_deleted_rows_are_reported_not_used(self):
        rows = [*SF_ROWS, {**SF_ROWS[1], "IsDeleted": "true"}]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert {4} == unused_rows(result)

    def test_a_row_that_changes_nothing_is_reported(self):
        rows = [*SF_ROWS[:1], {**SF_ROWS[0], "CreatedDate": "2024-03-02T09:00:00Z"}]
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert ["no_change"] == codes(result)
        assert 1 == len(result.events)

    def test_the_process_is_inferred_with_a_warning_when_none_is_given(self):
        result = import_salesforce_history(SF_ROWS, as_of=AS_OF)
        (finding,) = result.findings_of("inferred_process")
        assert finding.severity is Severity.WARNING
        assert ("imported", "0") == (result.process, result.process_version)
        assert "lead_generation > qualification > won > lost" in finding.message

    def test_inference_without_won_or_lost_names_asks_the_user(self):
        rows = [{**SF_ROWS[0], "StageName": "A"}, {**SF_ROWS[1], "StageName": "B"}]
        with pytest.raises(ImportProblemError, match="won=") as caught:
            import_salesforce_history(rows, as_of=AS_OF)
        assert "no_terminal_stages" == caught.value.findings[0].code
        result = import_salesforce_history(rows, won=("B",), as_of=AS_OF)
        assert "b" == result.events[-1].stage

    def test_summary_names_counts_and_findings(self):
        rows = [*SF_ROWS[:2], {**SF_ROWS[2], "StageName": "Gagné"}]
        text = import_salesforce_history(rows, process=b2b(), as_of=AS_OF).summary()
        assert "3 rows read, 2 used, 1 opportunities" in text
        assert "error unknown_stage: 1 finding(s), 1 row(s)" in text


class TestSalesforceFieldHistory:
    ROWS = (
        {
            "OpportunityId": "006B",
            "Field": "created",
            "OldValue": "",
            "NewValue": "",
            "CreatedDate": "2024-03-01T09:00:00Z",
        },
        {
            "OpportunityId": "006B",
            "Field": "StageName",
            "OldValue": "Lead generation",
            "NewValue": "Qualification",
            "CreatedDate": "2024-03-09T10:00:00Z",
        },
        {
            "OpportunityId": "006B",
            "Field": "CloseDate",
            "OldValue": "2024-05-31",
            "NewValue": "2024-06-30",
            "CreatedDate": "2024-03-10T10:00:00Z",
        },
        {
            "OpportunityId": "006B",
            "Field": "NextStep",
            "OldValue": "",
            "NewValue": "Call CFO",
            "CreatedDate": "2024-03-11T10:00:00Z",
        },
    )

    def test_the_stage_at_creation_is_the_old_value_of_the_first_stage_change(self):
        result = import_salesforce_field_history(list(self.ROWS), process=b2b(), as_of=AS_OF)
        assert [
            (EventKind.OPENED, "lead_generation"),
            (EventKind.STAGE_CHANGED, "qualification"),
            (EventKind.RESCHEDULED, "qualification"),
            (EventKind.FIELD_SET, "qualification"),
        ] == [(e.kind, e.stage) for e in result.events]
        assert date(2024, 5, 31) == result.events[0].close_date
        assert "NextStep" == result.events[-1].subject
        assert_replays(result, b2b())

    def test_without_a_created_row_the_deal_opens_at_its_first_change(self):
        result = import_salesforce_field_history(list(self.ROWS[1:]), process=b2b(), as_of=AS_OF)
        opened = result.events[0]
        assert ("lead_generation", datetime(2024, 3, 9, 10, tzinfo=timezone.utc)) == (
            opened.stage,
            opened.at,
        )
        assert "qualification" == result.events[1].stage

    def test_a_deal_without_any_stage_is_refused_with_its_rows(self):
        result = import_salesforce_field_history(
            [self.ROWS[0], self.ROWS[3]], process=b2b(), as_of=AS_OF
        )
        assert ["no_stage"] == codes(result)
        assert {1, 2} == unused_rows(result)
        assert () == result.events


PD_ROWS = [
    ("7", "2024-04-09 21:32:09", "add_time", "2024-04-09T21:32:09"),
    ("7", "2024-04-12 21:32:09", "user_id", "1463"),
    ("7", "2024-04-20 21:32:09", "stage_id", "1"),
    ("7", "2024-05-02 10:00:00", "stage_id", "3"),
    ("7", "2024-05-30 10:00:00", "lost_reason", "2"),
]
PD_STAGES = {"1": "Lead generation", "2": "Qualification", "3": "Needs analysis"}


def pd_rows(rows):
    return [
        dict(zip(("deal_id", "change_time", "changed_field_key", "new_value"), row, strict=False))
        for row in rows
    ]


class TestPipedrive:
    def test_a_deal_opens_at_add_time_in_its_first_recorded_stage(self):
        result = import_pipedrive(
            pd_rows(PD_ROWS), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        assert [
            (EventKind.OPENED, "lead_generation", None),
            (EventKind.REASSIGNED, "lead_generation", None),
            (EventKind.FIELD_SET, "lead_generation", None),
            (EventKind.STAGE_CHANGED, "needs_analysis", None),
            (EventKind.STAGE_CHANGED, "lost", "2"),
        ] == [(e.kind, e.stage, e.reason) for e in result.events]
        assert datetime(2024, 4, 9, 21, 32, 9, tzinfo=timezone.utc) == result.events[0].at
        assert 5 == result.rows_used
        assert_replays(result, b2b())

    def test_the_lost_reason_label_comes_from_the_fields_table(self):
        fields = io.StringIO(
            'ID,FIELD_KEY,NAME,FIELD_VALUE_OPTIONS\n23,lost_reason,Lost reason,"[{""id"": '
            '""2"", ""label"": ""Pricing Issues""}]"'
        )
        result = import_pipedrive(
            pd_rows(PD_ROWS),
            stages=PD_STAGES,
            fields=fields,
            process=b2b(),
            assume_zone="UTC",
            as_of=AS_OF,
        )
        assert "Pricing Issues" == result.events[-1].reason

    def test_naive_timestamps_without_a_zone_are_refused_never_guessed(self):
        result = import_pipedrive(pd_rows(PD_ROWS), stages=PD_STAGES, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings_of("naive_timestamp")
        assert (2, 3, 4, 5, 6) != finding.rows  # dict rows count from 1
        assert (1, 2, 3, 4, 5) == finding.rows
        assert "assume_zone=" in finding.message
        assert () == result.events

    def test_naive_timestamps_are_read_in_the_named_zone(self):
        result = import_pipedrive(
            pd_rows(PD_ROWS),
            stages=PD_STAGES,
            process=b2b(),
            assume_zone="Europe/Berlin",
            as_of=AS_OF,
        )
        assert datetime(2024, 4, 9, 19, 32, 9, tzinfo=timezone.utc) == result.events[0].at

    def test_a_stage_change_after_the_loss_is_refused(self):
        rows = [*PD_ROWS, ("7", "2024-06-01 10:00:00", "stage_id", "2")]
        result = import_pipedrive(
            pd_rows(rows), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        (finding,) = result.findings_of("change_after_close")
        assert ((6,), False) == (finding.rows, finding.used)
        assert "lost" == result.events[-1].stage

    def test_status_open_reopens_into_the_last_open_stage(self):
        rows = [*PD_ROWS, ("7", "2024-06-01 10:00:00", "status", "open")]
        result = import_pipedrive(
            pd_rows(rows), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        assert ("lost", "needs_analysis") == (
            result.events[-1].from_stage,
            result.events[-1].stage,
        )
        assert_replays(result, b2b())

    def test_a_stage_id_missing_from_the_table_is_unknown(self):
        rows = [*PD_ROWS[:3], ("7", "2024-05-02 10:00:00", "stage_id", "99")]
        result = import_pipedrive(
            pd_rows(rows), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        (finding,) = result.findings_of("unknown_stage")
        assert (4,) == finding.rows

    def test_a_reused_id_after_a_loss_is_split_by_time(self):
        second = [
            ("7", "2024-07-01 10:00:00", "add_time", "2024-07-01T10:00:00"),
            ("7", "2024-07-02 10:00:00", "stage_id", "2"),
        ]
        result = import_pipedrive(
            pd_rows(second + PD_ROWS),
            stages=PD_STAGES,
            process=b2b(),
            assume_zone="UTC",
            as_of=AS_OF,
        )
        assert ("7", "7#2") == result.opportunity_ids
        (finding,) = result.findings_of("reused_id")
        assert "by time" in finding.message
        assert "qualification" == result.by_opportunity()["7#2"][0].stage

    def test_interleaved_reused_ids_are_split_by_file_blocks(self):
        second = [
            ("7", "2024-05-01 10:00:00", "add_time", "2024-05-01T10:00:00"),
            ("7", "2024-05-03 10:00:00", "stage_id", "2"),
        ]
        result = import_pipedrive(
            pd_rows(PD_ROWS + second),
            stages=PD_STAGES,
            process=b2b(),
            assume_zone="UTC",
            as_of=AS_OF,
        )
        assert ("7", "7#2") == result.opportunity_ids
        assert "by file order" in result.findings_of("reused_id")[0].message
        assert_well_formed(result)

    def test_interleaved_reused_ids_with_mixed_rows_are_refused(self):
        second = [
            ("7", "2024-05-01 10:00:00", "add_time", "2024-05-01T10:00:00"),
            ("7", "2024-05-03 10:00:00", "stage_id", "2"),
        ]
        rows = [PD_ROWS[0], second[0], *PD_ROWS[1:], second[1]]
        result = import_pipedrive(
            pd_rows(rows), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        (finding,) = result.findings_of("reused_id")
        assert finding.severity is Severity.ERROR
        assert () == result.events

    def test_the_process_is_inferred_from_the_stage_table_with_won_and_lost(self):
        result = import_pipedrive(
            pd_rows(PD_ROWS), stages=PD_STAGES, assume_zone="UTC", as_of=AS_OF
        )
        assert "lead_generation > qualification > needs_analysis > won > lost" in (
            result.findings_of("inferred_process")[0].message
        )

    def test_stage_tables_read_from_csv_in_order(self):
        table = io.StringIO("stage_id,stage_name,order_nr\n2,B,2\n1,A,1")
        assert {"1": "A", "2": "B"} == read_pipedrive_stages(table)
        assert ["1", "2"] == list(
            read_pipedrive_stages(io.StringIO("stage_id,stage_name\n1,A\n2,B"))
        )

    def test_a_fields_table_with_bad_json_gives_no_options(self):
        fields = io.StringIO("ID,FIELD_KEY,NAME,FIELD_VALUE_OPTIONS\n1,stage_id,Stage,[oops")
        assert {} == read_pipedrive_fields(fields)

    def test_value_and_expected_close_date_change_amount_and_close_date(self):
        rows = [
            *PD_ROWS[:3],
            ("7", "2024-04-21 10:00:00", "value", "5000"),
            ("7", "2024-04-22 10:00:00", "expected_close_date", "2024-08-31"),
        ]
        result = import_pipedrive(
            pd_rows(rows), stages=PD_STAGES, process=b2b(), assume_zone="UTC", as_of=AS_OF
        )
        assert [EventKind.AMOUNT_CHANGED, EventKind.RESCHEDULED] == [
            e.kind for e in result.events[-2:]
        ]


class TestHubSpot:
    def test_property_history_rows_become_stage_changes_and_reschedules(self):
        deal = {
            "id": "9",
            "propertiesWithHistory": {
                "dealstage": [
                    {"value": "Qualification", "timestamp": "2024-04-01T09:00:00Z"},
                    {"value": "Lead generation", "timestamp": "2024-03-01T09:00:00Z"},
                ],
                "closedate": [{"value": "1719705600000", "timestamp": "1709283600000"}],
                "amount": [{"value": "700", "timestamp": "2024-03-05T09:00:00Z"}],
                "hubspot_owner_id": [
                    {"value": "77", "timestamp": "2024-03-06T09:00:00Z", "updatedByUserId": 4}
                ],
            },
        }
        result = import_hubspot_history(hubspot_history_rows([deal]), process=b2b(), as_of=AS_OF)
        assert [
            (EventKind.OPENED, "lead_generation"),
            (EventKind.AMOUNT_CHANGED, "lead_generation"),
            (EventKind.REASSIGNED, "lead_generation"),
            (EventKind.FIELD_SET, "lead_generation"),
            (EventKind.STAGE_CHANGED, "qualification"),
        ] == [(e.kind, e.stage) for e in result.events]
        assert date(2024, 6, 30) == result.events[0].close_date
        assert_replays(result, b2b())

    def test_stage_dates_are_found_by_column_name(self):
        rows = [
            {
                "hs_object_id": "9",
                "dealstage": "closedlost",
                "hs_v2_date_entered_appointmentscheduled": "2024-03-01T09:00:00Z",
                "hs_v2_date_entered_closedlost": "2024-04-01T09:00:00Z",
                "hs_v2_date_entered_qualifiedtobuy": "",
            }
        ]
        result = import_hubspot_stage_dates(
            rows, stages=["appointmentscheduled", "qualifiedtobuy", "closedlost"], as_of=AS_OF
        )
        assert ["appointmentscheduled", "closedlost"] == [e.stage for e in result.events]
        assert "hubspot" == result.source


class TestSnapshot:
    MAVEN = (
        {"opportunity_id": "A", "deal_stage": "Won", "engage_date": "2017-01-03",
         "close_date": "2017-02-14", "close_value": "1054"},
        {"opportunity_id": "B", "deal_stage": "Lost", "engage_date": "2017-01-05",
         "close_date": "", "close_value": "0"},
        {"opportunity_id": "C", "deal_stage": "Engaging", "engage_date": "2017-03-01",
         "close_date": "2017-03-09", "close_value": ""},
    )  # fmt: skip

    def run(self, rows, **options):
        return import_snapshot(
            rows,
            stages=["Prospecting", "Engaging", "Won", "Lost"],
            entered={"Engaging": "engage_date"},
            columns={"stage": "deal_stage", "closed_at": "close_date", "amount": "close_value"},
            assume_zone="UTC",
            as_of=AS_OF,
            **options,
        )

    def test_a_closed_deal_without_its_close_date_is_refused(self):
        result = self.run(list(self.MAVEN))
        (finding,) = result.findings_of("missing_date")
        assert ((2,), "B") == (finding.rows, finding.opportunity_id)

    def test_a_close_date_on_an_open_deal_is_reported_and_ignored(self):
        result = self.run(list(self.MAVEN))
        assert ["C"] == [f.opportunity_id for f in result.findings_of("inconsistent_history")]
        assert [("opened", "engaging")] == [
            (e.kind.value, e.stage) for e in result.by_opportunity()["C"]
        ]

    def test_undated_deals_open_at_the_named_instant(self):
        rows = [{"opportunity_id": "P", "deal_stage": "Prospecting", "engage_date": "",
                 "close_date": "", "close_value": ""}]  # fmt: skip
        snapshot_at = datetime(2017, 12, 31, tzinfo=timezone.utc)
        result = self.run(rows, undated_at=snapshot_at)
        assert [("prospecting", snapshot_at)] == [(e.stage, e.at) for e in result.events]

    def test_a_repeated_id_is_refused(self):
        result = self.run([self.MAVEN[0], self.MAVEN[0]])
        assert ["inferred_process", "reused_id"] == codes(result)
        assert 1 == result.opportunities

    def test_entered_must_name_existing_columns(self):
        with pytest.raises(InvalidCommandError, match="no such column"):
            import_snapshot(list(self.MAVEN), entered={"Engaging": "nope"},
                            columns={"stage": "deal_stage"})  # fmt: skip


class TestGenericLog:
    def test_rows_holding_values_in_force_become_events(self):
        rows = [
            {"opportunity_id": "A", "at": "2024-01-05T09:00:00+01:00", "stage": "lead_generation",
             "amount": "10", "close_date": "2024-03-31", "actor": "ana"},
            {"opportunity_id": "A", "at": "2024-01-06T09:00:00+01:00", "stage": "lead_generation",
             "amount": "12", "close_date": "2024-03-31", "actor": "ana"},
            {"opportunity_id": "A", "at": "2024-01-07T09:00:00+01:00", "stage": "lost",
             "amount": "12", "close_date": "2024-03-31", "actor": "bo", "reason": "budget"},
        ]  # fmt: skip
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert [
            (EventKind.OPENED, None),
            (EventKind.AMOUNT_CHANGED, None),
            (EventKind.STAGE_CHANGED, "budget"),
        ] == [(e.kind, e.reason) for e in result.events]
        assert datetime(2024, 1, 5, 8, tzinfo=timezone.utc) == result.events[0].at

    def test_stage_map_without_a_process_renames_labels_before_inference(self):
        rows = [
            {"opportunity_id": "A", "at": "2024-01-05T09:00:00Z", "stage": "Lead"},
            {"opportunity_id": "A", "at": "2024-01-06T09:00:00Z", "stage": "Signed"},
        ]
        result = import_log(rows, stage_map={"Signed": "Won"}, lost=("Lost",), as_of=AS_OF)
        assert {"Lead": "lead", "Signed": "won"} == dict(result.stage_map)


class TestPipedriveValues:
    def run(self, extra, **options):
        return import_pipedrive(
            pd_rows([*PD_ROWS[:3], *extra]),
            stages=PD_STAGES,
            process=b2b(),
            assume_zone="UTC",
            as_of=AS_OF,
            **options,
        )

    def test_status_won_wins_the_deal(self):
        result = self.run([("7", "2024-06-01 10:00:00", "status", "won")])
        assert "won" == result.events[-1].stage

    def test_an_unknown_status_is_a_bad_value(self):
        result = self.run([("7", "2024-06-01 10:00:00", "status", "maybe")])
        assert ["bad_value"] == codes(result)

    def test_an_unreadable_amount_is_a_bad_value(self):
        result = self.run([("7", "2024-06-01 10:00:00", "value", "lots")])
        assert (4,) == result.findings_of("bad_value")[0].rows

    def test_an_empty_stage_id_is_a_bad_value(self):
        result = self.run([("7", "2024-06-01 10:00:00", "stage_id", "")])
        assert ["bad_value"] == codes(result)

    def test_a_lost_reason_without_a_label_is_kept_as_its_id_with_a_warning(self):
        result = self.run(
            [("7", "2024-06-01 10:00:00", "lost_reason", "9")], lost_reasons={"1": "Price"}
        )
        assert "9" == result.events[-1].reason
        assert ["unknown_value"] == codes(result)

    def test_a_row_without_a_deal_id_is_reported(self):
        result = self.run([("", "2024-06-01 10:00:00", "stage_id", "2")])
        assert ["missing_id"] == codes(result)

    def test_without_a_stage_table_the_ids_are_made_from_the_numbers(self):
        """Ids start with a letter, as a definition file's must: "1" could not be loaded back."""
        result = import_pipedrive(pd_rows(PD_ROWS), assume_zone="UTC", as_of=AS_OF)
        assert {"1": "stage_1", "3": "stage_3"} == dict(result.stage_map)
