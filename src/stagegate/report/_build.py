"""Build the report document from a log: the analytics, assembled section by section."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from stagegate._time import to_utc
from stagegate.events import Event, EventKind, MoveKind
from stagegate.process import Process, StageKind

__all__ = ["build_document"]

MAX_DRAWS = 2_000_000
"""Most Monte Carlo draws (runs x open deals) the report's forecast makes."""
MIN_SIMULATIONS = 200
"""Fewest Monte Carlo runs of the report's forecast."""


def build_document(
    events: Iterable[Event] | Any,
    process: Process,
    *,
    as_of: datetime,
    title: str | None = None,
    generated_at: datetime | None = None,
    cutoff: datetime | None = None,
    estimator: str = "smoothed",
    simulations: int = 1000,
    seed: int = 0,
    stalled_rule: str = "strictest",
    flag_pushes: int = 2,
    top: int = 25,
) -> dict[str, Any]:
    """Compute every section of the pipeline health report from the events of a pipeline.

    Args:
        events: the events of any number of opportunities of ``process``, or, for large logs,
            a Polars DataFrame in the canonical stage-history shape plus the ``kind`` and
            ``move`` columns of :meth:`stagegate.store.EventStore.scan_rows` (the analytics
            then run on Polars).
        process: the process they were recorded under (stage kinds, probabilities, limits).
        as_of: the instant the report is for; open deals are censored there.
        title: the report title (default: the process name).
        generated_at: when the report was made (default: ``as_of``; no clock is read).
        cutoff: the backtest split (default: two thirds of the way from the first event).
        estimator: the probability estimator of the forecast.
        simulations: Monte Carlo runs of the forecast, at most: large pipelines get fewer runs
            (never under 200) so that runs x open deals stays under two million draws.
        seed: the forecast's random seed.
        stalled_rule: how stall limits combine (see ``stagegate.analytics.stalled``).
        flag_pushes: deals pushed at least this many times are listed as slipping.
        top: the longest lists (stalled, slipping deals) keep this many rows.

    Returns:
        A document for :func:`stagegate.report.render_html` (see ``docs/report.md``).
    """
    from stagegate import analytics as an  # noqa: PLC0415 - analytics builds on the core

    instant = to_utc(as_of, what="as_of")
    frame: Any = events if hasattr(events, "lazy") and hasattr(events, "columns") else None
    if frame is not None:
        log: Any = frame.filter(frame["at"] <= instant)
    else:
        log = [event for event in events if event.at <= instant]
    stages = process.stages
    document: dict[str, Any] = {
        "title": title or f"Pipeline health: {process.name}",
        "generated_at": to_utc(generated_at or instant).isoformat(),
        "as_of": instant.isoformat(),
        "process": {
            "name": process.name,
            "version": process.version,
            "stages": [
                {
                    "id": s.id,
                    "label": s.label,
                    "kind": s.kind.value,
                    "probability": s.probability,
                }
                for s in stages
            ],
        },
    }
    if len(log) == 0:
        document["summary"] = _empty_summary()
        return document

    # The visits are computed once and reused by every analysis that works on visits; those
    # that need amounts and close dates between stage changes read the log itself.
    visits = an.stage_intervals(log, process, as_of=instant)
    if frame is None:
        visits = list(visits)
    current = _records(an.snapshot(log, process, at=instant))
    cycles = an.cycle_times(visits, process, as_of=instant)
    document["summary"] = _summary(current, cycles, process)
    document["probabilities"] = [
        {
            "stage": p.stage,
            "configured": p.configured,
            "empirical": p.empirical,
            "low": p.empirical_low,
            "high": p.empirical_high,
            "n": p.closed,
            "markov": p.markov,
            "smoothed": p.smoothed,
        }
        for p in _ordered(
            _records(an.stage_probabilities(visits, process, as_of=instant, draws=0)), process
        )
    ]
    document["backtest"] = _backtest(an, log, process, instant, cutoff)
    document["time_in_stage"] = _time_in_stage(an, visits, process, instant)
    document["cycle_time"] = _cycle_time(cycles)
    document["funnel"] = [
        {
            "stage": f.stage,
            "reached": f.reached,
            "reach_rate": f.reached_rate,
            "conversion_from_previous": f.conversion_in_order,
            "lost_here": f.lost_here,
        }
        for f in _ordered(_records(an.funnel(visits, process, as_of=instant).stages), process)
    ]
    document["stalled"] = [
        {
            "opportunity_id": s.opportunity_id,
            "stage": s.stage,
            "days_in_stage": s.dwell_days,
            "limit_days": s.limit_days,
            "limit_source": s.limit_source,
            "times_won_median": s.times_won_median,
            "amount": s.amount,
        }
        for s in sorted(
            _records(an.stalled(visits, process, as_of=instant, rule=stalled_rule)),
            key=lambda s: (-(s.times_won_median or 0.0), -s.dwell_days, s.opportunity_id),
        )[:top]
    ]
    slips = an.slippage(log, process, as_of=instant, flag_pushes=flag_pushes)
    amounts = {s.opportunity_id: s.amount for s in current}
    stage_now = {s.opportunity_id: s.stage for s in current}
    slipping = sorted(
        (d for d in _records(slips.deals) if d.flagged and d.outcome == "open"),
        key=lambda d: (-d.pushes, -d.days_pushed, d.opportunity_id),
    )
    document["slipping"] = [
        {
            "opportunity_id": d.opportunity_id,
            "pushes": d.pushes,
            "days_pushed": d.days_pushed,
            "first_close_date": _iso(d.first_close_date),
            "close_date": _iso(d.current_close_date),
            "stage": stage_now.get(d.opportunity_id, ""),
            "amount": amounts.get(d.opportunity_id),
        }
        for d in slipping[:top]
    ]
    document["slip_summary"] = {
        "slip_rate": slips.slip_rate,
        "win_rate_by_pushes": [
            {"pushes": p.pushes, "n": p.closed, "win_rate": p.win_rate}
            for p in sorted(_records(slips.by_pushes), key=lambda p: p.pushes)
        ],
    }
    open_deals = sum(1 for s in current if s.kind == StageKind.OPEN.value)
    runs = min(simulations, max(MIN_SIMULATIONS, MAX_DRAWS // max(1, open_deals)))
    fc = an.forecast(log, process, as_of=instant, estimator=estimator, simulations=runs, seed=seed)
    periods = sorted(_records(fc.periods), key=lambda p: p.period)
    while periods and periods[-1].deals == 0 and periods[-1].p90 == 0:
        periods.pop()  # nothing is expected to close there
    document["forecast"] = [
        {
            "period": p.period,
            "weighted": p.weighted,
            "p10": p.p10,
            "p50": p.p50,
            "p90": p.p90,
            "n": p.deals,
        }
        for p in periods
    ]
    document["data_quality"] = _data_quality(log, current, process, instant, fc.unscheduled)
    return document


def _records(result: Any) -> list[Any]:
    """Records from either analytics path: a list of records, or a Polars frame of them."""
    if hasattr(result, "to_dicts"):
        return [SimpleNamespace(**row) for row in result.to_dicts()]
    return list(result)


def _ordered(rows: list[Any], process: Process) -> list[Any]:
    order = {s.id: i for i, s in enumerate(process.stages)}
    return sorted(rows, key=lambda row: order.get(row.stage, len(order)))


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _empty_summary() -> dict[str, Any]:
    return {
        "opportunities": 0,
        "open": 0,
        "won": 0,
        "lost": 0,
        "win_rate": None,
        "open_amount": 0.0,
        "weighted_amount": 0.0,
        "median_cycle_days": None,
    }


def _summary(current: Sequence[Any], cycles: Any, process: Process) -> dict[str, Any]:
    kinds = Counter(s.kind for s in current)
    closed = kinds["won"] + kinds["lost"]
    probability = process.probabilities()
    open_deals = [s for s in current if s.kind == "open"]
    cycle_days = [c.cycle_days for c in _records(cycles.deals) if c.outcome == "won"]
    return {
        "opportunities": len(current),
        "open": kinds["open"],
        "won": kinds["won"],
        "lost": kinds["lost"],
        "win_rate": kinds["won"] / closed if closed else None,
        "open_amount": float(sum(s.amount or 0.0 for s in open_deals)),
        "weighted_amount": float(
            sum((s.amount or 0.0) * probability.get(s.stage, 0.0) for s in open_deals)
        ),
        "median_cycle_days": statistics.median(cycle_days) if cycle_days else None,
    }


def _backtest(
    an: Any, log: Any, process: Process, as_of: datetime, cutoff: datetime | None
) -> dict[str, Any] | None:
    first = to_utc(log["at"].min()) if hasattr(log, "columns") else min(e.at for e in log)
    split = to_utc(cutoff, what="cutoff") if cutoff is not None else first + (as_of - first) * 2 / 3
    if not first < split < as_of:
        return None
    result = an.backtest(log, process, cutoff=split, as_of=as_of)
    scores = sorted(_records(result.scores), key=lambda s: an.ESTIMATORS.index(s.estimator))
    reliability = sorted(_records(result.reliability), key=lambda r: (r.estimator, r.bin))
    if not scores or all(s.deals == 0 for s in scores):
        return None
    return {
        "cutoff": split.isoformat(),
        "best": result.best or "",
        "scores": [
            {"estimator": s.estimator, "brier": s.brier, "log_loss": s.log_loss, "n": s.deals}
            for s in scores
        ],
        "reliability": [
            {
                "estimator": r.estimator,
                "bin_low": r.bin / 10,
                "bin_high": (r.bin + 1) / 10,
                "predicted": r.mean_predicted,
                "observed": r.observed_rate,
                "n": r.deals,
            }
            for r in reliability
        ],
    }


def _time_in_stage(an: Any, visits: Any, process: Process, as_of: datetime) -> list[Any]:
    rows: dict[str, dict[str, Any]] = {}
    for row in _records(an.time_in_stage(visits, process, as_of=as_of)):
        entry = rows.setdefault(
            row.stage,
            {
                "stage": row.stage,
                "won_median_days": None,
                "lost_median_days": None,
                "open_median_days": None,
                "lost_to_won_ratio": None,
                "won_n": 0,
                "lost_n": 0,
                "open_n": 0,
                "km_median_days": None,
            },
        )
        if row.outcome in ("won", "lost", "open"):
            entry[f"{row.outcome}_median_days"] = row.median_days
            entry[f"{row.outcome}_n"] = row.visits
        if row.outcome == "all":
            entry["km_median_days"] = row.km_median_days
        if row.lost_won_ratio is not None:
            entry["lost_to_won_ratio"] = row.lost_won_ratio
    order = {s.id: i for i, s in enumerate(process.stages)}
    return sorted(rows.values(), key=lambda r: order.get(r["stage"], len(order)))


def _cycle_time(cycles: Any) -> dict[str, Any]:
    by = {s.outcome: s for s in _records(cycles.summary)}

    def part(outcome: str) -> dict[str, Any]:
        summary = by.get(outcome)
        if summary is None:
            return {"n": 0, "mean_days": None, "median_days": None}
        return {
            "n": summary.deals,
            "mean_days": summary.mean_days,
            "median_days": summary.median_days,
        }

    closed = by.get("closed")
    stage_sum = None if closed is None else closed.stage_sum_days
    measured = None if closed is None else closed.mean_days
    if stage_sum is None or measured is None:
        explanation = "No closed deals yet: the cycle time is measured once deals close."
    else:
        gap = stage_sum - measured
        explanation = (
            f"The sum of the per-stage average durations is {stage_sum:.1f} days, the measured "
            f"average cycle {measured:.1f} days ({gap:+.1f}). The shortcut adds a stage's "
            "average even for deals that skipped the stage or were lost before it, and counts "
            "a re-entered stage once: weighting each stage by its visits per deal gives back "
            "the measured cycle exactly."
        )
    return {
        "won": part("won"),
        "lost": part("lost"),
        "sum_of_stage_means_days": stage_sum,
        "measured_mean_days": measured,
        "explanation": explanation,
    }


def _data_quality(
    log: Any,
    current: Sequence[Any],
    process: Process,
    as_of: datetime,
    unscheduled: int,
) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []

    def add(code: str, severity: str, count: int, message: str) -> None:
        if count:
            findings.append(
                {"code": code, "severity": severity, "count": count, "message": message}
            )

    open_deals = [s for s in current if s.kind == StageKind.OPEN.value]
    today = as_of.date()
    add(
        "overdue_close_date",
        "warning",
        sum(1 for s in open_deals if s.close_date is not None and s.close_date < today),
        "open deals whose expected close date has passed: reschedule or close them",
    )
    add(
        "no_amount",
        "warning",
        sum(1 for s in open_deals if s.amount is None),
        "open deals without an amount: they are left out of weighted pipeline and forecast",
    )
    add(
        "no_close_date",
        "warning",
        sum(1 for s in open_deals if s.close_date is None),
        "open deals without an expected close date: they cannot be forecast by period",
    )
    if hasattr(log, "columns"):
        counted = log.filter(log["kind"] == EventKind.STAGE_CHANGED.value)["move"].value_counts()
        moves = Counter(
            {MoveKind(row["move"]): row["count"] for row in counted.to_dicts() if row["move"]}
        )
        versions: set[str] = set()
    else:
        moves = Counter(e.move for e in log if e.kind is EventKind.STAGE_CHANGED)
        versions = {e.process_version for e in log if e.process == process.name}
    add(
        "gate_overrides",
        "warning",
        moves[MoveKind.OVERRIDE],
        "stage changes made despite an unmet gate (each with its reason in the log)",
    )
    add(
        "backward_moves",
        "info",
        moves[MoveKind.BACKWARD],
        "moves back to an earlier stage",
    )
    add(
        "reopened",
        "info",
        moves[MoveKind.REOPEN],
        "closed deals that were reopened",
    )
    add(
        "imported_history",
        "info",
        moves[MoveKind.IMPORTED],
        "stage changes taken from another system's history: never checked against the gates",
    )
    add(
        "unscheduled",
        "info",
        unscheduled,
        "open deals the forecast leaves out (no amount or no close date)",
    )
    add(
        "several_versions",
        "info",
        len(versions) if len(versions) > 1 else 0,
        f"events recorded under {len(versions)} versions of process {process.name!r}",
    )
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: (order[f["severity"]], -f["count"]))
    return findings
