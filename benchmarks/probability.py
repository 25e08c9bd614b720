"""Study: which win probability to trust when lost deals linger and observation stops.

Runs the simulator's informative mode (a deal's fate drives its pace in every stage: deals
that will be lost dwell 2.5x longer everywhere, and their close dates slip more), cuts the
history at ``as_of`` with many deals still open, and compares every estimator of
``stage_probabilities`` with the truth computed from the uncensored population: the error by
stage, and whether the 95% interval covers the truth. Then the won and lost dwell medians:
the closed-only figure of ``time_in_stage`` and its deal-clock (censoring-aware) median.

Usage:
    python benchmarks/probability.py                       # 20,000 deals, seeds 1 2 3
    python benchmarks/probability.py --deals 2000 --seeds 1

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from stagegate import analytics as an  # noqa: E402
from stagegate.simulate import simulate  # noqa: E402

GOAL_POINTS = 0.02
"""The deal-clock estimate must be this close to the truth at every stage..."""
GOAL_COVERED = 5
"""...and its interval must cover the truth at this many stages, for every seed."""
ESTIMATES = {
    "deal_clock": ("deal_clock", "deal_clock_low", "deal_clock_high"),
    "markov": ("markov", "markov_low", "markov_high"),
    "empirical": ("empirical", "empirical_low", "empirical_high"),
    "smoothed": ("smoothed", "smoothed_low", "smoothed_high"),
}
"""Each estimator's point and interval columns; ``naive_reached`` (won / reached, open
deals counted as not won) has no interval."""


def frame_of(sim: Any) -> Any:
    """The simulated events as a Polars stage-history frame, or the events without Polars."""
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - the pure-Python path gives the same numbers
        return list(sim.events)
    return pl.DataFrame(
        {
            "opportunity_id": [e.opportunity_id for e in sim.events],
            "at": [e.at for e in sim.events],
            "seq": [e.seq for e in sim.events],
            "stage": [e.stage for e in sim.events],
        },
        schema={
            "opportunity_id": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "seq": pl.Int64,
            "stage": pl.String,
        },
    )


def records(table: Any) -> list[dict[str, Any]]:
    """Rows of a result, whatever it came as (records or a Polars frame)."""
    if hasattr(table, "to_dicts"):
        return list(table.to_dicts())
    import attrs

    return [attrs.asdict(row) for row in table]


def one_seed(deals: int, seed: int, draws: int) -> dict[str, Any]:
    """Every estimator against the truth on one simulated pipeline."""
    sim = simulate(deals, seed=seed, mode="informative")
    kinds = sim.model.outcomes()
    data = frame_of(sim)
    started = time.perf_counter()
    rows = records(an.stage_probabilities(data, kinds, as_of=sim.as_of, draws=draws))
    seconds = time.perf_counter() - started
    stages = []
    for row in rows:
        truth = sim.truth.win_probability[row["stage"]]
        entry: dict[str, Any] = {"stage": row["stage"], "truth": truth, "reached": row["reached"]}
        for name, (point, low, high) in ESTIMATES.items():
            value = row[point]
            entry[name] = value
            entry[f"{name}_error"] = None if value is None else value - truth
            covered = row[low] is not None and row[low] <= truth <= row[high]
            entry[f"{name}_covers"] = covered
        naive = row["won"] / row["reached"] if row["reached"] else None
        entry["naive_reached"] = naive
        entry["naive_reached_error"] = None if naive is None else naive - truth
        stages.append(entry)
    dwell = []
    for row in records(an.time_in_stage(data, kinds, as_of=sim.as_of)):
        if row["outcome"] not in ("won", "lost"):
            continue
        truth = sim.truth.dwell_median_days[row["stage"]][row["outcome"]]
        closed, clock = row["median_days"], row["deal_clock_median_days"]
        dwell.append(
            {
                "stage": row["stage"],
                "outcome": row["outcome"],
                "truth_days": truth,
                "closed_only_days": closed,
                "closed_only_error": None if truth is None else closed / truth - 1,
                "deal_clock_days": clock,
                "deal_clock_error": None if clock is None or truth is None else clock / truth - 1,
                "open_share": row["open_share"],
            }
        )
    open_at_as_of = rows[0]["reached"] - rows[0]["closed"] if rows else 0  # all enter the first
    return {
        "seed": seed,
        "deals": deals,
        "open_at_as_of": open_at_as_of,
        "seconds": round(seconds, 3),
        "stages": stages,
        "dwell": dwell,
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst errors and interval coverage per estimator, and whether the goal is met."""
    summary: dict[str, Any] = {}
    for name in (*ESTIMATES, "naive_reached"):
        errors = [abs(s[f"{name}_error"]) for r in results for s in r["stages"]
                  if s[f"{name}_error"] is not None]  # fmt: skip
        covered = [sum(bool(s.get(f"{name}_covers")) for s in r["stages"]) for r in results]
        summary[name] = {
            "max_abs_error_points": round(100 * max(errors), 2) if errors else None,
            "mean_abs_error_points": round(100 * sum(errors) / len(errors), 2) if errors else None,
            "covered_stages_by_seed": covered if name in ESTIMATES else None,
        }
    for name in ("closed_only", "deal_clock"):
        errors = [abs(d[f"{name}_error"]) for r in results for d in r["dwell"]
                  if d[f"{name}_error"] is not None]  # fmt: skip
        summary[f"dwell_{name}_max_abs_error_pct"] = round(100 * max(errors), 2) if errors else None
    stages = len(results[0]["stages"]) if results else 0
    needed = min(GOAL_COVERED, stages)
    summary["goal_met"] = bool(results) and all(
        all(abs(s["deal_clock_error"]) <= GOAL_POINTS for s in r["stages"])
        and sum(s["deal_clock_covers"] for s in r["stages"]) >= needed
        for r in results
    )
    return summary


