"""Process evolution under hostile but valid inputs: the regressions found by fuzzing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagegate._history import in_current_names
from stagegate.cli import main
from stagegate.definition import process_to_toml
from stagegate.errors import StagegateError
from stagegate.evolution import (
    EvolutionError,
    diff,
    impact,
    lineage,
    map_history,
    migrate,
    plan_migration,
    stage_mapping,
    store_impact,
)
from stagegate.opportunity import Opportunity
from stagegate.process import Process, Stage, StageKind
from stagegate.store import MemoryStore, SQLiteStore
from stagegate.templates import b2b
from test_evolution import renamed

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def version(
    number: str, ids: tuple[str, ...], renames: dict[str, str] | None = None, *, name: str = "p"
) -> Process:
    """An ungated process: open stages ``ids`` (probabilities rising), then won and lost."""
    stages = [Stage(i, probability=round(0.05 + 0.9 * n / len(ids), 4)) for n, i in enumerate(ids)]
    stages += [Stage("won", probability=1, kind=StageKind.WON)]
    stages += [Stage("lost", probability=0, kind=StageKind.LOST)]
    return Process(name, number, tuple(stages), renamed=renames or {})


def stored(*deals: Opportunity, versions: tuple[Process, ...] = ()) -> MemoryStore:
    """A memory store holding ``versions``, the deals' own versions and the deals."""
    store = MemoryStore()
    for process in (*versions, *(d.process for d in deals)):
        if (process.name, process.version) not in store.processes():
            store.save_process(process)
    for deal in deals:
        store.save(deal)
    return store


def snapshot(store: MemoryStore) -> tuple[object, ...]:
    return tuple(store.scan()), tuple(store.processes())


# -- a deal migrated back to an earlier version ------------------------------------------------


class TestMigratedBack:
    def test_impact_replays_a_deal_that_passed_through_the_new_version(self) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        deal = Opportunity.open(v1, "back", at=T0, actor="ana")
        deal.migrate(v2, at=T0 + DAY, actor="ops")
        deal.migrate(v1, at=T0 + 2 * DAY, actor="ops")  # back again
        found = impact([deal], v2, at=T0 + 3 * DAY, versions=[v1])
        assert (1, ()) == (found.open_deals, found.stranded)
        store = stored(deal, versions=(v2,))
        assert 1 == store_impact(store, v2, at=T0 + 3 * DAY).open_deals
        migrate(store, v2, actor="ops", at=T0 + 3 * DAY)
        assert all(v.ok for v in store.verify())

    def test_a_store_loads_and_verifies_a_deal_migrated_back_to_its_first_version(self) -> None:
        """Its first and last events share a version: the store skipped the one between."""
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        deal = Opportunity.open(v1, "back", at=T0, actor="ana")
        deal.migrate(v2, at=T0 + DAY, actor="ops")
        deal.migrate(v1, at=T0 + 2 * DAY, actor="ops")
        store = stored(deal, versions=(v2,))
        assert [True] == [v.ok for v in store.verify()]
        assert deal.events == store.load_opportunity(v1, "back").events


# -- mappings that are not mappings --------------------------------------------------------------


