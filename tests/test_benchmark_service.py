"""The service benchmark runs at a tiny size and prints its figures as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the service benchmark needs the service extra")

ROOT = Path(__file__).resolve().parents[1]


def test_the_service_benchmark_prints_its_figures_as_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "service.py"),
            "--requests",
            "60",
            "--seconds",
            "20",
            "--concurrency",
            "4",
            "--deals",
            "8",
            "--in-process-seconds",
            "0.5",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "service_decisions_per_s",
        "in_process_decisions_per_s",
        "p50_ms",
        "p99_ms",
        "errors",
        "malformed_non_4xx",
    ):
        assert key in figures, key
    assert (60, 0, 0) == (figures["requests"], figures["errors"], figures["malformed_non_4xx"])
    assert figures["malformed_requests"] >= 40
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
