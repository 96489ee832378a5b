"""Reminders with a frozen clock: offsets, the downtime policy, recurring across DST, coalescing,
never twice; digests; per-user zones; and the scheduler's jobs rebuilt from the database."""

import asyncio
import logging
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import SWEEP_JOB, Scheduler
from commands import timetable
from commands.recurrence import Weekly
from commands.timetable import LATE_AFTER, verdict

from .conftest import NOW
from .fakes import FakeRooms, FrozenClock, LEARNER_A, LEARNER_B, TEACHER_A, TEACHER_B, classroom, texts
from .outbox_fakes import OutboxHarness

AKL = ZoneInfo("Pacific/Auckland")
UTC = timezone.utc
ANA_DM, TEACHER_DM, TEACHER_B_DM = "!dm-ana:a.test", "!dm-teacher:a.test", "!dm-teacherb:a.test"
DUE = "2026-12-04 17:00"  # Fri, NZDT = 04:00 UTC
DUE_AT = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)


async def dms(h):
    for room, owner in ((ANA_DM, LEARNER_A), (TEACHER_DM, TEACHER_A), (TEACHER_B_DM, TEACHER_B)):
        await h.repos.rooms.add(room, "dm", None, owner, h.clock.now())


async def tick(h, started_at=None):
    """One wake-up of the scheduler at the frozen time: what it queued."""
    before = len(h.sent)
    await timetable.run_due(h.services, h._enqueue, h.clock.now(), started_at)
    return h.sent[before:]


async def keys(h):
    return [s.key for s in await timetable.upcoming(h.services, h.clock.now())]


# --- the policy itself


def test_verdict_on_time_late_dropped():
    at, grace = NOW, timedelta(hours=1)
    assert verdict(at, at + timedelta(seconds=2), grace, started_at=at - timedelta(days=1)) == "sent"
    assert verdict(at, at + LATE_AFTER + timedelta(seconds=1), grace, None) == "late"
    # missed while the bot was down, even by seconds: late
    assert verdict(at, at + timedelta(seconds=5), grace, started_at=at + timedelta(seconds=3)) == "late"
    assert verdict(at, at + timedelta(minutes=59), grace, started_at=at + timedelta(minutes=58)) == "late"
    assert verdict(at, at + timedelta(hours=1), grace, started_at=at + timedelta(minutes=58)) == "dropped"
    assert verdict(at, at + timedelta(days=3), grace, None) == "dropped"


# --- !remindme, !remind, !reminders, cancel


async def test_remindme_is_sent_once_to_the_dm_at_its_time(h):
    await classroom(h)
    await dms(h)
    reply = await h.say(LEARNER_A, ANA_DM, "!remindme in 2 hours stretch your legs")
    assert reply == "I'll remind you here Mon 30 Nov 2026, 18:00 NZDT (Pacific/Auckland) (**R1**)."
    assert await keys(h) == ["reminder.1.20261130T050000Z"]

    h.clock.advance(hours=1, minutes=59)
    assert await tick(h) == []
    h.clock.advance(minutes=1)
    out = await tick(h, started_at=NOW)
    assert [(m.room_id, m.txn_key) for m in out] == [(ANA_DM, "ako.reminder.1.20261130T050000Z")]
    assert "stretch your legs" in out[0].markdown and "Late" not in out[0].markdown and out[0].mentions == ()
    assert await tick(h, started_at=NOW) == []
    assert [r[0] for r in await h.outbox_rows()].count("ako.reminder.1.20261130T050000Z") == 1
    assert await keys(h) == []
    assert await h.repos.ledger.outcome("reminder.1.20261130T050000Z") == "sent"


