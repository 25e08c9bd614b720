"""The report document: its shape, checked once at the boundary.

A report document is a plain JSON-able dict (see ``docs/report.md``). :func:`validate_document`
checks every required key and the type of every value it knows, collects every problem with its
path, and raises one :class:`ReportError` listing them all. Unknown keys are ignored, so newer
analytics can add fields before the renderer shows them.

>>> validate_document({"title": "Q3"})
Traceback (most recent call last):
...
stagegate.report.ReportError: invalid report document: 4 problems
  - generated_at: required key is missing
  - as_of: required key is missing
  - process: required key is missing
  - summary: required key is missing
see docs/report.md for the document shape
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from dateutil import parser as _dateutil_parser

from stagegate.errors import Problem, StagegateError

__all__ = ["SECTIONS", "STAGE_KINDS", "Field", "ReportError", "validate_document"]

STAGE_KINDS = ("open", "won", "lost")


class ReportError(StagegateError, ValueError):
    """A report document is malformed; ``problems`` lists every problem with its path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid report document: {count} problem{'s' if count != 1 else ''}\n{lines}\n"
            "see docs/report.md for the document shape"
        )


ReportError.__module__ = "stagegate.report"  # shown in tracebacks where users import it from


class Field:
    """One key of a document object: its name, kind, and whether it may be missing or null.

    Kinds: ``"str"``, ``"int"`` (an ``int``, never a ``bool``), ``"number"`` (``int``,
    ``float`` or ``Decimal``; NaN and infinities are accepted and shown as "no value"),
    ``"instant"`` (an ISO 8601 string) and ``"kind"`` (one of ``open``, ``won``, ``lost``).
    """

    __slots__ = ("kind", "name", "nullable", "required")

    def __init__(
        self, name: str, kind: str, *, required: bool = True, nullable: bool = False
    ) -> None:
        self.name, self.kind, self.required, self.nullable = name, kind, required, nullable

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.kind!r})"


def _opt(name: str, kind: str) -> Field:
    """Return a field that may be missing or null."""
    return Field(name, kind, required=False, nullable=True)


def _null(name: str, kind: str) -> Field:
    """Return a field that must be present but may be null."""
    return Field(name, kind, nullable=True)


_STAGE = (
    Field("id", "str"),
    _opt("label", "str"),
    Field("kind", "kind"),
    _opt("probability", "number"),
)
_PROCESS = (Field("name", "str"), Field("version", "str"))
_SUMMARY = (
    Field("opportunities", "int"),
    Field("open", "int"),
    Field("won", "int"),
    Field("lost", "int"),
    _null("win_rate", "number"),
    Field("open_amount", "number"),
    Field("weighted_amount", "number"),
    _null("median_cycle_days", "number"),
)
_PROBABILITY = (
    Field("stage", "str"),
    *(_opt(n, "number") for n in ("configured", "empirical", "low", "high", "markov", "smoothed")),
    _opt("n", "int"),
)
_SCORE = (
    Field("estimator", "str"),
    _opt("brier", "number"),
    _opt("log_loss", "number"),
    _opt("n", "int"),
)
_RELIABILITY = (
    Field("estimator", "str"),
    Field("bin_low", "number"),
    Field("bin_high", "number"),
    _opt("predicted", "number"),
    _opt("observed", "number"),
    _opt("n", "int"),
)
_BACKTEST = (Field("cutoff", "instant"), _opt("best", "str"))
_TIME_IN_STAGE = (
    Field("stage", "str"),
    *(_opt(f"{o}_median_days", "number") for o in ("won", "lost", "open")),
    _opt("lost_to_won_ratio", "number"),
    *(_opt(f"{o}_n", "int") for o in ("won", "lost", "open")),
    _opt("km_median_days", "number"),
)
_CYCLE_GROUP = (_opt("n", "int"), _opt("mean_days", "number"), _opt("median_days", "number"))
_CYCLE = (
    _opt("sum_of_stage_means_days", "number"),
    _opt("measured_mean_days", "number"),
    _opt("explanation", "str"),
)
_FUNNEL = (
    Field("stage", "str"),
    Field("reached", "int"),
    _opt("reach_rate", "number"),
    _opt("conversion_from_previous", "number"),
    _opt("lost_here", "int"),
)
_STALLED = (
    Field("opportunity_id", "str"),
    Field("stage", "str"),
    Field("days_in_stage", "number"),
    _opt("limit_days", "number"),
    _opt("limit_source", "str"),
    _opt("times_won_median", "number"),
    _opt("amount", "number"),
)
_SLIPPING = (
    Field("opportunity_id", "str"),
    Field("pushes", "int"),
    _opt("days_pushed", "number"),
    _opt("first_close_date", "str"),
    _opt("close_date", "str"),
    _opt("stage", "str"),
    _opt("amount", "number"),
)
_PUSHES = (Field("pushes", "int"), Field("n", "int"), _opt("win_rate", "number"))
_FORECAST = (
    Field("period", "str"),
    *(_opt(n, "number") for n in ("weighted", "p10", "p50", "p90")),
    _opt("n", "int"),
)
_FINDING = (
    Field("code", "str"),
    Field("severity", "str"),
    _opt("count", "int"),
    Field("message", "str"),
)

#: The optional list sections of a document and the fields of each row.
SECTIONS: Mapping[str, tuple[Field, ...]] = {
    "probabilities": _PROBABILITY,
    "time_in_stage": _TIME_IN_STAGE,
    "funnel": _FUNNEL,
    "stalled": _STALLED,
    "slipping": _SLIPPING,
    "forecast": _FORECAST,
    "data_quality": _FINDING,
}


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


