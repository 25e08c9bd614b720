"""Benchmark the embedded SQLite event store: import throughput, file size, scan and report.

Generates N opportunities (default 1,000,000) with a seeded generator in this script: each deal
has 5-10 events (opened, activities, deliverables, gated stage changes with their gate reports,
reschedules, amount changes, a win or a loss for most), like the logs ``Opportunity`` writes.
Then, on fresh files in a temporary folder:

* ``batched``: ``SQLiteStore.append`` of one chunk of ``--chunk`` deals at a time (one
  ``BEGIN IMMEDIATE`` transaction and one ``executemany`` per chunk). Timed: the appends only
  (event generation is not timed). This is the import of the whole pipeline.
* ``single``: one event per ``append`` call, so one transaction and one commit per event, on a
  subsample of ``--single-events`` events written to a fresh file, then scaled: the figure is a
  rate, and ``single_import_estimate_s`` says how long the full import would take that way.
* ``bytes_per_event``: the size of the file (after the WAL is checkpointed) divided by events.
* ``scan``: ``scan_rows`` over every event (streaming, no Event objects) and ``scan`` (full
  Event objects, gate reports and details decoded) over the first ``--scan-events`` events.
* ``sql_summary_s``: one full streaming ``scan_rows`` pass (counting stage entries per stage in
  Python) plus a per-stage count / mean-duration aggregation inside SQLite with window functions.
* ``frame_s``: ``SQLiteStore.to_frame()`` of every event, read column-wise from the store's
  projection (in this process).
* ``report_s`` and ``report_peak_mb``: the real command, ``stagegate report --store FILE --html
  FILE --quiet``, run in a subprocess: its wall-clock seconds and its peak resident memory
  (its own ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at its end, recorded inside that
  process); ``report_phases``: per progress phase
  (``reading``, ``computing`` with one step per document section, ``rendering``) when it
  began, its CPU seconds and the peak resident MB at its end, recorded inside that process.
  With ``--store FILE --by COLUMNS``, ``report_by_s`` and ``report_by_peak_mb`` (and the rest)
  are the same for ``stagegate report --by COLUMNS``, run after the plain one.

Usage: python benchmarks/store.py [--deals 1000000] [--chunk 10000] [--single-events 20000]
       python benchmarks/store.py --store FILE [--by owner]   (only frame_s and the report,
                                  and with --by the report with its segment section, on FILE)
       python benchmarks/store.py --append-only  (only the batched import, on each backend)
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from stagegate.events import Event, EventKind, FrozenMapping, MoveKind
from stagegate.gates import CriterionResult, GateReport
from stagegate.store import SQLiteStore

T0 = datetime(2024, 1, 1, 9, tzinfo=timezone.utc)
STAGES = [
    "lead_generation",
    "qualification",
    "needs_analysis",
    "solution_proposal",
    "negotiation",
    "contract",
]
GATES = {
    "qualification": "deliverable 'qualification_checklist'",
    "needs_analysis": "deliverable 'needs_summary'",
    "solution_proposal": "deliverable 'proposal_sent'",
    "negotiation": "activity 'proposal_review' at least 1",
    "contract": "deliverable 'negotiated_terms'",
    "won": "deliverable 'signed_contract'",
}
# Immutable, so one report per target stage serves every deal (the generator's cost is not timed,
# but it sets the script's runtime).
GATE_REPORTS = {
    stage: GateReport(stage, (CriterionResult(criterion, True, "recorded", (2,)),))
    for stage, criterion in GATES.items()
}
ACTIVITIES = ["call", "email", "meeting", "demo"]
ACTORS = ("ana", "ben", "chloe", "dev")
LOSS_REASONS = ["price", "competitor", "no decision", "timing"]


def deal_events(rng: random.Random, index: int) -> list[Event]:
    """One deal's log: 5-10 events, every one carrying the stage, amount and close date in force."""
    oid = f"opp-{index:07d}"
    at = T0 + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
    amount = Decimal(rng.randrange(5, 500) * 1000)
    close = (at + timedelta(days=rng.randrange(30, 180))).date()
    stage = STAGES[0]
    events: list[Event] = []
    target = rng.randrange(5, 11)

    def add(kind: EventKind, **fields: object) -> None:
        events.append(
            Event(
                oid,
                len(events) + 1,
                kind,
                at,
                ACTORS[index % 4],
                stage,
                "b2b",
                "1",
                amount=amount,
                close_date=close,
                **fields,  # type: ignore[arg-type]
            )
        )

    add(EventKind.OPENED, details=FrozenMapping({"fields": FrozenMapping({"source": "web"})}))
    position = 0
    while len(events) < target - 1:
        at += timedelta(hours=rng.randrange(1, 24 * 20))
        roll = rng.random()
        if roll < 0.3:
            add(EventKind.ACTIVITY_LOGGED, subject=rng.choice(ACTIVITIES))
        elif roll < 0.45:
            add(
                EventKind.DELIVERABLE_RECORDED,
                subject=f"doc_{position}",
                details=FrozenMapping(
                    {"evidence": FrozenMapping({"document": f"{oid}-{position}.pdf"})}
                ),
            )
        elif roll < 0.55:
            old = close
            close = close + timedelta(days=rng.randrange(7, 45))
            add(EventKind.RESCHEDULED, details=FrozenMapping({"previous": old.isoformat()}))
        elif roll < 0.6:
            old_amount = amount
            amount = amount * Decimal("0.9")
            add(EventKind.AMOUNT_CHANGED, details=FrozenMapping({"previous": str(old_amount)}))
        elif position < len(STAGES) - 1:
            position += 1
            previous, stage = stage, STAGES[position]
            add(
                EventKind.STAGE_CHANGED,
                from_stage=previous,
                move=MoveKind.ADVANCE,
                gate=GATE_REPORTS[stage],
            )
        else:
            add(EventKind.ACTIVITY_LOGGED, subject="follow_up")
    at += timedelta(days=rng.randrange(1, 30))
    outcome = rng.random()
    previous = stage
    if outcome < 0.3:
        stage = "won"
        add(
            EventKind.STAGE_CHANGED,
            from_stage=previous,
            move=MoveKind.WIN,
            gate=GATE_REPORTS["won"],
        )
    elif outcome < 0.75:
        stage = "lost"
        add(
            EventKind.STAGE_CHANGED,
            from_stage=previous,
            move=MoveKind.LOSE,
            reason=rng.choice(LOSS_REASONS),
        )
    else:
        add(EventKind.ACTIVITY_LOGGED, subject=rng.choice(ACTIVITIES))
    return events


