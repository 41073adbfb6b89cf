"""Business time: weekends, holidays, DST changes, pauses across nights, due times and clock states."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from helpdesk_common.business_hours import Calendar, business_seconds, clock_state, due_at, is_open, open_intervals

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = 3600.0
OFFICE = Calendar.from_dict({
    "timezone": "Europe/Amsterdam",
    "weekly": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25", "2026-12-28"],
})


def ams(*args):
    return datetime(*args, tzinfo=AMS)


def test_within_one_day_and_outside_hours():
    assert business_seconds(OFFICE, ams(2026, 11, 23, 10), ams(2026, 11, 23, 12)) == 2 * HOUR
    assert business_seconds(OFFICE, ams(2026, 11, 23, 7), ams(2026, 11, 23, 20)) == 8 * HOUR
    assert business_seconds(OFFICE, ams(2026, 11, 23, 18), ams(2026, 11, 24, 8)) == 0
    assert business_seconds(OFFICE, ams(2026, 11, 24), ams(2026, 11, 23)) == 0  # end before start
    assert is_open(OFFICE, ams(2026, 11, 23, 9)) and not is_open(OFFICE, ams(2026, 11, 23, 17))


def test_weekend_does_not_count():
    friday_4pm, monday_10am = ams(2026, 11, 27, 16), ams(2026, 11, 30, 10)
    assert business_seconds(OFFICE, friday_4pm, monday_10am) == 2 * HOUR
    assert due_at(OFFICE, friday_4pm, 2 * HOUR) == monday_10am.astimezone(timezone.utc)
    assert not is_open(OFFICE, ams(2026, 11, 28, 12))


def test_holidays_are_closed():
    # Thu 24 Dec 16:00 -> Fri 25 (holiday), weekend, Mon 28 (holiday) -> Tue 29 10:00
    start = ams(2026, 12, 24, 16)
    assert due_at(OFFICE, start, 2 * HOUR) == ams(2026, 12, 29, 10).astimezone(timezone.utc)
    assert business_seconds(OFFICE, start, ams(2026, 12, 29, 17)) == 9 * HOUR
    assert not is_open(OFFICE, ams(2026, 12, 25, 12))


def test_dst_spring_forward_over_a_weekend():
    # Amsterdam moves from UTC+1 to UTC+2 on Sunday 29 March 2026: Friday 16:00 is 15:00 UTC, Monday
    # 10:00 is 08:00 UTC; two business hours apart, 65 real hours apart.
    start = ams(2026, 3, 27, 16)
    due = due_at(OFFICE, start, 2 * HOUR)
    assert due == datetime(2026, 3, 30, 8, tzinfo=timezone.utc)
    assert (due - start).total_seconds() == 65 * HOUR
    assert business_seconds(OFFICE, start, due) == 2 * HOUR


def test_dst_days_are_23_and_25_hours_around_the_clock():
    always = Calendar.from_dict({"timezone": "Europe/Amsterdam",
                                 "weekly": {day: ["00:00-24:00"] for day in
                                            ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})
    assert business_seconds(always, ams(2026, 3, 29), ams(2026, 3, 30)) == 23 * HOUR
    assert business_seconds(always, ams(2026, 10, 25), ams(2026, 10, 26)) == 25 * HOUR
    assert business_seconds(Calendar.always(), ams(2026, 10, 25), ams(2026, 10, 26)) == 25 * HOUR


def test_pause_across_a_night_counts_neither_the_evening_nor_the_morning():
    start = ams(2026, 11, 23, 9)
    pause = (ams(2026, 11, 23, 16), ams(2026, 11, 24, 10))  # waiting on the customer overnight
    assert business_seconds(OFFICE, start, ams(2026, 11, 24, 12), [pause]) == (7 + 2) * HOUR
    # an 8 hour target: 7 h on Monday, then the clock resumes Tuesday 10:00 -> due 11:00
    assert due_at(OFFICE, start, 8 * HOUR, [pause]) == ams(2026, 11, 24, 11).astimezone(timezone.utc)
    assert due_at(OFFICE, start, 8 * HOUR) == ams(2026, 11, 23, 17).astimezone(timezone.utc)  # unpaused


def test_overlapping_and_open_pauses():
    start = ams(2026, 11, 23, 9)
    pauses = [(ams(2026, 11, 23, 10), ams(2026, 11, 23, 12)), (ams(2026, 11, 23, 11), ams(2026, 11, 23, 13))]
    assert business_seconds(OFFICE, start, ams(2026, 11, 23, 17), pauses) == 5 * HOUR
    still_waiting = [(ams(2026, 11, 23, 11), None)]
    assert business_seconds(OFFICE, start, ams(2026, 11, 25, 17), still_waiting) == 2 * HOUR
    assert due_at(OFFICE, start, 4 * HOUR, still_waiting) is None  # stopped: no due time yet
    assert due_at(OFFICE, start, HOUR, still_waiting) == ams(2026, 11, 23, 10).astimezone(timezone.utc)


def test_open_intervals_are_utc_and_clipped():
    spans = open_intervals(OFFICE, ams(2026, 11, 27, 12), ams(2026, 11, 30, 10))
    assert spans == [(datetime(2026, 11, 27, 11, tzinfo=timezone.utc), datetime(2026, 11, 27, 16, tzinfo=timezone.utc)),
                     (datetime(2026, 11, 30, 8, tzinfo=timezone.utc), datetime(2026, 11, 30, 9, tzinfo=timezone.utc))]


def test_night_shift_split_at_midnight_and_zone_of_the_calendar():
    nights = Calendar.from_dict({"timezone": "Asia/Tokyo", "weekly": {"mon": ["22:00-24:00"], "tue": ["00:00-06:00"]}})
    tokyo = ZoneInfo("Asia/Tokyo")
    start = datetime(2026, 11, 23, 21, tzinfo=tokyo)
    assert business_seconds(nights, start, datetime(2026, 11, 24, 12, tzinfo=tokyo)) == 8 * HOUR
    assert is_open(nights, datetime(2026, 11, 23, 23, 30, tzinfo=tokyo))
    assert is_open(nights, datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc))  # 23:30 in Tokyo


def test_clock_state_warning_breach_pause_and_stop():
    start = ams(2026, 11, 23, 9)
    target = 4 * HOUR
    state = clock_state(OFFICE, start, target, ams(2026, 11, 23, 12))
    assert (state.elapsed_seconds, state.remaining_seconds, state.warning, state.breached) == (3 * HOUR, HOUR, False, False)
    assert clock_state(OFFICE, start, target, ams(2026, 11, 23, 12, 30)).warning  # 87.5% of 4 h
    breached = clock_state(OFFICE, start, target, ams(2026, 11, 23, 14))
    assert breached.breached and breached.remaining_seconds == -HOUR
    waiting = clock_state(OFFICE, start, target, ams(2026, 11, 23, 15), [(ams(2026, 11, 23, 10), None)])
    assert waiting.paused and waiting.elapsed_seconds == HOUR and waiting.due_at is None and not waiting.breached
    answered = clock_state(OFFICE, start, target, ams(2026, 11, 25, 9), stopped_at=ams(2026, 11, 23, 11))
    assert answered.elapsed_seconds == 2 * HOUR and not answered.breached and not answered.paused


def test_naive_datetimes_and_empty_calendars_are_refused():
    with pytest.raises(ValueError):
        business_seconds(OFFICE, datetime(2026, 11, 23, 9), ams(2026, 11, 23, 10))
    with pytest.raises(ValueError):
        due_at(Calendar.from_dict({"timezone": "UTC", "weekly": {}}), ams(2026, 11, 23, 9), HOUR)
    assert due_at(OFFICE, ams(2026, 11, 23, 9), 0) == ams(2026, 11, 23, 9).astimezone(timezone.utc)
    assert due_at(OFFICE, ams(2026, 11, 23, 9), 40 * HOUR * 52) > ams(2027, 11, 1)  # a year of work weeks
