"""`stagegate evidence` end to end, in real subprocesses on a real SQLite store.

An engagement export goes through an evidence map into the deals of a store; a deal advances
only once the mapped evidence has arrived, and a repeated delivery records nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from stagegate import Opportunity, load_process, verify
from stagegate.provenance import provenance_of
from stagegate.store import SQLiteStore

T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
RECORDED = "2026-03-20T12:00:00+00:00"

PROCESS = """
name = "handoff"
version = "1"

[[stages]]
id = "lead"
probability = 0.05
activities = [{ id = "meeting" }]

[[stages]]
id = "qualify"
probability = 0.2
activities = [{ id = "discovery_call" }]
gate = { all_of = [
  { lead = { min_score = 60, status = ["MQL", "SQL"] } },
  { activity = "meeting" },
] }

[[stages]]
id = "propose"
probability = 0.5
gate = { activity = "discovery_call", since_stage_entry = true }

[[stages]]
id = "won"
probability = 1
kind = "won"

[[stages]]
id = "lost"
probability = 0
kind = "lost"
"""

MAPPING = """
process = "handoff"

[[rule]]
system = "hubspot"
type = "MEETING"
when = { outcome = "COMPLETED" }
stage = "lead"
activity = "meeting"

[[rule]]
system = "marketo"
type = "Change Score"
lead = { score = "new_value", status = "lead_status" }

