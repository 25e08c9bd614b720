"""Tamper-evidence of the SQLite store: digests stored, version 1 files migrated, edits caught.

The tampering is real: each case opens the store file with ``sqlite3`` directly, as someone
holding the file would, and ``stagegate verify --store`` runs as a subprocess.
"""

# ruff: noqa: S608, E501 - the tampering is constant SQL, one case a line in a table

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import attrs
import pytest

import stagegate
from stagegate import Opportunity, b2b
from stagegate.errors import ConcurrencyError, EventLogError
from stagegate.events import Event
from stagegate.integrity import check_chain, event_digest, seal
from stagegate.store import (
    SCHEMA_VERSION,
    ImportRefusedError,
    SQLiteStore,
    inspect_file,
    stream_import,
)
from strategies import T0, full_evidence

PROCESS = b2b()
H = timedelta(hours=1)
D = timedelta(days=1)


def reference_deal(opportunity_id: str = "acme-1") -> Opportunity:
    """A deal of 13 events with gate reports, an override, a loss and a reopening."""
    deal = Opportunity.open(PROCESS, opportunity_id, at=T0, actor="ana", amount=48_000)  # 1
    deal.record_deliverable(
        "lead_record", at=T0 + H, actor="ana", evidence=full_evidence(PROCESS, "lead_record")
    )  # 2
    deal.advance(at=T0 + D, actor="ana")  # 3: qualification, with its gate report
    deal.log_activity("discovery_call", at=T0 + 2 * D, actor="ana")  # 4
    deal.record_deliverable(
        "qualification_checklist",
        at=T0 + 2 * D + H,
        actor="ana",
        evidence=full_evidence(PROCESS, "qualification_checklist"),
    )  # 5
    deal.advance(at=T0 + 3 * D, actor="ana")  # 6: needs_analysis
    deal.override("solution_proposal", at=T0 + 4 * D, actor="bo", reason="CEO's call")  # 7
    deal.set_field("discount_percent", 10, at=T0 + 5 * D, actor="ana")  # 8
    deal.change_amount(50_000, at=T0 + 5 * D, actor="ana")  # 9
    deal.reschedule(date(2026, 6, 30), at=T0 + 5 * D, actor="ana")  # 10
    deal.move_to("needs_analysis", at=T0 + 6 * D, actor="ana", reason="scope changed")  # 11
    deal.lose(at=T0 + 7 * D, actor="ana", reason="budget cut")  # 12
    deal.reopen(at=T0 + 8 * D, actor="ana", reason="budget back")  # 13
    return deal


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A store holding two reference deals and the b2b definition."""
    file = tmp_path / "deals.sqlite"
    with SQLiteStore(file) as store:
        store.save_process(PROCESS)
        store.save(reference_deal("acme-1"))
        store.save(reference_deal("beta-2"))
    return file


def verify_store(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", "verify", "--store", str(path), "--json", *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sql(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def digest_of(path: Path, seq: int) -> str:
    connection = sqlite3.connect(path)
    try:
        (found,) = connection.execute(
            "SELECT digest FROM events WHERE opportunity_id = 'acme-1' AND seq = ?", (seq,)
        ).fetchone()
    finally:
        connection.close()
    return str(found)


def recomputed_digest(path: Path) -> str:
    """Edit event 9's amount and write the digest its new content gives (a careful forger)."""
    with SQLiteStore(path) as store:
        log = store.load("acme-1")
    previous = log[7].digest
    forged = Event.from_dict({**log[8].to_dict(), "amount": "1"})
    return (
        f"UPDATE events SET amount = '1', digest = '{event_digest(forged, previous)}' "
        "WHERE opportunity_id = 'acme-1' AND seq = 9"
    )