class TestMappingShape:
    @pytest.mark.parametrize("mapping", [["a"], "a=b", 3, [("a", "b", "c")]])
    def test_a_mapping_that_is_not_one_is_refused_everywhere(self, mapping: object) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        deal = Opportunity.open(v1, "d", at=T0, actor="ana")
        store = stored(deal)
        before = snapshot(store)
        calls = [
            lambda: diff(v1, v2, mapping=mapping),  # type: ignore[arg-type]
            lambda: stage_mapping(v1, v2, mapping),  # type: ignore[arg-type]
            lambda: impact([deal], v2, mapping=mapping, at=T0),  # type: ignore[arg-type]
            lambda: plan_migration(store, v2, mapping=mapping),  # type: ignore[arg-type]
            lambda: migrate(store, v2, actor="ops", at=T0, mapping=mapping),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(EvolutionError, match="stage mapping takes old stage ids"):
                call()
        assert before == snapshot(store)


class TestWrongArguments:
    @pytest.mark.parametrize("data", [None, 5, "deal-1", [1, 2], ["x"]])
    def test_history_that_is_not_events_is_refused(self, data: object) -> None:
        with pytest.raises(EvolutionError, match="iterable of events or opportunities"):
            map_history(data, version("2", ("a", "b")))
        with pytest.raises(EvolutionError, match="iterable of events or opportunities"):
            lineage(data, version("2", ("a", "b")))  # type: ignore[arg-type]

    def test_a_single_deal_is_refused_and_a_list_of_it_maps(self) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        deal = Opportunity.open(v1, "d", at=T0, actor="ana")
        with pytest.raises(EvolutionError, match=r"\[deal\]"):
            map_history(deal, v2)
        with pytest.raises(EvolutionError, match=r"\[deal\]"):
            impact(deal, v2, at=T0)  # type: ignore[arg-type]
        assert list(deal.events) == map_history([deal], v2)

    def test_what_is_not_a_process_or_a_deal_is_refused(self) -> None:
        deal = Opportunity.open(version("1", ("a", "b")), "d", at=T0, actor="ana")
        for call in (
            lambda: map_history([deal], "2"),  # type: ignore[arg-type]
            lambda: lineage([deal], None),  # type: ignore[arg-type]
            lambda: impact([deal], "2", at=T0),  # type: ignore[arg-type]
            lambda: impact([deal.events[0]], version("2", ("a", "b")), at=T0),  # type: ignore[list-item]
        ):
            with pytest.raises(EvolutionError, match="takes"):
                call()


class TestDeliverableRenames:
    @pytest.mark.parametrize("renames", [{"old": 5}, {"old": None}, {"old": ["new"]}])
    def test_renames_that_are_not_text_are_refused_and_nothing_changes(
        self, renames: dict[object, object]
    ) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        store = stored(Opportunity.open(v1, "d", at=T0, actor="ana"))
        before = snapshot(store)
        with pytest.raises(EvolutionError, match="deliverable ids to new ids"):
            migrate(store, v2, actor="ops", at=T0 + DAY, deliverables=renames)  # type: ignore[arg-type]
        assert before == snapshot(store)


class TestAnotherProcess:
    def test_a_migration_to_a_process_the_store_lacks_writes_nothing(self) -> None:
        v1 = version("1", ("a", "b"))
        store = stored(Opportunity.open(v1, "d", at=T0, actor="ana"))
        before = snapshot(store)
        typo = version("2", ("a", "b"), name="P")  # another name: another process
        for run in (
            lambda: plan_migration(store, typo),
            lambda: migrate(store, typo, actor="ops", at=T0 + DAY),
        ):
            with pytest.raises(EvolutionError, match="holds no version of process 'P'"):
                run()
        assert before == snapshot(store)


# -- what a diff calls a rename, a merge and a move ---------------------------------------------


class TestDiffKinds:
    def test_a_swap_is_two_renames_not_two_merges(self) -> None:
        found = diff(
            version("1", ("a", "b", "c")),
            version("2", ("a", "b", "c")),
            mapping={"a": "b", "b": "a"},
        )
        assert [("stage_renamed", "b", "a"), ("stage_renamed", "a", "b")] == [
            (c.kind, c.stage, c.before) for c in found.of_kind("stage_renamed", "stage_merged")
        ]

    def test_a_shift_onto_the_ids_old_stages_had_is_renames(self) -> None:
        old, new = version("1", ("a", "b", "c")), version("2", ("b", "c", "d"))
        found = diff(old, new, mapping={"a": "b", "b": "c", "c": "d"})
        assert ["stage_renamed"] * 3 == [
            c.kind for c in found.of_kind("stage_renamed", "stage_merged")
        ]
        assert () == found.of_kind("stage_reordered")

    @pytest.mark.parametrize(
        ("ids", "mapping"),
        [(("b", "c"), {"a": "b"}), (("a", "c"), {"b": "c"}), (("b", "d"), {"a": "d", "c": "b"})],
    )
    def test_stages_merged_in_place_are_not_reordered(
        self, ids: tuple[str, ...], mapping: dict[str, str]
    ) -> None:
        found = diff(
            version("1", ("a", "b", "c", "d")[: len(ids) + len(mapping)]),
            version("2", ids),
            mapping=mapping,
        )
        assert len(mapping) == len(found.of_kind("stage_merged"))
        assert () == found.of_kind("stage_reordered")


# -- chains of versions: renames, swaps, merges and removals -------------------------------------

POOL = ("a", "A", "b", "B", "c", "x_1", "x.1", "Z-9")  # ids differing only by case


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Process], list[dict[str, str]], list[list[int]]]:
    """Versions (each a rename, swap, merge or removal of the one before), their migration
    mappings, and for each version how many steps each deal moves in it (-1: lose it)."""
    ids = tuple(draw(st.lists(st.sampled_from(POOL), min_size=2, max_size=4, unique=True)))
    versions = [version("1", ids)]
    mappings: list[dict[str, str]] = []
    for number in range(2, draw(st.integers(2, 5)) + 1):
        old = list(ids)
        source = draw(st.sampled_from(old))
        others = [i for i in old if i != source]
        op = draw(st.sampled_from(("rename", "swap", "merge", "remove")))
        renamed: dict[str, str] = {}
        mapping: dict[str, str] = {}
        free = [i for i in POOL if i not in old]
        if op == "rename" and free:
            new = draw(st.sampled_from(free))
            ids = tuple(new if i == source else i for i in old)
            renamed = {source: new}
        elif op == "swap" and others:
            mapping = {source: others[0], others[0]: source}
        elif op == "merge" and len(old) > 1:
            ids = tuple(others)
            renamed = {source: draw(st.sampled_from(others))}
        elif op == "remove" and len(old) > 1:
            ids = tuple(others)
            mapping = {source: draw(st.sampled_from(others))}
        versions.append(version(str(number), ids, renamed))
        mappings.append(mapping)
    moves = draw(
        st.lists(
            st.lists(st.integers(-1, 2), min_size=4, max_size=4),
            min_size=len(versions),
            max_size=len(versions),
        )
    )
    return versions, mappings, moves


