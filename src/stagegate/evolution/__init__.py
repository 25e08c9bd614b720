"""Process evolution: what changed between versions, migrating open deals, mapped history.

A process changes: a stage is added, renamed or merged, a gate tightened, a probability moved.
:func:`diff` says what changed between two versions (and :func:`impact` what that means for the
deals in flight); :func:`migrate` moves a store's open deals to the new version, one
``migrated`` event each, all or nothing, while closed deals keep the version they closed in;
:func:`map_history` maps history recorded under earlier versions onto the current stages for
analytics. See ``docs/evolution.md``.
"""

from stagegate.evolution._diff import Change, EvolutionError, ProcessDiff, diff, stage_mapping
from stagegate.evolution._history import Lineage, lineage, map_history
from stagegate.evolution._migrate import (
    DealImpact,
    DealMove,
    Impact,
    MigrationPlan,
    StrandedDealsError,
    impact,
    migrate,
    plan_migration,
    store_impact,
    stored_versions,
)

__all__ = [
    "Change",
    "DealImpact",
    "DealMove",
    "EvolutionError",
    "Impact",
    "Lineage",
    "MigrationPlan",
    "ProcessDiff",
    "StrandedDealsError",
    "diff",
    "impact",
    "lineage",
    "map_history",
    "migrate",
    "plan_migration",
    "stage_mapping",
    "store_impact",
    "stored_versions",
]
