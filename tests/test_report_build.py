"""build_document: the analytics assembled into the report document, end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stagegate import Opportunity, b2b, demo
from stagegate.report import build_document, render_html, validate_document
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
