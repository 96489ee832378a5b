"""Grading: score parsing, feedback only in the work room, returns, the teachers' and learners' views."""

from datetime import datetime, timezone

import pytest

from commands.errors import BadArgument
from commands.grading import Score, parse_score, score_within

from .fakes import LEARNER_A, LEARNER_B, LEARNER_C, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts

DUE = "2026-12-04 17:00"
DUE_UTC = datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc)
FEEDBACK = "Clear method; check your units in part 2."


@pytest.mark.parametrize(
    "text, points, expected",
    [
        ("17/20", 20, (17, 20)),
        ("17", 20, (17, 20)),
        ("20.5", 25, (20.5, 25)),
        ("17,5/20", 20, (17.5, 20)),
        ("0", 20, (0, 20)),
        ("17/25", 20, (17, 25)),
    ],
)
def test_scores_that_are_accepted(text, points, expected):
    assert score_within(parse_score(text), points, "A1") == expected


@pytest.mark.parametrize(
    "text, points, problem",
    [
        ("-1", 20, "A score can't be negative (you wrote -1)."),
        ("21/20", 20, "21 is more than the maximum of 20."),
        ("20.5", 20, "20.5 is more than the 20 points A1 is out of"),
        ("abc", 20, "“abc” is not a score; write a number such as 17, 17.5 or 17/20."),
        ("17/0", 20, "The maximum in 17/0 must be more than 0."),
        ("nan", 20, "is not a score"),
        ("1e3", 20, "is not a score"),
        ("17/", 20, "is not a score"),
    ],
)
def test_scores_that_are_refused_say_why(text, points, problem):
    with pytest.raises(BadArgument) as e:
        score_within(parse_score(text), points, "A1")
    assert problem in e.value.message


def test_a_score_without_a_maximum_keeps_none():
    assert parse_score("17") == Score(17, None)


