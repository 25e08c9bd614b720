"""`stagegate import` end to end, in real subprocesses: one documented command per export.

The commands are the ones docs/importing.md documents ("From the command line"); each must
import its export with no hand-written process file, no warning, and ``--strict`` accepting it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from stagegate.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MAVEN = SHARED / "maven-crm"
PIPEDRIVE = SHARED / "pipedrive-deal-changes"
DOCS = ROOT / "docs" / "importing.md"

# Python keyword arguments that must never appear in what the command line prints
PYTHON_HINTS = re.compile(r"\b(assume_zone|stage_map|columns|undated_at|as_of|process|won|lost)=")


def run(*args: str, width: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(width), "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "stagegate", "import", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def documented(name: str) -> list[str]:
    """The arguments of the command documented in docs/importing.md under ``<!-- name -->``."""
    text = DOCS.read_text(encoding="utf-8")
    pattern = rf"<!-- {name} -->\s*```console\n\$ stagegate import (.*?)\n```"
    match = re.search(pattern, text, re.DOTALL)
    assert match is not None, f"docs/importing.md documents no {name} command"
    return match.group(1).replace("\\\n", " ").split()


def with_store(args: list[str], store: Path, **paths: Path) -> list[str]:
    """The documented arguments, with the data paths and the store in the test's places."""
    replaced = [str(paths.get(a, a)) if a in paths else a for a in args]
    return [str(store) if a == "pipeline.sqlite" else a for a in replaced]


def codes(summary: dict) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in summary["findings"]}


HISTORY = """\
case_id,sequence,state,timestamp
L1,1,Submitted,2016-01-01T09:00:00
L1,2,Validating,2016-01-03T10:00:00
L1,3,Approved,2016-01-10T12:00:00
L1,4,Accepted,2016-01-10T12:00:00
L1,5,Activated,2016-01-10T12:00:00
L2,1,Submitted,2016-01-02T09:00:00
L2,2,Declined,2016-01-04T09:00:00
L3,2,Validating,2016-01-05T09:00:00
L3,1,Submitted,2016-01-05T09:00:00
L3,3,Cancelled,2016-02-01T09:00:00
L4,1,Submitted,2016-01-06T09:00:00
L4,2,Validating,2016-01-07T09:00:00
L4,3,Submitted,2016-01-08T09:00:00
"""
"""A stage-history table: case id, sequence, state, timestamp; three won and two lost states."""


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    return path


class TestStageHistory:
    def test_the_documented_command_imports_it_strictly(self, history: Path, tmp_path: Path):
        store = tmp_path / "s.sqlite"
        args = with_store(documented("history"), store, **{"history.csv": history})
        result = run(*args, "--json")
        summary = json.loads(result.stdout)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert {"inferred_process": "info", "mapped_together": "info"} == codes(summary)
        assert (4, 13, 0) == (
            summary["opportunities"],
            summary["rows_read"],
            summary["rows_skipped"],
        )
        assert ["submitted", "validating", "won", "lost"] == [s["id"] for s in summary["stages"]]
        assert [None, None, 1.0, 0.0] == [s["probability"] for s in summary["stages"]]

    def test_the_sequence_orders_rows_at_one_instant(self, history: Path, tmp_path: Path):
        store = tmp_path / "s.sqlite"
        args = with_store(documented("history"), store, **{"history.csv": history})
        assert 0 == run(*args).returncode
        with SQLiteStore(store) as opened:
            stages = [e.stage for e in opened.load("L3")]
        # L3 lists Validating (seq 2) before Submitted (seq 1), both at 09:00: seq wins
        assert ["submitted", "validating", "lost"] == stages

    def test_the_three_won_states_are_one_won_stage_reported_as_mapped_together(
        self, history: Path, tmp_path: Path
    ):
        args = with_store(documented("history"), tmp_path / "s.sqlite", **{"history.csv": history})
        summary = json.loads(run(*args, "--json").stdout)
        together = [f for f in summary["findings"] if f["code"] == "mapped_together"]
        assert [[5], [6]] == sorted(f["rows"] for f in together)
        assert all(not f["used"] for f in together)

    def test_without_the_sequence_the_tie_is_a_warning_that_strict_refuses(
        self, history: Path, tmp_path: Path
    ):
        args = with_store(documented("history"), tmp_path / "s.sqlite", **{"history.csv": history})
        args = [a for a in args if a != "seq=sequence"]
        args = [
            a
            for i, a in enumerate(args)
            if not (a == "--column" and args[i + 1 : i + 2] == ["--column"])
        ]
        result = run(*args, "--json")
        assert 2 == result.returncode
        assert "tied_timestamps" in codes(json.loads(result.stdout))

    def test_a_real_repeat_of_a_source_row_is_still_a_duplicate(self, tmp_path: Path):
        path = tmp_path / "history.csv"
        path.write_text(HISTORY + "L4,3,Submitted,2016-01-08T09:00:00\n", encoding="utf-8")
        args = with_store(documented("history"), tmp_path / "s.sqlite", **{"history.csv": path})
        summary = json.loads(run(*[a for a in args if a != "--strict"], "--json").stdout)
        assert "warning" == codes(summary)["duplicate_row"]


