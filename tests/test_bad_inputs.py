"""A corpus of bad inputs: each answered with a typed error whose message says what to fix."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from stagegate import (
    DefinitionError,
    DefinitionWarning,
    EventLogError,
    InvalidCommandError,
    Opportunity,
    StagegateError,
    b2b,
    process_from_dict,
    process_from_json,
    process_from_toml,
    process_from_yaml,
    process_to_dict,
)
from stagegate.definition import MAX_NESTING, MAX_TEXT_BYTES
from strategies import BAD_COMMANDS, T0, full_evidence


def template():
    return process_to_dict(b2b())


def changed(edit):
    data = template()
    edit(data)
    return data


def _set(path, value):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _deep_not(depth):
    gate = {"approval": "finance"}
    for _ in range(depth):
        gate = {"not": gate}
    return gate


DEFINITIONS = {
    # name: (definition, expected problem path, key words of the message)
    "unknown deliverable in a nested gate": (
        changed(_set(["stages", 3, "gate", "all_of", 1], {"deliverable": "signed_nda"})),
        "stages[3].gate.all_of[1]",
        "unknown deliverable 'signed_nda'",
    ),
    "unknown activity in a gate": (
        changed(_set(["stages", 2, "gate", "all_of", 1], {"activity": "golf", "at_least": 1})),
        "stages[2].gate.all_of[1]",
        "unknown activity 'golf'",
    ),
    "duplicate stage id": (
        changed(_set(["stages", 2, "id"], "qualification")),
        "stages[2].id",
        "duplicate stage id 'qualification' (also stages[1])",
    ),
    "duplicate deliverable id": (
        changed(_set(["stages", 1, "deliverables", 0, "id"], "lead_record")),
        "stages[1].deliverables[0].id",
        "duplicate deliverable id 'lead_record'",
    ),
    "probability above one": (
        changed(_set(["stages", 2, "probability"], 1.2)),
        "stages[2].probability",
        "greater than the maximum of 1",
    ),
    "negative probability": (
        changed(_set(["stages", 2, "probability"], -0.2)),
        "stages[2].probability",
        "less than the minimum of 0",
    ),
    "probability as text": (
        changed(_set(["stages", 0, "probability"], "5%")),
        "stages[0].probability",
        "is not of type 'number'",
    ),
    "no won stage": (
        changed(lambda d: d["stages"].pop(6)),
        "stages",
        "no won stage",
    ),
    "no lost stage": (
        changed(lambda d: d["stages"].pop(7)),
        "stages",
        "no lost stage",
    ),
    "unreachable stage after the won stage": (
        changed(lambda d: d["stages"].insert(7, {"id": "limbo", "probability": 0.9})),
        "stages[7]",
        "stage 'limbo' is unreachable",
    ),
    "closed first stage": (
        changed(_set(["stages", 0, "kind"], "won")),
        "stages[0].kind",
        "must be open",
    ),
    "unknown kind": (
        changed(_set(["stages", 0, "kind"], "pending")),
        "stages[0].kind",
        "is not one of ['open', 'won', 'lost']",
    ),
    "unknown key in a stage": (
        changed(_set(["stages", 0, "colour"], "red")),
        "stages[0]",
        "'colour' was unexpected",
    ),
    "unknown policy": (
        changed(_set(["policies", "allow_time_travel"], True)),
        "policies",
        "'allow_time_travel' was unexpected",
    ),
    "policy of the wrong type": (
        changed(_set(["policies", "allow_skip"], "yes")),
        "policies.allow_skip",
        "is not of type 'boolean'",
    ),
    "criterion with two keys": (
        changed(_set(["stages", 1, "gate"], {"deliverable": "lead_record", "approval": "x"})),
        "stages[1].gate",
        "exactly one of the keys",
    ),
    "criterion with no known key": (
        changed(_set(["stages", 1, "gate"], {"deliverables": "lead_record"})),
        "stages[1].gate",
        "exactly one of the keys",
    ),
    "unknown operator": (
        changed(_set(["stages", 3, "gate", "all_of", 2, "op"], "=~")),
        "stages[3].gate.all_of[2].op",
        "is not one of",
    ),
    "at_least of zero": (
        changed(_set(["stages", 2, "gate", "all_of", 1, "at_least"], 0)),
        "stages[2].gate.all_of[1].at_least",
        "less than the minimum of 1",
    ),
    "empty all_of": (
        changed(_set(["stages", 2, "gate"], {"all_of": []})),
        "stages[2].gate.all_of",
        "should be non-empty",
    ),
    "stage id with spaces": (
        changed(_set(["stages", 0, "id"], "lead generation")),
        "stages[0].id",
        "does not match",
    ),
    "missing probability": (
        changed(lambda d: d["stages"][0].pop("probability")),
        "stages[0]",
        "'probability' is a required property",
    ),
    "missing name": (
        changed(lambda d: d.pop("name")),
        "",
        "'name' is a required property",
    ),
    "version as a number": (
        changed(_set(["version"], 1)),
        "version",
        "is not of type 'string'",
    ),
    "stages as an object": (
        changed(_set(["stages"], {"lead": {}})),
        "stages",
        "is not of type 'array'",
    ),
    "negative max_days": (
        changed(_set(["stages", 0, "max_days"], -3)),
        "stages[0].max_days",
        "less than or equal to the minimum of 0",
    ),
    "oversized all_of": (
        changed(
            _set(["stages", 1, "gate"], {"all_of": [{"approval": f"r{i}"} for i in range(300)]})
        ),
        "stages[1].gate.all_of",
        "is too long",
    ),
    "gate nested 20 deep": (
        changed(_set(["stages", 1, "gate"], _deep_not(20))),
        "stages[1].gate" + ".not" * 16,
        "gate nested deeper than 16 levels",
    ),
    "gate nested 10,000 deep": (
        changed(_set(["stages", 1, "gate"], _deep_not(10_000))),
        "",
        f"definition nested deeper than {MAX_NESTING} levels",
    ),
    "too many values": (
        changed(_set(["description_extra"], [[0] * 1000 for _ in range(60)])),
        "",
        "more than 50000 values",
    ),
}


class TestDefinitionCorpus:
    @pytest.mark.parametrize("name", sorted(DEFINITIONS))
    def test_a_bad_definition_names_the_path_and_the_problem(self, name):
        data, path, words = DEFINITIONS[name]
        with pytest.raises(DefinitionError) as caught:
            process_from_dict(data)
        error = caught.value
        assert isinstance(error, StagegateError)
        assert isinstance(error, ValueError)
        matching = [p for p in error.problems if p.path == path and words in p.message]
        assert matching, [str(p) for p in error.problems]
        assert f"{path}: " in str(error) or not path
        assert "fix each listed path" in str(error)

    @pytest.mark.parametrize("name", sorted(DEFINITIONS))
    def test_a_bad_definition_gives_the_same_problems_as_json_text(self, name):
        data, _, _ = DEFINITIONS[name]
        try:
            text = json.dumps(data)
        except RecursionError:
            pytest.skip("the json module itself cannot write this document")
        with pytest.raises(DefinitionError) as caught:
            process_from_json(text)
        assert caught.value.problems

    def test_falling_probabilities_are_a_warning_not_an_error(self):
        data = changed(_set(["stages", 3, "probability"], 0.15))
        with pytest.warns(DefinitionWarning, match=r"stages\[3\]\.probability: 0\.15 is lower"):
            process = process_from_dict(data)
        assert process.warnings[0].severity == "warning"


class TestHostileText:
    def test_json_nested_10000_deep_is_a_clean_definition_error(self):
        text = (
            '{"name": "x", "version": "1", "stages": [{"id": "a", "probability": 0.1, "gate": '
            + '{"not": ' * 10_000
            + '{"approval": "r"}'
            + "}" * 10_000
            + "}]}"
        )
        with pytest.raises(DefinitionError) as caught:
            process_from_json(text)
        assert caught.value.problems

    def test_yaml_nested_10000_deep_is_a_clean_definition_error(self):
        text = "name: x\nversion: '1'\nstages:\n - id: a\n   probability: 0.1\n   gate: "
        text += "{not: " * 10_000 + "{approval: r}" + "}" * 10_000
        with pytest.raises(DefinitionError):
            process_from_yaml(text)

    def test_toml_nested_10000_deep_is_a_clean_definition_error(self):
        text = 'name = "x"\nversion = "1"\n[[stages]]\nid = "a"\nprobability = 0.1\ngate = '
        text += "{not = " * 10_000 + '{approval = "r"}' + "}" * 10_000
        with pytest.raises(DefinitionError):
            process_from_toml(text)

    def test_text_over_the_size_limit_is_refused_before_parsing(self):
        text = " " * (MAX_TEXT_BYTES + 1)
        with pytest.raises(DefinitionError, match="larger than"):
            process_from_json(text)

    @pytest.mark.parametrize(
        ("load", "text", "words"),
        [
            (process_from_json, "{not json", "not valid JSON"),
            (process_from_json, "[1, 2]", "must be an object/table, got list"),
            (process_from_toml, "name = ", "not valid TOML"),
            (process_from_yaml, "a: [", "not valid YAML"),
            (process_from_yaml, "- 1\n- 2", "must be an object/table, got list"),
            (process_from_yaml, "", "must be an object/table, got NoneType"),
            (process_from_yaml, "!!python/object:os.system {}", "not valid YAML"),
        ],
    )
    def test_unparseable_text_names_the_format(self, load, text, words):
        with pytest.raises(DefinitionError, match=words):
            load(text)

    @pytest.mark.parametrize("value", [None, [], "name: x", 5])
    def test_a_definition_that_is_not_a_mapping_is_refused(self, value):
        with pytest.raises(DefinitionError, match="is not of type 'object'"):
            process_from_dict(value)

    def test_the_input_mapping_is_not_modified(self):
        data = template()
        kept = copy.deepcopy(data)
        process_from_dict(data)
        assert kept == data


def _deal():
    process = b2b()
    deal = Opportunity.open(process, "acme-1", at=T0, actor="ana", amount=1000)
    deal.record_deliverable(
        "lead_record", at=T0, actor="ana", evidence=full_evidence(process, "lead_record")
    )
    return deal


class TestCommandCorpus:
    @pytest.mark.parametrize("name", sorted(BAD_COMMANDS))
    def test_a_bad_command_raises_a_typed_error_that_says_what_to_fix(self, name):
        call, error, words = BAD_COMMANDS[name]
        deal = _deal()
        before = (deal.events, deal.stage, deal.amount, deal.close_date, dict(deal.fields))
        with pytest.raises(error) as caught:
            call(deal, T0 + timedelta(hours=1))
        assert isinstance(caught.value, StagegateError)
        for word in words:
            assert word in str(caught.value)
        assert before == (deal.events, deal.stage, deal.amount, deal.close_date, dict(deal.fields))

    @pytest.mark.parametrize("name", sorted(BAD_COMMANDS))
    def test_argument_errors_also_inherit_the_fitting_builtin(self, name):
        call, error, _ = BAD_COMMANDS[name]
        with pytest.raises(StagegateError) as caught:
            call(_deal(), T0 + timedelta(hours=1))
        if issubclass(error, InvalidCommandError) or "instant" in name:
            assert isinstance(caught.value, ValueError)
        if name.startswith("unknown"):
            assert isinstance(caught.value, LookupError)

    def test_no_builtin_error_escapes_for_garbage_in_any_argument(self):
        garbage = [None, "", 3, 2.5, [], {}, object(), b"x", float("nan")]
        deal = _deal()
        at = T0 + timedelta(hours=1)
        calls = [
            lambda g: deal.move_to(g, at=at, actor="ana", reason="x"),
            lambda g: deal.override(g, at=at, actor="ana", reason="x"),
            lambda g: deal.record_history(g, at=at, actor="ana"),
            lambda g: deal.record_deliverable(g, at=at, actor="ana"),
            lambda g: deal.record_deliverable("lead_record", at=at, actor="ana", evidence=g),
            lambda g: deal.log_activity(g, at=at, actor="ana"),
            lambda g: deal.record_approval(g, at=at, actor="ana"),
            lambda g: deal.set_field(g, 1, at=at, actor="ana"),
            lambda g: deal.reschedule(g, at=at, actor="ana"),
            lambda g: deal.change_amount(g, at=at, actor="ana"),
            lambda g: deal.lose(at=at, actor="ana", reason=g),
            lambda g: deal.advance(at=g, actor="ana"),
            lambda g: deal.advance(at=at, actor=g),
            lambda g: deal.metrics(as_of=g),
            deal.state_at,
            deal.gate_report,
        ]
        for call in calls:
            for value in garbage:
                before = deal.events
                try:
                    call(value)  # some values are fine (amount=3, evidence={}): no raise
                except StagegateError:
                    assert before == deal.events


class TestEventLogCorpus:
    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"opportunity_id": "a"},
            {"opportunity_id": "a", "seq": 1, "kind": "opened", "at": "2026-01-05T09:00:00"},
        ],
    )
    def test_a_bad_event_record_is_an_event_log_error(self, data):
        from stagegate import Event

        with pytest.raises(EventLogError):
            Event.from_dict(data)


class TestErrors:
    def test_a_problem_without_a_path_prints_only_its_message(self):
        from stagegate import Problem

        assert str(Problem("", "too big")) == "too big"
        assert repr(Problem("a", "b", "warning")) == "Problem('a', 'b', 'warning')"
        assert Problem("a", "b") == Problem("a", "b")
        assert Problem("a", "b") != "a: b"
        assert len({Problem("a", "b"), Problem("a", "b")}) == 1

    def test_a_concurrency_error_says_to_reload_and_retry(self):
        from stagegate import ConcurrencyError

        error = ConcurrencyError("acme-1", 3, 5)
        assert (error.expected_seq, error.actual_seq) == (3, 5)
        assert "reload it and retry" in str(error)
        assert isinstance(error, StagegateError)

    def test_a_single_problem_is_counted_in_the_singular(self):
        from stagegate import Problem

        assert "1 problem\n" in str(DefinitionError([Problem("x", "y")]))
