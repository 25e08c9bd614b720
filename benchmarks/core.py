"""Benchmark the core: stage transitions per second and memory per opportunity.

Drives N opportunities (default 100,000) through the built-in b2b template and, in the same run,
does the same work with the obvious alternatives:

* ``stagegate``: ``Opportunity.advance`` (gate report, immutable event, log append).
* ``floor``: a hand-written minimum: a dict lookup of the move, the same gate predicates, a
  tuple record with the timestamp appended to a list.
* ``transitions_shared``: one ``transitions.Machine`` for all deals (the FAQ pattern:
  ``machine.events[name].trigger(model)``), the same predicates as conditions, a record appended
  in an ``after`` callback.
* ``transitions_per_deal``: one ``transitions.Machine`` per deal (``auto_transitions=False``),
  run on a smaller sample because each machine costs about 200 us and 13 KB to build.

Every implementation first records each deal's evidence (untimed), then moves every deal from
lead generation to won: 6 stage transitions, each checking the target stage's gate. The timed
part is the transitions only. Memory is measured with tracemalloc for deals holding 10 events.

Usage: python benchmarks/core.py [--deals 100000] [--repeat 3]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from transitions import Machine

from stagegate import Opportunity, b2b

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
PATH = ["qualification", "needs_analysis", "solution_proposal", "negotiation", "contract", "won"]
EVIDENCE: list[tuple[str, str, dict[str, Any] | None]] = [
    ("deliverable", "lead_record", {"source": "web", "contact": "a@b.example"}),
    ("activity", "discovery_call", None),
    (
        "deliverable",
        "qualification_checklist",
        {"budget": 1, "authority": 1, "need": 1, "timeline": 1},
    ),
    ("activity", "needs_meeting", None),
    ("deliverable", "needs_summary", {"pain_points": "x", "decision_makers": "y"}),
    ("deliverable", "proposal_sent", {"document": "p.pdf", "sent_to": "c"}),
    ("activity", "proposal_review", None),
    ("deliverable", "negotiated_terms", {"discount_percent": 5, "payment_terms": "net 30"}),
    ("field", "discount_percent", 5),
    ("deliverable", "signed_contract", {"document": "c.pdf", "signed_by": "cfo"}),
]

# The same gates, as plain predicates over a facts dict, for the alternatives.
Facts = dict[str, Any]


def _has(deliverable: str, *keys: str) -> Callable[[Facts], bool]:
    def check(facts: Facts) -> bool:
        record = facts["deliverables"].get(deliverable)
        return record is not None and all(record.get(k) not in (None, "") for k in keys)

    return check


def _count(activity: str, n: int = 1) -> Callable[[Facts], bool]:
    return lambda facts: facts["activities"].get(activity, 0) >= n


GATES: dict[str, list[Callable[[Facts], bool]]] = {
    "qualification": [_has("lead_record", "contact")],
    "needs_analysis": [
        _has("qualification_checklist", "budget", "need", "timeline"),
        _count("discovery_call"),
    ],
    "solution_proposal": [
        _has("needs_summary", "pain_points", "decision_makers"),
        _count("needs_meeting"),
        lambda f: (f["amount"] or 0) > 0,
    ],
    "negotiation": [
        _has("proposal_sent", "document"),
        lambda f: (
            f["activities"].get("proposal_review", 0) >= 1
            or f["activities"].get("solution_demo", 0) >= 1
        ),
    ],
    "contract": [
        _has("negotiated_terms", "payment_terms"),
        lambda f: f["fields"].get("discount_percent", 100) <= 15 or "deal_desk" in f["approvals"],
    ],
    "won": [_has("signed_contract", "document", "signed_by")],
}
NEXT = dict(zip(["lead_generation", *PATH[:-1]], PATH, strict=True))


def _facts(amount: int) -> Facts:
    facts: Facts = {
        "deliverables": {},
        "activities": {},
        "fields": {},
        "approvals": set(),
        "amount": amount,
    }
    for kind, name, value in EVIDENCE:
        if kind == "deliverable":
            facts["deliverables"][name] = value
        elif kind == "activity":
            facts["activities"][name] = facts["activities"].get(name, 0) + 1
        else:
            facts["fields"][name] = value
    return facts


def _at(deal: int, step: int) -> datetime:
    return T0 + timedelta(minutes=deal % 1000, hours=step)


# -- stagegate -------------------------------------------------------------------------------


def stagegate_prepare(n: int, evidence: int = len(EVIDENCE)) -> list[Opportunity]:
    process = b2b()
    deals = []
    for i in range(n):
        deal = Opportunity.open(process, f"d{i}", at=_at(i, 0), actor="bench", amount=1000 + i)
        for kind, name, value in EVIDENCE[:evidence]:
            if kind == "deliverable":
                deal.record_deliverable(name, at=_at(i, 1), actor="bench", evidence=value)
            elif kind == "activity":
                deal.log_activity(name, at=_at(i, 1), actor="bench")
            else:
                deal.set_field(name, value, at=_at(i, 1), actor="bench")
        deals.append(deal)
    return deals


def stagegate_run(deals: list[Opportunity]) -> int:
    moves = 0
    for i, deal in enumerate(deals):
        for step in range(2, 2 + len(PATH)):
            deal.advance(at=_at(i, step), actor="bench")
            moves += 1
    return moves


# -- hand-written floor ------------------------------------------------------------------------


class FloorDeal:
    __slots__ = ("facts", "log", "stage")

    def __init__(self, amount: int) -> None:
        self.stage = "lead_generation"
        self.facts = _facts(amount)
        self.log: list[tuple[Any, ...]] = []


def floor_prepare(n: int) -> list[FloorDeal]:
    return [FloorDeal(1000 + i) for i in range(n)]


def floor_run(deals: list[FloorDeal]) -> int:
    moves = 0
    table = NEXT
    gates = GATES
    for i, deal in enumerate(deals):
        for step in range(2, 2 + len(PATH)):
            target = table[deal.stage]
            facts = deal.facts
            if not all(check(facts) for check in gates[target]):
                raise AssertionError(target)
            at = _at(i, step)
            deal.log.append((len(deal.log) + 1, at, "bench", deal.stage, target))
            deal.stage = target
            moves += 1
    return moves


# -- transitions -------------------------------------------------------------------------------


def _machine(model: Any) -> Machine:
    stages = ["lead_generation", *PATH]
    machine = Machine(
        model=model,
        states=stages,
        initial="lead_generation",
        auto_transitions=False,
        send_event=True,
    )
    for source, target in NEXT.items():
        checks = GATES[target]
        machine.add_transition(
            "advance",
            source,
            target,
            conditions=[lambda e, checks=checks: all(c(e.model.facts) for c in checks)],
            after=[_record],
        )
    return machine


def _record(event: Any) -> None:
    model = event.model
    model.log.append(
        (len(model.log) + 1, event.kwargs["at"], "bench", event.transition.source, model.state)
    )


class TransitionsDeal:
    def __init__(self, amount: int) -> None:
        self.state = "lead_generation"
        self.facts = _facts(amount)
        self.log: list[tuple[Any, ...]] = []


def shared_prepare(n: int) -> tuple[Machine, list[TransitionsDeal]]:
    return _machine(None), [TransitionsDeal(1000 + i) for i in range(n)]


def shared_run(prepared: tuple[Machine, list[TransitionsDeal]]) -> int:
    machine, deals = prepared
    trigger = machine.events["advance"].trigger
    moves = 0
    for i, deal in enumerate(deals):
        for step in range(2, 2 + len(PATH)):
            if not trigger(deal, at=_at(i, step)):
                raise AssertionError(deal.state)
            moves += 1
    return moves


def per_deal_prepare(n: int) -> list[TransitionsDeal]:
    deals = []
    for i in range(n):
        deal = TransitionsDeal(1000 + i)
        _machine(deal)
        deals.append(deal)
    return deals


def per_deal_run(deals: list[Any]) -> int:
    moves = 0
    for i, deal in enumerate(deals):
        for step in range(2, 2 + len(PATH)):
            if not deal.advance(at=_at(i, step)):
                raise AssertionError(deal.state)
            moves += 1
    return moves


# -- measurement -------------------------------------------------------------------------------


def timed_once(prepare: Callable[[], Any], run: Callable[[Any], int]) -> float:
    """Microseconds per move of one fresh run (garbage collection paused while timing)."""
    prepared = prepare()
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    moves = run(prepared)
    elapsed = time.perf_counter() - start
    gc.enable()
    del prepared
    return elapsed / moves * 1e6


def timed_rounds(
    contenders: dict[str, tuple[Callable[[], Any], Callable[[Any], int]]], repeat: int
) -> dict[str, float]:
    """Median microseconds per move of each contender over ``repeat`` interleaved rounds.

    Every round runs every contender once, so a slow spell of a shared machine hits all of
    them alike and the ratios stay meaningful.
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (prepare, run) in contenders.items():
            samples[name].append(timed_once(prepare, run))
    return {name: statistics.median(values) for name, values in samples.items()}


