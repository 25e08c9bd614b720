"""The page's inline stylesheet and script (constants; nothing from the document goes here)."""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["CHART_CSS", "CSS", "SCRIPT", "SCRIPT_HASH"]

CSS = """
:root {
  --ink: #1c2331; --muted: #5d6678; --faint: #8a93a5; --line: #e2e6ed; --bg: #f4f6f9;
  --card: #ffffff; --primary: #3a6db5; --primary-soft: #dbe6f5; --won: #0072b2;
  --lost: #d55e00; --markov: #009e73; --accent: #cc79a7; --warn: #a8660b; --bad: #b3261e;
  --ok: #1f7a4d; --radius: 10px;
  --font: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK KR",
    "Apple SD Gothic Neo", "Malgun Gothic", "Helvetica Neue", Arial, sans-serif;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.5 var(--font); }
main { max-width: 1180px; margin: 0 auto; padding: 0 24px 48px; }
header.masthead { background: #1c2331; color: #fff; padding: 28px 0 22px; margin-bottom: 24px; }
header.masthead .inner { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; color: #aab4c8;
  margin: 0 0 4px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 8px; font-weight: 650;
  overflow-wrap: anywhere; }
.meta { color: #c9d1e0; font-size: 14px; margin: 0; overflow-wrap: anywhere; }
.meta b { color: #fff; font-weight: 600; }
.stages { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; padding: 0;
  margin: 14px 0 0; }
.stages li { font-size: 12px; border: 1px solid #3b4560; border-radius: 999px; padding: 2px 10px;
  color: #dfe5f0; overflow-wrap: anywhere; }
.stages li .p { color: #9fb0cc; margin-left: 4px; font-variant-numeric: tabular-nums; }
.stages li.k-won { border-color: #4f8fc0; }
.stages li.k-lost { border-color: #b8734a; border-style: dashed; }
nav.toc { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 20px; font-size: 14px; }
nav.toc a { color: var(--primary); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 12px;
  margin: 0 0 24px; padding: 0; list-style: none; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 12px 14px; }
.tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .05em; }
.tile .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums;
  line-height: 1.25; overflow-wrap: anywhere; }
.tile .note { color: var(--faint); font-size: 12px; }
.tile .unit { font-size: 14px; font-weight: 500; color: var(--muted); margin-left: 3px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  padding: 20px 22px 18px; margin: 0 0 20px; }
section.card > h2 { font-size: 19px; margin: 0 0 2px; font-weight: 650; }
h3 { font-size: 15px; margin: 18px 0 6px; font-weight: 650; }
.lede { color: var(--muted); margin: 0 0 14px; max-width: 78ch; }
.grid-2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px; }
figure { margin: 0 0 8px; overflow-x: auto; }
svg.chart { display: block; width: 100%; height: auto; min-width: 620px;
  font-family: var(--font); font-size: 13px; }
svg.chart-narrow { min-width: 360px; max-width: 560px; }
svg .legend-label { fill: var(--ink); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .tick { fill: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
svg .axis-title { fill: var(--muted); font-size: 12px; font-weight: 600; }
svg .col-head { fill: var(--muted); font-size: 11.5px; font-weight: 600; }
svg .row-label { fill: var(--ink); font-size: 13px; }
svg .value { fill: var(--ink); font-size: 12.5px; font-weight: 600;
  font-variant-numeric: tabular-nums; }
svg .num { fill: var(--ink); font-size: 12.5px; font-variant-numeric: tabular-nums; }
svg .small { font-size: 11.5px; }
svg .muted { fill: var(--muted); }
svg .legend-label { fill: var(--ink); font-size: 12.5px; }
svg .c-primary { fill: var(--primary); }
svg .c-won { fill: var(--won); }
svg .r-healthy { fill: var(--won); }
svg .r-stalled { fill: var(--lost); }
svg .r-stale { fill: #e6c229; }
svg .r-slipping { fill: var(--accent); }
svg .r-overdue { fill: var(--bad); }
svg .hatched { stroke: var(--lost); stroke-width: 1; }
svg .hatch-bg { fill: #fbe3d3; }
svg .hatch-line { stroke: var(--lost); stroke-width: 3; }
svg .row-rule { stroke: var(--line); stroke-dasharray: 2 3; }
svg .whisker line { stroke: var(--won); stroke-width: 2; }
svg .m-empirical { fill: var(--won); stroke: #fff; stroke-width: 1.5; }
svg .m-configured { fill: #fff; stroke: var(--ink); stroke-width: 1.8; }
svg .m-markov { fill: var(--markov); stroke: #fff; stroke-width: 1; }
svg .m-weighted { fill: var(--lost); stroke: #fff; stroke-width: 1; }
svg .range { fill: var(--primary-soft); stroke: var(--primary); stroke-width: 1.2; }
svg .p50 { stroke: var(--ink); stroke-width: 3; }
svg .diagonal { stroke: var(--faint); stroke-dasharray: 4 4; }
svg .series-line { fill: none; stroke-width: 2; }
svg .m-s0 { fill: var(--lost); stroke: var(--lost); }
svg .m-s1 { fill: var(--markov); stroke: var(--markov); }
svg .m-s2 { fill: var(--won); stroke: var(--won); }
svg .m-s3 { fill: var(--accent); stroke: var(--accent); }
svg .series-line { fill: none; }
svg .row:hover .bar, svg .col:hover .bar, svg .col:hover .range { opacity: .8; }
svg .row:hover .row-label { font-weight: 700; }
.hl { background: #fff6d6 !important; }
svg .hl .row-label { font-weight: 700; }
.table-wrap { overflow-x: auto; margin: 0 0 6px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em;
  font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: #f7f9fc; }
th button { all: inherit; cursor: pointer; padding: 0; border: 0; }
th button::after { content: " \\2195"; color: var(--faint); font-size: 11px; }
th[aria-sort="ascending"] button::after { content: " \\2191"; color: var(--ink); }
th[aria-sort="descending"] button::after { content: " \\2193"; color: var(--ink); }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; }
.badge { display: inline-block; font-size: 11.5px; font-weight: 700; letter-spacing: .04em;
  text-transform: uppercase; padding: 1px 8px; border-radius: 999px; border: 1px solid; }
.sev-error { color: var(--bad); border-color: var(--bad); background: #fdeceb; }
.sev-warning { color: var(--warn); border-color: var(--warn); background: #fdf4e4; }
.sev-info { color: var(--muted); border-color: var(--faint); background: #f2f4f7; }
.best { font-weight: 700; }
.best-mark { color: var(--ok); font-size: 12px; font-weight: 700; margin-left: 6px; }
.nodata { color: var(--faint); font-style: italic; margin: 4px 0 8px; }
.callout { border-left: 3px solid var(--primary); background: #f4f7fc; padding: 10px 14px;
  margin: 10px 0 0; color: var(--ink); max-width: 90ch; }
.kv { display: grid; grid-template-columns: repeat(auto-fit, minmax(108px, 1fr)); gap: 10px;
  margin: 0; }
.kv div { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.kv dt { color: var(--muted); font-size: 12px; }
.kv dd { margin: 0; font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; }
footer { color: var(--faint); font-size: 12px; text-align: center; margin: 28px 0 0; }
@media (max-width: 760px) {
  main { padding: 0 12px 32px; }
  header.masthead .inner { padding: 0 12px; }
  h1 { font-size: 22px; }
  .grid-2 { grid-template-columns: minmax(0, 1fr); }
  section.card { padding: 16px 14px; }
  .tile .value { font-size: 22px; }
  table { min-width: 600px; }
}
@media print {
  @page { margin: 14mm; }
  body { background: #fff; font-size: 11pt; }
  header.masthead { background: #fff; color: var(--ink); border-bottom: 2px solid var(--ink);
    padding: 0 0 10px; }
  .meta, .eyebrow, .stages li, .stages li .p { color: var(--ink); }
  nav.toc { display: none; }
  main { max-width: none; padding: 0; }
  section.card, .tile { border: 1px solid #ccc; break-inside: avoid; box-shadow: none; }
  figure, .table-wrap { overflow: visible; }
  svg.chart { min-width: 0; }
  th button::after { content: ""; }
  tbody tr:hover { background: none; }
}
""".strip()


