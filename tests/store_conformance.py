"""The abstract conformance suite every event store backend must pass.

In ``tests/test_store_<backend>.py``, subclass each claim class here (``AppendAndLoad``,
``Queries``, ...) together with a mixin that implements ``make_store(path)``; the classes here are
not named ``Test*`` so that pytest collects them only through a backend. Set
``shared_between_processes = True`` for backends that several processes can open at once (the
process race then runs too).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate import b2b
from stagegate.errors import (
    ConcurrencyError,
    EventLogError,
    InvalidCommandError,
    StagegateError,
)
from stagegate.events import Event, EventKind, MoveKind, freeze
from stagegate.gates import CriterionResult, GateReport
from stagegate.integrity import check_chain, event_digest, seal
from stagegate.opportunity import Opportunity
from stagegate.store import (
    SCAN_COLUMNS,
    EventRow,
    EventStore,
    StoreClosedError,
    StoreError,
    UnknownOpportunityError,
)

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


def make_event(opportunity_id: str, seq: int, *, actor: str = "ana", **fields: Any) -> Event:
    """A plain event at a fixed instant: ``opened`` for seq 1, an activity afterwards."""
    values: dict[str, Any] = {
        "kind": EventKind.OPENED if seq == 1 else EventKind.ACTIVITY_LOGGED,
        "at": T0 + timedelta(minutes=seq),
        "actor": actor,
        "stage": "lead_generation",
        "process": "b2b",
        "process_version": "1",
    }
    if seq > 1:
        values["subject"] = "call"
    values.update(fields)
    return Event(opportunity_id=opportunity_id, seq=seq, **values)


def make_log(opportunity_id: str, count: int, *, start: int = 1, actor: str = "ana") -> list[Event]:
    return [make_event(opportunity_id, seq, actor=actor) for seq in range(start, start + count)]


# -- strategies: every field of an event, for the lossless round trip ----------------------

texts = st.text(max_size=8)
names = st.text(min_size=1, max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
criterion_results = st.recursive(
    st.builds(
        CriterionResult,
        texts,
        st.booleans(),
        texts,
        st.lists(st.integers(1, 10**6), max_size=3).map(tuple),
    ),
    lambda inner: st.builds(
        CriterionResult,
        texts,
        st.booleans(),
        texts,
        st.just(()),
        st.lists(inner, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=5,
)
gate_reports = st.builds(GateReport, names, st.lists(criterion_results, max_size=3).map(tuple))
instants = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7, minutes=-30))]),
)
amounts = st.decimals(allow_nan=False, allow_infinity=False)
TEXTS = texts
NUL_FREE_TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)


@st.composite
def event_logs(draw: st.DrawFn, opportunity_id: str = "opp", *, nul: bool = True) -> list[Event]:
    """A log of 1-3 events of one opportunity with arbitrary field values.

    ``nul=False`` keeps the character NUL out of the plain text fields (PostgreSQL's text cannot
    hold it; JSON details and gate reports escape it, so they keep it).
    """
    texts = TEXTS if nul else NUL_FREE_TEXTS
    count = draw(st.integers(1, 3))
    return [
        Event(
            opportunity_id=opportunity_id,
            seq=seq,
            kind=draw(st.sampled_from(EventKind)),
            at=draw(instants),
            actor=draw(texts),
            stage=draw(texts),
            process=draw(texts),
            process_version=draw(texts),
            from_stage=draw(st.none() | texts),
            move=draw(st.none() | st.sampled_from(MoveKind)),
            reason=draw(st.none() | texts),
            gate=draw(st.none() | gate_reports),
            amount=draw(st.none() | amounts),
            close_date=draw(st.none() | st.dates()),
            subject=draw(st.none() | texts),
            details=draw(st.none() | st.dictionaries(texts, json_values, max_size=3).map(freeze)),
        )
        for seq in range(1, count + 1)
    ]


# -- child processes (spawned: module-level functions) ---------------------------------------


def race_appends(
    store: EventStore, opportunity_id: str, writer: str, wins: int, start: Any
) -> None:
    """Append ``wins`` single events to one opportunity, retrying after each conflict."""
    start.wait()
    won = 0
    while won < wins:
        last = store.last_seq(opportunity_id)
        try:
            store.append([make_event(opportunity_id, last + 1, actor=writer)], expected_seq=last)
        except ConcurrencyError:
            continue
        won += 1
    store.close()


def assert_raced_log(store: EventStore, opportunity_id: str, writers: int, wins: int) -> None:
    log = store.load(opportunity_id)
    assert list(range(1, writers * wins + 1)) == [event.seq for event in log]
    actors = [event.actor for event in log]
    assert {f"w{i}": wins for i in range(writers)} == {a: actors.count(a) for a in set(actors)}


class StoreConformance:
    """Claims every backend must satisfy; subclasses provide ``make_store``.

    ``stores_nul = False`` for a backend whose text cannot hold the character NUL (PostgreSQL):
    the round trips then draw text without it, and the backend tests that it refuses NUL whole.
    """

    shared_between_processes = False
    stores_nul = True

    def make_store(self, path: Path) -> EventStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        with self.make_store(tmp_path / "events.sqlite") as store:
            yield store

    @staticmethod
    def contents(store: EventStore) -> list[Event]:
        return list(store.scan())


class AppendAndLoad(StoreConformance):
    def test_an_unknown_opportunity_loads_as_an_empty_log(self, store: EventStore) -> None:
        assert store.load("nobody") == ()
        assert store.last_seq("nobody") == 0

    @pytest.mark.parametrize("opportunity_id", ["a\ud800", "\udfff", "a\x00b"])
    def test_an_id_no_store_can_hold_loads_as_an_empty_log(
        self, store: EventStore, opportunity_id: str
    ) -> None:
        """SQLite's driver raised ``UnicodeEncodeError``, PostgreSQL a ``StoreError``."""
        store.append(make_log("d-1", 1))
        assert () == store.load(opportunity_id)
        assert 0 == store.last_seq(opportunity_id)

    def test_appended_events_load_back_equal_and_in_seq_order(self, store: EventStore) -> None:
        log = make_log("opp-1", 3)
        store.append(log[:2])
        store.append(log[2:])
        assert tuple(log) == store.load("opp-1")
        assert store.last_seq("opp-1") == 3

    def test_a_batch_may_interleave_several_opportunities(self, store: EventStore) -> None:
        a, b = make_log("a", 2), make_log("b", 2)
        store.append([a[0], b[0], b[1], a[1]])
        assert (tuple(a), tuple(b)) == (store.load("a"), store.load("b"))

    def test_an_empty_batch_changes_nothing(self, store: EventStore) -> None:
        store.append([])
        assert store.count() == 0

    def test_a_second_writer_at_the_same_seq_gets_a_concurrency_error(
        self, store: EventStore
    ) -> None:
        store.append(make_log("opp-1", 1))
        first, second = make_event("opp-1", 2, actor="ana"), make_event("opp-1", 2, actor="ben")
        store.append([first])
        with pytest.raises(ConcurrencyError) as caught:
            store.append([second])
        assert (
            caught.value.opportunity_id,
            caught.value.expected_seq,
            caught.value.actual_seq,
        ) == ("opp-1", 1, 2)
        assert store.load("opp-1")[-1].actor == "ana"

    def test_a_new_log_that_already_exists_is_a_conflict(self, store: EventStore) -> None:
        store.append(make_log("opp-1", 2))
        with pytest.raises(ConcurrencyError):
            store.append(make_log("opp-1", 1, actor="ben"))
        assert store.count() == 2

    def test_a_batch_that_would_leave_a_gap_is_refused(self, store: EventStore) -> None:
        store.append(make_log("opp-1", 1))
        with pytest.raises(ConcurrencyError):
            store.append(make_log("opp-1", 1, start=3))
        assert store.last_seq("opp-1") == 1

    def test_a_log_must_start_at_seq_one(self, store: EventStore) -> None:
        with pytest.raises(ConcurrencyError):
            store.append(make_log("opp-1", 2, start=2))
        assert store.count() == 0

    @pytest.mark.parametrize("seqs", [(1, 3), (1, 1), (2, 1)])
    def test_a_batch_that_skips_or_repeats_a_seq_is_malformed(
        self, store: EventStore, seqs: tuple[int, int]
    ) -> None:
        with pytest.raises(EventLogError):
            store.append([make_event("opp-1", seq) for seq in seqs])
        assert store.count() == 0

    def test_a_conflict_in_one_opportunity_rolls_back_the_whole_batch(
        self, store: EventStore
    ) -> None:
        store.append(make_log("b", 1))
        with pytest.raises(ConcurrencyError) as caught:
            store.append([*make_log("a", 2), *make_log("b", 1), *make_log("c", 1)])
        assert caught.value.opportunity_id == "b"
        assert list(store.opportunity_ids()) == ["b"]
        assert store.count() == 1

    def test_a_continuation_conflict_rolls_back_new_logs_in_the_batch(
        self, store: EventStore
    ) -> None:
        store.append(make_log("b", 2))
        with pytest.raises(ConcurrencyError):
            store.append([*make_log("a", 1), *make_log("b", 1, start=2)])
        assert list(store.opportunity_ids()) == ["b"]

    def test_items_that_are_not_events_are_refused(self, store: EventStore) -> None:
        with pytest.raises(EventLogError):
            store.append([make_event("a", 1).to_dict()])  # type: ignore[list-item]
        assert store.count() == 0

    def test_a_matching_expected_seq_appends(self, store: EventStore) -> None:
        store.append(make_log("opp-1", 1), expected_seq=0)
        store.append(make_log("opp-1", 2, start=2), expected_seq=1)
        assert store.last_seq("opp-1") == 3

    def test_a_stale_expected_seq_is_a_concurrency_error(self, store: EventStore) -> None:
        store.append(make_log("opp-1", 2))
        with pytest.raises(ConcurrencyError) as caught:
            store.append(make_log("opp-1", 1, start=2), expected_seq=1)
        assert (caught.value.expected_seq, caught.value.actual_seq) == (1, 2)

    def test_an_expected_seq_that_contradicts_the_batch_is_malformed(
        self, store: EventStore
    ) -> None:
        with pytest.raises(EventLogError):
            store.append(make_log("opp-1", 1), expected_seq=3)

    @pytest.mark.parametrize("expected", [-1, True, 1.0, "0"])
    def test_an_invalid_expected_seq_is_refused(self, store: EventStore, expected: Any) -> None:
        with pytest.raises(InvalidCommandError):
            store.append(make_log("opp-1", 1), expected_seq=expected)

    def test_expected_seq_needs_a_batch_of_one_opportunity(self, store: EventStore) -> None:
        with pytest.raises(InvalidCommandError):
            store.append([*make_log("a", 1), *make_log("b", 1)], expected_seq=0)
        assert store.count() == 0

    def test_any_events_round_trip_losslessly(self, store: EventStore) -> None:
        # An inner @given per call: one hypothesis test per backend, one store for all examples.
        # Generating rich events is slow on a loaded machine; the check itself is quick.
        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(log=event_logs(nul=self.stores_nul))
        def round_trip(log: list[Event]) -> None:
            opportunity_id = f"opp-{store.count()}"
            events = [attrs.evolve(e, opportunity_id=opportunity_id) for e in log]
            store.append(events)
            assert tuple(events) == store.load(opportunity_id)

        round_trip()


