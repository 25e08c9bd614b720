"""The report's segment section (``build_document(by=...)``, ``stagegate report --by``)."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics_data import with_activities
from stagegate import analytics as an
from stagegate.report import UnknownSegmentColumnError, build_document, render_html
from stagegate.report._i18n import catalogue
from stagegate.simulate import simulate
from stagegate.templates import b2b


@pytest.fixture(scope="module")
def pipeline():
    process = b2b()
    sim = simulate(300, seed=11, process=process, segments=True)
    events = [e for e in sim.events if e.at <= sim.as_of]
    return process, with_activities(process, events, sim.as_of), sim.as_of


@pytest.fixture(scope="module")
def by_owner(pipeline):
    process, events, as_of = pipeline
    return build_document(events, process, as_of=as_of, by="owner", flag_pushes=2, top=5)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.02)


class TestSection:
    def test_without_by_the_document_has_no_segment_section(self, pipeline):
        process, events, as_of = pipeline
        assert "segments" not in build_document(events, process, as_of=as_of)

    def test_one_row_per_owner_riskiest_first(self, by_owner):
        rows = by_owner["segments"]["rows"]
        assert len({tuple(r["segment"]) for r in rows}) == len(rows) > 3
        keys = [(-r["soft_forecast"], -r["at_risk_amount"]) for r in rows]
        assert keys == sorted(keys)

    def test_the_forecast_parts_add_up_and_the_soft_part_is_the_risky_ones(self, by_owner):
        for r in by_owner["segments"]["rows"]:
            parts = r["forecast_parts"]
            assert close(r["forecast"], sum(parts.values()))
            assert close(r["soft_forecast"], r["forecast"] - parts["healthy"])
            assert r["soft_share"] is None or 0.0 <= r["soft_share"] <= 1.0

    def test_deals_at_risk_are_bounded_by_top_and_say_why(self, by_owner):
        for r in by_owner["segments"]["rows"]:
            assert len(r["deals"]) == r["deals_count"]["shown"] <= 5
            assert r["deals_count"]["total"] == r["at_risk_deals"]
            assert all(d["reasons"] for d in r["deals"])
            weights = [d["weighted"] for d in r["deals"]]
            assert weights == sorted(weights, reverse=True)

    def test_the_section_states_its_soft_forecast_definition(self, by_owner):
        section = by_owner["segments"]
        assert "pushed at least 2 times" in section["definition"]
        assert section["by"] == ["owner"]
        assert section["activities"] is True

    def test_a_log_without_any_activity_leaves_staleness_by_activity_unknown(self):
        process = b2b()
        sim = simulate(120, seed=3, process=process, segments=True)
        events = [e for e in sim.events if e.at <= sim.as_of]
        section = build_document(events, process, as_of=sim.as_of, by="team")["segments"]
        assert section["activities"] is False
        for row in section["rows"]:
            assert row["stale_deals"] is None
            assert row["stale_amount"] is None
            assert row["forecast_parts"]["stale"] == 0.0
        with_calls = build_document(
            with_activities(process, events, sim.as_of), process, as_of=sim.as_of, by="team"
        )["segments"]
        assert with_calls["activities"] is True
        assert any(row["stale_deals"] for row in with_calls["rows"])

    def test_several_columns_comma_separated_or_as_a_sequence(self, pipeline):
        process, events, as_of = pipeline
        one = build_document(events, process, as_of=as_of, by="region,team")["segments"]
        two = build_document(events, process, as_of=as_of, by=("region", "team"))["segments"]
        assert one == two
        assert one["by"] == ["region", "team"]
        assert all(len(r["segment"]) == 2 for r in one["rows"])

    def test_an_unknown_column_is_refused_naming_the_columns_there_are(self, pipeline):
        process, events, as_of = pipeline
        with pytest.raises(UnknownSegmentColumnError, match=r"'product'.*owner.*region.*team"):
            build_document(events, process, as_of=as_of, by="product")

    def test_data_without_segments_says_so(self):
        process = b2b()
        sim = simulate(40, seed=2, process=process)
        events = [e for e in sim.events if e.at <= sim.as_of]
        with pytest.raises(UnknownSegmentColumnError, match="records no owner"):
            build_document(events, process, as_of=sim.as_of, by="owner")


class TestRebuiltFromTheAnalytics:
    """Every number of the section, recomputed from the public analytics functions."""

    def test_every_row_is_rebuilt(self, pipeline, by_owner):
        process, events, as_of = pipeline
        section = by_owner["segments"]
        estimator = section["estimator"]
        totals = {
            r.segment: r
            for r in an.rollup(events, process, as_of=as_of, levels=("owner",), estimator=estimator)
            if r.level == "owner"
        }
        cards = {r.segment: r for r in an.scorecard(events, process, as_of=as_of, by="owner")}
        deals = an.staleness(events, process, as_of=as_of, by="owner")
        slow = {s.opportunity_id for s in an.stalled(events, process, as_of=as_of)}
        slips = {
            d.opportunity_id: d
            for d in an.slippage(events, process, as_of=as_of, flag_pushes=2).deals
        }
        now = {s.opportunity_id: s for s in an.snapshot(events, process, at=as_of)}
        figures: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for d in deals:
            mine = figures[d.segment]
            close_date = now[d.opportunity_id].close_date
            slip = slips.get(d.opportunity_id)
            flags = {
                "stalled": d.opportunity_id in slow,
                "stale": bool(d.stale),
                "slipping": slip is not None and slip.flagged,
                "overdue": close_date is not None and close_date < as_of.date(),
            }
            mine["pushes"] += 0 if slip is None else slip.pushes
            for name, holds in flags.items():
                mine[name] += holds
                mine[f"{name}_amount"] += float(d.amount or 0) if holds else 0.0
            mine["at_risk"] += any(flags.values())
        assert {tuple(r["segment"]) for r in section["rows"]} == set(totals) | set(cards)
        for row in section["rows"]:
            key = tuple(row["segment"])
            total, card, mine = totals.get(key), cards.get(key), figures[key]
            assert row["open_deals"] == (0 if total is None else total.deals)
            assert close(row["pipeline"], float(total.pipeline if total else Decimal(0)))
            assert close(row["forecast"], float(total.period_weighted if total else Decimal(0)))
            assert row["won"] == (0 if card is None else card.won)
            assert close(row["win_rate"], None if card is None else card.win_rate)
            assert close(
                row["median_cycle_days"], None if card is None else card.won_cycle_median_days
            )
            assert row["small"] == (card is None or card.small)
            for name in ("stalled", "stale", "slipping", "overdue"):
                assert row[f"{name}_deals"] == mine[name], (key, name)
                assert close(row[f"{name}_amount"], mine[f"{name}_amount"])
            assert row["pushes"] == mine["pushes"]
            assert row["at_risk_deals"] == mine["at_risk"]


class TestPage:
    def test_the_page_has_the_section_its_chart_and_the_deals(self, by_owner):
        page = render_html(by_owner)
        assert 'id="segments-h">By segment<' in page
        assert 'data-chart="segments"' in page
        assert "segment-deals" in page
        assert "Soft forecast: the share" in page

    def test_the_korean_page_needs_no_text_the_catalogue_lacks(self, by_owner):
        ko = catalogue("ko")
        ko.missing.clear()
        page = render_html(by_owner, language="ko")
        assert set() == ko.missing
        assert 'id="segments-h">세그먼트별<' in page

    def test_a_page_without_the_section_has_no_segment_heading(self, pipeline):
        process, events, as_of = pipeline
        page = render_html(build_document(events, process, as_of=as_of))
        assert 'id="segments-h"' not in page


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    deals=st.integers(5, 60),
    at=st.floats(0.3, 1.0),
    by=st.sampled_from(["owner", "team", "region,team"]),
)
def test_any_pipeline_splits_into_segments_that_add_up(seed, deals, at, by) -> None:
    """Every open deal is in exactly one row; the parts of each forecast add up to it."""
    process = b2b()
    sim = simulate(deals, seed=seed, process=process, segments=True)
    first = min(e.at for e in sim.events)
    as_of = first + (sim.as_of - first) * at
    events = [e for e in sim.events if e.at <= as_of]
    document = build_document(events, process, as_of=as_of, by=by)
    rows = document["segments"]["rows"]
    assert sum(r["open_deals"] for r in rows) == document["summary"]["open"]
    assert close(sum(r["pipeline"] for r in rows), document["summary"]["open_amount"])
    for r in rows:
        assert close(sum(r["forecast_parts"].values()), r["forecast"])
        assert 0.0 <= r["soft_forecast"] <= r["forecast"] + 0.02
        assert r["at_risk_deals"] <= r["open_deals"]
        assert r["won"] + r["lost"] == r["closed"]
    keys = [(-r["soft_forecast"], -r["at_risk_amount"]) for r in rows]
    assert keys == sorted(keys)


def _frame_of(events):
    from stagegate.store import MemoryStore

    store = MemoryStore()
    store.append(events)
    return store.to_frame(columns=None)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), deals=st.integers(1, 40))
def test_the_frame_is_read_column_wise_to_the_same_segment_history(seed, deals):
    """frame_inputs keeps only the rows where a segment changes: the same value in force."""
    from stagegate.analytics._segments import frame_inputs, read_inputs

    process = b2b()
    sim = simulate(deals, seed=seed, process=process, segments=True)
    events = with_activities(process, [e for e in sim.events if e.at <= sim.as_of], sim.as_of)
    frame = _frame_of(events)
    columns = ("owner", "team", "region")
    for data in (frame, frame.lazy()):
        fast, slow = frame_inputs(data, columns), read_inputs(frame, columns)
        assert fast is not None
        assert fast.activities == slow.activities
        for event in events:
            at_us = an_epoch(event.at)
            for t in (at_us - 1, at_us, at_us + 1):
                oid = event.opportunity_id
                assert fast.at(oid, t, columns) == slow.at(oid, t, columns)
                assert fast.at(oid, t, ("region",)) == slow.at(oid, t, ("region",))
                assert fast.last_activity(oid, t) == slow.last_activity(oid, t)
        _same_answers_at_once(fast, slow, events, columns)


def _same_answers_at_once(fast, slow, events, columns):
    """The batch lookups of the frame's inputs answer as the row-wise per-deal ones."""
    ids = [e.opportunity_id for e in events] + ["no-such-deal"]
    instants = [an_epoch(e.at) + (i % 3) - 1 for i, e in enumerate(events)] + [0]
    assert fast.segments_at(ids, instants, columns) == [
        slow.at(oid, t, columns) for oid, t in zip(ids, instants, strict=True)
    ]
    for t in sorted(set(instants))[:: max(1, len(instants) // 5)]:
        assert fast.segments_at(ids, t, columns[::-1]) == slow.segments_at(ids, t, columns[::-1])
        assert fast.last_activities(ids, t) == slow.last_activities(ids, t)
    assert fast.segments_at([], 0, columns) == [] == fast.last_activities([], 0)
    assert fast.logs_activities() == slow.logs_activities()


_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 6),  # few instants: ties within a deal
        st.sampled_from(["ana", "ben", None]),
        st.sampled_from(["north", None]),
        st.sampled_from(["activity_logged", "stage_changed"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=_ROWS,
    kinds=st.booleans(),
    order=st.sampled_from([(), ("opportunity_id", "seq"), ("opportunity_id", "at", "seq")]),
    categorical=st.booleans(),
)
@example(  # a deal's rows apart and out of time order, each pair of neighbours in order
    rows=[
        ("a", 5, "ana", None, "activity_logged"),
        ("b", 0, "ben", None, "stage_changed"),
        ("a", 1, "ben", None, "stage_changed"),
        ("a", 6, "ben", None, "stage_changed"),
    ],
    kinds=True,
    order=(),
    categorical=False,
)
def test_frame_inputs_answer_as_the_rows_do_with_ties_and_missing_values(
    rows, kinds, order, categorical
):
    """As-of joins on the frame: the value in force at ties, before a deal's first row, None."""
    from stagegate.analytics._segments import frame_inputs, read_inputs

    pl = pytest.importorskip("polars")
    seqs: dict[str, int] = defaultdict(int)
    table = []
    for oid, at, owner, region, kind in rows:
        seqs[oid] += 1
        table.append((oid, seqs[oid], at * 1_000_000, owner, region, kind))
    frame = pl.DataFrame(
        table,
        schema={
            "opportunity_id": pl.String,
            "seq": pl.Int64,
            "at": pl.Int64,
            "owner": pl.String,
            "region": pl.String,
            "kind": pl.String,
        },
        orient="row",
    ).with_columns(pl.col("at").cast(pl.Datetime("us", "UTC")))
    if order:  # a store's order, or the one frame_inputs reads without sorting
        frame = frame.sort(*order)
    if categorical:  # as the report reads a store (to_frame(categorical=True))
        frame = frame.with_columns(pl.col("owner", "region", "kind").cast(pl.Categorical))
    if not kinds:
        frame = frame.drop("kind")
    columns = ("owner", "region")
    fast, slow = frame_inputs(frame, columns), read_inputs(frame, columns)
    assert fast is not None
    ids = ["a", "b", "c", "d"] * 9
    instants = [t * 1_000_000 + d for t in range(-1, 8) for d in (-1, 0, 1, 0)]
    assert fast.segments_at(ids, instants, columns) == [
        slow.at(oid, t, columns) for oid, t in zip(ids, instants, strict=True)
    ]
    for t in (-1, 0, 3_000_000, 3_000_001, 9_000_000):
        assert fast.segments_at(ids, t, ("region",)) == slow.segments_at(ids, t, ("region",))
        assert fast.last_activities(ids, t) == slow.last_activities(ids, t)
    assert fast.logs_activities() == slow.logs_activities()
    assert fast.activities == slow.activities  # the Python history, built on demand
    assert [fast.at(o, t, columns) for o, t in zip(ids, instants, strict=True)] == [
        slow.at(o, t, columns) for o, t in zip(ids, instants, strict=True)
    ]


def an_epoch(at):
    from stagegate._time import epoch_us

    return epoch_us(at)


def test_frames_it_cannot_read_column_wise_go_the_row_way():
    from stagegate.analytics._segments import frame_inputs

    pl = pytest.importorskip("polars")
    assert frame_inputs([{"opportunity_id": "a"}], ("owner",)) is None
    text_instants = pl.DataFrame({"opportunity_id": ["a"], "at": ["2025-01-01T00:00:00Z"]})
    assert frame_inputs(text_instants, ("owner",)) is None
    numbers = pl.DataFrame(
        {"opportunity_id": ["a"], "at": [0], "owner": [3]},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    assert frame_inputs(numbers, ("owner",)) is None


def test_the_section_of_a_frame_is_the_section_of_its_events(pipeline):
    process, events, as_of = pipeline
    frame = _frame_of(events)
    options = {"as_of": as_of, "by": "owner", "flag_pushes": 2, "top": 5}
    from_events = build_document(events, process, **options)["segments"]
    from_frame = build_document(frame, process, **options)["segments"]
    assert _rounded(from_frame) == _rounded(from_events)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    deals=st.integers(3, 50),
    at=st.floats(0.2, 1.0),
    by=st.sampled_from(["owner", "team", "region,team"]),
    activities=st.booleans(),
)
def test_any_pipeline_s_section_is_the_same_from_its_frame(seed, deals, at, by, activities):
    """The frame path (as-of joins, group-bys) and the events path give the same section."""
    process = b2b()
    sim = simulate(deals, seed=seed, process=process, segments=True)
    first = min(e.at for e in sim.events)
    as_of = first + (sim.as_of - first) * at
    events = [e for e in sim.events if e.at <= as_of]
    if activities:
        events = with_activities(process, events, as_of)
    options = {"as_of": as_of, "by": by, "flag_pushes": 2, "top": 4}
    from_events = build_document(events, process, **options)["segments"]
    from_frame = build_document(_frame_of(events), process, **options)["segments"]
    assert _rounded(from_frame) == _rounded(from_events)


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize("as_frame", [False, True])
def test_the_section_reuses_the_report_s_analyses_and_stays_the_same(pipeline, as_frame):
    # build_document hands its prepared log, slippage, cycle times and probabilities to the
    # section; the section computed on its own from the same log must be the same
    from stagegate.report._segments import segment_section

    process, events, as_of = pipeline
    log = _frame_of(events) if as_frame else events
    document = build_document(log, process, as_of=as_of, by="owner", flag_pushes=2, top=5)
    alone = segment_section(
        log,
        process,
        as_of=as_of,
        by="owner",
        estimator=document["estimator"]["name"],
        flag_pushes=2,
        top=5,
    )
    assert _rounded(alone) == _rounded(document["segments"])
