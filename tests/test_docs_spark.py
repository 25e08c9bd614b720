"""The Spark job in docs/spark.md runs under spark-submit and gives stagegate's numbers."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from stagegate import analytics as an
from stagegate.simulate import simulate_columns
from stagegate.templates import b2b

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")
pytest.importorskip("pyspark")
SUBMIT = Path(sys.executable).parent / "spark-submit"
if shutil.which("java") is None or not SUBMIT.exists():
    pytest.skip("the Spark job needs Java and spark-submit", allow_module_level=True)

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "spark.md"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
AS_OF = START + timedelta(days=200)


def job_text() -> str:
    """The first Python block after the heading "A job to submit"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A job to submit", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/spark.md lost its job"
    return match.group(1)


def history(path: Path) -> Any:
    cols = simulate_columns(300, seed=3, start=START, span_days=150.0)
    frame = pl.DataFrame(
        {
            "opportunity_id": cols["opportunity_id"],
            "at": pl.Series(cols["at_us"], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "seq": pl.Series(cols["seq"], dtype=pl.Int64),
            "stage": pl.Series(cols["stage"], dtype=pl.String),
            "amount": pl.Series(cols["amount"], dtype=pl.Float64),
            "close_date": pl.Series(cols["close_day"], dtype=pl.Int32).cast(pl.Date),
            "reason": cols["reason"],
        }
    )
    frame.write_parquet(path)
    return frame


def rows_of(frame: Any, keys: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in frame.iter_rows(named=True)}


def close(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    return bool(expected == actual)


def test_the_documented_job_writes_the_numbers_polars_gives(tmp_path: Path) -> None:
    source, target = tmp_path / "history.parquet", tmp_path / "results"
    frame = history(source)
    job = tmp_path / "job.py"
    job.write_text(job_text(), encoding="utf-8")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(
        [str(SUBMIT), "--master", "local[1]", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.sql.shuffle.partitions=2",
         str(job), str(source), str(target), AS_OF.isoformat()],
        capture_output=True, text=True, timeout=900, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    process = b2b()
    checks = {
        "time_in_stage": (an.time_in_stage(frame, process, as_of=AS_OF), ["stage", "outcome"]),
        "stage_probabilities": (an.stage_probabilities(frame, process, as_of=AS_OF), ["stage"]),
    }
    for name, (expected_frame, keys) in checks.items():
        written = pl.read_parquet(target / name / "*.parquet")
        expected, actual = rows_of(expected_frame, keys), rows_of(written, keys)
        assert sorted(expected) == sorted(actual), name
        for key, row in expected.items():
            differ = {
                c: (v, actual[key][c]) for c, v in row.items() if not close(v, actual[key][c])
            }
            assert not differ, f"{name} {key}: {differ}"