WHERE = "WHERE opportunity_id = 'acme-1'"
# (name, tampering SQL, seq, rule, extra options); seq and rule worked out by hand from the
# chain: the first event whose stored digest no longer follows from its content and the one
# before it.
TAMPERING: list[tuple[str, Callable[[Path], list[str]], int, str, tuple[str, ...]]] = [
    ("amount", lambda _: [f"UPDATE events SET amount = '4800' {WHERE} AND seq = 9"], 9, "digest_mismatch", ()),
    ("opening amount", lambda _: [f"UPDATE events SET amount = '1' {WHERE} AND seq = 1"], 1, "digest_mismatch", ()),
    ("stage", lambda _: [f"UPDATE events SET stage = 'proposal' {WHERE} AND seq = 3"], 3, "digest_mismatch", ()),
    (
        "gate report",
        lambda _: [f"UPDATE events SET gate = replace(gate, 'true', 'false') {WHERE} AND seq = 6"],
        6,
        "digest_mismatch",
        (),
    ),
    ("override relabelled", lambda _: [f"UPDATE events SET move = 'advance' {WHERE} AND seq = 7"], 7, "digest_mismatch", ()),
    ("actor", lambda _: [f"UPDATE events SET actor = 'eve' {WHERE} AND seq = 12"], 12, "digest_mismatch", ()),
    ("loss reason", lambda _: [f"UPDATE events SET reason = 'x' {WHERE} AND seq = 12"], 12, "digest_mismatch", ()),
    ("details", lambda _: [f"UPDATE events SET details = replace(details, '10', '15') {WHERE} AND seq = 8"], 8, "digest_mismatch", ()),
    ("deleted row", lambda _: [f"DELETE FROM events {WHERE} AND seq = 5"], 6, "digest_mismatch", ()),
    ("deleted first row", lambda _: [f"DELETE FROM events {WHERE} AND seq = 1"], 2, "digest_mismatch", ()),
    (
        "swapped at",
        lambda p: [
            f"CREATE TEMP TABLE kept AS SELECT seq, at_us FROM events {WHERE} AND seq IN (3, 4)",
            f"UPDATE events SET at_us = (SELECT at_us FROM kept WHERE kept.seq = 7 - events.seq) {WHERE} AND seq IN (3, 4)",
        ],
        3,
        "digest_mismatch",
        (),
    ),
    (
        "swapped rows",
        lambda _: [
            f"UPDATE events SET seq = 100 {WHERE} AND seq = 10",
            f"UPDATE events SET seq = 10 {WHERE} AND seq = 11",
            f"UPDATE events SET seq = 11 {WHERE} AND seq = 100",
        ],
        10,
        "digest_mismatch",
        (),
    ),
    ("digest removed", lambda _: [f"UPDATE events SET digest = NULL {WHERE} AND seq = 2"], 3, "digest_gap", ()),
    ("digest garbled", lambda _: [f"UPDATE events SET digest = 'x' {WHERE} AND seq = 4"], 4, "digest_mismatch", ()),
    ("unreadable kind", lambda _: [f"UPDATE events SET kind = 'bogus' {WHERE} AND seq = 5"], 5, "malformed", ()),
    ("digest recomputed for the edit", lambda p: [recomputed_digest(p)], 10, "digest_mismatch", ()),
    (
        "last digest removed",
        lambda _: [f"UPDATE events SET digest = NULL {WHERE} AND seq = 13"],
        13,
        "digest_missing",
        ("--require-digests",),
    ),
]  # fmt: skip


