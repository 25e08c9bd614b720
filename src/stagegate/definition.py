"""Process definitions as data: load and dump mappings, JSON, TOML and YAML; no ``eval``.

Every definition is checked against the JSON Schema shipped with the package
(:func:`schema`), then for meaning (unknown references, duplicate ids, unreachable stages, no won
or lost stage). A bad definition raises one :class:`~stagegate.errors.DefinitionError` listing
every problem with its path:

>>> bad = {"name": "x", "version": "1", "stages": [
...     {"id": "lead", "probability": 0.1,
...      "gate": {"all_of": [{"deliverable": "signed_nda"}]}},
...     {"id": "won", "probability": 1, "kind": "won"},
...     {"id": "lost", "probability": 0, "kind": "lost"}]}
>>> try:
...     process_from_dict(bad)
... except DefinitionError as error:
...     print(error.problems[0])
stages[0].gate.all_of[0]: unknown deliverable 'signed_nda'; declared: (none declared)

Gate criteria are written as one-key objects: ``{"deliverable": "nda", "evidence": ["signed_by"],
"max_age_days": 90}``, ``{"field": "amount", "op": ">=", "value": 1000}``, ``{"activity":
"meeting", "at_least": 2, "since_stage_entry": true}``, ``{"approval": "finance"}``, ``{"all_of":
[...]}``, ``{"any_of": [...]}``, ``{"not": {...}}``, ``{"lead": {"min_score": 60, "status":
["MQL"]}}``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

from stagegate._arguments import text_problem
from stagegate._schema import compile_located, count_values
from stagegate.errors import DefinitionError, InvalidCommandError, Problem
from stagegate.gates import (
    ActivityCount,
    AllOf,
    AnyOf,
    Approval,
    Criterion,
    Deliverable,
    FieldCheck,
    LeadQualification,
    Not,
)
from stagegate.process import (
    MAX_DAYS,
    ActivitySpec,
    DeliverableSpec,
    Policies,
    Process,
    Stage,
    StageKind,
    check_definition,
)

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "load_process",
    "process_from_dict",
    "process_from_json",
    "process_from_toml",
    "process_from_yaml",
    "process_to_dict",
    "process_to_json",
    "process_to_toml",
    "process_to_yaml",
    "schema",
]

MAX_NESTING = 48
"""Deepest nesting of objects and lists accepted in a definition document."""
MAX_NODES = 50_000
"""Most objects, lists and values accepted in a definition document."""
MAX_TEXT_BYTES = 5_000_000
"""Largest definition text accepted."""
MAX_YAML_NODES = 10_000
"""Most values accepted in a YAML definition (about 40 times the built-in b2b template): PyYAML
builds Python values at about 15 microseconds each, so this keeps any YAML answer well under a
second."""

_CRITERION_KEYS = (
    "deliverable",
    "field",
    "activity",
    "approval",
    "all_of",
    "any_of",
    "not",
    "lead",
)


@cache
def schema() -> Mapping[str, Any]:
    """Return the JSON Schema of process definitions (draft 2020-12)."""
    text = resources.files("stagegate").joinpath("schema/process.schema.json").read_text("utf-8")
    loaded: Mapping[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # noqa: PLC0415 - imported on first validation: it is slow to import

    cls = jsonschema.validators.validator_for(schema())
    return cls(schema())


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


MAX_INT_BITS = 64
"""Widest integer accepted anywhere in a definition document (no count in it needs more)."""


def _shape_problems(data: Any) -> list[Problem]:
    r"""Reject documents too deep, too large, or holding numbers or text no field can use.

    Runs before recursive validation touches the document. NaN and infinities (which Python's
    JSON reader accepts, and ``1e400`` becomes), integers wider than 64 bits and text holding
    a lone surrogate (a JSON ``\ud800`` escape; no store can write it) are refused wherever
    they are, keys included.
    """
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 1, ())]
    nodes = 0
    while stack:
        value, depth, where = stack.pop()
        nodes += 1
        if depth > MAX_NESTING:
            return [Problem("", f"definition nested deeper than {MAX_NESTING} levels")]
        if nodes > MAX_NODES:
            return [Problem("", f"definition has more than {MAX_NODES} values")]
        if isinstance(value, str):
            if (why := text_problem(value, single_line=False)) is not None:
                return [Problem(_path(where), f"{why}; pass plain text")]
        elif isinstance(value, Mapping):
            for key in value:
                if isinstance(key, str) and (why := text_problem(key, single_line=False)):
                    return [Problem(_path((*where, key)), f"the key {why}; pass plain text")]
            stack.extend((item, depth + 1, (*where, key)) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1, (*where, i)) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return [Problem(_path(where), f"must be a finite number, got {value!r}")]
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value.bit_length() > MAX_INT_BITS
        ):
            return [
                Problem(
                    _path(where),
                    f"is an integer of {value.bit_length()} bits; numbers in a definition fit "
                    f"in {MAX_INT_BITS} bits",
                )
            ]
    return []


MAX_EXPLAINED_NODES = 5_000
"""Largest invalid definition (in values) whose problems ``jsonschema`` words; above it the
compiled checker's own words are used (``jsonschema`` took a second for 40,000 values)."""


