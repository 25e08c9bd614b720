"""Importers and exporters: stage history from CRM exports into the canonical log, and back.

Every importer returns an :class:`ImportResult` (events, findings, the stage map used, counts
and a :meth:`~ImportResult.summary`) or, with ``strict=True``, raises
:class:`ImportProblemError`. See ``docs/importing.md``.
"""

from stagegate.io._result import Finding, ImportProblemError, ImportResult, Severity
from stagegate.io.pipedrive import import_pipedrive, read_pipedrive_fields, read_pipedrive_stages
from stagegate.io.salesforce import import_salesforce_field_history, import_salesforce_history

__all__ = [
    "Finding",
    "ImportProblemError",
    "ImportResult",
    "Severity",
    "import_pipedrive",
    "import_salesforce_field_history",
    "import_salesforce_history",
    "read_pipedrive_fields",
    "read_pipedrive_stages",
]