class TestVerifyStoreCommand:
    def test_an_untouched_store_verifies(self, path: Path) -> None:
        done = verify_store(path, "--require-digests")
        document = json.loads(done.stdout)
        assert (0, True) == (done.returncode, document["ok"])
        assert [("acme-1", 13, 13, True), ("beta-2", 13, 13, True)] == [
            (log["opportunity_id"], log["events"], log["sealed"], log["checked_process"])
            for log in document["logs"]
        ]
        assert digest_of(path, 13) == document["logs"][0]["head"]

    @pytest.mark.parametrize(
        ("tamper", "seq", "rule", "options"),
        [pytest.param(t, s, r, o, id=name) for name, t, s, r, o in TAMPERING],
    )
    def test_a_tampered_store_names_the_opportunity_the_seq_and_the_rule(
        self,
        path: Path,
        tamper: Callable[[Path], list[str]],
        seq: int,
        rule: str,
        options: tuple[str, ...],
    ) -> None:
        sql(path, *tamper(path))
        done = verify_store(path, *options)
        document = json.loads(done.stdout)
        broken = [log for log in document["logs"] if not log["ok"]]
        assert (1, ["acme-1"]) == (done.returncode, [log["opportunity_id"] for log in broken])
        assert (seq, rule) == (broken[0]["seq"], broken[0]["rule"])

    def test_the_text_output_names_the_broken_event(self, path: Path) -> None:
        sql(path, f"UPDATE events SET amount = '4800' {WHERE} AND seq = 9")
        done = subprocess.run(
            [sys.executable, "-m", "stagegate", "verify", "--store", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 1 == done.returncode
        assert "BROKEN acme-1: event 9 breaks digest_mismatch" in done.stdout
        assert "ok beta-2: 13 events" in done.stdout

    def test_swapping_two_instants_really_swaps_them(self, path: Path) -> None:
        (_, swap, *_) = next(case for case in TAMPERING if case[0] == "swapped at")
        with SQLiteStore(path) as store:
            before = [e.at for e in store.load("acme-1")]
        sql(path, *swap(path))
        with SQLiteStore(path) as store:
            after = [e.at for e in store.load("acme-1")]
        assert [before[3], before[2]] == after[2:4]
        assert before[:2] + before[4:] == after[:2] + after[4:]

    def test_a_cut_off_tail_verifies_but_changes_the_head(self, path: Path) -> None:
        kept = json.loads(verify_store(path).stdout)["logs"][0]["head"]
        sql(path, f"DELETE FROM events {WHERE} AND seq >= 12")
        document = json.loads(verify_store(path).stdout)
        assert (True, 11) == (document["ok"], document["logs"][0]["events"])
        assert kept != document["logs"][0]["head"]

    def test_a_process_given_on_the_command_line_is_the_one_checked(self, path: Path) -> None:
        template = Path(stagegate.__file__).parent / "templates" / "b2b.toml"
        other = path.parent / "b2b-v2.toml"
        other.write_text(template.read_text().replace('version = "1"', 'version = "2"', 1))
        done = verify_store(path, "--process", str(other))
        document = json.loads(done.stdout)
        assert 1 == done.returncode
        assert {(1, "version_mismatch")} == {(log["seq"], log["rule"]) for log in document["logs"]}

    @pytest.mark.parametrize(
        "arguments",
        [
            pytest.param(["--store", "missing.sqlite"], id="missing store"),
            pytest.param(["--store", "empty.sqlite"], id="empty file"),
            pytest.param(["--store", "text.sqlite"], id="not a database"),
            pytest.param(["--store", "deals.sqlite", "events.jsonl"], id="both inputs"),
            pytest.param([], id="no input"),
            pytest.param(["--store", "deals.sqlite", "--seal", "out.jsonl"], id="seal a store"),
            pytest.param(["--store", "deals.sqlite", "--template", "nope"], id="bad template"),
        ],
    )
    def test_bad_input_exits_2(self, path: Path, arguments: list[str]) -> None:
        (path.parent / "empty.sqlite").write_bytes(b"")
        (path.parent / "text.sqlite").write_text("not a database\n")
        done = subprocess.run(
            [sys.executable, "-m", "stagegate", "verify", "--json", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=path.parent,
        )
        assert (2, False) == (done.returncode, json.loads(done.stdout)["ok"])
        assert not (path.parent / "missing.sqlite").exists()


def as_version_1(path: Path) -> None:
    """Turn a store file into the layout stagegate wrote before digests (schema version 1)."""
    sql(
        path,
        "ALTER TABLE events DROP COLUMN digest",
        "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
    )


class TestMigration:
    def test_a_version_1_store_reads_unsealed_and_is_left_unchanged(self, path: Path) -> None:
        as_version_1(path)
        before = path.read_bytes()
        with SQLiteStore(path) as store:
            assert 1 == store.schema_version
            log = store.load("acme-1")
            assert list(reference_deal().events) == list(log)
            assert {None} == {event.digest for event in store.scan()}
            assert all(verdict.ok for verdict in store.verify())
            assert 26 == store.count()
        assert "1" == inspect_file(path)
        assert before == path.read_bytes()

    def test_the_first_write_seals_the_whole_history_and_bumps_the_version(
        self, path: Path
    ) -> None:
        as_version_1(path)
        deal = reference_deal("gamma-3")
        with SQLiteStore(path) as store:
            store.save(deal)
            assert SCHEMA_VERSION == store.schema_version
            assert list(seal(reference_deal().events)) == list(store.load("acme-1"))
            assert [e.digest for e in seal(reference_deal().events)] == [
                e.digest for e in store.load("acme-1")
            ]
            verdicts = store.verify(require_digests=True)
        assert [("acme-1", True), ("beta-2", True), ("gamma-3", True)] == [
            (v.opportunity_id, v.ok) for v in verdicts
        ]
        assert str(SCHEMA_VERSION) == inspect_file(path)

    def test_a_continued_log_chains_from_the_sealed_history(self, path: Path) -> None:
        as_version_1(path)
        with SQLiteStore(path) as store:
            deal = store.load_opportunity(PROCESS, "acme-1")
            deal.log_activity("discovery_call", at=T0 + 9 * D, actor="ana")
            store.save(deal)
            log = store.load("acme-1")
        assert (14, log[-1].digest) == check_chain(log, require_digests=True)

    def test_a_failed_first_write_leaves_the_file_at_version_1(self, path: Path) -> None:
        as_version_1(path)
        with SQLiteStore(path) as store:
            with pytest.raises(ConcurrencyError):
                store.append([reference_deal().events[0]])  # acme-1 seq 1 exists: a conflict
            assert 1 == store.schema_version
        assert "1" == inspect_file(path)


class TestImports:
    def test_a_streamed_import_that_continues_a_log_is_sealed_in_its_chain(
        self, path: Path, tmp_path: Path
    ) -> None:
        more = Opportunity.replay(PROCESS, reference_deal().events)
        more.log_activity("discovery_call", at=T0 + 9 * D, actor="ana")
        fresh = reference_deal("delta-4").events
        lines = [more.events[-1].to_dict(), *(e.to_dict() for e in seal(fresh))]
        source = tmp_path / "more.jsonl"
        source.write_text("".join(json.dumps(line) + "\n" for line in lines))
        stream_import(path, source, process=PROCESS)
        with SQLiteStore(path) as store:
            assert [14, 13] == [len(store.load(oid)) for oid in ("acme-1", "delta-4")]
            assert all(v.ok for v in store.verify(require_digests=True))

    def test_a_streamed_event_with_a_foreign_digest_is_refused(
        self, path: Path, tmp_path: Path
    ) -> None:
        more = Opportunity.replay(PROCESS, reference_deal().events)
        more.log_activity("discovery_call", at=T0 + 9 * D, actor="ana")
        forged = {**more.events[-1].to_dict(), "digest": "0" * 64}
        source = tmp_path / "forged.jsonl"
        source.write_text(json.dumps(forged) + "\n")
        with pytest.raises(ImportRefusedError, match="digest_mismatch"):
            stream_import(path, source, process=PROCESS)
        with SQLiteStore(path) as store:
            assert 13 == store.last_seq("acme-1")

    def test_a_staged_copy_is_sealed_and_a_wrong_staged_digest_is_refused(
        self, path: Path, tmp_path: Path
    ) -> None:
        more = Opportunity.replay(PROCESS, reference_deal().events)
        more.log_activity("discovery_call", at=T0 + 9 * D, actor="ana")
        more.log_activity("discovery_call", at=T0 + 10 * D, actor="ana")
        good, bad = tmp_path / "good.sqlite", tmp_path / "bad.sqlite"
        with SQLiteStore(good) as staging:
            staging._stage([more.events[13]])  # how stream_import stages its input
        with SQLiteStore(bad) as staging:
            forged = Event.from_dict({**more.events[14].to_dict(), "digest": "0" * 64})
            staging._stage([forged])
        with SQLiteStore(path) as store:
            store.write_import_from(good)
            with pytest.raises(EventLogError, match="digest_mismatch"):
                store.write_import_from(bad)
            log = store.load("acme-1")
            assert (14, 14) == (store.last_seq("acme-1"), check_chain(log, require_digests=True)[0])

    def test_a_streamed_import_into_a_new_store_and_a_replace_are_sealed_whole(
        self, tmp_path: Path
    ) -> None:
        source = tmp_path / "deals.jsonl"
        logs = [reference_deal(oid).events for oid in ("acme-1", "beta-2")]
        source.write_text("".join(json.dumps(e.to_dict()) + "\n" for log in logs for e in log))
        target = tmp_path / "new.sqlite"
        stream_import(target, source, process=PROCESS)  # the staging file is linked into place
        assert 0 == verify_store(target, "--require-digests").returncode
        stream_import(target, source, process=PROCESS, replace=True)  # swapped into place
        assert 0 == verify_store(target, "--require-digests").returncode
        with SQLiteStore(target) as store:
            assert [seal(log)[-1].digest for log in logs] == [
                store.load(oid)[-1].digest for oid in ("acme-1", "beta-2")
            ]

    def test_a_new_deal_streamed_with_a_wrong_digest_is_refused_before_anything_is_written(
        self, tmp_path: Path
    ) -> None:
        sealed = seal(reference_deal().events)
        lines = [e.to_dict() for e in sealed]
        lines[4] = {**lines[4], "digest": "0" * 64}
        source = tmp_path / "forged.jsonl"
        source.write_text("".join(json.dumps(line) + "\n" for line in lines))
        target = tmp_path / "new.sqlite"
        with pytest.raises(ImportRefusedError, match="digest"):
            stream_import(target, source, process=PROCESS)
        assert not target.exists()

    def test_a_store_migrated_by_another_writer_is_not_migrated_twice(self, path: Path) -> None:
        as_version_1(path)
        with SQLiteStore(path) as first, SQLiteStore(path) as second:
            first.save(reference_deal("gamma-3"))
            second.save(reference_deal("delta-4"))  # the file is at the current version by now
            assert (SCHEMA_VERSION,) * 2 == (first.schema_version, second.schema_version)
            assert all(v.ok for v in second.verify(require_digests=True))


class TestUnsealable:
    def test_text_json_cannot_write_is_refused_by_the_memory_store(self) -> None:
        from stagegate.store import MemoryStore

        store = MemoryStore()
        event = attrs.evolve(reference_deal().events[0], actor="\ud800")
        with pytest.raises(EventLogError, match="cannot store the batch"):
            store.append([event])
        assert 0 == store.count()
