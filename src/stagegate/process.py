r"""Process definitions: ordered :class:`Stage`\\ s and the :class:`Policies` that govern moves.

A :class:`Process` is the one standard sales process a company shares. Each stage has a stable
id, labels, one probability that means the same to everyone, a forecast category, its kind
(open, won or lost), the activities expected in it, the deliverables it produces, and the gate
that must hold to **enter** it.

The meaning of a gate: ``stages[i].gate`` guards the way *into* stage ``i``. Moving from
``qualification`` to ``needs_analysis`` checks the gate of ``needs_analysis``.

Definitions are usually written as data and loaded with :mod:`stagegate.definition`; building
them in Python is checked the same way:

>>> lead = Stage("lead", labels={"en": "Lead"}, probability=0.1)
>>> won = Stage("won", labels={"en": "Won"}, probability=1.0, kind=StageKind.WON)
>>> lost = Stage("lost", labels={"en": "Lost"}, probability=0.0, kind=StageKind.LOST)
>>> process = Process("tiny", "1", (lead, won, lost))
>>> [s.id for s in process.open_stages], process.initial.id
(['lead'], 'lead')
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from stagegate._arguments import text_problem
from stagegate.errors import DefinitionError, Problem, UnknownStageError, cut
from stagegate.gates import ActivityCount, Criterion, Deliverable

if TYPE_CHECKING:
    from stagegate.lifecycle import Lifecycle

__all__ = [
    "ActivitySpec",
    "DefinitionWarning",
    "DeliverableSpec",
    "Policies",
    "Process",
    "Stage",
    "StageKind",
]

MAX_GATE_DEPTH = 16
"""Deepest nesting of ``all_of`` / ``any_of`` / ``not`` accepted in a gate."""
MAX_GATE_SIZE = 256
"""Most criteria accepted in one gate."""


class DefinitionWarning(UserWarning):
    """A process definition is valid but probably not what was meant."""


class StageKind(str, enum.Enum):
    """Whether a stage is still open, or closes the opportunity as won or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


MAX_AT_LEAST = 1000
"""Largest activity count a gate may ask for (``at_least``)."""
MAX_DAYS = 100_000
"""Longest dwell limit (``max_days``) and evidence age (``max_age_days``) accepted, in days."""


def _labels(value: Mapping[str, str] | None) -> Mapping[str, str]:
    if value is not None and not isinstance(value, Mapping):
        raise DefinitionError(
            [
                Problem(
                    "labels",
                    f"must map language codes to labels, e.g. {{'en': ...}}; got {value!r}",
                )
            ]
        )
    return MappingProxyType(dict(value or {}))


def _sequence(items: Any, what: str, kind: str) -> tuple[Any, ...]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise DefinitionError(
            [Problem(what, f"must be a sequence of {kind}, got {cut(repr(items))}")]
        )
    return tuple(items)


def _texts(items: Iterable[str]) -> tuple[str, ...]:
    return _sequence(items, "evidence", "evidence names")


def _activities(items: Iterable[ActivitySpec]) -> tuple[ActivitySpec, ...]:
    return _sequence(items, "activities", "ActivitySpec")


def _deliverables(items: Iterable[DeliverableSpec]) -> tuple[DeliverableSpec, ...]:
    return _sequence(items, "deliverables", "DeliverableSpec")


def _stages(items: Iterable[Stage]) -> tuple[Stage, ...]:
    return _sequence(items, "stages", "Stage")


def _renamed(value: Mapping[str, str] | None) -> Mapping[str, str]:
    if value is not None and not isinstance(value, Mapping):
        raise DefinitionError(
            [
                Problem(
                    "renamed",
                    "must map stage ids of the previous version to stage ids of this one, e.g. "
                    f"{{'demo': 'solution_design'}}; got {cut(repr(value))}",
                )
            ]
        )
    return MappingProxyType(dict(value or {}))


