"""Per-opportunity numbers from a log: time in stage, stage durations, age, cycle, slippage.

Stage durations add up: to the age of an open deal, and to the cycle time of a closed one.
Time spent in a closing stage counts once the deal is reopened and leaves it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from types import MappingProxyType

import attrs

from stagegate._time import to_utc
from stagegate.errors import EventLogError
from stagegate.events import Event, EventKind
from stagegate.process import Process

__all__ = ["OpportunityMetrics", "measure"]

_ZERO = timedelta(0)


@attrs.frozen(slots=True)
class OpportunityMetrics:
    """The per-opportunity numbers as of an instant.

    Attributes:
        as_of: the instant the numbers are for.
        stage: the stage in force at ``as_of``.
        time_in_stage: time since entering that stage.
        stage_durations: total time in each stage visited (re-entries summed), in process order;
            the current open stage counts up to ``as_of``; the closing stage a deal is in at
            ``as_of`` counts nothing, one it was reopened from counts the time it spent there.
        age: time from opening to ``as_of``.
        cycle_time: time from opening to closing, if closed by ``as_of``.
        close_date_pushes: how many times the expected close date moved later.
        days_pushed: total days the expected close date moved later.
        first_close_date: the first expected close date recorded.
        close_date: the expected close date in force.
    """

    as_of: datetime
    stage: str
    time_in_stage: timedelta
    stage_durations: Mapping[str, timedelta] = attrs.field(hash=False)
    age: timedelta
    cycle_time: timedelta | None
    close_date_pushes: int
    days_pushed: int
    first_close_date: date | None
    close_date: date | None


def measure(process: Process, events: Sequence[Event], *, as_of: datetime) -> OpportunityMetrics:
    """The numbers of one opportunity's log as of ``as_of`` (later events are ignored).

    >>> from datetime import datetime, timedelta, timezone
    >>> from stagegate import Opportunity, b2b
    >>> t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    >>> deal = Opportunity.open(b2b(), "d", at=t0, actor="ana")
    >>> numbers = measure(b2b(), deal.events, as_of=t0 + timedelta(days=3))
    >>> numbers.stage, numbers.age.days, dict(numbers.stage_durations)
    ('lead_generation', 3, {'lead_generation': datetime.timedelta(days=3)})

    Raises:
        InvalidTimestampError: ``as_of`` is naive.
        EventLogError: the log is empty, or ``as_of`` is before the opportunity was opened.
    """
    if not events:
        raise EventLogError("an empty log has no numbers: an opportunity starts with 'opened'")
    instant = to_utc(as_of, what="as_of")
    opened = events[0].at
    if instant < opened:
        raise EventLogError(
            f"as_of={instant.isoformat()} is before opportunity "
            f"{events[0].opportunity_id!r} was opened ({opened.isoformat()})"
        )
    durations: dict[str, timedelta] = {}
    stage, entered = events[0].stage, opened
    closed_at: datetime | None = None
    pushes, days = 0, 0
    first_close = current_close = None
    kinds = process.kinds()
    for event in events:
        if event.at > instant:
            break
        if event.close_date is not None:
            if first_close is None:
                first_close = event.close_date
            if current_close is not None and event.close_date > current_close:
                pushes += 1
                days += (event.close_date - current_close).days
            current_close = event.close_date
        if event.kind is EventKind.STAGE_CHANGED and event.stage != stage:
            # time in a closing stage counts once the deal leaves it again (reopened), so
            # the durations always add up to the age (open) or the cycle time (closed); a
            # move between two stages since merged into one is no entry (see map_history)
            durations[stage] = durations.get(stage, _ZERO) + (event.at - entered)
            stage, entered = event.stage, event.at
            closed_at = event.at if kinds[stage] != "open" else None
    if closed_at is None:
        durations[stage] = durations.get(stage, _ZERO) + (instant - entered)
    order = process.index
    return OpportunityMetrics(
        as_of=instant,
        stage=stage,
        time_in_stage=instant - entered,
        stage_durations=MappingProxyType(
            {key: durations[key] for key in sorted(durations, key=order)}
        ),
        age=instant - opened,
        cycle_time=None if closed_at is None else closed_at - opened,
        close_date_pushes=pushes,
        days_pushed=days,
        first_close_date=first_close,
        close_date=current_close,
    )
