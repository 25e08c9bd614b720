"""Mapping source stage labels to process stages, and inferring a process from the data."""

from __future__ import annotations

import re
import shlex
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from stagegate.errors import InvalidCommandError
from stagegate.io._result import Finding, Hint, ImportProblemError, Severity
from stagegate.process import Policies, Process, Stage, StageKind

__all__ = ["ProcessLike", "infer_process", "resolve_stages"]

INFERRED_NAME = "imported"
INFERRED_VERSION = "0"

_WON = re.compile(r"^(closed|deal)?[ _-]*won$")
_LOST = re.compile(r"^(closed|deal)?[ _-]*lost$")


class _StageKindLike(Protocol):
    @property
    def value(self) -> str: ...


class StageLike(Protocol):
    """What the importers read from a stage: ``id``, ``labels``, ``kind.value``."""

    @property
    def id(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def kind(self) -> _StageKindLike: ...


class ProcessLike(Protocol):
    """What the importers read from a process (a :class:`~stagegate.process.Process` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def stages(self) -> Sequence[StageLike]: ...


def key(label: str) -> str:
    """Comparison key of a label: case-folded, with runs of space collapsed."""
    return re.sub(r"\s+", " ", label.strip()).casefold()


def slug(label: str) -> str:
    """A stage id made from a label, as a definition file may hold it (see the schema).

    >>> slug("Proposal/Quote"), slug("3"), slug("2nd call"), slug("")
    ('proposal_quote', 'stage_3', 'stage_2nd_call', 'stage')
    """
    result = re.sub(r"[^0-9a-z]+", "_", key(label)).strip("_")[:_MOST_ID]
    if not result[:1].isalpha():  # ids start with a letter: Pipedrive's stage ids are numbers
        result = f"stage_{result}".rstrip("_")
    return result


_MOST_ID = 90
"""Longest id :func:`slug` makes: the schema allows 100, and a repeated id gains ``_``."""
_MOST_LABEL = 200
"""Longest label kept of a source stage (the schema's limit)."""


def terminal_kind(label: str) -> str | None:
    """``"won"`` or ``"lost"`` for labels such as ``Closed Won`` or ``closedlost``, else None."""
    text = key(label)
    if _WON.match(text):
        return "won"
    if _LOST.match(text):
        return "lost"
    return None


def resolve_stages(
    labels: Iterable[str],
    process: ProcessLike,
    *,
    stage_map: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[Finding]]:
    """Map each source label to a process stage id.

    A label maps, in this order: through ``stage_map`` (exact key, then ignoring case); to the
    stage whose id or one of whose labels is equal; to the one equal ignoring case and spacing
    (with a ``stage_case`` warning). A label that maps to nothing is left out of the result,
    and :func:`unknown_stage_findings` reports the rows that use it.

    Raises:
        InvalidCommandError: ``stage_map`` maps to a stage the process does not have.
    """
    ids = {stage.id for stage in process.stages}
    overrides = dict(stage_map or {})
    bad = sorted({target for target in overrides.values() if target not in ids})
    if bad:
        raise InvalidCommandError(
            f"stage_map= maps to {', '.join(map(repr, bad))}, not stages of process "
            f"{process.name!r} (stages: {', '.join(sorted(ids))})"
        )
    override_keys = {key(k): v for k, v in overrides.items()}
    exact: dict[str, str] = {}
    loose: dict[str, tuple[str, str]] = {}
    for stage in process.stages:
        for name in (stage.id, *stage.labels.values()):
            exact.setdefault(name, stage.id)
            loose.setdefault(key(name), (stage.id, name))
    resolved: dict[str, str] = {}
    findings: list[Finding] = []
    for label in dict.fromkeys(labels):
        if label in overrides:
            resolved[label] = overrides[label]
        elif key(label) in override_keys:
            resolved[label] = override_keys[key(label)]
            findings.append(_case_finding(label, resolved[label], "a stage_map= key"))
        elif label in exact:
            resolved[label] = exact[label]
        elif key(label) in loose:
            stage_id, name = loose[key(label)]
            resolved[label] = stage_id
            findings.append(_case_finding(label, stage_id, f"{name!r}"))
    return resolved, findings


def _case_finding(label: str, stage_id: str, matched: str) -> Finding:
    return Finding(
        "stage_case",
        Severity.WARNING,
        f"source stage {label!r} matched {matched} only when ignoring case and spacing; mapped "
        f"to stage {stage_id!r}",
        hint=Hint(
            f"add stage_map={{{label!r}: {stage_id!r}}} to confirm",
            f"add --map {shlex.quote(f'{label}={stage_id}')} to confirm",
        ),
    )


def infer_process(  # noqa: PLR0915 - one pass over the labels
    histories: Iterable[Sequence[str]],
    *,
    order: Sequence[str] | None = None,
    won: Iterable[str] = (),
    lost: Iterable[str] = (),
    add_won: bool = False,
    add_lost: bool = False,
    source: str = "import",
) -> tuple[Process, dict[str, str], list[Finding]]:
    """Build a process from the stage labels seen in the data.

    Open stages are ordered by ``order`` when given (e.g. a CRM's stage table), else by the
    median position at which deals first enter them (then the mean, then first appearance).
    Won and lost stages are those named in ``won`` / ``lost``, or labelled like ``Won``,
    ``Closed Won``, ``closedwon`` (and the same for lost). Labels that differ only in case or
    spacing are one stage (with a ``stage_case`` warning).

    Args:
        histories: the stage labels of each deal, in time order.
        order: the open stages in their process order, when the source says it.
        won: source labels of won stages.
        lost: source labels of lost stages.
        add_won: add a ``won`` stage when none is in the data (a CRM that records winning as
            a status, not a stage).
        add_lost: the same for ``lost``.
        source: the importer's name, for messages.

    Returns:
        The process (named ``"imported"``, version ``"0"``, skipping and backward moves
        allowed, no gates, probability 0 for open stages: probabilities not configured), the
        label -> stage id map, and the findings (``inferred_process``, showing the order: a
        warning when the open stages were ordered by guess, info when ``order`` was given).

    Raises:
        ImportProblemError: no won or no lost stage can be identified.
    """
    findings: list[Finding] = []
    canonical: dict[str, str] = {}  # key -> first spelling
    positions: dict[str, list[int]] = {}
    for history in histories:
        seen: list[str] = []
        for label in history:
            k = key(label)
            canonical.setdefault(k, label)
            if k not in seen:
                seen.append(k)
        for position, k in enumerate(seen):
            positions.setdefault(k, []).append(position)
    for label in order or ():
        canonical.setdefault(key(label), label)
    won, lost = tuple(won), tuple(lost)
    won_keys = {key(x) for x in won}
    lost_keys = {key(x) for x in lost}
    for label in (*won, *lost):  # named but not (yet) in the data: still a stage, as named
        canonical.setdefault(key(label), label)
    for k, label in canonical.items():
        if k in won_keys or k in lost_keys:
            continue
        kind = terminal_kind(label)
        if kind == "won":
            won_keys.add(k)
        elif kind == "lost":
            lost_keys.add(k)
    both = won_keys & lost_keys
    if both:
        raise InvalidCommandError(
            f"stages {', '.join(sorted(both))} are named both won and lost; name each once"
        )
    if not won_keys and not add_won and not lost_keys and not add_lost:
        raise ImportProblemError(
            source,
            [
                Finding(
                    "no_terminal_stages",
                    Severity.ERROR,
                    "cannot infer the process: no stage looks like won or lost (seen: "
                    f"{', '.join(map(repr, canonical.values())) or 'none'})",
                    used=False,
                    hint=Hint(
                        "name them with won=[...], lost=[...], or pass process=",
                        "name them with --won STAGE and --lost STAGE (repeat for several), "
                        "or pass --process FILE",
                    ),
                )
            ],
        )
    open_keys = [k for k in canonical if k not in won_keys and k not in lost_keys]
    if order is not None:
        rank = {key(label): i for i, label in enumerate(order)}
        first_seen = {k: i for i, k in enumerate(canonical)}
        open_keys.sort(key=lambda k: (rank.get(k, len(rank)), first_seen[k]))
    else:
        first_seen = {k: i for i, k in enumerate(canonical)}
        open_keys.sort(
            key=lambda k: (
                statistics.median(positions.get(k, [0])),
                statistics.fmean(positions.get(k, [0])),
                first_seen[k],
            )
        )
    if not open_keys:
        raise ImportProblemError(
            source,
            [
                Finding(
                    "no_open_stages",
                    Severity.ERROR,
                    "cannot infer the process: no open stage is named in the data (seen: "
                    f"{', '.join(map(repr, canonical.values())) or 'no stage at all'}), and a "
                    "deal needs one to start in",
                    used=False,
                    hint=Hint(
                        "name the open stages with order=[...] (or stages=), or pass process=",
                        "name the open stages with --stage-order A,B,C, or pass --process FILE",
                    ),
                )
            ],
        )
    stages: list[Stage] = []
    mapping: dict[str, str] = {}
    used_ids: set[str] = set()

    def add(k: str | None, label: str, kind: StageKind, probability: float) -> None:
        stage_id = slug(label)
        while stage_id in used_ids:
            stage_id += "_"
        used_ids.add(stage_id)
        shown = {"en": label[:_MOST_LABEL]} if label.strip() else {}  # as the schema allows
        stages.append(Stage(stage_id, labels=shown, probability=probability, kind=kind))
        if k is not None:
            mapping[canonical[k]] = stage_id

    for k in open_keys:
        # not configured: the data says nothing about probabilities (0 for every open stage is
        # the team's mark of a process without configured probabilities)
        add(k, canonical[k], StageKind.OPEN, 0.0)
    for k in sorted(won_keys & set(canonical), key=list(canonical).index):
        add(k, canonical[k], StageKind.WON, 1.0)
    if not won_keys & set(canonical):
        add(None, "Won", StageKind.WON, 1.0)
    for k in sorted(lost_keys & set(canonical), key=list(canonical).index):
        add(k, canonical[k], StageKind.LOST, 0.0)
    if not lost_keys & set(canonical):
        add(None, "Lost", StageKind.LOST, 0.0)
    process = Process(
        INFERRED_NAME,
        INFERRED_VERSION,
        tuple(stages),
        Policies(allow_skip=True, allow_backward=True, backward_needs_reason=False),
        description=f"inferred from a {source} export",
    )
    how = (
        "in the order given"
        if order is not None
        else "by the median position at which deals first enter them"
    )
    findings.append(
        Finding(
            "inferred_process",
            # a guessed stage order is worth checking; an order the user or the source gave is
            # not a guess
            Severity.WARNING if order is None else Severity.INFO,
            f"no process given: inferred {INFERRED_NAME!r} with stages "
            f"{' > '.join(s.id for s in stages)} (open stages {how}; stage probabilities not "
            "configured)",
            hint=Hint(
                "name the stage order with order=[...], or pass process= to import into your "
                "own process",
                "name the stage order with --stage-order A,B,C, or pass --process FILE to "
                "import into your own process",
            )
            if order is None
            else None,
        )
    )
    return process, mapping, findings


def stage_kinds(process: ProcessLike) -> dict[str, str]:
    """Stage id -> ``open`` / ``won`` / ``lost``."""
    return {stage.id: str(stage.kind.value) for stage in process.stages}


def describe(value: Any) -> str:
    """A short repr for messages (long values cut)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004
