"""Assignments: posting, state events, scheduled publishing, edits, delete + confirm, extensions, copies."""

from datetime import timedelta

import pytest

from bot.render import content_for, to_html
from commands.publishing import STATE_ASSIGNMENT, publish_due

from .fakes import LEARNER_A, LEARNER_B, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts

DUE = "2026-12-04 17:00"
DUE_SHOWN = "Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland)"


@pytest.fixture
def h(harness):
    return harness


@pytest.fixture
async def c(h):
    """Physics 12 of tests/unit/fakes.py, taught by A's teacher, with Ana (A) and Ben (B)."""
    return await classroom(h)


async def test_assign_new_posts_in_the_class_room_with_id_due_time_and_points(h, c):
    out = await h.run(
        TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20\nMeasure *g* with a pendulum.'
    )
    post = texts(out, c.class_room)
    assert "**A1 — Lab report** · 20 points" in post
    assert DUE_SHOWN in post and "Measure *g* with a pendulum." in post
    assert "Posted **A1 — Lab report**" in texts([m for m in out if m.reply_to])
    state = h.matrix.states(STATE_ASSIGNMENT)
    assert len(state) == 1
    _, room, _, key, content = state[0]
    assert room == c.class_room and key == "A1"
    assert content["title"] == "Lab report" and content["points"] == 20 and content["class"] == "PHYS12"
    assert content["due"] == "2026-12-04T04:00:00.000000+00:00"  # stored and written as UTC

    out = await h.run(TEACHER_A, SHARED_DM, f'!assign new PHYS12 "Essay" due {DUE}')
    assert "**A2 — Essay** · 100 points" in texts(out, c.class_room)


async def test_assign_new_bad_input_names_the_problem(h, c):
    reply = await h.say(TEACHER_A, c.class_room, '!assign new "Lab report"')
    assert "needs due <when>" in reply and "Usage: `!assign new" in reply
    assert "is in the past" in await h.say(TEACHER_A, c.class_room, '!assign new "Lab" due 2020-01-01 10:00')
    reply = await h.say(TEACHER_A, c.class_room, f'!assign new "Lab" due {DUE} cutoff 2026-12-02 10:00')
    assert "The cutoff" in reply and "is before the due time" in reply
    assert "“lots” is not a number" in await h.say(TEACHER_A, c.class_room, f'!assign new "Lab" due {DUE} points lots')
    assert "at least 1" in await h.say(TEACHER_A, c.class_room, f'!assign new "Lab" due {DUE} points 0')
    assert "not a date or time" in await h.say(TEACHER_A, c.class_room, '!assign new "Lab" due someday')
    assert "Only a teacher of Physics 12" in await h.say(LEARNER_A, c.class_room, f'!assign new "Lab" due {DUE}')
    assert await h.repos.assignments.of_class(c.klass.id) == []


async def test_a_scheduled_assignment_is_posted_by_the_scheduler_once(h, c):
    out = await h.run(TEACHER_A, c.class_room, f'!assign new "Quiz" due {DUE} publish 2026-12-01 08:00')
    assert "I'll post it in the class room on Tue 1 Dec 2026, 08:00 NZDT" in texts(out)
    assert texts(out, c.class_room).count("**A1 — Quiz** ·") == 0
    assert h.matrix.states(STATE_ASSIGNMENT) == []
    assert "has no assignments yet" in await h.say(LEARNER_A, c.work[LEARNER_A], "!assignments")
    assert "has no assignment A1" in await h.say(LEARNER_A, c.work[LEARNER_A], "!assign show A1")
    assert "to be posted" in await h.say(TEACHER_A, c.class_room, "!assignments")

    assert await publish_due(h.services) == []  # not yet
    h.clock.moment = (await h.repos.assignments.of_class(c.klass.id))[0].publish_at + timedelta(minutes=1)
    async with h.db.transaction():
        posted = await publish_due(h.services)
    assert [m.room_id for m in posted] == [c.class_room] and "**A1 — Quiz**" in posted[0].markdown
    assert h.matrix.states(STATE_ASSIGNMENT)[0][3] == "A1"
    assert await publish_due(h.services) == []  # never twice
    assert "A1 — Quiz" in await h.say(LEARNER_A, c.work[LEARNER_A], "!assignments")


