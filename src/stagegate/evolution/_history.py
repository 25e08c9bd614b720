"""History under earlier versions, mapped onto the current stages for analytics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from stagegate.errors import cut
from stagegate.events import Event, EventKind
from stagegate.evolution._diff import EvolutionError, required_process
from stagegate.process import Process

if TYPE_CHECKING:
    from stagegate.store.base import EventStore

__all__ = ["Lineage", "lineage", "map_history"]

_MIGRATED = EventKind.MIGRATED
_IDENTITY: Mapping[str, str] = {}


@attrs.frozen(slots=True)
class Lineage:
    """Which version each deal's events were recorded in, and how each maps onto the current one.

    Attributes:
        process: the current version, whose stages the history is mapped onto.
        segments: per opportunity whose history needs mapping, ``(first_seq, key)`` pairs: its
            events from ``first_seq`` on (to the next pair) map through ``mappings[key]``.
            Opportunities recorded wholly in the current version are absent.
        mappings: the composed stage mappings (old id to current id), by key.
    """

    process: Process
    segments: Mapping[str, tuple[tuple[int, int], ...]]
    mappings: tuple[Mapping[str, str], ...]

    def stage_of(self, opportunity_id: str, seq: int, stage: str) -> str:
        """The current stage that ``stage`` of event ``seq`` of a deal counts as."""
        key = 0
        for first, segment in self.segments.get(opportunity_id, ()):
            if seq >= first:
                key = segment
        return self.mappings[key].get(stage, stage) if key else stage


def _steps(events: Iterable[Event]) -> dict[str, tuple[str, Mapping[str, str]]]:
    steps: dict[str, tuple[str, Mapping[str, str]]] = {}
    for event in events:
        if event.kind is _MIGRATED and event.details is not None:
            source = event.details.get("from_version")
            mapping = event.details.get("mapping")
            if isinstance(source, str) and isinstance(mapping, Mapping):
                steps.setdefault(source, (event.process_version, mapping))
    return steps


class _Builder:
    """Composes the stage mapping from any version to the current one, once per path."""

    def __init__(
        self, process: Process, steps: Mapping[str, tuple[str, Mapping[str, str]]]
    ) -> None:
        self.process = process
        self.steps = steps
        self.keys: dict[tuple[Any, ...], int] = {(): 0}
        self.mappings: list[Mapping[str, str]] = [_IDENTITY]

    def key(self, path: tuple[tuple[str, Mapping[str, str]], ...], version: str) -> int:
        """The key of the mapping from ``version`` through ``path`` (then the known steps)."""
        chain = list(path)
        seen = {version}
        current = chain[-1][0] if chain else version
        while current != self.process.version:
            step = self.steps.get(current)
            if step is None or step[0] in seen:
                chain.append((self.process.version, self.process.renamed))
                break
            chain.append(step)
            seen.add(step[0])
            current = step[0]
        if not chain:
            return 0
        ident = tuple((to, tuple(sorted(m.items()))) for to, m in chain)
        if ident not in self.keys:
            self.keys[ident] = len(self.mappings)
            self.mappings.append(self._compose(chain))
        return self.keys[ident]

    @staticmethod
    def _compose(chain: list[tuple[str, Mapping[str, str]]]) -> Mapping[str, str]:
        stages: set[str] = set()
        for _, mapping in chain:
            stages.update(mapping)
        out = {}
        for stage in stages:
            target = stage
            for _, mapping in chain:
                target = mapping.get(target, target)
            if target != stage:
                out[stage] = target
        return out


def _segments(log: list[Event], builder: _Builder) -> tuple[tuple[int, int], ...]:
    """The mapped segments of one deal's log (empty when it is all in the current version)."""
    version = log[0].process_version
    starts = [(log[0].seq, version)]
    own: list[tuple[str, Mapping[str, str]]] = []
    for event in log:
        if event.kind is _MIGRATED:
            mapping = (event.details or {}).get("mapping")
            own.append((event.process_version, mapping if isinstance(mapping, Mapping) else {}))
            starts.append((event.seq, event.process_version))
    out = []
    for i, (first, segment_version) in enumerate(starts):
        if segment_version == builder.process.version:
            key = 0
        else:
            key = builder.key(tuple(own[i:]), segment_version)
        out.append((first, key))
    if all(key == 0 for _, key in out):
        return ()
    return tuple(out)


def lineage(source: EventStore | Iterable[Any], process: Process) -> Lineage:
    """Which version each deal's history was recorded in, and its mapping onto ``process``.

    ``source`` is an event store or an iterable of events (or opportunities). A deal migrated
    to ``process`` maps its earlier events through its own ``migrated`` events; a deal that
    closed under an earlier version (closed deals keep their version) maps through the
    migrations other deals made from that version, or, when there were none, through
    ``process.renamed``.
    """
    required_process(process, "lineage")
    # Only each log's first event and its migrations matter: keep those, stream the rest.
    scan = getattr(source, "scan", None)
    if callable(scan):  # in (opportunity_id, seq) order: the first seen of each is its first
        events: list[Event] = []
        seen: set[str] = set()
        for event in scan():
            if event.kind is _MIGRATED or event.opportunity_id not in seen:
                events.append(event)
                seen.add(event.opportunity_id)
    else:
        events = _events_of(source)
    builder = _Builder(process, _steps(events))
    segments: dict[str, tuple[tuple[int, int], ...]] = {}
    for log in _logs(events):
        found = _segments(log, builder)
        if found:
            segments[log[0].opportunity_id] = found
    return Lineage(process, segments, tuple(builder.mappings))


