r"""The stage graph of a process as a ``transitions`` state machine, built once per definition.

This is the only module that imports ``transitions``. :class:`Lifecycle` builds one
:class:`transitions.Machine` per :class:`~stagegate.process.Process` (``model=None``,
``auto_transitions=False``, so no ``to_<stage>`` trigger can bypass a gate) whose transitions are
the moves the policies allow and whose conditions are the gates. It also compiles the same
transitions into a read-only table of :class:`Move`\\ s: opportunities look their moves up in that
table (a dict lookup) instead of firing the machine, because a ``transitions`` trigger costs
about 10 microseconds while the table costs well under one, and both answer from the same
transitions. :meth:`Lifecycle.fire` fires the real machine on a small token, and the test suite
checks that both give the same decisions.

>>> from stagegate.templates import b2b
>>> life = b2b().lifecycle
>>> move = life.move("qualification", "needs_analysis")
>>> move.kind.value, move.checks
('advance', ('needs_analysis',))
>>> life.move("qualification", "contract") is None  # skipping is not allowed by default
True
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
from transitions import Machine  # noqa: TID251 - this module owns transitions

from stagegate.events import MoveKind

if TYPE_CHECKING:
    from stagegate.gates import Criterion
    from stagegate.process import Process, Stage

__all__ = ["Lifecycle", "Move"]


@attrs.frozen(slots=True)
class Move:
    """A stage change the process allows (gates aside).

    Attributes:
        source: the stage left.
        target: the stage entered.
        kind: advance, skip, backward, win, lose or reopen.
        trigger: the name of the machine trigger that performs it.
        checks: the stages whose gates must hold, in order (the target's last; for a skip, the
            stages passed over too when the policy says so).
        needs_reason: whether a reason must be given.
        gates: the gates of the ``checks`` stages, in the same order.
    """

    source: str
    target: str
    kind: MoveKind
    trigger: str
    checks: tuple[str, ...]
    needs_reason: bool
    gates: tuple[Criterion, ...] = attrs.field(default=(), eq=False, repr=False)


class _Token:
    """The small model the shared machine moves: a stage and whether the gates passed."""

    __slots__ = ("gates_passed", "state")

    def __init__(self, state: str, *, gates_passed: bool) -> None:
        self.state = state
        self.gates_passed = gates_passed


def _gates_passed(event_data: Any) -> bool:
    return bool(event_data.model.gates_passed)


class Lifecycle:
    """The state machine of one process, shared by all of its opportunities."""

    __slots__ = ("_advance", "_by_source", "_moves", "machine", "process")

    def __init__(self, process: Process) -> None:
        """Build the machine and the move table for ``process``."""
        self.process = process
        moves = _policy_moves(process)
        self.machine = Machine(
            model=None,
            states=list(process.stage_ids),
            initial=process.initial.id,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for move in moves:
            conditions: list[Any] = [_gates_passed] if move.checks else []
            self.machine.add_transition(
                move.trigger, move.source, move.target, conditions=conditions
            )
        table: dict[tuple[str, str], Move] = {}
        by_source: dict[str, list[Move]] = {stage_id: [] for stage_id in process.stage_ids}
        index = {move.trigger + "\0" + move.source: move for move in moves}
        for transition_source, transitions in self._machine_transitions():
            for trigger, dest in transitions:
                move = index[trigger + "\0" + transition_source]
                if move.target != dest:  # pragma: no cover - a bug in building the table
                    msg = f"machine and table disagree on {trigger!r}"
                    raise AssertionError(msg)
                table[(move.source, move.target)] = move
                by_source[move.source].append(move)
        self._moves: Mapping[tuple[str, str], Move] = MappingProxyType(table)
        self._by_source: Mapping[str, tuple[Move, ...]] = MappingProxyType(
            {
                source: tuple(sorted(found, key=lambda m: process.index(m.target)))
                for source, found in by_source.items()
            }
        )
        advance: dict[str, Move] = {}
        for stage_id in process.stage_ids:
            nxt = process.next_stage(stage_id)
            found = None if nxt is None else table.get((stage_id, nxt.id))
            if found is not None and found.kind in (MoveKind.ADVANCE, MoveKind.WIN):
                advance[stage_id] = found
        self._advance: Mapping[str, Move] = MappingProxyType(advance)

    def _machine_transitions(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The machine's transitions as (source, [(trigger, dest), ...])."""
        found: dict[str, list[tuple[str, str]]] = {}
        for transition in self.machine.get_transitions():
            found.setdefault(transition.source, []).append(
                (self._trigger_of(transition), str(transition.dest))
            )
        return list(found.items())

    def _trigger_of(self, transition: Any) -> str:
        for name, event in self.machine.events.items():
            if transition in event.transitions.get(transition.source, ()):
                return str(name)
        msg = "transition without a trigger"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def move(self, source: str, target: str) -> Move | None:
        """The move from ``source`` to ``target`` if the policies allow it, else ``None``."""
        return self._moves.get((source, target))

    def advance_from(self, source: str) -> Move | None:
        """The move ``advance`` makes from ``source`` (to the next stage), if there is one."""
        return self._advance.get(source)

    def moves_from(self, source: str) -> tuple[Move, ...]:
        """Every move the policies allow from ``source``, in process order of the target."""
        return self._by_source.get(source, ())

    def fire(self, state: str, trigger: str, *, gates_passed: bool) -> str | None:
        """Fire the real ``transitions`` machine on a token in ``state``.

        Returns the new state, or ``None`` when the trigger does not apply to ``state`` or its
        gate condition fails. Used to cross-check the move table; opportunities do not call it.
        """
        token = _Token(state, gates_passed=gates_passed)
        event = self.machine.events.get(trigger)
        if event is None or not event.transitions.get(state):
            return None
        if not event.trigger(token):
            return None
        return str(token.state)

    def to_mermaid(self, *, language: str = "en") -> str:
        """Return the graph as Mermaid ``stateDiagram-v2`` text.

        Forward moves (advance, win) are labelled with the gate of the stage they enter; losses
        are drawn from every open stage. Skips, backward moves, reopenings and overrides are
        summarized in a note instead of drawn, so the diagram stays readable.
        """
        process = self.process
        lines = ["stateDiagram-v2", f"    %% {process.name} v{process.version}"]
        for stage in process.stages:
            label = stage.labels.get(language) or stage.label
            percent = round(stage.probability * 100)
            lines.append(f'    state "{_escape(label)} ({percent}%)" as {_node(stage.id)}')
        lines.append(f"    [*] --> {_node(process.initial.id)}")
        for stage in process.stages:
            for move in self.moves_from(stage.id):
                if move.kind in (MoveKind.ADVANCE, MoveKind.WIN, MoveKind.LOSE):
                    text = _edge_label(process.stage(move.target), move)
                    lines.append(f"    {_node(move.source)} --> {_node(move.target)}: {text}")
        for stage in (*process.won_stages, *process.lost_stages):
            lines.append(f"    {_node(stage.id)} --> [*]")
        policies = process.policies
        rules = [
            f"skip forward: {'allowed' if policies.allow_skip else 'not allowed'}",
            "move back: "
            + (
                ("allowed with a reason" if policies.backward_needs_reason else "allowed")
                if policies.allow_backward
                else "not allowed"
            ),
            f"reopen a closed deal: {'with a reason' if policies.allow_reopen else 'never'}",
            f"override an unmet gate: {'with a reason' if policies.allow_override else 'never'}",
        ]
        lines.append(f"    note right of {_node(process.initial.id)}")
        lines.extend(f"        {rule}" for rule in rules)
        lines.append("    end note")
        return "\n".join(lines) + "\n"