async def test_remindme_from_elsewhere_goes_to_the_dm_and_needs_one(h):
    c = await classroom(h)
    await dms(h)
    assert "I'll remind you in our direct message" in await h.say(LEARNER_A, c.class_room, "!remindme tomorrow 9am hand in")
    reply = await h.say(LEARNER_B, c.class_room, "!remindme tomorrow 9am hand in")
    assert "we have none yet" in reply and "@ako:a.test" in reply
    assert "is in the past" in await h.say(LEARNER_A, ANA_DM, "!remindme 2020-01-01 10:00 too late")
    assert "not a date or time" in await h.say(LEARNER_A, ANA_DM, "!remindme someday maybe")
    assert "remindme needs <text>" in await h.say(LEARNER_A, ANA_DM, "!remindme tomorrow 9am")


async def test_remindme_is_read_and_shown_in_the_users_own_zone(h):
    await classroom(h)
    await dms(h)
    assert "Europe/London" in await h.say(LEARNER_A, ANA_DM, "!tz Europe/London")
    assert "Your times are shown in Europe/London" in await h.say(LEARNER_A, ANA_DM, "!tz")
    reply = await h.say(LEARNER_A, ANA_DM, "!remindme tomorrow 9:00 call the lab")
    assert "Tue 1 Dec 2026, 09:00 GMT (Europe/London)" in reply
    assert (await h.repos.reminders.get(1)).next_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert "Tue 1 Dec 2026, 09:00 GMT (Europe/London)" in await h.say(LEARNER_A, ANA_DM, "!reminders")
    assert "is not a time zone" in await h.say(LEARNER_A, ANA_DM, "!tz Mars/Olympus")
    await h.say(LEARNER_A, ANA_DM, "!tz reset")
    assert "You have not set a time zone" in await h.say(LEARNER_A, ANA_DM, "!tz")


async def test_remind_the_class_teachers_only_listed_and_cancelled(h):
    c = await classroom(h)
    await dms(h)
    assert "Only a teacher of Physics 12" in await h.say(LEARNER_A, c.class_room, "!remind tomorrow 8:30 Bring lab books")
    reply = await h.say(TEACHER_A, c.class_room, "!remind tomorrow 8:30 Bring lab books")
    assert "I'll remind the class in its class room Tue 1 Dec 2026, 08:30 NZDT (Pacific/Auckland) (**R1**)" in reply
    await h.say(LEARNER_A, ANA_DM, "!remindme tomorrow 7am my secret plan")

    listing = await h.say(LEARNER_A, c.class_room, "!reminders")
    assert "**R1** · Tue 1 Dec 2026, 08:30 NZDT (Pacific/Auckland) — Bring lab books" in listing
    assert "my secret plan" not in listing and "1 reminder of your own" in listing  # not in front of the class
    assert "Automatic: 1 day and 1 h before each due time" in listing
    assert "my secret plan" in await h.say(LEARNER_A, ANA_DM, "!reminders")
    assert "Bring lab books" in await h.say(TEACHER_A, TEACHER_DM, "!reminders")  # classes they teach

    assert "Only a teacher of Physics 12 can cancel" in await h.say(LEARNER_A, c.class_room, "!remind cancel R1")
    assert "no reminder R2 of yours" in await h.say(LEARNER_B, c.class_room, "!remind cancel R2")
    assert "Cancelled **R1**" in await h.say(TEACHER_A, c.class_room, "!remind cancel R1")
    assert "already been sent or cancelled" in await h.say(TEACHER_A, c.class_room, "!remind cancel R1")
    h.clock.advance(days=1)
    out = await tick(h)
    assert texts(out, c.class_room) == ""


async def test_a_class_reminder_names_nobody(h):
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, "!remind in 10 minutes Quiz starts @ben:b.test")
    h.clock.advance(minutes=10)
    (m,) = await tick(h)
    assert m.room_id == c.class_room and m.mentions == () and not m.room_mention
    assert "⏰ **Reminder:** Quiz starts" in m.markdown


# --- the downtime policy


