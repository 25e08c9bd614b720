"""The fast path of the import: what it stores is byte for byte what the ordinary path stores."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from processes import ctrl_c, ctrl_c_once_waiting, ctrl_c_seen, unmeasured_env
from stagegate.errors import StagegateError
from stagegate.io import read_events, write_events
from stagegate.io._arrow import NotPlainError, plain_batches
from stagegate.io.canonical import EVENT_COLUMNS
from stagegate.simulate import simulate
from stagegate.store import SQLiteStore, stream_import, write_import
from stagegate.store._bulk import bulk_import
from stagegate.templates import b2b

PROCESS = b2b()
STAGES = [stage.id for stage in PROCESS.stages]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
FORMATS = ("csv", "jsonl", "parquet")


def _dump(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows the way write_events lays out each format (values given as text)."""
    fmt = path.suffix[1:]
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(_objects(row), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
    else:
        columns = {name: [row[name] for row in rows] for name in EVENT_COLUMNS}
        schema = pa.schema(
            [(name, pa.int64() if name == "seq" else pa.string()) for name in EVENT_COLUMNS]
        )
        pq.write_table(pa.table(columns, schema=schema), path)
    return path


def _objects(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON Lines carries it: details JSON text as the object it writes."""
    details = row.get("details")
    if isinstance(details, str):
        try:
            parsed = json.loads(details)
        except ValueError:
            return row
        return dict(row, details=parsed)
    return row


@st.composite
def _logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows of a stage-history log: mostly plain, sometimes not (a bad cell, an odd value)."""
    rows: list[dict[str, Any]] = []
    base = datetime(2024, 3, 30, 23, tzinfo=timezone.utc)  # DST changes nearby
    plain_ids = st.from_regex(r"[a-z]{1,3}-[0-9]{1,3}", fullmatch=True)
    ids = st.one_of(
        plain_ids,
        plain_ids,
        plain_ids,
        st.sampled_from(["ü-1", "deal 7", " x", 'a"b', "日本-2"]),
    )
    amounts = st.one_of(
        st.none(),
        st.sampled_from(["0", "5068", "5068.50", "5068.5", "0.000001", "0.0000001", "1E+3"]),
        st.decimals(min_value=0, max_value=10**9, places=2).map(str),
    )
    days = st.one_of(st.none(), st.dates(min_value=datetime(2024, 1, 1).date()).map(str))
    owners = st.sampled_from(
        ["Dev Lopez", "Ana", "ana", " Ana", "Ana ", 'A"na', "Łukasz", "x" * 201]
    )
    names = st.sampled_from(["team", "region", "lead_source", "Team", "owner", "currency", "t2"])
    values = st.sampled_from(["emea", "central-1", "EUR", "", " ", 'a"b', "a,b", "y" * 201])
    details = st.one_of(
        values.map(lambda v: json.dumps({"value": v}, sort_keys=True)),
        values.map(lambda v: json.dumps({"value": v}, separators=(",", ":"))),
        st.sampled_from(
            ['{"value": null}', '{"value": 3}', '{"v": "x"}', '{"value": "a", "b": 1}']
        ),
    )
    for oid in draw(st.lists(ids, min_size=1, max_size=4, unique=True)):
        zone = ZoneInfo(draw(st.sampled_from(ZONES)))
        at = base + timedelta(minutes=draw(st.integers(0, 600)))
        stage = draw(st.sampled_from(STAGES[:3]))
        amount, day = draw(amounts), draw(days)
        for seq in range(1, draw(st.integers(1, 6)) + 1):
            kind = (
                "opened"
                if seq == 1
                else draw(
                    st.sampled_from(
                        [
                            "stage_changed",
                            "rescheduled",
                            "amount_changed",
                            "reassigned",
                            "attribute_set",
                            "attribute_set",
                        ]
                    )
                )
            )
            from_stage = move = subject = detail = None
            if kind == "reassigned":
                subject = draw(owners)
            elif kind == "attribute_set":
                subject, detail = draw(names), draw(details)
            if kind == "stage_changed":
                from_stage, move = stage, "imported"
                stage = draw(st.sampled_from([s for s in STAGES if s != stage]))
            elif kind == "rescheduled":
                day = draw(days.filter(lambda d, old=day: d is not None and d != old))
            elif kind == "amount_changed":
                amount = draw(amounts.filter(lambda a, old=amount: a is not None and a != old))
            at += timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 250_000, 3_600_000_000])))
            rows.append(
                {
                    "opportunity_id": oid,
                    "seq": seq,
                    "kind": kind,
                    "at": at.astimezone(zone).isoformat(),
                    "actor": draw(st.sampled_from(["simulator", "ana", "ana b"])),
                    "stage": stage,
                    "process": PROCESS.name,
                    "process_version": PROCESS.version,
                    "from_stage": from_stage,
                    "move": move,
                    "reason": draw(st.sampled_from([None] * 6 + ["price", "lost, to rival"])),
                    "gate": None,
                    "amount": amount,
                    "close_date": day,
                    "subject": subject,
                    "details": detail,
                }
            )
    if draw(st.booleans()):  # one cell changed to anything a file might hold
        row = draw(st.sampled_from(rows))
        column = draw(st.sampled_from(EVENT_COLUMNS))
        row[column] = draw(
            st.sampled_from([None, "", "lead_generation", "2024-02-30", "-1", "x", " ", "2"])
        )
        if column == "seq" and row[column] is not None:
            row[column] = int(row[column]) if str(row[column]).isdigit() else 1
    return rows


