"""The store and `stagegate import` under faults: kills, live writers, bad files, full disks.

Each test is bounded in count and time (the whole file runs in well under a minute).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from processes import unmeasured_env
from stagegate import demo
from stagegate.cli import main
from stagegate.events import Event, EventKind
from stagegate.io import read_events, write_events
from stagegate.store import (
    SCHEMA_VERSION,
    ImportRefusedError,
    SQLiteStore,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
    StoreReplacedError,
    StoreUnwritableError,
    inspect_file,
    stream_import,
    write_import,
)
from stagegate.store import sqlite as sqlite_module
from stagegate.templates import b2b

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    """The bytes of a store and its companions, as one hash."""
    parts = hashlib.sha256()
    for suffix in ("", "-wal", "-journal"):
        companion = Path(f"{path}{suffix}")
        parts.update(suffix.encode() + (companion.read_bytes() if companion.exists() else b"-"))
    return parts.hexdigest()


def sample_events() -> list[Event]:
    return [event for deal in demo.drive_sample_deals() for event in deal.events]


def opened(oid: str, seq: int = 1, *, at: datetime = T0, stage: str = "lead_generation") -> Event:
    return Event(oid, seq, EventKind.OPENED, at, "ana", stage, "b2b", "1", amount=None)


def base_record(oid: str = "c-1") -> dict[str, Any]:
    return opened(oid).to_dict() | {"at": T0.isoformat()}


def simulated(tmp_path: Path, deals: int, seed: int) -> Path:
    out = tmp_path / f"sim-{deals}-{seed}.jsonl"
    assert main(["simulate", "--deals", str(deals), "--seed", str(seed), "--out", str(out)]) == 0
    return out


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


# -- the malformed-file corpus -----------------------------------------------------------------


def _jsonl(*records: Any) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def _events_corpus() -> dict[str, bytes]:
    """Stagegate event logs (JSON Lines) that must be refused."""
    good = base_record()
    second = (
        Event("c-1", 2, EventKind.RESCHEDULED, T0 + timedelta(days=1), "ana", "lead_generation",
              "b2b", "1", close_date=T0.date() + timedelta(days=30)).to_dict()
    )  # fmt: skip
    cases: dict[str, bytes] = {
        "unknown-stage": _jsonl(good | {"stage": "prospecting"}),
        "first-not-opened": _jsonl(second | {"seq": 1}),
        "time-backwards": _jsonl(good, second | {"at": (T0 - timedelta(days=3)).isoformat()}),
        "seq-starts-at-5": _jsonl(good | {"seq": 5}),
        "seq-2-70": _jsonl(good | {"seq": 2**70}),
        "seq-gap": _jsonl(good, second | {"seq": 3}),
        "seq-repeat": _jsonl(good, second | {"seq": 1}),
        "seq-superscript": _jsonl(good | {"seq": "²"}),
        "at-superscript": _jsonl(good | {"at": "²"}),
        "at-year-1-east": _jsonl(good | {"at": "0001-01-01T00:00:00+14:00"}),
        "at-year-9999-west": _jsonl(good | {"at": "9999-12-31T23:59:59-14:00"}),
        "at-naive": _jsonl(good | {"at": "2026-01-05T09:00:00"}),
        "amount-1e999999": _jsonl(good | {"amount": "1e999999"}),
        "amount-nan": _jsonl(good | {"amount": "NaN"}),
        "amount-infinity": _jsonl(good | {"amount": "-Infinity"}),
        "amount-words": _jsonl(good | {"amount": "a lot"}),
        "details-deep": _jsonl(b'{"opportunity_id": "c-1", "details": ' + b"[" * 100_000),
        "details-deep-closed": (
            json.dumps(good | {"details": None})[:-1].encode()
            + b', "x": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}\n"
        ),
        "other-process": _jsonl(good | {"process": "saas"}),
        "opens-twice": _jsonl(good, good | {"seq": 2}),
        "stage-change-from-wrong-stage": _jsonl(
            good,
            second
            | {
                "kind": "stage_changed",
                "stage": "qualification",
                "from_stage": "proposal",
                "move": "advance",
                "close_date": None,
            },
        ),
        "not-json": b"this is not json\n",
        "truncated": json.dumps(good).encode()[:40] + b"\n",
        "a-json-array": json.dumps([good]).encode(),
        "a-number": b"42\n",
        "empty": b"",
        "blank-lines": b"\n\n  \n",
        "nul-bytes": b"\x00" * 64,
        "utf16": json.dumps(good).encode("utf-16"),
        "latin1": json.dumps(good | {"actor": "Jos\u00e9"}, ensure_ascii=False).encode("latin-1"),
        "binary": bytes(range(256)) * 4,
        "gzip-of-garbage": gzip.compress(b"not json at all\n"),
        "gzip-truncated": gzip.compress(_jsonl(good))[:20],
        "zip": b"PK\x03\x04" + b"\x00" * 40,
        "bzip2": b"BZh91AY&SY" + b"\x00" * 40,
        "sqlite-file": b"SQLite format 3\x00" + b"\x00" * 84,
    }
    # every field of the event: missing, of a wrong type, or (for text fields) absurd
    for field in ("opportunity_id", "seq", "kind", "at", "actor", "stage", "process"):
        cases[f"missing-{field}"] = _jsonl({k: v for k, v in good.items() if k != field})
        cases[f"null-{field}"] = _jsonl(good | {field: None})
        cases[f"list-{field}"] = _jsonl(good | {field: [1, 2]})
        cases[f"object-{field}"] = _jsonl(good | {field: {"a": 1}})
    for field in ("process_version", "from_stage", "move", "amount", "close_date", "gate"):
        cases[f"list-{field}"] = _jsonl(good | {field: [1, 2]})
    for field, value in (
        ("kind", "teleported"),
        ("move", "sideways"),
        ("close_date", "31/12/2026"),
        ("close_date", "2026-02-30"),
        ("gate", "not a gate"),
        ("seq", -1),
        ("seq", 0),
        ("seq", 1.5),
        ("seq", True),
        ("at", "yesterday"),
        ("at", 1767603600),
        ("opportunity_id", ""),
        ("stage", ""),
        ("amount", True),
    ):
        cases[f"bad-{field}-{value!s:.12}".replace("/", "_")] = _jsonl(good | {field: value})
    return cases


_LOG_HEAD = b"opportunity_id,at,stage,amount\n"


def _log_corpus() -> dict[str, bytes]:
    """Stage-history tables (``--format log``) that must be refused."""
    row = b"L-1,2026-01-05T09:00:00Z,lead_generation,100\n"
    return {
        "log-empty": b"",
        "log-header-only": _LOG_HEAD,
        "log-unknown-stage": _LOG_HEAD + b"L-1,2026-01-05T09:00:00Z,Prospecting,1\n",
        "log-amount-1e999999": _LOG_HEAD + b"L-1,2026-01-05T09:00:00Z,lead_generation,1e999999\n",
        "log-amount-nan": _LOG_HEAD + b"L-1,2026-01-05T09:00:00Z,lead_generation,NaN\n",
        "log-at-superscript": _LOG_HEAD + "L-1,²,lead_generation,1\n".encode(),
        "log-at-year-1-east": _LOG_HEAD + b"L-1,0001-01-01T00:00:00+14:00,lead_generation,1\n",
        "log-at-year-9999-west": _LOG_HEAD + b"L-1,9999-12-31T23:59:59-14:00,lead_generation,1\n",
        "log-at-huge-number": _LOG_HEAD + b"L-1,99999999999999999999,lead_generation,1\n",
        "log-missing-id": _LOG_HEAD + b",2026-01-05T09:00:00Z,lead_generation,1\n",
        "log-wrong-columns": b"id,when,what\n" + row,
        "log-duplicate-columns": b"opportunity_id,at,stage,at\n" + row,
        "log-40000-columns": (
            _LOG_HEAD[:-1] + b"," + b",".join(b"c%d" % i for i in range(40_000)) + b"\n" + row
        ),
        "log-unclosed-quote": _LOG_HEAD + b'L-1,"2026-01-05T09:00:00Z,lead_generation,1\n',
        "log-nul": _LOG_HEAD + b"L-1,\x00,lead_generation,1\n",
        "log-bad-utf8": _LOG_HEAD + b"L-\xff,2026-01-05T09:00:00Z,lead_generation,1\n",
        "log-too-many-fields": _LOG_HEAD + b"L-1,2026-01-05T09:00:00Z,lead_generation,1,2,3\n",
        "log-semicolons": b"opportunity_id;at;stage\nL-1;2026-01-05T09:00:00Z;lead_generation\n",
        "log-future": _LOG_HEAD + b"L-1,2999-01-05T09:00:00Z,lead_generation,1\n",
        "log-naive": _LOG_HEAD + b"L-1,2026-01-05T09:00:00,lead_generation,1\n",
        "log-gzip-unknown-stage": gzip.compress(_LOG_HEAD + b"L-1,2026-01-05T09:00:00Z,Nope,1\n"),
    }


def _hubspot_corpus() -> dict[str, bytes]:
    head = b"deal_id,property,value,timestamp\n"
    return {
        "hubspot-epoch-huge": head + b"1,dealstage,appointmentscheduled,99999999999999999999\n",
        "hubspot-epoch-superscript": head + "1,dealstage,appointmentscheduled,²\n".encode(),
        "hubspot-empty": b"",
    }


def _salesforce_corpus() -> dict[str, bytes]:
    head = b"OpportunityId,CreatedDate,StageName,Amount,CloseDate\n"
    ok = b"S-1,2026-01-05T09:00:00Z,Prospecting,10,2026-03-01\n"
    return {
        "sf-amount-1e999999": head + b"S-1,2026-01-05T09:00:00Z,Prospecting,1e999999,\n",
        "sf-at-superscript": head + "S-1,²,Prospecting,10,\n".encode(),
        "sf-at-year-1-east": head + b"S-1,0001-01-01T00:00:00+14:00,Prospecting,10,\n",
        "sf-close-date-superscript": head + "S-1,2026-01-05T09:00:00Z,Prospecting,10,²\n".encode(),
        "sf-close-date-year-0": head + b"S-1,2026-01-05T09:00:00Z,Prospecting,10,0000-01-01\n",
        "sf-no-rows": head,
        "sf-missing-stage-column": b"OpportunityId,CreatedDate\nS-1,2026-01-05T09:00:00Z\n",
        "sf-only-ok-row-but-naive": head + ok.replace(b"Z,", b","),
    }


def _pipedrive_corpus() -> dict[str, bytes]:
    head = b"deal_id,change_time,changed_field_key,new_value\n"
    return {
        "pd-time-superscript": head + "1,²,stage_id,1\n".encode(),
        "pd-time-huge": head + b"1,99999999999999999999,stage_id,1\n",
        "pd-empty": b"",
    }


def _snapshot_corpus() -> dict[str, bytes]:
    head = b"opportunity_id,stage,entered_lead\n"
    return {
        "snap-entered-superscript": head + "X-1,Lead,²\n".encode(),
        "snap-entered-year-9999-west": head + b"X-1,Lead,9999-12-31T23:59:59-14:00\n",
        "snap-no-rows": head,
    }


CORPUS: dict[str, tuple[tuple[str, ...], bytes]] = {
    **{f"{n}.csv": (("--format", "salesforce"), d) for n, d in _salesforce_corpus().items()},
    **{
        f"{n}.csv": (("--format", "pipedrive", "--assume-zone", "UTC"), d)
        for n, d in _pipedrive_corpus().items()
    },
    **{
        f"{n}.csv": (("--format", "snapshot", "--entered", "Lead=entered_lead"), d)
        for n, d in _snapshot_corpus().items()
    },
    **{f"{name}.jsonl": (("--format", "events"), data) for name, data in _events_corpus().items()},
    **{f"{n}.csv": (("--format", "log", "--template", "b2b"), d) for n, d in _log_corpus().items()},
    **{f"{n}.csv": (("--format", "hubspot"), d) for n, d in _hubspot_corpus().items()},
    "delimiter-empty.csv": (("--format", "log", "--template", "b2b", "--delimiter", ""), b"x\n"),
    "delimiter-two.csv": (("--format", "log", "--template", "b2b", "--delimiter", ";;"), b"x\n"),
}


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "deals.sqlite"
    write_import(path, sample_events(), process=b2b(), source="events")
    return path


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 100


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_malformed_file_is_refused_with_a_message_and_leaves_the_store_unchanged(
    name: str, corpus_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, data = CORPUS[name]
    path = tmp_path / name
    path.write_bytes(data)
    before = digest(corpus_store)
    code = main(["import", str(path), "--store", str(corpus_store), *options])
    captured = capsys.readouterr()
    assert (code, digest(corpus_store)) == (2, before), captured.out + captured.err
    assert "error" in captured.err
    assert "Traceback" not in captured.err


def test_a_valid_file_of_the_corpus_shape_imports(corpus_store: Path, tmp_path: Path) -> None:
    """The corpus is refused for what is wrong in it, not for its shape."""
    path = tmp_path / "good.jsonl"
    path.write_bytes(_jsonl(base_record("good-1")))
    store = tmp_path / "copy.sqlite"
    store.write_bytes(corpus_store.read_bytes())
    assert main(["import", str(path), "--store", str(store)]) == 0
    gz = tmp_path / "good.jsonl.gz"
    gz.write_bytes(gzip.compress(_jsonl(base_record("good-2"))))
    assert main(["import", str(gz), "--store", str(store), "--format", "events"]) == 0
    with SQLiteStore(store) as opened_store:
        assert ["good-1", "good-2"] == [i for i in opened_store.opportunity_ids() if "good" in i]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_a_pipe_a_device_or_a_folder_is_refused_at_once(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe.jsonl"
        os.mkfifo(path)
    elif kind == "folder":
        path = tmp_path / "folder.jsonl"
        path.mkdir()
    else:
        path = Path("/dev/zero")
        if not path.exists():
            pytest.skip("no /dev/zero")
    started = time.monotonic()
    store = tmp_path / "s.sqlite"
    code = main(["import", str(path), "--store", str(store), "--format", "log", "--json"])
    assert (code, time.monotonic() - started < 10) == (2, True)
    out = capsys.readouterr()
    if kind == "folder":  # the command line refuses it before reading
        assert "is a directory" in out.err
    else:
        assert ["not_a_file"] == [f["code"] for f in json.loads(out.out)["findings"]]


def test_the_input_size_limit_is_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_jsonl(base_record()) * 10)
    monkeypatch.setenv("STAGEGATE_MAX_INPUT_BYTES", "100")
    assert main(["import", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "STAGEGATE_MAX_INPUT_BYTES" in capsys.readouterr().err


def test_a_log_with_a_negative_amount_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    deal = b2b()
    negative = attrs.evolve(opened("n-1"), amount=Decimal(-5))
    with pytest.raises(ImportRefusedError, match="amount") as refused:
        write_import(tmp_path / "s.sqlite", [negative], process=deal, source="events")
    assert "invalid_events" == refused.value.code
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("mode", ["delete", "wal", "newer", "newer-wal"])
def test_a_foreign_or_newer_database_is_refused_and_left_byte_for_byte(
    mode: str, tmp_path: Path
) -> None:
    path = tmp_path / "other.db"
    if mode.startswith("newer"):
        write_import(path, sample_events(), process=b2b(), source="events")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
        conn.execute(f"PRAGMA journal_mode = {'WAL' if mode == 'newer-wal' else 'DELETE'}")
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA journal_mode = {mode}")
        conn.execute("CREATE TABLE customers (name TEXT)")
        conn.execute("INSERT INTO customers VALUES ('acme')")
    conn.close()
    before = (digest(path), sorted(p.name for p in tmp_path.iterdir()))
    with pytest.raises(StoreError, match="upgrade" if mode.startswith("newer") else "not a"):
        SQLiteStore(path)
    assert before == (digest(path), sorted(p.name for p in tmp_path.iterdir()))


# -- distinct messages ---------------------------------------------------------------------------


class TestConflictsHaveDistinctCauses:
    def test_re_importing_the_same_events_says_so(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        with pytest.raises(ImportRefusedError, match="imported before") as caught:
            write_import(path, sample_events(), process=b2b(), source="events")
        assert "already_imported" == caught.value.code

    def test_another_history_of_the_same_deals_says_so(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events()[:3], process=b2b(), source="events")
        changed = [opened(sample_events()[0].opportunity_id, at=T0)]
        with pytest.raises(ImportRefusedError) as caught:
            write_import(path, changed, process=b2b(), source="events")
        assert "different_history" == caught.value.code

    def test_a_log_that_does_not_start_at_one_says_so(self, tmp_path: Path) -> None:
        with pytest.raises(ImportRefusedError, match="numbered from 1"):
            write_import(tmp_path / "s.sqlite", [opened("x", 4)], process=b2b(), source="events")

    def test_a_seq_beyond_64_bits_says_so(self, tmp_path: Path) -> None:
        with pytest.raises(ImportRefusedError, match=r"2\^63 - 1"):
            write_import(tmp_path / "s", [opened("x", 2**70)], process=b2b(), source="events")
        assert not (tmp_path / "s").exists()

    def test_a_writer_that_appends_first_is_named_a_concurrent_writer(self, tmp_path: Path):
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        original = SQLiteStore.write_import

        def racing(self: SQLiteStore, events: Any, **kwargs: Any) -> Any:
            with SQLiteStore(path) as other:  # another writer gets in between check and write
                other.append([opened("race-1")])
            return original(self, events, **kwargs)

        SQLiteStore.write_import = racing  # type: ignore[method-assign]
        try:
            with pytest.raises(ImportRefusedError) as caught:
                write_import(path, [opened("race-1")], process=b2b(), source="events")
        finally:
            SQLiteStore.write_import = original  # type: ignore[method-assign]
        assert "concurrent_writer" == caught.value.code
        with SQLiteStore(path) as store:
            assert 1 == store.count()


class TestStoreErrorTypes:
    def test_a_lock_held_too_long_is_a_lock_error(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with (
                SQLiteStore(path, timeout=0.1) as store,
                pytest.raises(StoreLockedError, match="locked"),
            ):
                store.append([opened("a")])
        finally:
            holder.close()

    def test_damaged_pages_are_a_damage_error(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        data = bytearray(path.read_bytes())
        data[4096:8192] = b"\xa5" * 4096
        path.write_bytes(bytes(data))
        with pytest.raises(StoreDamagedError, match="backup"), SQLiteStore(path) as store:
            list(store.scan())

    def test_a_full_disk_is_named_as_such(self, tmp_path: Path) -> None:
        script = textwrap.dedent(
            f"""
            import resource, signal, sys
            from datetime import datetime, timezone
            from stagegate.events import Event, EventKind
            from stagegate.store import SQLiteStore, StoreUnwritableError
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            store = SQLiteStore({str(tmp_path / "s.sqlite")!r})
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
            at = datetime(2026, 1, 5, tzinfo=timezone.utc)
            events = [Event(f"o{{i}}", 1, EventKind.OPENED, at, "a" * 200, "lead", "b2b", "1")
                      for i in range(5000)]
            try:
                store.append(events)
            except StoreUnwritableError as error:
                print("full:", error)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert "full: " in result.stdout, result.stderr
        assert "disk" in result.stdout
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            assert 0 == store.count()

    def test_a_missing_folder_is_named_as_such(self, tmp_path: Path) -> None:
        with pytest.raises(StoreUnwritableError, match="does not exist"):
            SQLiteStore(tmp_path / "nowhere" / "s.sqlite")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
    def test_a_read_only_file_is_named_as_such(self, tmp_path: Path) -> None:  # pragma: no cover
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        path.chmod(0o444)
        with pytest.raises(StoreUnwritableError, match="read-only"), SQLiteStore(path) as store:
            store.append([opened("a")])

    @pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
    def test_a_read_only_folder_is_named_as_such(self, tmp_path: Path) -> None:  # pragma: no cover
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            with pytest.raises(StoreUnwritableError, match="folder"):
                SQLiteStore(folder / "s.sqlite")
        finally:
            folder.chmod(0o755)


