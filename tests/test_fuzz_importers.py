"""Hostile values the importers once let through: each is now a finding or an ImportProblemError.

Every importer must return events that replay and store, or name the rows it did not use; the
cases here are the ones found by fuzzing cells and files (ids with line breaks, lone
surrogates from JSON escapes, field names the table keeps for itself, calendar durations past
the year 9999, CSV engagement exports that the standard reader could not read).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import b2b
from stagegate.errors import DefinitionError, EventLogError
from stagegate.io import (
    EVENT_COLUMNS,
    ImportProblemError,
    ImportResult,
    evidence_map_from_toml,
    hubspot_history_rows,
    import_hubspot_history,
    import_log,
    import_pipedrive,
    import_salesforce_field_history,
    import_salesforce_history,
    import_snapshot,
    load_evidence_map,
    read_engagements,
    read_events,
    read_hubspot_engagements,
    read_icalendar,
    read_marketo_activities,
    read_pipedrive_fields,
    write_events,
)
from stagegate.opportunity import Opportunity
from stagegate.store import SQLiteStore

AS_OF = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _stores(result: ImportResult, path: Path) -> None:
    """The events replay under the result's process and append to a SQLite store."""
    store = SQLiteStore(path)
    for events in result.by_opportunity().values():
        Opportunity.replay(result.definition, events)
        store.append(events)


def _refused(result: ImportResult) -> list[tuple[str, tuple[int, ...]]]:
    """Code and rows of each finding whose rows were not used."""
    return [(f.code, f.rows) for f in result.findings if not f.used]


def _log(oid: str = "A", actor: str = "ana", reason: str = "r") -> list[dict[str, Any]]:
    return [
        {"opportunity_id": "B", "at": "2024-01-05T09:00:00Z", "stage": "lead_generation"},
        {
            "opportunity_id": oid,
            "at": "2024-01-06T09:00:00Z",
            "stage": "lead_generation",
            "actor": actor,
            "reason": reason,
        },
    ]


def _salesforce(oid: str = "006A", actor: str = "u") -> list[dict[str, Any]]:
    return [
        {"OpportunityId": "006B", "CreatedDate": "2024-03-01T09:00:00Z", "StageName": "won"},
        {
            "OpportunityId": oid,
            "CreatedDate": "2024-03-01T09:00:00Z",
            "StageName": "Lead generation",
            "CreatedById": actor,
        },
    ]


def _snapshot(oid: str = "X1", actor: str = "a") -> list[dict[str, Any]]:
    return [
        {"opportunity_id": "X2", "stage": "Engaging", "engage_date": "2024-02-01"},
        {"opportunity_id": oid, "stage": "Engaging", "engage_date": "2024-01-01", "actor": actor},
    ]


_SNAPSHOT = {
    "entered": {"Engaging": "engage_date"},
    "stages": ["Prospecting", "Engaging", "Won", "Lost"],
    "assume_zone": "UTC",
}

IMPORTS: dict[str, tuple[Callable[..., ImportResult], Callable[..., list[dict[str, Any]]], Any]] = {
    "log": (import_log, _log, {"process": b2b()}),
    "salesforce": (import_salesforce_history, _salesforce, {"process": b2b()}),
    "snapshot": (import_snapshot, _snapshot, _SNAPSHOT),
}