def _slow(store: Path, log: Path) -> str | None:
    """Import the ordinary way (as stagegate import does); the refusal's text, if refused.

    A CSV or Parquet log is also read whole (``read_events`` then ``write_import``), into a
    store beside: both ways agree on what they refuse and on what they store.
    """
    try:
        stream_import(store, log, process=PROCESS)
    except StagegateError as error:
        refused: str | None = str(error)
    else:
        refused = None
    if log.suffix != ".jsonl":
        whole = store.with_name(f"whole-{store.name}")
        try:
            import_whole(whole, log)
        except StagegateError:
            assert refused is not None, "only the whole read refuses the log"
            assert not whole.exists()
        else:
            assert refused is None, f"only the streaming import refuses the log: {refused}"
            # the projection is chunked by batch, differently
            assert _tables(store, projection=False) == _tables(whole, projection=False)
    return refused


def import_whole(store: Path, log: Path) -> None:
    """Read the log whole, then write it, as CSV and Parquet were imported before they streamed.

    A log without events is refused, as ``stagegate import`` refuses it.
    """
    events = read_events(log)
    if not events:
        raise StagegateError("no events")
    write_import(
        store,
        events,
        process=PROCESS,
        source="events",
        input_path=log,
        rows_read=len(events),
        rows_used=len(events),
    )


