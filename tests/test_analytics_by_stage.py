"""``by=`` on funnel, dwell_probabilities, velocity and stage_intervals: at stage entry."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_data import KINDS, at, normalize, same
from stagegate import analytics as an
from stagegate.analytics.outcomes import AnalyticsError
from stagegate.analytics.review import SMALL_SAMPLE

AS_OF = at(60)
PATHS = (
    ("lead",),
    ("lead", "demo"),
    ("lead", "won"),
    ("lead", "lost"),
    ("lead", "demo", "won"),
    ("lead", "demo", "lost"),
    ("lead", "demo", "proposal", "won"),
    ("lead", "demo", "proposal", "lost"),
    ("lead", "demo", "proposal"),
    ("lead", "proposal", "demo", "lost"),  # a skip, then backward
    ("lead", "demo", "lead", "demo", "won"),  # re-entries
    ("lead", "won", "demo", "lost"),  # won, reopened, lost
)
OWNERS = ("ann", "bob", "cy")

Deal = tuple[tuple[str, ...], int, tuple[str | None, ...]]
"""A path, a start day and the owner in force from each step on (``None``: none)."""


def rows_of(deals: list[Deal]) -> list[dict[str, Any]]:
    """Rows of ``deals``, one stage every 3 days, each carrying the owner from then on."""
    rows = []
    for n, (path, start, owners) in enumerate(deals):
        for step, stage in enumerate(path):
            rows.append(
                {
                    "opportunity_id": f"d{n}",
                    "at": at(start + 3 * step + 0.5 * n / len(deals)),
                    "seq": step + 1,
                    "stage": stage,
                    "amount": 100.0 + 10 * n,
                    "reason": "price" if stage == "lost" and n % 2 else None,
                    "owner": owners[step % len(owners)],
                }
            )
    return rows


def attributed(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str | None]:
    """``(deal, stage) -> owner`` at the deal's first entry into the stage, read off the rows."""
    result: dict[tuple[str, str], str | None] = {}
    previous: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: (r["opportunity_id"], r["at"])):
        oid = r["opportunity_id"]
        if previous.get(oid) != r["stage"]:
            result.setdefault((oid, r["stage"]), r["owner"])
        previous[oid] = r["stage"]
    return result


def order(owners: set[str | None]) -> list[tuple[str | None]]:
    return [(o,) for o in sorted(owners, key=lambda o: (o is None, o or ""))]


def plain(records: list[Any]) -> list[dict[str, Any]]:
    """Records without the fields only ``by=`` fills."""
    result = []
    for r in records:
        by_only = {f.name for f in attrs.fields(type(r)) if f.metadata.get("by")}
        result.append({k: v for k, v in attrs.asdict(r).items() if k not in by_only})
    return result


