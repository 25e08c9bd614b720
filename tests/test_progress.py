"""Progress phases: the domain protocol and the bars the command line draws."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from stagegate._progress import phase_of
from stagegate.cli import _progress


def test_no_phases_means_a_no_op_tick() -> None:
    tick = phase_of(None, "reading", 5)
    assert tick(3) is None


def test_bars_are_silent_when_quiet_or_not_on_a_terminal() -> None:
    with _progress.bars(quiet=True) as phases:
        assert phases is None
    with _progress.bars() as phases:  # pytest captures stderr: not a terminal
        assert phases is None


def test_each_phase_ends_complete_when_the_next_starts() -> None:
    out = io.StringIO()
    progress = Progress(console=Console(file=out, force_terminal=True, width=80))
    drawn = _progress._Bars(progress)
    with progress:
        tick = phase_of(drawn, "reading", 100)
        tick(40)
        tick = phase_of(drawn, "writing")  # size unknown: ends at its last count
        tick(7)
        drawn.finish()
        drawn.finish()  # finishing twice is harmless
    assert [(t.description, t.total, t.completed) for t in progress.tasks] == [
        ("reading", 100, 100),
        ("writing", 7, 7),
    ]
    assert "reading" in out.getvalue()