class TestOpportunityIdsWithControlCharacters:
    """An id with a line break (a quoted newline in CSV) was imported and failed replay."""

    @pytest.mark.parametrize("name", IMPORTS)
    @pytest.mark.parametrize("oid", ["a\nb", "a\tb", "\x00", "\ud800"])
    def test_the_row_is_a_bad_value_and_the_rest_stores(
        self, name: str, oid: str, tmp_path: Path
    ) -> None:
        importer, rows, options = IMPORTS[name]
        result = importer(rows(oid=oid), as_of=AS_OF, **options)
        assert _refused(result) == [("bad_value", (2,))]
        assert {e.opportunity_id for e in result.events} == {next(iter(rows()[0].values()))}
        _stores(result, tmp_path / "s.sqlite")

    def test_a_quoted_newline_in_a_csv_id_is_named_by_its_row(self, tmp_path: Path) -> None:
        export = io.StringIO(
            "opportunity_id,at,stage\n"
            "A,2024-01-05T09:00:00Z,lead_generation\n"
            '"B\n2",2024-01-05T09:00:00Z,lead_generation\n'
        )
        result = import_log(export, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings
        assert (finding.code, finding.rows) == ("bad_value", (3,))
        assert "one line of text" in finding.message
        _stores(result, tmp_path / "s.sqlite")


class TestLoneSurrogates:
    """A JSON ``\\ud800`` escape in an actor or reason was imported, then the store refused it."""

    @pytest.mark.parametrize("name", IMPORTS)
    def test_an_actor_with_one_is_a_bad_value(self, name: str, tmp_path: Path) -> None:
        importer, rows, options = IMPORTS[name]
        actor = json.loads('"ana\\ud800"')
        result = importer(rows(actor=actor), as_of=AS_OF, **options)
        assert _refused(result) == [("bad_value", (2,))]
        assert any("lone surrogate" in f.message for f in result.findings)
        _stores(result, tmp_path / "s.sqlite")

    def test_a_reason_with_one_is_a_bad_value(self, tmp_path: Path) -> None:
        result = import_log(_log(reason="\udc00"), process=b2b(), as_of=AS_OF)
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (2,))]
        _stores(result, tmp_path / "s.sqlite")

    def test_a_hubspot_property_name_with_one_is_a_bad_value(self, tmp_path: Path) -> None:
        rows = [*_hubspot_rows(), _hubspot_row("x\ud800", "v")]
        result = import_hubspot_history(rows, won=["closedwon"], lost=["closedlost"], as_of=AS_OF)
        assert _refused(result) == [("bad_value", (2,))]
        _stores(result, tmp_path / "s.sqlite")


def _hubspot_row(prop: str, value: str) -> dict[str, str]:
    return {"deal_id": "1", "property": prop, "value": value, "timestamp": "2024-01-03T00:00:00Z"}


def _hubspot_rows() -> list[dict[str, str]]:
    return [
        {
            "deal_id": "1",
            "property": "dealstage",
            "value": "qualification",
            "timestamp": "2024-01-02T00:00:00Z",
        },
    ]


class TestFieldNamesTheTableKeeps:
    """A changed field named ``stage``, ``amount``, ``close_date`` or blank failed replay."""

    @pytest.mark.parametrize("field", ["stage", "close_date", "", " "])
    def test_salesforce_field_history(self, field: str, tmp_path: Path) -> None:
        rows = [
            {"OpportunityId": "006A", "Field": "created", "NewValue": "", "OldValue": "",
             "CreatedDate": "2024-03-01T09:00:00Z"},
            {"OpportunityId": "006A", "Field": "StageName", "NewValue": "Qualification",
             "OldValue": "Lead generation", "CreatedDate": "2024-03-02T09:00:00Z"},
            {"OpportunityId": "006A", "Field": field, "NewValue": "x", "OldValue": "",
             "CreatedDate": "2024-03-03T09:00:00Z"},
        ]  # fmt: skip
        result = import_salesforce_field_history(rows, process=b2b(), as_of=AS_OF)
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (3,))]
        _stores(result, tmp_path / "s.sqlite")

    @pytest.mark.parametrize("field", ["stage", "close_date"])
    def test_hubspot_history(self, field: str, tmp_path: Path) -> None:
        rows = [*_hubspot_rows(), _hubspot_row(field, "x")]
        result = import_hubspot_history(rows, won=["closedwon"], lost=["closedlost"], as_of=AS_OF)
        assert _refused(result) == [("bad_value", (2,))]
        _stores(result, tmp_path / "s.sqlite")

    @pytest.mark.parametrize("field", ["stage", "amount", "close_date"])
    def test_pipedrive(self, field: str, tmp_path: Path) -> None:
        rows = [
            {"deal_id": "7", "change_time": "2024-01-01T00:00:00Z",
             "changed_field_key": "add_time", "new_value": "2024-01-01T00:00:00Z"},
            {"deal_id": "7", "change_time": "2024-01-01T00:00:00Z",
             "changed_field_key": "stage_id", "new_value": "1"},
            {"deal_id": "7", "change_time": "2024-01-02T00:00:00Z",
             "changed_field_key": field, "new_value": "5"},
        ]  # fmt: skip
        result = import_pipedrive(rows, stages={"1": "Lead", "2": "Qual"}, as_of=AS_OF)
        assert _refused(result) == [("bad_value", (3,))]
        _stores(result, tmp_path / "s.sqlite")


