"""Build the report document from a log: the analytics, assembled section by section."""

from __future__ import annotations

import contextlib
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import attrs

from stagegate._progress import Phases, phase_of
from stagegate._time import to_utc
from stagegate.analytics import _table
from stagegate.analytics._currency_guard import check_one_currency
from stagegate.analytics.intervals import prepare, to_native
from stagegate.analytics.probability import DEFAULT_ESTIMATOR
from stagegate.events import Event, EventKind, MoveKind
from stagegate.process import Process, StageKind
from stagegate.report._document import validate_document

__all__ = [
    "FALLBACK_ESTIMATOR",
    "MIN_BACKTEST_DEALS",
    "build_document",
    "choose_estimator",
    "configured_known",
]

MIN_BACKTEST_DEALS = 30
"""Fewest scored deals (with at least one won and one lost) for the backtest to name a winner."""
FALLBACK_ESTIMATOR = DEFAULT_ESTIMATOR
"""The estimator used when the backtest cannot decide and the process has no configured
probabilities: ``stagegate.analytics.DEFAULT_ESTIMATOR``."""
OVERDUE_RULE = (
    "An open deal has not closed before as_of, so its close date moves by a slip drawn from "
    "history (won deals: actual close minus the expected close in force when they entered "
    "their last open stage) among the slips that land on or after as_of: an overdue date is "
    "spread over the periods in which deals that late really closed, not piled onto the "
    "as_of period. The weighted column is not simulated: it puts each deal in the period of "
    "its expected close date (an overdue one in the as_of period)."
)

MAX_DRAWS = 2_000_000
"""Most Monte Carlo draws (runs x open deals) the report's forecast makes."""
MIN_SIMULATIONS = 200
"""Fewest Monte Carlo runs of the report's forecast."""