def lived(
    versions: list[Process], mappings: list[dict[str, str]], moves: list[list[int]]
) -> MemoryStore:
    """Four deals that move (or are lost, or reopened) in every version, the store migrated
    from each to the next."""
    store = MemoryStore()
    store.save_process(versions[0])
    at = T0
    for i in range(4):
        store.save(Opportunity.open(versions[0], f"deal-{i}", at=at, actor="ana"))
    for n, process in enumerate(versions):
        if n:
            at += DAY
            migrate(store, process, actor="ops", at=at, mapping=mappings[n - 1])
        for i, steps in enumerate(moves[n]):
            deal = store.load_opportunity(_version_of(store, i, versions), f"deal-{i}")
            if deal.is_closed and (steps != 2 or deal.process is not process):
                continue  # reopened only in the version in force (else stranded, unmapped)
            at += timedelta(hours=1)
            if deal.is_closed:  # reopened, in the version it closed in
                first = deal.process.open_stages[0].id
                deal.reopen(at=at, actor="ana", reason="back", stage=first)
            elif steps < 0:
                deal.lose(at=at, actor="ana", reason="no budget")
            for _ in range(max(steps, 0) if not deal.is_closed else 0):
                if deal.process.next_stage(deal.stage) is not None:
                    deal.advance(at=at, actor="ana")
            store.save(deal)
    return store


def _version_of(store: MemoryStore, i: int, versions: list[Process]) -> Process:
    last = [e for e in store.scan() if e.opportunity_id == f"deal-{i}"][-1]
    return next(v for v in versions if v.version == last.process_version)


class TestVersionChains:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories())
    def test_every_chain_replays_and_maps_alike(
        self, history: tuple[list[Process], list[dict[str, str]], list[list[int]]]
    ) -> None:
        versions, mappings, moves = history
        store = lived(versions, mappings, moves)
        current = versions[-1]
        assert all(v.ok for v in store.verify())
        events = list(store.scan())
        try:
            mapped = map_history(events, current)
        except EvolutionError:  # a closed deal's stage removed unmapped: refused alike
            with pytest.raises(EvolutionError, match=r"renamed\."):
                map_history(store.to_frame(), current, lineage_of=lineage(store, current))
            return
        frame = map_history(store.to_frame(), current, lineage_of=lineage(store, current))
        assert [e.stage for e in mapped] == list(frame["stage"])
        assert {e.stage for e in mapped} <= set(current.stage_ids)
        logs: dict[str, list[object]] = {}
        for event in events:
            logs.setdefault(event.opportunity_id, []).append(event)
        for oid, log in logs.items():
            if log[-1].process_version == current.version:  # type: ignore[attr-defined]
                own = [e.stage for e in in_current_names(log)]  # type: ignore[arg-type]
                assert own == [e.stage for e in mapped if e.opportunity_id == oid]
                assert store.load_opportunity(current, oid).stage == own[-1]
        again = plan_migration(store, current)
        assert (again.moves, again.stranded) == ((), ())  # migrating twice moves nothing


def test_errors_are_stagegate_errors() -> None:
    assert issubclass(EvolutionError, StagegateError)


