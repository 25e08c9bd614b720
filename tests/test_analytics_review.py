"""The weekly review: quotas and coverage, staleness, changes since, rollups, scorecards."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from stagegate import Opportunity, b2b
from stagegate import analytics as an
from stagegate.analytics.review import SMALL_SAMPLE
from stagegate.currency import MixedCurrencyError, RateTable
from stagegate.segments import in_force
from stagegate.simulate import simulate
from strategies import opportunities

UTC = timezone.utc
PROCESS = b2b()
T = datetime(2026, 3, 2, 9, tzinfo=UTC)
SINCE = datetime(2026, 3, 9, tzinfo=UTC)
AS_OF = datetime(2026, 3, 16, tzinfo=UTC)


def day(d: int) -> datetime:
    return datetime(2026, 3, d, 12, tzinfo=UTC)


def deal(oid: str, owner: str, amount: int, close: date | None, at: datetime = T) -> Opportunity:
    return Opportunity.open(
        PROCESS, oid, at=at, actor="crm", owner=owner, amount=amount, close_date=close
    )


def week() -> list[Opportunity]:
    """One deal per kind of change between SINCE and AS_OF (see the module's test table)."""
    new = deal("new", "kim", 10, date(2026, 3, 25), at=day(10))
    pushed = deal("pushed", "kim", 20, date(2026, 3, 20))
    pushed.record_history("negotiation", at=day(3), actor="crm")
    pushed.reschedule(date(2026, 3, 28), at=day(12), actor="kim")
    moved_out = deal("moved_out", "kim", 30, date(2026, 3, 30))
    moved_out.reschedule(date(2026, 4, 15), at=day(12), actor="kim")
    moved_in = deal("moved_in", "lee", 40, date(2026, 4, 20))
    moved_in.reschedule(date(2026, 3, 25), at=day(12), actor="lee")
    increased = deal("increased", "lee", 50, date(2026, 5, 1))
    increased.change_amount(70, at=day(12), actor="lee")
    decreased = deal("decreased", "lee", 60, date(2026, 5, 1))
    decreased.change_amount(45, at=day(12), actor="lee")
    won = deal("won", "kim", 80, date(2026, 3, 14))
    won.reassign("lee", at=day(11), actor="manager")
    won.record_history("won", at=day(13), actor="crm")
    won.reassign("kim", at=day(15), actor="manager")  # after the close: still lee's win
    lost = deal("lost", "kim", 90, None)
    lost.record_history("lost", at=day(12), actor="crm", reason="price")
    old_won = deal("old_won", "kim", 25, None)
    old_won.record_history("won", at=day(5), actor="crm")
    unchanged = deal("unchanged", "kim", 5, date(2026, 6, 1))
    return [new, pushed, moved_out, moved_in, increased, decreased, won, lost, old_won, unchanged]


class TestChanges:
    def test_every_kind_of_change_is_counted_for_the_right_owner(self) -> None:
        rows = an.changes(week(), PROCESS, since=SINCE, as_of=AS_OF)
        got = [(r.segment[0], r.change, r.deals, r.amount, r.delta) for r in rows]
        assert [
            ("kim", "new", 1, Decimal(10), Decimal(10)),
            ("kim", "moved_out", 1, Decimal(30), Decimal(0)),
            ("kim", "pushed", 2, Decimal(50), Decimal(0)),
            ("kim", "lost", 1, Decimal(90), Decimal(0)),
            ("lee", "moved_in", 1, Decimal(40), Decimal(0)),
            ("lee", "pulled_in", 1, Decimal(40), Decimal(0)),
            ("lee", "increased", 1, Decimal(70), Decimal(20)),
            ("lee", "decreased", 1, Decimal(45), Decimal(-15)),
            ("lee", "won", 1, Decimal(80), Decimal(0)),
        ] == got

    def test_deal_changes_list_each_deal_with_its_dates(self) -> None:
        found = {
            (c.opportunity_id, c.change): c
            for c in an.deal_changes(week(), PROCESS, since=SINCE, as_of=AS_OF)
        }
        moved = found["moved_out", "moved_out"]
        assert (date(2026, 3, 30), date(2026, 4, 15)) == (moved.close_date_since, moved.close_date)
        assert ("unchanged", "pushed") not in found
        assert ("old_won", "won") not in found
        assert {k for _, k in found} <= set(an.CHANGES)

    def test_by_month_a_close_date_moving_inside_the_quarter_is_a_move(self) -> None:
        pushed = deal("p", "kim", 20, date(2026, 3, 20))
        pushed.reschedule(date(2026, 4, 2), at=day(12), actor="kim")
        by_month = an.changes([pushed], PROCESS, since=SINCE, as_of=AS_OF, period="month")
        assert ["moved_out", "pushed"] == [r.change for r in by_month]

    def test_an_instant_before_since_is_refused(self) -> None:
        with pytest.raises(an.AnalyticsError, match="before start"):
            an.changes(week(), PROCESS, since=AS_OF, as_of=SINCE)


class TestCoverage:
    QUOTAS = an.QuotaTable.of(
        [("kim", "2026-Q1", 200), ("lee", "2026-Q1", "100"), ("park", "2026-Q1", 50.5)]
    )

    def test_quota_won_remaining_and_coverage_per_owner(self) -> None:
        rows = {r.segment[0]: r for r in self._rows()}
        kim, lee, park = rows["kim"], rows["lee"], rows["park"]
        assert (Decimal(200), Decimal(25), Decimal(175)) == (kim.quota, kim.won, kim.remaining)
        assert (Decimal(30), 2, 1) == (kim.pipeline, kim.open_deals, kim.won_deals)
        assert Decimal("12.50") == kim.weighted  # 10 x 0.05 in lead + 20 x 0.6 in negotiation
        assert pytest.approx(30 / 175) == kim.coverage
        assert pytest.approx(12.5 / 175) == kim.weighted_coverage
        assert (Decimal(80), Decimal(20), Decimal(40), 2.0) == (
            lee.won,
            lee.remaining,
            lee.pipeline,
            lee.coverage,
        )
        assert (Decimal("50.5"), Decimal(0), 0.0, True) == (
            park.quota,
            park.pipeline,
            park.coverage,
            park.small,
        )
        assert {"2026-Q1"} == {r.period for r in rows.values()}

    def test_a_met_quota_leaves_nothing_to_cover(self) -> None:
        quotas = an.QuotaTable.of([("lee", "2026-Q1", 60)])
        rows = {r.segment[0]: r for r in self._rows(quotas)}
        assert (Decimal(0), None) == (rows["lee"].remaining, rows["lee"].coverage)
        assert (None, None) == (rows["kim"].quota, rows["kim"].coverage)

    def test_by_month_only_that_months_deals_and_quota_count(self) -> None:
        quotas = an.QuotaTable.of([("kim", "2026-03", 100), ("kim", "2026-02", 999)])
        february = deal("february", "kim", 7, None, at=datetime(2026, 2, 2, tzinfo=UTC))
        february.record_history("won", at=datetime(2026, 2, 20, tzinfo=UTC), actor="crm")
        rows = {
            r.segment[0]: r
            for r in an.coverage(
                [*week(), february], PROCESS, as_of=AS_OF, quotas=quotas, period="month"
            )
        }
        assert ("2026-03", Decimal(100), Decimal(25)) == (
            rows["kim"].period,
            rows["kim"].quota,
            rows["kim"].won,
        )

    def _rows(self, quotas: an.QuotaTable | None = None, **kwargs: Any) -> list[an.CoverageRow]:
        return an.coverage(
            week(),
            PROCESS,
            as_of=AS_OF,
            quotas=quotas or self.QUOTAS,
            estimator="configured",
            **kwargs,
        )

    def test_deals_in_several_currencies_need_rates(self) -> None:
        eur = Opportunity.open(
            PROCESS,
            "eur",
            at=T,
            actor="crm",
            owner="kim",
            amount=100,
            close_date=date(2026, 3, 30),
            attributes={"currency": "EUR"},
        )
        usd = deal("usd", "kim", 10, date(2026, 3, 30))
        quotas = an.QuotaTable.of([("kim", "2026-Q1", 100)], currency="EUR")
        with pytest.raises(MixedCurrencyError):
            an.coverage([eur, usd], PROCESS, as_of=AS_OF, quotas=quotas)
        rates = RateTable.of([("2026-03-01", "EUR", "1.1")], reporting="USD")
        [row] = an.coverage(
            [eur, usd],
            PROCESS,
            as_of=AS_OF,
            quotas=quotas,
            rates=rates,
            default_currency="USD",
            estimator="configured",
        )
        assert (Decimal("110.00"), Decimal("120.00"), Decimal("6.00")) == (
            row.quota,
            row.pipeline,
            row.weighted,
        )

    @pytest.mark.parametrize(
        ("rows", "words"),
        [
            ([("kim", "2026-Q5", 1)], "not a period label"),
            ([("kim", "Q1", 1)], "not a period label"),
            ([("kim", "2026-13", 1)], "not a period label"),
            ([("kim", "2026-Q1", -1)], "not a number >= 0"),
            ([("kim", "2026-Q1", "lots")], "not a number >= 0"),
            ([("", "2026-Q1", 1)], "is not a name"),
            ([("kim", "2026-Q1")], "give (owner, period, amount)"),
            ([("kim", "2026-Q1", 1), ("kim", "2026-Q1", 2)], "second quota"),
        ],
    )
    def test_a_malformed_quota_table_is_refused(self, rows: list[Any], words: str) -> None:
        with pytest.raises(an.AnalyticsError, match=words.replace("(", r"\(").replace(")", r"\)")):
            an.QuotaTable.of(rows)

    def test_a_csv_quota_table_reads_by_any_segment(self, tmp_path: Path) -> None:
        path = tmp_path / "quotas.csv"
        path.write_text("team,period,amount\neast,2026-Q1,500\n", encoding="utf-8")
        table = an.QuotaTable.read_csv(path, by="team")
        assert (Decimal(500), None) == (table.quota("east", "2026-Q1"), table.quota(None, "x"))
        with pytest.raises(an.AnalyticsError, match="cannot read quotas"):
            an.QuotaTable.read_csv(tmp_path / "none.csv")


class TestStaleness:
    def test_activity_next_step_and_dwell_side_by_side(self) -> None:
        quiet = deal("quiet", "kim", 10, None)
        busy = deal("busy", "kim", 10, None)
        busy.log_activity("call", at=day(12), actor="kim")
        late = deal("late", "lee", 10, None)
        late.set_field("next_step_due", "2026-03-10", at=day(3), actor="lee")
        late.log_activity("email", at=day(14), actor="lee")
        soon = Opportunity.open(
            PROCESS, "soon", at=T, actor="crm", owner="lee", fields={"next_step_due": "2026-04-01"}
        )
        soon.log_activity("email", at=day(15), actor="lee")
        rows = an.staleness([quiet, busy, late, soon], PROCESS, as_of=AS_OF, activity_days=7)
        got = {r.opportunity_id: r for r in rows}
        assert ["quiet", "busy", "late", "soon"] == [r.opportunity_id for r in rows]
        assert (None, 13.625, True) == (
            got["quiet"].last_activity_at,
            got["quiet"].days_since_activity,
            got["quiet"].stale,
        )
        assert (day(12), 3.5, False) == (
            got["busy"].last_activity_at,
            got["busy"].days_since_activity,
            got["busy"].stale,
        )
        assert (date(2026, 3, 10), True) == (
            got["late"].next_step_due,
            got["late"].next_step_overdue,
        )
        assert (date(2026, 4, 1), False) == (
            got["soon"].next_step_due,
            got["soon"].next_step_overdue,
        )
        assert got["quiet"].next_step_overdue is False

    def test_stalled_is_the_stalled_analysis(self) -> None:
        deals = week()
        expected = {r.opportunity_id for r in an.stalled(deals, PROCESS, as_of=AS_OF)}
        rows = an.staleness(deals, PROCESS, as_of=AS_OF)
        assert expected == {r.opportunity_id for r in rows if r.stalled}
        assert expected  # the scenario has stalled deals
        assert {
            "new",
            "pushed",
            "moved_out",
            "moved_in",
            "increased",
            "decreased",
            "unchanged",
        } == {r.opportunity_id for r in rows}

    def test_a_table_has_dwell_but_no_activities(self) -> None:
        rows = [
            {"opportunity_id": "a", "at": T, "stage": "lead_generation", "owner": "kim"},
        ]
        [row] = an.staleness(rows, PROCESS, as_of=AS_OF)
        assert (("kim",), None, None, None) == (
            row.segment,
            row.days_since_activity,
            row.stale,
            row.next_step_overdue,
        )

    def test_activity_days_must_be_positive(self) -> None:
        with pytest.raises(an.AnalyticsError, match="activity_days"):
            an.staleness(week(), PROCESS, as_of=AS_OF, activity_days=0)


def simulated(seed: int) -> tuple[list[Any], datetime]:
    sim = simulate(400, seed=seed, process=PROCESS, segments=True, span_days=200)
    return list(sim.events), sim.as_of


def reference_open(events: list[Any], as_of: datetime) -> list[tuple[Any, ...]]:
    """Per deal open at as_of: (owner, team, region, amount, stage), by replaying its log."""
    result = []
    for _, group in itertools.groupby(events, key=lambda e: e.opportunity_id):
        log = [e for e in group if e.at <= as_of]
        if not log:
            continue
        state = Opportunity.replay(PROCESS, log)
        if state.is_closed:
            continue
        values = in_force(log, as_of, ("owner", "team", "region"))
        result.append(
            (values["owner"], values["team"], values["region"], state.amount, state.stage)
        )
    return result


class TestRollup:
    @pytest.mark.parametrize("seed", [1, 2])
    def test_rollup_equals_a_replay_of_every_deal(self, seed: int) -> None:
        events, as_of = simulated(seed)
        rows = an.rollup(events, PROCESS, as_of=as_of, estimator="configured")
        expected: dict[tuple[str, tuple[Any, ...]], Decimal] = defaultdict(Decimal)
        weighted: dict[tuple[str, tuple[Any, ...]], Decimal] = defaultdict(Decimal)
        probability = {s.id: Decimal(repr(s.probability)) for s in PROCESS.stages}
        for owner, team, region, amount, stage in reference_open(events, as_of):
            for key in (
                ("owner", (owner, team, region)),
                ("team", (team, region)),
                ("region", (region,)),
                ("all", ()),
            ):
                expected[key] += amount
                weighted[key] += amount * probability[stage]
        assert dict(expected) == {(r.level, r.segment): r.pipeline for r in rows}
        for r in rows:
            assert weighted[r.level, r.segment].quantize(Decimal("0.01")) == r.weighted

    def test_each_level_adds_up_to_the_total(self) -> None:
        events, as_of = simulated(3)
        rows = an.rollup(events, PROCESS, as_of=as_of)
        total = next(r for r in rows if r.level == "all")
        for level in ("owner", "team", "region"):
            mine = [r for r in rows if r.level == level]
            assert total.pipeline == sum(r.pipeline for r in mine)
            assert total.period_pipeline == sum(r.period_pipeline for r in mine)
            assert total.deals == sum(r.deals for r in mine)
        assert [r.level for r in rows] == sorted(
            (r.level for r in rows), key=("owner", "team", "region", "all").index
        )

    def test_mixed_currencies_are_refused_then_converted(self) -> None:
        eur = Opportunity.open(
            PROCESS, "e", at=T, actor="crm", owner="kim", amount="100.00",
            attributes={"currency": "EUR"},
        )  # fmt: skip
        krw = Opportunity.open(
            PROCESS, "k", at=T, actor="crm", owner="kim", amount=1_000_000,
            attributes={"currency": "KRW"},
        )  # fmt: skip
        with pytest.raises(MixedCurrencyError, match="EUR, KRW"):
            an.rollup([eur, krw], PROCESS, as_of=AS_OF, levels=["owner"])
        rates = RateTable.of(
            [("2026-01-01", "EUR", "1.08"), ("2026-01-01", "KRW", "0.00074")], reporting="USD"
        )
        rows = an.rollup([eur, krw], PROCESS, as_of=AS_OF, levels=["owner"], rates=rates)
        assert [Decimal("848.00"), Decimal("848.00")] == [r.pipeline for r in rows]


class TestScorecard:
    @pytest.mark.parametrize("by", ["owner", ("region",), ("region", "team")])
    def test_scorecard_equals_an_independent_count(self, by: Any) -> None:
        events, as_of = simulated(4)
        columns = (by,) if isinstance(by, str) else by
        closed: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        won: Counter[tuple[Any, ...]] = Counter()
        for _, group in itertools.groupby(events, key=lambda e: e.opportunity_id):
            log = [e for e in group if e.at <= as_of]
            state = Opportunity.replay(PROCESS, log)
            if not state.is_closed:
                continue
            close = max(e.at for e in log if e.is_stage_change)
            key = tuple(in_force(log, close, columns)[c] for c in columns)
            closed[key].append((close - log[0].at) / timedelta(days=1))
            won[key] += state.is_won
        rows = {r.segment: r for r in an.scorecard(events, PROCESS, as_of=as_of, by=by)}
        assert set(closed) <= set(rows)
        for key, days in closed.items():
            row = rows[key]
            assert (len(days), won[key]) == (row.closed, row.won)
            assert pytest.approx(statistics.median(days)) == row.cycle_median_days
            assert pytest.approx(won[key] / len(days)) == row.win_rate
            assert (len(days) < SMALL_SAMPLE) == row.small

    def test_stalled_and_open_counts_add_up_to_the_whole(self) -> None:
        events, as_of = simulated(5)
        rows = an.scorecard(events, PROCESS, as_of=as_of)
        assert sum(r.stalled for r in rows) == len(an.stalled(events, PROCESS, as_of=as_of))
        assert sum(r.open_deals for r in rows) == len(reference_open(events, as_of))

    def test_by_must_name_columns(self) -> None:
        with pytest.raises(an.AnalyticsError, match="by must be"):
            an.scorecard(week(), PROCESS, as_of=AS_OF, by=())


class TestFrames:
    def test_a_pandas_frame_gives_the_rows_answer(self) -> None:
        pd = pytest.importorskip("pandas")
        pytest.importorskip("narwhals")
        rows = [
            {"opportunity_id": "a", "at": T, "stage": "lead_generation", "amount": 10.5,
             "close_date": date(2026, 3, 20), "owner": "kim", "seq": 1},
            {"opportunity_id": "a", "at": day(10), "stage": "lead_generation", "amount": 10.5,
             "close_date": date(2026, 3, 20), "owner": "lee", "seq": 2},
            {"opportunity_id": "b", "at": T, "stage": "lead_generation", "amount": None,
             "close_date": None, "owner": None, "seq": 1},
        ]  # fmt: skip
        frame = pd.DataFrame(rows)
        assert an.rollup(rows, PROCESS, as_of=AS_OF, levels=["owner"]) == an.rollup(
            frame, PROCESS, as_of=AS_OF, levels=["owner"]
        )
        [lee, nobody, _] = an.rollup(frame, PROCESS, as_of=AS_OF, levels=["owner"])
        assert (("lee",), Decimal("10.5"), (None,), 1) == (
            lee.segment,
            lee.pipeline,
            nobody.segment,
            nobody.deals,
        )


class TestInputs:
    ROWS = (
        {"opportunity_id": "a", "at": "2026-03-02T09:00:00Z", "stage": "lead_generation",
         "amount": 10, "owner": "kim", "seq": 1},
        {"opportunity_id": "a", "at": "2026-03-10T09:00:00Z", "stage": "lead_generation",
         "amount": 10, "owner": float("nan"), "seq": 2},
    )  # fmt: skip

    def test_text_instants_and_nan_segments_are_read(self) -> None:
        [row] = an.rollup(list(self.ROWS), PROCESS, as_of=AS_OF, levels=["owner"])[:1]
        assert ((None,), 1) == (row.segment, row.deals)  # NaN: the owner was cleared
        [early] = an.rollup(list(self.ROWS), PROCESS, as_of=day(5), levels=["owner"])[:1]
        assert ("kim",) == early.segment

    def test_a_lazy_polars_frame_gives_the_rows_answer(self) -> None:
        pl = pytest.importorskip("polars")
        rows = [dict(r, owner="kim" if r["seq"] == 1 else None) for r in self.ROWS]
        frame = pl.DataFrame(rows).with_columns(pl.col("at").str.to_datetime(time_zone="UTC"))
        expected = an.rollup(rows, PROCESS, as_of=day(5), levels=["owner"])
        assert expected == an.rollup(frame.lazy(), PROCESS, as_of=day(5), levels=["owner"])

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            ("events.csv", "data must be events"),
            ({"opportunity_id": "a"}, "data must be events"),
            ([3], "item 0 is a int"),
            ([{"opportunity_id": "a", "stage": "lead_generation"}], "lacks opportunity_id or at"),
        ],
    )
    def test_unusable_data_is_a_typed_error(self, data: Any, words: str) -> None:
        with pytest.raises(an.AnalyticsError, match=words):
            an.rollup(data, PROCESS, as_of=AS_OF)

    def test_unknown_period_and_estimator_are_typed_errors(self) -> None:
        with pytest.raises(an.AnalyticsError, match="period must be"):
            an.rollup(week(), PROCESS, as_of=AS_OF, period="year")
        with pytest.raises(an.AnalyticsError, match="estimator must be"):
            an.rollup(week(), PROCESS, as_of=AS_OF, estimator="dwell")

    def test_a_next_step_that_is_not_a_date_holds_no_deal_to_it(self) -> None:
        vague = deal("vague", "kim", 10, None)
        vague.set_field("next_step_due", "next week", at=day(3), actor="kim")
        cleared = deal("cleared", "kim", 10, None)
        cleared.set_field("next_step_due", "2026-03-04", at=day(3), actor="kim")
        cleared.set_field("next_step_due", None, at=day(4), actor="kim")
        rows = an.staleness([vague, cleared], PROCESS, as_of=AS_OF)
        assert [(None, False), (None, False)] == [
            (r.next_step_due, r.next_step_overdue) for r in rows
        ]


