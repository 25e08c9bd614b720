"""Every crash and wrong answer of issue 10 found by a hostile caller, as a regression test; and
properties: arbitrary JSON into the readers and replay raises only stagegate's own errors."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import (
    ActivityCount,
    ActivitySpec,
    DefinitionError,
    DeliverableSpec,
    Event,
    EventLogError,
    Facts,
    FieldCheck,
    GateNotMetError,
    InvalidCommandError,
    InvalidTimestampError,
    Opportunity,
    Policies,
    Process,
    Stage,
    StagegateError,
    StageKind,
    UnknownDeliverableError,
    UnknownStageError,
    b2b,
    process_from_dict,
    process_from_json,
    process_from_toml,
    process_from_yaml,
    process_to_dict,
)
from stagegate._time import from_epoch_us, parse_instant
from stagegate.definition import MAX_NESTING, MAX_YAML_NODES, _read_yaml, _YamlLimitError
from stagegate.events import EventKind
from strategies import T0, full_evidence, json_values
from test_verify import LOG  # the reference log of 13 events

PROCESS = b2b()
H = timedelta(hours=1)
PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))
HUGE = 10**5000


def opened() -> Opportunity:
    return Opportunity.open(PROCESS, "acme-1", at=T0, actor="ana", amount=48_000)


def definition() -> dict[str, Any]:
    return copy.deepcopy(process_to_dict(PROCESS))


def first_criterion(data: dict[str, Any], key: str) -> dict[str, Any]:
    """The first criterion with ``key`` in any stage's gate."""
    stack = [stage["gate"] for stage in data["stages"] if "gate" in stage]
    while stack:
        criterion = stack.pop(0)
        if key in criterion:
            return criterion
        stack.extend(criterion.get("all_of", []) + criterion.get("any_of", []))
    raise AssertionError(key)


def tiny(**stage: Any) -> Process:
    return Process(
        "tiny",
        "1",
        (
            Stage("lead", **stage),
            Stage("won", probability=1.0, kind=StageKind.WON),
            Stage("lost", kind=StageKind.LOST),
        ),
    )


class TestGatesNeedRealEvidence:
    def test_an_empty_mapping_is_not_evidence(self):
        deal = opened()
        deal.record_deliverable(
            "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": {}}
        )
        with pytest.raises(GateNotMetError, match="without evidence 'contact'"):
            deal.advance(at=T0 + H, actor="ana")
        assert "lead_generation" == deal.stage

    def test_an_empty_list_and_empty_text_are_not_evidence_either(self):
        for empty in ([], ""):
            deal = opened()
            evidence = {"source": "web", "contact": empty}
            deal.record_deliverable("lead_record", at=T0, actor="ana", evidence=evidence)
            assert not deal.can_advance()

    def test_zero_and_false_are_evidence(self):
        for value in (0, False):
            deal = opened()
            evidence = {"source": "web", "contact": value}
            deal.record_deliverable("lead_record", at=T0, actor="ana", evidence=evidence)
            assert deal.can_advance()

    @pytest.mark.parametrize("op", ["<=", "<", ">=", ">", "==", "!=", "in"])
    def test_a_boolean_never_passes_a_numeric_check(self, op):
        value = {"<=": 15, "<": 15, ">=": 1, ">": 0, "==": 1, "!=": 15, "in": [1, 15]}[op]
        check = FieldCheck("discount_percent", op, value)
        assert not check.evaluate(Facts(at=T0, fields={"discount_percent": True})).holds
        assert check.evaluate(Facts(at=T0, fields={"discount_percent": 1})).holds

    def test_a_number_never_passes_a_boolean_check(self):
        check = FieldCheck("signed", "==", True)
        assert not check.evaluate(Facts(at=T0, fields={"signed": 1})).holds
        assert check.evaluate(Facts(at=T0, fields={"signed": True})).holds

    def test_discount_true_does_not_satisfy_the_contract_gate(self):
        gate = PROCESS.stage("contract").gate
        assert gate is not None
        negotiated = opened().record_deliverable(
            "negotiated_terms",
            at=T0,
            actor="ana",
            evidence=full_evidence(PROCESS, "negotiated_terms"),
        )
        facts = Facts(
            at=T0, deliverables={"negotiated_terms": negotiated}, fields={"discount_percent": True}
        )
        assert not gate.evaluate(facts).holds