def _events_of(source: Any) -> list[Event]:
    """The events of a store, or of an iterable of events and opportunities.

    Raises:
        EvolutionError: ``source`` is none of these (a single opportunity, say).
    """
    scan = getattr(source, "scan", None)
    if callable(scan):
        return list(scan())
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise _not_history(source)
    out: list[Event] = []
    for item in source:
        events = None if isinstance(item, Event) else getattr(item, "events", None)
        if events is None and not isinstance(item, Event):
            raise _not_history(item)
        out.extend((item,) if events is None else events)
    return out


def _not_history(found: object) -> EvolutionError:
    return EvolutionError(
        "history is an event store or an iterable of events or opportunities, got "
        f"{cut(repr(found))}; pass a list (e.g. [deal] or deal.events)"
    )


def _logs(events: list[Event]) -> list[list[Event]]:
    logs: dict[str, list[Event]] = {}
    for event in events:
        logs.setdefault(event.opportunity_id, []).append(event)
    for log in logs.values():
        log.sort(key=lambda e: e.seq)
    return list(logs.values())


def map_history(data: Any, process: Process, *, lineage_of: Lineage | None = None) -> Any:
    """History recorded under earlier versions, with its stages mapped onto ``process``.

    Analytics take the mapped history: time in stage, probabilities and funnels then count a
    renamed stage under its new id, and a removed stage merged into another as that stage
    (time spent in it is time in the stage it was merged into, and entering it is entering
    that stage). Nothing else changes: instants, amounts and closing outcomes stay as recorded.

    ``data`` is an iterable of events (or opportunities), which gives a list of events back
    (``stage``, ``from_stage`` and ``process_version`` mapped, ``digest`` dropped), or a Polars
    stage-history frame (``store.to_frame()``: ``opportunity_id``, ``seq``, ``stage`` and
    optionally ``from_stage``), which needs ``lineage_of`` (:func:`lineage` of the store) and
    gives a frame back with the same columns.

    Raises:
        EvolutionError: a stage has no place in ``process`` (map it in ``process.renamed``), or
            a frame was given without ``lineage_of``, or is not a Polars frame, or ``data`` is
            not history (a single opportunity, say), or ``process`` is not a Process.
    """
    required_process(process, "map_history")
    module = type(data).__module__.split(".", 1)[0]
    if module == "polars":
        if lineage_of is None:
            raise EvolutionError(
                "a stage-history frame does not say which version each row was recorded in: "
                "pass lineage_of=stagegate.evolution.lineage(store, process)"
            )
        return _map_frame(data, lineage_of)
    if module in {"pandas", "duckdb", "pyspark", "narwhals"}:
        raise EvolutionError(
            f"map_history maps Polars frames and events, got a {module} object; convert it "
            "with polars.from_pandas(...), or map the events"
        )
    events = _events_of(data)
    found = lineage_of if lineage_of is not None else lineage(events, process)
    out = []
    for event in events:
        stage = found.stage_of(event.opportunity_id, event.seq, event.stage)
        before = event.from_stage
        if before is not None:
            before = found.stage_of(event.opportunity_id, event.seq, before)
        if stage not in process:
            raise _no_place(event.opportunity_id, event.seq, event.stage, process)
        if stage == event.stage and before == event.from_stage:
            out.append(event)
            continue
        out.append(
            attrs.evolve(
                event,
                stage=stage,
                from_stage=before,
                process_version=process.version,
                digest=None,
            )
        )
    return out


def _no_place(opportunity_id: str, seq: int, stage: str, process: Process) -> EvolutionError:
    return EvolutionError(
        f"event {seq} of {opportunity_id!r} is in stage {stage!r}, which has no place in "
        f"version {process.version!r} of {process.name!r}; map it in the definition's renamed "
        f"table (renamed.{stage} = ...) to count its history"
    )


def _map_frame(frame: Any, found: Lineage) -> Any:
    import polars as pl  # noqa: PLC0415 - the frame is Polars already

    lazy = isinstance(frame, pl.LazyFrame)
    columns = frame.collect_schema().names() if lazy else frame.columns
    segments = [(oid, first, key) for oid, parts in found.segments.items() for first, key in parts]
    pairs = [
        (key, old, new)
        for key, mapping in enumerate(found.mappings)
        for old, new in mapping.items()
    ]
    bounds = pl.LazyFrame(
        segments,
        schema={"opportunity_id": pl.String, "_first": pl.Int64, "_key": pl.Int64},
        orient="row",
    )
    table = pl.LazyFrame(
        pairs, schema={"_key": pl.Int64, "_old": pl.String, "_new": pl.String}, orient="row"
    )
    rows = frame.lazy().with_row_index("_row")
    keys = (
        rows.select("_row", "opportunity_id", "seq")
        .join(bounds, on="opportunity_id", how="inner")
        .filter(pl.col("seq") >= pl.col("_first"))
        .group_by("_row")
        .agg(pl.col("_key").sort_by("_first").last())
    )
    mapped = rows.join(keys, on="_row", how="left")
    for column in ("stage", "from_stage"):
        if column not in columns:
            continue
        mapped = (
            mapped.join(
                table.rename({"_old": column}), on=["_key", column], how="left", nulls_equal=False
            )
            .with_columns(pl.coalesce("_new", column).alias(column))
            .drop("_new")
        )
    result = mapped.sort("_row").drop("_row", "_key").select(columns)
    stages = set(found.process.stage_ids)
    if not lazy:
        out = result.collect()
        unknown = out.filter(~pl.col("stage").is_in(list(stages)))
        if unknown.height:
            row = unknown.row(0, named=True)
            raise _no_place(row["opportunity_id"], row["seq"], row["stage"], found.process)
        return out
    return result
