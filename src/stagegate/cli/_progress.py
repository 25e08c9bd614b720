"""Progress bars on standard error for the long phases of ``import`` and ``report``.

One bar per phase (reading, checking, writing, computing, rendering) with the count, the rate
and an ETA. Nothing is drawn with ``--quiet``, with ``--json`` output, or when standard error
is not a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from stagegate._progress import Phases, Tick

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.progress import Progress, TaskID

__all__ = ["bars"]


class _Bars:
    """:class:`~stagegate._progress.Phases` drawn by rich: the previous phase is marked done."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._current: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> Tick:
        self.finish()
        task = self._progress.add_task(name, total=total)
        self._current = task

        def tick(done: int) -> None:
            self._progress.update(task, completed=done)

        return tick

    def finish(self) -> None:
        """Mark the current phase complete (a phase of unknown size ends at its last count)."""
        if self._current is None:
            return
        task = next(t for t in self._progress.tasks if t.id == self._current)
        end = task.total if task.total is not None else task.completed
        self._progress.update(self._current, total=end, completed=end)
        self._current = None


@contextmanager
def bars(*, quiet: bool = False) -> Iterator[Phases | None]:
    """Yield phases drawn on standard error, or ``None`` when nothing should be drawn."""
    from rich.console import Console  # noqa: PLC0415 - slow to import; check never needs it
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, highlight=False)
    if quiet or not console.is_terminal:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    drawn = _Bars(progress)
    with progress:
        yield drawn
        drawn.finish()
