"""Child processes that a test interrupts run without coverage measurement.

``patch = ["subprocess"]`` measures every ``stagegate`` a test starts; the child writes its
coverage data when it exits, with SQLite journaling off. A signal that lands while it writes
leaves a broken data file, and the combine at the end of the run fails with an INTERNALERROR
after every test passed. A child a test signals or kills gets :func:`unmeasured_env`.
"""

from __future__ import annotations

import os


def unmeasured_env() -> dict[str, str]:
    """This process's environment without the variables that start coverage in a child."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COVERAGE_", "COV_CORE_"))
    }