def _check_value(field: Field, value: object, path: str, problems: list[Problem]) -> None:
    """Append a problem when ``value`` does not have ``field``'s kind."""
    if value is None:
        if not field.nullable:
            problems.append(Problem(path, f"must not be null (expected {_EXPECTED[field.kind]})"))
        return
    kind = field.kind
    if kind in {"str", "instant", "kind"} and not isinstance(value, str):
        ok = False
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    else:
        ok = True
    if not ok:
        problems.append(Problem(path, f"expected {_EXPECTED[kind]}, got {_type_name(value)}"))
        return
    if kind == "kind" and value not in STAGE_KINDS:
        problems.append(Problem(path, f"expected one of {', '.join(STAGE_KINDS)}, got {value!r}"))
    elif kind == "instant":
        try:
            _dateutil_parser.isoparse(str(value))
        except (ValueError, OverflowError):
            problems.append(Problem(path, f"expected an ISO 8601 instant, got {value!r}"))


_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "instant": "an ISO 8601 string",
    "kind": "one of 'open', 'won', 'lost'",
}


def _check_object(
    obj: object, fields: Sequence[Field], path: str, problems: list[Problem]
) -> Mapping[str, Any] | None:
    """Check that ``obj`` is an object with ``fields``; return it, or ``None`` if not an object."""
    if not isinstance(obj, Mapping):
        problems.append(Problem(path, f"expected an object, got {_type_name(obj)}"))
        return None
    for field in fields:
        where = f"{path}.{field.name}" if path else field.name
        if field.name not in obj:
            if field.required:
                problems.append(Problem(where, "required key is missing"))
            continue
        _check_value(field, obj[field.name], where, problems)
    return obj


def _check_rows(
    rows: object, fields: Sequence[Field], path: str, problems: list[Problem]
) -> Sequence[Any]:
    """Check an optional list of row objects (``None`` reads as an empty list)."""
    if rows is None:
        return ()
    if not isinstance(rows, (list, tuple)):
        problems.append(Problem(path, f"expected a list, got {_type_name(rows)}"))
        return ()
    for index, row in enumerate(rows):
        _check_object(row, fields, f"{path}[{index}]", problems)
    return rows


def validate_document(document: object) -> None:
    """Check that ``document`` has the report document shape described in ``docs/report.md``.

    Args:
        document: the candidate report document (a mapping).

    Raises:
        ReportError: a required key is missing or a value has the wrong type; ``problems``
            lists every problem found, each with its path (``funnel[2].reached``).

    >>> from stagegate.report import sample_document
    >>> validate_document(sample_document())
    >>> bad = sample_document() | {"funnel": [{"stage": "qualification", "reached": "12"}]}
    >>> validate_document(bad)
    Traceback (most recent call last):
    ...
    stagegate.report.ReportError: invalid report document: 1 problem
      - funnel[0].reached: expected an integer, got a string
    see docs/report.md for the document shape
    """
    problems: list[Problem] = []
    if not isinstance(document, Mapping):
        raise ReportError([Problem("", f"expected an object, got {_type_name(document)}")])
    top = (
        Field("title", "str"),
        Field("generated_at", "instant"),
        Field("as_of", "instant"),
        _opt("currency", "str"),
    )
    _check_object(document, top, "", problems)
    for name in ("process", "summary"):
        if name not in document:
            problems.append(Problem(name, "required key is missing"))
    if "process" in document:
        process = _check_object(document["process"], _PROCESS, "process", problems)
        if process is not None:
            if "stages" not in process:
                problems.append(Problem("process.stages", "required key is missing"))
            else:
                _check_rows(process["stages"], _STAGE, "process.stages", problems)
                if process["stages"] is None:
                    problems.append(Problem("process.stages", "must be a list, got null"))
    if "summary" in document:
        _check_object(document["summary"], _SUMMARY, "summary", problems)
    for name, fields in SECTIONS.items():
        _check_rows(document.get(name), fields, name, problems)
    _check_backtest(document.get("backtest"), problems)
    _check_cycle_time(document.get("cycle_time"), problems)
    _check_slip_summary(document.get("slip_summary"), problems)
    if problems:
        raise ReportError(problems)


def _check_backtest(backtest: object, problems: list[Problem]) -> None:
    """Check the optional ``backtest`` section."""
    if backtest is None:
        return
    checked = _check_object(backtest, _BACKTEST, "backtest", problems)
    if checked is not None:
        _check_rows(checked.get("scores"), _SCORE, "backtest.scores", problems)
        _check_rows(checked.get("reliability"), _RELIABILITY, "backtest.reliability", problems)


def _check_cycle_time(cycle: object, problems: list[Problem]) -> None:
    """Check the optional ``cycle_time`` section."""
    if cycle is None:
        return
    checked = _check_object(cycle, _CYCLE, "cycle_time", problems)
    if checked is not None:
        for outcome in ("won", "lost"):
            if checked.get(outcome) is not None:
                _check_object(checked[outcome], _CYCLE_GROUP, f"cycle_time.{outcome}", problems)


def _check_slip_summary(summary: object, problems: list[Problem]) -> None:
    """Check the optional ``slip_summary`` section."""
    if summary is None:
        return
    checked = _check_object(summary, (_opt("slip_rate", "number"),), "slip_summary", problems)
    if checked is not None:
        rows = checked.get("win_rate_by_pushes")
        _check_rows(rows, _PUSHES, "slip_summary.win_rate_by_pushes", problems)
