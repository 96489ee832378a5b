"""A "DM" is whatever room its owner invited Ako to as direct (issue 16, item 2).

A room counts as someone's direct message with Ako only while its members are exactly that person
and Ako, checked when private content is about to go there: the gradebook, a learner's grades,
exports, digests and personal reminders. Otherwise the reply names the problem.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from commands import timetable

from .fakes import BOT, LEARNER_A, LEARNER_B, TEACHER_A, classroom, texts

DUE = "2026-12-04 17:00"
GROUP = "!group-dm:a.test"  # the teacher started a "direct message" with Ako and a learner
TEACHER_DM = "!teacher-dm:a.test"  # an older one with just the two of them
ALONE = "This room has other people in it; I send"


async def graded(h):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20')
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 The period was 2.01 s.")
    await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 17/20 Good.")
    await h.repos.rooms.add(GROUP, "dm", None, TEACHER_A, h.clock.now())
    h.matrix.joined[GROUP] = {TEACHER_A, BOT, LEARNER_A}
    return c


async def test_the_gradebook_is_not_given_in_a_group_dm_and_the_reply_says_why(h):
    c = await graded(h)
    out = await h.run(TEACHER_A, GROUP, "!grades PHYS12")
    here = texts(out, GROUP)
    assert "17/20" not in here and "Gradebook" not in here
    assert f"{ALONE} grades only in a direct message with just you and me." in here
    assert "17/20" in texts(out, c.staff_room)
    out = await h.run(TEACHER_A, GROUP, "!submissions PHYS12 A1")
    assert "2.01" not in texts(out, GROUP) and "submitted v1" not in texts(out, GROUP) and ALONE in texts(out, GROUP)


async def test_a_learners_own_grades_are_not_given_in_their_group_dm(h):
    c = await graded(h)
    bens_group = "!bens-group:a.test"
    await h.repos.rooms.add(bens_group, "dm", None, LEARNER_B, h.clock.now())
    h.matrix.joined[bens_group] = {LEARNER_B, BOT, LEARNER_A}
    out = await h.run(LEARNER_B, bens_group, "!grades PHYS12")
    assert "17/20" not in texts(out, bens_group) and ALONE in texts(out, bens_group)
    assert "17/20" in texts(out, c.work[LEARNER_B])


async def test_a_dm_someone_joined_later_stops_being_private(h):
    c = await graded(h)
    await h.repos.rooms.add(TEACHER_DM, "dm", None, TEACHER_A, h.clock.now())
    h.matrix.joined[TEACHER_DM] = {TEACHER_A, BOT}
    assert "17/20" in texts(await h.run(TEACHER_A, TEACHER_DM, "!grades PHYS12"), TEACHER_DM)
    h.matrix.joined[TEACHER_DM] = {TEACHER_A, BOT, LEARNER_B}  # invited since: counts as soon as invited
    out = await h.run(TEACHER_A, TEACHER_DM, "!grades PHYS12")
    assert "17/20" not in texts(out, TEACHER_DM) and ALONE in texts(out, TEACHER_DM)


async def test_exports_go_to_the_newest_dm_with_just_the_two_of_them(h):
    c = await graded(h)
    await h.repos.rooms.add(TEACHER_DM, "dm", None, TEACHER_A, datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC")))
    h.matrix.joined[TEACHER_DM] = {TEACHER_A, BOT}
    out = await h.run(TEACHER_A, c.staff_room, "!export grades")  # GROUP is the newer one: not there
    files = [m for m in out if m.file]
    assert [m.room_id for m in files] == [TEACHER_DM]
    out = await h.run(TEACHER_A, GROUP, "!export grades PHYS12")  # asked in the group itself
    assert [m.room_id for m in out if m.file] == [TEACHER_DM]
    assert f"{ALONE} exports only in a direct message with just you and me." in texts(out, GROUP)


async def test_with_no_private_dm_an_export_starts_one(h):
    c = await graded(h)
    out = await h.run(TEACHER_A, GROUP, "!export grades PHYS12")
    created = [a for a in h.matrix.actions if a[0] == "create" and a[2].get("direct")]
    assert len(created) == 1 and created[0][2]["invite"] == [TEACHER_A]
    assert [m.room_id for m in out if m.file] == [created[0][1]]
    assert "a new direct message with you" in texts(out, GROUP)


async def test_digests_and_personal_reminders_skip_a_dm_that_others_are_in_for_a_new_one(h):
    c = await graded(h)
    await h.repos.rooms.add(TEACHER_DM, "dm", None, TEACHER_A, datetime(2026, 11, 1, tzinfo=ZoneInfo("UTC")))
    h.matrix.joined[TEACHER_DM] = {TEACHER_A, BOT}
    assert "daily digest" in await h.say(TEACHER_A, GROUP, "!digest daily")
    assert "I'll remind you in our direct message" in await h.say(TEACHER_A, GROUP, "!remindme tomorrow 6:50 mark the essays")
    await h.run(TEACHER_A, c.class_room, "!topic \"Pendulums\"\nWhat changes the period?")
    h.clock.moment = datetime(2026, 12, 1, 7, 0, tzinfo=ZoneInfo("Pacific/Auckland"))
    sent = await _tick(h)
    assert any("digest" in m.markdown for m in sent) and any("mark the essays" in m.markdown for m in sent)
    assert {m.room_id for m in sent if "digest" in m.markdown or "mark the essays" in m.markdown} == {TEACHER_DM}

    await h.say(TEACHER_A, c.staff_room, "!remindme tomorrow 6:50 second")
    h.matrix.joined[TEACHER_DM] = {TEACHER_A, BOT, LEARNER_B}  # now nowhere is private: a new DM is started
    await h.run(TEACHER_A, c.class_room, "!topic \"Springs\"\nWhat changes the stiffness?")
    h.clock.moment = datetime(2026, 12, 2, 7, 0, tzinfo=ZoneInfo("Pacific/Auckland"))
    sent = await _tick(h)
    private = {m.room_id for m in sent if "digest" in m.markdown or "second" in m.markdown}
    assert any("second" in m.markdown for m in sent), "the reminder was dropped"
    assert len(private) == 1 and not private & {TEACHER_DM, GROUP}, private
    [new_dm] = private
    made = [a[2] for a in h.matrix.actions if a[0] == "create" and a[1] == new_dm]
    assert made and made[0]["invite"] == [TEACHER_A] and made[0]["direct"], made


async def test_a_digest_asked_for_in_a_group_dm_with_no_private_one_says_why(h):
    await graded(h)
    reply = await h.say(TEACHER_A, GROUP, "!digest daily")
    assert f"{ALONE} digests only in a direct message with just you and me." in reply
    reply = await h.say(TEACHER_A, GROUP, "!remindme in 2 hours mark the essays")
    assert f"{ALONE} your reminders only in a direct message with just you and me." in reply


async def _tick(h):
    before = len(h.sent)
    await timetable.run_due(h.services, h._enqueue, h.clock.now(), None)
    return h.sent[before:]
