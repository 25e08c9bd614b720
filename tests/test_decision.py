"""The decision API: decide() for Python callers, decide_json() for untrusted JSON."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import (
    Decision,
    EventLogError,
    GateNotMetError,
    InvalidCommandError,
    InvalidTimestampError,
    MoveCommand,
    MoveKind,
    MoveNotAllowedError,
    MoveRequest,
    Opportunity,
    OutOfOrderError,
    ProposedFacts,
    UnknownDeliverableError,
    UnknownStageError,
    Verdict,
    b2b,
    decide,
    decide_json,
    process_to_dict,
)
from stagegate.decision import (
    MAX_NESTING,
    MAX_REQUEST_BYTES,
    request_schema,
    response_schema,
)
from strategies import T0

RESPONSE = jsonschema.Draft202012Validator(response_schema())
REQUEST = jsonschema.Draft202012Validator(request_schema())


def stuck_deal() -> Opportunity:
    """A deal in qualification whose next gate lacks the checklist and a discovery call."""
    deal = Opportunity.open(b2b(), "acme-1", at=T0, actor="ana", amount=48_000)
    deal.record_deliverable(
        "lead_record",
        at=T0,
        actor="ana",
        evidence={"source": "webinar", "contact": "kim@acme.example"},
    )
    deal.advance(at=T0 + timedelta(days=1), actor="ana")
    return deal


def request_document(events: list[dict[str, Any]], **move: Any) -> dict[str, Any]:
    return {"version": 1, "process": "b2b", "events": events, "move": {"actor": "ana", **move}}


@pytest.fixture
def deal() -> Opportunity:
    return stuck_deal()


class TestDecide:
    def test_a_blocked_advance_says_what_is_missing(self, deal: Opportunity) -> None:
        decision = decide(b2b(), deal.events, MoveRequest("advance", actor="ana"))
        assert Verdict.BLOCKED == decision.verdict
        assert (
            "deliverable 'qualification_checklist' not recorded",
            "0 of 1 x 'discovery_call' logged",
        ) == decision.missing
        assert isinstance(decision.error, GateNotMetError)
        assert decision.report is not None
        assert "needs_analysis" == decision.report.target
        assert ("qualification", "acme-1") == (decision.from_stage, decision.opportunity_id)
        assert decision.events == ()

    def test_the_available_moves_are_the_deals_own(self, deal: Opportunity) -> None:
        decision = decide(b2b(), deal.events, MoveRequest("advance", actor="ana"))
        assert deal.available_moves() == decision.available_moves

    def test_proposed_facts_are_recorded_before_the_move(self, deal: Opportunity) -> None:
        facts = ProposedFacts(
            deliverables={
                "qualification_checklist": {"budget": "yes", "need": "crm", "timeline": "q3"}
            },
            activities=[("discovery_call", None)],
        )
        at = T0 + timedelta(days=2)
        decision = decide(
            b2b(), deal.events, MoveRequest("advance", actor="bo", at=at, facts=facts)
        )
        assert (True, "needs_analysis") == (decision.allowed, decision.to_stage)
        assert ["deliverable_recorded", "activity_logged", "stage_changed"] == [
            e.kind.value for e in decision.events
        ]
        assert [4, 5, 6] == [e.seq for e in decision.events]
        assert {at} == {e.at for e in decision.events}
        assert decision.missing == ()
        assert decision.error is None

    def test_the_inputs_never_change(self, deal: Opportunity) -> None:
        before = deal.events
        facts = ProposedFacts(fields={"region": "emea"}, approvals=["finance"])
        decide(b2b(), deal.events, MoveRequest("lose", actor="ana", reason="budget", facts=facts))
        assert before == deal.events
        assert ("qualification", 3) == (deal.stage, deal.version)

    def test_an_allowed_loss_carries_the_event_it_would_append(self, deal: Opportunity) -> None:
        decision = decide(b2b(), deal.events, MoveRequest("lose", actor="ana", reason="budget"))
        assert Verdict.ALLOWED == decision.verdict
        (event,) = decision.events
        assert (4, "lost", MoveKind.LOSE, "budget") == (
            event.seq,
            event.stage,
            event.move,
            event.reason,
        )

    def test_an_override_enters_the_next_stage_despite_the_gate(self, deal: Opportunity) -> None:
        request = MoveRequest(MoveCommand.OVERRIDE, actor="ana", reason="exec sponsor")
        decision = decide(b2b(), deal.events, request)
        assert (True, "needs_analysis") == (decision.allowed, decision.to_stage)
        assert MoveKind.OVERRIDE == decision.events[-1].move
        assert decision.report is not None
        assert decision.report.passed is False

    @pytest.mark.parametrize(
        ("request_", "error"),
        [
            (MoveRequest("lose", actor="ana"), InvalidCommandError),
            (MoveRequest("override", actor="ana", target="needs_analysis"), InvalidCommandError),
            (MoveRequest("move_to", actor="ana", target="contract"), MoveNotAllowedError),
            (MoveRequest("reopen", actor="ana", reason="back"), MoveNotAllowedError),
            (MoveRequest("win", actor="ana"), MoveNotAllowedError),
        ],
    )
    def test_the_process_blocks_a_well_formed_request(
        self, deal: Opportunity, request_: MoveRequest, error: type[Exception]
    ) -> None:
        decision = decide(b2b(), deal.events, request_)
        assert (Verdict.BLOCKED, error) == (decision.verdict, type(decision.error))
        assert decision.available_moves

    @pytest.mark.parametrize(
        ("request_", "error"),
        [
            (MoveRequest("move_to", actor="ana", target="nope"), UnknownStageError),
            (MoveRequest("advance", actor="", at=None), InvalidCommandError),
            (MoveRequest("advance", actor="   "), InvalidCommandError),
            (MoveRequest("advance", actor="ana", at=T0 - timedelta(seconds=1)), OutOfOrderError),
            (MoveRequest("advance", actor="ana", at=datetime(2026, 5, 1)), InvalidTimestampError),
            (MoveRequest("advance", actor="ana", target="needs_analysis"), InvalidCommandError),
            (MoveRequest("move_to", actor="ana"), InvalidCommandError),
            (
                MoveRequest(
                    "advance", actor="ana", facts=ProposedFacts(deliverables={"nda": None})
                ),
                UnknownDeliverableError,
            ),
            (
                MoveRequest("advance", actor="ana", facts=ProposedFacts(fields={"amount": 5})),
                InvalidCommandError,
            ),
        ],
    )
    def test_a_bad_request_is_invalid_not_raised(
        self, deal: Opportunity, request_: MoveRequest, error: type[Exception]
    ) -> None:
        decision = decide(b2b(), deal.events, request_)
        assert (Verdict.INVALID, error) == (decision.verdict, type(decision.error))
        assert decision.events == ()

    def test_an_aware_instant_past_the_calendar_in_utc_is_invalid(self, deal: Opportunity) -> None:
        far = datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))
        decision = decide(b2b(), deal.events, MoveRequest("advance", actor="ana", at=far))
        assert (Verdict.INVALID, InvalidTimestampError) == (decision.verdict, type(decision.error))

    def test_a_broken_log_is_invalid(self, deal: Opportunity) -> None:
        events = [deal.events[0], deal.events[2]]
        decision = decide(b2b(), events, MoveRequest("advance", actor="ana"))
        assert (Verdict.INVALID, EventLogError) == (decision.verdict, type(decision.error))
        assert decision.opportunity_id is None

    def test_wrong_argument_types_are_invalid(self, deal: Opportunity) -> None:
        request = MoveRequest("advance", actor="ana")
        assert Verdict.INVALID == decide("b2b", deal.events, request).verdict  # type: ignore[arg-type]
        assert Verdict.INVALID == decide(b2b(), 5, request).verdict  # type: ignore[arg-type]
        assert Verdict.INVALID == decide(b2b(), deal.events, "advance").verdict  # type: ignore[arg-type]

    def test_an_unknown_command_is_refused_when_the_request_is_built(self) -> None:
        with pytest.raises(InvalidCommandError, match="command must be one of"):
            MoveRequest("jump", actor="ana")

    @pytest.mark.parametrize(
        "arguments",
        [{"deliverables": 5}, {"fields": ["a"]}, {"activities": 3}, {"approvals": "finance"}],
    )
    def test_malformed_facts_are_refused_when_built(self, arguments: dict[str, Any]) -> None:
        with pytest.raises(InvalidCommandError):
            ProposedFacts(**arguments)

    def test_an_activity_may_be_a_list_pair(self, deal: Opportunity) -> None:
        facts = ProposedFacts(activities=[["discovery_call", {"minutes": 20}]])
        decision = decide(
            b2b(), deal.events, MoveRequest("lose", actor="a", reason="r", facts=facts)
        )
        assert ["activity_logged", "stage_changed"] == [e.kind.value for e in decision.events]

    def test_words_of_the_command_line_become_requests(self) -> None:
        assert MoveRequest(MoveCommand.MOVE_TO, "a", "contract") == MoveRequest.from_words(
            "contract", actor="a"
        )
        assert MoveRequest(MoveCommand.OVERRIDE, "a", None, None, "r") == MoveRequest.from_words(
            "advance", actor="a", reason="r", override=True
        )
        assert MoveCommand.REOPEN == MoveRequest.from_words("reopen", actor="a").command

    def test_the_document_matches_the_response_schema(self, deal: Opportunity) -> None:
        for request in (
            MoveRequest("advance", actor="ana"),
            MoveRequest("lose", actor="ana", reason="budget"),
            MoveRequest("move_to", actor="ana", target="contract"),
            MoveRequest("advance", actor="ana", at=datetime(2026, 5, 1)),
        ):
            RESPONSE.validate(decide(b2b(), deal.events, request).to_dict())
        RESPONSE.validate(Decision(Verdict.INVALID, error=EventLogError("x")).to_dict())

    @pytest.mark.parametrize("hours", [-23, 23])
    def test_an_instant_past_what_utc_holds_is_an_invalid_decision_that_still_writes(
        self, deal: Opportunity, hours: int
    ) -> None:
        """Aware, but past year 9999 (or before year 1) in UTC: invalid, and to_dict works."""
        edge = datetime.max if hours < 0 else datetime.min
        at = edge.replace(tzinfo=timezone(timedelta(hours=hours)))
        decision = decide(b2b(), deal.events, MoveRequest("advance", actor="ana", at=at))
        assert Verdict.INVALID == decision.verdict
        assert isinstance(decision.error, InvalidTimestampError)
        document = decision.to_dict()
        RESPONSE.validate(document)
        assert document["requested"]["at"] is None


class TestDecideJson:
    def test_a_json_request_gets_the_same_answer_as_decide(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        answer = decide_json(json.dumps(request_document(events, command="advance")))
        expected = decide(b2b(), deal.events, MoveRequest("advance", actor="ana")).to_dict()
        assert expected == answer

    def test_facts_and_instants_are_read_from_json(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        facts = {
            "deliverables": {
                "qualification_checklist": {"budget": "y", "need": "crm", "timeline": "q3"}
            },
            "activities": [{"type": "discovery_call", "details": {"minutes": 30}}],
        }
        document = request_document(
            events, command="advance", at="2026-01-08T10:00:00+01:00", facts=facts
        )
        answer = decide_json(document)
        assert ("allowed", "needs_analysis") == (answer["status"], answer["to_stage"])
        assert "2026-01-08T09:00:00+00:00" == answer["at"]
        assert 3 == len(answer["events"])
        RESPONSE.validate(answer)

    def test_an_inline_process_definition_is_used(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        document = request_document(events, command="lose", reason="budget")
        document["process"] = process_to_dict(b2b())
        assert "allowed" == decide_json(document)["status"]

    def test_an_unknown_process_name_is_invalid(self, deal: Opportunity) -> None:
        document = request_document([e.to_dict() for e in deal.events], command="advance")
        document["process"] = "enterprise"
        answer = decide_json(document)
        assert ("invalid", "InvalidRequestError") == (answer["status"], answer["error"]["type"])
        assert "no process named 'enterprise'" in answer["error"]["message"]

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("not json", "not JSON"),
            ('{"version": 1, "x": NaN}', "NaN"),
            ('{"version": 1e400}', "finite"),
            ("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1), "nested deeper"),
            ("[" * 100_000 + "]" * 100_000, "nested deeper"),
            ("1" * 5000, "not JSON"),
            ("{}", "'version' is required"),
            ('{"version": 2, "process": "b2b", "events": [], "move": {}}', "version"),
        ],
    )
    def test_malformed_text_is_invalid_with_a_reason(self, text: str, fragment: str) -> None:
        answer = decide_json(text)
        assert ("invalid", "InvalidRequestError") == (answer["status"], answer["error"]["type"])
        assert fragment in answer["error"]["message"]
        RESPONSE.validate(answer)

    def test_bytes_must_be_utf8_and_within_the_size_limit(self) -> None:
        assert "not UTF-8" in decide_json(b'{"a": "\xff"}')["error"]["message"]
        huge = b" " * (MAX_REQUEST_BYTES + 1)
        assert "larger than" in decide_json(huge)["error"]["message"]

    def test_a_parsed_document_that_contains_itself_is_refused(self) -> None:
        loop: dict[str, Any] = {"version": 1}
        loop["move"] = loop
        assert "nested deeper" in decide_json(loop)["error"]["message"]

    def test_a_schema_mismatch_lists_each_problem_with_its_path(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        events[1]["seq"] = "2"
        document = request_document(events, command="fly")
        problems = decide_json(document)["error"]["problems"]
        assert any(p.startswith(".events[1].seq:") for p in problems)
        assert any(p.startswith(".move.command:") for p in problems)

    def test_a_broken_event_record_is_named_by_position(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        events[2]["at"] = "9999-12-31T22:00:00-05:00"
        answer = decide_json(request_document(events, command="advance"))
        assert ("invalid", "EventLogError") == (answer["status"], answer["error"]["type"])
        assert "3" in answer["error"]["message"]

    @pytest.mark.parametrize("at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
    def test_a_move_instant_outside_the_calendar_is_invalid(
        self, deal: Opportunity, at: str
    ) -> None:
        events = [e.to_dict() for e in deal.events]
        answer = decide_json(request_document(events, command="advance", at=at))
        assert ("invalid", "InvalidTimestampError") == (answer["status"], answer["error"]["type"])

    def test_a_lone_surrogate_survives_the_answer(self, deal: Opportunity) -> None:
        events = [e.to_dict() for e in deal.events]
        answer = decide_json(request_document(events, command="move_to", target="\ud800"))
        assert "UnknownStageError" == answer["error"]["type"]
        assert json.loads(json.dumps(answer)) == answer

    def test_an_internal_error_is_answered_not_raised(self, deal: Opportunity) -> None:
        def broken(name: str) -> Any:
            raise RuntimeError(name)

        events = [e.to_dict() for e in deal.events]
        answer = decide_json(request_document(events, command="advance"), processes=broken)
        assert ("error", "InternalError") == (answer["status"], answer["error"]["type"])
        RESPONSE.validate(answer)


# -- properties ------------------------------------------------------------------------------


def json_children(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    json_children,
    max_leaves=20,
)

FUNNY = [
    "",
    "\n",
    "lost",
    "1e9",
    "-48000",
    "contract\n",
    "\ud800",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "2026-01-05T09:00:00",
    10**400,
    -1,
    True,
]
VALID_EVENTS = [e.to_dict() for e in stuck_deal().events]
VALID = request_document(VALID_EVENTS, command="advance")
KEYS = sorted({key for event in VALID_EVENTS for key in event} | {"command", "target", "at"})


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, (*prefix, index)))
    return found


VALID_PATHS = paths(VALID)[1:]


@st.composite
def tampered_requests(draw: st.DrawFn) -> Any:
    """A valid request with a few values replaced, removed or added."""
    document = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(VALID_PATHS))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(json_values | st.sampled_from(FUNNY))
            elif action == "remove" and isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from(KEYS))] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the place
    return document


class TestProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=json_values)
    def test_any_json_value_gets_a_typed_answer_and_is_left_unchanged(self, document: Any) -> None:
        before = copy.deepcopy(document)
        answer = decide_json(document)
        RESPONSE.validate(answer)
        assert "invalid" == answer["status"]
        assert before == document
        if not isinstance(document, str):  # text is read as JSON text
            again = decide_json(json.dumps(document))
            assert answer["error"]["type"] == again["error"]["type"]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=tampered_requests())
    def test_a_tampered_request_never_crashes_nor_changes(self, document: Any) -> None:
        before = copy.deepcopy(document)
        answer = decide_json(document)
        RESPONSE.validate(answer)
        assert "error" != answer["status"], answer["error"]
        assert before == document
        if not REQUEST.is_valid(document):
            assert ("invalid", "InvalidRequestError") == (
                answer["status"],
                answer["error"]["type"],
            )
