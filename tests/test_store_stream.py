"""Streaming a log into a new store: each deal replayed as it streams past, same verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stagegate import demo
from stagegate.events import Event
from stagegate.io import write_events
from stagegate.store import ImportRefusedError, SQLiteStore, stream_import
from stagegate.store import _stream as streaming


def _deals() -> list[list[Event]]:
    return [list(deal.events) for deal in demo.drive_sample_deals()]


def _write(path: Path, events: list[Event]) -> Path:
    write_events(path, events)
    return path


def _interleaved(deals: list[list[Event]]) -> list[Event]:
    """Every deal's events in order, the deals' events taken in turn (split across the file)."""
    out: list[Event] = []
    longest = max(map(len, deals))
    for index in range(longest):
        out.extend(deal[index] for deal in deals if index < len(deal))
    return out


def _refusal(tmp_path: Path, name: str, events: list[Event]) -> list[str]:
    log = _write(tmp_path / f"{name}.jsonl", events)
    with pytest.raises(ImportRefusedError) as caught:
        stream_import(tmp_path / f"{name}.sqlite", log, process=demo.b2b())
    return list(caught.value.problems)


class TestStreamedReplay:
    def test_grouped_and_interleaved_logs_import_the_same_store(self, tmp_path: Path) -> None:
        deals = _deals()
        grouped = _write(tmp_path / "grouped.jsonl", [e for deal in deals for e in deal])
        mixed = _write(tmp_path / "mixed.jsonl", _interleaved(deals))
        one = stream_import(tmp_path / "one.sqlite", grouped, process=demo.b2b())
        two = stream_import(tmp_path / "two.sqlite", mixed, process=demo.b2b())
        assert (one.record.events, one.record.opportunities) == (
            two.record.events,
            two.record.opportunities,
        )
        with SQLiteStore(tmp_path / "one.sqlite") as a, SQLiteStore(tmp_path / "two.sqlite") as b:
            assert list(a.scan()) == list(b.scan())

    def test_failing_deals_are_named_in_id_order_whatever_the_file_order(
        self, tmp_path: Path
    ) -> None:
        deals = _deals()
        broken = [deal[1:] for deal in deals]  # no deal starts with its opening
        grouped = _refusal(tmp_path, "grouped", [e for deal in reversed(broken) for e in deal])
        mixed = _refusal(tmp_path, "mixed", _interleaved(broken))
        assert grouped == mixed
        ids = sorted(deal[0].opportunity_id for deal in deals)
        assert [f"opportunity {oid!r}" for oid in ids] == [p.split(" starts")[0] for p in grouped]

    def test_too_many_failing_deals_leave_the_verdict_to_the_staged_replay(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(streaming._Replayer, "MAX_PROBLEMS", 1)
        deals = _deals()
        broken = [deal[1:] for deal in deals]
        problems = _refusal(tmp_path, "many", [e for deal in broken for e in deal])
        assert len(deals) == len(problems)

    def test_a_carried_digest_is_still_checked(self, tmp_path: Path) -> None:
        events = [e for deal in _deals() for e in deal]
        log = tmp_path / "forged.jsonl"
        lines = [e.to_dict() for e in events]
        lines[0]["digest"] = "0" * 64
        log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        with pytest.raises(ImportRefusedError, match="digest"):
            stream_import(tmp_path / "s.sqlite", log, process=demo.b2b())
        assert not (tmp_path / "s.sqlite").exists()
