"""The evidence map: which event of another system satisfies which evidence of which stage.

A map is a TOML (or JSON) document of rules, checked against a JSON Schema
(:func:`evidence_map_schema`) and then against the process (the stages, activities and
deliverables it names must exist). The first rule that matches an engagement decides what it
records; an engagement no rule matches records nothing.

>>> from stagegate import b2b
>>> text = '''
... [[rule]]
... system = "hubspot"
... type = "MEETING"
... when = { outcome = "COMPLETED" }
... stage = "qualification"
... activity = "discovery_call"
...
... [[rule]]
... system = "marketo"
... type = "Change Score"
... lead = { score = "new_value" }
... '''
>>> rules = evidence_map_from_toml(text, process=b2b())
>>> rules.rules[0].describe()
"hubspot 'MEETING' where outcome = 'COMPLETED'"
>>> rules.rules[0].target, rules.rules[0].subject
('activity', 'discovery_call')
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._schema import compile_located, count_values
from stagegate.definition import MAX_EXPLAINED_NODES
from stagegate.errors import DefinitionError, Problem, cut
from stagegate.events import freeze
from stagegate.gates import ActivityCount, Criterion, Deliverable, LeadQualification

if TYPE_CHECKING:
    from stagegate.io.engagements import Engagement
    from stagegate.process import Process

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "EvidenceMap",
    "EvidenceRule",
    "evidence_map_from_dict",
    "evidence_map_from_toml",
    "evidence_map_schema",
    "load_evidence_map",
]

MAX_MAP_BYTES = 2_000_000
"""Largest evidence map file read."""


@cache
def evidence_map_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of evidence maps (draft 2020-12)."""
    text = (
        resources.files("stagegate").joinpath("schema/evidence-map.schema.json").read_text("utf-8")
    )
    loaded: Mapping[str, Any] = json.loads(text)
    return loaded


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _same(observed: Any, expected: Any) -> bool:
    if isinstance(observed, bool) or isinstance(expected, bool):
        return observed is expected
    if isinstance(expected, (int, float)) and isinstance(observed, str):
        try:
            return float(observed) == expected
        except ValueError:
            return False
    if isinstance(observed, (int, float)) and isinstance(expected, str):
        return str(observed) == expected
    return bool(_fold(observed) == _fold(expected))


@attrs.frozen(slots=True)
class EvidenceRule:
    """One rule of an :class:`EvidenceMap`.

    Attributes:
        system: the source system the rule reads (``hubspot``).
        type: the event type in that system (compared without regard to case).
        target: ``activity``, ``deliverable`` or ``lead``.
        subject: the activity type or deliverable id (``None`` for a lead score).
        stage: the stage whose activity or deliverable it is (``None`` for a lead score).
        when: attribute -> accepted values; every condition must hold.
        evidence: for a deliverable, evidence key -> the attribute that holds it.
        score: for a lead score, the attribute that holds the score.
        status: for a lead score, the attribute that holds the status.
        lead_source: the attribute that holds the deal's lead source, if any.
        index: the rule's position in the map (from 0).
    """

    system: str
    type: str
    target: str
    subject: str | None = None
    stage: str | None = None
    when: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict, converter=freeze, hash=False)
    evidence: Mapping[str, str] = attrs.field(factory=dict, converter=freeze, hash=False)
    score: str | None = None
    status: str | None = None
    lead_source: str | None = None
    index: int = 0

    def matches(self, engagement: Engagement) -> bool:
        """Whether ``engagement`` is of this rule's system and type and meets its conditions."""
        if engagement.system.casefold() != self.system.casefold():
            return False
        if engagement.type.casefold() != self.type.casefold():
            return False
        attributes = engagement.attributes
        for name, options in self.when.items():
            observed = attributes.get(name)
            if observed is None or not any(_same(observed, option) for option in options):
                return False
        return True

    def describe(self) -> str:
        """A readable account of the events the rule takes, e.g. ``hubspot 'MEETING'``."""
        text = f"{self.system} {self.type!r}"
        if self.when:
            parts = []
            for name, options in self.when.items():
                shown = " or ".join(repr(option) for option in options)
                parts.append(f"{name} = {shown}")
            text += " where " + " and ".join(parts)
        return text

    def satisfies(self, criterion: Criterion) -> bool:
        """Whether what this rule records can satisfy ``criterion`` (a leaf of a gate)."""
        if isinstance(criterion, Deliverable):
            return self.target == "deliverable" and self.subject == criterion.deliverable
        if isinstance(criterion, ActivityCount):
            return self.target == "activity" and self.subject == criterion.activity
        if isinstance(criterion, LeadQualification):
            return self.target == "lead" and (
                (criterion.min_score is None or self.score is not None)
                and (not criterion.statuses or self.status is not None)
            )
        return False