def _calendar(*lines: str) -> bytes:
    body = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//x//EN", "BEGIN:VEVENT", "UID:u1",
        *lines, "X-STAGEGATE-OPPORTUNITY:A-1", "END:VEVENT", "END:VCALENDAR", "",
    ]  # fmt: skip
    return "\r\n".join(body).encode()


class TestCalendarDurations:
    """A DURATION that ends past the year 9999 raised a bare OverflowError."""

    @pytest.mark.parametrize(
        ("start", "duration"),
        [("99991231T230000Z", "P10D"), ("20240101T100000Z", "P99999999W")],
    )
    def test_it_is_a_bad_value(self, start: str, duration: str) -> None:
        result = read_icalendar(_calendar(f"DTSTART:{start}", f"DURATION:{duration}"))
        assert result.engagements == ()
        ((code, rows, message),) = [(f.code, f.rows, f.message) for f in result.findings]
        assert (code, rows) == ("bad_value", (1,))
        assert "DURATION" in message
        assert "9999" in message

    def test_a_duration_in_range_still_ends_the_event(self) -> None:
        result = read_icalendar(_calendar("DTSTART:20240101T100000Z", "DURATION:PT1H"))
        assert result.engagements[0].occurred_at == datetime(2024, 1, 1, 11, tzinfo=timezone.utc)


HEADER = "source_id,opportunity_id,type,occurred_at,note\n"
MARKETO = "id,leadId,activityDate,activityTypeId,primaryAttributeValue,attributes,opportunityId\n"


