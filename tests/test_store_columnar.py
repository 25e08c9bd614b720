"""The columnar projection a store keeps for ``to_frame``: packed at write time, read whole."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate.events import Event, EventKind, MoveKind
from stagegate.store import FRAME_COLUMNS, MemoryStore, SQLiteStore, StoreError
from stagegate.store import sqlite as sqlite_module
from stagegate.store._columnar import encode_chunk, frame_of, merge_chunks

pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def event(oid: str, seq: int, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "kind": EventKind.OPENED if seq == 1 else EventKind.ACTIVITY_LOGGED,
        "at": T0 + seq * HOUR,
        "actor": "ana",
        "stage": "lead_generation",
        "process": "b2b",
        "process_version": "1",
    }
    values.update(fields)
    return Event(oid, seq, **values)


def stored_row(oid: str, seq: int, kind: str, at: datetime, **fields: Any) -> tuple[Any, ...]:
    """A row in the layout of the SQLite ``events`` table (no actor, gate or digest needed)."""
    return (
        oid,
        seq,
        kind,
        int(at.timestamp() * 1_000_000),
        fields.get("stage", "lead_generation"),
        fields.get("from_stage"),
        fields.get("move"),
        fields.get("amount"),
        fields.get("close_date"),
        None,
        fields.get("reason"),
        "b2b",
        "1",
        fields.get("subject"),
        fields.get("details"),
    )


def raw(path: Path, *statements: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


class TestSegments:
    def test_owner_and_attributes_carry_the_value_in_force_at_each_instant(self) -> None:
        # the owner and the team are set at the opening instant, right after ``opened``: the
        # opening row carries them; a later reassignment and a cleared team hold from then on
        rows = [
            stored_row("a", 1, "opened", T0),
            stored_row("a", 2, "reassigned", T0, subject="ana"),
            stored_row("a", 3, "attribute_set", T0, subject="team", details='{"value":"east"}'),
            stored_row("a", 4, "activity_logged", T0 + HOUR, subject="call"),
            stored_row("a", 5, "reassigned", T0 + 2 * HOUR, subject="ben"),
            stored_row("a", 6, "attribute_set", T0 + 3 * HOUR, subject="team", details="{}"),
            stored_row("b", 1, "opened", T0),
        ]
        frame = frame_of([encode_chunk(rows)])
        assert ("owner", "team") == tuple(frame.columns[-2:])
        assert [
            ("ana", "east"),
            ("ana", "east"),
            ("ana", "east"),
            ("ana", "east"),
            ("ben", "east"),
            ("ben", None),
            (None, None),
        ] == frame.select("owner", "team").rows()

    def test_segments_are_derived_when_the_columns_asked_for_leave_out_at(self) -> None:
        rows = [stored_row("a", 1, "opened", T0), stored_row("a", 2, "reassigned", T0, subject="x")]
        frame = frame_of([encode_chunk(rows)], columns=["seq"])
        assert [(1, "x"), (2, "x")] == frame.rows()

    def test_a_log_without_segment_events_has_no_segment_columns(self) -> None:
        frame = frame_of([encode_chunk([stored_row("a", 1, "opened", T0)])])
        assert ("owner" not in frame.columns, "team" not in frame.columns) == (True, True)

    def test_segments_can_be_left_out(self) -> None:
        rows = [stored_row("a", 1, "opened", T0), stored_row("a", 2, "reassigned", T0, subject="x")]
        assert "owner" not in frame_of([encode_chunk(rows)], segments=False).columns

    def test_an_attribute_named_like_a_column_is_refused(self) -> None:
        rows = [stored_row("a", 1, "attribute_set", T0, subject="stage", details='{"value":"x"}')]
        with pytest.raises(StoreError, match="rename the attribute"):
            frame_of([encode_chunk(rows)])


class TestChunks:
    def test_values_survive_packing_exactly(self) -> None:
        rows = [
            stored_row("é-1", 1, "opened", T0, amount="12.50", close_date="2026-03-31"),
            stored_row(
                "é-1",
                2,
                "stage_changed",
                T0 + HOUR,
                stage="lost",
                from_stage="lead_generation",
                move="lose",
                reason="no budget",
            ),
        ]
        frame = frame_of([encode_chunk(rows)], columns=FRAME_COLUMNS)
        assert [
            ("é-1", T0, 1, "lead_generation", 12.5, date(2026, 3, 31), None, "opened", None, None),
            (
                "é-1",
                T0 + HOUR,
                2,
                "lost",
                None,
                None,
                "no budget",
                "stage_changed",
                "lead_generation",
                "lose",
            ),
        ] == [row[:10] for row in frame.rows()]
        assert {("b2b", "1")} == set(frame.select("process", "process_version").rows())

    def test_a_damaged_chunk_is_reported(self) -> None:
        with pytest.raises(StoreError, match="changed outside stagegate"):
            frame_of([b"XXXX" + encode_chunk([stored_row("a", 1, "opened", T0)])[4:]])

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "d"]),
                st.one_of(st.none(), st.decimals(0, 10**6, places=2)),
                st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2030, 1, 1))),
                st.sampled_from(["lead_generation", "qualification", "won", "lost"]),
            ),
            max_size=40,
        ),
        st.integers(1, 7),
    )
    def test_a_memory_store_and_a_sqlite_file_give_the_same_frame(
        self, tmp_path_factory: pytest.TempPathFactory, deals: list[Any], chunk: int
    ) -> None:
        seqs: dict[str, int] = {}
        events = []
        for oid, amount, close, stage in deals:
            seqs[oid] = seqs.get(oid, 0) + 1
            events.append(event(oid, seqs[oid], stage=stage, amount=amount, close_date=close))
        path = tmp_path_factory.mktemp("columnar") / "deals.sqlite"
        memory = MemoryStore()
        original = sqlite_module.PROJECTION_CHUNK
        sqlite_module.PROJECTION_CHUNK = chunk  # many small chunks, written in any order
        try:
            with SQLiteStore(path) as store:
                for start in range(0, len(events), 5):
                    store.append(events[start : start + 5])
                memory.append(events)
                expected = memory.to_frame()
                assert expected.equals(store.to_frame())
                assert sum(1 for _ in store.scan()) == len(expected)
        finally:
            sqlite_module.PROJECTION_CHUNK = original
        assert [float(e.amount) if e.amount is not None else None for e in memory.scan()] == (
            expected["amount"].to_list()
        )


class TestOlderFiles:
    def test_a_version_2_file_is_read_from_its_events_and_migrated_on_first_write(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "old.sqlite"
        with SQLiteStore(path) as store:
            store.append([event("a", 1, amount=Decimal(5)), event("a", 2)])
            expected = store.to_frame()
        raw(
            path,
            "DROP TABLE projection",
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
        )
        before = path.read_bytes()
        with SQLiteStore(path) as store:
            assert 2 == store.schema_version
            assert expected.equals(store.to_frame())
        assert before == path.read_bytes()  # reading never rewrites
        with SQLiteStore(path) as store:
            store.append([event("a", 3)])
            assert sqlite_module.SCHEMA_VERSION == store.schema_version
            frame = store.to_frame()
        assert [1, 2, 3] == frame["seq"].to_list()
        assert [(3,)] == raw(path, "SELECT sum(events) FROM projection")

    def test_upgrade_migrates_now_and_only_once(self, tmp_path: Path) -> None:
        path = tmp_path / "old.sqlite"
        with SQLiteStore(path) as store:
            store.append([event("a", 1)])
        raw(
            path,
            "DROP TABLE projection",
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
        )
        with SQLiteStore(path) as store:
            assert (True, False) == (store.upgrade(), store.upgrade())
            assert 1 == len(store.to_frame())


class TestWrites:
    def test_a_refused_batch_leaves_no_projection(self, tmp_path: Path) -> None:
        path = tmp_path / "deals.sqlite"
        with SQLiteStore(path) as store:
            store.append([event("a", 1)])
            with pytest.raises(Exception, match="a"):
                store.append([event("a", 1)])  # seq 1 exists: a conflict
            assert 1 == len(store.to_frame())

    def test_a_staged_import_copies_its_projection(self, tmp_path: Path) -> None:
        staging = tmp_path / "staging.sqlite"
        target = tmp_path / "deals.sqlite"
        with SQLiteStore(staging) as staged:
            staged._stage([event("b", 1), event("b", 2, kind=EventKind.STAGE_CHANGED,
                                                 stage="won", from_stage="lead_generation",
                                                 move=MoveKind.WIN)])  # fmt: skip
        with SQLiteStore(target) as store:
            store.append([event("a", 1)])
            store.write_import_from(staging)
            frame = store.to_frame(columns=["opportunity_id", "seq", "stage"])
        assert [("a", 1, "lead_generation"), ("b", 1, "lead_generation"), ("b", 2, "won")] == (
            frame.rows()
        )

    def test_a_staging_file_without_a_projection_is_projected_when_copied(
        self, tmp_path: Path
    ) -> None:
        staging = tmp_path / "staging.sqlite"
        target = tmp_path / "deals.sqlite"
        with SQLiteStore(staging) as staged:
            staged._stage([event("b", 1)])
        raw(staging, "DROP TABLE projection")
        with SQLiteStore(target) as store:
            store.write_import_from(staging)
            assert [("b", 1)] == store.to_frame(columns=["opportunity_id", "seq"]).rows()

    def test_single_event_appends_are_merged_into_few_chunks(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sqlite_module, "MERGE_EVERY", 4)
        monkeypatch.setattr(sqlite_module, "PROJECTION_CHUNK", 10)
        events = [event(oid, seq) for seq in range(1, 8) for oid in ("b", "a", "c")]
        memory = MemoryStore()
        memory.append(events)
        path = tmp_path / "deals.sqlite"
        with SQLiteStore(path) as store:
            for one in events:
                store.append([one])
            frame = store.to_frame()
        assert memory.to_frame().equals(frame)
        chunks = raw(path, "SELECT events FROM projection ORDER BY id")
        assert 21 == sum(n for (n,) in chunks)
        assert len(chunks) <= 6, chunks  # 21 one-event chunks merged 4 at a time, then 16

    def test_merged_chunks_keep_every_value(self) -> None:
        rows = [
            stored_row("a", 1, "opened", T0, amount="1.5", close_date="2026-02-01"),
            stored_row("a", 2, "reassigned", T0, subject="ana"),
            stored_row("b", 1, "opened", T0, reason="why"),
        ]
        single = frame_of([encode_chunk(rows)], columns=FRAME_COLUMNS)
        merged = frame_of([merge_chunks([encode_chunk(rows[:1]), encode_chunk(rows[1:])])],
                          columns=FRAME_COLUMNS)  # fmt: skip
        assert single.equals(merged)
        assert ["ana", "ana", None] == merged["owner"].to_list()

    def test_progress_counts_the_events_read(self, tmp_path: Path) -> None:
        seen: list[Any] = []

        class Recorder:
            def phase(self, name: str, total: int | None = None) -> Any:
                seen.append((name, total))
                return seen.append

        with SQLiteStore(tmp_path / "deals.sqlite") as store:
            store.append([event("a", 1), event("a", 2)])
            store.to_frame(phases=Recorder())
        # one phase; the count read so far goes up (a column at a time) to every event
        assert seen[0] == ("reading", 2)
        assert seen[1:] == sorted(set(seen[1:]))
        assert seen[-1] == 2


class TestReadInPlace:
    """to_frame reads each column of the stored chunks where it lies (Python 3.11+)."""

    @pytest.fixture
    def store_path(self, tmp_path: Path) -> Path:
        path = tmp_path / "deals.sqlite"
        with SQLiteStore(path) as store:
            for start in range(0, 30, 7):  # several chunks
                store.append(
                    [
                        event(f"o{n % 5}", n // 5 + 1, stage="qualification", reason=f"r{n}")
                        for n in range(start, min(30, start + 7))
                    ]
                )
        return path

    @pytest.mark.skipif(not sqlite_module.READ_IN_PLACE, reason="Python 3.10: no blob I/O")
    @pytest.mark.parametrize("categorical", [False, True])
    def test_in_place_and_in_memory_give_the_same_frame(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch, categorical: bool
    ) -> None:
        with SQLiteStore(store_path) as store:
            in_place = store.to_frame(columns=FRAME_COLUMNS, categorical=categorical)
            monkeypatch.setattr(sqlite_module, "READ_IN_PLACE", False)
            in_memory = store.to_frame(columns=FRAME_COLUMNS, categorical=categorical)
        assert in_place.equals(in_memory)
        assert len(in_place) == 30

    @pytest.mark.parametrize("in_place", [False, True])
    def test_a_read_is_one_snapshot_while_another_store_merges_the_chunks_it_reads(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
    ) -> None:
        """Chunks merged (deleted, rewritten) by another writer in the middle of a read."""
        if in_place and not sqlite_module.READ_IN_PLACE:
            pytest.skip("Python 3.10: no blob I/O")
        monkeypatch.setattr(sqlite_module, "READ_IN_PLACE", in_place)
        monkeypatch.setattr(sqlite_module, "MERGE_EVERY", 2)
        with SQLiteStore(store_path) as store:
            before = store.to_frame(columns=FRAME_COLUMNS)
        chunks_before = dict(raw(store_path, "SELECT id, events FROM projection"))
        writes: list[int] = []

        class Meddler:
            """At the reader's first tick, another store appends and merges chunks."""

            def phase(self, name: str, total: int | None = None) -> Any:
                def tick(done: int) -> None:
                    if not writes:
                        with SQLiteStore(store_path) as other:
                            for n in range(5):
                                other.append([event(f"late{n}", 1), event(f"o{n}", 7)])
                        writes.append(done)

                return tick

        with SQLiteStore(store_path) as store:
            during = store.to_frame(columns=FRAME_COLUMNS, phases=Meddler())
            after = store.to_frame(columns=FRAME_COLUMNS)
        assert writes, "the read never ticked"
        chunks_after = dict(raw(store_path, "SELECT id, events FROM projection"))
        assert any(chunks_after.get(i) != n for i, n in chunks_before.items()), chunks_after
        assert during.equals(before)
        assert len(after) == len(before) + 10

    @pytest.mark.parametrize("in_place", [False, True])
    @pytest.mark.parametrize(
        "damage",
        [
            "UPDATE projection SET chunk = CAST('XXXX' || substr(chunk, 5) AS BLOB)",
            "UPDATE projection SET chunk = substr(chunk, 1, length(chunk) / 2)",
            "UPDATE projection SET chunk = substr(chunk, 1, 6)",
            "UPDATE projection SET chunk = CAST(X'5347433108000000' || '{\"n\": 1}' AS BLOB)",
            "UPDATE projection SET chunk = 'SGC1, but text'",
        ],
        ids=["magic", "cut", "short", "header", "text"],
    )
    def test_a_damaged_stored_chunk_is_reported(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool, damage: str
    ) -> None:
        if in_place and not sqlite_module.READ_IN_PLACE:
            pytest.skip("Python 3.10: no blob I/O")
        monkeypatch.setattr(sqlite_module, "READ_IN_PLACE", in_place)
        raw(store_path, damage)
        with SQLiteStore(store_path) as store, pytest.raises(StoreError, match="outside stagegate"):
            store.to_frame()


