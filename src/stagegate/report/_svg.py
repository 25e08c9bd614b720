"""Charts as inline SVG strings, drawn from validated report sections.

Each chart is one ``<svg data-chart="...">`` with a ``<title>``, a ``<desc>``, labelled axes
and the numbers written next to the marks, so it reads without colour (lost bars are hatched,
estimators have distinct shapes). Every data mark carries ``data-mark="..."`` so tests and
scripts can count them. Every string from the document is escaped. Colours come from CSS
classes (``c-won``, ``c-lost``, ...) that the page's stylesheet defines.

>>> svg = funnel_chart([{"stage": "a", "reached": 10}, {"stage": "b", "reached": 4}], {})
>>> svg.count('data-mark="bar"'), 'data-chart="funnel"' in svg
(2, True)
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from stagegate.report._format import compact, count, finite, percent, ratio
from stagegate.report._i18n import ENGLISH, Catalogue

__all__ = [
    "durations_chart",
    "fold_segments",
    "forecast_chart",
    "funnel_chart",
    "nice_ticks",
    "probabilities_chart",
    "reliability_chart",
    "segments_chart",
    "slippage_chart",
    "truncate",
]

Row = Mapping[str, Any]
_WIDTH = 880
_LIMIT = 1e150  # chart geometry clamps absurd magnitudes; labels still show the real value
_TINY_SPAN = 1e-9  # data ranges narrower than this are drawn on a unit axis


def _e(value: object) -> str:
    """Escape any value for use in SVG text or a quoted attribute."""
    return escape(str(value), quote=True)


def _c(value: float) -> str:
    """Format a coordinate compactly."""
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _value(row: Row, key: str) -> float | None:
    """Return ``row[key]`` as a finite float clamped for geometry, or ``None``."""
    number = finite(row.get(key))
    return None if number is None else max(-_LIMIT, min(_LIMIT, number))


def _columns(text: str) -> int:
    """How many columns ``text`` takes: East Asian wide characters count two.

    >>> _columns("Won"), _columns("수주 거래")
    (3, 9)
    """
    return sum(2 if unicodedata.east_asian_width(c) in {"W", "F"} else 1 for c in text)


def truncate(label: str, width: int = 24) -> str:
    """Shorten ``label`` to about ``width`` columns (East Asian wide characters count two).

    >>> truncate("Solution proposal"), truncate("a" * 30, 10)
    ('Solution proposal', 'aaaaaaaaa…')
    >>> truncate("리드 발굴 단계의 아주 긴 이름", 12)
    '리드 발굴 …'
    """
    used = 0
    for index, char in enumerate(label):
        used += 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1
        if used > width:
            return label[: max(index - 1, 0)] + "…" if index else "…"
    return label


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Return evenly spaced round tick values that cover ``[low, high]`` (and zero).

    >>> nice_ticks(0, 412)
    [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
    >>> nice_ticks(0, 0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(-3, 7, 4)
    [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]
    """
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low < _TINY_SPAN:  # nothing (or nothing visible) to scale: show a unit axis
        high = low + 1.0
    raw = (high - low) / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    start = math.floor(low / step + 1e-9)
    stop = math.ceil(high / step - 1e-9)
    return [float(f"{i * step:.12g}") + 0.0 for i in range(start, stop + 1)]


class _Scale:
    """A linear map from a data domain to pixels."""

    def __init__(self, domain: tuple[float, float], pixels: tuple[float, float]) -> None:
        self.d0, self.d1 = domain
        self.p0, self.p1 = pixels

    def __call__(self, value: float) -> float:
        span = self.d1 - self.d0
        fraction = (value - self.d0) / span if span else 0.0
        return self.p0 + max(-0.05, min(1.05, fraction)) * (self.p1 - self.p0)


def _open(
    chart: str, height: float, title: str, description: str, width: float = _WIDTH
) -> list[str]:
    """Start an SVG chart with its accessible title and description."""
    klass = "chart" if width == _WIDTH else "chart chart-narrow"
    return [
        (
            f'<svg data-chart="{chart}" class="{klass}" viewBox="0 0 {_c(width)} {_c(height)}" '
            f'role="img" aria-labelledby="{chart}-title {chart}-desc" '
            'preserveAspectRatio="xMinYMin meet">'
        ),
        f'<title id="{chart}-title">{_e(title)}</title>',
        f'<desc id="{chart}-desc">{_e(description)}</desc>',
    ]


