"""Test configuration: modest hypothesis settings so the whole suite stays fast on 2 cores."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Generator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "stagegate",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1_000, deadline=None)
settings.load_profile("stagegate")


def _readable_coverage_data(path: Path) -> bool:
    """Whether coverage can combine the data file ``path`` (a child killed while saving leaves
    one cut short)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                return False
            paths = [row[0] for row in conn.execute("SELECT path FROM file")]
            conn.execute("SELECT count(*) FROM meta").fetchone()
            for table in ("arc", "line_bits"):
                exists = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
                ).fetchone()
                if exists:
                    conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    except sqlite3.Error:
        return False
    return all(isinstance(p, str) for p in paths)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Set aside the coverage data of a child process killed while it saved, before pytest-cov
    combines the rest: one cut-short file otherwise ends the run in an INTERNALERROR that hides
    the test results."""
    result = yield
    for path in sorted(Path(session.config.rootpath).glob(".coverage.*")):
        if path.is_file() and not _readable_coverage_data(path):
            path.unlink()
            sys.stderr.write(f"\nconftest: set aside unreadable coverage data {path.name}\n")
    return result
