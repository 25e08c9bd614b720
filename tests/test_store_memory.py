"""The in-memory event store passes the conformance suite."""

from __future__ import annotations

from pathlib import Path

import store_conformance as conformance
from stagegate.store import EventStore, MemoryStore


class MemoryBackend:
    shared_between_processes = False

    def make_store(self, path: Path) -> EventStore:
        return MemoryStore()


class TestAppendAndLoad(MemoryBackend, conformance.AppendAndLoad):
    pass


class TestQueries(MemoryBackend, conformance.Queries):
    pass


class TestOpportunities(MemoryBackend, conformance.Opportunities):
    pass


class TestFrames(MemoryBackend, conformance.Frames):
    pass


class TestProcesses(MemoryBackend, conformance.Processes):
    pass


class TestLifecycle(MemoryBackend, conformance.Lifecycle):
    pass


class TestSealing(MemoryBackend, conformance.Sealing):
    pass


class TestConcurrentWriters(MemoryBackend, conformance.ConcurrentWriters):
    pass
