"""``by=`` on every public analytics function, on every backend: the pure-Python numbers.

The issue's goal, checked as a whole rather than function by function: every function of
``stagegate.analytics`` that takes data accepts ``by=`` (or is a segment-native review function
or a helper on plain values, listed below), and its answer on Polars, pandas and DuckDB frames
of a store (and on PySpark, for the deal-level functions) equals its answer on the events.
"""

from __future__ import annotations

import inspect
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from analytics_data import with_activities
from stagegate import analytics as an
from stagegate import b2b
from stagegate.simulate import simulate
from stagegate.store import MemoryStore

pytest.importorskip("narwhals")
pytest.importorskip("polars")

SEGMENT_NATIVE = {
    "rollup": "levels= names the hierarchy it subtotals",
    "coverage": "the QuotaTable says which column its quotas are for",
}
NOT_ON_DATA = {"km_curve", "km_median", "period_of", "configured_known"}
MONEY_HELPERS = {"currencies_of", "in_currency", "require_one_currency"}

SIM = simulate(100, seed=5, span_days=150, segments=True, process=b2b())
AS_OF = SIM.as_of
EVENTS = with_activities(b2b(), list(SIM.events), AS_OF)  # staleness by activity on frames too
CUTOFF = AS_OF - timedelta(days=45)
KWARGS: dict[str, dict[str, Any]] = {
    "stage_probabilities": {"as_of": AS_OF, "draws": 0},
    "dwell_probabilities": {"as_of": AS_OF},
    "time_in_stage": {"as_of": AS_OF},
    "cycle_times": {"as_of": AS_OF},
    "funnel": {"as_of": AS_OF},
    "velocity": {"as_of": AS_OF},
    "stage_intervals": {"as_of": AS_OF},
    "snapshot": {"at": AS_OF},
    "open_pipeline": {"at": AS_OF},
    "waterfall": {"start": CUTOFF, "end": AS_OF},
    "stalled": {"as_of": AS_OF},
    "slippage": {"as_of": AS_OF},
    "forecast": {"as_of": AS_OF, "simulations": 200, "seed": 3},
    "backtest": {"cutoff": CUTOFF, "as_of": AS_OF},
    "scorecard": {"as_of": AS_OF},
    "staleness": {"as_of": AS_OF},
    "changes": {"since": CUTOFF, "as_of": AS_OF},
    "deal_changes": {"since": CUTOFF, "as_of": AS_OF},
}


def _data_functions() -> list[str]:
    names = []
    for name in an.__all__:
        function = getattr(an, name)
        if inspect.isfunction(function) and next(iter(inspect.signature(function).parameters)) == (
            "data"
        ):
            names.append(name)
    return names


def test_every_analytics_function_on_data_takes_by() -> None:
    missing = [
        name
        for name in _data_functions()
        if name not in SEGMENT_NATIVE
        and name not in MONEY_HELPERS
        and "by" not in inspect.signature(getattr(an, name)).parameters
    ]
    assert missing == []
    assert NOT_ON_DATA.isdisjoint(_data_functions())


