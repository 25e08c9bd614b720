"""Importers and exporters: stage history from CRM exports into the canonical log, and back.

Every importer returns an :class:`ImportResult` (events, findings, the stage map used, counts
and a :meth:`~ImportResult.summary`) or, with ``strict=True``, raises
:class:`ImportProblemError`. See ``docs/importing.md``.
"""

from stagegate.io._result import Finding, Hint, ImportProblemError, ImportResult, Severity
from stagegate.io._stages import infer_process
from stagegate.io.canonical import EVENT_COLUMNS, import_log, read_events, write_events
from stagegate.io.engagements import (
    Engagement,
    EngagementImport,
    EvidenceOutcome,
    read_engagements,
    read_hubspot_engagements,
    read_marketo_activities,
    record_engagements,
    record_evidence,
)
from stagegate.io.evidence_map import (
    EvidenceMap,
    EvidenceRule,
    evidence_map_from_dict,
    evidence_map_from_toml,
    load_evidence_map,
)
from stagegate.io.hubspot import (
    hubspot_history_rows,
    import_hubspot_history,
    import_hubspot_stage_dates,
)
from stagegate.io.icalendar import read_icalendar
from stagegate.io.pipedrive import import_pipedrive, read_pipedrive_fields, read_pipedrive_stages
from stagegate.io.salesforce import import_salesforce_field_history, import_salesforce_history
from stagegate.io.snapshot import import_snapshot

__all__ = [
    "EVENT_COLUMNS",
    "Engagement",
    "EngagementImport",
    "EvidenceMap",
    "EvidenceOutcome",
    "EvidenceRule",
    "Finding",
    "Hint",
    "ImportProblemError",
    "ImportResult",
    "Severity",
    "evidence_map_from_dict",
    "evidence_map_from_toml",
    "hubspot_history_rows",
    "import_hubspot_history",
    "import_hubspot_stage_dates",
    "import_log",
    "import_pipedrive",
    "import_salesforce_field_history",
    "import_salesforce_history",
    "import_snapshot",
    "infer_process",
    "load_evidence_map",
    "read_engagements",
    "read_events",
    "read_hubspot_engagements",
    "read_icalendar",
    "read_marketo_activities",
    "read_pipedrive_fields",
    "read_pipedrive_stages",
    "record_engagements",
    "record_evidence",
    "write_events",
]
