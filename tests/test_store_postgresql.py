"""The PostgreSQL event store against a real server: a throwaway cluster started for this module.

The conformance suite, the database's own concurrency guarantee (10 writer processes x 100
appends on one deal; a writer killed with SIGKILL in the middle of a batch), the column-wise
frame, and the command line with ``--store postgresql://...``. Skipped, with the reason, only
where no PostgreSQL binaries exist.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store_conformance as conformance
from postgresql_server import Cluster, cluster, missing_reason
from stagegate.errors import ConcurrencyError, EventLogError
from stagegate.events import Event, EventKind, MoveKind
from stagegate.store import (
    FRAME_COLUMNS,
    EventStore,
    MemoryStore,
    PostgreSQLStore,
    SQLiteStore,
    StoreClosedError,
    StoreError,
    is_postgresql_url,
    open_store,
)
from store_conformance import T0, make_event, make_log

psycopg = pytest.importorskip("psycopg", reason="needs the postgresql extra (psycopg)")
_missing = missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

_schemas = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    with cluster() as running:
        yield running


@pytest.fixture(scope="module")
def url(server: Cluster) -> str:
    return server.url()


def fresh_schema(tag: str = "") -> str:
    digest = hashlib.sha1(f"{os.getpid()}-{tag}".encode(), usedforsecurity=False).hexdigest()
    return f"t{next(_schemas)}_{digest[:10]}"


class PostgreSQLBackend:
    shared_between_processes = True
    stores_nul = False

    @pytest.fixture(autouse=True)
    def _server_url(self, url: str) -> None:
        self.url = url

    def make_store(self, path: Path) -> EventStore:
        return PostgreSQLStore(self.url, schema=fresh_schema(str(path)), timeout=30)


class TestAppendAndLoad(PostgreSQLBackend, conformance.AppendAndLoad):
    pass


class TestQueries(PostgreSQLBackend, conformance.Queries):
    pass


class TestOpportunities(PostgreSQLBackend, conformance.Opportunities):
    pass


class TestFrames(PostgreSQLBackend, conformance.Frames):
    pass


class TestProcesses(PostgreSQLBackend, conformance.Processes):
    pass


class TestLifecycle(PostgreSQLBackend, conformance.Lifecycle):
    pass


class TestSealing(PostgreSQLBackend, conformance.Sealing):
    pass


class TestConcurrentWriters(PostgreSQLBackend, conformance.ConcurrentWriters):
    pass


class TestImportRecords(PostgreSQLBackend, conformance.Imports):
    pass


def store_in(url: str, **options: Any) -> PostgreSQLStore:
    return PostgreSQLStore(url, schema=fresh_schema(), **options)


def raw(url: str, schema: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# -- child processes (spawned: module-level functions) ---------------------------------------


def append_slowly(store: PostgreSQLStore, events: list[Any], started: Any) -> None:
    """Append one big batch; after its first chunk is sent, say so and wait to be killed."""

    def progress(done: int) -> None:
        started.set()
        time.sleep(60)

    store.append(events, progress=progress)


class TestTheDatabaseDecides:
    def test_ten_writer_processes_append_exactly_a_thousand_events_to_one_deal(
        self, url: str
    ) -> None:
        writers, wins = 10, 100
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(writers)
        began = time.monotonic()
        with store_in(url) as store:
            processes = [
                context.Process(
                    target=conformance.race_appends, args=(store, "hot", f"w{i}", wins, start)
                )
                for i in range(writers)
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join(timeout=240 - (time.monotonic() - began))
            assert [0] * writers == [process.exitcode for process in processes]
            conformance.assert_raced_log(store, "hot", writers, wins)  # 1..1000: no gaps, no twins
            assert 1000 == store.count()
            (verdict,) = store.verify(require_digests=True)
            assert (True, 1000) == (verdict.ok, verdict.verification.sealed)  # type: ignore[union-attr]

    def test_a_writer_killed_mid_batch_leaves_nothing_and_the_store_verifies(
        self, url: str
    ) -> None:
        context = multiprocessing.get_context("spawn")
        with store_in(url) as store:
            store.append([*make_log("kept", 3), *make_log("big-00000", 1)])
            batch = [
                *make_log("big-00000", 2, start=2),
                *(e for i in range(1, 10_000) for e in make_log(f"big-{i:05d}", 3)),
            ]
            started = context.Event()
            writer = context.Process(target=append_slowly, args=(store, batch, started))
            writer.start()
            try:
                assert started.wait(timeout=120), "the writer never started its batch"
                os.kill(writer.pid or 0, signal.SIGKILL)
            finally:
                writer.join(timeout=60)
            assert -signal.SIGKILL == writer.exitcode
            assert (4, ["big-00000", "kept"]) == (store.count(), list(store.opportunity_ids()))
            assert all(verdict.ok for verdict in store.verify(require_digests=True))
            store.append(batch)  # the dead writer's transaction holds no lock any more
            assert 4 + len(batch) == store.count()
            assert all(verdict.ok for verdict in store.verify(require_digests=True))

    def test_a_writer_whose_store_was_replaced_meanwhile_leaves_no_gap(self, url: str) -> None:
        from stagegate.store import ImportRecord

        record = ImportRecord(0, conformance.T0, "events", "x", 1, 1, 1, 1)
        with store_in(url) as mine, PostgreSQLStore(url, schema=mine.schema) as other:
            mine.append(make_log("a", 2))
            assert 2 == mine.last_seq("a")  # mine now knows a's last event
            other.write_import(make_log("a", 1, actor="ben"), record=record, replace=True)
            with pytest.raises(ConcurrencyError) as caught:
                mine.append(make_log("a", 1, start=3), expected_seq=2)
            assert (2, 1) == (caught.value.expected_seq, caught.value.actual_seq)
            other.write_import(make_log("a", 2, actor="ben"), record=record, replace=True)
            mine.append(make_log("a", 1, start=3), expected_seq=2)  # chains from ben's seq 2
            assert ["ben", "ben", "ana"] == [e.actor for e in mine.load("a")]
            assert all(verdict.ok for verdict in mine.verify(require_digests=True))

    def test_the_primary_key_refuses_a_duplicate_even_from_plain_sql(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            with pytest.raises(psycopg.errors.UniqueViolation):
                raw(url, store.schema, "INSERT INTO events SELECT * FROM events")

    def test_a_conflict_between_two_open_stores_names_the_seqs(self, url: str) -> None:
        with store_in(url) as one, PostgreSQLStore(url, schema=one.schema) as other:
            one.append(make_log("a", 2))
            other.append(make_log("a", 1, start=3, actor="ben"))
            with pytest.raises(ConcurrencyError) as caught:
                one.append(make_log("a", 1, start=3))
            assert (2, 3) == (caught.value.expected_seq, caught.value.actual_seq)
            assert ["ana", "ana", "ben"] == [e.actor for e in one.load("a")]


class TestLayout:
    def test_tables_live_in_their_own_schema_with_native_dates(self, url: str) -> None:
        from datetime import date

        with store_in(url) as store:
            store.append([make_event("a", 1, close_date=date(2026, 3, 31))])
            rows = raw(url, store.schema, "SELECT close_date, at_us, seq FROM events")
            tables = raw(
                url,
                store.schema,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY table_name",
                (store.schema,),
            )
        assert [(date(2026, 3, 31), 1767603660000000, 1)] == rows
        assert [("events",), ("imports",), ("meta",), ("processes",)] == tables

    def test_the_url_may_name_the_schema(self, url: str) -> None:
        schema = fresh_schema()
        with open_store(f"{url}&schema={schema}") as store:
            assert isinstance(store, PostgreSQLStore)
            assert schema == store.schema
            store.append(make_log("a", 1))
        with PostgreSQLStore(url, schema=schema) as again:
            assert 1 == again.count()

    def test_two_schemas_are_two_stores(self, url: str) -> None:
        with store_in(url) as one, store_in(url) as two:
            one.append(make_log("a", 2))
            assert (2, 0) == (one.count(), two.count())

    def test_a_store_pickles_as_its_url_and_schema(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            with pickle.loads(pickle.dumps(store)) as copy:  # noqa: S301 - our own object
                assert (store.schema, 1) == (copy.schema, copy.count())

    def test_events_with_nul_are_refused_whole(self, url: str) -> None:
        with store_in(url) as store:
            with pytest.raises(EventLogError, match="NUL"):
                store.append([*make_log("a", 1), make_event("b", 1, actor="a\x00b")])
            assert 0 == store.count()

    def test_a_seq_beyond_64_bits_is_refused(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            with pytest.raises((EventLogError, ConcurrencyError)):
                store.append([attrs.evolve(make_event("a", 2), seq=2**64)])
            assert 1 == store.count()

    def test_a_schema_of_foreign_tables_is_refused_untouched(self, url: str) -> None:
        schema = fresh_schema()
        raw(url, "public", f"CREATE SCHEMA {schema}")
        raw(url, schema, "CREATE TABLE deals (id int)")
        with pytest.raises(StoreError, match="not a stagegate event store"):
            PostgreSQLStore(url, schema=schema)
        assert [("deals",)] == raw(
            url,
            schema,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        )

    def test_a_newer_layout_is_refused_with_advice(self, url: str) -> None:
        with store_in(url) as store:
            schema = store.schema
        raw(url, schema, "UPDATE meta SET value = '9' WHERE key = 'schema_version'")
        with pytest.raises(StoreError, match="upgrade stagegate"):
            PostgreSQLStore(url, schema=schema)

    @pytest.mark.parametrize("schema", ["Sales", "1st", "a-b", "x" * 64, ""])
    def test_a_schema_that_is_not_a_plain_name_is_refused(self, url: str, schema: str) -> None:
        with pytest.raises(StoreError, match="plain lowercase SQL name"):
            PostgreSQLStore(url, schema=schema)

    def test_two_different_schemas_in_url_and_argument_are_refused(self, url: str) -> None:
        with pytest.raises(StoreError, match="give one"):
            PostgreSQLStore(f"{url}&schema=one", schema="two")

    def test_an_unreachable_server_is_a_store_error_without_the_password(
        self, tmp_path: Path
    ) -> None:
        target = f"postgresql://ana:s3cret@/nodb?host={tmp_path}"
        with pytest.raises(StoreError) as caught:
            PostgreSQLStore(target, timeout=2)
        assert "cannot connect" in str(caught.value)
        assert "s3cret" not in str(caught.value)
        assert "ana:***@" in str(caught.value)

    def test_the_repr_hides_the_password(self, url: str) -> None:
        with store_in(url) as store:
            assert "PostgreSQLStore(" in repr(store)
        hidden = url.replace("postgres@", "postgres:s3cret@")
        with PostgreSQLStore(hidden, schema=store.schema) as store:
            assert "s3cret" not in repr(store)
            assert "***" in repr(store)

    def test_a_path_is_not_a_url(self) -> None:
        assert (True, True, False, False) == (
            is_postgresql_url("postgresql://h/db"),
            is_postgresql_url("POSTGRES://h/db"),
            is_postgresql_url("deals.sqlite"),
            is_postgresql_url(Path("postgresql://h/db")),
        )
        with pytest.raises(StoreError, match="postgresql:// URL"):
            PostgreSQLStore("deals.sqlite")

    def test_a_closed_store_refuses_a_scan_in_progress(self, url: str) -> None:
        store = store_in(url)
        store.append([*make_log("a", 1), *make_log("b", 1)])
        scan = store.scan(batch_size=1)
        next(scan)
        store.close()
        with pytest.raises(StoreClosedError):
            list(scan)


class TestColumnWiseFrames:
    def test_the_frame_equals_the_one_sqlite_gives_for_the_same_events(
        self, url: str, tmp_path: Path
    ) -> None:
        pytest.importorskip("polars")
        from datetime import date
        from decimal import Decimal

        from stagegate.events import EventKind, MoveKind

        odd = [
            make_event("a,1", 1, stage='qu"ote', amount=Decimal("1E+5")),
            make_event(
                "a,1",
                2,
                kind=EventKind.STAGE_CHANGED,
                stage="",
                from_stage='qu"ote',
                move=MoveKind.ADVANCE,
                amount=Decimal("-0.10"),
                close_date=date(1, 1, 1),
            ),
            make_event("b\nline", 1, stage="é 한국", close_date=date(9999, 12, 31)),
        ]
        events = odd + [e for i in range(200) for e in make_log(f"d{i:03d}", 3)]
        with store_in(url) as store, SQLiteStore(tmp_path / "s.sqlite") as sqlite:
            store.append(events)
            sqlite.append(events)
            expected, actual = sqlite.to_frame(), store.to_frame()
            memory = MemoryStore()
            memory.append(events)
            assert expected.schema == actual.schema
            assert expected.equals(actual)
            assert memory.to_frame().equals(actual)
            assert ["", None] == actual["stage"][1:2].to_list() + actual["from_stage"][:1].to_list()

    def test_an_empty_store_gives_an_empty_frame_with_the_columns(self, url: str) -> None:
        pytest.importorskip("polars")
        with store_in(url) as store:
            frame = store.to_frame()
        assert (0, MemoryStore().to_frame().schema) == (frame.height, frame.schema)


# -- the column-wise frame against SQLite's, on random logs with owners and segments ---------

_FRAME_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5)
_AWKWARD = st.sampled_from(  # half of them escaped in JSON (those first: drawn most often)
    ["back\\slash", 'q"x', "two\nlines", "tab\t", "bell\x07", "", "NULL", "a,b", "é 한", "\x7f"]
)
_TEXTS = _AWKWARD | _FRAME_TEXT
_SEGMENT_NAMES = st.sampled_from(["team", "region", "owner", "a,b", "é"]) | _FRAME_TEXT
# weighted to text values, the awkward ones first: the server splits those it can
_SEGMENT_VALUES = st.one_of(
    _AWKWARD,
    _FRAME_TEXT,
    st.none(),
    st.integers(-(10**20), 10**20) | st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.integers(0, 9), max_size=2),
)
_FRAME_KINDS = [EventKind.ATTRIBUTE_SET, EventKind.REASSIGNED, EventKind.ACTIVITY_LOGGED,
                EventKind.STAGE_CHANGED]  # fmt: skip


@st.composite
def segment_logs(draw: st.DrawFn) -> list[Event]:
    """Events of a few deals, interleaved, with reassignments, attributes set and cleared,
    ties of instants, and text the CSV must quote."""
    from stagegate.events import freeze

    seqs: dict[str, int] = {}
    events = []
    deals = st.sampled_from(["d1", "d,2", 'd"3', "d\n4", "é5"])
    for oid in draw(st.lists(deals, min_size=4, max_size=40)):
        seq = seqs[oid] = seqs.get(oid, 0) + 1
        kind = EventKind.OPENED if seq == 1 else draw(st.sampled_from(_FRAME_KINDS))
        subject: str | None = draw(st.none() | _TEXTS)
        details = None
        if kind is EventKind.ATTRIBUTE_SET:
            subject = draw(_SEGMENT_NAMES | st.none())
            value = draw(_SEGMENT_VALUES)
            shape = draw(st.sampled_from(["plain", "none", "more"]))  # the first most often
            details = {"plain": {"value": value}, "more": {"value": value, "by": "x"}}.get(shape)
        elif kind is EventKind.REASSIGNED:
            subject = draw(st.none() | _SEGMENT_NAMES | _TEXTS)
        events.append(
            Event(
                opportunity_id=oid,
                seq=seq,
                kind=kind,
                at=T0 + timedelta(minutes=draw(st.integers(0, 3))),  # ties, and back in time
                actor="ana",
                stage=draw(_TEXTS),
                process="b2b",
                process_version="1",
                from_stage=draw(st.none() | _TEXTS),
                move=draw(st.none() | st.sampled_from(MoveKind)),
                reason=draw(st.none() | _TEXTS),
                amount=draw(st.none() | st.decimals(allow_nan=False, allow_infinity=False)),
                close_date=draw(st.none() | st.dates()),
                subject=subject,
                details=None if details is None else freeze(details),
            )
        )
    return events


def _same_frames(expected: Any, actual: Any, backend: str) -> None:
    if backend == "pandas":
        assert list(expected.dtypes) == list(actual.dtypes)
    else:
        assert expected.schema == actual.schema
    assert expected.equals(actual)


class TestColumnWiseFramesEqualSQLites:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        segment_logs(),
        st.none() | st.lists(st.sampled_from(FRAME_COLUMNS), min_size=1, unique=True),
    )
    def test_random_logs_with_segments_give_sqlites_frame(
        self,
        url: str,
        tmp_path_factory: pytest.TempPathFactory,
        events: list[Event],
        columns: list[str] | None,
    ) -> None:
        pytest.importorskip("polars")
        pytest.importorskip("pandas")
        path = tmp_path_factory.mktemp("frames") / "s.sqlite"
        with store_in(url) as store, SQLiteStore(path) as sqlite:
            for start in range(0, len(events), 7):  # several batches: several chunks in SQLite
                store.append(events[start : start + 7])
                sqlite.append(events[start : start + 7])
            for backend, categorical in [("polars", False), ("polars", True),
                                         ("pyarrow", True), ("pandas", False)]:  # fmt: skip
                options = {"backend": backend, "columns": columns, "categorical": categorical}
                try:
                    expected = sqlite.to_frame(**options)
                except StoreError as error:  # an attribute named like a column: refused alike
                    refusal = str(error)
                    with pytest.raises(type(error)) as refused:
                        store.to_frame(**options)
                    assert refusal == str(refused.value)
                    continue
                _same_frames(expected, store.to_frame(**options), backend)

    def test_details_the_server_cannot_split_are_decoded_here(self, url: str) -> None:
        pytest.importorskip("polars")
        from stagegate.events import freeze

        values = ['say "hi"', "tab\there", True, 2.5, None, [1, 2], "plain"]
        events = [make_event("a", 1)] + [
            make_event(
                "a",
                seq,
                kind=EventKind.ATTRIBUTE_SET,
                subject="team",
                details=freeze({"value": value}),
                at=T0 + timedelta(hours=seq),
            )
            for seq, value in enumerate(values, start=2)
        ]
        with store_in(url) as store:
            store.append(events)
            frame = store.to_frame(columns=["seq"])
        expected = [None, 'say "hi"', "tab\there", "True", "2.5", None, "[1, 2]", "plain"]
        assert expected == frame["team"].to_list()

    def test_details_changed_into_text_that_is_not_json_are_a_store_error(self, url: str) -> None:
        pytest.importorskip("polars")
        from stagegate.events import freeze

        events = [
            make_event("a", 1),
            make_event(
                "a", 2, kind=EventKind.ATTRIBUTE_SET, subject="team", details=freeze({"value": "x"})
            ),
        ]
        with store_in(url) as store:
            store.append(events)
            raw(url, store.schema, "UPDATE events SET details = '{\"value\":' WHERE seq = 2")
            with pytest.raises(StoreError, match="event 2 of 'a' holds details that are not JSON"):
                store.to_frame()

    def test_progress_counts_the_events_read(self, url: str) -> None:
        pytest.importorskip("polars")
        from stagegate._progress import Phases

        seen: list[tuple[str, int, int | None]] = []

        class Recorder(Phases):
            def phase(self, name: str, total: int | None = None) -> Any:
                return lambda done: seen.append((name, done, total))

        with store_in(url) as store:
            store.append([e for i in range(30) for e in make_log(f"p{i}", 3)])
            store.to_frame(phases=Recorder())
        assert ("reading", 90, 90) == seen[-1]

    def test_a_closed_store_refuses_a_frame(self, url: str) -> None:
        store = store_in(url)
        store.close()
        with pytest.raises(StoreClosedError):
            store.to_frame()


class TestImports:
    def test_an_import_writes_events_definition_and_record_at_once(self, url: str) -> None:
        from stagegate import demo
        from stagegate.store import ImportRecord
        from stagegate.templates import b2b

        events = [e for deal in demo.drive_sample_deals() for e in deal.events]
        record = ImportRecord(0, conformance.T0, "events", "log.jsonl", 28, 28, 3, 28)
        with store_in(url) as store:
            stored = store.write_import(events, process=b2b(), record=record)
            assert stored is not None
            assert (1, 28) == (stored.id, stored.events)
            assert (len(events), [("b2b", "1")], [stored]) == (
                store.count(),
                store.processes(),
                list(store.imports()),
            )
            again = store.write_import(events[:5], process=b2b(), record=record, replace=True)
            assert again is not None
            assert (5, [2]) == (store.count(), [r.id for r in store.imports()])

    def test_an_import_that_conflicts_writes_nothing(self, url: str) -> None:
        from stagegate.store import ImportRecord
        from stagegate.templates import b2b

        record = ImportRecord(0, conformance.T0, "events", "log.jsonl", 1, 1, 1, 1)
        with store_in(url) as store:
            store.append(make_log("a", 1))
            with pytest.raises(ConcurrencyError):
                store.write_import(make_log("a", 1), process=b2b(), record=record)
            assert (1, [], ()) == (store.count(), store.processes(), store.imports())


def stagegate(*args: str) -> tuple[int, Any]:
    """Run the command line in a real subprocess; return its exit code and its JSON output."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "stagegate", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not JSON: {done.stdout!r} {done.stderr!r}") from None