def test_every_function_with_by_has_a_parity_case_here() -> None:
    with_by = {
        name
        for name in _data_functions()
        if "by" in inspect.signature(getattr(an, name)).parameters
    }
    assert with_by - {"weekly_review"} <= set(KWARGS), with_by - set(KWARGS)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6) + 0.0  # -0.0 is 0.0
    if isinstance(value, Decimal):
        return round(float(value), 6)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _plain(value.item())
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _row(record: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    values = attrs.asdict(record, recurse=False)
    segment = values.pop("segment", ())
    row = dict(zip(columns, segment or (), strict=False))
    nested: dict[str, Any] = {}
    for name, value in values.items():
        if attrs.has(type(value)):
            nested[name] = _row(value, columns)
        elif isinstance(value, (list, tuple)) and value and attrs.has(type(value[0])):
            nested[name] = _rows(list(value), columns)
        elif not isinstance(value, (list, tuple, str)) and _is_table(value):
            nested[name] = _rows(value, columns)  # a frame inside a record (a back-test)
        else:
            row[name] = value
    plain = {k: _plain(v) for k, v in row.items() if _plain(v) is not None}
    return {**plain, **nested}


def _rows(value: Any, columns: tuple[str, ...]) -> Any:
    """A result as comparable rows: records and frames alike; containers field by field."""
    if isinstance(value, list):
        return sorted((_row(r, columns) if attrs.has(type(r)) else r for r in value), key=_key)
    if attrs.has(type(value)):
        return {
            f.name: _rows(getattr(value, f.name), columns)
            for f in attrs.fields(type(value))
            if _is_table(getattr(value, f.name))
        }
    import narwhals as nw

    frame = nw.from_native(value)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return sorted(
        (
            {k: _plain(v) for k, v in r.items() if _plain(v) is not None}
            for r in frame.rows(named=True)
        ),
        key=_key,
    )


def _key(row: dict[str, Any]) -> str:
    """A sort key under which rows that compare equal sort alike (``1 == 1.0``)."""
    return repr(
        sorted(
            (k, float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
            for k, v in row.items()
        )
    )


def _is_table(value: Any) -> bool:
    if isinstance(value, list):
        return True
    if value is None or isinstance(value, (str, int, float, Decimal, date, tuple)):
        return False
    try:
        import narwhals as nw

        nw.from_native(value)
    except TypeError:
        return False
    return True


def _frame(backend: str) -> Any:
    store = MemoryStore()
    store.append(EVENTS)
    frame = store.to_frame(backend="polars")
    if backend == "pandas":
        return frame.to_pandas()
    if backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        return duckdb.from_arrow(frame.to_arrow())
    return frame


# What a store's frame does not carry: field values (the next step is a field).
NOT_IN_FRAMES = {"staleness": {"next_step_due", "next_step_overdue"}}
# Owners (24 reps) on Polars; a few regions elsewhere, to keep pandas and DuckDB inside the
# suite's time (they run each segment's query on their own engine).
CASES = [("polars", "owner"), ("polars", ("region", "team")), ("pandas", "region")]
CASES += [("duckdb", "region")]


@pytest.mark.parametrize("name", sorted(KWARGS))
@pytest.mark.parametrize(("backend", "by"), CASES)
def test_by_on_a_frame_gives_the_numbers_of_the_events(
    name: str, backend: str, by: str | tuple[str, ...]
) -> None:
    function = getattr(an, name)
    columns = (by,) if isinstance(by, str) else by
    outcomes = SIM.model.outcomes()
    expected = _rows(function(EVENTS, outcomes, by=by, **KWARGS[name]), columns)
    got = _rows(function(_frame(backend), outcomes, by=by, **KWARGS[name]), columns)
    unknown = NOT_IN_FRAMES.get(name, set())
    if unknown:
        expected = [{k: v for k, v in r.items() if k not in unknown} for r in expected]
    assert got == expected


DEAL_LEVEL = ("open_pipeline", "snapshot", "stalled", "slippage", "waterfall", "forecast")
DEAL_LEVEL += ("backtest",)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_by_on_spark_gives_the_numbers_of_the_events() -> None:
    """The deal-level functions on PySpark (the stage-level ones: test_analytics_by_stage)."""
    import shutil

    sql = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("PySpark needs Java")
    sim = simulate(30, seed=5, span_days=150, segments=True)
    store = MemoryStore()
    store.append(sim.events)
    spark = (
        sql.SparkSession.builder.master("local[1]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    try:
        spark.sparkContext.setLogLevel("ERROR")
        frame = spark.createDataFrame(store.to_frame(backend="pyarrow"))
        outcomes = sim.model.outcomes()
        earlier = sim.as_of - timedelta(days=45)
        for name in DEAL_LEVEL:
            kwargs = {
                k: (sim.as_of if k in ("as_of", "at", "end") else earlier)
                if isinstance(v, datetime)
                else v
                for k, v in KWARGS[name].items()
            }
            function = getattr(an, name)
            expected = _rows(function(sim.events, outcomes, by="region", **kwargs), ("region",))
            got = _rows(function(frame, outcomes, by="region", **kwargs), ("region",))
            assert got == expected, name
    finally:
        spark.stop()
