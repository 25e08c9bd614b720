"""Reading exports: the malformed-file corpus, file objects, Parquet, and the canonical log."""

from __future__ import annotations

import io
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from stagegate.errors import EventLogError, InvalidCommandError
from stagegate.io import (
    EVENT_COLUMNS,
    ImportProblemError,
    import_log,
    import_salesforce_history,
    read_events,
    write_events,
)
from stagegate.opportunity import Opportunity
from stagegate.templates import b2b

AS_OF = datetime(2030, 1, 1, tzinfo=timezone.utc)
HEADER = "OpportunityId,CreatedDate,StageName,Amount\n"
GOOD = "006A,2024-03-01T09:00:00Z,Lead generation,10\n006A,2024-03-02T09:00:00Z,Lost,10\n"

# name -> (file bytes, finding code, a fragment of the message, options)
CORPUS: dict[str, tuple[bytes, str, str, dict[str, object]]] = {
    "wrong_columns": (b"Id,Date,Stage\n1,2024-01-01T00:00Z,x\n", "missing_columns", "columns=", {}),
    "semicolons": (
        HEADER.replace(",", ";").encode() + b"006A;2024-03-01T09:00:00Z;Lead generation;1\n",
        "missing_columns",
        "delimiter=",
        {},
    ),
    "cp1252": (
        (HEADER + "006A,2024-03-01T09:00:00Z,Étude,1\n").encode("cp1252"),
        "bad_encoding",
        "byte offset 69 (line 2)",
        {},
    ),
    "utf16": ((HEADER + GOOD).encode("utf-16"), "bad_encoding", "byte offset 0", {}),
    "empty": (b"", "empty_file", "empty", {}),
    "blank": (b"\n \n", "empty_file", "empty", {}),
    "header_only": (HEADER.encode(), "no_rows", "no rows", {}),
    "huge_field": (
        (HEADER + '006A,2024-03-01T09:00:00Z,"' + "x" * 2_000_000 + "\n").encode(),
        "field_too_large",
        "1,000,000 characters",
        {},
    ),
    "nul": (
        (HEADER + "006A,2024-03-01T09:00:00Z,Le\x00ad,1\n").encode(),
        "bad_encoding",
        "NUL",
        {},
    ),
    "ragged": (
        (HEADER + GOOD + "006A,2024-03-03T09:00:00Z\n").encode(),
        "malformed_row",
        "fields",
        {},
    ),
    "duplicate_columns": (
        b"OpportunityId,CreatedDate,StageName,StageName\n1,2024-01-01T00:00Z,a,b\n",
        "duplicate_columns",
        "StageName",
        {},
    ),
    "future": (
        (HEADER + GOOD + "006A,2099-03-03T09:00:00Z,Won,10\n").encode(),
        "future_date",
        "2099-03-03",
        {},
    ),
    "mixed_zones": (
        (
            HEADER + "006A,2024-03-01T09:00:00Z,Lead generation,1\n"
            "006A,2024-03-02 09:00:00,Lost,1\n"
        ).encode(),
        "mixed_zones",
        "Europe/Paris",
        {"assume_zone": "Europe/Paris"},
    ),
    "naive": (
        (HEADER + "006A,2024-03-01 09:00:00,Lead generation,1\n").encode(),
        "naive_timestamp",
        "assume_zone=",
        {},
    ),
    "unparseable_timestamp": (
        (HEADER + GOOD + "006A,03/04/2024,Won,10\n").encode(),
        "unparseable_timestamp",
        "ISO 8601",
        {},
    ),
    "dst_gap": (
        (HEADER + "006A,2024-03-31 02:30:00,Lead generation,1\n").encode(),
        "unparseable_timestamp",
        "daylight-saving",
        {"assume_zone": "Europe/Berlin"},
    ),
    "bad_amount": (
        (HEADER + GOOD + "006A,2024-03-03T09:00:00Z,Won,1.234,50\n").encode(),
        "malformed_row",
        "fields",
        {},
    ),
    "bad_amount_text": (
        (HEADER + GOOD + "006A,2024-03-03T09:00:00Z,Won,lots\n").encode(),
        "bad_value",
        "'lots'",
        {},
    ),
    "missing_id": (
        (HEADER + GOOD + ",2024-03-03T09:00:00Z,Won,1\n").encode(),
        "missing_id",
        "id",
        {},
    ),
    "duplicate_row": (
        (HEADER + GOOD + "006A,2024-03-02T09:00:00Z,Lost,10\n").encode(),
        "duplicate_row",
        "repeats row 3",
        {},
    ),
    "unknown_stage": (
        (HEADER + GOOD.replace("Lost", "Perdu")).encode(),
        "unknown_stage",
        "Perdu",
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
class TestMalformedCorpus:
    def test_strict_import_refuses_the_file_with_a_clear_finding(self, name, tmp_path):
        content, code, fragment, options = CORPUS[name]
        path = tmp_path / f"{name}.csv"
        path.write_bytes(content)
        with pytest.raises(ImportProblemError) as caught:
            import_salesforce_history(path, process=b2b(), as_of=AS_OF, strict=True, **options)
        found = {f.code: f for f in caught.value.findings}
        assert code in found, caught.value.findings
        assert fragment in found[code].message
        assert fragment in str(caught.value) or code in str(caught.value)

    def test_every_row_is_used_or_named_in_a_finding(self, name, tmp_path):
        content, _, _, options = CORPUS[name]
        path = tmp_path / f"{name}.csv"
        path.write_bytes(content)
        try:
            result = import_salesforce_history(path, process=b2b(), as_of=AS_OF, **options)
        except ImportProblemError:
            return  # refused whole: no partial result
        unused = {row for f in result.findings if not f.used for row in f.rows}
        assert result.rows_read == result.rows_used + len(unused)


class TestSources:
    def test_a_text_file_object_is_read(self):
        result = import_salesforce_history(io.StringIO(HEADER + GOOD), process=b2b(), as_of=AS_OF)
        assert 2 == len(result.events)

    def test_a_binary_file_object_with_a_bom_is_read(self):
        data = io.BytesIO(("\ufeff" + HEADER + GOOD).encode("utf-8"))
        result = import_salesforce_history(data, process=b2b(), as_of=AS_OF)
        assert 2 == len(result.events)

    def test_a_named_encoding_is_used(self):
        data = io.BytesIO(
            (HEADER + GOOD.replace("Lead generation", "Lead generation")).encode("cp1252")
        )
        result = import_salesforce_history(data, process=b2b(), as_of=AS_OF, encoding="cp1252")
        assert 2 == len(result.events)

    def test_an_unknown_encoding_name_is_refused(self):
        with pytest.raises(InvalidCommandError, match="unknown encoding"):
            import_salesforce_history(io.BytesIO(b"x"), encoding="nope-8")

    def test_a_missing_file_is_refused_clearly(self, tmp_path):
        with pytest.raises(ImportProblemError, match="cannot open"):
            import_salesforce_history(tmp_path / "absent.csv")

    def test_headers_match_ignoring_case_and_space(self):
        data = io.StringIO(" opportunityid , createddate,STAGENAME\n006A,2024-03-01T09:00Z,Lost\n")
        result = import_salesforce_history(data, process=b2b(), as_of=AS_OF)
        assert ["lost"] == [e.stage for e in result.events]

    def test_rows_that_are_not_mappings_are_refused(self):
        with pytest.raises(ImportProblemError, match="not a mapping"):
            import_salesforce_history([("006A",)])

    def test_an_object_that_is_no_source_is_refused(self):
        with pytest.raises(InvalidCommandError, match="cannot read"):
            import_salesforce_history(42)  # type: ignore[arg-type]

    def test_parquet_files_are_read(self, tmp_path):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / "history.parquet"
        pq.write_table(
            pa.table(
                {
                    "OpportunityId": ["006A", "006A"],
                    "CreatedDate": [
                        datetime(2024, 3, 1, 9, tzinfo=timezone.utc),
                        datetime(2024, 3, 2, 9, tzinfo=timezone.utc),
                    ],
                    "StageName": ["Lead generation", "Won"],
                    "Amount": [Decimal("10.50"), Decimal("11.00")],
                    "CloseDate": [date(2024, 5, 1), date(2024, 5, 1)],
                }
            ),
            path,
        )
        result = import_salesforce_history(path, process=b2b(), as_of=AS_OF)
        assert [Decimal("10.50"), Decimal("11.00"), Decimal("11.00")] == [
            e.amount for e in result.events
        ]

    def test_a_corrupt_parquet_file_is_refused(self, tmp_path):
        path = tmp_path / "bad.parquet"
        path.write_bytes(b"PAR1 not really")
        with pytest.raises(ImportProblemError, match="not a readable Parquet file"):
            import_salesforce_history(path)

    def test_parquet_without_pyarrow_says_which_extra_to_install(self, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
        path = tmp_path / "x.parquet"
        path.write_bytes(b"PAR1")
        with pytest.raises(ImportProblemError, match=r"stagegate\[parquet\]"):
            import_salesforce_history(path)


def _events():
    t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    deal = Opportunity.open(b2b(), "acme-1", at=t0, actor="ana", amount=12_000)
    deal.record_deliverable(
        "lead_record", at=t0, actor="ana", evidence={"source": "web", "contact": "k@a.example"}
    )
    deal.advance(at=t0 + timedelta(days=2), actor="ana")
    deal.reschedule(date(2026, 6, 30), at=t0 + timedelta(days=3), actor="ana", reason="budget")
    deal.lose(at=t0 + timedelta(days=9), actor="bo", reason='Prix, trop élevé; "non"')
    return deal.events


class TestCanonicalLog:
    @pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
    def test_written_events_read_back_equal(self, tmp_path, suffix):
        if suffix == ".parquet":
            pytest.importorskip("pyarrow")
        events = _events()
        path = tmp_path / f"log{suffix}"
        assert len(events) == write_events(path, events)
        assert events == read_events(path)

    def test_a_parquet_log_with_typed_columns_reads_as_its_text_would(self, tmp_path):
        # what a data tool writes: instants as timestamps (any zone), exact amounts as
        # decimals, close dates as dates; the events are those of the text columns
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        events = _events()
        path = tmp_path / "log.parquet"
        write_events(path, events)
        table = pq.read_table(path)
        berlin = [e.at.astimezone(ZoneInfo("Europe/Berlin")) for e in events]
        typed = {
            "at": pa.array(berlin, pa.timestamp("us", tz="Europe/Berlin")),
            "amount": pa.array([e.amount for e in events], pa.decimal128(12, 0)),
            "close_date": pa.array([e.close_date for e in events], pa.date32()),
        }
        for name, column in typed.items():
            table = table.set_column(table.schema.get_field_index(name), name, column)
        pq.write_table(table, path)
        assert events == read_events(path)

    def test_a_parquet_timestamp_without_a_zone_is_refused(self, tmp_path):
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / "log.parquet"
        write_events(path, _events())
        table = pq.read_table(path)
        naive = pa.array([e.at.replace(tzinfo=None) for e in _events()], pa.timestamp("us"))
        pq.write_table(table.set_column(table.schema.get_field_index("at"), "at", naive), path)
        with pytest.raises(EventLogError, match=r"row 1: column 'at' .* without a time zone"):
            read_events(path)

    def test_a_written_log_imports_as_a_stage_history(self, tmp_path):
        path = tmp_path / "log.csv"
        write_events(path, _events())
        result = import_log(path, process=b2b(), as_of=AS_OF)
        assert ["lead_generation", "qualification", "qualification", "lost"] == [
            e.stage for e in result.events
        ]
        assert 'Prix, trop élevé; "non"' == result.events[-1].reason

    def test_the_csv_columns_are_the_event_fields(self, tmp_path):
        path = tmp_path / "log.csv"
        write_events(path, _events())
        assert ",".join(EVENT_COLUMNS) == path.read_text("utf-8").splitlines()[0]

    def test_an_unknown_format_is_refused(self, tmp_path):
        with pytest.raises(InvalidCommandError, match=r"\.jsonl"):
            write_events(tmp_path / "log.txt", _events())

    def test_only_events_are_written(self, tmp_path):
        with pytest.raises(InvalidCommandError, match="Event objects"):
            write_events(tmp_path / "log.csv", [{"seq": 1}])  # type: ignore[list-item]

    def test_a_malformed_record_names_its_line(self, tmp_path):
        path = tmp_path / "log.jsonl"
        write_events(path, _events())
        lines = path.read_text("utf-8").splitlines()
        path.write_text("\n".join([lines[0], lines[1].replace('"seq": 2', '"seq": 0')]) + "\n")
        with pytest.raises(EventLogError, match="line 2"):
            read_events(path)

    def test_a_line_that_is_not_json_is_refused(self, tmp_path):
        path = tmp_path / "log.jsonl"
        path.write_text("{oops\n")
        with pytest.raises(EventLogError, match="line 1"):
            read_events(path)

    def test_bad_json_in_a_csv_cell_names_its_row(self, tmp_path):
        path = tmp_path / "log.csv"
        write_events(path, _events())
        text = path.read_text("utf-8").replace('"{""', '"{{""', 1)
        path.write_text(text, "utf-8")
        with pytest.raises(EventLogError, match="row 3"):
            read_events(path)
