"""Every number of the report document, rebuilt from public ``stagegate.analytics`` calls.

The rebuild below calls the analytics directly with the document's ``as_of`` and estimator and
names the expected value of every numeric leaf by its path (``funnel[2].reached``). The test
walks the whole document: a number the rebuild does not account for fails it, as does a number
that differs. It runs on the simulated demo pipeline (what ``stagegate simulate`` writes) and,
when ``../shared/data`` is present, on the Maven CRM and Pipedrive imports.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.parser import isoparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import analytics as an
from stagegate import b2b
from stagegate.events import EventKind, MoveKind
from stagegate.process import Process
from stagegate.report import build_document, validate_document
from stagegate.simulate import simulate

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PIPEDRIVE = DATA / "pipedrive-deal-changes"
MAVEN = DATA / "maven-crm"
TOP = 25


def numeric_leaves(value: Any, path: str = "") -> dict[str, float]:
    """Every int or float (never a bool) of a JSON-like value, by its path."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= numeric_leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= numeric_leaves(item, f"{path}[{index}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found[path] = value
    return found


def put(expected: dict[str, Any], path: str, value: Any) -> None:
    """Expect ``value`` at ``path`` (``None``: the document must hold no number there)."""
    expected[path] = value


def probability_of(row: Any, estimator: str) -> float:
    """A stage's probability by ``estimator``, falling back to ``smoothed`` as documented."""
    value = getattr(row, estimator)
    if value is None:
        value = row.smoothed
    return 0.0 if value is None else value


def rebuild(events: list[Any], process: Process, document: dict[str, Any]) -> dict[str, Any]:
    """The expected value of every numeric leaf of ``document``, from the analytics."""
    as_of = isoparse(document["as_of"])
    estimator = document["estimator"]["name"]
    log = [e for e in events if e.at <= as_of]
    e: dict[str, Any] = {}
    for i, stage in enumerate(process.stages):
        put(e, f"process.stages[{i}].probability", stage.probability)

    current = an.snapshot(log, process, at=as_of)
    open_deals = [s for s in current if s.kind == "open"]
    kinds = Counter(s.kind for s in current)
    closed = kinds["won"] + kinds["lost"]
    put(e, "summary.opportunities", len(current))
    for kind in ("open", "won", "lost"):
        put(e, f"summary.{kind}", kinds[kind])
    put(e, "summary.win_rate", kinds["won"] / closed if closed else None)
    put(e, "summary.open_amount", sum(s.amount or 0.0 for s in open_deals))
    visits = list(an.stage_intervals(log, process, as_of=as_of))
    cycles = an.cycle_times(visits, process, as_of=as_of)
    won_cycles = [c.cycle_days for c in cycles.deals if c.outcome == "won"]
    put(e, "summary.median_cycle_days", statistics.median(won_cycles) if won_cycles else None)

    probabilities = {
        p.stage: p for p in an.stage_probabilities(visits, process, as_of=as_of, draws=0)
    }
    for i, stage in enumerate(s.id for s in process.open_stages):
        p = probabilities[stage]
        for key, value in (
            ("configured", p.configured),
            ("empirical", p.empirical),
            ("low", p.empirical_low),
            ("high", p.empirical_high),
            ("n", p.closed),
            ("markov", p.markov),
            ("smoothed", p.smoothed),
        ):
            put(e, f"probabilities[{i}].{key}", value)
        for name in an.ESTIMATORS:  # a newer estimator has its own column
            if name not in {"configured", "empirical", "markov", "smoothed", "dwell"}:
                put(e, f"probabilities[{i}].{name}", getattr(p, name))

    runs = min(1000, max(200, 2_000_000 // max(1, len(open_deals))))
    fc = an.forecast(log, process, as_of=as_of, estimator=estimator, simulations=runs, seed=0)
    if hasattr(probabilities[process.open_stages[0].id], estimator) and estimator != "dwell":
        weighted = sum(
            (s.amount or 0.0) * probability_of(probabilities[s.stage], estimator)
            for s in open_deals
        )
    else:  # dwell depends on each deal's time in stage: the forecast's own total
        weighted = fc.weighted
    put(e, "summary.weighted_amount", weighted)
    periods = sorted(fc.periods, key=lambda p: p.period)
    while periods and periods[-1].deals == 0 and periods[-1].p90 == 0:
        periods.pop()
    unscheduled = [s for s in open_deals if s.amount is not None and s.close_date is None]
    assert weighted == pytest.approx(
        sum(p.weighted for p in fc.periods)
        + sum(s.amount * probability_of(probabilities[s.stage], estimator) for s in unscheduled)
        if estimator != "dwell"
        else weighted
    )
    for i, p in enumerate(periods):
        for key, value in (
            ("weighted", p.weighted),
            ("simulated_mean", p.simulated_mean),
            ("p10", p.p10),
            ("p50", p.p50),
            ("p90", p.p90),
            ("n", p.deals),
            ("overdue", p.overdue),
        ):
            put(e, f"forecast[{i}].{key}", value)
    for key, value in (
        ("simulations", runs),
        ("seed", 0),
        ("slip_samples", fc.slip_samples),
        ("overdue_deals", fc.overdue),
        ("beyond_history", fc.beyond_history),
        ("unscheduled", fc.unscheduled),
    ):
        put(e, f"forecast_method.{key}", value)

    backtest = document.get("backtest")
    if backtest is not None:
        result = an.backtest(log, process, cutoff=isoparse(backtest["cutoff"]), as_of=as_of)
        known = any((s.probability or 0.0) > 0 for s in process.open_stages)
        rank = {name: i for i, name in enumerate(an.ESTIMATORS)}
        scores = sorted(
            (s for s in result.scores if known or s.estimator != "configured"),
            key=lambda s: rank.get(s.estimator, len(rank)),
        )
        scored = max(s.deals for s in scores)
        won = max((round(s.observed_rate * s.deals) for s in scores if s.deals), default=0)
        put(e, "backtest.scored", scored)
        put(e, "backtest.scored_won", won)
        put(e, "backtest.scored_lost", scored - won)
        for i, s in enumerate(scores):
            put(e, f"backtest.scores[{i}].brier", s.brier)
            put(e, f"backtest.scores[{i}].log_loss", s.log_loss)
            put(e, f"backtest.scores[{i}].n", s.deals)
        bins = sorted(
            (r for r in result.reliability if known or r.estimator != "configured"),
            key=lambda r: (rank.get(r.estimator, len(rank)), r.bin),
        )
        for i, r in enumerate(bins):
            put(e, f"backtest.reliability[{i}].bin_low", r.bin / 10)
            put(e, f"backtest.reliability[{i}].bin_high", (r.bin + 1) / 10)
            put(e, f"backtest.reliability[{i}].predicted", r.mean_predicted)
            put(e, f"backtest.reliability[{i}].observed", r.observed_rate)
            put(e, f"backtest.reliability[{i}].n", r.deals)

    times = {(t.stage, t.outcome): t for t in an.time_in_stage(visits, process, as_of=as_of)}
    seen = [s.id for s in process.stages if any(stage == s.id for stage, _ in times)]
    for i, stage in enumerate(seen):
        for outcome in ("won", "lost", "open"):
            row = times.get((stage, outcome))
            put(e, f"time_in_stage[{i}].{outcome}_median_days", row and row.median_days)
            put(e, f"time_in_stage[{i}].{outcome}_n", row.visits if row else 0)
        for outcome in ("won", "lost"):
            row = times.get((stage, outcome))
            put(
                e,
                f"time_in_stage[{i}].{outcome}_deal_clock_median_days",
                row and row.deal_clock_median_days,
            )
        everything = times.get((stage, "all"))
        put(e, f"time_in_stage[{i}].km_median_days", everything and everything.km_median_days)
        put(e, f"time_in_stage[{i}].open_share", everything and everything.open_share)
        won_m = times.get((stage, "won"))
        lost_m = times.get((stage, "lost"))
        ratio = (
            lost_m.median_days / won_m.median_days
            if won_m and lost_m and won_m.median_days and lost_m.median_days is not None
            else None
        )
        put(e, f"time_in_stage[{i}].lost_to_won_median_ratio", ratio)
        means = [
            t.lost_won_ratio
            for (s, _), t in times.items()
            if s == stage and t.lost_won_ratio is not None
        ]
        put(e, f"time_in_stage[{i}].lost_to_won_mean_ratio", means[0] if means else None)

    summaries = {s.outcome: s for s in cycles.summary}
    for outcome in ("won", "lost"):
        s = summaries.get(outcome)
        put(e, f"cycle_time.{outcome}.n", s.deals if s else 0)
        put(e, f"cycle_time.{outcome}.mean_days", s and s.mean_days)
        put(e, f"cycle_time.{outcome}.median_days", s and s.median_days)
    both = summaries.get("closed")
    put(e, "cycle_time.sum_of_stage_means_days", both and both.stage_sum_days)
    put(e, "cycle_time.measured_mean_days", both and both.mean_days)

    rows = an.funnel(visits, process, as_of=as_of).stages
    for i, f in enumerate(rows):
        put(e, f"funnel[{i}].reached", f.reached)
        put(e, f"funnel[{i}].reach_rate", f.reached_rate)
        put(e, f"funnel[{i}].reached_in_order", f.reached_in_order)
        put(e, f"funnel[{i}].lost_here", f.lost_here)
        previous = rows[i - 1].reached_in_order if i else 0
        conversion = f.reached_in_order / previous if previous else None
        put(e, f"funnel[{i}].conversion_from_previous", conversion)

    stalled = {s.opportunity_id: s for s in an.stalled(visits, process, as_of=as_of)}
    put(e, "stalled_count.total", len(stalled))
    put(e, "stalled_count.shown", min(TOP, len(stalled)))
    for i, row in enumerate(document["stalled"]):
        s = stalled[row["opportunity_id"]]
        for key, value in (
            ("days_in_stage", s.dwell_days),
            ("limit_days", s.limit_days),
            ("times_won_median", s.times_won_median),
            ("amount", s.amount),
        ):
            put(e, f"stalled[{i}].{key}", value)

    slips = an.slippage(log, process, as_of=as_of, flag_pushes=2)
    flagged = {d.opportunity_id: d for d in slips.deals if d.flagged and d.outcome == "open"}
    amounts = {s.opportunity_id: s.amount for s in current}
    put(e, "slipping_count.total", len(flagged))
    put(e, "slipping_count.shown", min(TOP, len(flagged)))
    for i, row in enumerate(document["slipping"]):
        d = flagged[row["opportunity_id"]]
        put(e, f"slipping[{i}].pushes", d.pushes)
        put(e, f"slipping[{i}].days_pushed", d.days_pushed)
        put(e, f"slipping[{i}].amount", amounts[d.opportunity_id])
    put(e, "slip_summary.slip_rate", slips.slip_rate)
    for i, p in enumerate(sorted(slips.by_pushes, key=lambda p: p.pushes)):
        put(e, f"slip_summary.win_rate_by_pushes[{i}].pushes", p.pushes)
        put(e, f"slip_summary.win_rate_by_pushes[{i}].n", p.closed)
        put(e, f"slip_summary.win_rate_by_pushes[{i}].win_rate", p.win_rate)

    moves = Counter(x.move for x in log if x.kind is EventKind.STAGE_CHANGED)
    versions = {x.process_version for x in log if x.process == process.name}
    today = as_of.date()
    counts = {
        "overdue_close_date": sum(
            1 for s in open_deals if s.close_date is not None and s.close_date < today
        ),
        "no_amount": sum(1 for s in open_deals if s.amount is None),
        "no_close_date": sum(1 for s in open_deals if s.close_date is None),
        "gate_overrides": moves[MoveKind.OVERRIDE],
        "backward_moves": moves[MoveKind.BACKWARD],
        "reopened": moves[MoveKind.REOPEN],
        "imported_history": moves[MoveKind.IMPORTED],
        "unscheduled": fc.unscheduled,
        "several_versions": len(versions) if len(versions) > 1 else 0,
        "no_configured_probabilities": 0
        if any((s.probability or 0.0) > 0 for s in process.open_stages)
        else len(process.open_stages),
    }
    for i, finding in enumerate(document["data_quality"]):
        assert finding["source"] == "log", finding  # no import findings passed here
        put(e, f"data_quality[{i}].count", counts[finding["code"]])
    assert {f["code"] for f in document["data_quality"]} == {c for c, n in counts.items() if n}
    return e


def assert_every_number_is_rebuilt(document: dict[str, Any], expected: dict[str, Any]) -> None:
    got = numeric_leaves(document)
    wanted = {
        path: value
        for path, value in expected.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }
    unexplained = sorted(set(got) - set(wanted))
    missing = sorted(set(wanted) - set(got))
    assert unexplained == [], f"numbers no analytics call accounts for: {unexplained[:10]}"
    assert missing == [], f"numbers the analytics give but the document lacks: {missing[:10]}"
    wrong = [
        (path, got[path], wanted[path])
        for path in sorted(got)
        if got[path] != pytest.approx(wanted[path], rel=1e-9, abs=1e-9)
    ]
    assert wrong == [], f"numbers that disagree (path, document, analytics): {wrong[:10]}"


def check(events: list[Any], process: Process, as_of: datetime, **options: Any) -> dict[str, Any]:
    document = build_document(events, process, as_of=as_of, top=TOP, **options)
    validate_document(document)
    assert_every_number_is_rebuilt(document, rebuild(events, process, document))
    return document


@pytest.fixture(scope="module")
def demo() -> tuple[list[Any], datetime]:
    sim = simulate(2000, seed=7, span_days=365, process=b2b())  # stagegate simulate's defaults
    return [e for e in sim.events if e.at <= sim.as_of], sim.as_of


class TestDemoPipeline:
    def test_every_number_is_rebuilt_with_the_chosen_estimator(self, demo) -> None:
        events, as_of = demo
        document = check(events, b2b(), as_of)
        assert document["estimator"]["chosen_by"] == "backtest"
        assert document["stalled_count"]["total"] > len(document["stalled"]) == TOP

    @pytest.mark.parametrize("estimator", ["configured", "markov", "smoothed", "dwell"])
    def test_every_number_is_rebuilt_with_any_estimator(self, demo, estimator: str) -> None:
        events, as_of = demo
        document = check(events, b2b(), as_of - timedelta(days=45), estimator=estimator)
        assert document["summary"]["weighted_estimator"] == estimator
        assert document["forecast_method"]["estimator"] == estimator

    def test_a_stray_number_fails_the_rebuild(self, demo) -> None:
        events, as_of = demo
        document = build_document(events, b2b(), as_of=as_of, top=TOP)
        document["funnel"][0]["new_metric"] = 3
        with pytest.raises(AssertionError, match="no analytics call accounts for"):
            assert_every_number_is_rebuilt(document, rebuild(events, b2b(), document))

    def test_a_changed_number_fails_the_rebuild(self, demo) -> None:
        events, as_of = demo
        document = build_document(events, b2b(), as_of=as_of, top=TOP)
        document["summary"]["weighted_amount"] += 1.0
        with pytest.raises(AssertionError, match="disagree"):
            assert_every_number_is_rebuilt(document, rebuild(events, b2b(), document))


def _need(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (public test data, not shipped with the project)")


@pytest.mark.shared_data
class TestSharedData:
    def test_maven_crm(self) -> None:
        _need(MAVEN)
        from stagegate.io import import_snapshot

        result = import_snapshot(
            MAVEN / "sales_pipeline.csv",
            stages=["Prospecting", "Engaging", "Won", "Lost"],
            entered={"Engaging": "engage_date"},
            columns={
                "stage": "deal_stage",
                "closed_at": "close_date",
                "amount": "close_value",
                "actor": "sales_agent",
            },
            assume_zone="UTC",
        )
        events = list(result.events)
        assert result.definition is not None
        document = check(events, result.definition, max(e.at for e in events))
        assert document["process"]["configured_known"] is False
        assert document["estimator"]["name"] != "configured"

    def test_pipedrive(self) -> None:
        _need(PIPEDRIVE)
        from stagegate.io import import_pipedrive

        result = import_pipedrive(
            PIPEDRIVE / "deal_changes.csv",
            stages=PIPEDRIVE / "stages.csv",
            fields=PIPEDRIVE / "fields.csv",
            assume_zone="UTC",
        )
        events = list(result.events)
        assert result.definition is not None
        document = check(events, result.definition, max(e.at for e in events))
        backtest = document["backtest"]
        if backtest is not None and backtest["scored_won"] == 0:
            assert backtest["best"] is None
            assert "no won deal" in backtest["warning"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deals=st.integers(min_value=1, max_value=150),
    seed=st.integers(min_value=0, max_value=10_000),
    back=st.integers(min_value=0, max_value=120),
    estimator=st.sampled_from([None, *an.ESTIMATORS]),
)
def test_any_small_pipeline_at_any_instant_is_rebuilt(
    deals: int, seed: int, back: int, estimator: str | None
) -> None:
    sim = simulate(deals, seed=seed, span_days=200, process=b2b())
    as_of = sim.as_of - timedelta(days=back)
    events = [e for e in sim.events if e.at <= sim.as_of]
    if not any(e.at <= as_of for e in events):
        return  # nothing had happened yet: the empty document has no estimator to rebuild with
    check(events, b2b(), as_of, estimator=estimator)
