"""Stage moves: which move a command means, whether its gates hold, and entering the stage.

The plumbing under the stage commands of :class:`~stagegate.opportunity.Opportunity`
(``advance``, ``move_to``, ``win``, ``lose``, ``reopen``, ``override``): a target is looked up
among the moves the policies allow (:class:`~stagegate.lifecycle.Move`), explained when there is
none, checked for the kind and the reason it needs, and its gates evaluated as one
:class:`~stagegate.gates.GateReport` before the ``stage_changed`` event is recorded. Replay
evaluates the gates of every replayed move the same way (:meth:`StageMoves._report`).
"""

from __future__ import annotations

from datetime import datetime

from stagegate import _arguments as arguments
from stagegate._state import OpportunityState
from stagegate.errors import (
    GateNotMetError,
    InvalidCommandError,
    MoveNotAllowedError,
    UnknownStageError,
)
from stagegate.events import Event, EventKind, MoveKind, recorded_event
from stagegate.gates import CriterionResult, GateReport
from stagegate.lifecycle import Move
from stagegate.process import StageKind

__all__ = ["StageMoves"]

_STAGE_CHANGED = EventKind.STAGE_CHANGED


class StageMoves(OpportunityState):
    """Finding, explaining, checking and entering a stage move, for commands and replay."""

    __slots__ = ()

    def _report(self, move: Move, at: datetime) -> GateReport:
        """Evaluate the gates a move checks, as one report for its target."""
        if not move.checks:
            return GateReport(move.target)
        facts = self._facts(at)
        if len(move.gates) == 1:
            return move.gates[0].report(move.target, facts)
        results: list[CriterionResult] = []
        for stage_id, gate in zip(move.checks, move.gates, strict=True):
            if stage_id == move.target:
                results.extend(gate.report(stage_id, facts).results)
            else:
                inner = gate.report(stage_id, facts)
                results.append(
                    CriterionResult(
                        f"gate of passed stage {stage_id!r}",
                        inner.passed,
                        "met" if inner.passed else "unmet: " + "; ".join(inner.missing),
                        children=inner.results,
                    )
                )
        return GateReport(move.target, tuple(results))

    def _allowed_targets(self) -> tuple[str, ...]:
        return tuple(m.target for m in self._process.lifecycle.moves_from(self._stage))

    def _find_move(self, target: str) -> Move:
        process = self._process
        if target not in process:
            raise UnknownStageError(target, process.stage_ids, process=process.name)
        if target == self._stage:
            raise MoveNotAllowedError(
                self._stage, target, "the opportunity is already there", self._allowed_targets()
            )
        move = process.lifecycle.move(self._stage, target)
        if move is None:
            raise MoveNotAllowedError(
                self._stage, target, self._why_not(target), self._allowed_targets()
            )
        return move

    def _why_not(self, target: str) -> str:
        process = self._process
        source, policies = process.stage(self._stage), process.policies
        goal = process.stage(target)
        if source.kind is not StageKind.OPEN:
            if goal.kind is not StageKind.OPEN:
                return f"the opportunity is closed ({source.kind.value}); reopen it first"
            return "the policy does not allow reopening closed deals"
        if process.index(target) < process.index(self._stage):
            if goal.kind is not StageKind.OPEN:  # pragma: no cover - closed stages come last
                return "that stage cannot be entered from here"
            return "the policy does not allow moving backward"
        if not policies.allow_skip:
            return "the policy does not allow skipping stages; advance one stage at a time"
        return "that stage cannot be entered from here"  # pragma: no cover

    def _change(
        self,
        target: str,
        *,
        at: datetime,
        actor: str,
        reason: str | None,
        kinds: frozenset[MoveKind] | None = None,
        override: bool = False,
    ) -> Event:
        instant = self._instant(at)
        who = arguments.actor(actor)
        if reason is not None and not isinstance(reason, str):
            raise InvalidCommandError(f"reason must be text, got {reason!r}")
        move = self._find_move(target)
        return self._perform(move, instant, who, reason=reason, kinds=kinds, override=override)

    def _perform(
        self,
        move: Move,
        instant: datetime,
        who: str,
        *,
        reason: str | None,
        kinds: frozenset[MoveKind] | None = None,
        override: bool = False,
    ) -> Event:
        target = move.target
        if kinds is not None and move.kind not in kinds:
            wanted = " or ".join(sorted(k.value for k in kinds))
            raise MoveNotAllowedError(
                self._stage,
                target,
                f"that is a {move.kind.value} move, not a {wanted}",
                self._allowed_targets(),
            )
        if override:
            if not self._process.policies.allow_override:
                raise MoveNotAllowedError(
                    self._stage,
                    target,
                    "the policy does not allow overriding gates",
                    self._allowed_targets(),
                )
            why = arguments.reason(reason, required=True, what="an override")
        elif reason is None and not move.needs_reason:
            why = None
        else:
            why = arguments.reason(
                reason, required=move.needs_reason, what=f"a {move.kind.value} move"
            )
        return self._enter(move, instant, who, why, override)

    def _enter(
        self, move: Move, instant: datetime, who: str, why: str | None, override: bool
    ) -> Event:
        """Check the move's gates (unless overridden), then record and apply the stage change."""
        report = self._report(move, instant)
        if not override and not report.passed:
            raise GateNotMetError(move.target, report)
        process = self._process
        event = recorded_event(
            self._id,
            len(self._events) + 1,
            _STAGE_CHANGED,
            instant,
            who,
            move.target,
            process.name,
            process.version,
            self._stage,
            MoveKind.OVERRIDE if override else move.kind,
            why,
            report if move.checks else None,
            self._amount,
            self._close_date,
            None,
            None,
        )
        self._apply(event)
        return event

    def _closed_from(self) -> str:
        """The open stage the opportunity was in when it last closed."""
        for event in reversed(self._events):
            if event.kind is EventKind.STAGE_CHANGED and event.from_stage is not None:
                if self._process.stage(event.from_stage).is_open:
                    return event.from_stage
                break
        return self._process.open_stages[-1].id