@pytest.mark.shared_data
class TestMaven:
    @pytest.fixture(autouse=True)
    def _need(self):
        if not MAVEN.is_dir():
            pytest.skip(f"{MAVEN} is absent (public test data, not shipped with the project)")

    def test_the_documented_command_imports_every_deal_strictly(self, tmp_path: Path):
        store = tmp_path / "s.sqlite"
        path = MAVEN / "sales_pipeline.csv"
        args = with_store(documented("maven"), store, **{"sales_pipeline.csv": path})
        result = run(*args, "--json")
        summary = json.loads(result.stdout)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert {"inferred_process": "info"} == codes(summary)
        assert (8800, 8800, 8800) == (
            summary["rows_read"],
            summary["rows_used"],
            summary["opportunities"],
        )
        with SQLiteStore(store) as opened:
            assert [("imported", "0")] == opened.processes()

    def test_the_mapping_file_says_the_same_in_one_flag(self, tmp_path: Path):
        text = DOCS.read_text(encoding="utf-8")
        match = re.search(r"<!-- maven.toml -->\s*```toml\n(.*?)```", text, re.DOTALL)
        assert match is not None
        mapping = tmp_path / "maven.toml"
        mapping.write_text(match.group(1), encoding="utf-8")
        path = MAVEN / "sales_pipeline.csv"
        args = with_store(
            documented("maven-mapping"),
            tmp_path / "s.sqlite",
            **{
                "sales_pipeline.csv": path,
                "maven.toml": mapping,
            },
        )
        result = run(*args, "--json")
        assert 0 == result.returncode, result.stdout + result.stderr
        assert 8800 == json.loads(result.stdout)["opportunities"]

    def test_without_undated_at_the_prospecting_deals_are_skipped_and_it_exits_1(
        self, tmp_path: Path
    ):
        path = MAVEN / "sales_pipeline.csv"
        args = with_store(
            documented("maven"), tmp_path / "s.sqlite", **{"sales_pipeline.csv": path}
        )
        at = args.index("--undated-at")
        args = [a for i, a in enumerate(args) if i not in {at, at + 1} and a != "--strict"]
        result = run(*args)
        assert 1 == result.returncode
        assert "8300 of 8800 rows" in result.stdout
        assert "500 row(s) skipped" in result.stdout
        assert "--undated-at" in result.stdout
        assert not PYTHON_HINTS.search(result.stdout)

    def test_the_inferred_stages_show_labels_and_probabilities_not_configured(self, tmp_path: Path):
        path = MAVEN / "sales_pipeline.csv"
        args = with_store(
            documented("maven"), tmp_path / "s.sqlite", **{"sales_pipeline.csv": path}
        )
        out = run(*args).stdout
        assert re.search(r"Prospecting\s*│\s*prospecting\s*│\s*open\s*│\s*not configured", out)


