"""Tests of stagegate.process: stages, policies and the checks made when a process is built."""

from __future__ import annotations

import pytest
from hypothesis import given

from stagegate import (
    ActivitySpec,
    AllOf,
    Approval,
    DefinitionError,
    DefinitionWarning,
    Deliverable,
    DeliverableSpec,
    Not,
    Policies,
    Process,
    Stage,
    StagegateError,
    StageKind,
    UnknownStageError,
    b2b,
)
from stagegate.process import MAX_GATE_DEPTH, MAX_GATE_SIZE
from strategies import PROCESSES, criteria


def stages(*, gate=None, deliverables=(), activities=()):
    return (
        Stage("lead", labels={"en": "Lead"}, probability=0.1),
        Stage(
            "proposal",
            probability=0.5,
            gate=gate,
            deliverables=deliverables,
            activities=activities,
        ),
        Stage("won", probability=1.0, kind=StageKind.WON, forecast_category="closed"),
        Stage("lost", probability=0.0, kind=StageKind.LOST, forecast_category="omitted"),
    )


def problems_of(build):
    with pytest.raises(DefinitionError) as caught:
        build()
    assert isinstance(caught.value, StagegateError)
    assert isinstance(caught.value, ValueError)
    return [str(problem) for problem in caught.value.problems]


class TestProcess:
    def test_lookups(self):
        process = Process("tiny", "1", stages())
        assert process.stage_ids == ("lead", "proposal", "won", "lost")
        assert process.initial.id == "lead"
        assert [s.id for s in process.open_stages] == ["lead", "proposal"]
        assert [s.id for s in process.won_stages] == ["won"]
        assert [s.id for s in process.lost_stages] == ["lost"]
        assert process.index("won") == 2
        assert "proposal" in process
        assert 5 not in process
        assert process.next_stage("proposal").id == "won"
        assert process.next_stage("won") is None
        assert (process.kinds()) == {
            "lead": "open",
            "proposal": "open",
            "won": "won",
            "lost": "lost",
        }

    @pytest.mark.parametrize("stage", ["Lead", "", None, 3, ["lead"]])
    def test_an_unknown_stage_raises_a_lookup_error_listing_the_known_ones(self, stage):
        process = Process("tiny", "1", stages())
        with pytest.raises(UnknownStageError, match="known stages: lead, proposal") as caught:
            process.stage(stage)
        assert isinstance(caught.value, LookupError)
        with pytest.raises(UnknownStageError):
            process.index(stage)

    def test_processes_with_equal_definitions_are_equal(self):
        assert Process("tiny", "1", stages()) == Process("tiny", "1", stages())
        assert Process("tiny", "1", stages()) != Process("tiny", "2", stages())

    def test_labels_fall_back_to_the_id(self):
        process = Process("tiny", "1", stages())
        assert (process.stage("lead").label, process.stage("proposal").label) == (
            "Lead",
            "proposal",
        )

    def test_a_process_with_a_predicate_is_not_serializable(self):
        from stagegate import Predicate

        gate = AllOf((Approval("finance"), Not(Predicate("big", lambda facts: True))))
        assert not Process("tiny", "1", stages(gate=gate)).serializable
        assert Process("tiny", "1", stages(gate=Approval("finance"))).serializable

    @pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
    def test_probabilities_are_within_zero_and_one(self, process):
        assert all(0.0 <= p <= 1.0 for p in process.probabilities().values())

    def test_max_dwell_is_a_timedelta(self):
        from datetime import timedelta

        assert timedelta(days=21) == b2b().stage("qualification").max_dwell
        assert b2b().stage("won").max_dwell is None

    @given(criteria(("nda",), ("call",)))
    def test_any_well_formed_gate_of_modest_size_is_accepted(self, gate):
        process = Process(
            "tiny",
            "1",
            stages(
                gate=gate,
                deliverables=(DeliverableSpec("nda"),),
                activities=(ActivitySpec("call"),),
            ),
        )
        assert process.stage("proposal").gate is gate  # kept as given (NaN != NaN)