class Queries(StoreConformance):
    def test_count_last_seq_and_ids_describe_the_log(self, store: EventStore) -> None:
        store.append([*make_log("b", 2), *make_log("a", 3), *make_log("c", 1)])
        assert store.count() == 6
        assert list(store.opportunity_ids()) == ["a", "b", "c"]
        assert (store.last_seq("a"), store.last_seq("b"), store.last_seq("c")) == (3, 2, 1)

    @pytest.mark.parametrize("batch_size", [1, 2, 1000])
    def test_scan_yields_every_event_by_opportunity_then_seq(
        self, store: EventStore, batch_size: int
    ) -> None:
        store.append([*make_log("b", 2), *make_log("a", 1)])
        store.append(make_log("a", 2, start=2))
        expected = [*store.load("a"), *store.load("b")]
        assert expected == list(store.scan(batch_size=batch_size))

    def test_scan_rows_gives_the_canonical_columns_of_each_event(self, store: EventStore) -> None:
        won = make_event(
            "a",
            2,
            kind=EventKind.STAGE_CHANGED,
            stage="won",
            from_stage="lead_generation",
            move=MoveKind.WIN,
            amount=Decimal("1200.50"),
            close_date=date(2026, 3, 31),
            gate=GateReport("won", (CriterionResult("deliverable 'po'", True, "recorded", (1,)),)),
        )
        store.append([make_event("a", 1), won])
        rows = list(store.scan_rows(batch_size=1))
        assert EventRow._fields == SCAN_COLUMNS
        assert (
            EventRow(
                "a",
                won.at,
                2,
                "won",
                Decimal("1200.50"),
                date(2026, 3, 31),
                "stage_changed",
                "lead_generation",
                "win",
            )
            == rows[1]
        )
        assert rows[1].at.tzinfo is not None
        assert (rows[0].kind, rows[0].move) == ("opened", None)

    def test_a_scan_is_a_snapshot_of_when_it_started(self, store: EventStore) -> None:
        store.append([*make_log("a", 1), *make_log("b", 1)])
        scan = store.scan(batch_size=1)
        first = next(scan)
        store.append([*make_log("a", 1, start=2), *make_log("c", 1)])
        assert [first.opportunity_id, "b"] == [
            first.opportunity_id,
            *(e.opportunity_id for e in scan),
        ]

    @pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
    def test_a_bad_batch_size_is_refused_at_once(self, store: EventStore, batch_size: Any) -> None:
        with pytest.raises(InvalidCommandError):
            store.scan(batch_size=batch_size)
        with pytest.raises(InvalidCommandError):
            store.scan_rows(batch_size=batch_size)


