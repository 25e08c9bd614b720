"""`stagegate import`, run as a user would: exit codes, messages, and no partial writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stagegate import demo
from stagegate.io import write_events
from stagegate.simulate import simulate
from stagegate.store import SQLiteStore
from stagegate.templates import b2b

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PIPEDRIVE = SHARED / "pipedrive-deal-changes"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", "import", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def sample_log(tmp_path: Path) -> Path:
    path = tmp_path / "sample.jsonl"
    events = [event for deal in demo.drive_sample_deals() for event in deal.events]
    write_events(path, events)
    return path


def stored(path: Path) -> int:
    if not path.exists():
        return 0
    with SQLiteStore(path) as store:
        return store.count()


class TestOwnLog:
    def test_a_stagegate_log_imports_with_its_process(self, sample_log: Path, tmp_path: Path):
        store = tmp_path / "s.sqlite"
        result = run(str(sample_log), "--store", str(store), "--json")
        summary = json.loads(result.stdout)
        assert (result.returncode, summary["opportunities"], summary["events"]) == (0, 3, 28)
        with SQLiteStore(store) as opened:
            assert opened.processes() == [("b2b", "1")]
            deal = opened.load_opportunity(b2b(), "acme-erp")
        assert deal.is_won

    def test_importing_the_same_log_twice_conflicts_and_writes_nothing(
        self, sample_log: Path, tmp_path: Path
    ) -> None:
        store = tmp_path / "s.sqlite"
        assert run(str(sample_log), "--store", str(store)).returncode == 0
        again = run(str(sample_log), "--store", str(store))
        assert again.returncode == 2
        assert "nothing was written" in again.stderr
        assert stored(store) == 28

    def test_replace_starts_the_store_afresh(self, sample_log: Path, tmp_path: Path) -> None:
        store = tmp_path / "s.sqlite"
        run(str(sample_log), "--store", str(store))
        assert run(str(sample_log), "--store", str(store), "--replace").returncode == 0
        assert stored(store) == 28

    def test_a_csv_log_with_details_streams_and_says_what_a_whole_read_said(
        self, tmp_path: Path
    ) -> None:
        sim = simulate(30, seed=4, process=b2b(), segments=True)
        events = [e for e in sim.events if e.at <= sim.as_of]
        assert any(e.details for e in events)  # quoted JSON cells: not the bulk path
        log = tmp_path / "log.csv"
        write_events(log, events)
        store = tmp_path / "s.sqlite"
        result = run(str(log), "--store", str(store), "--json")
        summary = json.loads(result.stdout)
        assert result.returncode == 0, result.stderr
        assert (summary["events"], summary["rows_read"], summary["rows_skipped"]) == (
            len(events),
            len(events),
            0,
        )
        assert (summary["process"], summary["process_inferred"], summary["findings"]) == (
            "b2b",
            False,
            [],
        )
        with SQLiteStore(store) as opened:
            assert list(opened.scan()) == events

    def test_a_csv_log_with_a_broken_row_exits_2_naming_it(self, tmp_path: Path) -> None:
        log = tmp_path / "log.csv"
        write_events(log, [event for deal in demo.drive_sample_deals() for event in deal.events])
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[7] = lines[7].replace(",", ";", 3)
        log.write_text("".join(lines), encoding="utf-8", newline="")
        store = tmp_path / "s.sqlite"
        result = run(str(log), "--store", str(store), "--json")
        assert result.returncode == 2, result.stdout + result.stderr
        verdict = json.loads(result.stdout)
        assert [(f["code"], f["rows"]) for f in verdict["findings"]] == [("malformed_row", [8])]
        assert not store.exists()


MALFORMED = {
    "empty.csv": b"",
    "header-only.csv": b"opportunity_id,at,stage\n",
    "wrong-columns.csv": b"id,when,what\n1,2026-01-01T00:00Z,lead_generation\n",
    "bad-encoding.csv": b"opportunity_id,at,stage\n\xff\xfe1,2026-01-01T00:00Z,x\n",
    "future.csv": b"opportunity_id,at,stage\n1,2999-01-01T00:00Z,lead_generation\n",
    "mixed-zones.csv": (
        b"opportunity_id,at,stage\n1,2026-01-01T00:00Z,lead_generation\n"
        b"1,2026-01-02T00:00,qualification\n"
    ),
    "unknown-stage.csv": b"opportunity_id,at,stage\n1,2026-01-01T00:00Z,Prospecting\n",
    "huge-field.csv": b"opportunity_id,at,stage\n1,2026-01-01T00:00Z," + b"x" * 3_000_000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_file_exits_non_zero_and_writes_nothing(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(MALFORMED[name])
    store = tmp_path / "s.sqlite"
    result = run(str(path), "--format", "log", "--template", "b2b", "--store", str(store))
    assert result.returncode != 0, result.stdout
    assert stored(store) == 0
    assert "error" in result.stderr.lower() or "warning" in result.stderr.lower()


@pytest.mark.skipif(not PIPEDRIVE.exists(), reason="../shared/data is not present")
class TestPipedrive:
    def args(self, store: Path) -> list[str]:
        return [
            str(PIPEDRIVE / "deal_changes.csv"),
            "--format",
            "pipedrive",
            "--pipedrive-stages",
            str(PIPEDRIVE / "stages.csv"),
            "--pipedrive-fields",
            str(PIPEDRIVE / "fields.csv"),
            "--store",
            str(store),
            "--json",
        ]

    def test_naive_timestamps_without_a_zone_are_refused(self, tmp_path: Path) -> None:
        store = tmp_path / "p.sqlite"
        result = run(*self.args(store))
        assert result.returncode == 2
        codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
        assert "naive_timestamp" in codes
        assert stored(store) == 0

    def test_the_change_log_imports_with_its_reused_ids_split(self, tmp_path: Path) -> None:
        store = tmp_path / "p.sqlite"
        result = run(*self.args(store), "--assume-zone", "UTC")
        summary = json.loads(result.stdout)
        assert result.returncode == 0
        assert summary["opportunities"] == 2000
        assert sum(f["code"] == "reused_id" for f in summary["findings"]) == 5
        assert summary["process_stored"] is True
        with SQLiteStore(store) as opened:
            assert opened.count() == summary["events"]
            assert opened.processes() == [("imported", "1")] or len(opened.processes()) == 1
