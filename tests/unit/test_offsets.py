"""Offsets in a programme (``week 2 fri 17:00``, ``day 3 09:00``) and the due times they give a class."""

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from commands.offsets import Offset, offset_of, parse_offset

NZ = ZoneInfo("Pacific/Auckland")


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("week 2 fri 17:00", "week 2 fri 17:00"),
        ("Week 2 Friday 5pm", "week 2 fri 17:00"),
        ("w2 fri 5 pm", "week 2 fri 17:00"),
        ("wk 10 mon at 9:30am", "week 10 mon 09:30"),
        ("week 1 wed", "week 1 wed 23:59"),  # no time: the end of the day, as for dates elsewhere
        ("day 3 09:00", "day 3 09:00"),
        ("day 1", "day 1 23:59"),
        ("d12 at 12pm", "day 12 12:00"),
        ("  day   3 ,  9:00  ", "day 3 09:00"),
    ],
)
def test_parse_offset_and_its_canonical_spelling(text, canonical):
    found = parse_offset(text)
    assert found is not None and found.text() == canonical
    assert parse_offset(found.text()) == found  # the stored text reads back the same


@pytest.mark.parametrize(
    "text",
    ["", "week 2", "week 0 fri", "week 61 fri", "week 2 someday 17:00", "week 2 fri 25:00", "week 2 fri 17",
     "day 0", "day 421", "day three", "fortnight 2", "friday 5pm", "week 2 fri 17:00 sharp", "2026-12-04 17:00"],
)
def test_what_is_not_an_offset(text):
    assert parse_offset(text) is None


def test_weeks_run_monday_to_sunday_from_the_week_of_the_start():
    monday = date(2026, 9, 21)
    assert parse_offset("week 1 mon").date_from(monday) == monday
    assert parse_offset("week 1 fri").date_from(monday) == date(2026, 9, 25)
    assert parse_offset("week 2 fri").date_from(monday) == date(2026, 10, 2)
    assert parse_offset("week 3 sun").date_from(monday) == date(2026, 10, 11)
    # started mid-week: week 1 is still the week the start falls in
    wednesday = date(2026, 9, 23)
    assert parse_offset("week 1 fri").date_from(wednesday) == date(2026, 9, 25)
    assert parse_offset("week 2 mon").date_from(wednesday) == date(2026, 9, 28)


def test_days_count_the_start_as_day_one():
    wednesday = date(2026, 9, 23)
    assert parse_offset("day 1").date_from(wednesday) == wednesday
    assert parse_offset("day 3").date_from(wednesday) == date(2026, 9, 25)
    assert parse_offset("day 10").date_from(wednesday) == date(2026, 10, 2)


def test_due_times_keep_the_wall_clock_across_daylight_saving():
    # New Zealand summer time starts Sun 27 Sep 2026 at 02:00 (NZST +12 → NZDT +13)
    start = date(2026, 9, 21)
    before = parse_offset("week 1 fri 17:00").moment(start, NZ)
    after = parse_offset("week 2 fri 17:00").moment(start, NZ)
    assert (before.hour, after.hour) == (17, 17)
    assert before.utcoffset().total_seconds() == 12 * 3600 and after.utcoffset().total_seconds() == 13 * 3600
    assert before.astimezone(timezone.utc) == datetime(2026, 9, 25, 5, 0, tzinfo=timezone.utc)
    assert after.astimezone(timezone.utc) == datetime(2026, 10, 2, 4, 0, tzinfo=timezone.utc)
    # a time that does not exist that night moves forward, as dates elsewhere do
    skipped = parse_offset("day 7 02:30").moment(start, NZ)
    assert skipped.date() == date(2026, 9, 27) and skipped.time() == time(3, 30)


def test_offset_of_an_assignment_counts_weeks_from_when_it_was_set():
    set_on = datetime(2026, 3, 3, 9, 0, tzinfo=NZ)  # a Tuesday
    due = datetime(2026, 3, 13, 17, 0, tzinfo=NZ)  # the Friday of the next week
    assert offset_of(due, set_on, NZ).text() == "week 2 fri 17:00"
    assert offset_of(datetime(2026, 3, 5, 15, 30, tzinfo=NZ), set_on, NZ).text() == "week 1 thu 15:30"
    # read in the class's zone, whatever zone the moments come in
    assert offset_of(due.astimezone(timezone.utc), set_on.astimezone(timezone.utc), NZ).text() == "week 2 fri 17:00"


def test_offsets_sort_as_they_fall():
    texts = ["week 2 mon 09:00", "day 3 09:00", "week 1 fri 17:00", "week 1 fri 09:00", "day 1 23:59"]
    ordered = sorted((parse_offset(t) for t in texts), key=Offset.sort_key)
    assert [o.text() for o in ordered] == [
        "day 1 23:59", "day 3 09:00", "week 1 fri 09:00", "week 1 fri 17:00", "week 2 mon 09:00",
    ]