class TestCommandLine:
    @pytest.fixture
    def logs(self, tmp_path: Path) -> tuple[Path, Path, int]:
        from stagegate import demo
        from stagegate.io import write_events

        events = [e for deal in demo.drive_sample_deals() for e in deal.events]
        write_events(tmp_path / "log.jsonl", events)
        write_events(tmp_path / "log.csv", events[:10])
        return tmp_path / "log.jsonl", tmp_path / "log.csv", len(events)

    def test_import_verify_report_and_backup_take_a_postgresql_url(
        self, url: str, tmp_path: Path, logs: tuple[Path, Path, int]
    ) -> None:
        jsonl, csv, count = logs
        target = f"{url}&schema={fresh_schema()}"
        code, imported = stagegate("import", str(jsonl), "--store", target)
        assert (0, count, 3) == (code, imported["events"], imported["opportunities"])
        code, again = stagegate("import", str(jsonl), "--store", target)
        assert (2, False) == (code, again["ok"])
        assert "already holds these events" in again["error"]

        code, verified = stagegate("verify", "--store", target, "--require-digests")
        assert (0, True, 3) == (code, verified["ok"], len(verified["logs"]))

        lite = tmp_path / "same.sqlite"
        assert 0 == stagegate("import", str(jsonl), "--store", str(lite))[0]
        code, report = stagegate("report", "--store", target)
        code_lite, report_lite = stagegate("report", "--store", str(lite))
        assert (0, 0) == (code, code_lite)
        assert report_lite == report  # the same numbers from either backend

        code, backed = stagegate("backup", str(tmp_path / "copy.sqlite"), "--store", target)
        assert (0, count) == (code, backed["events"])
        assert "***" not in backed["store"]
        code, copy = stagegate("verify", "--store", str(tmp_path / "copy.sqlite"))
        assert (0, True) == (code, copy["ok"])
        with SQLiteStore(tmp_path / "copy.sqlite") as copied, open_store(target) as store:
            assert list(store.scan()) == list(copied.scan())
            assert store.imports() == copied.imports()
            assert store.processes() == copied.processes()

        code, replaced = stagegate("import", str(csv), "--store", target, "--replace")
        assert (0, 10) == (code, replaced["events"])
        with open_store(target) as store:
            assert (10, 1) == (store.count(), len(store.imports()))

    def test_a_backup_never_overwrites_a_file(self, url: str, tmp_path: Path) -> None:
        (tmp_path / "taken.sqlite").write_text("keep")
        with store_in(url) as store, pytest.raises(StoreError, match="exists already"):
            store.backup(tmp_path / "taken.sqlite")
        assert "keep" == (tmp_path / "taken.sqlite").read_text()

    def test_an_unreachable_store_fails_with_advice(self, tmp_path: Path) -> None:
        code, answer = stagegate("verify", "--store", f"postgresql://x@/db?host={tmp_path}")
        assert (2, False) == (code, answer["ok"])
        assert "cannot connect" in answer["error"]


