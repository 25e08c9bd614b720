"""What changed between two versions of a process: :func:`diff`."""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from stagegate.errors import StagegateError, cut
from stagegate.gates import ActivityCount, AllOf, Criterion, Deliverable, LeadQualification
from stagegate.process import Policies, Process, Stage

__all__ = [
    "Change",
    "EvolutionError",
    "ProcessDiff",
    "diff",
    "given_mapping",
    "required_process",
    "stage_mapping",
]

SUGGEST_RATIO = 0.5
"""Least similarity (difflib ratio of ids and labels) for a rename to be suggested."""


class EvolutionError(StagegateError, ValueError):
    """Two versions, or a mapping between them, cannot be used as given."""


@attrs.frozen(slots=True)
class Change:
    """One difference between two versions of a process.

    Attributes:
        kind: what changed: ``stage_added``, ``stage_removed``, ``stage_renamed``,
            ``stage_merged``, ``stage_reordered``, ``stage_kind_changed``,
            ``probability_changed``, ``forecast_category_changed``, ``max_days_changed``,
            ``label_changed``, ``gate_tightened``, ``gate_loosened``, ``gate_changed``,
            ``deliverable_added``, ``deliverable_removed``, ``deliverable_moved``,
            ``activity_added``, ``activity_removed``, ``policy_changed``.
        stage: the stage it concerns (its new id; the old id for a removed stage), or ``None``.
        text: one readable line.
        before: the old value, when there is one (JSON-able).
        after: the new value, when there is one (JSON-able).
    """

    kind: str
    stage: str | None
    text: str
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "kind": self.kind,
            "stage": self.stage,
            "text": self.text,
            "before": self.before,
            "after": self.after,
        }


@attrs.frozen(slots=True)
class ProcessDiff:
    """The differences between two versions of one process.

    Attributes:
        process: the process name.
        old_version: the version compared from.
        new_version: the version compared to.
        mapping: old stage id to new stage id, for every old stage that has a place in the new
            version (same id, renamed or merged).
        removed: old stages with no place in the new version (a migration must map them).
        added: new stages that no old stage maps to.
        suggestions: for removed stages, a similar added stage (never applied: pass it as a
            mapping, or write it in the new definition's ``renamed``, to use it).
        changes: every change, in stage order.
    """

    process: str
    old_version: str
    new_version: str
    mapping: Mapping[str, str]
    removed: tuple[str, ...]
    added: tuple[str, ...]
    suggestions: Mapping[str, str]
    changes: tuple[Change, ...]

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return bool(self.changes)

    def of_kind(self, *kinds: str) -> tuple[Change, ...]:
        """The changes of the given kinds."""
        return tuple(c for c in self.changes if c.kind in kinds)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "process": self.process,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "mapping": dict(self.mapping),
            "removed": list(self.removed),
            "added": list(self.added),
            "suggestions": dict(self.suggestions),
            "changes": [c.to_dict() for c in self.changes],
        }

    def lines(self) -> list[str]:
        """The diff as readable lines, a heading first."""
        out = [f"process {self.process!r}: version {self.old_version} -> {self.new_version}"]
        if not self.changes:
            out.append("  no changes")
        out.extend(f"  {c.text}" for c in self.changes)
        for old, new in self.suggestions.items():
            out.append(
                f"  suggestion: {old!r} may have become {new!r}; say so with --map {old}={new} "
                f"(or renamed.{old} = {new!r} in the new definition)"
            )
        return out


def required_process(process: object, what: str) -> Process:
    """``process``, refused unless it is a :class:`~stagegate.process.Process`.

    Raises:
        EvolutionError: it is not.
    """
    if not isinstance(process, Process):
        raise EvolutionError(
            f"{what} takes a Process (e.g. stagegate.load_process(path)), got {cut(repr(process))}"
        )
    return process


def given_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """An explicit stage mapping as a dict (``None`` is none).

    Raises:
        EvolutionError: ``mapping`` is not a mapping.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise EvolutionError(
            "a stage mapping takes old stage ids to new ones, e.g. {'qualification': 'qualify'}; "
            f"got {cut(repr(mapping))}"
        )
    return dict(mapping)


def stage_mapping(
    old: Process, new: Process, mapping: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Where each stage of ``old`` is in ``new``; stages with no place there are left out.

    The explicit ``mapping`` wins, then ``new.renamed``, then the same id.

    Raises:
        EvolutionError: ``mapping`` names a stage that ``old`` or ``new`` does not have.
    """
    given = given_mapping(mapping)
    wrong = [
        f"{k!r} -> {v!r}"
        for k, v in given.items()
        if not isinstance(k, str) or not isinstance(v, str) or k not in old or v not in new
    ]
    if wrong:
        raise EvolutionError(
            f"the stage mapping {', '.join(cut(w, 80) for w in wrong)} does not take a stage of "
            f"version {old.version!r} ({', '.join(old.stage_ids)}) to a stage of version "
            f"{new.version!r} ({', '.join(new.stage_ids)}); fix the mapping"
        )
    out: dict[str, str] = {}
    for stage in old.stage_ids:
        target = given.get(stage) or new.renamed.get(stage) or stage
        if target in new:
            out[stage] = target
    return out