class TestEngagementCsv:
    """CSV engagement exports raised the csv module's own errors, or lost values silently."""

    def test_a_long_note_is_read(self) -> None:
        text = HEADER + '1,A,call,2024-01-01T00:00:00Z,"' + "x" * 200_000 + '"\n'
        result = read_engagements(text.encode(), system="outreach")
        assert result.findings == ()
        assert result.engagements[0].attributes["note"] == "x" * 200_000

    @pytest.mark.parametrize("reader", [read_engagements, read_marketo_activities])
    def test_an_unclosed_quote_is_refused_as_too_large(self, reader: Callable[..., Any]) -> None:
        head = HEADER if reader is read_engagements else MARKETO
        text = head + '1,A,call,"' + "x" * 1_000_001 + "\n"
        options = {"system": "outreach"} if reader is read_engagements else {}
        with pytest.raises(ImportProblemError) as caught:
            reader(text.encode(), **options)
        assert [f.code for f in caught.value.findings] == ["field_too_large"]

    def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(self) -> None:
        text = HEADER + '1,A,call,2024-01-01T00:00:00Z,"abc\n2,A,call,2024-01-02T00:00:00Z,x\n'
        with pytest.raises(ImportProblemError) as caught:
            read_engagements(text.encode(), system="outreach")
        assert [f.code for f in caught.value.findings] == ["unreadable_file"]
        assert "not valid CSV" in caught.value.findings[0].message

    def test_carriage_return_line_ends_are_read(self) -> None:
        text = HEADER + "1,A,call,2024-01-01T00:00:00Z,a\n2,A,call,2024-01-02T00:00:00Z,b\n"
        result = read_engagements(text.replace("\n", "\r").encode(), system="outreach")
        assert [e.source_id for e in result.engagements] == ["1", "2"]

    def test_a_row_with_more_fields_than_the_header_is_malformed(self) -> None:
        text = HEADER + "1,A,call,2024-01-01T00:00:00Z,n,extra\n2,A,call,2024-01-01T00:00:00Z,n\n"
        result = read_engagements(text.encode(), system="outreach")
        assert [(f.code, f.rows) for f in result.findings] == [("malformed_row", (2,))]
        assert [e.source_id for e in result.engagements] == ["2"]

    def test_a_marketo_row_with_more_fields_than_the_header_is_malformed(self) -> None:
        text = MARKETO + "1,3,2024-01-01T00:00:00Z,1,x,,A,extra\n"
        result = read_marketo_activities(text.encode())
        assert [(f.code, f.rows) for f in result.findings] == [("malformed_row", (2,))]

    def test_a_repeated_header_is_refused(self) -> None:
        text = HEADER.replace("note", "note,note") + "1,A,call,2024-01-01T00:00:00Z,a,b\n"
        with pytest.raises(ImportProblemError) as caught:
            read_engagements(text.encode(), system="outreach")
        assert [f.code for f in caught.value.findings] == ["duplicate_columns"]

    def test_marketo_attributes_nested_too_deep_are_a_bad_value(self) -> None:
        text = MARKETO + "1,3,2024-01-01T00:00:00Z,1,x," + "[" * 100_000 + ",A\n"
        result = read_marketo_activities(text.encode())
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (2,))]


class TestEngagementIdsThatAreNotText:
    """A JSON list or object as an id was read as its Python text (``"['A', 'B']"``)."""

    def test_a_list_of_deals_in_the_generic_reader(self) -> None:
        item = {"source_id": "1", "opportunity_id": ["A", "B"], "type": "call",
                "occurred_at": "2024-01-01T00:00:00Z"}  # fmt: skip
        result = read_engagements(json.dumps([item]).encode(), system="outreach")
        assert result.engagements == ()
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (1,))]

    def test_a_nested_hubspot_deal_id(self) -> None:
        item = {"engagement": {"id": 1, "type": "MEETING", "timestamp": 1704067200000},
                "associations": {"dealIds": [[5]]}}  # fmt: skip
        result = read_hubspot_engagements(json.dumps([item]).encode())
        assert result.engagements == ()
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (1,))]


