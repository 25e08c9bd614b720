"""The report in a real headless browser: scripts run cleanly, charts survive, a PNG is drawn.

Needs a ``chromium`` binary on PATH (Debian: ``apt-get install -y chromium``); every test skips
with that reason when it is absent. Each browser run takes one to three seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stagegate.report import render_html, sample_document, write_html

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH; install it with apt-get install chromium"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CHARTS = ("funnel", "stage-durations", "probabilities", "slippage", "forecast", "reliability")
CONSOLE_ERROR = re.compile(r"CONSOLE.*(Uncaught|error|Refused|violates)", re.IGNORECASE)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in headless chromium with ``extra`` flags; return the finished process."""
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def console_errors(stderr: str) -> list[str]:
    """Return the browser log lines that report a console error or an uncaught exception."""
    return [line for line in stderr.splitlines() if CONSOLE_ERROR.search(line)]


@pytest.fixture(scope="module")
def dumped(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """Render the sample, load it once with console logging on, and dump the DOM after scripts."""
    folder = tmp_path_factory.mktemp("report")
    page = write_html(sample_document(), folder / "report.html")
    return chromium(page, folder / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")


class TestInBrowser:
    def test_the_script_runs_to_the_end(self, dumped):
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        assert re.search(r'<body[^>]*data-ready="1"', dumped.stdout)

    def test_every_chart_is_in_the_live_dom(self, dumped):
        for name in CHARTS:
            assert f'<svg data-chart="{name}"' in dumped.stdout

    def test_tables_became_sortable(self, dumped):
        assert dumped.stdout.count('<th scope="col"') == dumped.stdout.count(
            '<button type="button">'
        )
        assert '<button type="button">' in dumped.stdout

    def test_the_page_logs_no_console_errors(self, dumped):
        assert console_errors(dumped.stderr) == []

    def test_a_deliberate_throw_is_detected(self, tmp_path: Path):
        page = render_html(sample_document())
        page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
        page = page.replace("</body>", '<script>throw new Error("deliberate")</script></body>')
        (tmp_path / "throw.html").write_text(page, encoding="utf-8")

        run = chromium(
            tmp_path / "throw.html",
            tmp_path / "p",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        )

        errors = console_errors(run.stderr)
        assert len(errors) == 1, run.stderr[-2000:]
        assert "Uncaught Error: deliberate" in errors[0]

    def test_an_injected_script_would_be_blocked_by_the_content_security_policy(
        self, tmp_path: Path
    ):
        page = render_html(sample_document()).replace(
            "</main>", "<script>document.body.setAttribute('data-injected', '1')</script></main>"
        )
        (tmp_path / "inject.html").write_text(page, encoding="utf-8")

        run = chromium(
            tmp_path / "inject.html",
            tmp_path / "p",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        )

        body = re.search(r"<body[^>]*>", run.stdout)
        assert body is not None
        assert "data-injected" not in body.group(0)
        assert 'data-ready="1"' in body.group(0)  # our own script still ran
        assert any("Content Security Policy" in line for line in console_errors(run.stderr))

    def test_a_screenshot_at_1280_pixels_is_drawn(self, tmp_path: Path):
        page = write_html(sample_document(), tmp_path / "report.html")
        shot = tmp_path / "report.png"

        run = chromium(
            page,
            tmp_path / "p",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
        )

        assert run.returncode == 0, run.stderr[-2000:]
        data = shot.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert int.from_bytes(data[16:20], "big") == 1280
        assert int.from_bytes(data[20:24], "big") == 2000
        assert len(data) > 50_000  # a blank page compresses to a few kilobytes


def test_the_report_the_command_line_writes_renders_without_errors(tmp_path: Path) -> None:
    """The whole main job: simulate, import into SQLite, report to HTML, open it in chromium."""
    sample, store, page = tmp_path / "s.jsonl", tmp_path / "p.sqlite", tmp_path / "r.html"
    for args in (
        ("simulate", "--deals", "300", "--seed", "2", "--out", str(sample)),
        ("import", str(sample), "--store", str(store)),
        ("report", "--store", str(store), "--html", str(page)),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "stagegate", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    shown = chromium(page, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert re.search(r'<body[^>]*data-ready="1"', shown.stdout)
    for chart in ("funnel", "stage-durations", "probabilities", "slippage", "forecast"):
        assert f'data-chart="{chart}"' in shown.stdout
    assert console_errors(shown.stderr) == []


# Whether Korean text renders, read in the browser itself: with a font, two different Hangul
# strings draw different pixels; without one, every glyph is the same "tofu" box, so the text of
# a heading draws exactly like a string of one repeated syllable. Unassigned code points (no font
# has them) are the control that shows the check can see tofu.
GLYPH_CHECK = """<script>
(function () {
  function draw(text, font) {
    var canvas = document.createElement("canvas");
    canvas.width = 900; canvas.height = 80;
    var g = canvas.getContext("2d");
    g.font = font; g.fillStyle = "#000"; g.fillText(text, 4, 50);
    return canvas.toDataURL();
  }
  function same(text, filler, font) {
    var other = Array.prototype.map.call(text, function () { return filler; }).join("");
    return draw(text, font) === draw(other, font);
  }
  var heading = document.getElementById("funnel-h");
  var font = getComputedStyle(heading).font;
  var text = heading.textContent;
  var blank = draw("", font) === draw(text, font);
  var tofu = blank || same(text, "\\ud7a3", font);
  document.body.setAttribute("data-hangul", tofu ? "tofu" : "glyphs");
  var control = same("\\u0378\\u0379", "\\u0378", font);
  document.body.setAttribute("data-control", control ? "tofu" : "glyphs");
  document.body.setAttribute("data-width", String(Math.round(
    document.createElement("canvas").getContext("2d").measureText(text).width)));
})();
</script>"""


def _korean_font() -> bool:
    listed = subprocess.run(
        ["fc-list", ":lang=ko"], capture_output=True, text=True, timeout=60, check=False
    )
    return bool(listed.stdout.strip())


def test_korean_text_renders_with_real_glyphs_not_tofu(tmp_path: Path) -> None:
    """The report in Korean draws its Hangul with a font (.ci/run installs fonts-noto-cjk)."""
    if shutil.which("fc-list") is None or not _korean_font():
        pytest.skip("no Korean font (fc-list :lang=ko is empty); apt-get install fonts-noto-cjk")
    page = render_html(sample_document(), language="ko")
    assert '<h2 id="funnel-h">퍼널</h2>' in page
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    (tmp_path / "ko.html").write_text(page.replace("</body>", GLYPH_CHECK + "</body>"), "utf-8")

    run = chromium(tmp_path / "ko.html", tmp_path / "p", "--dump-dom")

    body = re.search(r"<body[^>]*>", run.stdout)
    assert body is not None, run.stderr[-2000:]
    assert 'data-control="tofu"' in body.group(0)  # the check sees tofu where there is tofu
    assert 'data-hangul="glyphs"' in body.group(0)
    assert 'data-ready="1"' in body.group(0)


def test_without_a_korean_font_the_same_check_reports_tofu(tmp_path: Path) -> None:
    """The check can fail: under a fontconfig that knows no font at all, Hangul is tofu."""
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>",
        "utf-8",
    )
    page = render_html(sample_document(), language="ko")
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    (tmp_path / "ko.html").write_text(page.replace("</body>", GLYPH_CHECK + "</body>"), "utf-8")
    assert CHROMIUM is not None
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p'}", "--dump-dom"]
    run = subprocess.run(
        [*command, (tmp_path / "ko.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FONTCONFIG_FILE": str(config)},
    )

    body = re.search(r"<body[^>]*>", run.stdout)
    assert body is not None, run.stderr[-2000:]
    assert 'data-hangul="tofu"' in body.group(0)


def test_a_screenshot_of_the_korean_report_is_drawn(tmp_path: Path) -> None:
    page = write_html(sample_document(), tmp_path / "ko.html", language="ko")
    shot = tmp_path / "ko.png"

    run = chromium(page, tmp_path / "p", "--hide-scrollbars", f"--screenshot={shot}",
                   "--window-size=1280,1400")  # fmt: skip

    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_SIGNATURE)


@pytest.fixture(scope="module")
def by_owner_document() -> dict:
    from stagegate.report import build_document
    from stagegate.simulate import simulate
    from stagegate.templates import b2b

    process = b2b()
    sim = simulate(300, seed=4, process=process, segments=True)
    events = [e for e in sim.events if e.at <= sim.as_of]
    return build_document(events, process, as_of=sim.as_of, by="owner")


@pytest.mark.parametrize(("language", "heading"), [("en", "By segment"), ("ko", "세그먼트별")])
def test_the_segment_section_renders_in_the_browser(
    tmp_path: Path, by_owner_document: dict, language: str, heading: str
) -> None:
    """The --by section in chromium: its heading, chart bars and sortable tables, no errors."""
    page = write_html(by_owner_document, tmp_path / "by.html", language=language)

    shown = chromium(page, tmp_path / "p", "--enable-logging=stderr", "--v=0", "--dump-dom")

    assert re.search(r'<body[^>]*data-ready="1"', shown.stdout), shown.stderr[-2000:]
    assert f'<h2 id="segments-h">{heading}</h2>' in shown.stdout
    assert 'data-chart="segments"' in shown.stdout
    assert shown.stdout.count('data-part="') > 0
    section = shown.stdout.split('id="segments"', 1)[1].split("</section>", 1)[0]
    assert section.count("<details") == sum(
        1 for r in by_owner_document["segments"]["rows"] if r["deals"]
    )
    assert "<button" in section  # the page script made its tables sortable
    assert console_errors(shown.stderr) == []


def test_a_screenshot_of_the_segment_section_is_drawn(tmp_path: Path, by_owner_document: dict):
    page = write_html(by_owner_document, tmp_path / "by.html", language="ko")
    shot = tmp_path / "by.png"
    run = chromium(page.with_name("by.html"), tmp_path / "p", "--hide-scrollbars",
                   f"--screenshot={shot}", "--window-size=1280,5000")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
