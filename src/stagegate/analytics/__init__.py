"""Pipeline analytics over transition logs and stage-history data frames.

Every function takes the events of any number of opportunities (pure Python) or a
stage-history data frame (pandas, Polars, DuckDB, PySpark; through narwhals, the ``frames``
extra), the stage kinds (a ``Process`` or a mapping), and an explicit ``as_of`` instant, and
returns records (pure Python) or tables in the caller's own backend. See ``docs/analytics.md``.
"""

from stagegate.analytics._by_deal import SegmentTotal, segment_totals
from stagegate.analytics.backtest import Backtest, BacktestScore, Reliability, backtest
from stagegate.analytics.deals import (
    DEFAULT_AGE_BANDS,
    PushAgeCount,
    PushCount,
    Slippage,
    SlippingDeal,
    StalledDeal,
    slippage,
    stalled,
)
from stagegate.analytics.durations import (
    CycleSummary,
    CycleTime,
    CycleTimes,
    StageTime,
    cycle_times,
    time_in_stage,
)
from stagegate.analytics.forecast import Forecast, ForecastPeriod, forecast, period_of
from stagegate.analytics.funnel import Funnel, FunnelStage, LossReason, funnel
from stagegate.analytics.intervals import INTERVAL_COLUMNS, StageInterval, stage_intervals
from stagegate.analytics.money import currencies_of, in_currency, require_one_currency
from stagegate.analytics.outcomes import KINDS, AnalyticsError, Outcomes
from stagegate.analytics.probability import (
    DEFAULT_BINS,
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    DwellProbability,
    StageProbability,
    configured_known,
    dwell_probabilities,
    stage_probabilities,
)
from stagegate.analytics.quota import CoverageRow, QuotaTable, coverage
from stagegate.analytics.review import (
    CHANGES,
    Change,
    ChangeRow,
    Review,
    ReviewRow,
    RollupRow,
    ScorecardRow,
    StaleDeal,
    changes,
    deal_changes,
    rollup,
    scorecard,
    staleness,
    weekly_review,
)
from stagegate.analytics.snapshot import (
    CATEGORIES,
    STATES,
    Snapshot,
    Waterfall,
    WaterfallDeal,
    WaterfallRow,
    WaterfallSegment,
    open_pipeline,
    snapshot,
    waterfall,
)
from stagegate.analytics.survival import km_curve, km_median
from stagegate.analytics.velocity import Velocity, velocity

__all__ = [
    "CATEGORIES",
    "CHANGES",
    "DEFAULT_AGE_BANDS",
    "DEFAULT_BINS",
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "INTERVAL_COLUMNS",
    "KINDS",
    "STATES",
    "AnalyticsError",
    "Backtest",
    "BacktestScore",
    "Change",
    "ChangeRow",
    "CoverageRow",
    "CycleSummary",
    "CycleTime",
    "CycleTimes",
    "DwellProbability",
    "Forecast",
    "ForecastPeriod",
    "Funnel",
    "FunnelStage",
    "LossReason",
    "Outcomes",
    "PushAgeCount",
    "PushCount",
    "QuotaTable",
    "Reliability",
    "Review",
    "ReviewRow",
    "RollupRow",
    "ScorecardRow",
    "SegmentTotal",
    "Slippage",
    "SlippingDeal",
    "Snapshot",
    "StageInterval",
    "StageProbability",
    "StageTime",
    "StaleDeal",
    "StalledDeal",
    "Velocity",
    "Waterfall",
    "WaterfallDeal",
    "WaterfallRow",
    "WaterfallSegment",
    "backtest",
    "changes",
    "configured_known",
    "coverage",
    "currencies_of",
    "cycle_times",
    "deal_changes",
    "dwell_probabilities",
    "forecast",
    "funnel",
    "in_currency",
    "km_curve",
    "km_median",
    "open_pipeline",
    "period_of",
    "require_one_currency",
    "rollup",
    "scorecard",
    "segment_totals",
    "slippage",
    "snapshot",
    "stage_intervals",
    "stage_probabilities",
    "staleness",
    "stalled",
    "time_in_stage",
    "velocity",
    "waterfall",
    "weekly_review",
]
