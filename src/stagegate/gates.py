"""Gate criteria and their evaluation into a :class:`GateReport` that explains itself.

A stage's gate is one criterion (often an :class:`AllOf`) that must hold to *enter* that stage.
Criteria are declarative values: they serialize to data, hold no code (except
:class:`Predicate`, for processes defined in Python), and evaluating them never raises for
missing data: the report says what holds, why, which recorded events satisfied it, and what is
missing.

>>> from datetime import datetime, timezone
>>> gate = AllOf((Deliverable("nda_signed"), FieldCheck("amount", ">=", 1000)))
>>> facts = Facts(at=datetime(2026, 1, 9, tzinfo=timezone.utc), amount=5000)
>>> report = gate.report("proposal", facts)
>>> report.passed
False
>>> report.missing
("deliverable 'nda_signed' not recorded",)
"""

from __future__ import annotations

import math
import operator
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import attrs

from stagegate._arguments import text_problem
from stagegate.errors import EventLogError
from stagegate.provenance import occurred_at

if TYPE_CHECKING:
    from stagegate.events import Event

__all__ = [
    "ActivityCount",
    "AllOf",
    "AnyOf",
    "Approval",
    "Criterion",
    "CriterionResult",
    "Deliverable",
    "Facts",
    "FieldCheck",
    "GateReport",
    "LeadQualification",
    "Not",
    "Predicate",
]

_NO_EVIDENCE: tuple[int, ...] = ()
_new = tuple.__new__  # skips a named tuple's Python-level __new__: gates run on every move
_MAX_SHARED_RESULTS = 4096
MAX_RESULT_DEPTH = 64
"""Deepest nesting of criterion results read back from a stored gate report."""


def _texts(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _criteria(items: Iterable[Criterion]) -> tuple[Criterion, ...]:
    return tuple(items)


class CriterionResult(NamedTuple):
    """Whether one criterion holds, why, and which events (by ``seq``) satisfied it.

    ``children`` holds the results of the parts of an :class:`AllOf`, :class:`AnyOf` or
    :class:`Not`. Results and reports are immutable named tuples rather than attrs classes:
    a gate is evaluated on every move, and a named tuple is built four times faster.
    """

    criterion: str
    holds: bool
    reason: str
    evidence: tuple[int, ...] = _NO_EVIDENCE
    children: tuple[CriterionResult, ...] = ()

    def missing(self) -> tuple[str, ...]:
        """Return the reasons of the unmet leaf criteria that keep this result from holding."""
        if self.holds:
            return ()
        if not self.children:
            return (self.reason,)
        if self.criterion == "any of":
            return (self.reason,)
        found: list[str] = []
        for child in self.children:
            found.extend(child.missing())
        return tuple(found) or (self.reason,)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        data: dict[str, Any] = {
            "criterion": self.criterion,
            "holds": self.holds,
            "reason": self.reason,
            "evidence": list(self.evidence),
        }
        if self.children:
            data["children"] = [child.to_dict() for child in self.children]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, _depth: int = 0) -> CriterionResult:
        """Rebuild a result from :meth:`to_dict` output."""
        if _depth > MAX_RESULT_DEPTH:
            raise EventLogError(
                f"gate criterion results nested deeper than {MAX_RESULT_DEPTH} levels"
            )
        try:
            evidence = tuple(int(seq) for seq in data.get("evidence", ()))
            children = tuple(
                cls.from_dict(child, _depth=_depth + 1) for child in data.get("children", ())
            )
            criterion, holds, reason = data["criterion"], data["holds"], data["reason"]
        except EventLogError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EventLogError(
                f"malformed gate criterion result {reprlib.repr(data)}: {exc!r}"
            ) from None
        if not (isinstance(criterion, str) and isinstance(holds, bool) and isinstance(reason, str)):
            raise EventLogError(f"malformed gate criterion result {reprlib.repr(data)}")
        if text_problem(criterion, single_line=False) or text_problem(reason, single_line=False):
            raise EventLogError(
                f"gate criterion result {reprlib.repr(data)} holds text UTF-8 cannot encode"
            )
        return cls(criterion, holds, reason, evidence, children)


