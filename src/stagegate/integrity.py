"""Verifying a log: every event checked against its process, and a digest chain that seals it.

:func:`verify` replays a log under its process (every rule of
:meth:`~stagegate.opportunity.Opportunity.replay`) and returns a :class:`Verification`, or raises
an :class:`~stagegate.errors.EventLogError` whose ``seq`` names the first bad event and whose
``rule`` names the rule it breaks.

A log is *sealed* by :func:`seal`: each event's :attr:`~stagegate.events.Event.digest` is the
SHA-256 of its canonical content and of the digest of the event before it, so that changing,
removing or reordering any stored event changes every digest from there on. Replay checks the
digests of the events that carry one; older logs without digests still load (pass
``require_digests=True`` to :func:`verify` to refuse them).

>>> from datetime import datetime, timedelta, timezone
>>> import attrs
>>> from stagegate import Opportunity, b2b
>>> t0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "acme-1", at=t0, actor="ana", amount=12_000)
>>> _ = deal.change_amount(15_000, at=t0 + timedelta(days=1), actor="ana")
>>> log = seal(deal.events)
>>> verify(b2b(), log, require_digests=True).sealed
2
>>> tampered = [log[0], attrs.evolve(log[1], amount=log[1].amount * 2)]
>>> try:
...     verify(b2b(), tampered)
... except EventLogError as error:
...     print(error.seq, error.rule)
2 digest_mismatch
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs

from stagegate.errors import EventLogError, InvalidCommandError, cut
from stagegate.events import Event, MoveKind, recorded_event

if TYPE_CHECKING:
    from stagegate.process import Process

__all__ = [
    "DIGEST_SCHEME",
    "Verification",
    "canonical_bytes",
    "chain_digest",
    "chain_digests",
    "check_chain",
    "event_digest",
    "seal",
    "verify",
]

DIGEST_SCHEME = "stagegate-digest-1"
"""The name of the digest construction, hashed into every digest (a new scheme, a new name)."""
_PREFIX = DIGEST_SCHEME.encode("ascii") + b"\n"
_GENESIS = b"-"


def canonical_bytes(event: Event) -> bytes:
    """The canonical content of an event, which its digest covers.

    Its :meth:`~stagegate.events.Event.to_dict` without the digest, as compact JSON with sorted
    keys, in UTF-8.

    Raises:
        InvalidCommandError: the event holds a value JSON cannot write.
    """
    data = event.to_dict()
    data.pop("digest", None)
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    except (ValueError, TypeError) as exc:
        raise InvalidCommandError(
            f"event {event.seq} of {event.opportunity_id!r} cannot be written as JSON "
            f"({cut(str(exc))}); it cannot be sealed"
        ) from None


def event_digest(event: Event, previous: str | None) -> str:
    """The digest of ``event`` chained to ``previous`` (the digest of the event before it).

    SHA-256 over the scheme name, the previous digest (``-`` for the first event) and the
    event's canonical content, as 64 lowercase hexadecimal digits.
    """
    return chain_digest(canonical_bytes(event), previous)


def chain_digest(canonical: bytes, previous: str | None) -> str:
    """The digest of an event whose :func:`canonical_bytes` are ``canonical``, after ``previous``.

    The same as :func:`event_digest` for a stored event's content encoded once: stores encode
    a batch before they take the write lock and chain it inside the transaction.
    """
    link = _GENESIS if previous is None else previous.encode("ascii", "replace")
    return hashlib.sha256(_PREFIX + link + b"\n" + canonical).hexdigest()


def chain_digests(
    opportunity_ids: Sequence[str], contents: Sequence[bytes], links: dict[str, str | None]
) -> list[str]:
    """:func:`chain_digest` of each content after the digest before it in its opportunity.

    ``links`` holds each opportunity's last digest before the batch (absent or ``None``: the
    log starts here) and is updated to the last digest of each. One loop for a whole batch:
    what a store runs inside its write transaction.
    """
    sha256 = hashlib.sha256
    heads = {
        oid: _GENESIS if link is None else link.encode("ascii", "replace")
        for oid, link in links.items()
    }
    get = heads.get
    digests: list[str] = []
    add = digests.append
    for oid, content in zip(opportunity_ids, contents, strict=True):
        digest = sha256(_PREFIX + get(oid, _GENESIS) + b"\n" + content).hexdigest()
        heads[oid] = digest.encode("ascii")
        add(digest)
    for oid in dict.fromkeys(opportunity_ids):
        links[oid] = heads[oid].decode("ascii")
    return digests


def check_chain(
    events: Iterable[Event], *, require_digests: bool = False
) -> tuple[int, str | None]:
    """Check one opportunity's digest chain on its own, without its process.

    An event that was changed, removed from the middle, moved or swapped breaks the chain at
    the first event whose digest no longer follows from its content and the one before it.

    Returns:
        How many events (from the first on) carry a digest that chains, and the last one's
        digest (``None`` when none is sealed).

    Raises:
        EventLogError: ``digest_mismatch`` (an event or one before it was changed, removed or
            reordered), ``digest_gap`` (a digest after an event without one) or, with
            ``require_digests``, ``digest_missing``; ``seq`` names the event.
    """
    previous: str | None = None
    sealed = 0
    chained = True
    for event in events:
        where = f"event {event.seq} of {event.opportunity_id!r}"
        if event.digest is None:
            if require_digests:
                raise EventLogError(
                    f"{where} carries no digest; the log must be sealed from its first event "
                    "to its last [rule: digest_missing]",
                    seq=event.seq,
                    rule="digest_missing",
                    opportunity_id=event.opportunity_id,
                )
            chained = False
            continue
        if not chained:
            raise EventLogError(
                f"{where} carries a digest after an event without one: a stored digest was "
                "removed; restore the log from a trusted copy [rule: digest_gap]",
                seq=event.seq,
                rule="digest_gap",
                opportunity_id=event.opportunity_id,
            )
        expected = event_digest(event, previous)
        if event.digest != expected:
            raise EventLogError(
                f"{where} has digest {event.digest[:12]}..., but its content and the digest "
                f"before it give {expected[:12]}...: the event, or one before it, was changed, "
                "removed or reordered after it was sealed; restore the log from a trusted copy "
                "[rule: digest_mismatch]",
                seq=event.seq,
                rule="digest_mismatch",
                opportunity_id=event.opportunity_id,
            )
        previous = event.digest
        sealed += 1
    return sealed, previous


def seal(events: Iterable[Event]) -> tuple[Event, ...]:
    """Return the events with their digest chain filled in (equal events, now sealed).

    Events that already carry the right digest are kept as they are; the rest are copied with
    it. Seal a log once it is written, or again after appending to it.

    Raises:
        InvalidCommandError: an item is not an :class:`~stagegate.events.Event`.
    """
    sealed: list[Event] = []
    previous: str | None = None
    for item in events:
        if not isinstance(item, Event):
            raise InvalidCommandError(f"seal() takes Event objects, got {cut(repr(item))}")
        digest = event_digest(item, previous)
        sealed.append(item if item.digest == digest else _with_digest(item, digest))
        previous = digest
    return tuple(sealed)


def _with_digest(event: Event, digest: str) -> Event:
    """A copy of ``event`` with ``digest`` (the fields are already checked: no conversion)."""
    return recorded_event(
        event.opportunity_id,
        event.seq,
        event.kind,
        event.at,
        event.actor,
        event.stage,
        event.process,
        event.process_version,
        event.from_stage,
        event.move,
        event.reason,
        event.gate,
        event.amount,
        event.close_date,
        event.subject,
        event.details,
        digest,
    )


@attrs.frozen(slots=True)
class Verification:
    """The result of verifying one opportunity's log.

    Attributes:
        opportunity_id: the opportunity the log belongs to.
        events: how many events were verified.
        stage: the stage the log ends in.
        sealed: how many events (from the first on) carry a digest that chains.
        head: the digest of the last sealed event, or ``None``; keep it elsewhere to detect a
            log whose sealed tail was cut off.
        imported: whether the log holds history imported from another system (an opening in
            a stage other than the first, or an :attr:`~stagegate.events.MoveKind.IMPORTED`
            stage change), which replay takes as recorded, without checking gates or policies.
    """

    opportunity_id: str
    events: int
    stage: str
    sealed: int
    head: str | None
    imported: bool = False

    @property
    def fully_sealed(self) -> bool:
        """Whether every event carries a digest."""
        return self.sealed == self.events

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-able dict."""
        return {
            "opportunity_id": self.opportunity_id,
            "events": self.events,
            "stage": self.stage,
            "sealed": self.sealed,
            "fully_sealed": self.fully_sealed,
            "head": self.head,
            "imported": self.imported,
        }