def id_problem(value: object) -> str | None:
    r"""Why ``value`` cannot be an id (of a stage, deliverable, activity or language), or ``None``.

    Ids are non-empty single-line text without surrounding spaces (definitions loaded from data
    are held to the stricter pattern of the schema).

    >>> print(id_problem("contract_sent\n"))
    must be one line of text without control characters, got 'contract_sent\n'
    """
    if not isinstance(value, str) or not value:
        return f"must be non-empty text, got {cut(repr(value))}"
    if value != value.strip() or text_problem(value, single_line=True) is not None:
        return f"must be one line of text without control characters, got {cut(repr(value))}"
    return None


@attrs.frozen(slots=True)
class ActivitySpec:
    """An activity expected in a stage (a call, a meeting, a demo)."""

    id: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_labels, hash=False)
    description: str = ""


@attrs.frozen(slots=True)
class DeliverableSpec:
    """An objective output of a stage, recorded with evidence (a signed NDA, a sent proposal).

    ``evidence`` names the evidence fields every record of it should carry.
    """

    id: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_labels, hash=False)
    evidence: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    description: str = ""


@attrs.frozen(slots=True)
class Stage:
    """One stage of a process.

    Attributes:
        id: stable identifier, used in the log; never shown to users.
        labels: display names by language code; ``"en"`` is expected.
        probability: chance in [0, 1] that a deal in this stage is won, shared by everyone.
        kind: open, won or lost.
        forecast_category: e.g. ``pipeline``, ``best_case``, ``commit``, ``closed``, ``omitted``.
        activities: the activities expected in this stage.
        deliverables: the deliverables this stage produces.
        gate: the criterion that must hold to enter this stage, or ``None``.
        max_days: the configured dwell limit in days before a deal counts as stalled.
        description: free text for people.
    """

    id: str
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_labels, hash=False)
    probability: float = 0.0
    kind: StageKind = StageKind.OPEN
    forecast_category: str = "pipeline"
    activities: tuple[ActivitySpec, ...] = attrs.field(default=(), converter=_activities)
    deliverables: tuple[DeliverableSpec, ...] = attrs.field(default=(), converter=_deliverables)
    gate: Criterion | None = None
    max_days: float | None = None
    description: str = ""

    @property
    def label(self) -> str:
        """The English label, or the id."""
        return self.labels.get("en", self.id)

    @property
    def is_open(self) -> bool:
        """Whether deals in this stage are still open."""
        return self.kind is StageKind.OPEN

    @property
    def max_dwell(self) -> timedelta | None:
        """:attr:`max_days` as a timedelta."""
        return None if self.max_days is None else timedelta(days=self.max_days)


@attrs.frozen(slots=True)
class Policies:
    """The rules for moving between stages, beyond the gates.

    Attributes:
        allow_skip: forward moves past the next stage are allowed.
        skip_checks_passed_gates: when skipping, the gates of the stages passed over must hold
            too (so a skip is never a way around a gate).
        allow_backward: moves back to an earlier open stage are allowed.
        backward_needs_reason: a backward move must give a reason.
        allow_reopen: a won or lost deal can be reopened (always with a reason).
        allow_override: a move despite an unmet gate is allowed, with a reason, and is
            recorded as an override with the unmet gate report.

    Losing a deal is always possible from any open stage, and always needs a reason.
    """

    allow_skip: bool = False
    skip_checks_passed_gates: bool = True
    allow_backward: bool = True
    backward_needs_reason: bool = True
    allow_reopen: bool = True
    allow_override: bool = True

    def __attrs_post_init__(self) -> None:
        wrong = [
            Problem(f"policies.{field.name}", f"must be true or false, got {cut(repr(value))}")
            for field in attrs.fields(Policies)
            if not isinstance(value := getattr(self, field.name), bool)
        ]
        if wrong:
            raise DefinitionError(wrong, source="policies")


