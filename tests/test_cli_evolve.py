"""``stagegate diff`` and ``stagegate migrate``, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from processes import unmeasured_env
from stagegate.definition import process_to_toml
from stagegate.store import SQLiteStore
from stagegate.templates import b2b
from test_evolution import pipeline, renamed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import evolution as bench  # noqa: E402 - the benchmark builds the stores of open deals


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    v1, v2 = b2b(), renamed(b2b())
    out = {
        "v1": tmp_path / "v1.toml",
        "v2": tmp_path / "v2.toml",
        "unsaid": tmp_path / "unsaid.toml",
        "store": tmp_path / "s.sqlite",
    }
    out["v1"].write_text(process_to_toml(v1), "utf-8")
    out["v2"].write_text(process_to_toml(v2), "utf-8")
    out["unsaid"].write_text(process_to_toml(attrs.evolve(v2, renamed={})), "utf-8")
    with SQLiteStore(out["store"]) as store:
        pipeline(store, v1, deals=30)
    return out


def state(path: Path) -> tuple[int, list[tuple[str, str]]]:
    with SQLiteStore(path) as store:
        return store.count(), store.processes()


class TestDiffCommand:
    def test_prints_the_changes(self, files: dict[str, Path]) -> None:
        done = run("diff", str(files["v1"]), str(files["v2"]))
        assert 0 == done.returncode, done.stderr
        assert "stage 'qualification' renamed 'qualify'" in done.stdout

    def test_json_names_each_change(self, files: dict[str, Path]) -> None:
        done = run("diff", str(files["v1"]), str(files["v2"]), "--json")
        document = json.loads(done.stdout)
        assert ["stage_renamed"] == [c["kind"] for c in document["changes"]]

    def test_a_suggested_rename_is_not_applied_and_strands_deals(
        self, files: dict[str, Path]
    ) -> None:
        args = ("diff", str(files["v1"]), str(files["unsaid"]), "--store", str(files["store"]))
        done = run(*args, "--at", "2026-06-01T00:00:00Z")
        assert 1 == done.returncode, done.stderr
        assert "--map qualification=qualify" in done.stdout
        assert "stranded" in done.stdout
        mapped = run(*args, "--map", "qualification=qualify", "--json")
        assert 0 == mapped.returncode, mapped.stderr
        assert [] == json.loads(mapped.stdout)["store"]["stranded"]

    def test_bad_input_exits_2(self, files: dict[str, Path], tmp_path: Path) -> None:
        broken = tmp_path / "broken.toml"
        broken.write_text('name = "b2b"\n', "utf-8")
        assert 2 == run("diff", str(files["v1"]), str(broken)).returncode
        bad_map = run("diff", str(files["v1"]), str(files["v2"]), "--map", "nothing")
        assert 2 == bad_map.returncode
        unknown = run("diff", str(files["v1"]), str(files["v2"]), "--map", "x=y")
        assert 2 == unknown.returncode
        assert "does not take a stage" in unknown.stderr


class TestMigrateCommand:
    def test_a_dry_run_writes_nothing(self, files: dict[str, Path]) -> None:
        before = state(files["store"])
        done = run("migrate", "--store", str(files["store"]), "--to", str(files["v2"]), "--dry-run")
        assert 0 == done.returncode, done.stderr
        assert "would migrate" in done.stdout
        assert before == state(files["store"])

    def test_migrates_and_the_store_verifies(self, files: dict[str, Path]) -> None:
        count, _ = state(files["store"])
        done = run(
            "migrate",
            "--store",
            str(files["store"]),
            "--to",
            str(files["v2"]),
            "--actor",
            "ops",
            "--at",
            "2026-06-01T00:00:00Z",
            "--json",
        )
        assert 0 == done.returncode, done.stderr
        document = json.loads(done.stdout)
        assert document["ok"]
        assert (count + document["migrated"], [("b2b", "1"), ("b2b", "2")]) == state(files["store"])
        assert 0 == run("verify", "--store", str(files["store"])).returncode

    def test_stranded_deals_migrate_nothing_and_exit_1(self, files: dict[str, Path]) -> None:
        before = state(files["store"])
        args = ("migrate", "--store", str(files["store"]), "--to", str(files["unsaid"]))
        done = run(*args, "--at", "2026-06-01T00:00:00Z")
        assert 1 == done.returncode, done.stderr
        assert "nothing was migrated" in done.stdout
        assert before == state(files["store"])
        mapped = run(*args, "--at", "2026-06-01T00:00:00Z", "--map", "qualification=qualify")
        assert 0 == mapped.returncode, mapped.stderr

    def test_an_instant_before_a_deals_last_event_exits_2(self, files: dict[str, Path]) -> None:
        before = state(files["store"])
        args = ("migrate", "--store", str(files["store"]), "--to", str(files["v2"]))
        done = run(*args, "--at", "2020-01-01T00:00:00Z")
        assert 2 == done.returncode
        assert "nothing was migrated" in done.stderr
        assert before == state(files["store"])

    def test_the_report_counts_history_in_the_new_stages(self, files: dict[str, Path]) -> None:
        args = ("migrate", "--store", str(files["store"]), "--to", str(files["v2"]))
        assert 0 == run(*args, "--at", "2026-06-01T00:00:00Z").returncode
        done = run("report", "--store", str(files["store"]), "--json")
        assert 0 == done.returncode, done.stderr
        assert "qualify" in done.stdout
        assert '"qualification"' not in done.stdout

    def test_a_missing_store_exits_2(self, files: dict[str, Path], tmp_path: Path) -> None:
        done = run("migrate", "--store", str(tmp_path / "none.sqlite"), "--to", str(files["v2"]))
        assert 2 == done.returncode
        assert "no event store" in done.stderr


def test_kill_9_during_a_migration_leaves_the_store_as_it_was_or_migrated(
    tmp_path: Path,
) -> None:
    pristine = tmp_path / "pristine.sqlite"
    bench.build(str(pristine), 6000, 3)
    with SQLiteStore(pristine) as store:
        store.checkpoint()
    before = state(pristine)
    to = tmp_path / "v2.toml"
    to.write_text(process_to_toml(bench.renamed_version(b2b())), "utf-8")
    target = tmp_path / "s.sqlite"
    args = [sys.executable, "-m", "stagegate", "migrate", "--store", str(target), "--to", str(to)]
    shutil.copy(pristine, target)
    started = time.monotonic()
    # timed as the killed runs run: unmeasured (coverage slows a measured child several times)
    dry = subprocess.run(
        [*args, "--dry-run"], capture_output=True, timeout=120, check=False, env=unmeasured_env()
    )
    assert 0 == dry.returncode
    reading = time.monotonic() - started  # start-up and the read: the write comes after
    started = time.monotonic()
    assert (
        0
        == subprocess.run(
            [*args, "--quiet"], check=False, timeout=120, env=unmeasured_env()
        ).returncode
    )
    duration = time.monotonic() - started
    after = state(target)
    assert (before[0] + 6000, [("b2b", "1"), ("b2b", "2")]) == after
    rng = random.Random(3)  # noqa: S311 - kill times, not secrets
    outcomes = {"before": 0, "after": 0}
    kills = 0
    # a run can finish sooner than the one timed (a noisy machine): try again, at most 16 times,
    # until 8 tries and 4 kills mid-run
    for tries in range(1, 17):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy(pristine, target)
        child = subprocess.Popen([*args, "--quiet"], env=unmeasured_env())
        time.sleep(rng.uniform(min(reading, 0.9 * duration), duration))  # mostly mid-write
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(timeout=60)
        found = state(target)
        assert found in (before, after), found
        outcomes["before" if found == before else "after"] += 1
        if tries >= 8 and kills >= 4:
            break
    print("kill -9 outcomes:", kills, outcomes)  # noqa: T201 - shown with -s
    assert kills >= 4, (kills, outcomes)


def test_the_benchmark_runs_and_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "evolution.py"), "--deals", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(done.stdout.splitlines()[-1])
    assert 300 == figures["open_deals"] == figures["migrated"]
    assert figures["events_before"] + 300 == figures["events_after"]
    assert figures["replay_check"].split("/")[0] == figures["replay_check"].split("/")[1]
