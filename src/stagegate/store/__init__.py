"""Persistence: an append-only event log behind one protocol, in memory or in SQLite.

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> from stagegate import b2b, Opportunity
>>> at = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
>>> deal = Opportunity.open(b2b(), "opp-1", at=at, actor="ana", amount="12000")
>>> with tempfile.TemporaryDirectory() as folder:
...     with SQLiteStore(os.path.join(folder, "deals.sqlite")) as store:
...         store.save(deal, expected_seq=0)
...         store.load_opportunity(b2b(), "opp-1") == deal
1
True
"""

from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    SCAN_COLUMNS,
    EventRow,
    EventStore,
    StoreClosedError,
    StoreError,
    UnknownOpportunityError,
    UnknownProcessError,
    check_batch,
)
from stagegate.store.memory import MemoryStore
from stagegate.store.sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SCAN_COLUMNS",
    "SCHEMA_VERSION",
    "EventRow",
    "EventStore",
    "MemoryStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoreError",
    "UnknownOpportunityError",
    "UnknownProcessError",
    "check_batch",
]
