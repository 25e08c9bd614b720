"""Owners and segment attributes: commands, replay, the values in force, and serialization."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import (
    Event,
    EventKind,
    EventLogError,
    InvalidCommandError,
    Opportunity,
    StagegateError,
    b2b,
    seal,
    verify,
)
from stagegate import analytics as an
from stagegate.decision import decide_json
from stagegate.io import read_events, write_events
from stagegate.segments import (
    OWNER,
    RESERVED_NAMES,
    attribute_name,
    in_force,
    names_of,
    values_at,
)
from stagegate.simulate import simulate
from stagegate.store.sqlite import SQLiteStore
from strategies import T0, attribute_names, opportunities, owners

PROCESS = b2b()
DAY = timedelta(days=1)


def opened(**kwargs: Any) -> Opportunity:
    return Opportunity.open(PROCESS, "d-1", at=T0, actor="crm", **kwargs)


def reference_state(events: tuple[Event, ...]) -> tuple[str | None, dict[str, str]]:
    """The owner and attributes at the end of a log, read independently of Opportunity."""
    owner, attributes = None, {}
    for event in events:
        if event.kind is EventKind.REASSIGNED:
            owner = event.subject
        elif event.kind is EventKind.ATTRIBUTE_SET:
            assert event.subject is not None
            assert event.details is not None
            value = event.details["value"]
            if value is None:
                attributes.pop(event.subject, None)
            else:
                attributes[event.subject] = value
    return owner, attributes


class TestOpen:
    def test_owner_and_attributes_are_recorded_right_after_opened_at_the_same_instant(
        self,
    ) -> None:
        deal = opened(owner="kim", attributes={"team": "east-1", "region": "east"})
        assert [(e.seq, e.kind.value, e.subject, e.at) for e in deal.events] == [
            (1, "opened", None, T0),
            (2, "reassigned", "kim", T0),
            (3, "attribute_set", "team", T0),
            (4, "attribute_set", "region", T0),
        ]
        assert deal.owner == "kim"
        assert dict(deal.attributes) == {"team": "east-1", "region": "east"}

    def test_the_owner_is_not_the_actor(self) -> None:
        deal = opened(owner="kim")
        assert (deal.events[1].actor, deal.owner) == ("crm", "kim")

    def test_none_attribute_values_are_skipped_at_opening(self) -> None:
        deal = opened(attributes={"team": None, "region": "west"})
        assert [e.subject for e in deal.events[1:]] == ["region"]

    def test_without_owner_the_deal_has_none(self) -> None:
        deal = opened()
        assert deal.owner is None
        assert dict(deal.attributes) == {}
        assert len(deal.events) == 1

    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({"owner": ""}, "owner must be non-empty text"),
            ({"owner": 7}, "owner must be non-empty text"),
            ({"owner": "kim\n"}, "control character"),
            ({"attributes": {"Team": "x"}}, "not a lowercase identifier"),
            ({"attributes": {"owner": "x"}}, "reassign"),
            ({"attributes": {"stage": "x"}}, "column of the stage-history table"),
            ({"attributes": {"team": 3}}, "attribute 'team' value must be"),
            ({"attributes": ["team"]}, "attributes must be a mapping"),
        ],
    )
    def test_bad_owner_or_attributes_are_typed_errors(
        self, kwargs: dict[str, Any], words: str
    ) -> None:
        with pytest.raises(InvalidCommandError, match=words):
            opened(**kwargs)


class TestReassign:
    def test_records_the_new_owner_from_its_instant_on(self) -> None:
        deal = opened(owner="kim")
        event = deal.reassign("lee", at=T0 + DAY, actor="manager:park")
        assert (event.kind, event.subject, event.actor) == (
            EventKind.REASSIGNED,
            "lee",
            "manager:park",
        )
        assert deal.owner == "lee"
        assert (event.stage, event.amount, event.close_date) == (deal.stage, None, None)

    def test_reassigning_to_the_owner_in_force_is_refused_and_changes_nothing(self) -> None:
        deal = opened(owner="kim")
        before = deal.events
        with pytest.raises(InvalidCommandError, match="already owns"):
            deal.reassign("kim", at=T0 + DAY, actor="ana")
        assert (deal.events, deal.owner) == (before, "kim")

    def test_an_overlong_owner_is_refused(self) -> None:
        deal = opened()
        with pytest.raises(InvalidCommandError, match="at most 200"):
            deal.reassign("x" * 201, at=T0, actor="ana")
        assert len(deal.events) == 1


class TestSetAttribute:
    def test_sets_and_clears_an_attribute(self) -> None:
        deal = opened(attributes={"region": "east"})
        deal.set_attribute("region", "west", at=T0 + DAY, actor="ana")
        assert dict(deal.attributes) == {"region": "west"}
        event = deal.set_attribute("region", None, at=T0 + 2 * DAY, actor="ana")
        assert event.details == {"value": None}
        assert dict(deal.attributes) == {}

    @pytest.mark.parametrize(
        ("name", "value", "words"),
        [
            ("region", "east", "already 'east'"),
            ("lead source", "web", "not a lowercase identifier"),
            ("amount", "1", "column of the stage-history table"),
            ("team", "", "must be non-empty text"),
            ("team", ["a"], "must be non-empty text"),
            ("x" * 65, "v", "at most 64 characters"),
            ("currency", "eur", "ISO 4217"),
        ],
    )
    def test_a_rejected_attribute_is_a_typed_error_and_changes_nothing(
        self, name: Any, value: Any, words: str
    ) -> None:
        deal = opened(attributes={"region": "east"})
        before = deal.events
        with pytest.raises(InvalidCommandError, match=words):
            deal.set_attribute(name, value, at=T0 + DAY, actor="ana")
        assert deal.events == before
        assert dict(deal.attributes) == {"region": "east"}

    def test_every_reserved_name_is_refused(self) -> None:
        for name in RESERVED_NAMES:
            with pytest.raises(InvalidCommandError):
                attribute_name(name)


class TestReplay:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(opportunities(max_commands=20))
    def test_replay_rebuilds_the_owner_and_attributes(self, deal: Opportunity) -> None:
        again = Opportunity.replay(deal.process, deal.events)
        assert (again.owner, dict(again.attributes)) == (deal.owner, dict(deal.attributes))
        assert (deal.owner, dict(deal.attributes)) == reference_state(deal.events)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(opportunities(max_commands=15), owners, attribute_names, st.none() | owners)
    def test_a_rejected_segment_command_changes_nothing(
        self, deal: Opportunity, owner: str, name: str, value: str | None
    ) -> None:
        before = (deal.events, deal.owner, dict(deal.attributes))
        at = deal.last_at
        with contextlib.suppress(StagegateError):
            deal.reassign(owner, at=at - timedelta(microseconds=1), actor="ana")
        with contextlib.suppress(StagegateError):
            deal.set_attribute(name.upper(), value, at=at, actor="ana")
        if deal.owner is not None:
            with pytest.raises(InvalidCommandError):
                deal.reassign(deal.owner, at=at, actor="ana")
        assert (deal.events, deal.owner, dict(deal.attributes)) == before

    def _log(self) -> tuple[Event, ...]:
        deal = opened(owner="kim", attributes={"region": "east"})
        return deal.events

    @pytest.mark.parametrize(
        ("seq", "changes", "rule"),
        [
            (2, {"subject": "Kim\n"}, "bad_segment"),
            (2, {"subject": None}, "bad_segment"),
            (3, {"subject": "Region"}, "bad_segment"),
            (3, {"subject": "owner"}, "bad_segment"),
            (3, {"details": None}, "malformed_details"),
            (3, {"details": {"value": 5}}, "bad_segment"),
            (3, {"details": {"value": None}}, "unchanged_value"),
        ],
    )
    def test_replay_refuses_a_malformed_segment_event(
        self, seq: int, changes: dict[str, Any], rule: str
    ) -> None:
        log = list(self._log())
        log[seq - 1] = attrs.evolve(log[seq - 1], **changes)
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, log)
        assert (caught.value.rule, caught.value.seq) == (rule, seq)

    def test_replay_refuses_a_reassignment_to_the_owner_in_force(self) -> None:
        log = list(self._log())
        log.append(attrs.evolve(log[1], seq=4))
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, log)
        assert caught.value.rule == "unchanged_value"

    def test_replay_refuses_a_segment_event_that_changes_the_amount(self) -> None:
        log = list(self._log())
        log[1] = attrs.evolve(log[1], amount=Decimal(5))
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, log)
        assert caught.value.rule == "amount_changed"


class TestValuesAt:
    def test_values_are_in_force_from_their_instant_on(self) -> None:
        deal = opened(owner="kim", attributes={"team": "a"})
        deal.log_activity("call", at=T0 + DAY, actor="kim")
        deal.reassign("lee", at=T0 + 2 * DAY, actor="ana")
        deal.set_attribute("team", None, at=T0 + 3 * DAY, actor="ana")
        expected = [
            ("kim", "a"),
            ("kim", "a"),
            ("kim", "a"),
            ("kim", "a"),
            ("lee", "a"),
            ("lee", None),
        ]
        values = values_at(deal.events)
        assert [(v[OWNER], v["team"]) for v in values] == expected
        assert names_of(deal.events) == ("owner", "team")
        assert dict(in_force(deal.events, T0 + DAY + DAY / 2)) == {"owner": "kim", "team": "a"}
        assert dict(in_force(deal.events, T0 - DAY)) == {}
        assert dict(in_force(deal.events, T0 - DAY, ["owner"])) == {"owner": None}

    def test_values_restart_at_each_deal(self) -> None:
        a = opened(owner="kim").events
        b = Opportunity.open(PROCESS, "d-2", at=T0, actor="crm", attributes={"team": "x"}).events
        values = values_at(a + b)
        assert [dict(v) for v in values] == [
            {"owner": "kim", "team": None},
            {"owner": "kim", "team": None},
            {"owner": None, "team": "x"},
            {"owner": None, "team": "x"},
        ]

    def test_named_columns_only_are_returned(self) -> None:
        deal = opened(owner="kim", attributes={"team": "a"})
        assert [dict(v) for v in values_at(deal.events, ["team", "product"])][-1] == {
            "team": "a",
            "product": None,
        }

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(opportunities(max_commands=20))
    def test_the_last_values_are_the_state_of_the_deal(self, deal: Opportunity) -> None:
        names = names_of(deal.events)
        values = values_at(deal.events)
        last = values[-1]
        assert last.get(OWNER) == deal.owner
        assert {k: v for k, v in last.items() if k != OWNER and v is not None} == dict(
            deal.attributes
        )
        for event, row in zip(deal.events, values, strict=True):
            state = deal.state_at(event.at)
            assert dict(row) == {
                name: state.owner if name == OWNER else state.attributes.get(name) for name in names
            }


class TestSerialization:
    def _deal(self) -> Opportunity:
        deal = opened(owner="정민", attributes={"region": "서울", "team": "a"})
        deal.reassign("lee", at=T0 + DAY, actor="ana")
        deal.set_attribute("team", None, at=T0 + DAY, actor="ana")
        return deal

    def test_events_round_trip_through_dicts(self) -> None:
        for event in self._deal().events:
            assert Event.from_dict(event.to_dict()) == event

    @pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
    def test_the_canonical_log_round_trips(self, tmp_path: Path, suffix: str) -> None:
        deal = self._deal()
        path = tmp_path / f"log{suffix}"
        write_events(path, deal.events)
        back = read_events(path)
        assert back == deal.events
        assert Opportunity.replay(PROCESS, back).owner == "lee"

    def test_a_sealed_log_verifies_and_tampering_shows(self) -> None:
        sealed = seal(self._deal().events)
        assert verify(PROCESS, sealed).sealed == len(sealed) == 6
        tampered = list(sealed)
        tampered[1] = attrs.evolve(tampered[1], subject="mallory")
        with pytest.raises(EventLogError) as caught:
            verify(PROCESS, tampered)
        assert caught.value.rule == "digest_mismatch"

    def test_the_sqlite_store_round_trips(self, tmp_path: Path) -> None:
        deal = self._deal()
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.append(deal.events)
            loaded = store.load("d-1")
        assert loaded == deal.events
        again = Opportunity.replay(PROCESS, loaded)
        assert (again.owner, dict(again.attributes)) == ("lee", {"region": "서울"})

    def test_the_decision_service_takes_a_log_with_owners(self) -> None:
        deal = self._deal()
        document = {
            "version": 1,
            "process": "b2b",
            "events": [e.to_dict() for e in deal.events],
            "move": {"actor": "ana", "command": "advance"},
        }
        answer = decide_json(json.dumps(document))
        assert "blocked" == answer["status"]
        assert answer["missing"]


class TestAnalytics:
    def test_segment_events_change_no_figure_of_the_analytics(self) -> None:
        plain = simulate(1500, seed=21, mode="informative")
        owned = simulate(1500, seed=21, mode="informative", segments=True)
        kinds = plain.model.outcomes()

        def figures(events: tuple[Event, ...]) -> tuple[Any, ...]:
            return (
                an.stage_probabilities(events, kinds, as_of=plain.as_of, draws=0),
                an.time_in_stage(events, kinds, as_of=plain.as_of),
                an.stalled(events, kinds, as_of=plain.as_of),
                an.forecast(events, kinds, as_of=plain.as_of, simulations=50).periods,
            )

        assert figures(plain.events) == figures(owned.events)
