"""PySpark (local mode) gives the same numbers as the pure-Python path."""

from __future__ import annotations

import shutil
from datetime import timedelta
from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, edge_rows, normalize, same
from stagegate import analytics as an

pytest.importorskip("narwhals")
pyspark_sql = pytest.importorskip("pyspark.sql")
if shutil.which("java") is None:
    pytest.skip("PySpark needs Java", allow_module_level=True)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Any:
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("stagegate-parity")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _frame(spark: Any, rows: list[dict[str, Any]]) -> Any:
    from pyspark.sql import types as T  # noqa: N812 - the PySpark convention

    schema = T.StructType(
        [
            T.StructField("opportunity_id", T.StringType()),
            T.StructField("at", T.TimestampType()),
            T.StructField("seq", T.LongType()),
            T.StructField("stage", T.StringType()),
            T.StructField("amount", T.DoubleType()),
            T.StructField("close_date", T.DateType()),
            T.StructField("reason", T.StringType()),
        ]
    )
    names = [f.name for f in schema.fields]
    return spark.createDataFrame([tuple(r[n] for n in names) for r in rows], schema)


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in sorted(row) if not isinstance(row[k], float))


def test_spark_gives_the_same_intervals_durations_and_probabilities(spark: Any) -> None:
    rows = edge_rows()
    frame = _frame(spark, rows)
    checks = {
        "intervals": lambda d: an.stage_intervals(d, KINDS, as_of=AS_OF),
        "time": lambda d: an.time_in_stage(d, KINDS, as_of=AS_OF),
        "probabilities": lambda d: an.stage_probabilities(d, KINDS, as_of=AS_OF, draws=0),
    }
    for name, run in checks.items():
        result = run(frame)
        assert isinstance(result, pyspark_sql.DataFrame)
        expected, actual = normalize(run(rows)), normalize(result)
        try:
            same(expected, actual, key=_key)
        except AssertionError as exc:
            raise AssertionError(f"{name} differs on Spark: {exc}") from None


def test_spark_gives_the_same_funnel_slippage_snapshot_waterfall_and_velocity(spark: Any) -> None:
    rows = edge_rows()
    frame = _frame(spark, rows)
    start = AS_OF - timedelta(days=8)
    checks = {
        "funnel": lambda d: an.funnel(d, KINDS, as_of=AS_OF).stages,
        "losses": lambda d: an.funnel(d, KINDS, as_of=AS_OF).losses,
        "slippage": lambda d: an.slippage(d, KINDS, as_of=AS_OF, fiscal_year_start=2).deals,
        "by_age": lambda d: an.slippage(d, KINDS, as_of=AS_OF).by_pushes_and_age,
        "pipeline": lambda d: an.open_pipeline(d, KINDS, at=AS_OF),
        "waterfall": lambda d: an.waterfall(d, KINDS, start=start, end=AS_OF).deals,
        "velocity": lambda d: an.velocity(d, KINDS, as_of=AS_OF),
    }
    for name, run in checks.items():
        expected, actual = normalize(run(rows)), normalize(run(frame))
        try:
            same(expected, actual, key=_key)
        except AssertionError as exc:
            raise AssertionError(f"{name} differs on Spark: {exc}") from None