def diff(old: Process, new: Process, *, mapping: Mapping[str, str] | None = None) -> ProcessDiff:
    """What changed from ``old`` to ``new`` (two versions of one process).

    A stage is matched by ``mapping`` (old id to new id), else by the new definition's
    ``renamed`` map, else by its id: renames are never guessed, but a removed stage that
    resembles an added one is listed in :attr:`ProcessDiff.suggestions`. A gate is compared
    with the gate of the stage it maps to: criteria added (or made stricter: more activities,
    more evidence, a shorter maximum age) tighten it, criteria removed (or relaxed) loosen it.

    >>> from stagegate.templates import b2b
    >>> import attrs
    >>> old = b2b()
    >>> stages = list(old.stages)
    >>> stages[2] = attrs.evolve(stages[2], probability=0.3)
    >>> new = attrs.evolve(old, version="2", stages=tuple(stages))
    >>> [c.text for c in diff(old, new).changes]
    ["probability of 'needs_analysis': 0.2 -> 0.3"]

    Raises:
        EvolutionError: the two are not processes of the same name, or ``mapping`` is wrong.
    """
    if not isinstance(old, Process) or not isinstance(new, Process):
        raise EvolutionError(f"diff compares two Process objects, got {old!r} and {new!r}")
    if old.name != new.name:
        raise EvolutionError(
            f"these are two processes ({old.name!r} and {new.name!r}), not two versions of one; "
            "compare versions of the same process"
        )
    where = stage_mapping(old, new, mapping)
    targets: dict[str, list[str]] = {}
    for source, target in where.items():
        targets.setdefault(target, []).append(source)
    removed = tuple(s for s in old.stage_ids if s not in where)
    added = tuple(s for s in new.stage_ids if s not in targets)
    changes: list[Change] = []
    for stage in removed:
        changes.append(
            Change("stage_removed", stage, f"stage {stage!r} removed (no place in the new version)")
        )
    for stage in added:
        position = new.index(stage)
        changes.append(
            Change("stage_added", stage, f"stage {stage!r} added at position {position + 1}")
        )
    for target, sources in targets.items():
        for source in sources:
            if source == target:
                continue
            if len(sources) == 1:  # the old stage of that id went elsewhere: a rename too
                changes.append(
                    Change("stage_renamed", target, f"stage {source!r} renamed {target!r}", source)
                )
            else:
                changes.append(
                    Change(
                        "stage_merged", target, f"stage {source!r} merged into {target!r}", source
                    )
                )
    mains = {target: _main(target, sources) for target, sources in targets.items()}
    changes.extend(_reordered(old, new, {s: t for s, t in where.items() if mains[t] == s}))
    for target, main in mains.items():
        changes.extend(_stage_changes(old.stage(main), new.stage(target)))
    changes.extend(_deliverable_changes(old, new, where))
    changes.extend(_policy_changes(old.policies, new.policies))
    return ProcessDiff(
        old.name,
        old.version,
        new.version,
        where,
        removed,
        added,
        _suggestions(old, new, removed, added),
        tuple(changes),
    )


def _main(target: str, sources: list[str]) -> str:
    """The old stage a new one is compared with: the one of its id, else the first merged."""
    return target if target in sources else sources[0]


def _reordered(old: Process, new: Process, where: Mapping[str, str]) -> list[Change]:
    """Matched stages whose order changed: those off the longest run kept in order.

    ``where`` holds one old stage per new one (the others merged into it are not moved).
    """
    pairs = [(new.index(target), source) for source, target in where.items()]
    sequence = [position for position, _ in pairs]
    keep = _longest_rising(sequence)
    out = []
    for i, (position, source) in enumerate(pairs):
        if i not in keep:
            target = where[source]
            out.append(
                Change(
                    "stage_reordered",
                    target,
                    f"stage {target!r} moved from position {old.index(source) + 1} to "
                    f"{position + 1}",
                    old.index(source) + 1,
                    position + 1,
                )
            )
    return out


