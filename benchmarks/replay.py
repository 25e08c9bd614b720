"""Benchmark replay: microseconds per event to rebuild deals from their logs, verified.

Builds N deals (default 20,000) of the built-in b2b template driven from lead generation to won
with every gate met (23 events each: evidence, activities, a field, 7 stage changes), then
times ``Opportunity.replay`` over every log, unsealed and sealed (``stagegate.seal``; digests
checked), and ``verify``. Run it against another checkout with ``PYTHONPATH=that/src`` to
compare (a checkout without digests times the unsealed replay only).

Usage: python benchmarks/replay.py [--deals 20000] [--repeat 5]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from stagegate import Opportunity, b2b

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def build(n: int) -> list[tuple[Any, ...]]:
    """The logs of ``n`` deals driven to won with every gate met."""
    process = b2b()
    logs = []
    for i in range(n):
        at = T0 + timedelta(minutes=i)
        deal = Opportunity.open(process, f"deal-{i}", at=at, actor="bench", amount=10_000)
        for deliverable, spec in process.deliverables.items():
            evidence = dict.fromkeys(spec.evidence, "x")
            deal.record_deliverable(deliverable, at=at, actor="bench", evidence=evidence)
        for stage in process.stages:
            for activity in stage.activities:
                deal.log_activity(activity.id, at=at, actor="bench")
        deal.set_field("discount_percent", 5, at=at, actor="bench")
        while not deal.is_closed:
            at += timedelta(days=1)
            deal.advance(at=at, actor="bench")
        logs.append(deal.events)
    return logs


def timed(run: Callable[[], object], repeat: int, events: int) -> float:
    """Median microseconds per event over ``repeat`` rounds."""
    rounds = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        rounds.append((time.perf_counter() - started) / events * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    process = b2b()
    logs = build(args.deals)
    events = sum(len(log) for log in logs)
    figures: dict[str, Any] = {"deals": args.deals, "events": events}
    figures["replay_us_per_event"] = timed(
        lambda: [Opportunity.replay(process, log) for log in logs], args.repeat, events
    )
    try:
        from stagegate import seal, verify
    except ImportError:
        seal = verify = None
    if seal is not None and verify is not None:
        sealed = [seal(log) for log in logs]
        figures["sealed_replay_us_per_event"] = timed(
            lambda: [Opportunity.replay(process, log) for log in sealed], args.repeat, events
        )
        figures["seal_us_per_event"] = timed(
            lambda: [seal(log) for log in logs], args.repeat, events
        )
        figures["verify_us_per_event"] = timed(
            lambda: [verify(process, log) for log in logs], args.repeat, events
        )
    for key, value in figures.items():
        if isinstance(value, float):
            figures[key] = round(value, 3)
        print(f"  {key:<32} {figures[key]}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
