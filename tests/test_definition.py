"""Tests of stagegate.definition: loading and dumping processes as dict, JSON, TOML and YAML."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from stagegate import (
    ActivitySpec,
    AllOf,
    Approval,
    DefinitionError,
    DeliverableSpec,
    InvalidCommandError,
    Not,
    Predicate,
    Process,
    Stage,
    StageKind,
    b2b,
    load_process,
    process_from_dict,
    process_from_json,
    process_from_toml,
    process_from_yaml,
    process_to_dict,
    process_to_json,
    process_to_toml,
    process_to_yaml,
)
from stagegate.definition import schema
from strategies import PROCESSES, criteria


def _with_gate(gate):
    return Process(
        "gated",
        "3",
        (
            Stage("lead", labels={"en": "Lead", "de-CH": "Lead"}, probability=0.1, max_days=7.5),
            Stage(
                "proposal",
                probability=0.5,
                description="Written offer",
                activities=(ActivitySpec("call", {"en": "Call"}, "a phone call"),),
                deliverables=(DeliverableSpec("nda", {"en": "NDA"}, ("document",), "signed"),),
                gate=gate,
            ),
            Stage("won", probability=1.0, kind=StageKind.WON, forecast_category="closed"),
            Stage("lost", probability=0.0, kind=StageKind.LOST, forecast_category="omitted"),
        ),
        description="A test process",
    )


class TestRoundTrips:
    @pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
    def test_dict_round_trip(self, process):
        assert process == process_from_dict(process_to_dict(process))

    @pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
    def test_json_round_trip(self, process):
        assert process == process_from_json(process_to_json(process))
        assert process == process_from_json(process_to_json(process).encode())

    @pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
    def test_toml_round_trip(self, process):
        assert process == process_from_toml(process_to_toml(process))

    @pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.name)
    def test_yaml_round_trip(self, process):
        assert process == process_from_yaml(process_to_yaml(process))

    def test_the_dump_is_stable(self):
        assert process_to_dict(b2b()) == process_to_dict(process_from_dict(process_to_dict(b2b())))

    def test_labels_in_other_scripts_survive(self):
        assert process_from_yaml(process_to_yaml(b2b())).stage("negotiation").labels["ko"] == "협상"
        assert "협상" in process_to_json(b2b())

    @given(criteria(("nda",), ("call",), ("amount", "region"), data_only=True))
    def test_any_declarative_gate_round_trips_through_every_format(self, gate):
        process = _with_gate(gate)
        assert process == process_from_dict(process_to_dict(process))
        assert process == process_from_json(process_to_json(process))
        assert process == process_from_yaml(process_to_yaml(process))
        assert process == process_from_toml(process_to_toml(process))

    def test_the_dump_matches_the_schema(self):
        import jsonschema

        jsonschema.validate(process_to_dict(b2b()), schema())


class TestNotSerializable:
    @pytest.mark.parametrize(
        "dump", [process_to_dict, process_to_json, process_to_toml, process_to_yaml]
    )
    def test_a_process_with_a_predicate_cannot_be_dumped(self, dump):
        process = _with_gate(AllOf((Approval("x"), Not(Predicate("big deal", lambda f: True)))))
        assert not process.serializable
        with pytest.raises(InvalidCommandError, match="'big deal' is Python code") as caught:
            dump(process)
        assert "replace it with a declarative criterion" in str(caught.value)


class TestLoadProcess:
    @pytest.mark.parametrize(
        ("suffix", "dump"),
        [
            (".json", process_to_json),
            (".toml", process_to_toml),
            (".yaml", process_to_yaml),
            (".YML", process_to_yaml),
        ],
    )
    def test_files_load_by_extension(self, tmp_path, suffix, dump):
        path = tmp_path / f"process{suffix}"
        path.write_text(dump(b2b()), "utf-8")
        assert b2b() == load_process(path)
        assert b2b() == load_process(str(path))

    def test_an_unknown_extension_is_refused(self, tmp_path):
        path = tmp_path / "process.ini"
        path.write_text("", "utf-8")
        with pytest.raises(DefinitionError, match=r"unknown file type '\.ini'"):
            load_process(path)

    def test_a_missing_file_is_a_definition_error(self, tmp_path):
        with pytest.raises(DefinitionError, match="cannot read the file"):
            load_process(tmp_path / "nope.toml")

    def test_a_file_that_is_not_utf8_is_a_definition_error(self, tmp_path):
        path = tmp_path / "latin.json"
        path.write_bytes(b'{"name": "\xe9"}')
        with pytest.raises(DefinitionError, match="cannot read the file"):
            load_process(path)


class TestSchema:
    def test_the_schema_is_draft_2020_12(self):
        assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def test_the_schema_is_json(self):
        assert schema() == json.loads(json.dumps(schema()))


def _large_definition(deliverables_per_stage: int = 10, evidence: int = 40) -> dict[str, object]:
    """98 open stages with many deliverables: about 40,000 values, 300 KB of JSON."""
    stages: list[dict[str, object]] = [
        {
            "id": f"s{i}",
            "probability": i / 100,
            "deliverables": [
                {"id": f"d{i}_{j}", "evidence": [f"e{k}" for k in range(evidence)]}
                for j in range(deliverables_per_stage)
            ],
        }
        for i in range(98)
    ]
    stages.append({"id": "won", "probability": 1, "kind": "won"})
    stages.append({"id": "lost", "probability": 0, "kind": "lost"})
    return {"name": "large", "version": "1", "stages": stages}


class TestSchemaCost:
    """jsonschema took 0.9 s for a 40,000-value definition: a request could cost a second."""

    @pytest.fixture
    def no_jsonschema(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from stagegate import definition

        def refuse() -> None:
            raise AssertionError("jsonschema was asked")

        monkeypatch.setattr(definition, "_validator", refuse)

    def test_a_valid_definition_is_judged_without_jsonschema(self, no_jsonschema: None) -> None:
        assert 100 == len(process_from_dict(_large_definition()).stages)
        assert process_from_dict(process_to_dict(b2b())) == b2b()

    def test_a_large_invalid_definition_is_explained_without_jsonschema(
        self, no_jsonschema: None
    ) -> None:
        data = _large_definition()
        data["stages"][97]["deliverables"][9]["evidence"][39] = "9bad"  # type: ignore[index]
        with pytest.raises(DefinitionError) as caught:
            process_from_dict(data)
        assert ["stages[97].deliverables[9].evidence[39]"] == [
            p.path for p in caught.value.problems
        ]
        assert "does not match" in caught.value.problems[0].message

    def test_a_small_invalid_definition_keeps_the_words_of_jsonschema(self) -> None:
        data = _large_definition(deliverables_per_stage=1, evidence=1)
        data["stages"][1]["gate"] = {"deliverable": "d0_0", "approval": "x"}  # type: ignore[index]
        with pytest.raises(DefinitionError, match="exactly one of the keys"):
            process_from_dict(data)