def _tables(store: Path, *, projection: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """The store's tables, row by row (its projection too, unless told not)."""
    conn = sqlite3.connect(store)
    try:
        return {
            "events": conn.execute("SELECT * FROM events ORDER BY opportunity_id, seq").fetchall(),
            "projection": conn.execute("SELECT * FROM projection ORDER BY id").fetchall()
            if projection
            else [],
            "processes": conn.execute("SELECT * FROM processes").fetchall(),
            "imports": conn.execute(
                "SELECT id, source, input_name, rows_read, rows_used, opportunities, events, "
                "findings FROM imports"
            ).fetchall(),
            "meta": conn.execute("SELECT * FROM meta ORDER BY key").fetchall(),
        }
    finally:
        conn.close()


def _both(folder: Path, log: Path) -> tuple[bool, str | None]:
    """Import ``log`` both ways; check they agree. Whether the fast path took it, and why not."""
    fast_store, slow_store = folder / f"fast-{log.name}.sqlite", folder / f"slow-{log.name}.sqlite"
    outcome = bulk_import(fast_store, log, process=PROCESS)
    refused = _slow(slow_store, log)
    if outcome is None:
        assert not fast_store.exists()
        return False, refused
    assert refused is None, f"the fast path took a log the ordinary path refuses: {refused}"
    assert _tables(slow_store) == _tables(fast_store)
    with SQLiteStore(fast_store) as fast, SQLiteStore(slow_store) as slow:
        verdicts = fast.verify(require_digests=True)
        assert slow.verify(require_digests=True) == verdicts
        assert all(verdict.error is None for verdict in verdicts)
        assert list(slow.scan()) == list(fast.scan())
    return True, None


class TestSameStore:
    @settings(
        max_examples=40,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a store pair is slow
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(rows=_logs(), fmt=st.sampled_from(FORMATS))
    def test_random_logs_store_the_same_rows_digests_and_projection(
        self, tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]], fmt: str
    ) -> None:
        folder = tmp_path_factory.mktemp("logs")
        took, refused = _both(folder, _dump(folder / f"log.{fmt}", rows))
        event("fast path" if took else "refused" if refused else "ordinary path")

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_a_simulated_log_takes_the_fast_path(self, tmp_path: Path, fmt: str) -> None:
        sim = simulate(300, seed=3, process=PROCESS)
        log = tmp_path / f"log.{fmt}"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        assert (True, None) == _both(tmp_path, log)

    @pytest.mark.parametrize("fmt", ["csv", "parquet"])
    def test_owners_and_attributes_take_the_fast_path_in_tables(
        self, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """What stagegate simulate writes: quoted JSON details in CSV, deals across batches."""
        from stagegate.io import _arrow

        monkeypatch.setattr(_arrow, "BLOCK_BYTES", 1 << 13)
        monkeypatch.setattr(_arrow, "PARQUET_ROWS", 11)
        sim = simulate(200, seed=8, process=PROCESS, segments=True)
        events = [e for e in sim.events if e.at <= sim.as_of]
        assert {"reassigned", "attribute_set"} <= {e.kind.value for e in events}
        log = tmp_path / f"log.{fmt}"
        write_events(log, events)
        assert (True, None) == _both(tmp_path, log)

    def test_owners_and_attributes_take_the_fast_path_in_json_lines(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from stagegate.io import _arrow

        monkeypatch.setattr(_arrow, "BLOCK_BYTES", 1 << 13)
        sim = simulate(200, seed=8, process=PROCESS, segments=True)
        log = tmp_path / "log.jsonl"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        assert (True, None) == _both(tmp_path, log)

    @pytest.mark.parametrize(
        "details",
        [
            {"value": "x", "note": 1},
            {"value": None},
            {"value": 3},
            {"value": {"deep": "x"}},
            {},
            "x",
            ["x"],
        ],
    )
    def test_other_details_in_json_lines_go_the_ordinary_way(
        self, tmp_path: Path, details: Any
    ) -> None:
        sim = simulate(20, seed=8, process=PROCESS, segments=True)
        log = tmp_path / "log.jsonl"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        lines = log.read_text(encoding="utf-8").splitlines()
        index = next(i for i, line in enumerate(lines) if '"attribute_set"' in line)
        record = json.loads(lines[index])
        record["details"] = details
        lines[index] = json.dumps(record)
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        took, _ = _both(tmp_path, log)
        assert not took

    def test_a_log_across_several_batches_chains_each_deal_on(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from stagegate.io import _arrow

        monkeypatch.setattr(_arrow, "BLOCK_BYTES", 1 << 12)
        monkeypatch.setattr(_arrow, "PARQUET_ROWS", 7)
        sim = simulate(120, seed=5, process=PROCESS)
        events = [e for e in sim.events if e.at <= sim.as_of]
        for fmt in FORMATS:
            log = tmp_path / f"log.{fmt}"
            write_events(log, events)
            assert (True, None) == _both(tmp_path, log)

    def test_a_deal_split_across_the_file_goes_the_ordinary_way(self, tmp_path: Path) -> None:
        sim = simulate(5, seed=2, process=PROCESS)
        events = sorted((e for e in sim.events if e.at <= sim.as_of), key=lambda e: e.seq)
        log = tmp_path / "log.csv"
        write_events(log, events)
        assert (False, None) == _both(tmp_path, log)

    def test_sealed_json_lines_are_checked_against_their_digests(self, tmp_path: Path) -> None:
        sim = simulate(20, seed=4, process=PROCESS)
        store = tmp_path / "sealed.sqlite"
        write_import(
            store, [e for e in sim.events if e.at <= sim.as_of], process=PROCESS, source="x"
        )
        with SQLiteStore(store) as sealed:
            log = tmp_path / "log.jsonl"
            write_events(log, sealed.scan())
        assert (True, None) == _both(tmp_path, log)
        lines = log.read_text(encoding="utf-8").splitlines()
        first = json.loads(lines[0])
        first["digest"] = "0" * 64
        tampered = tmp_path / "tampered"
        tampered.mkdir()
        log = tampered / "log.jsonl"
        log.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")
        fast, refused = _both(tampered, log)
        assert not fast
        assert refused is not None


class TestNotPlainError:
    @pytest.mark.parametrize(
        "content",
        [
            "",
            "\n",
            '{"opportunity_id": "a"} {"opportunity_id": "b"}\n',
            '{"opportunity_id": "a"}\n\n',
            '{"opportunity_id": "a"}\r{"opportunity_id": "b"}\n',
        ],
    )
    def test_json_lines_the_ordinary_reader_reads_otherwise_are_not_plain(
        self, tmp_path: Path, content: str
    ) -> None:
        log = tmp_path / "log.jsonl"
        log.write_text(content, encoding="utf-8")
        with pytest.raises(NotPlainError):
            list(plain_batches(log, PROCESS))

    def test_an_existing_store_is_left_to_the_ordinary_way(self, tmp_path: Path) -> None:
        sim = simulate(5, seed=2, process=PROCESS)
        log = tmp_path / "log.csv"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        store = tmp_path / "s.sqlite"
        SQLiteStore(store).close()
        assert bulk_import(store, log, process=PROCESS) is None
        assert bulk_import(store, log, process=PROCESS, replace=True) is not None
        with SQLiteStore(store) as replaced:
            assert replaced.count() > 0


class TestInstants:
    @pytest.mark.parametrize(
        "text",
        [
            "2024-01-05T09:00:00.5+00:00",
            "2024-01-05T09:00:00.5Z",
            "2024-01-05T09:00:00.123-05:30",
            "2024-01-05T23:59:59.999999-23:59",
            "2024-02-29T00:00:00+14:00",
            "2024-03-31T02:30:00+02:00",
            "9999-12-29T12:00:00Z",
        ],
    )
    def test_instants_are_read_as_datetime_reads_them(self, text: str) -> None:
        import pyarrow.compute as pc

        from stagegate._time import UTC, epoch_us
        from stagegate.io._arrow import _Checker

        expected = datetime.fromisoformat(text).astimezone(UTC)
        at_us, shown = _Checker(PROCESS, "csv", pa, pc)._instants(pa.array([text]))
        assert [epoch_us(expected)] == at_us.to_pylist()
        assert [expected.isoformat()] == shown.to_pylist()

    @pytest.mark.parametrize(
        "text",
        [
            "2024-01-05 09:00:00Z",
            "2024-01-05T09:00:00",
            "2024-02-30T00:00:00Z",
            "1969-12-31T23:00Z",
        ],
    )
    def test_other_instants_are_not_plain(self, text: str) -> None:
        import pyarrow.compute as pc

        from stagegate.io._arrow import _Checker

        with pytest.raises((NotPlainError, pa.ArrowException)):
            _Checker(PROCESS, "csv", pa, pc)._instants(pa.array([text]))


class TestCommandLine:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_stagegate_import_says_what_the_ordinary_path_says(
        self, tmp_path: Path, fmt: str
    ) -> None:
        import subprocess
        import sys

        sim = simulate(40, seed=6, process=PROCESS)
        log = tmp_path / f"log.{fmt}"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        ordinary = tmp_path / "ordinary.sqlite"
        SQLiteStore(ordinary).close()  # an existing store: the bulk path declines it
        summaries = []
        for store in (tmp_path / "bulk.sqlite", ordinary):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "stagegate",
                    "import",
                    str(log),
                    "--store",
                    str(store),
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert 0 == done.returncode, done.stderr
            summary = json.loads(done.stdout)
            summary.pop("store")
            summaries.append(summary)
        assert summaries[1] == summaries[0]
        assert _tables(ordinary)["events"] == _tables(tmp_path / "bulk.sqlite")["events"]


class TestProgress:
    def test_reading_checking_and_writing_are_reported_to_the_last_event(
        self, tmp_path: Path
    ) -> None:
        seen: dict[str, list[int]] = {}

        class Recorder:
            def phase(self, name: str, total: int | None = None) -> Any:
                del total
                seen[name] = []
                return seen[name].append

        sim = simulate(30, seed=8, process=PROCESS)
        log = tmp_path / "log.parquet"
        count = write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        outcome = bulk_import(tmp_path / "s.sqlite", log, process=PROCESS, phases=Recorder())
        assert outcome is not None
        assert ["reading", "checking", "writing"] == list(seen)
        assert all(ticks[-1] == count for ticks in seen.values())


def _typed(store: Path) -> list[tuple[Any, ...]]:
    """Every stored value of ``events`` with its SQLite storage class."""
    conn = sqlite3.connect(store)
    try:
        names = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
        typed = ", ".join(f"typeof({name}), {name}" for name in names)
        return conn.execute(
            f"SELECT {typed} FROM events ORDER BY opportunity_id, seq"  # noqa: S608 - table info
        ).fetchall()
    finally:
        conn.close()


class TestWriters:
    """The rows go through ADBC ingest when it is there, through executemany when it is not."""

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_adbc_and_executemany_store_the_same_typed_values(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
    ) -> None:
        from stagegate.store import _ingest

        assert _ingest.ingest_available()
        sim = simulate(200, seed=11, process=PROCESS)
        log = tmp_path / f"log.{fmt}"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        assert bulk_import(tmp_path / "adbc.sqlite", log, process=PROCESS) is not None
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)
            assert not _ingest.ingest_available()
            assert bulk_import(tmp_path / "rows.sqlite", log, process=PROCESS) is not None
        assert (True, None) == _both(tmp_path, log)
        slow = tmp_path / f"slow-{log.name}.sqlite"
        assert _typed(tmp_path / "adbc.sqlite") == _typed(slow) == _typed(tmp_path / "rows.sqlite")
        assert _tables(tmp_path / "adbc.sqlite") == _tables(tmp_path / "rows.sqlite")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    def test_a_failure_while_ingesting_leaves_no_store_and_no_side_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from stagegate.store import _bulk

        sim = simulate(50, seed=2, process=PROCESS)
        log = tmp_path / "log.csv"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])

        def broken(self: Any, batch: Any) -> Any:
            raise NotPlainError("broken on purpose")

        monkeypatch.setattr(_bulk._Chain, "seal_columns", broken)
        assert bulk_import(tmp_path / "s.sqlite", log, process=PROCESS) is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


