"""Tests of stagegate._time: aware instants only, UTC inside, daylight-saving changes exact."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegate import InvalidTimestampError, Opportunity, StagegateError, b2b
from stagegate._time import (
    UTC,
    epoch_us,
    from_epoch_us,
    now,
    parse_date,
    parse_instant,
    resolve_zone,
    to_utc,
)
from strategies import BERLIN, NEW_YORK, T0, instants, zoned_instants


class TestToUtc:
    @given(zoned_instants)
    def test_an_aware_instant_keeps_its_moment_and_becomes_utc(self, at):
        converted = to_utc(at)
        assert converted.tzinfo is UTC
        # timestamp(), not ==: Python never calls an instant in a repeated hour equal across zones
        assert at.timestamp() == converted.timestamp()

    def test_a_naive_instant_is_rejected_with_advice(self):
        with pytest.raises(InvalidTimestampError, match="naive") as caught:
            to_utc(datetime(2026, 1, 5, 9))
        assert isinstance(caught.value, ValueError)
        assert "aware" in str(caught.value)
        assert "name the zone" in str(caught.value)

    @pytest.mark.parametrize("value", ["2026-01-05T09:00Z", date(2026, 1, 5), 1_767_600_000, None])
    def test_a_value_that_is_not_a_datetime_is_rejected(self, value):
        with pytest.raises(InvalidTimestampError, match="must be a timezone-aware datetime"):
            to_utc(value)

    def test_the_argument_name_appears_in_the_message(self):
        with pytest.raises(InvalidTimestampError, match="as_of="):
            to_utc(datetime(2026, 1, 5), what="as_of")

    def test_a_naive_instant_is_read_in_the_named_zone(self):
        assert datetime(2026, 1, 5, 8, tzinfo=UTC) == to_utc(
            datetime(2026, 1, 5, 9), assume_zone="Europe/Berlin"
        )
        assert datetime(2026, 7, 5, 7, tzinfo=UTC) == to_utc(
            datetime(2026, 7, 5, 9), assume_zone=BERLIN
        )

    @pytest.mark.parametrize(
        ("local", "zone"),
        [
            (datetime(2026, 3, 29, 2, 30), "Europe/Berlin"),
            (datetime(2026, 3, 8, 2, 30), "America/New_York"),
            (datetime(2026, 3, 29, 2, 30), BERLIN),
            (datetime(2026, 3, 8, 2, 30), NEW_YORK),
        ],
    )
    def test_a_local_time_skipped_by_the_spring_change_is_rejected(self, local, zone):
        with pytest.raises(InvalidTimestampError, match="does not exist") as caught:
            to_utc(local, assume_zone=zone)
        assert "explicit offset" in str(caught.value)

    @pytest.mark.parametrize(
        ("local", "zone"),
        [
            (datetime(2026, 10, 25, 2, 30), "Europe/Berlin"),
            (datetime(2026, 11, 1, 1, 30), "America/New_York"),
            (datetime(2026, 10, 25, 2, 30), BERLIN),
            (datetime(2026, 11, 1, 1, 30), NEW_YORK),
        ],
    )
    def test_a_local_time_repeated_by_the_autumn_change_is_rejected(self, local, zone):
        with pytest.raises(InvalidTimestampError, match="ambiguous"):
            to_utc(local, assume_zone=zone)

    def test_an_unknown_zone_name_is_rejected(self):
        with pytest.raises(InvalidTimestampError, match="unknown time zone 'Mars/Olympus'"):
            to_utc(datetime(2026, 1, 5), assume_zone="Mars/Olympus")

    @pytest.mark.parametrize("zone", ["", "   ", 5])
    def test_an_empty_or_non_text_zone_is_rejected_rather_than_guessed(self, zone):
        with pytest.raises(InvalidTimestampError, match="zone"):
            to_utc(datetime(2026, 1, 5), assume_zone=zone)


class TestResolveZone:
    def test_a_tzinfo_passes_through(self):
        assert BERLIN is resolve_zone(BERLIN)

    def test_an_iana_name_resolves(self):
        zone = resolve_zone("America/New_York")
        assert timedelta(hours=-5) == datetime(2026, 1, 5, tzinfo=zone).utcoffset()


class TestParseInstant:
    @given(instants)
    def test_iso_text_round_trips(self, at):
        assert at == parse_instant(at.isoformat())

    def test_an_offset_is_normalized_to_utc(self):
        assert datetime(2026, 3, 29, 0, 30, tzinfo=UTC) == parse_instant(
            "2026-03-29T01:30:00+01:00"
        )

    def test_naive_text_needs_a_zone(self):
        with pytest.raises(InvalidTimestampError, match="naive"):
            parse_instant("2026-03-29T01:30:00")
        assert datetime(2026, 3, 29, 0, 30, tzinfo=UTC) == parse_instant(
            "2026-03-29T01:30:00", assume_zone="Europe/Berlin"
        )

    def test_naive_text_in_the_spring_gap_is_rejected(self):
        with pytest.raises(InvalidTimestampError, match="does not exist"):
            parse_instant("2026-03-29T02:30:00", assume_zone="Europe/Berlin")

    @pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00Z", "", "2026-01-05T25:00Z"])
    def test_text_that_is_not_iso_8601_is_rejected_with_an_example(self, text):
        with pytest.raises(InvalidTimestampError, match="ISO 8601") as caught:
            parse_instant(text)
        assert "2026-01-31T09:00Z" in str(caught.value)

    @pytest.mark.parametrize("value", [None, 5, b"2026-01-05"])
    def test_a_value_that_is_not_text_is_rejected(self, value):
        with pytest.raises(InvalidTimestampError):
            parse_instant(value)


class TestParseDate:
    def test_iso_text_parses(self):
        assert date(2026, 1, 31) == parse_date("2026-01-31")

    def test_a_date_passes_through(self):
        assert date(2026, 1, 31) == parse_date(date(2026, 1, 31))

    def test_a_datetime_is_rejected_with_advice(self):
        with pytest.raises(InvalidTimestampError, match=r"text\.date\(\)"):
            parse_date(T0)

    @pytest.mark.parametrize("value", ["31.01.2026", "2026-02-30", None, 20260131])
    def test_anything_else_is_rejected(self, value):
        with pytest.raises(InvalidTimestampError, match="YYYY-MM-DD"):
            parse_date(value)


class TestEpochMicroseconds:
    @given(instants)
    def test_epoch_microseconds_round_trip(self, at):
        assert at == from_epoch_us(epoch_us(at))

    @given(instants, instants)
    def test_differences_are_exact(self, a, b):
        assert (b - a) == timedelta(microseconds=epoch_us(b) - epoch_us(a))

    def test_the_epoch_is_zero(self):
        assert epoch_us(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0


class TestNow:
    def test_now_is_aware_utc(self):
        assert UTC is now().tzinfo


class TestDaylightSaving:
    """Events recorded in local time across a DST change are stored in UTC; durations exact."""

    @pytest.mark.parametrize(
        ("zone", "before", "after", "elapsed"),
        [
            # Berlin springs forward at 02:00 -> 03:00 on 2026-03-29: 01:30 to 03:30 is 1 hour.
            (
                BERLIN,
                datetime(2026, 3, 29, 1, 30),
                datetime(2026, 3, 29, 3, 30),
                timedelta(hours=1),
            ),
            # and falls back at 03:00 -> 02:00 on 2026-10-25: 01:30 to 03:30 is 3 hours.
            (
                BERLIN,
                datetime(2026, 10, 25, 1, 30),
                datetime(2026, 10, 25, 3, 30),
                timedelta(hours=3),
            ),
            # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
            (NEW_YORK, datetime(2026, 3, 8, 1, 0), datetime(2026, 3, 8, 4, 0), timedelta(hours=2)),
            (
                NEW_YORK,
                datetime(2026, 11, 1, 0, 0),
                datetime(2026, 11, 1, 3, 0),
                timedelta(hours=4),
            ),
        ],
    )
    def test_time_in_stage_across_a_change_is_elapsed_time_not_wall_time(
        self, zone, before, after, elapsed
    ):
        opened = before.replace(tzinfo=zone)
        later = after.replace(tzinfo=zone)
        deal = Opportunity.open(b2b(), "dst-1", at=opened, actor="ana")
        event = deal.log_activity("outreach", at=later, actor="ana")
        assert UTC is deal.events[0].at.tzinfo
        assert UTC is event.at.tzinfo
        assert elapsed == event.at - deal.events[0].at
        assert elapsed == deal.time_in_stage(as_of=later)
        assert elapsed == deal.age(as_of=later)

    def test_both_readings_of_a_repeated_hour_are_distinct_ordered_instants(self):
        first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)
        second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)
        deal = Opportunity.open(b2b(), "dst-2", at=first, actor="ana")
        deal.log_activity("outreach", at=second, actor="ana")
        assert timedelta(hours=1) == deal.events[1].at - deal.events[0].at
        assert datetime(2026, 10, 25, 0, 30, tzinfo=UTC) == deal.events[0].at

    def test_an_instant_an_hour_earlier_by_the_clock_is_accepted_after_fall_back(self):
        # 02:50 CEST is 00:50 UTC; 02:10 CET (second pass) is 01:10 UTC: later, though it reads
        # earlier on the wall clock.
        deal = Opportunity.open(
            b2b(), "dst-3", at=datetime(2026, 10, 25, 2, 50, tzinfo=BERLIN, fold=0), actor="ana"
        )
        deal.log_activity(
            "outreach", at=datetime(2026, 10, 25, 2, 10, tzinfo=BERLIN, fold=1), actor="ana"
        )
        assert timedelta(minutes=20) == deal.age(as_of=deal.last_at)

    @given(st.integers(0, 48 * 60))
    def test_local_and_utc_recordings_of_the_same_moments_give_the_same_log(self, minutes):
        start = datetime(2026, 3, 28, 12, tzinfo=UTC)
        end = start + timedelta(minutes=minutes)
        local = Opportunity.open(b2b(), "x", at=start.astimezone(BERLIN), actor="ana")
        local.log_activity("outreach", at=end.astimezone(NEW_YORK), actor="ana")
        utc = Opportunity.open(b2b(), "x", at=start, actor="ana")
        utc.log_activity("outreach", at=end, actor="ana")
        assert utc == local


class TestTies:
    def test_two_events_at_the_same_instant_are_accepted_and_ordered_by_seq(self):
        deal = Opportunity.open(b2b(), "tie", at=T0, actor="ana")
        first = deal.log_activity("outreach", at=T0, actor="ana")
        second = deal.log_activity("inbound_inquiry", at=T0, actor="bo")
        assert [e.seq for e in deal.events] == [1, 2, 3]
        assert first.at == second.at
        assert (first.subject, second.subject) == ("outreach", "inbound_inquiry")
        assert deal == Opportunity.replay(deal.process, deal.events)

    def test_a_stage_change_at_the_opening_instant_has_zero_duration_in_the_first_stage(self):
        deal = Opportunity.open(b2b(), "tie", at=T0, actor="ana")
        deal.record_deliverable(
            "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": "k@x"}
        )
        deal.advance(at=T0, actor="ana")
        metrics = deal.metrics(as_of=T0 + timedelta(days=1))
        assert timedelta(0) == metrics.stage_durations["lead_generation"]
        assert timedelta(days=1) == metrics.stage_durations["qualification"]

    def test_errors_about_instants_are_stagegate_errors_and_value_errors(self):
        assert issubclass(InvalidTimestampError, StagegateError)
        assert issubclass(InvalidTimestampError, ValueError)
