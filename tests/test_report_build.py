"""build_document: the analytics assembled into the report document, end to end."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from stagegate import Opportunity, b2b, demo
from stagegate.analytics import AnalyticsError
from stagegate.io import Finding, Severity
from stagegate.report import build_document, render_html, validate_document
from stagegate.report._build import MIN_BACKTEST_DEALS
from stagegate.simulate import simulate


@pytest.fixture(scope="module")
def pipeline():
    sim = simulate(600, seed=3, span_days=200, process=b2b())
    return [e for e in sim.events if e.at <= sim.as_of], sim.as_of


class TestBuildDocument:
    def test_the_document_is_valid_and_renders(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(events, b2b(), as_of=as_of)
        validate_document(document)
        assert 'data-chart="forecast"' in render_html(document)

    def test_the_summary_counts_every_opportunity_once(self, pipeline) -> None:
        events, as_of = pipeline
        summary = build_document(events, b2b(), as_of=as_of)["summary"]
        assert summary["opportunities"] == len({e.opportunity_id for e in events})
        assert summary["open"] + summary["won"] + summary["lost"] == summary["opportunities"]
        assert 0 <= summary["weighted_amount"] <= summary["open_amount"]

    def test_probabilities_cover_every_open_stage_and_stay_in_range(self, pipeline) -> None:
        events, as_of = pipeline
        rows = build_document(events, b2b(), as_of=as_of)["probabilities"]
        assert [r["stage"] for r in rows] == [s.id for s in b2b().open_stages]
        for row in rows:
            for key in ("configured", "empirical", "markov", "smoothed"):
                assert row[key] is None or 0.0 <= row[key] <= 1.0

    def test_lost_deals_dwell_longer_than_won_ones_in_the_simulation(self, pipeline) -> None:
        events, as_of = pipeline
        rows = build_document(events, b2b(), as_of=as_of)["time_in_stage"]
        ratios = [
            r[key]
            for r in rows
            for key in ("lost_to_won_median_ratio", "lost_to_won_mean_ratio")
            if r[key] is not None
        ]
        assert len(ratios) == 2 * len(rows)
        assert all(ratio > 1.0 for ratio in ratios)

    def test_events_after_as_of_are_ignored(self, pipeline) -> None:
        events, as_of = pipeline
        early = as_of - timedelta(days=60)
        document = build_document(events, b2b(), as_of=early)
        prefix = build_document([e for e in events if e.at <= early], b2b(), as_of=early)
        assert document == prefix

    def test_forecast_quantiles_are_ordered(self, pipeline) -> None:
        events, as_of = pipeline
        for period in build_document(events, b2b(), as_of=as_of)["forecast"]:
            assert period["p10"] <= period["p50"] <= period["p90"]

    def test_an_empty_log_gives_an_empty_but_valid_document(self) -> None:
        document = build_document([], b2b(), as_of=demo.T0)
        validate_document(document)
        assert document["summary"]["opportunities"] == 0

    def test_overrides_and_overdue_close_dates_are_data_quality_findings(self) -> None:
        deal = Opportunity.open(
            b2b(), "x", at=demo.T0, actor="a", amount=10, close_date=demo.T0.date()
        )
        deal.override("qualification", at=demo.T0, actor="a", reason="phone call")
        document = build_document(deal.events, b2b(), as_of=demo.T0 + timedelta(days=3))
        codes = {f["code"] for f in document["data_quality"]}
        assert {"gate_overrides", "overdue_close_date"} <= codes


def unconfigured(process):
    """The process with every open stage at probability 0, as an inferred process has."""
    import attrs

    stages = tuple(attrs.evolve(s, probability=0.0) if s.is_open else s for s in process.stages)
    return attrs.evolve(process, stages=stages)


def lost_only(events, as_of):
    """The events of the deals that were lost by ``as_of`` (some open at any earlier cut-off)."""
    lost = {e.opportunity_id for e in events if e.at <= as_of and e.stage == "lost"}
    return [e for e in events if e.opportunity_id in lost]


class TestFunnelConversion:
    def test_the_first_stage_has_none_and_each_later_one_the_share_from_the_one_before(
        self, pipeline
    ) -> None:
        events, as_of = pipeline
        rows = build_document(events, b2b(), as_of=as_of)["funnel"]
        assert rows[0]["conversion_from_previous"] is None
        assert rows[-1]["stage"] == "won"
        for before, row in itertools.pairwise(rows):
            expected = row["reached_in_order"] / before["reached_in_order"]
            assert expected == pytest.approx(row["conversion_from_previous"])


class TestEstimator:
    def test_one_estimator_is_named_by_the_tile_and_the_forecast(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(events, b2b(), as_of=as_of, estimator="empirical")
        assert "option" == document["estimator"]["chosen_by"]
        assert "empirical" == document["summary"]["weighted_estimator"]
        assert "empirical" == document["forecast_method"]["estimator"]

    def test_by_default_the_backtest_winner_is_used(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(events, b2b(), as_of=as_of)
        best = document["backtest"]["best"]
        assert best is not None
        assert ("backtest", best) == (
            document["estimator"]["chosen_by"],
            document["summary"]["weighted_estimator"],
        )

    def test_an_unknown_estimator_is_refused(self, pipeline) -> None:
        events, as_of = pipeline
        with pytest.raises(AnalyticsError, match="unknown estimator 'oracle'"):
            build_document(events, b2b(), as_of=as_of, estimator="oracle")

    def test_without_a_backtest_winner_the_configured_probabilities_are_used(self) -> None:
        deal = Opportunity.open(b2b(), "x", at=demo.T0, actor="a", amount=10)
        document = build_document(deal.events, b2b(), as_of=demo.T0 + timedelta(days=1))
        assert document["backtest"]["best"] is None
        assert "nothing to score" in document["backtest"]["warning"]
        assert ("configured", "configured") == (
            document["estimator"]["name"],
            document["estimator"]["chosen_by"],
        )
        assert b2b().stages[0].probability * 10 == document["summary"]["weighted_amount"]


class TestBacktestWinner:
    def test_no_won_deal_in_the_scored_set_names_no_winner(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(lost_only(events, as_of), b2b(), as_of=as_of)
        backtest = document["backtest"]
        assert backtest["scored"] > 0
        assert 0 == backtest["scored_won"]
        assert backtest["best"] is None
        assert "no won deal" in backtest["warning"]
        assert ("configured", "configured") == (
            document["estimator"]["name"],
            document["estimator"]["chosen_by"],
        )

    def test_too_few_scored_deals_name_no_winner(self) -> None:
        sim = simulate(60, seed=3, span_days=120, process=b2b())
        events = [e for e in sim.events if e.at <= sim.as_of]
        backtest = build_document(events, b2b(), as_of=sim.as_of)["backtest"]
        assert 0 < backtest["scored"] < MIN_BACKTEST_DEALS
        assert backtest["best"] is None
        assert "too few" in backtest["warning"]

    def test_an_unconfigured_process_is_no_baseline(self, pipeline) -> None:
        events, as_of = pipeline
        process = unconfigured(b2b())
        document = build_document(events, process, as_of=as_of)
        backtest = document["backtest"]
        assert document["process"]["configured_known"] is False
        assert "configured" not in {s["estimator"] for s in backtest["scores"]}
        assert "configured" not in {r["estimator"] for r in backtest["reliability"]}
        assert ["configured"] == [e["estimator"] for e in backtest["excluded"]]
        assert "no_configured_probabilities" in {f["code"] for f in document["data_quality"]}

    def test_an_unconfigured_process_without_a_winner_falls_back(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(lost_only(events, as_of), unconfigured(b2b()), as_of=as_of)
        assert "fallback" == document["estimator"]["chosen_by"]
        assert "configured" != document["estimator"]["name"]
        assert "no configured probabilities" in document["estimator"]["reason"]


class TestCounts:
    def test_capped_lists_carry_their_true_totals(self, pipeline) -> None:
        events, as_of = pipeline
        document = build_document(events, b2b(), as_of=as_of, top=3)
        for name in ("stalled", "slipping"):
            counted = document[f"{name}_count"]
            assert len(document[name]) == counted["shown"] == min(3, counted["total"])
            assert counted["capped"] == (counted["total"] > 3)
        assert document["stalled_count"]["capped"]


class TestImportFindings:
    def test_findings_join_the_data_quality_section_grouped_by_code(self, pipeline) -> None:
        events, as_of = pipeline
        findings = [
            Finding("reused_id", Severity.WARNING, "id 7 reused: split", opportunity_id="7"),
            Finding("reused_id", Severity.WARNING, "id 9 reused: split", opportunity_id="9"),
            Finding("inferred_process", Severity.WARNING, "stages inferred from the data"),
            Finding("sorted_rows", Severity.INFO, "rows sorted by time"),
        ]
        document = build_document(events, b2b(), as_of=as_of, findings=findings)
        imported = {f["code"]: f for f in document["data_quality"] if f["source"] == "import"}
        assert {"reused_id", "inferred_process", "sorted_rows"} == set(imported)
        assert 2 == imported["reused_id"]["count"]
        assert "id 7 reused: split (and 1 more like it)" == imported["reused_id"]["message"]
        severities = [f["severity"] for f in document["data_quality"]]
        assert severities == sorted(severities, key=["error", "warning", "info"].index)

    def test_an_empty_log_still_shows_the_import_findings(self) -> None:
        findings = [{"code": "naive_timestamp", "severity": "error", "message": "no zone"}]
        document = build_document([], b2b(), as_of=demo.T0, findings=findings)
        validate_document(document)
        assert ["naive_timestamp"] == [f["code"] for f in document["data_quality"]]
