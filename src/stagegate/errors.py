"""Every error stagegate raises: one base class, one subclass per thing that can go wrong.

Each subclass also inherits the builtin that fits (``ValueError``, ``LookupError``), builds its own
message naming the bad value and saying what to do, and keeps the data on attributes so that
programs need not parse messages. A command that raises leaves every object unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagegate.gates import GateReport

__all__ = [
    "ConcurrencyError",
    "DefinitionError",
    "EventLogError",
    "GateNotMetError",
    "InvalidCommandError",
    "InvalidTimestampError",
    "MoveNotAllowedError",
    "OutOfOrderError",
    "Problem",
    "StagegateError",
    "UnknownDeliverableError",
    "UnknownStageError",
    "cut",
]


MAX_ECHO = 300
"""Longest text (in characters) an error message echoes from its input before cutting it."""


class StagegateError(Exception):
    """Base class of every error raised by stagegate."""


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """Return ``text`` cut to about ``limit`` characters, its middle left out and counted.

    Error messages echo bad values; a 5 MB description must not become a 5 MB message. The
    start and the end are kept, because a message often says what was wrong at its end.

    >>> cut("a" * 500 + " is too long", 20)
    'aaaaaaaaaa... (492 characters left out) ...s too long'
    """
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}... ({len(text) - 2 * half} characters left out) ...{text[-half:]}"


class Problem:
    """One problem found in a definition or input: where it is, what is wrong, how severe.

    >>> Problem("stages[3].gate.all_of[1]", "unknown deliverable 'signed_nda'")
    Problem('stages[3].gate.all_of[1]', "unknown deliverable 'signed_nda'", 'error')
    """

    __slots__ = ("message", "path", "severity")

    def __init__(self, path: str, message: str, severity: str = "error") -> None:
        self.path, self.message, self.severity = cut(path, 1000), cut(message, 1000), severity

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __repr__(self) -> str:
        return f"Problem({self.path!r}, {self.message!r}, {self.severity!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (self.path, self.message, self.severity) == (
            other.path,
            other.message,
            other.severity,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.message, self.severity))


class DefinitionError(StagegateError, ValueError):
    """A process definition is invalid; ``problems`` lists every problem with its path."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "process definition") -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"invalid {source}: {count} problem{'s' if count != 1 else ''}\n{lines}\n"
            "fix each listed path and load the definition again"
        )


class InvalidTimestampError(StagegateError, ValueError):
    """An instant is naive, of the wrong type, unparseable, or otherwise unusable."""

    def __init__(self, value: Any, message: str) -> None:
        self.value = value
        super().__init__(message)


class OutOfOrderError(InvalidTimestampError):
    """A command's instant is earlier than the last recorded event of the opportunity."""

    def __init__(self, value: Any, last_at: Any, opportunity_id: str) -> None:
        self.last_at = last_at
        self.opportunity_id = opportunity_id
        super().__init__(
            value,
            f"at={value.isoformat()} is before the last event of opportunity {opportunity_id!r} "
            f"({last_at.isoformat()}); events are recorded in time order: pass an instant at or "
            "after the last event",
        )


class UnknownStageError(StagegateError, LookupError):
    """A stage id is not part of the process."""

    def __init__(self, stage: Any, known: Sequence[str], *, process: str = "") -> None:
        self.stage, self.known = stage, tuple(known)
        where = f" of process {process!r}" if process else ""
        super().__init__(f"unknown stage {stage!r}{where}; known stages: {', '.join(self.known)}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class UnknownDeliverableError(StagegateError, LookupError):
    """A deliverable id is not declared by any stage of the process."""

    def __init__(self, deliverable: Any, known: Sequence[str]) -> None:
        self.deliverable, self.known = deliverable, tuple(known)
        super().__init__(
            f"unknown deliverable {deliverable!r}; declared deliverables: "
            f"{', '.join(self.known) or '(none)'}; declare it in a stage's deliverables first"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidCommandError(StagegateError, ValueError):
    """A command's arguments are wrong: a missing reason, a wrong type, an out-of-range value."""


class MoveNotAllowedError(StagegateError, ValueError):
    """The process policy does not allow this stage change from the current stage.

    ``allowed`` lists the stage ids that can be entered now (gates aside).
    """

    def __init__(self, source: str, target: str, why: str, allowed: Sequence[str]) -> None:
        self.source, self.target, self.why, self.allowed = source, target, why, tuple(allowed)
        options = ", ".join(self.allowed) or "(none)"
        super().__init__(
            f"cannot move from {source!r} to {target!r}: {why}; moves allowed from {source!r}: "
            f"{options}"
        )


class GateNotMetError(StagegateError, ValueError):
    """The criteria that guard the target stage are not all met; ``report`` says which."""

    def __init__(self, target: str, report: GateReport) -> None:
        self.target, self.report = target, report
        missing = "; ".join(report.missing) or "the gate did not pass"
        super().__init__(
            f"cannot enter {target!r}: {missing}; record the missing evidence, "
            "or use override(..., reason=...) if the policy allows"
        )


class EventLogError(StagegateError, ValueError):
    """An event record or log is malformed, inconsistent, or belongs to another process.

    ``seq`` is the position of the offending event in its log (``None`` when the error is about
    the log as a whole or the event's own ``seq`` is unreadable), ``rule`` a short code of the
    rule it breaks (such as ``"gate_not_met"`` or ``"digest_mismatch"``; ``"malformed"`` for a
    record that cannot be read), and ``opportunity_id`` the opportunity, when known.

    >>> error = EventLogError("event 3 skips a stage", seq=3, rule="move_not_allowed")
    >>> error.seq, error.rule
    (3, 'move_not_allowed')
    """

    def __init__(
        self,
        message: str,
        *,
        seq: int | None = None,
        rule: str = "malformed",
        opportunity_id: str | None = None,
    ) -> None:
        self.seq, self.rule, self.opportunity_id = seq, rule, opportunity_id
        super().__init__(message)


class ConcurrencyError(StagegateError, RuntimeError):
    """Another writer appended to the same opportunity first; reload and retry."""

    def __init__(self, opportunity_id: str, expected_seq: int, actual_seq: int) -> None:
        self.opportunity_id = opportunity_id
        self.expected_seq, self.actual_seq = expected_seq, actual_seq
        super().__init__(
            f"opportunity {opportunity_id!r} has events up to seq {actual_seq}, "
            f"expected {expected_seq}: another writer appended first; reload it and retry"
        )