class TestManyChunks:
    def test_a_projection_of_many_chunks_is_the_ordinary_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # small chunks and frequent merges: the chunks read back from the side file, in order
        from stagegate.store import _bulk, sqlite

        monkeypatch.setattr(sqlite, "PROJECTION_CHUNK", 7)
        monkeypatch.setattr(_bulk, "PROJECTION_CHUNK", 7)
        monkeypatch.setattr(sqlite, "MERGE_EVERY", 3)
        sim = simulate(40, seed=8, process=PROCESS)
        log = tmp_path / "log.csv"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        assert (True, None) == _both(tmp_path, log)
        conn = sqlite3.connect(tmp_path / "fast-log.csv.sqlite")
        try:
            (chunks,) = conn.execute("SELECT count(*) FROM projection").fetchone()
        finally:
            conn.close()
        assert chunks > 3


class TestKeyOrder:
    """Rows go into ``events`` in file order: any order of deals stores the same table."""

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_a_deal_that_comes_back_later_takes_the_ordinary_way(
        self, tmp_path: Path, fmt: str
    ) -> None:
        # each part passes the column checks (a deal opens with seq 1 where its id starts);
        # the primary key refuses the second opening, and nothing of the fast path remains
        sim = simulate(6, seed=3, process=PROCESS)
        events = [e for e in sim.events if e.at <= sim.as_of]
        first = events[0].opportunity_id
        again = [e for e in events if e.opportunity_id == first]
        log = tmp_path / f"log.{fmt}"
        write_events(log, [*events, *again])
        assert bulk_import(tmp_path / "s.sqlite", log, process=PROCESS) is None
        assert sorted(p.name for p in tmp_path.iterdir()) == [log.name]

    def test_deals_in_reverse_order_store_what_the_ordinary_path_stores(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from stagegate.io import _arrow

        monkeypatch.setattr(_arrow, "BLOCK_BYTES", 1 << 12)  # many batches: order across them
        sim = simulate(60, seed=9, process=PROCESS)
        events = [e for e in sim.events if e.at <= sim.as_of]
        reverse = sorted(events, key=lambda e: e.opportunity_id, reverse=True)  # stable: seq
        log = tmp_path / "log.csv"
        write_events(log, reverse)
        assert (True, None) == _both(tmp_path, log)


class TestReadAhead:
    """The file is read and checked by a thread of its own while the rows are written."""

    def test_a_failure_while_writing_stops_the_reader_and_leaves_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import threading

        from stagegate.io import _arrow
        from stagegate.store import _ingest
        from stagegate.store.base import StoreError

        monkeypatch.setattr(_arrow, "BLOCK_BYTES", 1 << 12)  # many batches to read ahead
        sim = simulate(80, seed=4, process=PROCESS)
        log = tmp_path / "log.csv"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        written = 0
        real = _ingest.encode_arrow

        def failing(columns: Any) -> bytes:
            nonlocal written
            written += 1
            if written == 2:
                raise StoreError("the disk is full (on purpose)")
            return real(columns)

        monkeypatch.setattr(_ingest, "encode_arrow", failing)
        monkeypatch.setattr(_bulk_module(), "PROJECTION_CHUNK", 50)
        assert bulk_import(tmp_path / "s.sqlite", log, process=PROCESS) is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]
        assert [t for t in threading.enumerate() if t.name == "stagegate-ahead"] == []