class TestNumbersIntCannotRead:
    """Text that passes ``str.isdigit`` but not ``int`` (``²``, ``--5``, 5,000 digits) raised
    a bare ValueError."""

    @pytest.mark.parametrize("seq", ["--5", "²", "9" * 5000])
    def test_a_seq_of_the_generic_log_is_a_bad_value(self, seq: str) -> None:
        rows = [{"opportunity_id": "A", "at": "2024-01-05T09:00:00Z", "stage": "won", "seq": seq}]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert result.events == ()
        assert _refused(result) == [("bad_value", (1,))]

    @pytest.mark.parametrize("stage", ["²", "9" * 5000])
    def test_a_pipedrive_stage_id_without_a_stage_table(self, stage: str) -> None:
        rows = [
            {"deal_id": "7", "change_time": "2024-01-01T00:00:00Z",
             "changed_field_key": "add_time", "new_value": "2024-01-01T00:00:00Z"},
            {"deal_id": "7", "change_time": "2024-01-01T00:00:00Z",
             "changed_field_key": "stage_id", "new_value": stage},
        ]  # fmt: skip
        result = import_pipedrive(rows, as_of=AS_OF)
        assert [f.code for f in result.findings] == ["unnamed_stages", "inferred_process"]
        assert [e.stage for e in result.events] == [result.events[0].stage]

    def test_a_json_lines_log_with_a_huge_integer_is_an_event_log_error(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "log.jsonl"
        path.write_text('{"opportunity_id": "A", "seq": ' + "9" * 5000 + "}\n")
        with pytest.raises(EventLogError, match="line 1"):
            read_events(path)

    def test_a_csv_log_with_a_huge_seq_is_an_event_log_error(self, tmp_path: Path) -> None:
        path = tmp_path / "log.csv"
        row = dict.fromkeys(EVENT_COLUMNS, "")
        row["seq"] = "9" * 5000
        path.write_text(",".join(EVENT_COLUMNS) + "\n" + ",".join(row.values()) + "\n")
        with pytest.raises(EventLogError, match=r"row 2: seq .* 5000 digits"):
            read_events(path)

    def test_a_csv_log_with_a_huge_integer_in_its_details_is_an_event_log_error(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "log.csv"
        row = dict.fromkeys(EVENT_COLUMNS, "")
        row["seq"], row["details"] = "1", '"{""a"": ' + "9" * 5000 + '}"'
        path.write_text(",".join(EVENT_COLUMNS) + "\n" + ",".join(row.values()) + "\n")
        with pytest.raises(EventLogError, match="row 2: column 'details' is not JSON"):
            read_events(path)


class TestNanosecondTimestamps:
    """A nanosecond column (pandas' default, and Parquet files it writes) gave events whose
    ``at`` was a pandas ``Timestamp``: rows a nanosecond apart were ordered as distinct
    instants, then stored as one instant and read back unequal."""

    def _frame(self) -> Any:
        pd = pytest.importorskip("pandas")
        return pd.DataFrame(
            {
                "opportunity_id": ["A", "A"],
                "at": pd.to_datetime([1704067200000000001, 1704067200000000002], utc=True),
                "stage": ["lead_generation", "qualification"],
            }
        )

    def test_a_pandas_column_is_read_to_the_microsecond(self, tmp_path: Path) -> None:
        result = import_log(self._frame(), process=b2b(), as_of=AS_OF)
        assert {type(e.at) for e in result.events} == {datetime}
        assert [f.code for f in result.findings] == ["tied_timestamps"]
        store = SQLiteStore(tmp_path / "s.sqlite")
        store.append(result.events)
        assert tuple(store.load("A")) == result.events

    def test_a_parquet_column_is_read_to_the_microsecond(self, tmp_path: Path) -> None:
        pytest.importorskip("pyarrow")
        path = tmp_path / "log.parquet"
        self._frame().to_parquet(path)
        result = import_log(path, process=b2b(), as_of=AS_OF)
        assert [e.at for e in result.events] == [datetime(2024, 1, 1, tzinfo=timezone.utc)] * 2
        assert {type(e.at) for e in result.events} == {datetime}


class TestNestedCells:
    """A list, struct or binary cell (a frame or Parquet column) was read as its Python text:
    deal ``"['A']"``, actor ``"[1]"``."""

    @pytest.mark.parametrize("column", ["opportunity_id", "actor", "reason"])
    @pytest.mark.parametrize("value", [["A"], {"a": 1}, b"A"])
    def test_the_row_is_a_bad_value(self, column: str, value: Any) -> None:
        rows = [
            {"opportunity_id": "A", "at": "2024-01-05T09:00:00Z", "stage": "lead_generation"},
            {"opportunity_id": "A", "at": "2024-01-06T09:00:00Z", "stage": "qualification"},
        ]
        rows[1][column] = value
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert _refused(result) == [("bad_value", (2,))]
        assert column in result.findings[0].message
        assert [e.stage for e in result.events] == ["lead_generation"]

    def test_a_parquet_list_column_of_ids(self, tmp_path: Path) -> None:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        table = pa.table(
            {"opportunity_id": [["A"]], "at": ["2024-01-05T09:00:00Z"], "stage": ["won"]}
        )
        pq.write_table(table, tmp_path / "log.parquet")
        result = import_log(tmp_path / "log.parquet", process=b2b(), as_of=AS_OF)
        assert (result.events, _refused(result)) == ((), [("bad_value", (1,))])


class TestEvidenceMaps:
    """TOML nested too deep raised the parser's bare RecursionError."""

    def test_deep_toml_is_a_definition_error(self, tmp_path: Path) -> None:
        text = "x = " + "[" * 100_000 + "]" * 100_000
        with pytest.raises(DefinitionError, match="nested too deep"):
            evidence_map_from_toml(text)
        path = tmp_path / "map.toml"
        path.write_text(text)
        with pytest.raises(DefinitionError, match="nested too deep"):
            load_evidence_map(path)


class TestCalendarIds:
    """A UID with a line break (``\\n`` escaped in the file) was read, then recording the
    engagement refused the whole batch; two UIDs were read as the text of a Python list."""

    def test_a_uid_with_a_line_break_is_a_bad_value(self) -> None:
        result = read_icalendar(
            _calendar("DTSTART:20240101T100000Z").replace(b"UID:u1", b"UID:a\\nb")
        )
        assert result.engagements == ()
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (1,))]
        assert "UID" in result.findings[0].message

    def test_two_uids_are_a_bad_value(self) -> None:
        result = read_icalendar(_calendar("DTSTART:20240101T100000Z", "UID:u2"))
        assert result.engagements == ()
        assert [(f.code, f.rows) for f in result.findings] == [("bad_value", (1,))]


