"""Marking: the queue (`!mark`, `!grade`/`!return`/`!skip` on the work shown, `!mark stop`), two
teachers at once, `!submission`, work moved out of the class room, sizes, and `!overview`."""

import io

import pytest

from commands.submissions import size_text

from .fakes import LEARNER_A, LEARNER_B, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts

DUE = "2026-12-04 17:00"
LEARNER_D = "@dan:a.test"
ESSAY = {
    "msgtype": "m.file", "body": "essay.pdf", "filename": "essay.pdf", "url": "mxc://b.test/essay",
    "info": {"mimetype": "application/pdf", "size": 3_000},
}


async def marking_class(h):
    """A1 with Ana's text (first), Ben's file (an hour later); Dan has handed in nothing."""
    c = await classroom(h)
    await h.run(LEARNER_D, SHARED_DM, f"!join {c.klass.code}")
    await h.run(TEACHER_A, c.class_room, f'!assign new "Essay" due {DUE} points 20')
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 Rivers carry *water* to the sea.")
    h.clock.advance(hours=1)
    file_event = h.matrix.post(c.work[LEARNER_B], LEARNER_B, ESSAY)
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1", reply_to=file_event)
    a = await h.repos.assignments.by_number(c.klass.id, 1)
    return c, a


async def test_a_marking_session_grades_skips_and_ends_with_who_has_not_handed_in(harness):
    h = harness
    c, a = await marking_class(h)
    staff = c.staff_room
    out = await h.run(TEACHER_A, staff, "!mark A1")
    first = texts(out)
    assert [m.room_id for m in out] == [staff]
    assert "**A1 — Essay** · 2 to mark\n" in first
    assert f"**{LEARNER_A}** · Kura A (a.test) · version 1 · received Mon 30 Nov 2026, 16:00 NZDT" in first
    assert ": on time (due Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland))" in first
    assert "> Rivers carry *water* to the sea." in first
    assert "`!grade <score> [feedback]` · `!return [note]` · `!skip` · `!mark stop`" in first

    out = await h.run(TEACHER_A, staff, "!skip")
    assert f"Skipped {LEARNER_A}'s work; it stays in the queue." in out[0].markdown
    assert "**A1 — Essay** · 1 to mark (1 skipped)\n" in out[0].markdown
    assert f"**{LEARNER_B}** · Kura B (b.test) · version 1" in out[0].markdown and "File: essay.pdf, 3 KB (below)." in out[0].markdown
    media = out[1].media  # the file again, as its own event pointing at the same media
    assert (media.url, media.name, media.mimetype, media.size, media.msgtype) == (
        "mxc://b.test/essay", "essay.pdf", "application/pdf", 3_000, "m.file",
    )
    assert out[1].room_id == staff and LEARNER_B in out[1].markdown

    out = await h.run(TEACHER_A, staff, "!grade 17 Clear method.")
    to_ben = [m for m in out if m.room_id == c.work[LEARNER_B]]
    assert len(to_ben) == 1 and "your grade is **17/20**" in to_ben[0].markdown and "Clear method." in to_ben[0].markdown
    assert not [m for m in out if m.room_id not in (staff, c.work[LEARNER_B])]
    g = await h.repos.grades.latest(a.id, LEARNER_B)
    assert (g.score, g.max_score, g.version, g.graded_by) == (17, 20, 1, TEACHER_A)
    summary = texts(out, staff)
    assert f"Recorded {LEARNER_B}'s grade for A1" in summary
    assert "Marking **A1 — Essay** is done: 1 graded, 0 returned, 1 skipped." in summary
    assert f"Still to grade: 1 (you skipped {LEARNER_A}); `!mark A1` goes on." in summary
    assert f"Not handed in (1):\n- Kura A (a.test): {LEARNER_D}" in summary
    assert await h.repos.marking.open_in(TEACHER_A, staff) is None

    # a new session goes through what was skipped; a return ends it
    await h.run(TEACHER_A, staff, "!mark A1")
    out = await h.run(TEACHER_A, staff, "!return Needs a conclusion.")
    to_ana = [m for m in out if m.room_id == c.work[LEARNER_A]]
    assert len(to_ana) == 1 and "handed **A1 — Essay** back to you" in to_ana[0].markdown and "Needs a conclusion." in to_ana[0].markdown
    assert "Marking **A1 — Essay** is done: 0 graded, 1 returned, 0 skipped." in texts(out, staff)
    assert (await h.repos.returns.latest(a.id, LEARNER_A)).version == 1