class TestErrors:
    def test_a_lock_held_longer_than_the_timeout_is_a_store_locked_error(self, url: str) -> None:
        from stagegate.store import StoreLockedError

        with store_in(url, timeout=1) as store, psycopg.connect(url) as holder:
            store.append(make_log("a", 1))
            holder.execute(f"LOCK TABLE {store.schema}.events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreLockedError, match="retry later"):
                store.append(make_log("b", 1))
            holder.rollback()
            assert 1 == store.count()

    def test_a_user_without_write_privilege_gets_an_unwritable_error(self, url: str) -> None:
        from stagegate.store import StoreUnwritableError

        with store_in(url) as store:
            store.append(make_log("a", 1))
            raw(url, "public", "DROP ROLE IF EXISTS reader")
            raw(url, "public", "CREATE ROLE reader LOGIN")
            raw(url, "public", f"GRANT USAGE ON SCHEMA {store.schema} TO reader")
            raw(url, "public", f"GRANT SELECT ON ALL TABLES IN SCHEMA {store.schema} TO reader")
            as_reader = url.replace("postgres@", "reader@")
            with PostgreSQLStore(as_reader, schema=store.schema) as read_only:
                assert 1 == read_only.count()
                with pytest.raises(StoreUnwritableError, match="cannot be written by this user"):
                    read_only.append(make_log("b", 1))
            assert 1 == store.count()

    def test_a_schema_a_dba_made_needs_no_create_privilege_on_the_database(self, url: str) -> None:
        from stagegate.store import StoreUnwritableError

        schema = fresh_schema()
        raw(url, "public", "DROP ROLE IF EXISTS teamapp")
        raw(url, "public", "CREATE ROLE teamapp LOGIN")
        as_app = url.replace("postgres@", "teamapp@")
        with pytest.raises(StoreUnwritableError, match="grant it CREATE"):
            PostgreSQLStore(as_app, schema=schema)
        raw(url, "public", f"CREATE SCHEMA {schema} AUTHORIZATION teamapp")
        with PostgreSQLStore(as_app, schema=schema) as store:
            store.append(make_log("a", 2))
            assert 2 == store.count()

    def test_a_connection_the_server_drops_fails_one_call_then_reconnects(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            raw(
                url,
                "public",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'stagegate' AND pid <> pg_backend_pid()",
            )
            with pytest.raises(StoreError, match="lost the connection"):
                store.append(make_log("b", 1))
            store.append(make_log("b", 1))
            assert 2 == store.count()


class TestCopyingStores:
    def test_a_sqlite_store_moves_into_postgresql_whole(self, url: str, tmp_path: Path) -> None:
        from stagegate import demo
        from stagegate.templates import b2b

        events = [e for deal in demo.drive_sample_deals() for e in deal.events]
        with SQLiteStore(tmp_path / "s.sqlite") as lite, store_in(url) as store:
            lite.append(events)
            store.append(make_log("other", 2))
            store.write_import_from(lite, process=b2b(), batch_size=4)
            assert list(lite.scan()) == [e for e in store.scan() if e.opportunity_id != "other"]
            assert [("b2b", "1")] == store.processes()
            assert all(verdict.ok for verdict in store.verify(require_digests=True))

    def test_a_copy_that_would_not_continue_a_log_writes_nothing(
        self, url: str, tmp_path: Path
    ) -> None:
        with SQLiteStore(tmp_path / "s.sqlite") as lite, store_in(url) as store:
            lite.append([*make_log("a", 2), *make_log("b", 1)])
            store.append(make_log("b", 1, actor="ben"))
            with pytest.raises(ConcurrencyError):
                store.write_import_from(lite, batch_size=1)
            assert (1, ["b"]) == (store.count(), list(store.opportunity_ids()))

    def test_held_names_the_opportunities_the_store_has(self, url: str) -> None:
        with store_in(url) as store:
            store.append([*make_log("a", 1), *make_log("b", 1)])
            assert {"a"} == store.held(["a", "z", "a"])


class TestImportFunctions:
    @pytest.fixture
    def events(self) -> list[Any]:
        from stagegate import demo

        return [e for deal in demo.drive_sample_deals() for e in deal.events]

    def test_write_import_takes_a_url_and_refuses_another_history(
        self, url: str, events: list[Any]
    ) -> None:
        from stagegate.store import ImportRefusedError, write_import
        from stagegate.templates import b2b

        target = f"{url}&schema={fresh_schema()}"
        outcome = write_import(target, events, process=b2b(), source="events")
        assert (len(events), 3) == (outcome.record.events, outcome.record.opportunities)
        changed = [attrs.evolve(events[0], actor="someone else"), *events[1:]]
        with pytest.raises(ImportRefusedError) as caught:
            write_import(target, changed, process=b2b(), source="events")
        assert "different_history" == caught.value.code
        replaced = write_import(target, changed, process=b2b(), source="events", replace=True)
        assert replaced.replaced
        with open_store(target) as store:
            assert "someone else" == store.load(events[0].opportunity_id)[0].actor

    def test_events_that_do_not_replay_are_refused_before_anything_is_written(
        self, url: str, events: list[Any]
    ) -> None:
        from stagegate.store import ImportRefusedError, write_import
        from stagegate.templates import b2b

        target = f"{url}&schema={fresh_schema()}"
        broken = [e for e in events if e.seq != 2]  # a gap in every log
        with pytest.raises(ImportRefusedError):
            write_import(target, broken, process=b2b(), source="events")
        with open_store(target) as store:
            assert 0 == store.count()

    def test_stream_import_continues_a_stored_log(
        self, url: str, events: list[Any], tmp_path: Path
    ) -> None:
        from stagegate.io import write_events
        from stagegate.store import stream_import
        from stagegate.templates import b2b

        target = f"{url}&schema={fresh_schema()}"
        first = [e for e in events if e.seq <= 2]
        rest = [e for e in events if e.seq > 2]
        write_events(tmp_path / "first.jsonl", first)
        write_events(tmp_path / "rest.jsonl", rest)
        stream_import(target, tmp_path / "first.jsonl", process=b2b())
        outcome = stream_import(target, tmp_path / "rest.jsonl", process=b2b(), batch_size=5)
        assert len(rest) == outcome.record.events
        with open_store(target) as store:
            assert len(events) == store.count()
            assert all(verdict.ok for verdict in store.verify(b2b(), require_digests=True))


class TestTampering:
    def test_a_row_changed_in_the_database_breaks_its_chain_and_only_its_own(
        self, url: str, tmp_path: Path
    ) -> None:
        with store_in(url) as store:
            store.append([*make_log("a", 3), *make_log("b", 2)])
            raw(
                url,
                store.schema,
                "UPDATE events SET actor = 'mallory' WHERE seq = 2 AND opportunity_id = 'a'",
            )
            a, b = store.verify()
            assert (False, 2, "digest_mismatch", True) == (a.ok, a.seq, a.rule, b.ok)
            code, answer = stagegate("verify", "--store", f"{url}&schema={store.schema}")
            assert (1, False) == (code, answer["ok"])
            with pytest.raises(EventLogError, match="digest"):
                store.backup(tmp_path / "copy.sqlite")
            assert [] == list(tmp_path.iterdir())  # no half copy left behind

    def test_a_row_that_cannot_be_read_is_reported_as_malformed(self, url: str) -> None:
        with store_in(url) as store:
            store.append([*make_log("a", 2), *make_log("b", 1)])
            raw(url, store.schema, "UPDATE events SET kind = 'bogus' WHERE opportunity_id = 'a'")
            with pytest.raises(EventLogError, match="malformed"):
                store.load("a")
            a, b = store.verify()
            assert (False, "malformed", True) == (a.ok, a.rule, b.ok)