async def test_assignments_lists_counts_for_teachers_and_own_status_privately_for_learners(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my answer")
    assert "1 submitted, 1 missing, 0 graded" in await h.say(TEACHER_A, c.class_room, "!assignments")

    out = await h.run(LEARNER_A, c.class_room, "!assignments")
    assert "submitted v1, on time" in texts(out, c.work[LEARNER_A])
    assert "submitted" not in texts(out, c.class_room) and "work room" in texts(out, c.class_room)
    assert "not submitted yet" in await h.say(LEARNER_B, c.work[LEARNER_B], "!assignments")


async def test_assign_show_and_unknown_ids(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20\nUse SI units.')
    assert "Use SI units." in await h.say(LEARNER_B, c.class_room, "!assign show A1")
    assert "Physics 12 has no assignment A9" in await h.say(LEARNER_B, c.class_room, "!assign show a9")
    reply = await h.say(LEARNER_B, c.class_room, "!assign show lab")
    assert "“lab” is not an assignment id" in reply and "Usage: `!assign show <assignment>`" in reply


async def test_assign_edit_changes_the_record_the_state_and_tells_the_class(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    out = await h.run(TEACHER_A, c.staff_room, "!assign edit A1 due 2026-12-05 09:00")
    assert "is now due Sat 5 Dec 2026, 09:00 NZDT" in texts(out, c.class_room)
    assert h.matrix.states(STATE_ASSIGNMENT)[-1][4]["due"] == "2026-12-04T20:00:00.000000+00:00"
    assert "takes late work until" in await h.say(TEACHER_A, c.class_room, "!assign edit A1 cutoff 2026-12-07 09:00")
    reply = await h.say(TEACHER_A, c.class_room, "!assign edit A1 due 2026-12-08 09:00")
    assert "after A1's cutoff" in reply and "move the cutoff first" in reply
    reply = await h.say(TEACHER_A, c.class_room, "!assign edit A1 cutoff 2026-12-01 09:00")
    assert "is before the due time" in reply
    assert "without a cutoff" in await h.say(TEACHER_A, c.class_room, "!assign edit A1 cutoff off")
    assert "out of 25 points" in await h.say(TEACHER_A, c.class_room, "!assign edit A1 points 25")
    assert "now called “Pendulum lab”" in await h.say(TEACHER_A, c.class_room, '!assign edit A1 title "Pendulum lab"')
    reply = await h.say(TEACHER_A, c.class_room, "!assign edit A1 points lots")
    assert "“lots” is not a number" in reply and "Usage: `!assign edit <assignment> points <points>`" in reply
    a = await h.repos.assignments.by_number(c.klass.id, 1)
    assert (a.title, a.points, a.cutoff_at) == ("Pendulum lab", 25, None)
    assert a.due_at.isoformat() == "2026-12-04T20:00:00+00:00"  # the refused due time left it as it was


async def test_assign_edit_reads_the_field_after_the_assignment_or_before_it(h, c):
    """SPEC §3 writes `!assign edit A1 due|cutoff|points|title <value>`; discord.py's order is read too,
    and in a DM the class code comes first."""
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    assert "now called “Pendulum lab”" in await h.say(TEACHER_A, c.class_room, "!assign edit A1 title Pendulum lab")
    assert "is now out of 30 points" in await h.say(TEACHER_A, c.class_room, "!assign edit points A1 30")
    assert "is now out of 35 points" in await h.say(TEACHER_A, SHARED_DM, "!assign edit PHYS12 A1 points 35")
    assert "is now out of 40 points" in await h.say(TEACHER_A, SHARED_DM, "!assign edit points PHYS12 A1 40")
    a = await h.repos.assignments.by_number(c.klass.id, 1)
    assert (a.title, a.points) == ("Pendulum lab", 40)


async def test_assign_edit_without_a_field_names_the_four_and_how(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    usage = (
        "Usage: `!assign edit <assignment> due <when>` · `!assign edit <assignment> cutoff <when>|off` · "
        '`!assign edit <assignment> points <points>` · `!assign edit <assignment> title "<title>"`'
    )
    for typed in ("!assign edit A1", "!assign edit A1 colour blue", "!assign edit"):
        reply = await h.say(TEACHER_A, c.class_room, typed)
        assert "!assign edit needs one of: due, cutoff, points, title, after the assignment" in reply, typed
        assert usage in reply, typed
    assert "(not “colour”)" in await h.say(TEACHER_A, c.class_room, "!assign edit A1 colour blue")


async def test_assign_edit_changes_one_field_per_command(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} cutoff 2026-12-07 09:00')
    reply = await h.say(TEACHER_A, c.class_room, "!assign edit A1 due monday 9am cutoff tuesday")
    assert reply.startswith(
        "One change per command: send `!assign edit A1 due monday 9am`, then `!assign edit A1 cutoff tuesday`."
    )
    reply = await h.say(TEACHER_A, SHARED_DM, "!assign edit PHYS12 A1 points 5 title Pendulum lab")
    assert reply.startswith(
        "One change per command: send `!assign edit PHYS12 A1 points 5`, then `!assign edit PHYS12 A1 title Pendulum lab`."
    )
    a = await h.repos.assignments.by_number(c.klass.id, 1)
    assert (a.title, a.points, a.due_at.day, a.cutoff_at.day) == ("Lab report", 100, 4, 6)  # UTC: unchanged


async def test_help_lists_the_four_assign_edit_commands(h, c):
    listed = await h.say(TEACHER_A, c.class_room, "!help assign edit")
    assert listed.splitlines() == [
        "- `!assign edit <assignment> cutoff <when>|off` — Set when an assignment stops taking late work, or `off` for no cutoff.",
        "- `!assign edit <assignment> due <when>` — Move an assignment's due time.",
        "- `!assign edit <assignment> points <points>` — Change what an assignment is out of.",
        '- `!assign edit <assignment> title "<title>"` — Rename an assignment.',
    ]
    everything = await h.say(TEACHER_A, c.class_room, "!help assign")
    assert all(line in everything for line in listed.splitlines()) and "!assign new" in everything
    one = await h.say(TEACHER_A, c.class_room, "!help assign edit due")
    assert one.startswith("`!assign edit <assignment> due <when>`\nMove an assignment's due time.")
    assert "In a direct message, put the class code first: `!assign edit CODE <assignment> due <when>`." in one


async def test_close_stops_submissions(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    assert "is closed" in await h.say(TEACHER_A, c.class_room, "!assign close A1")
    assert h.matrix.states(STATE_ASSIGNMENT)[-1][4]["closed"] is True
    assert "already closed" in await h.say(TEACHER_A, c.class_room, "!assign close A1")
    assert "closed and takes no more work" in await h.say(LEARNER_A, c.work[LEARNER_A], "!submit A1 late answer")
    assert await h.repos.submissions.count((await h.repos.assignments.by_number(c.klass.id, 1)).id) == (0, 0)


async def test_delete_without_work_is_immediate(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    assert "Deleted **A1 — Lab report**" in await h.say(TEACHER_A, c.class_room, "!assign delete A1")
    assert h.matrix.states(STATE_ASSIGNMENT)[-1][3:] == ("A1", {})
    assert "has no assignment A1" in await h.say(TEACHER_A, c.class_room, "!assign show A1")
    out = await h.run(TEACHER_A, c.class_room, f'!assign new "Next" due {DUE}')
    assert "**A2 — Next**" in texts(out, c.class_room)  # ids are never reused


async def test_delete_with_work_waits_for_confirm_from_the_same_user_in_the_same_room(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my answer")
    reply = await h.say(TEACHER_A, c.class_room, "!assign delete A1")
    assert "has work handed in by 1 learner (1 version)" in reply and "`!confirm`" in reply
    assert await h.repos.assignments.by_number(c.klass.id, 1) is not None

    assert "nothing waiting for your confirmation" in await h.say(LEARNER_A, c.class_room, "!confirm")
    assert "nothing waiting for your confirmation" in await h.say(TEACHER_A, c.staff_room, "!confirm")
    assert await h.repos.assignments.by_number(c.klass.id, 1) is not None
    assert "Deleted **A1 — Lab report**" in await h.say(TEACHER_A, c.class_room, "!confirm")
    assert await h.repos.assignments.by_number(c.klass.id, 1) is None
    assert "nothing waiting" in await h.say(TEACHER_A, c.class_room, "!confirm")  # runs once


async def test_a_confirmation_expires(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my answer")
    await h.run(TEACHER_A, c.class_room, "!assign delete A1")
    h.clock.advance(minutes=11)
    assert "That request expired" in await h.say(TEACHER_A, c.class_room, "!confirm")
    assert await h.repos.assignments.by_number(c.klass.id, 1) is not None


async def test_a_new_confirmation_clears_the_expired_ones(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    await h.run(TEACHER_A, c.class_room, f'!assign new "Essay" due {DUE}')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 my answer")
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A2 my essay")
    await h.run(TEACHER_A, c.class_room, "!assign delete A1")
    h.clock.advance(minutes=11)
    await h.run(TEACHER_A, c.staff_room, "!assign delete A2")  # another room: a question of its own
    pending = await h.db.fetchall("SELECT room_id FROM pending_confirmations")
    assert [r["room_id"] for r in pending] == [c.staff_room]
    assert "nothing waiting" in await h.say(TEACHER_A, c.class_room, "!confirm")


class CountingTimetable:
    def __init__(self):
        self.changes = 0

    def changed(self) -> None:
        self.changes += 1


@pytest.mark.parametrize("where", ["staff room", "work room"])
async def test_an_extension_tells_the_timetable_wherever_it_is_given(h, c, where):
    """Reminders follow an extension's new due time, also when it is given in the learner's work room."""
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    h.services.timetable = timetable = CountingTimetable()
    room = c.staff_room if where == "staff room" else c.work[LEARNER_B]
    assert "extension" in await h.say(TEACHER_A, room, f"!extend A1 {LEARNER_B} 2026-12-08 12:00")
    assert timetable.changes == 1


async def test_extend_tells_the_learner_privately(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE}')
    out = await h.run(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_B} 2026-12-08 12:00")
    assert "You have an extension on **A1 — Lab report**: it is now due for you Tue 8 Dec 2026, 12:00 NZDT" in texts(
        out, c.work[LEARNER_B]
    )
    assert [m.mentions for m in out if m.room_id == c.work[LEARNER_B]] == [(LEARNER_B,)]
    assert "now has until" in texts(out, c.staff_room)
    assert "is not a learner in Physics 12" in await h.say(TEACHER_A, c.staff_room, f"!extend A1 {TEACHER_B} 2026-12-08 12:00")
    assert "must be later than A1's due time" in await h.say(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_B} 2026-12-02 12:00")
    assert "Only a teacher" in await h.say(LEARNER_B, c.work[LEARNER_B], f"!extend A1 {LEARNER_B} 2026-12-08 12:00")


async def test_copy_needs_a_teacher_of_both_classes(h, c):
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20\nPendulum.')
    # a second class, taught from school B only
    await h.say(TEACHER_B, SHARED_DM, '!class new "Physics B" PHYSB')
    other = await h.repos.classes.by_code("PHYSB")
    other_room = (await h.repos.rooms.of_class(other.id, "class")).room_id
    await h.run(TEACHER_B, other_room, f'!assign new "Their own" due {DUE}')

    reply = await h.say(TEACHER_A, c.class_room, "!assign copy A1 PHYSB")
    assert reply == "Only a teacher of both Physics 12 and Physics B can copy assignments between them."
    assert "Only a teacher of both Physics B and Physics 12" in await h.say(TEACHER_B, other_room, "!assign copy A1 PHYS12")
    assert "Only a teacher of Physics 12 can use !assign copy" in await h.say(TEACHER_B, c.class_room, "!assign copy A1 PHYSB")
    assert "No class has the code NOPE" in await h.say(TEACHER_A, c.class_room, "!assign copy A1 NOPE")
    assert "already in Physics 12" in await h.say(TEACHER_A, c.class_room, "!assign copy A1 PHYS12")

    await h.say(TEACHER_B, other_room, f"!class teacher add {TEACHER_A}")
    out = await h.run(TEACHER_A, c.class_room, "!assign copy A1 PHYSB")
    assert "Copied A1 into Physics B (PHYSB) as **A2**" in texts(out, c.class_room)
    post = texts(out, other_room)
    assert "**A2 — Lab report** · 20 points" in post and "Pendulum." in post
    copy = await h.repos.assignments.by_number(other.id, 2)
    assert copy.copied_from == (await h.repos.assignments.by_number(c.klass.id, 1)).id
    assert (other_room, "A2") in [(s[1], s[3]) for s in h.matrix.states(STATE_ASSIGNMENT)]


async def test_markdown_from_teachers_comes_out_harmless():
    html = to_html('<script>alert("x")</script>\n<img src="x" onerror="alert(1)">\n[click](javascript:alert(1))')
    assert "<script" not in html and "alert(\"x\")" not in html
    assert "onerror" not in html
    # CommonMark keeps the line after an HTML line in the same HTML block: it may show as text, never as a link
    assert "href" not in html and "<a" not in html
    assert "javascript:" not in to_html("[click](javascript:alert(1))")
    assert to_html("**bold** [ok](https://example.org)") == '<p><strong>bold</strong> <a href="https://example.org">ok</a></p>'


async def test_an_assignment_description_is_sanitised_when_posted(h, c):
    out = await h.run(
        TEACHER_A,
        c.class_room,
        f'!assign new "Lab" due {DUE}\n'
        'Read <a href="javascript:alert(1)">this</a> <img src=x onerror=alert(1)><script>steal()</script>',
    )
    post = next(m for m in out if m.room_id == c.class_room and not m.reply_to)
    html = content_for(post)["formatted_body"]
    assert "javascript:" not in html and "onerror" not in html and "<script" not in html and "steal()" not in html
    assert content_for(post)["m.mentions"] == {}


async def test_a_huge_description_is_cut_in_the_state_event_but_kept_in_the_record(h, c):
    long = "🙂" * 15_000  # 60 000 bytes: more than a state event may carry
    await h.run(TEACHER_A, c.class_room, f'!assign new "Big" due {DUE}\n{long}')
    content = h.matrix.states(STATE_ASSIGNMENT)[-1][4]
    assert content["description_cut"] is True and len(content["description"].encode()) <= 40_003
    assert (await h.repos.assignments.by_number(c.klass.id, 1)).description == long


async def test_help_shows_the_coursework_commands_from_their_declarations(h, c):
    detail = await h.say(TEACHER_A, c.class_room, "!help grade")
    assert "`!grade [<assignment>] [@learner] <score>[/<max>] [feedback]`" in detail and "Who: teachers of the class" in detail
    assert "needs one of: close, copy, delete, edit, new, show" in await h.say(TEACHER_A, c.class_room, "!assign")
    learner_help = await h.say(LEARNER_A, c.work[LEARNER_A], "!help")
    assert "!submit" in learner_help and "!mywork" in learner_help and "!grade " not in learner_help