async def test_missed_within_the_grace_is_sent_once_marked_late_older_is_dropped_and_logged(h, caplog):
    c = await classroom(h)
    for when_ in ("in 1 hours", "in 3 hours", "in 5 hours"):
        await h.say(TEACHER_A, c.class_room, f"!remind {when_} Reminder {when_}")
    t1, t2, t3 = (NOW + timedelta(hours=n) for n in (1, 3, 5))

    h.clock.moment = t1 + timedelta(seconds=5)  # the job fired on time
    (m,) = await tick(h, started_at=NOW)
    assert "in 1 hours" in m.markdown and "Late" not in m.markdown

    h.clock.moment = t2 + timedelta(minutes=25)  # down from before t2; restarted 20 minutes after it
    (m,) = await tick(h, started_at=t2 + timedelta(minutes=20))
    assert "in 3 hours" in m.markdown
    assert "_Late: this was due Mon 30 Nov 2026, 19:00 NZDT (Pacific/Auckland)._" in m.markdown
    assert await h.repos.ledger.outcome("reminder.2.20261130T060000Z") == "late"
    assert await tick(h, started_at=t2 + timedelta(minutes=20)) == []

    h.clock.moment = t3 + timedelta(hours=2)  # down for longer than the grace
    with caplog.at_level(logging.WARNING, "ako.timetable"):
        assert await tick(h, started_at=h.clock.moment) == []
    assert "Dropped reminder R3" in caplog.text
    assert await h.repos.ledger.outcome("reminder.3.20261130T080000Z") == "dropped"
    assert (await h.repos.reminders.get(3)).next_at is None
    assert await tick(h) == []


async def test_a_recurring_reminder_missed_many_times_runs_once(h, caplog):
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, "!remind every day 9:00 Stand-up")
    await h.say(TEACHER_A, c.class_room, "!remind every day 10:30 Break")
    # down from Monday afternoon until Friday 11:00 (NZDT): each missed four times
    h.clock.moment = datetime(2026, 12, 4, 11, 0, tzinfo=AKL)
    with caplog.at_level(logging.INFO, "ako.timetable"):
        out = await tick(h, started_at=h.clock.moment - timedelta(minutes=1))
    assert len(out) == 1  # Break: its latest time (10:30) is within the grace; Stand-up's (9:00) is not
    assert "Break" in out[0].markdown and "_Late: this was due Fri 4 Dec 2026, 10:30 NZDT" in out[0].markdown
    assert "Reminder R1 missed 4 times" in caplog.text and "Reminder R2 missed 4 times" in caplog.text
    assert "Dropped reminder R1" in caplog.text
    assert (await h.repos.reminders.get(1)).next_at == datetime(2026, 12, 5, 9, 0, tzinfo=AKL)
    assert (await h.repos.reminders.get(2)).next_at == datetime(2026, 12, 5, 10, 30, tzinfo=AKL)
    assert await tick(h) == []


async def test_with_a_long_grace_a_recurring_reminder_still_runs_once(db):
    h = OutboxHarness(db, FrozenClock(NOW), FakeRooms(), reminder_grace=timedelta(days=7))
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, "!remind every weekday 8:45 Roll call")
    h.clock.moment = datetime(2026, 12, 10, 12, 0, tzinfo=AKL)  # Thursday of the next week
    out = await tick(h, started_at=h.clock.moment)
    assert len(out) == 1 and "due Thu 10 Dec 2026, 08:45 NZDT" in out[0].markdown
    assert (await h.repos.reminders.get(1)).next_at == datetime(2026, 12, 11, 8, 45, tzinfo=AKL)


# --- recurring on the wall clock, across daylight saving


