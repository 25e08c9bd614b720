"""The backend kernels: one per family, picked once, each giving the same numbers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from analytics_data import KINDS, edge_rows, normalize, same
from stagegate import analytics as an
from stagegate.analytics._kernel import kernel_of
from stagegate.analytics._table import as_of_us, frame_rows
from stagegate.analytics.outcomes import Outcomes
from test_analytics_properties import AS_OF, logs

pl = pytest.importorskip("polars")
pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")
nw = pytest.importorskip("narwhals")


def to_polars(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(
        rows,
        schema={
            "opportunity_id": pl.String,
            "at": pl.Datetime("us", "UTC"),
            "seq": pl.Int64,
            "stage": pl.String,
        },
    )


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return (row["opportunity_id"], str(row["step"]))


class TestKernelOf:
    def test_in_memory_frames_get_the_eager_kernel(self) -> None:
        from stagegate.analytics._eager import EAGER

        frame = to_polars(edge_rows_canonical())
        assert kernel_of(nw.from_native(frame)) is EAGER
        assert kernel_of(nw.from_native(frame.lazy())) is EAGER
        assert kernel_of(nw.from_native(frame.to_pandas())) is EAGER

    def test_a_duckdb_relation_gets_the_duckdb_kernel(self) -> None:
        from stagegate.analytics._lazy import DUCKDB

        relation = duckdb.from_arrow(to_polars(edge_rows_canonical()).to_arrow())
        assert kernel_of(nw.from_native(relation)) is DUCKDB


def edge_rows_canonical() -> list[dict[str, Any]]:
    keep = ("opportunity_id", "at", "seq", "stage")
    return [{k: r[k] for k in keep} for r in edge_rows()]


def _visits_both_ways(rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """DuckDB's SQL visits and the generic lazy kernel's window visits of the same rows."""
    from stagegate.analytics._lazy import DUCKDB, LAZY

    duckdb.execute("SET TimeZone='UTC'")
    out = Outcomes.of(KINDS)
    relation = duckdb.from_arrow(to_polars(rows).to_arrow())
    canonical = frame_rows(relation, out, cutoff_us=None)
    cutoff = as_of_us(AS_OF)
    sql = DUCKDB.intervals(canonical, out, cutoff).to_native()
    windows = LAZY.intervals(canonical, out, cutoff).to_native()
    return sql, windows


@settings(max_examples=8, deadline=None)
@given(logs())
def test_duckdbs_sql_visits_equal_the_window_functions(rows: list[dict[str, Any]]) -> None:
    sql, windows = _visits_both_ways(rows)
    assert list(an.INTERVAL_COLUMNS) == list(sql.columns) == list(windows.columns)
    same(normalize(windows), normalize(sql), key=_key)


def test_duckdbs_sql_visits_equal_the_python_path_on_edge_cases() -> None:
    rows = edge_rows_canonical()
    sql, _ = _visits_both_ways(rows)
    same(normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF)), normalize(sql), key=_key)


def test_duckdb_intervals_come_back_computed_and_are_reused_as_they_are() -> None:
    relation = duckdb.from_arrow(to_polars(edge_rows_canonical()).to_arrow())
    if not hasattr(relation, "materialize"):
        pytest.skip("DuckDB before 2.0 has no materialized relations")
    visits = an.stage_intervals(relation, KINDS, as_of=AS_OF)
    assert visits.type == "MATERIALIZED_RELATION"
    reused = an.time_in_stage(visits, KINDS, as_of=AS_OF)
    fresh = an.time_in_stage(edge_rows_canonical(), KINDS, as_of=AS_OF)
    same(normalize(fresh), normalize(reused), key=lambda r: (r["stage"], r["outcome"]))