class TestHubspotApiObjects:
    """Deal objects not shaped like the API's raised AttributeError or TypeError."""

    @pytest.mark.parametrize(
        "deal",
        [
            5,
            {"id": "1", "propertiesWithHistory": [1]},
            {"id": "1", "propertiesWithHistory": {"dealstage": "closedwon"}},
            {"id": "1", "propertiesWithHistory": {"dealstage": [5]}},
            {"id": "1", "propertiesWithHistory": {"dealstage": 5}},
        ],
    )
    def test_it_is_a_malformed_row(self, deal: Any) -> None:
        with pytest.raises(ImportProblemError) as caught:
            import_hubspot_history(
                hubspot_history_rows([deal]), won=["closedwon"], lost=["closedlost"]
            )
        assert [f.code for f in caught.value.findings] == ["malformed_row"]
        assert "deal 1" in caught.value.findings[0].message


class TestPipedriveFieldsTable:
    """Options JSON nested too deep or with a 5,000-digit id raised RecursionError or
    ValueError; they are skipped like any unreadable options (their ids stay unlabelled)."""

    @pytest.mark.parametrize(
        "options", ["[" * 100_000, '[{"id": ' + "9" * 5000 + ', "label": "x"}]']
    )
    def test_unreadable_options_are_skipped(self, options: str) -> None:
        text = 'FIELD_KEY,FIELD_VALUE_OPTIONS\nlost_reason,"' + options.replace('"', '""') + '"\n'
        assert read_pipedrive_fields(io.StringIO(text)) == {}


class TestSalesforceIsDeleted:
    """An ``IsDeleted`` that is neither true nor false (a localized ``WAHR``) was read as
    false: a deleted row was used."""

    @pytest.mark.parametrize("flag", ["WAHR", "Y", "deleted"])
    def test_it_is_a_bad_value(self, flag: str) -> None:
        rows = _salesforce()
        rows[1]["IsDeleted"] = flag
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert _refused(result) == [("bad_value", (2,))]
        assert {e.opportunity_id for e in result.events} == {"006B"}

    @pytest.mark.parametrize(
        ("flag", "codes"), [("false", []), ("0", []), ("TRUE", ["deleted_row"])]
    )
    def test_true_and_false_are_read_as_before(self, flag: str, codes: list[str]) -> None:
        rows = _salesforce()
        rows[1]["IsDeleted"] = flag
        result = import_salesforce_history(rows, process=b2b(), as_of=AS_OF)
        assert [f.code for f in result.findings] == codes


