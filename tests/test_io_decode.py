"""The fast decoder of log records gives exactly what ``Event.from_dict`` gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate.errors import EventLogError
from stagegate.events import Event
from stagegate.integrity import seal
from stagegate.io._decode import event_of
from strategies import events

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["", "\n", "\ud800", "é", "2024-01-05T09:00:00Z", "1.50", "007", "-1"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _outcome(decode: Any, data: dict[str, Any]) -> tuple[str, Any]:
    try:
        event = decode(data)
    except EventLogError as error:
        return "error", str(error)
    return "event", (event, event.digest, event.at.isoformat(), str(event.amount))


@settings(max_examples=100, deadline=None)
@given(events())
def test_a_written_event_decodes_to_itself(event: Event) -> None:
    (sealed,) = seal([event])
    decoded = event_of(sealed.to_dict())
    assert (sealed, sealed.digest) == (decoded, decoded.digest)
    assert sealed.at.isoformat() == decoded.at.isoformat()
    assert str(sealed.amount) == str(decoded.amount)


@settings(max_examples=200, deadline=None)
@given(events(), st.sampled_from(sorted(Event.__slots__)), ODD_VALUES)
def test_a_changed_field_decodes_or_fails_as_from_dict_does(
    event: Event, field: str, value: Any
) -> None:
    data = event.to_dict()
    data[field if field != "__weakref__" else "seq"] = value
    assert _outcome(Event.from_dict, data) == _outcome(event_of, data)


@settings(max_examples=30, deadline=None)
@given(events(), st.sampled_from(["kind", "at", "seq", "opportunity_id", "stage", "actor"]))
def test_a_missing_field_fails_as_from_dict_does(event: Event, missing: str) -> None:
    data = event.to_dict()
    del data[missing]
    assert "error" == _outcome(event_of, data)[0]
    assert _outcome(Event.from_dict, data) == _outcome(event_of, data)