def build_document(  # noqa: PLR0915 - one section after another
    events: Iterable[Event] | Any,
    process: Process,
    *,
    as_of: datetime,
    title: str | None = None,
    generated_at: datetime | None = None,
    cutoff: datetime | None = None,
    estimator: str | None = None,
    simulations: int = 1000,
    seed: int = 0,
    stalled_rule: str = "strictest",
    flag_pushes: int = 2,
    top: int = 25,
    findings: Sequence[Any] = (),
    phases: Phases | None = None,
    by: str | Sequence[str] | None = None,
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
        estimator: the one probability estimator of every weighted figure (the weighted
            pipeline tile, the forecast, the probability table's highlighted column); default
            (``None``): see :func:`choose_estimator`.
        simulations: Monte Carlo runs of the forecast, at most: large pipelines get fewer runs
            (never under 200) so that runs x open deals stays under two million draws.
        seed: the forecast's random seed.
        stalled_rule: how stall limits combine (see ``stagegate.analytics.stalled``).
        flag_pushes: deals pushed at least this many times are listed as slipping.
        top: the longest lists (stalled, slipping deals) keep this many rows; their true
            counts are in ``stalled_count`` and ``slipping_count``.
        findings: findings of the import that produced the events (``stagegate.io.Finding``
            objects, or mappings with ``code``, ``severity`` and ``message``); they join the
            data-quality section, grouped by code.
        phases: receives the ``computing`` phase, counted in sections.
        by: the segment column(s) of the segment section (``"owner"``, ``"region,team"`` or
            ``("region", "team")``); default ``None``: no segment section, and no cost.

    Returns:
        A document for :func:`stagegate.report.render_html` (see ``docs/report.md``), valid
        against ``stagegate/schema/report.schema.json``.

    Raises:
        AnalyticsError: ``estimator`` is not one of ``stagegate.analytics.ESTIMATORS``.
        UnknownSegmentColumnError: ``by`` names a column the events do not carry.
    """
    from stagegate import analytics as an  # noqa: PLC0415 - analytics builds on the core

    instant = to_utc(as_of, what="as_of")
    if estimator is not None and estimator not in an.ESTIMATORS:
        raise an.AnalyticsError(
            f"unknown estimator {estimator!r}; choose one of {', '.join(an.ESTIMATORS)}"
        )
    known = configured_known(process)
    frame: Any = events if hasattr(events, "lazy") and hasattr(events, "columns") else None
    on_frames = frame is not None
    if frame is not None:
        late = frame["at"].max()
        # no copy of a log that ends by as_of (the usual case: as_of is its last instant)
        log: Any = (
            frame if late is None or late <= instant else frame.filter(frame["at"] <= instant)
        )
    else:
        log = [event for event in events if event.at <= instant]
    if by is not None:  # a bad --by fails before anything is computed
        from stagegate.report import _segments  # noqa: PLC0415 - only with by

        _segments.check_columns(log, by)
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
                    "labels": dict(s.labels),
                    "kind": s.kind.value,
                    "probability": s.probability,
                }
                for s in stages
            ],
            "configured_known": known,
        },
    }
    if len(log) == 0:
        document["summary"] = _empty_summary()
        document["data_quality"] = _import_findings(findings)
        return document

    tick = phase_of(phases, "computing", _SECTIONS)
    # The log is prepared once: its visits feed every analysis that works on visits, and the
    # prepared rows (amounts and close dates between stage changes) the snapshot, forecast and
    # slippage.
    check_one_currency(log)  # never a silent sum of several currencies
    facts = _LogFacts.of(log, process)
    prepared = prepare(log, process, as_of=instant, keep_rows=True)
    segments = None if by is None else _segments.segment_inputs(log, by)  # their history alone
    # every later section reads the prepared log (and the segment history): let go of the log
    del events, frame, log  # (freed here unless the caller still holds it)
    if not on_frames:
        visits: Any = list(prepared.python or ())
    else:
        visits = to_native(prepared, prepared.frame, text=False)  # stages stay coded
    tick(1)
    # what needs neither the snapshot nor the estimator is computed beside the forecast, in a
    # second thread on frames (Polars, numpy release the GIL); not beside the backtest, whose
    # fit at the cut-off is the largest working set after the prepared log itself
    with _lane(threaded=on_frames) as lane:
        current = _Current(an.snapshot(prepared, process, at=instant))
        tick(2)
        document["backtest"] = _backtest(an, prepared, facts.first, instant, cutoff, known=known)
        tick(3)
        later = lane.submit(
            _visit_sections,
            an,
            prepared,
            visits,
            process,
            instant,
            stalled_rule=stalled_rule,
            flag_pushes=flag_pushes,
            top=top,
        )
        choice = choose_estimator(estimator, document["backtest"], known=known)
        name = choice["name"]
        open_deals = current.kinds[StageKind.OPEN.value]
        runs = min(simulations, max(MIN_SIMULATIONS, MAX_DRAWS // max(1, open_deals)))
        fc = an.forecast(
            prepared, process, as_of=instant, estimator=name, simulations=runs, seed=seed
        )
        tick(4)
        probabilities = _records(an.stage_probabilities(visits, process, as_of=instant, draws=0))
        tick(5)
        sections = later.result()
    cycles = sections.cycles
    document["estimator"] = choice
    document["summary"] = _summary(current, cycles, fc)
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
            **{
                e: getattr(p, e)
                for e in an.ESTIMATORS
                if e not in _PROBABILITY_KEYS and hasattr(p, e)
            },
        }
        for p in _ordered(probabilities, process)
    ]
    document["time_in_stage"] = sections.time_in_stage
    document["cycle_time"] = _cycle_time(cycles)
    rows = sections.funnel
    document["funnel"] = [
        {
            "stage": f.stage,
            "reached": f.reached,
            "reach_rate": f.reached_rate,
            "reached_in_order": f.reached_in_order,
            # the strict conversion into this stage: the previous row's conversion onwards
            "conversion_from_previous": rows[i - 1].conversion_in_order if i else None,
            "lost_here": f.lost_here,
        }
        for i, f in enumerate(rows)
    ]
    tick(6)
    stalled, stalled_total = sections.stalled
    document["stalled_count"] = _count(stalled_total, top)
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
        for s in stalled
    ]
    tick(7)
    slips = sections.slips
    slipping, slipping_total = sections.slipping
    shown = current.of([d.opportunity_id for d in slipping])
    amounts = {s.opportunity_id: s.amount for s in shown}
    stage_now = {s.opportunity_id: s.stage for s in shown}
    document["slipping_count"] = _count(slipping_total, top)
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
        for d in slipping
    ]
    document["slip_summary"] = {
        "slip_rate": slips.slip_rate,
        "win_rate_by_pushes": [
            {"pushes": p.pushes, "n": p.closed, "win_rate": p.win_rate}
            for p in sorted(_records(slips.by_pushes), key=lambda p: p.pushes)
        ],
    }
    tick(8)
    document["forecast"] = _forecast_rows(fc)
    document["forecast_method"] = _forecast_method(fc, runs, seed)
    document["data_quality"] = _data_quality(
        facts, current, process, instant, fc.unscheduled, known=known
    ) + _import_findings(findings)
    document["data_quality"].sort(key=_finding_order)
    if by is not None:
        document["segments"] = _segments.segment_section(
            None,
            process,
            as_of=instant,
            by=by,
            estimator=name,
            stalled_rule=stalled_rule,
            flag_pushes=flag_pushes,
            top=top,
            computed=_segments.Computed(prepared, visits, slips, cycles, probabilities, segments),
        )
    tick(_SECTIONS)
    validate_document(document)  # what --json prints always matches the published schema
    return document


_PROBABILITY_KEYS = frozenset({"configured", "empirical", "markov", "smoothed", "dwell"})
"""Estimators with their own probability column (``dwell`` depends on the time in stage and
is not one number per stage); any newer estimator of ``ESTIMATORS`` gets a column by name."""


def configured_known(process: Process) -> bool:
    """Whether ``process`` carries probabilities at all: False when every open stage has 0.

    A process inferred from data (``stagegate.io.infer_process``) gives every open stage 0.0;
    its "configured" probabilities are then no baseline. The rule is
    ``stagegate.analytics.configured_known``.

    >>> from stagegate import b2b
    >>> configured_known(b2b())
    True
    """
    from stagegate import analytics as an  # noqa: PLC0415

    return bool(an.configured_known(process))


def choose_estimator(
    requested: str | None, backtest: dict[str, Any] | None, *, known: bool
) -> dict[str, Any]:
    """The one estimator of every weighted figure, and why: ``{"name", "chosen_by", "reason"}``.

    The estimator asked for (``chosen_by="option"``); else the backtest's best-calibrated one
    (``"backtest"``); else, where the backtest cannot decide, the configured probabilities
    (``"configured"``), or, when the process has none, ``DEFAULT_ESTIMATOR`` of the analytics
    (``"fallback"``).

    >>> choose_estimator(None, None, known=True)["name"]
    'configured'
    >>> choose_estimator("markov", None, known=True)["chosen_by"]
    'option'
    """
    if requested is not None:
        reason = f"{requested} was chosen for this report (--estimator {requested})."
        if requested == "configured" and not known:
            reason += (
                " The process has no configured probabilities (every open stage is 0%), so "
                "every weighted figure is 0."
            )
        return {"name": requested, "chosen_by": "option", "reason": reason}
    best = None if backtest is None else backtest.get("best")
    if best:
        score = next(s for s in backtest["scores"] if s["estimator"] == best)  # type: ignore[index]
        return {
            "name": best,
            "chosen_by": "backtest",
            "reason": (
                f"{best} is the best-calibrated estimator in the backtest (lowest Brier score, "
                f"{score['brier']:.3f} on {score['n']:,} deals open at the cut-off and closed "
                "since)."
            ),
        }
    why = (
        "there is no backtest (too little history before as_of)"
        if backtest is None
        else f"the backtest names no winner ({backtest.get('warning') or 'no scores'})"
    )
    if known:
        return {
            "name": "configured",
            "chosen_by": "configured",
            "reason": f"The process's configured probabilities are used: {why}.",
        }
    fallback = FALLBACK_ESTIMATOR
    return {
        "name": fallback,
        "chosen_by": "fallback",
        "reason": (
            f"{fallback} is used: {why}, and the process has no configured probabilities "
            "(every open stage is 0%, as in a process inferred from data)."
        ),
    }


def _count(total: int, top: int) -> dict[str, Any]:
    shown = min(total, top)
    return {"total": total, "shown": shown, "capped": total > shown}


def _finding_order(finding: dict[str, Any]) -> tuple[int, int, str]:
    order = {"error": 0, "warning": 1, "info": 2}
    return (order.get(finding["severity"], 3), -(finding["count"] or 0), finding["code"])


def _import_findings(findings: Sequence[Any]) -> list[dict[str, Any]]:
    """Import findings grouped by (code, severity): one data-quality row each."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        get = f.get if isinstance(f, Mapping) else lambda key, f=f: getattr(f, key)
        severity = get("severity")
        severity = str(getattr(severity, "value", severity))
        groups.setdefault((str(get("code")), severity), []).append(str(get("message")))
    rows = []
    for (code, severity), messages in groups.items():
        distinct = list(dict.fromkeys(messages))
        more = f" (and {len(distinct) - 1} more like it)" if len(distinct) > 1 else ""
        rows.append(
            {
                "code": code,
                "severity": severity,
                "count": len(messages),
                "message": f"{distinct[0]}{more}",
                "source": "import",
            }
        )
    return sorted(rows, key=_finding_order)


def _forecast_rows(fc: Any) -> list[dict[str, Any]]:
    periods = sorted(_records(fc.periods), key=lambda p: p.period)
    while periods and periods[-1].deals == 0 and periods[-1].p90 == 0:
        periods.pop()  # nothing is expected to close there
    return [
        {
            "period": p.period,
            "weighted": p.weighted,
            "simulated_mean": p.simulated_mean,
            "p10": p.p10,
            "p50": p.p50,
            "p90": p.p90,
            "n": p.deals,
            "overdue": p.overdue,
            "outside_range": not p.p10 <= p.weighted <= p.p90,
        }
        for p in periods
    ]


def _forecast_method(fc: Any, runs: int, seed: int) -> dict[str, Any]:
    return {
        "estimator": fc.estimator,
        "simulations": runs,
        "seed": seed,
        "slip_samples": fc.slip_samples,
        "overdue_deals": fc.overdue,
        "beyond_history": fc.beyond_history,
        "unscheduled": fc.unscheduled,
        "overdue_rule": OVERDUE_RULE,
    }


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
        "weighted_estimator": None,
        "median_cycle_days": None,
    }


_SECTIONS = 9
"""Steps of the ``computing`` phase."""


@attrs.frozen
class _VisitSections:
    """The analyses of the visits and rows that need neither the snapshot nor the estimator."""

    cycles: Any
    time_in_stage: list[Any]
    funnel: list[Any]
    stalled: tuple[list[Any], int]
    slips: Any
    slipping: tuple[list[Any], int]


def _visit_sections(
    an: Any,
    prepared: Any,
    visits: Any,
    process: Process,
    as_of: datetime,
    *,
    stalled_rule: str,
    flag_pushes: int,
    top: int,
) -> _VisitSections:
    slips = an.slippage(prepared, process, as_of=as_of, flag_pushes=flag_pushes)
    return _VisitSections(
        cycles=an.cycle_times(visits, process, as_of=as_of),
        time_in_stage=_time_in_stage(an, visits, process, as_of),
        funnel=_ordered(_records(an.funnel(visits, process, as_of=as_of).stages), process),
        stalled=_top(
            an.stalled(visits, process, as_of=as_of, rule=stalled_rule),
            [("times_won_median", True), ("dwell_days", True), ("opportunity_id", False)],
            top,
        ),
        slips=slips,
        slipping=_top(
            slips.deals,
            [("pushes", True), ("days_pushed", True), ("opportunity_id", False)],
            top,
            flagged_open=True,
        ),
    )


@contextlib.contextmanager
def _lane(*, threaded: bool) -> Iterator[Executor]:
    """A second lane of work: a thread (frames) or the caller's own (records: the GIL)."""
    if threaded and _table.WORKERS > 1:
        with ThreadPoolExecutor(1, thread_name_prefix="stagegate-report") as pool:
            yield pool
    else:
        yield _Inline()


class _Inline(Executor):
    """An executor that runs each task at once, in the caller's thread."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to whoever reads the result
            done.set_exception(error)
        return done


class _Current:
    """The snapshot at ``as_of``, as records (pure-Python path) or as a frame (never listed)."""

    def __init__(self, result: Any) -> None:
        self.frame = _narwhals(result)
        self.records = None if self.frame is not None else list(result)
        if self.frame is None:
            self.kinds = Counter(s.kind for s in self.records or ())
            self.total = len(self.records or ())
        else:
            import narwhals as nw  # noqa: PLC0415

            counted = self.frame.group_by("kind").agg(nw.len().alias("n")).rows()
            self.kinds = Counter({str(kind): int(n) for kind, n in counted})
            self.total = len(self.frame)

    def of(self, ids: Sequence[str]) -> list[Any]:
        """The snapshot rows of these opportunities."""
        if self.frame is None:
            wanted = set(ids)
            return [s for s in self.records or () if s.opportunity_id in wanted]
        import narwhals as nw  # noqa: PLC0415

        rows = self.frame.filter(nw.col("opportunity_id").is_in(list(ids)))
        return [SimpleNamespace(**row) for row in rows.rows(named=True)]

    def open_counts(self, today: Any) -> tuple[int, int, int]:
        """Open deals that are overdue, without an amount, and without a close date."""
        if self.frame is None:
            open_deals = [s for s in self.records or () if s.kind == StageKind.OPEN.value]
            return (
                sum(1 for s in open_deals if s.close_date is not None and s.close_date < today),
                sum(1 for s in open_deals if s.amount is None),
                sum(1 for s in open_deals if s.close_date is None),
            )
        import narwhals as nw  # noqa: PLC0415

        open_deals = self.frame.filter(nw.col("kind") == StageKind.OPEN.value)
        overdue, no_amount, no_date = open_deals.select(
            (nw.col("close_date") < nw.lit(today)).sum().alias("overdue"),
            nw.col("amount").null_count().alias("no_amount"),
            nw.col("close_date").null_count().alias("no_date"),
        ).row(0)
        return int(overdue or 0), int(no_amount), int(no_date)


def _narwhals(result: Any) -> Any:
    """An eager narwhals frame of an analytics result in a frame backend (``None``: records)."""
    if isinstance(result, (list, tuple)):
        return None
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(result)
    return frame.collect() if isinstance(frame, nw.LazyFrame) else frame


def _top(
    result: Any, order: Sequence[tuple[str, bool]], top: int, *, flagged_open: bool = False
) -> tuple[list[Any], int]:
    """The first ``top`` rows in ``order``, and how many rows there are in all.

    ``order`` names the sort columns, ``True`` for descending (nulls then count as 0);
    ``flagged_open`` keeps only the flagged deals still open. A frame is never listed whole.
    """
    frame = _narwhals(result)
    if frame is None:
        rows = [r for r in result if not flagged_open or (r.flagged and r.outcome == "open")]

        def key(row: Any) -> tuple[Any, ...]:
            return tuple(
                -(getattr(row, name) or 0.0) if down else getattr(row, name) for name, down in order
            )

        return sorted(rows, key=key)[:top], len(rows)
    import narwhals as nw  # noqa: PLC0415

    if flagged_open:
        frame = frame.filter(nw.col("flagged") & (nw.col("outcome") == "open"))
    ordered = frame.with_columns(
        **{f"_{name}": nw.col(name).fill_null(0) for name, down in order if down}
    ).sort(
        [f"_{name}" if down else name for name, down in order],
        descending=[down for _, down in order],
    )
    rows = ordered.head(top).select(frame.columns).rows(named=True)
    return [SimpleNamespace(**row) for row in rows], len(frame)


def _median(values: Any) -> float | None:
    """``statistics.median`` of a frame column, reading only its one or two middle values."""
    ordered = values.filter(~values.is_null()).sort()
    n = len(ordered)
    if not n:
        return None
    return float(statistics.median(ordered[(n - 1) // 2 : n // 2 + 1].to_list()))


def _summary(current: _Current, cycles: Any, fc: Any) -> dict[str, Any]:
    kinds = current.kinds
    closed = kinds["won"] + kinds["lost"]
    deals = _narwhals(cycles.deals)
    if deals is None:
        cycle_days = [c.cycle_days for c in cycles.deals if c.outcome == "won"]
        median = statistics.median(cycle_days) if cycle_days else None
    else:
        import narwhals as nw  # noqa: PLC0415

        median = _median(deals.filter(nw.col("outcome") == "won").get_column("cycle_days"))
    return {
        "opportunities": current.total,
        "open": kinds["open"],
        "won": kinds["won"],
        "lost": kinds["lost"],
        "win_rate": kinds["won"] / closed if closed else None,
        "open_amount": float(fc.pipeline),
        "weighted_amount": float(fc.weighted),
        "weighted_estimator": fc.estimator,
        "median_cycle_days": median,
    }


def _backtest(
    an: Any,
    prepared: Any,
    first: datetime,
    as_of: datetime,
    cutoff: datetime | None,
    *,
    known: bool,
) -> dict[str, Any] | None:
    """The backtest section, fitted at ``cutoff`` and scored at ``as_of``.

    The cut-off defaults to two thirds of the way from ``first``; the log prepared once is
    read (only the visits at the cut-off are new).
    """
    from stagegate.analytics.backtest import backtest_prepared  # noqa: PLC0415

    split = to_utc(cutoff, what="cutoff") if cutoff is not None else first + (as_of - first) * 2 / 3
    if not first < split < as_of:
        return None
    result = backtest_prepared(prepared, split)
    excluded = [] if known else ["configured"]
    rank = {e: i for i, e in enumerate(an.ESTIMATORS)}
    scores = sorted(
        (s for s in _records(result.scores) if s.estimator not in excluded),
        key=lambda s: rank.get(s.estimator, len(rank)),
    )
    reliability = sorted(
        (r for r in _records(result.reliability) if r.estimator not in excluded),
        key=lambda r: (rank.get(r.estimator, len(rank)), r.bin),
    )
    deals = max((s.deals for s in scores), default=0)
    won = max((round(s.observed_rate * s.deals) for s in scores if s.deals), default=0)
    best, warning = _winner(result, scores, deals=deals, won=won)
    return {
        "cutoff": split.isoformat(),
        "best": best,
        "warning": warning,
        "scored": deals,
        "scored_won": won,
        "scored_lost": deals - won,
        "excluded": [
            {
                "estimator": e,
                "reason": "the process has no configured probabilities (every open stage is "
                "0%, as in a process inferred from data): not a baseline",
            }
            for e in excluded
        ],
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


def _winner(result: Any, scores: Sequence[Any], *, deals: int, won: int) -> tuple[Any, Any]:
    """The backtest's winner among ``scores``, or ``None`` and a warning saying why not."""
    if deals == 0:
        return None, "no deal open at the cut-off has closed since: nothing to score"
    if won in (0, deals):
        missing = "won" if won == 0 else "lost"
        return None, (
            f"the {deals:,} scored deals include no {missing} deal: every estimator that "
            f"predicts {'0' if won == 0 else '1'} scores perfectly, so no score can tell "
            "them apart"
        )
    if deals < MIN_BACKTEST_DEALS:
        return None, (
            f"only {deals:,} deals were scored (fewer than {MIN_BACKTEST_DEALS}): too few to "
            "rank the estimators"
        )
    if getattr(result, "best", None) is None:
        reason = getattr(result, "reason", None) or getattr(result, "warning", None)
        return None, str(reason or "the backtest names no winner")
    names = [s.estimator for s in scores if s.brier is not None]
    if result.best in names:
        return result.best, None
    scored = [s for s in scores if s.brier is not None]
    return min(scored, key=lambda s: s.brier).estimator, None  # configured was excluded


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
                "lost_to_won_median_ratio": None,
                "lost_to_won_mean_ratio": None,
                "won_n": 0,
                "lost_n": 0,
                "open_n": 0,
                "km_median_days": None,
                "won_deal_clock_median_days": None,
                "lost_deal_clock_median_days": None,
                "open_share": None,
            },
        )
        if row.outcome in ("won", "lost", "open"):
            entry[f"{row.outcome}_median_days"] = row.median_days
            entry[f"{row.outcome}_n"] = row.visits
        if row.outcome in ("won", "lost"):
            entry[f"{row.outcome}_deal_clock_median_days"] = row.deal_clock_median_days
        if row.open_share is not None:
            entry["open_share"] = row.open_share
        if row.outcome == "all":
            entry["km_median_days"] = row.km_median_days
        if row.lost_won_ratio is not None:
            entry["lost_to_won_mean_ratio"] = row.lost_won_ratio
    for entry in rows.values():
        won, lost = entry["won_median_days"], entry["lost_median_days"]
        if won and lost is not None:
            entry["lost_to_won_median_ratio"] = lost / won
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