class Opportunities(StoreConformance):
    @staticmethod
    def deal(opportunity_id: str = "opp-1") -> Opportunity:
        return Opportunity.open(b2b(), opportunity_id, at=T0, actor="ana", amount="5000")

    def test_a_saved_opportunity_loads_back_equal(self, store: EventStore) -> None:
        deal = self.deal()
        deal.log_activity("discovery_call", at=T0 + timedelta(hours=1), actor="ana")
        assert store.save(deal) == 2
        assert deal == store.load_opportunity(b2b(), "opp-1")

    def test_saving_twice_appends_nothing_new(self, store: EventStore) -> None:
        deal = self.deal()
        store.save(deal)
        assert store.save(deal) == 0
        deal.log_activity("discovery_call", at=T0 + timedelta(hours=1), actor="ana")
        assert store.save(deal) == 1
        assert store.count() == 2

    def test_saving_over_another_writers_events_is_a_conflict(self, store: EventStore) -> None:
        mine, theirs = self.deal(), self.deal()
        store.save(mine)
        theirs.log_activity("demo", at=T0 + timedelta(hours=2), actor="ben")
        store.save(theirs)
        mine.log_activity("discovery_call", at=T0 + timedelta(hours=1), actor="ana")
        with pytest.raises(ConcurrencyError):
            store.save(mine)
        with pytest.raises(ConcurrencyError):
            store.save(mine, expected_seq=1)
        assert store.load("opp-1")[-1].actor == "ben"

    def test_a_store_holding_more_events_than_the_opportunity_is_a_conflict(
        self, store: EventStore
    ) -> None:
        deal = self.deal()
        store.save(deal)
        store.append([make_event("opp-1", 2, stage="lead_generation")])
        with pytest.raises(ConcurrencyError):
            store.save(deal)

    def test_save_with_expected_seq_appends_after_it(self, store: EventStore) -> None:
        deal = self.deal()
        store.save(deal, expected_seq=0)
        loaded = store.load_opportunity(b2b(), "opp-1")
        version = loaded.version
        loaded.log_activity("discovery_call", at=T0 + timedelta(hours=1), actor="ana")
        assert store.save(loaded, expected_seq=version) == 1

    def test_loading_an_unknown_opportunity_raises_a_lookup_error(self, store: EventStore) -> None:
        with pytest.raises(UnknownOpportunityError) as caught:
            store.load_opportunity(b2b(), "nobody")
        assert isinstance(caught.value, LookupError)
        assert "'nobody'" in str(caught.value)