def only(rows: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    return [r for r in rows if r["opportunity_id"] in ids]


STICKY = st.lists(st.sampled_from(OWNERS), min_size=1, max_size=1).map(tuple)
MOVING = st.lists(st.sampled_from((*OWNERS, None)), min_size=1, max_size=5).map(tuple)
DEALS = st.lists(
    st.tuples(st.sampled_from(PATHS), st.integers(0, 30), st.one_of(STICKY, MOVING)),
    min_size=1,
    max_size=10,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS)
def test_each_stage_row_is_the_function_on_the_deals_attributed_there(deals: list[Deal]) -> None:
    rows = rows_of(deals)
    owner_at = attributed(rows)
    entered: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    for (oid, stage), owner in owner_at.items():
        entered[owner, stage].add(oid)
    members: dict[str | None, set[str]] = defaultdict(set)
    for (owner, _), ids in entered.items():
        members[owner] |= ids
    keys = order(set(members))

    # funnel: a stage's row is the funnel of the segment's deals less those that entered the
    # stage under another owner (reach rate and conversion keep their meaning)
    got = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
    assert got.deals == len({r["opportunity_id"] for r in rows})
    assert list(dict.fromkeys(r.segment for r in got.stages)) == [
        k for k in keys if any(entered.get((k[0], s)) for s in ("lead", "demo", "proposal", "won"))
    ]
    for (owner,) in keys:
        for stage in ("lead", "demo", "proposal", "won", "lost"):
            ids = {oid for oid in members[owner] if owner_at.get((oid, stage), owner) == owner}
            expected = an.funnel(only(rows, ids), KINDS, as_of=AS_OF)
            mine = [r for r in got.stages if r.segment == (owner,) and r.stage == stage]
            want = [r for r in expected.stages if r.stage == stage and entered.get((owner, stage))]
            assert plain(mine) == plain(want), (owner, stage)
            n = len(entered.get((owner, stage), ()))
            assert all(r.deals == n and r.small == (n < SMALL_SAMPLE) for r in mine)
            lost = [r for r in got.losses if r.segment == (owner,) and r.stage == stage]
            assert plain(lost) == plain([r for r in expected.losses if r.stage == stage])

    # dwell probabilities and velocity (by the empirical estimator, which reads only the deals
    # that reached a stage): a stage's rows are those of the deals that entered it under the
    # segment
    dwell = an.dwell_probabilities(rows, KINDS, as_of=AS_OF, by="owner")
    speed = an.velocity(rows, KINDS, as_of=AS_OF, by="owner", estimator="empirical")
    for (owner,) in keys:
        for stage in ("lead", "demo", "proposal"):
            ids = entered.get((owner, stage), set())
            part = only(rows, ids)
            mine = [r for r in dwell if r.segment == (owner,) and r.stage == stage]
            want = [r for r in an.dwell_probabilities(part, KINDS, as_of=AS_OF) if r.stage == stage]
            assert plain(mine) == (plain(want) if ids else []), (owner, stage)
            assert all(r.deals == len(ids) for r in mine)
            fast = [r for r in speed if r.segment == (owner,) and r.stage == stage]
            slow = an.velocity(part, KINDS, as_of=AS_OF, estimator="empirical") if ids else []
            assert plain(fast) == plain([r for r in slow if r.stage == stage])
            assert all(r.reached == len(ids) for r in fast)

    # velocity overall: open deals and expected wins of the stage rows; deal size, cycle and
    # closed win rate of the deals closed under the segment
    closers: dict[str | None, set[str]] = defaultdict(set)  # by the owner at the last row
    last = {r["opportunity_id"]: r for r in sorted(rows, key=lambda r: r["at"])}
    for oid, r in last.items():
        if KINDS[r["stage"]] != "open":
            closers[r["owner"]].add(oid)
    overall = {r.segment: r for r in speed if r.stage == "overall"}
    opened = {owner for (owner, stage) in entered if KINDS[stage] == "open"}
    assert list(overall) == order(opened | set(closers))
    for (owner,), row in overall.items():
        stages = [r for r in speed if r.segment == (owner,) and r.stage != "overall"]
        assert row.deals == sum(r.deals for r in stages)
        assert row.expected_wins == pytest.approx(sum(r.expected_wins for r in stages))
        closed = closers.get(owner, set())
        assert row.reached == row.deals + len(closed)
        if closed:
            whole = an.velocity(only(rows, closed), KINDS, as_of=AS_OF, estimator="empirical")[-1]
            assert (row.deal_size, row.cycle_days, row.closed_win_rate) == (
                whole.deal_size,
                whole.cycle_days,
                whole.closed_win_rate,
            )
        else:
            assert (row.deal_size, row.cycle_days) == (None, None)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.integers(0, 30), STICKY), max_size=10))