class TestUnwritableNumbersAreRefused:
    @pytest.mark.parametrize(
        "value",
        [HUGE, -HUGE, math.nan, math.inf, -math.inf],
        ids=["10**5000", "-10**5000", "nan", "inf", "-inf"],
    )
    def test_set_field_refuses_a_number_json_cannot_round_trip(self, value):
        deal = opened()
        with pytest.raises(InvalidCommandError, match="discount_percent"):
            deal.set_field("discount_percent", value, at=T0, actor="ana")
        assert 1 == len(deal.events)

    @pytest.mark.parametrize("value", [HUGE, math.nan, math.inf], ids=["10**5000", "nan", "inf"])
    def test_evidence_and_opening_fields_refuse_them_too(self, value):
        deal = opened()
        with pytest.raises(InvalidCommandError):
            deal.record_deliverable("lead_record", at=T0, actor="ana", evidence={"n": [value]})
        with pytest.raises(InvalidCommandError):
            Opportunity.open(PROCESS, "x", at=T0, actor="ana", fields={"n": value})
        assert 1 == len(deal.events)

    def test_a_large_but_writable_integer_is_kept(self):
        deal = opened()
        event = deal.set_field("serial", 10**1000, at=T0, actor="ana")
        assert 10**1000 == json.loads(json.dumps(event.to_dict()))["details"]["value"]


class TestIdsRefuseATrailingNewline:
    def test_commands_refuse_names_with_a_newline(self):
        deal = opened()
        with pytest.raises(UnknownDeliverableError):
            deal.record_deliverable("lead_record\n", at=T0, actor="ana")
        with pytest.raises(UnknownStageError):
            deal.move_to("qualification\n", at=T0, actor="ana")
        for command in (
            lambda: deal.set_field("discount\n", 1, at=T0, actor="ana"),
            lambda: deal.log_activity("call\n", at=T0, actor="ana"),
            lambda: deal.record_approval("cfo\n", at=T0, actor="ana"),
            lambda: deal.log_activity("call", at=T0, actor="ana\n"),
        ):
            with pytest.raises(InvalidCommandError, match="control character"):
                command()
        assert 1 == len(deal.events)

    @pytest.mark.parametrize(
        ("edit", "path"),
        [
            (lambda d: d["stages"][1].update(id="contract_sent\n"), "stages[1].id"),
            (lambda d: d["stages"][0]["deliverables"][0].update(id="lead\n"), "deliverables[0]"),
            (lambda d: d["stages"][0]["activities"][0].update(id="call\n"), "activities[0]"),
            (lambda d: d["stages"][0].update(labels={"en\n": "Lead"}), "stages[0].labels"),
        ],
    )
    def test_a_definition_refuses_ids_with_a_trailing_newline(self, edit, path):
        data = definition()
        edit(data)
        with pytest.raises(DefinitionError) as caught:
            process_from_dict(data)
        assert any(path in problem.path for problem in caught.value.problems)

    @pytest.mark.parametrize("stage_id", ["lead\n", " lead", "le\tad", "\ud800"])
    def test_a_process_built_in_python_refuses_them_too(self, stage_id):
        with pytest.raises(DefinitionError, match=r"stages\[0\]\.id"):
            Process("p", "1", (Stage(stage_id), *tiny().stages[1:]))


