"""What the report computes once and shares gives the numbers of computing it again.

The report prepares its log once: the backtest's visits at the cut-off come from the same
prepared rows (``backtest_prepared``, ``prepared_at``), the counts and the deal clock's weights
of one frame of visits are computed once (``fit_counts``), and the in-order funnel numbers
in-memory visits per deal. Each is held here to the path that computes everything afresh.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_data import KINDS as EDGE_KINDS
from analytics_data import canonical_schema, edge_rows, normalize, same, sim_rows
from stagegate import analytics as an
from stagegate.analytics.backtest import backtest_prepared
from stagegate.analytics.intervals import prepare, prepared_at, to_native
from stagegate.analytics.probability import DEFAULT_BINS, fit_counts

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")

SCHEMA = canonical_schema()
ROWS, KINDS, SIM = sim_rows(300, seed=8)
FIRST = min(r["at"] for r in ROWS)
AS_OF = SIM.as_of


def frame(rows: list[dict[str, Any]]) -> Any:
    return pl.DataFrame(rows, schema=SCHEMA)


def scores(result: Any) -> list[dict[str, Any]]:
    return normalize(result.scores) + normalize(result.reliability)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(share=st.floats(min_value=0.05, max_value=0.95), on_frames=st.booleans())
def test_the_backtest_of_prepared_rows_is_the_backtest(share: float, on_frames: bool) -> None:
    cutoff = FIRST + (AS_OF - FIRST) * share
    data = frame(ROWS) if on_frames else ROWS
    expected = an.backtest(data, KINDS, cutoff=cutoff, as_of=AS_OF)
    prepared = prepare(data, KINDS, as_of=AS_OF, keep_rows=True)
    actual = backtest_prepared(prepared, cutoff)
    assert (actual.best, actual.reason, actual.baselines) == (
        expected.best,
        expected.reason,
        expected.baselines,
    )
    same(scores(expected), scores(actual), key=lambda r: (r["estimator"], r.get("bin", -1)))


@pytest.mark.parametrize("on_frames", [False, True])
@pytest.mark.parametrize("days", [1.0, 3.0, 4.25, 8.5, 30.0])
def test_visits_at_an_earlier_instant_are_those_prepared_there(
    on_frames: bool, days: float
) -> None:
    rows = edge_rows()
    data = frame(rows) if on_frames else rows
    late = max(r["at"] for r in rows) + timedelta(days=1)
    earlier = min(r["at"] for r in rows) + timedelta(days=days)
    expected = prepare(data, EDGE_KINDS, as_of=earlier)
    actual = prepared_at(prepare(data, EDGE_KINDS, as_of=late, keep_rows=True), earlier)
    assert actual.as_of_us == expected.as_of_us
    if on_frames:
        got, want = to_native(actual, actual.frame), to_native(expected, expected.frame)
    else:
        got, want = actual.python, expected.python
    key = lambda r: (r["opportunity_id"], r["step"])  # noqa: E731
    same(normalize(want), normalize(got), key=key)


def test_a_backtest_needs_a_cutoff_before_the_prepared_instant() -> None:
    prepared = prepare(frame(ROWS), KINDS, as_of=AS_OF, keep_rows=True)
    with pytest.raises(an.AnalyticsError):
        backtest_prepared(prepared, AS_OF)


def test_shared_visits_give_the_counts_of_fresh_ones() -> None:
    prepared = prepare(frame(ROWS), KINDS, as_of=AS_OF, keep_rows=True)
    visits = to_native(prepared, prepared.frame)
    shared = prepare(visits, KINDS, as_of=AS_OF)
    assert shared.frame is prepared.frame  # the same visits: what is computed once is reused
    first = fit_counts(prepared, DEFAULT_BINS)
    again = fit_counts(shared, DEFAULT_BINS, dwell=False)
    fresh = fit_counts(prepare(visits.clone(), KINDS, as_of=AS_OF), DEFAULT_BINS, dwell=False)
    assert again.dwell == fresh.dwell == {}
    assert first.dwell  # the forecast's counts keep the dwell bins
    for name in ("reached", "moves", "incidence", "clock"):
        got, want = getattr(again, name), getattr(fresh, name)
        assert got.keys() == want.keys(), name
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-12), (name, k)
    # the tables every estimator is computed from are the fresh ones
    a = an.stage_probabilities(visits, KINDS, as_of=AS_OF, draws=0)
    b = an.stage_probabilities(visits.clone(), KINDS, as_of=AS_OF, draws=0)
    same(normalize(b), normalize(a), key=lambda r: r["stage"])
    t1 = an.time_in_stage(visits, KINDS, as_of=AS_OF)
    t2 = an.time_in_stage(visits.clone(), KINDS, as_of=AS_OF)
    same(normalize(t2), normalize(t1), key=lambda r: (r["stage"], r["outcome"]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_funnel_of_visits_in_any_order_is_the_same(seed: int) -> None:
    prepared = prepare(frame(ROWS), KINDS, as_of=AS_OF)
    visits = to_native(prepared, prepared.frame)
    order = list(range(len(visits)))
    random.Random(seed).shuffle(order)  # noqa: S311 - a seeded test order
    shuffled = visits[order]  # out of deal order: matched by the ids' text
    expected = an.funnel(ROWS, KINDS, as_of=AS_OF)
    for data in (visits, shuffled):
        result = an.funnel(data, KINDS, as_of=AS_OF)
        assert result.deals == expected.deals
        same(normalize(expected.stages), normalize(result.stages), key=lambda r: r["stage"])


STAGE_NAMES = list(EDGE_KINDS)
deal_steps = st.lists(
    st.tuples(st.sampled_from(STAGE_NAMES), st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.5, 7.0])),
    min_size=1,
    max_size=20,  # beyond VISIT_SHIFTS: visits numbered by a sort
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deals=st.lists(deal_steps, min_size=1, max_size=8),
    cut=st.floats(min_value=-1.0, max_value=60.0),
    backend=st.sampled_from(["polars", "pandas"]),
)
def test_visits_read_off_later_ones_equal_visits_computed_at_the_cutoff(
    deals: list[list[tuple[str, float]]], cut: float, backend: str
) -> None:
    """Frames in memory read the earlier visits off the later ones: row for row, in order."""
    rows = []
    for d, steps in enumerate(deals):
        days = 0.0
        for seq, (stage, gap) in enumerate(steps, start=1):
            days += gap  # ties (a gap of 0) and moves backward included
            rows.append({"opportunity_id": f"d{d}", "at": FIRST + timedelta(days=days),
                         "stage": stage, "seq": seq, "amount": float(seq),
                         "close_date": None, "reason": None})  # fmt: skip
    data = pl.DataFrame(rows, schema=SCHEMA)
    if backend == "pandas":
        pytest.importorskip("pandas")
        data = data.to_pandas(use_pyarrow_extension_array=True)
    late = FIRST + timedelta(days=200)
    earlier = FIRST + timedelta(days=cut)
    expected = to_native_frame(prepare(data, EDGE_KINDS, as_of=earlier))
    actual = to_native_frame(
        prepared_at(prepare(data, EDGE_KINDS, as_of=late, keep_rows=True), earlier)
    )
    assert actual.to_dict(as_series=False) == expected.to_dict(as_series=False)


def to_native_frame(prepared: Any) -> Any:
    """The prepared visits as a Polars frame, whatever the backend they were computed on."""
    native = to_native(prepared, prepared.frame)
    return native if isinstance(native, pl.DataFrame) else pl.from_pandas(native)


@pytest.mark.parametrize("backend", ["polars", "pandas"])
def test_the_prepared_log_does_not_hold_the_log(backend: str) -> None:
    """Once prepared, the log can go: the report lets go of it to bound its peak memory."""
    import gc
    import weakref

    log = frame(ROWS) if backend == "polars" else frame(ROWS).to_pandas()
    gone = weakref.ref(log)
    prepared = prepare(log, KINDS, as_of=AS_OF, keep_rows=True)
    del log
    gc.collect()
    assert gone() is None
    assert len(to_native(prepared, prepared.frame)) > 0  # the visits stay