class Frames(StoreConformance):
    CANONICAL = (
        "opportunity_id",
        "at",
        "seq",
        "stage",
        "amount",
        "close_date",
        "reason",
        "kind",
        "from_stage",
        "move",
    )

    @staticmethod
    def _lost_deal(store: EventStore, oid: str = "f-1") -> None:
        from stagegate import Opportunity
        from stagegate.templates import b2b

        deal = Opportunity.open(b2b(), oid, at=T0, actor="a", amount="12.50")
        deal.lose(at=T0 + timedelta(days=1), actor="a", reason="no budget")
        store.append(deal.events)

    def test_the_frame_holds_every_event_in_scan_order(self, store: EventStore) -> None:
        pytest.importorskip("polars")
        self._lost_deal(store)
        frame = store.to_frame()
        assert self.CANONICAL == tuple(frame.columns)
        assert [1, 2] == frame["seq"].to_list()
        assert [12.5, 12.5] == frame["amount"].to_list()
        assert ["lead_generation", "lost"] == frame["stage"].to_list()
        assert [None, "no budget"] == frame["reason"].to_list()
        assert [None, "lead_generation"] == frame["from_stage"].to_list()
        assert ["opened", "stage_changed"] == frame["kind"].to_list()
        assert [T0, T0 + timedelta(days=1)] == frame["at"].to_list()

    def test_the_frame_is_ordered_by_opportunity_and_seq_whatever_the_write_order(
        self, store: EventStore
    ) -> None:
        pytest.importorskip("polars")
        self._lost_deal(store, "f-2")
        self._lost_deal(store, "f-1")
        frame = store.to_frame(columns=["opportunity_id", "seq"])
        assert [("f-1", 1), ("f-1", 2), ("f-2", 1), ("f-2", 2)] == frame.rows()

    def test_every_backend_gives_the_same_table(self, store: EventStore) -> None:
        pl = pytest.importorskip("polars")
        pytest.importorskip("pandas")
        self._lost_deal(store)
        polars_frame = store.to_frame()
        assert polars_frame.equals(pl.from_arrow(store.to_frame(backend="pyarrow")))
        assert polars_frame.equals(pl.from_pandas(store.to_frame(backend="pandas")))

    def test_categorical_text_columns_hold_the_same_values(self, store: EventStore) -> None:
        pl = pytest.importorskip("polars")
        self._lost_deal(store)
        frame = store.to_frame(categorical=True)
        assert pl.Categorical == frame.schema["stage"]
        assert pl.String == frame.schema["opportunity_id"]
        assert store.to_frame().equals(frame.with_columns(pl.col(pl.Categorical).cast(pl.String)))

    def test_categorical_segment_columns_hold_the_same_values(self, store: EventStore) -> None:
        pl = pytest.importorskip("polars")
        from stagegate import Opportunity
        from stagegate.templates import b2b

        deal = Opportunity.open(b2b(), "c-1", at=T0, actor="a", owner="ana")
        deal.set_attribute("team", "north", at=T0 + timedelta(hours=1), actor="a")
        deal.reassign("bo", at=T0 + timedelta(hours=2), actor="a")
        store.append(deal.events)
        frame = store.to_frame(categorical=True)
        assert (pl.Categorical, pl.Categorical) == (frame.schema["owner"], frame.schema["team"])
        assert store.to_frame().equals(frame.with_columns(pl.col(pl.Categorical).cast(pl.String)))

    def test_segment_columns_can_be_left_out(self, store: EventStore) -> None:
        pytest.importorskip("polars")
        from stagegate import Opportunity
        from stagegate.templates import b2b

        deal = Opportunity.open(b2b(), "f-1", at=T0, actor="a", owner="ana")
        deal.set_attribute("team", "north", at=T0 + timedelta(hours=1), actor="a")
        store.append(deal.events)
        full = store.to_frame()
        assert {"owner", "team"} <= set(full.columns)
        bare = store.to_frame(segments=False)
        assert self.CANONICAL == tuple(bare.columns)
        assert full.select(self.CANONICAL).equals(bare)

    def test_the_process_columns_can_be_asked_for(self, store: EventStore) -> None:
        pytest.importorskip("polars")
        self._lost_deal(store)
        frame = store.to_frame(columns=["opportunity_id", "process", "process_version"])
        assert [("f-1", "b2b", "1")] * 2 == frame.rows()

    def test_an_empty_store_gives_an_empty_frame_with_the_columns(self, store: EventStore) -> None:
        pl = pytest.importorskip("polars")
        frame = store.to_frame()
        assert (0, self.CANONICAL) == (len(frame), tuple(frame.columns))
        assert pl.Datetime("us", "UTC") == frame.schema["at"]

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [({"backend": "spark"}, "backend must be one of"), ({"columns": ["x"]}, "unknown column")],
    )
    def test_an_unknown_backend_or_column_is_refused(
        self, store: EventStore, arguments: dict[str, Any], message: str
    ) -> None:
        pytest.importorskip("polars")
        with pytest.raises(StoreError, match=message):
            store.to_frame(**arguments)


