"""Stage intervals and input handling: re-entries, skips, ties, censoring, bad input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from analytics_data import AS_OF, KINDS, at, edge_rows
from stagegate import analytics as an
from stagegate.errors import InvalidTimestampError, StagegateError, UnknownStageError
from stagegate.simulate import simulate


def visits_of(opp: str) -> list[an.StageInterval]:
    return [
        v for v in an.stage_intervals(edge_rows(), KINDS, as_of=AS_OF) if v.opportunity_id == opp
    ]


class TestStageIntervals:
    def test_a_reentry_is_a_separate_numbered_visit(self) -> None:
        d = visits_of("d")
        assert [(v.stage, v.visit) for v in d] == [
            ("lead", 1),
            ("demo", 1),
            ("lead", 2),
            ("demo", 2),
        ]

    def test_a_skip_and_a_backward_move_end_visits_like_any_move(self) -> None:
        b = visits_of("b")
        assert [(v.stage, v.next_stage) for v in b] == [
            ("lead", "proposal"), ("proposal", "demo"), ("demo", "lost"), ("lost", None)
        ]  # fmt: skip

    def test_same_instant_entries_give_a_zero_length_visit_ordered_by_seq(self) -> None:
        c = visits_of("c")
        assert [(v.stage, v.duration_days) for v in c][:2] == [("lead", 1.0), ("demo", 0.0)]

    def test_a_row_that_keeps_the_stage_is_not_a_stage_entry(self) -> None:
        a = visits_of("a")
        assert [v.stage for v in a] == ["lead", "demo", "proposal", "won"]
        assert a[1].duration_days == 3.0

    def test_an_open_visit_is_censored_at_as_of(self) -> None:
        last = visits_of("d")[-1]
        assert last.censored
        assert last.exited_at is None
        assert last.duration_days == 7.75

    def test_a_terminal_visit_has_no_duration(self) -> None:
        won = visits_of("a")[-1]
        assert (won.kind, won.duration_days, won.censored) == ("won", None, False)

    def test_a_reopened_deal_takes_its_final_outcome(self) -> None:
        e = visits_of("e")
        assert {v.outcome for v in e} == {"lost"}
        assert e[1].stage == "won"
        assert e[1].duration_days == 2.0

    def test_rows_after_as_of_are_ignored(self) -> None:
        f = visits_of("f")
        assert [(v.stage, v.outcome, v.censored) for v in f] == [("lead", "open", True)]

    def test_opportunities_and_events_are_accepted(self) -> None:
        sim = simulate(5, seed=1)
        by_events = an.stage_intervals(sim.events, sim.model.outcomes(), as_of=sim.as_of)
        assert by_events
        assert all(v.kind in an.KINDS for v in by_events)

    def test_a_process_gives_the_stage_kinds(self) -> None:
        from stagegate.templates import b2b

        sim = simulate(5, seed=2)
        assert an.stage_intervals(sim.events, b2b(), as_of=sim.as_of) == an.stage_intervals(
            sim.events, sim.model.outcomes(), as_of=sim.as_of
        )


class TestBadInput:
    def test_an_unknown_stage_is_named(self) -> None:
        rows = [{"opportunity_id": "x", "at": at(0), "stage": "nowhere"}]
        with pytest.raises(UnknownStageError, match="nowhere"):
            an.stage_intervals(rows, KINDS, as_of=AS_OF)

    def test_a_naive_instant_is_rejected_unless_a_zone_is_named(self) -> None:
        rows = [{"opportunity_id": "x", "at": datetime(2026, 1, 1), "stage": "lead"}]
        with pytest.raises(InvalidTimestampError):
            an.stage_intervals(rows, KINDS, as_of=AS_OF)
        (v,) = an.stage_intervals(rows, KINDS, as_of=AS_OF, assume_zone="Europe/Berlin")
        assert v.entered_at == datetime.fromisoformat("2025-12-31T23:00:00+00:00")

    def test_a_naive_as_of_is_rejected(self) -> None:
        with pytest.raises(InvalidTimestampError):
            an.stage_intervals(edge_rows(), KINDS, as_of=datetime(2026, 1, 1))

    def test_a_row_without_a_stage_is_rejected(self) -> None:
        with pytest.raises(an.AnalyticsError, match="stage"):
            an.stage_intervals([{"opportunity_id": "x", "at": at(0)}], KINDS, as_of=AS_OF)

    def test_an_unknown_item_type_is_rejected(self) -> None:
        with pytest.raises(an.AnalyticsError, match="Event objects"):
            an.stage_intervals([42], KINDS, as_of=AS_OF)

    def test_unknown_kinds_are_rejected(self) -> None:
        with pytest.raises(an.AnalyticsError, match="open"):
            an.Outcomes.of({"a": "pending"})
        with pytest.raises(an.AnalyticsError, match="no open stage"):
            an.Outcomes.of({"w": "won"})
        with pytest.raises(an.AnalyticsError):
            an.Outcomes.of(42)

    def test_errors_are_stagegate_errors(self) -> None:
        assert issubclass(an.AnalyticsError, StagegateError)
        assert issubclass(an.AnalyticsError, ValueError)


class TestFrames:
    pl = pytest.importorskip("polars")

    def test_a_bare_pyarrow_table_is_rejected_with_a_way_out(self) -> None:
        pa = pytest.importorskip("pyarrow")
        with pytest.raises(an.AnalyticsError, match=r"polars\.from_arrow"):
            an.stage_intervals(pa.table({"a": [1]}), KINDS, as_of=AS_OF)

    def test_a_dask_frame_is_rejected_with_a_way_out(self) -> None:
        class FakeDask:
            pass

        FakeDask.__module__ = "dask.dataframe.core"
        with pytest.raises(an.AnalyticsError, match="Dask"):
            an.stage_intervals(FakeDask(), KINDS, as_of=AS_OF)

    def test_a_missing_column_is_named(self) -> None:
        frame = self.pl.DataFrame({"opportunity_id": ["x"], "stage": ["lead"]})
        with pytest.raises(an.AnalyticsError, match="at"):
            an.stage_intervals(frame, KINDS, as_of=AS_OF)

    def test_naive_frame_instants_need_a_zone(self) -> None:
        frame = self.pl.DataFrame(
            {"opportunity_id": ["x"], "at": [datetime(2026, 1, 1)], "stage": ["lead"]}
        )
        with pytest.raises(InvalidTimestampError):
            an.stage_intervals(frame, KINDS, as_of=AS_OF)
        result = an.stage_intervals(frame, KINDS, as_of=AS_OF, assume_zone="Asia/Seoul")
        assert result["entered_us"][0] == 1767193200000000

    def test_text_instants_are_rejected(self) -> None:
        frame = self.pl.DataFrame({"opportunity_id": ["x"], "at": ["2026-01-01"], "stage": ["a"]})
        with pytest.raises(an.AnalyticsError, match="datetime"):
            an.stage_intervals(frame, KINDS, as_of=AS_OF)

    def test_an_unknown_stage_in_a_frame_is_named(self) -> None:
        frame = self.pl.DataFrame({"opportunity_id": ["x"], "at": [at(0)], "stage": ["nowhere"]})
        with pytest.raises(UnknownStageError, match="nowhere"):
            an.stage_intervals(frame, KINDS, as_of=AS_OF)

    @pytest.mark.parametrize("lazy", [False, True])
    @pytest.mark.parametrize(
        ("stages", "dtype", "named"),
        [
            ([1, 2], None, "'1'"),
            ([1.5], None, "'1.5'"),
            (["lead", "nowhere"], None, "nowhere"),
            (["lead", "nowhere"], "categorical", "nowhere"),
        ],
        ids=["integers", "floats", "text", "categorical"],
    )
    def test_stages_of_any_type_are_named_when_unknown(
        self, stages: list[Any], dtype: str | None, named: str, lazy: bool
    ) -> None:
        pl = self.pl
        rows = {"opportunity_id": ["x"] * len(stages), "stage": stages}
        frame = pl.DataFrame({**rows, "at": [at(i) for i in range(len(stages))]})
        if dtype == "categorical":
            frame = frame.with_columns(pl.col("stage").cast(pl.Categorical))
        with pytest.raises(UnknownStageError, match=named):
            an.stage_intervals(frame.lazy() if lazy else frame, KINDS, as_of=AS_OF)