def _bulk_module() -> Any:
    from stagegate.store import _bulk

    return _bulk


class TestInterrupted:
    """Ctrl-C while Arrow reads (pyarrow's ``ArrowCancelled``) stops the import."""

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_the_bulk_path_stops_instead_of_going_the_ordinary_way(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
    ) -> None:
        # before, the cancellation read as "a file Arrow reads otherwise": the import then
        # started again row by row, and a Ctrl-C went unheeded
        from stagegate.io import _arrow

        sim = simulate(30, seed=5, process=PROCESS)
        log = tmp_path / f"log.{fmt}"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])
        real = _arrow._reader

        def cancelled(*args: Any) -> Any:
            batches, expected = real(*args)

            def stopping() -> Any:
                yield next(iter(batches))
                raise pa.ArrowCancelled("Operation cancelled. Detail: received signal 2")

            return stopping(), expected

        monkeypatch.setattr(_arrow, "_reader", cancelled)
        with pytest.raises(KeyboardInterrupt):
            bulk_import(tmp_path / "s.sqlite", log, process=PROCESS)
        assert sorted(p.name for p in tmp_path.iterdir()) == [log.name]

    def test_the_streamed_parquet_reader_stops_too(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sim = simulate(30, seed=5, process=PROCESS)
        log = tmp_path / "log.parquet"
        write_events(log, [e for e in sim.events if e.at <= sim.as_of])

        def cancelled(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise pa.ArrowCancelled("Operation cancelled. Detail: received signal 2")
            yield  # a generator, like the real one

        monkeypatch.setattr(pq.ParquetFile, "iter_batches", cancelled)
        with pytest.raises(KeyboardInterrupt):
            stream_import(tmp_path / "s.sqlite", log, process=PROCESS)
        assert sorted(p.name for p in tmp_path.iterdir()) == [log.name]


def test_ctrl_c_during_a_bulk_import_writes_nothing_and_says_aborted(tmp_path: Path) -> None:
    """A real SIGINT to ``stagegate import`` while the bulk path writes: exit 2, no store.

    ADBC catches SIGINT in the main thread and turned it into a driver error, which sent the
    import the ordinary way: a Ctrl-C then imported the whole file, exit 0.
    """
    import signal
    import subprocess
    import time

    sim = simulate(20_000, seed=3, process=PROCESS)
    log = tmp_path / "log.csv"
    write_events(log, [e for e in sim.events if e.at <= sim.as_of])
    folder = tmp_path / "stores"
    folder.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "stagegate", "import", str(log), "--store", "s.sqlite", "--quiet"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=unmeasured_env(),
    )
    deadline = time.monotonic() + 60
    while not any(folder.iterdir()) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the staging store appears: the bulk path has begun
    time.sleep(0.3)  # into the reading and writing of batches
    if child.poll() is not None:  # pragma: no cover - a machine fast enough to finish first
        pytest.skip("the import ended before it could be interrupted")
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out) == (2, ""), err
    assert "aborted" in err
    assert "internal error" not in err
    assert sorted(p.name for p in folder.iterdir()) == []


