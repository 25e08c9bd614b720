"""Streaming CSV and Parquet logs: the store that reading them whole gives, in bounded memory.

``stagegate import log.csv`` used to read the whole file into events before checking one (21 GB
for the 8.3 million events of a simulated million deals). It now streams CSV and Parquet as it
streams JSON Lines: these tests hold it to the old behaviour on what it stores and refuses, and
to a memory that does not grow with the file.
"""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stagegate.errors import EventLogError, StagegateError
from stagegate.io import ImportProblemError, read_events, write_events
from stagegate.io.canonical import log_records, records_in
from stagegate.simulate import simulate
from stagegate.store import ImportRefusedError, SQLiteStore, stream_import
from stagegate.templates import b2b
from test_import_fast import _tables, import_whole

PROCESS = b2b()


def _events(deals: int, seed: int = 3) -> list[Any]:
    sim = simulate(deals, seed=seed, process=PROCESS, segments=True)
    return [e for e in sim.events if e.at <= sim.as_of]


@pytest.mark.parametrize("name", ["log.csv", "log.parquet", "log.csv.gz", "log.jsonl.gz"])
def test_a_streamed_log_stores_what_reading_it_whole_stores(tmp_path: Path, name: str) -> None:
    events = _events(40)
    kinds = {e.kind.value for e in events}
    assert {"attribute_set", "reassigned"} <= kinds  # details and owners, not only plain rows
    plain = tmp_path / name.removesuffix(".gz")
    write_events(plain, events)
    log = plain
    if name.endswith(".gz"):
        log = tmp_path / name
        log.write_bytes(gzip.compress(plain.read_bytes()))
    outcome = stream_import(tmp_path / "streamed.sqlite", log, process=PROCESS)
    import_whole(tmp_path / "whole.sqlite", log)
    assert _tables(tmp_path / "streamed.sqlite", projection=False) == _tables(
        tmp_path / "whole.sqlite", projection=False
    )
    assert (outcome.record.events, outcome.record.rows_read) == (len(events), len(events))
    with SQLiteStore(tmp_path / "streamed.sqlite") as store:
        assert list(store.scan()) == events
        assert all(verdict.error is None for verdict in store.verify(require_digests=True))


def test_records_are_numbered_as_the_file_numbers_them(tmp_path: Path) -> None:
    events = _events(3)
    for name, first in (("log.csv", 2), ("log.parquet", 1), ("log.jsonl", 1)):
        write_events(tmp_path / name, events)
        numbers = [number for number, _ in log_records(tmp_path / name, batch_size=7)]
        assert numbers == list(range(first, first + len(events)))
        assert records_in(tmp_path / name) == len(events)


def _csv(tmp_path: Path, events: list[Any]) -> tuple[Path, list[str]]:
    path = tmp_path / "log.csv"
    write_events(path, events)
    return path, path.read_text(encoding="utf-8").splitlines(keepends=True)


def _refused(tmp_path: Path, log: Path) -> StagegateError:
    """Both ways refuse the log and write nothing; the streamed refusal."""
    with pytest.raises(StagegateError) as streamed:
        stream_import(tmp_path / "s.sqlite", log, process=PROCESS)
    with pytest.raises(StagegateError):
        import_whole(tmp_path / "w.sqlite", log)
    assert not (tmp_path / "s.sqlite").exists()
    assert not (tmp_path / "w.sqlite").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    return streamed.value


