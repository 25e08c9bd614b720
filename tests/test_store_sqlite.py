"""The SQLite event store: the conformance suite, the file format, crashes, and a model check."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import sqlite3
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import store_conformance as conformance
from stagegate.errors import ConcurrencyError, EventLogError, StagegateError
from stagegate.store import (
    SCHEMA_VERSION,
    EventStore,
    MemoryStore,
    SQLiteStore,
    StoreClosedError,
    StoreError,
)
from store_conformance import make_event, make_log


class SQLiteBackend:
    shared_between_processes = True

    def make_store(self, path: Path) -> EventStore:
        return SQLiteStore(path, timeout=30)


class TestAppendAndLoad(SQLiteBackend, conformance.AppendAndLoad):
    pass


class TestQueries(SQLiteBackend, conformance.Queries):
    pass


class TestOpportunities(SQLiteBackend, conformance.Opportunities):
    pass


class TestFrames(SQLiteBackend, conformance.Frames):
    pass


class TestProcesses(SQLiteBackend, conformance.Processes):
    pass


class TestLifecycle(SQLiteBackend, conformance.Lifecycle):
    pass


class TestSealing(SQLiteBackend, conformance.Sealing):
    pass


class TestConcurrentWriters(SQLiteBackend, conformance.ConcurrentWriters):
    pass


class TestImportRecords(SQLiteBackend, conformance.Imports):
    pass


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite"


def raw(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


class TestFile:
    def test_events_survive_closing_and_reopening(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append(make_log("a", 2))
        with SQLiteStore(path) as store:
            assert tuple(make_log("a", 2)) == store.load("a")

    def test_the_file_is_in_wal_mode_with_a_schema_version(self, path: Path) -> None:
        SQLiteStore(path).close()
        assert raw(path, "PRAGMA journal_mode") == [("wal",)]
        assert [(str(SCHEMA_VERSION),)] == raw(
            path, "SELECT value FROM meta WHERE key = 'schema_version'"
        )

    def test_rows_hold_epoch_microseconds_and_exact_decimal_text(self, path: Path) -> None:
        event = make_event("a", 1, amount=conformance.Decimal("0.10"))
        with SQLiteStore(path) as store:
            store.append([event])
        assert raw(path, "SELECT at_us, amount FROM events") == [(1_767_603_660_000_000, "0.10")]

    @pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])
    def test_durable_selects_full_synchronous_commits(
        self, path: Path, durable: bool, level: int
    ) -> None:
        with SQLiteStore(path, durable=durable) as store:
            assert level == store._writer().execute("PRAGMA synchronous").fetchone()[0]

    def test_a_store_pickles_as_its_path(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append(make_log("a", 1))
            with pickle.loads(pickle.dumps(store)) as copy:  # noqa: S301 - our own bytes
                assert (str(path), 1) == (copy.path, copy.count())

    def test_a_file_that_is_not_a_database_is_refused_with_advice(self, path: Path) -> None:
        path.write_bytes(b"this is not sqlite" * 100)
        with pytest.raises(StoreError, match="integrity_check") as caught:
            SQLiteStore(path)
        assert isinstance(caught.value, OSError)
        assert isinstance(caught.value, StagegateError)

    def test_a_foreign_sqlite_database_is_refused(self, path: Path) -> None:
        raw(path, "CREATE TABLE deals (id TEXT)")
        with pytest.raises(StoreError, match="not a stagegate event store"):
            SQLiteStore(path)

    @pytest.mark.parametrize(("version", "advice"), [("4", "upgrade"), ("0", "re-import")])
    def test_another_schema_version_is_refused(self, path: Path, version: str, advice: str) -> None:
        SQLiteStore(path).close()
        connection = sqlite3.connect(path)
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        connection.commit()
        connection.close()
        with pytest.raises(StoreError, match=advice):
            SQLiteStore(path)

    def test_a_missing_folder_is_a_store_error(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError):
            SQLiteStore(tmp_path / "absent" / "events.sqlite")

    @pytest.mark.parametrize("name", ["", ":memory:", "file:x?mode=memory"])
    def test_memory_paths_are_refused(self, name: str) -> None:
        with pytest.raises(StoreError, match="MemoryStore"):
            SQLiteStore(name)

    def test_a_row_changed_outside_stagegate_is_reported_on_load(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append(make_log("a", 1))
            connection = sqlite3.connect(path)
            connection.execute("UPDATE events SET kind = 'bogus'")
            connection.commit()
            connection.close()
            with pytest.raises(EventLogError, match="restore it from a backup"):
                store.load("a")

    def test_a_row_with_a_bad_amount_is_reported_on_scan_rows(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append(make_log("a", 1))
            connection = sqlite3.connect(path)
            connection.execute("UPDATE events SET close_date = 'soon'")
            connection.commit()
            connection.close()
            with pytest.raises(EventLogError):
                list(store.scan_rows())

    def test_text_sqlite_cannot_store_is_refused_and_changes_nothing(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            with pytest.raises(EventLogError):
                store.append([*make_log("a", 1), make_event("b", 1, actor="\ud800")])
            assert store.count() == 0

    def test_details_that_are_not_json_are_refused_and_change_nothing(self, path: Path) -> None:
        odd = make_event("b", 1, details={"when": {1, 2}})
        with SQLiteStore(path) as store:
            with pytest.raises(EventLogError, match="'b' cannot be stored"):
                store.append([*make_log("a", 1), odd])
            assert store.count() == 0

    def test_a_damaged_file_raises_store_errors_not_sqlite_errors(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append([event for i in range(300) for event in make_log(f"opp-{i:03d}", 3)])
        data = bytearray(path.read_bytes())
        page = raw(path, "PRAGMA page_size")[0][0]
        data[3 * page : 8 * page] = b"\xa5" * (5 * page)
        path.write_bytes(data)
        with SQLiteStore(path) as store, pytest.raises(StoreError, match="integrity_check"):
            store.count()

    def test_details_in_any_read_only_mapping_round_trip(self, path: Path) -> None:
        event = make_event("a", 1, details=MappingProxyType({"note": "hi"}))
        with SQLiteStore(path) as store:
            store.append([event])
            assert store.load("a") == (event,)

    def test_a_writer_locked_out_for_longer_than_the_timeout_gets_a_store_error(
        self, path: Path
    ) -> None:
        with SQLiteStore(path, timeout=0.05) as store:
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreError, match="locked"):
                    store.append(make_log("a", 1))
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            store.append(make_log("a", 1))
            assert store.count() == 1

    def test_closing_the_store_stops_an_unfinished_scan(self, path: Path) -> None:
        store = SQLiteStore(path)
        store.append([*make_log("a", 1), *make_log("b", 1)])
        scan = store.scan(batch_size=1)
        next(scan)
        store.close()
        with pytest.raises(StoreClosedError):
            list(scan)

    def test_a_scan_does_not_block_writers(self, path: Path) -> None:
        with SQLiteStore(path, timeout=0.5) as store:
            store.append([*make_log("a", 1), *make_log("b", 1)])
            scan = store.scan(batch_size=1)
            next(scan)
            store.append(make_log("c", 1))
            assert store.count() == 3
            scan.close()

    def test_a_forked_copy_opens_connections_of_its_own(self, path: Path) -> None:
        with SQLiteStore(path) as store:
            store.append(make_log("a", 1))
            store._pid = -1  # as if this object had been inherited through fork()
            assert store.count() == 1
            store.append(make_log("a", 1, start=2))
            assert store.last_seq("a") == 2


def write_then_crash(path: str, events: int, ready: str) -> None:
    """In a child: commit one small batch, then write a huge batch (the parent kills us)."""
    store = SQLiteStore(path)
    store.append(make_log("base", 3))
    details = {"note": "x" * 400}
    batch = [
        make_event(f"bulk-{i // 5:06d}", i % 5 + 1, details=conformance.freeze(details))
        for i in range(events)
    ]
    Path(ready).touch()
    store.append(batch)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_a_writer_killed_mid_batch_leaves_a_consistent_file_without_the_batch(
    path: Path,
) -> None:
    ready = path.with_suffix(".ready")
    wal = Path(f"{path}-wal")
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=write_then_crash, args=(str(path), 80_000, str(ready)))
    child.start()
    deadline = time.monotonic() + 60
    while not ready.exists() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    # The batch is inside its transaction once uncommitted pages spill into the WAL file.
    baseline = wal.stat().st_size if wal.exists() else 0
    while child.is_alive() and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > baseline + 4_000_000:
            break
        time.sleep(0.001)
    assert child.is_alive(), "the batch committed before it could be killed: make it bigger"
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]
    with SQLiteStore(path, timeout=5) as store:
        assert (store.count(), list(store.opportunity_ids())) == (3, ["base"])
        store.append(make_log("after", 1))  # the dead writer's lock is gone
        assert store.count() == 4


class StoreAgainstModel(RuleBasedStateMachine):
    """SQLiteStore behaves exactly like MemoryStore under any sequence of appends."""

    ids = st.sampled_from(["a", "b", "c"])

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp()
        self.store = SQLiteStore(Path(self.folder) / "events.sqlite")
        self.model = MemoryStore()
        self.writes = 0

    def both(self, events: list[Any], expected_seq: int | None = None) -> None:
        outcomes = []
        for store in (self.store, self.model):
            try:
                store.append(events, expected_seq=expected_seq)
            except StagegateError as exc:  # noqa: PERF203 - two iterations
                outcomes.append(type(exc))
            else:
                outcomes.append(None)
        assert outcomes[0] == outcomes[1]

    def batch(self, opportunity_id: str, start: int, count: int) -> list[Any]:
        self.writes += 1
        return make_log(opportunity_id, count, start=start, actor=f"w{self.writes}")

    @initialize()
    def start_empty(self) -> None:
        assert self.store.count() == 0

    @rule(opportunity_id=ids, count=st.integers(1, 3))
    def continue_a_log(self, opportunity_id: str, count: int) -> None:
        start = self.model.last_seq(opportunity_id) + 1
        self.both(self.batch(opportunity_id, start, count))

    @rule(opportunity_id=ids, offset=st.integers(-2, 2), count=st.integers(1, 2))
    def append_at_any_seq(self, opportunity_id: str, offset: int, count: int) -> None:
        start = max(1, self.model.last_seq(opportunity_id) + 1 + offset)
        self.both(self.batch(opportunity_id, start, count))

    @rule(opportunity_id=ids, expected=st.integers(0, 6))
    def append_expecting_a_seq(self, opportunity_id: str, expected: int) -> None:
        self.both(self.batch(opportunity_id, expected + 1, 1), expected_seq=expected)

    @rule(first=ids, second=ids, stale=st.booleans())
    def append_to_two_opportunities(self, first: str, second: str, stale: bool) -> None:
        one = self.batch(first, self.model.last_seq(first) + 1, 1)
        start = self.model.last_seq(second) + (0 if stale else 1)
        two = self.batch(second, max(1, start + (first == second)), 1)
        self.both([*one, *two])

    @invariant()
    def same_contents(self) -> None:
        assert self.model.count() == self.store.count()
        assert list(self.model.opportunity_ids()) == list(self.store.opportunity_ids())
        assert list(self.model.scan()) == list(self.store.scan(batch_size=2))
        for opportunity_id in ("a", "b", "c"):
            assert self.model.last_seq(opportunity_id) == self.store.last_seq(opportunity_id)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestStoreAgainstModel = StoreAgainstModel.TestCase
TestStoreAgainstModel.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)


def test_concurrency_errors_name_the_conflicting_opportunity(path: Path) -> None:
    with SQLiteStore(path) as store:
        store.append(make_log("a", 2))
        with pytest.raises(ConcurrencyError, match="'a' has events up to seq 2, expected 0"):
            store.append(make_log("a", 1))


@given(us=st.integers(-(2**62), 2**62) | st.integers(-(10**12), 10**12))
def test_stored_instants_decode_exactly_like_a_microsecond_timedelta(us: int) -> None:
    from datetime import datetime, timedelta, timezone

    from stagegate._time import from_epoch_us

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    try:
        expected = epoch + timedelta(microseconds=us)
    except OverflowError:
        return
    assert from_epoch_us(us) == expected


@pytest.mark.slow
def test_the_store_benchmark_prints_its_figures_as_json(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "store.py"
    result = subprocess.run(
        [sys.executable, str(script), "--deals", "300", "--chunk", "100", "--single-events", "200"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(script.parents[1] / "src")},
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("events_per_s_batched", "events_per_s_single", "bytes_per_event", "report_s"):
        assert figures[key] > 0, key


def test_count_read_from_the_projection_equals_the_table(tmp_path: Path) -> None:
    """``count()`` sums the projection's chunks: merged chunks, batches, a refused append."""
    path = tmp_path / "counted.sqlite"
    with SQLiteStore(path) as store:
        for i in range(70):  # more single appends than MERGE_EVERY: small chunks get merged
            store.append(make_log(f"s-{i:02d}", 1))
        store.append([e for i in range(5) for e in make_log(f"b-{i}", 3)])
        with pytest.raises(ConcurrencyError):  # refused: counts nothing
            store.append(make_log("s-00", 1))
        counted = store.count()
    with sqlite3.connect(path) as conn:
        (table,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (chunks,) = conn.execute("SELECT count(*) FROM projection").fetchone()
    assert (counted, table) == (85, 85)
    assert chunks < 70  # the single appends' chunks were merged, their counts summed
