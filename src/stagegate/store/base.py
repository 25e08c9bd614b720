"""The storage protocol every event store backend implements, and its errors.

An event store is an append-only log of :class:`~stagegate.events.Event` records with one
unique key, ``(opportunity_id, seq)``. Each opportunity's log runs ``1, 2, 3, ...`` without gaps:
a batch may only *continue* a log, so two writers that read the same log and append to it cannot
both succeed. The loser gets a :class:`~stagegate.errors.ConcurrencyError`, reloads and retries;
nothing is lost or duplicated.

Every backend:

* writes a batch all-or-nothing: an error (a conflict, a malformed batch, a closed store) leaves
  the store exactly as it was;
* answers :meth:`EventStore.load` with an empty tuple for an opportunity it has never seen (and
  :meth:`EventStore.load_opportunity` with :class:`UnknownOpportunityError`);
* scans in ``(opportunity_id, seq)`` order, streaming in batches;
* seals every event it appends: its :attr:`~stagegate.events.Event.digest` chains from the
  previous event of the same opportunity (:func:`~stagegate.integrity.event_digest`), so
  :meth:`EventStore.verify` detects an event changed, removed or reordered in storage.

>>> from stagegate.store import MemoryStore
>>> with MemoryStore() as store:
...     store.last_seq("opp-1"), store.load("opp-1"), store.count()
(0, (), 0)
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from stagegate._arguments import text_problem
from stagegate._progress import Phases, phase_of
from stagegate._time import epoch_us
from stagegate.errors import ConcurrencyError, EventLogError, StagegateError
from stagegate.events import Event
from stagegate.integrity import Verification, canonical_bytes, check_chain, verify

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11; only read by type checkers

    from stagegate.opportunity import Opportunity
    from stagegate.process import Process

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SCAN_COLUMNS",
    "EventRow",
    "EventStore",
    "ImportRecord",
    "LogVerdict",
    "Progress",
    "StoreClosedError",
    "StoreDamagedError",
    "StoreError",
    "StoreLockedError",
    "StoreReplacedError",
    "StoreUnwritableError",
    "UnknownOpportunityError",
    "canonical_batch",
    "check_batch",
    "digest_refused",
]

DEFAULT_BATCH_SIZE = 10_000
"""How many events a scan fetches from the backend at a time."""

SCAN_COLUMNS = (
    "opportunity_id",
    "at",
    "seq",
    "stage",
    "amount",
    "close_date",
    "kind",
    "from_stage",
    "move",
)
"""The columns of :meth:`EventStore.scan_rows`, in order: the canonical stage-history table."""


Progress = Callable[[int], None]
"""Called with the number of events written so far in a batch (for progress bars)."""


class EventRow(NamedTuple):
    """One row of :meth:`EventStore.scan_rows`: the analytics columns of an event.

    ``at`` is an aware UTC datetime, ``amount`` a :class:`~decimal.Decimal` (exact),
    ``close_date`` a :class:`~datetime.date`; ``kind`` and ``move`` are the plain text values of
    :class:`~stagegate.events.EventKind` and :class:`~stagegate.events.MoveKind`.
    """

    opportunity_id: str
    at: datetime
    seq: int
    stage: str
    amount: Decimal | None
    close_date: date | None
    kind: str
    from_stage: str | None
    move: str | None


class StoreError(StagegateError, OSError):
    """The store cannot be used: an unreadable or corrupt file, a foreign or newer schema.

    The message names the file and says what to do; the store is left unchanged.
    """


class StoreClosedError(StoreError):
    """The store was closed; open a new one to keep reading or writing."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is closed; open the store again to use it")


class StoreLockedError(StoreError):
    """Another connection holds the store: a lock wait timed out, or it is open for writing.

    Retry later, or stop the other process; nothing was written.
    """


class StoreDamagedError(StoreError):
    """The file is not a SQLite database, or its pages are damaged; restore it from a backup."""


class StoreUnwritableError(StoreError):
    """The store cannot be written: the disk is full, or the file or its folder is read-only."""


