"""Shared inputs for the analytics tests: edge-case logs and a small simulated pipeline."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs

from stagegate.simulate import simulate

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = {
    "lead": "open",
    "demo": "open",
    "proposal": "open",
    "won": "won",
    "lost": "lost",
}


def canonical_schema() -> dict[str, Any]:
    """The Polars schema of the canonical stage-history table (imports Polars)."""
    import polars as pl

    return {
        "opportunity_id": pl.String,
        "at": pl.Datetime("us", "UTC"),
        "seq": pl.Int64,
        "stage": pl.String,
        "amount": pl.Float64,
        "close_date": pl.Date,
        "reason": pl.String,
    }


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def row(opp: str, days: float, stage: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {"opportunity_id": opp, "at": at(days), "stage": stage, "seq": seq, **extra}


def edge_rows() -> list[dict[str, Any]]:
    """Re-entries, skips, backward moves, same-instant ties, reopenings, reschedules."""
    c = date(2026, 2, 1)
    rows = [
        # straight win with two pushes, one across a quarter boundary
        row("a", 0, "lead", 1, amount=100.0, close_date=c),
        row("a", 2, "demo", 2, amount=100.0, close_date=c),
        row("a", 3, "demo", 3, amount=120.0, close_date=date(2026, 3, 20)),
        row("a", 5, "proposal", 4, amount=120.0, close_date=date(2026, 4, 2)),
        row("a", 9, "won", 5, amount=120.0, close_date=date(2026, 4, 2)),
        # skip lead -> proposal, backward to demo, then lost with a reason
        row("b", 1, "lead", 1, amount=50.0, close_date=c),
        row("b", 4, "proposal", 2, amount=50.0, close_date=c),
        row("b", 6, "demo", 3, amount=50.0, close_date=c),
        row("b", 8.5, "lost", 4, amount=50.0, close_date=c, reason="price"),
        # same-instant tie: demo and proposal at the same instant (zero-length demo visit)
        row("c", 2, "lead", 1, amount=70.0, close_date=date(2026, 1, 20)),
        row("c", 3, "demo", 2, amount=70.0, close_date=date(2026, 1, 20)),
        row("c", 3, "proposal", 3, amount=70.0, close_date=date(2026, 1, 25)),
        # re-entry: lead -> demo -> lead -> demo, still open (censored)
        row("d", 0.5, "lead", 1, amount=30.0, close_date=c),
        row("d", 1.5, "demo", 2, amount=30.0, close_date=c),
        row("d", 2.5, "lead", 3, amount=30.0, close_date=c),
        row("d", 4.25, "demo", 4, amount=30.0, close_date=date(2026, 2, 10)),
        # won, reopened, lost
        row("e", 0, "lead", 1, amount=10.0, close_date=c),
        row("e", 3, "won", 2, amount=10.0, close_date=c),
        row("e", 5, "demo", 3, amount=10.0, close_date=c),
        row("e", 7, "lost", 4, amount=10.0, close_date=c, reason="timing"),
        # a row after as_of (ignored) and an open deal without amount or close date
        row("f", 1, "lead", 1, amount=None, close_date=None),
        row("f", 40, "won", 2, amount=None, close_date=None),
        # lost straight from lead, no reason
        row("g", 2, "lead", 1, amount=5.0, close_date=c),
        row("g", 3.75, "lost", 2, amount=5.0, close_date=c),
    ]
    for r in rows:
        r.setdefault("reason", None)
    return rows


AS_OF = at(12)


def sim_rows(deals: int = 400, seed: int = 3) -> tuple[list[dict[str, Any]], dict[str, str], Any]:
    """A simulated pipeline as canonical rows, its kinds and the simulation."""
    sim = simulate(deals, seed=seed, span_days=120)
    rows = [
        {
            "opportunity_id": e.opportunity_id,
            "at": e.at,
            "seq": e.seq,
            "stage": e.stage,
            "amount": float(e.amount) if e.amount is not None else None,
            "close_date": e.close_date,
            "reason": e.reason,
        }
        for e in sim.events
    ]
    return rows, sim.model.outcomes(), sim


def normalize(value: Any) -> Any:
    """Make a result comparable: records and frames become sorted lists of plain dicts."""
    if isinstance(value, list):
        return [_plain(_unsegmented(r)) if attrs.has(type(r)) else _plain(r) for r in value]
    import narwhals as nw

    frame = nw.from_native(value)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return [_plain(r) for r in frame.rows(named=True)]


def _unsegmented(record: Any) -> dict[str, Any]:
    """A record without its ``by=`` fields when it is not per segment (frames lack them)."""
    values = attrs.asdict(record)
    if values.get("segment") != ():
        return values
    by_only = {f.name for f in attrs.fields(type(record)) if f.metadata.get("by")}
    return {k: v for k, v in values.items() if k not in by_only}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, raw in row.items():
        out[key] = _scalar(raw)
    return out


def _scalar(v: Any) -> Any:
    if v is not None and isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if isinstance(v, datetime):
        return v.astimezone(UTC)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


def same(expected: list[dict[str, Any]], actual: list[dict[str, Any]], key: Any = None) -> None:
    """Assert two lists of row dicts are equal up to order (by ``key``) and float rounding."""
    if key is not None:
        expected = sorted(expected, key=key)
        actual = sorted(actual, key=key)
    assert len(expected) == len(actual), (len(expected), len(actual))
    for e, a in zip(expected, actual, strict=False):
        assert e.keys() == a.keys(), (e.keys(), a.keys())
        for k in e:
            x, y = e[k], a[k]
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None, (k, e, a)
                assert y is not None, (k, e, a)
                assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9), (k, e, a)
            else:
                assert x == y, (k, e, a)


def with_activities(process: Any, events: list[Any], as_of: datetime, every: int = 2) -> list[Any]:
    """``events`` with a logged call on every ``every``-th deal, a day after its last event.

    The simulator logs no activities; staleness by activity needs some deals that have them.
    """
    from stagegate import Opportunity

    logs: dict[str, list[Any]] = {}
    for event in events:
        logs.setdefault(event.opportunity_id, []).append(event)
    out: list[Any] = []
    for n, (_, log) in enumerate(sorted(logs.items())):
        later = log[-1].at + timedelta(days=1)
        if n % every == 0 and later <= as_of:
            deal = Opportunity.replay(process, log)
            deal.log_activity("call", at=later, actor="calendar")
            out.extend(deal.events)
        else:
            out.extend(log)
    return out
