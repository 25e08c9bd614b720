"""Benchmark a process migration: every open deal of a SQLite store moved to a new version.

Builds, in a temporary folder, a store of N deals (default 100,000), every one of them open:
each is opened in the built-in b2b process (version 1) and advanced through its gates by
``Opportunity`` commands to a seeded random stage (3-11 events a deal). Then it times, on that
file:

* ``plan_s``: :func:`stagegate.evolution.plan_migration` (the dry run: one scan of the store);
* ``migrate_s``: :func:`stagegate.evolution.migrate` to version 2 (``qualification`` renamed
  ``qualify``): the scan, one ``migrated`` event per open deal, and one transaction that saves
  the definition and appends every event (sealed);
* ``*_cpu_s``: the same, in CPU seconds of this process (SQLite runs in it): the figure that
  does not depend on what else the machine is doing (``load_average`` says how busy it was);
* ``replay_check``: a sample of migrated deals loaded back (``load_opportunity``), each replayed
  against version 1 up to its migration and version 2 after it.

Usage: python benchmarks/evolution.py [--deals 100000] [--sample 200]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import attrs

from stagegate.evolution import migrate, plan_migration
from stagegate.opportunity import Opportunity
from stagegate.process import Process
from stagegate.store import SQLiteStore
from stagegate.templates import b2b

T0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
EVIDENCE = {
    "lead_record": {"source": "webinar", "contact": "kim@example.com"},
    "qualification_checklist": {"budget": "yes", "need": "yes", "timeline": "q3"},
    "needs_summary": {"document": "https://example.com/needs"},
    "proposal_sent": {"document": "https://example.com/p", "sent_to": "cfo"},
}


def renamed_version(process: Process) -> Process:
    """Version 2 of ``process``: ``qualification`` renamed ``qualify``."""
    stages = tuple(
        attrs.evolve(s, id="qualify") if s.id == "qualification" else s for s in process.stages
    )
    return attrs.evolve(process, version="2", stages=stages, renamed={"qualification": "qualify"})


def open_deal(process: Process, index: int, rng: random.Random) -> Opportunity:
    """One open deal, advanced through its gates to a random open stage."""
    at = T0 + timedelta(minutes=index)
    deal = Opportunity.open(process, f"deal-{index:07d}", at=at, actor="rep", amount=1000 + index)
    for _ in range(rng.randrange(4)):
        at += timedelta(days=rng.randrange(1, 9))
        nxt = process.next_stage(deal.stage)
        if nxt is None or not nxt.is_open:
            break
        stage = process.stage(deal.stage)
        for spec in stage.deliverables:
            deal.record_deliverable(
                spec.id, at=at, actor="rep", evidence=EVIDENCE.get(spec.id, {"document": "x"})
            )
        for activity in stage.activities:
            deal.log_activity(activity.id, at=at, actor="rep")
        if not deal.can_advance(at=at):
            break
        deal.advance(at=at, actor="rep")
    return deal


def build(path: str, deals: int, seed: int) -> int:
    """Write ``deals`` open deals into a new store; return the number of events."""
    process = b2b()
    rng = random.Random(seed)
    count = 0
    with SQLiteStore(path) as store:
        store.save_process(process)
        batch = []
        for i in range(deals):
            batch.extend(open_deal(process, i, rng).events)
            if len(batch) >= 50_000 or i == deals - 1:
                store.append(batch)
                count += len(batch)
                batch = []
    return count


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    new = renamed_version(b2b())
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pipeline.sqlite")  # noqa: PTH118 - a str path for sqlite
        started = time.perf_counter()
        events = build(path, args.deals, args.seed)
        build_s = time.perf_counter() - started
        with SQLiteStore(path) as store:
            started, cpu = time.perf_counter(), time.process_time()
            plan = plan_migration(store, new)
            plan_s, plan_cpu_s = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            done = migrate(store, new, actor="ops", at=datetime(2026, 1, 5, tzinfo=timezone.utc))
            migrate_s, migrate_cpu_s = time.perf_counter() - started, time.process_time() - cpu
            ids = [m.opportunity_id for m in done.moves[:: max(1, len(done.moves) // args.sample)]]
            replayed = sum(
                store.load_opportunity(new, oid).process.version == new.version for oid in ids
            )
            total = store.count()
    figures = {
        "deals": args.deals,
        "events_before": events,
        "events_after": total,
        "open_deals": len(plan.moves),
        "migrated": len(done.moves),
        "build_s": round(build_s, 2),
        "plan_s": round(plan_s, 2),
        "migrate_s": round(migrate_s, 2),
        "plan_cpu_s": round(plan_cpu_s, 2),
        "migrate_cpu_s": round(migrate_cpu_s, 2),
        "load_average": round(os.getloadavg()[0], 1),
        "replay_check": f"{replayed}/{len(ids)}",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
