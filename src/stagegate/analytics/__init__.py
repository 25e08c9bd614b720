"""Pipeline analytics over transition logs and stage-history data frames."""

from stagegate.analytics.intervals import StageInterval, stage_intervals
from stagegate.analytics.outcomes import AnalyticsError, Outcomes

__all__ = ["AnalyticsError", "Outcomes", "StageInterval", "stage_intervals"]