class Processes(StoreConformance):
    def test_a_definition_that_would_not_load_back_is_not_stored(self, store: EventStore) -> None:
        """A Python ``Process`` may hold a stage id no definition file may: every later read of
        the store failed on it."""
        from stagegate.errors import DefinitionError
        from stagegate.process import Process, Stage, StageKind

        accented = Process(
            "accented", "1",
            (Stage("étude"), Stage("won", probability=1.0, kind=StageKind.WON),
             Stage("lost", kind=StageKind.LOST)),
        )  # fmt: skip
        with pytest.raises(DefinitionError, match="not stored"):
            store.save_process(accented)
        assert ("accented", "1") not in store.processes()

    def test_a_saved_definition_loads_back_equal(self, store: EventStore) -> None:
        from stagegate.templates import b2b

        store.save_process(b2b())
        assert store.load_process("b2b", "1") == b2b()
        assert store.processes() == [("b2b", "1")]

    def test_saving_the_same_definition_twice_is_harmless(self, store: EventStore) -> None:
        from stagegate.templates import b2b

        store.save_process(b2b())
        store.save_process(b2b())
        assert store.processes() == [("b2b", "1")]

    def test_a_changed_definition_under_the_same_version_is_refused(
        self, store: EventStore
    ) -> None:
        import attrs

        from stagegate.templates import b2b

        store.save_process(b2b())
        changed = attrs.evolve(b2b(), description="changed")
        with pytest.raises(StoreError, match="give the changed definition a new version"):
            store.save_process(changed)
        assert store.load_process("b2b", "1") == b2b()

    def test_an_unknown_process_names_what_is_stored(self, store: EventStore) -> None:
        from stagegate.store import UnknownProcessError
        from stagegate.templates import b2b

        store.save_process(b2b())
        with pytest.raises(UnknownProcessError, match=r"stored: b2b v1"):
            store.load_process("b2b", "2")