def test_with_one_owner_per_deal_each_segment_is_the_function_on_its_deals(
    deals: list[Deal],
) -> None:
    rows = rows_of(deals)
    owners = {r["owner"] for r in rows}
    got = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
    speed = an.velocity(rows, KINDS, as_of=AS_OF, by="owner")  # the default estimator too
    dwell = an.dwell_probabilities(rows, KINDS, as_of=AS_OF, by="owner")
    for owner in owners:
        part = [r for r in rows if r["owner"] == owner]
        reached = {r.stage for r in an.stage_intervals(part, KINDS, as_of=AS_OF)}
        expected = an.funnel(part, KINDS, as_of=AS_OF)
        mine = [r for r in got.stages if r.segment == (owner,)]
        assert plain(mine) == plain([r for r in expected.stages if r.stage in reached])
        assert plain([r for r in got.losses if r.segment == (owner,)]) == plain(expected.losses)
        fast = [r for r in speed if r.segment == (owner,)]
        want = an.velocity(part, KINDS, as_of=AS_OF)
        assert plain(fast) == plain([r for r in want if r.stage in reached | {"overall"}])
        mine_dwell = [r for r in dwell if r.segment == (owner,)]
        assert plain(mine_dwell) == plain(
            [r for r in an.dwell_probabilities(part, KINDS, as_of=AS_OF) if r.stage in reached]
        )
    visits = an.stage_intervals(rows, KINDS, as_of=AS_OF, by="owner")
    assert plain(visits) == plain(an.stage_intervals(rows, KINDS, as_of=AS_OF))


def test_a_deal_handed_on_counts_its_conversion_for_the_owner_who_had_it_at_entry() -> None:
    # d0: ann opens it in lead, bob has it from demo on, and wins it; d1: ann's, lost in lead
    rows = rows_of(
        [
            (("lead", "demo", "won"), 0, ("ann", "bob", "bob")),
            (("lead", "lost"), 1, ("ann", "ann")),
        ]
    )
    f = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
    table = {(r.segment[0], r.stage): r for r in f.stages}
    assert sorted(table) == [("ann", "lead"), ("bob", "demo"), ("bob", "won")]
    lead = table["ann", "lead"]
    assert (lead.reached, lead.conversion, lead.lost_here, lead.deals) == (2, 0.5, 1, 2)
    assert lead.reached_rate == 1.0
    demo = table["bob", "demo"]
    # demo's next row is proposal, which d0 skipped
    assert (demo.reached, demo.reached_rate, demo.conversion, demo.reached_in_order) == (
        1,
        1.0,
        0.0,
        1,
    )
    assert table["bob", "won"].reached_in_order == 0  # and so it did not reach won in order
    assert [(r.segment, r.stage, r.reason, r.deals) for r in f.losses] == [
        (("ann",), "lead", "price", 1)
    ]
    v = {(r.segment[0], r.stage): r for r in an.velocity(rows, KINDS, as_of=AS_OF, by="owner")}
    assert v["ann", "lead"].closed_win_rate == 0.5
    assert v["ann", "lead"].cycle_days == pytest.approx(6.0)  # d0, from its entry into lead
    assert v["bob", "demo"].cycle_days == pytest.approx(3.0)
    assert v["ann", "overall"].deal_size is None  # ann closed d1 (lost); bob closed d0
    assert v["bob", "overall"].deal_size == 100.0
    assert (v["ann", "overall"].reached, v["bob", "overall"].reached) == (1, 1)


def test_each_visit_carries_the_segment_of_its_own_entry() -> None:
    rows = rows_of(
        [(("lead", "demo", "lead", "demo", "won"), 0, ("ann", "ann", "bob", "ann", "bob"))]
    )
    visits = an.stage_intervals(rows, KINDS, as_of=AS_OF, by="owner")
    assert [(v.stage, v.visit, v.segment) for v in visits] == [
        ("lead", 1, ("ann",)),
        ("demo", 1, ("ann",)),
        ("lead", 2, ("bob",)),
        ("demo", 2, ("ann",)),
        ("won", 1, ("bob",)),
    ]
    # the stage-level figures still read the first entry: both demo visits count for ann
    dwell = an.dwell_probabilities(rows, KINDS, as_of=AS_OF, by="owner", bins=(0,))
    assert [(r.segment, r.stage, r.closed, r.won) for r in dwell] == [
        (("ann",), "lead", 2, 2),
        (("ann",), "demo", 2, 2),
    ]


