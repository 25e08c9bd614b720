"""Build a large store for ``benchmarks/store.py --store``: generated deals, repeated.

Generating and appending deals one batch at a time (the generator of ``benchmarks/store.py``)
is the slow part of building a store of a million deals. This script generates ``--deals``
deals once, then repeats them ``--copies - 1`` more times under the next ids in SQL (deal
``opp-0000007`` of copy 2 becomes ``opp-0200007`` for 200,000 deals), and writes the copies'
columnar projection with the store's own ``encode_chunk``: a store of ``deals * copies``
deals that reads and reports like a generated one. The copies keep the originals' digests, so
``verify()`` reports them; the report does not verify.

Usage: python benchmarks/report_store.py --deals 200000 --copies 5 --out FILE
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

from stagegate.store import SQLiteStore
from stagegate.store._columnar import encode_chunk
from stagegate.store.sqlite import _PROJECT, _PROJECTED, PROJECTION_CHUNK

sys.path.insert(0, str(Path(__file__).parent))
from store import chunks  # the generator of benchmarks/store.py

COLUMNS = (
    "seq, kind, at_us, stage, from_stage, move, amount, close_date, actor, reason, process, "
    "process_version, subject, details, gate, digest"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200_000)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        parser.error(f"--out {out} exists; choose a new file")
    started = time.perf_counter()
    with SQLiteStore(out) as store:
        for batch in chunks(args.deals, 10_000, args.seed):
            store.append(batch)
    generated = time.perf_counter() - started
    db = sqlite3.connect(out, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    for copy in range(1, args.copies):
        db.execute(
            f"INSERT INTO events SELECT printf('opp-%07d', {copy * args.deals} + "  # noqa: S608
            f"CAST(substr(opportunity_id, 5) AS INTEGER)), {COLUMNS} FROM events "
            f"WHERE opportunity_id < 'opp-{args.deals:07d}'"
        )
    copied = db.execute(
        _PROJECTED.format(table="events").replace(
            "ORDER BY", f"WHERE opportunity_id >= 'opp-{args.deals:07d}' ORDER BY"
        )
    )
    writer = db.cursor()
    while part := copied.fetchmany(PROJECTION_CHUNK):
        writer.execute(_PROJECT, (len(part), encode_chunk(part)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    events, deals = db.execute(
        "SELECT count(*), count(DISTINCT opportunity_id) FROM events"
    ).fetchone()
    db.close()
    print(
        f"{out}: {deals:,} deals, {events:,} events; generated {args.deals:,} in "
        f"{generated:.0f} s, all in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
