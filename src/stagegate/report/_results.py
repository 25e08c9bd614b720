"""Read analytics results from either path: records in Python, or frames never listed whole.

Every analysis of :mod:`stagegate.analytics` answers with a list of records on the pure-Python
path and with a Polars (or other narwhals-readable) frame on large logs. The report's sections
read both through these few functions, so that no section branches on the path itself and a
frame is only ever read in the rows a section shows.

>>> from types import SimpleNamespace as Row
>>> [r.stage for r in records([Row(stage="won")])]
['won']
>>> rows, total = top_rows([Row(n=1), Row(n=None), Row(n=3)], [("n", True)], 2)
>>> [r.n for r in rows], total
([3, 1], 3)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from stagegate.process import StageKind

__all__ = ["Current", "narwhals_frame", "records", "top_rows"]


def records(result: Any) -> list[Any]:
    """Records from either analytics path: a list of records, or a Polars frame of them."""
    if hasattr(result, "to_dicts"):
        return [SimpleNamespace(**row) for row in result.to_dicts()]
    return list(result)


def narwhals_frame(result: Any) -> Any:
    """An eager narwhals frame of an analytics result in a frame backend (``None``: records)."""
    if isinstance(result, (list, tuple)):
        return None
    import narwhals as nw  # noqa: PLC0415

    frame = nw.from_native(result)
    return frame.collect() if isinstance(frame, nw.LazyFrame) else frame


def top_rows(
    result: Any, order: Sequence[tuple[str, bool]], top: int, *, flagged_open: bool = False
) -> tuple[list[Any], int]:
    """The first ``top`` rows in ``order``, and how many rows there are in all.

    ``order`` names the sort columns, ``True`` for descending (nulls then count as 0);
    ``flagged_open`` keeps only the flagged deals still open. A frame is never listed whole.
    """
    frame = narwhals_frame(result)
    if frame is None:
        rows = [r for r in result if not flagged_open or (r.flagged and r.outcome == "open")]

        def key(row: Any) -> tuple[Any, ...]:
            return tuple(
                -(getattr(row, name) or 0.0) if down else getattr(row, name) for name, down in order
            )

        return sorted(rows, key=key)[:top], len(rows)
    import narwhals as nw  # noqa: PLC0415

    if flagged_open:
        frame = frame.filter(nw.col("flagged") & (nw.col("outcome") == "open"))
    ordered = frame.with_columns(
        **{f"_{name}": nw.col(name).fill_null(0) for name, down in order if down}
    ).sort(
        [f"_{name}" if down else name for name, down in order],
        descending=[down for _, down in order],
    )
    rows = ordered.head(top).select(frame.columns).rows(named=True)
    return [SimpleNamespace(**row) for row in rows], len(frame)


class Current:
    """The snapshot at ``as_of``, as records (pure-Python path) or as a frame (never listed)."""

    def __init__(self, result: Any) -> None:
        self.frame = narwhals_frame(result)
        self.records = None if self.frame is not None else list(result)
        if self.frame is None:
            self.kinds = Counter(s.kind for s in self.records or ())
            self.total = len(self.records or ())
        else:
            import narwhals as nw  # noqa: PLC0415

            counted = self.frame.group_by("kind").agg(nw.len().alias("n")).rows()
            self.kinds = Counter({str(kind): int(n) for kind, n in counted})
            self.total = len(self.frame)

    def of(self, ids: Sequence[str]) -> list[Any]:
        """The snapshot rows of these opportunities."""
        if self.frame is None:
            wanted = set(ids)
            return [s for s in self.records or () if s.opportunity_id in wanted]
        import narwhals as nw  # noqa: PLC0415

        rows = self.frame.filter(nw.col("opportunity_id").is_in(list(ids)))
        return [SimpleNamespace(**row) for row in rows.rows(named=True)]

    def open_counts(self, today: Any) -> tuple[int, int, int]:
        """Open deals that are overdue, without an amount, and without a close date."""
        if self.frame is None:
            open_deals = [s for s in self.records or () if s.kind == StageKind.OPEN.value]
            return (
                sum(1 for s in open_deals if s.close_date is not None and s.close_date < today),
                sum(1 for s in open_deals if s.amount is None),
                sum(1 for s in open_deals if s.close_date is None),
            )
        import narwhals as nw  # noqa: PLC0415

        open_deals = self.frame.filter(nw.col("kind") == StageKind.OPEN.value)
        overdue, no_amount, no_date = open_deals.select(
            (nw.col("close_date") < nw.lit(today)).sum().alias("overdue"),
            nw.col("amount").null_count().alias("no_amount"),
            nw.col("close_date").null_count().alias("no_date"),
        ).row(0)
        return int(overdue or 0), int(no_amount), int(no_date)