class TestDefinitionsFailTyped:
    def test_at_least_two_point_zero_loads_as_two(self):
        data = definition()
        first_criterion(data, "activity")["at_least"] = 2.0
        gate = process_from_dict(data).stage("needs_analysis").gate
        assert gate is not None
        assert [2] == [c.at_least for c in gate.walk() if isinstance(c, ActivityCount)]

    @pytest.mark.parametrize("count", [2.5, 0, True, 10**6])
    def test_a_count_that_is_not_a_whole_number_in_range_is_refused(self, count):
        data = definition()
        first_criterion(data, "activity")["at_least"] = count
        with pytest.raises(DefinitionError, match="at_least"):
            process_from_dict(data)

    def test_a_python_activity_count_of_two_point_zero_is_refused(self):
        with pytest.raises(DefinitionError, match="at_least"):
            Process(
                "p",
                "1",
                (
                    Stage("lead", activities=(ActivitySpec("call"),)),
                    Stage(
                        "won",
                        probability=1.0,
                        kind=StageKind.WON,
                        gate=ActivityCount("call", 2.0),  # type: ignore[arg-type]
                    ),
                    Stage("lost", kind=StageKind.LOST),
                ),
            )

    @pytest.mark.parametrize(
        "days",
        [1e10, math.nan, math.inf, -math.inf, 10**400, 0],
        ids=["1e10", "nan", "inf", "-inf", "10**400", "0"],
    )
    def test_a_max_age_out_of_range_is_a_definition_error(self, days):
        data = definition()
        first_criterion(data, "deliverable")["max_age_days"] = days
        with pytest.raises(DefinitionError, match="max_age_days"):
            process_from_dict(data)

    def test_a_max_age_of_1e400_in_json_text_is_a_definition_error(self):
        data = definition()
        first_criterion(data, "deliverable")["max_age_days"] = 12345
        text = json.dumps(data).replace("12345", "1e400")
        with pytest.raises(DefinitionError, match="finite"):
            process_from_json(text)

    def test_a_400_digit_probability_is_a_definition_error(self):
        data = definition()
        data["stages"][0]["probability"] = int("9" * 400)
        with pytest.raises(DefinitionError, match="probability"):
            process_from_dict(data)

    def test_a_400_digit_probability_in_json_text_is_a_definition_error(self):
        text = json.dumps(definition()).replace(
            '"probability": 0.05', '"probability": ' + "9" * 400
        )
        assert "9" * 400 in text
        with pytest.raises(DefinitionError, match="probability"):
            process_from_json(text)

    @pytest.mark.parametrize("days", [math.nan, math.inf, 1e300])
    def test_max_days_out_of_range_is_refused_from_data_and_from_python(self, days):
        data = definition()
        data["stages"][0]["max_days"] = days
        with pytest.raises(DefinitionError, match="max_days"):
            process_from_dict(data)
        with pytest.raises(DefinitionError, match="max_days"):
            tiny(max_days=days)

    @pytest.mark.parametrize("argument", ["activities", "deliverables"])
    @pytest.mark.parametrize("value", [5, "abc", {"id": "x"}])
    def test_a_stage_refuses_a_non_sequence(self, argument, value):
        with pytest.raises(DefinitionError, match=argument):
            Stage("lead", **{argument: value})

    def test_toml_bytes_are_refused(self):
        with pytest.raises(DefinitionError, match="text"):
            process_from_toml(b"name = 'x'")  # type: ignore[arg-type]

    def test_yaml_bytes_are_refused(self):
        with pytest.raises(DefinitionError, match="text"):
            process_from_yaml(b"name: x")  # type: ignore[arg-type]

    def test_json_bytes_are_read(self):
        assert PROCESS == process_from_json(json.dumps(definition()).encode("utf-8"))

    def test_a_complex_probability_is_refused(self):
        with pytest.raises(DefinitionError, match="probability"):
            tiny(probability=0.5j)

    @pytest.mark.parametrize("value", ["no", "false", 0, 1, None])
    def test_policies_must_be_booleans(self, value):
        with pytest.raises(DefinitionError, match="allow_skip"):
            Policies(allow_skip=value)  # type: ignore[arg-type]

    def test_policies_in_a_definition_must_be_booleans(self):
        data = definition()
        data["policies"]["allow_skip"] = "no"
        with pytest.raises(DefinitionError, match="allow_skip"):
            process_from_dict(data)

    def test_a_definition_error_cuts_a_huge_echoed_value(self):
        data = definition()
        data["stages"][0]["description"] = "x" * 5_000_000
        with pytest.raises(DefinitionError) as caught:
            process_from_dict(data)
        message = str(caught.value)
        assert len(message) < 3_000
        assert "characters left out" in message
        assert "is too long" in message