def verify(
    process: Process,
    events: Iterable[Event],
    *,
    require_digests: bool = False,
    allow_imported: bool = True,
    versions: Iterable[Process] = (),
) -> Verification:
    """Verify one opportunity's log against ``process``: every rule of replay, and the digests.

    Args:
        process: the process the log was recorded in.
        events: the log, oldest first.
        require_digests: refuse a log in which any event lacks a digest.
        allow_imported: accept history imported from another system (see
            :attr:`Verification.imported`); ``False`` refuses it, so that every stage change
            must have been decided by stagegate's own gates and policies.
        versions: the earlier versions of ``process`` a migrated log passed through.

    Raises:
        EventLogError: the log breaks a rule; ``seq`` and ``rule`` say where and which.
        InvalidCommandError: ``process`` is not a Process.
    """
    from stagegate.opportunity import Opportunity  # noqa: PLC0415 - the domain builds on this

    log = list(events)
    deal = Opportunity.replay(process, log, versions=versions)
    sealed = 0
    for event in log:
        if event.digest is None:
            break
        sealed += 1
    if require_digests and sealed < len(log):
        raise EventLogError(
            f"event {sealed + 1} of {deal.id!r} carries no digest; the log must be sealed from "
            "its first event to its last: seal it with stagegate.seal() when writing it "
            "[rule: digest_missing]",
            seq=sealed + 1,
            rule="digest_missing",
            opportunity_id=deal.id,
        )
    head = log[sealed - 1].digest if sealed else None
    start = next((v for v in versions if v.version == log[0].process_version), process)
    imported = _first_imported(start, log)
    if imported is not None and not allow_imported:
        raise EventLogError(
            f"event {imported} of {deal.id!r} is history imported from another system, which "
            "was never checked against the gates; verify it with allow_imported=True to accept "
            "it [rule: imported_history]",
            seq=imported,
            rule="imported_history",
            opportunity_id=deal.id,
        )
    return Verification(deal.id, len(log), deal.stage, sealed, head, imported is not None)


def _first_imported(process: Process, log: list[Event]) -> int | None:
    """The seq of the first imported event of a replayed log, or ``None``."""
    if log[0].stage != process.initial.id:
        return 1
    for event in log:
        if event.move is MoveKind.IMPORTED:
            return event.seq
    return None
