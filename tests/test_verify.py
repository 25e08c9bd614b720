"""Replay verifies meaning, and sealed logs detect edits: a corpus of tampered logs, each refused
with the seq of the first bad event and the rule it breaks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given

from stagegate import EventLogError, Opportunity, b2b
from stagegate.cli import main
from stagegate.events import Event, EventKind, MoveKind
from stagegate.gates import CriterionResult, GateReport
from stagegate.integrity import Verification, event_digest, seal, verify
from strategies import T0, full_evidence, lax_process, opportunities

H = timedelta(hours=1)
D = timedelta(days=1)
PROCESS = b2b()


def reference_deal() -> Opportunity:
    """A deal whose 13 events use every kind of command (seq in the comments)."""
    deal = Opportunity.open(PROCESS, "acme-1", at=T0, actor="ana", amount=48_000)  # 1
    deal.record_deliverable(
        "lead_record", at=T0 + H, actor="ana", evidence=full_evidence(PROCESS, "lead_record")
    )  # 2
    deal.advance(at=T0 + D, actor="ana")  # 3: qualification
    deal.log_activity("discovery_call", at=T0 + 2 * D, actor="ana")  # 4
    deal.record_deliverable(
        "qualification_checklist",
        at=T0 + 2 * D,
        actor="ana",
        evidence=full_evidence(PROCESS, "qualification_checklist"),
    )  # 5
    deal.advance(at=T0 + 3 * D, actor="ana")  # 6: needs_analysis
    deal.override("solution_proposal", at=T0 + 4 * D, actor="bo", reason="CEO's call")  # 7
    deal.set_field("discount_percent", 10, at=T0 + 5 * D, actor="ana")  # 8
    deal.change_amount(50_000, at=T0 + 5 * D, actor="ana")  # 9
    deal.reschedule(date(2026, 6, 30), at=T0 + 5 * D, actor="ana")  # 10
    deal.move_to("needs_analysis", at=T0 + 6 * D, actor="ana", reason="scope changed")  # 11
    deal.lose(at=T0 + 7 * D, actor="ana", reason="budget cut")  # 12
    deal.reopen(at=T0 + 8 * D, actor="ana", reason="budget back")  # 13
    return deal


LOG: tuple[Event, ...] = reference_deal().events


def changed(seq: int, **changes: object) -> list[Event]:
    """The reference log with the event ``seq`` changed."""
    log = list(LOG)
    log[seq - 1] = attrs.evolve(log[seq - 1], **changes)
    return log


def flipped(report: GateReport) -> GateReport:
    return GateReport(report.target, tuple(r._replace(holds=not r.holds) for r in report.results))


def stage_change(after: Event, target: str, move: MoveKind, **extra: object) -> Event:
    """A forged stage change right after ``after``."""
    fields: dict[str, object] = {
        "opportunity_id": after.opportunity_id,
        "seq": after.seq + 1,
        "kind": EventKind.STAGE_CHANGED,
        "at": after.at + H,
        "actor": "mallory",
        "stage": target,
        "process": after.process,
        "process_version": after.process_version,
        "from_stage": after.stage,
        "move": move,
        "amount": after.amount,
        "close_date": after.close_date,
    }
    fields.update(extra)
    return Event(**fields)  # type: ignore[arg-type]


def ready_to_win() -> Opportunity:
    """A deal in 'contract' with everything but the signed contract recorded."""
    deal = Opportunity.open(PROCESS, "acme-2", at=T0, actor="ana", amount=48_000)
    for deliverable in PROCESS.deliverables:
        if deliverable != "signed_contract":
            evidence = full_evidence(PROCESS, deliverable)
            deal.record_deliverable(deliverable, at=T0, actor="ana", evidence=evidence)
    for stage in PROCESS.stages:
        for activity in stage.activities:
            deal.log_activity(activity.id, at=T0, actor="ana")
    deal.set_field("discount_percent", 10, at=T0, actor="ana")
    while deal.stage != "contract":
        deal.advance(at=T0 + D, actor="ana")
    return deal


def forged_win(*, claim_met: bool) -> list[Event]:
    deal = ready_to_win()
    report = deal.gate_report("won")
    assert not report.passed
    gate = flipped(report) if claim_met else report
    return [*deal.events, stage_change(deal.events[-1], "won", MoveKind.WIN, gate=gate)]


def lead_to_won() -> list[Event]:
    opened = LOG[0]
    return [opened, stage_change(opened, "won", MoveKind.ADVANCE)]


def duplicated() -> list[Event]:
    log = list(LOG)
    return [*log[:3], log[2], *log[3:]]


def reordered() -> list[Event]:
    log = list(LOG)
    log[2], log[3] = (
        attrs.evolve(log[2], at=log[3].at),
        attrs.evolve(log[3], at=log[2].at),
    )
    return log


def after_close(kind: str) -> list[Event]:
    lost = LOG[11]
    log = list(LOG[:12])
    if kind == "advance":
        return [*log, stage_change(lost, "won", MoveKind.ADVANCE)]
    return [
        *log,
        Event(
            "acme-1",
            13,
            EventKind.RESCHEDULED,
            lost.at + H,
            "ana",
            lost.stage,
            lost.process,
            lost.process_version,
            amount=lost.amount,
            close_date=date(2027, 1, 1),
            details={"previous": "2026-06-30"},
        ),
    ]


def sealed_log() -> list[Event]:
    return list(seal(LOG))


def sealed_then(mutate: Callable[[list[Event]], list[Event]]) -> Callable[[], list[Event]]:
    return lambda: mutate(sealed_log())


def _set(log: list[Event], seq: int, **changes: object) -> list[Event]:
    log[seq - 1] = attrs.evolve(log[seq - 1], **changes)
    return log


TAMPERED: dict[str, tuple[Callable[[], list[Event]], int, str]] = {
    # -- the cases of the issue --
    "override relabelled as an advance": (
        lambda: changed(7, move=MoveKind.ADVANCE),
        7,
        "gate_not_met",
    ),
    "advance whose gate result was flipped": (
        lambda: changed(6, gate=flipped(LOG[5].gate)),  # type: ignore[arg-type]
        6,
        "gate_report_mismatch",
    ),
    "advance whose gate report was removed": (
        lambda: changed(6, gate=None),
        6,
        "gate_report_mismatch",
    ),
    "advance carrying another stage's report": (
        lambda: changed(6, gate=LOG[2].gate),
        6,
        "gate_report_mismatch",
    ),
    "process_version changed on one event": (
        lambda: changed(4, process_version="2"),
        4,
        "version_mismatch",
    ),
    "process_version changed on every event": (
        lambda: [attrs.evolve(e, process_version="2") for e in LOG],
        1,
        "version_mismatch",
    ),
    "lead_generation -> won recorded as an advance": (lead_to_won, 2, "move_not_allowed"),
    "a loss without a reason": (lambda: changed(12, reason=None), 12, "reason_missing"),
    "a loss with a blank reason": (lambda: changed(12, reason="  "), 12, "reason_missing"),
    "a negative amount": (lambda: changed(1, amount=Decimal(-48_000)), 1, "amount_invalid"),
    "a deliverable the process does not declare": (
        lambda: changed(2, subject="nda_signed"),
        2,
        "unknown_deliverable",
    ),
    # -- more --
    "reordered instants": (reordered, 4, "time_order"),
    "a duplicated event": (duplicated, 4, "seq_order"),
    "a missing event": (lambda: [*LOG[:4], *LOG[5:]], 5, "seq_order"),
    # 22 events to 'contract' (1 opening, 6 deliverables, 9 activities, 1 field, 5 advances)
    "a win without passing the gate": (lambda: forged_win(claim_met=False), 23, "gate_not_met"),
    "a win claiming a gate that did not hold": (
        lambda: forged_win(claim_met=True),
        23,
        "gate_not_met",
    ),
    "an advance after the deal was lost": (lambda: after_close("advance"), 13, "move_not_allowed"),
    "a reschedule after the deal was lost": (lambda: after_close("reschedule"), 13, "closed_deal"),
    "an override without a reason": (lambda: changed(7, reason=None), 7, "reason_missing"),
    "a backward move without a reason": (lambda: changed(11, reason=None), 11, "reason_missing"),
    "a reopening without a reason": (lambda: changed(13, reason=None), 13, "reason_missing"),
    "a backward move recorded as an advance": (
        lambda: changed(11, move=MoveKind.ADVANCE),
        11,
        "move_kind_mismatch",
    ),
    "a gated advance relabelled as imported": (
        lambda: changed(3, move=MoveKind.IMPORTED),
        3,
        "imported_with_gate",
    ),
    "a stage change that changes the amount": (
        lambda: changed(3, amount=Decimal(1)),
        3,
        "amount_changed",
    ),
    "a deliverable record that changes the close date": (
        lambda: changed(5, close_date=date(2030, 1, 1)),
        5,
        "close_date_changed",
    ),
    "an amount change to the same amount": (
        lambda: changed(9, amount=Decimal(48_000)),
        9,
        "unchanged_value",
    ),
    "a field named like a built-in": (lambda: changed(8, subject="amount"), 8, "bad_field"),
    "a field set without a value": (lambda: changed(8, details={}), 8, "malformed_details"),
    "an activity carrying a move": (
        lambda: changed(4, move=MoveKind.ADVANCE),
        4,
        "move_fields",
    ),
    "an event without an actor": (lambda: changed(4, actor=" "), 4, "actor_missing"),
    "an approval without a subject": (
        lambda: changed(4, kind=EventKind.APPROVAL_RECORDED, subject=""),
        4,
        "subject_missing",
    ),
    "a stage change leaving the wrong stage": (
        lambda: changed(6, from_stage="lead_generation"),
        6,
        "from_stage_mismatch",
    ),
    "an unknown stage": (lambda: changed(6, stage="nowhere"), 6, "unknown_stage"),
    "an event of another process": (lambda: changed(9, process="other"), 9, "process_mismatch"),
    "an event of another opportunity": (
        lambda: changed(9, opportunity_id="acme-9"),
        9,
        "opportunity_mismatch",
    ),
    "a stage change without a move kind": (lambda: changed(3, move=None), 3, "move_missing"),
    "a reschedule to the same date": (
        lambda: [
            *LOG[:10],
            *changed(
                11,
                kind=EventKind.RESCHEDULED,
                move=None,
                from_stage=None,
                gate=None,
                stage="solution_proposal",
            )[10:11],
        ],
        11,
        "unchanged_value",
    ),
    "an imported move into the stage it leaves": (
        lambda: changed(3, move=MoveKind.IMPORTED, gate=None, stage="lead_generation"),
        3,
        "move_not_allowed",
    ),
    "a second opening": (
        lambda: [*LOG, attrs.evolve(LOG[0], seq=14, at=LOG[-1].at)],
        14,
        "opened_again",
    ),
    # -- sealed logs --
    "a sealed event whose reason was edited": (
        sealed_then(lambda log: _set(log, 7, reason="approved")),
        7,
        "digest_mismatch",
    ),
    "a sealed event whose actor was edited": (
        sealed_then(lambda log: _set(log, 2, actor="bo")),
        2,
        "digest_mismatch",
    ),
    "a sealed event whose digest was replaced": (
        sealed_then(lambda log: _set(log, 5, digest="0" * 64)),
        5,
        "digest_mismatch",
    ),
    "a sealed event removed and the rest renumbered": (
        sealed_then(lambda log: [*log[:8], *(attrs.evolve(e, seq=e.seq - 1) for e in log[9:])]),
        9,
        "amount_changed",
    ),
    "a sealed log with a digest stripped from the middle": (
        sealed_then(lambda log: _set(log, 3, digest=None)),
        4,
        "digest_gap",
    ),
}


class TestTamperedLogs:
    @pytest.mark.parametrize(("make", "seq", "rule"), TAMPERED.values(), ids=TAMPERED.keys())
    def test_a_tampered_log_is_refused_naming_the_event_and_the_rule(self, make, seq, rule):
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(PROCESS, make())
        assert (seq, rule) == (caught.value.seq, caught.value.rule)
        assert f"event {seq} " in str(caught.value)
        assert rule in str(caught.value)

    def test_an_override_is_refused_where_the_policy_forbids_overrides(self):
        lax = lax_process()  # no overrides, no reopening
        log = [attrs.evolve(e, process=lax.name) for e in LOG]
        with pytest.raises(EventLogError) as caught:
            Opportunity.replay(lax, log)
        assert (7, "override_not_allowed") == (caught.value.seq, caught.value.rule)

    def test_the_reference_log_itself_replays(self):
        assert reference_deal() == Opportunity.replay(PROCESS, LOG)

    def test_a_malformed_amount_record_names_its_seq(self):
        data = LOG[0].to_dict() | {"amount": "-48000"}
        with pytest.raises(EventLogError) as caught:
            Event.from_dict(data)
        assert (1, "malformed") == (caught.value.seq, caught.value.rule)


class TestDigests:
    def test_sealing_keeps_the_events_equal(self):
        assert list(LOG) == list(seal(LOG))

    def test_each_digest_chains_to_the_one_before(self):
        sealed = seal(LOG)
        previous = None
        for event in sealed:
            assert event_digest(event, previous) == event.digest
            previous = event.digest

    def test_a_digest_is_sha256_hex(self):
        digest = seal(LOG)[0].digest
        assert digest is not None
        assert 64 == len(digest)
        assert set(digest) <= set("0123456789abcdef")

    def test_the_same_event_after_another_history_gets_another_digest(self):
        assert event_digest(LOG[1], None) != event_digest(LOG[1], seal(LOG)[0].digest)

    def test_sealing_again_keeps_the_sealed_events(self):
        sealed = seal(LOG)
        assert all(a is b for a, b in zip(sealed, seal(sealed), strict=True))

    def test_a_sealed_log_survives_json_and_still_verifies(self):
        lines = [json.dumps(event.to_dict()) for event in seal(LOG)]
        read = [Event.from_dict(json.loads(line)) for line in lines]
        result = verify(PROCESS, read, require_digests=True)
        assert Verification("acme-1", 13, "needs_analysis", 13, read[-1].digest, False) == result
        assert result.fully_sealed

    @pytest.mark.parametrize(("suffix", "kept"), [("jsonl", True), ("csv", False)])
    def test_a_sealed_log_written_as_a_file_reads_back_and_verifies(self, tmp_path, suffix, kept):
        from stagegate.io import read_events, write_events

        path = tmp_path / f"log.{suffix}"
        write_events(path, seal(LOG))
        read = read_events(path)
        assert (13 if kept else 0) == verify(PROCESS, read).sealed

    def test_an_unsealed_event_has_no_digest_key(self):
        assert "digest" not in LOG[0].to_dict()

    def test_a_log_sealed_then_appended_to_verifies_with_its_sealed_prefix(self):
        deal = Opportunity.replay(PROCESS, seal(LOG))
        deal.log_activity("needs_meeting", at=T0 + 9 * D, actor="ana")
        result = verify(PROCESS, deal.events)
        assert (13, 14, False) == (result.sealed, result.events, result.fully_sealed)

    def test_an_unsealed_log_is_refused_when_digests_are_required(self):
        with pytest.raises(EventLogError) as caught:
            verify(PROCESS, LOG, require_digests=True)
        assert (1, "digest_missing") == (caught.value.seq, caught.value.rule)

    def test_a_cut_off_tail_changes_the_head(self):
        sealed = seal(LOG)
        assert verify(PROCESS, sealed).head != verify(PROCESS, sealed[:-1]).head

    @pytest.mark.parametrize("digest", ["A" * 64, "0" * 63, 12, "g" * 64])
    def test_a_malformed_digest_record_is_refused(self, digest):
        with pytest.raises(EventLogError, match="digest"):
            Event.from_dict(LOG[0].to_dict() | {"digest": digest})

    def test_an_event_json_cannot_write_cannot_be_sealed(self):
        from stagegate import InvalidCommandError

        odd = attrs.evolve(LOG[3], details={"x": {1, 2}})
        with pytest.raises(InvalidCommandError, match="cannot be sealed"):
            seal([*LOG[:3], odd])

    def test_seal_takes_only_events(self):
        from stagegate import InvalidCommandError

        with pytest.raises(InvalidCommandError, match="Event objects"):
            seal([LOG[0], "x"])  # type: ignore[list-item]


class TestEveryRealLogVerifies:
    @given(opportunities())
    def test_a_log_made_by_commands_seals_round_trips_and_verifies(self, deal):
        sealed = seal(deal.events)
        read = [Event.from_dict(json.loads(json.dumps(e.to_dict()))) for e in sealed]
        result = verify(deal.process, read, require_digests=True)
        assert (deal.id, len(deal.events), deal.stage) == (
            result.opportunity_id,
            result.events,
            result.stage,
        )
        assert deal == Opportunity.replay(deal.process, read)


class TestImportedHistory:
    def _imported(self) -> list[Event]:
        deal = Opportunity.open(PROCESS, "crm-1", at=T0, actor="system:crm")
        deal.record_history("negotiation", at=T0 + D, actor="system:crm")
        deal.record_history("won", at=T0 + 2 * D, actor="system:crm")
        return list(deal.events)

    def test_imported_stage_changes_verify_and_are_flagged(self):
        result = verify(PROCESS, self._imported())
        assert (True, "won") == (result.imported, result.stage)

    def test_imported_history_is_refused_on_request(self):
        with pytest.raises(EventLogError) as caught:
            verify(PROCESS, self._imported(), allow_imported=False)
        assert (2, "imported_history") == (caught.value.seq, caught.value.rule)

    def test_an_opening_in_a_later_stage_is_imported_history(self):
        log = changed(1, stage="negotiation")[:1]
        assert verify(PROCESS, log).imported
        with pytest.raises(EventLogError) as caught:
            verify(PROCESS, log, allow_imported=False)
        assert (1, "imported_history") == (caught.value.seq, caught.value.rule)

    def test_a_log_of_commands_is_not_imported(self):
        assert not verify(PROCESS, LOG, allow_imported=False).imported


class TestVerifyCommand:
    def _write(self, path, events):
        path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events), "utf-8")
        return str(path)

    def test_a_good_log_exits_0_and_can_be_sealed(self, tmp_path, capsys):
        source = self._write(tmp_path / "log.jsonl", LOG)
        target = tmp_path / "sealed.jsonl"
        assert 0 == main(["verify", source, "--seal", str(target)])
        assert "ok acme-1: 13 events" in capsys.readouterr().out
        assert 0 == main(["verify", str(target), "--require-digests", "--json"])
        answer = json.loads(capsys.readouterr().out)
        assert (True, 13) == (answer["ok"], answer["logs"][0]["sealed"])

    def test_a_tampered_log_exits_1_naming_seq_and_rule(self, tmp_path, capsys):
        source = self._write(tmp_path / "log.jsonl", changed(12, reason=None))
        assert 1 == main(["verify", source, "--json"])
        answer = json.loads(capsys.readouterr().out)
        assert (False, 12, "reason_missing") == (
            answer["ok"],
            answer["logs"][0]["seq"],
            answer["logs"][0]["rule"],
        )

    def test_an_edited_sealed_file_exits_1(self, tmp_path, capsys):
        source = tmp_path / "log.jsonl"
        self._write(source, seal(LOG))
        text = source.read_text("utf-8").replace('"budget cut"', '"price"')
        source.write_text(text, "utf-8")
        assert 1 == main(["verify", str(source)])
        assert "BROKEN acme-1: event 12 breaks digest_mismatch" in capsys.readouterr().out

    def test_several_opportunities_are_verified_each(self, tmp_path, capsys):
        other = [attrs.evolve(e, opportunity_id="acme-9") for e in changed(3, gate=None)]
        source = self._write(tmp_path / "log.jsonl", [*LOG, *other])
        assert 1 == main(["verify", source, "--json"])
        answer = json.loads(capsys.readouterr().out)
        assert [("acme-1", True), ("acme-9", False)] == [
            (log["opportunity_id"], log["ok"]) for log in answer["logs"]
        ]

    def test_imported_history_can_be_refused(self, tmp_path, capsys):
        source = self._write(tmp_path / "log.jsonl", TestImportedHistory()._imported())
        assert 0 == main(["verify", source])
        assert "ok crm-1" in capsys.readouterr().out
        assert 1 == main(["verify", source, "--refuse-imported", "--json"])
        answer = json.loads(capsys.readouterr().out)
        assert "imported_history" == answer["logs"][0]["rule"]

    def test_an_unwritable_seal_target_exits_2(self, tmp_path, capsys):
        source = self._write(tmp_path / "log.jsonl", LOG)
        assert 2 == main(["verify", source, "--seal", str(tmp_path / "missing" / "x.jsonl")])
        assert "cannot write" in capsys.readouterr().err

    def test_a_malformed_file_exits_2(self, tmp_path, capsys):
        source = tmp_path / "log.jsonl"
        source.write_text('{"seq": 1}\n', "utf-8")
        assert 2 == main(["verify", str(source), "--json"])
        assert json.loads(capsys.readouterr().out)["ok"] is False

    def test_an_unknown_template_exits_2(self, tmp_path, capsys):
        source = self._write(tmp_path / "log.jsonl", LOG)
        assert 2 == main(["verify", source, "--template", "nope"])
        assert "invalid" in capsys.readouterr().err


def test_a_recorded_report_whose_reasons_read_differently_is_accepted():
    report = LOG[5].gate
    assert report is not None
    reworded = GateReport(report.target, tuple(r._replace(reason="ok") for r in report.results))
    replayed = Opportunity.replay(PROCESS, changed(6, gate=reworded))
    assert (reworded, "needs_analysis") == (replayed.events[5].gate, replayed.stage)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r._replace(criterion="deliverable 'other'"),
        lambda r: r._replace(evidence=(1,)),
        lambda r: r._replace(children=(r,)),
    ],
)
def test_a_recorded_report_with_other_criteria_or_evidence_is_refused(edit):
    report = LOG[5].gate
    assert report is not None
    edited = GateReport(report.target, (edit(report.results[0]), *report.results[1:]))
    with pytest.raises(EventLogError) as caught:
        Opportunity.replay(PROCESS, changed(6, gate=edited))
    assert (6, "gate_report_mismatch") == (caught.value.seq, caught.value.rule)


def test_changing_a_gate_report_result_is_refused():
    report = LOG[5].gate
    assert report is not None
    extra = CriterionResult("approval by 'cfo'", True, "approved")
    log = changed(6, gate=GateReport(report.target, (*report.results, extra)))
    with pytest.raises(EventLogError) as caught:
        Opportunity.replay(PROCESS, log)
    assert (6, "gate_report_mismatch") == (caught.value.seq, caught.value.rule)