@attrs.frozen(slots=True, weakref_slot=True)
class Process:
    """A company's standard sales process: ordered stages and policies.

    Construction validates the whole definition and raises one :class:`DefinitionError` that
    lists every problem with its path; probable mistakes (such as probabilities that fall from
    one open stage to the next) are kept in :attr:`warnings` and issued as
    :class:`DefinitionWarning`.

    ``renamed`` maps stage ids of earlier versions to the stages of this one that took their
    place (a rename, or a removed stage merged into another): deals migrated to this version
    and the history mapped onto it (:mod:`stagegate.evolution`) follow it.

    Raises:
        DefinitionError: the definition is invalid.
    """

    name: str
    version: str
    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    policies: Policies = attrs.field(factory=Policies)
    description: str = ""
    renamed: Mapping[str, str] = attrs.field(
        factory=dict, converter=_renamed, hash=False, kw_only=True
    )
    warnings: tuple[Problem, ...] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _index: Mapping[str, int] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _deliverables: Mapping[str, DeliverableSpec] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )
    _lifecycle: Lifecycle = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        problems, notes = _check(self)
        problems.extend(renamed_problems(self.renamed, self.stages))
        if problems:
            raise DefinitionError(problems, source=f"process {self.name!r}")
        object.__setattr__(self, "warnings", tuple(notes))
        object.__setattr__(
            self, "_index", MappingProxyType({s.id: i for i, s in enumerate(self.stages)})
        )
        object.__setattr__(
            self,
            "_deliverables",
            MappingProxyType({d.id: d for s in self.stages for d in s.deliverables}),
        )
        from stagegate.lifecycle import Lifecycle  # noqa: PLC0415 - lifecycle builds on process

        object.__setattr__(self, "_lifecycle", Lifecycle(self))
        for note in notes:
            warnings.warn(f"process {self.name!r}: {note}", DefinitionWarning, stacklevel=3)

    # -- lookups -----------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on the domain

        return html(self)

    def stage(self, stage_id: str) -> Stage:
        """Return the stage with this id.

        Raises:
            UnknownStageError: no stage has this id.
        """
        index = self._index.get(stage_id) if isinstance(stage_id, str) else None
        if index is None:
            raise UnknownStageError(stage_id, self.stage_ids, process=self.name)
        return self.stages[index]

    def index(self, stage_id: str) -> int:
        """Return the position of a stage in the process order.

        Raises:
            UnknownStageError: no stage has this id.
        """
        return self._index[self.stage(stage_id).id]

    def __contains__(self, stage_id: object) -> bool:
        return isinstance(stage_id, str) and stage_id in self._index

    @property
    def stage_ids(self) -> tuple[str, ...]:
        """Every stage id, in order."""
        return tuple(s.id for s in self.stages)

    @property
    def initial(self) -> Stage:
        """The stage every opportunity opens in: the first one."""
        return self.stages[0]

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """The open stages, in order."""
        return tuple(s for s in self.stages if s.kind is StageKind.OPEN)

    @property
    def won_stages(self) -> tuple[Stage, ...]:
        """The won stages, in order."""
        return tuple(s for s in self.stages if s.kind is StageKind.WON)

    @property
    def lost_stages(self) -> tuple[Stage, ...]:
        """The lost stages, in order."""
        return tuple(s for s in self.stages if s.kind is StageKind.LOST)

    @property
    def deliverables(self) -> Mapping[str, DeliverableSpec]:
        """Every declared deliverable by id."""
        return self._deliverables

    @property
    def lifecycle(self) -> Lifecycle:
        """The state machine of this process, built once and shared by all its opportunities."""
        return self._lifecycle

    @property
    def serializable(self) -> bool:
        """Whether every gate is data (no Python callables), so the process can be dumped."""
        return all(
            criterion.serializable
            for stage in self.stages
            if stage.gate is not None
            for criterion in stage.gate.walk()
        )

    def probabilities(self) -> dict[str, float]:
        """The configured probability of every stage, by id."""
        return {s.id: s.probability for s in self.stages}

    def kinds(self) -> dict[str, str]:
        """The kind (``open``, ``won``, ``lost``) of every stage, by id."""
        return {s.id: s.kind.value for s in self.stages}

    def next_stage(self, stage_id: str) -> Stage | None:
        """The stage an ``advance`` from ``stage_id`` enters: the next one that is not lost."""
        for stage in self.stages[self.index(stage_id) + 1 :]:
            if stage.kind is not StageKind.LOST:
                return stage
        return None

    def to_mermaid(self, *, language: str = "en") -> str:
        """Return the stage graph as Mermaid ``stateDiagram-v2`` text."""
        return self._lifecycle.to_mermaid(language=language)


