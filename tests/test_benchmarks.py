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


def test_definitions_benchmark_prints_its_figures_as_json() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "definitions.py"), "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["bytes"] > 250_000
    for key in ("valid_s", "invalid_s", "jsonschema_s"):
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
    phases = {p["phase"]: p for p in figures["report_phases"]}
    assert list(phases)[-2:] == ["computing", "rendering"]
    steps = phases["computing"]["steps"]
    assert [s["step"] for s in steps] == list(range(1, 10))  # one per section
    assert all(s["peak_mb"] <= figures["report_peak_mb"] for s in steps)


@pytest.mark.slow
def test_store_benchmark_times_the_report_by_segment_on_a_store(tmp_path: Path) -> None:
    log, store = tmp_path / "log.jsonl", tmp_path / "deals.sqlite"
    for command in (
        ["simulate", "--deals", "60", "--out", str(log)],
        ["import", str(log), "--store", str(store), "--quiet"],
    ):
        subprocess.run([sys.executable, "-m", "stagegate", *command], check=True, timeout=300,
                       capture_output=True)  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "store.py"), "--store", str(store),
         "--by", "owner", "--folder", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["by"] == "owner"
    for key in ("report_s", "report_peak_mb", "report_by_s", "report_by_peak_mb"):
        assert figures[key] > 0, key
    steps = {p["phase"]: p for p in figures["report_by_phases"]}["computing"]["steps"]
    assert all(s["peak_mb"] <= figures["report_by_peak_mb"] for s in steps)


@pytest.mark.slow
def test_a_report_store_repeats_generated_deals_under_new_ids(tmp_path: Path) -> None:
    from stagegate.store import SQLiteStore

    out = tmp_path / "large.sqlite"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report_store.py"), "--deals", "40",
         "--copies", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )  # fmt: skip
    with SQLiteStore(out) as store:
        frame = store.to_frame()
        rows = list(store.scan_rows())
    ids = frame["opportunity_id"].unique().sort().to_list()
    assert ids == [f"opp-{i:07d}" for i in range(120)]
    assert len(frame) == len(rows) == 3 * sum(1 for r in rows if r.opportunity_id < "opp-0000040")
    first = frame.filter(frame["opportunity_id"] == "opp-0000003").drop("opportunity_id")
    copy = frame.filter(frame["opportunity_id"] == "opp-0000083").drop("opportunity_id")
    assert first.equals(copy)  # the projection of a copy is the original's
