"""What an import returns: the events, every finding about the input, and a summary."""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from stagegate.errors import StagegateError
from stagegate.events import Event
from stagegate.io._frame import SegmentChange, segment_names, stage_history_columns, to_backend
from stagegate.process import Process

__all__ = ["Finding", "Hint", "ImportProblemError", "ImportResult", "Severity"]


class Severity(str, enum.Enum):
    """How much a finding matters.

    ``error``: the rows it names were not used (bad or unusable data). ``warning``: the rows
    were used, but by a rule the user should check (a split id, a case-insensitive stage match,
    an inferred process). ``info``: nothing was lost (rows sorted by time, a row that changed
    nothing).
    """

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


def _rows(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(value)))


INTERFACES = ("python", "cli")
"""The interfaces a :class:`Hint` is written for."""


@attrs.frozen(slots=True)
class Hint:
    """What the user can do about a finding, written once per interface.

    The Python importers take keyword arguments (``assume_zone='UTC'``) where the command line
    takes flags (``--assume-zone UTC``): a hint says the same thing in both.

    Attributes:
        python: the hint for callers of the Python API.
        cli: the hint for users of ``stagegate import``.

    >>> Hint("pass assume_zone='UTC'", "pass --assume-zone UTC").text("cli")
    'pass --assume-zone UTC'
    """

    python: str
    cli: str

    def text(self, interface: str = "python") -> str:
        """The hint for ``interface`` (``"python"`` or ``"cli"``).

        Raises:
            InvalidCommandError: an unknown interface.
        """
        if interface == "python":
            return self.python
        if interface == "cli":
            return self.cli
        from stagegate.errors import InvalidCommandError  # noqa: PLC0415 - errors only

        raise InvalidCommandError(
            f"no hint for interface {interface!r}; choose one of {', '.join(INTERFACES)}"
        )


@attrs.frozen(slots=True)
class Finding:
    """One thing the importer noticed about its input, and what it did about it.

    Attributes:
        code: a stable identifier such as ``unknown_stage`` or ``naive_timestamp``.
        severity: see :class:`Severity`.
        message: what was found, what was done, and what the user can do (in Python terms:
            :attr:`what` followed by the hint for the Python API).
        what: what was found and what was done (the message without its hint).
        rows: the source row numbers concerned (1-based; in a CSV file the header is row 1, so
            the first data row is row 2), sorted.
        opportunity_id: the opportunity concerned, if any (as written in the source).
        used: whether the rows named were used in the result.
        hint: what the user can do, per interface (see :meth:`text`); ``None`` when the
            message says it already, or there is nothing to do.
    """

    code: str
    severity: Severity
    what: str = attrs.field(alias="message")
    rows: tuple[int, ...] = attrs.field(default=(), converter=_rows)
    opportunity_id: str | None = None
    used: bool = True
    hint: Hint | None = None

    def text(self, interface: str = "python") -> str:
        """The message followed by the hint written for ``interface`` (``"python"``, ``"cli"``).

        Raises:
            InvalidCommandError: an unknown interface.
        """
        if self.hint is None:
            if interface == "cli":
                return cli_text(self.what)
            if interface != "python":
                Hint("", "").text(interface)  # raises for an unknown interface
            return self.what
        return f"{self.what}: {self.hint.text(interface)}"

    @property
    def message(self) -> str:
        """What was found, what was done, and what to do, for the Python API."""
        return self.text("python")

    def __str__(self) -> str:
        where = ""
        if self.opportunity_id is not None:
            where += f" opportunity {self.opportunity_id!r}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = f" (+{len(self.rows) - 5} more)" if len(self.rows) > 5 else ""  # noqa: PLR2004
            where += f" row{'s' if len(self.rows) > 1 else ''} {shown}{more}"
        return f"{self.severity.value}: {self.code}:{where}: {self.text()}"