def _text(
    x: float, y: float, content: str, *, cls: str = "", anchor: str = "start", extra: str = ""
) -> str:
    """Return an SVG text element (``content`` is escaped here)."""
    klass = f' class="{cls}"' if cls else ""
    anchor_attr = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{_c(x)}" y="{_c(y)}"{klass}{anchor_attr}{extra}>{_e(content)}</text>'


def _x_axis(
    scale: _Scale,
    ticks: Sequence[float],
    *,
    top: float,
    bottom: float,
    label: str,
    fmt: Callable[[float], str],
) -> list[str]:
    """Draw vertical grid lines, tick labels under ``bottom`` and an axis title."""
    parts = ['<g class="axis x-axis">']
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line class="grid" x1="{_c(x)}" x2="{_c(x)}" y1="{_c(top)}" y2="{_c(bottom)}"/>'
        )
        parts.append(_text(x, bottom + 16, fmt(tick), cls="tick", anchor="middle"))
    middle = (scale.p0 + scale.p1) / 2
    parts.append(_text(middle, bottom + 36, label, cls="axis-title", anchor="middle"))
    parts.append("</g>")
    return parts


def _y_axis(
    scale: _Scale,
    ticks: Sequence[float],
    *,
    left: float,
    right: float,
    label: str,
    fmt: Callable[[float], str],
) -> list[str]:
    """Draw horizontal grid lines, tick labels left of ``left`` and a rotated axis title."""
    parts = ['<g class="axis y-axis">']
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line class="grid" x1="{_c(left)}" x2="{_c(right)}" y1="{_c(y)}" y2="{_c(y)}"/>'
        )
        parts.append(_text(left - 8, y + 4, fmt(tick), cls="tick", anchor="end"))
    middle = (scale.p0 + scale.p1) / 2
    parts.append(
        f'<text class="axis-title" text-anchor="middle" '
        f'transform="translate(16 {_c(middle)}) rotate(-90)">{_e(label)}</text>'
    )
    parts.append("</g>")
    return parts


def _legend(items: Sequence[tuple[str, str]], *, y: float, x: float = 180) -> list[str]:
    """Draw a legend row: each item is (an SVG swatch drawn at the origin, its label)."""
    parts = ['<g class="legend">']
    for swatch, label in items:
        parts.append(f'<g transform="translate({_c(x)} {_c(y)})">{swatch}')
        parts.append(_text(16, 4, label, cls="legend-label"))
        parts.append("</g>")
        x += 34 + 7.2 * _columns(label)
    parts.append("</g>")
    return parts


def _label(labels: Mapping[str, str], stage: str) -> str:
    """Return the display label of a stage id (the id itself when the process lacks it)."""
    return labels.get(stage, stage)


def _row_label(x: float, y: float, full: str, width: int = 24) -> str:
    """Return a right-aligned row label, truncated, with the full text as a tooltip."""
    short = truncate(full, width)
    tooltip = f"<title>{_e(full)}</title>" if short != full else ""
    return (
        f'<text x="{_c(x)}" y="{_c(y)}" class="row-label" text-anchor="end">'
        f"{tooltip}{_e(short)}</text>"
    )


