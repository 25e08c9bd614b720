"""Benchmark ``stagegate import`` of a canonical event log: CSV, JSON Lines and Parquet.

Simulates N deals on the built-in b2b process (``stagegate.simulate``, the same data as
``stagegate simulate``), writes the log in each format to a temporary folder, then imports
each file into a fresh SQLite store the way ``stagegate import`` does, in a child process of
its own so that its peak memory is its own:

* ``<format>`` (the present path): :func:`stagegate.store.stream_import`, what
  ``stagegate import`` does with a log the bulk path hands over (read record by record into a
  staging store, every deal replayed, then linked into place);
* ``<format>_whole``: :func:`stagegate.io.read_events` then
  :func:`stagegate.store.write_import`, the way CSV and Parquet were imported before they
  streamed (the whole file in memory);
* ``<format>_fast``: the bulk path ``stagegate import`` takes first for a plain log
  (``stagegate.store._bulk.bulk_import``: Arrow batches checked column-wise, rows sealed without
  Event objects); it stores the same rows, digests and projection.

Each figure includes reading, checking (replay) and the sealed store write. Reported per
format: seconds (wall and CPU), events per second (wall and CPU; on a shared machine the CPU
rate is the steadier one) and the child's peak resident memory.

With ``--segments`` the deals have owners and attributes (``reassigned`` and ``attribute_set``
events, JSON details), as ``stagegate simulate`` writes them.

Usage: python benchmarks/importing.py [--deals 20000] [--formats jsonl,csv,parquet]
[--paths present,fast,whole] [--segments]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("jsonl", "csv", "parquet")
PATHS = ("present", "fast")
# also "rows": the fast path without adbc_driver_sqlite (executemany of row tuples), and
# "whole": read_events then write_import


def child(store: str, log: str, path: str = "present") -> dict[str, float]:
    """Import ``log`` into ``store``; return the timings (run in a child process)."""
    from stagegate.io import read_events
    from stagegate.store import stream_import, write_import
    from stagegate.store._bulk import bulk_import
    from stagegate.templates import b2b

    process = b2b()
    if path == "rows":
        sys.modules["adbc_driver_sqlite.dbapi"] = None  # type: ignore[assignment]
    started, cpu = time.perf_counter(), time.process_time()
    if path in {"fast", "rows"}:
        outcome = bulk_import(store, log, process=process)
        if outcome is None:
            raise SystemExit(f"the fast path did not take {log}")
        events = outcome.record.events
    elif path == "present":
        events = stream_import(store, log, process=process).record.events
    else:
        read = read_events(log)
        events = write_import(store, read, process=process, source="events").record.events
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"events": events, "wall_s": wall_s, "cpu_s": cpu_s, "peak_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--paths", default=",".join(PATHS), help="present, fast and/or rows")
    parser.add_argument("--folder", default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--segments", action="store_true", help="owners and attributes too")
    parser.add_argument(
        "--child", nargs=3, metavar=("STORE", "LOG", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    from stagegate.io import write_events
    from stagegate.simulate import simulate
    from stagegate.templates import b2b

    formats = [name.strip() for name in args.formats.split(",") if name.strip()]
    sim = simulate(args.deals, seed=args.seed, process=b2b(), segments=args.segments)
    events = [e for e in sim.events if e.at <= sim.as_of]
    figures: dict[str, object] = {
        "deals": args.deals,
        "events": len(events),
        "segments": args.segments,
        "python": platform.python_version(),
    }
    paths = [name.strip() for name in args.paths.split(",") if name.strip()]
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        for name in formats:
            log = Path(folder) / f"log.{name}"
            write_events(log, events)
            for way in paths:
                key = name if way == "present" else f"{name}_{way}"
                store = Path(folder) / f"{key}.sqlite"
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(store), str(log), way],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONHASHSEED": "0"},
                )
                run = json.loads(result.stdout.strip().splitlines()[-1])
                figures[f"{key}_s"] = round(run["wall_s"], 2)
                figures[f"{key}_cpu_s"] = round(run["cpu_s"], 2)
                figures[f"{key}_events_per_s"] = round(run["events"] / run["wall_s"])
                figures[f"{key}_events_per_cpu_s"] = round(run["events"] / run["cpu_s"])
                figures[f"{key}_peak_mb"] = round(run["peak_mb"], 1)
                figures[f"{name}_file_mb"] = round(log.stat().st_size / 1e6, 2)
                print(
                    f"{key}: {run['events']:,} events in {run['wall_s']:.2f} s "
                    f"({run['events'] / run['wall_s']:,.0f} events/s; CPU "
                    f"{run['events'] / run['cpu_s']:,.0f} events/s), peak {run['peak_mb']:.0f} MB",
                    file=sys.stderr,
                )
                store.unlink()
        figures["load"] = os.getloadavg()[0]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