@cache
def _fast_check() -> Callable[[Any], list[tuple[tuple[Any, ...], str]]]:
    return compile_located(schema())


def _schema_problems(data: Any) -> list[Problem]:
    """The schema's problems with ``data``: judged by the compiled checker, explained by jsonschema.

    A valid document (the common case) never reaches ``jsonschema``, which took 0.9 s for a
    40,000-value definition that the compiled checker judges in 0.03 s; the tests hold the two
    to the same verdict. An invalid one is explained by ``jsonschema`` (its messages, and the
    criteria resolved by key in :func:`_explain`), unless it holds more than
    :data:`MAX_EXPLAINED_NODES` values: a large hostile document costs no more to refuse than
    a valid one costs to load.
    """
    found = _fast_check()(data)
    if not found:
        return []
    if count_values(data) > MAX_EXPLAINED_NODES:
        return sorted((Problem(_path(parts), what) for parts, what in found), key=_by_path)
    problems: list[Problem] = []
    for error in _validator().iter_errors(data):
        problems.extend(_explain(error))
    problems.sort(key=_by_path)
    return problems


def _by_path(problem: Problem) -> str:
    return problem.path


def _explain(error: jsonschema.ValidationError) -> list[Problem]:
    """Turn a schema error into problems, resolving ``oneOf`` on criteria by their key."""
    if error.validator == "oneOf" and isinstance(error.instance, Mapping):
        keys = [key for key in _CRITERION_KEYS if key in error.instance]
        where = _path(error.absolute_path)
        if len(keys) != 1:
            found = ", ".join(map(repr, keys)) or "none"
            return [
                Problem(
                    where,
                    "a criterion needs exactly one of the keys "
                    f"{', '.join(_CRITERION_KEYS)} (found {found})",
                )
            ]
        branch = _CRITERION_KEYS.index(keys[0])
        inner = [e for e in error.context or () if e.relative_schema_path[0] == branch]
        return [p for e in inner for p in _explain(e)]
    return [Problem(_path(error.absolute_path), error.message)]


def _criterion(data: Mapping[str, Any]) -> Criterion:
    if "deliverable" in data:
        days = data.get("max_age_days")
        if isinstance(days, (int, float)) and not 0 < days <= MAX_DAYS:
            days = None  # out of range: the schema has reported it
        return Deliverable(
            data["deliverable"],
            tuple(data.get("evidence", ())),
            None if days is None else timedelta(days=days),
        )
    if "field" in data:
        value = data.get("value")
        return FieldCheck(
            data["field"], data["op"], tuple(value) if isinstance(value, list) else value
        )
    if "activity" in data:
        at_least = data.get("at_least", 1)
        if isinstance(at_least, float) and at_least.is_integer():
            at_least = int(at_least)  # JSON Schema counts 2.0 as an integer: read it as 2
        return ActivityCount(data["activity"], at_least, data.get("since_stage_entry", False))
    if "approval" in data:
        return Approval(data["approval"])
    if "all_of" in data:
        return AllOf(tuple(_criterion(part) for part in data["all_of"]))
    if "any_of" in data:
        return AnyOf(tuple(_criterion(part) for part in data["any_of"]))
    if "lead" in data:
        return _lead_criterion(data["lead"])
    return Not(_criterion(data["not"]))


def _lead_criterion(data: Mapping[str, Any]) -> LeadQualification:
    days = data.get("max_age_days")
    if isinstance(days, (int, float)) and not 0 < days <= MAX_DAYS:
        days = None  # out of range: the schema has reported it
    score = data.get("min_score")
    return LeadQualification(
        None if score is None else float(score),
        tuple(data.get("status", ())),
        None if days is None else timedelta(days=days),
    )