def _check(process: Process) -> tuple[list[Problem], list[Problem]]:
    """Return (errors, warnings) for a process."""
    return check_definition(process.name, process.version, process.stages, process.policies)


def check_definition(
    name: object, version: object, stages: tuple[Stage, ...], policies: Policies
) -> tuple[list[Problem], list[Problem]]:
    """Return the (errors, warnings) of a would-be process, without building it."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    if not isinstance(name, str) or not name:
        problems.append(Problem("name", "must be non-empty text"))
    if not isinstance(version, str) or not version:
        problems.append(Problem("version", "must be non-empty text, e.g. '1'"))
    for where, text in (("name", name), ("version", version)):
        if isinstance(text, str) and (why := text_problem(text, single_line=True)) is not None:
            problems.append(Problem(where, f"{why}; a process is named in one line of text"))
    if not stages:
        problems.append(
            Problem("stages", "a process needs at least one open, one won and one lost stage")
        )
        return problems, notes
    if not all(isinstance(stage, Stage) for stage in stages):
        problems.append(Problem("stages", "every item must be a Stage"))
        return problems, notes
    _check_stages(stages, problems, notes)
    _check_reachability(stages, policies, problems)
    return problems, notes


def renamed_problems(renamed: Mapping[str, str], stages: tuple[Stage, ...]) -> list[Problem]:
    """Why a ``renamed`` map does not fit ``stages`` (old ids that are gone, new ids that exist)."""
    ids = {getattr(stage, "id", None) for stage in stages}
    problems = []
    for old, new in renamed.items():
        if (why := id_problem(old)) is not None:
            problems.append(Problem("renamed", f"an old stage id {why}"))
        elif old in ids:
            problems.append(
                Problem(
                    f"renamed.{old}",
                    f"stage {old!r} still exists in this version: only stages that are gone "
                    "are renamed or merged",
                )
            )
        elif not isinstance(new, str) or new not in ids:
            problems.append(
                Problem(
                    f"renamed.{old}",
                    f"must name a stage of this version, got {cut(repr(new))}; stages: "
                    f"{', '.join(sorted(str(i) for i in ids))}",
                )
            )
    return problems


def _check_stages(stages: tuple[Stage, ...], problems: list[Problem], notes: list[Problem]) -> None:
    seen: dict[str, int] = {}
    deliverables: dict[str, str] = {}
    activities: set[str] = set()
    for i, stage in enumerate(stages):
        path = f"stages[{i}]"
        if (why := id_problem(stage.id)) is not None:
            problems.append(Problem(f"{path}.id", why))
        elif stage.id in seen:
            problems.append(
                Problem(
                    f"{path}.id", f"duplicate stage id {stage.id!r} (also stages[{seen[stage.id]}])"
                )
            )
        else:
            seen[stage.id] = i
        if not isinstance(stage.kind, StageKind):
            problems.append(
                Problem(f"{path}.kind", f"must be open, won or lost, got {stage.kind!r}")
            )
        probability = stage.probability
        if (
            isinstance(probability, bool)
            or not isinstance(probability, (int, float))
            or not 0.0 <= probability <= 1.0
        ):
            problems.append(
                Problem(
                    f"{path}.probability",
                    f"must be a number in [0, 1], got {cut(repr(probability), 60)}",
                )
            )
        if stage.max_days is not None and (
            isinstance(stage.max_days, bool)
            or not isinstance(stage.max_days, (int, float))
            or not 0 < stage.max_days <= MAX_DAYS
        ):
            problems.append(
                Problem(
                    f"{path}.max_days",
                    f"must be a positive number of days up to {MAX_DAYS}, got "
                    f"{cut(repr(stage.max_days), 60)}",
                )
            )
        for language in stage.labels:
            if (why := id_problem(language)) is not None:
                problems.append(Problem(f"{path}.labels", f"a language code {why}"))
        problems.extend(_words_problems(stage, path))
        for j, spec in enumerate(stage.deliverables):
            if not isinstance(spec, DeliverableSpec) or id_problem(spec.id) is not None:
                problems.append(
                    Problem(
                        f"{path}.deliverables[{j}]",
                        f"must be a DeliverableSpec with a one-line text id, got {cut(repr(spec))}",
                    )
                )
                continue
            if spec.id in deliverables:
                problems.append(
                    Problem(
                        f"{path}.deliverables[{j}].id",
                        f"duplicate deliverable id {spec.id!r} "
                        f"(also in stage {deliverables[spec.id]!r})",
                    )
                )
            deliverables[spec.id] = stage.id
        for j, activity in enumerate(stage.activities):
            if not isinstance(activity, ActivitySpec) or id_problem(activity.id) is not None:
                problems.append(
                    Problem(
                        f"{path}.activities[{j}]",
                        f"must be an ActivitySpec with a one-line text id, got "
                        f"{cut(repr(activity))}",
                    )
                )
                continue
            if activity.id in {getattr(a, "id", None) for a in stage.activities[:j]}:
                problems.append(
                    Problem(f"{path}.activities[{j}].id", f"duplicate activity id {activity.id!r}")
                )
            activities.add(activity.id)
    for i, stage in enumerate(stages):
        if stage.gate is not None:
            _check_gate(stage.gate, f"stages[{i}].gate", deliverables, activities, problems)
    kinds = [s.kind for s in stages]
    if StageKind.WON not in kinds:
        problems.append(Problem("stages", "no won stage: add a stage with kind = 'won'"))
    if StageKind.LOST not in kinds:
        problems.append(Problem("stages", "no lost stage: add a stage with kind = 'lost'"))
    if stages[0].kind is not StageKind.OPEN:
        problems.append(
            Problem("stages[0].kind", "the first stage (where deals open) must be open")
        )
    _note_probabilities(stages, notes)


def _words_problems(stage: Stage, path: str) -> list[Problem]:
    r"""Labels, descriptions and evidence names of ``stage`` that cannot be stored as text.

    A lone surrogate (``"\ud800"``, which JSON's ``\u`` escapes can carry) made a process that
    loaded, then failed in every store with an error about events.
    """
    texts: list[tuple[str, object]] = [(f"{path}.description", stage.description)]
    texts.append((f"{path}.forecast_category", stage.forecast_category))
    texts.extend((f"{path}.labels.{k}", v) for k, v in stage.labels.items())
    for kind, specs in (("deliverables", stage.deliverables), ("activities", stage.activities)):
        for j, spec in enumerate(specs):
            where = f"{path}.{kind}[{j}]"
            texts.append((f"{where}.description", getattr(spec, "description", "")))
            texts.extend((f"{where}.labels.{k}", v) for k, v in getattr(spec, "labels", {}).items())
            texts.extend((f"{where}.evidence", v) for v in getattr(spec, "evidence", ()))
    return [
        Problem(where, f"{why}; pass plain text")
        for where, text in texts
        if isinstance(text, str) and (why := text_problem(text, single_line=False)) is not None
    ]


def _note_probabilities(stages: tuple[Stage, ...], notes: list[Problem]) -> None:
    previous: tuple[int, Stage] | None = None
    for i, stage in enumerate(stages):
        if not isinstance(stage.probability, (int, float)):
            continue
        if stage.kind is StageKind.OPEN:
            if previous is not None and stage.probability < previous[1].probability:
                notes.append(
                    Problem(
                        f"stages[{i}].probability",
                        f"{stage.probability} is lower than {previous[1].probability} of the "
                        "earlier "
                        f"stage {previous[1].id!r}: probabilities usually rise through the process",
                        "warning",
                    )
                )
            previous = (i, stage)
        elif stage.kind is StageKind.WON and stage.probability != 1.0:
            notes.append(
                Problem(
                    f"stages[{i}].probability", "a won stage usually has probability 1", "warning"
                )
            )
        elif stage.kind is StageKind.LOST and stage.probability != 0.0:
            notes.append(
                Problem(
                    f"stages[{i}].probability", "a lost stage usually has probability 0", "warning"
                )
            )


def _check_gate(
    gate: Criterion,
    path: str,
    deliverables: Mapping[str, str],
    activities: set[str],
    problems: list[Problem],
) -> None:
    def walk(criterion: Criterion, where: str, depth: int, count: list[int]) -> None:
        count[0] += 1
        if depth > MAX_GATE_DEPTH:
            problems.append(Problem(where, f"gate nested deeper than {MAX_GATE_DEPTH} levels"))
            return
        if count[0] > MAX_GATE_SIZE:
            if count[0] == MAX_GATE_SIZE + 1:
                problems.append(Problem(path, f"gate has more than {MAX_GATE_SIZE} criteria"))
            return
        if not isinstance(criterion, Criterion):
            problems.append(Problem(where, f"not a criterion: {criterion!r}"))
            return
        if isinstance(criterion, Deliverable) and criterion.deliverable not in deliverables:
            known = ", ".join(sorted(deliverables)) or "(none declared)"
            problems.append(
                Problem(where, f"unknown deliverable {criterion.deliverable!r}; declared: {known}")
            )
        if isinstance(criterion, ActivityCount):
            if criterion.activity not in activities:
                known = ", ".join(sorted(activities)) or "(none declared)"
                problems.append(
                    Problem(where, f"unknown activity {criterion.activity!r}; declared: {known}")
                )
            least = criterion.at_least
            if (
                isinstance(least, bool)
                or not isinstance(least, int)
                or not 1 <= least <= MAX_AT_LEAST
            ):
                problems.append(
                    Problem(
                        f"{where}.at_least",
                        f"must be a whole number from 1 to {MAX_AT_LEAST}, got "
                        f"{cut(repr(least), 60)}",
                    )
                )
        if isinstance(criterion, Deliverable) and criterion.max_age is not None:
            age = criterion.max_age
            if not isinstance(age, timedelta) or not timedelta(0) < age <= timedelta(MAX_DAYS):
                problems.append(
                    Problem(
                        f"{where}.max_age",
                        f"must be a positive timedelta up to {MAX_DAYS} days, got "
                        f"{cut(repr(age), 60)}",
                    )
                )
        parts: Iterable[tuple[str, Criterion]] = ()
        inner = getattr(criterion, "criteria", None)
        if isinstance(inner, tuple):
            parts = ((f"{where}.{criterion.kind}[{k}]", c) for k, c in enumerate(inner))
        single = getattr(criterion, "criterion", None)
        if single is not None:
            parts = ((f"{where}.not", single),)
        for part_path, part in parts:
            walk(part, part_path, depth + 1, count)

    walk(gate, path, 1, [0])


def _check_reachability(
    stages: tuple[Stage, ...], policies: Policies, problems: list[Problem]
) -> None:
    ids = [s.id for s in stages]
    if not all(isinstance(i, str) for i in ids):
        return  # already reported; the graph is not well defined
    if len(set(ids)) != len(ids) or stages[0].kind is not StageKind.OPEN:
        return  # already reported; the graph is not well defined
    reached = {0}
    frontier = [0]
    allow_skip = policies.allow_skip
    while frontier:
        i = frontier.pop()
        if stages[i].kind is not StageKind.OPEN:
            continue
        targets: list[int] = [k for k, s in enumerate(stages) if s.kind is StageKind.LOST]
        later = [k for k in range(i + 1, len(stages)) if stages[k].kind is not StageKind.LOST]
        targets.extend(later if allow_skip else later[:1])
        for k in targets:
            if k not in reached:
                reached.add(k)
                frontier.append(k)
    for k, stage in enumerate(stages):
        if k not in reached:
            problems.append(
                Problem(
                    f"stages[{k}]",
                    f"stage {stage.id!r} is unreachable from {stages[0].id!r}: move it before "
                    "the won stage, or allow skipping",
                )
            )