def _nested_flows(depth: int, size: int = 48_000) -> str:
    line = "[" * depth + "]" * depth
    return "".join(f"k{i}: {line}\n" for i in range(size // (len(line) + 8)))


class TestYamlIsBoundedWhileParsing:
    @pytest.mark.parametrize("depth", [10, 40, 47, 200])
    def test_48_kb_of_nested_flow_sections_is_answered_well_under_a_second(self, depth):
        text = _nested_flows(depth)
        assert 45_000 < len(text) <= 48_000
        started = time.perf_counter()
        with pytest.raises(DefinitionError):
            process_from_yaml(text)
        assert time.perf_counter() - started < 1.0  # 9 s before the reader was bounded

    def test_nesting_is_refused_at_the_limit(self):
        ok = "a: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1) + "\n"
        assert _read_yaml(ok) is not None
        with pytest.raises(_YamlLimitError, match="nested deeper"):
            _read_yaml("a: " + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1))

    def test_five_megabytes_of_brackets_are_refused_at_once(self):
        started = time.perf_counter()
        with pytest.raises(DefinitionError, match="nest"):
            process_from_yaml("a: " + "[" * 4_000_000)
        assert time.perf_counter() - started < 1.0  # 9 s before the reader was bounded

    def test_too_many_values_are_refused(self):
        text = "a: [" + ",".join(["1"] * (MAX_YAML_NODES + 1)) + "]\n"
        with pytest.raises(DefinitionError, match="values"):
            process_from_yaml(text)

    @pytest.mark.parametrize(
        "text",
        [
            "a: " + "[" * 60 + "]" * 60,
            "a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(60)) + "  " * 61 + "x",
            "a: [" + ",".join(["1"] * (MAX_YAML_NODES + 1)) + "]",
        ],
        ids=["flow", "block", "wide"],
    )
    def test_the_pure_python_reader_keeps_the_same_limits(self, text):
        with pytest.raises(_YamlLimitError):
            _read_yaml(text, libyaml=False)

    def test_both_readers_read_the_template_alike(self):
        from stagegate.definition import process_to_yaml

        text = process_to_yaml(PROCESS)
        assert _read_yaml(text) == _read_yaml(text, libyaml=False)
        assert PROCESS == process_from_yaml(text)

    def test_an_alias_bomb_is_refused(self):
        lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
        started = time.perf_counter()
        with pytest.raises(DefinitionError, match="values"):
            process_from_yaml("\n".join(lines))
        assert time.perf_counter() - started < 1.0  # 9 s before the reader was bounded


class TestMalformedEventRecords:
    @pytest.mark.parametrize("details", [[1, 2], "text", 3, True])
    def test_details_that_are_not_an_object_are_an_event_log_error(self, details):
        data = opened().events[0].to_dict() | {"details": details}
        with pytest.raises(EventLogError, match="details") as caught:
            Event.from_dict(data)
        assert 1 == caught.value.seq

    @pytest.mark.parametrize("fields", [[1], "text", 3])
    def test_opening_fields_that_are_not_a_mapping_fail_replay_typed(self, fields):
        record = opened().events[0].to_dict() | {"details": {"fields": fields}}
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, [Event.from_dict(record)])
        assert (1, "malformed_details") == (caught.value.seq, caught.value.rule)

    def test_an_event_built_with_list_details_fails_replay_typed(self):
        deal = opened()
        deal.set_field("x", 1, at=T0, actor="ana")
        bad = attrs.evolve(deal.events[1], details=(1, 2))
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, [deal.events[0], bad])
        assert (2, "malformed_details") == (caught.value.seq, caught.value.rule)

    def test_a_field_event_without_a_value_fails_replay_typed(self):
        deal = opened()
        deal.set_field("x", 1, at=T0, actor="ana")
        record = deal.events[1].to_dict() | {"details": {"other": 1}}
        with pytest.raises(EventLogError, match="value"):
            Opportunity.replay(PROCESS, [deal.events[0], Event.from_dict(record)])

    def test_replay_refuses_what_is_not_a_process(self):
        with pytest.raises(InvalidCommandError, match="Process"):
            Opportunity.replay("b2b", opened().events)  # type: ignore[arg-type]


EDGE_INSTANTS = [
    datetime(1, 1, 1, tzinfo=PLUS_5),
    datetime(9999, 12, 31, 22, tzinfo=MINUS_5),
]


class TestInstantsOutsideUtc:
    @pytest.mark.parametrize("text", ["0001-01-01T00:00+05:00", "9999-12-31T22:00-05:00"])
    def test_parsing_refuses_them(self, text):
        with pytest.raises(InvalidTimestampError, match="outside"):
            parse_instant(text)

    def test_epoch_milliseconds_past_year_9999_are_refused(self):
        with pytest.raises(InvalidTimestampError, match="outside"):
            from_epoch_us(253402300800000 * 1000)
        assert datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) == from_epoch_us(
            253402300799999 * 1000
        )

    @pytest.mark.parametrize("at", EDGE_INSTANTS)
    def test_commands_refuse_them_and_change_nothing(self, at):
        with pytest.raises(InvalidTimestampError):
            Opportunity.open(PROCESS, "x", at=at, actor="ana")
        deal = opened()
        with pytest.raises(InvalidTimestampError):
            deal.log_activity("call", at=at, actor="ana")
        with pytest.raises(InvalidTimestampError):
            Event("x", 1, EventKind.OPENED, at, "ana", "lead_generation", "b2b", "1")
        assert 1 == len(deal.events)

    @pytest.mark.parametrize("text", ["0001-01-01T00:00+05:00", "9999-12-31T22:00-05:00"])
    def test_event_records_refuse_them(self, text):
        with pytest.raises(EventLogError, match="outside") as caught:
            Event.from_dict(opened().events[0].to_dict() | {"at": text})
        assert 1 == caught.value.seq

    def test_the_edges_of_utc_are_accepted(self):
        latest = parse_instant("9999-12-31T23:59:59Z")
        assert Opportunity.open(PROCESS, "x", at=latest, actor="ana").opened_at == latest


