"""Assemble the report document into one self-contained HTML page, from Jinja2 templates.

The templates (``stagegate/report/templates/*.html.j2``, shipped in the package) are rendered
with autoescaping on: every string of the document is escaped by the template engine, in text
and in attributes. Only the SVG charts arrive as markup; :mod:`stagegate.report._svg` builds
them and escapes every value it writes. The page has no external references at all: the
stylesheet and a small script are inline, and a Content-Security-Policy allows nothing else to
load or run (the script is allowed by its SHA-256 hash, so even a string that slipped through
unescaped could not execute).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timezone
from functools import cache
from pathlib import Path
from typing import Any

from dateutil import parser as _dateutil_parser

from stagegate.errors import StagegateError
from stagegate.report._assets import CSS, SCRIPT, SCRIPT_HASH
from stagegate.report._document import validate_document
from stagegate.report._format import DASH, amount, compact, count, finite, percent, ratio
from stagegate.report._i18n import (
    ENGLISH,
    Catalogue,
    catalogue,
    cycle_explanation,
    estimator_reason,
)
from stagegate.report._svg import (
    durations_chart,
    forecast_chart,
    funnel_chart,
    probabilities_chart,
    reliability_chart,
    segments_chart,
    slippage_chart,
)

__all__ = ["render_html", "write_html"]

Row = Mapping[str, Any]
Cell = dict[str, str]
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)
_SEVERITY = {"error": 0, "warning": 1, "info": 2}
_ESTIMATOR_COLUMNS = ("configured", "empirical", "markov", "smoothed")


class TemplateEngineMissingError(StagegateError, ImportError):
    """Jinja2, which renders the report page, is not installed."""

    def __init__(self) -> None:
        super().__init__("rendering the HTML report needs Jinja2: pip install 'stagegate[report]'")


TemplateEngineMissingError.__module__ = "stagegate.report"


@cache
def _environment(language: str = "en") -> Any:
    """The template environment of one language: ``_("text", name=value)`` in templates.

    ``_`` translates the text (trusted: it is this package's own, and may hold ``<b>``) and
    puts the values in escaped, so a value from the document never reaches the page raw.
    """
    try:
        import jinja2  # noqa: PLC0415 - optional: only the HTML page needs it
    except ImportError as error:  # pragma: no cover - jinja2 is in the dev extra
        raise TemplateEngineMissingError from error
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("stagegate.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.globals["_"] = _translator(catalogue(language))
    return environment


def _translator(t: Catalogue) -> Callable[..., Any]:
    from markupsafe import Markup  # noqa: PLC0415 - installed with jinja2

    def translate(text: str, **values: Any) -> Any:
        return Markup(t.raw(text)).format(**values)  # noqa: S704 - our text; values escaped

    return translate


def _markup(text: str | None) -> Any:
    """Mark text built (and escaped) by this package as safe for the templates."""
    if text is None:
        return None
    from markupsafe import Markup  # noqa: PLC0415 - installed with jinja2

    return Markup(text)  # noqa: S704 - SVG built by _svg.py, which escapes every value


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _instant(text: object, language: str = "en") -> str:
    """Format an ISO 8601 instant for people: ``30 Jun 2025, 23:59 UTC`` (or a bare date).

    In Korean: ``2025년 6월 30일 23:59 UTC``. Month names are written here, never taken from
    the machine's locale.

    >>> _instant("2025-06-30T23:59:00+00:00"), _instant("2025-06-30", "ko")
    ('30 Jun 2025, 23:59 UTC', '2025년 6월 30일')
    """
    raw = str(text)
    try:
        parsed = _dateutil_parser.isoparse(raw)
    except (ValueError, OverflowError):
        return raw
    zone = ""
    if len(raw) > len("2025-06-30") and parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc)
        except (OverflowError, ValueError):  # pragma: no cover - year 1 or 9999 edge
            return raw
        zone = " UTC"
    if language == "ko":
        day = f"{parsed.year}년 {parsed.month}월 {parsed.day}일"
    else:
        day = f"{parsed.day} {_MONTHS[parsed.month - 1]} {parsed.year}"
    if len(raw) <= len("2025-06-30"):
        return day
    clock = f"{parsed.hour:02d}:{parsed.minute:02d}{zone}"
    return f"{day} {clock}" if language == "ko" else f"{day}, {clock}"


def _rows(document: Mapping[str, Any], key: str) -> Sequence[Row]:
    """Return a list section of the document (empty when absent or null)."""
    value = document.get(key)
    return value if isinstance(value, (list, tuple)) else ()


class _Column:
    """One table column: its header, how to read and format a row, and whether it is numeric."""

    __slots__ = ("format", "header", "key")

    def __init__(self, header: str, key: str, fmt: Callable[[Any], str] | None = None) -> None:
        self.header, self.key, self.format = header, key, fmt


def _cell(column: _Column, row: Row) -> Cell:
    """One table cell; numeric cells carry their raw value for sorting."""
    value = row.get(column.key)
    if column.format is None:
        return {"kind": "text", "text": DASH if value is None else str(value)}
    number = finite(value)
    raw = "" if number is None else repr(number)
    return {"kind": "num", "value": raw, "text": column.format(value)}


def _table(
    columns: Sequence[_Column],
    rows: Sequence[Row],
    *,
    caption: str,
    cells: Callable[[_Column, Row], Cell] = _cell,
    stage_rows: bool = False,
) -> dict[str, Any]:
    """A sortable table for the ``table`` macro (the page script adds the sort buttons)."""
    return {
        "caption": caption,
        "columns": [{"header": c.header, "numeric": c.format is not None} for c in columns],
        "rows": [
            {
                "stage": None if not stage_rows or row.get("stage") is None else row["stage"],
                "cells": [cells(c, row) for c in columns],
            }
            for row in rows
        ],
    }


def _fixed(value: object, digits: int) -> str:
    """Format a score with a fixed number of decimals."""
    number = finite(value)
    return DASH if number is None else f"{number:.{digits}f}"


def _stage_label(stage: Row, language: str) -> str:
    """A stage's label in ``language`` (from its ``labels``), else its label, else its id."""
    labels = stage.get("labels")
    if isinstance(labels, Mapping) and labels.get(language):
        return str(labels[language])
    return str(stage.get("label") or stage["id"])


class _Page:
    """The template context of one validated document."""

    def __init__(self, document: Mapping[str, Any], t: Catalogue = ENGLISH) -> None:
        self.doc = document
        self.t = t
        self.language = t.language
        self.process: Mapping[str, Any] = document["process"]
        self.stages: Sequence[Row] = self.process["stages"]
        self.labels = {str(s["id"]): _stage_label(s, self.language) for s in self.stages}
        currency = document.get("currency")
        self.currency = f" {currency}" if currency else ""
        chosen = document.get("estimator")
        self.estimator: str | None = str(chosen["name"]) if chosen else None

    def label(self, stage: object) -> str:
        """Return the display label of a stage id."""
        return self.labels.get(str(stage), str(stage))

    def money(self, value: object) -> str:
        """Format a compact amount with the document's currency."""
        text = compact(value)
        return text if text == DASH else text + self.currency

    def stage_cell(self, column: _Column, row: Row) -> Cell:
        """A cell that shows stage ids by their labels and opportunity ids as ids."""
        if column.key == "stage" and row.get("stage") is not None:
            return {"kind": "text", "text": self.label(row["stage"])}
        if column.key == "opportunity_id":
            return {"kind": "id", "text": str(row.get("opportunity_id"))}
        return _cell(column, row)

    def days(self, value: object) -> str:
        """Format a duration in days in the page's language."""
        return self.t.days(value)

    def context(self) -> dict[str, Any]:
        """Everything the page template reads."""
        t = self.t
        sections = [
            ("funnel", "Funnel", "funnel.html.j2"),
            ("forecast", "Forecast", "forecast.html.j2"),
            ("attention", "Deals needing attention", "attention.html.j2"),
            ("durations", "Time in stage", "durations.html.j2"),
            ("probabilities", "Win probability", "probabilities.html.j2"),
            ("backtest", "Backtest", "backtest.html.j2"),
            ("data-quality", "Data quality", "data_quality.html.j2"),
        ]
        if self.doc.get("segments"):
            sections.insert(3, ("segments", "By segment", "segments.html.j2"))
        return {
            "language": self.language,
            "csp": _CSP,
            "css": _markup(CSS),
            "script": _markup(SCRIPT),
            "title": str(self.doc["title"]),
            "process_name": str(self.process["name"]),
            "process_version": str(self.process["version"]),
            "as_of": _instant(self.doc["as_of"], self.language),
            "generated_at": _instant(self.doc["generated_at"], self.language),
            "stages": [
                {
                    "id": str(s["id"]),
                    "kind": str(s["kind"]),
                    "label": self.label(s["id"]),
                    "probability": percent(s.get("probability")),
                }
                for s in self.stages
            ],
            "sections": [{"anchor": a, "title": t(n), "template": f} for a, n, f in sections],
            "tiles": self.tiles(),
            "estimator": (
                {**self.doc["estimator"], "reason": estimator_reason(self.doc, t)}
                if self.doc.get("estimator")
                else None
            ),
            "funnel": self.funnel(),
            "forecast": self.forecast(),
            "attention": self.attention(),
            "durations": self.durations(),
            "probabilities": self.probabilities(),
            "backtest": self.backtest(),
            "quality": self.data_quality(),
            "segments": self.segments(),
        }

    def tiles(self) -> list[dict[str, str]]:
        """The summary tiles."""
        s: Row = self.doc["summary"]
        t = self.t
        by = s.get("weighted_estimator") or self.estimator
        weighted_note = f"{amount(s.get('weighted_amount'))}{self.currency}"
        if by:
            weighted_note += " · " + t("by {estimator}", estimator=by)
        return [
            {"label": t(label), "value": value, "note": note}
            for label, value, note in (
                ("Opportunities", count(s.get("opportunities")), t("in the report")),
                ("Open", count(s.get("open")), t("not yet won or lost")),
                ("Won", count(s.get("won")), ""),
                ("Lost", count(s.get("lost")), ""),
                ("Win rate", percent(s.get("win_rate"), digits=1), t("won ÷ closed")),
                (
                    "Open pipeline",
                    compact(s.get("open_amount")),
                    f"{amount(s.get('open_amount'))}{self.currency}",
                ),
                ("Weighted pipeline", compact(s.get("weighted_amount")), weighted_note),
                (
                    "Median cycle",
                    self.days(s.get("median_cycle_days")),
                    t("won deals, open to won"),
                ),
            )
        ]

    def funnel(self) -> dict[str, Any]:
        """The funnel chart."""
        rows = _rows(self.doc, "funnel")
        return {"chart": _markup(funnel_chart(rows, self.labels, t=self.t)) if rows else None}

    def forecast(self) -> dict[str, Any]:
        """The forecast chart, table and the notes on its method."""
        t = self.t
        rows = _rows(self.doc, "forecast")
        method = self.doc.get("forecast_method") or {}
        money = self.money
        columns = [
            _Column(t("Period"), "period"),
            _Column(t("Deals"), "n", count),
            _Column(t("Overdue"), "overdue", count),
            _Column(t("Weighted"), "weighted", money),
            _Column(t("Simulated mean"), "simulated_mean", money),
            _Column(t("P10"), "p10", money),
            _Column(t("P50"), "p50", money),
            _Column(t("P90"), "p90", money),
        ]
        if not any("overdue" in r for r in rows):
            columns = [c for c in columns if c.key not in ("overdue", "simulated_mean")]
        notes = []
        if method.get("overdue_rule"):
            notes.append(
                {"text": t("Close dates: {rule}", rule=method["overdue_rule"]), "warn": False}
            )
        outside = [str(r["period"]) for r in rows if r.get("outside_range")]
        if outside:
            notes.append(
                {
                    "text": t(
                        "The weighted point of {periods} falls outside P10-P90. "
                        "The weighted amount keeps every deal on its expected close date "
                        "(overdue ones in the as_of period); the simulation moves close dates "
                        "as history's slips did, so amounts shift between periods (the "
                        "simulated mean shows where they land), and a period with few large "
                        "deals has a lumpy distribution.",
                        periods=", ".join(outside),
                    ),
                    "warn": True,
                }
            )
        return {
            "rows": bool(rows),
            "estimator": method.get("estimator") or self.estimator,
            "chart": _markup(forecast_chart(rows, t=t)) if rows else None,
            "table": _table(columns, rows, caption=t("Forecast by period")),
            "notes": notes,
        }

    def attention(self) -> dict[str, Any]:
        """Stalled deals, slipping deals and the slippage chart."""
        t = self.t
        stalled = _rows(self.doc, "stalled")
        slipping = _rows(self.doc, "slipping")
        summary = self.doc.get("slip_summary") or {}
        stalled_columns = [
            _Column(t("Opportunity"), "opportunity_id"),
            _Column(t("Stage"), "stage"),
            _Column(t("Days in stage"), "days_in_stage", self.days),
            _Column(t("Limit"), "limit_days", self.days),
            _Column(t("Limit from"), "limit_source"),
            _Column(t("Days ÷ won median"), "times_won_median", ratio),
            _Column(t("Amount"), "amount", self.money),
        ]
        slipping_columns = [
            _Column(t("Opportunity"), "opportunity_id"),
            _Column(t("Stage"), "stage"),
            _Column(t("Pushes"), "pushes", count),
            _Column(t("Days pushed"), "days_pushed", self.days),
            _Column(t("First close date"), "first_close_date"),
            _Column(t("Close date"), "close_date"),
            _Column(t("Amount"), "amount", self.money),
        ]
        chart = slippage_chart(_rows(summary, "win_rate_by_pushes"), slipping, t=t)
        return {
            "stalled_heading": self.heading(stalled, self.doc.get("stalled_count"), t),
            "slipping_heading": self.heading(slipping, self.doc.get("slipping_count"), t),
            "stalled": _table(
                stalled_columns,
                stalled,
                caption=t("Stalled deals"),
                cells=self.stage_cell,
                stage_rows=True,
            ),
            "slipping": _table(
                slipping_columns,
                slipping,
                caption=t("Slipping deals"),
                cells=self.stage_cell,
                stage_rows=True,
            ),
            "slip_rate": percent(summary.get("slip_rate"), digits=0),
            "chart": _markup(chart),
        }

    @staticmethod
    def heading(
        rows: Sequence[Row], counted: Mapping[str, Any] | None, t: Catalogue = ENGLISH
    ) -> str:
        """``39, the first 25 shown`` when the list is capped, else the count."""
        total = counted.get("total") if counted else None
        if total is None or total == len(rows):
            return count(len(rows))
        return t("{total}, the first {shown} shown", total=count(total), shown=count(len(rows)))

    def durations(self) -> dict[str, Any]:
        """The stage durations chart, its table, and the cycle time."""
        t = self.t
        rows = _rows(self.doc, "time_in_stage")
        columns = [
            _Column(t("Stage"), "stage"),
            _Column(t("Won median (closed only)"), "won_median_days", self.days),
            _Column(t("Lost median (closed only)"), "lost_median_days", self.days),
            _Column(t("Won median (deal clock)"), "won_deal_clock_median_days", self.days),
            _Column(t("Lost median (deal clock)"), "lost_deal_clock_median_days", self.days),
            _Column(t("Open median"), "open_median_days", self.days),
            _Column(t("Lost ÷ won (medians)"), "lost_to_won_median_ratio", ratio),
            _Column(t("Lost ÷ won (means)"), "lost_to_won_mean_ratio", ratio),
            _Column(t("Won n"), "won_n", count),
            _Column(t("Lost n"), "lost_n", count),
            _Column(t("Open n"), "open_n", count),
            _Column(t("Still open"), "open_share", percent),
            _Column(t("KM median"), "km_median_days", self.days),
        ]
        cycle = self.doc.get("cycle_time")
        figures = None
        if cycle:
            items = []
            for outcome in ("won", "lost"):
                group = cycle.get(outcome) or {}
                name = outcome.capitalize()
                items.append((t(f"{name} deals: median"), self.days(group.get("median_days"))))
                items.append((t(f"{name} deals: mean"), self.days(group.get("mean_days"))))
                items.append((t(f"{name} deals: n"), count(group.get("n"))))
            items.append((t("Sum of stage means"), self.days(cycle.get("sum_of_stage_means_days"))))
            items.append((t("Measured mean cycle"), self.days(cycle.get("measured_mean_days"))))
            figures = {"figures": items, "explanation": cycle_explanation(cycle, t) or None}
        return {
            "rows": bool(rows),
            "chart": _markup(durations_chart(rows, self.labels, t=t)) if rows else None,
            "table": _table(
                columns, rows, caption=t("Time in stage"), cells=self.stage_cell, stage_rows=True
            ),
            "cycle": figures,
        }

    def probabilities(self) -> dict[str, Any]:
        """The probability chart and table, the column in use highlighted."""
        t = self.t
        rows = _rows(self.doc, "probabilities")
        columns = [
            _Column(t("Stage"), "stage"),
            _Column(t("Configured"), "configured", percent),
            _Column(t("Empirical"), "empirical", percent),
            _Column(t("Low"), "low", percent),
            _Column(t("High"), "high", percent),
            _Column(t("Markov"), "markov", percent),
            _Column(t("Smoothed"), "smoothed", percent),
        ]
        known = {"stage", "low", "high", "n", *_ESTIMATOR_COLUMNS}
        extra = list(dict.fromkeys(k for r in rows for k in r if k not in known))
        columns += [_Column(t(k.replace("_", " ").capitalize()), k, percent) for k in extra]
        columns.append(_Column(t("n"), "n", count))
        for column in columns:
            if column.key == self.estimator:
                column.header = t("{column} (used)", column=column.header)
        notes = []
        if self.estimator and self.estimator not in {c.key for c in columns}:
            notes.append(
                {
                    "text": t(
                        "The estimator in use, {estimator}, gives each deal a probability "
                        "that depends on more than its stage (the time it has spent there), so "
                        "it has no single column here.",
                        estimator=self.estimator,
                    ),
                    "warn": False,
                }
            )
        if self.process.get("configured_known") is False:
            notes.append(
                {
                    "text": t(
                        "The process has no configured probabilities (every open stage is 0%, "
                        "as in a process inferred from data): the configured column is no "
                        "baseline, and the backtest leaves it out."
                    ),
                    "warn": True,
                }
            )
        return {
            "rows": bool(rows),
            "chart": _markup(probabilities_chart(rows, self.labels, t=t)) if rows else None,
            "table": _table(
                columns,
                rows,
                caption=t("Win probability by stage"),
                cells=self.stage_cell,
                stage_rows=True,
            ),
            "notes": notes,
        }

    def backtest(self) -> dict[str, Any] | None:
        """The backtest scores, the reliability diagram, and why no winner is named."""
        backtest = self.doc.get("backtest")
        if not backtest:
            return None
        t = self.t
        best = backtest.get("best")
        scores = _rows(backtest, "scores")
        reliability = _rows(backtest, "reliability")
        used = self.estimator

        def score_cell(column: _Column, row: Row) -> Cell:
            name = row.get("estimator")
            if column.key == "estimator" and best is not None and name == best:
                return {"kind": "best", "text": str(name)}
            if column.key == "estimator" and used is not None and name == used:
                return {"kind": "chosen", "text": str(name)}
            return _cell(column, row)

        columns = [
            _Column(t("Estimator"), "estimator"),
            _Column(t("Brier"), "brier", lambda v: _fixed(v, 3)),
            _Column(t("Log loss"), "log_loss", lambda v: _fixed(v, 3)),
            _Column(t("n"), "n", count),
        ]
        notes = []
        if backtest.get("warning"):
            notes.append(
                {"text": t("No winner: {warning}.", warning=backtest["warning"]), "warn": True}
            )
        notes.extend(
            {
                "text": t(
                    "{estimator} is left out: {reason}.",
                    estimator=e.get("estimator"),
                    reason=e.get("reason"),
                ),
                "warn": True,
            }
            for e in _rows(backtest, "excluded")
        )
        scored = backtest.get("scored")
        return {
            "cutoff": _instant(backtest["cutoff"], self.language),
            "best": best,
            "scored": None
            if scored is None
            else t(
                "{scored} deals: {won} won, {lost} lost",
                scored=count(scored),
                won=count(backtest.get("scored_won")),
                lost=count(backtest.get("scored_lost")),
            ),
            "notes": notes,
            "table": _table(columns, scores, caption=t("Backtest scores"), cells=score_cell),
            "chart": _markup(reliability_chart(reliability, t=t)) if reliability else None,
        }

    def segments(self) -> dict[str, Any] | None:
        """The segment section: its chart, one row per segment, each one's deals at risk."""
        section = self.doc.get("segments")
        if not section:
            return None
        t = self.t
        rows = _rows(section, "rows")
        money = self.money
        activities = bool(section.get("activities"))

        def cell(column: _Column, row: Row) -> Cell:
            if column.key == "label":
                return {"kind": "text", "text": str(row.get("label"))}
            if column.key == "small":
                return {"kind": "text", "text": t("few closed deals") if row.get("small") else ""}
            return _cell(column, row)

        columns = [
            _Column(t("Segment"), "label"),
            _Column(t("Open"), "open_deals", count),
            _Column(t("Open pipeline"), "pipeline", money),
            _Column(t("Forecast"), "forecast", money),
            _Column(t("Soft forecast"), "soft_forecast", money),
            _Column(t("Soft share"), "soft_share", percent),
            _Column(t("Stalled"), "stalled_deals", count),
            _Column(t("Stalled amount"), "stalled_amount", money),
            _Column(t("No activity"), "stale_deals", count),
            _Column(t("Slipping"), "slipping_deals", count),
            _Column(t("Pushes"), "pushes", count),
            _Column(t("Past close date"), "overdue_deals", count),
            _Column(t("Win rate"), "win_rate", percent),
            _Column(t("Closed"), "closed", count),
            _Column(t("Median cycle"), "median_cycle_days", self.days),
            _Column(t("Sample"), "small"),
        ]
        if not activities:
            columns = [c for c in columns if c.key != "stale_deals"]
        reasons = {
            "stalled": t("Stalled"),
            "stale": t("No activity"),
            "slipping": t("Slipping"),
            "overdue": t("Past close date"),
        }
        deal_columns = [
            _Column(t("Opportunity"), "opportunity_id"),
            _Column(t("Stage"), "stage"),
            _Column(t("Amount"), "amount", money),
            _Column(t("Weighted"), "weighted", money),
            _Column(t("Close date"), "close_date"),
            _Column(t("Days in stage"), "days_in_stage", self.days),
            _Column(t("Pushes"), "pushes", count),
            _Column(t("Why"), "why"),
        ]
        lists = []
        for row in rows:
            deals = [
                {**d, "why": ", ".join(reasons.get(r, r) for r in d.get("reasons") or ())}
                for d in _rows(row, "deals")
            ]
            if not deals:
                continue
            lists.append(
                {
                    "label": str(row.get("label")),
                    "heading": self.heading(deals, row.get("deals_count"), t),
                    "table": _table(
                        deal_columns,
                        deals,
                        caption=t("Deals at risk"),
                        cells=self.stage_cell,
                        stage_rows=True,
                    ),
                }
            )
        definition = t(
            "Soft forecast: the share of a segment's weighted forecast for the current period "
            "that rests on deals at risk (stalled in their stage, without activity for "
            "{activity_days} days, pushed at least {flag_pushes} times, or past their expected "
            "close date). Firm up or take out those deals first.",
            activity_days=f"{finite(section.get('activity_days')) or 0:g}",
            flag_pushes=section.get("flag_pushes"),
        )
        return {
            "by": ", ".join(str(c) for c in section.get("by") or ()),
            "period": str(section.get("period", "")),
            "estimator": str(section.get("estimator", "")),
            "definition": definition,
            "activities": activities,
            "chart": _markup(segments_chart(rows, t=t)) if rows else None,
            "table": _table(columns, rows, caption=t("By segment"), cells=cell),
            "lists": lists,
        }

    def data_quality(self) -> dict[str, Any]:
        """The data-quality findings, errors first."""
        t = self.t
        rows = sorted(
            _rows(self.doc, "data_quality"),
            key=lambda r: _SEVERITY.get(str(r["severity"]).lower(), 3),
        )

        def cell(column: _Column, row: Row) -> Cell:
            if column.key == "severity":
                severity = str(row["severity"])
                klass = f"sev-{severity.lower()}" if severity.lower() in _SEVERITY else "sev-info"
                shown = t(severity.lower()) if severity.lower() in _SEVERITY else severity
                return {"kind": "badge", "css": klass, "text": shown}
            if column.key == "code":
                return {"kind": "code", "text": str(row["code"])}
            if column.key == "message" and row.get("message") is not None:
                message = str(row["message"])
                return {"kind": "text", "text": t.known(message) or message}
            return _cell(column, row)

        columns = [
            _Column(t("Severity"), "severity"),
            _Column(t("Finding"), "code"),
            _Column(t("Count"), "count", count),
            _Column(t("What it means"), "message"),
        ]
        if any(r.get("source") is not None for r in rows):
            columns.insert(2, _Column(t("Found in"), "source"))
        return {
            "rows": bool(rows),
            "table": _table(columns, rows, caption=t("Data quality"), cells=cell),
        }


def render_html(document: Mapping[str, Any], *, language: str | None = None) -> str:
    """Render a report document into one self-contained HTML page.

    Args:
        document: a report document (see ``docs/report.md``); it is validated first.
        language: the language of the page (one of ``stagegate.report.LANGUAGES``: ``en``,
            ``ko``): its interface text, dates, units, and the stage labels the document's
            ``process.stages[].labels`` carry in that language. Default: the document's
            ``language``, else English.

    Returns:
        The page as a string: no external references, every document string escaped.

    Raises:
        ReportError: the document is malformed; every problem is listed with its path.
        UnknownLanguageError: the report has no interface text in ``language``.
        TemplateEngineMissingError: Jinja2 is not installed (``pip install 'stagegate[report]'``).

    >>> from stagegate.report import sample_document
    >>> page = render_html(sample_document())
    >>> page.startswith("<!DOCTYPE html>"), page.count("<svg data-chart=")
    (True, 6)
    >>> '<h2 id="funnel-h">퍼널</h2>' in render_html(sample_document(), language="ko")
    True
    """
    chosen = language if language is not None else document.get("language")
    t = catalogue(None if chosen is None else str(chosen))
    validate_document(document)
    context = _Page(document, t).context()
    page: str = _environment(t.language).get_template("page.html.j2").render(context)
    return page


def write_html(
    document: Mapping[str, Any], path: str | Path, *, language: str | None = None
) -> Path:
    """Render ``document`` and write it to ``path`` as UTF-8; return the path written.

    Raises:
        ReportError: the document is malformed (nothing is written).
        UnknownLanguageError: the report has no interface text in ``language``.
    """
    page = render_html(document, language=language)
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
