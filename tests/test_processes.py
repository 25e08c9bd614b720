"""A child that a test signals is not measured, so a signal cannot break the coverage data."""

from __future__ import annotations

import subprocess
import sys

from processes import unmeasured_env


def test_a_child_started_with_the_unmeasured_environment_runs_no_coverage() -> None:
    probe = "import coverage; print(coverage.Coverage.current() is None)"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=unmeasured_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "True"
