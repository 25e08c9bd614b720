"""The demo that `make demo` runs."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

from stagegate import Opportunity, demo


class TestDemo:
    def test_sample_deals_end_won_lost_and_open(self) -> None:
        won, lost, stuck = demo.drive_sample_deals()
        assert (won.is_won, lost.is_lost, stuck.is_closed) == (True, True, False)

    def test_sample_deals_replay_to_themselves(self) -> None:
        for deal in demo.drive_sample_deals():
            assert deal == Opportunity.replay(deal.process, deal.events)

    def test_sample_durations_add_up_to_the_cycle_time(self) -> None:
        won, _, _ = demo.drive_sample_deals()
        metrics = won.metrics(as_of=datetime(2026, 6, 1, tzinfo=timezone.utc))
        assert metrics.cycle_time == sum(metrics.stage_durations.values(), start=metrics.age * 0)

    def test_demo_prints_the_rejected_move_and_the_history(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "stagegate.demo"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert "cannot enter 'needs_analysis'" in result.stdout
        assert "log unchanged: 3 events" in result.stdout
        assert "contract          -> won" in result.stdout
