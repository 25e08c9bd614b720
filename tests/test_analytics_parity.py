"""Every data-frame backend gives the same numbers as the pure-Python path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from analytics_data import (
    AS_OF,
    KINDS,
    at,
    canonical_schema,
    edge_rows,
    normalize,
    same,
    sim_rows,
)
from stagegate import analytics as an

pl = pytest.importorskip("polars")
pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")
pytest.importorskip("narwhals")


def to_polars(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(rows, schema=canonical_schema())


BACKENDS = {
    "polars": to_polars,
    "polars-lazy": lambda rows: to_polars(rows).lazy(),
    "pandas": lambda rows: to_polars(rows).to_pandas(),
    "duckdb": lambda rows: duckdb.from_arrow(to_polars(rows).to_arrow()),
}


def _sort_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in sorted(row) if not isinstance(row[k], float))


def analyses(kinds: dict[str, str], as_of: Any, cutoff: Any) -> dict[str, Any]:
    def tables(data: Any) -> dict[str, Any]:
        cycles = an.cycle_times(data, kinds, as_of=as_of)
        slips = an.slippage(data, kinds, as_of=as_of, flag_pushes=2, fiscal_year_start=11)
        fun = an.funnel(data, kinds, as_of=as_of)
        fc = an.forecast(data, kinds, as_of=as_of, simulations=50, estimator="dwell")
        wf = an.waterfall(data, kinds, start=cutoff, end=as_of)
        bt = an.backtest(data, kinds, cutoff=cutoff, as_of=as_of)
        return {
            "intervals": an.stage_intervals(data, kinds, as_of=as_of),
            "time_in_stage": an.time_in_stage(data, kinds, as_of=as_of),
            "cycle_deals": cycles.deals,
            "cycle_summary": cycles.summary,
            "probabilities": an.stage_probabilities(data, kinds, as_of=as_of, draws=50),
            "dwell": an.dwell_probabilities(data, kinds, as_of=as_of, bins=(0, 1, 2.5, 5)),
            "stalled": an.stalled(data, kinds, as_of=as_of, learned="median"),
            "slip_deals": slips.deals,
            "slip_pushes": slips.by_pushes,
            "slip_scalars": [{"rate": slips.slip_rate, "flagged": slips.flagged}],
            "slip_by_age": slips.by_pushes_and_age,
            "funnel": fun.stages,
            "losses": fun.losses,
            "forecast": fc.periods,
            "forecast_scalars": [{"u": fc.unscheduled, "s": fc.slip_samples}],
            "snapshot": an.snapshot(data, kinds, at=cutoff),
            "open_pipeline": an.open_pipeline(data, kinds, at=as_of),
            "waterfall": wf.deals,
            "waterfall_summary": wf.summary,
            "waterfall_scalars": [{"s": wf.open_start, "e": wf.open_end}],
            "velocity": an.velocity(data, kinds, as_of=as_of),
            "velocity_dwell": an.velocity(data, kinds, as_of=as_of, estimator="dwell"),
            "backtest": bt.scores,
            "reliability": bt.reliability,
            "best": [{"best": bt.best}],
        }

    return tables


def _compare(rows: list[dict[str, Any]], backend: str, kinds: Any, as_of: Any, cutoff: Any) -> None:
    run = analyses(kinds, as_of, cutoff)
    expected = run(rows)
    actual = run(BACKENDS[backend](rows))
    for name, value in expected.items():
        ordered = name in {
            "time_in_stage", "probabilities", "funnel", "velocity", "velocity_dwell", "stalled"
        }  # fmt: skip
        e, a = normalize(value), normalize(actual[name])
        try:
            same(e, a, key=None if ordered and backend != "polars-lazy" else _sort_key)
        except AssertionError as exc:
            raise AssertionError(f"{name} differs on {backend}: {exc}") from None


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_edge_case_log_gives_the_same_numbers_on_every_backend(backend: str) -> None:
    _compare(edge_rows(), backend, KINDS, AS_OF, at(4))


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_simulated_pipeline_gives_the_same_numbers_on_every_backend(backend: str) -> None:
    rows, kinds, sim = sim_rows(150)
    _compare(rows, backend, kinds, sim.as_of, sim.as_of - timedelta(days=40))


def test_stage_intervals_frame_is_reused_without_recomputation() -> None:
    frame = to_polars(edge_rows())
    intervals = an.stage_intervals(frame, KINDS, as_of=AS_OF)
    same(
        normalize(an.time_in_stage(frame, KINDS, as_of=AS_OF)),
        normalize(an.time_in_stage(intervals, KINDS, as_of=AS_OF)),
    )


def test_python_intervals_are_reused_as_input() -> None:
    intervals = an.stage_intervals(edge_rows(), KINDS, as_of=AS_OF)
    assert an.stage_probabilities(intervals, KINDS, as_of=AS_OF) == an.stage_probabilities(
        edge_rows(), KINDS, as_of=AS_OF
    )


def test_results_come_back_in_the_callers_backend() -> None:
    rows = edge_rows()
    assert isinstance(an.time_in_stage(to_polars(rows), KINDS, as_of=AS_OF), pl.DataFrame)
    assert isinstance(an.time_in_stage(to_polars(rows).lazy(), KINDS, as_of=AS_OF), pl.LazyFrame)
    assert isinstance(an.stage_intervals(to_polars(rows).lazy(), KINDS, as_of=AS_OF), pl.LazyFrame)
    assert isinstance(
        an.time_in_stage(to_polars(rows).to_pandas(), KINDS, as_of=AS_OF), pd.DataFrame
    )
    relation = duckdb.from_arrow(to_polars(rows).to_arrow())
    assert isinstance(an.time_in_stage(relation, KINDS, as_of=AS_OF), duckdb.DuckDBPyRelation)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_polars_results_hold_stages_as_text(lazy: bool) -> None:
    """Stages travel as an Enum inside; every frame handed back holds them as text."""
    rows, kinds, sim = sim_rows(150)
    data = to_polars(rows).lazy() if lazy else to_polars(rows)
    results = analyses(kinds, sim.as_of, sim.as_of - timedelta(days=40))(data)
    frames = {k: v for k, v in results.items() if isinstance(v, (pl.DataFrame, pl.LazyFrame))}
    assert {"intervals", "snapshot", "stalled", "cycle_deals"} <= set(frames)
    for name, frame in frames.items():
        schema = frame.collect_schema()
        coded = [c for c, dtype in schema.items() if isinstance(dtype, (pl.Enum, pl.Categorical))]
        assert not coded, f"{name}: {coded}"
    visits = frames["intervals"]
    assert visits.collect_schema()["stage"] == pl.String
    # handed back in, the visits are reused as they are
    same(
        normalize(an.time_in_stage(visits, kinds, as_of=sim.as_of)),
        normalize(an.time_in_stage(data, kinds, as_of=sim.as_of)),
    )
