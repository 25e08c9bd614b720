"""HTML for notebooks: processes as diagrams, gate reports as checklists, results as tables.

Every string that can come from data (stage labels, deal ids, reasons, evidence) is escaped
here with :func:`html.escape`; nothing of the input is ever written unescaped. The fragments
carry one small stylesheet scoped to the ``stagegate`` class, so they read the same in
JupyterLab, VS Code and an exported page, and no other style on the page is touched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from html import escape
from typing import Any

import attrs

from stagegate.gates import CriterionResult, GateReport
from stagegate.process import Process, Stage, StageKind
from stagegate.report._format import DASH
from stagegate.report._format import percent as percent_text
from stagegate.report._svg import truncate

__all__ = ["MAX_ROWS", "Table", "html", "process_html", "rows_of", "table"]

MAX_ROWS = 50
"""Rows a table shows at most; the rest are counted in a note under it."""

STYLE = (
    "<style>"
    ".stagegate{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',"
    "'Noto Sans CJK KR',sans-serif;font-size:13px;color:#1c2331;max-width:100%;"
    "overflow-x:auto}"
    ".stagegate table{border-collapse:collapse;margin:4px 0 8px}"
    ".stagegate caption{text-align:left;font-weight:600;padding:2px 0 4px}"
    ".stagegate th,.stagegate td{padding:3px 9px;border-bottom:1px solid #e2e6ed;"
    "text-align:left;vertical-align:top}"
    ".stagegate th{font-size:11.5px;color:#5d6678;font-weight:600}"
    ".stagegate td.num,.stagegate th.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".stagegate .note{color:#5d6678;font-size:12px;margin:0 0 8px}"
    ".stagegate .met{color:#1f7a4d}.stagegate .unmet{color:#b3261e}"
    ".stagegate ul.checklist{list-style:none;padding-left:1.2em;margin:2px 0}"
    ".stagegate dl{display:flex;flex-wrap:wrap;gap:4px 18px;margin:4px 0}"
    ".stagegate dt{color:#5d6678}.stagegate dd{margin:0 0 0 4px;font-weight:600}"
    ".stagegate dl div{display:flex}"
    ".stagegate svg{display:block;max-width:100%;height:auto}"
    "</style>"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _wrap(body: str, kind: str) -> str:
    return f'<div class="stagegate stagegate-{kind}">{STYLE}{body}</div>'


# --- cells ---------------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """How one value reads in a table cell (an em dash for no value).

    >>> [cell_text(v) for v in (None, 3, 1234567, 0.63214, 45.5, 1234.5, float("nan"), True)]
    ['—', '3', '1,234,567', '0.632', '45.5', '1,234', '—', 'yes']
    >>> cell_text(datetime(2017, 3, 1, tzinfo=timezone.utc)), cell_text(("a", "b"))
    ('2017-03-01 00:00 UTC', 'a, b')
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if not math.isfinite(number):
            return DASH
        return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.3g}"  # noqa: PLR2004
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%d %H:%M")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (tuple, list, frozenset, set)):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell_text(v)}" for k, v in value.items())
    return str(value)


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


# --- rows ----------------------------------------------------------------------------------


def _is_record(value: object) -> bool:
    return attrs.has(type(value)) or hasattr(value, "_fields") or isinstance(value, Mapping)


