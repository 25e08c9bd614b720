"""Faults injected into the PostgreSQL store: odd URLs, timeouts, edited rows, a stopped server.

Each test is a bug once found (it failed before its fix) or a fault the store must survive: a
server stopped mid-batch and restarted, with every committed batch kept and nothing of the
failed one. Skipped, with the reason, where no PostgreSQL binaries exist.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from postgresql_server import Cluster, binaries, cluster, missing_reason
from stagegate.errors import EventLogError
from stagegate.store import (
    ImportRecord,
    PostgreSQLStore,
    SQLiteStore,
    StoreError,
    StoreLockedError,
    StoreUnwritableError,
)
from store_conformance import T0, make_event, make_log

psycopg = pytest.importorskip("psycopg", reason="needs the postgresql extra (psycopg)")
_missing = missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

_schemas = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    with cluster({"synchronous_commit": "on"}) as running:  # a crash keeps every commit
        yield running


@pytest.fixture(scope="module")
def url(server: Cluster) -> str:
    return server.url()


def store_in(url: str, **options: Any) -> PostgreSQLStore:
    return PostgreSQLStore(url, schema=f"f{next(_schemas)}_{os.getpid()}", **options)


def raw(url: str, schema: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def pg_ctl(server: Cluster, *arguments: str) -> None:
    command = [str(binaries() / "pg_ctl"), "-D", str(server.data), *arguments]  # type: ignore[operator]
    if os.geteuid() == 0:
        command = ["runuser", "-u", server.user, "--", *command]
    subprocess.run(command, cwd=server.folder, capture_output=True, timeout=60, check=True)


def stop(server: Cluster) -> None:
    pg_ctl(server, "-m", "immediate", "-w", "stop")


def start(server: Cluster) -> None:
    options = f"-c listen_addresses='' -k {server.data} -c fsync=off -c max_connections=60"
    pg_ctl(server, "-o", options, "-l", str(server.folder / "restart.log"), "-w", "start")


class TestURLs:
    def test_a_url_with_an_unclosed_bracket_is_a_store_error(self) -> None:
        with pytest.raises(StoreError, match="malformed"):
            PostgreSQLStore("postgresql://ana:s3cret@[::1/sales")

    def test_a_url_without_a_host_keeps_its_slashes(self, server: Cluster) -> None:
        bare = f"postgresql:///postgres?host={server.data}&user={server.user}&schema=bare"
        with PostgreSQLStore(bare, timeout=5) as store:  # libpq read postgresql:/postgres
            store.append(make_log("a", 1))
            assert 1 == store.count()

    def test_options_with_spaces_reach_the_server(self, url: str) -> None:
        spaced = f"{url}&options=-c%20statement_timeout%3D4321"  # was sent as -c+statement...
        with store_in(spaced, timeout=5) as store:
            store.append(make_log("a", 1))
            assert 1 == store.count()
        with psycopg.connect(spaced.replace("&schema", "&x")) as conn:
            assert ("4321ms",) == conn.execute("SHOW statement_timeout").fetchone()

    def test_a_plus_in_the_query_reaches_libpq_as_a_plus(self, server: Cluster) -> None:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute('DROP ROLE IF EXISTS "ana+ben"')
            conn.execute('CREATE ROLE "ana+ben" LOGIN SUPERUSER')
        plus = f"postgresql:///postgres?host={server.data}&user=ana+ben&schema=plus"
        with PostgreSQLStore(plus, timeout=5) as store:  # was role "ana ben": no such role
            store.append(make_log("a", 1))
            assert 1 == store.count()

    def test_a_password_with_a_hash_or_question_mark_stays_whole_and_hidden(
        self, server: Cluster, tmp_path: Path
    ) -> None:
        odd = "Zq#Xw?Yv"  # libpq reads it whole: the credentials end at the first @
        target = f"postgresql://{server.user}:{odd}@/postgres?host={server.data}&schema=pw"
        with PostgreSQLStore(target, timeout=5) as store:  # was cut at the #: no host, no schema
            store.append(make_log("a", 1))
            assert ("pw", 1) == (store.schema, store.count())
            shown = f"{store!r} {store.where}"
        with pytest.raises(StoreError) as caught:
            PostgreSQLStore(f"postgresql://ana:{odd}@/nodb?host={tmp_path}", timeout=1)
        for part in ("Zq", "Xw", "Yv"):
            assert part not in shown
            assert part not in str(caught.value)


class TestTimeouts:
    def test_a_statement_timeout_is_not_called_a_lock(self, url: str) -> None:
        raw(url, "public", "DROP ROLE IF EXISTS impatient")
        raw(url, "public", "CREATE ROLE impatient LOGIN SUPERUSER")
        raw(url, "public", "ALTER ROLE impatient SET statement_timeout = '200ms'")
        as_impatient = url.replace("postgres@", "impatient@")
        with store_in(as_impatient, timeout=5) as store, psycopg.connect(url) as holder:
            store.append(make_log("a", 1))
            holder.execute(f"LOCK TABLE {store.schema}.events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreLockedError, match="statement_timeout") as caught:
                store.append(make_log("b", 1))
            assert "stayed locked" not in str(caught.value)
            holder.rollback()
            assert (1, ["a"]) == (store.count(), list(store.opportunity_ids()))

    def test_no_timeout_means_no_wait_as_in_sqlite(self, url: str) -> None:
        with store_in(url, timeout=0) as store, psycopg.connect(url) as holder:
            store.append(make_log("a", 1))
            holder.execute(f"LOCK TABLE {store.schema}.events IN ACCESS EXCLUSIVE MODE")
            release = threading.Timer(3, holder.rollback)  # lock_timeout 0 waited for ever
            release.start()
            try:
                with pytest.raises(StoreLockedError, match="retry later"):
                    store.append(make_log("b", 1))
            finally:
                release.cancel()
            holder.rollback()
            assert 1 == store.count()

    @pytest.mark.parametrize("timeout", [float("inf"), 1e7, float("nan")])
    def test_a_wait_past_postgresqls_limit_is_for_ever_as_in_sqlite(
        self, url: str, tmp_path: Path, timeout: float
    ) -> None:
        with store_in(url, timeout=timeout) as store:  # was OverflowError, or a StoreError
            store.append(make_log("a", 1))
            assert 1 == store.count()
        with SQLiteStore(tmp_path / "s.sqlite", timeout=timeout) as lite:
            lite.append(make_log("a", 1))
            assert 1 == lite.count()


class TestReadOnly:
    def test_a_read_only_session_is_named_read_only_not_unprivileged(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            schema = store.schema
        read_only = f"{url}&options=-c%20default_transaction_read_only%3Don&schema={schema}"
        with PostgreSQLStore(read_only, timeout=5) as store:
            assert [1] == [e.seq for e in store.load("a")]
            for write in (
                lambda: store.append(make_log("b", 1)),
                lambda: store.write_import(make_log("c", 20)),
            ):
                with pytest.raises(StoreUnwritableError, match="read-only") as caught:
                    write()
                assert "grant" not in str(caught.value)
            assert 1 == store.count()


class TestEditedRows:
    def test_an_amount_changed_into_text_fails_the_frame_with_a_store_error(self, url: str) -> None:
        pytest.importorskip("polars")
        with store_in(url) as store:
            store.append([make_event("a", 1), make_event("a", 2, amount=Decimal(10))])
            raw(url, store.schema, "UPDATE events SET amount = 'abc' WHERE seq = 2")
            with pytest.raises(StoreError, match="changed outside stagegate"):
                store.to_frame()
            (verdict,) = store.verify()
            assert (False, "malformed") == (verdict.ok, verdict.rule)  # type: ignore[union-attr]


class TestIdsPostgreSQLCannotHold:
    @pytest.mark.parametrize("oid", ["a\x00", "\ud800", "a\udcff"])
    def test_are_held_by_no_store(self, url: str, tmp_path: Path, oid: str) -> None:
        with store_in(url) as store, SQLiteStore(tmp_path / "s.sqlite") as lite:
            store.append(make_log("a", 1))
            lite.append(make_log("a", 1))
            assert ((), 0, {"a"}) == (store.load(oid), store.last_seq(oid), store.held([oid, "a"]))
            if "\x00" in oid:  # SQLite encodes no lone surrogate either
                assert ((), 0) == (lite.load(oid), lite.last_seq(oid))


class TestValuesAtTheEdges:
    @pytest.mark.parametrize("others", [0, 20], ids=["one-statement", "copy"])
    def test_an_id_too_long_for_the_primary_key_is_refused_as_an_event_error(
        self, url: str, tmp_path: Path, others: int
    ) -> None:
        long_id = "".join(f"{n:x}" for n in range(3000))  # 10,000+ bytes the key cannot index
        with store_in(url) as store:
            store.append(make_log("kept", 1))
            batch = [*make_log(long_id, 1), *(make_event(f"k{i}", 1) for i in range(others))]
            with pytest.raises(EventLogError, match="opportunity ids within"):
                store.append(batch)  # was: "lost the connection ... check the server and retry"
            assert (1, ["kept"]) == (store.count(), list(store.opportunity_ids()))


def scan_and_close(store: PostgreSQLStore) -> None:
    """In a forked child: use the parent's store object, then close it."""
    with store:
        assert 1 == sum(1 for _ in store.scan())