def _points(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}"


def print_table(results: list[dict[str, Any]]) -> None:
    """The table: truth and each estimator's error (points), '*' where its interval misses."""
    names = [*ESTIMATES, "naive_reached"]
    header = f"{'seed':>4} {'stage':<18} {'truth':>6} " + " ".join(f"{n:>13}" for n in names)
    print(header)
    for r in results:
        for s in r["stages"]:
            cells = []
            for n in names:
                miss = "" if n == "naive_reached" or s.get(f"{n}_covers") else "*"
                cells.append(f"{_points(s[f'{n}_error']) + miss:>13}")
            print(f"{r['seed']:>4} {s['stage']:<18} {s['truth']:>6.3f} " + " ".join(cells))
    print("(errors in points of probability; * the 95% interval misses the truth)")
    print()
    print(f"{'seed':>4} {'stage':<18} {'outcome':<7} {'truth d':>8} {'closed-only':>12} "
          f"{'deal clock':>11} {'open':>6}")  # fmt: skip
    for r in results:
        for d in r["dwell"]:
            closed = (
                "" if d["closed_only_error"] is None else f"{100 * d['closed_only_error']:+.1f}%"
            )
            clock = "" if d["deal_clock_error"] is None else f"{100 * d['deal_clock_error']:+.1f}%"
            print(f"{r['seed']:>4} {d['stage']:<18} {d['outcome']:<7} {d['truth_days']:>8.2f} "
                  f"{closed:>12} {clock:>11} {d['open_share']:>6.1%}")  # fmt: skip
    print("(dwell medians: error relative to the true median; open: share of visits still open)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the study; print the table and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--draws", type=int, default=400, help="Markov posterior draws")
    args = parser.parse_args(argv)
    results = [one_seed(args.deals, seed, args.draws) for seed in args.seeds]
    print_table(results)
    summary = summarize(results)
    document = {"deals": args.deals, "seeds": args.seeds, "summary": summary, "runs": results}
    print(json.dumps(document, separators=(",", ":")))
    return document


if __name__ == "__main__":
    main()
