"""Smoke test: the import benchmark runs on a tiny pipeline and prints its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_import_benchmark_prints_every_format_s_figures(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "importing.py"),
            "--deals",
            "60",
            "--segments",
            "--paths",
            "present,fast,whole",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (60, True) == (figures["deals"], figures["segments"])
    for name in ("jsonl", "csv", "parquet"):
        for way in ("", "_fast", "_whole"):
            assert figures[f"{name}{way}_events_per_s"] > 0
        assert figures[f"{name}_events_per_s"] > 0
        assert figures[f"{name}_events_per_cpu_s"] > 0
        assert figures[f"{name}_peak_mb"] > 0
