"""How long work reports its progress: named phases with a count, without drawing anything.

Domain code (importers, the store, the report) takes an optional :class:`Phases` and calls
:meth:`Phases.phase` for each long step; the command line passes one that draws bars (see
``stagegate.cli._progress``), everything else passes nothing and pays nothing.

>>> seen = []
>>> class Recorder:
...     def phase(self, name, total=None):
...         seen.append((name, total))
...         return lambda done: seen.append(done)
>>> tick = phase_of(Recorder(), "reading", 10)
>>> tick(4); tick(10)
>>> seen
[('reading', 10), 4, 10]
>>> phase_of(None, "reading", 10)(3)  # no progress asked for: a no-op
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Phases", "Tick", "phase_of"]

Tick = Callable[[int], None]
"""Called with the number of units done so far in the current phase (monotonic)."""


class Phases(Protocol):
    """A receiver of progress: one call per phase, then ticks with the count done so far."""

    def phase(self, name: str, total: int | None = None) -> Tick:
        """Start phase *name* of *total* units (``None`` when unknown); return its tick.

        Phase names are the verbs of the work: ``"reading"``, ``"checking"``, ``"writing"``,
        ``"computing"``, ``"rendering"``.
        """


def _ignore(_done: int) -> None:
    """The tick of no progress at all."""


def phase_of(phases: Phases | None, name: str, total: int | None = None) -> Tick:
    """Start *name* on *phases*, or return a no-op tick when no progress is asked for."""
    if phases is None:
        return _ignore
    return phases.phase(name, total)