@pytest.mark.shared_data
class TestPipedrive:
    @pytest.fixture(autouse=True)
    def _need(self):
        if not PIPEDRIVE.is_dir():
            pytest.skip(f"{PIPEDRIVE} is absent (public test data, not shipped with the project)")

    def paths(self) -> dict[str, Path]:
        return {
            "deal_changes.csv": PIPEDRIVE / "deal_changes.csv",
            "stages.csv": PIPEDRIVE / "stages.csv",
            "fields.csv": PIPEDRIVE / "fields.csv",
        }

    def test_the_documented_command_imports_every_deal_strictly(self, tmp_path: Path):
        args = with_store(documented("pipedrive"), tmp_path / "s.sqlite", **self.paths())
        result = run(*args, "--json")
        summary = json.loads(result.stdout)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert {"inferred_process": "info", "reused_id": "info", "out_of_order": "info"} == codes(
            summary
        )
        assert (15406, 15406, 2000) == (
            summary["rows_read"],
            summary["rows_used"],
            summary["opportunities"],
        )
        assert "lead_generation" == summary["stages"][0]["id"]

    def test_reused_ids_are_a_warning_strict_refuses_until_accepted(self, tmp_path: Path):
        args = with_store(documented("pipedrive"), tmp_path / "s.sqlite", **self.paths())
        at = args.index("--accept")
        result = run(*[a for i, a in enumerate(args) if i not in {at, at + 1}], "--json")
        assert 2 == result.returncode
        assert "warning" == codes(json.loads(result.stdout))["reused_id"]
        assert not (tmp_path / "s.sqlite").exists()

    def test_without_the_stage_table_the_finding_names_the_cause_and_the_flag(self, tmp_path: Path):
        result = run(
            str(PIPEDRIVE / "deal_changes.csv"),
            "--store",
            str(tmp_path / "s.sqlite"),
            "--format",
            "pipedrive",
            "--assume-zone",
            "UTC",
            "--json",
        )
        (finding,) = [
            f for f in json.loads(result.stdout)["findings"] if f["code"] == "unnamed_stages"
        ]
        assert "no stage table was given" in finding["message"]
        assert "--pipedrive-stages stages.csv" in finding["hint"]


