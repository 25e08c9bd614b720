"""The in-memory frame path: ordered input skips the sort, any order gives the same numbers."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import AS_OF, KINDS, at, edge_rows, normalize, same
from stagegate import analytics as an
from stagegate.analytics import AnalyticsError, _eager, survival
from stagegate.analytics._stats import beta_cdf, beta_quantile
from stagegate.errors import StagegateError, UnknownStageError
from test_analytics_properties import logs

pl = pytest.importorskip("polars")
nw = pytest.importorskip("narwhals")
pytest.importorskip("pandas")

SCHEMA = {
    "opportunity_id": pl.String,
    "at": pl.Datetime("us", "UTC"),
    "seq": pl.Int64,
    "stage": pl.String,
}


def bare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r.get(k) for k in SCHEMA} for r in rows]


def frame(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(bare(rows), schema=SCHEMA)


def results(data: Any) -> dict[str, Any]:
    return {
        "intervals": normalize(an.stage_intervals(data, KINDS, as_of=AS_OF)),
        "time_in_stage": normalize(an.time_in_stage(data, KINDS, as_of=AS_OF)),
        "probabilities": normalize(an.stage_probabilities(data, KINDS, as_of=AS_OF, draws=0)),
    }


def key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in sorted(row) if not isinstance(row[k], float))


def assert_same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    for name, rows in expected.items():
        same(rows, actual[name], key=key)


@settings(max_examples=40, deadline=None)
@given(logs(), st.randoms(use_true_random=False), st.sampled_from(["polars", "pandas"]))
def test_frames_in_any_row_order_match_the_python_path(
    rows: Any, rnd: random.Random, backend: str
) -> None:
    expected = results(rows)
    ordered = sorted(rows, key=lambda r: (r["opportunity_id"], r["at"], r["seq"]))
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    for version in (ordered, shuffled):
        data = frame(version)
        assert_same(expected, results(data if backend == "polars" else data.to_pandas()))


def test_an_ordered_log_is_not_sorted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = sorted(bare(edge_rows()), key=lambda r: (r["opportunity_id"], r["at"], r["seq"]))
    data = frame(rows)
    expected = normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF))

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("an ordered log was sorted")

    monkeypatch.setattr(nw.DataFrame, "sort", refuse)
    same(expected, normalize(an.stage_intervals(data, KINDS, as_of=AS_OF)), key=key)


@pytest.mark.parametrize(
    "order",
    [
        ["a1", "b1", "a2"],  # one deal in two runs
        ["b1", "a1", "a2"],  # deals out of order
        ["a2", "a1", "b1"],  # instants out of order within a deal
    ],
)
def test_a_log_out_of_order_is_sorted(order: list[str]) -> None:
    by_name = {
        "a1": {"opportunity_id": "a", "at": at(0), "stage": "lead", "seq": 1},
        "a2": {"opportunity_id": "a", "at": at(2), "stage": "demo", "seq": 2},
        "b1": {"opportunity_id": "b", "at": at(1), "stage": "lead", "seq": 1},
    }
    rows = [by_name[n] for n in order]
    same(
        normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF)),
        normalize(an.stage_intervals(frame(rows), KINDS, as_of=AS_OF)),
        key=key,
    )


def test_same_instant_rows_are_ordered_by_seq_not_by_row_order() -> None:
    rows = [
        {"opportunity_id": "a", "at": at(0), "stage": "lead", "seq": 1},
        {"opportunity_id": "a", "at": at(1), "stage": "proposal", "seq": 3},
        {"opportunity_id": "a", "at": at(1), "stage": "demo", "seq": 2},
    ]
    visits = an.stage_intervals(frame(rows), KINDS, as_of=AS_OF).sort("step")
    assert visits["stage"].to_list() == ["lead", "demo", "proposal"]
    assert visits["duration_days"].to_list()[1] == 0.0


def ping_pong(entries: int) -> list[dict[str, Any]]:
    stages = ["lead", "demo"]
    return [
        {"opportunity_id": "p", "at": at(i * 0.1), "stage": stages[i % 2], "seq": i + 1}
        for i in range(entries)
    ] + [{"opportunity_id": "q", "at": at(0), "stage": "lead", "seq": 1}]


@pytest.mark.parametrize("entries", [5, _eager.VISIT_SHIFTS, _eager.VISIT_SHIFTS + 9])
def test_re_entries_are_numbered_whether_shifted_or_sorted(entries: int) -> None:
    rows = ping_pong(entries)
    expected = normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF))
    assert max(r["visit"] for r in expected) == (entries + 1) // 2
    for data in (frame(rows), frame(rows).to_pandas()):
        same(expected, normalize(an.stage_intervals(data, KINDS, as_of=AS_OF)), key=key)


def test_risk_sets_too_wide_for_one_integer_key_sort_by_two_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = bare(edge_rows())
    expected = results(rows)
    monkeypatch.setattr(_eager, "KEY_LIMIT", 1)
    assert_same(expected, results(frame(rows)))


def _bisection(p: float, a: float, b: float) -> float:
    low, high = 0.0, 1.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if beta_cdf(middle, a, b) < p else (low, middle)
    return (low + high) / 2


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.5, 5e5),
    st.floats(0.5, 5e5),
    st.floats(0.001, 0.999),
)
def test_beta_quantile_inverts_the_cdf(a: float, b: float, p: float) -> None:
    x = beta_quantile(p, a, b)
    assert 0.0 <= x <= 1.0
    assert abs(x - _bisection(p, a, b)) <= 1e-12


@pytest.mark.parametrize("slice_rows", [1, 2, 3, 7])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_log_cut_into_slices_of_whole_deals_gives_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch, slice_rows: int, shuffle: bool
) -> None:
    rows = sorted(bare(edge_rows()) + ping_pong(15), key=lambda r: (r["opportunity_id"], r["at"]))
    if shuffle:
        random.Random(slice_rows).shuffle(rows)  # noqa: S311 - a fixed test order
    expected = results(rows)
    monkeypatch.setattr(_eager, "SLICE_ROWS", slice_rows)
    assert_same(expected, results(frame(rows)))
    assert_same(expected, results(frame(rows).to_pandas()))


def test_a_deal_split_across_two_slices_is_sorted_back_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each slice is in order on its own; only the slice boundary shows deal "a" again
    rows = [
        {"opportunity_id": "a", "at": at(0), "stage": "lead", "seq": 1},
        {"opportunity_id": "b", "at": at(1), "stage": "lead", "seq": 1},
        {"opportunity_id": "a", "at": at(2), "stage": "demo", "seq": 2},
        {"opportunity_id": "a", "at": at(3), "stage": "won", "seq": 3},
    ]
    monkeypatch.setattr(_eager, "SLICE_ROWS", 2)
    same(
        normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF)),
        normalize(an.stage_intervals(frame(rows), KINDS, as_of=AS_OF)),
        key=key,
    )


@pytest.mark.parametrize("backend", ["polars", "polars-lazy", "pandas"])
@pytest.mark.parametrize(("stage", "error"), [("nowhere", "nowhere"), (None, "empty values")])
def test_an_unknown_or_empty_stage_is_refused_by_name(
    backend: str, stage: str | None, error: str
) -> None:
    rows = [
        {"opportunity_id": "a", "at": at(0), "stage": "lead", "seq": 1},
        {"opportunity_id": "a", "at": at(1), "stage": stage, "seq": 2},
    ]
    data = frame(rows)
    data = {"polars": data, "polars-lazy": data.lazy(), "pandas": data.to_pandas()}[backend]
    with pytest.raises(StagegateError, match=error):
        an.stage_intervals(data, KINDS, as_of=AS_OF)


@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
@pytest.mark.parametrize("metric", ["time_in_stage", "stage_probabilities"])
def test_visits_of_another_process_are_refused_with_the_unknown_stage(
    backend: str, metric: str
) -> None:
    # visits computed for a process with a stage "demo" that the caller's process lacks
    visits = an.stage_intervals(frame(bare(edge_rows())), KINDS, as_of=AS_OF)
    if backend == "pandas":
        visits = visits.to_pandas()
    elif backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        visits = duckdb.from_arrow(visits.to_arrow())
    narrower = {s: k for s, k in KINDS.items() if s != "demo"}
    with pytest.raises(UnknownStageError, match="demo"):
        getattr(an, metric)(visits, narrower, as_of=AS_OF)


@pytest.mark.parametrize("backend", ["polars", "pandas"])
def test_a_risk_set_that_empties_leaves_the_next_groups_survival_exact(backend: str) -> None:
    day = 86_400_000_000
    visits = pl.DataFrame(
        {
            "group": [0, 1, 1, 1, 1],
            "dwell_us": [3 * day, day, 2 * day, 3 * day, 10 * day],
            "censored": [False, False, False, False, True],
        }
    )
    native = visits if backend == "polars" else visits.to_pandas(use_pyarrow_extension_array=True)
    ranked = survival.risk_sets(nw.from_native(native).lazy()).collect()
    rows = sorted(ranked.rows(named=True), key=lambda r: (r["group"], r["dwell_us"]))
    assert [r["at_risk"] for r in rows] == [1, 4, 3, 2, 1]
    assert [r["emptied"] for r in rows] == [True, False, False, False, False]
    # group 0 emptied (survival zero): no huge number may leak into group 1's running sums
    expected = [0.0, math.log(3 / 4), math.log(3 / 4 * 2 / 3), math.log(1 / 4), math.log(1 / 4)]
    assert [r["log_survival"] for r in rows] == pytest.approx(expected, abs=1e-12)
    km = dict(
        survival.km_medians(survival.risk_sets(nw.from_native(native).lazy())).collect().rows()
    )
    assert km == {0: 3.0, 1: 2.0}


@pytest.mark.parametrize(
    ("stages", "ordered"),
    [
        (["lead", "demo", "proposal"], True),  # one instant, in process order
        (["lead", "proposal", "demo"], False),  # one instant, out of process order
    ],
)
def test_rows_at_one_instant_without_seq_are_in_order_by_stage_rank(
    monkeypatch: pytest.MonkeyPatch, stages: list[str], ordered: bool
) -> None:
    rows = [{"opportunity_id": "a", "at": at(0), "stage": s} for s in stages]
    rows.append({"opportunity_id": "b", "at": at(0), "stage": "lead"})
    data = pl.DataFrame(rows, schema={k: v for k, v in SCHEMA.items() if k != "seq"})
    expected = normalize(an.stage_intervals(rows, KINDS, as_of=AS_OF))
    sorts = []
    original = nw.DataFrame.sort

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sorts.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nw.DataFrame, "sort", counting)
    same(expected, normalize(an.stage_intervals(data, KINDS, as_of=AS_OF)), key=key)
    assert bool(sorts) is not ordered


@pytest.mark.parametrize("column", ["opportunity_id", "at"])
@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
def test_a_row_without_its_opportunity_or_instant_is_refused_like_in_python(
    column: str, backend: str
) -> None:
    rows = [
        {"opportunity_id": "a", "at": at(0), "stage": "lead", "seq": 1},
        {"opportunity_id": "a", "at": at(1), "stage": "demo", "seq": 2},
    ]
    rows[1][column] = None
    data = frame(rows)
    if backend == "pandas":
        data = data.to_pandas()
    elif backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        data = duckdb.from_arrow(data.to_arrow())
    with pytest.raises(AnalyticsError, match=f"'{column}' has 1 empty"):
        an.stage_intervals(data, KINDS, as_of=AS_OF)
    with pytest.raises(AnalyticsError, match="lacks"):
        an.stage_intervals(rows, KINDS, as_of=AS_OF)


def test_pieces_worked_in_threads_come_back_in_their_order() -> None:
    import time

    from stagegate.analytics._table import in_threads

    def slow_first(piece: int) -> int:
        time.sleep(0.02 if piece == 0 else 0.0)
        return piece * 10

    assert in_threads(slow_first, [0, 1, 2, 3]) == [0, 10, 20, 30]
    assert in_threads(slow_first, []) == []
