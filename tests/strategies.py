"""Shared hypothesis strategies, fixed instants and command vocabularies for the core tests."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from stagegate import (
    ActivityCount,
    AllOf,
    AnyOf,
    Approval,
    Criterion,
    CriterionResult,
    Deliverable,
    Event,
    EventKind,
    Facts,
    FieldCheck,
    GateReport,
    InvalidCommandError,
    InvalidTimestampError,
    MoveKind,
    MoveNotAllowedError,
    Not,
    Opportunity,
    OutOfOrderError,
    Predicate,
    Process,
    StagegateError,
    UnknownDeliverableError,
    UnknownStageError,
    b2b,
    process_from_dict,
    process_to_dict,
)

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The fixed instant every test opportunity opens at (never the wall clock)."""
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)), BERLIN)

# -- plain values ---------------------------------------------------------------------------

texts = st.text(min_size=1, max_size=12)
ids = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)

instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.just(UTC),
)
"""Aware instants in UTC."""

zoned_instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)
"""Aware instants in several zones, daylight-saving ones included."""

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))

decimals = st.decimals(
    min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=2
)

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)

# -- gates ----------------------------------------------------------------------------------

criterion_results = st.recursive(
    st.builds(
        CriterionResult,
        texts,
        st.booleans(),
        texts,
        st.lists(st.integers(1, 500), max_size=3).map(tuple),
    ),
    lambda inner: st.builds(
        CriterionResult,
        st.sampled_from(["all of", "any of", "not x"]),
        st.booleans(),
        texts,
        st.just(()),
        st.lists(inner, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=6,
)
gate_reports = st.builds(GateReport, ids, st.lists(criterion_results, max_size=3).map(tuple))

FIELD_VALUES = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["NaN", "sNaN", "Infinity", "2026-01-05", "x", "1e3"]),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3)), max_size=3).map(tuple),
    st.none(),
    st.booleans(),
)


DATA_FIELD_VALUES = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.booleans(),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3)), max_size=3).map(tuple),
)
"""Field-check values a definition document can hold (no null, no NaN)."""


def _field_check(field: str, op: str, value: Any) -> FieldCheck:
    return FieldCheck(field, op, None if op == "exists" else value)


def _raising(facts: Facts) -> bool:
    msg = "boom"
    raise RuntimeError(msg)


def criteria(
    deliverables: tuple[str, ...] = ("nda", "proposal"),
    activities: tuple[str, ...] = ("call", "meeting"),
    fields: tuple[str, ...] = ("amount", "close_date", "discount", "region"),
    *,
    predicates: bool = False,
    data_only: bool = False,
) -> st.SearchStrategy[Criterion]:
    """Arbitrary (nested) gate criteria over the given names.

    With ``data_only``, only criteria a definition document can express exactly.
    """
    leaves: list[st.SearchStrategy[Criterion]] = [
        st.builds(
            Deliverable,
            st.sampled_from(deliverables),
            st.lists(st.sampled_from(["document", "signed_by", "contact"]), max_size=2).map(tuple),
            st.one_of(st.none(), st.timedeltas(timedelta(seconds=1), timedelta(days=400))),
        ),
        st.builds(
            _field_check,
            st.sampled_from(fields),
            st.sampled_from(["exists", "==", "!=", "<", "<=", ">", ">=", "in"]),
            (DATA_FIELD_VALUES if data_only else FIELD_VALUES).filter(lambda v: v is not None),
        ),
        st.builds(ActivityCount, st.sampled_from(activities), st.integers(1, 3), st.booleans()),
        st.builds(Approval, st.sampled_from(["finance", "deal_desk"])),
    ]
    if predicates:
        leaves.append(
            st.sampled_from(
                [
                    Predicate("always", lambda facts: True),
                    Predicate("reasoned", lambda facts: (False, "because")),
                    Predicate("raises", _raising),
                    Predicate("odd tuple", lambda facts: (True,)),
                    Predicate("nan", lambda facts: math.nan),
                ]
            )
        )
    return st.recursive(
        st.one_of(leaves),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs))),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
            inner.map(Not),
        ),
        max_leaves=8,
    )