class TestHintsAndDisplay:
    def test_a_naive_export_gets_a_flag_to_type_not_a_keyword(self, history: Path, tmp_path: Path):
        result = run(
            str(history),
            "--store",
            str(tmp_path / "s.sqlite"),
            "--format",
            "log",
            "--column",
            "opportunity_id=case_id",
            "--column",
            "stage=state",
            "--column",
            "at=timestamp",
            width=200,
        )
        assert 2 == result.returncode
        assert "--assume-zone UTC" in result.stderr
        assert not PYTHON_HINTS.search(result.stderr)

    def test_a_missing_column_hint_is_a_flag(self, history: Path, tmp_path: Path):
        result = run(
            str(history), "--store", str(tmp_path / "s.sqlite"), "--format", "log", "--json"
        )
        (finding,) = json.loads(result.stdout)["findings"]
        assert "missing_columns" == finding["code"]
        assert "--column opportunity_id=HEADER" in finding["message"]
        assert not PYTHON_HINTS.search(finding["message"])

    def test_square_brackets_in_a_stage_show_as_typed(self, tmp_path: Path):
        path = tmp_path / "log.csv"
        path.write_text(
            "opportunity_id,at,stage\nA,2024-01-01T00:00:00Z,Lead generation\n"
            "A,2024-02-01T00:00:00Z,Won [emea]\n",
            encoding="utf-8",
        )
        result = run(
            str(path), "--store", str(tmp_path / "s.sqlite"), "--format", "log",
            "--template", "b2b", width=200,
        )  # fmt: skip
        assert 2 == result.returncode
        assert "'Won [emea]'" in result.stderr
        assert "--map 'Won [emea]=<stage id>'" in result.stderr

    def test_a_date_for_as_of_is_the_start_of_that_day_in_utc(self, tmp_path: Path):
        path = tmp_path / "log.csv"
        path.write_text(
            "opportunity_id,at,stage\nA,2025-06-29T23:00:00Z,Lead\nA,2025-06-30T00:00:01Z,Won\n",
            encoding="utf-8",
        )
        common = [str(path), "--store", str(tmp_path / "s.sqlite"), "--format", "log"]
        result = run(*common, "--lost", "Lost", "--as-of", "2025-06-30", "--json")
        (late,) = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "future_date"]
        assert [3] == late["rows"]
        assert "--as-of" in late["hint"]

    def test_a_naive_as_of_is_refused_in_words(self, tmp_path: Path):
        result = run("x.csv", "--store", str(tmp_path / "s.sqlite"), "--as-of", "2025-06-30T12:00")
        assert 2 == result.returncode
        assert "has no time zone" in result.stderr
        assert "datetime.datetime" not in result.stderr

    def test_a_date_in_a_daylight_saving_gap_is_the_first_instant_of_that_day(self, tmp_path: Path):
        path = tmp_path / "mql.csv"
        path.write_text(
            "opportunity_id,at,stage\nM1,2017-10-15,MQL\nM1,2017-10-20,Won\nM2,2017-10-14,MQL\n"
            "M2,2017-10-15,Lost\n",
            encoding="utf-8",
        )
        store = tmp_path / "s.sqlite"
        result = run(
            str(path), "--store", str(store), "--format", "log",
            "--assume-zone", "America/Sao_Paulo", "--stage-order", "MQL", "--strict", "--json",
        )  # fmt: skip
        assert 0 == result.returncode, result.stdout + result.stderr
        with SQLiteStore(store) as opened:
            opened_at = opened.load("M1")[0].at
        # midnight did not exist that day: clocks jumped from 00:00 -03:00 to 01:00 -02:00
        assert datetime(2017, 10, 15, 3, tzinfo=timezone.utc) == opened_at

    def test_a_mapping_file_with_an_unknown_key_is_refused(self, tmp_path: Path):
        mapping = tmp_path / "m.toml"
        mapping.write_text('format = "log"\nzone = "UTC"\n', encoding="utf-8")
        result = run("x.csv", "--store", str(tmp_path / "s.sqlite"), "--mapping", str(mapping))
        assert 2 == result.returncode
        assert "unknown key 'zone'" in result.stderr

    def test_help_shows_a_worked_example_for_each_export(self):
        result = subprocess.run(
            [sys.executable, "-m", "stagegate", "import", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for fmt in ("log", "salesforce", "salesforce-fields", "hubspot", "hubspot-dates",
                    "pipedrive", "snapshot"):  # fmt: skip
            assert f"--format {fmt}" in result.stdout
        assert "--mapping" in result.stdout


class TestReportAsOf:
    def test_report_takes_a_date_and_refuses_a_naive_instant_in_words(
        self, history: Path, tmp_path: Path
    ):
        store = tmp_path / "s.sqlite"
        assert (
            0
            == run(*with_store(documented("history"), store, **{"history.csv": history})).returncode
        )

        def report(as_of: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "stagegate", "report", "--store", str(store), "--json",
                 "--as-of", as_of],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip

        dated = report("2016-03-01")
        assert 0 == dated.returncode, dated.stderr
        assert json.loads(dated.stdout)["as_of"].startswith("2016-03-01T00:00:00")
        naive = report("2016-03-01T12:00")
        assert 2 == naive.returncode
        assert "has no time zone" in naive.stderr
        assert "datetime.datetime" not in naive.stderr