class TestReview:
    def test_one_row_per_owner_joins_pipeline_quota_health_and_changes(self) -> None:
        quotas = an.QuotaTable.of([("kim", "2026-Q1", 200), ("lee", "2026-Q1", 100)])
        result = an.weekly_review(
            week(),
            PROCESS,
            as_of=AS_OF,
            since=SINCE,
            quotas=quotas,
            estimator="configured",
            activity_days=7,
        )
        rows = {r.segment: r for r in result.rows}
        kim, lee = rows["kim",], rows["lee",]
        assert ("2026-Q1", ("owner",), None) == (result.period, result.by, result.currency)
        assert (4, Decimal(65), Decimal(30), Decimal(175)) == (
            kim.open_deals,
            kim.pipeline,
            kim.period_pipeline,
            kim.remaining,
        )
        assert {"new": 1, "moved_out": 1, "pushed": 2, "lost": 1} == {
            k: n for k, n in kim.changes.items() if n
        }
        assert set(an.CHANGES) == set(kim.changes)
        assert (Decimal(80), 2.0, 3) == (lee.won, lee.coverage, lee.open_deals)
        stalled = Counter(d.segment for d in result.deals if d.stalled)
        assert (stalled["kim",], stalled["lee",]) == (kim.stalled, lee.stalled)
        assert (3, 0) == (kim.stale, kim.next_step_overdue)  # all but 'new': 13.6 days quiet
        assert len(result.changes) == sum(sum(r.changes.values()) for r in result.rows)

    def test_since_defaults_to_a_week_before(self) -> None:
        default = an.weekly_review(week(), PROCESS, as_of=AS_OF)
        explicit = an.weekly_review(week(), PROCESS, as_of=AS_OF, since=AS_OF - timedelta(days=7))
        assert default == explicit

    def test_by_team_and_region_and_a_table(self) -> None:
        rows = [
            {"opportunity_id": "a", "at": T, "stage": "lead_generation", "amount": 10,
             "team": "t1", "region": "east"},
        ]  # fmt: skip
        [row] = an.weekly_review(rows, PROCESS, as_of=AS_OF, by=("region", "team")).rows
        assert (("east", "t1"), Decimal(10), None, None, True) == (
            row.segment,
            row.pipeline,
            row.stale,
            row.quota,
            row.small,
        )

    def test_quotas_for_another_column_are_refused(self) -> None:
        quotas = an.QuotaTable.of([("east", "2026-Q1", 1)], by="team")
        with pytest.raises(an.AnalyticsError, match="quotas are per 'team'"):
            an.weekly_review(week(), PROCESS, as_of=AS_OF, quotas=quotas)

    def test_mixed_currencies_need_rates(self) -> None:
        eur = Opportunity.open(
            PROCESS, "e", at=T, actor="crm", owner="kim", amount=1, attributes={"currency": "EUR"}
        )
        with pytest.raises(MixedCurrencyError):
            an.weekly_review([eur, *week()], PROCESS, as_of=AS_OF)
        rates = RateTable.of([("2026-01-01", "EUR", "2")], reporting="USD")
        result = an.weekly_review(
            [eur, *week()], PROCESS, as_of=AS_OF, rates=rates, default_currency="USD"
        )
        assert ("USD", Decimal("67.00")) == (result.currency, result.rows[0].pipeline)