def _node(stage_id: str) -> str:
    return "s_" + "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stage_id)


def _escape(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def _edge_label(target: Stage, move: Move) -> str:
    if move.kind is MoveKind.LOSE:
        return "lose (reason)"
    if target.gate is None:
        return str(move.kind.value)
    return f"{move.kind.value} [{_escape(_gate_summary(target))}]"


def _gate_summary(stage: Stage) -> str:
    return "" if stage.gate is None else stage.gate.describe()


def _gates(process: Process, checks: tuple[str, ...]) -> tuple[Criterion, ...]:
    found = []
    for stage_id in checks:
        gate = process.stage(stage_id).gate
        if gate is not None:
            found.append(gate)
    return tuple(found)


def _policy_moves(process: Process) -> list[Move]:
    from stagegate.process import StageKind  # noqa: PLC0415 - process imports this module lazily

    policies = process.policies
    stages = process.stages
    moves: list[Move] = []
    for i, source in enumerate(stages):
        if source.kind is StageKind.OPEN:
            forward = [k for k in range(i + 1, len(stages)) if stages[k].kind is not StageKind.LOST]
            for position, k in enumerate(forward):
                target = stages[k]
                if position > 0 and not policies.allow_skip:
                    break
                if target.kind is StageKind.WON:
                    kind = MoveKind.WIN
                else:
                    kind = MoveKind.ADVANCE if position == 0 else MoveKind.SKIP
                passed = [
                    stages[p].id
                    for p in forward[:position]
                    if policies.skip_checks_passed_gates and stages[p].gate is not None
                ]
                checks = (*passed, target.id) if target.gate is not None else tuple(passed)
                moves.append(
                    Move(
                        source.id,
                        target.id,
                        kind,
                        f"{kind.value}>{target.id}",
                        checks,
                        False,
                        _gates(process, checks),
                    )
                )
            if policies.allow_backward:
                for k in range(i):
                    target = stages[k]
                    if target.kind is StageKind.OPEN:
                        moves.append(
                            Move(
                                source.id,
                                target.id,
                                MoveKind.BACKWARD,
                                f"backward>{target.id}",
                                (),
                                policies.backward_needs_reason,
                            )
                        )
            for target in stages:
                if target.kind is StageKind.LOST:
                    checks = (target.id,) if target.gate is not None else ()
                    moves.append(
                        Move(
                            source.id,
                            target.id,
                            MoveKind.LOSE,
                            f"lose>{target.id}",
                            checks,
                            True,
                            _gates(process, checks),
                        )
                    )
        elif policies.allow_reopen:
            for target in stages:
                if target.kind is StageKind.OPEN:
                    moves.append(
                        Move(source.id, target.id, MoveKind.REOPEN, f"reopen>{target.id}", (), True)
                    )
    moves.sort(key=lambda m: (process.index(m.source), process.index(m.target)))
    return moves
