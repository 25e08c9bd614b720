"""Benchmark: ``by=`` per owner, one run per segment against one grouped pass.

``dwell_probabilities(..., by="owner")`` counts every segment in one pass over the visits,
computed once; the generic path (``stagegate.analytics._by.by_segment``, the reference the
tests compare it with) runs the function once per owner, and again per stage where some of
an owner's deals entered under another owner. Both run on the same generated log (a share of
the deals handed to another owner half-way), on pure-Python rows and on a Polars frame, in
this one process, taking turns for ``--rounds`` rounds; figures are medians in seconds, and
the last line is one JSON object with them and the ratios.

Usage:
    python benchmarks/by_segment.py                          # 20,000 deals, 200 owners
    python benchmarks/by_segment.py --deals 100000 --owners 500 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from stagegate import analytics as an
from stagegate.analytics._by import by_segment

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
AS_OF = START + timedelta(days=365)
KINDS = {"lead": "open", "demo": "open", "proposal": "open", "won": "won", "lost": "lost"}
PATHS = (
    ("lead",),
    ("lead", "lost"),
    ("lead", "demo"),
    ("lead", "demo", "lost"),
    ("lead", "demo", "proposal"),
    ("lead", "demo", "proposal", "won"),
    ("lead", "demo", "proposal", "lost"),
    ("lead", "proposal", "won"),
)


def generate(deals: int, owners: int, handed: float, seed: int) -> list[dict[str, Any]]:
    """Rows of ``deals`` deals; a share ``handed`` passes to another owner after its 2nd stage."""
    rng = random.Random(seed)
    rows = []
    for n in range(deals):
        path = rng.choice(PATHS)
        owner = f"rep{rng.randrange(owners):04d}"
        other = f"rep{rng.randrange(owners):04d}" if rng.random() < handed else owner
        at = START + timedelta(days=rng.uniform(0, 300))
        for step, stage in enumerate(path):
            rows.append(
                {
                    "opportunity_id": f"d{n}",
                    "at": at,
                    "seq": step + 1,
                    "stage": stage,
                    "amount": 1000.0,
                    "owner": owner if step < 2 else other,
                }
            )
            at += timedelta(days=rng.expovariate(1 / 12))
    return rows


def one_pass(data: Any) -> Any:
    return an.dwell_probabilities(data, KINDS, as_of=AS_OF, by="owner")


def per_segment(data: Any) -> Any:
    def run(part: Any) -> Any:
        return an.dwell_probabilities(part, KINDS, as_of=AS_OF)

    return by_segment(run, data, KINDS, "owner", an.DwellProbability, as_of=AS_OF, assume_zone=None)


def plain(data: Any) -> Any:
    return an.dwell_probabilities(data, KINDS, as_of=AS_OF)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--handed", type=float, default=0.2, help="share of deals handed on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated: rows, polars")
    args = parser.parse_args()
    rows = generate(args.deals, args.owners, args.handed, args.seed)
    inputs: dict[str, Any] = {"rows": rows}
    if "polars" not in args.skip:
        import polars as pl

        inputs["polars"] = pl.DataFrame(rows)
    if "rows" in args.skip:
        del inputs["rows"]
    contenders = {"plain": plain, "one_pass": one_pass, "per_segment": per_segment}
    times: dict[str, list[float]] = {}
    results: dict[str, Any] = {}
    for _ in range(args.rounds):
        for backend, data in inputs.items():
            for name, function in contenders.items():
                began = time.perf_counter()
                results[backend, name] = function(data)
                times.setdefault(f"{backend}/{name}", []).append(time.perf_counter() - began)
                print(f"{backend}/{name}: {times[f'{backend}/{name}'][-1]:.2f} s", flush=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    if "rows" in inputs:  # the two paths give the same records
        assert results["rows", "one_pass"] == results["rows", "per_segment"]
    ratios = {
        backend: medians[f"{backend}/per_segment"] / medians[f"{backend}/one_pass"]
        for backend in inputs
    }
    print(
        json.dumps(
            {
                "deals": args.deals,
                "owners": args.owners,
                "handed": args.handed,
                "rounds": args.rounds,
                "seconds": medians,
                "per_segment_over_one_pass": ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
