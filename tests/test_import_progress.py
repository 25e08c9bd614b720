"""Every long phase of an import reports its progress: reading, checking, writing."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from stagegate import demo
from stagegate._progress import Tick
from stagegate.events import Event
from stagegate.io import import_log, read_events, write_events
from stagegate.store import SQLiteStore, stream_import, write_import


class Recorder:
    """Phases that remember every phase started and every tick, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None, list[int]]] = []

    def phase(self, name: str, total: int | None = None) -> Tick:
        ticks: list[int] = []
        self.seen.append((name, total, ticks))
        return ticks.append

    def names(self) -> list[str]:
        return [name for name, _, _ in self.seen]

    def ends(self) -> dict[str, tuple[int | None, int]]:
        """Each phase's total and its last tick."""
        return {name: (total, ticks[-1]) for name, total, ticks in self.seen if ticks}


ROWS = [
    {"opportunity_id": f"D{n}", "at": f"2024-01-{1 + n % 28:02d}T09:00:00Z", "stage": stage}
    for n in range(50)
    for stage in ("Lead", "Won")
]


def _events() -> list[Event]:
    return [e for deal in demo.drive_sample_deals() for e in deal.events]


class TestImporters:
    def test_reading_then_checking_each_end_at_their_total(self) -> None:
        phases = Recorder()
        import_log(ROWS, order=["Lead"], phases=phases)
        assert ["reading", "checking"] == phases.names()
        assert {"reading": (100, 100), "checking": (100, 100)} == phases.ends()

    def test_a_csv_file_counts_its_data_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "log.csv"
        lines = ["opportunity_id,at,stage"] + [
            f"{r['opportunity_id']},{r['at']},{r['stage']}" for r in ROWS
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        phases = Recorder()
        import_log(path, order=["Lead"], phases=phases)
        assert (100, 100) == phases.ends()["reading"]

    def test_without_phases_nothing_is_reported(self) -> None:
        assert import_log(ROWS, order=["Lead"]).events  # and no phases object was needed


class TestStore:
    def test_write_import_checks_then_writes_every_event(self, tmp_path: Path) -> None:
        events = _events()
        phases = Recorder()
        write_import(tmp_path / "s.sqlite", events, process=demo.b2b(), source="t", phases=phases)
        assert ["checking", "writing"] == phases.names()
        total = len(events)
        assert {"checking": (total, total), "writing": (total, total)} == phases.ends()

    def test_into_an_existing_store_the_check_compares_with_it(self, tmp_path: Path) -> None:
        events = _events()
        path = tmp_path / "s.sqlite"
        first = [e for e in events if e.opportunity_id == events[0].opportunity_id]
        with SQLiteStore(path) as store:
            store.append(first)
        rest = [e for e in events if e.opportunity_id != events[0].opportunity_id]
        phases = Recorder()
        write_import(path, rest, process=demo.b2b(), source="t", phases=phases)
        assert ["checking", "writing"] == phases.names()
        assert (len(rest), len(rest)) == phases.ends()["checking"]

    def test_stream_import_reads_checks_and_writes(self, tmp_path: Path) -> None:
        log = tmp_path / "log.jsonl"
        events = _events()
        write_events(log, events)
        path = tmp_path / "s.sqlite"
        with SQLiteStore(path) as store:  # an existing store: the staged events are copied
            store.append([])
        phases = Recorder()
        stream_import(path, log, process=demo.b2b(), phases=phases)
        assert ["reading", "checking", "writing"] == phases.names()
        total = len(events)
        assert {
            "reading": (total, total),
            "checking": (total, total),
            "writing": (total, total),
        } == phases.ends()

    def test_read_events_reports_its_records(self, tmp_path: Path) -> None:
        path = tmp_path / "log.csv"
        events = _events()
        write_events(path, events)
        phases = Recorder()
        assert tuple(events) == read_events(path, phases=phases)
        assert (len(events), len(events)) == phases.ends()["reading"]


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``stagegate import ARGS`` with a pseudo-terminal as its standard error."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    with subprocess.Popen(
        [sys.executable, "-m", "stagegate", "import", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    ) as child:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        child.wait(timeout=120)
    os.close(leader)
    return child.returncode, drawn.decode("utf-8", "replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
class TestCommandLine:
    def _log(self, tmp_path: Path) -> Path:
        path = tmp_path / "history.csv"
        lines = ["opportunity_id,at,stage"] + [
            f"{r['opportunity_id']},{r['at']},{r['stage']}" for r in ROWS
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def test_a_terminal_sees_the_reading_and_checking_bars(self, tmp_path: Path) -> None:
        args = [str(self._log(tmp_path)), "--store", str(tmp_path / "s.sqlite")]
        code, drawn = _on_a_terminal(*args, "--format", "log", "--stage-order", "Lead")
        assert 0 == code
        assert "reading" in drawn
        assert "checking" in drawn
        assert "100/100" in drawn

    def test_quiet_draws_nothing(self, tmp_path: Path) -> None:
        args = [str(self._log(tmp_path)), "--store", str(tmp_path / "s.sqlite"), "--quiet"]
        code, drawn = _on_a_terminal(*args, "--format", "log", "--stage-order", "Lead")
        assert 0 == code
        assert "" == drawn.strip()

    def test_json_output_draws_nothing(self, tmp_path: Path) -> None:
        args = [str(self._log(tmp_path)), "--store", str(tmp_path / "s.sqlite"), "--json"]
        code, drawn = _on_a_terminal(*args, "--format", "log", "--stage-order", "Lead")
        assert 0 == code
        assert "" == drawn.strip()
