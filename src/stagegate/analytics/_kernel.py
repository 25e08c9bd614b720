"""One kernel per backend family of the frame path, behind one small interface.

The estimators (visits, time in stage, probabilities, ...) are written once, against
:class:`Kernel`; :func:`kernel_of` picks the family of a frame, once, where the data comes in:

- :mod:`~stagegate.analytics._eager`, for in-memory frames (Polars, pandas): at most one sort,
  then plain shifts and positions; slices of whole deals worked on in threads.
- :mod:`~stagegate.analytics._lazy`, for lazy engines (DuckDB, PySpark, ...): ordered window
  functions and grouping, the work left in the engine; on DuckDB the stage visits are pushed
  down as one SQL query and computed once.

The third family, pure Python (records, no data-frame library), is each estimator's
``*_python`` function over :class:`~stagegate.analytics.intervals.StageInterval` records.

Every kernel gives the same numbers: tests/test_analytics_parity.py and
tests/test_analytics_spark.py hold them to the pure-Python path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import narwhals as nw

    from stagegate.analytics.outcomes import Outcomes

__all__ = ["Kernel", "is_eager", "kernel_of"]


class Kernel(Protocol):
    """What the estimators ask of a backend family (frames are narwhals lazy frames)."""

    def intervals(
        self, rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int
    ) -> nw.LazyFrame[Any]:
        """The visits (:data:`~stagegate.analytics.INTERVAL_COLUMNS`) of normalized rows.

        ``rows`` may still hold rows after ``as_of``: they are left out.
        """

    def keep(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """``frame`` computed once (read by several aggregations), still a lazy frame."""

    def stage_groups(
        self, frame: nw.LazyFrame[Any], codes: Mapping[str, str], outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """Add ``{name: column}``: the process position of the stage in ``column``.

        A null stays null. Raises ``UnknownStageError`` for a stage not in ``outcomes``
        (possibly only when the frame is computed).
        """

    def risk_sets(
        self, visits: nw.LazyFrame[Any], *, tag: tuple[str, int] | None = None
    ) -> nw.LazyFrame[Any]:
        """The product-limit columns (see :func:`~stagegate.analytics.survival.risk_sets`)."""

    def weighted(
        self, visits: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """The deal clock's table: every visit of a closed deal to an open stage, weighted.

        Columns ``group`` (stage position), ``won``, ``first`` (the deal's first visit to the
        stage), ``dwell_us`` and ``weight``: the deal's inverse probability of censoring
        weight (see :func:`~stagegate.analytics.survival.deal_clock_python`). The win
        probability sums it over first visits, time in stage takes weighted medians of it.
        """

    def dwell_stats(
        self, visits: nw.LazyFrame[Any], stages: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Count, censored, mean and quantiles (days) per (stage, outcome) and (stage, "all").

        ``visits``: open visits with ``group``, ``final`` (outcome code), ``censored`` and
        ``dwell_us``. The ``all`` rows carry ``km_median_days``.
        """

    def clock_medians(
        self, weighted: nw.LazyFrame[Any], outcomes: Outcomes
    ) -> dict[tuple[str, str], float]:
        """The lower weighted median dwell (days) per (open stage, won or lost)."""


def is_eager(frame: Any) -> bool:
    """Whether a narwhals frame is of the eager family (Polars, pandas).

    There, one sort and plain shifts beat ordered window functions.
    """
    impl = frame.implementation
    return bool(impl.is_polars() or impl.is_pandas_like())


def kernel_of(frame: Any) -> Kernel:
    """The kernel of a narwhals frame's backend family."""
    impl = frame.implementation
    if is_eager(frame):
        from stagegate.analytics._eager import EAGER  # noqa: PLC0415

        return EAGER
    from stagegate.analytics._lazy import DUCKDB, LAZY  # noqa: PLC0415

    return DUCKDB if impl.is_duckdb() else LAZY