def _chart_css(page: str) -> str:
    """The page's chart rules, scoped to ``svg.stagegate-chart``, with the palette on the svg.

    A chart shown on its own (in a notebook, or saved as an SVG file) carries this stylesheet
    inside it; scoping keeps it from touching anything else on the page that shows it.
    """
    palette = page.split(":root {", 1)[1].split("}", 1)[0]
    rules = re.findall(r"^svg [^{]*\{[^}]*\}", page, flags=re.MULTILINE)
    scoped = [re.sub(r"(^|, )svg ", r"\1svg.stagegate-chart ", rule) for rule in rules]
    root = (
        "svg.stagegate-chart {" + palette + "font-family: var(--font); font-size: 13px; "
        "max-width: 100%; height: auto; background: #fff; }"
    )
    return "\n".join([root, *scoped])


CHART_CSS = _chart_css(CSS)

SCRIPT = """
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return { num: null, text: "" }; }
    var raw = cell.getAttribute("data-value");
    if (raw !== null) {
      var num = raw === "" ? null : parseFloat(raw);
      return { num: (num === null || isNaN(num)) ? null : num, text: cell.textContent };
    }
    return { num: null, text: cell.textContent.trim() };
  }
  function sortTable(table, index, th) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var numeric = th.classList.contains("num");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      if (numeric) {
        if (x.num === null && y.num === null) { return 0; }
        if (x.num === null) { return 1; }
        if (y.num === null) { return -1; }
        return direction * (x.num - y.num);
      }
      return direction * x.text.localeCompare(y.text);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var head = table.tHead;
    if (!head || !head.rows.length) { return; }
    Array.prototype.forEach.call(head.rows[0].cells, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, index, th); });
    });
  });
  var linked = document.querySelectorAll("[data-stage]");
  function highlight(stage, on) {
    Array.prototype.forEach.call(linked, function (el) {
      if (el.getAttribute("data-stage") === stage) { el.classList.toggle("hl", on); }
    });
  }
  Array.prototype.forEach.call(linked, function (el) {
    var stage = el.getAttribute("data-stage");
    el.addEventListener("mouseenter", function () { highlight(stage, true); });
    el.addEventListener("mouseleave", function () { highlight(stage, false); });
  });
  document.body.setAttribute("data-ready", "1");
})();
""".strip()

SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