def bytes_per_deal(make: Callable[[int], Any], n: int) -> float:
    """Bytes allocated per deal by ``make(n)``, measured with tracemalloc, kept alive."""
    b2b()  # the shared process is not part of a deal's cost
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    made = make(n)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del made
    return (after - before) / n


def stagegate_ten_events(n: int) -> list[Opportunity]:
    """Deals holding exactly 10 events: open, 6 evidence records, 3 advances."""
    deals = stagegate_prepare(n, evidence=6)
    for i, deal in enumerate(deals):
        for step in range(2, 5):
            deal.advance(at=_at(i, step), actor="bench")
        assert len(deal.events) == 10
    return deals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--per-deal-deals", type=int, default=20_000)
    parser.add_argument("--memory-deals", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, n_small = args.deals, min(args.deals, args.per_deal_deals)

    results: dict[str, Any] = {"deals": n, "transitions_per_deal_deals": n_small}
    results.update(
        timed_rounds(
            {
                "stagegate_us": (lambda: stagegate_prepare(n), stagegate_run),
                "floor_us": (lambda: floor_prepare(n), floor_run),
                "transitions_shared_us": (lambda: shared_prepare(n), shared_run),
                "transitions_per_deal_us": (lambda: per_deal_prepare(n_small), per_deal_run),
            },
            args.repeat,
        )
    )
    m = args.memory_deals
    results["stagegate_bytes_per_opportunity"] = round(bytes_per_deal(stagegate_ten_events, m))
    results["floor_bytes_per_opportunity"] = round(bytes_per_deal(floor_prepare, m))
    results["transitions_per_deal_bytes_per_opportunity"] = round(
        bytes_per_deal(per_deal_prepare, min(m, 5_000))
    )
    results["stagegate_vs_floor"] = round(results["stagegate_us"] / results["floor_us"], 2)
    results["stagegate_vs_transitions_per_deal"] = round(
        results["stagegate_us"] / results["transitions_per_deal_us"], 2
    )
    for key in ("stagegate_us", "floor_us", "transitions_shared_us", "transitions_per_deal_us"):
        results[key] = round(results[key], 3)
    print(
        f"python {sys.version.split()[0]}; {n} deals x {len(PATH)} transitions; "
        f"median of {args.repeat}",
        file=sys.stderr,
    )
    for key, value in results.items():
        print(f"  {key:<45} {value}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