class Lifecycle(StoreConformance):
    def test_a_closed_store_refuses_every_call(self, tmp_path: Path) -> None:
        with self.make_store(tmp_path / "events.sqlite") as store:
            store.append(make_log("a", 1))
        calls = [
            lambda: store.append(make_log("b", 1)),
            lambda: store.load("a"),
            lambda: store.last_seq("a"),
            lambda: list(store.opportunity_ids()),
            lambda: list(store.scan()),
            lambda: list(store.scan_rows()),
            store.count,
        ]
        for call in calls:
            with pytest.raises(StoreClosedError) as caught:
                call()
            assert isinstance(caught.value, StagegateError)
        store.close()  # twice is harmless

    def test_a_store_has_a_readable_repr(self, store: EventStore) -> None:
        assert type(store).__name__ in repr(store)


class Sealing(StoreConformance):
    """Every appended event is sealed: its digest chains from its opportunity's previous event."""

    def test_appended_events_come_back_sealed_in_one_chain_per_opportunity(
        self, store: EventStore
    ) -> None:
        store.append([*make_log("a", 2), *make_log("b", 1)])
        store.append([*make_log("a", 2, start=3), *make_log("b", 1, start=2)])
        for oid, count in (("a", 4), ("b", 2)):
            loaded = store.load(oid)
            assert list(seal(make_log(oid, count))) == list(loaded)
            assert [e.digest for e in seal(make_log(oid, count))] == [e.digest for e in loaded]
            assert (count, loaded[-1].digest) == check_chain(loaded, require_digests=True)

    def test_any_events_are_sealed_exactly_as_seal_seals_them(self, store: EventStore) -> None:
        # The backend's own encoding must give the digests of stagegate.integrity, byte for byte.
        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(log=event_logs(nul=self.stores_nul))
        def sealed_alike(log: list[Event]) -> None:
            opportunity_id = f"opp-{store.count()}"
            events = [attrs.evolve(e, opportunity_id=opportunity_id) for e in log]
            store.append(events[:1])
            store.append(events[1:])
            expected = [event.digest for event in seal(events)]
            assert expected == [event.digest for event in store.load(opportunity_id)]

        sealed_alike()

    def test_a_scan_yields_the_sealed_events(self, store: EventStore) -> None:
        store.append(make_log("a", 3))
        assert [e.digest for e in store.load("a")] == [e.digest for e in store.scan()]
        assert all(e.digest is not None for e in store.scan())

    def test_events_sealed_by_the_caller_in_the_same_chain_are_kept(
        self, store: EventStore
    ) -> None:
        log = seal(make_log("a", 3))
        store.append(log[:1])
        store.append(log[1:])
        assert [e.digest for e in log] == [e.digest for e in store.load("a")]

    def test_an_event_sealed_after_other_history_is_refused_and_nothing_is_written(
        self, store: EventStore
    ) -> None:
        store.append(make_log("a", 1, actor="bo"))  # another first event than the one sealed
        foreign = seal(make_log("a", 2))[1]
        with pytest.raises(EventLogError) as caught:
            store.append([*make_log("b", 1), foreign])
        assert (2, "digest_mismatch", "a") == (
            caught.value.seq,
            caught.value.rule,
            caught.value.opportunity_id,
        )
        assert (1, 0) == (store.count(), store.last_seq("b"))

    def test_a_wrong_digest_on_a_new_log_is_refused(self, store: EventStore) -> None:
        forged = attrs.evolve(make_event("a", 1), digest=event_digest(make_event("b", 1), None))
        with pytest.raises(EventLogError, match="digest_mismatch"):
            store.append([forged])
        assert 0 == store.count()

    def test_a_saved_opportunity_reloads_sealed_and_verifies(self, store: EventStore) -> None:
        deal = Opportunity.open(b2b(), "opp-1", at=T0, actor="ana", amount=1000)
        store.save(deal, expected_seq=0)
        deal = store.load_opportunity(b2b(), "opp-1")
        deal.change_amount(2000, at=T0 + timedelta(days=1), actor="ana")
        store.save(deal)
        (verdict,) = store.verify(b2b(), require_digests=True)
        assert (True, 2, 2) == (
            verdict.ok,
            verdict.verification.events,
            verdict.verification.sealed,
        )  # type: ignore[union-attr]
        assert store.load("opp-1")[-1].digest == verdict.verification.head  # type: ignore[union-attr]

    def test_verify_names_a_log_that_breaks_its_process(self, store: EventStore) -> None:
        store.append(make_log("a", 2))  # no stored definition: the chain alone
        store.append([make_event("b", 1, process_version="9")])  # b2b is version 1
        a, b = store.verify(b2b())
        assert (True, False, 1, "version_mismatch") == (a.ok, b.ok, b.seq, b.rule)
        (chain_only, _) = store.verify()
        assert (True, False) == (chain_only.ok, chain_only.checked_process)