class TestHeadersEqualIgnoringCase:
    """Two headers equal ignoring case (``STAGE``, ``Stage``) and neither exact: the first was
    used and the other silently ignored."""

    def test_they_are_refused_as_duplicate_columns(self) -> None:
        export = "opportunity_id,at,STAGE,Stage\nA,2024-01-01T00:00:00Z,lead_generation,won\n"
        with pytest.raises(ImportProblemError) as caught:
            import_log(io.StringIO(export), process=b2b(), as_of=AS_OF)
        ((code, message),) = [(f.code, f.message) for f in caught.value.findings]
        assert code == "duplicate_columns"
        assert "'STAGE', 'Stage'" in message

    def test_naming_one_with_columns_imports_it(self) -> None:
        export = "opportunity_id,at,STAGE,Stage\nA,2024-01-01T00:00:00Z,lead_generation,won\n"
        result = import_log(
            io.StringIO(export), process=b2b(), as_of=AS_OF, columns={"stage": "Stage"}
        )
        assert [e.stage for e in result.events] == ["won"]

    def test_an_exact_header_still_wins(self) -> None:
        export = "opportunity_id,at,stage,Stage\nA,2024-01-01T00:00:00Z,lead_generation,won\n"
        result = import_log(io.StringIO(export), process=b2b(), as_of=AS_OF)
        assert [e.stage for e in result.events] == ["lead_generation"]


class TestCalendarFloatingTimes:
    """A floating time in a daylight-saving gap or fold was placed by guess under
    ``assume_zone``; every other reader refuses it."""

    @pytest.mark.parametrize("start", ["20240331T023000", "20241027T023000"])
    def test_it_is_unparseable(self, start: str) -> None:
        result = read_icalendar(_calendar(f"DTSTART:{start}"), assume_zone="Europe/Berlin")
        assert result.engagements == ()
        assert [(f.code, f.rows) for f in result.findings] == [("unparseable_timestamp", (1,))]
        assert "explicit offset" in result.findings[0].message

    def test_an_ordinary_floating_time_is_read_in_the_zone(self) -> None:
        result = read_icalendar(_calendar("DTSTART:20240101T100000"), assume_zone="Europe/Berlin")
        assert result.engagements[0].occurred_at == datetime(2024, 1, 1, 9, tzinfo=timezone.utc)


class TestWideHeaders:
    """A wide export without a required column echoed its whole header: 2 MB of message for
    200,000 columns."""

    def test_the_missing_columns_message_is_cut(self) -> None:
        header = ",".join(f"c{i}" for i in range(200_000))
        with pytest.raises(ImportProblemError) as caught:
            import_log(io.StringIO(header + "\n"), process=b2b(), as_of=AS_OF)
        (finding,) = caught.value.findings
        assert finding.code == "missing_columns"
        assert len(finding.message) < 1000
        assert "'c0'" in finding.message
        assert "'c199999'" in finding.message
        assert "characters left out" in finding.message


def test_a_json_lines_log_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    """CSV took a BOM; JSON Lines refused it ("Unexpected UTF-8 BOM"), so did the import."""
    from stagegate.cli import main
    from stagegate.simulate import simulate

    sim = simulate(30, seed=2, process=b2b())
    plain, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    write_events(plain, [e for e in sim.events if e.at <= sim.as_of])
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert read_events(marked) == read_events(plain)
    assert main(["import", str(marked), "--store", str(tmp_path / "s.sqlite"), "--quiet"]) == 0
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        assert len(store.to_frame(columns=["seq"])) == len(read_events(plain))


@given(st.text(max_size=300))
def test_a_stage_id_made_from_any_label_is_one_a_definition_may_hold(label: str) -> None:
    """Pipedrive's numeric stage ids became ids "1", "2": a store saved that inferred process and
    could not load it back (the schema wants ids that start with a letter)."""
    import re

    from stagegate.definition import schema
    from stagegate.io._stages import slug

    pattern = schema()["$defs"]["id"]["pattern"]
    assert re.search(pattern, slug(label)), slug(label)