def _stage(data: Mapping[str, Any]) -> Stage:
    gate = data.get("gate")
    return Stage(
        data["id"],
        labels=data.get("labels", {}),
        probability=float(data["probability"]),
        kind=StageKind(data.get("kind", "open")),
        forecast_category=data.get(
            "forecast_category", "closed" if data.get("kind") in ("won", "lost") else "pipeline"
        ),
        activities=tuple(
            ActivitySpec(a["id"], a.get("labels", {}), a.get("description", ""))
            for a in data.get("activities", ())
        ),
        deliverables=tuple(
            DeliverableSpec(
                d["id"], d.get("labels", {}), tuple(d.get("evidence", ())), d.get("description", "")
            )
            for d in data.get("deliverables", ())
        ),
        gate=None if gate is None else _criterion(gate),
        max_days=None if data.get("max_days") is None else float(data["max_days"]),
        description=data.get("description", ""),
    )


def process_from_dict(data: Mapping[str, Any]) -> Process:
    """Build a :class:`~stagegate.process.Process` from a mapping (parsed JSON, TOML or YAML).

    Raises:
        DefinitionError: the mapping does not match the schema, or the process is invalid;
            ``problems`` lists every problem with its path.
    """
    problems = _shape_problems(data)
    if not problems:
        problems = _schema_problems(data)
        if problems and isinstance(data, Mapping):
            problems.extend(_meaning_problems(data, {p.path for p in problems}))
    if problems:
        raise DefinitionError(problems, source=f"process {_name_of(data)!r}")
    return Process(
        data["name"],
        data["version"],
        tuple(_stage(stage) for stage in data["stages"]),
        Policies(**data.get("policies", {})),
        data.get("description", ""),
        renamed=data.get("renamed", {}),
    )


def _meaning_problems(data: Mapping[str, Any], reported: set[str]) -> list[Problem]:
    """Check the meaning of a definition that failed the schema, as far as it can be built.

    Parts that cannot be built are skipped (the schema problems already name them), and a
    problem at a path the schema already reported is not repeated.
    """
    stages: list[Stage] = []
    raw_stages = data.get("stages")
    for raw in raw_stages if isinstance(raw_stages, list) else ():
        try:
            stages.append(_stage(raw))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):  # noqa: PERF203
            stages.append(_lenient_stage(raw, len(stages)))
    try:
        policies = Policies(**data.get("policies", {}))
    except (TypeError, DefinitionError):
        policies = Policies()
    try:
        errors, _ = check_definition(data.get("name"), data.get("version"), tuple(stages), policies)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return []  # parts too malformed to cross-check: the schema problems say what is wrong
    return [
        p
        for p in errors
        if not any(p.path == r or p.path.startswith((r + ".", r + "[")) for r in reported)
    ]


