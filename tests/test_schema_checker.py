"""The compiled JSON Schema checker agrees with jsonschema on the decision schemas."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import MoveRequest, b2b, decide, process_to_dict
from stagegate._schema import compile_schema
from stagegate.decision import request_schema, response_schema
from stagegate.definition import schema as process_schema
from stagegate.io.evidence_map import evidence_map_schema
from test_decision import FUNNY, VALID, json_values, stuck_deal, tampered_requests

CHECK_REQUEST = compile_schema(request_schema())
CHECK_RESPONSE = compile_schema(response_schema())
REFERENCE_REQUEST = jsonschema.Draft202012Validator(request_schema())
REFERENCE_RESPONSE = jsonschema.Draft202012Validator(response_schema())
CHECK_PROCESS = compile_schema(process_schema())
REFERENCE_PROCESS = jsonschema.Draft202012Validator(process_schema())
CHECK_MAP = compile_schema(evidence_map_schema())
REFERENCE_MAP = jsonschema.Draft202012Validator(evidence_map_schema())
EVIDENCE_MAP = {  # each kind of rule, with conditions
    "process": "b2b",
    "rule": [
        {"system": "crm", "type": "meeting", "when": {"outcome": ["held", "done"], "n": 2},
         "stage": "lead", "activity": "meeting"},
        {"system": "crm", "type": "score", "lead": {"score": "value", "status": "tier"},
         "lead_source": "channel"},
        {"system": "esign", "type": "signed", "stage": "proposal", "deliverable": "contract",
         "evidence": {"signed_by": "signer"}},
    ],
}  # fmt: skip

DEFINITION = process_to_dict(b2b())
DEFINITION["stages"][1]["gate"] = {  # every kind of criterion, each schema keyword in use
    "all_of": [
        {"not": {"approval": "legal"}},
        {"lead": {"min_score": 60, "status": ["MQL"], "max_age_days": 30}},
        {"field": "amount", "op": ">=", "value": 1000},
        {"field": "region", "op": "exists"},
        {"any_of": [{"activity": "meeting", "at_least": 2, "since_stage_entry": True}]},
        {"deliverable": "lead_record", "evidence": ["source"], "max_age_days": 90},
    ]
}
DEFINITION["stages"][1]["max_days"] = 30
DEFINITION["renamed"] = {"old_stage": "qualification"}
PIECES = [  # values near the edges of what the process schema allows
    {"not": {"approval": "x"}}, {"lead": {}}, {"lead": {"max_age_days": 3}},
    {"lead": {"status": []}},
    {"field": "amount", "op": "exists", "value": 1}, {"field": "amount", "op": "=="},
    ["a", "a"], [1, True], [1, 1.0], [{"a": 1}, {"a": 1.0}], [[1], [True]], 0, 0.0, -0.5, 1e-9,
    100_000, 100_000.5, {"EN": "x"}, {"en-US": "x"}, {"e\n": "x"}, {"9x": "y"}, {}, [], True,
]  # fmt: skip


def _places(data: Any) -> list[tuple[Any, Any]]:
    found: list[tuple[Any, Any]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        found.append((data, key))
        if isinstance(value, (dict, list)):
            found.extend(_places(value))
    return found


@st.composite
def tampered_definitions(draw: st.DrawFn, reference: Any = DEFINITION) -> Any:
    """A reference document with a few values replaced, removed or keys added."""
    document = copy.deepcopy(reference)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = draw(st.sampled_from(_places(document)))
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[key] = copy.deepcopy(draw(json_values | st.sampled_from(FUNNY + PIECES)))
        elif action == "remove" and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["id", "not", "lead", "x", "value", "kind"]))] = (
                copy.deepcopy(draw(json_values | st.sampled_from(PIECES)))
            )
    return document


class TestAgreement:
    def test_the_shipped_schemas_are_valid_draft_2020_12(self) -> None:
        jsonschema.Draft202012Validator.check_schema(request_schema())
        jsonschema.Draft202012Validator.check_schema(response_schema())

    def test_a_valid_request_has_no_problems(self) -> None:
        assert [] == CHECK_REQUEST(VALID)
        assert REFERENCE_REQUEST.is_valid(VALID)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=tampered_requests() | json_values)
    def test_requests_are_judged_as_jsonschema_judges_them(self, document: Any) -> None:
        assert REFERENCE_REQUEST.is_valid(document) == (CHECK_REQUEST(document) == [])

    def test_the_reference_definition_is_valid_to_both(self) -> None:
        assert [] == CHECK_PROCESS(DEFINITION)
        assert REFERENCE_PROCESS.is_valid(DEFINITION)

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=tampered_definitions() | json_values)
    def test_definitions_are_judged_as_jsonschema_judges_them(self, document: Any) -> None:
        """The definition loader trusts the compiled checker's "valid" (``definition.py``)."""
        assert REFERENCE_PROCESS.is_valid(document) == (CHECK_PROCESS(document) == [])

    def test_the_reference_evidence_map_is_valid_to_both(self) -> None:
        assert REFERENCE_MAP.is_valid(EVIDENCE_MAP), list(REFERENCE_MAP.iter_errors(EVIDENCE_MAP))
        assert [] == CHECK_MAP(EVIDENCE_MAP)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=tampered_definitions(EVIDENCE_MAP) | json_values)
    def test_evidence_maps_are_judged_as_jsonschema_judges_them(self, document: Any) -> None:
        """The evidence-map loader trusts the compiled checker's "valid" too."""
        assert REFERENCE_MAP.is_valid(document) == (CHECK_MAP(document) == [])

    @pytest.mark.parametrize("piece", PIECES)
    @pytest.mark.parametrize(
        "where", ["gate", "evidence", "max_days", "labels", "criterion", "renamed"]
    )
    def test_each_edge_value_in_each_place_is_judged_alike(self, piece: Any, where: str) -> None:
        document = copy.deepcopy(DEFINITION)
        stage = document["stages"][1]
        if where == "evidence":
            stage["deliverables"][0]["evidence"] = piece
        elif where == "criterion":
            stage["gate"]["all_of"][0] = piece
        elif where == "renamed":
            document["renamed"] = piece
        else:
            stage[where] = piece
        assert REFERENCE_PROCESS.is_valid(document) == (CHECK_PROCESS(document) == [])

    @settings(max_examples=50, deadline=None)
    @given(
        move=st.sampled_from(["advance", "lose", "win", "reopen", "contract", "needs_analysis"]),
        reason=st.none() | st.just("why"),
        override=st.booleans(),
    )
    def test_responses_are_judged_as_jsonschema_judges_them(
        self, move: str, reason: str | None, override: bool
    ) -> None:
        request = MoveRequest.from_words(move, actor="ana", reason=reason, override=override)
        answer = decide(b2b(), stuck_deal().events, request).to_dict()
        assert REFERENCE_RESPONSE.is_valid(answer)
        assert [] == CHECK_RESPONSE(answer)
        answer["allowed"] = not answer["allowed"]
        assert not REFERENCE_RESPONSE.is_valid(answer)
        assert CHECK_RESPONSE(answer) != []


