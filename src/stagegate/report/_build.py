"""Build the report document from a log: the analytics, assembled section by section.

:func:`build_document` filters and prepares the log once, runs the analyses (the visit
sections in a second lane beside the forecast on frames) and asks one module per idea for
its section: the estimator choice and backtest (``_estimator``), the per-stage tables
(``_stages``), the deal lists (``_deals``), the forecast (``_forecast``) and data quality
(``_quality``), all reading the analytics' results through ``_results``. Only the summary
and the orchestration live here.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import attrs

from stagegate._progress import Phases, phase_of
from stagegate._time import to_utc
from stagegate.analytics import _table
from stagegate.analytics._currency_guard import check_one_currency
from stagegate.analytics.intervals import prepare, to_native
from stagegate.events import Event
from stagegate.process import Process, StageKind
from stagegate.report._deals import count_of, slip_summary, slipping_rows, stalled_rows
from stagegate.report._document import validate_document
from stagegate.report._estimator import (
    MIN_BACKTEST_DEALS,
    backtest_section,
    choose_estimator,
    configured_known,
)
from stagegate.report._forecast import forecast_method, forecast_rows, simulation_runs
from stagegate.report._quality import LogFacts, data_quality, finding_order, import_findings
from stagegate.report._results import Current, narwhals_frame, records, top_rows
from stagegate.report._stages import (
    cycle_time_section,
    funnel_rows,
    ordered,
    probability_rows,
    time_in_stage_rows,
)

__all__ = [
    "MIN_BACKTEST_DEALS",  # re-exported: tests/test_report_build.py imports it from here
    "build_document",
]


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
        document["data_quality"] = import_findings(findings)
        return document

    tick = phase_of(phases, "computing", _SECTIONS)
    # The log is prepared once: its visits feed every analysis that works on visits, and the
    # prepared rows (amounts and close dates between stage changes) the snapshot, forecast and
    # slippage.
    check_one_currency(log)  # never a silent sum of several currencies
    facts = LogFacts.of(log, process)
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
        current = Current(an.snapshot(prepared, process, at=instant))
        tick(2)
        document["backtest"] = backtest_section(
            an, prepared, facts.first, instant, cutoff, known=known
        )
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
        runs = simulation_runs(simulations, open_deals=open_deals)
        fc = an.forecast(
            prepared, process, as_of=instant, estimator=name, simulations=runs, seed=seed
        )
        tick(4)
        probabilities = records(an.stage_probabilities(visits, process, as_of=instant, draws=0))
        tick(5)
        sections = later.result()
    cycles = sections.cycles
    document["estimator"] = choice
    document["summary"] = _summary(current, cycles, fc)
    document["probabilities"] = probability_rows(an, probabilities, process)
    document["time_in_stage"] = sections.time_in_stage
    document["cycle_time"] = cycle_time_section(cycles)
    document["funnel"] = funnel_rows(sections.funnel)
    tick(6)
    stalled, stalled_total = sections.stalled
    document["stalled_count"] = count_of(stalled_total, top)
    document["stalled"] = stalled_rows(stalled)
    tick(7)
    slips = sections.slips
    slipping, slipping_total = sections.slipping
    document["slipping_count"] = count_of(slipping_total, top)
    document["slipping"] = slipping_rows(slipping, current)
    document["slip_summary"] = slip_summary(slips)
    tick(8)
    document["forecast"] = forecast_rows(fc)
    document["forecast_method"] = forecast_method(fc, runs, seed)
    document["data_quality"] = data_quality(
        facts, current, process, instant, fc.unscheduled, known=known
    ) + import_findings(findings)
    document["data_quality"].sort(key=finding_order)
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
        time_in_stage=time_in_stage_rows(an, visits, process, as_of),
        funnel=ordered(records(an.funnel(visits, process, as_of=as_of).stages), process),
        stalled=top_rows(
            an.stalled(visits, process, as_of=as_of, rule=stalled_rule),
            [("times_won_median", True), ("dwell_days", True), ("opportunity_id", False)],
            top,
        ),
        slips=slips,
        slipping=top_rows(
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


def _median(values: Any) -> float | None:
    """``statistics.median`` of a frame column, reading only its one or two middle values."""
    present = values.filter(~values.is_null()).sort()
    n = len(present)
    if not n:
        return None
    return float(statistics.median(present[(n - 1) // 2 : n // 2 + 1].to_list()))


def _summary(current: Current, cycles: Any, fc: Any) -> dict[str, Any]:
    kinds = current.kinds
    closed = kinds["won"] + kinds["lost"]
    deals = narwhals_frame(cycles.deals)
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
