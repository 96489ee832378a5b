"""A weekly digest's content (SPEC §3 "Forum threads"; README "!digest daily|weekly|off": new topics,
replies and due dates, at 07:00 in one's zone, in the DM).

The bot has no hook to move its clock end to end, and a weekly digest comes on Mondays at 07:00,
so its content is checked here, with the scheduler's own wake-up (`timetable.run_due`) at a frozen
time; `!digest weekly` itself is a command like any other.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from commands import timetable

from .conftest import NOW
from .fakes import LEARNER_A, LEARNER_B, TEACHER_A, classroom
from .test_forum import start_topic

AKL = ZoneInfo("Pacific/Auckland")
ANA_DM, TEACHER_DM = "!dm-ana:a.test", "!dm-teacher:a.test"


async def wake(h, at: datetime):
    """The scheduler wakes at ``at``: what it queued, by room."""
    h.clock.moment = at
    before = len(h.sent)
    await timetable.run_due(h.services, h._enqueue, at, NOW)
    out: dict[str, list[str]] = {}
    for m in h.sent[before:]:
        out.setdefault(m.room_id, []).append(m.markdown)
    return out


async def test_a_weekly_digest_tells_each_person_their_topics_replies_and_due_dates_on_monday_only(h):
    c = await classroom(h)  # Mon 30 Nov 2026, 16:00 NZDT; teacher on A, Ana (A) and Ben (B)
    for room, owner in ((ANA_DM, LEARNER_A), (TEACHER_DM, TEACHER_A)):
        await h.repos.rooms.add(room, "dm", None, owner, NOW)
    assert "the first comes Mon 7 Dec 2026, 07:00 NZDT (Pacific/Auckland)" in await h.say(LEARNER_A, ANA_DM, "!digest weekly")
    assert "every Monday" in await h.say(TEACHER_A, TEACHER_DM, "!digest weekly")

    await h.say(TEACHER_A, c.class_room, '!assign new "Lab report" due 2026-12-10 17:00 points 20')
    await h.say(TEACHER_A, c.class_room, '!assign new "Old quiz" due 2026-12-03 17:00')
    await h.say(TEACHER_A, c.class_room, '!assign new "Project" due 2026-12-17 17:00')
    assert "Received" in await h.say(LEARNER_B, c.work[LEARNER_B], "!submit A1 my report")
    _, root = await start_topic(h, c, who=TEACHER_A, text='!topic "Exam dates"\nWhen is the exam?')
    await h.reply_in_thread(LEARNER_A, c.class_room, root)
    await h.reply_in_thread(LEARNER_B, c.class_room, root)

    # not on other days
    for day in (1, 2, 3, 4, 5, 6):
        assert await wake(h, datetime(2026, 12, day, 7, 0, tzinfo=AKL)) == {}, day

    out = await wake(h, datetime(2026, 12, 7, 7, 0, tzinfo=AKL))
    assert set(out) == {ANA_DM, TEACHER_DM}, out  # Ben asked for none
    (ana,), (teacher,) = out[ANA_DM], out[TEACHER_DM]
    for text in (ana, teacher):
        assert text.startswith("**Your weekly digest** — since Mon 30 Nov 2026, 16:00 NZDT (Pacific/Auckland)"), text
        assert "**Physics 12**" in text
        assert f"- New topic **T1 · Exam dates** by {TEACHER_A}" in text, text
        assert "- 2 new replies in **T1 · Exam dates**" in text, text
        assert "Old quiz" not in text, "a due date already past is not coming"
        assert "`!digest off` stops these." in text
    # the teacher: how many have handed in; Ana: her own status, and how to hand in
    assert "- **A1 — Lab report** due Thu 10 Dec 2026, 17:00 NZDT (Pacific/Auckland) — 1 of 2 handed in" in teacher, teacher
    assert "- **A1 — Lab report** due Thu 10 Dec 2026, 17:00 NZDT (Pacific/Auckland) — not handed in yet: `!submit A1` in your work room" in ana, ana
    assert "- **A3 — Project** due Thu 17 Dec 2026, 17:00 NZDT (Pacific/Auckland)" in ana, ana
    assert "my report" not in teacher + ana, "no one's work in a digest"

    # once a week: the same Monday again sends nothing
    assert await wake(h, datetime(2026, 12, 7, 7, 5, tzinfo=AKL)) == {}

    # the next Monday: only what is new since the last one
    await h.reply_in_thread(LEARNER_A, c.class_room, root)
    assert "Received" in await h.say(LEARNER_A, c.work[LEARNER_A], "!submit A3 my project")
    out = await wake(h, datetime(2026, 12, 14, 7, 0, tzinfo=AKL))
    (ana,), (teacher,) = out[ANA_DM], out[TEACHER_DM]
    assert ana.startswith("**Your weekly digest** — since Mon 7 Dec 2026, 07:00 NZDT (Pacific/Auckland)"), ana
    assert "New topic" not in ana and "- 1 new reply in **T1 · Exam dates**" in ana, ana
    assert "Lab report" not in ana, "A1 was due last week"
    assert "- **A3 — Project** due Thu 17 Dec 2026, 17:00 NZDT (Pacific/Auckland) — handed in" in ana, ana
    assert "- **A3 — Project** due Thu 17 Dec 2026, 17:00 NZDT (Pacific/Auckland) — 1 of 2 handed in" in teacher, teacher

    # off: no more, though there is news; and a week with no news sends nothing
    assert "Your digest is off" in await h.say(LEARNER_A, ANA_DM, "!digest off")
    h.clock.moment = datetime(2026, 12, 15, 9, 0, tzinfo=AKL)
    await start_topic(h, c, who=LEARNER_B, text='!topic "Study group"\nWho is in?')
    out = await wake(h, datetime(2026, 12, 21, 7, 0, tzinfo=AKL))
    assert set(out) == {TEACHER_DM}, out
    assert f"- New topic **T2 · Study group** by {LEARNER_B}" in out[TEACHER_DM][0]
    assert await wake(h, datetime(2026, 12, 28, 7, 0, tzinfo=AKL)) == {}
