"""Handing in work: versions, receipts on the bot's clock, lateness, cutoffs, files, privacy."""

from datetime import datetime, timezone

from .fakes import LEARNER_A, LEARNER_B, SHARED_DM, TEACHER_A, classroom, texts

DUE = "2026-12-04 17:00"  # Fri, NZDT = 04:00 UTC
CUTOFF = "2026-12-06 17:00"
DUE_UTC = datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc)
CUTOFF_UTC = datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc)

PDF = {
    "msgtype": "m.file",
    "body": "report.pdf",
    "filename": "report.pdf",
    "url": "mxc://b.test/abc123",
    "info": {"mimetype": "application/pdf", "size": 1_500_000},
}


async def lab(h, **extra):
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f'!assign new "Lab report" due {DUE} points 20 cutoff {CUTOFF}')
    a = await h.repos.assignments.by_number(c.klass.id, 1)
    return c, a


async def test_text_then_a_file_as_a_reply_make_versions_1_and_2(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_B]
    out = await h.run(LEARNER_B, work, "!submit A1 The period was 2.01 s.")
    assert [m.room_id for m in out] == [work]
    receipt = out[0].markdown
    assert "Received **A1 — Lab report**, version 1, at Mon 30 Nov 2026, 16:00 NZDT (Pacific/Auckland): on time" in receipt
    assert "your text (22 characters)" in receipt

    h.clock.advance(hours=1)
    file_event = h.matrix.post(work, LEARNER_B, PDF)
    receipt = await h.say(LEARNER_B, work, "!submit A1", reply_to=file_event)
    assert "version 2, at Mon 30 Nov 2026, 17:00 NZDT" in receipt and "the file report.pdf, 1.4 MB" in receipt
    sub = await h.repos.submissions.latest(a.id, LEARNER_B)
    assert sub.version == 2 and sub.text == "" and sub.reply_event_id == file_event
    recorded = (sub.file.url, sub.file.name, sub.file.mimetype, sub.file.size)
    assert recorded == ("mxc://b.test/abc123", "report.pdf", "application/pdf", 1_500_000)
    assert sub.received_at == h.clock.now()  # the bot's clock, not the sender's origin_server_ts

    text_event = h.matrix.post(work, LEARNER_B, {"msgtype": "m.text", "body": "My conclusion: g = 9.8"})
    await h.say(LEARNER_B, work, "!submit A1 (final)", reply_to=text_event)
    sub = await h.repos.submissions.latest(a.id, LEARNER_B)
    assert sub.version == 3 and sub.text == "My conclusion: g = 9.8\n\n(final)"


async def test_late_by_and_after_the_cutoff_refused_with_nothing_recorded(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_A]
    h.clock.moment = DUE_UTC.replace(hour=6, minute=30)
    receipt = await h.say(LEARNER_A, work, "!submit A1 sorry")
    assert "**late by 2 h 30 min**" in receipt and "(due Fri 4 Dec 2026, 17:00 NZDT" in receipt
    assert (await h.repos.submissions.latest(a.id, LEARNER_A)).late_seconds == 9000

    h.clock.moment = CUTOFF_UTC.replace(minute=1)
    reply = await h.say(LEARNER_A, work, "!submit A1 even later")
    assert "The cutoff for A1 was Sun 6 Dec 2026, 17:00 NZDT" in reply and "nothing was recorded" in reply
    assert [s.version for s in await h.repos.submissions.versions(a.id, LEARNER_A)] == [1]


async def test_an_extension_makes_it_on_time_and_moves_the_cutoff(harness):
    h = harness
    c, a = await lab(h)
    await h.run(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_B} 2026-12-08 17:00")
    h.clock.moment = CUTOFF_UTC.replace(hour=5)  # past the class cutoff, before the extension
    receipt = await h.say(LEARNER_B, c.work[LEARNER_B], "!submit A1 done")
    assert ": on time (due Tue 8 Dec 2026, 17:00 NZDT" in receipt
    assert "The cutoff for A1" in await h.say(LEARNER_A, c.work[LEARNER_A], "!submit A1 done")


async def test_an_extension_granted_later_excuses_earlier_lateness_in_views(harness):
    h = harness
    c, a = await lab(h)
    h.clock.moment = DUE_UTC.replace(hour=6)
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 done")
    assert "late by 2 h" in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")
    await h.run(TEACHER_A, c.staff_room, f"!extend A1 {LEARNER_B} 2026-12-05 17:00")
    assert "submitted v1, on time" in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")