def frames_of(rows: list[dict[str, Any]], backend: str) -> Any:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(rows)
    if backend == "pandas":
        return frame.to_pandas()
    if backend == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        return duckdb.from_arrow(frame.to_arrow())
    return frame


def reference(records: list[Any], extra: tuple[str, ...]) -> list[dict[str, Any]]:
    """Records as the rows of a ``by="owner"`` frame: owner, ``extra``, then the fields."""
    result = []
    for r in records:
        row = {"owner": r.segment[0], **{name: getattr(r, name) for name in extra}}
        row.update(plain([r])[0])
        result.append(row)
    return result


def checked(expected: list[dict[str, Any]], frame: Any, first: list[str]) -> None:
    actual = normalize(frame)
    assert actual, "no rows"
    assert list(actual[0])[: len(first)] == first
    same(
        [{k: v for k, v in r.items() if v is not None} for r in expected],
        [{k: v for k, v in r.items() if v is not None} for r in actual],
    )


PARITY_DEALS: list[Deal] = [
    (PATHS[i % len(PATHS)], i, (OWNERS[i % 3], OWNERS[(i + i // 3) % 3], None)[: 1 + i % 3])
    for i in range(30)
]


@pytest.mark.parametrize("backend", ["polars", "pandas", "duckdb"])
def test_frames_give_the_pure_python_numbers_with_the_segment_columns_first(
    backend: str,
) -> None:
    rows = rows_of(PARITY_DEALS)
    frame = frames_of(rows, backend)
    f = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
    g = an.funnel(frame, KINDS, as_of=AS_OF, by="owner")
    assert g.deals == f.deals == len(PARITY_DEALS)
    checked(reference(f.stages, ("deals", "small")), g.stages, ["owner", "deals", "small"])
    checked(reference(f.losses, ("small",)), g.losses, ["owner", "small", "stage"])
    for function, extra in (
        (an.dwell_probabilities, ("deals", "small")),
        (an.velocity, ("reached", "small")),
    ):
        expected = reference(function(rows, KINDS, as_of=AS_OF, by="owner"), extra)
        checked(expected, function(frame, KINDS, as_of=AS_OF, by="owner"), ["owner", *extra])
    visits = an.stage_intervals(frame, KINDS, as_of=AS_OF, by="owner")
    expected = reference(an.stage_intervals(rows, KINDS, as_of=AS_OF, by="owner"), ())
    actual = sorted(normalize(visits), key=lambda r: (r["opportunity_id"], r["step"]))
    assert list(actual[0])[:3] == ["opportunity_id", "owner", "stage"]
    same(
        [{k: v for k, v in r.items() if v is not None} for r in expected],
        [{k: v for k, v in r.items() if v is not None} for r in actual],
    )
    plain_columns = list(normalize(an.stage_intervals(frame, KINDS, as_of=AS_OF))[0])
    assert [c for c in actual[0] if c != "owner"] == plain_columns


@pytest.mark.parametrize(
    ("function", "column"),
    [
        (an.funnel, "stage"),
        (an.funnel, "reason"),
        (an.funnel, "losses"),
        (an.dwell_probabilities, "probability"),
        (an.velocity, "reached"),
        (an.velocity, "win_rate"),
        (an.stage_intervals, "kind"),
        (an.stage_intervals, "segment"),
    ],
)
def test_by_naming_a_result_column_is_refused(function: Any, column: str) -> None:
    rows = rows_of([(("lead",), 0, ("ann",))])
    with pytest.raises(AnalyticsError, match="rename"):
        function(rows, KINDS, as_of=AS_OF, by=column)
    with pytest.raises(AnalyticsError, match="column name"):
        function(rows, KINDS, as_of=AS_OF, by=())


def test_segments_come_in_order_with_no_value_last() -> None:
    rows = rows_of(
        [(("lead", "won"), 0, (None,)), (("lead", "lost"), 1, ("bob",)), (("lead",), 2, ("ann",))]
    )
    got = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
    assert list(dict.fromkeys(r.segment for r in got.stages)) == [("ann",), ("bob",), (None,)]
    assert [r.segment for r in an.velocity(rows, KINDS, as_of=AS_OF, by="owner")][-1] == (None,)
    later = an.funnel(rows, KINDS, as_of=AS_OF + timedelta(days=1), by=["owner"])
    assert plain(later.stages) == plain(got.stages)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DEALS, st.sampled_from([(0,), (0, 2, 5), an.DEFAULT_BINS]))
def test_the_one_pass_dwell_table_equals_the_function_run_per_segment(
    deals: list[Deal], bins: tuple[float, ...]
) -> None:
    from stagegate.analytics._by import by_segment

    rows = rows_of(deals)

    def run(part: Any) -> Any:
        return an.dwell_probabilities(part, KINDS, as_of=AS_OF, bins=bins)

    reference = by_segment(
        run, rows, KINDS, "owner", an.DwellProbability, as_of=AS_OF, assume_zone=None
    )
    assert an.dwell_probabilities(rows, KINDS, as_of=AS_OF, by="owner", bins=bins) == reference
    frame = frames_of(rows, "polars")
    got = an.dwell_probabilities(frame, KINDS, as_of=AS_OF, by="owner", bins=bins)
    assert normalize(got) == reference_rows(reference)


def reference_rows(records: list[Any]) -> list[dict[str, Any]]:
    return normalize(
        [
            {"owner": r.segment[0], "deals": r.deals, "small": r.small, **plain([r])[0]}
            for r in records
        ]
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_spark_gives_the_pure_python_numbers() -> None:
    import shutil

    sql = pytest.importorskip("pyspark.sql")
    if shutil.which("java") is None:
        pytest.skip("PySpark needs Java")
    from pyspark.sql import types as T  # noqa: N812 - the PySpark convention

    spark = (
        sql.SparkSession.builder.master("local[1]")
        .appName("stagegate-by-stage")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    try:
        # one owner per deal for the funnel (one run per owner: Spark runs are slow), hand-overs
        # for the one-pass dwell table and the visits
        rows = rows_of([(PATHS[i], i, (OWNERS[i % 2],)) for i in (4, 6, 7, 9)])
        handed = rows_of([(PATHS[i], i, (OWNERS[i % 2], OWNERS[i % 3])) for i in (4, 6, 7, 9)])
        schema = T.StructType(
            [
                T.StructField("opportunity_id", T.StringType()),
                T.StructField("at", T.TimestampType()),
                T.StructField("seq", T.LongType()),
                T.StructField("stage", T.StringType()),
                T.StructField("amount", T.DoubleType()),
                T.StructField("reason", T.StringType()),
                T.StructField("owner", T.StringType()),
            ]
        )
        names = [f.name for f in schema.fields]
        frame = spark.createDataFrame([tuple(r[n] for n in names) for r in rows], schema)
        f = an.funnel(rows, KINDS, as_of=AS_OF, by="owner")
        g = an.funnel(frame, KINDS, as_of=AS_OF, by="owner")
        assert isinstance(g.stages, sql.DataFrame)
        checked(reference(f.stages, ("deals", "small")), g.stages, ["owner", "deals", "small"])
        frame = spark.createDataFrame([tuple(r[n] for n in names) for r in handed], schema)
        expected = an.dwell_probabilities(handed, KINDS, as_of=AS_OF, by="owner")
        actual = an.dwell_probabilities(frame, KINDS, as_of=AS_OF, by="owner")
        checked(reference(expected, ("deals", "small")), actual, ["owner", "deals", "small"])
        visits = normalize(an.stage_intervals(frame, KINDS, as_of=AS_OF, by="owner"))
        want = {
            (v.opportunity_id, v.step): v.segment[0]
            for v in an.stage_intervals(handed, KINDS, as_of=AS_OF, by="owner")
        }
        assert {(r["opportunity_id"], r["step"]): r["owner"] for r in visits} == want
    finally:
        spark.stop()
