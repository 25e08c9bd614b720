"""Tests of stagegate.report: the document boundary, the HTML page and its SVG charts."""

from __future__ import annotations

import copy
import math
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate.errors import StagegateError
from stagegate.report import (
    ReportError,
    render_html,
    sample_document,
    validate_document,
    write_html,
)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
CHARTS = ("funnel", "stage-durations", "probabilities", "slippage", "forecast", "reliability")
PAYLOAD = '<script>alert(1)</script>" onmouseover="alert(2)'


class Page(HTMLParser):
    """Parse a page, insisting that every element is closed in order (well-formed HTML)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed at end: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), tuple(self.stack)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((tuple(self.stack), data))

    def tags(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a, _ in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def chart(page: str, name: str) -> str:
    """Return the SVG source of one chart."""
    match = re.search(rf'<svg data-chart="{name}".*?</svg>', page, re.DOTALL)
    assert match is not None, f"chart {name} missing"
    return match.group(0)


def section(page: str, anchor: str) -> str:
    """Return the HTML source of one section."""
    match = re.search(rf'<section class="card" id="{anchor}".*?</section>', page, re.DOTALL)
    assert match is not None, f"section {anchor} missing"
    return match.group(0)


def minimal_document() -> dict[str, Any]:
    """Return a document with only the required keys."""
    return {
        "title": "Minimal",
        "generated_at": "2025-07-01T06:00:00Z",
        "as_of": "2025-06-30",
        "process": {
            "name": "b2b",
            "version": "1",
            "stages": [
                {"id": "lead", "label": "Lead", "kind": "open", "probability": 0.1},
                {"id": "won", "label": "Won", "kind": "won", "probability": 1.0},
                {"id": "lost", "kind": "lost"},
            ],
        },
        "summary": {
            "opportunities": 3,
            "open": 1,
            "won": 1,
            "lost": 1,
            "win_rate": 0.5,
            "open_amount": 1000.0,
            "weighted_amount": 100.0,
            "median_cycle_days": None,
        },
    }


def with_(**sections: Any) -> dict[str, Any]:
    """Return the minimal document with some sections set."""
    return minimal_document() | sections


class TestRenderHtml:
    def test_the_sample_renders_one_well_formed_page(self):
        page = render_html(sample_document())
        parsed = Page(page)

        assert parsed.problems == []
        assert page.startswith("<!DOCTYPE html>")
        assert len(parsed.tags("html")) == 1
        assert len(parsed.tags("script")) == 1

    def test_every_chart_has_a_title_a_description_and_axis_text(self):
        page = render_html(sample_document())

        for name in CHARTS:
            svg = chart(page, name)
            assert f'<title id="{name}-title">' in svg
            assert f'<desc id="{name}-desc">' in svg
            assert 'class="axis-title"' in svg
            assert 'class="tick"' in svg

    def test_the_page_references_nothing_outside_itself(self):
        page = render_html(sample_document())
        parsed = Page(page)

        assert "://" not in page
        assert "@import" not in page
        assert [a for t, a, _ in parsed.elements if "src" in a or t in {"link", "img"}] == []
        assert set(re.findall(r"url\(([^)]*)\)", page)) == {"#stage-durations-hatch"}

    def test_a_content_security_policy_allows_only_the_inline_script(self):
        page = render_html(sample_document())
        policy = Page(page).tags("meta", http_equiv="Content-Security-Policy")[0]["content"]

        assert policy is not None
        assert "default-src 'none'" in policy
        assert "script-src 'sha256-" in policy
        assert "unsafe-inline' ; script" not in policy

    def test_the_script_marks_the_body_ready(self):
        assert 'document.body.setAttribute("data-ready", "1")' in render_html(sample_document())

    def test_write_html_writes_the_page_and_returns_its_path(self, tmp_path: Path):
        document = sample_document()

        written = write_html(document, tmp_path / "report.html")

        assert tmp_path / "report.html" == written
        assert render_html(document) == written.read_text(encoding="utf-8")

    def test_write_html_writes_nothing_for_a_bad_document(self, tmp_path: Path):
        with pytest.raises(ReportError):
            write_html({"title": 1}, tmp_path / "report.html")

        assert not (tmp_path / "report.html").exists()

    def test_rendering_does_not_change_the_document(self):
        document = sample_document()
        before = copy.deepcopy(document)

        render_html(document)

        assert before == document


class TestCharts:
    def test_the_funnel_draws_one_bar_per_stage(self):
        funnel = [
            {"stage": "lead", "reached": 10, "reach_rate": 1.0},
            {"stage": "won", "reached": 4, "reach_rate": 0.4, "conversion_from_previous": 0.4},
            {"stage": "unknown_stage", "reached": 0},
        ]
        svg = chart(render_html(with_(funnel=funnel)), "funnel")

        assert svg.count('data-mark="bar"') == 3
        assert ">Lead<" in svg  # labels come from the process
        assert ">unknown_stage<" in svg  # unknown stage ids show as they are
        assert ">40%<" in svg

    def test_stage_durations_draw_won_and_lost_bars_only_where_known(self):
        rows = [
            {"stage": "lead", "won_median_days": 3.0, "lost_median_days": 9.0},
            {"stage": "a", "won_median_days": 5.0, "lost_median_days": None},
            {"stage": "b", "won_median_days": 2.0},
            {"stage": "c"},
        ]
        svg = chart(render_html(with_(time_in_stage=rows)), "stage-durations")

        assert svg.count('data-mark="won"') == 3
        assert svg.count('data-mark="lost"') == 1
        assert "no closed deals" in svg
        assert "W 3.0 d" in svg
        assert "L 9.0 d" in svg

    def test_probabilities_draw_each_estimate_that_is_present(self):
        rows = [
            {
                "stage": "lead",
                "configured": 0.1,
                "empirical": 0.2,
                "low": 0.1,
                "high": 0.3,
                "markov": 0.25,
                "n": 40,
            },
            {"stage": "won", "configured": 0.5, "empirical": None, "markov": 0.4},
            {"stage": "x", "configured": 0.5},
        ]
        svg = chart(render_html(with_(probabilities=rows)), "probabilities")

        assert svg.count('data-mark="configured"') == 3
        assert svg.count('data-mark="empirical"') == 1
        assert svg.count('data-mark="interval"') == 1
        assert svg.count('data-mark="markov"') == 2

    def test_slippage_draws_win_rate_by_push_count(self):
        summary = {
            "slip_rate": 0.3,
            "win_rate_by_pushes": [
                {"pushes": 0, "n": 10, "win_rate": 0.5},
                {"pushes": 1, "n": 5, "win_rate": 0.2},
                {"pushes": 2, "n": 0, "win_rate": None},
            ],
        }
        svg = chart(render_html(with_(slip_summary=summary)), "slippage")

        assert svg.count('data-mark="bar"') == 2
        assert "n=10" in svg
        assert "Win rate" in svg

    def test_slippage_falls_back_to_a_histogram_of_slipping_deals(self):
        slipping = [
            {"opportunity_id": f"o{i}", "pushes": pushes} for i, pushes in enumerate([1, 1, 2, 5])
        ]
        svg = chart(render_html(with_(slipping=slipping, slip_summary=None)), "slippage")

        assert svg.count('data-mark="bar"') == 3
        assert "Slipping deals" in svg

    def test_the_forecast_draws_a_range_a_median_and_a_weighted_mark_per_period(self):
        rows = [
            {"period": "2025-07", "weighted": 5.0, "p10": 1.0, "p50": 4.0, "p90": 9.0, "n": 3},
            {"period": "2025-08", "weighted": 2.0, "p10": 0.0, "p50": 1.5, "p90": 4.0, "n": 2},
            {"period": "2025-09", "weighted": 1.0},
        ]
        svg = chart(render_html(with_(forecast=rows)), "forecast")

        assert svg.count('data-mark="range"') == 2
        assert svg.count('data-mark="p50"') == 2
        assert svg.count('data-mark="weighted"') == 3
        assert "P90 9" in svg

    def test_reliability_draws_one_point_per_bin_with_both_values(self):
        backtest = {
            "cutoff": "2025-01-01",
            "best": "a",
            "scores": [{"estimator": "a", "brier": 0.1, "log_loss": 0.3, "n": 5}],
            "reliability": [
                {
                    "estimator": "a",
                    "bin_low": 0.0,
                    "bin_high": 0.5,
                    "predicted": 0.2,
                    "observed": 0.3,
                    "n": 4,
                },
                {
                    "estimator": "a",
                    "bin_low": 0.5,
                    "bin_high": 1.0,
                    "predicted": 0.7,
                    "observed": None,
                },
                {
                    "estimator": "b",
                    "bin_low": 0.0,
                    "bin_high": 1.0,
                    "predicted": 0.5,
                    "observed": 0.4,
                },
            ],
        }
        page = render_html(with_(backtest=backtest))

        assert chart(page, "reliability").count('data-mark="point"') == 2
        assert "✓ best" in section(page, "backtest")

    def test_the_sample_charts_have_one_mark_per_row(self):
        document = sample_document()
        page = render_html(document)

        assert len(document["funnel"]) == chart(page, "funnel").count('data-mark="bar"')
        assert len(document["forecast"]) == chart(page, "forecast").count('data-mark="p50"')
        assert len(document["probabilities"]) == chart(page, "probabilities").count(
            'data-mark="empirical"'
        )
        assert len(document["time_in_stage"]) == chart(page, "stage-durations").count(
            'data-mark="lost"'
        )
        pushes = document["slip_summary"]["win_rate_by_pushes"]
        assert len(pushes) == chart(page, "slippage").count('data-mark="bar"')

    def test_the_stalled_and_slipping_tables_have_one_row_per_deal(self):
        document = sample_document()
        attention = section(render_html(document), "attention")

        assert len(document["stalled"]) + len(document["slipping"]) == attention.count(
            "<tr data-stage"
        )


class TestEscaping:
    def hostile_document(self) -> dict[str, Any]:
        document = sample_document()
        document["title"] = PAYLOAD
        document["currency"] = PAYLOAD
        document["process"]["name"] = PAYLOAD
        stage = document["process"]["stages"][0]
        stage["id"] = stage["label"] = PAYLOAD
        for key in ("funnel", "probabilities", "time_in_stage", "stalled"):
            document[key][0]["stage"] = PAYLOAD
        document["stalled"][0]["opportunity_id"] = PAYLOAD
        document["stalled"][0]["limit_source"] = PAYLOAD
        document["slipping"][0]["opportunity_id"] = PAYLOAD
        document["slipping"][0]["close_date"] = PAYLOAD
        document["forecast"][0]["period"] = PAYLOAD
        document["data_quality"][0]["message"] = PAYLOAD
        document["data_quality"][0]["severity"] = PAYLOAD
        document["data_quality"][0]["code"] = PAYLOAD
        document["backtest"]["best"] = PAYLOAD
        document["backtest"]["scores"][0]["estimator"] = PAYLOAD
        document["backtest"]["reliability"][0]["estimator"] = PAYLOAD
        document["cycle_time"]["explanation"] = PAYLOAD
        document["estimator"] = {"name": PAYLOAD, "chosen_by": "option", "reason": PAYLOAD}
        document["summary"]["weighted_estimator"] = PAYLOAD
        document["backtest"]["warning"] = PAYLOAD
        document["backtest"]["excluded"] = [{"estimator": PAYLOAD, "reason": PAYLOAD}]
        document["forecast_method"]["overdue_rule"] = PAYLOAD
        document["forecast"][0]["outside_range"] = True
        document["forecast"][0]["period"] = PAYLOAD
        document["probabilities"][0][PAYLOAD] = 0.5
        document["data_quality"][0]["source"] = PAYLOAD
        return document

    def test_hostile_strings_are_inert_text(self):
        page = render_html(self.hostile_document())
        parsed = Page(page)

        assert "<script>alert" not in page
        assert parsed.problems == []
        assert len(parsed.tags("script")) == 1
        assert [a for _, a, _ in parsed.elements if any(k.startswith("on") for k in a)] == []
        assert escape(PAYLOAD) in page

    def test_hostile_strings_read_back_as_the_original_text(self):
        parsed = Page(render_html(self.hostile_document()))

        assert any(text == PAYLOAD for _, text in parsed.texts)


class TestNoData:
    def test_a_document_with_only_required_keys_renders_no_data_everywhere(self):
        page = render_html(minimal_document())
        parsed = Page(page)

        assert parsed.problems == []
        assert re.findall(r"<svg data-chart", page) == []
        for anchor in ("funnel", "forecast", "durations", "probabilities", "backtest"):
            assert "No data" in section(page, anchor)
        assert section(page, "attention").count("No data") == 3  # stalled, slipping, chart

    def test_empty_and_null_sections_render_like_absent_ones(self):
        empty = with_(
            probabilities=[],
            backtest=None,
            time_in_stage=[],
            cycle_time=None,
            funnel=[],
            stalled=[],
            slipping=[],
            slip_summary=None,
            forecast=[],
            data_quality=[],
        )
        nulls = with_(probabilities=None, funnel=None, stalled=None, data_quality=None)

        assert render_html(minimal_document()) == render_html(empty)
        assert render_html(minimal_document()) == render_html(nulls)

    def test_an_empty_backtest_shows_no_scores_and_no_reliability(self):
        page = render_html(with_(backtest={"cutoff": "2025-01-01"}))

        assert section(page, "backtest").count("No data") == 2

    def test_an_empty_process_and_missing_values_render(self):
        document = minimal_document()
        document["process"]["stages"] = []
        document["summary"]["win_rate"] = None
        document["cycle_time"] = {"won": None, "explanation": None}

        page = render_html(document)

        assert Page(page).problems == []
        assert "Won deals: median" in page


class TestFormatting:
    def test_summary_tiles_show_formatted_numbers(self):
        tiles = re.search(r'<ul class="tiles".*?</ul>', render_html(sample_document()))
        assert tiles is not None
        text = tiles.group(0)

        for expected in ("412", "17.0%", "4.87M", "4,870,000 EUR", "1.59M", "74.5 d"):
            assert expected in text

    def test_table_cells_carry_raw_values_for_sorting(self):
        page = render_html(sample_document())

        assert '<td class="num" data-value="71.0">71.0 d</td>' in page
        assert '<td class="num" data-value="184000.0">184k EUR</td>' in page

    def test_missing_and_non_finite_numbers_read_as_a_dash(self):
        rows = [{"stage": "lead", "reached": 5, "reach_rate": math.nan, "lost_here": None}]
        svg = chart(render_html(with_(funnel=rows)), "funnel")

        assert "nan" not in svg.lower()
        assert svg.count(">—<") == 3  # reach, conversion (absent), lost here

    def test_instants_are_shown_in_utc_for_people(self):
        document = minimal_document() | {"as_of": "2025-06-30T23:30:00-02:00"}

        assert "1 Jul 2025, 01:30 UTC" in render_html(document)

    def test_data_quality_lists_the_most_severe_first(self):
        dq = section(render_html(sample_document()), "data-quality")

        assert dq.index("sev-error") < dq.index("sev-warning") < dq.index("sev-info")


class TestValidateDocument:
    def test_the_sample_is_valid(self):
        assert validate_document(sample_document()) is None

    def test_report_error_is_a_stagegate_value_error(self):
        assert issubclass(ReportError, StagegateError)
        assert issubclass(ReportError, ValueError)

    def test_a_missing_required_key_is_named_by_its_path(self):
        document = sample_document()
        del document["summary"]["won"]

        with pytest.raises(ReportError) as caught:
            validate_document(document)

        assert [str(p) for p in caught.value.problems] == ["summary.won: required key is missing"]

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("title",), 3, "title: expected a string, got an integer"),
            (("summary", "open"), True, "summary.open: expected an integer, got a boolean"),
            (("summary", "open"), 1.5, "summary.open: expected an integer, got float"),
            (("summary", "win_rate"), "50%", "summary.win_rate: expected a number, got a string"),
            (("summary", "open_amount"), None, "summary.open_amount: must not be null"),
            (("as_of",), "yesterday", "as_of: expected an ISO 8601 instant, got 'yesterday'"),
            (("process", "stages"), {}, "process.stages: expected a list, got an object"),
            (("funnel",), "all", "funnel: expected a list, got a string"),
            (("backtest",), [], "backtest: expected an object, got a list"),
            (("slip_summary",), 1, "slip_summary: expected an object, got an integer"),
        ],
    )
    def test_a_value_of_the_wrong_type_is_rejected_with_its_path(self, path, value, message):
        document = sample_document()
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

        with pytest.raises(ReportError, match=re.escape(message)):
            validate_document(document)

    def test_every_problem_is_listed_at_once(self):
        document = sample_document()
        document["process"]["stages"][1]["kind"] = "pending"
        document["funnel"][2]["reached"] = "many"
        document["stalled"][0] = "OPP-1"
        document["backtest"]["scores"][0]["brier"] = "low"
        document["cycle_time"]["won"]["n"] = 1.0
        document["slip_summary"]["win_rate_by_pushes"][0]["n"] = None
        document["data_quality"][0].pop("message")

        with pytest.raises(ReportError) as caught:
            validate_document(document)

        assert [p.path for p in caught.value.problems] == [
            "backtest.scores[0].brier",
            "cycle_time.won.n",
            "data_quality[0].message",
            "funnel[2].reached",
            "process.stages[1].kind",
            "slip_summary.win_rate_by_pushes[0].n",
            "stalled[0]",
        ]
        assert "7 problems" in str(caught.value)

    def test_a_document_that_is_not_a_mapping_is_rejected(self):
        with pytest.raises(ReportError, match="expected an object, got a list"):
            validate_document([])

    def test_null_stages_are_rejected(self):
        document = minimal_document()
        document["process"]["stages"] = None

        with pytest.raises(ReportError, match=r"process\.stages: must not be null"):
            validate_document(document)

    def test_missing_stages_are_rejected(self):
        document = minimal_document()
        del document["process"]["stages"]

        with pytest.raises(ReportError, match=r"process\.stages: required key is missing"):
            validate_document(document)

    def test_unknown_keys_are_ignored(self):
        document = sample_document() | {"extra": object()}
        document["funnel"][0]["new_metric"] = [1, 2]

        validate_document(document)
        render_html(document)

    def test_render_html_validates_first(self):
        with pytest.raises(ReportError, match="generated_at: required key is missing"):
            render_html({"title": "t", "as_of": "2025-01-01"})


class TestSampleDocument:
    def test_each_call_returns_a_fresh_equal_copy(self):
        first = sample_document()
        first["funnel"].clear()

        assert sample_document() == sample_document()
        assert sample_document()["funnel"] != []

    def test_the_sample_fills_every_section(self):
        document = sample_document()

        for key in (
            "probabilities",
            "time_in_stage",
            "funnel",
            "stalled",
            "slipping",
            "forecast",
            "data_quality",
        ):
            assert document[key], key
        assert document["backtest"]["reliability"]


# --- properties ----------------------------------------------------------------------------

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30
) | st.sampled_from(["리드 발굴", "협상 단계", "<b>x</b>", "a&b", '"quoted"', "  ", "\u202eevil"])
floats = st.floats(allow_nan=False, width=64)
numbers = st.none() | floats | st.integers(min_value=-(10**18), max_value=10**18)
counts = st.integers(min_value=0, max_value=10**9)
maybe_counts = st.none() | counts


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    stage_ids = draw(st.lists(names, max_size=6, unique=True))
    stages = [
        {
            "id": s,
            "label": draw(names),
            "kind": draw(st.sampled_from(["open", "won", "lost"])),
            "probability": draw(numbers),
        }
        for s in stage_ids
    ]
    stage = st.sampled_from(stage_ids) if stage_ids else names
    rows = lambda d: st.lists(st.fixed_dictionaries(d), max_size=5)  # noqa: E731
    return {
        "title": draw(names),
        "generated_at": "2025-07-01T06:00:00+00:00",
        "as_of": draw(st.sampled_from(["2025-06-30", "2025-06-30T12:00:00+09:00", "0001-01-01"])),
        "currency": draw(st.none() | names),
        "process": {"name": draw(names), "version": draw(names), "stages": stages},
        "summary": {
            "opportunities": draw(counts),
            "open": draw(counts),
            "won": draw(counts),
            "lost": draw(counts),
            "win_rate": draw(numbers),
            "open_amount": draw(floats),
            "weighted_amount": draw(floats),
            "median_cycle_days": draw(numbers),
        },
        "funnel": draw(
            rows(
                {
                    "stage": stage,
                    "reached": counts,
                    "reach_rate": numbers,
                    "conversion_from_previous": numbers,
                    "lost_here": maybe_counts,
                }
            )
        ),
        "probabilities": draw(
            rows(
                {
                    "stage": stage,
                    "configured": numbers,
                    "empirical": numbers,
                    "low": numbers,
                    "high": numbers,
                    "n": maybe_counts,
                    "markov": numbers,
                    "smoothed": numbers,
                }
            )
        ),
        "time_in_stage": draw(
            rows(
                {
                    "stage": stage,
                    "won_median_days": numbers,
                    "lost_median_days": numbers,
                    "open_median_days": numbers,
                    "lost_to_won_ratio": numbers,
                    "won_n": maybe_counts,
                }
            )
        ),
        "stalled": draw(
            rows(
                {
                    "opportunity_id": names,
                    "stage": stage,
                    "days_in_stage": floats,
                    "limit_days": numbers,
                    "limit_source": st.none() | names,
                    "amount": numbers,
                }
            )
        ),
        "slipping": draw(
            rows(
                {
                    "opportunity_id": names,
                    "pushes": st.integers(0, 50),
                    "days_pushed": numbers,
                    "close_date": st.none() | names,
                    "stage": stage,
                    "amount": numbers,
                }
            )
        ),
        "slip_summary": draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "slip_rate": numbers,
                    "win_rate_by_pushes": rows(
                        {"pushes": st.integers(0, 50), "n": counts, "win_rate": numbers}
                    ),
                }
            )
        ),
        "forecast": draw(
            rows(
                {
                    "period": names,
                    "weighted": numbers,
                    "p10": numbers,
                    "p50": numbers,
                    "p90": numbers,
                    "n": maybe_counts,
                }
            )
        ),
        "backtest": draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "cutoff": st.just("2025-01-01"),
                    "best": st.none() | names,
                    "scores": rows({"estimator": names, "brier": numbers, "log_loss": numbers}),
                    "reliability": rows(
                        {
                            "estimator": names,
                            "bin_low": floats,
                            "bin_high": floats,
                            "predicted": numbers,
                            "observed": numbers,
                        }
                    ),
                }
            )
        ),
        "data_quality": draw(
            rows(
                {
                    "code": names,
                    "severity": st.sampled_from(["error", "warning", "info"]) | names,
                    "count": maybe_counts,
                    "message": names,
                }
            )
        ),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_valid_document_renders_well_formed_html_showing_every_stage(document):
    page = render_html(document)
    parsed = Page(page)

    assert parsed.problems == []
    assert len(parsed.tags("script")) == 1
    shown = " ".join(text for _, text in parsed.texts)
    for stage in document["process"]["stages"]:
        # read back as text: html.escape and Jinja2 spell a quote differently (&quot; / &#34;)
        assert stage["label"].strip() in shown
    for name in CHARTS:
        assert page.count(f'<svg data-chart="{name}"') <= 1