class StoreReplacedError(StoreError):
    """The store's file was replaced (``stagegate import --replace``) while this object had it open.

    Nothing was written to the replaced file; open the store again to use the new one.
    """


@attrs.frozen(slots=True)
class ImportRecord:
    """What one import wrote into a store and what it found, kept beside the events.

    Attributes:
        id: the import's number in this store (1, 2, 3, ... in the order they ran).
        at: when the import was written (aware, UTC).
        source: the kind of file read (``"events"``, ``"salesforce"``, ``"log"``, ...).
        input_name: the name of the file read (its base name, not its folder).
        rows_read: data rows read from the file.
        rows_used: data rows that became events.
        opportunities: opportunities written.
        events: events written.
        findings: what the importer noticed, as JSON-ready mappings with ``code``,
            ``severity``, ``message``, ``rows``, ``opportunity_id`` and ``used``.
    """

    id: int
    at: datetime
    source: str
    input_name: str
    rows_read: int
    rows_used: int
    opportunities: int
    events: int
    findings: tuple[Mapping[str, Any], ...] = ()


class UnknownOpportunityError(StagegateError, LookupError):
    """The store holds no event of this opportunity."""

    def __init__(self, opportunity_id: str) -> None:
        self.opportunity_id = opportunity_id
        super().__init__(
            f"the store holds no opportunity {opportunity_id!r}; check the id "
            "(store.opportunity_ids() lists the known ones) or save it first"
        )

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class UnknownProcessError(StagegateError, LookupError):
    """The store holds no definition of the requested process version."""

    def __init__(self, name: str, version: str, known: list[tuple[str, str]]) -> None:
        self.name, self.version, self.known = name, version, tuple(known)
        listed = ", ".join(f"{n} v{v}" for n, v in known) or "none"
        super().__init__(
            f"no definition of process {name!r} version {version!r} is stored (stored: "
            f"{listed}); pass the process definition, or save it with save_process()"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def check_batch(
    events: Sequence[Event], *, expected_seq: int | None = None
) -> dict[str, tuple[int, int]]:
    """Validate a batch and return, per opportunity, its first and last new ``seq``.

    Within the batch, each opportunity's events must be consecutive (``seq`` rising by one, in
    batch order); opportunities may be interleaved. Whether each run continues the stored log is
    the backend's check, made atomically with the write.

    >>> from datetime import datetime, timezone
    >>> from stagegate.events import EventKind
    >>> at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> e = Event("a", 1, EventKind.OPENED, at, "ana", "lead", "b2b", "1")
    >>> check_batch([e])
    {'a': (1, 1)}

    Raises:
        EventLogError: an item is not an :class:`~stagegate.events.Event`, or an
            opportunity's events in the batch skip or repeat a ``seq``.
        InvalidCommandError: ``expected_seq`` is given for a batch that spans several
            opportunities, or is not a non-negative integer.
    """
    from stagegate.errors import InvalidCommandError  # noqa: PLC0415 - keep the header short

    runs: dict[str, tuple[int, int]] = {}
    for position, event in enumerate(events):
        if type(event) is not Event and not isinstance(event, Event):
            raise EventLogError(
                f"item {position} of the batch is {type(event).__name__} {event!r}, not an "
                "Event; append Event records"
            )
        run = runs.get(event.opportunity_id)
        if run is None:
            runs[event.opportunity_id] = (event.seq, event.seq)
        elif event.seq != run[1] + 1:
            raise EventLogError(
                f"item {position} of the batch has seq {event.seq} for opportunity "
                f"{event.opportunity_id!r}, after seq {run[1]}: an opportunity's events must "
                "run on without gaps or repeats"
            )
        else:
            runs[event.opportunity_id] = (run[0], event.seq)
    if expected_seq is not None:
        if isinstance(expected_seq, bool) or not isinstance(expected_seq, int) or expected_seq < 0:
            raise InvalidCommandError(
                f"expected_seq must be a non-negative integer or None, got {expected_seq!r}"
            )
        if len(runs) > 1:
            raise InvalidCommandError(
                f"expected_seq={expected_seq} needs a batch of one opportunity, got "
                f"{len(runs)} ({', '.join(map(repr, sorted(runs)[:3]))}, ...); append each "
                "opportunity separately or drop expected_seq"
            )
        for opportunity_id, (first, _) in runs.items():
            if first != expected_seq + 1:
                raise EventLogError(
                    f"the batch for {opportunity_id!r} starts at seq {first}, but "
                    f"expected_seq={expected_seq} means it must start at {expected_seq + 1}"
                )
    return runs


class EventStore(abc.ABC):
    """An append-only log of events keyed by ``(opportunity_id, seq)``; the storage protocol.

    Backends implement the abstract methods; :meth:`save`, :meth:`load_opportunity` and the
    context manager come with the base class. A backend is also a context manager that closes
    itself on exit; every method of a closed store raises :class:`StoreClosedError`.
    """

    # -- writing -------------------------------------------------------------------------

    @abc.abstractmethod
    def append(
        self,
        events: Sequence[Event],
        *,
        expected_seq: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Append a batch of events, all or nothing.

        The batch may span several opportunities. For each one, its events in the batch must
        run on without gaps and the first must continue its stored log (``first seq == last_seq
        + 1``; ``1`` for a new opportunity). An empty batch does nothing.

        Args:
            events: the events to append, in order.
            expected_seq: for a batch of one opportunity, the ``seq`` of the last event the
                writer saw (``0`` for a new opportunity): an optimistic-concurrency check.
            progress: called with the number of events written so far, for progress bars;
                the batch still commits all at once.

        Raises:
            ConcurrencyError: an opportunity's stored log does not end where the batch (or
                ``expected_seq``) says: another writer appended first; reload and retry.
            EventLogError: the batch itself is malformed (not events, gaps or repeats).
            InvalidCommandError: ``expected_seq`` is invalid or given for several opportunities.
            StoreError: the store cannot be written.
        """

    # -- reading -------------------------------------------------------------------------

    @abc.abstractmethod
    def load(self, opportunity_id: str) -> tuple[Event, ...]:
        """Return the events of one opportunity in ``seq`` order; ``()`` if it has none."""

    @abc.abstractmethod
    def last_seq(self, opportunity_id: str) -> int:
        """Return the ``seq`` of the opportunity's last event; ``0`` if it has none."""

    @abc.abstractmethod
    def opportunity_ids(self) -> Iterator[str]:
        """Yield the id of every opportunity with at least one event, in sorted order."""

    @abc.abstractmethod
    def scan(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Event]:
        """Yield every event ordered by ``(opportunity_id, seq)``, fetching ``batch_size`` at once.

        The scan reads a consistent snapshot taken when iteration starts: events appended
        meanwhile are not seen. Exhaust or ``close()`` the iterator to release the snapshot.
        """

    @abc.abstractmethod
    def scan_rows(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[EventRow]:
        """Yield the :data:`SCAN_COLUMNS` of every event, like :meth:`scan`, without Events.

        Cheaper than :meth:`scan` for analytics: no gate reports or details are decoded.
        """

    def last_events(self, *, light: bool = False) -> Iterator[Event]:
        """Yield the last event of every stored opportunity, in opportunity-id order.

        What a migration reads (the stage, version and values each deal is in now); this
        default reads one :meth:`scan`, a backend may answer from its index. With
        ``light=True`` a backend may leave out gate reports and details (``None``).
        """
        del light  # events from a scan are whole already
        previous: Event | None = None
        for event in self.scan():
            if previous is not None and previous.opportunity_id != event.opportunity_id:
                yield previous
            previous = event
        if previous is not None:
            yield previous

    @abc.abstractmethod
    def count(self) -> int:
        """Return the number of stored events."""

    def to_frame(
        self,
        *,
        backend: str = "polars",
        columns: Sequence[str] | None = None,
        categorical: bool = False,
        segments: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        phases: Phases | None = None,
    ) -> Any:
        """The whole log as one frame for analytics, in ``(opportunity_id, seq)`` order.

        The columns (:data:`~stagegate.store.FRAME_COLUMNS` lists every one) are by default the
        canonical stage-history table ``opportunity_id, at, seq, stage, amount, close_date,
        reason`` plus the event's ``kind``, ``from_stage`` and ``move``; then, when the log
        records owners or segment attributes, ``owner`` and one column per attribute, each row
        carrying the value in force at its instant. ``at`` is an aware UTC instant (microseconds),
        ``amount`` a float, ``close_date`` a date. No :class:`~stagegate.events.Event` or row
        object is built per event where the backend keeps a columnar projection
        (:class:`~stagegate.store.SQLiteStore`); other backends pack their scan first.

        Args:
            backend: ``"polars"`` (the default: a ``polars.DataFrame``), ``"pandas"`` (a
                ``pandas.DataFrame`` with nullable pyarrow-backed columns) or ``"pyarrow"``.
            columns: which columns to give, from :data:`~stagegate.store.FRAME_COLUMNS`
                (``process`` and ``process_version`` are there too); segment columns follow.
            categorical: give the text columns of few values (all but ``opportunity_id``,
                the segment columns included) as categoricals: four bytes a row instead of
                the text, for very large logs.
            segments: add ``owner`` and the segment columns when the log records any (the
                default); ``False`` leaves them out, and the work of deriving them.
            batch_size: events fetched at a time where the backend scans.
            phases: receives the ``reading`` phase, counted in events.

        Raises:
            StoreError: the backend or a column is unknown, or Polars or pyarrow is not
                installed (``pip install 'stagegate[frames]' polars``).
        """
        from stagegate.store._columnar import ChunkWriter, frame_of  # noqa: PLC0415

        batch_size_of(batch_size)
        tick = phase_of(phases, "reading", self.count())
        chunks: list[bytes] = []
        writer = ChunkWriter(lambda _, chunk: chunks.append(chunk))
        done = 0
        scan = self.scan(batch_size=batch_size)
        while batch := [_stored_row(event) for event in itertools.islice(scan, batch_size)]:
            writer.add(batch)
            done += len(batch)
            tick(done)
        writer.close()
        return frame_of(
            chunks, backend=backend, columns=columns, segments=segments, categorical=categorical
        )

    # -- process definitions -------------------------------------------------------------

    @abc.abstractmethod
    def _store_definition(self, name: str, version: str, definition: str) -> str | None:
        """Store a definition unless one exists for (name, version); return the stored one."""

    @abc.abstractmethod
    def _definition(self, name: str, version: str) -> str | None:
        """The stored definition text of (name, version), if any."""

    @abc.abstractmethod
    def processes(self) -> list[tuple[str, str]]:
        """The (name, version) of every stored process definition, sorted."""

    def save_process(self, process: Process) -> None:
        """Keep the definition ``process`` was recorded under, so the store describes itself.

        Saving the same definition again is harmless.

        Raises:
            StoreError: a different definition with the same name and version is stored
                (change the version when the definition changes).
            InvalidCommandError: the process uses Python callables and cannot be stored.
            DefinitionError: the definition would not load back (a process built in Python
                may hold what a definition file may not: a non-ASCII stage id, over 100
                stages); nothing was stored.
        """
        text = stored_definition(process)
        stored = self._store_definition(process.name, process.version, text)
        if stored is not None and stored != text:
            raise StoreError(
                f"a different definition of process {process.name!r} version "
                f"{process.version!r} is already stored; give the changed definition a new "
                "version"
            )

    def load_process(self, name: str, version: str) -> Process:
        """Return a stored process definition.

        Raises:
            UnknownProcessError: no definition of (name, version) is stored.
        """
        from stagegate.definition import process_from_json  # noqa: PLC0415

        text = self._definition(name, version)
        if text is None:
            raise UnknownProcessError(name, version, self.processes())
        return process_from_json(text)

    def imports(self) -> tuple[ImportRecord, ...]:
        """What each ``stagegate import`` into this store wrote and found, oldest first.

        A store that keeps no import records (:class:`~stagegate.store.MemoryStore`, or a file
        written before stagegate kept them) answers ``()``.
        """
        return ()

    # -- verifying -----------------------------------------------------------------------

    def verify(
        self,
        process: Process | None = None,
        *,
        require_digests: bool = False,
        allow_imported: bool = True,
    ) -> tuple[LogVerdict, ...]:
        """Verify every stored opportunity's log: its digest chain, and its process's rules.

        Each log's digest chain is checked first (an event changed, removed or reordered in
        storage breaks it at that event), then the log is replayed under ``process`` (see
        :func:`stagegate.verify`); without ``process``, under the definition the store holds
        for the log's process name and version, or, when it holds none, the chain alone
        (:attr:`LogVerdict.checked_process` says which). A stored event that cannot even be
        read is reported with the rule ``malformed``.

        Args:
            process: the process every log was recorded in, or ``None`` (see above); a log
                migrated to it from earlier versions is replayed under the definitions of
                those versions the store holds (a log that ends in another version breaks
                ``version_mismatch``).
            require_digests: refuse a log with an unsealed event (``digest_missing``).
            allow_imported: ``False`` refuses history imported from another system, as
                :func:`stagegate.verify` does.

        Returns:
            One verdict per opportunity, in opportunity-id order.
        """
        definitions: dict[tuple[str, str], Process | None] = {}

        loaded: dict[tuple[str, str], Process] = {}  # each stored version loaded once

        def earlier(log: Sequence[Event]) -> list[Process]:
            found = self._versions_of(log, loaded)
            return found if process is None else [p for p in found if p.name == process.name]

        def process_of(event: Event) -> Process | None:
            if process is not None:
                return process
            key = (event.process, event.process_version)
            if key not in definitions:
                try:
                    definitions[key] = self.load_process(*key)
                except UnknownProcessError:
                    definitions[key] = None
            return definitions[key]

        verdicts: list[LogVerdict] = []
        for oid, log in self._stored_logs():
            if isinstance(log, EventLogError):
                verdicts.append(LogVerdict(oid, None, log, checked_process=False))
            else:
                verdicts.append(
                    verify_log(
                        log,
                        process_of(log[-1]),  # the version in force at the end
                        require_digests=require_digests,
                        allow_imported=allow_imported,
                        versions=earlier(log),
                    )
                )
        return tuple(verdicts)

    def _stored_logs(self) -> Iterator[tuple[str, list[Event] | EventLogError]]:
        """Each opportunity's stored log (or why it cannot be read), in id order."""
        log: list[Event] = []
        for event in self.scan():
            if log and log[0].opportunity_id != event.opportunity_id:
                yield log[0].opportunity_id, log
                log = []
            log.append(event)
        if log:
            yield log[0].opportunity_id, log

    # -- lifecycle -----------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources; closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- opportunities -------------------------------------------------------------------

    def save(self, opportunity: Opportunity, *, expected_seq: int | None = None) -> int:
        """Append the events of ``opportunity`` that the store does not hold yet.

        With ``expected_seq`` (the opportunity's ``version`` when it was loaded; ``0`` for a new
        one) the events after it are appended, and the append fails if anyone else wrote since.
        Without it, the stored log must be a prefix of the opportunity's log (checked event by
        event), so saving the same opportunity twice appends nothing the second time.

        Returns:
            The number of events appended.

        Raises:
            ConcurrencyError: the store holds events that the opportunity does not (another
                writer saved first); reload with :meth:`load_opportunity` and retry.
        """
        events = opportunity.events
        if expected_seq is None:
            stored = self.load(opportunity.id)
            if len(stored) > len(events) or stored != events[: len(stored)]:
                first_other = next(
                    (e.seq for e, o in zip(stored, events, strict=False) if e != o), len(events) + 1
                )
                raise ConcurrencyError(opportunity.id, first_other - 1, len(stored))
            expected_seq = len(stored)
        new = events[expected_seq:]
        if new:
            self.append(new, expected_seq=expected_seq)
        return len(new)

    def load_opportunity(self, process: Process, opportunity_id: str) -> Opportunity:
        """Load an opportunity by replaying its stored events under ``process``.

        Raises:
            UnknownOpportunityError: the store holds no event of ``opportunity_id``.
            EventLogError: the stored log does not replay under ``process``.
        """
        from stagegate.opportunity import Opportunity  # noqa: PLC0415 - the domain loads lazily

        events = self.load(opportunity_id)
        if not events:
            raise UnknownOpportunityError(opportunity_id)
        return Opportunity.replay(process, events, versions=self._versions_of(events))

    def _versions_of(
        self, events: Sequence[Event], loaded: dict[tuple[str, str], Process] | None = None
    ) -> list[Process]:
        """The stored definitions of the versions a log passed through, before its last one.

        ``loaded`` caches the definitions across calls, by (name, version).
        """
        last = (events[-1].process, events[-1].process_version)
        keys = {(e.process, e.process_version) for e in events} - {last}
        if not keys:  # every event in the last version (not only the first: a deal migrated
            return []  # back to the version it started in passed through another)
        cache: dict[tuple[str, str], Process] = {} if loaded is None else loaded
        if not keys <= cache.keys():
            stored = set(self.processes())  # replay names a version that is not stored
            for key in sorted((keys & stored) - cache.keys()):
                cache[key] = self.load_process(*key)
        return [cache[key] for key in sorted(keys & cache.keys())]


def unencodable(text: object) -> bool:
    r"""Whether ``text`` holds what UTF-8 cannot encode (a lone ``"\ud800"``): no store holds it.

    >>> unencodable("a\ud800"), unencodable("통화"), unencodable(5)
    (True, False, False)
    """
    return (
        isinstance(text, str)
        and not text.isascii()
        and (text_problem(text, single_line=False) is not None)
    )


def stored_definition(process: Process) -> str:
    """The text a store keeps of ``process``, once it is known to load back.

    A definition :meth:`EventStore.load_process` would refuse makes every later read of the
    store fail.

    Raises:
        InvalidCommandError: the process uses Python callables and cannot be stored.
        DefinitionError: the text does not load as a definition; nothing is stored.
    """
    import warnings  # noqa: PLC0415 - only when a process is stored

    from stagegate.definition import process_from_json, process_to_json  # noqa: PLC0415
    from stagegate.errors import DefinitionError  # noqa: PLC0415
    from stagegate.process import DefinitionWarning  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DefinitionWarning)  # warned when it was built
            text = process_to_json(process, indent=None)
            process_from_json(text)
    except DefinitionError as error:
        raise DefinitionError(
            error.problems,
            source=f"process {process.name!r} version {process.version!r} (not stored: the "
            "store could not load it back)",
        ) from None
    return text


def _stored_row(e: Event) -> tuple[Any, ...]:
    """An event's values in the layout of the SQLite store's ``events`` table (no digest)."""
    return (
        e.opportunity_id,
        e.seq,
        e.kind,
        epoch_us(e.at),
        e.stage,
        e.from_stage,
        e.move,
        e.amount,
        e.close_date,
        e.actor,
        e.reason,
        e.process,
        e.process_version,
        e.subject,
        e.details,
    )


def canonical_batch(events: Sequence[Event]) -> list[bytes]:
    """The content each event's digest covers, encoded once per event.

    Raises:
        EventLogError: an event holds a value that JSON in UTF-8 cannot write (a lone surrogate
            in its text, a value that is not JSON).
    """
    from stagegate.errors import InvalidCommandError  # noqa: PLC0415 - keep the header short

    try:
        return [canonical_bytes(event) for event in events]
    except InvalidCommandError as error:
        raise EventLogError(
            f"cannot store the batch: {error}; events hold text and JSON values"
        ) from None


def digest_refused(event: Event) -> EventLogError:
    """The error for an appended event whose own digest is not its place in the stored chain."""
    return EventLogError(
        f"event {event.seq} of {event.opportunity_id!r} carries digest "
        f"{(event.digest or '')[:12]}..., which does not chain from the stored log: it was "
        "sealed after other events, or changed since; nothing was written: append it without "
        "its digest (the store seals it) or after the events it was sealed after "
        "[rule: digest_mismatch]",
        seq=event.seq,
        rule="digest_mismatch",
        opportunity_id=event.opportunity_id,
    )


@attrs.frozen(slots=True)
class LogVerdict:
    """The result of verifying one stored opportunity's log (see :meth:`EventStore.verify`).

    Attributes:
        opportunity_id: the opportunity.
        verification: what was verified, when the log holds up; ``None`` when it breaks.
        error: the first rule the log breaks (its ``seq`` and ``rule``), or ``None``.
        checked_process: whether the log was also replayed under its process (``False``: only
            its digest chain was checked, for want of a definition).
    """

    opportunity_id: str
    verification: Verification | None = None
    error: EventLogError | None = attrs.field(default=None, eq=False)
    checked_process: bool = True

    @property
    def ok(self) -> bool:
        """Whether the log verified."""
        return self.error is None

    @property
    def seq(self) -> int | None:
        """The ``seq`` of the first broken event, or ``None``."""
        return None if self.error is None else self.error.seq

    @property
    def rule(self) -> str | None:
        """The rule the log breaks, or ``None``."""
        return None if self.error is None else self.error.rule

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-able dict."""
        if self.verification is None:
            return {
                "opportunity_id": self.opportunity_id,
                "ok": False,
                "seq": self.seq,
                "rule": self.rule,
                "error": str(self.error),
                "checked_process": self.checked_process,
            }
        return {
            "ok": True,
            **self.verification.to_dict(),
            "checked_process": self.checked_process,
        }


def logs_of_rows(
    rows: Iterable[tuple[Any, ...]], decode: Callable[[tuple[Any, ...]], Event]
) -> Iterator[tuple[str, list[Event] | EventLogError]]:
    """Each log of stored rows ordered by ``(opportunity_id, seq)``, decoded by ``decode``.

    A row that cannot be decoded spoils only its own opportunity's log (the error stands in
    for it), so :meth:`EventStore.verify` reports it and goes on.
    """
    oid: Any = None
    log: list[Event] | EventLogError = []
    for row in rows:
        if row[0] != oid:
            if oid is not None:
                yield str(oid), log
            oid, log = row[0], []
        if isinstance(log, list):
            try:
                log.append(decode(row))
            except EventLogError as error:
                log = error
    if oid is not None:
        yield str(oid), log


def verify_log(
    log: Sequence[Event],
    process: Process | None,
    *,
    require_digests: bool = False,
    allow_imported: bool = True,
    versions: Iterable[Process] = (),
) -> LogVerdict:
    """Verify one stored log: its digest chain first, then (given a process) every replay rule."""
    oid = log[0].opportunity_id
    try:
        sealed, head = check_chain(log, require_digests=require_digests)
        if process is None:
            verification = Verification(oid, len(log), log[-1].stage, sealed, head)
        else:
            verification = verify(
                process,
                log,
                require_digests=require_digests,
                allow_imported=allow_imported,
                versions=versions,
            )
    except EventLogError as error:
        return LogVerdict(oid, None, error, process is not None)
    return LogVerdict(oid, verification, None, process is not None)


def conflicts(
    runs: dict[str, tuple[int, int]], last_seqs: Iterable[tuple[str, int]]
) -> ConcurrencyError | None:
    """Return the error for the first opportunity whose log does not end where its run starts."""
    for opportunity_id, last in last_seqs:
        first = runs[opportunity_id][0]
        if first != last + 1:
            return ConcurrencyError(opportunity_id, first - 1, last)
    return None


def batch_size_of(value: Any) -> int:
    """Validate a scan ``batch_size``.

    Raises:
        InvalidCommandError: it is not a positive integer.
    """
    from stagegate.errors import InvalidCommandError  # noqa: PLC0415

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidCommandError(f"batch_size must be a positive integer, got {value!r}")
    return value