@st.composite
def _recorded(draw: st.DrawFn, kind: EventKind, subject: st.SearchStrategy[str]) -> Event:
    return Event(
        "opp",
        draw(st.integers(1, 100)),
        kind,
        draw(instants),
        draw(texts),
        "stage",
        "p",
        "1",
        subject=draw(subject),
        details=draw(st.one_of(st.none(), json_objects.map(_freeze), st.just(()))),
    )


def _freeze(value: Any) -> Any:
    from stagegate.events import freeze

    return freeze(value)


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    """Arbitrary facts: anything missing, odd types in fields, events with odd details."""
    names = st.sampled_from(["nda", "proposal", "other"])
    deliverables = draw(
        st.dictionaries(names, _recorded(EventKind.DELIVERABLE_RECORDED, names), max_size=3)
    )
    activities = draw(
        st.lists(
            _recorded(EventKind.ACTIVITY_LOGGED, st.sampled_from(["call", "meeting", "x"])),
            max_size=4,
        )
    )
    roles = st.sampled_from(["finance", "deal_desk"])
    approvals = draw(
        st.dictionaries(roles, _recorded(EventKind.APPROVAL_RECORDED, roles), max_size=2)
    )
    return Facts(
        at=draw(instants),
        stage_entered_at=draw(st.one_of(st.none(), instants)),
        deliverables=deliverables,
        activities=tuple(activities),
        approvals=approvals,
        fields=draw(st.dictionaries(st.sampled_from(["discount", "region"]), FIELD_VALUES)),
        amount=draw(
            st.one_of(
                st.none(),
                st.decimals(allow_nan=True, allow_infinity=True),
                st.integers(),
                st.floats(),
            )
        ),
        close_date=draw(st.one_of(st.none(), dates)),
    )


