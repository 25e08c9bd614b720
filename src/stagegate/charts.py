"""Charts of the key results for notebooks and files: the report's SVG charts, standalone.

Each function takes what the matching analytics function returns (records on the pure-Python
path, or a Polars or pandas frame of the same columns) and returns a :class:`Chart`, which
Jupyter draws by itself (``_repr_html_`` and ``_repr_svg_``) and :meth:`Chart.save` writes as a
self-contained ``.svg`` file. The charts are the ones of the HTML report (``stagegate report
--html``): the same marks, the numbers written beside them, readable without colour; no
plotting library is needed. :func:`time_in_stage` and :func:`probabilities` also draw ``by=``
results: one small chart per segment (the largest first, at most :data:`MAX_MULTIPLES`; the
rest are named in a note, as a median or a probability cannot be added up), ``small`` segments
marked ``*``. :func:`segments` draws the report's segment section.

>>> from stagegate.analytics import FunnelStage
>>> rows = [FunnelStage("lead", 10, 1.0, 0.4, 10, 0.4, 6, 0, 6),
...         FunnelStage("won", 4, 0.4, None, 4, None, 0, 0, 0)]
>>> chart = funnel(rows)
>>> chart
<Chart funnel>
>>> chart.svg.count('data-mark="bar"'), chart.svg.startswith("<svg xmlns=")
(2, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import attrs

from stagegate.display._html import rows_of
from stagegate.errors import StagegateError
from stagegate.process import Process
from stagegate.report._assets import CHART_CSS
from stagegate.report._i18n import catalogue
from stagegate.report._svg import (
    MAX_SEGMENTS,
    durations_chart,
    forecast_chart,
    funnel_chart,
    probabilities_chart,
    segments_chart,
    slippage_chart,
)

__all__ = [
    "MAX_MULTIPLES",
    "MAX_SEGMENTS",
    "Chart",
    "ChartInputError",
    "forecast",
    "funnel",
    "probabilities",
    "segments",
    "slippage",
    "time_in_stage",
]

MAX_MULTIPLES = 6
"""Most segments a ``by=`` chart draws, one small chart each (the ones with most deals)."""

Row = dict[str, Any]


class ChartInputError(StagegateError, TypeError):
    """What was passed to a chart is not the analytics result it draws."""

    def __init__(self, chart: str, value: object, expected: str) -> None:
        self.chart, self.value = chart, value
        super().__init__(f"charts.{chart}() cannot draw {type(value).__name__}; pass {expected}")


@attrs.frozen
class Chart:
    """One chart as a standalone SVG document (styles inside, no external references).

    Attributes:
        name: what it shows (``funnel``, ``stage-durations``, ``probabilities``, ...).
        svg: the SVG markup; every value from the data in it is escaped.
    """

    name: str
    svg: str = attrs.field(repr=False)

    def __repr__(self) -> str:
        return f"<Chart {self.name}>"

    def __str__(self) -> str:
        return self.svg

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        return f'<div class="stagegate stagegate-chart-box">{self.svg}</div>'

    def save(self, path: str | Path) -> Path:
        """Write the chart as an ``.svg`` file (UTF-8); return the path written."""
        target = Path(path)
        target.write_text(self.svg, encoding="utf-8")
        return target


def _standalone(name: str, svg: str | None) -> Chart:
    if svg is None:
        svg = (
            '<svg data-chart="empty" class="chart" viewBox="0 0 880 60" role="img">'
            '<text x="12" y="34" class="muted">No data to chart.</text></svg>'
        )
    width = svg.split('viewBox="0 0 ', 1)[1].split(" ", 1)[0]
    opened = svg.replace(
        "<svg ",
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" ',
        1,
    ).replace('class="chart', 'class="stagegate-chart chart', 1)
    head, rest = opened.split(">", 1)
    return Chart(name, f"{head}><style>{CHART_CSS}</style>{rest}")


def _rows(chart: str, value: Any, expected: str) -> list[Row]:
    rows = rows_of(value)
    if rows is None:
        raise ChartInputError(chart, value, expected)
    return rows


def _labels(process: Process | Mapping[str, str] | None, language: str) -> dict[str, str]:
    if process is None:
        return {}
    if isinstance(process, Process):
        return {s.id: s.labels.get(language) or s.label for s in process.stages}
    return {str(k): str(v) for k, v in process.items()}


def _ordered(rows: list[Row], process: Process | Mapping[str, str] | None) -> list[Row]:
    if not isinstance(process, Process):
        return rows
    order = {s.id: i for i, s in enumerate(process.stages)}
    return sorted(rows, key=lambda r: order.get(str(r.get("stage")), len(order)))


def funnel(
    result: Any,
    process: Process | Mapping[str, str] | None = None,
    *,
    language: str = "en",
) -> Chart:
    """The funnel: deals that reached each stage, reach rate, conversion, deals lost there.

    Args:
        result: what :func:`stagegate.analytics.funnel` returns, or its ``stages``.
        process: the process (stage order and labels), or a mapping of stage id to label.
        language: the language of labels and of the chart's text (``en`` or ``ko``).

    Raises:
        ChartInputError: ``result`` is not a funnel.
    """
    stages = getattr(result, "stages", result)
    rows = _ordered(_rows("funnel", stages, "the result of analytics.funnel()"), process)
    drawn = [
        {
            "stage": r["stage"],
            "reached": r.get("reached"),
            "reach_rate": r.get("reached_rate"),
            "conversion_from_previous": rows[i - 1].get("conversion_in_order") if i else None,
            "lost_here": r.get("lost_here"),
        }
        for i, r in enumerate(rows)
    ]
    t = catalogue(language)
    svg = funnel_chart(drawn, _labels(process, language), t=t) if drawn else None
    return _standalone("funnel", svg)


def time_in_stage(
    result: Any,
    process: Process | Mapping[str, str] | None = None,
    *,
    language: str = "en",
) -> Chart:
    """Median days in each stage of won deals beside lost deals.

    Args:
        result: what :func:`stagegate.analytics.time_in_stage` returns (one row per stage
            and outcome).
        process: the process (stage order and labels), or a mapping of stage id to label.
        language: the language of labels and of the chart's text.

    Raises:
        ChartInputError: ``result`` is not a time-in-stage table.
    """
    rows = _rows("time_in_stage", result, "the result of analytics.time_in_stage()")
    groups = _segments_of(rows, _TIME_FIELDS)
    if groups is not None:
        return _multiples(
            "stage-durations", groups, lambda part: time_in_stage(part, process, language=language)
        )
    by_stage: dict[str, Row] = {}
    for r in rows:
        if "outcome" not in r or "stage" not in r:
            raise ChartInputError(
                "time_in_stage", result, "the result of analytics.time_in_stage()"
            )
        entry = by_stage.setdefault(str(r["stage"]), {"stage": r["stage"]})
        if r["outcome"] in ("won", "lost"):
            entry[f"{r['outcome']}_median_days"] = r.get("median_days")
            entry[f"{r['outcome']}_n"] = r.get("visits")
    for entry in by_stage.values():
        won, lost = entry.get("won_median_days"), entry.get("lost_median_days")
        entry["lost_to_won_median_ratio"] = lost / won if won and lost is not None else None
    drawn = _ordered(
        [e for e in by_stage.values() if "won_n" in e or "lost_n" in e], process
    )  # fmt: skip
    t = catalogue(language)
    svg = durations_chart(drawn, _labels(process, language), t=t) if drawn else None
    return _standalone("stage-durations", svg)


def probabilities(
    result: Any,
    process: Process | Mapping[str, str] | None = None,
    *,
    language: str = "en",
) -> Chart:
    """Win probability by stage: configured, empirical with its interval, and Markov.

    Args:
        result: what :func:`stagegate.analytics.stage_probabilities` returns.
        process: the process (stage order and labels), or a mapping of stage id to label.
        language: the language of labels and of the chart's text.

    Raises:
        ChartInputError: ``result`` is not a table of stage probabilities.
    """
    rows = _rows("probabilities", result, "the result of analytics.stage_probabilities()")
    groups = _segments_of(rows, _PROBABILITY_FIELDS)
    if groups is not None:
        return _multiples(
            "probabilities", groups, lambda part: probabilities(part, process, language=language)
        )
    drawn = [
        {
            "stage": r["stage"],
            "configured": r.get("configured"),
            "empirical": r.get("empirical"),
            "low": r.get("empirical_low"),
            "high": r.get("empirical_high"),
            "markov": r.get("markov"),
            "n": r.get("closed"),
        }
        for r in _ordered(rows, process)
    ]
    t = catalogue(language)
    svg = probabilities_chart(drawn, _labels(process, language), t=t) if drawn else None
    return _standalone("probabilities", svg)


def forecast(result: Any, *, language: str = "en") -> Chart:
    """The forecast by close period: P10 to P90 of simulated bookings, P50, weighted amount.

    Args:
        result: what :func:`stagegate.analytics.forecast` returns, or its ``periods``.
        language: the language of the chart's text.

    Raises:
        ChartInputError: ``result`` is not a forecast.
    """
    periods = getattr(result, "periods", result)
    rows = _rows("forecast", periods, "the result of analytics.forecast()")
    drawn = [
        {
            "period": r["period"],
            "weighted": r.get("weighted"),
            "p10": r.get("p10"),
            "p50": r.get("p50"),
            "p90": r.get("p90"),
            "n": r.get("deals"),
        }
        for r in sorted(rows, key=lambda r: str(r["period"]))
    ]
    t = catalogue(language)
    return _standalone("forecast", forecast_chart(drawn, t=t) if drawn else None)


def slippage(result: Any, *, language: str = "en") -> Chart:
    """Win rate by number of close-date pushes (or, with no closed deal, pushes counted).

    Args:
        result: what :func:`stagegate.analytics.slippage` returns.
        language: the language of the chart's text.

    Raises:
        ChartInputError: ``result`` is not a slippage result.
    """
    if not hasattr(result, "by_pushes") or not hasattr(result, "deals"):
        raise ChartInputError("slippage", result, "the result of analytics.slippage()")
    pushes = [
        {"pushes": r["pushes"], "n": r.get("closed"), "win_rate": r.get("win_rate")}
        for r in sorted(_rows("slippage", result.by_pushes, "by_pushes"), key=lambda r: r["pushes"])
    ]
    deals = [r for r in _rows("slippage", result.deals, "deals") if r.get("flagged")]
    t = catalogue(language)
    return _standalone("slippage", slippage_chart(pushes, deals, t=t))


def segments(document: Any, *, language: str = "en") -> Chart:
    """The segment section of a report: each segment's forecast, healthy and at risk.

    Args:
        document: a report document built with ``by=`` (``build_document(..., by="owner")``,
            ``stagegate report --by owner --json``), or its ``segments`` section.
        language: the language of the chart's text.

    Raises:
        ChartInputError: ``document`` has no segment section.
    """
    section = document.get("segments", document) if isinstance(document, Mapping) else None
    if not isinstance(section, Mapping) or "rows" not in section:
        raise ChartInputError(
            "segments", document, "a report document built with by= (or its segments section)"
        )
    rows = list(section["rows"])
    t = catalogue(language)
    return _standalone("segments", segments_chart(rows, t=t) if rows else None)


def _fields(cls: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(cls))


def _known() -> tuple[frozenset[str], frozenset[str]]:
    from stagegate.analytics import StageProbability, StageTime  # noqa: PLC0415

    return _fields(StageProbability), _fields(StageTime)


_PROBABILITY_FIELDS, _TIME_FIELDS = _known()


def _segments_of(rows: list[Row], fields: frozenset[str]) -> list[tuple[str, list[Row]]] | None:
    """Rows of a ``by=`` result grouped by segment, most deals first (``None``: no ``by=``).

    Records carry ``segment``; a frame carries the segment columns (every column the record
    type does not have) beside ``deals`` and ``small``.
    """
    if not rows:
        return None
    first = rows[0]
    if not first.get("segment") if "segment" in first else "small" not in first:
        return None  # computed without by= (records carry an empty segment)
    extra = [k for k in rows[0] if k not in fields and k not in ("segment", "deals", "small")]
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        key = tuple(r["segment"]) if r.get("segment") else tuple(r.get(k) for k in extra)
        groups.setdefault(key, []).append(r)

    def deals(items: list[Row]) -> int:
        return max(int(r.get("deals") or 0) for r in items)

    ordered = sorted(groups.items(), key=lambda kv: (-deals(kv[1]), [str(v) for v in kv[0]]))
    named = []
    for key, items in ordered:
        label = " / ".join("(none)" if v is None else str(v) for v in key)
        small = " *" if any(r.get("small") for r in items) else ""
        named.append((f"{label} · {deals(items)} deals{small}", items))
    return named


def _multiples(name: str, groups: list[tuple[str, list[Row]]], draw: Any) -> Chart:
    """One small chart per segment, stacked, each under its segment's name."""
    shown, rest = groups[:MAX_MULTIPLES], groups[MAX_MULTIPLES:]
    y, width = 0.0, 880.0
    body = []
    for index, (label, items) in enumerate(shown):
        plain = [{k: v for k, v in r.items() if k not in ("segment", "small")} for r in items]
        inner = draw(plain).svg
        inner = inner.split("><style>", 1)[0] + ">" + inner.split("</style>", 1)[1]
        height = float(inner.split('viewBox="0 0 ', 1)[1].split('"', 1)[0].split()[1])
        inner = (
            inner.replace(' xmlns="http://www.w3.org/2000/svg"', "", 1)
            .replace(f'id="{name}-', f'id="{name}-{index}-')
            .replace(f"url(#{name}-", f"url(#{name}-{index}-")
            .replace(f'"{name}-title {name}-desc"', f'"{name}-{index}-title {name}-{index}-desc"')
            .replace("<svg ", f'<svg x="0" y="{y + 24:g}" height="{height:g}" ', 1)
        )
        body.append(
            f'<text x="8" y="{y + 18:g}" class="axis-title" data-mark="segment">'
            f"{escape(label)}</text>"
        )
        body.append(inner)
        y += height + 32
    if rest:
        deals = sum(int(label.rsplit(" · ", 1)[1].split()[0]) for label, _ in rest)
        body.append(
            f'<text x="8" y="{y + 18:g}" class="muted">{len(rest)} more segments '
            f"({deals} deals) not drawn: pass a subset of the result</text>"
        )
        y += 30
    svg = (
        f'<svg data-chart="{name}-by-segment" class="chart" viewBox="0 0 {width:g} {y:g}" '
        f'role="img">{"".join(body)}</svg>'
    )
    return _standalone(f"{name}-by-segment", svg)
