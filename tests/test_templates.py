"""Tests of stagegate.templates: the built-in b2b process."""

from __future__ import annotations

import pytest

from stagegate import DefinitionError, StageKind, b2b, process_from_toml
from stagegate.templates import TEMPLATES, template, template_text

STAGES = (
    "lead_generation",
    "qualification",
    "needs_analysis",
    "solution_proposal",
    "negotiation",
    "contract",
    "won",
    "lost",
)


class TestB2b:
    def test_the_stage_ids_are_the_documented_ones(self):
        assert b2b().stage_ids == STAGES

    def test_the_template_is_loaded_once(self):
        assert b2b() is b2b()

    def test_open_probabilities_rise_and_closed_ones_are_certain(self):
        process = b2b()
        open_probabilities = [s.probability for s in process.open_stages]
        assert sorted(open_probabilities) == open_probabilities
        assert [s.probability for s in process.won_stages] == [1.0]
        assert [s.probability for s in process.lost_stages] == [0.0]

    def test_every_stage_has_english_and_korean_labels(self):
        for stage in b2b().stages:
            assert {"en", "ko"} <= set(stage.labels)

    def test_every_open_stage_after_the_first_and_the_won_stage_are_gated(self):
        process = b2b()
        assert process.initial.gate is None
        for stage in process.stages[1:7]:
            assert stage.gate is not None, stage.id
        assert process.stage("lost").gate is None

    def test_kinds_and_forecast_categories(self):
        process = b2b()
        assert process.stage("won").kind == StageKind.WON
        assert process.stage("contract").forecast_category == "commit"
        assert process.stage("lost").forecast_category == "omitted"

    def test_skipping_is_off_and_the_rest_is_allowed_with_reasons(self):
        policies = b2b().policies
        assert not policies.allow_skip
        assert policies.allow_backward
        assert policies.backward_needs_reason
        assert policies.allow_override


class TestTemplateText:
    def test_the_text_loads_to_the_template(self):
        assert b2b() == process_from_toml(template_text("b2b"))

    def test_every_listed_template_loads(self):
        for name in TEMPLATES:
            assert name == template(name).name

    def test_an_unknown_template_is_refused_with_the_choices(self):
        with pytest.raises(DefinitionError, match="no built-in template 'b2c'; choose one of b2b"):
            template_text("b2c")
