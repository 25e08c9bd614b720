"""The PostgreSQL event store against a real server: a throwaway cluster started for this module.

The conformance suite, the database's own concurrency guarantee (10 writer processes x 100
appends on one deal; a writer killed with SIGKILL in the middle of a batch), the column-wise
frame, and the command line with ``--store postgresql://...``. Skipped, with the reason, only
where no PostgreSQL binaries exist.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import store_conformance as conformance
from postgresql_server import Cluster, cluster, missing_reason
from stagegate.store import (
    EventStore,
    PostgreSQLStore,
)

psycopg = pytest.importorskip("psycopg", reason="needs the postgresql extra (psycopg)")
_missing = missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

_schemas = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    with cluster() as running:
        yield running


@pytest.fixture(scope="module")
def url(server: Cluster) -> str:
    return server.url()


def fresh_schema(tag: str = "") -> str:
    digest = hashlib.sha1(f"{os.getpid()}-{tag}".encode(), usedforsecurity=False).hexdigest()
    return f"t{next(_schemas)}_{digest[:10]}"


class PostgreSQLBackend:
    shared_between_processes = True
    stores_nul = False

    @pytest.fixture(autouse=True)
    def _server_url(self, url: str) -> None:
        self.url = url

    def make_store(self, path: Path) -> EventStore:
        return PostgreSQLStore(self.url, schema=fresh_schema(str(path)), timeout=30)


class TestAppendAndLoad(PostgreSQLBackend, conformance.AppendAndLoad):
    pass


class TestQueries(PostgreSQLBackend, conformance.Queries):
    pass


class TestOpportunities(PostgreSQLBackend, conformance.Opportunities):
    pass


class TestFrames(PostgreSQLBackend, conformance.Frames):
    pass


class TestProcesses(PostgreSQLBackend, conformance.Processes):
    pass


class TestLifecycle(PostgreSQLBackend, conformance.Lifecycle):
    pass


class TestSealing(PostgreSQLBackend, conformance.Sealing):
    pass


class TestConcurrentWriters(PostgreSQLBackend, conformance.ConcurrentWriters):
    pass
