"""``stagegate review``: the weekly review from a log file or a store, as a table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from stagegate import analytics as an
from stagegate import b2b
from stagegate.io import read_events
from stagegate.store import SQLiteStore


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stagegate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},  # the table's full width
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("review")
    path = folder / "sample.jsonl"
    done = run("simulate", "--deals", "300", "--seed", "3", "--out", str(path))
    assert done.returncode == 0, done.stderr
    (folder / "quotas.csv").write_text(
        "owner,period,amount\nAna Kim,2025-Q4,30000\n", encoding="utf-8"
    )
    return path


def test_the_json_review_is_the_librarys(sample: Path) -> None:
    quotas = sample.parent / "quotas.csv"
    done = run("review", str(sample), "--quotas", str(quotas), "--as-of", "2025-12-01", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    as_of = datetime(2025, 12, 1, tzinfo=timezone.utc)
    expected = an.weekly_review(
        read_events(sample),
        b2b(),
        as_of=as_of,
        quotas=an.QuotaTable.read_csv(quotas),
    )
    assert ("2025-Q4", ["owner"], "2025-11-24T00:00:00+00:00") == (
        document["period"],
        document["by"],
        document["since"],
    )
    assert [row.segment[0] for row in expected.rows] == [
        row["segment"]["owner"] for row in document["rows"]
    ]
    for mine, row in zip(expected.rows, document["rows"], strict=True):
        assert (mine.pipeline, mine.stalled, dict(mine.changes)) == (
            Decimal(row["pipeline"]),
            row["stalled"],
            row["changes"],
        )
    [ana] = [row for row in document["rows"] if row["segment"]["owner"] == "Ana Kim"]
    assert "30000" == ana["quota"]


def test_a_store_reviews_by_region_as_a_table(sample: Path, tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.append(read_events(sample))
    done = run("review", "--store", str(tmp_path / "s.sqlite"), "--by", "region")
    assert done.returncode == 0, done.stderr
    assert "Weekly review by region" in done.stdout
    for region in ("central", "east", "west"):
        assert region in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "give an EVENTS file or --store"),
        (("--rates", "x.csv"), "does not exist"),
        (("--currency", "USD"), "--rates and --currency go together"),
        (("--as-of", "yesterday"), "--as-of"),
    ],
)
def test_bad_options_exit_2_with_what_to_do(
    sample: Path, args: tuple[str, ...], words: str
) -> None:
    events = (
        () if not args or (args[0] != "--currency" and args[0] != "--as-of") else (str(sample),)
    )
    done = run("review", *events, *args)
    assert 2 == done.returncode
    assert words in done.stdout + done.stderr


def test_mixed_currencies_without_rates_exit_2(tmp_path: Path) -> None:
    from stagegate import Opportunity
    from stagegate.io import write_events

    t = datetime(2026, 3, 2, tzinfo=timezone.utc)
    eur = Opportunity.open(b2b(), "e", at=t, actor="crm", amount=5, attributes={"currency": "EUR"})
    usd = Opportunity.open(b2b(), "u", at=t, actor="crm", amount=5, attributes={"currency": "USD"})
    path = tmp_path / "log.jsonl"
    write_events(path, [*eur.events, *usd.events])
    done = run("review", str(path))
    assert 2 == done.returncode
    assert "without exchange rates" in done.stderr
    rates = tmp_path / "rates.csv"
    rates.write_text("date,currency,rate\n2026-01-01,EUR,2\n", encoding="utf-8")
    done = run("review", str(path), "--rates", str(rates), "--currency", "USD", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["rows"]
    assert ("15.00", "USD") == (row["pipeline"], json.loads(done.stdout)["currency"])