def test_ctrl_c_waits_for_the_ingest_thread_to_stop_before_it_goes_on() -> None:
    """A real SIGINT while the caller waits for the ingest thread: the thread stops first.

    The wait was a ``Thread.join``, which CPython 3.11 can end, when interrupted, as if the
    thread were done: the import then closed the batches the thread was still reading
    (``ValueError: generator already executing``, exit 3, a journal file left behind).
    """
    import threading
    import time

    from stagegate.store import _ingest

    finished: list[bool] = []

    def work(stop: threading.Event) -> None:
        ctrl_c_once_waiting("_aside")
        stop.wait(30)
        time.sleep(0.3)  # the batch in hand is finished before the thread looks at stop again
        finished.append(True)

    with ctrl_c_seen(), pytest.raises(KeyboardInterrupt):
        _ingest._aside(work)
    assert finished == [True]


@pytest.mark.parametrize("share", [0.15, 0.35, 0.55, 0.75, 0.9])
def test_ctrl_c_at_any_moment_of_a_bulk_import_is_all_or_nothing(
    tmp_path: Path, share: float
) -> None:
    """SIGINT anywhere in ``stagegate import``: aborted with nothing written, or done.

    Never an internal error, never a half-written store or a file left beside it.
    """
    import signal
    import subprocess
    import time

    sim = simulate(12_000, seed=5, process=PROCESS)
    log = tmp_path / "log.csv"
    events = [e for e in sim.events if e.at <= sim.as_of]
    write_events(log, events)
    command = [sys.executable, "-m", "stagegate", "import", str(log), "--store", "s.sqlite",
               "--quiet"]  # fmt: skip
    timed = tmp_path / "timed"
    timed.mkdir()
    started = time.monotonic()
    subprocess.run(command, cwd=timed, check=True, capture_output=True, timeout=120,
                   env=unmeasured_env())  # timed as the signalled run runs  # fmt: skip
    took = time.monotonic() - started
    folder = tmp_path / "stores"
    folder.mkdir()
    child = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=unmeasured_env())  # fmt: skip
    time.sleep(took * share)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert "internal error" not in err
    left = sorted(p.name for p in folder.iterdir())
    if child.returncode == 0 or left:  # the import was done (committed) when the signal came
        assert left == ["s.sqlite"], (child.returncode, err)
        with SQLiteStore(folder / "s.sqlite") as store:
            assert len(store.to_frame(columns=["seq"])) == len(events)
    else:
        assert child.returncode in (2, -signal.SIGINT), err


def test_ctrl_c_while_adbc_ingests_is_an_interrupt_not_a_driver_error(tmp_path: Path) -> None:
    """SIGINT in the middle of an ADBC ingest reaches Python as ``KeyboardInterrupt``.

    ADBC, called from the main thread, catches SIGINT and cancels the statement: the import
    saw a driver error and went the ordinary way. Its calls now run in a thread of their own.
    """
    import threading

    from stagegate.store import _ingest

    n = 300_000
    text = pa.array(["x" * 12] * n)
    ids = pa.array([f"d{i // 8:07d}" for i in range(n)])
    seqs = pa.array([i % 8 + 1 for i in range(n)], pa.int64())
    columns = [ids, seqs, pa.array(["opened"] * n), seqs, *[text] * 12, text]

    def batches() -> Any:
        # the signal lands while ADBC ingests this batch (hundreds of milliseconds)
        threading.Timer(0.1, ctrl_c).start()
        yield columns
        yield columns

    with (
        ctrl_c_seen(),
        SQLiteStore(tmp_path / "s.sqlite") as store,
        pytest.raises(KeyboardInterrupt),
    ):
        _ingest.write_sealed_columns(
            store, batches(), side=str(tmp_path / "side"), process=None, record=lambda: None
        )