def test_weekly_rule_across_the_april_and_september_changes():
    monday9 = Weekly((0,), time(9, 0))
    t = datetime(2027, 3, 24, tzinfo=UTC)
    seen = []
    for _ in range(3):
        t = monday9.next_after(t, AKL)
        seen.append(t)
    assert [s.astimezone(AKL).strftime("%a %d %b %H:%M %Z") for s in seen] == [
        "Mon 29 Mar 09:00 NZDT", "Mon 05 Apr 09:00 NZST", "Mon 12 Apr 09:00 NZST"]
    assert seen[1].astimezone(UTC) - seen[0].astimezone(UTC) == timedelta(days=7, hours=1)  # clocks went back an hour

    daily230 = Weekly(tuple(range(7)), time(2, 30))
    t = datetime(2026, 9, 25, 12, 0, tzinfo=UTC)
    seen = []
    for _ in range(3):
        t = daily230.next_after(t, AKL)
        seen.append(t.astimezone(AKL).strftime("%a %d %b %H:%M %Z"))
    # 02:30 does not exist on 27 September: it moves forward into the new hour, once
    assert seen == ["Sat 26 Sep 02:30 NZST", "Sun 27 Sep 03:30 NZDT", "Mon 28 Sep 02:30 NZDT"]


@pytest.mark.parametrize(
    "start, expected",
    [
        (datetime(2027, 3, 24, tzinfo=UTC), ["2027-03-28T20:00", "2027-04-04T21:00", "2027-04-11T21:00"]),
        (datetime(2026, 9, 16, tzinfo=UTC), ["2026-09-20T21:00", "2026-09-27T20:00", "2026-10-04T20:00"]),
    ],
    ids=["april", "september"],
)
async def test_remind_every_monday_stays_at_nine_across_dst(db, start, expected):
    h = OutboxHarness(db, FrozenClock(start), FakeRooms())
    c = await classroom(h)
    reply = await h.say(TEACHER_A, c.class_room, "!remind every monday 9:00 Lab books out")
    assert "every Monday at 09:00 (Pacific/Auckland)" in reply
    sent_at = []
    for _ in range(3):
        h.clock.moment = (await h.repos.reminders.get(1)).next_at
        out = await tick(h, started_at=start)
        assert len(out) == 1 and "Lab books out" in out[0].markdown and "Late" not in out[0].markdown
        sent_at.append(h.clock.moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
        assert h.clock.moment.astimezone(AKL).strftime("%a %H:%M") == "Mon 09:00"
    assert sent_at == expected


# --- automatic reminders before due times


async def test_assignment_reminders_at_the_offsets_to_the_class_and_to_non_submitters_only(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my report")
    assert await keys(h) == ["due.1.86400.20261204T040000Z", "due.1.3600.20261204T040000Z"]

    h.clock.moment = DUE_AT - timedelta(hours=24)
    out = await tick(h, started_at=NOW)
    general = [m for m in out if m.room_id == c.class_room]
    assert len(general) == 1 and general[0].mentions == ()
    assert "⏰ **A1 — Lab report** is due in 1 day — Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland)." in general[0].markdown
    assert "@" not in general[0].markdown  # names nobody
    personal = [m for m in out if m.room_id != c.class_room]
    assert [(m.room_id, m.mentions) for m in personal] == [(c.work[LEARNER_B], (LEARNER_B,))]
    assert "You haven't handed in **A1 — Lab report** yet: it is due in 1 day" in personal[0].markdown
    assert await tick(h) == []

    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 mine too")
    h.clock.moment = DUE_AT - timedelta(hours=1)
    out = await tick(h, started_at=NOW)
    assert [m.room_id for m in out] == [c.class_room] and "is due in 1 h" in out[0].markdown
    assert await keys(h) == []


async def test_an_extension_moves_the_learners_personal_reminders(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(TEACHER_A, c.class_room, f"!extend A1 {LEARNER_B} 2026-12-06 17:00")
    assert "due.1.86400.20261206T040000Z." in " ".join(await keys(h))

    h.clock.moment = DUE_AT - timedelta(hours=24)
    out = await tick(h, started_at=NOW)
    assert sorted(m.room_id for m in out) == sorted([c.class_room, c.work[LEARNER_A]])
    h.clock.moment = DUE_AT - timedelta(hours=1)
    await tick(h, started_at=NOW)
    h.clock.moment = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)  # a day before Ben's own due time
    out = await tick(h, started_at=NOW)
    assert [(m.room_id, m.mentions) for m in out] == [(c.work[LEARNER_B], (LEARNER_B,))]
    assert "it is due for you in 1 day — Sun 6 Dec 2026, 17:00 NZDT" in out[0].markdown


async def test_no_reminder_is_owed_from_before_the_assignment_was_posted(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, '!assign new "Quick quiz" due in 3 hours')
    assert [k.split(".")[2] for k in await keys(h)] == ["3600"]  # the 24 h mark was before it existed
    h.clock.advance(hours=2)
    out = await tick(h, started_at=NOW)
    assert c.class_room in [m.room_id for m in out] and "is due in 1 h" in texts(out, c.class_room)


async def test_missed_offsets_of_one_due_time_send_only_the_nearest(db, caplog):
    h = OutboxHarness(db, FrozenClock(NOW), FakeRooms(), reminder_offsets=(timedelta(hours=2), timedelta(hours=1)),
                      reminder_grace=timedelta(hours=3))
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, '!assign new "Essay" due in 5 hours')
    h.clock.moment = NOW + timedelta(hours=4, minutes=20)  # down over both the 2 h and the 1 h mark
    with caplog.at_level(logging.WARNING, "ako.timetable"):
        out = await tick(h, started_at=h.clock.moment)
    general = [m for m in out if m.room_id == c.class_room]
    assert len(general) == 1 and "is due in 40 min" in general[0].markdown and "_Late:" in general[0].markdown
    assert len(out) == 3  # and one to each learner
    assert "a nearer reminder of the same due time replaces it" in caplog.text
    assert await tick(h) == []


async def test_a_closed_or_deleted_assignment_sends_no_reminders(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(TEACHER_A, c.class_room, "!assign close A1")
    assert await keys(h) == []
    h.clock.moment = DUE_AT - timedelta(hours=1)
    assert await tick(h) == []


async def test_scheduled_publishing_runs_through_the_timetable_once(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Quiz" due {DUE} publish 2026-12-01 08:00')
    assert await keys(h) == ["publish.1"]
    h.clock.moment = datetime(2026, 12, 1, 8, 0, tzinfo=AKL)
    out = await tick(h)
    assert [m.room_id for m in out] == [c.class_room] and "**A1 — Quiz**" in out[0].markdown
    assert await tick(h) == []
    assert await keys(h) == ["due.1.86400.20261204T040000Z", "due.1.3600.20261204T040000Z"]


# --- never twice


async def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_sends_once(h):
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, "!remind in 1 hours Quiz")
    h.clock.advance(hours=1)

    async def crash(messages):
        await h._enqueue(messages)
        raise RuntimeError("killed mid-transaction")

    await timetable.run_due(h.services, crash, h.clock.now(), NOW)
    assert await h.repos.ledger.outcome("reminder.1.20261130T040000Z") is None
    assert "ako.reminder.1.20261130T040000Z" not in [r[0] for r in await h.outbox_rows()]
    await tick(h, started_at=NOW)
    await asyncio.gather(tick(h, started_at=NOW), tick(h, started_at=NOW))  # two wake-ups at once
    assert [r[0] for r in await h.outbox_rows()].count("ako.reminder.1.20261130T040000Z") == 1


async def test_the_outbox_refuses_a_second_copy_of_the_same_send(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    h.clock.moment = DUE_AT - timedelta(hours=1)
    first = await tick(h)
    async with h.db.transaction():  # even if the ledger were lost, the same keys could not queue again
        await h._enqueue(first)
    rows = [r[0] for r in await h.outbox_rows() if r[0].startswith("ako.due.")]
    assert len(rows) == len(set(rows)) == 3


# --- digests


async def test_daily_digest_of_topics_replies_and_due_dates_in_the_users_zone(h):
    c = await classroom(h)
    await dms(h)
    reply = await h.say(LEARNER_A, ANA_DM, "!digest daily")
    assert "the first comes Tue 1 Dec 2026, 07:00 NZDT (Pacific/Auckland)" in reply
    assert "You get a daily digest" in await h.say(LEARNER_A, ANA_DM, "!digest")
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(TEACHER_A, c.class_room, '!topic "Exam dates"')
    assert any(k.startswith("digest.") for k in await keys(h))

    h.clock.moment = datetime(2026, 12, 1, 7, 0, tzinfo=AKL)
    out = await tick(h, started_at=NOW)
    (m,) = [m for m in out if m.room_id == ANA_DM]
    assert "**Your daily digest** — since Mon 30 Nov 2026, 16:00 NZDT" in m.markdown
    assert "New topic **T1 · Exam dates**" in m.markdown
    assert "**A1 — Lab report** due Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland) — not handed in yet" in m.markdown
    assert await tick(h) == []

    await h.say(LEARNER_A, ANA_DM, "!tz Europe/London")  # the next one comes at 07:00 London time
    h.clock.moment = datetime(2026, 12, 2, 7, 0, tzinfo=AKL)
    assert await tick(h) == []
    h.clock.moment = datetime(2026, 12, 2, 7, 0, tzinfo=ZoneInfo("Europe/London"))
    (m,) = await tick(h)
    assert "New topic" not in m.markdown and "Wed 2 Dec 2026" not in m.markdown
    assert "Fri 4 Dec 2026, 04:00 GMT (Europe/London)" in m.markdown
    assert "Your digest is off" in await h.say(LEARNER_A, ANA_DM, "!digest off")
    assert not any(k.startswith("digest.") for k in await keys(h))


async def test_an_empty_digest_is_not_sent_and_a_digest_needs_a_dm(h):
    c = await classroom(h)
    await dms(h)
    assert "we have none yet" in await h.say(LEARNER_B, c.class_room, "!digest weekly")
    await h.say(TEACHER_B, TEACHER_B_DM, "!digest weekly")  # teaches no class: nothing to tell
    h.clock.moment = datetime(2026, 12, 7, 7, 0, tzinfo=AKL)  # Monday
    assert await tick(h) == []
    assert await h.repos.ledger.outcome("digest." + timetable.user_key(TEACHER_B) + ".20261206T180000Z") == "empty"


# --- the scheduler: jobs from the database


async def test_jobs_are_rebuilt_from_the_database_with_explicit_ids(h):
    c = await classroom(h)
    await dms(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.say(TEACHER_A, c.class_room, "!remind every monday 9:00 Lab books")
    await h.say(LEARNER_A, ANA_DM, "!digest daily")
    expected = sorted([SWEEP_JOB, *await keys(h)])
    assert len(expected) == 5
    for _ in range(10):  # ten restarts
        s = Scheduler(h.services, h._enqueue)
        s.start(paused=True)
        await s.settle()
        assert s.job_ids() == expected
        s.shutdown()


class RealClock:
    def now(self):
        return datetime.now(UTC)


async def test_the_scheduler_wakes_at_the_time_and_a_command_moves_the_clock(db):
    h = OutboxHarness(db, RealClock(), FakeRooms())
    await dms(h)
    s = Scheduler(h.services, h._enqueue)
    h.services.timetable = s
    s.start()
    try:
        reply = await h.say(LEARNER_A, ANA_DM, "!remindme in 5 minutes tea")
        assert "R1" in reply
        await s.settle()
        assert any(j.startswith("reminder.1.") for j in s.job_ids())
        # due in half a second: the job wakes the scheduler, which sends it once
        await h.repos.reminders.add(class_id=None, created_by=LEARNER_A, room_id=ANA_DM, text="now-ish",
                                    next_at=datetime.now(UTC) + timedelta(seconds=0.5), timezone="UTC", at=datetime.now(UTC))
        s.changed()
        await s.settle()
        await asyncio.sleep(1.2)
        await s.settle()
        sent = [m for m in h.sent if "now-ish" in m.markdown]
        assert len(sent) == 1 and "Late" not in sent[0].markdown
    finally:
        s.shutdown()
