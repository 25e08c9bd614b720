"""Data frames in and out of the importers, and the owner and segment columns they carry."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate.errors import InvalidCommandError
from stagegate.events import thaw
from stagegate.io import (
    ImportProblemError,
    import_hubspot_history,
    import_log,
    import_pipedrive,
    import_salesforce_field_history,
    import_salesforce_history,
    import_snapshot,
)
from stagegate.io._read import is_empty

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

MAVEN = Path(__file__).parents[1] / ".." / "shared" / "data" / "maven-crm"
UTC = timezone.utc
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
MAVEN_OPTIONS: dict[str, Any] = {
    "stages": ["Prospecting", "Engaging", "Won", "Lost"],
    "entered": {"Engaging": "engage_date"},
    "columns": {
        "stage": "deal_stage",
        "closed_at": "close_date",
        "amount": "close_value",
        "owner": "sales_agent",
    },
    "assume_zone": "UTC",
}

LOG_ROWS = [
    {"opportunity_id": "A", "at": "2024-01-05T09:00:00Z", "stage": "Lead", "amount": "100",
     "close_date": "2024-03-31", "owner": "ana"},
    {"opportunity_id": "A", "at": "2024-02-01T09:00:00Z", "stage": "Demo", "amount": "",
     "close_date": "", "owner": "ben"},
    {"opportunity_id": "A", "at": "2024-03-01T09:00:00Z", "stage": "Won", "amount": "150",
     "close_date": "2024-03-01", "owner": "ben"},
    {"opportunity_id": "B", "at": "2024-01-10T09:00:00Z", "stage": "Lead", "amount": "",
     "close_date": "", "owner": ""},
    {"opportunity_id": "B", "at": "2024-01-20T09:00:00Z", "stage": "Lost", "amount": "70",
     "close_date": "", "owner": "cy"},
]  # fmt: skip


def _blank_to_nan(rows: list[dict[str, str]]) -> Any:
    frame = pd.DataFrame(rows)
    return frame.replace("", float("nan"))


class TestFramesIn:
    def test_a_pandas_frame_with_nan_imports_as_its_rows_with_blanks(self) -> None:
        expected = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        actual = import_log(_blank_to_nan(LOG_ROWS), as_of=AS_OF, order=["Lead", "Demo"])
        assert expected.events == actual.events
        assert expected.findings == actual.findings
        assert (5, 5) == (actual.rows_read, actual.rows_used)

    def test_records_of_a_pandas_frame_read_nan_as_empty(self) -> None:
        records = _blank_to_nan(LOG_ROWS).to_dict("records")
        assert any(isinstance(v, float) and math.isnan(v) for r in records for v in r.values())
        result = import_log(records, as_of=AS_OF, order=["Lead", "Demo"])
        assert [] == [f.code for f in result.findings if f.code == "bad_value"]
        assert 5 == result.rows_used

    @pytest.mark.parametrize("kind", ["polars", "polars-lazy", "arrow", "batch", "narwhals"])
    def test_polars_and_arrow_frames_import_as_their_rows(self, kind: str) -> None:
        frame = pl.DataFrame(LOG_ROWS).with_columns(
            pl.when(pl.col(pl.String) == "").then(None).otherwise(pl.col(pl.String)).name.keep()
        )
        data: Any = {
            "polars": frame,
            "polars-lazy": frame.lazy(),
            "arrow": frame.to_arrow(),
            "batch": frame.to_arrow().to_batches()[0],
        }.get(kind)
        if kind == "narwhals":
            nw = pytest.importorskip("narwhals")
            data = nw.from_native(frame)
        expected = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        actual = import_log(data, as_of=AS_OF, order=["Lead", "Demo"])
        assert expected.events == actual.events

    def test_typed_frame_columns_are_read_as_their_values(self) -> None:
        frame = pd.DataFrame(
            {
                "opportunity_id": ["A", "A"],
                "at": pd.to_datetime(["2024-01-05T09:00:00Z", "2024-02-01T10:30:00Z"]),
                "stage": ["Lead", "Won"],
                "amount": [100.5, float("nan")],
                "close_date": [date(2024, 3, 31), None],
            }
        )
        result = import_log(frame, as_of=AS_OF)
        assert [
            (datetime(2024, 1, 5, 9, tzinfo=UTC), 100.5),
            (datetime(2024, 2, 1, 10, 30, tzinfo=UTC), 100.5),
        ] == [(e.at, float(e.amount or 0)) for e in result.events]
        assert date(2024, 3, 31) == result.events[-1].close_date

    def test_nat_is_an_empty_instant(self) -> None:
        frame = pd.DataFrame(
            {
                "opportunity_id": ["A", "B"],
                "at": pd.to_datetime(["2024-01-05T09:00:00Z", None]),
                "stage": ["Lead", "Won"],
            }
        )
        result = import_log(frame, as_of=AS_OF, won=["Won"], order=["Lead"])
        (finding,) = result.findings_of("unparseable_timestamp")
        assert (2,) == finding.rows
        assert "(at is empty)" in finding.what

    def test_a_frame_with_a_repeated_column_is_refused(self) -> None:
        frame = pd.DataFrame([["A", "2024-01-05T09:00:00Z", "Lead"]], columns=["id", "at", "id"])
        with pytest.raises(ImportProblemError) as caught:
            import_log(frame, columns={"opportunity_id": "id"})
        assert ["duplicate_columns"] == [f.code for f in caught.value.findings]

    def test_empty_cells_are_the_ones_that_mean_no_value(self) -> None:
        empties = [None, float("nan"), pd.NaT, pd.NA]
        values = ["", 0, 0.0, "nan", False]
        assert [True] * 4 + [False] * 5 == [is_empty(v) for v in (*empties, *values)]

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["A", "B", "C"]),
                st.integers(1, 28),
                st.sampled_from(["Lead", "Demo", "Won", "Lost"]),
                st.one_of(st.none(), st.integers(0, 10_000)),
            ),
            min_size=1,
            max_size=12,
        )
    )
    def test_a_pandas_frame_imports_like_the_same_dict_rows(
        self, cells: list[tuple[str, int, str, int | None]]
    ) -> None:
        rows = [
            {
                "opportunity_id": oid,
                "at": f"2024-01-{day:02d}T09:00:00Z",
                "stage": stage,
                "amount": "" if value is None else str(value),
            }
            for oid, day, stage, value in cells
        ]
        frame = pd.DataFrame(
            {
                "opportunity_id": [r["opportunity_id"] for r in rows],
                "at": [r["at"] for r in rows],
                "stage": [r["stage"] for r in rows],
                "amount": [float("nan") if v is None else v for *_, v in cells],
            }
        )
        options: dict[str, Any] = {"as_of": AS_OF, "order": ["Lead", "Demo"], "won": ("Won",)}
        expected, actual = import_log(rows, **options), import_log(frame, **options)
        assert expected.events == actual.events
        assert [(f.code, f.rows) for f in expected.findings] == [
            (f.code, f.rows) for f in actual.findings
        ]


SEGMENT_KINDS = ["reassigned", "attribute_set"]
"""The events an importer records for owner and segment changes."""


class TestFramesOut:
    def test_the_table_has_one_row_per_event_with_values_in_force(self) -> None:
        result = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        table = result.to_frame()
        columns = ["opportunity_id", "seq", "stage", "amount", "close_date", "kind", "owner"]
        assert [
            ("A", 1, "lead", 100.0, date(2024, 3, 31), "opened", "ana"),
            ("A", 2, "lead", 100.0, date(2024, 3, 31), "reassigned", "ana"),
            ("A", 3, "lead", 100.0, date(2024, 3, 31), "reassigned", "ben"),
            ("A", 4, "demo", 100.0, date(2024, 3, 31), "stage_changed", "ben"),
            ("A", 5, "demo", 150.0, date(2024, 3, 31), "amount_changed", "ben"),
            ("A", 6, "demo", 150.0, date(2024, 3, 1), "rescheduled", "ben"),
            ("A", 7, "won", 150.0, date(2024, 3, 1), "stage_changed", "ben"),
        ] == table.select(columns).rows()[:7]
        assert len(result.events) == table.height
        owners = ["ana", "ana", "ben", "ben", "ben", "ben", "ben", None, "cy", "cy", "cy"]
        assert owners == table["owner"].to_list()

    @pytest.mark.parametrize("backend", ["polars", "pandas", "pyarrow"])
    def test_every_backend_holds_the_same_table(self, backend: str) -> None:
        result = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        frame = result.to_frame(backend=backend)
        as_polars = pl.from_pandas(frame) if backend == "pandas" else pl.DataFrame(frame)
        expected = result.to_frame()
        assert expected.columns == as_polars.columns
        assert expected["at"].to_list() == [
            t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in as_polars["at"].to_list()
        ]
        assert expected["amount"].to_list() == as_polars["amount"].to_list()
        assert expected["owner"].to_list() == as_polars["owner"].to_list()

    def test_pandas_instants_are_utc(self) -> None:
        frame = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"]).to_frame("pandas")
        assert "datetime64[us, UTC]" == str(frame["at"].dtype)
        assert datetime(2024, 1, 5, 9, tzinfo=UTC) == frame["at"].iloc[0].to_pydatetime()

    def test_an_unknown_backend_is_refused_with_the_choices(self) -> None:
        result = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        with pytest.raises(InvalidCommandError, match="polars, pandas, pyarrow"):
            result.to_frame("excel")

    def test_an_import_without_segments_has_no_segment_columns(self) -> None:
        rows = [{k: v for k, v in r.items() if k != "owner"} for r in LOG_ROWS]
        result = import_log(rows, as_of=AS_OF, order=["Lead", "Demo"])
        assert () == result.segment_names
        assert "owner" not in result.to_frame().columns


class TestSegments:
    def test_log_owner_changes_are_kept_from_their_instant_on(self) -> None:
        result = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"])
        assert (
            (datetime(2024, 1, 5, 9, tzinfo=UTC), "owner", "ana"),
            (datetime(2024, 2, 1, 9, tzinfo=UTC), "owner", "ben"),
        ) == result.segments["A"]
        assert ((datetime(2024, 1, 20, 9, tzinfo=UTC), "owner", "cy"),) == result.segments["B"]

    def test_named_columns_become_segments(self) -> None:
        rows = [
            dict(r, **{"Sales Team": "emea" if r["opportunity_id"] == "A" else ""})
            for r in LOG_ROWS
        ]
        result = import_log(rows, as_of=AS_OF, order=["Lead", "Demo"], segments=["Sales Team"])
        assert ("owner", "sales_team") == result.segment_names
        table = result.to_frame().filter(~pl.col("kind").is_in(SEGMENT_KINDS))
        assert ["emea"] * 5 + [None] * 3 == table["sales_team"].to_list()
        recorded = [
            (e.subject, thaw(e.details)) for e in result.events if e.kind == "attribute_set"
        ]
        assert [("sales_team", {"value": "emea"})] == recorded

    def test_a_segment_may_not_take_a_table_column_name(self) -> None:
        rows = [dict(r, Amount="1") for r in LOG_ROWS]
        with pytest.raises(InvalidCommandError, match="'amount'"):
            import_log(rows, as_of=AS_OF, order=["Lead", "Demo"], segments=["Amount"])

    def test_a_missing_segment_column_is_a_missing_columns_finding(self) -> None:
        with pytest.raises(ImportProblemError) as caught:
            import_log(LOG_ROWS, as_of=AS_OF, segments=["region"])
        assert ["missing_columns"] == [f.code for f in caught.value.findings]

    def test_owners_table_adds_the_segments_of_each_owner(self) -> None:
        owners = [{"name": "ana", "team": "north"}, {"name": "ben", "team": "south"}]
        result = import_log(LOG_ROWS, as_of=AS_OF, order=["Lead", "Demo"], owners=owners)
        table = result.to_frame().filter(~pl.col("kind").is_in(SEGMENT_KINDS))
        assert ["north", "south", "south", "south", "south", None, None, None] == table[
            "team"
        ].to_list()

    def test_salesforce_owner_id_column_is_the_owner(self) -> None:
        rows = [
            {"OpportunityId": "006A", "CreatedDate": "2024-03-01T09:00:00Z",
             "StageName": "Prospecting", "OwnerId": "005X"},
            {"OpportunityId": "006A", "CreatedDate": "2024-03-20T09:00:00Z",
             "StageName": "Closed Won", "OwnerId": "005Y"},
        ]  # fmt: skip
        result = import_salesforce_history(rows, as_of=AS_OF)
        table = result.to_frame().filter(~pl.col("kind").is_in(SEGMENT_KINDS))
        assert ["005X", "005Y"] == table["owner"].to_list()
        assert ["005X", "005Y"] == [e.subject for e in result.events if e.kind == "reassigned"]

    def test_salesforce_owner_field_changes_set_the_owner(self) -> None:
        rows = [
            {"OpportunityId": "006B", "Field": "created", "NewValue": "",
             "CreatedDate": "2024-03-01T09:00:00Z"},
            {"OpportunityId": "006B", "Field": "Owner", "NewValue": "005Z",
             "CreatedDate": "2024-03-05T09:00:00Z"},
            {"OpportunityId": "006B", "Field": "StageName", "OldValue": "Prospecting",
             "NewValue": "Closed Lost", "CreatedDate": "2024-03-09T10:00:00Z"},
        ]  # fmt: skip
        result = import_salesforce_field_history(rows, as_of=AS_OF)
        assert ((datetime(2024, 3, 5, 9, tzinfo=UTC), "owner", "005Z"),) == result.segments["006B"]

    def test_hubspot_owner_revisions_set_the_owner(self) -> None:
        rows = [
            {"deal_id": "9", "property": "dealstage", "value": "appointmentscheduled",
             "timestamp": "2024-03-01T09:00:00Z"},
            {"deal_id": "9", "property": "hubspot_owner_id", "value": "77",
             "timestamp": "2024-03-01T09:00:00Z"},
            {"deal_id": "9", "property": "hubspot_owner_id", "value": "78",
             "timestamp": "2024-04-01T09:00:00Z"},
            {"deal_id": "9", "property": "dealstage", "value": "closedwon",
             "timestamp": "2024-05-01T09:00:00Z"},
        ]  # fmt: skip
        result = import_hubspot_history(rows, as_of=AS_OF)
        table = result.to_frame()
        stages = table.filter(~pl.col("kind").is_in(["field_set", *SEGMENT_KINDS]))
        assert [("appointmentscheduled", "77"), ("closedwon", "78")] == stages.select(
            "stage", "owner"
        ).rows()

    def test_pipedrive_user_id_changes_set_the_owner(self) -> None:
        rows = [
            {"deal_id": "7", "change_time": "2024-04-09 21:32:09",
             "changed_field_key": "add_time", "new_value": "2024-04-09T21:32:09"},
            {"deal_id": "7", "change_time": "2024-04-09 21:32:09",
             "changed_field_key": "user_id", "new_value": "12"},
            {"deal_id": "7", "change_time": "2024-04-20 21:32:09",
             "changed_field_key": "stage_id", "new_value": "1"},
        ]  # fmt: skip
        result = import_pipedrive(
            rows, stages={"1": "Lead In", "2": "Contact Made"}, assume_zone="UTC", as_of=AS_OF
        )
        assert {"12"} == set(result.to_frame()["owner"].to_list())


@pytest.fixture(scope="module")
def from_csv() -> Any:
    if not MAVEN.exists():
        pytest.skip("needs ../shared/data/maven-crm")
    return import_snapshot(MAVEN / "sales_pipeline.csv", **MAVEN_OPTIONS)


@pytest.mark.shared_data
@pytest.mark.skipif(not MAVEN.exists(), reason="needs ../shared/data/maven-crm")
class TestMaven:
    @pytest.mark.parametrize("reader", ["pandas", "polars", "arrow", "records"])
    def test_a_frame_of_the_export_imports_like_the_file(self, reader: str, from_csv: Any) -> None:
        path = MAVEN / "sales_pipeline.csv"
        data: Any = {
            "pandas": lambda: pd.read_csv(path),
            "polars": lambda: pl.read_csv(path),
            "arrow": lambda: pytest.importorskip("pyarrow.csv").read_csv(path),
            "records": lambda: pd.read_csv(path).to_dict("records"),
        }[reader]()
        result = import_snapshot(data, **MAVEN_OPTIONS)
        assert [] == list(result.findings_of("bad_value"))
        assert (from_csv.rows_used, from_csv.events) == (result.rows_used, result.events)
        # the same rows: a CSV file counts its header as row 1, a frame starts at row 1
        assert [(f.code, tuple(r - 1 for r in f.rows)) for f in from_csv.findings] == [
            (f.code, f.rows) for f in result.findings
        ]

    def test_win_rate_by_regional_office_matches_pandas(self) -> None:
        deals = pd.read_csv(MAVEN / "sales_pipeline.csv")
        teams = pd.read_csv(MAVEN / "sales_teams.csv")
        result = import_snapshot(deals, owners=teams, **MAVEN_OPTIONS)
        table = result.to_frame()
        closing = table.filter(pl.col("stage").is_in(["won", "lost"]))
        ours = (
            closing.group_by("regional_office")
            .agg((pl.col("stage") == "won").mean().alias("rate"))
            .sort("regional_office")
        )
        joined = deals.merge(teams, on="sales_agent")
        closed = joined[joined["deal_stage"].isin(["Won", "Lost"])]
        theirs = (closed["deal_stage"] == "Won").groupby(closed["regional_office"]).mean()
        assert list(theirs.index) == ours["regional_office"].to_list()
        assert list(theirs.round(12)) == [round(r, 12) for r in ours["rate"].to_list()]


class TestCommandLine:
    def test_segment_and_owners_flags_carry_the_segments(self, tmp_path: Path) -> None:
        history = tmp_path / "history.csv"
        lines = ["opportunity_id,at,stage,rep,product"] + [
            f"{r['opportunity_id']},{r['at']},{r['stage']},{r['owner']},gtx" for r in LOG_ROWS
        ]
        history.write_text("\n".join(lines) + "\n", encoding="utf-8")
        owners = tmp_path / "teams.csv"
        owners.write_text("rep,regional_office\nana,East\nben,West\n", encoding="utf-8")
        command = [sys.executable, "-m", "stagegate", "import", str(history)]
        options = ["--store", str(tmp_path / "s.sqlite"), "--format", "log", "--json"]
        flags = ["--column", "owner=rep", "--segment", "product", "--owners", str(owners)]
        done = subprocess.run(
            [*command, *options, *flags, "--stage-order", "Lead,Demo", "--as-of", "2025-01-01"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert 0 == done.returncode, done.stderr
        summary = json.loads(done.stdout)
        assert ["owner", "product", "regional_office"] == summary["segments"]
