"""The report in Korean and English: the message catalogue, the page, the terminal summary."""

from __future__ import annotations

import ast
import json
import os
import re
import string
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate.report import (
    LANGUAGES,
    UnknownLanguageError,
    render_html,
    sample_document,
    validate_document,
)
from stagegate.report._i18n import ENGLISH, catalogue, cycle_explanation, estimator_reason
from stagegate.report._messages_ko import KOREAN

SRC = Path(__file__).resolve().parents[1] / "src" / "stagegate"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
PAYLOAD = '<script>alert(1)</script>" onmouseover="alert(2)'


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _literal_keys(path: Path, names: tuple[str, ...]) -> set[str]:
    """The English texts a module passes to its catalogue (``t("...")``, ``tx("...")``)."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in names
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            keys.add(node.args[0].value)
    return keys


def _template_keys() -> set[str]:
    keys = set()
    for template in (SRC / "report" / "templates").glob("*.j2"):
        for match in re.finditer(r'_\("((?:[^"\\]|\\.)*)"', template.read_text("utf-8")):
            keys.add(match.group(1).replace('\\"', '"'))
    return keys


class Texts(HTMLParser):
    """The text nodes of a page outside <style> and <script>."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.texts: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self.skip and data.strip():
            self.texts.append(data.strip())


class TestCatalogue:
    def test_every_text_the_code_and_templates_use_has_a_korean_translation(self):
        used = (
            _literal_keys(SRC / "report" / "_svg.py", ("t",))
            | _literal_keys(SRC / "report" / "_html.py", ("t",))
            | _literal_keys(SRC / "report" / "_i18n.py", ("t",))
            | _literal_keys(SRC / "cli" / "_report.py", ("t", "tx"))
            | _template_keys()
        )
        assert len(used) > 150
        assert set() == {text for text in used if text not in KOREAN}

    def test_every_translation_keeps_the_placeholders_and_bold_marks_of_its_english(self):
        for english, korean in KOREAN.items():
            assert _fields(english) == _fields(korean), english
            assert english.count("<b>") == korean.count("<b>"), english
            assert english.count("[bold]") == korean.count("[bold]"), english

    def test_every_translation_is_korean_text(self):
        same = {"P10", "P50", "P90", "n"}
        for english, korean in KOREAN.items():
            if english not in same:
                assert HANGUL.search(korean), english

    def test_english_is_its_own_catalogue_and_records_nothing_missing(self):
        assert "Win rate" == ENGLISH("Win rate")
        assert "3 pushes" == ENGLISH("{pushes} pushes", pushes=3)
        assert set() == ENGLISH.missing

    def test_a_text_without_translation_falls_back_to_english_and_is_remembered(self):
        ko = catalogue("ko", fresh=True)
        assert "Not a real message" == ko("Not a real message")
        assert {"Not a real message"} == ko.missing

    def test_an_unknown_language_is_refused_naming_the_choices(self):
        with pytest.raises(UnknownLanguageError, match=r"'fr'.*en, ko"):
            catalogue("fr")
        with pytest.raises(UnknownLanguageError):
            render_html(sample_document(), language="fr")

    def test_english_stays_the_default(self):
        assert ("en", "ko") == LANGUAGES
        assert catalogue() is catalogue("en")


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(sample_document(), language="ko")


class TestKoreanPage:
    def test_the_page_declares_its_language(self, page):
        assert '<html lang="ko">' in page
        assert '<html lang="en">' in render_html(sample_document())

    def test_rendering_needs_no_text_the_catalogue_lacks(self):
        ko = catalogue("ko")
        ko.missing.clear()
        render_html(sample_document(), language="ko")
        assert set() == ko.missing

    def test_stage_labels_are_the_korean_labels_of_the_process(self, page):
        for label in ("리드 발굴", "리드 검증", "니즈 분석", "솔루션 제안", "협상", "계약"):
            assert f">{label}<" in page
        assert ">Lead generation<" not in page

    def test_every_heading_and_table_header_is_korean(self, page):
        headings = re.findall(r"<h[23][^>]*>([^<]+)<", page)
        assert len(headings) > 10
        for heading in headings:
            assert HANGUL.search(heading), heading
        for header in re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page):
            assert HANGUL.search(header) or header in {"P10", "P50", "P90", "n"}, header

    def test_no_english_interface_sentence_is_left(self, page):
        english = {text for text in ENGLISH_TEXTS if len(text) > 12}
        leftover = [t for t in Texts(page).texts if t in english]
        assert [] == leftover

    def test_dates_and_days_read_in_korean(self, page):
        assert "2025년 6월 30일 23:59 UTC" in page
        assert re.search(r"\d+\.\d일<", page)

    def test_the_document_language_is_used_when_none_is_passed(self):
        document = sample_document() | {"language": "ko"}
        assert '<html lang="ko">' in render_html(document)
        assert '<html lang="en">' in render_html(document, language="en")

    def test_a_document_with_an_unknown_language_is_invalid(self):
        with pytest.raises(Exception, match="language"):
            validate_document(sample_document() | {"language": "xx"})

    def test_a_stage_without_a_korean_label_falls_back_to_its_label(self):
        document = sample_document()
        document["process"]["stages"][0].pop("labels")
        page = render_html(document, language="ko")
        assert ">Lead generation<" in page

    @settings(max_examples=25, deadline=None)
    @given(st.text(min_size=1, max_size=40))
    def test_hostile_labels_and_titles_are_escaped_in_korean_too(self, text):
        document = sample_document()
        hostile = PAYLOAD + text
        document["title"] = hostile
        document["process"]["stages"][1]["labels"] = {"en": "x", "ko": hostile}
        document["estimator"] = document["estimator"] | {"name": hostile, "reason": hostile}
        page = render_html(document, language="ko")
        assert "<script>alert" not in page
        assert '" onmouseover="' not in page