class TestChangedDefinitionOfAStoredVersion:
    def test_the_dry_run_refuses_what_the_migration_would_refuse(self) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        deal = Opportunity.open(v1, "d", at=T0, actor="ana")
        store = stored(deal, versions=(v2,))
        changed = version("2", ("a", "b", "c"))  # the same version, another definition
        before = snapshot(store)
        for run in (
            lambda: plan_migration(store, changed),
            lambda: migrate(store, changed, actor="ops", at=T0 + DAY),
        ):
            with pytest.raises(StagegateError, match="give the changed definition a new version"):
                run()
        assert before == snapshot(store)
        assert 1 == len(migrate(store, v2, actor="ops", at=T0 + DAY).moves)  # the stored one
        assert () == plan_migration(store, v2).moves


class TestStrandedInAClosedStage:
    @pytest.mark.parametrize(
        ("new", "mapping"),
        [
            (version("2", ("a", "b")), {"a": "won"}),  # mapped onto a closed stage
            (
                Process(
                    "p",
                    "2",
                    (
                        Stage("b", probability=0.5),
                        Stage("a", probability=1, kind=StageKind.WON),
                        Stage("lost", probability=0, kind=StageKind.LOST),
                    ),
                    renamed={"won": "a"},
                ),
                {},
            ),  # 'a' is a closed stage now
        ],
    )
    def test_the_refusal_says_the_stage_has_no_open_place(
        self, new: Process, mapping: dict[str, str]
    ) -> None:
        store = stored(Opportunity.open(version("1", ("a", "b")), "d", at=T0, actor="ana"))
        before = snapshot(store)
        with pytest.raises(EvolutionError, match="no open place in version '2' \\('a'") as caught:
            migrate(store, new, actor="ops", at=T0 + DAY, mapping=mapping)
        assert "an open stage" in caught.value.plan.lines()[-2]  # type: ignore[attr-defined]
        assert before == snapshot(store)


class TestDeliverableRenamedToNothing:
    def test_a_rename_to_a_deliverable_the_new_version_lacks_writes_nothing(self) -> None:
        v1 = b2b()
        deal = Opportunity.open(v1, "d", at=T0, actor="ana")
        deal.record_deliverable(
            "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": "k@x.example"}
        )
        store = stored(deal)
        before = snapshot(store)
        with pytest.raises(EvolutionError, match="'lead', which is no deliverable of version '2'"):
            migrate(
                store, renamed(v1), actor="ops", at=T0 + DAY, deliverables={"lead_record": "lead"}
            )
        assert before == snapshot(store)
        plan = migrate(store, renamed(v1), actor="ops", at=T0 + DAY, deliverables={})
        assert 1 == len(plan.moves)

    def test_the_command_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        v1, v2 = b2b(), renamed(b2b())
        (tmp_path / "v2.toml").write_text(process_to_toml(v2), "utf-8")
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.save_process(v1)
            store.save(Opportunity.open(v1, "d", at=T0, actor="ana"))
        args = ["--store", str(tmp_path / "s.sqlite"), "--to", str(tmp_path / "v2.toml")]
        assert 2 == main(["migrate", *args, "--map-deliverable", "lead_record=lead"])
        assert "no deliverable of version '2'" in capsys.readouterr().err
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            assert (1, [("b2b", "1")]) == (store.count(), store.processes())


class TestDryRunRefusesLikeTheMigration:
    def test_an_instant_before_a_deals_last_event(self) -> None:
        v1, v2 = version("1", ("a", "b")), version("2", ("a", "b"))
        store = stored(Opportunity.open(v1, "d", at=T0 + DAY, actor="ana"))
        with pytest.raises(EvolutionError, match="migrate at a later instant"):
            plan_migration(store, v2, at=T0)
        assert 1 == len(plan_migration(store, v2, at=T0 + DAY).moves)  # the same instant: fine

    def test_a_deliverable_renamed_to_nothing(self) -> None:
        v1 = b2b()
        store = stored(Opportunity.open(v1, "d", at=T0, actor="ana"))
        with pytest.raises(EvolutionError, match="no deliverable of version '2'"):
            plan_migration(store, renamed(v1), deliverables={"lead_record": "lead"})

    @pytest.mark.parametrize(
        "extra", [["--at", "2020-01-01T00:00:00Z"], ["--map-deliverable", "lead_record=lead"]]
    )
    def test_the_dry_run_command_exits_2(
        self, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        v1 = b2b()
        (tmp_path / "v2.toml").write_text(process_to_toml(renamed(v1)), "utf-8")
        with SQLiteStore(tmp_path / "s.sqlite") as store:
            store.save_process(v1)
            store.save(Opportunity.open(v1, "d", at=T0, actor="ana"))
        args = ["--store", str(tmp_path / "s.sqlite"), "--to", str(tmp_path / "v2.toml")]
        assert 2 == main(["migrate", *args, "--dry-run", *extra])
        assert "nothing was migrated" in capsys.readouterr().err