async def test_marking_in_a_direct_message_needs_the_class_code_only_to_start(harness):
    h = harness
    c, a = await marking_class(h)
    dm = "!teacher-dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, TEACHER_A, h.clock.now())
    first = await h.say(TEACHER_A, dm, f"!mark {c.klass.code} A1")
    assert f"**{LEARNER_A}**" in first
    out = await h.run(TEACHER_A, dm, "!grade 16 Good.")
    assert "your grade is **16/20**" in texts(out, c.work[LEARNER_A]) and f"**{LEARNER_B}**" in texts(out, dm)
    assert "Marking **A1 — Essay** stopped: 1 graded" in await h.say(TEACHER_A, dm, "!mark stop")
    assert "Run !skip in one of the class's rooms, or name the class by its code" in await h.say(TEACHER_A, dm, "!skip")


async def test_two_teachers_marking_at_once_never_get_the_same_submission(harness):
    h = harness
    c, a = await marking_class(h)
    await h.run(TEACHER_A, SHARED_DM, f"!class teacher add {TEACHER_B}")
    await h.run(TEACHER_A, c.class_room, f"!class teacher add {TEACHER_B}")
    first = texts(await h.run(TEACHER_A, c.staff_room, "!mark A1"))
    second = texts(await h.run(TEACHER_B, c.staff_room, "!mark A1"))
    assert f"**{LEARNER_A}**" in first and f"**{LEARNER_B}**" not in first
    assert f"**{LEARNER_B}**" in second and f"**{LEARNER_A}**" not in second
    # a third look finds nothing free: the other one is being marked
    await h.run(TEACHER_B, c.staff_room, "!grade 15")
    assert "1 more is being marked by another teacher now." in h.sent[-1].markdown
    # the first teacher grades what they were shown, not what the second graded
    await h.run(TEACHER_A, c.staff_room, "!grade 18")
    assert (await h.repos.grades.latest(a.id, LEARNER_A)).score == 18
    assert (await h.repos.grades.latest(a.id, LEARNER_B)).score == 15


async def test_an_idle_session_lets_go_and_its_grade_is_refused(harness):
    h = harness
    c, a = await marking_class(h)
    await h.run(TEACHER_A, c.class_room, f"!class teacher add {TEACHER_B}")
    await h.run(TEACHER_A, c.staff_room, "!mark A1")  # shows Ana
    h.clock.advance(minutes=31)
    taken = texts(await h.run(TEACHER_B, c.staff_room, "!mark A1"))
    assert f"**{LEARNER_A}**" in taken
    reply = await h.say(TEACHER_A, c.staff_room, "!grade 12")
    assert "went back to the queue" in reply and await h.repos.grades.latest(a.id, LEARNER_A) is None


async def test_mark_again_shows_the_same_and_another_assignment_stops_the_first(harness):
    h = harness
    c, a = await marking_class(h)
    h.clock.advance(hours=1)
    await h.run(LEARNER_B, c.work[LEARNER_B], "!submit A1 Ben's second version.")  # Ben is now the newest
    await h.run(TEACHER_A, c.staff_room, "!mark A1")  # Ana (oldest)
    h.clock.advance(minutes=5)
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 Ana's second version.")  # newer than Ben's
    again = await h.say(TEACHER_A, c.staff_room, "!mark A1")
    assert f"**{LEARNER_A}**" in again and "version 2" in again and "Ana's second version." in again
    await h.run(TEACHER_A, c.class_room, '!assign new "Quiz" due 2026-12-09 09:00 points 5')
    other = await h.say(TEACHER_A, c.staff_room, "!mark A2")
    assert other.startswith("Marking **A1 — Essay** stopped: 0 graded, 0 returned, 0 skipped.")
    assert "**A2 — Quiz** — nothing" not in other and "Marking **A2 — Quiz** is done: 0 graded" in other
    assert "Not handed in (3):" in other