class TestHostileTables:
    def test_a_row_with_a_missing_field_is_refused_with_its_row_not_dropped(
        self, tmp_path: Path
    ) -> None:
        path, lines = _csv(tmp_path, _events(3))
        last = len(lines)  # the last row of the last deal: dropping it would go unnoticed
        lines[-1] = lines[-1].rstrip("\r\n").rsplit(",", 1)[0] + "\r\n"
        path.write_text("".join(lines), encoding="utf-8", newline="")
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportProblemError)
        assert [(f.code, f.rows) for f in error.findings] == [("malformed_row", (last,))]

    def test_undecodable_bytes_are_named_by_their_line(self, tmp_path: Path) -> None:
        path, lines = _csv(tmp_path, _events(3))
        raw = "".join(lines[:5]).encode() + b"\xff\xfe" + "".join(lines[5:]).encode()
        path.write_bytes(raw)
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportProblemError)
        assert [(f.code, f.rows) for f in error.findings] == [("bad_encoding", (6,))]

    def test_a_nul_character_is_named_by_its_line(self, tmp_path: Path) -> None:
        path, lines = _csv(tmp_path, _events(3))
        lines[3] = lines[3].replace(",", ",\x00", 1)
        path.write_text("".join(lines), encoding="utf-8", newline="")
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportProblemError)
        assert [(f.code, f.rows) for f in error.findings] == [("bad_encoding", (4,))]

    def test_details_that_are_not_json_name_their_row(self, tmp_path: Path) -> None:
        events = _events(5)
        path, lines = _csv(tmp_path, events)
        row = next(i for i, e in enumerate(events) if e.details) + 1
        lines[row] = lines[row].replace('"{', '"{oops', 1)
        path.write_text("".join(lines), encoding="utf-8", newline="")
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportRefusedError)
        assert f"row {row + 1}: column 'details' is not JSON" in str(error)

    def test_a_truncated_gzip_file_is_unreadable(self, tmp_path: Path) -> None:
        path, _ = _csv(tmp_path, _events(20))
        packed = gzip.compress(path.read_bytes())
        log = tmp_path / "log.csv.gz"
        log.write_bytes(packed[: len(packed) // 2])
        error = _refused(tmp_path, log)
        assert isinstance(error, ImportProblemError)
        assert [f.code for f in error.findings] == ["unreadable_file"]

    def test_a_file_larger_than_the_limit_once_decompressed_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _ = _csv(tmp_path, _events(20))
        log = tmp_path / "log.csv.gz"
        log.write_bytes(gzip.compress(path.read_bytes()))
        monkeypatch.setenv("STAGEGATE_MAX_INPUT_BYTES", str(log.stat().st_size + 10))
        error = _refused(tmp_path, log)
        assert isinstance(error, ImportProblemError)
        assert [f.code for f in error.findings] == ["file_too_large"]
        assert "once decompressed" in str(error.findings[0].message)

    @pytest.mark.parametrize(
        ("header", "code"),
        [("opportunity_id,seq,kind", "missing_columns"), ("seq,seq", "duplicate_columns")],
    )
    def test_a_header_that_is_not_a_log_is_refused(
        self, tmp_path: Path, header: str, code: str
    ) -> None:
        path, lines = _csv(tmp_path, _events(2))
        lines[0] = (
            lines[0].replace("opportunity_id,seq", header, 1)
            if code[0] == "d"
            else (header + "\r\n")
        )
        path.write_text("".join(lines), encoding="utf-8", newline="")
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportProblemError)
        assert [f.code for f in error.findings] == [code]

    def test_an_empty_file_and_a_folder_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "empty.csv").write_bytes(b"")
        (tmp_path / "folder.csv").mkdir()
        for name, code in (("empty.csv", "empty_file"), ("folder.csv", "not_a_file")):
            with pytest.raises(ImportProblemError) as caught:
                stream_import(tmp_path / "s.sqlite", tmp_path / name, process=PROCESS)
            assert [f.code for f in caught.value.findings] == [code]
            assert not (tmp_path / "s.sqlite").exists()

    def test_events_of_another_process_are_refused_with_the_hint(self, tmp_path: Path) -> None:
        events = _events(3)
        path = tmp_path / "log.parquet"
        write_events(path, events)
        table = pq.read_table(path)
        index = table.column_names.index("process")
        table = table.set_column(index, "process", pa.array(["other"] * table.num_rows))
        pq.write_table(table, path)
        with pytest.raises(ImportProblemError) as caught:
            stream_import(tmp_path / "s.sqlite", path, process=PROCESS)
        assert [f.code for f in caught.value.findings] == ["unknown_process"]
        assert "'other'" in caught.value.findings[0].message

    def test_a_zoneless_parquet_timestamp_names_its_row(self, tmp_path: Path) -> None:
        events = _events(2)
        path = tmp_path / "log.parquet"
        write_events(path, events)
        table = pq.read_table(path)
        index = table.column_names.index("at")
        naive = pa.array([e.at.replace(tzinfo=None) for e in events], pa.timestamp("us"))
        pq.write_table(table.set_column(index, "at", naive), path)
        error = _refused(tmp_path, path)
        assert isinstance(error, ImportRefusedError)
        assert "row 1: column 'at' holds a timestamp without a time zone" in str(error)
        with pytest.raises(EventLogError, match="row 1: column 'at'"):
            read_events(path)


def _peak(tmp_path: Path, deals: int) -> int:
    log = tmp_path / f"log-{deals}.csv"
    write_events(log, _events(deals, seed=5))
    tracemalloc.start()
    try:
        stream_import(tmp_path / f"s-{deals}.sqlite", log, process=PROCESS, batch_size=500)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Four times the deals, about the same peak: one batch, one deal, the ids seen so far."""
    small, large = _peak(tmp_path, 300), _peak(tmp_path, 1200)
    assert large < small * 1.25 + 500_000, (small, large)