def test_the_frame_is_documented_with_every_column() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "store.md").read_text()
    assert all(f"`{name}`" in text for name in FRAME_COLUMNS), json.dumps(FRAME_COLUMNS)


_GIVE_BACK = """
import sys
from pathlib import Path
from stagegate.store._columnar import give_back_freed

def resident_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

first = b"\\x01" * (8 << 20)
del first  # a first large block freed: glibc's mmap threshold moves up
before = resident_mb()
blocks, kept = [], []
for i in range(100):  # 300 MB, like read chunks, with small objects that live on between
    blocks.append(bytes([i % 251]) * (3 << 20))
    kept.append(bytes([i % 251]) * (64 << 10))  # from the heap top: between the blocks
del blocks
retained = resident_mb() - before
give_back_freed()
print(retained, resident_mb() - before, len(kept))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_of_chunks_read_and_dropped_goes_back_to_the_system() -> None:
    """Blocks of a few megabytes, freed, stay resident under glibc until given back.

    In a fresh interpreter, so the heap holds nothing else that the blocks could reuse.
    """
    done = subprocess.run(
        [sys.executable, "-c", _GIVE_BACK], capture_output=True, text=True, check=True
    )
    retained, after, _ = (float(x) for x in done.stdout.split())
    if retained < 150:  # pragma: no cover - an allocator that returned them by itself
        pytest.skip(f"this C library returned the freed blocks by itself ({retained:.0f} MB kept)")
    assert after < retained - 150


@st.composite
def _segment_rows(draw: st.DrawFn) -> dict[str, list[Any]]:
    """Rows in (deal, seq) order whose segment events set, clear or leave values, with ties."""
    columns: dict[str, list[Any]] = {
        "opportunity_id": [], "seq": [], "at": [], "segment": [], "segment_value": []
    }  # fmt: skip
    for deal in range(draw(st.integers(1, 5))):
        at = 0
        for seq in range(1, draw(st.integers(1, 8)) + 1):
            at += draw(st.sampled_from([0, 0, 1, 5]))
            segment = draw(st.sampled_from([None, None, "owner", "team"]))
            # values as the fill takes them: codes into the distinct values (None: cleared)
            value = None if segment is None else draw(st.sampled_from([0, 1, None]))
            for name, cell in zip(columns, (f"d{deal}", seq, at, segment, value), strict=True):
                columns[name].append(cell)
    return columns


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=_segment_rows())
def test_segment_columns_by_runs_are_those_by_windows(columns: dict[str, list[Any]]) -> None:
    """The run-wise fill equals the window over each deal and instant it replaced."""
    pl = pytest.importorskip("polars")
    from stagegate.store._columnar import _with_segments, _with_segments_by_window

    frame = pl.DataFrame(
        columns, schema_overrides={"segment": pl.String, "segment_value": pl.Int32}
    )
    names = sorted({s for s in columns["segment"] if s is not None})
    ordered = (["owner"] if "owner" in names else []) + [n for n in names if n != "owner"]
    runs, named = _with_segments(frame, pl)
    windows, _ = _with_segments_by_window(frame, pl, ordered)
    assert named == ordered
    assert runs.equals(windows)


def test_instants_that_go_back_are_filled_by_windows() -> None:
    pl = pytest.importorskip("polars")
    from stagegate.store._columnar import _with_segments

    frame = pl.DataFrame(
        {
            "opportunity_id": ["a", "a", "a"],
            "seq": [1, 2, 3],
            "at": [5, 3, 5],
            "segment": ["owner", "owner", None],
            "segment_value": [0, 1, None],  # codes of "x" and "y"
        },
        schema_overrides={"segment_value": pl.Int32},
    )
    filled, _ = _with_segments(frame, pl)
    # at instant 5 the last event is seq 3, after seq 2 set "y": the window over (deal, at)
    assert filled.get_column("owner").to_list() == [1, 1, 1]


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
_FEW = st.sampled_from(["a", "b", "ü", "😀", ""])


@st.composite
def _stored_columns(draw: st.DrawFn) -> list[list[Any]]:
    """The ``events`` columns of a batch: repeated values, missing ones, segments, odd text."""
    n = draw(st.integers(min_value=0, max_value=40))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    maybe = st.none() | _FEW | _TEXT
    kinds = column(st.sampled_from(["opened", "reassigned", "attribute_set", "note", "won"]))
    value = st.none() | _FEW | _TEXT | st.integers(-5, 5) | st.floats(allow_nan=False)
    details = [
        draw(st.none() | value.map(lambda v: json.dumps({"value": v}, sort_keys=True)))
        if kind == "attribute_set"
        else draw(st.none() | st.just('{"note":"x"}'))
        for kind in kinds
    ]
    amounts = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str)
    days = st.none() | st.dates(min_value=date(1, 1, 1)).map(date.isoformat)
    return [
        column(_FEW | _TEXT),  # opportunity_id
        column(st.integers(min_value=1, max_value=2**62)),
        kinds,
        column(st.integers(min_value=-(2**62), max_value=2**62)),
        column(_FEW),  # stage
        column(maybe),
        column(st.none() | st.just("imported")),
        column(amounts),
        column(days),
        column(_FEW),  # actor
        column(maybe),  # reason
        column(_FEW),
        column(_FEW),
        column(maybe),  # subject
        details,
        [None] * n,  # gate
    ]


@settings(max_examples=300, deadline=None)
@given(_stored_columns(), st.integers(min_value=0, max_value=5))
def test_arrow_chunks_are_the_python_ones_byte_for_byte(
    columns: list[list[Any]], offset: int
) -> None:
    pa = pytest.importorskip("pyarrow")
    from stagegate.store._columnar import encode_arrow, encode_columns

    types = [pa.int64() if i in {1, 3} else pa.string() for i in range(len(columns))]
    # a slice of a longer array: the offset into its buffers must be honoured
    arrays = [
        pa.array([c[0] if c else None] * offset + c, type=t).slice(offset)
        for c, t in zip(columns, types, strict=True)
    ]
    assert encode_arrow(arrays) == encode_columns(columns)