class TestLoneSurrogates:
    def test_commands_refuse_them(self):
        deal = opened()
        for command in (
            lambda: Opportunity.open(PROCESS, "\ud800", at=T0, actor="ana"),
            lambda: deal.log_activity("call", at=T0, actor="\ud800"),
            lambda: deal.log_activity("\ud800", at=T0, actor="ana"),
            lambda: deal.log_activity("call", at=T0, actor="ana", details={"x": "\ud800"}),
            lambda: deal.set_field("x", ["\udfff"], at=T0, actor="ana"),
            lambda: deal.lose(at=T0, actor="ana", reason="\ud800"),
        ):
            with pytest.raises(InvalidCommandError, match="surrogate"):
                command()
        assert 1 == len(deal.events)

    @pytest.mark.parametrize("field", ["opportunity_id", "stage", "actor", "reason", "subject"])
    def test_event_records_refuse_them(self, field):
        with pytest.raises(EventLogError, match="surrogate"):
            Event.from_dict(opened().events[0].to_dict() | {field: "a\ud800"})

    def test_a_gate_report_record_refuses_them(self):
        log = [event.to_dict() for event in LOG]
        log[2]["gate"]["results"][0]["reason"] = "\ud800"
        with pytest.raises(EventLogError, match="UTF-8") as caught:
            Event.from_dict(log[2])
        assert 3 == caught.value.seq

    @given(st.data())
    def test_a_definition_with_one_in_any_text_is_refused_at_its_path(self, data: st.DataObject):
        """A process loaded with one, then failed in every store with an error about events."""
        document = definition()
        texts = [(c, k) for c, k in _places(document) if isinstance(c[k], str)]
        container, key = data.draw(st.sampled_from(texts))
        container[key] = data.draw(st.sampled_from(["\ud800", "a\udfff", "\udc00 b"]))
        with pytest.raises(DefinitionError, match="surrogate"):
            process_from_dict(document)
        with pytest.raises(DefinitionError, match="surrogate"):
            process_from_json(json.dumps(document))  # the \\u escape of JSON text

    def test_a_definition_key_holding_one_is_refused(self):
        document = definition()
        document["stages"][0]["labels"]["e\ud800"] = "Lead"
        with pytest.raises(DefinitionError, match="key holds a lone surrogate"):
            process_from_dict(document)

    @pytest.mark.parametrize(
        "build",
        [
            lambda: tiny(description="\ud800"),
            lambda: tiny(labels={"en": "L\ud800"}),
            lambda: tiny(forecast_category="p\ud800"),
            lambda: tiny(deliverables=(DeliverableSpec("nda", labels={"en": "\udfff"}),)),
            lambda: tiny(deliverables=(DeliverableSpec("nda", evidence=("by\ud800",)),)),
            lambda: tiny(activities=(ActivitySpec("call", description="\ud800"),)),
            lambda: Process("t\ud800", "1", tiny().stages),
            lambda: Process("tiny", "1\ud800", tiny().stages),
            lambda: Process("tiny\n", "1", tiny().stages),
        ],
    )
    def test_a_process_built_in_python_with_one_is_refused(self, build):
        with pytest.raises(DefinitionError, match=r"surrogate|one line"):
            build()

    def test_every_definition_that_loads_can_be_stored(self, tmp_path):
        from stagegate.store import SQLiteStore

        document = definition()
        document["description"] = "naïve ☎ 통화"
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.save_process(process_from_dict(document))
            assert [("b2b", document["version"])] == [tuple(p) for p in store.processes()]

    def test_text_that_is_merely_not_ascii_is_kept(self):
        deal = opened()
        event = deal.log_activity("통화", at=T0, actor="소연", details={"note": "naïve ☎"})
        assert event == Event.from_dict(json.loads(json.dumps(event.to_dict())))


