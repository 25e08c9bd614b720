"""The report page says which estimator it uses and why, and never hides a count or a caveat."""

from __future__ import annotations

import re
from typing import Any

from stagegate.report import render_html, sample_document
from stagegate.report._svg import marker

ESTIMATORS = [f"estimator-{i}" for i in range(9)]


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section class="card" id="{anchor}".*?</section>', page, re.DOTALL)
    assert match is not None, f"section {anchor} missing"
    return match.group(0)


def reliability(names: list[str]) -> list[dict[str, Any]]:
    return [
        {"estimator": n, "bin_low": 0.0, "bin_high": 0.1, "predicted": 0.05, "observed": 0.1}
        for n in names
    ]


class TestReliabilityMarkers:
    def test_every_estimator_has_its_own_marker_however_many(self) -> None:
        document = sample_document()
        document["backtest"]["reliability"] = reliability(ESTIMATORS)
        page = render_html(document)
        markers = re.findall(r'data-estimator="([^"]+)" data-marker="([^"]+)"', page)
        assert ESTIMATORS == [name for name, _ in markers]
        assert len(ESTIMATORS) == len({shape for _, shape in markers})

    def test_marker_paths_differ_for_the_first_hundred_series(self) -> None:
        shapes = [marker(i) for i in range(100)]
        assert 100 == len({name for name, _ in shapes}) == len({path for _, path in shapes})


class TestEstimatorNamed:
    def test_the_tile_and_the_forecast_name_the_estimator_and_the_page_says_why(self) -> None:
        page = render_html(sample_document())
        tiles = re.search(r'<ul class="tiles".*?</ul>', page, re.DOTALL)
        assert tiles is not None
        assert "· by markov" in tiles.group(0)
        assert "(estimator <b>markov</b>)" in section(page, "forecast")
        assert "best-calibrated estimator in the backtest" in page
        assert "Markov (used)" in section(page, "probabilities")

    def test_an_estimator_without_a_column_is_explained(self) -> None:
        document = sample_document()
        document["estimator"]["name"] = "dwell"
        assert "has no single column here" in section(render_html(document), "probabilities")


class TestCaveats:
    def test_a_capped_list_shows_its_true_count(self) -> None:
        document = sample_document()
        document["stalled_count"] = {"total": 39, "shown": 6, "capped": True}
        assert "<h3>Stalled deals (39, the first 6 shown)</h3>" in render_html(document)

    def test_a_backtest_without_a_winner_warns_and_marks_none_best(self) -> None:
        document = sample_document()
        document["backtest"] |= {"best": None, "warning": "the 9 scored deals include no won deal"}
        backtest = section(render_html(document), "backtest")
        assert "No winner: the 9 scored deals include no won deal." in backtest
        assert "✓ best" not in backtest

    def test_a_weighted_point_outside_p10_p90_is_explained(self) -> None:
        document = sample_document()
        document["forecast"][0] |= {"weighted": 900000.0, "outside_range": True}
        forecast = section(render_html(document), "forecast")
        assert "The weighted point of 2025-07 falls outside P10-P90" in forecast
        assert "Close dates: An open deal has not closed before as_of" in forecast

    def test_an_unconfigured_process_is_said_to_be_no_baseline(self) -> None:
        document = sample_document()
        document["process"]["configured_known"] = False
        document["backtest"]["excluded"] = [{"estimator": "configured", "reason": "all 0%"}]
        page = render_html(document)
        assert "the configured column is no baseline" in section(page, "probabilities")
        assert "configured is left out: all 0%." in section(page, "backtest")

    def test_both_lost_to_won_ratios_say_what_they_divide(self) -> None:
        durations = section(render_html(sample_document()), "durations")
        assert "Lost ÷ won (medians)" in durations
        assert "Lost ÷ won (means)" in durations

    def test_import_findings_are_marked_as_such(self) -> None:
        quality = section(render_html(sample_document()), "data-quality")
        assert '<th scope="col">Found in</th>' in quality
        assert "<td>import</td>" in quality


class TestSchema:
    def test_the_shipped_schema_is_a_valid_draft_2020_12_schema(self) -> None:
        import jsonschema

        from stagegate.report import document_schema

        jsonschema.Draft202012Validator.check_schema(document_schema())

    def test_each_call_returns_a_fresh_copy(self) -> None:
        from stagegate.report import document_schema

        first = document_schema()
        first["required"].clear()
        assert document_schema()["required"]