class TestAForkedChild:
    @pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
    def test_closing_the_store_in_a_child_leaves_the_parents_connection(self, url: str) -> None:
        with store_in(url) as store:
            store.append(make_log("a", 1))
            child = multiprocessing.get_context("fork").Process(
                target=scan_and_close, args=(store,)
            )
            child.start()
            child.join(timeout=30)
            assert 0 == child.exitcode
            store.append(make_log("a", 1, start=2))  # was: lost the connection
            assert [1, 2] == [e.seq for e in store.load("a")]


class TestAReplacingImportMeanwhile:
    def test_a_batch_continuing_a_replaced_log_waits_for_it_and_leaves_no_gap(
        self, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        record = ImportRecord(0, T0, "events", "x", 1, 1, 1, 1)
        with store_in(url) as setup:
            setup.append(make_log("a", 3))
        failures: list[BaseException] = []

        def replace() -> None:
            try:
                with PostgreSQLStore(url, schema=setup.schema, timeout=10) as other:
                    other.write_import(make_log("a", 1, actor="ben"), record=record, replace=True)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        replacer = threading.Thread(target=replace)
        copy = PostgreSQLStore._copy

        def replace_between_reading_and_writing(conn: Any, rows: Any, progress: Any) -> None:
            if replacer.ident is None:  # once
                replacer.start()  # the batch has read a's last event (seq 3)
                replacer.join(timeout=1)  # was done at once: the batch then wrote 4, 5 after 1
            copy(conn, rows, progress)

        monkeypatch.setattr(
            PostgreSQLStore, "_copy", staticmethod(replace_between_reading_and_writing)
        )
        with PostgreSQLStore(url, schema=setup.schema) as mine:  # knows no tail: one transaction
            mine.append(make_log("a", 2, start=4), expected_seq=3)
            replacer.join(timeout=10)
            assert [] == failures
            assert [(1, "ben")] == [(e.seq, e.actor) for e in mine.load("a")]
            assert all(verdict.ok for verdict in mine.verify(require_digests=True))


class TestAStoppedServer:
    def test_a_batch_cut_by_a_crash_leaves_nothing_and_every_commit_survives(
        self, server: Cluster, url: str
    ) -> None:
        store = store_in(url, timeout=5)
        try:
            store.append(make_log("kept", 2))
            store.append(make_log("kept", 1, start=3), expected_seq=2)
            big = [e for i in range(12_000) for e in make_log(f"big-{i:05d}", 2)]

            def crash(done: int) -> None:
                if done < len(big):  # the first chunk is on the wire: stop mid-COPY
                    stop(server)

            try:
                with pytest.raises(StoreError, match="lost the connection"):
                    store.append(big, progress=crash)
                with pytest.raises(StoreError, match="cannot connect"):
                    store.load("kept")  # between calls: still down
            finally:
                start(server)
            assert (3, ["kept"]) == (store.count(), list(store.opportunity_ids()))
            assert all(verdict.ok for verdict in store.verify(require_digests=True))
            store.append(make_log("kept", 1, start=4), expected_seq=3)
            assert [1, 2, 3, 4] == [e.seq for e in store.load("kept")]
        finally:
            store.close()