ENGLISH_TEXTS = frozenset(KOREAN)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("korean")
    sample = folder / "sample.jsonl"
    assert run("simulate", "--deals", "200", "--seed", "4", "--out", str(sample)).returncode == 0
    path = folder / "pipeline.sqlite"
    assert run("import", str(sample), "--store", str(path)).returncode == 0
    return path


class TestCommandLine:
    def test_language_ko_prints_the_terminal_summary_in_korean(self, store):
        result = run("report", "--store", str(store), "--language", "ko")
        assert result.returncode == 0, result.stderr
        for heading in ("단계별 확률", "단계 체류 일수", "정체된 거래", "수주 금액 예측"):
            assert heading in result.stdout
        assert "리드 발굴" in result.stdout
        assert "probability by stage" not in result.stdout
        assert "파이프라인 현황: b2b" in result.stdout

    def test_language_ko_writes_the_page_in_korean_and_the_json_says_so(self, store, tmp_path):
        page = tmp_path / "r.html"
        result = run("report", "--store", str(store), "--language", "ko", "--html", str(page))
        assert result.returncode == 0, result.stderr
        text = page.read_text("utf-8")
        assert '<html lang="ko">' in text
        assert '<h2 id="funnel-h">퍼널</h2>' in text
        as_json = run("report", "--store", str(store), "--language", "ko", "--json")
        document = json.loads(as_json.stdout)
        assert "ko" == document["language"]
        assert "리드 발굴" == document["process"]["stages"][0]["labels"]["ko"]
        validate_document(document)

    def test_english_stays_the_default_of_the_command(self, store):
        result = run("report", "--store", str(store))
        assert "probability by stage" in result.stdout
        assert "단계" not in result.stdout

    def test_an_unknown_language_exits_2_naming_the_choices(self, store):
        result = run("report", "--store", str(store), "--language", "fr")
        assert result.returncode == 2
        assert "'en', 'ko'" in result.stderr or "en, ko" in result.stderr


class TestProse:
    @pytest.mark.parametrize("chosen_by", ["option", "backtest", "configured", "fallback"])
    def test_the_estimator_reason_is_rebuilt_in_korean(self, chosen_by):
        document = sample_document()
        name = document["backtest"]["scores"][0]["estimator"]
        document["estimator"] = {"name": name, "chosen_by": chosen_by, "reason": "ENGLISH ONLY"}
        reason = estimator_reason(document, catalogue("ko"))
        assert HANGUL.search(reason)
        assert "ENGLISH ONLY" not in reason
        assert name in reason or chosen_by == "configured"
        assert "ENGLISH ONLY" == estimator_reason(document, ENGLISH)
        page = render_html(document, language="ko")
        assert "ENGLISH ONLY" not in page

    def test_a_backtest_reason_carries_the_score_it_was_chosen_by(self):
        document = sample_document()
        score = document["backtest"]["scores"][0]
        document["estimator"] = {"name": score["estimator"], "chosen_by": "backtest", "reason": ""}
        assert f"{score['brier']:.3f}" in estimator_reason(document, catalogue("ko"))

    def test_what_cannot_be_rebuilt_keeps_the_document_text(self):
        document = {"estimator": {"name": "x", "chosen_by": "something new", "reason": "kept"}}
        assert "kept" == estimator_reason(document, catalogue("ko"))

    def test_the_cycle_explanation_reads_in_korean_with_the_same_numbers(self):
        cycle = sample_document()["cycle_time"]
        text = cycle_explanation(cycle, catalogue("ko"))
        assert f"{cycle['sum_of_stage_means_days']:.1f}일" in text
        assert f"{cycle['measured_mean_days']:.1f}일" in text
        assert "아직" in cycle_explanation({"explanation": "none"}, catalogue("ko"))
        assert cycle["explanation"] == cycle_explanation(cycle, ENGLISH)

    def test_the_findings_the_report_counts_in_the_log_read_in_korean(self, tmp_path):
        source = (SRC / "report" / "_quality.py").read_text("utf-8")
        block = source[source.index("def data_quality") :]
        messages = [
            node.args[3].value
            for node in ast.walk(ast.parse(block.split("\n\n\n")[0]))
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", "") == "add"
            and isinstance(node.args[3], ast.Constant)
        ]
        assert len(messages) >= 8
        assert [] == [m for m in messages if m not in KOREAN]
        document = sample_document()
        document["data_quality"] = [
            {"code": "x", "severity": "warning", "count": 1, "message": m, "source": "log"}
            for m in messages
        ]
        page = render_html(document, language="ko")
        assert not any(m in page for m in messages)
        assert KOREAN[messages[0]] in page