def _record_dict(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if attrs.has(type(value)):
        return {f.name: getattr(value, f.name) for f in _shown(value)}
    return dict(value._asdict())  # type: ignore[attr-defined]


def _shown(record: object) -> list[Any]:
    """The fields of an attrs record, less those only ``by=`` fills when it is not per segment."""
    unsegmented = getattr(record, "segment", None) == ()
    return [
        f
        for f in attrs.fields(type(record))  # type: ignore[arg-type]
        if not (unsegmented and f.metadata.get("by"))
    ]


def rows_of(value: Any) -> list[dict[str, Any]] | None:
    """The rows of a table-like value as dicts, or ``None`` when it is not table-like.

    Table-like: a sequence of records (attrs instances, named tuples or mappings), a Polars
    or pandas DataFrame, or anything with ``to_dicts()``.

    >>> rows_of([{"stage": "a", "n": 1}])
    [{'stage': 'a', 'n': 1}]
    >>> rows_of("text") is None, rows_of([1, 2]) is None
    (True, True)
    """
    if hasattr(value, "to_dicts"):  # Polars
        return [dict(row) for row in value.to_dicts()]
    if hasattr(value, "to_dict") and hasattr(value, "columns") and hasattr(value, "iloc"):
        return [{str(k): v for k, v in row.items()} for row in value.to_dict(orient="records")]
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return None
    if not all(_is_record(item) for item in value):
        return None
    return [_record_dict(item) for item in value]


class Table:
    """Rows shown as an HTML table in a notebook (``_repr_html_``) and as text elsewhere.

    >>> t = table([{"agent": "<b>Ana</b>", "won": 3, "win rate": 0.6}], percent=["win rate"])
    >>> page = t._repr_html_()
    >>> "&lt;b&gt;Ana&lt;/b&gt;" in page, '<td class="num">60.0%</td>' in page, len(t)
    (True, True, 1)
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        columns: Sequence[str] | None = None,
        caption: str | None = None,
        max_rows: int = MAX_ROWS,
        percent: Sequence[str] = (),
    ) -> None:
        self.rows = [dict(r) for r in rows]
        self.percent = frozenset(percent)
        if columns is None:
            columns = list(dict.fromkeys(k for r in self.rows for k in r))
        self.columns = list(columns)
        self.caption = caption
        self.max_rows = max_rows

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"<Table {len(self.rows)} rows x {len(self.columns)} columns>"

    def _repr_html_(self) -> str:
        return _wrap(self.html(), "table")

    def html(self) -> str:
        """The ``<table>`` element alone (escaped), without the stylesheet."""
        numeric = {
            c: any(_numeric(r.get(c)) for r in self.rows)
            and not any(r.get(c) is not None and not _numeric(r.get(c)) for r in self.rows)
            for c in self.columns
        }
        parts = ["<table>"]
        if self.caption:
            parts.append(f"<caption>{_e(self.caption)}</caption>")
        parts.append("<thead><tr>")
        parts += [
            f'<th{" class=num" if numeric[c] else ""} scope="col">{_e(c)}</th>'
            for c in self.columns
        ]
        parts.append("</tr></thead><tbody>")
        for row in self.rows[: self.max_rows]:
            parts.append("<tr>")
            for column in self.columns:
                value = row.get(column)
                klass = ' class="num"' if numeric[column] else ""
                text = (
                    percent_text(value, digits=1)
                    if column in self.percent and value is not None
                    else cell_text(value)
                )
                parts.append(f"<td{klass}>{_e(text)}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
        hidden = len(self.rows) - self.max_rows
        if hidden > 0:
            parts.append(
                f'<p class="note">{self.max_rows:,} of {len(self.rows):,} rows shown; '
                f"{hidden:,} more.</p>"
            )
        return "".join(parts)


def table(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    caption: str | None = None,
    max_rows: int = MAX_ROWS,
    percent: Sequence[str] = (),
) -> Table:
    """Wrap records, a list of dicts or a DataFrame as a :class:`Table` that notebooks draw.

    Args:
        data: records (attrs instances such as analytics results, named tuples, mappings),
            or a Polars or pandas DataFrame.
        columns: the columns to show, in order (default: every column, as first seen).
        caption: a caption above the table.
        max_rows: show at most this many rows; a note counts the rest.
        percent: columns of fractions to show as percentages (``0.612`` reads ``61.2%``).

    Raises:
        TypeError: ``data`` is not table-like.
    """
    rows = rows_of(data)
    if rows is None:
        msg = f"cannot show {type(data).__name__} as a table; pass records, mappings or a DataFrame"
        raise TypeError(msg)
    return Table(rows, columns=columns, caption=caption, max_rows=max_rows, percent=percent)


# --- processes -----------------------------------------------------------------------------

_BOX_W, _BOX_H, _GAP, _TOP = 132.0, 50.0, 38.0, 34.0


def _label(stage: Stage, language: str) -> str:
    return stage.labels.get(language) or stage.label


def _box(x: float, y: float, stage: Stage, language: str) -> list[str]:
    name = _label(stage, language)
    short = truncate(name, 18)
    klass = {StageKind.WON: "won", StageKind.LOST: "lost"}.get(stage.kind, "open")
    fill = {"won": "#dbe9f5", "lost": "#fbe3d3", "open": "#ffffff"}[klass]
    stroke = {"won": "#0072b2", "lost": "#d55e00", "open": "#3a6db5"}[klass]
    dash = ' stroke-dasharray="4 3"' if klass == "lost" else ""
    return [
        f'<g data-stage="{_e(stage.id)}" class="stage k-{klass}">',
        (
            f"<title>{_e(name)} ({_e(stage.id)}): {_e(klass)}, probability "
            f"{_e(percent_text(stage.probability))}</title>"
        ),
        (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W:.0f}" height="{_BOX_H:.0f}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dash}/>'
        ),
        (
            f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 21:.1f}" text-anchor="middle" '
            f'font-size="13" font-weight="600" fill="#1c2331">{_e(short)}</text>'
        ),
        (
            f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 39:.1f}" text-anchor="middle" '
            f'font-size="11.5" fill="#5d6678">{_e(percent_text(stage.probability))}</text>'
        ),
        "</g>",
    ]


def _arrow(x0: float, x1: float, y: float, gate: int | None) -> list[str]:
    parts = [
        (
            f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1 - 6:.1f}" y2="{y:.1f}" stroke="#8a93a5" '
            'stroke-width="1.6"/>'
        ),
        (
            f'<path d="M{x1 - 7:.1f},{y - 5:.1f} L{x1:.1f},{y:.1f} L{x1 - 7:.1f},{y + 5:.1f} Z" '
            'fill="#8a93a5"/>'
        ),
    ]
    if gate is not None:
        middle = (x0 + x1) / 2
        parts.append(
            f'<g data-mark="gate"><rect x="{middle - 9:.1f}" y="{y - 25:.1f}" width="18" '
            f'height="18" rx="3" fill="#1c2331"/><text x="{middle:.1f}" y="{y - 12:.1f}" '
            f'text-anchor="middle" font-size="11" font-weight="700" fill="#fff">{gate}</text></g>'
        )
    return parts


def _diagram(process: Process, language: str) -> str:
    opens = [s for s in process.stages if s.kind is StageKind.OPEN]
    closed = [s for s in process.stages if s.kind is not StageKind.OPEN]
    gates = {s.id: i + 1 for i, s in enumerate(s for s in process.stages if s.gate is not None)}
    columns = len(opens) + (1 if closed else 0)
    width = 16 + columns * (_BOX_W + _GAP)
    rows = max(1, len(closed))
    height = _TOP + rows * (_BOX_H + 22) + 10
    middle = _TOP + _BOX_H / 2
    parts = [
        (
            f'<svg data-chart="process" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" role="img" aria-label="{_e(process.name)}: stages in order">'
        )
    ]
    x = 8.0
    for index, stage in enumerate(opens):
        if index:
            parts += _arrow(x - _GAP, x, middle, gates.get(stage.id))
        parts += _box(x, _TOP, stage, language)
        x += _BOX_W + _GAP
    for row, stage in enumerate(closed):
        y = _TOP + row * (_BOX_H + 22)
        if opens:
            start = x - _GAP
            if row == 0:
                parts += _arrow(start, x, middle, gates.get(stage.id))
            else:
                bend = y + _BOX_H / 2
                parts.append(
                    f'<path d="M{start + 10:.1f},{middle:.1f} L{start + 10:.1f},{bend:.1f} '
                    f'L{x - 6:.1f},{bend:.1f}" fill="none" stroke="#8a93a5" stroke-width="1.2" '
                    'stroke-dasharray="3 3"/>'
                )
                parts += _arrow(x - 8, x, bend, gates.get(stage.id))
        parts += _box(x, y, stage, language)
    parts.append("</svg>")
    return "".join(parts)


def process_html(process: Process, *, language: str = "en") -> str:
    """Draw a process: its stages in order (gates numbered on the arrows) and a stage table.

    Args:
        process: the process definition.
        language: the language of the stage labels (falling back to English, then the id).

    >>> from stagegate.templates import b2b
    >>> page = process_html(b2b(), language="ko")
    >>> "리드 발굴" in page, page.count('data-mark="gate"') == 6
    (True, True)
    """
    gates = [s for s in process.stages if s.gate is not None]
    number = {s.id: i + 1 for i, s in enumerate(gates)}
    rows = [
        {
            "stage": _label(s, language),
            "id": s.id,
            "kind": s.kind.value,
            "probability": percent_text(s.probability),
            "stall limit (days)": s.max_days,
            "gate": "" if s.gate is None else f"{number[s.id]}. {s.gate.describe()}",
            "deliverables": tuple(d.labels.get(language) or d.id for d in s.deliverables),
        }
        for s in process.stages
    ]
    head = (
        f"<p><b>{_e(process.name)}</b> version {_e(process.version)}: "
        f"{len(process.stages)} stages, {len(gates)} gates</p>"
    )
    if process.description:
        head += f'<p class="note">{_e(process.description)}</p>'
    body = head + _diagram(process, language) + Table(rows, max_rows=len(rows)).html()
    return _wrap(body, "process")


# --- gate reports --------------------------------------------------------------------------


def _result_items(result: CriterionResult) -> str:
    mark, klass = ("☑", "met") if result.holds else ("☐", "unmet")
    text = result.reason
    if not text.startswith(result.criterion):
        text = f"{result.criterion}: {text}"
    seqs = f" (events {', '.join(map(str, result.evidence))})" if result.evidence else ""
    children = ""
    if result.children:
        children = '<ul class="checklist">' + "".join(
            _result_items(c) for c in result.children
        ) + "</ul>"  # fmt: skip
    return (
        f'<li class="{klass}" data-holds="{str(result.holds).lower()}">'
        f'<span aria-hidden="true">{mark}</span> {_e(text)}{_e(seqs)}{children}</li>'
    )


def gate_report_html(report: GateReport) -> str:
    """A gate report as a checklist: one box per criterion, ticked where it holds.

    >>> r = GateReport("won", (CriterionResult("deliverable 'po'", False, "<not> recorded"),))
    >>> page = gate_report_html(r)
    >>> "☐" in page, "&lt;not&gt;" in page, "NOT MET" in page
    (True, True, True)
    """
    status = (
        '<b class="met">met</b>' if report.passed else '<b class="unmet">NOT MET</b>'
    )  # fmt: skip
    items = "".join(_result_items(r) for r in report.results)
    if not report.results:
        items = "<li>no criteria: the stage has no gate</li>"
    body = f'<p>Gate of <b>{_e(report.target)}</b>: {status}</p><ul class="checklist">{items}</ul>'
    return _wrap(body, "gate-report")


# --- results -------------------------------------------------------------------------------


def _result_html(value: Any) -> str:
    """An analytics result: its scalar fields as a list, each table field as a table."""
    fields = [f.name for f in attrs.fields(type(value))]
    scalars: list[tuple[str, Any]] = []
    tables: list[str] = []
    for name in fields:
        item = getattr(value, name)
        rows = None if _is_record(item) and not hasattr(item, "to_dicts") else rows_of(item)
        if rows is not None:
            tables.append(Table(rows, caption=name).html() if rows else "")
            if not rows:
                scalars.append((name, "none"))
        elif _is_record(item):
            scalars.append((name, ", ".join(f"{k} {cell_text(v)}" for k, v in _pairs(item))))
        else:
            scalars.append((name, item))
    summary = "".join(
        f"<div><dt>{_e(name)}</dt><dd>{_e(cell_text(item))}</dd></div>" for name, item in scalars
    )
    head = f"<p><b>{_e(type(value).__name__)}</b></p>"
    return _wrap(head + (f"<dl>{summary}</dl>" if summary else "") + "".join(tables), "result")


def _pairs(record: object) -> Iterable[tuple[str, Any]]:
    return _record_dict(record).items()


def html(value: Any, *, language: str = "en") -> str:
    """HTML for a notebook: the fragment ``_repr_html_`` returns for ``value``.

    Args:
        value: a :class:`~stagegate.process.Process` (a diagram and a stage table), a
            :class:`~stagegate.gates.GateReport` (a checklist), an analytics result with
            several parts (its figures and one table per part), or records or a DataFrame
            (a table).
        language: the language of stage labels, for a process.

    Raises:
        TypeError: nothing here knows how to show ``value``.

    >>> from stagegate.analytics import FunnelStage
    >>> page = html([FunnelStage("<script>", 3, 1.0, 1.0, 3, 1.0, 0, 0, 0)])
    >>> "<script>" in page, "&lt;script&gt;" in page
    (False, True)
    """
    if isinstance(value, Process):
        return process_html(value, language=language)
    if isinstance(value, GateReport):
        return gate_report_html(value)
    if attrs.has(type(value)) and any(
        rows_of(getattr(value, f.name)) is not None
        for f in _shown(value)
        if not _is_record(getattr(value, f.name))
    ):
        return _result_html(value)
    if _is_record(value):
        value = [value]
    return _wrap(table(value).html(), "table")