class GateReport(NamedTuple):
    """The evaluation of the gate that guards ``target``: one result per top-level criterion.

    A stage without a gate gives a report with no results, which passes.
    """

    target: str
    results: tuple[CriterionResult, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether every criterion holds."""
        for result in self.results:  # noqa: SIM110 - a loop is twice as fast as all() here
            if not result.holds:
                return False
        return True

    @property
    def missing(self) -> tuple[str, ...]:
        """What is missing, one line per unmet leaf criterion; empty when the gate passes."""
        found: list[str] = []
        for result in self.results:
            found.extend(result.missing())
        return tuple(found)

    @property
    def evidence(self) -> tuple[int, ...]:
        """The ``seq`` of every event that satisfied a holding criterion, in order."""
        seqs: set[int] = set()
        stack = list(self.results)
        while stack:
            result = stack.pop()
            if result.holds:
                seqs.update(result.evidence)
            stack.extend(result.children)
        return tuple(sorted(seqs))

    def explain(self) -> str:
        """Return a readable multi-line account of every criterion.

        >>> result = CriterionResult("deliverable 'po'", False, "not recorded")
        >>> print(GateReport("won", (result,)).explain())
        gate of 'won': NOT MET
          [ ] deliverable 'po': not recorded
        """
        lines = [f"gate of {self.target!r}: {'met' if self.passed else 'NOT MET'}"]

        def walk(result: CriterionResult, depth: int) -> None:
            mark = "x" if result.holds else " "
            seqs = f" (events {', '.join(map(str, result.evidence))})" if result.evidence else ""
            text = result.reason
            if not text.startswith(result.criterion):
                text = f"{result.criterion}: {text}"
            lines.append(f"{'  ' * depth}[{mark}] {text}{seqs}")
            for child in result.children:
                walk(child, depth + 1)

        for result in self.results:
            walk(result, 1)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from stagegate.display import html  # noqa: PLC0415 - display draws on the domain

        return html(self)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "target": self.target,
            "passed": self.passed,
            "results": [result.to_dict() for result in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        """Rebuild a report from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or not isinstance(data.get("target"), str):
            raise EventLogError(
                f"malformed gate report {reprlib.repr(data)}: needs a 'target' stage id"
            )
        results = data.get("results", ())
        if not isinstance(results, (list, tuple)):
            raise EventLogError(
                f"malformed gate report {reprlib.repr(data)}: 'results' must be a list"
            )
        return cls(data["target"], tuple(CriterionResult.from_dict(r) for r in results))


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Facts(NamedTuple):
    """What a gate may look at: the opportunity's recorded evidence as of ``at``.

    Built by :class:`~stagegate.opportunity.Opportunity`; build one by hand to test a gate.

    Attributes:
        at: the instant of evaluation (aware, UTC).
        stage_entered_at: when the opportunity entered its current stage.
        deliverables: the latest event recording each deliverable id.
        activities: activity events, oldest first.
        approvals: the latest approval event per role.
        fields: the opportunity's custom fields.
        amount: the amount in force.
        close_date: the expected close date in force.
        lead: the ``lead_scored`` event in force (the one that occurred last), if any.
    """

    at: datetime
    stage_entered_at: datetime | None = None
    deliverables: Mapping[str, Event] = _EMPTY
    activities: Sequence[Event] = ()
    approvals: Mapping[str, Event] = _EMPTY
    fields: Mapping[str, Any] = _EMPTY
    amount: Decimal | int | float | None = None
    close_date: date | None = None
    lead: Event | None = None


class Criterion:
    """Base class of gate criteria: a condition on :class:`Facts` that explains itself."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    serializable: ClassVar[bool] = True

    @property
    def name(self) -> str:  # pragma: no cover - every subclass overrides
        """A short human-readable name of the criterion."""
        raise NotImplementedError

    def evaluate(self, facts: Facts) -> CriterionResult:  # pragma: no cover - overridden
        """Return whether the criterion holds for ``facts``; never raises for missing data."""
        raise NotImplementedError

    def report(self, target: str, facts: Facts) -> GateReport:
        """Evaluate this criterion as the gate of ``target``."""
        return _new(GateReport, (target, (self.evaluate(facts),)))

    def walk(self) -> tuple[Criterion, ...]:
        """This criterion and every criterion nested in it, depth first."""
        return (self,)

    def describe(self, *, top: bool = True) -> str:  # noqa: ARG002 - combinators use it
        """A one-line readable account of the whole criterion (``top``: no outer brackets).

        >>> either = AnyOf((Approval("cfo"), FieldCheck("amount", "<", 5)))
        >>> AllOf((Deliverable("po"), either)).describe()
        "deliverable 'po' and (approval by 'cfo' or amount < 5)"
        """
        return self.name


@attrs.frozen(slots=True)
class Deliverable(Criterion):
    """A deliverable has been recorded, optionally with evidence fields and a maximum age.

    Args:
        deliverable: the deliverable id, declared by a stage of the process.
        evidence: evidence keys that must be present and non-empty in the record.
        max_age: the record must be at most this old at evaluation time.
    """

    kind: ClassVar[str] = "deliverable"
    deliverable: str
    evidence: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    max_age: timedelta | None = None
    _name: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    _held: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    _missing: CriterionResult = attrs.field(init=False, eq=False, repr=False, hash=False)
    # Results that hold depend only on the satisfying event's seq: shared, not rebuilt.
    _results: dict[int, CriterionResult] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_name", f"deliverable {self.deliverable!r}")
        object.__setattr__(self, "_held", f"deliverable {self.deliverable!r} recorded")
        object.__setattr__(
            self, "_missing", CriterionResult(self._name, False, f"{self._name} not recorded")
        )
        object.__setattr__(self, "_results", {})

    @property
    def name(self) -> str:
        """E.g. ``deliverable 'nda_signed'``."""
        return self._name

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when the latest record has the evidence and is recent enough."""
        event = facts.deliverables.get(self.deliverable)
        if event is None:
            return self._missing
        if self.evidence:
            details = event.details
            if details is None or not (isinstance(details, dict) or isinstance(details, Mapping)):  # noqa: SIM101
                details = _EMPTY
            for key in self.evidence:
                value = details.get(key)
                if value is None or (not value and _is_sized(value)):
                    return self._without_evidence(details)
        if self.max_age is not None and facts.at - occurred_at(event) > self.max_age:
            return CriterionResult(
                self.name,
                False,
                f"{self.name} recorded at {occurred_at(event).isoformat()}, older than "
                f"{self.max_age}",
            )
        result = self._results.get(event.seq)
        if result is None:
            result = CriterionResult(self._name, True, self._held, (event.seq,))
            if len(self._results) < _MAX_SHARED_RESULTS:
                self._results[event.seq] = result
        return result

    def _without_evidence(self, details: Mapping[str, Any]) -> CriterionResult:
        absent = [
            key
            for key in self.evidence
            if (value := details.get(key)) is None or (not value and _is_sized(value))
        ]
        return CriterionResult(
            self.name,
            False,
            f"{self.name} recorded without evidence {', '.join(map(repr, absent))}",
        )


def _is_sized(value: Any) -> bool:
    """Whether an evidence value is text, a list or a mapping: those are missing when empty.

    Null is always missing; ``0`` and ``False`` are values. An empty mapping is no evidence,
    whatever mapping type holds it (recorded evidence is a read-only ``dict`` subclass).
    """
    return isinstance(value, (str, tuple, list, Mapping))


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
OPERATORS = ("exists", *_COMPARISONS, "in")


_DECIMAL = Decimal(0)


def _mixes_bool(observed: Any, expected: Any) -> bool:
    """Whether a boolean meets a number: ``True`` is not ``1`` to a gate."""
    return isinstance(observed, bool) is not isinstance(expected, bool) and isinstance(
        observed if isinstance(expected, bool) else expected, (int, float, Decimal)
    )


def _coerce(observed: Any, expected: Any) -> Any:
    """Bring ``expected`` to the type of ``observed`` where that is unambiguous."""
    if isinstance(observed, Decimal) and isinstance(expected, (int, float, str)):
        try:
            return Decimal(str(expected))
        except InvalidOperation:
            return expected
    if isinstance(observed, date) and isinstance(expected, str):
        try:
            return date.fromisoformat(expected)
        except ValueError:
            return expected
    return expected


@attrs.frozen(slots=True)
class FieldCheck(Criterion):
    """A field of the opportunity satisfies a comparison.

    ``field`` is a custom field set with ``set_field``, or one of the built-ins ``amount`` and
    ``close_date``. ``op`` is one of ``exists``, ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``,
    ``in`` (``value`` is then a list).
    """

    kind: ClassVar[str] = "field"
    field: str
    op: str
    value: Any = None
    _name: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    _held: CriterionResult = attrs.field(init=False, eq=False, repr=False, hash=False)
    # ``value`` brought to Decimal once (amounts are Decimals), not on every evaluation.
    _decimal_value: Any = attrs.field(init=False, eq=False, repr=False, hash=False)
    _compare: Callable[[Any, Any], bool] | None = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if self.op not in OPERATORS:
            msg = f"unknown operator {self.op!r}; use one of {', '.join(OPERATORS)}"
            raise ValueError(msg)
        if self.op != "exists" and self.value is None:
            msg = f"{self.field} {self.op} needs a value; to test that a field is set use 'exists'"
            raise ValueError(msg)
        name = (
            f"{self.field} is set"
            if self.op == "exists"
            else f"{self.field} {self.op} {self.value!r}"
        )
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_held", CriterionResult(name, True, f"{name} holds"))
        object.__setattr__(self, "_decimal_value", _coerce(_DECIMAL, self.value))
        object.__setattr__(self, "_compare", _COMPARISONS.get(self.op))

    @property
    def name(self) -> str:
        """E.g. ``amount >= 1000``."""
        return self._name

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when the field is set and the comparison is true; unset fields never hold."""
        if self.field == "amount":
            observed: Any = facts.amount
        elif self.field == "close_date":
            observed = facts.close_date
        else:
            observed = facts.fields.get(self.field)
        if observed is None:
            return CriterionResult(self.name, False, f"{self.field} is not set")
        compare = self._compare
        if compare is None and self.op == "exists":
            return self._held
        try:
            if compare is None:  # "in"
                options = self.value if isinstance(self.value, (list, tuple)) else (self.value,)
                holds = any(
                    observed == _coerce(observed, option) and not _mixes_bool(observed, option)
                    for option in options
                )
            else:
                if isinstance(observed, Decimal):
                    expected = self._decimal_value
                elif isinstance(observed, date):
                    expected = _coerce(observed, self.value)
                else:
                    expected = self.value
                if (observed.__class__ is bool or expected.__class__ is bool) and _mixes_bool(
                    observed, expected
                ):
                    holds = False  # a boolean is not a number: such a comparison cannot hold
                else:
                    holds = bool(compare(observed, expected))
        except (TypeError, ArithmeticError):  # e.g. Decimal vs NaN raises InvalidOperation
            return CriterionResult(
                self.name,
                False,
                f"{self.field} is {observed!r}, which cannot be compared with {self.value!r}",
            )
        if holds:
            return self._held
        return CriterionResult(self.name, False, f"{self.field} is {observed!r}, needs {self.name}")


@attrs.frozen(slots=True)
class ActivityCount(Criterion):
    """At least ``at_least`` activities of type ``activity``, optionally since stage entry."""

    kind: ClassVar[str] = "activities"
    activity: str
    at_least: int = 1
    since_stage_entry: bool = False
    _name: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    # Results that hold depend only on the count and the satisfying seqs: shared, not rebuilt.
    _results: dict[tuple[int, tuple[int, ...]], CriterionResult] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        since = " since stage entry" if self.since_stage_entry else ""
        object.__setattr__(self, "_name", f"{self.at_least} x {self.activity!r}{since}")
        object.__setattr__(self, "_results", {})

    @property
    def name(self) -> str:
        """E.g. ``2 x 'meeting' since stage entry``."""
        return self._name

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when enough matching activities were logged."""
        activity = self.activity
        if self.since_stage_entry and facts.stage_entered_at is not None:
            since = facts.stage_entered_at
            seqs = [
                event.seq
                for event in facts.activities
                if event.subject == activity and occurred_at(event) >= since
            ]
        else:
            seqs = []
            for event in facts.activities:  # a loop: a list comprehension is one more call
                if event.subject == activity:
                    seqs.append(event.seq)
        count = len(seqs)
        if count >= self.at_least:
            key = (count, tuple(seqs[-self.at_least :]))
            result = self._results.get(key)
            if result is None:
                result = CriterionResult(self._name, True, f"{count} x {activity!r} logged", key[1])
                if len(self._results) < _MAX_SHARED_RESULTS:
                    self._results[key] = result
            return result
        unmet = self._results.get((count, ()))
        if unmet is None:
            since_text = " since stage entry" if self.since_stage_entry else ""
            unmet = CriterionResult(
                self._name,
                False,
                f"{count} of {self.at_least} x {self.activity!r} logged{since_text}",
            )
            self._results[count, ()] = unmet  # count < at_least: a handful of entries
        return unmet


@attrs.frozen(slots=True)
class Approval(Criterion):
    """Someone in ``role`` has approved the opportunity."""

    kind: ClassVar[str] = "approval"
    role: str
    _name: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    _missing: CriterionResult = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_name", f"approval by {self.role!r}")
        object.__setattr__(
            self, "_missing", CriterionResult(self._name, False, f"no approval by {self.role!r}")
        )

    @property
    def name(self) -> str:
        """E.g. ``approval by 'finance'``."""
        return self._name

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when an approval by the role was recorded."""
        event = facts.approvals.get(self.role)
        if event is None:
            return self._missing
        return CriterionResult(
            self._name, True, f"approved by {event.actor!r} as {self.role!r}", (event.seq,)
        )


@attrs.frozen(slots=True)
class AllOf(Criterion):
    """Every part holds."""

    kind: ClassVar[str] = "all_of"
    criteria: tuple[Criterion, ...] = attrs.field(converter=_criteria)

    @property
    def name(self) -> str:
        """``all of``."""
        return "all of"

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Evaluate every part (no short-circuit, so the report is complete)."""
        found = []
        unmet = 0
        for criterion in self.criteria:
            child = criterion.evaluate(facts)
            found.append(child)
            if not child.holds:
                unmet += 1
        children = tuple(found)
        if unmet:
            return _new(
                CriterionResult,
                ("all of", False, f"{unmet} of {len(children)} unmet", _NO_EVIDENCE, children),
            )
        return _new(CriterionResult, ("all of", True, "all hold", _NO_EVIDENCE, children))

    def report(self, target: str, facts: Facts) -> GateReport:
        """A top-level ``all_of`` reports its parts as the gate's criteria."""
        found = []
        for criterion in self.criteria:  # a loop: a list comprehension is one more call
            found.append(criterion.evaluate(facts))
        return _new(GateReport, (target, tuple(found)))

    def walk(self) -> tuple[Criterion, ...]:
        """This criterion and its parts."""
        return (self, *(inner for part in self.criteria for inner in part.walk()))

    def describe(self, *, top: bool = True) -> str:
        """The parts joined, bracketed unless ``top``."""
        text = " and ".join(part.describe(top=False) for part in self.criteria)
        return text if top or len(self.criteria) == 1 else f"({text})"


@attrs.frozen(slots=True)
class AnyOf(Criterion):
    """At least one part holds."""

    kind: ClassVar[str] = "any_of"
    criteria: tuple[Criterion, ...] = attrs.field(converter=_criteria)

    @property
    def name(self) -> str:
        """``any of``."""
        return "any of"

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Evaluate every part; hold when one does."""
        found = []
        holds = False
        for criterion in self.criteria:  # every part, so the report is complete
            child = criterion.evaluate(facts)
            found.append(child)
            if child.holds:
                holds = True
        children = tuple(found)
        if holds:
            return _new(CriterionResult, ("any of", True, "one holds", _NO_EVIDENCE, children))
        options = " | ".join(child.reason for child in children)
        return CriterionResult("any of", False, f"none holds: {options}", children=children)

    def walk(self) -> tuple[Criterion, ...]:
        """This criterion and its parts."""
        return (self, *(inner for part in self.criteria for inner in part.walk()))

    def describe(self, *, top: bool = True) -> str:
        """The parts joined, bracketed unless ``top``."""
        text = " or ".join(part.describe(top=False) for part in self.criteria)
        return text if top or len(self.criteria) == 1 else f"({text})"


@attrs.frozen(slots=True)
class Not(Criterion):
    """The part does not hold."""

    kind: ClassVar[str] = "not"
    criterion: Criterion

    @property
    def name(self) -> str:
        """E.g. ``not deliverable 'x'``."""
        return f"not {self.criterion.name}"

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when the part does not."""
        child = self.criterion.evaluate(facts)
        if child.holds:
            return CriterionResult(
                self.name, False, f"{child.criterion} holds: {child.reason}", children=(child,)
            )
        return CriterionResult(self.name, True, child.reason, children=(child,))

    def walk(self) -> tuple[Criterion, ...]:
        """This criterion and its part."""
        return (self, *self.criterion.walk())

    def describe(self, *, top: bool = True) -> str:  # noqa: ARG002
        """E.g. ``not approval by 'cfo'``."""
        return f"not {self.criterion.describe(top=False)}"


def _statuses(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _score(value: Any) -> float | None:
    """A recorded lead score as a number, or ``None`` when there is none (or it is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@attrs.frozen(slots=True)
class LeadQualification(Criterion):
    """Marketing's hand-off: the lead score in force is high enough and/or its status qualifies.

    The lead score in force is the ``lead_scored`` event that occurred last (see
    :attr:`Facts.lead`), whichever system recorded it. Statuses compare without regard to case
    (``MQL`` is ``mql``).

    Args:
        min_score: the score must be at least this.
        statuses: the status must be one of these (e.g. ``("MQL", "SQL")``).
        max_age: the score must have occurred at most this long before evaluation.

    Raises:
        ValueError: neither ``min_score`` nor ``statuses`` is given.

    >>> from datetime import datetime, timezone
    >>> LeadQualification(min_score=60).describe()
    'lead score >= 60'
    >>> at = datetime(2026, 3, 2, tzinfo=timezone.utc)
    >>> LeadQualification(min_score=60).evaluate(Facts(at=at)).reason
    'no lead score recorded'
    """

    kind: ClassVar[str] = "lead"
    min_score: float | None = None
    statuses: tuple[str, ...] = attrs.field(default=(), converter=_statuses)
    max_age: timedelta | None = None
    _name: str = attrs.field(init=False, eq=False, repr=False, hash=False)
    _folded: frozenset[str] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if self.min_score is None and not self.statuses:
            msg = "a lead criterion needs min_score, statuses or both"
            raise ValueError(msg)
        parts = []
        if self.min_score is not None:
            score = self.min_score
            shown = int(score) if float(score).is_integer() else score
            parts.append(f"lead score >= {shown}")
        if self.statuses:
            options = ", ".join(map(repr, self.statuses))
            parts.append(f"lead status in ({options})")
        object.__setattr__(self, "_name", " and ".join(parts))
        object.__setattr__(self, "_folded", frozenset(s.casefold() for s in self.statuses))

    @property
    def name(self) -> str:
        """E.g. ``lead score >= 60``."""
        return self._name

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Hold when the lead score in force meets the minimum and its status qualifies."""
        event = facts.lead
        if event is None:
            what = "lead score" if self.min_score is not None else "lead status"
            return CriterionResult(self._name, False, f"no {what} recorded")
        details = event.details if isinstance(event.details, Mapping) else _EMPTY
        by = f" (by {event.subject!r})"
        if self.max_age is not None and facts.at - occurred_at(event) > self.max_age:
            return CriterionResult(
                self._name,
                False,
                f"lead scored at {occurred_at(event).isoformat()}{by}, older than {self.max_age}",
            )
        held = []
        if self.min_score is not None:
            score = _score(details.get("score"))
            if score is None:
                return CriterionResult(self._name, False, f"the lead has no score{by}")
            shown = int(score) if score.is_integer() else score
            if score < self.min_score:
                return CriterionResult(
                    self._name, False, f"lead score is {shown}{by}, needs {self._name}"
                )
            held.append(f"lead score {shown}")
        if self.statuses:
            status = details.get("status")
            if not isinstance(status, str):
                return CriterionResult(self._name, False, f"the lead has no status{by}")
            if status.casefold() not in self._folded:
                options = ", ".join(map(repr, self.statuses))
                return CriterionResult(
                    self._name, False, f"lead status is {status!r}{by}, needs one of {options}"
                )
            held.append(f"status {status!r}")
        return CriterionResult(self._name, True, f"{', '.join(held)}{by}", (event.seq,))


PredicateFunction = Callable[[Facts], "bool | tuple[bool, str]"]


@attrs.frozen(slots=True)
class Predicate(Criterion):
    """A Python callable on :class:`Facts`, for processes defined in code.

    The callable returns a bool, or ``(holds, reason)``. A process that uses one is not
    serializable. If the callable raises, the criterion does not hold and the report says why.
    """

    kind: ClassVar[str] = "predicate"
    serializable: ClassVar[bool] = False
    label: str
    function: PredicateFunction = attrs.field(eq=False, hash=False)

    @property
    def name(self) -> str:
        """The label."""
        return self.label

    def evaluate(self, facts: Facts) -> CriterionResult:
        """Call the function; a raise becomes an unmet result that names the exception."""
        try:
            outcome = self.function(facts)
            if isinstance(outcome, tuple):
                holds, reason = bool(outcome[0]), str(outcome[1])
            else:
                holds = bool(outcome)
                reason = "holds" if holds else "does not hold"
        except Exception as exc:  # noqa: BLE001 - a gate reports, it never raises
            return CriterionResult(self.label, False, f"check raised {type(exc).__name__}: {exc}")
        return CriterionResult(self.label, holds, reason)