class TestChecker:
    def test_problems_name_the_path_and_the_value(self) -> None:
        check = compile_schema(
            {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z]{2}$"},
                    "n": {"type": "integer", "minimum": 1, "maximum": 3},
                    "tags": {"type": "array", "maxItems": 1, "items": {"enum": ["a", None]}},
                },
            }
        )
        assert [
            ".id: 'ABC' does not match '^[a-z]{2}$'",
            ".n: 4 is more than 3",
            ".tags[1]: 'b' is not one of 'a', None",
            ".tags: has more than 1 items",
            ".x: is not allowed here",
        ] == check({"id": "ABC", "n": 4, "tags": ["a", "b"], "x": 1})
        assert ["(the document): the property 'id' is required"] == check({})

    def test_booleans_are_not_numbers_and_whole_floats_are_integers(self) -> None:
        check = compile_schema({"type": "integer"})
        assert check(True) != []
        assert [] == check(2.0)
        assert compile_schema({"const": 1})(True) != []

    def test_recursive_references_are_followed(self) -> None:
        schema = {
            "$ref": "#/$defs/node",
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
                    },
                }
            },
        }
        assert [] == compile_schema(schema)({"children": [{"children": []}]})
        assert [".children[0].children[0]: 5 is not of type object"] == compile_schema(schema)(
            {"children": [{"children": [5]}]}
        )

    def test_at_most_twenty_problems_are_listed(self) -> None:
        check = compile_schema({"type": "array", "items": {"type": "string"}})
        assert 20 == len(check(list(range(100))))

    def test_the_keywords_of_the_process_schema(self) -> None:
        unique = compile_schema({"uniqueItems": True})
        assert unique([1, True]) == unique([[1], [True]]) == unique([{"a": 1}, {"a": True}]) == []
        assert ["(the document): has items that are not unique"] == unique([1, 1.0])
        assert unique([{"a": [1]}, {"a": [1.0]}]) != []
        above = compile_schema({"exclusiveMinimum": 0, "exclusiveMaximum": 2})
        assert ["(the document): 0 is at most 0"] == above(0)
        assert ["(the document): 2 is at least 2"] == above(2)
        assert [] == above(1e-9)
        names = compile_schema({"propertyNames": {"pattern": "^[a-z]+$"}, "minProperties": 1})
        assert [".A: 'A' does not match '^[a-z]+$'"] == names({"A": 1})
        assert ["(the document): has fewer than 1 properties"] == names({})
        either = compile_schema({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]})
        assert [] == either({"b": 1})
        assert either({"c": 1}) != []
        assert compile_schema({"not": {"const": "exists"}})("exists") != []
        assert [] == compile_schema({"not": {"const": "exists"}})("==")

    @pytest.mark.parametrize(
        "schema",
        [{"format": "date-time"}, {"$ref": "other.json#/x"}, {"patternProperties": {}}],
    )
    def test_an_unsupported_keyword_is_refused_when_compiling(self, schema: Any) -> None:
        with pytest.raises(ValueError, match="supported"):
            compile_schema(schema)