class ConcurrentWriters(StoreConformance):
    def test_racing_threads_lose_nothing_and_duplicate_nothing(self, store: EventStore) -> None:
        writers, wins = 4, 15
        store.append(make_log("hot", 1, actor="w0"))
        start = threading.Barrier(writers)
        threads = [
            threading.Thread(target=self._thread_race, args=(store, f"w{i}", wins, start))
            for i in range(writers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        log = store.load("hot")
        assert list(range(1, writers * wins + 2)) == [event.seq for event in log]
        actors = [event.actor for event in log[1:]]
        assert all(wins == actors.count(f"w{i}") for i in range(writers))

    @staticmethod
    def _thread_race(store: EventStore, writer: str, wins: int, start: threading.Barrier) -> None:
        start.wait()
        won = 0
        while won < wins:
            last = store.last_seq("hot")
            try:
                store.append([make_event("hot", last + 1, actor=writer)], expected_seq=last)
            except ConcurrencyError:
                continue
            won += 1

    def test_two_writers_that_read_the_same_log_cannot_both_append(self, store: EventStore) -> None:
        store.append(make_log("opp", 1))
        last_a, last_b = store.last_seq("opp"), store.last_seq("opp")
        store.append([make_event("opp", last_a + 1, actor="a")], expected_seq=last_a)
        with pytest.raises(ConcurrencyError):
            store.append([make_event("opp", last_b + 1, actor="b")], expected_seq=last_b)
        assert [event.actor for event in store.load("opp")] == ["ana", "a"]

    def test_racing_processes_lose_nothing_and_duplicate_nothing(self, tmp_path: Path) -> None:
        if not self.shared_between_processes:
            pytest.skip("this backend lives in one process")
        writers, wins = 3, 10
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(writers)
        with self.make_store(tmp_path / "events.sqlite") as store:
            processes = [
                context.Process(target=race_appends, args=(store, "hot", f"w{i}", wins, start))
                for i in range(writers)
            ]
            for process in processes:
                process.start()
            for process in processes:
                process.join(timeout=120)
            assert [0] * writers == [process.exitcode for process in processes]
            assert_raced_log(store, "hot", writers, wins)


class Imports(StoreConformance):
    """Backends with ``write_import`` (SQLite, PostgreSQL): an import's three parts at once."""

    @staticmethod
    def record(events: int, name: str = "log.jsonl") -> Any:
        from stagegate.store import ImportRecord

        return ImportRecord(0, T0, "events", name, events, events, 1, events)

    def test_events_definition_and_record_are_written_together(self, store: Any) -> None:
        first = store.write_import(make_log("a", 2), process=b2b(), record=self.record(2))
        second = store.write_import(make_log("b", 1), process=b2b(), record=self.record(1, "b"))
        assert ([1, 2], ["log.jsonl", "b"]) == (
            [r.id for r in store.imports()],
            [r.input_name for r in store.imports()],
        )
        assert (first, second) == tuple(store.imports())
        assert (3, [("b2b", "1")]) == (store.count(), store.processes())
        assert first.at.tzinfo is not None
        assert all(verdict.ok for verdict in store.verify(require_digests=True))

    def test_a_refused_import_writes_none_of_its_parts(self, store: Any) -> None:
        store.append(make_log("a", 1))
        with pytest.raises(ConcurrencyError):
            store.write_import(
                [*make_log("b", 1), *make_log("a", 1)], process=b2b(), record=self.record(2)
            )
        assert (1, [], ()) == (store.count(), store.processes(), store.imports())

    def test_a_changed_definition_refuses_the_whole_import(self, store: Any) -> None:
        from stagegate.store import StoreError

        store.save_process(b2b())
        changed = attrs.evolve(b2b(), description="changed")
        with pytest.raises(StoreError, match="new version"):
            store.write_import(make_log("a", 1), process=changed, record=self.record(1))
        assert (0, ()) == (store.count(), store.imports())

    def test_findings_are_kept_with_the_record(self, store: Any) -> None:
        finding = {"code": "negative_amount", "severity": "warning", "message": "m", "rows": [2]}
        record = attrs.evolve(self.record(1), findings=(freeze(finding),))
        store.write_import(make_log("a", 1), record=record)
        (stored,) = store.imports()
        assert [finding] == [dict(f) | {"rows": list(f["rows"])} for f in stored.findings]
