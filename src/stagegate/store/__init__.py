"""Persistence: an append-only event log behind one protocol, in memory, SQLite or PostgreSQL.

:func:`open_store` opens a store file (SQLite) or a ``postgresql://`` URL (PostgreSQL).

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

from stagegate.store._columnar import COLUMNS as FRAME_COLUMNS
from stagegate.store._load import ImportOutcome, ImportRefusedError, write_import
from stagegate.store._open import open_store
from stagegate.store._stream import stream_import
from stagegate.store.base import (
    DEFAULT_BATCH_SIZE,
    SCAN_COLUMNS,
    EventRow,
    EventStore,
    ImportRecord,
    LogVerdict,
    StoreClosedError,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
    StoreReplacedError,
    StoreUnwritableError,
    UnknownOpportunityError,
    UnknownProcessError,
    check_batch,
)
from stagegate.store.memory import MemoryStore
from stagegate.store.postgresql import PostgreSQLStore, is_postgresql_url
from stagegate.store.sqlite import SCHEMA_VERSION, SQLiteStore, inspect_file

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FRAME_COLUMNS",
    "SCAN_COLUMNS",
    "SCHEMA_VERSION",
    "EventRow",
    "EventStore",
    "ImportOutcome",
    "ImportRecord",
    "ImportRefusedError",
    "LogVerdict",
    "MemoryStore",
    "PostgreSQLStore",
    "SQLiteStore",
    "StoreClosedError",
    "StoreDamagedError",
    "StoreError",
    "StoreLockedError",
    "StoreReplacedError",
    "StoreUnwritableError",
    "UnknownOpportunityError",
    "UnknownProcessError",
    "check_batch",
    "inspect_file",
    "is_postgresql_url",
    "open_store",
    "stream_import",
    "write_import",
]