def _tick_format(ticks: Sequence[float], fmt: Callable[[float], str]) -> Callable[[float], str]:
    """Return ``fmt`` for counts, days or amounts, but keep decimals when the step is below one."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    if step >= 1 or step <= 0 or fmt is percent:
        return fmt
    digits = min(6, max(1, -math.floor(math.log10(step))))
    return lambda value: f"{value:.{digits}f}"


# --- funnel ------------------------------------------------------------------------------


def funnel_chart(rows: Sequence[Row], labels: Mapping[str, str], *, t: Catalogue = ENGLISH) -> str:
    """Draw the funnel: one horizontal bar per stage, the number of deals that reached it.

    Beside each bar: the reach rate (share of all deals), the conversion from the previous
    stage and the number of deals lost in the stage.
    """
    row_h, top = 32.0, 30.0
    left, right = 190.0, 600.0
    height = top + row_h * len(rows) + 50
    values = [_value(r, "reached") or 0.0 for r in rows]
    ticks = nice_ticks(min(values), max(values))
    scale = _Scale((ticks[0], ticks[-1]), (left, right))
    fmt = _tick_format(ticks, count)
    parts = _open(
        "funnel",
        height,
        t("Funnel: opportunities that reached each stage"),
        t(
            "Horizontal bars, one per stage ({stages} stages), with reach rate, conversion "
            "from the previous stage and deals lost in the stage written beside each bar.",
            stages=len(rows),
        ),
    )
    bottom = top + row_h * len(rows)
    parts += _x_axis(
        scale,
        ticks,
        top=top - 6,
        bottom=bottom,
        label=t("Opportunities that reached the stage"),
        fmt=fmt,
    )
    for x, head in ((690, "Reach"), (775, "From prev."), (860, "Lost here")):
        parts.append(_text(x, top - 14, t(head), cls="col-head", anchor="end"))
    for index, row in enumerate(rows):
        y = top + index * row_h
        name = _label(labels, str(row["stage"]))
        value = values[index]
        x0, x1 = scale(min(0.0, value)), scale(max(0.0, value))
        parts.append(f'<g class="row" data-stage="{_e(row["stage"])}">')
        tip = t("{stage}: {reached} reached", stage=name, reached=count(row.get("reached")))
        parts.append(f"<title>{_e(tip)}</title>")
        parts.append(_row_label(left - 10, y + 20, name))
        parts.append(
            f'<rect data-mark="bar" class="bar c-primary" x="{_c(x0)}" y="{_c(y + 5)}" '
            f'width="{_c(max(x1 - x0, 1.5))}" height="22" rx="2"/>'
        )
        parts.append(_text(x1 + 6, y + 20, count(row.get("reached")), cls="value"))
        parts.append(_text(690, y + 20, percent(row.get("reach_rate")), cls="num", anchor="end"))
        parts.append(
            _text(
                775, y + 20, percent(row.get("conversion_from_previous")), cls="num", anchor="end"
            )
        )
        parts.append(_text(860, y + 20, count(row.get("lost_here")), cls="num", anchor="end"))
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


# --- stage durations ---------------------------------------------------------------------


def durations_chart(
    rows: Sequence[Row], labels: Mapping[str, str], *, t: Catalogue = ENGLISH
) -> str:
    """Draw median days in each stage for won deals (solid) next to lost deals (hatched)."""
    group_h, top = 40.0, 64.0
    left, right = 190.0, 740.0
    height = top + group_h * len(rows) + 50
    values = [
        v
        for r in rows
        for k in ("won_median_days", "lost_median_days")
        if (v := _value(r, k)) is not None
    ]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
    scale = _Scale((ticks[0], ticks[-1]), (left, right))
    parts = _open(
        "stage-durations",
        height,
        t("Median days in each stage: won deals versus lost deals"),
        t(
            "For each stage, two horizontal bars: the median days won deals spent there (solid) "
            "and the median days lost deals spent there (hatched), with the lost median divided "
            "by the won median."
        ),
    )
    parts.append(
        '<defs><pattern id="stage-durations-hatch" patternUnits="userSpaceOnUse" width="6" '
        'height="6" patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>'
    )
    parts += _legend(
        [
            ('<rect x="0" y="-6" width="12" height="12" class="c-won"/>', t("Won deals (median)")),
            (
                (
                    '<rect x="0" y="-6" width="12" height="12" '
                    'fill="url(#stage-durations-hatch)" class="hatched"/>'
                ),
                t("Lost deals (median)"),
            ),
        ],
        y=20,
    )
    bottom = top + group_h * len(rows)
    parts += _x_axis(
        scale,
        ticks,
        top=top - 6,
        bottom=bottom,
        label=t("Days in stage (median)"),
        fmt=_tick_format(ticks, count),
    )
    parts.append(_text(860, top - 14, t("Lost ÷ won median"), cls="col-head", anchor="end"))
    for index, row in enumerate(rows):
        y = top + index * group_h
        name = _label(labels, str(row["stage"]))
        parts.append(f'<g class="row" data-stage="{_e(row["stage"])}">')
        parts.append(_row_label(left - 10, y + 22, name))
        drawn = False
        for offset, key, mark, css in (
            (3, "won_median_days", "won", 'class="bar c-won"'),
            (
                18,
                "lost_median_days",
                "lost",
                'class="bar hatched" fill="url(#stage-durations-hatch)"',
            ),
        ):
            value = _value(row, key)
            if value is None:
                continue
            drawn = True
            x0, x1 = scale(min(0.0, value)), scale(max(0.0, value))
            n = count(row.get(f"{mark}_n"))
            tip = t(
                "Won deals: {days} median (n={n})"
                if mark == "won"
                else "Lost deals: {days} median (n={n})",
                days=t.days(row.get(key)),
                n=n,
            )
            parts.append(
                f'<rect data-mark="{mark}" {css} x="{_c(x0)}" y="{_c(y + offset)}" '
                f'width="{_c(max(x1 - x0, 1.5))}" height="13"><title>{_e(tip)}</title></rect>'
            )
            parts.append(
                _text(
                    x1 + 5,
                    y + offset + 11,
                    f"{t('W' if mark == 'won' else 'L')} {t.days(row.get(key))}",
                    cls="value small",
                )
            )
        if not drawn:
            parts.append(_text(left + 4, y + 22, t("no closed deals"), cls="muted"))
        parts.append(
            _text(860, y + 22, ratio(row.get("lost_to_won_median_ratio")), cls="num", anchor="end")
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


# --- probabilities -----------------------------------------------------------------------

_DIAMOND = "M0,-6 L6,0 L0,6 L-6,0 Z"
_TRIANGLE = "M0,-6 L6,5 L-6,5 Z"
_SQUARE = "M-5,-5 L5,-5 L5,5 L-5,5 Z"


def _shape(path: str, x: float, y: float, *, mark: str, cls: str, tip: str) -> str:
    """Return a marker path at (x, y) with a tooltip."""
    return (
        f'<path data-mark="{mark}" class="{cls}" d="{path}" '
        f'transform="translate({_c(x)} {_c(y)})"><title>{_e(tip)}</title></path>'
    )


def probabilities_chart(
    rows: Sequence[Row], labels: Mapping[str, str], *, t: Catalogue = ENGLISH
) -> str:
    """Draw win probability by stage: configured, empirical with its interval, and Markov."""
    row_h, top = 34.0, 64.0
    left, right = 190.0, 790.0
    height = top + row_h * len(rows) + 50
    scale = _Scale((0.0, 1.0), (left, right))
    ticks = [i / 10 for i in range(11)]
    parts = _open(
        "probabilities",
        height,
        t("Win probability by stage: configured, empirical and Markov"),
        t(
            "For each stage: the configured probability (hollow diamond), the empirical win rate "
            "of deals that reached the stage (filled circle) with its interval (whisker), and the "
            "Markov absorption estimate (triangle)."
        ),
    )
    parts += _legend(
        [
            (f'<path d="{_DIAMOND}" class="m-configured"/>', t("Configured")),
            ('<circle r="5" class="m-empirical"/>', t("Empirical (interval)")),
            (f'<path d="{_TRIANGLE}" class="m-markov"/>', t("Markov")),
        ],
        y=20,
    )
    bottom = top + row_h * len(rows)
    parts += _x_axis(
        scale, ticks, top=top - 6, bottom=bottom, label=t("Probability of winning"), fmt=percent
    )
    parts.append(_text(860, top - 14, "n", cls="col-head", anchor="end"))
    for index, row in enumerate(rows):
        y = top + index * row_h + row_h / 2
        name = _label(labels, str(row["stage"]))
        parts.append(f'<g class="row" data-stage="{_e(row["stage"])}">')
        parts.append(_row_label(left - 10, y + 4, name))
        parts.append(f'<line class="row-rule" x1="{left}" x2="{right}" y1="{_c(y)}" y2="{_c(y)}"/>')
        low, high = _value(row, "low"), _value(row, "high")
        if low is not None and high is not None:
            x0, x1 = scale(low), scale(high)
            parts.append(
                f'<g data-mark="interval" class="whisker"><title>{_e(t("Interval"))} '
                f"{percent(low)}\u2013{percent(high)}</title>"
                f'<line x1="{_c(x0)}" x2="{_c(x1)}" y1="{_c(y)}" y2="{_c(y)}"/>'
                f'<line x1="{_c(x0)}" x2="{_c(x0)}" y1="{_c(y - 6)}" y2="{_c(y + 6)}"/>'
                f'<line x1="{_c(x1)}" x2="{_c(x1)}" y1="{_c(y - 6)}" y2="{_c(y + 6)}"/></g>'
            )
        configured = _value(row, "configured")
        if configured is not None:
            tip = f"{t('Configured')} {percent(configured)}"
            parts.append(
                _shape(
                    _DIAMOND, scale(configured), y, mark="configured", cls="m-configured", tip=tip
                )
            )
        markov = _value(row, "markov")
        if markov is not None:
            tip = f"{t('Markov')} {percent(markov)}"
            parts.append(
                _shape(_TRIANGLE, scale(markov), y, mark="markov", cls="m-markov", tip=tip)
            )
        empirical = _value(row, "empirical")
        if empirical is not None:
            parts.append(
                f'<circle data-mark="empirical" class="m-empirical" cx="{_c(scale(empirical))}" '
                f'cy="{_c(y)}" r="5"><title>{_e(t("Empirical"))} {percent(empirical)}'
                "</title></circle>"
            )
        parts.append(_text(860, y + 4, count(row.get("n")), cls="num", anchor="end"))
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


# --- slippage ----------------------------------------------------------------------------


def slippage_chart(
    pushes: Sequence[Row], slipping: Sequence[Row], *, t: Catalogue = ENGLISH
) -> str | None:
    """Draw win rate by number of close-date pushes, or else a histogram of pushes.

    Args:
        pushes: ``slip_summary.win_rate_by_pushes`` rows (preferred).
        slipping: the slipping deals; used for a histogram when ``pushes`` is empty.
        t: the catalogue of the chart's text (its language).

    Returns:
        The SVG, or ``None`` when there is nothing to draw.
    """
    if pushes:
        bars = [
            (
                f"{r['pushes']}",
                _value(r, "win_rate"),
                percent(r.get("win_rate")),
                f"n={count(r['n'])}",
            )
            for r in pushes
        ]
        y_label = t("Win rate of closed deals")
        fmt: Callable[[object], str] = percent
        title = t("Win rate by number of close-date pushes")
        description = t(
            "Vertical bars: the win rate of deals whose close date was pushed 0, 1, 2... times."
        )
    elif slipping:
        histogram: dict[int, int] = {}
        for r in slipping:
            histogram[int(r["pushes"])] = histogram.get(int(r["pushes"]), 0) + 1
        bars = [(str(k), float(v), count(v), "") for k, v in sorted(histogram.items())]
        y_label, fmt = t("Slipping deals"), count
        title = t("Slipping deals by number of close-date pushes")
        description = t(
            "Vertical bars: how many open deals had their close date pushed 1, 2, 3... times."
        )
    else:
        return None
    left, right, top, bottom = 80.0, 860.0, 24.0, 200.0
    values = [v for _, v, _, _ in bars if v is not None]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
    y_scale = _Scale((ticks[0], ticks[-1]), (bottom, top))
    parts = _open("slippage", bottom + 70, title, description)
    parts += _y_axis(
        y_scale, ticks, left=left, right=right, label=y_label, fmt=_tick_format(ticks, fmt)
    )
    slot = (right - left) / len(bars)
    width = min(90.0, slot * 0.6)
    for index, (category, value, value_text, note) in enumerate(bars):
        cx = left + slot * (index + 0.5)
        parts.append('<g class="col">')
        if value is not None:
            y0, y1 = y_scale(max(0.0, value)), y_scale(min(0.0, value))
            parts.append(
                f'<rect data-mark="bar" class="bar c-primary" x="{_c(cx - width / 2)}" '
                f'y="{_c(y0)}" width="{_c(width)}" height="{_c(max(y1 - y0, 1.5))}">'
                f"<title>{_e(t('{pushes} pushes', pushes=category))}: {_e(value_text)} "
                f"{_e(note)}</title></rect>"
            )
            parts.append(_text(cx, y0 - 6, value_text, cls="value", anchor="middle"))
        parts.append(_text(cx, bottom + 18, truncate(category, 12), cls="tick", anchor="middle"))
        if note:
            parts.append(_text(cx, bottom + 34, note, cls="muted small", anchor="middle"))
        parts.append("</g>")
    parts.append(
        _text(
            (left + right) / 2,
            bottom + 58,
            t("Times the close date was pushed"),
            cls="axis-title",
            anchor="middle",
        )
    )
    parts.append("</svg>")
    return "\n".join(parts)


# --- forecast ----------------------------------------------------------------------------


def forecast_chart(rows: Sequence[Row], *, t: Catalogue = ENGLISH) -> str:
    """Draw each period's forecast distribution: P10-P90 range, P50 line, weighted diamond."""
    left, right, top, bottom = 90.0, 860.0, 56.0, 290.0
    keys = ("p10", "p50", "p90", "weighted")
    values = [v for r in rows for k in keys if (v := _value(r, k)) is not None]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
    y_scale = _Scale((ticks[0], ticks[-1]), (bottom, top))
    parts = _open(
        "forecast",
        bottom + 64,
        t("Forecast distribution by period"),
        t(
            "For each period: a bar from P10 to P90 of simulated bookings, a line at P50, and a "
            "diamond at the probability-weighted amount."
        ),
    )
    parts += _legend(
        [
            ('<rect x="0" y="-7" width="12" height="14" class="range"/>', "P10\u2013P90"),
            ('<line x1="0" x2="12" y1="0" y2="0" class="p50"/>', t("P50 (median)")),
            (
                f'<path d="{_DIAMOND}" transform="translate(6 0)" class="m-weighted"/>',
                t("Weighted"),
            ),
        ],
        y=18,
        x=100,
    )
    parts += _y_axis(
        y_scale,
        ticks,
        left=left,
        right=right,
        label=t("Bookings"),
        fmt=_tick_format(ticks, compact),
    )
    slot = (right - left) / max(len(rows), 1)
    width = min(70.0, slot * 0.45)
    for index, row in enumerate(rows):
        cx = left + slot * (index + 0.5)
        p10, p50, p90 = _value(row, "p10"), _value(row, "p50"), _value(row, "p90")
        weighted = _value(row, "weighted")
        parts.append(f'<g class="col" data-period="{_e(row["period"])}">')
        parts.append(
            f"<title>{_e(row['period'])}: P10 {compact(p10)}, P50 {compact(p50)}, "
            f"P90 {compact(p90)}, {_e(t('weighted'))} {compact(weighted)}</title>"
        )
        if p10 is not None and p90 is not None:
            y0, y1 = y_scale(max(p10, p90)), y_scale(min(p10, p90))
            parts.append(
                f'<rect data-mark="range" class="range" x="{_c(cx - width / 2)}" y="{_c(y0)}" '
                f'width="{_c(width)}" height="{_c(max(y1 - y0, 1.5))}"/>'
            )
            parts.append(
                _text(cx + width / 2 + 5, y0 + 4, f"P90 {compact(p90)}", cls="small muted")
            )
            parts.append(
                _text(cx + width / 2 + 5, y1 + 4, f"P10 {compact(p10)}", cls="small muted")
            )
        if p50 is not None:
            y = y_scale(p50)
            parts.append(
                f'<line data-mark="p50" class="p50" x1="{_c(cx - width / 2 - 4)}" '
                f'x2="{_c(cx + width / 2 + 4)}" y1="{_c(y)}" y2="{_c(y)}"/>'
            )
            parts.append(
                _text(cx - width / 2 - 8, y + 4, compact(p50), cls="value small", anchor="end")
            )
        if weighted is not None:
            tip = f"{t('Weighted')} {compact(weighted)}"
            parts.append(
                _shape(_DIAMOND, cx, y_scale(weighted), mark="weighted", cls="m-weighted", tip=tip)
            )
        parts.append(
            _text(cx, bottom + 18, truncate(str(row["period"]), 14), cls="tick", anchor="middle")
        )
        parts.append(
            _text(cx, bottom + 34, f"n={count(row.get('n'))}", cls="muted small", anchor="middle")
        )
        parts.append("</g>")
    parts.append(
        _text(
            (left + right) / 2,
            bottom + 56,
            t("Expected close period"),
            cls="axis-title",
            anchor="middle",
        )
    )
    parts.append("</svg>")
    return "\n".join(parts)