_CLI_FORMS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"\bcolumns=\{([^}]*)\}"),
        lambda match: " ".join(
            f"--column {name}=HEADER" for name in re.findall(r"'([^']+)':", match.group(1))
        ),
    ),
    (re.compile(r"\bstage_map=\{'([^']+)': '([^']*)'\}"), r"--map '\1=\2'"),
    (re.compile(r"\bencoding='([^']+)'"), r"--encoding \1"),
    (re.compile(r"\bdelimiter=\s*\(e\.g\. '([^']+)'\)"), r"--delimiter '\1'"),
    (re.compile(r"\bdelimiter=(?:'([^']*)')?"), r"--delimiter \1"),
    (re.compile(r"\bassume_zone='([^']+)'"), r"--assume-zone \1"),
    (re.compile(r"\bmax_field_size="), "--max-field-size"),
    (re.compile(r"\bundated_at="), "--undated-at"),
    (re.compile(r"\bas_of="), "--as-of"),
    (re.compile(r"\bprocess="), "--process"),
    (re.compile(r"\bentered=\{'([^']+)': '([^']*)'\}"), r"--entered \1=\2"),
    (re.compile(r"\bentered="), "--entered"),
    (re.compile(r"\bstage_map="), "--map"),
    (re.compile(r"\bcolumns="), "--column"),
    (re.compile(r"\b(won|lost)=\[\.\.\.\]"), r"--\1 STAGE"),
)


def cli_text(message: str) -> str:
    """``message`` with the Python keyword arguments it names written as ``stagegate import`` flags.

    For findings that carry no :class:`Hint` (those of the file reader): ``columns={'Id': ...}``
    reads ``--column Id=HEADER``, ``encoding='cp1252'`` reads ``--encoding cp1252``.

    >>> cli_text("map your headers with columns={'OpportunityId': ...}")
    'map your headers with --column OpportunityId=HEADER'
    """
    for pattern, replacement in _CLI_FORMS:
        message = pattern.sub(replacement, message)
    return message.replace("--delimiter  ", "--delimiter ").rstrip()


