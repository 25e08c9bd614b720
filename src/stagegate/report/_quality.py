"""The data-quality section: what the log itself says about its deals, and the import findings.

:class:`LogFacts` is what the report reads off the raw log rather than off its visits (the
first instant, the stage changes by kind of move, the process versions). The findings counted
in the log (:func:`data_quality`) and those of the import that produced it
(:func:`import_findings`, grouped by code) make one section, ordered by :func:`finding_order`:
errors first, then the largest counts.

>>> rows = import_findings([{"code": "bad_date", "severity": "error", "message": "row 3"}] * 2)
>>> [(r["code"], r["count"], r["message"]) for r in rows]
[('bad_date', 2, 'row 3')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from stagegate._time import to_utc
from stagegate.events import EventKind, MoveKind
from stagegate.process import Process
from stagegate.report._results import Current

__all__ = ["LogFacts", "data_quality", "finding_order", "import_findings"]


@attrs.frozen
class LogFacts:
    """What the report reads off the log itself rather than off its visits.

    The first instant, the stage changes by kind of move, and the process versions recorded.
    """

    first: datetime
    moves: Counter[MoveKind]
    versions: frozenset[str]

    @classmethod
    def of(cls, log: Any, process: Process) -> LogFacts:
        """The facts of a non-empty log (a frame, or a list of events of ``process``)."""
        if hasattr(log, "columns"):
            changes = log.filter(log["kind"] == EventKind.STAGE_CHANGED.value)
            counted = changes["move"].value_counts().to_dicts()
            has_versions = "process_version" in log.columns
            return cls(
                first=to_utc(log["at"].min()),
                moves=Counter({MoveKind(r["move"]): r["count"] for r in counted if r["move"]}),
                versions=frozenset(log["process_version"].unique().to_list())
                if has_versions
                else frozenset(),
            )
        return cls(
            first=min(e.at for e in log),
            moves=Counter(e.move for e in log if e.kind is EventKind.STAGE_CHANGED),
            versions=frozenset(e.process_version for e in log if e.process == process.name),
        )


def finding_order(finding: dict[str, Any]) -> tuple[int, int, str]:
    """The sort key of a data-quality row: errors, warnings, then infos; larger counts first."""
    order = {"error": 0, "warning": 1, "info": 2}
    return (order.get(finding["severity"], 3), -(finding["count"] or 0), finding["code"])


def import_findings(findings: Sequence[Any]) -> list[dict[str, Any]]:
    """Import findings grouped by (code, severity): one data-quality row each."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        get = f.get if isinstance(f, Mapping) else lambda key, f=f: getattr(f, key)
        severity = get("severity")
        severity = str(getattr(severity, "value", severity))
        groups.setdefault((str(get("code")), severity), []).append(str(get("message")))
    rows = []
    for (code, severity), messages in groups.items():
        distinct = list(dict.fromkeys(messages))
        more = f" (and {len(distinct) - 1} more like it)" if len(distinct) > 1 else ""
        rows.append(
            {
                "code": code,
                "severity": severity,
                "count": len(messages),
                "message": f"{distinct[0]}{more}",
                "source": "import",
            }
        )
    return sorted(rows, key=finding_order)


def data_quality(
    facts: LogFacts,
    current: Current,
    process: Process,
    as_of: datetime,
    unscheduled: int,
    *,
    known: bool,
) -> list[dict[str, Any]]:
    """The findings counted in the log: one row for each kind of problem it has at all.

    The messages are looked up in the page's catalogues (``report._messages_ko``), which
    ``tests/test_report_i18n.py`` checks against the ``add`` calls here.
    """
    findings: list[dict[str, Any]] = []

    def add(code: str, severity: str, count: int, message: str) -> None:
        if count:
            findings.append(
                {
                    "code": code,
                    "severity": severity,
                    "count": count,
                    "message": message,
                    "source": "log",
                }
            )

    overdue, no_amount, no_date = current.open_counts(as_of.date())
    add(
        "overdue_close_date",
        "warning",
        overdue,
        "open deals whose expected close date has passed: reschedule or close them",
    )
    add(
        "no_amount",
        "warning",
        no_amount,
        "open deals without an amount: they are left out of weighted pipeline and forecast",
    )
    add(
        "no_close_date",
        "warning",
        no_date,
        "open deals without an expected close date: they cannot be forecast by period",
    )
    moves, versions = facts.moves, facts.versions
    add(
        "gate_overrides",
        "warning",
        moves[MoveKind.OVERRIDE],
        "stage changes made despite an unmet gate (each with its reason in the log)",
    )
    add(
        "backward_moves",
        "info",
        moves[MoveKind.BACKWARD],
        "moves back to an earlier stage",
    )
    add(
        "reopened",
        "info",
        moves[MoveKind.REOPEN],
        "closed deals that were reopened",
    )
    add(
        "imported_history",
        "info",
        moves[MoveKind.IMPORTED],
        "stage changes taken from another system's history: never checked against the gates",
    )
    add(
        "unscheduled",
        "info",
        unscheduled,
        "open deals the forecast leaves out (no amount or no close date)",
    )
    add(
        "several_versions",
        "info",
        len(versions) if len(versions) > 1 else 0,
        f"events recorded under {len(versions)} versions of process {process.name!r}",
    )
    add(
        "no_configured_probabilities",
        "warning",
        0 if known else len(process.open_stages),
        "open stages without a configured probability (all 0%, as in a process inferred from "
        "data): the configured estimator is no baseline and is left out of the backtest",
    )
    return findings
