"""Which stages are open, won or lost, their order, and their configured probabilities.

Analytics need to know, for every stage id, whether a deal in it is still open or has closed as
won or lost. That knowledge comes from a :class:`~stagegate.process.Process` (or any object
shaped like one: ``.stages`` whose items have ``.id``, ``.kind.value``, ``.probability`` and
``.max_days``) or from a plain mapping:

>>> o = Outcomes.of({"lead": "open", "demo": "open", "won": "won", "lost": "lost"})
>>> o.open, o.won, o.lost
(('lead', 'demo'), ('won',), ('lost',))
>>> o.kind("demo"), o.rank("won")
('open', 2)

A plain mapping gives the order in which it lists the stages; configured probabilities and
stall limits can be passed beside it:

>>> Outcomes.of({"a": "open", "w": "won"}, probabilities={"a": 0.3}).probability("a")
0.3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from stagegate.errors import StagegateError, UnknownStageError

__all__ = ["KINDS", "AnalyticsError", "Outcomes", "OutcomesLike"]

KINDS = ("open", "won", "lost")
"""The three kinds of stage, and the three final outcomes of a deal."""


class AnalyticsError(StagegateError, ValueError):
    """The input of an analytics function is unusable: wrong shape, type, backend or argument."""


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(slots=True)
class Outcomes:
    """The stages analytics know: ordered ids, kinds, configured probabilities and limits.

    Build one with :meth:`of`. Stage order is the process order; it decides what counts as a
    forward or backward move and the order of funnel rows.

    Attributes:
        stages: every stage id, in process order.
        kinds: ``{stage_id: "open" | "won" | "lost"}``.
        probabilities: configured win probability per stage (may be partial).
        max_days: configured stall limit in days per stage (may be partial).
    """

    stages: tuple[str, ...]
    kinds: Mapping[str, str] = attrs.field(converter=_frozen_map)
    probabilities: Mapping[str, float] = attrs.field(converter=_frozen_map, factory=dict)
    max_days: Mapping[str, float] = attrs.field(converter=_frozen_map, factory=dict)

    @classmethod
    def of(
        cls,
        source: OutcomesLike,
        *,
        probabilities: Mapping[str, float] | None = None,
        max_days: Mapping[str, float] | None = None,
    ) -> Outcomes:
        """Return the outcomes of a process, a plain mapping, or an :class:`Outcomes` as is.

        Args:
            source: a ``Process`` (or duck-typed equivalent), a mapping ``{stage_id: kind}``
                in process order, or an :class:`Outcomes`.
            probabilities: configured probabilities that override the source's.
            max_days: configured stall limits (days) that override the source's.

        Raises:
            AnalyticsError: a kind is not one of open, won, lost; or no stage is open.
        """
        if isinstance(source, Outcomes) and probabilities is None and max_days is None:
            return source
        probs: dict[str, float] = {}
        kinds: dict[str, str]
        order: list[str]
        limits: dict[str, float] = {}
        if isinstance(source, Outcomes):
            kinds = dict(source.kinds)
            order = list(source.stages)
            probs.update(source.probabilities)
            limits.update(source.max_days)
        elif isinstance(source, Mapping):
            kinds = {str(k): str(getattr(v, "value", v)) for k, v in source.items()}
            order = list(kinds)
        elif hasattr(source, "stages"):
            kinds, order = {}, []
            for stage in source.stages:
                kinds[stage.id] = getattr(stage.kind, "value", stage.kind)
                order.append(stage.id)
                if getattr(stage, "probability", None) is not None:
                    probs[stage.id] = float(stage.probability)
                if getattr(stage, "max_days", None) is not None:
                    limits[stage.id] = float(stage.max_days)
        else:
            raise AnalyticsError(
                f"cannot read stage kinds from {type(source).__name__}; pass a Process or a "
                "mapping such as {'lead': 'open', 'won': 'won', 'lost': 'lost'}"
            )
        bad = {k: v for k, v in kinds.items() if v not in KINDS}
        if bad:
            raise AnalyticsError(
                f"unknown stage kinds {bad!r}; every stage must be 'open', 'won' or 'lost'"
            )
        if "open" not in kinds.values():
            raise AnalyticsError("no open stage: at least one stage must have kind 'open'")
        probs.update({k: float(v) for k, v in (probabilities or {}).items()})
        limits.update({k: float(v) for k, v in (max_days or {}).items()})
        return cls(tuple(order), kinds, probs, limits)

    def _of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(s for s in self.stages if self.kinds[s] == kind)

    @property
    def open(self) -> tuple[str, ...]:
        """Open stage ids, in order."""
        return self._of_kind("open")

    @property
    def won(self) -> tuple[str, ...]:
        """Won stage ids, in order."""
        return self._of_kind("won")

    @property
    def lost(self) -> tuple[str, ...]:
        """Lost stage ids, in order."""
        return self._of_kind("lost")

    def kind(self, stage: str) -> str:
        """Return ``"open"``, ``"won"`` or ``"lost"`` for a stage.

        Raises:
            UnknownStageError: the stage is not known.
        """
        try:
            return str(self.kinds[stage])
        except KeyError:
            raise UnknownStageError(stage, self.stages) from None

    def rank(self, stage: str) -> int:
        """Return the position of a stage in the process order.

        Raises:
            UnknownStageError: the stage is not known.
        """
        try:
            return self.stages.index(stage)
        except ValueError:
            raise UnknownStageError(stage, self.stages) from None

    def probability(self, stage: str) -> float | None:
        """Return the configured probability of a stage, or ``None`` if none is configured."""
        return self.probabilities.get(stage)

    def check(self, seen: Iterable[str]) -> None:
        """Raise if any stage id in ``seen`` is unknown.

        Raises:
            UnknownStageError: names the first unknown stage and lists the known ones.
        """
        for stage in sorted(set(seen) - set(self.stages)):
            raise UnknownStageError(stage, self.stages)


OutcomesLike = Any
"""A ``Process``, a duck-typed process, a mapping ``{stage_id: kind}``, or :class:`Outcomes`."""
