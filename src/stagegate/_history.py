"""Outside history: stage changes imported from another system, and moves between versions.

Neither passes a gate. ``record_history`` records a stage change another system made (as
``imported``: never checked against gates or policies); ``migrate`` moves an open deal to
another version of its process, in the place it was, its history left as it was recorded;
:func:`in_current_names` reads a migrated log in the stage names of the version it ends in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from stagegate import _arguments as arguments
from stagegate._moves import StageMoves
from stagegate._replay import migration_target
from stagegate.errors import InvalidCommandError, MoveNotAllowedError, UnknownStageError, cut
from stagegate.events import Event, EventKind, MoveKind, freeze, recorded_event
from stagegate.process import Process

__all__ = ["HistoryCommands", "in_current_names"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_MIGRATED = EventKind.MIGRATED


def in_current_names(events: list[Event] | tuple[Event, ...]) -> list[Event] | tuple[Event, ...]:
    """A log with the stages of events before its migrations renamed to the names in force now.

    Each ``migrated`` event's mapping takes the stages of the version it left to the version it
    entered; composed from the last migration back, every event's ``stage`` and ``from_stage``
    read as stages of the version the log ends in (for durations and other per-deal figures).
    A log without migrations is returned as it is.
    """
    if not any(event.kind is _MIGRATED for event in events):
        return events
    mapping: dict[str, str] = {}
    out: list[Event] = []
    for event in reversed(events):
        stage, before = event.stage, event.from_stage
        if mapping and (stage in mapping or (before is not None and before in mapping)):
            event = attrs.evolve(  # noqa: PLW2901 - the renamed copy replaces it
                event,
                stage=mapping.get(stage, stage),
                from_stage=None if before is None else mapping.get(before, before),
                digest=None,
            )
        out.append(event)
        if event.kind is _MIGRATED:
            step = (event.details or _EMPTY).get("mapping") or _EMPTY
            composed = {old: mapping.get(new, new) for old, new in step.items()}
            for old, new in mapping.items():
                composed.setdefault(old, new)
            mapping = {old: new for old, new in composed.items() if old != new}
    out.reverse()
    return out


class HistoryCommands(StageMoves):
    """The commands of :class:`~stagegate.opportunity.Opportunity` for imports and migrations."""

    __slots__ = ()

    def record_history(
        self, stage: str, *, at: datetime, actor: str, reason: str | None = None
    ) -> Event:
        """Record a stage change taken from another system's history (an import).

        Such changes are recorded as :attr:`~stagegate.events.MoveKind.IMPORTED`: never checked
        against gates or policies, and never presented as gate-approved.

        Raises:
            UnknownStageError: no such stage.
            MoveNotAllowedError: the opportunity is already in that stage.
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        process = self._process
        if stage not in process:
            raise UnknownStageError(stage, process.stage_ids, process=process.name)
        if stage == self._stage:
            raise MoveNotAllowedError(
                self._stage, stage, "the opportunity is already there", self._allowed_targets()
            )
        why = arguments.reason(reason, required=False, what="an imported change")
        return self._record(
            EventKind.STAGE_CHANGED,
            instant,
            who,
            stage=stage,
            from_stage=self._stage,
            move=MoveKind.IMPORTED,
            reason=why,
        )

    def migrate(
        self,
        process: Process,
        *,
        at: datetime,
        actor: str,
        mapping: Mapping[str, str] | None = None,
        deliverables: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> Event:
        """Move this open deal to another version of its process, recorded as ``migrated``.

        The deal keeps its place: it is in the stage ``mapping`` names for its current stage
        (else the new version's :attr:`~stagegate.process.Process.renamed` map names, else the
        stage of the same id), without a stage change, a gate check or a new stage-entry
        instant. Its history stays as it was, checked against the old version on replay.
        ``deliverables`` renames recorded deliverables (old id to new id) for the new gates.

        Raises:
            InvalidCommandError: ``process`` is not another version of this deal's process, the
                deal is closed (closed deals keep their version), or the current stage has no
                open place in the new version (map it).
        """
        instant = self._instant(at)
        who = arguments.actor(actor)
        before = self._process
        if not isinstance(process, Process) or process.name != before.name:
            raise InvalidCommandError(
                f"a deal of process {before.name!r} migrates to another version of it, got "
                f"{cut(repr(process))}"
            )
        if process.version == before.version:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is in version {process.version!r} already; give the "
                "new definition another version"
            )
        if self.is_closed:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is closed ({self._stage!r}); closed deals keep the "
                "version they were closed in"
            )
        stages = dict(arguments.mapping(mapping or {}, "mapping"))
        renamed = dict(arguments.mapping(deliverables or {}, "deliverables"))
        for key, value in (*stages.items(), *renamed.items()):
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidCommandError(
                    f"a mapping takes old ids to new ids (text), got {cut(repr(key))}: "
                    f"{cut(repr(value))}"
                )
        target = migration_target(self._stage, process, stages)
        if target is None or not process.stage(target).is_open:
            raise InvalidCommandError(
                f"opportunity {self._id!r} is in {self._stage!r}, which version "
                f"{process.version!r} does not have as an open stage; map it to one, e.g. "
                f"mapping={{{self._stage!r}: {process.open_stages[0].id!r}}}"
            )
        why = arguments.reason(reason, required=False, what="a migration")
        details: dict[str, Any] = {
            "from_version": before.version,
            "from_stage": self._stage,
            "mapping": {**process.renamed, **stages},
        }
        if renamed:
            details["deliverables"] = renamed
        event = recorded_event(
            self._id,
            len(self._events) + 1,
            _MIGRATED,
            instant,
            who,
            target,
            process.name,
            process.version,
            None,
            None,
            why,
            None,
            self._amount,
            self._close_date,
            None,
            freeze(details),
        )
        self._earlier = (*self._earlier, before)
        self._process = process
        self._apply(event)
        return event
