"""The report document: its shape, one JSON Schema, checked once at the boundary.

A report document is a plain JSON-able dict. Its shape is ``stagegate/schema/report.schema.json``
(JSON Schema draft 2020-12, shipped in the package and returned by :func:`document_schema`):
the same file checks what :func:`~stagegate.report.build_document` returns, what
:func:`~stagegate.report.render_html` accepts, and what consumers of ``stagegate report
--json`` can validate against. :func:`validate_document` collects every problem with its path
and raises one :class:`ReportError` listing them all. Unknown keys are ignored, so newer
analytics can add fields before the renderer shows them.

>>> validate_document({"title": "Q3"})
Traceback (most recent call last):
...
stagegate.report.ReportError: invalid report document: 4 problems
  - as_of: required key is missing
  - generated_at: required key is missing
  - process: required key is missing
  - summary: required key is missing
see docs/report.md and stagegate/schema/report.schema.json for the document shape
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from dateutil import parser as _dateutil_parser

from stagegate.errors import Problem, StagegateError

__all__ = ["ReportError", "document_schema", "validate_document"]


class ReportError(StagegateError, ValueError):
    """A report document is malformed; ``problems`` lists every problem with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid report document: {count} problem{'s' if count != 1 else ''}\n{lines}\n"
            "see docs/report.md and stagegate/schema/report.schema.json for the document shape"
        )


ReportError.__module__ = "stagegate.report"  # shown in tracebacks where users import it from


@cache
def _schema_text() -> str:
    return resources.files("stagegate").joinpath("schema/report.schema.json").read_text("utf-8")


def document_schema() -> dict[str, Any]:
    """Return the JSON Schema of report documents (draft 2020-12), a fresh copy each call.

    >>> schema = document_schema()
    >>> schema["required"]
    ['title', 'generated_at', 'as_of', 'process', 'summary']
    """
    loaded: dict[str, Any] = json.loads(_schema_text())
    return loaded


def _is_instant(value: object) -> bool:
    """ISO 8601 as :func:`dateutil.parser.isoparse` reads it (a bare date is accepted)."""
    if not isinstance(value, str):
        return True  # the type keyword reports non-strings
    try:
        _dateutil_parser.isoparse(value)
    except (ValueError, OverflowError):
        return False
    return True


@cache
def _validator() -> Any:
    import jsonschema  # noqa: PLC0415 - imported on first validation: it is slow to import

    base = jsonschema.validators.validator_for(json.loads(_schema_text()))
    checker = base.TYPE_CHECKER.redefine_many(
        {
            # an integer is an int, never a bool nor an integral float; arrays may be tuples
            "integer": lambda _c, v: isinstance(v, int) and not isinstance(v, bool),
            "array": lambda _c, v: isinstance(v, (list, tuple)),
            "object": lambda _c, v: isinstance(v, Mapping),
        }
    )
    formats = jsonschema.FormatChecker(formats=())
    formats.checks("date-time")(_is_instant)
    cls = jsonschema.validators.extend(base, type_checker=checker)  # type: ignore[no-untyped-call]
    return cls(json.loads(_schema_text()), format_checker=formats)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _type_name(value: object) -> str:
    """Name the type of ``value`` the way a JSON user thinks of it."""
    names = {type(None): "null", bool: "a boolean", str: "a string", int: "an integer"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "a list",
}


def _problem(error: Any) -> list[Problem]:
    """Turn one jsonschema error into problems that name a path and read like English."""
    path = _path(error.absolute_path)
    keyword = error.validator
    if keyword == "required":
        instance = error.instance
        return [
            Problem(f"{path}.{key}" if path else key, "required key is missing")
            for key in error.validator_value
            if key not in instance
        ]
    if keyword == "type":
        wanted = error.validator_value
        kinds = [wanted] if isinstance(wanted, str) else list(wanted)
        named = " or ".join(_EXPECTED.get(k, k) for k in kinds if k != "null")
        if error.instance is None:
            return [Problem(path, f"must not be null (expected {named})")]
        return [Problem(path, f"expected {named}, got {_type_name(error.instance)}")]
    if keyword == "enum":
        listed = ", ".join(str(v) for v in error.validator_value)
        return [Problem(path, f"expected one of {listed}, got {error.instance!r}")]
    if keyword == "format":
        return [Problem(path, f"expected an ISO 8601 instant, got {error.instance!r}")]
    return [Problem(path, str(error.message))]  # pragma: no cover - no other keyword used


def validate_document(document: object) -> None:
    """Check ``document`` against the report schema (``stagegate/schema/report.schema.json``).

    Args:
        document: the candidate report document (a mapping).

    Raises:
        ReportError: a required key is missing or a value has the wrong type; ``problems``
            lists every problem found, each with its path (``funnel[2].reached``), in path
            order.

    >>> from stagegate.report import sample_document
    >>> validate_document(sample_document())
    >>> bad = sample_document() | {"funnel": [{"stage": "qualification", "reached": "12"}]}
    >>> validate_document(bad)
    Traceback (most recent call last):
    ...
    stagegate.report.ReportError: invalid report document: 1 problem
      - funnel[0].reached: expected an integer, got a string
    see docs/report.md and stagegate/schema/report.schema.json for the document shape
    """
    if not isinstance(document, Mapping):
        raise ReportError([Problem("", f"expected an object, got {_type_name(document)}")])
    problems: dict[str, Problem] = {}
    for error in _validator().iter_errors(document):
        for problem in _problem(error):
            problems.setdefault(str(problem), problem)
    if problems:
        raise ReportError(sorted(problems.values(), key=lambda p: (p.path, p.message)))
