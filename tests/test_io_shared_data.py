"""Integration: the public datasets in ../shared/data, checked against pandas computed apart."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from stagegate.events import EventKind, MoveKind
from stagegate.io import Severity, import_pipedrive, import_snapshot, infer_process
from stagegate.io.pipedrive import read_pipedrive_stages
from stagegate.opportunity import Opportunity

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PIPEDRIVE = DATA / "pipedrive-deal-changes"
MAVEN = DATA / "maven-crm"
AS_OF = datetime(2026, 1, 1, tzinfo=timezone.utc)

pytestmark = pytest.mark.shared_data
pd = pytest.importorskip("pandas")


def _need(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (public test data, not shipped with the project)")


@pytest.fixture(scope="module")
def pipedrive():
    _need(PIPEDRIVE)
    result = import_pipedrive(
        PIPEDRIVE / "deal_changes.csv",
        stages=PIPEDRIVE / "stages.csv",
        fields=PIPEDRIVE / "fields.csv",
        assume_zone="UTC",
        as_of=AS_OF,
    )
    frame = pd.read_csv(PIPEDRIVE / "deal_changes.csv", dtype={"deal_id": str, "new_value": str})
    frame["row"] = range(2, len(frame) + 2)
    frame["t"] = pd.to_datetime(frame["change_time"])
    # incarnation: a new one at each add_time, in file order (every deal's rows are listed together)
    frame["part"] = (
        (frame["changed_field_key"] == "add_time").astype(int).groupby(frame["deal_id"]).cumsum()
    )
    return result, frame


class TestPipedriveDealChanges:
    def test_every_deal_id_is_imported_and_reused_ids_become_two_deals(self, pipedrive):
        result, frame = pipedrive
        assert 1995 == frame["deal_id"].nunique()
        adds = frame[frame["changed_field_key"] == "add_time"].groupby("deal_id").size()
        reused = sorted(adds[adds > 1].index)
        assert 5 == len(reused)
        assert len(frame) == result.rows_read
        assert int(adds.sum()) == result.opportunities == 2000
        assert reused == sorted(f.opportunity_id for f in result.findings_of("reused_id"))
        assert {f"{oid}#2" for oid in reused} <= set(result.opportunity_ids)

    def test_out_of_order_pairs_match_an_independent_count(self, pipedrive):
        result, frame = pipedrive
        previous = frame.groupby("deal_id")["t"].shift()
        expected = frame.loc[frame["t"] < previous, "row"].tolist()
        assert 5 == len(expected)
        found = sorted(max(f.rows) for f in result.findings_of("out_of_order"))
        assert sorted(expected) == found

    def test_stage_changes_match_an_independent_count(self, pipedrive):
        result, frame = pipedrive
        stages = frame[frame["changed_field_key"] == "stage_id"].sort_values(["t", "row"])
        previous = stages.groupby(["deal_id", "part"])["new_value"].shift()
        changes = int((previous.notna() & (stages["new_value"] != previous)).sum())
        repeats = int((stages["new_value"] == previous).sum())
        kinds = Counter(e.kind for e in result.events)
        moves = [e for e in result.events if e.kind is EventKind.STAGE_CHANGED]
        to_lost = [e for e in moves if e.stage == "lost"]
        assert 2000 == kinds[EventKind.OPENED]
        assert changes == len(moves) - len(to_lost)
        assert 2000 == len(to_lost)
        assert repeats == len(result.findings_of("no_change"))
        assert (frame["changed_field_key"] == "user_id").sum() == kinds[EventKind.FIELD_SET]
        assert all(e.move is MoveKind.IMPORTED and e.gate is None for e in moves)

    def test_every_row_is_used_or_named_in_a_finding(self, pipedrive):
        result, _ = pipedrive
        unused = {row for f in result.findings if not f.used for row in f.rows}
        assert result.rows_read == result.rows_used + len(unused)
        assert [] == [f for f in result.findings if f.severity is Severity.ERROR]

    def test_lost_reasons_carry_their_labels(self, pipedrive):
        result, _ = pipedrive
        reasons = Counter(e.reason for e in result.events if e.stage == "lost")
        assert {
            "Customer Not Ready",
            "Pricing Issues",
            "Unreachable Customer",
            "Product Mismatch",
            "Duplicate Entry",
        } == set(reasons)

    def test_the_qualified_lead_casing_is_one_stage(self, pipedrive):
        result, _ = pipedrive
        assert "qualified_lead" == result.stage_map["Qualified lead"]

    def test_every_imported_deal_replays(self, pipedrive):
        result, _ = pipedrive
        names = read_pipedrive_stages(PIPEDRIVE / "stages.csv")
        process, _, _ = infer_process([], order=list(names.values()), add_won=True, add_lost=True)
        for events in result.by_opportunity().values():
            Opportunity.replay(process, events)

    def test_naive_timestamps_are_refused_without_a_zone(self):
        _need(PIPEDRIVE)
        result = import_pipedrive(
            PIPEDRIVE / "deal_changes.csv", stages=PIPEDRIVE / "stages.csv", as_of=AS_OF
        )
        (finding,) = result.findings_of("naive_timestamp")
        assert result.rows_read == len(finding.rows)
        assert () == result.events


@pytest.fixture(scope="module")
def maven():
    _need(MAVEN)
    result = import_snapshot(
        MAVEN / "sales_pipeline.csv",
        stages=["Prospecting", "Engaging", "Won", "Lost"],
        entered={"Engaging": "engage_date"},
        columns={
            "stage": "deal_stage",
            "closed_at": "close_date",
            "amount": "close_value",
            "actor": "sales_agent",
        },
        assume_zone="UTC",
        as_of=AS_OF,
    )
    return result, pd.read_csv(MAVEN / "sales_pipeline.csv")


class TestMavenSnapshot:
    def test_counts_match_an_independent_computation(self, maven):
        result, frame = maven
        counts = frame["deal_stage"].value_counts()
        assert len(frame) == result.rows_read == 8800
        assert len(frame) - counts["Prospecting"] == result.opportunities
        changes = Counter(e.stage for e in result.events if e.kind is EventKind.STAGE_CHANGED)
        assert {"won": counts["Won"], "lost": counts["Lost"]} == dict(changes)
        assert counts["Prospecting"] == len(result.findings_of("no_instant"))

    def test_each_deal_has_at_most_two_transitions(self, maven):
        result, _ = maven
        assert max(len(events) for events in result.by_opportunity().values()) <= 2

    def test_engaging_is_entered_at_engage_date_and_closing_at_close_date(self, maven):
        result, frame = maven
        row = frame[frame["deal_stage"] == "Won"].iloc[0]
        events = result.by_opportunity()[row["opportunity_id"]]
        assert [("engaging", row["engage_date"]), ("won", row["close_date"])] == [
            (e.stage, e.at.date().isoformat()) for e in events
        ]
        assert row["sales_agent"] == events[0].actor
