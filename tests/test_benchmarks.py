"""Smoke tests: the benchmark scripts run on tiny inputs and print their JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_core_benchmark_prints_its_figures_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "core.py"),
            "--deals",
            "200",
            "--memory-deals",
            "100",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "stagegate_us",
        "floor_us",
        "transitions_per_deal_us",
        "transitions_shared_us",
        "stagegate_bytes_per_opportunity",
    ):
        assert figures[key] > 0, key


@pytest.mark.slow
def test_store_benchmark_times_the_report_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "store.py"),
            "--deals",
            "150",
            "--chunk",
            "50",
            "--single-events",
            "40",
            "--scan-events",
            "100",
            "--folder",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("events_per_s_batched", "report_s", "report_peak_mb", "frame_s"):
        assert figures[key] > 0, key
    assert figures["deals"] == 150
