"""Process evolution: diff, migration of open deals, replay across versions, mapped history."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import analytics
from stagegate.definition import process_from_dict, process_from_json, process_to_dict
from stagegate.errors import DefinitionError, EventLogError, InvalidCommandError
from stagegate.events import EventKind
from stagegate.evolution import (
    EvolutionError,
    StrandedDealsError,
    diff,
    impact,
    lineage,
    map_history,
    migrate,
    plan_migration,
    stage_mapping,
    store_impact,
)
from stagegate.gates import ActivityCount, AllOf, Approval, Deliverable
from stagegate.integrity import verify
from stagegate.opportunity import Opportunity
from stagegate.process import ActivitySpec, DeliverableSpec, Policies, Process, Stage, StageKind
from stagegate.store import MemoryStore, SQLiteStore
from stagegate.templates import b2b

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
LATER = datetime(2026, 6, 1, tzinfo=timezone.utc)
EVIDENCE = {
    "lead_record": {"source": "webinar", "contact": "kim@example.com"},
    "qualification_checklist": {"budget": "yes", "need": "yes", "timeline": "q3"},
    "needs_summary": {"document": "https://example.com/needs"},
}


def renamed(process: Process, old: str = "qualification", new: str = "qualify") -> Process:
    """The next version of ``process`` with stage ``old`` renamed ``new`` (said in ``renamed``)."""
    stages = tuple(attrs.evolve(s, id=new) if s.id == old else s for s in process.stages)
    return attrs.evolve(process, version="2", stages=stages, renamed={old: new})


def evidence_for(process: Process, deliverable: str) -> dict[str, str]:
    """Every evidence field the process asks of a deliverable, filled in."""
    names = set(process.deliverables[deliverable].evidence)
    for stage in process.stages:
        for criterion in stage.gate.walk() if stage.gate is not None else ():
            if isinstance(criterion, Deliverable) and criterion.deliverable == deliverable:
                names.update(criterion.evidence)
    return dict.fromkeys(sorted(names), "x")


def advanced(process: Process, oid: str, steps: int, *, start: datetime = T0) -> Opportunity:
    """A deal opened at ``start`` and advanced ``steps`` times, gates met, one day apart."""
    deal = Opportunity.open(process, oid, at=start, actor="ana", amount=1000)
    at = start
    for _ in range(steps):
        at += timedelta(days=1)
        stage = process.stage(deal.stage)
        for spec in stage.deliverables:
            deal.record_deliverable(
                spec.id, at=at, actor="ana", evidence=evidence_for(process, spec.id)
            )
        for activity in stage.activities:
            deal.log_activity(activity.id, at=at, actor="ana")
        nxt = process.next_stage(deal.stage)
        for criterion in nxt.gate.walk() if nxt is not None and nxt.gate is not None else ():
            if isinstance(criterion, Approval):
                deal.record_approval(criterion.role, at=at, actor="boss")
        deal.advance(at=at, actor="ana")
    return deal


def tiny(
    version: str = "1", *, ids: tuple[str, ...] = ("a", "b", "c"), **fields: object
) -> Process:
    """A small ungated process: open stages ``ids``, then won and lost."""
    stages = [Stage(i, probability=0.2 + 0.2 * n) for n, i in enumerate(ids)]
    stages += [Stage("won", probability=1, kind=StageKind.WON)]
    stages += [Stage("lost", probability=0, kind=StageKind.LOST)]
    return Process("tiny", version, tuple(stages), **fields)  # type: ignore[arg-type]


# -- the definition's renamed map --------------------------------------------------------------


class TestRenamedDefinition:
    def test_renamed_round_trips_through_json(self) -> None:
        new = renamed(b2b())
        assert new == process_from_json(json.dumps(process_to_dict(new)))
        assert {"qualification": "qualify"} == process_to_dict(new)["renamed"]

    def test_a_definition_without_renames_dumps_as_before(self) -> None:
        assert "renamed" not in process_to_dict(b2b())

    def test_renaming_a_stage_that_still_exists_is_refused(self) -> None:
        with pytest.raises(DefinitionError, match="still exists"):
            attrs.evolve(b2b(), renamed={"qualification": "needs_analysis"})

    def test_renaming_into_an_unknown_stage_is_refused(self) -> None:
        data = process_to_dict(b2b())
        data["renamed"] = {"gone": "nowhere"}
        with pytest.raises(DefinitionError, match="must name a stage of this version"):
            process_from_dict(data)


# -- diff --------------------------------------------------------------------------------------


class TestDiff:
    def test_identical_versions_have_no_changes(self) -> None:
        found = diff(b2b(), attrs.evolve(b2b(), version="2"))
        assert not found.changed
        assert ["process 'b2b': version 1 -> 2", "  no changes"] == found.lines()

    def test_a_rename_said_in_the_definition_is_a_rename(self) -> None:
        found = diff(b2b(), renamed(b2b()))
        assert [("stage_renamed", "qualify")] == [(c.kind, c.stage) for c in found.changes]
        assert "qualify" == found.mapping["qualification"]
        assert () == found.removed == found.added

    def test_a_rename_is_never_guessed_but_suggested(self) -> None:
        new = attrs.evolve(renamed(b2b()), renamed={})
        found = diff(b2b(), new)
        assert ("qualification",) == found.removed
        assert ("qualify",) == found.added
        assert {"qualification": "qualify"} == found.suggestions
        assert "qualification" not in found.mapping
        assert any("--map qualification=qualify" in line for line in found.lines())

    def test_an_explicit_mapping_matches_the_stages(self) -> None:
        new = attrs.evolve(renamed(b2b()), renamed={})
        found = diff(b2b(), new, mapping={"qualification": "qualify"})
        assert ["stage_renamed"] == [c.kind for c in found.changes]

    def test_two_stages_mapped_onto_one_are_a_merge(self) -> None:
        new = tiny("2", ids=("a", "c"))
        found = diff(tiny(), new, mapping={"b": "c"})
        assert [("stage_merged", "c", "b")] == [
            (c.kind, c.stage, c.before) for c in found.of_kind("stage_merged")
        ]

    def test_a_stage_moved_is_reordered(self) -> None:
        new = attrs.evolve(tiny(), version="2", stages=tiny(ids=("b", "a", "c")).stages)
        found = diff(tiny(), new)
        moved = found.of_kind("stage_reordered")
        assert 1 == len(moved)
        assert moved[0].stage in {"a", "b"}

    def test_added_criteria_tighten_and_removed_ones_loosen(self) -> None:
        def version(name: str, gate: AllOf) -> Process:
            stages = list(tiny().stages)
            stages[0] = attrs.evolve(
                stages[0],
                activities=(ActivitySpec("call"),),
                deliverables=(DeliverableSpec("nda_signed"),),
            )
            stages[1] = attrs.evolve(stages[1], gate=gate)
            return attrs.evolve(tiny(), version=name, stages=tuple(stages))

        before = version("1", AllOf((ActivityCount("call", 1), Approval("cfo"))))
        after = version("2", AllOf((ActivityCount("call", 3), Deliverable("nda_signed"))))
        found = diff(before, after)
        kinds = {(c.kind, c.text) for c in found.changes}
        assert {
            ("gate_tightened", "gate of 'b' now needs deliverable 'nda_signed'"),
            ("gate_loosened", "gate of 'b' no longer needs approval by 'cfo'"),
            ("gate_tightened", "gate of 'b': 1 x 'call' -> 3 x 'call'"),
        } == kinds

    def test_every_stage_attribute_is_compared(self) -> None:
        def version(name: str, **changes: object) -> Process:
            stages = list(tiny().stages)
            nda = DeliverableSpec("nda", evidence=changes.pop("evidence", ("signed_by",)))  # type: ignore[arg-type]
            stages[0] = attrs.evolve(
                stages[0], deliverables=(nda,), activities=changes.pop("activities", ())
            )
            gate = Deliverable("nda", ("signed_by",), changes.pop("age", None))  # type: ignore[arg-type]
            stages[1] = attrs.evolve(stages[1], gate=gate, **changes)
            return attrs.evolve(tiny(), version=name, stages=tuple(stages))

        before = version("1", age=timedelta(days=30))
        after = version(
            "2",
            age=timedelta(days=10),
            forecast_category="commit",
            max_days=30.0,
            labels={"en": "Bee"},
            activities=(ActivitySpec("call"),),
            evidence=("signed_by", "date"),
        )
        kinds = {c.kind for c in diff(before, after).changes}
        assert {
            "forecast_category_changed",
            "max_days_changed",
            "label_changed",
            "activity_added",
            "deliverable_changed",
            "gate_tightened",
        } == kinds
        assert {"activity_removed", "gate_loosened", "deliverable_changed"} <= {
            c.kind for c in diff(after, before).changes
        }

    def test_probabilities_and_policies_are_compared(self) -> None:
        stages = tuple(
            attrs.evolve(s, probability=0.3) if s.id == "a" else s for s in tiny().stages
        )
        new = tiny("2", policies=Policies(allow_skip=True))
        new = attrs.evolve(new, stages=stages)
        texts = [c.text for c in diff(tiny(), new).changes]
        assert ["probability of 'a': 0.2 -> 0.3", "policy allow_skip: false -> true"] == texts

    def test_the_diff_is_json(self) -> None:
        document = diff(b2b(), renamed(b2b())).to_dict()
        assert document == json.loads(json.dumps(document))
        assert "2" == document["new_version"]

    def test_two_different_processes_are_refused(self) -> None:
        with pytest.raises(EvolutionError, match="two processes"):
            diff(b2b(), tiny())

    def test_a_mapping_to_an_unknown_stage_is_refused(self) -> None:
        with pytest.raises(EvolutionError, match="does not take a stage"):
            stage_mapping(tiny(), tiny("2"), {"a": "nowhere"})


# -- the migrate command on a deal -------------------------------------------------------------


class TestDealMigration:
    def test_a_migration_records_one_event_and_keeps_the_stage_entry(self) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        entered = deal.time_in_stage(as_of=T0 + timedelta(days=5))
        event = deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        assert EventKind.MIGRATED is event.kind
        assert ("qualify", "2") == (event.stage, event.process_version)
        assert {"from_version": "1", "from_stage": "qualification"} == {
            k: event.details[k] for k in ("from_version", "from_stage")
        }
        assert entered == deal.time_in_stage(as_of=T0 + timedelta(days=5))
        assert new is deal.process

    def test_events_before_a_migration_replay_under_the_old_version(self) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        deal.record_deliverable(
            "qualification_checklist",
            at=T0 + timedelta(days=4),
            actor="ana",
            evidence=EVIDENCE["qualification_checklist"],
        )
        deal.log_activity("discovery_call", at=T0 + timedelta(days=4), actor="ana")
        deal.advance(at=T0 + timedelta(days=5), actor="ana")
        assert deal == Opportunity.replay(new, deal.events, versions=[old])
        assert deal == Opportunity.replay(new, deal.events, versions={"1": old})
        assert verify(new, deal.events, versions=[old]).events == len(deal.events)

    def test_without_the_old_version_replay_names_it(self) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(new, deal.events)
        assert "version_mismatch" == caught.value.rule

    def test_a_closed_deal_keeps_its_version(self) -> None:
        old = b2b()
        deal = advanced(old, "d-1", 1)
        deal.lose(at=T0 + timedelta(days=2), actor="ana", reason="no budget")
        before = deal.events
        with pytest.raises(InvalidCommandError, match="closed deals keep"):
            deal.migrate(renamed(old), at=T0 + timedelta(days=3), actor="ops")
        assert before == deal.events

    def test_a_stage_without_a_place_needs_a_mapping(self) -> None:
        old = tiny()
        new = tiny("2", ids=("a", "c"))
        deal = advanced(old, "t-1", 1)
        with pytest.raises(InvalidCommandError, match="map it"):
            deal.migrate(new, at=T0 + timedelta(days=2), actor="ops")
        assert 2 == len(deal.events)
        event = deal.migrate(new, at=T0 + timedelta(days=2), actor="ops", mapping={"b": "c"})
        assert ("c", {"b": "c"}) == (event.stage, dict(event.details["mapping"]))

    def test_the_same_version_is_refused(self) -> None:
        deal = advanced(b2b(), "d-1", 0)
        with pytest.raises(InvalidCommandError, match="another version"):
            deal.migrate(b2b(), at=T0, actor="ops")

    def test_renamed_deliverables_count_for_the_new_gates(self) -> None:
        old = b2b()
        specs = {"lead_record": "lead_card"}
        stages = tuple(
            attrs.evolve(
                s,
                deliverables=tuple(
                    attrs.evolve(d, id=specs.get(d.id, d.id)) for d in s.deliverables
                ),
            )
            for s in old.stages
        )
        stages = tuple(
            attrs.evolve(s, gate=Deliverable("lead_card", ("source", "contact")))
            if s.id == "qualification"
            else s
            for s in stages
        )
        new = attrs.evolve(old, version="2", stages=stages)
        deal = Opportunity.open(old, "d-1", at=T0, actor="ana")
        deal.record_deliverable("lead_record", at=T0, actor="ana", evidence=EVIDENCE["lead_record"])
        deal.migrate(new, at=T0, actor="ops", deliverables=specs)
        assert deal.can_advance(at=T0)
        deal.advance(at=T0, actor="ana")
        assert deal == Opportunity.replay(new, deal.events, versions=[old])

    @pytest.mark.parametrize(
        ("change", "rule"),
        [
            ({"stage": "needs_analysis"}, "migration_mismatch"),
            ({"process_version": "9"}, "version_unknown"),
            ({"amount": None}, "migration_fields"),
            ({"seq": 7}, "seq_order"),
        ],
    )
    def test_a_tampered_migration_is_refused_on_replay(
        self, change: dict[str, object], rule: str
    ) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        events = list(deal.events)
        events[-1] = attrs.evolve(events[-1], **change)  # type: ignore[arg-type]
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(new, events, versions=[old])
        assert rule == caught.value.rule

    @pytest.mark.parametrize(
        ("details", "rule"),
        [
            ({"from_stage": "lead_generation"}, "migration_mismatch"),
            ({"from_version": "0"}, "migration_mismatch"),
            ({"mapping": {"qualification": 1}}, "malformed_details"),
        ],
    )
    def test_migration_details_must_match_the_deal(
        self, details: dict[str, object], rule: str
    ) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        event = deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        forged = attrs.evolve(event, details={**event.details, **details})
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(new, [*deal.events[:-1], forged], versions=[old])
        assert rule == caught.value.rule

    @pytest.mark.parametrize(
        ("change", "rule"),
        [
            ({"opportunity_id": "d-2"}, "opportunity_mismatch"),
            ({"at": T0}, "time_order"),
        ],
    )
    def test_a_migration_keeps_the_log_in_order(self, change: dict[str, object], rule: str) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        event = deal.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(
                new, [*deal.events[:-1], attrs.evolve(event, **change)], versions=[old]
            )
        assert rule == caught.value.rule

    def test_versions_must_be_versions_of_the_process(self) -> None:
        deal = advanced(b2b(), "d-1", 0)
        with pytest.raises(InvalidCommandError, match="earlier versions"):
            Opportunity.replay(b2b(), deal.events, versions=[tiny()])

    def test_another_process_is_refused(self) -> None:
        deal = advanced(b2b(), "d-1", 0)
        with pytest.raises(InvalidCommandError, match="another version of it"):
            deal.migrate(tiny("2"), at=T0, actor="ops")

    def test_a_mapping_must_be_text(self) -> None:
        deal = advanced(b2b(), "d-1", 0)
        with pytest.raises(InvalidCommandError, match="old ids to new ids"):
            deal.migrate(renamed(b2b()), at=T0, actor="ops", mapping={"lead_generation": 3})  # type: ignore[dict-item]
        assert 1 == len(deal.events)

    def test_a_migration_recorded_on_a_closed_deal_is_refused_on_replay(self) -> None:
        old, new = b2b(), renamed(b2b())
        deal = advanced(old, "d-1", 1)
        open_copy = Opportunity.replay(old, deal.events)
        migrated = open_copy.migrate(new, at=T0 + timedelta(days=3), actor="ops")
        deal.lose(at=T0 + timedelta(days=2), actor="ana", reason="no budget")
        forged = attrs.evolve(
            migrated,
            seq=len(deal.events) + 1,
            details={**migrated.details, "from_stage": "lost"},
            stage="lost",
        )
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(new, [*deal.events, forged], versions=[old])
        assert "closed_deal" == caught.value.rule

    @given(steps=st.integers(0, 5), rename=st.integers(0, 5), back=st.booleans())
    def test_any_open_deal_migrates_and_replays(self, steps: int, rename: int, back: bool) -> None:
        old = b2b()
        target = old.open_stages[rename].id
        new = renamed(old, target, target + "_v2")
        deal = advanced(old, "p-1", steps)
        if back and deal.stage != old.initial.id:
            deal.move_to(old.initial.id, at=T0 + timedelta(days=9), actor="ana", reason="redo")
        deal.migrate(new, at=T0 + timedelta(days=10), actor="ops")
        assert deal == Opportunity.replay(new, deal.events, versions=[old])
        assert {e.stage for e in map_history(deal.events, new)} <= set(new.stage_ids)


# -- a store -----------------------------------------------------------------------------------


def pipeline(store: SQLiteStore | MemoryStore, process: Process, deals: int = 60) -> None:
    """Seeded deals: a third lost, a sixth won, the rest open in various stages."""
    rng = random.Random(5)  # noqa: S311 - test data, not secrets
    store.save_process(process)
    for i in range(deals):
        start = T0 + timedelta(hours=i)
        deal = advanced(process, f"d-{i:03}", rng.randrange(6), start=start)
        end = deal.last_at + timedelta(days=1)
        if i % 3 == 0:
            deal.lose(at=end, actor="ana", reason="no budget")
        elif i % 6 == 1 and deal.stage == "contract":
            deal.record_deliverable(
                "signed_contract",
                at=end,
                actor="ana",
                evidence=evidence_for(process, "signed_contract"),
            )
            deal.win(at=end, actor="ana")
        store.save(deal)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    path = tmp_path / "s.sqlite"
    with SQLiteStore(path) as opened:
        pipeline(opened, b2b())
    return SQLiteStore(path)


def closed_logs(store: SQLiteStore) -> dict[str, tuple[object, ...]]:
    old = b2b()
    logs: dict[str, list[object]] = {}
    for event in store.scan():
        logs.setdefault(event.opportunity_id, []).append(event)
    return {
        oid: tuple(log)
        for oid, log in logs.items()
        if log[-1].process_version == "1"  # type: ignore[attr-defined]
        and not old.stage(log[-1].stage).is_open  # type: ignore[attr-defined]
    }


class TestStoreMigration:
    def test_open_deals_move_and_closed_deals_keep_their_version(self, store: SQLiteStore) -> None:
        new = renamed(b2b())
        closed = closed_logs(store)
        before = store.count()
        plan = migrate(store, new, actor="ops", at=LATER, reason="Q3 process")
        assert plan.applied
        assert before + len(plan.moves) == store.count()
        assert len(closed) == plan.closed
        assert closed == {oid: store.load(oid) for oid in closed}
        assert [("b2b", "1"), ("b2b", "2")] == store.processes()
        assert all(v.ok and v.checked_process for v in store.verify())
        for move in plan.moves:
            deal = store.load_opportunity(new, move.opportunity_id)
            assert (move.to_stage, "2") == (deal.stage, deal.process.version)
            assert "ops" == deal.events[-1].actor
            assert "Q3 process" == deal.events[-1].reason

    def test_a_second_migration_finds_nothing_to_move(self, store: SQLiteStore) -> None:
        migrate(store, renamed(b2b()), actor="ops", at=LATER)
        again = plan_migration(store, renamed(b2b()))
        assert () == again.moves
        assert again.current > 0

    def test_stranded_deals_stop_the_whole_migration(self, store: SQLiteStore) -> None:
        new = attrs.evolve(renamed(b2b()), renamed={})
        before = store.count()
        with pytest.raises(StrandedDealsError) as caught:
            migrate(store, new, actor="ops", at=LATER)
        assert caught.value.plan.stranded
        assert {"qualification"} == {m.from_stage for m in caught.value.plan.stranded}
        assert before == store.count()
        assert [("b2b", "1")] == store.processes()
        done = migrate(store, new, actor="ops", at=LATER, mapping={"qualification": "qualify"})
        assert done.ready

    def test_a_dry_run_writes_nothing(self, store: SQLiteStore) -> None:
        before = store.count()
        plan = plan_migration(store, renamed(b2b()))
        assert not plan.applied
        assert plan.moves
        assert before == store.count()
        assert json.loads(json.dumps(plan.to_dict()))["migrated"] == len(plan.moves)

    def test_a_migration_before_a_deals_last_event_is_refused(self, store: SQLiteStore) -> None:
        before = store.count()
        with pytest.raises(EvolutionError, match="migrate at a later instant"):
            migrate(store, renamed(b2b()), actor="ops", at=T0)
        assert before == store.count()

    def test_an_unknown_stage_in_the_mapping_is_refused(self, store: SQLiteStore) -> None:
        with pytest.raises(EvolutionError, match="does not take a stage"):
            plan_migration(store, renamed(b2b()), mapping={"qualification": "nowhere"})

    def test_every_backend_gives_the_same_last_events(self, store: SQLiteStore) -> None:
        with MemoryStore() as memory:
            memory.append(list(store.scan()))
            assert list(memory.last_events()) == list(store.last_events())
        assert len(list(store.opportunity_ids())) == len(list(store.last_events()))
        light = list(store.last_events(light=True))
        assert [(e.opportunity_id, e.seq, e.stage, e.digest) for e in store.last_events()] == [
            (e.opportunity_id, e.seq, e.stage, e.digest) for e in light
        ]
        assert all(e.gate is None and e.details is None for e in light)

    def test_verify_under_a_named_process_finds_the_earlier_versions(
        self, store: SQLiteStore
    ) -> None:
        new = renamed(b2b())
        plan = migrate(store, new, actor="ops", at=LATER)
        verdicts = {v.opportunity_id: v for v in store.verify(new)}
        assert all(verdicts[m.opportunity_id].ok for m in plan.moves)
        closed = [v for v in verdicts.values() if not v.ok]
        assert plan.closed == len(closed)  # closed under version 1: not version 2's logs
        assert {"version_mismatch"} == {v.rule for v in closed}

    def test_a_migrated_deal_can_be_seen_as_it_stood_before(self, store: SQLiteStore) -> None:
        new = renamed(b2b())
        plan = migrate(store, new, actor="ops", at=LATER)
        deal = store.load_opportunity(new, plan.moves[0].opportunity_id)
        earlier = deal.state_at(LATER - timedelta(seconds=1))
        assert ("1", plan.moves[0].from_stage) == (earlier.process.version, earlier.stage)
        assert deal.stage_durations(as_of=LATER).keys() <= set(new.stage_ids)

    def test_a_memory_store_migrates_too(self) -> None:
        with MemoryStore() as memory:
            pipeline(memory, b2b(), deals=12)
            plan = migrate(memory, renamed(b2b()), actor="ops", at=LATER)
            assert all(v.ok for v in memory.verify())
            assert plan.moves

    def test_closed_deals_figures_are_unchanged(self, store: SQLiteStore) -> None:
        old = b2b()
        closed = [e for log in closed_logs(store).values() for e in log]
        figures = _figures(closed, old)
        migrate(store, renamed(old), actor="ops", at=LATER)
        after = [e for log in closed_logs(store).values() for e in log]
        assert figures == _figures(after, old)


def _figures(events: list[object], process: Process) -> tuple[object, ...]:
    return (
        analytics.time_in_stage(events, process, as_of=LATER + timedelta(days=1)),
        analytics.funnel(events, process, as_of=LATER + timedelta(days=1)),
        analytics.cycle_times(events, process, as_of=LATER + timedelta(days=1)),
        analytics.stage_intervals(events, process, as_of=LATER + timedelta(days=1)),
    )


# -- impact ------------------------------------------------------------------------------------


class TestImpact:
    def test_a_tightened_gate_blocks_deals_that_could_advance(self) -> None:
        old = b2b()
        gate = AllOf((old.stage("needs_analysis").gate, Approval("sales_manager")))  # type: ignore[arg-type]
        stages = tuple(
            attrs.evolve(s, gate=gate) if s.id == "needs_analysis" else s for s in old.stages
        )
        new = attrs.evolve(old, version="2", stages=stages)
        ready = advanced(old, "ready", 1)
        for spec in old.stage("qualification").deliverables:
            ready.record_deliverable(
                spec.id, at=T0 + timedelta(days=2), actor="a", evidence=EVIDENCE[spec.id]
            )
        ready.log_activity("discovery_call", at=T0 + timedelta(days=2), actor="a")
        waiting = advanced(old, "waiting", 1)
        found = impact([ready, waiting], new, at=T0 + timedelta(days=3))
        assert ["ready"] == [d.opportunity_id for d in found.blocked]
        assert ("approval by 'sales_manager' missing",) == found.blocked[0].missing or (
            found.blocked[0].missing and "sales_manager" in found.blocked[0].missing[0]
        )
        assert 2 == found.open_deals
        loosened = impact([ready, waiting], old, at=T0 + timedelta(days=3))
        assert 0 == loosened.open_deals  # the same version compares nothing

    def test_a_loosened_gate_makes_deals_newly_eligible(self) -> None:
        old = b2b()
        stages = tuple(
            attrs.evolve(s, gate=None) if s.id == "needs_analysis" else s for s in old.stages
        )
        new = attrs.evolve(old, version="2", stages=stages)
        waiting = advanced(old, "waiting", 1)
        found = impact([waiting], new, at=T0 + timedelta(days=3))
        assert ["waiting"] == [d.opportunity_id for d in found.newly_eligible]

    def test_deals_in_a_removed_stage_are_stranded(self, store: SQLiteStore) -> None:
        new = attrs.evolve(renamed(b2b()), renamed={})
        found = store_impact(store, new, at=LATER)
        assert found.stranded
        assert {"qualification"} == {d.stage for d in found.stranded}
        assert any("stranded" in line for line in found.lines(limit=1))


# -- history mapped onto the current version ---------------------------------------------------


class TestMappedHistory:
    def test_a_rename_maps_every_figure_onto_the_new_name(self, store: SQLiteStore) -> None:
        old = b2b()
        new = renamed(old)
        as_of = LATER + timedelta(days=1)
        before = list(store.scan())
        migrate(store, new, actor="ops", at=LATER)
        mapped = map_history(store.scan(), new)
        assert {e.stage for e in mapped} <= set(new.stage_ids)
        was = analytics.time_in_stage(before, old, as_of=as_of)
        now = analytics.time_in_stage(mapped, new, as_of=as_of)
        assert [
            attrs.evolve(r, stage="qualify") if r.stage == "qualification" else r for r in was
        ] == now
        funnel_was = analytics.funnel(before, old, as_of=as_of).stages
        funnel_now = analytics.funnel(mapped, new, as_of=as_of).stages
        assert [s.reached for s in funnel_was] == [s.reached for s in funnel_now]

    def test_the_frame_is_mapped_like_the_events(self, store: SQLiteStore) -> None:
        new = renamed(b2b())
        migrate(store, new, actor="ops", at=LATER)
        frame = map_history(store.to_frame(), new, lineage_of=lineage(store, new))
        events = map_history(store.scan(), new)
        assert [(e.opportunity_id, e.seq, e.stage, e.from_stage) for e in events] == list(
            frame.select("opportunity_id", "seq", "stage", "from_stage").iter_rows()
        )

    def test_a_frame_needs_its_lineage(self, store: SQLiteStore) -> None:
        with pytest.raises(EvolutionError, match="lineage_of"):
            map_history(store.to_frame(), b2b())

    def test_a_merged_stage_counts_as_the_stage_it_joined(self) -> None:
        old, new = tiny(), tiny("2", ids=("a", "c"))
        deal = Opportunity.open(old, "m-1", at=T0, actor="ana")
        deal.advance(at=T0 + timedelta(days=2), actor="ana")  # 2 days in a
        deal.migrate(new, at=T0 + timedelta(days=5), actor="ops", mapping={"b": "c"})
        deal.advance(at=T0 + timedelta(days=7), actor="ana")  # 3 days in b, 2 in c: won
        mapped = map_history(deal.events, new)
        assert ["a", "c", "c", "won"] == [e.stage for e in mapped]
        times = {
            (r.stage, r.outcome): r.mean_days
            for r in analytics.time_in_stage(mapped, new, as_of=T0 + timedelta(days=8))
        }
        assert 5.0 == times["c", "won"]
        assert 2.0 == times["a", "won"]

    def test_two_migrations_compose_for_every_deal(self) -> None:
        v1 = tiny()
        v2 = attrs.evolve(tiny("2", ids=("a", "b2", "c")), renamed={"b": "b2"})
        v3 = attrs.evolve(tiny("3", ids=("a", "b3", "c")), renamed={"b2": "b3"})
        closed = Opportunity.open(v1, "closed", at=T0, actor="ana")
        closed.advance(at=T0 + timedelta(days=1), actor="ana")
        closed.lose(at=T0 + timedelta(days=2), actor="ana", reason="no budget")
        moved = Opportunity.open(v1, "moved", at=T0, actor="ana")
        moved.advance(at=T0 + timedelta(days=1), actor="ana")
        moved.migrate(v2, at=T0 + timedelta(days=3), actor="ops")
        moved.migrate(v3, at=T0 + timedelta(days=4), actor="ops")
        events = [*closed.events, *moved.events]
        mapped = map_history(events, v3)
        assert [("closed", "b3"), ("moved", "b3")] == sorted(
            {(e.opportunity_id, e.stage) for e in mapped if e.stage.startswith("b")}
        )
        assert moved == Opportunity.replay(v3, moved.events, versions=[v1, v2])
        assert "b3" == moved.stage
        assert {"a", "b3"} == set(moved.stage_durations(as_of=T0 + timedelta(days=5)))
        found = lineage(events, v3)
        assert "b3" == found.stage_of("closed", 2, "b")
        assert "b3" == found.stage_of("moved", 2, "b")

    def test_a_stage_with_no_place_is_named(self) -> None:
        old, new = tiny(), tiny("2", ids=("a", "c"))
        deal = Opportunity.open(old, "m-1", at=T0, actor="ana")
        deal.advance(at=T0 + timedelta(days=2), actor="ana")
        with pytest.raises(EvolutionError, match=r"renamed\.b"):
            map_history(deal.events, new)