@attrs.frozen(slots=True)
class EvidenceMap:
    """Rules saying which external event satisfies which evidence; the first match decides.

    Attributes:
        rules: the rules, in file order.
        process: the name of the process the map is written for, if it says.
    """

    rules: tuple[EvidenceRule, ...]
    process: str | None = None

    def match(self, engagement: Engagement) -> EvidenceRule | None:
        """The first rule that matches ``engagement``, or ``None``."""
        for rule in self.rules:
            if rule.matches(engagement):
                return rule
        return None

    def sources_for(self, criterion: Criterion) -> tuple[str, ...]:
        """Which source events could satisfy ``criterion``, one readable line per rule."""
        return tuple(rule.describe() for rule in self.rules if rule.satisfies(criterion))

    def check(self, process: Process) -> list[Problem]:
        """What in the map does not fit ``process`` (unknown stages, activities, deliverables)."""
        problems: list[Problem] = []
        if self.process is not None and self.process != process.name:
            problems.append(
                Problem(
                    "process",
                    f"the map is written for process {self.process!r}, not {process.name!r}",
                )
            )
        for rule in self.rules:
            where = f"rule[{rule.index}]"
            if rule.stage is None:
                continue
            if rule.stage not in process:
                problems.append(
                    Problem(
                        f"{where}.stage",
                        f"unknown stage {rule.stage!r}; stages: {', '.join(process.stage_ids)}",
                    )
                )
                continue
            stage = process.stage(rule.stage)
            if rule.target == "activity":
                declared = [a.id for a in stage.activities]
                if rule.subject not in declared:
                    problems.append(
                        Problem(
                            f"{where}.activity",
                            f"stage {rule.stage!r} declares no activity {rule.subject!r}; "
                            f"declared: {', '.join(declared) or '(none)'}",
                        )
                    )
            else:
                declared = [d.id for d in stage.deliverables]
                if rule.subject not in declared:
                    problems.append(
                        Problem(
                            f"{where}.deliverable",
                            f"stage {rule.stage!r} declares no deliverable {rule.subject!r}; "
                            f"declared: {', '.join(declared) or '(none)'}",
                        )
                    )
        return problems


def _rule(index: int, data: Mapping[str, Any]) -> EvidenceRule:
    when = {
        name: tuple(value) if isinstance(value, list) else (value,)
        for name, value in data.get("when", {}).items()
    }
    lead = data.get("lead")
    if lead is not None:
        target, subject = "lead", None
    elif "activity" in data:
        target, subject = "activity", data["activity"]
    else:
        target, subject = "deliverable", data["deliverable"]
    return EvidenceRule(
        data["system"],
        data["type"],
        target,
        subject,
        data.get("stage"),
        when,
        data.get("evidence", {}),
        None if lead is None else lead.get("score"),
        None if lead is None else lead.get("status"),
        data.get("lead_source"),
        index,
    )


@cache
def _fast_check() -> Callable[[Any], list[tuple[tuple[Any, ...], str]]]:
    return compile_located(evidence_map_schema())


def _schema_problems(data: Any) -> list[Problem]:
    """The schema's problems with a map: judged by the compiled checker, as definitions are.

    ``jsonschema`` (1.9 s for a map of 1,000 rules with conditions) only words the problems of
    a small invalid map.
    """
    found = _fast_check()(data)
    if not found:
        return []
    if count_values(data) > MAX_EXPLAINED_NODES:
        return [Problem(_where(parts), cut(what, 300)) for parts, what in found]
    import jsonschema  # noqa: PLC0415 - slow to import: only when a map is refused

    cls = jsonschema.validators.validator_for(evidence_map_schema())
    validator = cls(evidence_map_schema())
    problems = []
    for error in validator.iter_errors(data):
        path = _where(error.absolute_path)
        message = error.message
        if error.validator == "oneOf" and isinstance(error.instance, Mapping):
            message = (
                "a rule records exactly one thing: an activity (with its stage), a deliverable "
                "(with its stage, and optional evidence) or a lead score (lead = {...}, no stage)"
            )
        problems.append(Problem(path, cut(message, 300)))
    return problems


def _where(parts: Iterable[Any]) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return path.lstrip(".")


def evidence_map_from_dict(
    data: Any, *, process: Process | None = None, source: str = "evidence map"
) -> EvidenceMap:
    """Build an evidence map from a parsed document, checked against its schema and ``process``.

    Raises:
        DefinitionError: every problem found, with its path.
    """
    problems = _schema_problems(data)
    if problems:
        raise DefinitionError(problems, source=source)
    rules = tuple(_rule(i, item) for i, item in enumerate(data["rule"]))
    evidence_map = EvidenceMap(rules, data.get("process"))
    if process is not None:
        problems = evidence_map.check(process)
        if problems:
            raise DefinitionError(problems, source=source)
    return evidence_map


def evidence_map_from_toml(
    text: str, *, process: Process | None = None, source: str = "evidence map"
) -> EvidenceMap:
    """Build an evidence map from TOML text (see :func:`evidence_map_from_dict`).

    Raises:
        DefinitionError: the text is not TOML, or the map is invalid.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError([Problem("", f"not valid TOML: {exc}")], source=source) from None
    except RecursionError:
        raise DefinitionError(
            [Problem("", "not readable TOML: arrays or tables nested too deep; flatten the map")],
            source=source,
        ) from None
    return evidence_map_from_dict(data, process=process, source=source)


def load_evidence_map(path: str | Path, *, process: Process | None = None) -> EvidenceMap:
    """Load an evidence map from a ``.toml`` or ``.json`` file.

    Raises:
        DefinitionError: the file cannot be read, is too large, or holds an invalid map.
    """
    file = Path(path)
    source = f"evidence map {str(file)!r}"
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_MAP_BYTES + 1)
        if len(raw) > MAX_MAP_BYTES:
            raise DefinitionError(
                [Problem("", f"larger than {MAX_MAP_BYTES} bytes; an evidence map is small")],
                source=source,
            )
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(
            [Problem("", f"cannot read the file: {exc}")], source=source
        ) from None
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DefinitionError([Problem("", f"not valid JSON: {exc}")], source=source) from None
        return evidence_map_from_dict(data, process=process, source=source)
    return evidence_map_from_toml(text, process=process, source=source)
