"""Notebook display: HTML tables, process diagrams, gate checklists, escaped, in a real IPython."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate import analytics as an
from stagegate.display import MAX_ROWS, Table, html, list_html, register, rows_of, table
from stagegate.gates import CriterionResult, GateReport
from stagegate.opportunity import Opportunity
from stagegate.process import Process, Stage, StageKind
from stagegate.simulate import simulate
from stagegate.templates import b2b

PAYLOAD = '<script>alert(1)</script>" onmouseover="alert(2)'
T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)


def _clean(page: str) -> None:
    """No markup from the data: no live script, no attribute broken out of its quotes."""
    assert "<script>" not in page
    assert '" onmouseover="' not in page


@pytest.fixture(scope="module")
def pipeline():
    process = b2b()
    sim = simulate(150, seed=11, process=process)
    events = [e for e in sim.events if e.at <= sim.as_of]
    return process, events, sim.as_of


class TestTables:
    def test_records_become_one_row_each_with_their_fields_as_columns(self, pipeline):
        process, events, as_of = pipeline
        rows = an.stage_probabilities(events, process, as_of=as_of)
        shown = table(rows)
        page = shown._repr_html_()
        assert len(rows) == len(shown) == page.count("<tr>") - 1
        assert page.count('<th class=num scope="col">') + page.count('<th scope="col">') == len(
            shown.columns
        )
        assert "empirical_low" in shown.columns

    def test_numbers_are_right_aligned_and_formatted(self):
        page = table([{"agent": "Ana", "won": 1234, "rate": 0.61234}])._repr_html_()
        assert '<td class="num">1,234</td>' in page
        assert '<td class="num">0.612</td>' in page
        assert "<td>Ana</td>" in page

    def test_long_tables_show_the_first_rows_and_count_the_rest(self):
        page = table([{"n": i} for i in range(MAX_ROWS + 7)])._repr_html_()
        assert MAX_ROWS + 1 == page.count("<tr>")
        assert "7 more" in page

    def test_polars_and_pandas_frames_are_tables(self):
        pl = pytest.importorskip("polars")
        pd = pytest.importorskip("pandas")
        data = {"agent": ["Ana", "Bo"], "won": [3, 4]}
        for frame in (pl.DataFrame(data), pd.DataFrame(data)):
            assert [{"agent": "Ana", "won": 3}, {"agent": "Bo", "won": 4}] == rows_of(frame)

    def test_what_is_not_table_like_is_refused_with_a_reason(self):
        with pytest.raises(TypeError, match="cannot show int as a table"):
            table(3)
        with pytest.raises(TypeError):
            html(object())

    @settings(max_examples=50, deadline=None)
    @given(st.text(min_size=1, max_size=30))
    def test_hostile_cells_are_escaped(self, text):
        page = table([{PAYLOAD + text: PAYLOAD + text}], caption=PAYLOAD)._repr_html_()
        _clean(page)
        cells = re.findall(r"<td>(.*?)</td>", page, flags=re.DOTALL)
        assert [PAYLOAD + text] == [unescape(c) for c in cells]

    def test_a_table_has_a_short_text_repr(self):
        assert "<Table 2 rows x 1 columns>" == repr(Table([{"a": 1}, {"a": 2}]))


class TestResults:
    def test_a_funnel_shows_its_figures_and_one_table_per_part(self, pipeline):
        process, events, as_of = pipeline
        result = an.funnel(events, process, as_of=as_of)
        page = result._repr_html_()
        assert "<b>Funnel</b>" in page
        assert "<caption>stages</caption>" in page
        assert "<dt>deals</dt><dd>150</dd>" in page

    def test_every_result_with_several_parts_draws_itself(self, pipeline):
        process, events, as_of = pipeline
        cut = as_of - timedelta(days=120)
        results = (
            an.funnel(events, process, as_of=as_of),
            an.forecast(events, process, as_of=as_of, simulations=50),
            an.slippage(events, process, as_of=as_of),
            an.cycle_times(events, process, as_of=as_of),
            an.backtest(events, process, cutoff=cut, as_of=as_of),
            an.waterfall(events, process, start=cut, end=as_of),
        )
        for result in results:
            page = result._repr_html_()
            assert page.startswith('<div class="stagegate stagegate-result">')
            assert f"<b>{type(result).__name__}</b>" in page
            assert "<table>" in page

    def test_a_single_record_is_a_one_row_table(self):
        page = html(an.Velocity("overall", 3, 0.5, 10.0, 20.0, 0.25))
        assert 2 == page.count("<tr>")


class TestProcess:
    def test_a_process_draws_every_stage_and_numbers_its_gates(self):
        process = b2b()
        page = process._repr_html_()
        assert len(process.stages) == len(re.findall(r'<g data-stage="[^"]+" class="stage', page))
        gated = [s for s in process.stages if s.gate is not None]
        assert len(gated) == page.count('data-mark="gate"')
        for number, stage in enumerate(gated, start=1):
            assert f"{number}. {stage.gate.describe()}" in unescape(page)

    def test_labels_are_shown_in_the_language_asked_for(self):
        page = html(b2b(), language="ko")
        assert "리드 발굴" in page
        assert "Lead generation" not in re.sub(r"<title>.*?</title>", "", page)

    @settings(max_examples=25, deadline=None)
    @given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.isprintable()))
    def test_hostile_labels_and_descriptions_are_escaped(self, text):
        label = PAYLOAD + text
        process = Process(
            "p",
            "1",
            [
                Stage("a", labels={"en": label}, probability=0.2),
                Stage("won", labels={"en": label}, probability=1.0, kind=StageKind.WON),
                Stage("lost", labels={"en": label}, probability=0.0, kind=StageKind.LOST),
            ],
            description=label,
        )
        page = process._repr_html_()
        _clean(page)
        assert page.count(label.replace("<", "&lt;")[:10]) >= 3


class TestGateReport:
    def test_a_gate_report_is_a_checklist_ticked_where_criteria_hold(self):
        process = b2b()
        deal = Opportunity.open(process, "d-1", at=T0, actor="ana")
        deal.record_deliverable(
            "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": "k@x"}
        )
        report = deal.gate_report("needs_analysis", at=T0)
        page = report._repr_html_()
        assert "NOT MET" in page
        holds = re.findall(r'data-holds="(true|false)"', page)
        leaves = report.results
        assert holds.count("true") + holds.count("false") >= len(leaves)
        assert "☐" in page

    def test_a_met_gate_says_so(self):
        report = GateReport("won", (CriterionResult("deliverable 'po'", True, "recorded", (3,)),))
        page = report._repr_html_()
        assert '<b class="met">met</b>' in page
        assert "(events 3)" in page
        assert "☑" in page

    def test_a_stage_without_a_gate_reports_no_criteria(self):
        assert "no criteria" in GateReport("lead")._repr_html_()

    @settings(max_examples=25, deadline=None)
    @given(st.text(min_size=1, max_size=30))
    def test_hostile_reasons_are_escaped(self, text):
        nested = CriterionResult("all of", False, PAYLOAD, (), (
            CriterionResult(PAYLOAD + text, False, PAYLOAD + text),
        ))  # fmt: skip
        page = GateReport(PAYLOAD, (nested,))._repr_html_()
        _clean(page)


class TestIPython:
    def test_lists_of_records_display_as_tables_in_a_real_shell(self, pipeline):
        interactive = pytest.importorskip("IPython.core.interactiveshell")
        shell = interactive.InteractiveShell.instance()
        try:
            assert register(shell)
            process, events, as_of = pipeline
            rows = an.stalled(events, process, as_of=as_of)
            data, _ = shell.display_formatter.format(rows)
            assert "<table>" in data["text/html"]
            plain, _ = shell.display_formatter.format([1, 2])
            assert "text/html" not in plain
            funnel, _ = shell.display_formatter.format(an.funnel(events, process, as_of=as_of))
            assert "<b>Funnel</b>" in funnel["text/html"]
        finally:
            interactive.InteractiveShell.clear_instance()

    def test_outside_ipython_registering_does_nothing(self):
        assert register() is False

    def test_only_lists_of_one_stagegate_record_type_are_claimed(self):
        velocity = an.Velocity("overall", 3, 0.5, 10.0, 20.0, 0.25)
        assert list_html([velocity]) is not None
        assert list_html([velocity, {"a": 1}]) is None
        assert list_html([datetime(2026, 1, 1, tzinfo=timezone.utc)]) is None
        assert list_html("text") is None


def test_percent_columns_read_as_percentages_and_missing_values_as_a_dash():
    page = table(
        [{"agent": "Ana", "win rate": 0.6123}, {"agent": "Bo", "win rate": None}],
        percent=["win rate"],
    )._repr_html_()
    assert '<td class="num">61.2%</td>' in page
    assert "<td>—</td>" in page or '<td class="num">—</td>' in page