async def lab(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 The period was 2.01 s.")
    return c, await h.repos.assignments.by_number(c.klass.id, 1)


async def test_grade_in_the_work_room_answers_there_with_grade_and_feedback(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_B]
    out = await h.run(TEACHER_A, work, f"!grade A1 17/20 {FEEDBACK}")
    assert [m.room_id for m in out] == [work]
    assert "**A1 — Lab report** (version 1): your grade is **17/20**" in out[0].markdown
    assert FEEDBACK in out[0].markdown and out[0].mentions == (LEARNER_B,)
    g = await h.repos.grades.latest(a.id, LEARNER_B)
    assert (g.score, g.max_score, g.feedback, g.version, g.graded_by) == (17, 20, FEEDBACK, 1, TEACHER_A)
    assert h.matrix.redactions() == []


async def test_grade_from_the_class_room_goes_only_to_the_work_room_and_the_command_is_removed(harness):
    h = harness
    c, a = await lab(h)
    out = await h.run(TEACHER_A, c.class_room, f"!grade A1 {LEARNER_B} 17 {FEEDBACK}")
    private = [m for m in out if m.room_id == c.work[LEARNER_B]]
    assert len(private) == 1 and "**17/20**" in private[0].markdown and FEEDBACK in private[0].markdown
    assert texts(out, c.class_room) == ""  # learners read the class room: it gets nothing (issue 16)
    confirmation = texts(out, c.staff_room)
    assert "17/20" not in confirmation and FEEDBACK not in confirmation
    assert "removed it from there" in confirmation and "went to their work room only" in confirmation
    assert {m.room_id for m in out} == {c.work[LEARNER_B], c.staff_room}
    assert (c.class_room, f"$ev{h._n}") in h.matrix.redactions()


async def test_grade_from_the_staff_room_confirms_without_the_feedback(harness):
    h = harness
    c, a = await lab(h)
    out = await h.run(TEACHER_A, c.staff_room, f"!grade A1 {LEARNER_B} 15/20 {FEEDBACK}")
    assert FEEDBACK in texts(out, c.work[LEARNER_B])
    confirmation = texts(out, c.staff_room)
    assert "Recorded @ben:b.test's grade for A1; the grade and feedback went to their work room only." == confirmation
    assert h.matrix.redactions() == []


async def test_learners_and_strangers_cannot_grade_or_see_every_submission(harness):
    h = harness
    c, a = await lab(h)
    assert "Only a teacher of Physics 12 can use !grade." in await h.say(LEARNER_B, c.work[LEARNER_B], "!grade A1 20/20")
    assert "Only a teacher of Physics 12" in await h.say(LEARNER_A, c.class_room, f"!grade A1 {LEARNER_B} 0")
    # a user of a server of no school, in the class room: removed, and told so there without a word of it
    # (Ako opens no direct message with a server it does not work with)
    assert "`!grade` is answered only in private" in await h.say(LEARNER_C, c.class_room, f"!grade A1 {LEARNER_B} 0")
    assert (c.class_room, f"$ev{h._n}") in h.matrix.redactions()
    assert "Only a teacher of Physics 12 can use !submissions." in await h.say(LEARNER_A, c.class_room, "!submissions A1")
    assert await h.repos.grades.latest(a.id, LEARNER_B) is None


async def test_bad_grades_name_the_problem_and_record_nothing(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_B]
    reply = await h.say(TEACHER_A, work, "!grade A1 21/20 great")
    assert "21 is more than the maximum of 20." in reply
    assert "Usage: `!grade [<assignment>] [@learner] <score>[/<max>] [feedback]`" in reply
    assert "20.5 is more than the 20 points A1 is out of" in await h.say(TEACHER_A, work, "!grade A1 20.5")
    assert "“abc” is not a score" in await h.say(TEACHER_A, work, "!grade A1 abc")
    assert "can't be negative" in await h.say(TEACHER_A, work, "!grade A1 -1")
    assert "must be more than 0" in await h.say(TEACHER_A, work, "!grade A1 17/0")
    assert "grade needs [@learner] <score>" in await h.say(TEACHER_A, work, "!grade A1")
    assert "Name the learner" in await h.say(TEACHER_A, c.staff_room, "!grade A1 17")
    assert "is not a learner in Physics 12" in await h.say(TEACHER_A, c.staff_room, f"!grade A1 {TEACHER_B} 17")
    assert "not a valid Matrix user id" in await h.say(TEACHER_A, c.staff_room, "!grade A1 @Ben 17")
    assert "has no assignment A4" in await h.say(TEACHER_A, work, "!grade A4 17")
    assert await h.repos.grades.latest(a.id, LEARNER_B) is None


async def test_grading_a_learner_in_another_learners_work_room_keeps_it_private(harness):
    h = harness
    c, a = await lab(h)
    out = await h.run(TEACHER_A, c.work[LEARNER_A], f"!grade A1 {LEARNER_B} 12 {FEEDBACK}")
    assert FEEDBACK in texts(out, c.work[LEARNER_B])
    assert FEEDBACK not in texts(out, c.work[LEARNER_A]) and "12/20" not in texts(out, c.work[LEARNER_A])
    assert (c.work[LEARNER_A], f"$ev{h._n}") in h.matrix.redactions()


async def test_return_asks_for_a_new_version(harness):
    h = harness
    c, a = await lab(h)
    out = await h.run(TEACHER_A, c.staff_room, f"!return A1 {LEARNER_B} Add your method.")
    note = texts(out, c.work[LEARNER_B])
    assert "handed **A1 — Lab report** back to you" in note and "Add your method." in note and "`!submit A1`" in note
    assert "Add your method" not in texts(out, c.staff_room)
    assert "returned for more work" in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 with method")
    assert "returned" not in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")
    assert "handed **A1 — Lab report** back" in await h.say(TEACHER_A, c.work[LEARNER_B], "!return A1")
    assert "Name the learner" in await h.say(TEACHER_A, c.staff_room, "!return A1 please redo")


async def test_submissions_lists_every_learner_grouped_by_school_for_teachers_only(harness):
    h = harness
    c, a = await lab(h)
    await h.run(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_A} 2026-12-08 17:00")
    await h.run(TEACHER_A, c.staff_room, f"!grade A1 {LEARNER_B} 17")
    h.clock.moment = DUE_UTC.replace(hour=7)
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 v2")
    listing = await h.say(TEACHER_A, c.staff_room, "!submissions A1")
    assert "1 of 2 handed in, 1 graded" in listing
    assert listing.index("Kura A (a.test)") < listing.index(LEARNER_A) < listing.index("Kura B (b.test)") < listing.index(LEARNER_B)
    assert f"{LEARNER_A} — not submitted yet · extension to Tue 8 Dec 2026, 17:00 NZDT" in listing
    assert f"{LEARNER_B} — submitted v2, late by 3 h · graded 17/20 (v1) — text" in listing

    out = await h.run(TEACHER_A, c.class_room, "!submissions A1")  # learners read the class room
    assert LEARNER_B not in texts(out, c.class_room) and "staff room" in texts(out, c.class_room)
    assert "1 of 2 handed in" in texts(out, c.staff_room)


async def test_grades_gradebook_for_teachers_and_only_their_own_for_learners(harness):
    h = harness
    c, a = await lab(h)
    await h.run(TEACHER_A, c.work[LEARNER_B], f"!grade A1 17/20 {FEEDBACK}")
    await h.run(TEACHER_A, c.work[LEARNER_A], "!grade A1 11 see me")
    book = await h.say(TEACHER_A, SHARED_DM, "!grades PHYS12")
    assert "Gradebook of Physics 12" in book
    assert f"{LEARNER_A} — A1 11/20 — total 11/20" in book and f"{LEARNER_B} — A1 17/20 — total 17/20" in book

    mine = await h.say(LEARNER_B, c.work[LEARNER_B], "!grades")
    assert "**17/20**" in mine and FEEDBACK in mine
    assert LEARNER_A not in mine and "11/20" not in mine and "see me" not in mine

    out = await h.run(LEARNER_B, c.class_room, "!grades")
    assert "17/20" not in texts(out, c.class_room) and "17/20" in texts(out, c.work[LEARNER_B])
    out = await h.run(TEACHER_A, c.class_room, "!grades")
    assert "17/20" not in texts(out, c.class_room) and "17/20" in texts(out, c.staff_room)
