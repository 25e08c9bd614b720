"""Importers record owner and segment changes as events: the store's history carries them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import Opportunity
from stagegate.events import EventKind, thaw
from stagegate.io import import_log
from stagegate.segments import values_at

UTC = timezone.utc
AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
ORDER = ["Lead", "Demo"]
OPTIONS: dict[str, Any] = {"as_of": AS_OF, "order": ORDER, "won": ("Won",), "lost": ("Lost",)}


def _rows(cells: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    return [
        {"opportunity_id": "A", "at": f"2024-01-{day:02d}T09:00:00Z", "stage": stage, "owner": who}
        for day, stage, who in cells
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 28),
            st.sampled_from(["Lead", "Demo"]),
            st.sampled_from(["", "ana", "ben"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_events_carry_the_owners_the_table_shows_and_replay(
    cells: list[tuple[int, str, str]],
) -> None:
    result = import_log(_rows(cells), **OPTIONS)
    process = result.definition
    assert process is not None
    for events in result.by_opportunity().values():
        replayed = Opportunity.replay(process, events)
        frame = result.to_frame()
        if "owner" in result.segment_names:
            # the history's owner at each event is the owner column of the table, row for row
            expected = frame["owner"].to_list()
            assert expected == [v["owner"] for v in values_at(events, ["owner"])]
            assert replayed.owner == expected[-1]
        else:
            assert not any(e.kind is EventKind.REASSIGNED for e in events)


def test_a_row_that_only_changes_the_owner_is_used() -> None:
    rows = _rows([(5, "Lead", "ana"), (9, "Lead", "ben"), (12, "Demo", "ben")])
    result = import_log(rows, **OPTIONS)
    assert 3 == result.rows_used
    assert "no_change" not in [f.code for f in result.findings]
    kinds = [(e.kind.value, e.subject) for e in result.events]
    assert [
        ("opened", None),
        ("reassigned", "ana"),
        ("reassigned", "ben"),
        ("stage_changed", None),
    ] == kinds


def test_an_owner_is_recorded_before_the_move_at_the_same_instant() -> None:
    rows = _rows([(5, "Lead", "ana"), (9, "Demo", "ben")])
    events = import_log(rows, **OPTIONS).events
    assert ["opened", "reassigned", "reassigned", "stage_changed"] == [e.kind.value for e in events]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[2].at == events[3].at
    assert "lead" == events[2].stage  # the state in force before the move


def test_a_segment_value_a_deal_cannot_hold_is_a_finding_not_a_crash() -> None:
    rows = [
        {"opportunity_id": "A", "at": "2024-01-05T09:00:00Z", "stage": "Lead", "team": "x" * 300},
        {"opportunity_id": "A", "at": "2024-01-09T09:00:00Z", "stage": "Demo", "team": "north"},
    ]
    result = import_log(rows, segments=["team"], **OPTIONS)
    found = [f for f in result.findings if f.code == "bad_value"]
    assert len(found) == 1
    assert "'team'" in found[0].message
    recorded = [
        (e.subject, thaw(e.details)) for e in result.events if e.kind is EventKind.ATTRIBUTE_SET
    ]
    assert [("team", {"value": "north"})] == recorded


def test_a_store_imported_from_rows_gives_the_owner_column(tmp_path: Any) -> None:
    pytest.importorskip("polars")
    from stagegate.store import SQLiteStore, write_import

    rows = _rows([(5, "Lead", "ana"), (9, "Demo", "ben")])
    result = import_log(rows, **OPTIONS)
    path = tmp_path / "s.sqlite"
    write_import(path, result.events, process=result.definition, source=result.source)
    with SQLiteStore(path) as store:
        frame = store.to_frame()
    assert ["ana", "ana", "ben", "ben"] == frame["owner"].to_list()
