"""`!submit`, `!grade` and `!return` are private by content (issue 16, item 1).

Typed where learners read them — the class room, a room Ako does not know, someone's "direct
message" shared with others — they are taken out of that room whatever becomes of them (done,
bad argument, not allowed, unknown assignment, a bug), and the answer goes to the caller's work
room (a learner), the class's staff room (a teacher) or their direct message with Ako, never back
to the room they were typed in, which gets nothing at all.
"""

from __future__ import annotations

import pytest

from .fakes import BOT, LEARNER_A, LEARNER_B, TEACHER_A, classroom

DUE = "2026-12-04 17:00"
SECRET = "you copied part 2"  # content that must never be repeated in a public room

# Measured for docs/security.md (tests/security_doc.py): every case below, and what reached the public room.
FIGURES: dict[str, int] = {"cases": 0, "public traces": 0, "left unredacted": 0}


async def lab(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 The period was 2.01 s.")
    return c


def _public(out, room_id):
    return [m for m in out if m.room_id == room_id]


async def _typed_in_public(h, c, sender, line, public_room=None, **kw):
    """Run the command in a public room; check it was taken out and nothing was said there. Returns what was sent."""
    public_room = public_room or c.class_room
    before = len(h.matrix.redactions())
    out = await h.run(sender, public_room, line, **kw)
    event = f"$ev{h._n}"
    FIGURES["cases"] += 1
    public = _public(out, public_room)
    FIGURES["public traces"] += len(public)
    redacted = (public_room, event) in h.matrix.redactions()[before:]
    FIGURES["left unredacted"] += 0 if redacted else 1
    assert public == [], f"the public room was answered: {[m.markdown for m in public]}"
    assert redacted, "the command was left in the public room"
    assert out, "the caller got no answer at all"
    return out


@pytest.mark.parametrize(
    "line, problem",
    [
        (f"!grade A1 {LEARNER_B} 25 Weak: {SECRET}", "25 is more than the 20 points"),  # argument error
        (f"!grade A7 {LEARNER_B} 5 Weak: {SECRET}", "A7"),  # unknown assignment
        (f"!grade A1 {LEARNER_B} 5 Weak:\x0b{SECRET}", "control characters"),  # a vertical tab from a word processor
        (f"!return A1 {LEARNER_B} " + "x" * 21_000, "at most 20000"),  # too long
        (f"!return A1 @nobody:b.test {SECRET}", "@nobody:b.test"),  # not a learner of the class
    ],
)
async def test_a_teachers_refused_private_command_in_the_class_room_is_removed_and_answered_in_the_staff_room(
    harness, line, problem
):
    h = harness
    c = await lab(h)
    out = await _typed_in_public(h, c, TEACHER_A, line)
    answer = "\n".join(m.markdown for m in out if m.room_id == c.staff_room)
    assert problem in answer, [(m.room_id, m.markdown[:200]) for m in out]
    assert "Nothing was recorded" in answer and "removed it from there" in answer
    assert [m.room_id for m in out] == [c.staff_room]  # not the learner's work room: nothing happened
    assert TEACHER_A in out[0].mentions


async def test_a_teachers_grade_in_the_class_room_goes_to_the_work_room_and_the_receipt_to_the_staff_room(harness):
    h = harness
    c = await lab(h)
    out = await _typed_in_public(h, c, TEACHER_A, f"!grade A1 {LEARNER_B} 12 Weak: {SECRET}")
    by_room = {m.room_id: m.markdown for m in out}
    assert set(by_room) == {c.work[LEARNER_B], c.staff_room}
    assert "12/20" in by_room[c.work[LEARNER_B]] and SECRET in by_room[c.work[LEARNER_B]]
    assert "Recorded @ben:b.test's grade for A1" in by_room[c.staff_room]
    assert "12/20" not in by_room[c.staff_room] and SECRET not in by_room[c.staff_room]


async def test_a_learners_submit_in_the_class_room_is_recorded_and_the_receipt_goes_to_the_work_room(harness):
    h = harness
    c = await lab(h)
    out = await _typed_in_public(h, c, LEARNER_A, "!submit A1 My secret answer is 42.")
    assert [m.room_id for m in out] == [c.work[LEARNER_A]]
    assert "removed it from there" in out[0].markdown and "version 1" in out[0].markdown
    assert LEARNER_A in out[0].mentions


@pytest.mark.parametrize(
    "line, problem",
    [
        ("!submit A1 " + "my essay " * 2_400, "at most 20000"),  # a 21,600-character essay
        ("!submit A1 my essay\x0bpart two", "control characters"),
        ("!submit A9 my essay", "A9"),
        (f"!grade A1 {LEARNER_B} 0 {SECRET}", "Only a teacher of Physics 12"),  # not allowed
    ],
)
async def test_a_learners_refused_private_command_in_the_class_room_is_removed_and_answered_in_the_work_room(
    harness, line, problem
):
    h = harness
    c = await lab(h)
    out = await _typed_in_public(h, c, LEARNER_A, line)
    assert [m.room_id for m in out] == [c.work[LEARNER_A]]
    assert problem in out[0].markdown and "Nothing was recorded" in out[0].markdown


async def test_the_message_a_submit_replies_to_is_removed_too_even_when_the_submit_is_refused(harness):
    h = harness
    c = await lab(h)
    mine = h.matrix.post(c.class_room, LEARNER_A, {"msgtype": "m.text", "body": "my answer: 42"})
    theirs = h.matrix.post(c.class_room, LEARNER_B, {"msgtype": "m.text", "body": "hello"})
    await _typed_in_public(h, c, LEARNER_A, "!submit A9", reply_to=mine)
    assert (c.class_room, mine) in h.matrix.redactions()
    await _typed_in_public(h, c, LEARNER_A, "!submit A1", reply_to=theirs)
    assert (c.class_room, theirs) not in h.matrix.redactions()  # someone else's message is not the caller's to hide


async def test_a_bug_in_a_private_command_still_takes_it_out_of_the_class_room(harness, monkeypatch):
    h = harness
    c = await lab(h)

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(h.repos.grades, "add", broken)
    out = await _typed_in_public(h, c, TEACHER_A, f"!grade A1 {LEARNER_B} 12 {SECRET}")
    assert [m.room_id for m in out] == [c.staff_room]
    assert "Something went wrong (ref " in out[0].markdown and "disk on fire" not in out[0].markdown


async def test_a_learner_without_a_work_room_gets_one_for_the_answer(harness):
    h = harness
    c = await lab(h)
    newcomer = "@dan:a.test"
    await h.repos.classes.add_member(c.klass.id, newcomer, "learner", TEACHER_A, h.clock.now())
    assert await h.repos.rooms.work_room(c.klass.id, newcomer) is None
    out = await _typed_in_public(h, c, newcomer, "!submit A9 my essay")
    room = await h.repos.rooms.work_room(c.klass.id, newcomer)
    assert room is not None and [m.room_id for m in out] == [room.room_id]
    assert newcomer in h.matrix.invites_of(room.room_id) or any(
        a[0] == "create" and a[1] == room.room_id and newcomer in a[2]["invite"] for a in h.matrix.actions
    )


async def test_someone_in_the_class_room_who_is_not_in_the_class_is_answered_in_their_direct_message(harness):
    h = harness
    c = await lab(h)
    visitor = "@vic:a.test"  # a school's user a teacher invited to the room by hand
    out = await _typed_in_public(h, c, visitor, f"!grade A1 {LEARNER_B} 0 {SECRET}")
    dm = await h.repos.rooms.dm_of(visitor)
    assert dm is not None and [m.room_id for m in out] == [dm.room_id]
    assert "Only a teacher of Physics 12" in out[0].markdown


async def test_a_private_command_in_a_shared_direct_message_is_taken_out_of_it(harness):
    h = harness
    c = await lab(h)
    group = "!group:a.test"  # the teacher invited Ako "as direct" to a room with a learner in it
    await h.repos.rooms.add(group, "dm", None, TEACHER_A, h.clock.now())
    h.matrix.joined[group] = {TEACHER_A, BOT, LEARNER_A}
    out = await _typed_in_public(h, c, TEACHER_A, f"!grade PHYS12 A1 {LEARNER_B} 25 {SECRET}", public_room=group)
    assert [m.room_id for m in out] == [c.staff_room]
    assert "25 is more than the 20 points" in out[0].markdown


async def test_in_private_rooms_nothing_is_removed(harness):
    h = harness
    c = await lab(h)
    before = len(h.matrix.redactions())
    out = await h.run(TEACHER_A, c.staff_room, f"!grade A1 {LEARNER_B} 25 {SECRET}")
    assert [m.room_id for m in out] == [c.staff_room] and "25 is more than" in out[0].markdown
    out = await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A9 x")
    assert [m.room_id for m in out] == [c.work[LEARNER_B]]
    out = await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 25")
    assert [m.room_id for m in out] == [c.work[LEARNER_B]] and "25 is more than" in out[0].markdown
    assert h.matrix.redactions()[before:] == []


async def test_a_grade_typed_in_another_learners_work_room_is_taken_out_of_it(harness):
    h = harness
    c = await lab(h)
    anas_room = c.work[LEARNER_A]
    out = await _typed_in_public(h, c, TEACHER_A, f"!grade A1 {LEARNER_B} 12 Weak: {SECRET}", public_room=anas_room)
    by_room = {m.room_id: m.markdown for m in out}
    assert set(by_room) == {c.work[LEARNER_B], c.staff_room}
    assert SECRET in by_room[c.work[LEARNER_B]] and SECRET not in by_room[c.staff_room]
    assert f"the work room of {LEARNER_A}" in by_room[c.staff_room]
    # grading the room's own learner there stays there
    out = await h.run(TEACHER_A, c.work[LEARNER_B], f"!grade A1 14 See how {LEARNER_A} set out part 2.")
    assert [m.room_id for m in out] == [c.work[LEARNER_B]] and "14/20" in out[0].markdown


async def test_a_refused_grade_for_another_learner_typed_in_a_work_room_is_taken_out_of_it(harness):
    h = harness
    c = await lab(h)
    anas_room = c.work[LEARNER_A]
    out = await _typed_in_public(h, c, TEACHER_A, f"!grade A1 {LEARNER_B} 25 Weak: {SECRET}", public_room=anas_room)
    assert [m.room_id for m in out] == [c.staff_room] and "25 is more than the 20 points" in out[0].markdown
    # refused about the room's own learner, it stays where it was typed
    out = await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 25 Weak")
    assert [m.room_id for m in out] == [c.work[LEARNER_B]] and "25 is more than" in out[0].markdown
