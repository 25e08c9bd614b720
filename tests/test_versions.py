"""Migrated deals (``migrated`` events) in decisions, the decision service and imports."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest

from postgresql_server import cluster, missing_reason
from stagegate import Opportunity, evolution, process_to_dict
from stagegate.decision import MoveRequest, ProposedFacts, decide, decide_json, response_schema
from stagegate.errors import DefinitionError, EventLogError, InvalidCommandError
from stagegate.process import Process
from stagegate.store import (
    ImportRefusedError,
    SQLiteStore,
    open_store,
    stream_import,
    write_import,
)
from stagegate.templates import b2b
from strategies import T0

RESPONSE = jsonschema.Draft202012Validator(response_schema())
CHECKLIST = {"budget": "yes", "need": "yes", "timeline": "q3"}


def renamed(process: Process) -> Process:
    """Version 2 of ``process``: stage 'qualification' renamed 'qualify'."""
    stages = tuple(
        attrs.evolve(s, id="qualify") if s.id == "qualification" else s for s in process.stages
    )
    return attrs.evolve(process, version="2", stages=stages, renamed={"qualification": "qualify"})


V1 = b2b()
V2 = renamed(V1)


def migrated_deal(oid: str = "acme-1") -> Opportunity:
    """A deal that entered 'qualification' of version 1, then was migrated to version 2."""
    deal = Opportunity.open(V1, oid, at=T0, actor="ana", amount=1000)
    deal.record_deliverable(
        "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": "kim"}
    )
    deal.advance(at=T0 + timedelta(days=1), actor="ana")
    deal.migrate(V2, at=T0 + timedelta(days=2), actor="ops")
    return deal


ADVANCE = MoveRequest(
    "advance",
    actor="ana",
    facts=ProposedFacts(
        deliverables={"qualification_checklist": CHECKLIST}, activities=[("discovery_call", None)]
    ),
)


def document(*, versions: list[Any] | None = None, **move: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "version": 1,
        "process": process_to_dict(V2),
        "events": [e.to_dict() for e in migrated_deal().events],
        "move": {"command": "advance", "actor": "ana", **move},
    }
    if versions is not None:
        request["versions"] = versions
    return request


FACTS = {
    "deliverables": {"qualification_checklist": CHECKLIST},
    "activities": [{"type": "discovery_call"}],
}


class TestDecide:
    def test_a_migrated_deal_is_decided_under_the_version_it_ends_in(self) -> None:
        decision = decide(V2, migrated_deal().events, ADVANCE, versions=[V1])
        assert decision.allowed, decision.error
        assert ("qualify", "needs_analysis") == (decision.from_stage, decision.to_stage)
        assert {"2"} == {e.process_version for e in decision.events}

    def test_the_gate_of_the_new_version_is_what_blocks(self) -> None:
        request = MoveRequest("advance", actor="ana")
        decision = decide(V2, migrated_deal().events, request, versions=[V1])
        assert "blocked" == decision.verdict.value
        assert (
            "deliverable 'qualification_checklist' not recorded",
            "0 of 1 x 'discovery_call' logged",
        ) == decision.missing

    def test_a_version_not_given_is_named(self) -> None:
        decision = decide(V2, migrated_deal().events, ADVANCE)
        assert "invalid" == decision.verdict.value
        assert isinstance(decision.error, EventLogError)
        assert ("version_unknown", 1) == (decision.error.rule, decision.error.seq)
        assert "version '1' of process 'b2b'" in str(decision.error)
        assert "versions" in str(decision.error)

    def test_the_version_the_log_ends_in_must_be_the_process(self) -> None:
        decision = decide(V1, migrated_deal().events, ADVANCE)
        assert isinstance(decision.error, EventLogError)
        assert ("version_unknown", 4) == (decision.error.rule, decision.error.seq)

    def test_versions_of_another_process_are_invalid(self) -> None:
        other = attrs.evolve(V1, name="other")
        decision = decide(V2, migrated_deal().events, ADVANCE, versions=[V1, other])
        assert isinstance(decision.error, InvalidCommandError)
        assert "earlier versions of process 'b2b'" in str(decision.error)

    def test_versions_that_are_not_iterable_are_invalid(self) -> None:
        decision = decide(V2, migrated_deal().events, ADVANCE, versions=3)  # type: ignore[arg-type]
        assert isinstance(decision.error, InvalidCommandError)
        assert "versions must be an iterable of Process, got 3" in str(decision.error)

    def test_a_log_in_one_version_needs_no_versions(self) -> None:
        deal = Opportunity.open(V2, "acme-2", at=T0, actor="ana")
        decision = decide(V2, deal.events, MoveRequest("advance", actor="ana"))
        assert "blocked" == decision.verdict.value


class TestDecideJson:
    def test_earlier_versions_in_the_request_decide_a_migrated_deal(self) -> None:
        answer = decide_json(json.dumps(document(versions=[process_to_dict(V1)], facts=FACTS)))
        RESPONSE.validate(answer)
        assert ("allowed", "qualify", "needs_analysis") == (
            answer["status"],
            answer["from_stage"],
            answer["to_stage"],
        )
        assert "2" == answer["event"]["process_version"]

    def test_without_them_the_request_is_invalid_and_says_what_to_send(self) -> None:
        answer = decide_json(document(facts=FACTS))
        RESPONSE.validate(answer)
        assert ("invalid", "EventLogError") == (answer["status"], answer["error"]["type"])
        assert "[rule: version_unknown]" in answer["error"]["message"]
        assert "in versions" in answer["error"]["message"]

    def test_an_invalid_version_definition_is_invalid_and_named(self) -> None:
        broken = {**process_to_dict(V1), "stages": []}
        answer = decide_json(document(versions=[process_to_dict(V1), broken]))
        RESPONSE.validate(answer)
        assert ("invalid", "DefinitionError") == (answer["status"], answer["error"]["type"])
        assert "versions[1]" in answer["error"]["message"]
        assert answer["error"]["problems"]

    @pytest.mark.parametrize("versions", [["b2b"], {"1": {}}, [{}] * 101])
    def test_versions_outside_the_schema_are_refused(self, versions: Any) -> None:
        answer = decide_json(document(versions=versions))
        assert ("invalid", "InvalidRequestError") == (answer["status"], answer["error"]["type"])
        assert any(p.startswith(".versions") for p in answer["error"]["problems"])

    def test_a_migrated_event_matches_the_request_schema(self) -> None:
        answer = decide_json(document(versions=[process_to_dict(V1)]))
        assert "blocked" == answer["status"]


class TestService:
    def test_a_migrated_deal_is_decided_over_http(self) -> None:
        httpx = pytest.importorskip("httpx", reason="the service test needs httpx")
        uvicorn = pytest.importorskip("uvicorn", reason="the service test needs uvicorn")
        from stagegate.service import create_app

        config = uvicorn.Config(
            create_app({}), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not server.started:
                assert time.monotonic() < deadline, "the server did not start"
                assert thread.is_alive(), "the server stopped"
                time.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                given = document(versions=[process_to_dict(V1)], facts=FACTS)
                allowed = client.post("/v1/decisions", json=given)
                refused = client.post("/v1/decisions", json=document(facts=FACTS))
        finally:
            server.should_exit = True
            thread.join(timeout=30)
        assert 200 == allowed.status_code
        assert ("allowed", "needs_analysis") == (
            allowed.json()["status"],
            allowed.json()["to_stage"],
        )
        assert 422 == refused.status_code
        problem = refused.json()
        assert "https://stagegate.invalid/problems/invalid-request" == problem["type"]
        assert "version_unknown" in problem["decision"]["error"]["message"]


def migrated_store(path: Path) -> list[Opportunity]:
    """A store of two open deals in version 1 and one closed, the open ones migrated to 2."""
    with SQLiteStore(path) as store:
        store.save_process(V1)
        deals = [migrated_deal(f"deal-{i}") for i in range(2)]
        for deal in deals:
            store.save(Opportunity.replay(V1, deal.events[:-1]))  # before the migration
        closed = Opportunity.open(V1, "deal-closed", at=T0, actor="ana")
        closed.lose(at=T0 + timedelta(days=1), actor="ana", reason="no budget")
        store.save(closed)
        evolution.migrate(store, V2, actor="ops", at=T0 + timedelta(days=2))
        return [store.load_opportunity(V2, d.id) for d in deals]


def continued(deal: Opportunity) -> list[Any]:
    """The events that take ``deal`` on from 'qualify' into 'needs_analysis' (version 2)."""
    at = T0 + timedelta(days=3)
    before = len(deal.events)
    deal.record_deliverable("qualification_checklist", at=at, actor="ana", evidence=CHECKLIST)
    deal.log_activity("discovery_call", at=at, actor="ana")
    deal.advance(at=at, actor="ana")
    return [attrs.evolve(e, digest=None) for e in deal.events[before:]]


class TestImportOntoAMigratedStore:
    def test_new_events_of_migrated_deals_are_imported(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        deals = migrated_store(path)
        events = [e for deal in deals for e in continued(deal)]
        outcome = write_import(path, events, process=V2, source="events")
        assert (6, 2) == (outcome.record.events, outcome.record.opportunities)
        with SQLiteStore(path) as store:
            loaded = store.load_opportunity(V2, "deal-0")
            assert ("needs_analysis", 7) == (loaded.stage, loaded.version)
            assert [True, True, True] == [v.ok for v in store.verify()]

    def test_a_streamed_import_replays_them_too(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        deals = migrated_store(path)
        log = tmp_path / "more.jsonl"
        lines = [json.dumps(e.to_dict()) for deal in deals for e in continued(deal)]
        log.write_text("\n".join(lines) + "\n", "utf-8")
        outcome = stream_import(path, log, process=V2)
        assert 6 == outcome.record.events
        with SQLiteStore(path) as store:
            assert "needs_analysis" == store.load_opportunity(V2, "deal-1").stage

    def test_new_events_still_answer_to_the_new_version(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        deal = migrated_store(path)[0]
        events = continued(deal)
        stale = [attrs.evolve(e, stage="qualification") if e.seq == 5 else e for e in events]
        with pytest.raises(ImportRefusedError) as caught:
            write_import(path, stale, process=V2, source="events")
        assert "invalid_events" == caught.value.code
        assert "deal-0" in caught.value.problems[0]
        assert "unknown to process 'b2b'" in caught.value.problems[0]
        with SQLiteStore(path) as store:
            assert 4 == store.last_seq("deal-0")  # nothing was written

    def test_a_version_the_store_lacks_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        deal = migrated_store(path)[0]
        v3 = attrs.evolve(V2, version="3", renamed={})
        events = continued(deal)
        moved = [attrs.evolve(e, process_version="3") for e in events]
        with pytest.raises(ImportRefusedError) as caught:
            write_import(path, moved, process=v3, source="events")
        assert "version_mismatch" in caught.value.problems[0]

    def test_a_deal_new_to_the_store_replays_with_its_stored_versions(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        migrated_store(path)
        fresh = migrated_deal("deal-new")
        events = [attrs.evolve(e, digest=None) for e in fresh.events]
        outcome = write_import(path, events, process=V2, source="events")
        assert 4 == outcome.record.events
        with SQLiteStore(path) as store:
            assert "qualify" == store.load_opportunity(V2, "deal-new").stage


@pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")
def test_an_import_onto_a_migrated_postgresql_store_replays_with_its_versions(
    tmp_path: Path,
) -> None:
    """The PostgreSQL import path finds the earlier versions in that store too."""
    pytest.importorskip("psycopg", reason="needs the postgresql extra (psycopg)")
    with cluster() as server:
        target = server.url()
        with open_store(target) as store:
            store.save_process(V1)
            deal = migrated_deal("deal-pg")
            store.save(Opportunity.replay(V1, deal.events[:-1]))
            evolution.migrate(store, V2, actor="ops", at=T0 + timedelta(days=2))
            deal = store.load_opportunity(V2, "deal-pg")
        outcome = write_import(target, continued(deal), process=V2, source="events")
        assert 3 == outcome.record.events
        log = tmp_path / "new.jsonl"  # a deal new to the store, streamed in
        lines = [json.dumps(attrs.evolve(e, digest=None).to_dict()) for e in migrated_deal().events]
        log.write_text("\n".join(lines) + "\n", "utf-8")
        assert 4 == stream_import(target, log, process=V2).record.events
        with open_store(target) as store:
            assert "needs_analysis" == store.load_opportunity(V2, "deal-pg").stage
            assert "qualify" == store.load_opportunity(V2, "acme-1").stage
            assert [True, True] == [v.ok for v in store.verify()]


def test_definition_errors_of_versions_are_definition_errors() -> None:
    """An invalid earlier version is refused as an invalid inline process is."""
    answer = decide_json(document(versions=[{"name": "b2b"}]))
    assert DefinitionError.__name__ == answer["error"]["type"]


class TestCheckCommand:
    """``stagegate check --earlier FILE``: the rules engine from the shell on a migrated deal."""

    @staticmethod
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stagegate", "check", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @pytest.fixture
    def files(self, tmp_path: Path) -> tuple[Path, Path, Path]:
        events = tmp_path / "events.json"
        events.write_text(json.dumps([e.to_dict() for e in migrated_deal().events]), "utf-8")
        current, earlier = tmp_path / "v2.json", tmp_path / "v1.json"
        current.write_text(json.dumps(process_to_dict(V2)), "utf-8")
        earlier.write_text(json.dumps(process_to_dict(V1)), "utf-8")
        return events, current, earlier

    def test_with_the_earlier_version_the_move_is_decided(
        self, files: tuple[Path, Path, Path]
    ) -> None:
        events, current, earlier = files
        result = self.run(
            str(events), "advance", "--process", str(current), "--earlier", str(earlier)
        )
        document = json.loads(result.stdout)
        RESPONSE.validate(document)
        # the v2 gate of 'qualify' needs its checklist: blocked (exit 1), not invalid
        assert (1, "blocked") == (result.returncode, document["status"])

    def test_without_it_the_log_is_bad_input_naming_the_version(
        self, files: tuple[Path, Path, Path]
    ) -> None:
        events, current, _ = files
        result = self.run(str(events), "advance", "--process", str(current))
        document = json.loads(result.stdout)
        assert (2, "invalid") == (result.returncode, document["status"])
        assert "'1'" in json.dumps(document["error"])
