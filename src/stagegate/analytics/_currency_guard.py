"""The guard before adding amounts: several currencies are refused, never silently summed.

Kept apart from :mod:`stagegate.analytics.money` (which reads inputs through the segment
helpers, which read the forecast's periods) so that every adding function may import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stagegate.currency import CURRENCY, UNKNOWN, MixedCurrencyError
from stagegate.events import Event, EventKind

__all__ = ["check_one_currency"]


def check_one_currency(data: Any) -> None:
    """Refuse input whose amounts are in several currencies, before a figure adds them up.

    The guard every adding function (open pipeline, snapshot, waterfall, forecast) runs: cheap
    where no currency is stated (a frame without a ``currency`` column, events without a
    ``currency`` attribute), :func:`require_one_currency` otherwise. Prepared logs and one-shot
    iterators are the caller's to check (reading an iterator would consume it).

    Raises:
        MixedCurrencyError: the amounts are in several currencies (an unknown one counts).
    """
    from stagegate.analytics._table import is_frame  # noqa: PLC0415
    from stagegate.analytics.intervals import Prepared  # noqa: PLC0415

    if isinstance(data, Prepared):
        return
    if is_frame(data):
        import narwhals as nw  # noqa: PLC0415

        frame = nw.from_native(data)
        if CURRENCY not in frame.columns or "amount" not in frame.columns:
            return
        lazy = frame.lazy() if hasattr(frame, "lazy") else frame
        stated = lazy.filter(~nw.col("amount").is_null()).select(nw.col(CURRENCY)).unique()
        codes = {UNKNOWN if c is None else c for c in stated.collect()[CURRENCY].to_list()}
        if len(codes) > 1:
            raise MixedCurrencyError(sorted(codes))
        return
    if not isinstance(data, Sequence):
        return
    if any(_states_currency(item) for item in data):
        from stagegate.analytics.money import require_one_currency  # noqa: PLC0415 - a cycle

        require_one_currency(data)


def _states_currency(item: Any) -> bool:
    """Whether one input item (event, opportunity, row mapping) states a currency."""
    if isinstance(item, Event):
        return item.kind is EventKind.ATTRIBUTE_SET and item.subject == CURRENCY
    if isinstance(item, Mapping):
        return item.get(CURRENCY) is not None
    attributes = getattr(item, "attributes", None)
    return isinstance(attributes, Mapping) and CURRENCY in attributes