def _findings(items: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(items)


def _events(items: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(items)


def _stage_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _segments(
    value: Mapping[str, Iterable[SegmentChange]],
) -> Mapping[str, tuple[SegmentChange, ...]]:
    return MappingProxyType(
        {oid: tuple(sorted(changes, key=lambda c: c[0])) for oid, changes in value.items()}
    )


@attrs.frozen(slots=True)
class ImportResult:
    """The outcome of one import.

    Attributes:
        source: the kind of export read (``"salesforce"``, ``"pipedrive"``, ...).
        events: the imported events, grouped per opportunity; within one opportunity ``seq``
            runs 1, 2, 3, ... and ``at`` never decreases.
        findings: everything noticed about the input; every row that was not used is named in
            at least one finding with ``used=False``.
        stage_map: the source stage label or id -> process stage id mapping that was used.
        process: the name of the process the events belong to.
        process_version: its version.
        rows_read: data rows read from the source.
        rows_used: data rows that contributed to at least one event.
        definition: the :class:`~stagegate.process.Process` the events belong to (the one
            given, or the one inferred from the data), so it can be stored beside them.
        segments: opportunity id -> its owner and segment changes, ``(at, name, value)`` in
            time order: from ``at`` on, segment ``name`` (``owner``, ``team``, ``region``, ...)
            holds ``value`` (``None``: none). Read from the export's owner and segment
            columns; :meth:`to_frame` carries them as columns.
    """

    source: str
    events: tuple[Event, ...] = attrs.field(converter=_events)
    findings: tuple[Finding, ...] = attrs.field(converter=_findings)
    stage_map: Mapping[str, str] = attrs.field(converter=_stage_map, hash=False)
    process: str
    process_version: str
    rows_read: int
    rows_used: int
    definition: Process | None = attrs.field(default=None, eq=False, repr=False)
    segments: Mapping[str, tuple[SegmentChange, ...]] = attrs.field(
        factory=dict, converter=_segments, hash=False, repr=False
    )

    @property
    def segment_names(self) -> tuple[str, ...]:
        """The segment columns the import carries: ``owner`` first, then as first seen."""
        return segment_names(self.segments)

    def to_frame(self, backend: str = "polars") -> Any:
        """The canonical stage-history table of the imported events, as a data frame.

        One row per event, ordered as :attr:`events`: ``opportunity_id``, ``at`` (UTC),
        ``seq``, ``stage``, ``amount`` (a float), ``close_date``, ``kind``, ``from_stage``,
        ``move``, ``reason``, then one column per :attr:`segment_names` entry holding the value
        in force at the row's instant. This is the table the analytics functions take.

        Args:
            backend: ``"polars"`` (a ``polars.DataFrame``), ``"pandas"`` (a
                ``pandas.DataFrame``, instants as ``datetime64[us, UTC]``) or ``"pyarrow"``
                (a ``pyarrow.Table``).

        Raises:
            InvalidCommandError: an unknown backend, or its library is not installed.
        """
        columns = stage_history_columns(self.events, self.segments)
        return to_backend(columns, backend)

    @property
    def opportunities(self) -> int:
        """How many opportunities were imported."""
        return len({e.opportunity_id for e in self.events})

    @property
    def opportunity_ids(self) -> tuple[str, ...]:
        """The imported opportunity ids, in the order of :attr:`events`."""
        return tuple(dict.fromkeys(e.opportunity_id for e in self.events))

    def by_opportunity(self) -> dict[str, tuple[Event, ...]]:
        """The events of each opportunity, ready for ``Opportunity.replay``."""
        grouped: dict[str, list[Event]] = {}
        for event in self.events:
            grouped.setdefault(event.opportunity_id, []).append(event)
        return {key: tuple(value) for key, value in grouped.items()}

    def findings_of(self, code: str) -> tuple[Finding, ...]:
        """The findings with this code."""
        return tuple(f for f in self.findings if f.code == code)

    @property
    def problems(self) -> tuple[Finding, ...]:
        """The findings of severity error or warning (those that ``strict=True`` refuses)."""
        return tuple(f for f in self.findings if f.severity is not Severity.INFO)

    def summary(self) -> str:
        """A short text report: counts, then findings grouped by code."""
        lines = [
            (
                f"{self.source} import into process {self.process!r} version "
                f"{self.process_version!r}: {self.rows_read} rows read, {self.rows_used} used, "
                f"{self.opportunities} opportunities, {len(self.events)} events"
            )
        ]
        lines.extend(summarize_findings(self.findings))
        return "\n".join(lines)


def summarize_findings(findings: Iterable[Finding], *, examples: int = 3) -> list[str]:
    """Return one line per finding code (with counts), then up to ``examples`` findings each."""
    findings = tuple(findings)
    if not findings:
        return ["no findings"]
    counts = Counter((f.severity, f.code) for f in findings)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    lines: list[str] = []
    for severity, code in sorted(counts, key=lambda key: (order[key[0]], key[1])):
        group = [f for f in findings if f.code == code and f.severity is severity]
        rows = sum(len(f.rows) for f in group)
        lines.append(f"{severity.value} {code}: {len(group)} finding(s), {rows} row(s)")
        lines.extend(f"  - {f}" for f in group[:examples])
    return lines


class ImportProblemError(StagegateError, ValueError):
    """An import was refused: the file cannot be read, or ``strict=True`` found problems.

    ``findings`` holds every finding (for a refused file, the one that says why); no partial
    result is returned.
    """

    def __init__(self, source: str, findings: Iterable[Finding]) -> None:
        self.source = source
        self.findings = tuple(findings)
        lines = "\n".join(summarize_findings(self.findings))
        super().__init__(f"cannot import the {source} export:\n{lines}")