def _lenient_stage(raw: Any, index: int) -> Stage:
    """The parts of a malformed stage that can be read, for cross-reference checks."""
    raw = raw if isinstance(raw, Mapping) else {}
    kind = raw.get("kind", "open")
    deliverables = []
    for item in raw.get("deliverables", ()) if isinstance(raw.get("deliverables"), list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            deliverables.append(DeliverableSpec(item["id"]))
    activities = []
    for item in raw.get("activities", ()) if isinstance(raw.get("activities"), list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            activities.append(ActivitySpec(item["id"]))
    return Stage(
        raw.get("id") if isinstance(raw.get("id"), str) else f"<stage {index}>",
        probability=0.0,
        kind=StageKind(kind) if kind in ("open", "won", "lost") else StageKind.OPEN,
        activities=tuple(activities),
        deliverables=tuple(deliverables),
    )


def _name_of(data: Any) -> str:
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) else "?"


def _criterion_to_dict(criterion: Criterion) -> dict[str, Any]:
    if isinstance(criterion, Deliverable):
        out: dict[str, Any] = {"deliverable": criterion.deliverable}
        if criterion.evidence:
            out["evidence"] = list(criterion.evidence)
        if criterion.max_age is not None:
            out["max_age_days"] = criterion.max_age / timedelta(days=1)
        return out
    if isinstance(criterion, FieldCheck):
        out = {"field": criterion.field, "op": criterion.op}
        if criterion.op != "exists":
            value = criterion.value
            out["value"] = list(value) if isinstance(value, tuple) else value
        return out
    if isinstance(criterion, ActivityCount):
        return {
            "activity": criterion.activity,
            "at_least": criterion.at_least,
            "since_stage_entry": criterion.since_stage_entry,
        }
    if isinstance(criterion, Approval):
        return {"approval": criterion.role}
    if isinstance(criterion, (AllOf, AnyOf)):
        return {criterion.kind: [_criterion_to_dict(part) for part in criterion.criteria]}
    if isinstance(criterion, Not):
        return {"not": _criterion_to_dict(criterion.criterion)}
    if isinstance(criterion, LeadQualification):
        lead: dict[str, Any] = {}
        if criterion.min_score is not None:
            lead["min_score"] = criterion.min_score
        if criterion.statuses:
            lead["status"] = list(criterion.statuses)
        if criterion.max_age is not None:
            lead["max_age_days"] = criterion.max_age / timedelta(days=1)
        return {"lead": lead}
    raise InvalidCommandError(
        f"the criterion {criterion.name!r} is Python code, not data: a process that uses it "
        "cannot be dumped; replace it with a declarative criterion to serialize the process"
    )


def process_to_dict(process: Process) -> dict[str, Any]:
    """Return a JSON-able mapping that :func:`process_from_dict` turns back into an equal process.

    Raises:
        InvalidCommandError: a gate uses a Python callable (:class:`~stagegate.gates.Predicate`).
    """
    stages = []
    for stage in process.stages:
        item: dict[str, Any] = {
            "id": stage.id,
            "labels": dict(stage.labels),
            "probability": stage.probability,
            "kind": stage.kind.value,
            "forecast_category": stage.forecast_category,
        }
        if stage.description:
            item["description"] = stage.description
        if stage.max_days is not None:
            item["max_days"] = stage.max_days
        if stage.activities:
            item["activities"] = [_spec(a) for a in stage.activities]
        if stage.deliverables:
            item["deliverables"] = [_spec(d) for d in stage.deliverables]
        if stage.gate is not None:
            item["gate"] = _criterion_to_dict(stage.gate)
        stages.append(item)
    policies = process.policies
    out: dict[str, Any] = {
        "name": process.name,
        "version": process.version,
        "policies": {
            "allow_skip": policies.allow_skip,
            "skip_checks_passed_gates": policies.skip_checks_passed_gates,
            "allow_backward": policies.allow_backward,
            "backward_needs_reason": policies.backward_needs_reason,
            "allow_reopen": policies.allow_reopen,
            "allow_override": policies.allow_override,
        },
        "stages": stages,
    }
    if process.description:
        out["description"] = process.description
    if process.renamed:
        out["renamed"] = dict(process.renamed)
    return out


def _spec(spec: ActivitySpec | DeliverableSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"id": spec.id}
    if spec.labels:
        out["labels"] = dict(spec.labels)
    if isinstance(spec, DeliverableSpec) and spec.evidence:
        out["evidence"] = list(spec.evidence)
    if spec.description:
        out["description"] = spec.description
    return out


def _check_size(text: str | bytes, source: str, *, binary: bool = False) -> None:
    if not isinstance(text, (str, bytes) if binary else str):
        wanted = "text (str) or UTF-8 bytes" if binary else "text (str); decode bytes first"
        raise DefinitionError(
            [Problem("", f"the definition must be {wanted}, got {type(text).__name__}")],
            source=source,
        )
    if len(text) > MAX_TEXT_BYTES:
        raise DefinitionError(
            [Problem("", f"definition text is larger than {MAX_TEXT_BYTES} bytes")], source=source
        )


def process_from_json(text: str | bytes) -> Process:
    """Load a process from JSON text.

    Raises:
        DefinitionError: the text is not JSON, or the definition is invalid.
    """
    _check_size(text, "JSON process definition", binary=True)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DefinitionError(
            [Problem("", f"not valid JSON: {exc}")], source="JSON process definition"
        ) from None
    return _from_document(data, "JSON")


def process_from_toml(text: str) -> Process:
    """Load a process from TOML text (stages as ``[[stages]]`` tables).

    Raises:
        DefinitionError: the text is not TOML, or the definition is invalid.
    """
    _check_size(text, "TOML process definition")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise DefinitionError(
            [Problem("", f"not valid TOML: {exc}")], source="TOML process definition"
        ) from None
    return _from_document(data, "TOML")


def process_from_yaml(text: str) -> Process:
    """Load a process from YAML text; needs the ``yaml`` extra (``pip install stagegate[yaml]``).

    Only plain YAML is read (``yaml.safe_load``): tags that build Python objects are refused.

    Raises:
        DefinitionError: the text is not YAML, or the definition is invalid.
        InvalidCommandError: PyYAML is not installed.
    """
    try:
        import yaml  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidCommandError(
            "reading YAML needs PyYAML: pip install 'stagegate[yaml]'"
        ) from None
    _check_size(text, "YAML process definition")
    try:
        data = _read_yaml(text)
    except _YamlLimitError as exc:
        raise DefinitionError([Problem("", str(exc))], source="YAML process definition") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DefinitionError(
            [Problem("", f"not valid YAML: {exc}")], source="YAML process definition"
        ) from None
    return _from_document(data, "YAML")


class _YamlLimitError(Exception):
    """A YAML document went past a size or nesting limit while it was being read."""


@cache
def _bounded_yaml_loader() -> Any:
    """A ``yaml.SafeLoader`` that stops as soon as nesting or node count passes the limits.

    The limits are checked while the text is scanned and composed, not after: a document of
    many deeply nested flow collections would otherwise cost seconds before any check runs.
    """
    import yaml  # noqa: PLC0415 - optional dependency

    class BoundedLoader(yaml.SafeLoader):
        nodes = 0
        depth = 0

        def fetch_flow_collection_start(self, token_class: Any) -> None:
            if self.flow_level >= MAX_NESTING:
                msg = f"definition nested deeper than {MAX_NESTING} levels ({self.get_mark()})"
                raise _YamlLimitError(msg)
            super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.nodes += 1
            self.depth += 1
            try:
                if self.depth > MAX_NESTING:
                    msg = f"definition nested deeper than {MAX_NESTING} levels"
                    raise _YamlLimitError(msg)
                if self.nodes > MAX_YAML_NODES:
                    msg = f"YAML definition has more than {MAX_YAML_NODES} values"
                    raise _YamlLimitError(msg)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


def _read_yaml(text: str, *, libyaml: bool = True) -> Any:
    """Parse YAML text with only plain values, within the nesting and size limits.

    With libyaml (PyYAML's C extension) the event stream is read first, iteratively, and the
    text is loaded only once its nesting and node count are known to be within the limits;
    without it, a pure-Python loader checks the limits as it scans and composes.

    Raises:
        _YamlLimitError: the document nests deeper than :data:`MAX_NESTING` or holds more
            than :data:`MAX_YAML_NODES` values.
        yaml.YAMLError: the text is not YAML.
    """
    import yaml  # noqa: PLC0415 - optional dependency

    fast = getattr(yaml, "CSafeLoader", None) if libyaml else None
    if fast is None:
        return yaml.load(text, Loader=_bounded_yaml_loader())  # noqa: S506 - a SafeLoader
    opening = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    closing = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    depth = nodes = 0
    for event in yaml.parse(text, Loader=fast):
        if isinstance(event, opening):
            depth += 1
            if depth > MAX_NESTING:
                msg = f"definition nested deeper than {MAX_NESTING} levels ({event.start_mark})"
                raise _YamlLimitError(msg)
        elif isinstance(event, closing):
            depth -= 1
            continue
        elif not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
            continue
        nodes += 1
        if nodes > MAX_YAML_NODES:
            msg = f"YAML definition has more than {MAX_YAML_NODES} values"
            raise _YamlLimitError(msg)
    return yaml.load(text, Loader=fast)  # noqa: S506 - CSafeLoader builds plain values only


def _from_document(data: Any, kind: str) -> Process:
    if not isinstance(data, Mapping):
        raise DefinitionError(
            [Problem("", f"the document must be an object/table, got {type(data).__name__}")],
            source=f"{kind} process definition",
        )
    return process_from_dict(data)


def process_to_json(process: Process, *, indent: int | None = 2) -> str:
    """Dump a process as JSON text."""
    return json.dumps(process_to_dict(process), indent=indent, ensure_ascii=False) + "\n"


def process_to_toml(process: Process) -> str:
    """Dump a process as TOML text."""
    import tomli_w  # noqa: PLC0415 - only needed here

    return str(tomli_w.dumps(process_to_dict(process)))


def process_to_yaml(process: Process) -> str:
    """Dump a process as YAML text; needs the ``yaml`` extra."""
    try:
        import yaml  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - depends on the environment
        raise InvalidCommandError(
            "writing YAML needs PyYAML: pip install 'stagegate[yaml]'"
        ) from None
    return str(yaml.safe_dump(process_to_dict(process), allow_unicode=True, sort_keys=False))


_LOADERS = {
    ".json": process_from_json,
    ".toml": process_from_toml,
    ".yaml": process_from_yaml,
    ".yml": process_from_yaml,
}


def load_process(path: str | Path) -> Process:
    """Load a process from a ``.json``, ``.toml``, ``.yaml`` or ``.yml`` file.

    Raises:
        DefinitionError: the file cannot be read, has an unknown extension, or is invalid.
    """
    file = Path(path)
    loader = _LOADERS.get(file.suffix.lower())
    if loader is None:
        raise DefinitionError(
            [Problem("", f"unknown file type {file.suffix!r}; use .json, .toml, .yaml or .yml")],
            source=str(file),
        )
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(
            [Problem("", f"cannot read the file: {exc}")], source=str(file)
        ) from None
    return loader(text)