async def test_grade_without_an_assignment_outside_a_session_says_how(harness):
    h = harness
    c, a = await marking_class(h)
    reply = await h.say(TEACHER_A, c.staff_room, "!grade 17 Good")
    assert "!grade needs the assignment (`!grade A1 …`), unless you are marking here: `!mark A1`" in reply
    assert "Usage: `!grade [<assignment>] [@learner] <score>[/<max>] [feedback]`" in reply
    assert "You are not marking anything here." in await h.say(TEACHER_A, c.staff_room, "!mark stop")
    assert "Nothing is shown to you for marking here." in await h.say(TEACHER_A, c.staff_room, "!skip")


async def test_a_new_version_after_it_was_shown_is_not_graded_blind(harness):
    h = harness
    c, a = await marking_class(h)
    await h.run(TEACHER_A, c.staff_room, "!mark A1")  # Ana v1
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 With a conclusion now.")
    reply = await h.say(TEACHER_A, c.staff_room, "!grade 17")
    assert f"{LEARNER_A} has handed in version 2 since I showed you version 1, so nothing was recorded." in reply
    assert await h.repos.grades.latest(a.id, LEARNER_A) is None
    again = await h.say(TEACHER_A, c.staff_room, "!mark A1")
    assert "version 2" in again and "With a conclusion now." in again


async def test_mark_asked_in_the_class_room_opens_in_the_staff_room(harness):
    h = harness
    c, a = await marking_class(h)
    out = await h.run(TEACHER_A, c.class_room, "!mark A1")
    assert [m.room_id for m in out if "Rivers" in m.markdown] == [c.staff_room]
    assert "I've put it in the staff room of Physics 12" in texts(out, c.class_room)
    assert "Rivers" not in texts(out, c.class_room)
    assert await h.repos.marking.open_in(TEACHER_A, c.staff_room) is not None


async def test_submission_on_demand_for_teachers_and_the_learner_herself(harness):
    h = harness
    c, a = await marking_class(h)
    await h.run(LEARNER_A, c.work[LEARNER_A], "!submit A1 Version two.")
    out = await h.run(TEACHER_A, c.staff_room, f"!submission A1 {LEARNER_A} v1")
    assert "version 1 of 2" in out[0].markdown and "> Rivers carry *water* to the sea." in out[0].markdown
    out = await h.run(TEACHER_A, c.class_room, f"!submission A1 {LEARNER_B}")  # asked in public: the staff room gets it
    assert [m.room_id for m in out if "essay.pdf" in m.markdown] == [c.staff_room, c.staff_room]
    assert out[1].media.url == "mxc://b.test/essay"
    mine = await h.run(LEARNER_A, c.work[LEARNER_A], "!submission A1")
    assert "version 2" in mine[0].markdown and "Version two." in mine[0].markdown
    assert "You can see only your own work." in await h.say(LEARNER_A, c.work[LEARNER_A], f"!submission A1 {LEARNER_B}")
    missing = await h.say(TEACHER_A, c.staff_room, f"!submission A1 {LEARNER_A} v7")
    assert f"{LEARNER_A} has no version 7 of A1; there are v1, v2." in missing
    assert f"{LEARNER_D} has handed in nothing for A1." in await h.say(TEACHER_A, c.staff_room, f"!submission A1 {LEARNER_D}")