def _renamed(deal: Opportunity, oid: str) -> list[Any]:
    return [attrs.evolve(e, opportunity_id=oid) for e in deal.events]


class TestProperties:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(opportunities(PROCESS, max_commands=12), min_size=1, max_size=4),
        st.sampled_from([timedelta(0), timedelta(hours=5), timedelta(days=1), timedelta(days=9)]),
    )
    def test_rollup_counts_each_open_deal_for_its_owner_at_as_of(
        self, deals: list[Opportunity], after: timedelta
    ) -> None:
        events = [e for i, d in enumerate(deals) for e in _renamed(d, f"d{i}")]
        as_of = strategies.T0 + after
        expected: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        count: Counter[tuple[Any, ...]] = Counter()
        for d in deals:
            state = d.state_at(as_of)
            if state.is_closed:
                continue
            count[state.owner,] += 1
            expected[state.owner,] += state.amount or Decimal(0)
        rows = an.rollup(events, PROCESS, as_of=as_of, levels=["owner"], estimator="configured")
        assert dict(count) == {r.segment: r.deals for r in rows if r.level == "owner"}
        assert dict(expected) == {r.segment: r.pipeline for r in rows if r.level == "owner"}
        assert [sum(expected.values(), Decimal(0))] == [
            r.pipeline for r in rows if r.level == "all"
        ]