def chunks(deals: int, chunk: int, seed: int) -> Iterator[list[Event]]:
    rng = random.Random(seed)
    for start in range(0, deals, chunk):
        batch: list[Event] = []
        for index in range(start, min(deals, start + chunk)):
            batch.extend(deal_events(rng, index))
        yield batch


STAGE_SUMMARY_SQL = """
WITH marked AS (
    SELECT opportunity_id, seq, stage, at_us,
           lag(stage) OVER (PARTITION BY opportunity_id ORDER BY seq) AS previous
    FROM events
),
entries AS (
    SELECT opportunity_id, seq, stage, at_us FROM marked
    WHERE previous IS NULL OR previous <> stage
),
spans AS (
    SELECT stage, at_us,
           lead(at_us) OVER (PARTITION BY opportunity_id ORDER BY seq) AS left_us
    FROM entries
)
SELECT stage, count(*) AS entries, count(left_us) AS exits,
       avg(left_us - at_us) / 86400000000.0 AS mean_days
FROM spans GROUP BY stage ORDER BY stage
"""


def file_size(path: Path) -> int:
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    return sum(file.stat().st_size for file in files if file.exists())


REPORT_DRIVER = """
import contextlib, json, resource, sys, time
import stagegate.cli
stagegate.cli.tune_process()  # as the console script does, before Polars is loaded
import stagegate.cli._report as report

def peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

started, cpu, phases = time.perf_counter(), time.process_time(), []

class Recorder:
    def phase(self, name, total=None):
        now = time.perf_counter()
        phases.append({"phase": name, "from_s": round(now - started, 2), "cpu_s": None,
                       "peak_mb": None, "begun_cpu": time.process_time(), "steps": []})
        def tick(done):
            record = phases[-1]
            if name == "computing":  # one step per section of the document
                record["steps"].append({"step": done, "at_s": round(time.perf_counter() - started, 2),
                                        "cpu_s": round(time.process_time() - cpu, 2),
                                        "peak_mb": peak_mb()})
            record["cpu_s"] = round(time.process_time() - record["begun_cpu"], 2)
            record["peak_mb"] = peak_mb()
        return tick

@contextlib.contextmanager
def recorded(*, quiet=False):
    yield Recorder()

report.bars = recorded  # the command's progress goes to the recorder, nothing is drawn
from stagegate.cli._app import app
code = app.main(sys.argv[2:], standalone_mode=False)
for record in phases:
    del record["begun_cpu"]
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"phases": phases, "peak_mb": peak_mb()}, out)
sys.exit(code or 0)
"""
"""Runs ``stagegate report`` with its progress phases recorded: wall and CPU seconds and the
peak resident memory at the end of each phase (and of each computed section)."""