async def test_work_moved_out_of_the_class_room_is_in_the_work_room(harness):
    h = harness
    c, a = await marking_class(h)
    notes = {**ESSAY, "body": "notes.txt", "filename": "notes.txt", "url": "mxc://a.test/notes", "info": {"mimetype": "text/plain", "size": 560}}
    file_event = h.matrix.post(c.class_room, LEARNER_A, notes)
    out = await h.run(LEARNER_A, c.class_room, "!submit A1 My notes on the Waikato.", reply_to=file_event)
    work = [m for m in out if m.room_id == c.work[LEARNER_A]]
    assert "Recorded: your text (24 characters) and the file notes.txt, 560 bytes." in work[0].markdown
    assert "Your work:\n\n> My notes on the Waikato." in work[0].markdown
    assert (work[1].media.url, work[1].media.name) == ("mxc://a.test/notes", "notes.txt")
    assert not [m for m in out if m.room_id == c.class_room]


@pytest.mark.parametrize(
    "size, shown", [(1, "1 byte"), (560, "560 bytes"), (1023, "1023 bytes"), (1024, "1 KB"), (3_000, "3 KB"), (1_500_000, "1.4 MB")]
)
def test_sizes_under_1_kb_are_in_bytes(size, shown):
    assert size_text(size) == shown


async def test_overview_is_a_picture_with_the_same_in_words(harness):
    from matplotlib import image as mpimg

    h = harness
    c, a = await marking_class(h)
    await h.run(TEACHER_A, c.class_room, '!assign new "Quiz" due 2026-12-01 09:00 points 5')
    await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 17")
    await h.run(TEACHER_A, c.class_room, f"!extend A2 {LEARNER_D} 2026-12-09 09:00")
    h.clock.advance(days=1, hours=20)  # past A2's due time
    out = await h.run(TEACHER_A, c.staff_room, "!overview")
    assert len(out) == 1 and out[0].room_id == c.staff_room
    image = out[0].media
    assert (image.msgtype, image.mimetype, image.name) == ("m.image", "image/png", "overview-PHYS12.png")
    upload = [x for x in h.matrix.actions if x[0] == "upload"][-1]
    assert upload[1:3] == ("overview-PHYS12.png", "image/png") and upload[3] == image.size
    words = out[0].markdown
    assert "**Overview of Physics 12** — 3 learners × 2 assignments" in words
    assert f"- {LEARNER_A} — A1 on time · A2 missing" in words
    assert f"- {LEARNER_D} — A1 not due · A2 extension" in words  # A1 is due on Friday
    assert f"- {LEARNER_B} — A1 graded 17/20 · A2 missing" in words
    assert words.index("**Kura A (a.test)**") < words.index(LEARNER_A) < words.index("**Kura B (b.test)**") < words.index(LEARNER_B)
    png = h.matrix.uploaded[image.url]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert (pixels.shape[1], pixels.shape[0]) == (image.width, image.height)


async def test_a_learners_overview_is_her_own_row_in_her_work_room(harness):
    h = harness
    c, a = await marking_class(h)
    out = await h.run(LEARNER_A, c.class_room, "!overview")
    private = [m for m in out if m.media is not None]
    assert [m.room_id for m in private] == [c.work[LEARNER_A]]
    assert f"- {LEARNER_A} — A1 on time" in private[0].markdown
    assert LEARNER_B not in private[0].markdown and LEARNER_D not in private[0].markdown
    assert "I've put the overview in your work room" in texts(out, c.class_room)


def test_the_drawing_is_a_png_of_sensible_size():
    from matplotlib import image as mpimg

    from commands.overview import Cell, draw

    groups = [("Kura A (a.test)", [("@ana:a.test", [Cell("graded", "17/20"), Cell("missing", "missing")])]),
              ("Kura B (b.test)", [("@ben:b.test", [Cell("late", "late"), Cell("extension", "extension")])])]
    png, width, height = draw("Physics 12", ["A1", "A2"], groups)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[1] == width and pixels.shape[0] == height
    assert 400 <= width <= 3000 and 200 <= height <= 3000
