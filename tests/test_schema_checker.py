"""The compiled JSON Schema checker agrees with jsonschema on the decision schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import MoveRequest, b2b, decide
from stagegate._schema import compile_schema
from stagegate.decision import request_schema, response_schema
from test_decision import VALID, json_values, stuck_deal, tampered_requests

CHECK_REQUEST = compile_schema(request_schema())
CHECK_RESPONSE = compile_schema(response_schema())
REFERENCE_REQUEST = jsonschema.Draft202012Validator(request_schema())
REFERENCE_RESPONSE = jsonschema.Draft202012Validator(response_schema())


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

    @pytest.mark.parametrize(
        "schema",
        [{"format": "date-time"}, {"$ref": "other.json#/x"}, {"patternProperties": {}}],
    )
    def test_an_unsupported_keyword_is_refused_when_compiling(self, schema: Any) -> None:
        with pytest.raises(ValueError, match="supported"):
            compile_schema(schema)