def measure_report(path: Path, html: Path, by: str | None = None) -> dict[str, Any]:
    """``stagegate report`` on ``path`` in a subprocess: seconds, peak resident MB, CPU seconds,
    and the same per phase (``report_phases``: reading, computing by section, rendering).

    The peak is the one the report process measured of itself, so that runs one after the
    other each have their own."""
    phases_path = html.with_suffix(".phases.json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            REPORT_DRIVER,
            str(phases_path),
            "report",
            "--store",
            str(path),
            "--html",
            str(html),
            "--quiet",
            *(["--by", by] if by else []),
        ],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    recorded = json.loads(phases_path.read_text(encoding="utf-8"))
    return {
        "report_s": round(seconds, 2),
        "report_peak_mb": recorded["peak_mb"],
        "report_cpu_s": round(cpu, 2),
        "report_phases": recorded["phases"],
    }


FRAME_TIMER = """
import sys, time
from stagegate.store import SQLiteStore
with SQLiteStore(sys.argv[1]) as store:
    started = time.perf_counter()
    frame = store.to_frame()
    print(time.perf_counter() - started, len(frame))
"""


def measure_frame(path: Path) -> tuple[float, int]:
    """Seconds of ``to_frame()`` of the whole store, and its rows (in a subprocess of its own,
    after the report, so that neither this process nor the report's peak holds the frame)."""
    done = subprocess.run(
        [sys.executable, "-c", FRAME_TIMER, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rows = done.stdout.split()
    return float(seconds), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=10_000, help="deals per batched append")
    parser.add_argument("--single-events", type=int, default=20_000)
    parser.add_argument("--scan-events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--folder", default=None, help="where to write (default: a temp folder)")
    parser.add_argument(
        "--backend",
        default="sqlite",
        help="comma-separated backends to measure side by side: sqlite, postgresql",
    )
    parser.add_argument(
        "--postgresql-url",
        default=None,
        help="an existing server (default: a throwaway cluster, as the tests start one)",
    )
    parser.add_argument(
        "--store", default=None, help="only time to_frame and the report on this existing store"
    )
    parser.add_argument(
        "--by",
        default=None,
        help="with --store: also time the report with its segment section (--by COLUMNS)",
    )
    parser.add_argument(
        "--append-only",
        action="store_true",
        help="measure only the batched import (events/s, wall and CPU) on each backend",
    )
    args = parser.parse_args()
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    if not set(backends) <= {"sqlite", "postgresql"}:
        parser.error(f"--backend: choose from sqlite, postgresql, got {args.backend!r}")
    if args.append_only:
        print(json.dumps(append_figures(args, backends)))
        return
    if "sqlite" not in backends:
        print(json.dumps({"deals": args.deals, "postgresql": postgresql_figures(args)}))
        return

    if args.store is not None:
        path = Path(args.store)
        with tempfile.TemporaryDirectory(dir=args.folder) as folder:
            report = measure_report(path, Path(folder) / "report.html")
            if args.by:  # the report with its segment section, right after the plain one
                segmented = measure_report(path, Path(folder) / "by.html", by=args.by)
        frame_s, rows = measure_frame(path)
        figures: dict[str, object] = {
            "store": str(path),
            "events": rows,
            "frame_s": round(frame_s, 2),
            **report,
            "load_average": [round(load, 2) for load in os.getloadavg()],
        }
        if args.by:
            figures["by"] = args.by
            figures.update({f"report_by_{k[len('report_') :]}": v for k, v in segmented.items()})
        print(f"to_frame {frame_s:.1f} s; report {figures['report_s']} s", file=sys.stderr)
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "batched.sqlite"

        # -- batched import ---------------------------------------------------------------
        events = 0
        write_s = 0.0
        write_cpu_s = 0.0
        generate_s = 0.0
        store = SQLiteStore(path)
        started = time.perf_counter()
        for batch in chunks(args.deals, args.chunk, args.seed):
            generated = time.perf_counter()
            generate_s += generated - started
            gc.disable()
            cpu = time.process_time()
            store.append(batch)
            write_cpu_s += time.process_time() - cpu
            gc.enable()
            started = time.perf_counter()
            write_s += started - generated
            events += len(batch)
        store.close()
        size = file_size(path)
        print(
            f"batched: {args.deals:,} deals, {events:,} events in {write_s:.1f} s "
            f"({events / write_s:,.0f} events/s; generating them took {generate_s:.1f} s); "
            f"file {size / 1e6:,.1f} MB = {size / events:.1f} bytes/event",
            file=sys.stderr,
        )

        # -- one event per transaction, on a subsample --------------------------------------
        single_path = Path(folder) / "single.sqlite"
        sample = list(
            itertools.islice(
                itertools.chain.from_iterable(chunks(args.deals, 1000, args.seed)),
                args.single_events,
            )
        )
        with SQLiteStore(single_path) as single:
            started, cpu = time.perf_counter(), time.process_time()
            for event in sample:
                single.append([event])
            single_s = time.perf_counter() - started
            single_cpu_s = time.process_time() - cpu
        single_rate = len(sample) / single_s
        print(
            f"single: {len(sample):,} events, one transaction each, in {single_s:.2f} s "
            f"({single_rate:,.0f} events/s; the full import would take "
            f"{events / single_rate:,.0f} s that way)",
            file=sys.stderr,
        )

        # -- scans and the stand-in report -----------------------------------------------
        with SQLiteStore(path) as store:
            started = time.perf_counter()
            entries: Counter[str] = Counter()
            previous_id, previous_stage = None, None
            scanned = 0
            for row in store.scan_rows():
                scanned += 1
                if row.opportunity_id != previous_id or row.stage != previous_stage:
                    entries[row.stage] += 1
                previous_id, previous_stage = row.opportunity_id, row.stage
            scan_rows_s = time.perf_counter() - started
            assert scanned == events, (scanned, events)

            started = time.perf_counter()
            decoded = sum(1 for _ in itertools.islice(store.scan(), args.scan_events))
            scan_events_s = time.perf_counter() - started

        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        started = time.perf_counter()
        summary = connection.execute(STAGE_SUMMARY_SQL).fetchall()
        aggregate_s = time.perf_counter() - started
        connection.close()
        assert {stage: count for stage, count, _, _ in summary} == dict(entries)
        sql_summary_s = scan_rows_s + aggregate_s

        # -- the real report: `stagegate report --store` in a subprocess ---------------------
        report = measure_report(path, Path(folder) / "report.html")
        frame_s, rows = measure_frame(path)
        assert rows == events, (rows, events)
        print(
            f"scan_rows: {events / scan_rows_s:,.0f} rows/s ({scan_rows_s:.1f} s); "
            f"scan (Events): {decoded / scan_events_s:,.0f} events/s on {decoded:,}; "
            f"per-stage SQL aggregation {aggregate_s:.1f} s",
            file=sys.stderr,
        )
        for stage, count, exits, mean_days in summary:
            print(
                f"  {stage:<18} entries {count:>9,}  exits {exits:>9,}  mean {mean_days or 0:6.1f} d",
                file=sys.stderr,
            )

    figures = {
        "deals": args.deals,
        "events": events,
        "events_per_s_batched": round(events / write_s),
        "events_per_s_single": round(single_rate),
        "single_sample_events": len(sample),
        "single_import_estimate_s": round(events / single_rate, 1),
        "batched_import_s": round(write_s, 2),
        "generate_s": round(generate_s, 2),
        "bytes_per_event": round(size / events, 1),
        "file_bytes": size,
        "scan_rows_per_s": round(events / scan_rows_s),
        "scan_events_per_s": round(decoded / scan_events_s),
        "scan_rows_s": round(scan_rows_s, 2),
        "aggregate_sql_s": round(aggregate_s, 2),
        "frame_s": round(frame_s, 2),
        "report_s": report["report_s"],
        "report_peak_mb": report["report_peak_mb"],
        "report_phases": report["report_phases"],
        "report_note": "stagegate report --store FILE --html FILE --quiet, in a subprocess",
        "sql_summary_s": round(sql_summary_s, 2),
        "cpu_time": {
            "note": "process CPU seconds, for comparing runs on a shared machine",
            "events_per_s_batched": round(events / write_cpu_s),
            "events_per_s_single": round(len(sample) / single_cpu_s),
            "report_s": report["report_cpu_s"],
        },
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "sqlite": sqlite3.sqlite_version,
        "python": platform.python_version(),
    }
    print(
        f"report (stagegate report): {report['report_s']:.1f} s, peak "
        f"{report['report_peak_mb']:,.0f} MB; to_frame {frame_s:.1f} s",
        file=sys.stderr,
    )
    if "postgresql" in backends:
        figures["postgresql"] = postgresql_figures(args)
        side = figures["postgresql"]
        print(
            f"side by side (sqlite | postgresql): batched {figures['events_per_s_batched']:,} | "
            f"{side['events_per_s_batched']:,} events/s; to_frame {figures['frame_s']} "
            f"| {side['to_frame_s']} s; report {figures['report_s']} | {side['report_s']} s",
            file=sys.stderr,
        )
    print(json.dumps(figures))


def timed_appends(store: object, args: argparse.Namespace) -> tuple[int, float, float]:
    """Append every chunk to ``store``: events, wall seconds and CPU seconds of the appends."""
    events, write_s, write_cpu_s = 0, 0.0, 0.0
    for batch in chunks(args.deals, args.chunk, args.seed):
        gc.disable()
        started, cpu = time.perf_counter(), time.process_time()
        store.append(batch)  # type: ignore[attr-defined]
        write_s += time.perf_counter() - started
        write_cpu_s += time.process_time() - cpu
        gc.enable()
        events += len(batch)
    return events, write_s, write_cpu_s


def append_figures(args: argparse.Namespace, backends: list[str]) -> dict[str, object]:
    """Only the batched import, on a fresh store of each backend (``--append-only``)."""
    import contextlib

    figures: dict[str, object] = {"deals": args.deals, "chunk": args.chunk}
    with contextlib.ExitStack() as stack:
        for backend in backends:
            if backend == "sqlite":
                folder = stack.enter_context(tempfile.TemporaryDirectory(dir=args.folder))
                store: object = stack.enter_context(SQLiteStore(Path(folder) / "batched.sqlite"))
            else:
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
                from postgresql_server import BENCHMARK_SETTINGS, cluster
                from stagegate.store import PostgreSQLStore

                url = args.postgresql_url or stack.enter_context(cluster(BENCHMARK_SETTINGS)).url()
                store = stack.enter_context(PostgreSQLStore(url, schema=f"bench_{os.getpid()}"))
            events, write_s, write_cpu_s = timed_appends(store, args)
            figures[backend] = {
                "events": events,
                "events_per_s_batched": round(events / write_s),
                "cpu_events_per_s_batched": round(events / write_cpu_s),
            }
            print(
                f"{backend}: {events:,} events in {write_s:.1f} s ({events / write_s:,.0f} "
                f"events/s; {events / write_cpu_s:,.0f} per CPU second)",
                file=sys.stderr,
            )
    figures["load_average"] = [round(load, 2) for load in os.getloadavg()]
    return figures


def postgresql_figures(args: argparse.Namespace) -> dict[str, object]:
    """The same batched import and report on a PostgreSQL store (PostgreSQLStore, COPY)."""
    import contextlib

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from postgresql_server import BENCHMARK_SETTINGS, cluster
    from stagegate.report import build_document
    from stagegate.store import EventStore, PostgreSQLStore
    from stagegate.templates import b2b

    with contextlib.ExitStack() as stack:
        if args.postgresql_url is None:
            url = stack.enter_context(cluster(BENCHMARK_SETTINGS)).url()
        else:
            url = args.postgresql_url
        schema = f"bench_{os.getpid()}"
        store = stack.enter_context(PostgreSQLStore(url, schema=schema))
        events, write_s, write_cpu_s = 0, 0.0, 0.0
        for batch in chunks(args.deals, args.chunk, args.seed):
            gc.disable()
            started, cpu = time.perf_counter(), time.process_time()
            store.append(batch)
            write_s += time.perf_counter() - started
            write_cpu_s += time.process_time() - cpu
            gc.enable()
            events += len(batch)
        sample = list(
            itertools.islice(
                itertools.chain.from_iterable(chunks(args.deals, 1000, args.seed + 1)),
                min(args.single_events, 5_000),
            )
        )
        single = stack.enter_context(PostgreSQLStore(url, schema=f"{schema}_single"))
        started = time.perf_counter()
        for event in sample:
            single.append([event])
        single_rate = len(sample) / (time.perf_counter() - started)
        size = store._call(  # noqa: SLF001 - a benchmark may look inside
            lambda conn: conn.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
        )
        # the generic reader every store inherits (scan, pack, join), beside the COPY reader
        started = time.perf_counter()
        scanned_frame = EventStore.to_frame(store)
        to_frame_scan_s = time.perf_counter() - started
        del scanned_frame
        gc.collect()
        started = time.perf_counter()
        frame = store.to_frame()
        to_frame_s = time.perf_counter() - started
        process = store.load_process("b2b", "1") if store.processes() else b2b()
        document = build_document(frame, process, as_of=frame["at"].max())
        report_s = time.perf_counter() - started
        assert frame.equals(EventStore.to_frame(store))  # the two readers agree
        assert document["summary"]["opportunities"] == args.deals
        assert frame.height == events == store.count()
        started = time.perf_counter()
        scanned = sum(1 for _ in store.scan_rows())
        scan_rows_s = time.perf_counter() - started
        assert scanned == events
        version = store._call(  # noqa: SLF001
            lambda conn: conn.execute("SHOW server_version").fetchone()[0]
        )
        with contextlib.suppress(Exception):
            store._call(  # noqa: SLF001
                lambda conn: conn.execute(f"DROP SCHEMA {schema}, {schema}_single CASCADE")
            )
    print(
        f"postgresql: batched {events:,} events in {write_s:.1f} s ({events / write_s:,.0f} "
        f"events/s); single {single_rate:,.0f} events/s; to_frame {to_frame_s:.1f} s; "
        f"report {report_s:.1f} s; scan_rows {events / scan_rows_s:,.0f} rows/s; "
        f"{size / events:.0f} bytes/event (table + index)",
        file=sys.stderr,
    )
    return {
        "events": events,
        "events_per_s_batched": round(events / write_s),
        "events_per_s_single": round(single_rate),
        "single_sample_events": len(sample),
        "batched_import_s": round(write_s, 2),
        "to_frame_s": round(to_frame_s, 2),
        "to_frame_scan_s": round(to_frame_scan_s, 2),
        "to_frame_scan_note": "EventStore.to_frame: the generic scan-and-pack reader",
        "report_s": round(report_s, 2),
        "report_note": "to_frame() (COPY ... TO STDOUT, CSV into Arrow) + build_document",
        "scan_rows_per_s": round(events / scan_rows_s),
        "bytes_per_event": round(size / events, 1),
        "cpu_time": {"events_per_s_batched": round(events / write_cpu_s)},
        "server": version,
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "settings": "a throwaway cluster, synchronous_commit=off"
        if args.postgresql_url is None
        else "the server at --postgresql-url",
    }


if __name__ == "__main__":
    main()