def _longest_rising(values: list[int]) -> set[int]:
    """Indexes of one longest strictly rising subsequence (patience sorting)."""
    tails: list[int] = []
    tail_index: list[int] = []
    parent = [-1] * len(values)
    for i, value in enumerate(values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
        parent[i] = tail_index[k - 1] if k else -1
    keep: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return keep


def _stage_changes(before: Stage, after: Stage) -> list[Change]:
    sid = after.id
    out = []
    if before.kind is not after.kind:
        out.append(
            Change(
                "stage_kind_changed",
                sid,
                f"stage {sid!r} is now {after.kind.value} (was {before.kind.value})",
                before.kind.value,
                after.kind.value,
            )
        )
    if before.probability != after.probability:
        out.append(
            Change(
                "probability_changed",
                sid,
                f"probability of {sid!r}: {before.probability:g} -> {after.probability:g}",
                before.probability,
                after.probability,
            )
        )
    if before.forecast_category != after.forecast_category:
        out.append(
            Change(
                "forecast_category_changed",
                sid,
                f"forecast category of {sid!r}: {before.forecast_category} -> "
                f"{after.forecast_category}",
                before.forecast_category,
                after.forecast_category,
            )
        )
    if before.max_days != after.max_days:
        out.append(
            Change(
                "max_days_changed",
                sid,
                f"dwell limit of {sid!r}: {_days(before.max_days)} -> {_days(after.max_days)}",
                before.max_days,
                after.max_days,
            )
        )
    if before.label != after.label:
        out.append(
            Change(
                "label_changed",
                sid,
                f"label of {sid!r}: {before.label!r} -> {after.label!r}",
                before.label,
                after.label,
            )
        )
    old_activities = {a.id for a in before.activities}
    new_activities = {a.id for a in after.activities}
    out.extend(
        Change("activity_added", sid, f"activity {a!r} expected in {sid!r}", None, a)
        for a in sorted(new_activities - old_activities)
    )
    out.extend(
        Change("activity_removed", sid, f"activity {a!r} no longer expected in {sid!r}", a, None)
        for a in sorted(old_activities - new_activities)
    )
    out.extend(_gate_changes(sid, before.gate, after.gate))
    return out


def _days(value: float | None) -> str:
    return "none" if value is None else f"{value:g} days"


def _leaves(gate: Criterion | None) -> dict[tuple[str, str], Criterion]:
    """The requirements a gate joins with ``and``, by what they are about."""
    if gate is None:
        return {}
    parts = [gate]
    out: dict[tuple[str, str], Criterion] = {}
    while parts:
        part = parts.pop(0)
        if isinstance(part, AllOf):
            parts[:0] = list(part.criteria)
        elif isinstance(part, Deliverable):
            out["deliverable", part.deliverable] = part
        elif isinstance(part, ActivityCount):
            out["activity", part.activity] = part
        elif isinstance(part, LeadQualification):
            out["lead", "lead"] = part
        else:
            out["criterion", part.describe()] = part
    return out


def _strictness(before: Criterion, after: Criterion) -> str:
    """``tightened``, ``loosened`` or ``changed``: how one requirement changed."""
    stricter = looser = False
    if isinstance(before, Deliverable) and isinstance(after, Deliverable):
        old_ev, new_ev = set(before.evidence), set(after.evidence)
        stricter |= bool(new_ev - old_ev)
        looser |= bool(old_ev - new_ev)
        if before.max_age != after.max_age:
            if after.max_age is None or (
                before.max_age is not None and after.max_age > before.max_age
            ):
                looser = True
            else:
                stricter = True
    elif isinstance(before, ActivityCount) and isinstance(after, ActivityCount):
        stricter |= after.at_least > before.at_least or (
            after.since_stage_entry and not before.since_stage_entry
        )
        looser |= after.at_least < before.at_least or (
            before.since_stage_entry and not after.since_stage_entry
        )
    elif isinstance(before, LeadQualification) and isinstance(after, LeadQualification):
        stricter, looser = _lead_strictness(before, after)
    else:
        return "changed"
    if stricter == looser:
        return "changed"
    return "tightened" if stricter else "loosened"


def _lead_strictness(before: LeadQualification, after: LeadQualification) -> tuple[bool, bool]:
    """Whether the lead hand-off asks more, and whether it asks less, than before."""
    stricter = looser = False
    old, new = before.min_score, after.min_score
    if old != new:
        if new is None or (old is not None and new < old):
            looser = True
        else:
            stricter = True
    old_statuses = {status.casefold() for status in before.statuses}
    new_statuses = {status.casefold() for status in after.statuses}
    if old_statuses != new_statuses:
        if not new_statuses:
            looser = True
        elif not old_statuses:
            stricter = True
        else:
            stricter |= bool(old_statuses - new_statuses)
            looser |= bool(new_statuses - old_statuses)
    if before.max_age != after.max_age:
        if after.max_age is None or (before.max_age is not None and after.max_age > before.max_age):
            looser = True
        else:
            stricter = True
    return stricter, looser


def _gate_changes(sid: str, before: Criterion | None, after: Criterion | None) -> list[Change]:
    if before == after:
        return []
    old, new = _leaves(before), _leaves(after)
    out = []
    for key in [k for k in new if k not in old]:
        text = new[key].describe()
        out.append(Change("gate_tightened", sid, f"gate of {sid!r} now needs {text}", None, text))
    for key in [k for k in old if k not in new]:
        text = old[key].describe()
        out.append(
            Change("gate_loosened", sid, f"gate of {sid!r} no longer needs {text}", text, None)
        )
    for key in [k for k in new if k in old and old[k] != new[k]]:
        how = _strictness(old[key], new[key])
        was, now = old[key].describe(), new[key].describe()
        out.append(Change(f"gate_{how}", sid, f"gate of {sid!r}: {was} -> {now}", was, now))
    if not out:  # same requirements, another shape (e.g. any_of regrouped)
        was = "none" if before is None else before.describe()
        now = "none" if after is None else after.describe()
        out.append(Change("gate_changed", sid, f"gate of {sid!r}: {was} -> {now}", was, now))
    return out


def _deliverable_changes(old: Process, new: Process, where: Mapping[str, str]) -> list[Change]:
    old_at = {d.id: s.id for s in old.stages for d in s.deliverables}
    new_at = {d.id: s.id for s in new.stages for d in s.deliverables}
    out = []
    for deliverable, stage in new_at.items():
        if deliverable not in old_at:
            out.append(
                Change(
                    "deliverable_added",
                    stage,
                    f"deliverable {deliverable!r} added to {stage!r}",
                    None,
                    deliverable,
                )
            )
        elif where.get(old_at[deliverable]) != stage:
            out.append(
                Change(
                    "deliverable_moved",
                    stage,
                    f"deliverable {deliverable!r} moved from {old_at[deliverable]!r} to {stage!r}",
                    old_at[deliverable],
                    stage,
                )
            )
        else:
            before = old.deliverables[deliverable]
            after = new.deliverables[deliverable]
            if set(before.evidence) != set(after.evidence):
                out.append(
                    Change(
                        "deliverable_changed",
                        stage,
                        f"evidence of deliverable {deliverable!r}: "
                        f"{', '.join(before.evidence) or 'none'} -> "
                        f"{', '.join(after.evidence) or 'none'}",
                        list(before.evidence),
                        list(after.evidence),
                    )
                )
    out.extend(
        Change(
            "deliverable_removed",
            where.get(stage, stage),
            f"deliverable {deliverable!r} removed (was in {stage!r})",
            deliverable,
            None,
        )
        for deliverable, stage in old_at.items()
        if deliverable not in new_at
    )
    return out


def _policy_changes(before: Policies, after: Policies) -> list[Change]:
    out = []
    for field in attrs.fields(Policies):
        was, now = getattr(before, field.name), getattr(after, field.name)
        if was != now:
            out.append(
                Change(
                    "policy_changed",
                    None,
                    f"policy {field.name}: {str(was).lower()} -> {str(now).lower()}",
                    was,
                    now,
                )
            )
    return out


def _suggestions(
    old: Process, new: Process, removed: tuple[str, ...], added: tuple[str, ...]
) -> dict[str, str]:
    """For each removed stage, the most similar added stage of the same kind, if any is close."""
    out: dict[str, str] = {}
    free = list(added)
    for stage in removed:
        before = old.stage(stage)
        best, score = None, 0.0
        for candidate in free:
            after = new.stage(candidate)
            if after.kind is not before.kind:
                continue
            ratio = max(
                difflib.SequenceMatcher(None, before.id, after.id).ratio(),
                difflib.SequenceMatcher(None, before.label.lower(), after.label.lower()).ratio(),
            )
            if old.index(stage) == new.index(candidate):
                ratio += 0.25  # in the same place
            if ratio > score:
                best, score = candidate, ratio
        if best is not None and score >= SUGGEST_RATIO:
            out[stage] = best
            free.remove(best)
    return out