async def test_a_file_over_the_limit_is_refused_naming_the_limit(harness):
    h = harness
    c, a = await lab(h)
    big = {**PDF, "info": {"mimetype": "video/mp4", "size": 25 * 1024 * 1024}, "msgtype": "m.video", "body": "film.mp4"}
    del big["filename"]
    event = h.matrix.post(c.work[LEARNER_A], LEARNER_A, big)
    reply = await h.say(LEARNER_A, c.work[LEARNER_A], "!submit A1", reply_to=event)
    assert "film.mp4 is 25.0 MB; files up to 20 MB are accepted, so nothing was recorded" in reply
    assert await h.repos.submissions.latest(a.id, LEARNER_A) is None


async def test_submit_in_the_class_room_is_removed_there_and_recorded_privately(harness):
    h = harness
    c, a = await lab(h)
    file_event = h.matrix.post(c.class_room, LEARNER_A, PDF)
    out = await h.run(LEARNER_A, c.class_room, "!submit A1 here is my report", reply_to=file_event)
    command_event = f"$ev{h._n}"
    assert set(h.matrix.redactions()) == {(c.class_room, command_event), (c.class_room, file_event)}
    assert texts(out, c.class_room) == ""  # nothing about the work is said in public
    note = texts(out, c.work[LEARNER_A])
    assert "removed it from there" in note and "version 1" in note and "the file report.pdf" in note
    sub = await h.repos.submissions.latest(a.id, LEARNER_A)
    assert sub.text == "here is my report" and sub.file.url == PDF["url"]


async def test_a_refused_submit_in_the_class_room_is_still_removed_and_explained_privately(harness):
    h = harness
    c, a = await lab(h)
    out = await h.run(LEARNER_A, c.class_room, "!submit A7 my answer")
    assert (c.class_room, f"$ev{h._n}") in h.matrix.redactions()
    assert texts(out, c.class_room) == ""
    assert "Nothing was recorded: Physics 12 has no assignment A7" in texts(out, c.work[LEARNER_A])


async def test_only_your_own_messages_and_readable_ones_can_be_handed_in(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_A]
    teacher_msg = h.matrix.post(work, TEACHER_A, {"msgtype": "m.text", "body": "the model answer"})
    assert "only your own messages" in await h.say(LEARNER_A, work, "!submit A1", reply_to=teacher_msg)
    assert "couldn't read the message you replied to" in await h.say(LEARNER_A, work, "!submit A1", reply_to="$gone")
    assert await h.repos.submissions.latest(a.id, LEARNER_A) is None


async def test_bad_submits_name_the_problem(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_A]
    reply = await h.say(LEARNER_A, work, "!submit A1")
    assert "There is nothing to hand in" in reply and "Usage: `!submit <assignment> [<work>]`" in reply
    assert "“essay” is not an assignment id" in await h.say(LEARNER_A, work, "!submit essay")
    assert "has no assignment A2" in await h.say(LEARNER_A, work, "!submit A2 text")
    assert "Only a learner in Physics 12" in await h.say(TEACHER_A, work, "!submit A1 text")
    assert "works in your own work room" in await h.say(LEARNER_A, c.staff_room, "!submit A1 text")
    assert "works in your own work room" in await h.say(LEARNER_A, SHARED_DM, "!submit PHYS12 A1 text")
    assert await h.repos.submissions.latest(a.id, LEARNER_A) is None


async def test_unsubmit_before_the_due_time_only_and_versions_keep_counting(harness):
    h = harness
    c, a = await lab(h)
    work = c.work[LEARNER_A]
    assert "You have no work handed in for A1" in await h.say(LEARNER_A, work, "!unsubmit A1")
    await h.run(LEARNER_A, work, "!submit A1 first go")
    assert "Withdrew your work on **A1 — Lab report**" in await h.say(LEARNER_A, work, "!unsubmit A1")
    assert await h.repos.submissions.latest(a.id, LEARNER_A) is None
    assert "version 2" in await h.say(LEARNER_A, work, "!submit A1 second go")
    h.clock.moment = DUE_UTC.replace(minute=1)
    assert "can be withdrawn only before the due time" in await h.say(LEARNER_A, work, "!unsubmit A1")
    assert (await h.repos.submissions.latest(a.id, LEARNER_A)).version == 2


async def test_mywork_is_private(harness):
    h = harness
    c, a = await lab(h)
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 answer")
    out = await h.run(LEARNER_A, c.class_room, "!mywork")
    assert "submitted v1, on time" in texts(out, c.work[LEARNER_A])
    assert "v1" not in texts(out, c.class_room)
    assert "not submitted yet" in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")
    h.clock.moment = DUE_UTC.replace(hour=5)
    assert "missing" in await h.say(LEARNER_B, c.work[LEARNER_B], "!mywork")
    assert "Only a learner" in await h.say(TEACHER_A, c.class_room, "!mywork")
