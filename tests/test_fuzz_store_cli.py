"""The store and the command line fed damaged files, odd paths and unwritable output.

Each case is one small store or one command; the whole file runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from stagegate.cli import main
from stagegate.events import Event, EventKind
from stagegate.io import write_events
from stagegate.store import (
    SQLiteStore,
    StoreDamagedError,
    StoreError,
    stream_import,
    write_import,
)
from stagegate.templates import b2b

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def _events() -> list[Event]:
    opened = Event(
        "d-1", 1, EventKind.OPENED, T0, "ana", "lead_generation", "b2b", "1", amount=Decimal(10)
    )
    moved = Event(
        "d-1", 2, EventKind.RESCHEDULED, T0 + timedelta(days=1), "ana", "lead_generation",
        "b2b", "1", amount=Decimal(10), close_date=T0.date() + timedelta(days=30),
    )  # fmt: skip
    return [opened, moved]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    write_import(path, _events(), process=b2b(), source="events")
    return path


def _edit(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "findings", ["{not json", "5", "[5]"], ids=["not-json", "a-number", "a-list-of-numbers"]
)
def test_a_damaged_import_record_is_a_damage_error_not_a_crash(
    findings: str, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(store, f"UPDATE imports SET findings = '{findings}'")  # noqa: S608 - test constants
    with SQLiteStore(store) as opened, pytest.raises(StoreDamagedError, match="import record 1"):
        opened.imports()
    assert main(["report", "--store", str(store), "--json"]) == 2
    assert "import record 1" in json.loads(capsys.readouterr().out)["error"]


def test_a_seq_edited_into_text_is_malformed_not_a_crash(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(store, "UPDATE events SET seq = 'x' WHERE seq = 2")
    with SQLiteStore(store) as opened, pytest.raises(StoreDamagedError, match="'x'"):
        opened.last_seq("d-1")
    assert main(["report", "--store", str(store), "--engine", "python", "--json"]) == 2
    assert "malformed" in json.loads(capsys.readouterr().out)["error"]
    log = tmp_path / "more.jsonl"
    write_events(log, _events())
    assert main(["import", str(log), "--store", str(store)]) == 2
    assert "not an integer" in capsys.readouterr().err
    assert main(["verify", "--store", str(store)]) == 1
    assert "malformed" in capsys.readouterr().out


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_file_uri_store_path_is_refused_before_anything_is_written(
    replace: bool, suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / f"log{suffix}"
    write_events(log, _events())
    target = "file:s.sqlite?mode=ro"
    args = ["import", str(log), "--store", target, *(["--replace"] if replace else [])]
    assert main(args) == 2
    with pytest.raises(StoreError, match="plain file path"):
        stream_import(target, log, process=b2b(), replace=replace)
    with pytest.raises(StoreError, match="plain file path"):
        write_import(target, _events(), process=b2b(), source="events", replace=replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == [log.name]


@pytest.mark.parametrize("flag", ["--as-of", "--cutoff"])
@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_instant_beyond_the_calendar_in_utc_is_bad_input(
    flag: str, instant: str, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--store", str(store), flag, instant]) == 2
    assert "years 1 to 9999" in capsys.readouterr().err


def _cli(*args: str, stdout: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


def test_output_to_a_full_disk_is_bad_input_not_an_internal_error(store: Path) -> None:
    if not Path("/dev/full").exists():  # pragma: no cover - Linux has it
        pytest.skip("no /dev/full")
    with Path("/dev/full").open("w") as full:
        for args in (
            ("verify", "--store", str(store)),
            ("report", "--json", "--store", str(store)),
        ):
            done = _cli(*args, stdout=full.fileno())
            assert (done.returncode, "internal error" in done.stderr) == (2, False), done.stderr
            assert "No space left" in done.stderr
            assert "Traceback" not in done.stderr


def test_a_closed_standard_output_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_events(log, _events())
    target = tmp_path / "s.sqlite"
    script = (
        "import os, sys; os.close(1); sys.stdout = None; from stagegate.cli import main; "
        f"sys.exit(main(['import', {str(log)!r}, '--store', {str(target)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, "closed" in done.stderr) == (2, True), done.stderr
    assert not target.exists()


def test_a_broken_pipe_is_not_a_negative_answer(store: Path) -> None:
    reader = subprocess.Popen(
        [sys.executable, "-m", "stagegate", "verify", "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None
    reader.stdout.close()  # like `| head -c 0`: the reader is gone before the answer is written
    _, err = reader.communicate(timeout=60)
    assert (reader.returncode, b"Broken pipe" in err) == (2, True), err


def _foreign_database(path: Path) -> str:
    """Another application's database with a table named ``meta``; its bytes as a hash."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('app', 'crm')")
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.execute("INSERT INTO customers VALUES ('acme')")
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("replace", [False, True])
def test_a_foreign_database_with_a_meta_table_is_never_written_or_replaced(
    replace: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "crm.db"
    before = _foreign_database(path)
    log = tmp_path / "log.jsonl"
    write_events(log, _events())
    assert (
        main(["import", str(log), "--store", str(path), *(["--replace"] if replace else [])]) == 2
    )
    assert "not a stagegate event store" in capsys.readouterr().err
    assert main(["verify", "--store", str(path)]) == 2
    assert "not a stagegate event store" in capsys.readouterr().err
    with pytest.raises(StoreError, match="not a stagegate event store"):
        SQLiteStore(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.db", "log.jsonl"]


def test_a_backup_of_an_empty_file_is_refused_and_leaves_it_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    assert main(["backup", str(tmp_path / "copy.sqlite"), "--store", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]
    assert empty.stat().st_size == 0


def _limited(limit: int) -> None:  # pragma: no cover - runs in the child
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_page_the_disk_cannot_hold_leaves_no_half_page(store: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("the page of yesterday", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "stagegate", "report", "--store", str(store), "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: _limited(36_000),  # the -shm file fits (32 KiB), the page does not
    )
    assert page.read_text(encoding="utf-8") == "the page of yesterday"
    assert (done.returncode, "cannot write the report" in done.stderr) == (2, True), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "s.sqlite"]


def test_a_store_name_too_long_for_the_file_system_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = tmp_path / f"{'x' * 300}.sqlite"
    log = tmp_path / "log.jsonl"
    write_events(log, _events())
    for args in (
        ["import", str(log), "--store", str(long)],
        ["verify", "--store", str(long)],
        ["backup", str(tmp_path / "copy.sqlite"), "--store", str(long)],
    ):
        assert main(args) == 2, args
        assert "File name too long" in capsys.readouterr().err
    with pytest.raises(StoreError, match="File name too long"):
        SQLiteStore(long)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]


def test_a_store_name_that_is_not_utf8_is_refused_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "caf\udce9.sqlite"  # b"caf\xe9": Latin-1 bytes in a file name
    log = tmp_path / "log.jsonl"
    write_events(log, _events())
    assert main(["import", str(log), "--store", str(odd)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    for write in (
        lambda: write_import(odd, _events(), process=b2b(), source="events"),
        lambda: stream_import(odd, log, process=b2b()),
    ):
        with pytest.raises(StoreError, match="not UTF-8"):
            write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]


def test_a_review_as_of_the_first_week_of_the_calendar_is_bad_input(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "--store", str(store), "--as-of", "0001-01-03"]) == 2
    assert "give --since" in capsys.readouterr().err
    assert (
        main(["review", "--store", str(store), "--as-of", "0001-01-03", "--since", "0001-01-01"])
        == 0
    )


def test_a_sealed_store_set_back_to_version_1_is_refused_not_read_unsealed(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Version 1 files are read without digests: the downgrade hid any edit from ``verify``."""
    _edit(store, "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    _edit(store, "UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with pytest.raises(StoreDamagedError, match="carry digests"):
        SQLiteStore(store).close()
    assert main(["verify", "--store", str(store)]) == 2
    assert "changed outside stagegate" in capsys.readouterr().err
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


def test_an_import_under_a_process_that_would_not_load_back_writes_nothing(
    tmp_path: Path,
) -> None:
    from stagegate.errors import DefinitionError
    from stagegate.process import Process, Stage, StageKind

    accented = Process(
        "b2b", "9",
        (Stage("lead_generation"), Stage("étude"),
         Stage("won", probability=1.0, kind=StageKind.WON), Stage("lost", kind=StageKind.LOST)),
    )  # fmt: skip
    events = [attrs.evolve(e, process_version="9") for e in _events()]
    with pytest.raises(DefinitionError, match="not stored"):
        write_import(tmp_path / "s.sqlite", events, process=accented, source="events")
    assert [] == sorted(p.name for p in tmp_path.iterdir())


def test_a_store_opened_read_only_reads_and_never_writes(store: Path, tmp_path: Path) -> None:
    from stagegate.store import StoreError, StoreUnwritableError

    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with SQLiteStore(store) as writable:
        expected = list(writable.scan())
    with SQLiteStore(store, read_only=True) as opened:
        assert expected == list(opened.scan())
        assert [True] == [v.ok for v in opened.verify(b2b())]
        assert 2 == len(opened.to_frame())
        with pytest.raises(StoreUnwritableError, match="opened read-only"):
            opened.append([attrs.evolve(_events()[1], seq=3)])
        with pytest.raises(StoreUnwritableError, match="opened read-only"):
            opened.save_process(b2b())
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    with pytest.raises(StoreError, match="no event store"):
        SQLiteStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a store, mounted read-only (as a backup on read-only media is)."""
    source, mounted = tmp_path / "source", tmp_path / "mounted"
    source.mkdir()
    mounted.mkdir()
    write_import(source / "s.sqlite", _events(), process=b2b(), source="events")
    steps = [["mount", "--bind", str(source), str(mounted)],
             ["mount", "-o", "remount,ro,bind", str(mounted)]]  # fmt: skip
    for step in steps:
        if subprocess.run(step, capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", str(mounted)], capture_output=True, check=False)
            pytest.skip("cannot mount a folder read-only here (needs root and mount)")
    try:
        yield mounted / "s.sqlite"
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=False)


def test_a_store_on_read_only_media_verifies_reports_and_backs_up(
    read_only_mount: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every reading command refused it ("make it writable (chmod u+w)"), exit 2."""
    assert main(["verify", "--store", str(read_only_mount)]) == 0
    assert main(["report", "--store", str(read_only_mount), "--json"]) == 0
    assert '"title": "Pipeline health: b2b"' in capsys.readouterr().out  # the report document
    assert main(["backup", str(tmp_path / "copy.sqlite"), "--store", str(read_only_mount)]) == 0
    with SQLiteStore(tmp_path / "copy.sqlite") as copy:
        assert 2 == copy.count()
    assert sorted(p.name for p in read_only_mount.parent.iterdir()) == ["s.sqlite"]
