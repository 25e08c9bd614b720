"""Render a pipeline health report document into one self-contained HTML page.

The report document is a plain JSON-able dict whose shape is one JSON Schema
(``stagegate/schema/report.schema.json``, see :func:`document_schema` and ``docs/report.md``);
:func:`build_document` computes it from the analytics, this package checks it at the boundary
and draws it from Jinja2 templates with autoescaping: summary tiles, SVG charts and sortable
tables in a single HTML file with no external references.

>>> from stagegate.report import render_html, sample_document
>>> page = render_html(sample_document())
>>> 'data-chart="funnel"' in page and "://" not in page
True
"""

from stagegate.report._build import build_document
from stagegate.report._document import ReportError, document_schema, validate_document
from stagegate.report._html import TemplateEngineMissingError, render_html, write_html
from stagegate.report._i18n import LANGUAGES, UnknownLanguageError
from stagegate.report._sample import sample_document
from stagegate.report._segments import UnknownSegmentColumnError

__all__ = [
    "LANGUAGES",
    "ReportError",
    "TemplateEngineMissingError",
    "UnknownLanguageError",
    "UnknownSegmentColumnError",
    "build_document",
    "document_schema",
    "render_html",
    "sample_document",
    "validate_document",
    "write_html",
]