@attrs.frozen
class _LogFacts:
    """What the report reads off the log itself rather than off its visits.

    The first instant, the stage changes by kind of move, and the process versions recorded.
    """

    first: datetime
    moves: Counter[MoveKind]
    versions: frozenset[str]

    @classmethod
    def of(cls, log: Any, process: Process) -> _LogFacts:
        """The facts of a non-empty log (a frame, or a list of events of ``process``)."""
        if hasattr(log, "columns"):
            changes = log.filter(log["kind"] == EventKind.STAGE_CHANGED.value)
            counted = changes["move"].value_counts().to_dicts()
            has_versions = "process_version" in log.columns
            return cls(
                first=to_utc(log["at"].min()),
                moves=Counter({MoveKind(r["move"]): r["count"] for r in counted if r["move"]}),
                versions=frozenset(log["process_version"].unique().to_list())
                if has_versions
                else frozenset(),
            )
        return cls(
            first=min(e.at for e in log),
            moves=Counter(e.move for e in log if e.kind is EventKind.STAGE_CHANGED),
            versions=frozenset(e.process_version for e in log if e.process == process.name),
        )


def _data_quality(
    facts: _LogFacts,
    current: _Current,
    process: Process,
    as_of: datetime,
    unscheduled: int,
    *,
    known: bool,
) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []

    def add(code: str, severity: str, count: int, message: str) -> None:
        if count:
            findings.append(
                {
                    "code": code,
                    "severity": severity,
                    "count": count,
                    "message": message,
                    "source": "log",
                }
            )

    overdue, no_amount, no_date = current.open_counts(as_of.date())
    add(
        "overdue_close_date",
        "warning",
        overdue,
        "open deals whose expected close date has passed: reschedule or close them",
    )
    add(
        "no_amount",
        "warning",
        no_amount,
        "open deals without an amount: they are left out of weighted pipeline and forecast",
    )
    add(
        "no_close_date",
        "warning",
        no_date,
        "open deals without an expected close date: they cannot be forecast by period",
    )
    moves, versions = facts.moves, facts.versions
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
    add(
        "no_configured_probabilities",
        "warning",
        0 if known else len(process.open_stages),
        "open stages without a configured probability (all 0%, as in a process inferred from "
        "data): the configured estimator is no baseline and is left out of the backtest",
    )
    return findings
