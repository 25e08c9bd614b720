"""Assemble the report document into one self-contained HTML page.

The page has no external references at all: the stylesheet and a small script are inline,
charts are inline SVG, and a Content-Security-Policy allows nothing else to load or run (the
script is allowed by its SHA-256 hash, so even a string that slipped through unescaped could
not execute). Every string from the document passes through :func:`html.escape`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timezone
from html import escape
from pathlib import Path
from typing import Any

from dateutil import parser as _dateutil_parser

from stagegate.report._assets import CSS, SCRIPT, SCRIPT_HASH
from stagegate.report._document import validate_document
from stagegate.report._format import DASH, amount, compact, count, days, finite, percent, ratio
from stagegate.report._svg import (
    durations_chart,
    forecast_chart,
    funnel_chart,
    probabilities_chart,
    reliability_chart,
    slippage_chart,
)

__all__ = ["render_html", "write_html"]

Row = Mapping[str, Any]
NO_DATA = '<p class="nodata">No data for this section.</p>'
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def _instant(text: object) -> str:
    """Format an ISO 8601 instant for people: ``30 Jun 2025, 23:59 UTC`` (or a bare date)."""
    raw = str(text)
    try:
        parsed = _dateutil_parser.isoparse(raw)
    except (ValueError, OverflowError):
        return raw
    if len(raw) <= len("2025-06-30"):
        return parsed.strftime("%d %b %Y").lstrip("0")
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc)
        except (OverflowError, ValueError):  # pragma: no cover - year 1 or 9999 edge
            return raw
        return parsed.strftime("%d %b %Y, %H:%M UTC").lstrip("0")
    return parsed.strftime("%d %b %Y, %H:%M").lstrip("0")


def _rows(document: Mapping[str, Any], key: str) -> Sequence[Row]:
    """Return a list section of the document (empty when absent or null)."""
    value = document.get(key)
    return value if isinstance(value, (list, tuple)) else ()


class _Column:
    """One table column: its header, how to read and format a row, and whether it is numeric."""

    __slots__ = ("css", "format", "header", "key")

    def __init__(
        self, header: str, key: str, fmt: Callable[[Any], str] | None = None, *, css: str = ""
    ) -> None:
        self.header, self.key, self.format, self.css = header, key, fmt, css


def _cell(column: _Column, row: Row) -> str:
    """Render one table cell; numeric cells carry their raw value for sorting."""
    value = row.get(column.key)
    if column.format is None:
        shown = DASH if value is None else _e(value)
        klass = f' class="{column.css}"' if column.css else ""
        return f"<td{klass}>{shown}</td>"
    number = finite(value)
    raw = "" if number is None else repr(number)
    return f'<td class="num" data-value="{raw}">{_e(column.format(value))}</td>'


def _table(
    columns: Sequence[_Column],
    rows: Sequence[Row],
    *,
    caption: str,
    row_attrs: Callable[[Row], str] = lambda _row: "",
    cells: Callable[[_Column, Row], str] = _cell,
) -> str:
    """Render a sortable table (the script adds the sort buttons)."""
    if not rows:
        return NO_DATA
    head = "".join(
        f'<th scope="col" class="num">{_e(c.header)}</th>'
        if c.format
        else f'<th scope="col">{_e(c.header)}</th>'
        for c in columns
    )
    body = "\n".join(
        f"<tr{row_attrs(row)}>" + "".join(cells(c, row) for c in columns) + "</tr>" for row in rows
    )
    return (
        f'<div class="table-wrap"><table class="sortable"><caption class="sr">{_e(caption)}'
        f"</caption><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


class _Page:
    """The rendering of one validated document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        self.process: Mapping[str, Any] = document["process"]
        self.stages: Sequence[Row] = self.process["stages"]
        self.labels = {str(s["id"]): str(s.get("label") or s["id"]) for s in self.stages}
        currency = document.get("currency")
        self.currency = f" {currency}" if currency else ""

    def label(self, stage: object) -> str:
        """Return the display label of a stage id."""
        return self.labels.get(str(stage), str(stage))

    def money(self, value: object) -> str:
        """Format a compact amount with the document's currency."""
        text = compact(value)
        return text if text == DASH else text + self.currency

    # --- the page --------------------------------------------------------------------------

    def render(self) -> str:
        """Return the whole page."""
        sections = [
            ("funnel", "Funnel", self.funnel()),
            ("forecast", "Forecast", self.forecast()),
            ("attention", "Deals needing attention", self.attention()),
            ("durations", "Time in stage", self.durations()),
            ("probabilities", "Win probability", self.probabilities()),
            ("backtest", "Backtest", self.backtest()),
            ("data-quality", "Data quality", self.data_quality()),
        ]
        toc = "".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title, _ in sections)
        body = "\n".join(
            f'<section class="card" id="{anchor}" aria-labelledby="{anchor}-h">'
            f'<h2 id="{anchor}-h">{_e(title)}</h2>\n{content}\n</section>'
            for anchor, title, content in sections
        )
        title = _e(self.doc["title"])
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="generator" content="stagegate">
<title>{title}</title>
<style>
{CSS}
.sr {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }}
</style>
</head>
<body>
{self.masthead()}
<main>
<nav class="toc" aria-label="Sections">{toc}</nav>
{self.summary()}
{body}
<footer>Rendered by stagegate from a report document. All charts are generated data, not
images; numbers in charts match the tables.</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""

    def masthead(self) -> str:
        """Render the title block: title, process, instants and the ordered stages."""
        chips = "".join(
            f'<li class="k-{_e(s["kind"])}" data-stage="{_e(s["id"])}">{_e(self.label(s["id"]))}'
            f'<span class="p">{percent(s.get("probability"))}</span></li>'
            for s in self.stages
        )
        stages = f'<ol class="stages" aria-label="Stages in order">{chips}</ol>' if chips else ""
        return (
            '<header class="masthead"><div class="inner">'
            '<p class="eyebrow">Pipeline health report</p>'
            f"<h1>{_e(self.doc['title'])}</h1>"
            f'<p class="meta">Process <b>{_e(self.process["name"])}</b> version '
            f"<b>{_e(self.process['version'])}</b> · as of <b>{_e(_instant(self.doc['as_of']))}"
            f"</b> · generated {_e(_instant(self.doc['generated_at']))}</p>"
            f"{stages}</div></header>"
        )

    def summary(self) -> str:
        """Render the summary tiles."""
        s: Row = self.doc["summary"]
        tiles = [
            ("Opportunities", count(s.get("opportunities")), "in the report"),
            ("Open", count(s.get("open")), "not yet won or lost"),
            ("Won", count(s.get("won")), ""),
            ("Lost", count(s.get("lost")), ""),
            ("Win rate", percent(s.get("win_rate"), digits=1), "won ÷ closed"),
            (
                "Open pipeline",
                _e(compact(s.get("open_amount"))),
                f"{amount(s.get('open_amount'))}{self.currency}",
            ),
            (
                "Weighted pipeline",
                _e(compact(s.get("weighted_amount"))),
                f"{amount(s.get('weighted_amount'))}{self.currency}",
            ),
            ("Median cycle", _e(days(s.get("median_cycle_days"))), "won deals, open to won"),
        ]
        items = "".join(
            f'<li class="tile"><div class="label">{_e(label)}</div>'
            f'<div class="value">{value}</div><div class="note">{_e(note)}</div></li>'
            for label, value, note in tiles
        )
        return f'<ul class="tiles" aria-label="Summary">{items}</ul>'

    # --- sections ----------------------------------------------------------------------------

    def funnel(self) -> str:
        """Render the funnel chart."""
        rows = _rows(self.doc, "funnel")
        lede = (
            '<p class="lede">How many opportunities reached each stage (a deal that skipped a '
            "stage still counts as having passed it), the share of all deals that got there, "
            "the conversion from the stage before, and how many were lost in the stage.</p>"
        )
        if not rows:
            return lede + NO_DATA
        return lede + f"<figure>{funnel_chart(rows, self.labels)}</figure>"

    def forecast(self) -> str:
        """Render the forecast chart and table."""
        rows = _rows(self.doc, "forecast")
        lede = (
            '<p class="lede">Bookings by expected close period. The bar spans P10 to P90 of the '
            "simulated outcomes: one period in ten should land below the bar and one in ten "
            "above it. The diamond is the probability-weighted amount.</p>"
        )
        if not rows:
            return lede + NO_DATA
        money = self.money
        columns = [
            _Column("Period", "period"),
            _Column("Deals", "n", count),
            _Column("Weighted", "weighted", money),
            _Column("P10", "p10", money),
            _Column("P50", "p50", money),
            _Column("P90", "p90", money),
        ]
        return (
            lede
            + f"<figure>{forecast_chart(rows)}</figure>"
            + _table(columns, rows, caption="Forecast by period")
        )

    def _stage_cell(self, column: _Column, row: Row) -> str:
        """Render a cell, showing stage ids by their labels."""
        if column.key == "stage" and row.get("stage") is not None:
            return f"<td>{_e(self.label(row['stage']))}</td>"
        if column.key == "opportunity_id":
            return f'<td><span class="id">{_e(row.get("opportunity_id"))}</span></td>'
        return _cell(column, row)

    def _stage_attrs(self, row: Row) -> str:
        """Link a table row to the chart marks of its stage."""
        stage = row.get("stage")
        return "" if stage is None else f' data-stage="{_e(stage)}"'

    def attention(self) -> str:
        """Render stalled deals, slipping deals and the slippage chart."""
        stalled = _rows(self.doc, "stalled")
        slipping = _rows(self.doc, "slipping")
        summary = self.doc.get("slip_summary") or {}
        pushes = _rows(summary, "win_rate_by_pushes")
        stalled_columns = [
            _Column("Opportunity", "opportunity_id"),
            _Column("Stage", "stage"),
            _Column("Days in stage", "days_in_stage", days),
            _Column("Limit", "limit_days", days),
            _Column("Limit from", "limit_source"),
            _Column("× won median", "times_won_median", ratio),  # noqa: RUF001
            _Column("Amount", "amount", self.money),
        ]
        slipping_columns = [
            _Column("Opportunity", "opportunity_id"),
            _Column("Stage", "stage"),
            _Column("Pushes", "pushes", count),
            _Column("Days pushed", "days_pushed", days),
            _Column("First close date", "first_close_date"),
            _Column("Close date", "close_date"),
            _Column("Amount", "amount", self.money),
        ]
        chart = slippage_chart(pushes, slipping)
        slip_rate = percent(summary.get("slip_rate"), digits=0)
        return (
            '<p class="lede">Open deals that have stayed in their stage past its limit, and '
            "deals whose expected close date keeps moving out.</p>"
            f"<h3>Stalled deals ({len(stalled)})</h3>"
            + _table(
                stalled_columns,
                stalled,
                caption="Stalled deals",
                row_attrs=self._stage_attrs,
                cells=self._stage_cell,
            )
            + f"<h3>Slipping deals ({len(slipping)})</h3>"
            + _table(
                slipping_columns,
                slipping,
                caption="Slipping deals",
                row_attrs=self._stage_attrs,
                cells=self._stage_cell,
            )
            + "<h3>Slippage and outcome</h3>"
            + f'<p class="lede">Slip rate (share of deals whose close date was pushed at least '
            f"once): <b>{_e(slip_rate)}</b>.</p>"
            + (NO_DATA if chart is None else f"<figure>{chart}</figure>")
        )

    def durations(self) -> str:
        """Render the stage durations chart, its table, and the cycle time."""
        rows = _rows(self.doc, "time_in_stage")
        lede = (
            '<p class="lede">Median days spent in each stage by deals that were eventually '
            "won and by deals that were eventually lost. Long lost bars mean deals that linger "
            "are usually lost: a stall limit there pays off.</p>"
        )
        if rows:
            columns = [
                _Column("Stage", "stage"),
                _Column("Won median", "won_median_days", days),
                _Column("Lost median", "lost_median_days", days),
                _Column("Open median", "open_median_days", days),
                _Column("Lost ÷ won", "lost_to_won_ratio", ratio),
                _Column("Won n", "won_n", count),
                _Column("Lost n", "lost_n", count),
                _Column("Open n", "open_n", count),
                _Column("KM median", "km_median_days", days),
            ]
            content = f"<figure>{durations_chart(rows, self.labels)}</figure>" + _table(
                columns,
                rows,
                caption="Time in stage",
                row_attrs=self._stage_attrs,
                cells=self._stage_cell,
            )
        else:
            content = NO_DATA
        return lede + content + "<h3>Cycle time</h3>" + self.cycle_time()

    def cycle_time(self) -> str:
        """Render the cycle time figures and their explanation."""
        cycle = self.doc.get("cycle_time")
        if not cycle:
            return NO_DATA
        items = []
        for outcome in ("won", "lost"):
            group = cycle.get(outcome) or {}
            items.append(
                (
                    f"{outcome.capitalize()} deals: median",
                    days(group.get("median_days")),
                )
            )
            items.append((f"{outcome.capitalize()} deals: mean", days(group.get("mean_days"))))
            items.append((f"{outcome.capitalize()} deals: n", count(group.get("n"))))
        items.append(("Sum of stage means", days(cycle.get("sum_of_stage_means_days"))))
        items.append(("Measured mean cycle", days(cycle.get("measured_mean_days"))))
        figures = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
        explanation = cycle.get("explanation")
        note = f'<p class="callout">{_e(explanation)}</p>' if explanation else ""
        return f'<dl class="kv">{figures}</dl>{note}'

    def probabilities(self) -> str:
        """Render the probability chart and table."""
        rows = _rows(self.doc, "probabilities")
        lede = (
            '<p class="lede">The probability configured on each stage against what history '
            "says: the empirical win rate of deals that reached the stage (with its interval) "
            "and the Markov estimate, which also learns from deals that are still open.</p>"
        )
        if not rows:
            return lede + NO_DATA
        columns = [
            _Column("Stage", "stage"),
            _Column("Configured", "configured", percent),
            _Column("Empirical", "empirical", percent),
            _Column("Low", "low", percent),
            _Column("High", "high", percent),
            _Column("Markov", "markov", percent),
            _Column("Smoothed", "smoothed", percent),
            _Column("n", "n", count),
        ]
        return (
            lede
            + f"<figure>{probabilities_chart(rows, self.labels)}</figure>"
            + _table(
                columns,
                rows,
                caption="Win probability by stage",
                row_attrs=self._stage_attrs,
                cells=self._stage_cell,
            )
        )

    def backtest(self) -> str:
        """Render the backtest scores and the reliability diagram."""
        backtest = self.doc.get("backtest")
        if not backtest:
            return NO_DATA
        best = backtest.get("best")
        scores = _rows(backtest, "scores")
        reliability = _rows(backtest, "reliability")
        lede = (
            '<p class="lede">Each estimator was fitted on history before '
            f"<b>{_e(_instant(backtest['cutoff']))}</b> and scored on the deals that closed "
            "after it. Lower Brier score and log loss are better."
            + (f" Best: <b>{_e(best)}</b>." if best else "")
            + "</p>"
        )

        def score_cell(column: _Column, row: Row) -> str:
            if column.key == "estimator" and best is not None and row.get("estimator") == best:
                return (
                    f'<td class="best">{_e(row["estimator"])}'
                    '<span class="best-mark">✓ best</span></td>'
                )
            return _cell(column, row)

        columns = [
            _Column("Estimator", "estimator"),
            _Column("Brier", "brier", lambda v: _fixed(v, 3)),
            _Column("Log loss", "log_loss", lambda v: _fixed(v, 3)),
            _Column("n", "n", count),
        ]
        table = _table(columns, scores, caption="Backtest scores", cells=score_cell)
        chart = f"<figure>{reliability_chart(reliability)}</figure>" if reliability else NO_DATA
        return (
            lede
            + '<div class="grid-2"><div><h3>Scores</h3>'
            + table
            + "</div><div><h3>Reliability</h3>"
            + chart
            + "</div></div>"
        )

    def data_quality(self) -> str:
        """Render the data-quality findings, errors first."""
        rows = _rows(self.doc, "data_quality")
        if not rows:
            return (
                '<p class="lede">Problems found in the event logs that may bend the numbers '
                "above.</p>" + NO_DATA
            )
        order = {"error": 0, "warning": 1, "info": 2}
        rows = sorted(rows, key=lambda r: order.get(str(r["severity"]).lower(), 3))

        def cell(column: _Column, row: Row) -> str:
            if column.key == "severity":
                severity = str(row["severity"])
                klass = f"sev-{severity.lower()}" if severity.lower() in order else "sev-info"
                return f'<td><span class="badge {klass}">{_e(severity)}</span></td>'
            if column.key == "code":
                return f"<td><code>{_e(row['code'])}</code></td>"
            return _cell(column, row)

        columns = [
            _Column("Severity", "severity"),
            _Column("Finding", "code"),
            _Column("Count", "count", count),
            _Column("What it means", "message"),
        ]
        return (
            '<p class="lede">Problems found in the event logs that may bend the numbers '
            "above, most severe first.</p>"
            + _table(columns, rows, caption="Data quality", cells=cell)
        )


def _fixed(value: object, digits: int) -> str:
    """Format a score with a fixed number of decimals."""
    number = finite(value)
    return DASH if number is None else f"{number:.{digits}f}"


def render_html(document: Mapping[str, Any]) -> str:
    """Render a report document into one self-contained HTML page.

    Args:
        document: a report document (see ``docs/report.md``); it is validated first.

    Returns:
        The page as a string: no external references, every document string escaped.

    Raises:
        ReportError: the document is malformed; every problem is listed with its path.

    >>> from stagegate.report import sample_document
    >>> page = render_html(sample_document())
    >>> page.startswith("<!DOCTYPE html>"), page.count("<svg data-chart=")
    (True, 6)
    """
    validate_document(document)
    return _Page(document).render()


def write_html(document: Mapping[str, Any], path: str | Path) -> Path:
    """Render ``document`` and write it to ``path`` as UTF-8; return the path written.

    Raises:
        ReportError: the document is malformed (nothing is written).
    """
    page = render_html(document)
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