# -- events ---------------------------------------------------------------------------------


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Arbitrary well-typed events (not necessarily a consistent log)."""
    kind = draw(st.sampled_from(EventKind))
    stage_change = kind is EventKind.STAGE_CHANGED
    return Event(
        opportunity_id=draw(texts),
        seq=draw(st.integers(1, 10**6)),
        kind=kind,
        at=draw(zoned_instants),
        actor=draw(texts),
        stage=draw(ids),
        process=draw(texts),
        process_version=draw(texts),
        from_stage=draw(ids) if stage_change else None,
        move=draw(st.sampled_from(MoveKind)) if stage_change else None,
        reason=draw(st.one_of(st.none(), st.text(max_size=20))),
        gate=draw(st.one_of(st.none(), gate_reports)),
        amount=draw(
            st.one_of(
                st.none(), decimals, st.decimals(min_value=0, allow_nan=False, allow_infinity=False)
            )
        ),
        close_date=draw(st.one_of(st.none(), dates)),
        subject=draw(st.one_of(st.none(), texts)),
        details=draw(st.one_of(st.none(), json_objects.map(_freeze))),
    )


# -- processes ------------------------------------------------------------------------------


def process_with(base: Process | None = None, **policies: bool) -> Process:
    """The template (or ``base``) with some policies changed, renamed after them."""
    data = process_to_dict(base or b2b())
    data["policies"].update(policies)
    if policies:
        data["name"] = data["name"] + "-" + "-".join(sorted(k for k, v in policies.items() if v))
    return process_from_dict(data)


def skipping_process() -> Process:
    """The template with skipping allowed (passed gates still checked)."""
    return process_with(allow_skip=True)


def lax_process() -> Process:
    """Skipping without checking passed gates; no overrides, no reopening, reasonless moves back."""
    return process_with(
        allow_skip=True,
        skip_checks_passed_gates=False,
        allow_override=False,
        allow_reopen=False,
        backward_needs_reason=False,
    )


# -- commands -------------------------------------------------------------------------------

Command = tuple[str, tuple[Any, ...], dict[str, Any]]


def full_evidence(process: Process, deliverable: str) -> dict[str, Any]:
    """Evidence with every field the deliverable declares, non-empty."""
    return {key: f"{key}-value" for key in process.deliverables[deliverable].evidence}


def good_commands(process: Process) -> st.SearchStrategy[Command]:
    """Well-typed commands, each of which may be accepted or rejected by the state."""
    stage_ids = st.sampled_from(process.stage_ids)
    deliverable_ids = st.sampled_from(sorted(process.deliverables))
    declared = sorted({a.id for s in process.stages for a in s.activities})
    reasons = st.sampled_from(["budget cut", "customer asked", "went silent"])

    @st.composite
    def deliverable(draw: st.DrawFn) -> Command:
        did = draw(deliverable_ids)
        full = full_evidence(process, did)
        evidence = draw(
            st.one_of(
                st.just(full),
                st.just(full),
                st.none(),
                st.dictionaries(st.sampled_from(sorted(full) or ["x"]), st.sampled_from(["", "v"])),
            )
        )
        return ("record_deliverable", (did,), {"evidence": evidence})

    return st.one_of(
        deliverable(),
        deliverable(),
        st.tuples(
            st.just("log_activity"),
            st.sampled_from([*declared, "email"]).map(lambda a: (a,)),
            st.just({}),
        ),
        st.tuples(
            st.just("record_approval"),
            st.sampled_from(["deal_desk", "finance"]).map(lambda r: (r,)),
            st.just({}),
        ),
        st.tuples(
            st.just("set_field"),
            st.tuples(
                st.sampled_from(["discount_percent", "region"]),
                st.one_of(st.integers(0, 30), st.sampled_from(["emea", "apac"]), st.none()),
            ),
            st.just({}),
        ),
        st.just(("advance", (), {})),
        st.just(("advance", (), {})),
        st.tuples(
            st.just("move_to"),
            stage_ids.map(lambda s: (s,)),
            st.fixed_dictionaries({"reason": st.one_of(st.none(), reasons)}),
        ),
        st.just(("win", (), {})),
        st.tuples(st.just("lose"), st.just(()), st.fixed_dictionaries({"reason": reasons})),
        st.tuples(
            st.just("reopen"),
            st.just(()),
            st.fixed_dictionaries({"reason": reasons, "stage": st.one_of(st.none(), stage_ids)}),
        ),
        st.tuples(
            st.just("override"),
            stage_ids.map(lambda s: (s,)),
            st.fixed_dictionaries({"reason": reasons}),
        ),
        st.tuples(
            st.just("reschedule"),
            st.dates(date(2026, 1, 1), date(2027, 12, 31)).map(lambda d: (d,)),
            st.fixed_dictionaries({"reason": st.one_of(st.none(), reasons)}),
        ),
        st.tuples(
            st.just("change_amount"),
            st.one_of(decimals, st.integers(0, 10**6), st.sampled_from(["1500.50", 2500.25])).map(
                lambda a: (a,)
            ),
            st.just({}),
        ),
        st.tuples(st.just("record_history"), stage_ids.map(lambda s: (s,)), st.just({})),
        st.tuples(st.just("reassign"), owners.map(lambda o: (o,)), st.just({})),
        st.tuples(
            st.just("set_attribute"),
            st.tuples(attribute_names, st.one_of(st.none(), owners)),
            st.just({}),
        ),
    )


owners = st.sampled_from(["kim", "lee", "park", "Jo Ana", "정민"])
"""Deal owners (a few, so reassignments repeat and collide)."""
attribute_names = st.sampled_from(["team", "region", "lead_source"])
"""Segment attribute names."""


def run(opportunity: Opportunity, command: Command, at: datetime, actor: str = "ana") -> Event:
    """Apply ``command`` to ``opportunity`` at ``at``."""
    name, args, kwargs = command
    method: Callable[..., Event] = getattr(opportunity, name)
    return method(*args, at=at, actor=actor, **kwargs)


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


_NAIVE = datetime(2026, 6, 1, 12, 0)

BadCommand = Callable[[Opportunity, datetime], Event]


def _before(opportunity: Opportunity) -> datetime:
    return opportunity.last_at - timedelta(microseconds=1)


BAD_COMMANDS: dict[str, tuple[BadCommand, type[StagegateError], tuple[str, ...]]] = {
    "naive instant": (
        lambda o, at: o.log_activity("call", at=_NAIVE, actor="ana"),
        InvalidTimestampError,
        ("naive", "aware"),
    ),
    "instant given as text": (
        lambda o, at: o.log_activity("call", at="2026-06-01T12:00Z", actor="ana"),  # type: ignore[arg-type]
        InvalidTimestampError,
        ("must be a timezone-aware datetime",),
    ),
    "instant given as a date": (
        lambda o, at: o.advance(at=date(2026, 6, 1), actor="ana"),  # type: ignore[arg-type]
        InvalidTimestampError,
        ("must be a timezone-aware datetime",),
    ),
    "instant before the last event": (
        lambda o, at: o.record_approval("finance", at=_before(o), actor="ana"),
        OutOfOrderError,
        ("before the last event", "at or after"),
    ),
    "stage change before the last event": (
        lambda o, at: o.lose(at=_before(o), actor="ana", reason="gone"),
        OutOfOrderError,
        ("before the last event",),
    ),
    "unknown stage for move_to": (
        lambda o, at: o.move_to("closed_won", at=at, actor="ana", reason="x"),
        UnknownStageError,
        ("unknown stage 'closed_won'", "known stages"),
    ),
    "unknown stage for override": (
        lambda o, at: o.override("nowhere", at=at, actor="ana", reason="x"),
        UnknownStageError,
        ("unknown stage 'nowhere'",),
    ),
    "unknown stage for record_history": (
        lambda o, at: o.record_history("Qualification", at=at, actor="crm"),
        UnknownStageError,
        ("unknown stage 'Qualification'",),
    ),
    "stage of the wrong type": (
        lambda o, at: o.move_to(3, at=at, actor="ana"),  # type: ignore[arg-type]
        UnknownStageError,
        ("unknown stage 3",),
    ),
    "unknown deliverable": (
        lambda o, at: o.record_deliverable("signed_nda", at=at, actor="ana"),
        UnknownDeliverableError,
        ("unknown deliverable 'signed_nda'", "declare it"),
    ),
    "deliverable of the wrong type": (
        lambda o, at: o.record_deliverable(["lead_record"], at=at, actor="ana"),  # type: ignore[arg-type]
        InvalidCommandError,
        ("deliverable",),
    ),
    "evidence that is a list": (
        lambda o, at: o.record_deliverable(
            "lead_record",
            at=at,
            actor="ana",
            evidence=["contact"],  # type: ignore[arg-type]
        ),
        InvalidCommandError,
        ("evidence", "mapping"),
    ),
    "evidence with a non-text key": (
        lambda o, at: o.record_deliverable("lead_record", at=at, actor="ana", evidence={1: "x"}),  # type: ignore[dict-item]
        InvalidCommandError,
        ("non-text key", "text keys"),
    ),
    "evidence holding an object": (
        lambda o, at: o.record_deliverable(
            "lead_record", at=at, actor="ana", evidence={"contact": object()}
        ),
        InvalidCommandError,
        ("JSON values",),
    ),
    "evidence holding NaN": (
        lambda o, at: o.record_deliverable(
            "lead_record", at=at, actor="ana", evidence={"contact": math.nan}
        ),
        InvalidCommandError,
        ("finite",),
    ),
    "evidence nested 10,000 deep": (
        lambda o, at: o.record_deliverable(
            "lead_record", at=at, actor="ana", evidence={"contact": _deep(10_000)}
        ),
        InvalidCommandError,
        ("nested deeper",),
    ),
    "evidence that contains itself": (
        lambda o, at: o.record_deliverable("lead_record", at=at, actor="ana", evidence=_cyclic()),
        InvalidCommandError,
        ("nested deeper",),
    ),
    "activity details that are a list": (
        lambda o, at: o.log_activity("call", at=at, actor="ana", details=[1, 2]),  # type: ignore[arg-type]
        InvalidCommandError,
        ("details", "mapping"),
    ),
    "lose without a reason": (
        lambda o, at: o.lose(at=at, actor="ana", reason=""),
        InvalidCommandError,
        ("needs a reason", "reason="),
    ),
    "lose with a reason of the wrong type": (
        lambda o, at: o.lose(at=at, actor="ana", reason=42),  # type: ignore[arg-type]
        InvalidCommandError,
        ("reason must be text",),
    ),
    "override without a reason": (
        lambda o, at: o.override(
            o.process.lost_stages[0].id,
            at=at,
            actor="ana",
            reason=None,  # type: ignore[arg-type]
        ),
        StagegateError,
        (),
    ),
    "amount that is not a number": (
        lambda o, at: o.change_amount("twelve", at=at, actor="ana"),
        InvalidCommandError,
        ("amount", "not a number"),
    ),
    "amount that is a boolean": (
        lambda o, at: o.change_amount(True, at=at, actor="ana"),  # type: ignore[arg-type]
        InvalidCommandError,
        ("amount must be a number",),
    ),
    "negative amount": (
        lambda o, at: o.change_amount(-5, at=at, actor="ana"),
        InvalidCommandError,
        (">= 0",),
    ),
    "amount that is NaN": (
        lambda o, at: o.change_amount("NaN", at=at, actor="ana"),
        InvalidCommandError,
        ("finite",),
    ),
    "close date given as text": (
        lambda o, at: o.reschedule("2026-02-01", at=at, actor="ana"),  # type: ignore[arg-type]
        InvalidCommandError,
        ("calendar date",),
    ),
    "close date given as a datetime": (
        lambda o, at: o.reschedule(T0, at=at, actor="ana"),  # type: ignore[arg-type]
        InvalidCommandError,
        ("calendar date",),
    ),
    "missing actor": (
        lambda o, at: o.log_activity("call", at=at, actor=None),  # type: ignore[arg-type]
        InvalidCommandError,
        ("actor must be non-empty text",),
    ),
    "blank actor": (
        lambda o, at: o.advance(at=at, actor="   "),
        StagegateError,
        (),
    ),
    "reserved field name": (
        lambda o, at: o.set_field("amount", 5, at=at, actor="ana"),
        InvalidCommandError,
        ("not a custom field", "change_amount"),
    ),
    "empty field name": (
        lambda o, at: o.set_field("", 5, at=at, actor="ana"),
        InvalidCommandError,
        ("field name must be non-empty text",),
    ),
    "field value that is a set": (
        lambda o, at: o.set_field("tags", {"a", "b"}, at=at, actor="ana"),
        InvalidCommandError,
        ("JSON values",),
    ),
    "activity without a type": (
        lambda o, at: o.log_activity(None, at=at, actor="ana"),  # type: ignore[arg-type]
        InvalidCommandError,
        ("activity must be non-empty text",),
    ),
    "approval without a role": (
        lambda o, at: o.record_approval("", at=at, actor="ana"),
        InvalidCommandError,
        ("role must be non-empty text",),
    ),
    "move to the current stage": (
        lambda o, at: o.move_to(o.stage, at=at, actor="ana", reason="x"),
        MoveNotAllowedError,
        ("already there",),
    ),
    "win into a lost stage": (
        lambda o, at: o.win(at=at, actor="ana", stage=o.process.lost_stages[0].id),
        MoveNotAllowedError,
        ("cannot move",),
    ),
}
"""Commands that are wrong in every state: (call, expected error, key words of the message)."""


def with_changes(event: Event, **changes: Any) -> Event:
    """A copy of ``event`` with fields changed."""
    return attrs.evolve(event, **changes)


@st.composite
def opportunities(
    draw: st.DrawFn, process: Process | None = None, *, max_commands: int = 25
) -> Opportunity:
    """An opportunity after a random sequence of commands (rejected ones skipped)."""
    chosen = process if process is not None else draw(st.sampled_from(PROCESSES))
    opportunity = Opportunity.open(
        chosen,
        "opp-1",
        at=T0,
        actor="ana",
        amount=draw(st.one_of(st.none(), decimals)),
        close_date=draw(st.one_of(st.none(), st.dates(date(2026, 1, 1), date(2026, 12, 31)))),
    )
    at = T0
    for command in draw(st.lists(good_commands(chosen), max_size=max_commands)):
        at += draw(st.sampled_from([timedelta(0), timedelta(hours=3), timedelta(days=2)]))
        with contextlib.suppress(StagegateError):
            run(opportunity, command, at)
    return opportunity


PROCESSES: tuple[Process, ...] = (b2b(), skipping_process(), lax_process())
