"""Tests of stagegate.events: immutable records that round-trip losslessly through JSON."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given

from stagegate import Event, EventKind, EventLogError, InvalidCommandError, MoveKind
from stagegate.events import freeze, recorded_event, thaw
from strategies import T0, events, json_values

UTC = timezone.utc


def _event(**changes):
    base = Event("opp-1", 1, EventKind.OPENED, T0, "ana", "lead", "b2b", "1")
    return attrs.evolve(base, **changes)


class TestEventToDict:
    @given(events())
    def test_events_round_trip_through_json_losslessly(self, event):
        text = json.dumps(event.to_dict(), allow_nan=False)
        rebuilt = Event.from_dict(json.loads(text))
        assert event == rebuilt
        assert event.to_dict() == rebuilt.to_dict()

    @given(events())
    def test_the_dict_is_json_without_floats_for_money(self, event):
        data = event.to_dict()
        assert data["amount"] is None or isinstance(data["amount"], str)
        assert data["at"].endswith("+00:00")

    def test_an_amount_keeps_its_exact_decimal_digits(self):
        event = _event(amount=Decimal("1234567890.123456789"))
        assert event.to_dict()["amount"] == "1234567890.123456789"
        assert Decimal("1234567890.123456789") == Event.from_dict(event.to_dict()).amount

    def test_an_instant_with_an_offset_is_stored_in_utc(self):
        event = _event(at=datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))))
        assert datetime(2026, 3, 29, 1, 30, tzinfo=UTC) == event.at
        assert UTC is event.at.tzinfo

    def test_microseconds_survive_the_round_trip(self):
        event = _event(at=datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC))
        assert event == Event.from_dict(json.loads(json.dumps(event.to_dict())))


class TestEventFromDict:
    @pytest.mark.parametrize(
        ("change", "words"),
        [
            ({"kind": "exploded"}, "malformed"),
            ({"seq": 0}, "positive integer"),
            ({"seq": True}, "positive integer"),
            ({"seq": "1"}, "positive integer"),
            ({"at": "2026-01-05T09:00:00"}, "naive"),
            ({"at": "yesterday"}, "ISO 8601"),
            ({"at": 1_767_600_000}, "non-empty text"),
            ({"actor": ""}, "non-empty text"),
            ({"stage": None}, "non-empty text"),
            ({"amount": "lots"}, "not a decimal"),
            ({"amount": "NaN"}, "finite"),
            ({"amount": "Infinity"}, "finite"),
            ({"close_date": "2026-02-30"}, "calendar date"),
            ({"move": "teleport"}, "malformed"),
            ({"reason": 5}, "text or null"),
            ({"gate": {"results": []}}, "target"),
            ({"gate": {"target": "x", "results": "all"}}, "must be a list"),
            ({"gate": {"target": "x", "results": [{"holds": True}]}}, "criterion result"),
            ({"details": {"k": {1, 2}}}, "malformed"),
        ],
    )
    def test_a_malformed_field_gives_an_event_log_error_that_names_it(self, change, words):
        data = {**_event().to_dict(), **change}
        with pytest.raises(EventLogError, match=words) as caught:
            Event.from_dict(data)
        assert isinstance(caught.value, ValueError)

    @pytest.mark.parametrize("field", ["opportunity_id", "seq", "kind", "at", "actor", "stage"])
    def test_a_missing_field_is_named(self, field):
        data = _event().to_dict()
        del data[field]
        with pytest.raises(EventLogError, match=f"lacks the field '{field}'"):
            Event.from_dict(data)

    @pytest.mark.parametrize("value", [None, [], "event", 5])
    def test_something_that_is_not_an_object_is_rejected(self, value):
        with pytest.raises(EventLogError, match="JSON object"):
            Event.from_dict(value)

    def test_details_nested_too_deep_give_an_event_log_error_not_a_recursion_error(self):
        deep: object = "leaf"
        for _ in range(10_000):
            deep = [deep]
        data = {**_event().to_dict(), "details": {"evidence": deep}}
        with pytest.raises(EventLogError, match="nested deeper"):
            Event.from_dict(data)

    def test_optional_fields_may_be_absent(self):
        data = {key: value for key, value in _event().to_dict().items() if value is not None}
        assert _event() == Event.from_dict(data)


class TestEvent:
    def test_an_event_is_immutable(self):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            _event().seq = 2  # type: ignore[misc]

    def test_details_are_read_only(self):
        event = _event(details=freeze({"a": [1, 2]}))
        with pytest.raises(TypeError):
            event.details["a"] = 3  # type: ignore[index]
        assert event.details["a"] == (1, 2)

    def test_a_naive_instant_is_rejected(self):
        with pytest.raises(ValueError, match="naive"):
            _event(at=datetime(2026, 1, 5))

    def test_openings_and_stage_changes_are_stage_changes(self):
        assert _event().is_stage_change
        assert _event(kind=EventKind.STAGE_CHANGED, move=MoveKind.ADVANCE).is_stage_change
        assert not _event(kind=EventKind.FIELD_SET).is_stage_change

    def test_events_with_equal_fields_are_equal_and_hash_alike(self):
        assert _event(close_date=date(2026, 2, 1)) == _event(close_date=date(2026, 2, 1))
        assert hash(_event()) == hash(_event())


def _recorded_copy(event):
    return recorded_event(*attrs.astuple(event, recurse=False))


class TestRecordedEvent:
    @given(events())
    def test_the_fast_constructor_makes_the_event_the_public_one_makes(self, event):
        recorded = _recorded_copy(event)
        assert Event is type(recorded)
        assert event == recorded
        assert hash(event) == hash(recorded)
        assert repr(event) == repr(recorded)
        assert attrs.astuple(event, recurse=False) == attrs.astuple(recorded, recurse=False)
        assert event.to_dict() == recorded.to_dict()

    @given(events())
    def test_a_fast_event_evolves_and_stays_frozen(self, event):
        recorded = _recorded_copy(event)
        assert attrs.evolve(event, seq=event.seq + 1) == attrs.evolve(recorded, seq=event.seq + 1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            recorded.seq = 2  # type: ignore[misc]

    def test_the_fast_constructor_sets_every_field_of_an_event(self):
        assert Event.__slots__ == tuple(field.name for field in attrs.fields(Event))

    def test_the_fast_constructor_skips_only_the_utc_and_amount_conversions(self):
        converted = [field.name for field in attrs.fields(Event) if field.converter is not None]
        validated = [field.name for field in attrs.fields(Event) if field.validator is not None]
        assert ["at", "amount"] == converted
        assert [] == validated


class TestFreeze:
    @given(json_values)
    def test_freeze_then_thaw_gives_back_the_json_value(self, value):
        assert json.loads(json.dumps(value)) == thaw(freeze(value))

    @given(json_values)
    def test_a_frozen_value_survives_json(self, value):
        frozen = freeze(value)
        assert frozen == freeze(json.loads(json.dumps(thaw(frozen))))

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"x": [math.nan]}])
    def test_non_finite_numbers_are_rejected_because_json_cannot_hold_them(self, value):
        with pytest.raises(InvalidCommandError, match="finite"):
            freeze(value)

    def test_a_set_is_rejected_with_the_path_to_it(self):
        with pytest.raises(InvalidCommandError, match=r"details\.tags holds set"):
            freeze({"tags": {"a"}})

    def test_a_non_text_key_is_rejected(self):
        with pytest.raises(InvalidCommandError, match="non-text key 1"):
            freeze({1: "x"})

    def test_a_structure_that_contains_itself_is_rejected(self):
        loop: dict[str, object] = {}
        loop["again"] = loop
        with pytest.raises(InvalidCommandError, match="nested deeper"):
            freeze(loop)


class TestEventAmounts:
    """An int amount reached the stores as an int: SQLite then raised ``AttributeError``."""

    def _opened(self, amount: object) -> Event:
        return Event("d-1", 1, EventKind.OPENED, T0, "ana", "lead", "b2b", "1", amount=amount)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("given", "kept"),
        [(10, Decimal(10)), (10.5, Decimal("10.5")), (Decimal("7.25"), Decimal("7.25"))],
    )
    def test_numbers_become_decimals(self, given: object, kept: Decimal) -> None:
        amount = self._opened(given).amount
        assert type(amount) is Decimal
        assert amount == kept

    @pytest.mark.parametrize("given", [True, "10", [10], b"10"])
    def test_anything_else_is_an_event_log_error(self, given: object) -> None:
        with pytest.raises(EventLogError, match="must be a Decimal"):
            self._opened(given)

    def test_an_int_amount_imports_into_a_store(self, tmp_path: Any) -> None:
        from stagegate import b2b
        from stagegate.store import SQLiteStore, write_import

        event = Event(
            "d-1",
            1,
            EventKind.OPENED,
            T0,
            "ana",
            "lead_generation",
            "b2b",
            "1",
            amount=10,  # type: ignore[arg-type]
        )
        write_import(tmp_path / "s.sqlite", [event], process=b2b(), source="events")
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            assert Decimal(10) == store.load("d-1")[0].amount
