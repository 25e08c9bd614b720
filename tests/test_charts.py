"""stagegate.charts: the report's charts drawn from analytics results, standalone and escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import analytics as an
from stagegate import charts
from stagegate.analytics import FunnelStage, StageTime
from stagegate.simulate import simulate
from stagegate.templates import b2b

SVG = "{http://www.w3.org/2000/svg}"
PAYLOAD = '<script>alert(1)</script>" onmouseover="alert(2)'


@pytest.fixture(scope="module")
def pipeline():
    process = b2b()
    sim = simulate(250, seed=8, process=process)
    events = [e for e in sim.events if e.at <= sim.as_of]
    return process, events, sim.as_of


def marks(chart: charts.Chart, mark: str) -> int:
    root = ET.fromstring(chart.svg)  # noqa: S314 - our own output
    return sum(1 for element in root.iter() if element.get("data-mark") == mark)


class TestCharts:
    def test_the_funnel_has_one_bar_per_stage_of_the_result(self, pipeline):
        process, events, as_of = pipeline
        result = an.funnel(events, process, as_of=as_of)
        chart = charts.funnel(result, process)
        assert len(result.stages) == marks(chart, "bar")
        assert "funnel" == chart.name

    def test_time_in_stage_draws_a_won_and_a_lost_bar_where_there_are_closed_deals(self, pipeline):
        process, events, as_of = pipeline
        rows = an.time_in_stage(events, process, as_of=as_of)
        chart = charts.time_in_stage(rows, process)
        won = {r.stage for r in rows if r.outcome == "won" and r.median_days is not None}
        lost = {r.stage for r in rows if r.outcome == "lost" and r.median_days is not None}
        assert len(won) == marks(chart, "won")
        assert len(lost) == marks(chart, "lost")

    def test_probabilities_draw_an_interval_per_stage_with_one(self, pipeline):
        process, events, as_of = pipeline
        rows = an.stage_probabilities(events, process, as_of=as_of)
        chart = charts.probabilities(rows, process)
        with_interval = [r for r in rows if r.empirical_low is not None]
        assert len(with_interval) == marks(chart, "interval")
        assert len([r for r in rows if r.configured is not None]) == marks(chart, "configured")

    def test_the_forecast_draws_a_range_and_a_median_per_period(self, pipeline):
        process, events, as_of = pipeline
        result = an.forecast(events, process, as_of=as_of, simulations=100)
        chart = charts.forecast(result)
        assert len(result.periods) == marks(chart, "range") == marks(chart, "p50")

    def test_slippage_draws_a_bar_per_push_count(self, pipeline):
        process, events, as_of = pipeline
        result = an.slippage(events, process, as_of=as_of)
        chart = charts.slippage(result)
        assert len(result.by_pushes) == marks(chart, "bar")

    def test_the_polars_path_draws_the_same_chart(self, pipeline):
        pl = pytest.importorskip("polars")
        process, events, as_of = pipeline
        rows = an.stage_probabilities(events, process, as_of=as_of)
        frame = pl.DataFrame([{f: getattr(r, f) for f in r.__slots__} for r in rows])
        assert charts.probabilities(rows, process).svg == charts.probabilities(frame, process).svg

    def test_charts_speak_korean_with_the_process_korean_labels(self, pipeline):
        process, events, as_of = pipeline
        chart = charts.funnel(an.funnel(events, process, as_of=as_of), process, language="ko")
        assert "리드 발굴" in chart.svg
        assert "단계에 도달한 영업 기회" in chart.svg


class TestStandalone:
    def test_a_chart_is_a_well_formed_svg_document_with_its_style_inside(self, pipeline):
        process, events, as_of = pipeline
        chart = charts.funnel(an.funnel(events, process, as_of=as_of), process)
        root = ET.fromstring(chart.svg)  # noqa: S314
        assert f"{SVG}svg" == root.tag
        assert root.find(f"{SVG}style") is not None
        assert "stagegate-chart" in root.get("class", "")
        assert chart._repr_svg_() == chart.svg == str(chart)
        assert chart.svg in chart._repr_html_()

    def test_save_writes_the_svg_file(self, pipeline, tmp_path: Path):
        process, events, as_of = pipeline
        chart = charts.forecast(an.forecast(events, process, as_of=as_of, simulations=50))
        path = chart.save(tmp_path / "forecast.svg")
        assert chart.svg == path.read_text("utf-8")

    def test_nothing_to_draw_is_a_small_chart_that_says_so(self):
        chart = charts.funnel([])
        assert "No data to chart." in chart.svg
        ET.fromstring(chart.svg)  # noqa: S314

    def test_the_chart_style_is_scoped_to_the_chart(self):
        style = charts.funnel([FunnelStage("a", 1, 1.0, None, 1, None, 0, 0, 0)]).svg
        css = style.split("<style>", 1)[1].split("</style>", 1)[0]
        selectors = [rule.split("{", 1)[0] for rule in css.split("}") if "{" in rule]
        for selector in selectors:
            for part in selector.split(","):
                assert part.strip().startswith("svg.stagegate-chart"), part


class TestInputs:
    def test_a_result_of_another_function_is_refused_with_a_reason(self, pipeline):
        process, events, as_of = pipeline
        with pytest.raises(charts.ChartInputError, match=r"analytics\.slippage"):
            charts.slippage(an.funnel(events, process, as_of=as_of))
        with pytest.raises(charts.ChartInputError, match=r"analytics\.time_in_stage"):
            charts.time_in_stage(an.funnel(events, process, as_of=as_of).stages)
        with pytest.raises(charts.ChartInputError, match="cannot draw int"):
            charts.forecast(3)

    def test_a_mapping_of_labels_names_the_stages(self):
        rows = [FunnelStage("a", 2, 1.0, None, 2, None, 0, 0, 0)]
        assert "Alpha" in charts.funnel(rows, {"a": "Alpha"}).svg

    @settings(max_examples=40, deadline=None)
    @given(st.text(min_size=1, max_size=30))
    def test_hostile_stage_names_are_escaped_and_the_svg_stays_well_formed(self, text):
        name = PAYLOAD + text
        if any(ord(c) < 32 and c not in "\t\n\r" for c in name) or any(
            0xD800 <= ord(c) <= 0xDFFF or ord(c) in (0xFFFE, 0xFFFF) for c in name
        ):
            return  # not representable in XML at all; the HTML page escapes them the same way
        funnel = charts.funnel([FunnelStage(name, 3, 1.0, None, 3, None, 0, 0, 0)])
        durations = charts.time_in_stage(
            [StageTime(name, "won", 3, 0, 2.0, 2.5, 3.0, 4.0, None, None)], {name: name}
        )
        for chart in (funnel, durations):
            assert "<script>" not in chart.svg
            ET.fromstring(chart.svg)  # noqa: S314


@pytest.fixture(scope="module")
def segmented():
    process = b2b()
    sim = simulate(300, seed=7, process=process, segments=True)
    events = [e for e in sim.events if e.at <= sim.as_of]
    return process, events, sim.as_of


def segment_titles(chart: charts.Chart) -> list[str]:
    root = ET.fromstring(chart.svg)  # noqa: S314 - our own output
    return [e.text or "" for e in root.iter() if e.get("data-mark") == "segment"]


class TestBySegment:
    def test_probabilities_by_owner_draw_one_small_chart_per_segment_most_deals_first(
        self, segmented
    ):
        process, events, as_of = segmented
        result = an.stage_probabilities(events, process, as_of=as_of, by="owner", draws=0)
        chart = charts.probabilities(result, process)
        titles = segment_titles(chart)
        assert len(titles) == charts.MAX_MULTIPLES
        deals = [int(t.split(" · ")[1].split()[0]) for t in titles]
        assert deals == sorted(deals, reverse=True)
        assert "more segments" in chart.svg
        assert marks(chart, "empirical") > 0
        assert any(t.endswith("*") for t in titles)  # small segments are marked

    def test_time_in_stage_by_region_names_every_region(self, segmented):
        process, events, as_of = segmented
        result = an.time_in_stage(events, process, as_of=as_of, by="region")
        titles = segment_titles(charts.time_in_stage(result, process))
        assert {"central", "east", "west"} == {t.split(" · ")[0] for t in titles}

    def test_a_result_without_by_keeps_the_whole_pipeline_chart(self, segmented):
        process, events, as_of = segmented
        chart = charts.time_in_stage(an.time_in_stage(events, process, as_of=as_of), process)
        assert "stage-durations" == chart.name
        assert [] == segment_titles(chart)

    def test_the_segment_section_chart_folds_the_rest_into_other(self, segmented):
        from stagegate.report import build_document

        process, events, as_of = segmented
        document = build_document(events, process, as_of=as_of, by="owner")
        chart = charts.segments(document)
        root = ET.fromstring(chart.svg)  # noqa: S314 - our own output
        labels = [e.text for e in root.iter() if e.get("class") == "row-label"]
        rows = document["segments"]["rows"]
        assert len(labels) == min(len(rows), 13)
        assert labels[-1].startswith("other (") if len(rows) > 12 else True
        assert labels[0].removesuffix(" *") == rows[0]["label"]

    def test_a_document_without_the_section_is_refused(self):
        with pytest.raises(charts.ChartInputError, match="by="):
            charts.segments({"title": "x"})