class TestProcessChecks:
    def test_duplicate_stage_ids_are_named(self):
        bad = (*stages(), Stage("lead", probability=0.2))
        assert any(
            "stages[4].id: duplicate stage id 'lead' (also stages[0])" in p
            for p in problems_of(lambda: Process("tiny", "1", bad))
        )

    def test_duplicate_deliverables_across_stages_are_named(self):
        bad = list(stages(deliverables=(DeliverableSpec("nda"),)))
        bad[0] = Stage("lead", probability=0.1, deliverables=(DeliverableSpec("nda"),))
        found = problems_of(lambda: Process("tiny", "1", bad))
        assert found == [
            "stages[1].deliverables[0].id: duplicate deliverable id 'nda' (also in stage 'lead')"
        ]

    def test_duplicate_activities_in_a_stage_are_named(self):
        bad = stages(activities=(ActivitySpec("call"), ActivitySpec("call")))
        assert problems_of(lambda: Process("tiny", "1", bad)) == [
            "stages[1].activities[1].id: duplicate activity id 'call'"
        ]

    def test_an_unknown_deliverable_in_a_nested_gate_is_named_by_path(self):
        gate = AllOf((Approval("x"), Not(Deliverable("signed_nda"))))
        found = problems_of(lambda: Process("tiny", "1", stages(gate=gate)))
        assert found == [
            (
                "stages[1].gate.all_of[1].not: unknown deliverable 'signed_nda'; "
                "declared: (none declared)"
            )
        ]

    @pytest.mark.parametrize("probability", [1.5, -0.1, "0.5", None, True, float("nan")])
    def test_a_probability_outside_zero_and_one_is_refused(self, probability):
        bad = list(stages())
        bad[1] = Stage("proposal", probability=probability)
        found = problems_of(lambda: Process("tiny", "1", bad))
        assert any(p.startswith("stages[1].probability: must be a number in [0, 1]") for p in found)

    def test_no_won_stage_and_no_lost_stage_are_named(self):
        only_open = stages()[:2]
        found = problems_of(lambda: Process("tiny", "1", only_open))
        assert "stages: no won stage: add a stage with kind = 'won'" in found
        assert "stages: no lost stage: add a stage with kind = 'lost'" in found

    def test_an_open_stage_after_the_won_stage_is_unreachable_without_skipping(self):
        bad = (*stages()[:3], Stage("limbo", probability=0.5), stages()[3])
        found = problems_of(lambda: Process("tiny", "1", bad))
        assert any(p.startswith("stages[3]: stage 'limbo' is unreachable") for p in found)
        assert any("allow skipping" in p for p in found)

    def test_the_first_stage_must_be_open(self):
        bad = (stages()[2], *stages()[:2], stages()[3])
        found = problems_of(lambda: Process("tiny", "1", bad))
        assert "stages[0].kind: the first stage (where deals open) must be open" in found

    @pytest.mark.parametrize(
        ("name", "version", "expected"),
        [
            ("", "1", "name: must be non-empty text"),
            ("x", "", "version: must be non-empty text, e.g. '1'"),
            (None, "1", "name: must be non-empty text"),
            ("x", 1, "version: must be non-empty text, e.g. '1'"),
        ],
    )
    def test_name_and_version_must_be_text(self, name, version, expected):
        assert expected in problems_of(lambda: Process(name, version, stages()))

    def test_no_stages_is_refused(self):
        assert (problems_of(lambda: Process("x", "1", ()))) == [
            "stages: a process needs at least one open, one won and one lost stage"
        ]

    @pytest.mark.parametrize(
        ("build", "expected"),
        [
            (lambda: Process("x", "1", ["lead", "won"]), "stages: every item must be a Stage"),
            (lambda: Process("x", "1", None), "stages: must be a sequence of Stage"),
            (lambda: Stage("a", labels="Lead"), "labels: must map language codes"),
            (
                lambda: Process("x", "1", stages(deliverables=("nda",))),
                "stages[1].deliverables[0]: must be a DeliverableSpec",
            ),
            (
                lambda: Process("x", "1", stages(activities=("call",))),
                "stages[1].activities[0]: must be an ActivitySpec",
            ),
            (
                lambda: Process("x", "1", stages(gate={"deliverable": "nda"})),
                "stages[1].gate: not a criterion",
            ),
            (
                lambda: Process("x", "1", (Stage(5, probability=0.1), *stages()[1:])),
                "stages[0].id: must be non-empty text",
            ),
            (
                lambda: Process("x", "1", (Stage("a", kind="open"), *stages()[1:])),
                "stages[0].kind: must be open, won or lost",
            ),
            (
                lambda: Process("x", "1", (Stage("a", max_days=0), *stages()[1:])),
                "stages[0].max_days: must be a positive number of days",
            ),
        ],
    )
    def test_wrong_types_built_in_python_give_a_definition_error(self, build, expected):
        assert any(p.startswith(expected) for p in problems_of(build))

    def test_a_gate_nested_too_deep_is_refused_without_recursion(self):
        gate = Approval("x")
        for _ in range(10_000):
            gate = Not(gate)
        found = problems_of(lambda: Process("x", "1", stages(gate=gate)))
        assert len(found) == 1
        assert found[0].endswith(f"gate nested deeper than {MAX_GATE_DEPTH} levels")
        assert found[0].startswith("stages[1].gate.not.not")

    def test_a_gate_with_too_many_criteria_is_refused(self):
        gate = AllOf(tuple(Approval(f"r{i}") for i in range(MAX_GATE_SIZE + 10)))
        assert [f"stages[1].gate: gate has more than {MAX_GATE_SIZE} criteria"] == problems_of(
            lambda: Process("x", "1", stages(gate=gate))
        )

    def test_every_problem_is_reported_at_once(self):
        bad = (Stage("a", probability=2.0), Stage("a", probability=0.1))
        found = problems_of(lambda: Process("", "1", bad))
        assert len(found) >= 4


class TestDefinitionWarnings:
    def test_falling_probabilities_warn_but_build(self):
        bad = list(stages())
        bad[1] = Stage("proposal", probability=0.05)
        with pytest.warns(DefinitionWarning, match="0.05 is lower than 0.1") as record:
            process = Process("tiny", "1", bad)
        assert len(record) == 1
        assert [note.path for note in process.warnings] == ["stages[1].probability"]
        assert process.warnings[0].severity == "warning"

    def test_a_won_stage_below_one_and_a_lost_stage_above_zero_warn(self):
        bad = list(stages())
        bad[2] = Stage("won", probability=0.9, kind=StageKind.WON)
        bad[3] = Stage("lost", probability=0.1, kind=StageKind.LOST)
        with pytest.warns(DefinitionWarning) as record:
            Process("tiny", "1", bad)
        messages = " | ".join(str(w.message) for w in record)
        assert "stages[3].probability: a lost stage usually has probability 0" in messages
        assert "stages[2].probability: a won stage usually has probability 1" in messages

    def test_the_template_builds_without_warnings(self):
        assert b2b().warnings == ()


class TestPolicies:
    def test_defaults_are_strict_but_practical(self):
        assert Policies() == Policies(
            allow_skip=False,
            skip_checks_passed_gates=True,
            allow_backward=True,
            backward_needs_reason=True,
            allow_reopen=True,
            allow_override=True,
        )
