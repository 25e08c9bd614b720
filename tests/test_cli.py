"""The command line, run as a user would run it (a subprocess), checking output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stagegate import demo, process_to_toml
from stagegate.templates import b2b

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def stuck_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, _, stuck = demo.drive_sample_deals()
    path = tmp_path_factory.mktemp("events") / "stuck.json"
    path.write_text(json.dumps([e.to_dict() for e in stuck.events]), "utf-8")
    return path


class TestValidate:
    def test_the_template_is_valid(self) -> None:
        result = run("validate", str(ROOT / "src/stagegate/templates/b2b.toml"))
        assert (result.returncode, "valid") == (0, result.stdout.split(":")[0])

    def test_a_bad_definition_lists_every_problem_and_exits_2(self, tmp_path: Path) -> None:
        text = process_to_toml(b2b()).replace('deliverable = "lead_record"', 'deliverable = "nda"')
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace("probability = 0.6\n", "probability = 1.6\n"), "utf-8")
        result = run("validate", str(bad), "--json")
        assert result.returncode == 2
        problems = json.loads(result.stdout)["problems"]
        assert any("stages[4].probability" in p for p in problems)
        assert any("unknown deliverable 'nda'" in p for p in problems)

    def test_a_missing_file_exits_2_with_a_message(self, tmp_path: Path) -> None:
        result = run("validate", str(tmp_path / "nope.toml"))
        assert result.returncode == 2
        assert "cannot read the file" in result.stderr


class TestDiagram:
    def test_prints_mermaid_with_every_stage(self) -> None:
        result = run("diagram", "--language", "ko")
        assert result.returncode == 0
        assert result.stdout.startswith("stateDiagram-v2")
        for stage in b2b().stages:
            assert f"as s_{stage.id}" in result.stdout
        assert "계약" in result.stdout


class TestCheck:
    def test_a_blocked_move_exits_1_with_the_reasons(self, stuck_events: Path) -> None:
        result = run("check", str(stuck_events), "advance")
        decision = json.loads(result.stdout)
        assert result.returncode == 1
        assert decision["allowed"] is False
        assert "deliverable 'qualification_checklist' not recorded" in decision["missing"]
        assert {"lead_generation", "needs_analysis", "lost"} == {
            m["target"] for m in decision["available_moves"]
        }

    def test_an_allowed_move_exits_0_with_the_event_it_would_append(
        self, stuck_events: Path
    ) -> None:
        result = run("check", str(stuck_events), "lose", "--reason", "budget cut")
        decision = json.loads(result.stdout)
        assert (result.returncode, decision["allowed"], decision["to_stage"]) == (0, True, "lost")
        assert decision["event"]["seq"] == 4

    def test_events_can_come_from_stdin_as_json_lines(self, stuck_events: Path) -> None:
        lines = "\n".join(json.dumps(e) for e in json.loads(stuck_events.read_text("utf-8")))
        result = run("check", "-", "needs_analysis", stdin=lines)
        assert result.returncode == 1

    def test_a_policy_violation_names_the_allowed_targets(self, stuck_events: Path) -> None:
        result = run("check", str(stuck_events), "contract")
        decision = json.loads(result.stdout)
        assert (result.returncode, decision["error"]["type"]) == (1, "MoveNotAllowedError")
        assert "needs_analysis" in decision["error"]["allowed_targets"]

    def test_an_override_without_a_reason_is_refused(self, stuck_events: Path) -> None:
        result = run("check", str(stuck_events), "advance", "--override")
        decision = json.loads(result.stdout)
        assert (result.returncode, decision["error"]["type"]) == (1, "InvalidCommandError")

    @pytest.mark.parametrize(
        ("content", "fragment"),
        [
            ("", "is empty"),
            ("not json", "not JSON"),
            ("[{}]", "lacks the field"),
            ('[{"seq": 1}]', "lacks the field"),
        ],
    )
    def test_malformed_events_exit_2_with_a_message(
        self, tmp_path: Path, content: str, fragment: str
    ) -> None:
        path = tmp_path / "events.json"
        path.write_text(content, "utf-8")
        result = run("check", str(path), "advance")
        assert result.returncode == 2
        assert fragment in json.loads(result.stdout)["error"]["message"]

    def test_non_utf8_events_exit_2(self, tmp_path: Path) -> None:
        path = tmp_path / "events.json"
        path.write_bytes(b"[\xff\xfe]")
        result = run("check", str(path), "advance")
        assert result.returncode == 2
        assert "not UTF-8" in json.loads(result.stdout)["error"]["message"]


class TestStages:
    def test_lists_stages_as_json(self) -> None:
        result = run("stages", "--json")
        assert result.returncode == 0
        assert [s["id"] for s in json.loads(result.stdout)["stages"]] == list(b2b().stage_ids)

    def test_an_unknown_template_exits_2(self) -> None:
        result = run("stages", "--template", "nope")
        assert result.returncode == 2
        assert "no built-in template 'nope'" in result.stderr


def test_an_unknown_command_exits_2() -> None:
    assert run("frobnicate").returncode == 2


class TestProcessSettings:
    """The console script asks Polars' allocator to hand freed memory back at once."""

    def probe(self, before: str, after: str = "", env: dict[str, str] | None = None) -> str:
        code = (
            f"{before}\nimport os, stagegate.cli\nstagegate.cli.tune_process()\n{after}\n"
            "print(os.environ.get('_RJEM_MALLOC_CONF'))"
        )
        environ = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**environ, **(env or {})},
        )
        return result.stdout.strip()

    def test_it_is_set_before_polars_is_loaded(self) -> None:
        from stagegate.cli import FRAME_ALLOCATOR

        assert self.probe("") == FRAME_ALLOCATOR

    def test_polars_takes_it_up(self) -> None:
        from stagegate.cli import FRAME_ALLOCATOR

        pytest.importorskip("polars")
        # Polars adds the setting to its own when it is first imported (and says so there)
        assert self.probe("", after="import polars").endswith("," + FRAME_ALLOCATOR)

    def test_a_setting_of_the_user_is_kept(self) -> None:
        assert self.probe("", env={"_RJEM_MALLOC_CONF": "narenas:2"}) == "narenas:2"

    def test_nothing_changes_once_polars_is_loaded(self) -> None:
        from stagegate.cli import FRAME_ALLOCATOR

        pytest.importorskip("polars")
        assert FRAME_ALLOCATOR not in self.probe("import polars")
