"""A short tour: the built-in process, three deals driven through it, a rejected move, the log.

Run it with ``python -m stagegate.demo`` (or ``make demo``). It uses fixed instants, so its output
is the same on every run.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from stagegate.errors import GateNotMetError
from stagegate.opportunity import Opportunity
from stagegate.templates import b2b

__all__ = ["drive_sample_deals", "main"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _day(days: float) -> datetime:
    return T0 + timedelta(days=days)


def drive_sample_deals() -> list[Opportunity]:
    """Drive three sample deals through the b2b template: one won, one lost, one still open."""
    process = b2b()
    won = Opportunity.open(
        process, "acme-erp", at=_day(0), actor="ana", amount=48_000, close_date=date(2026, 5, 29)
    )
    won.record_deliverable(
        "lead_record", at=_day(0.1), actor="system:hubspot",
        evidence={"source": "webinar", "contact": "kim@acme.example"},
    )  # fmt: skip
    won.advance(at=_day(2), actor="ana")
    won.log_activity("discovery_call", at=_day(4), actor="system:calendar")
    won.record_deliverable(
        "qualification_checklist", at=_day(5), actor="ana",
        evidence={"budget": "50k", "authority": "CIO", "need": "ERP", "timeline": "Q2"},
    )  # fmt: skip
    won.advance(at=_day(6), actor="ana")
    won.log_activity("needs_meeting", at=_day(10), actor="system:calendar")
    won.record_deliverable(
        "needs_summary", at=_day(12), actor="ana",
        evidence={"pain_points": ["month-end close"], "decision_makers": ["CIO", "CFO"]},
    )  # fmt: skip
    won.advance(at=_day(13), actor="ana")
    won.record_deliverable(
        "proposal_sent", at=_day(20), actor="system:docusign",
        evidence={"document": "proposal-v2.pdf", "sent_to": "cfo@acme.example"},
    )  # fmt: skip
    won.log_activity("proposal_review", at=_day(24), actor="ana")
    won.reschedule(date(2026, 6, 12), at=_day(25), actor="ana", reason="CFO on leave")
    won.advance(at=_day(26), actor="ana")
    won.set_field("discount_percent", 20, at=_day(30), actor="ana")
    won.record_deliverable(
        "negotiated_terms", at=_day(31), actor="ana",
        evidence={"discount_percent": 20, "payment_terms": "net 30"},
    )  # fmt: skip
    won.record_approval("deal_desk", at=_day(32), actor="lee")
    won.advance(at=_day(33), actor="ana")
    won.record_deliverable(
        "signed_contract", at=_day(40), actor="system:docusign",
        evidence={"document": "msa-signed.pdf", "signed_by": "CFO"},
    )  # fmt: skip
    won.win(at=_day(41), actor="ana")

    lost = Opportunity.open(
        process, "globex-crm", at=_day(1), actor="ben", amount=15_000, close_date=date(2026, 4, 30)
    )
    lost.record_deliverable(
        "lead_record", at=_day(1), actor="ben", evidence={"source": "referral", "contact": "x"}
    )
    lost.advance(at=_day(3), actor="ben")
    lost.reschedule(date(2026, 5, 29), at=_day(20), actor="ben")
    lost.reschedule(date(2026, 6, 30), at=_day(45), actor="ben")
    lost.lose(at=_day(50), actor="ben", reason="no budget this year")

    stuck = Opportunity.open(process, "initech-hr", at=_day(5), actor="ana", amount=9_000)
    stuck.record_deliverable(
        "lead_record", at=_day(5), actor="ana", evidence={"source": "event", "contact": "y"}
    )
    stuck.advance(at=_day(7), actor="ana")
    return [won, lost, stuck]


def main() -> None:
    """Print the tour."""
    process = b2b()
    print(f"Process {process.name!r} v{process.version}: {len(process.stages)} stages")
    for stage in process.stages:
        gate = "no gate" if stage.gate is None else f"gate: {stage.gate.describe()}"
        print(
            f"  {stage.probability:>4.0%}  {stage.label:<18} {stage.labels.get('ko', ''):<8}"
            f" {stage.kind.value:<5} {gate}"
        )
    won, lost, stuck = drive_sample_deals()
    as_of = _day(60)

    print("\nA move that the gate rejects, with its reasons:")
    try:
        stuck.advance(at=_day(8), actor="ana")
    except GateNotMetError as error:
        print(f"  {error}")
        print("  " + error.report.explain().replace("\n", "\n  "))
    print("  log unchanged:", len(stuck.events), "events; still in", repr(stuck.stage))
    print("  moves available now:")
    for option in stuck.available_moves():
        state = "ok" if option.allowed else "blocked: " + "; ".join(option.blocked_by)
        reason = " (needs a reason)" if option.needs_reason else ""
        print(f"    -> {option.target:<16} {option.kind.value:<8}{reason} {state}")

    for deal in (won, lost, stuck):
        print(f"\n{deal.id}: now {deal.stage!r}, amount {deal.amount}, close {deal.close_date}")
        for event in deal.events:
            if event.is_stage_change:
                move = event.move.value if event.move else "open"
                passed = "" if event.gate is None else f" gate {len(event.gate.results)} ok"
                reason = f" reason={event.reason!r}" if event.reason else ""
                print(
                    f"  #{event.seq:<2} {event.at:%Y-%m-%d %H:%M} {event.actor:<5} "
                    f"{event.from_stage or '-'!s:<17} -> {event.stage:<17} {move}{passed}"
                    f"{reason}"
                )
        numbers = deal.metrics(as_of=as_of)
        for stage_id, spent in numbers.stage_durations.items():
            print(f"     {spent / timedelta(days=1):6.1f} days in {stage_id}")
        cycle = numbers.cycle_time
        print(
            f"     age {numbers.age.days} d; cycle "
            f"{'open' if cycle is None else f'{cycle.days} d'}; close date pushed "
            f"{numbers.close_date_pushes}x by {numbers.days_pushed} d"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