# -- replace ------------------------------------------------------------------------------------


class TestReplace:
    def test_a_refused_import_leaves_the_old_store_byte_for_byte(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        before = digest(path)
        gap = [opened("g"), opened("g", 3)]
        with pytest.raises(ImportRefusedError):
            write_import(path, gap, process=b2b(), source="events", replace=True)
        assert before == digest(path)
        assert [p.name for p in tmp_path.iterdir()] == ["s.sqlite"]

    @pytest.mark.parametrize("what", ["csv", "foreign", "newer", "input"])
    def test_what_is_not_an_old_store_is_never_replaced(self, what: str, tmp_path: Path) -> None:
        path = tmp_path / "target.sqlite"
        if what == "csv":
            path.write_bytes(b"opportunity_id,at,stage\n1,2,3\n")
        elif what == "foreign":
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE customers (name TEXT)")
            conn.commit()
            conn.close()
        elif what == "newer":
            write_import(path, sample_events(), process=b2b(), source="events")
            conn = sqlite3.connect(path)
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
            conn.commit()
            conn.close()
        else:
            write_events(path, sample_events(), format="jsonl")
        before = digest(path)
        with pytest.raises(ImportRefusedError) as caught:
            write_import(
                path,
                sample_events(),
                process=b2b(),
                source="events",
                replace=True,
                input_path=path,
            )
        assert ("not_replaceable", before) == (caught.value.code, digest(path))

    def test_a_store_another_connection_has_open_is_not_replaced(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        with SQLiteStore(path) as other:
            assert other.count() == 28
            with pytest.raises(StoreLockedError, match="open"):
                write_import(path, [opened("n")], process=b2b(), source="events", replace=True)
            assert other.count() == 28
        write_import(path, [opened("n")], process=b2b(), source="events", replace=True)
        with SQLiteStore(path) as store:
            assert (1, 1) == (store.count(), len(store.imports()))

    def test_a_writer_that_opened_the_old_file_cannot_write_into_it(self, tmp_path: Path):
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        other = tmp_path / "other.sqlite"
        SQLiteStore(other).close()
        with SQLiteStore(path) as stale:
            other.replace(path)  # what --replace does, as seen by a writer that raced it
            with pytest.raises(StoreReplacedError, match="open it again"):
                stale.append([opened("lost")])
        with SQLiteStore(path) as store:
            assert 0 == store.count()

    def test_a_live_writer_process_keeps_every_acknowledged_commit(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        log = tmp_path / "log.jsonl"
        write_events(log, sample_events())
        write_import(path, [opened("w-0")], process=b2b(), source="events")
        script = textwrap.dedent(
            f"""
            import sys, time
            from datetime import datetime, timezone
            from stagegate.events import Event, EventKind
            from stagegate.store import SQLiteStore
            at = datetime(2026, 1, 5, tzinfo=timezone.utc)
            with SQLiteStore({str(path)!r}) as store:
                for i in range(1, 400):
                    store.append([Event(f"w-{{i}}", 1, EventKind.OPENED, at, "a", "lead_generation",
                                        "b2b", "1")])
                    print(i, flush=True)
                    time.sleep(0.005)
            """
        )
        writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer has committed once
        refused = run_cli("import", str(log), "--store", str(path), "--replace", timeout=60)
        acknowledged = 1 + len(writer.stdout.read().split())
        writer.stdout.close()
        writer.wait(timeout=60)
        assert refused.returncode == 2
        assert "open" in refused.stderr
        with SQLiteStore(path) as store:
            assert acknowledged + 1 == store.count()  # w-0 and every acknowledged commit


# -- kill -9 ------------------------------------------------------------------------------------


def _ids(path: Path) -> tuple[int, frozenset[str], list[tuple[str, str]]]:
    with SQLiteStore(path) as store:
        return store.count(), frozenset(store.opportunity_ids()), store.processes()


def test_kill_9_during_import_and_replace_leaves_the_old_store_or_the_new_one(
    tmp_path: Path,
) -> None:
    old_log, new_log = simulated(tmp_path, 300, 1), simulated(tmp_path, 1200, 2)
    path = tmp_path / "s.sqlite"
    assert main(["import", str(old_log), "--store", str(path)]) == 0
    old = _ids(path)
    fresh = tmp_path / "fresh.sqlite"
    assert main(["import", str(new_log), "--store", str(fresh)]) == 0
    new = _ids(fresh)
    new_csv = tmp_path / "new.csv"  # the same events, imported in memory (not streamed)
    write_events(new_csv, read_events(new_log))
    durations = {}
    for source in (new_log, new_csv):
        started = time.monotonic()
        # timed as the killed runs run: unmeasured (coverage slows a measured child)
        timing = tmp_path / f"timing{source.suffix}"
        run_cli("import", str(source), "--store", str(timing), env=unmeasured_env())
        durations[source] = time.monotonic() - started
    rng = random.Random(11)  # noqa: S311 - kill times, not secrets
    outcomes: dict[str, int] = {"old": 0, "new": 0, "absent": 0, "empty": 0}
    kills = attempt = 0
    while kills < 21 and attempt < 40:
        attempt += 1
        replace = attempt % 3 != 2
        source = new_log if attempt % 2 else new_csv
        target = path if replace else tmp_path / f"fresh-{attempt}.sqlite"
        args = [sys.executable, "-m", "stagegate", "import", str(source), "--store", str(target)]
        child = subprocess.Popen([*args, *(["--replace"] if replace else [])], env=unmeasured_env())
        time.sleep(rng.uniform(0.3, 1.0) * durations[source])
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(timeout=60)
        if not target.exists():
            assert not replace
            outcomes["absent"] += 1
            continue
        state = _ids(target)
        if replace:
            assert state in (old, new), state[:1]
            outcomes["old" if state == old else "new"] += 1
            if state == new:  # put the old store back for the next round
                assert main(["import", str(old_log), "--store", str(path), "--replace"]) == 0
        else:  # a fresh store: complete, or no events and no definition
            assert state in (new, (0, frozenset(), [])), state[:1]
            outcomes["new" if state == new else "empty"] += 1
    print("kill -9 outcomes:", kills, outcomes)  # noqa: T201 - shown with -s
    assert kills >= 20, (kills, outcomes)
    assert main(["import", str(old_log), "--store", str(path), "--replace"]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".s.sqlite.replace-")] == []


# -- backup, imports, WAL ---------------------------------------------------------------------


class TestBackup:
    def test_a_backup_during_a_live_writer_holds_a_committed_prefix(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        stop = threading.Event()

        def write() -> None:
            with SQLiteStore(path) as store:
                i = 0
                while not stop.is_set() and i < 2000:
                    i += 1
                    store.append([opened(f"b-{i:05}")])

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        with SQLiteStore(path) as store:
            copied = store.backup(tmp_path / "copy.sqlite")
        stop.set()
        writer.join(timeout=60)
        with SQLiteStore(tmp_path / "copy.sqlite") as copy:
            ids = list(copy.opportunity_ids())
        assert copied == len(ids) > 0
        assert ids == [f"b-{i:05}" for i in range(1, copied + 1)]

    def test_the_backup_command_copies_and_never_overwrites(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        out = tmp_path / "b.sqlite"
        assert main(["backup", "--store", str(path), str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["events"] == 28
        assert main(["backup", "--store", str(path), str(out)]) == 2
        assert main(["backup", "--store", str(tmp_path / "none.sqlite"), str(out)]) == 2
        with SQLiteStore(out) as copy:
            assert (28, [("b2b", "1")]) == (copy.count(), copy.processes())


def test_each_import_is_recorded_with_its_findings(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    log = tmp_path / "log.csv"
    log.write_bytes(
        _LOG_HEAD
        + b"L-1,2026-01-05T09:00:00Z,lead_generation,100\n"
        + b"L-1,2026-01-06T09:00:00Z,Nowhere,100\n"
    )
    args = ["import", str(log), "--store", str(path), "--format", "log", "--template", "b2b"]
    assert main([*args, "--skip-bad-rows"]) == 1
    with SQLiteStore(path) as store:
        (record,) = store.imports()
    assert (record.source, record.input_name, record.events, record.rows_read) == (
        "log",
        "log.csv",
        1,
        2,
    )
    assert "unknown_stage" in {f["code"] for f in record.findings}
    assert record.at.tzinfo is not None


def test_a_wal_grown_under_a_long_scan_is_truncated_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "WAL_LIMIT", 64 * 1024)
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as store:
        store.append([opened(f"s-{i}") for i in range(50)])
        scan: Iterator[Event] = store.scan(batch_size=1)
        next(scan)  # a reader holds its snapshot
        for i in range(40):
            store.append([opened(f"t-{i}-{j}") for j in range(100)])
        assert Path(f"{path}-wal").stat().st_size > 64 * 1024
        rest = list(scan)
        assert 49 == len(rest)
        assert Path(f"{path}-wal").stat().st_size == 0
        assert 4050 == store.count()


# -- streaming --------------------------------------------------------------------------------


class TestStreamImport:
    def test_a_streamed_log_stores_exactly_the_events_of_the_file(self, tmp_path: Path) -> None:
        log = simulated(tmp_path, 40, 5)
        events = read_events(log)
        streamed = stream_import(tmp_path / "a.sqlite", log, process=b2b(), batch_size=7)
        write_import(tmp_path / "b.sqlite", events, process=b2b(), source="events")
        with SQLiteStore(tmp_path / "a.sqlite") as a, SQLiteStore(tmp_path / "b.sqlite") as b:
            assert list(b.scan()) == list(a.scan())
            assert (streamed.record.events, streamed.record.opportunities) == (len(events), 40)
            assert a.processes() == b.processes()
        assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite") == [
            "a.sqlite",
            "b.sqlite",
        ]

    def test_a_streamed_log_continues_stored_deals_and_refuses_a_second_time(
        self, tmp_path: Path
    ) -> None:
        events = sample_events()
        path = tmp_path / "s.sqlite"
        write_import(path, events[:5], process=b2b(), source="events")
        rest = tmp_path / "rest.jsonl.gz"
        rest.write_bytes(gzip.compress(_jsonl(*(e.to_dict() for e in events[5:]))))
        stream_import(path, rest, process=b2b(), batch_size=3)
        with SQLiteStore(path) as store:
            assert tuple(events) == tuple(store.scan())
            assert [5, 23] == [r.events for r in store.imports()]
        before = digest(path)
        whole = tmp_path / "whole.jsonl"
        write_events(whole, events)
        with pytest.raises(ImportRefusedError) as caught:
            stream_import(path, whole, process=b2b())
        assert ("already_imported", before) == (caught.value.code, digest(path))

    def test_a_streamed_replace_swaps_in_the_new_store(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, sample_events(), process=b2b(), source="events")
        log = tmp_path / "one.jsonl"
        log.write_bytes(_jsonl(base_record("only")))
        outcome = stream_import(path, log, process=b2b(), replace=True)
        assert outcome.replaced
        with SQLiteStore(path) as store:
            assert (["only"], 1) == (list(store.opportunity_ids()), len(store.imports()))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "s.sqlite"]

    def test_a_writer_between_staging_and_copy_is_a_concurrent_writer(self, tmp_path: Path):
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        log = tmp_path / "one.jsonl"
        log.write_bytes(_jsonl(base_record("race")))
        original = SQLiteStore.write_import_from

        def racing(self: SQLiteStore, staging: Any, **kwargs: Any) -> Any:
            with SQLiteStore(path) as other:
                other.append([opened("race")])
            return original(self, staging, **kwargs)

        SQLiteStore.write_import_from = racing  # type: ignore[method-assign]
        try:
            with pytest.raises(ImportRefusedError) as caught:
                stream_import(path, log, process=b2b())
        finally:
            SQLiteStore.write_import_from = original  # type: ignore[method-assign]
        assert "concurrent_writer" == caught.value.code
        with SQLiteStore(path) as store:
            assert (1, ()) == (store.count(), store.imports())

    def test_an_interleaved_log_out_of_seq_order_is_refused(self, tmp_path: Path) -> None:
        log = tmp_path / "bad.jsonl"
        second = base_record() | {"seq": 2, "kind": "rescheduled", "close_date": "2026-03-01"}
        log.write_bytes(_jsonl(second, base_record()))
        with pytest.raises(ImportRefusedError, match="seq order"):
            stream_import(tmp_path / "s.sqlite", log, process=b2b(), batch_size=1)
        assert [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]


class TestEdges:
    def test_inspect_answers_none_for_nothing_and_refuses_folders(self, tmp_path: Path) -> None:
        (tmp_path / "empty.sqlite").write_bytes(b"")
        assert (None, None) == (
            inspect_file(tmp_path / "missing.sqlite"),
            inspect_file(tmp_path / "empty.sqlite"),
        )
        with pytest.raises(StoreError, match="not a regular file"):
            inspect_file(tmp_path)
        with SQLiteStore(tmp_path / "empty.sqlite") as store:  # an empty file becomes a store
            assert 0 == store.count()
        assert str(SCHEMA_VERSION) == inspect_file(tmp_path / "empty.sqlite")

    def test_an_empty_sqlite_database_becomes_a_store(self, tmp_path: Path) -> None:
        path = tmp_path / "blank.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 3")
        conn.close()
        assert inspect_file(path) is None
        with SQLiteStore(path) as store:
            store.append([opened("a")])
            assert 1 == store.count()

    def test_a_changed_definition_under_the_same_version_is_refused_whole(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "s.sqlite"
        write_import(path, [opened("a")], process=b2b(), source="events")
        from stagegate.definition import process_from_dict, process_to_dict

        data = process_to_dict(b2b())
        data["stages"][0]["labels"] = {"en": "Renamed lead"}
        with pytest.raises(StoreError, match="different definition"):
            write_import(path, [opened("b")], process=process_from_dict(data), source="events")
        with SQLiteStore(path) as store:
            assert (1, 1) == (store.count(), len(store.imports()))

    def test_a_backup_into_a_missing_folder_names_it(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        SQLiteStore(path).close()
        with SQLiteStore(path) as store, pytest.raises(StoreUnwritableError, match="not exist"):
            store.backup(tmp_path / "nowhere" / "b.sqlite")

    def test_an_unknown_sqlite_failure_still_says_what_to_do(self) -> None:
        error = sqlite_module.store_error("s.sqlite", sqlite3.OperationalError("odd"), 1.0)
        assert (type(error), "integrity_check" in str(error)) == (StoreError, True)

    def test_a_stale_temporary_store_of_a_dead_process_is_removed(self, tmp_path: Path) -> None:
        path = tmp_path / "s.sqlite"
        script = "import os; print(os.getpid())"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
        dead = done.stdout.decode().strip()
        stale = tmp_path / f".s.sqlite.replace-{dead}-0000"
        stale.write_bytes(b"half a store")
        mine = tmp_path / f".s.sqlite.replace-{os.getpid()}-0000"
        mine.write_bytes(b"a replace of this process still running")
        write_import(path, [opened("a")], process=b2b(), source="events", replace=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "s.sqlite"]


def test_the_command_line_refuses_a_streamed_log_with_a_negative_amount(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "negative.jsonl"
    log.write_bytes(_jsonl(base_record("neg") | {"amount": "-10"}))
    assert main(["import", str(log), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "amount" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()
