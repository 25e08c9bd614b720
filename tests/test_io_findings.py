"""Findings that never mislead: source-row duplicates, hints per interface, and the rules
behind them (sequence ties, dates in a daylight-saving gap, amounts, inferred processes)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from dateutil import tz
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from stagegate.cli._app import app
from stagegate.cli._import import _findings_table, accept
from stagegate.cli._options import parse_cli_instant, read_mapping
from stagegate.errors import InvalidCommandError
from stagegate.io import Finding, Hint, Severity, import_log, import_pipedrive, import_snapshot
from stagegate.io._build import first_instant
from stagegate.io._result import cli_text
from stagegate.templates import b2b

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 1, 1, tzinfo=timezone.utc)
UTC = timezone.utc


def row(oid: str, at: str, stage: str, **extra: str) -> dict[str, str]:
    return {"opportunity_id": oid, "at": at, "stage": stage, **extra}


class TestHint:
    def test_a_finding_reads_as_python_in_its_message_and_as_flags_on_the_cli(self):
        finding = Finding(
            "naive_timestamp",
            Severity.ERROR,
            "no zone",
            hint=Hint("pass assume_zone='UTC'", "pass --assume-zone UTC"),
        )
        assert "no zone: pass assume_zone='UTC'" == finding.message
        assert "no zone: pass --assume-zone UTC" == finding.text("cli")
        assert "no zone" == finding.what

    def test_an_unknown_interface_is_refused(self):
        with pytest.raises(InvalidCommandError, match="'web'"):
            Finding("x", Severity.INFO, "m").text("web")
        with pytest.raises(InvalidCommandError, match="'web'"):
            Hint("a", "b").text("web")

    def test_reader_messages_without_a_hint_are_rewritten_as_flags(self):
        assert "map them with --column OpportunityId=HEADER" == cli_text(
            "map them with columns={'OpportunityId': ...}"
        )
        assert "e.g. --encoding cp1252 or --encoding utf-16" == cli_text(
            "e.g. encoding='cp1252' or encoding='utf-16'"
        )
        assert "pass the right --delimiter ';'" == cli_text("pass the right delimiter= (e.g. ';')")

    def test_every_cli_hint_of_the_importers_names_no_keyword_argument(self):
        rows = [row("A", "2024-01-01 09:00:00", "Lead"), row("A", "bad", "Gagné")]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        shown = [f.text("cli") for f in result.findings]
        assert shown
        assert not [s for s in shown if re.search(r"\b[a-z_]+=[\[{'(]", s)]


class TestDuplicates:
    def test_an_exact_repeat_of_a_source_row_is_a_warning(self):
        rows = [row("A", "2024-01-01T00:00:00Z", "Lead"), row("A", "2024-01-01T00:00:00Z", "Lead")]
        result = import_log(rows, lost=("Lost",), won=("Won",), as_of=AS_OF)
        (finding,) = result.findings_of("duplicate_row")
        assert (Severity.WARNING, (2,), False) == (finding.severity, finding.rows, finding.used)

    def test_rows_mapped_together_are_info_and_strict_accepts_them(self):
        rows = [
            row("A", "2024-01-01T00:00:00Z", "Lead"),
            row("A", "2024-02-01T00:00:00Z", "Approved"),
            row("A", "2024-02-01T00:00:00Z", "Activated"),
            row("A", "2024-02-01T00:00:00Z", "Accepted"),
        ]
        result = import_log(
            rows,
            stage_map={"Approved": "Won", "Activated": "Won", "Accepted": "Won"},
            lost=("Lost",),
            order=["Lead"],
            as_of=AS_OF,
            strict=True,
        )
        assert [] == list(result.findings_of("duplicate_row"))
        together = result.findings_of("mapped_together")
        assert [(3,), (4,)] == [f.rows for f in together]
        assert {Severity.INFO} == {f.severity for f in together}
        assert ["opened", "stage_changed"] == [e.kind.value for e in result.events]

    def test_mapped_together_rows_into_a_given_process_are_info_too(self):
        rows = [
            row("A", "2024-01-01T00:00:00Z", "lead_generation"),
            row("A", "2024-02-01T00:00:00Z", "Signed"),
            row("A", "2024-02-01T00:00:00Z", "Booked"),
        ]
        result = import_log(
            rows, process=b2b(), stage_map={"Signed": "won", "Booked": "won"}, as_of=AS_OF
        )
        assert ["mapped_together"] == [f.code for f in result.findings]


class TestSequence:
    def test_seq_orders_rows_at_one_instant_without_a_tie_warning(self):
        rows = [
            row("A", "2024-01-01T00:00:00Z", "qualification", seq="2"),
            row("A", "2024-01-01T00:00:00Z", "lead_generation", seq="1"),
        ]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert ["lead_generation", "qualification"] == [e.stage for e in result.events]
        assert () == result.findings

    def test_without_seq_the_same_rows_are_a_tie_in_file_order(self):
        rows = [
            row("A", "2024-01-01T00:00:00Z", "qualification"),
            row("A", "2024-01-01T00:00:00Z", "lead_generation"),
        ]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert ["qualification", "lead_generation"] == [e.stage for e in result.events]
        assert ["tied_timestamps"] == [f.code for f in result.findings]

    def test_a_seq_that_is_not_a_whole_number_is_a_bad_value(self):
        rows = [row("A", "2024-01-01T00:00:00Z", "lead_generation", seq="1.5")]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        assert ["bad_value"] == [f.code for f in result.findings]


class TestDatesInADaylightSavingGap:
    def test_sao_paulo_2017_10_15_starts_at_one_oclock_local(self):
        assert datetime(2017, 10, 15, 3, tzinfo=UTC) == first_instant(
            date(2017, 10, 15), "America/Sao_Paulo"
        )

    def test_a_midnight_that_happened_twice_is_the_earlier_one(self):
        # Havana turned its clocks back from 01:00 to 00:00 on 2016-11-06
        zone = tz.gettz("America/Havana")
        midnight = datetime(2016, 11, 6, tzinfo=zone)
        assert tz.datetime_ambiguous(midnight)
        assert datetime(2016, 11, 6, 4, tzinfo=UTC) == first_instant(date(2016, 11, 6), zone)

    @given(st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)))
    def test_the_first_instant_is_on_that_day_and_nothing_of_it_comes_earlier(self, day):
        zone = tz.gettz("America/Sao_Paulo")
        first = first_instant(day, zone)
        assert day == first.astimezone(zone).date()
        assert day > (first - timedelta(microseconds=1)).astimezone(zone).date()

    def test_seven_leads_dated_in_the_gap_are_imported(self):
        rows = [row(f"M{i}", "2017-10-15", "MQL") for i in range(7)]
        result = import_log(rows, lost=("Lost",), assume_zone="America/Sao_Paulo", as_of=AS_OF)
        assert 7 == result.opportunities
        assert [] == list(result.findings_of("unparseable_timestamp"))

    def test_a_nonexistent_time_of_day_is_refused_with_an_offset_hint_not_iso(self):
        rows = [row("A", "2017-10-15T00:30:00", "lead_generation")]
        result = import_log(rows, process=b2b(), assume_zone="America/Sao_Paulo", as_of=AS_OF)
        (finding,) = result.findings_of("unparseable_timestamp")
        assert "UTC offset" in finding.text("cli")
        assert "ISO 8601" not in finding.message

    def test_snapshot_dates_in_the_gap_are_the_first_instant_too(self):
        rows = [{"opportunity_id": "D", "stage": "Engaging", "engage_date": "2017-10-15"}]
        result = import_snapshot(
            rows,
            entered={"Engaging": "engage_date"},
            stages=["Engaging", "Won", "Lost"],
            assume_zone="America/Sao_Paulo",
            as_of=AS_OF,
        )
        assert datetime(2017, 10, 15, 3, tzinfo=UTC) == result.events[0].at


class TestAmounts:
    @pytest.mark.parametrize("value", ["1e999999", "-1e400", "inf", "NaN"])
    def test_an_amount_that_is_not_finite_is_refused_where_it_is_read(self, value):
        rows = [row("A", "2024-01-01T00:00:00Z", "lead_generation", amount=value)]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings
        assert ("bad_value", False) == (finding.code, finding.used)
        assert () == result.events

    def test_a_negative_amount_is_left_out_with_a_warning(self):
        rows = [row("A", "2024-01-01T00:00:00Z", "lead_generation", amount="-5")]
        result = import_log(rows, process=b2b(), as_of=AS_OF)
        (finding,) = result.findings
        assert ("negative_amount", Severity.WARNING, (1,)) == (
            finding.code,
            finding.severity,
            finding.rows,
        )
        # a deal's amount is never negative: the row is used, its amount is not
        (opened,) = result.events
        assert opened.amount is None
        assert "lead_generation" == opened.stage


class TestInferredProcess:
    def test_a_given_order_is_info_and_a_guessed_one_a_warning(self):
        rows = [row("A", "2024-01-01T00:00:00Z", "Lead"), row("A", "2024-02-01T00:00:00Z", "Won")]
        guessed = import_log(rows, lost=("Lost",), as_of=AS_OF)
        given_order = import_log(rows, lost=("Lost",), order=["Lead"], as_of=AS_OF)
        assert Severity.WARNING is guessed.findings_of("inferred_process")[0].severity
        assert Severity.INFO is given_order.findings_of("inferred_process")[0].severity
        assert "not configured" in given_order.findings_of("inferred_process")[0].message

    def test_open_stages_of_an_inferred_process_have_no_configured_probability(self):
        rows = [row("A", "2024-01-01T00:00:00Z", "Lead"), row("A", "2024-02-01T00:00:00Z", "Won")]
        stages = import_log(rows, lost=("Lost",), as_of=AS_OF).definition.stages
        assert [0.0, 1.0, 0.0] == [s.probability for s in stages]

    def test_refused_rows_are_named_when_inference_then_fails(self):
        rows = [row("A", "2024-01-01 00:00:00", "Lead")]
        with pytest.raises(Exception, match="naive_timestamp") as raised:
            import_log(rows, as_of=AS_OF)
        assert ["naive_timestamp", "no_terminal_stages"] == [f.code for f in raised.value.findings]


class TestPipedriveWithoutItsStageTable:
    def test_the_finding_names_the_cause_and_the_flag(self):
        log = [
            {"deal_id": "7", "change_time": "2024-04-09 21:32:09", "changed_field_key": "add_time",
             "new_value": "2024-04-09T21:32:09"},
            {"deal_id": "7", "change_time": "2024-04-20 21:32:09", "changed_field_key": "stage_id",
             "new_value": "1"},
        ]  # fmt: skip
        result = import_pipedrive(log, assume_zone="UTC", as_of=AS_OF)
        (finding,) = result.findings_of("unnamed_stages")
        assert "no stage table was given" in finding.message
        assert "stages=" in finding.message
        assert "--pipedrive-stages" in finding.text("cli")


class TestCommandLineHelpers:
    def test_square_brackets_are_shown_as_typed(self):
        findings = (
            Finding("unknown_stage", Severity.ERROR, "source stage 'Won [emea]' is unknown"),
            Finding("missing_dependency", Severity.ERROR, "pip install 'stagegate[parquet]'"),
        )
        console = Console(width=200, record=True, color_system=None)
        console.print(_findings_table(findings))
        shown = console.export_text()
        assert "'Won [emea]'" in shown
        assert "stagegate[parquet]" in shown

    def test_a_date_is_the_start_of_that_day_in_utc(self):
        assert datetime(2025, 6, 30, tzinfo=UTC) == parse_cli_instant("2025-06-30", "--as-of")
        assert datetime(2025, 6, 30, 10, tzinfo=UTC) == parse_cli_instant(
            "2025-06-30T12:00:00+02:00", "--as-of"
        )

    @pytest.mark.parametrize("text", ["2025-06-30T12:00", "2025-13-40", "next week"])
    def test_a_naive_or_bad_instant_is_refused_in_words(self, text):
        with pytest.raises(click.BadParameter) as raised:
            parse_cli_instant(text, "--as-of")
        assert "datetime.datetime" not in str(raised.value)
        assert text in str(raised.value)

    def test_accept_turns_only_warnings_into_info(self):
        rows = [
            row("A", "2024-01-01T00:00:00Z", "lead_generation"),
            row("A", "2024-01-01T00:00:00Z", "lead_generation"),
            row("B", "bad", "lead_generation"),
        ]
        result = accept(
            import_log(rows, process=b2b(), as_of=AS_OF), ["duplicate_row", "unparseable_timestamp"]
        )
        assert {"duplicate_row": Severity.INFO, "unparseable_timestamp": Severity.ERROR} == {
            f.code: f.severity for f in result.findings
        }
        assert "accepted" in result.findings_of("duplicate_row")[0].message

    def test_a_mapping_file_in_json_reads_like_toml(self, tmp_path: Path):
        path = tmp_path / "m.json"
        path.write_text(
            '{"format": "log", "won": "Won, Signed", "as_of": "2025-06-30", '
            '"pipedrive_stages": "stages.csv"}',
            encoding="utf-8",
        )
        options = read_mapping(path)
        assert ["Won", "Signed"] == options["won"]
        assert datetime(2025, 6, 30, tzinfo=UTC) == options["as_of"]
        assert tmp_path / "stages.csv" == options["pipedrive_stages"]

    @pytest.mark.parametrize(
        ("content", "words"),
        [
            ('{"columns": {"stage": 3}}', "'columns' must be a table of text"),
            ("[1, 2]", "must hold a table of options"),
            ("{nope", "is not valid JSON"),
        ],
    )
    def test_a_bad_mapping_file_is_refused_in_words(self, tmp_path: Path, content, words):
        path = tmp_path / "m.json"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(click.BadParameter, match=re.escape(words)):
            read_mapping(path)


def _codes_in_source() -> set[str]:
    """Every finding code the importers and the import command can emit, read from the source."""
    found: set[str] = set()
    for path in [*sorted((ROOT / "src" / "stagegate" / "io").glob("*.py")), ROOT / "src" /
                 "stagegate" / "cli" / "_import.py"]:  # fmt: skip
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'Finding\(\s*"([a-z_]+)"', text))
        found.update(re.findall(r'_fail\(\s*(?:source|"[a-z ]+"),\s*"([a-z_]+)"', text))
    return found


def test_every_finding_code_is_in_the_docs_findings_table():
    table = (ROOT / "docs" / "importing.md").read_text(encoding="utf-8").split("## Findings")[1]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))
    codes = _codes_in_source()
    assert {"missing_columns", "mapped_together", "unnamed_stages", "bad_value"} <= codes
    assert set() == codes - documented


class TestCalendarDates:
    def test_a_date_object_is_the_first_instant_of_its_day(self):
        rows = [{"opportunity_id": "D", "stage": "Engaging", "engage_date": date(2017, 10, 15)}]
        result = import_snapshot(
            rows,
            entered={"Engaging": "engage_date"},
            stages=["Engaging", "Won", "Lost"],
            assume_zone="America/Sao_Paulo",
            as_of=AS_OF,
        )
        assert datetime(2017, 10, 15, 3, tzinfo=UTC) == result.events[0].at

    def test_a_date_that_is_not_on_the_calendar_is_unparseable(self):
        rows = [row("A", "2017-02-30", "lead_generation")]
        result = import_log(rows, process=b2b(), assume_zone="UTC", as_of=AS_OF)
        (finding,) = result.findings
        assert "unparseable_timestamp" == finding.code
        assert "not a calendar date" in finding.message


class TestImportOptions:
    """Options refused before any file is read: exit 2 with what to type instead."""

    def invoke(self, *args: str):
        return CliRunner().invoke(app, ["import", *args])

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (["--format", "log", "--undated-at", "2017-12-31"], "--undated-at is for snapshot"),
            (["--format", "log", "--entered", "A=b"], "--entered is for snapshot"),
            (["--format", "snapshot"], "needs --entered STAGE=COLUMN"),
            (["--format", "log", "--template", "nope"], "no built-in template 'nope'"),
            (["--format", "log", "--map", "nothing"], "must look like NAME=VALUE"),
            (["--mapping", "absent.toml"], "cannot read"),
        ],
    )
    def test_a_bad_option_is_refused_in_words(self, tmp_path: Path, args, words):
        path = tmp_path / "log.csv"
        path.write_text("opportunity_id,at,stage\n", encoding="utf-8")
        result = self.invoke(str(path), "--store", str(tmp_path / "s.sqlite"), *args)
        assert 2 == result.exit_code
        assert words in result.output

    def test_a_mapping_file_with_an_unknown_format_or_bad_toml_is_refused(self, tmp_path: Path):
        bad = tmp_path / "bad.toml"
        bad.write_text('format = "excel"\n', encoding="utf-8")
        result = self.invoke("x.csv", "--store", str(tmp_path / "s.sqlite"), "--mapping", str(bad))
        assert "format 'excel' is not one of" in result.output
        bad.write_text("format = \n", encoding="utf-8")
        with pytest.raises(click.BadParameter, match="is not valid TOML"):
            read_mapping(bad)

    def test_hubspot_stage_dates_take_the_snapshot_flags(self, tmp_path: Path):
        path = tmp_path / "deals.csv"
        path.write_text(
            "hs_object_id,dealstage,hs_v2_date_entered_qualifiedtobuy\n"
            "9,qualifiedtobuy,2024-03-01T09:00:00Z\n10,appointmentscheduled,\n",
            encoding="utf-8",
        )
        result = self.invoke(
            str(path), "--store", str(tmp_path / "s.sqlite"), "--format", "hubspot-dates",
            "--stage-order", "appointmentscheduled,qualifiedtobuy", "--won", "closedwon",
            "--lost", "closedlost", "--undated-at", "2024-06-30", "--strict", "--json",
        )  # fmt: skip
        assert 0 == result.exit_code, result.output
        assert 2 == json.loads(result.output)["opportunities"]


class TestErrorsOnTheCommandLine:
    def test_a_library_error_names_flags_not_keywords(self, tmp_path: Path):
        path = tmp_path / "pipeline.csv"
        path.write_text("opportunity_id,stage\nD,Engaging\n", encoding="utf-8")
        result = CliRunner().invoke(
            app,
            ["import", str(path), "--store", str(tmp_path / "s.sqlite"), "--format", "snapshot",
             "--entered", "Engaging=engage_date"],
            standalone_mode=False,
        )  # fmt: skip
        assert 2 == result.return_value
        assert "--entered names column 'engage_date'" in result.output
        assert "entered=" not in result.output.replace("--entered", "")

    def test_several_missing_columns_read_as_several_flags(self):
        assert "--column A=HEADER --column B=HEADER" == cli_text("columns={'A': ..., 'B': ...}")


B2B_STAGES = [s.id for s in b2b().stages]


@st.composite
def histories_with_twins(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A stage history, and the same history with some rows repeated under an alias label."""
    stages = draw(st.lists(st.sampled_from(B2B_STAGES), min_size=1, max_size=8))
    base, twinned = [], []
    for day, stage in enumerate(stages, start=1):
        at = f"2024-01-{day:02d}T09:00:00Z"
        base.append(row("A", at, stage, seq=str(2 * day)))
        twinned.append(row("A", at, stage, seq=str(2 * day)))
        if draw(st.booleans()):
            twinned.append(row("A", at, f"{stage} (alias)", seq=str(2 * day + 1)))
    return base, twinned


@given(histories_with_twins())
def test_rows_mapped_together_change_no_event_and_are_never_a_problem(pair):
    base, twinned = pair
    aliases = {f"{s} (alias)": s for s in B2B_STAGES}
    plain = import_log(base, process=b2b(), as_of=AS_OF)
    merged = import_log(twinned, process=b2b(), stage_map=aliases, as_of=AS_OF)
    assert plain.events == merged.events
    twins = len(twinned) - len(base)
    extra = Counter(f.code for f in merged.findings) - Counter(f.code for f in plain.findings)
    assert ({"mapped_together": twins} if twins else {}) == dict(extra)
    assert len(plain.problems) == len(merged.problems)
    assert {Severity.INFO} >= {f.severity for f in merged.findings_of("mapped_together")}