class TestAmountsInRecords:
    @pytest.mark.parametrize("amount", ["-48000", "NaN", "Infinity", "1e", [1], True, "9" * 200])
    def test_a_bad_amount_record_is_refused(self, amount):
        with pytest.raises(EventLogError, match="amount") as caught:
            Event.from_dict(opened().events[0].to_dict() | {"amount": amount})
        assert 1 == caught.value.seq

    def test_a_numeric_amount_is_read_as_a_decimal(self):
        event = Event.from_dict(opened().events[0].to_dict() | {"amount": 12.5})
        assert Decimal("12.5") == event.amount


# -- properties: arbitrary JSON never escapes as a builtin error -------------------------------


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    )


json_anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    _containers,
    max_leaves=20,
)
RECORD = opened().events[0].to_dict()
KEYS = [*sorted(RECORD), "digest", "extra"]


@pytest.mark.filterwarnings("ignore::stagegate.process.DefinitionWarning")  # valid, unusual
class TestArbitraryJson:
    @given(json_anything)
    def test_an_event_record_of_any_json_raises_only_an_event_log_error(self, data):
        with contextlib.suppress(EventLogError):
            Event.from_dict(data)

    @given(st.dictionaries(st.sampled_from(KEYS), json_anything, max_size=6))
    def test_a_record_with_any_fields_changed_raises_only_an_event_log_error(self, changes):
        with contextlib.suppress(EventLogError):
            Event.from_dict(RECORD | changes)

    @given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(KEYS), json_values), max_size=3))
    def test_replaying_a_log_with_any_fields_changed_raises_only_a_stagegate_error(self, edits):
        records = [event.to_dict() for event in LOG]
        for index, key, value in edits:
            records[index][key] = value
        with contextlib.suppress(StagegateError):
            Opportunity.replay(PROCESS, [Event.from_dict(record) for record in records])

    @given(json_anything)
    def test_a_definition_of_any_json_raises_only_a_definition_error(self, data):
        for load in (
            lambda: process_from_dict(data),
            lambda: process_from_json(json.dumps(data)),
            lambda: process_from_yaml(json.dumps(data)),
        ):
            with contextlib.suppress(DefinitionError):
                load()

    @given(st.sampled_from(["name", "version", "policies", "stages", "description"]), json_anything)
    def test_a_definition_with_any_part_replaced_raises_only_a_definition_error(self, key, value):
        data = definition()
        data[key] = value
        with contextlib.suppress(DefinitionError):
            process_from_dict(data)

    @given(st.integers(0, 7), st.sampled_from(["id", "probability", "kind", "gate", "max_days",
                                                  "labels", "activities", "deliverables"]),
           json_anything)  # fmt: skip
    def test_a_stage_with_any_part_replaced_raises_only_a_definition_error(self, i, key, value):
        data = definition()
        data["stages"][i][key] = value
        with contextlib.suppress(DefinitionError):
            process_from_dict(data)

    @given(st.data(), json_anything)
    def test_a_definition_with_any_value_at_any_depth_replaced_raises_only_a_definition_error(
        self, draw: st.DataObject, value: Any
    ) -> None:
        """Inside gates, criteria, deliverables, labels: e.g. ``{"deliverable": {}}``."""
        data = definition()
        places = list(_places(data))
        container, key = draw.draw(st.sampled_from(places))
        container[key] = value
        with contextlib.suppress(DefinitionError):
            process_from_dict(data)

    def test_a_deliverable_criterion_naming_an_object_is_a_definition_error(self) -> None:
        data = definition()
        data["stages"][1]["gate"] = {"deliverable": {}}
        with pytest.raises(DefinitionError, match="stages"):
            process_from_dict(data)


def _places(data: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) of a nested JSON value."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        yield data, key
        if isinstance(value, (dict, list)):
            yield from _places(value)


class TestImportsOfInstantsOutsideUtc:
    def test_the_hubspot_importer_reports_them_as_findings(self):
        import io

        from stagegate.io import import_hubspot_history

        rows = (
            "deal_id,property,value,timestamp\n"
            "1,dealstage,appointmentscheduled,253402300800000\n"
            "2,dealstage,appointmentscheduled,0001-01-01T00:00+05:00\n"
            "3,dealstage,appointmentscheduled,9999-12-31T22:00-05:00\n"
            "4,dealstage,appointmentscheduled,1600000000000\n"
        )
        result = import_hubspot_history(
            io.StringIO(rows),
            process=PROCESS,
            stage_map={"appointmentscheduled": "lead_generation"},
        )
        (finding,) = [f for f in result.findings if f.code == "unparseable_timestamp"]
        assert "3 timestamp(s)" in finding.message
        assert ["4"] == sorted({e.opportunity_id for e in result.events})