# --- reliability -------------------------------------------------------------------------

_COLOURS = 4
"""Colour classes ``m-s0`` to ``m-s3``; the marker shape alone tells the series apart."""
_POLYGONS = ((3, -90.0, "triangle"), (4, 45.0, "square"), (4, 0.0, "diamond"),
             (5, -90.0, "pentagon"), (6, 0.0, "hexagon"))  # fmt: skip


def _polygon(points: Sequence[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{_c(x)},{_c(y)}" for x, y in points) + " Z"


def marker(index: int) -> tuple[str, str | None]:
    """The marker of the ``index``-th series: its name and path (``None``: a circle).

    Every index gets a different shape, for any number of series: a circle, five polygons,
    then stars with 4, 5, 6, ... points.

    >>> [marker(i)[0] for i in (0, 1, 2, 3, 6, 9)]
    ['circle', 'triangle', 'square', 'diamond', 'star4', 'star7']
    """
    if index == 0:
        return "circle", None
    if index <= len(_POLYGONS):
        sides, turn, name = _POLYGONS[index - 1]
        radius = 6.5 if sides == 4 and turn == 45.0 else 6.0  # noqa: PLR2004 - a square's corner
        return name, _polygon(
            [
                (radius * math.cos(math.radians(turn + 360 * k / sides)),
                 radius * math.sin(math.radians(turn + 360 * k / sides)))
                for k in range(sides)
            ]
        )  # fmt: skip
    points = index - len(_POLYGONS) + 3
    star = [
        ((6.5 if k % 2 == 0 else 2.8) * math.cos(math.radians(-90 + 180 * k / points)),
         (6.5 if k % 2 == 0 else 2.8) * math.sin(math.radians(-90 + 180 * k / points)))
        for k in range(2 * points)
    ]  # fmt: skip
    return f"star{points}", _polygon(star)


def reliability_chart(rows: Sequence[Row], *, t: Catalogue = ENGLISH) -> str:
    """Draw a reliability diagram: observed win rate against predicted, per estimator."""
    left, right, top, bottom = 64.0, 364.0, 14.0, 314.0
    estimators = list(dict.fromkeys(str(r["estimator"]) for r in rows))
    x_scale = _Scale((0.0, 1.0), (left, right))
    y_scale = _Scale((0.0, 1.0), (bottom, top))
    ticks = [i / 5 for i in range(6)]
    parts = _open(
        "reliability",
        bottom + 60,
        t("Reliability of the probability estimators in the backtest"),
        t(
            "Observed win rate against predicted probability, one line per estimator; "
            "a perfectly calibrated estimator lies on the diagonal."
        ),
        width=540,
    )
    parts += _x_axis(
        x_scale, ticks, top=top, bottom=bottom, label=t("Predicted probability"), fmt=percent
    )
    parts += _y_axis(
        y_scale, ticks, left=left, right=right, label=t("Observed win rate"), fmt=percent
    )
    parts.append(f'<line class="diagonal" x1="{left}" y1="{bottom}" x2="{right}" y2="{top}"/>')
    legend_y = top + 10
    for index, estimator in enumerate(estimators):
        shape, path = marker(index)
        css = f"m-s{index % _COLOURS}"
        points = [
            (x_scale(p), y_scale(o), r)
            for r in rows
            if str(r["estimator"]) == estimator
            and (p := _value(r, "predicted")) is not None
            and (o := _value(r, "observed")) is not None
        ]
        parts.append(
            f'<g class="series {css}" data-estimator="{_e(estimator)}" data-marker="{shape}">'
        )
        if len(points) > 1:
            line = " ".join(f"{_c(x)},{_c(y)}" for x, y, _ in points)
            parts.append(f'<polyline class="series-line" points="{line}"/>')
        for x, y, r in points:
            tip = t(
                "{estimator}: predicted {predicted}, observed {observed} (n={n})",
                estimator=estimator,
                predicted=percent(r.get("predicted")),
                observed=percent(r.get("observed")),
                n=count(r.get("n")),
            )
            if path is None:
                parts.append(
                    f'<circle data-mark="point" cx="{_c(x)}" cy="{_c(y)}" r="4.5">'
                    f"<title>{_e(tip)}</title></circle>"
                )
            else:
                parts.append(_shape(path, x, y, mark="point", cls="", tip=tip))
        swatch = '<circle r="4.5"/>' if path is None else f'<path d="{path}"/>'
        parts.append(f'<g transform="translate({right + 24} {_c(legend_y)})">{swatch}')
        parts.append(_text(14, 4, truncate(estimator, 20), cls="legend-label"))
        parts.append("</g></g>")
        legend_y += 24
    parts.append("</svg>")
    return "\n".join(parts)


# --- segments ----------------------------------------------------------------------------

SEGMENT_PARTS = ("healthy", "stalled", "stale", "slipping", "overdue")
"""The parts of a segment's forecast, in the order the bars stack them."""
MAX_SEGMENTS = 12
"""Most segments a chart draws; the rest are folded into one "other" row."""


def fold_segments(rows: Sequence[Row], limit: int = MAX_SEGMENTS) -> list[dict[str, Any]]:
    """The first ``limit`` segment rows, and the rest added up into one ``other`` row.

    >>> rows = [{"label": str(i), "forecast_parts": {"healthy": 1.0}} for i in range(3)]
    >>> [(r["label"], r["forecast_parts"]["healthy"]) for r in fold_segments(rows, 2)]
    [('0', 1.0), ('1', 1.0), ('other (1)', 1.0)]
    """
    kept = [dict(r) for r in rows[:limit]]
    rest = rows[limit:]
    if rest:
        parts = {
            p: sum(finite((r.get("forecast_parts") or {}).get(p)) or 0.0 for r in rest)
            for p in SEGMENT_PARTS
        }
        forecast = sum(parts.values())
        soft = forecast - parts["healthy"]
        kept.append(
            {
                "label": f"other ({len(rest)})",
                "other": len(rest),
                "forecast_parts": parts,
                "soft_share": soft / forecast if forecast > 0 else None,
                "small": False,
            }
        )
    return kept


def segments_chart(rows: Sequence[Row], *, t: Catalogue = ENGLISH) -> str:
    """Draw each segment's forecast for the period as one bar: healthy, then each risk.

    A deal counts in the part of its first reason (stalled, no activity, slipping, overdue);
    beside the bar: the soft share (the part at risk). At most :data:`MAX_SEGMENTS` rows,
    the rest folded into "other"; a segment with few closed deals is marked ``*``.
    """
    drawn = fold_segments(rows)
    row_h, top = 30.0, 56.0
    left, right = 210.0, 760.0
    height = top + row_h * len(drawn) + 56
    totals = [
        sum(_value(r.get("forecast_parts") or {}, p) or 0.0 for p in SEGMENT_PARTS) for r in drawn
    ]
    ticks = nice_ticks(0.0, max(totals, default=0.0))
    scale = _Scale((ticks[0], ticks[-1]), (left, right))
    names = {
        "healthy": t("Healthy"),
        "stalled": t("Stalled"),
        "stale": t("No activity"),
        "slipping": t("Slipping"),
        "overdue": t("Past close date"),
    }
    parts = _open(
        "segments",
        height,
        t("Forecast of the period by segment: healthy and at risk"),
        t(
            "One horizontal bar per segment, riskiest first: its weighted forecast for the "
            "period, split into deals that are healthy, stalled, without activity, slipping or "
            "past their close date (a deal counts in its first reason); the soft share is "
            "written beside each bar."
        ),
    )
    parts += _legend(
        [
            (f'<rect x="0" y="-6" width="12" height="12" class="r-{p}"/>', names[p])
            for p in SEGMENT_PARTS
        ],
        y=20,
        x=left,
    )
    for index, (row, total) in enumerate(zip(drawn, totals, strict=True)):
        y = top + row_h * index
        label = str(row.get("label", ""))
        if label.startswith("other (") and row.get("other"):
            label = t("other ({count})", count=row["other"])
        if row.get("small"):
            label += " *"
        parts.append('<g class="row">')
        parts.append(_row_label(left - 10, y + row_h / 2 + 4, label))
        x = scale(0.0)
        for part in SEGMENT_PARTS:
            value = _value(row.get("forecast_parts") or {}, part) or 0.0
            if value <= 0:
                continue
            width = scale(value) - scale(0.0)
            parts.append(
                f'<rect data-mark="bar" data-part="{part}" class="bar r-{part}" x="{_c(x)}" '
                f'y="{_c(y + 5)}" width="{_c(max(width, 1.0))}" height="{_c(row_h - 10)}">'
                f"<title>{_e(label)}: {_e(names[part])} {_e(compact(value))}</title></rect>"
            )
            x += width
        share = row.get("soft_share")
        note = t("{share} soft", share=percent(share)) if share is not None else "—"
        parts.append(_text(x + 8, y + row_h / 2 + 4, f"{compact(total)} · {note}", cls="value"))
        parts.append("</g>")
    bottom = top + row_h * len(drawn)
    parts += _x_axis(
        scale,
        ticks,
        top=top,
        bottom=bottom,
        label=t("Weighted forecast of the period"),
        fmt=_tick_format(ticks, compact),
    )
    parts.append("</svg>")
    return "\n".join(parts)
