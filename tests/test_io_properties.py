"""Properties: the import does not depend on row order, and no row is ever dropped silently."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from stagegate.io import import_log, import_pipedrive
from stagegate.opportunity import Opportunity
from stagegate.templates import b2b

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
AS_OF = datetime(2030, 1, 1, tzinfo=timezone.utc)
STAGES = ("lead_generation", "qualification", "needs_analysis", "won", "lost")
PD_STAGES = {"1": "Lead generation", "2": "Qualification", "3": "Needs analysis"}


@st.composite
def histories(draw):
    """Deals with strictly increasing, distinct instants; stages drawn freely (repeats too)."""
    deals = draw(st.integers(min_value=1, max_value=5))
    rows = []
    minute = 0
    for deal in range(deals):
        for _ in range(draw(st.integers(min_value=1, max_value=6))):
            minute += draw(st.integers(min_value=1, max_value=5000))
            rows.append(
                {
                    "opportunity_id": f"D{deal}",
                    "at": (T0 + timedelta(minutes=minute)).isoformat(),
                    "stage": draw(st.sampled_from(STAGES)),
                    "amount": str(draw(st.integers(min_value=0, max_value=3))),
                    "close_date": f"2024-0{draw(st.integers(min_value=1, max_value=9))}-01",
                }
            )
    return rows


@st.composite
def pipedrive_logs(draw):
    deals = draw(st.integers(min_value=1, max_value=4))
    rows = []
    minute = 0
    for deal in range(deals):
        minute += draw(st.integers(min_value=1, max_value=5000))
        at = T0 + timedelta(minutes=minute)
        rows.append((f"{deal}", at, "add_time", at.isoformat()))
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            minute += draw(st.integers(min_value=1, max_value=5000))
            key = draw(st.sampled_from(["stage_id", "stage_id", "user_id", "lost_reason"]))
            value = draw(st.sampled_from(sorted(PD_STAGES))) if key == "stage_id" else "1"
            rows.append((f"{deal}", T0 + timedelta(minutes=minute), key, value))
    return [
        {"deal_id": d, "change_time": at.isoformat(), "changed_field_key": k, "new_value": v}
        for d, at, k, v in rows
    ]


def accounted(result):
    unused = {row for f in result.findings if not f.used for row in f.rows}
    return result.rows_used + len(unused) >= result.rows_read


@settings(max_examples=40, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_row_order_gives_the_same_generic_import(rows, random):
    shuffled = list(rows)
    random.shuffle(shuffled)
    first = import_log(rows, process=b2b(), as_of=AS_OF)
    second = import_log(shuffled, process=b2b(), as_of=AS_OF)
    assert first.by_opportunity() == second.by_opportunity()
    assert accounted(first)
    for events in first.by_opportunity().values():
        Opportunity.replay(b2b(), events)


@settings(max_examples=40, deadline=None)
@given(pipedrive_logs(), st.randoms(use_true_random=False))
def test_any_row_order_gives_the_same_pipedrive_import(rows, random):
    shuffled = list(rows)
    random.shuffle(shuffled)
    options = {"stages": PD_STAGES, "process": b2b(), "as_of": AS_OF}
    first = import_pipedrive(rows, **options)
    second = import_pipedrive(shuffled, **options)
    assert first.by_opportunity() == second.by_opportunity()
    assert accounted(first)
    for events in first.by_opportunity().values():
        Opportunity.replay(b2b(), events)