[[rule]]
system = "calendar"
type = "event"
when = { status = "CONFIRMED" }
stage = "qualify"
activity = "discovery_call"
"""


def meeting(eid: int, deal: str, day: int, outcome: str = "COMPLETED") -> dict[str, object]:
    at = datetime(2026, 3, day, 15, tzinfo=timezone.utc)
    return {
        "engagement": {"id": eid, "type": "MEETING", "timestamp": int(at.timestamp() * 1000)},
        "associations": {"dealIds": [deal]},
        "metadata": {"title": "Intro", "meetingOutcome": outcome},
    }


MARKETO = (
    "id,leadId,activityDate,activityTypeId,primaryAttributeValue,opportunityId,attributes\n"
    '501,7,2026-03-05T10:00:00Z,22,Behavior Score,d-1,"[{""name"": ""New Value"", ""value"": 72},'
    ' {""name"": ""Lead Status"", ""value"": ""MQL""}]"\n'
    '502,8,2026-03-05T10:00:00Z,22,Behavior Score,d-2,"[{""name"": ""New Value"", ""value"": 40},'
    ' {""name"": ""Lead Status"", ""value"": ""MQL""}]"\n'
)

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:cal-1@test\r\nDTSTART:20260310T100000Z\r\nDTEND:20260310T110000Z\r\n"
    "SUMMARY:Discovery [d-1]\r\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:cal-2@test\r\nDTSTART:20260311T100000Z\r\nDTEND:20260311T110000Z\r\n"
    "SUMMARY:Discovery [d-2]\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "stagegate", "evidence", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    (tmp_path / "handoff.toml").write_text(PROCESS, encoding="utf-8")
    (tmp_path / "map.toml").write_text(MAPPING, encoding="utf-8")
    process = load_process(tmp_path / "handoff.toml")
    store_path = tmp_path / "pipeline.sqlite"
    with SQLiteStore(store_path) as store:
        store.save_process(process)
        for oid in ("d-1", "d-2"):
            store.save(Opportunity.open(process, oid, at=T0, actor="crm"), expected_seq=0)
    return tmp_path


def imported(folder: Path, name: str, *extra: str) -> dict[str, object]:
    result = run(
        "import",
        str(folder / name),
        "--mapping",
        str(folder / "map.toml"),
        "--store",
        str(folder / "pipeline.sqlite"),
        "--recorded-at",
        RECORDED,
        "--advance",
        "--json",
        *extra,
    )
    assert 0 == result.returncode, result.stderr + result.stdout
    document: dict[str, object] = json.loads(result.stdout)
    return document


def stages(folder: Path) -> dict[str, str]:
    process = load_process(folder / "handoff.toml")
    with SQLiteStore(folder / "pipeline.sqlite") as store:
        return {oid: store.load_opportunity(process, oid).stage for oid in ("d-1", "d-2")}


class TestRoundTrip:
    def test_a_deal_advances_only_once_the_mapped_evidence_has_arrived(
        self, pipeline: Path
    ) -> None:
        meetings = [meeting(11, "d-1", 3), meeting(12, "d-2", 3, "NO_SHOW"), meeting(13, "d-9", 3)]
        (pipeline / "meetings.json").write_text(json.dumps(meetings), encoding="utf-8")
        (pipeline / "scores.csv").write_text(MARKETO, encoding="utf-8")
        (pipeline / "calendar.ics").write_text(ICS, encoding="utf-8")

        first = imported(pipeline, "meetings.json", "--format", "hubspot")
        assert 1 == first["recorded"]
        assert [] == first["advanced"]  # the meeting is in, the lead score is not
        codes = {f["code"] for f in first["findings"]}  # type: ignore[union-attr]
        assert {"unmapped", "unknown_deal"} <= codes
        assert {"d-1": "lead", "d-2": "lead"} == stages(pipeline)

        missing = run(
            "missing",
            "d-1",
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
            "--json",
        )
        assert 0 == missing.returncode, missing.stderr
        needs = json.loads(missing.stdout)["deals"][0]["missing"]
        assert 1 == len(needs)
        assert "no lead score recorded" == needs[0]["reason"]
        assert ["marketo 'Change Score'"] == needs[0]["sources"]

        second = imported(pipeline, "scores.csv", "--format", "marketo")
        assert 2 == second["recorded"]
        assert [{"opportunity_id": "d-1", "stage": "qualify"}] == second["advanced"]
        assert {"d-1": "qualify", "d-2": "lead"} == stages(pipeline)  # d-2: score 40, no meeting

        third = imported(pipeline, "calendar.ics", "--deal-pattern", r"\[(d-\d+)\]")
        assert 1 == third["recorded"]  # the cancelled event is not mapped
        assert [{"opportunity_id": "d-1", "stage": "propose"}] == third["advanced"]

        again = imported(pipeline, "meetings.json", "--format", "hubspot")
        assert 0 == again["events"]
        assert "duplicate" in {f["code"] for f in again["findings"]}  # type: ignore[union-attr]

        process = load_process(pipeline / "handoff.toml")
        with SQLiteStore(pipeline / "pipeline.sqlite") as store:
            log = store.load("d-1")
            assert "propose" == verify(process, log, require_digests=True).stage
        sources = [provenance_of(e) for e in log]
        assert ["hubspot", "marketo", "calendar"] == [p.system for p in sources if p]
        assert all(p.recorded_at.isoformat() == RECORDED for p in sources if p)
        by_kind = [(e.kind.value, e.actor) for e in log if e.kind.value == "stage_changed"]
        assert [("stage_changed", "system:stagegate")] * 2 == by_kind

    def test_a_dry_run_writes_nothing(self, pipeline: Path) -> None:
        (pipeline / "meetings.json").write_text(json.dumps([meeting(11, "d-1", 3)]), "utf-8")
        document = imported(pipeline, "meetings.json", "--format", "hubspot", "--dry-run")
        assert 1 == document["events"]
        with SQLiteStore(pipeline / "pipeline.sqlite") as store:
            assert 1 == len(store.load("d-1"))

    def test_a_text_summary_names_what_happened(self, pipeline: Path) -> None:
        (pipeline / "meetings.json").write_text(json.dumps([meeting(11, "d-1", 3)]), "utf-8")
        result = run(
            "import",
            str(pipeline / "meetings.json"),
            "--format",
            "hubspot",
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
            "--recorded-at",
            RECORDED,
        )
        assert 0 == result.returncode, result.stderr
        assert "recorded 1 of 1 engagements (1 events on 1 deals)" in result.stdout
        listing = run(
            "missing",
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
        )
        assert 0 == listing.returncode, listing.stderr
        assert "d-1: lead -> qualify needs:" in listing.stdout
        assert "[from: marketo 'Change Score']" in listing.stdout


class TestBadInput:
    def test_a_map_that_does_not_fit_the_process_is_refused(self, pipeline: Path) -> None:
        (pipeline / "bad.toml").write_text(
            '[[rule]]\nsystem = "hubspot"\ntype = "CALL"\nstage = "lead"\nactivity = "demo"\n',
            "utf-8",
        )
        (pipeline / "m.json").write_text(json.dumps([meeting(1, "d-1", 3)]), "utf-8")
        result = run(
            "import",
            str(pipeline / "m.json"),
            "--format",
            "hubspot",
            "--mapping",
            str(pipeline / "bad.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
        )
        assert 2 == result.returncode
        assert "declares no activity 'demo'" in result.stderr

    def test_a_malformed_map_names_its_path(self, pipeline: Path) -> None:
        (pipeline / "bad.toml").write_text('[[rule]]\nsystem = "hubspot"\n', "utf-8")
        result = run(
            "missing",
            "--mapping",
            str(pipeline / "bad.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
        )
        assert 2 == result.returncode
        assert "rule[0]" in result.stderr

    def test_a_missing_store_is_refused(self, pipeline: Path) -> None:
        (pipeline / "m.json").write_text("[]", "utf-8")
        result = run(
            "import",
            str(pipeline / "m.json"),
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "nope.sqlite"),
            "--system",
            "x",
        )
        assert 2 == result.returncode
        assert "no event store" in result.stderr


class TestFormats:
    def test_generic_exports_map_their_columns_and_marketo_links_leads(
        self, pipeline: Path
    ) -> None:
        (pipeline / "calls.csv").write_text(
            "Call Id,Deal,Kind,When,Result\nc-1,d-2,MEETING,2026-03-03T10:00:00Z,COMPLETED\n",
            "utf-8",
        )
        document = imported(
            pipeline,
            "calls.csv",
            "--system",
            "hubspot",
            "--column",
            "source_id=Call Id",
            "--column",
            "opportunity_id=Deal",
            "--column",
            "type=Kind",
            "--column",
            "occurred_at=When",
            "--column",
            "outcome=Result",
        )
        assert 1 == document["recorded"]  # the Result column is the outcome attribute
        assert ["d-2"] == document["deals"]

        (pipeline / "links.csv").write_text("leadId,opportunityId\n8,d-2\n", "utf-8")
        (pipeline / "scores.csv").write_text(MARKETO.replace(",d-2,", ",,"), "utf-8")
        linked = imported(
            pipeline,
            "scores.csv",
            "--format",
            "marketo",
            "--links",
            str(pipeline / "links.csv"),
        )
        assert ["d-1", "d-2"] == linked["deals"]

    def test_a_bad_column_option_is_refused(self, pipeline: Path) -> None:
        (pipeline / "calls.csv").write_text("a\n1\n", "utf-8")
        result = run(
            "import",
            str(pipeline / "calls.csv"),
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
            "--system",
            "x",
            "--column",
            "nonsense",
        )
        assert 2 == result.returncode
        assert "NAME=VALUE" in result.stderr
        result = run(
            "import",
            str(pipeline / "calls.csv"),
            "--mapping",
            str(pipeline / "map.toml"),
            "--store",
            str(pipeline / "pipeline.sqlite"),
        )
        assert 2 == result.returncode
        assert "--system" in result.stderr
