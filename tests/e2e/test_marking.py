"""Issue 17 end to end: a teacher's evening of marking, on real federating Synapse servers.

One class, taught by school A's teacher (with school B's teacher as a second teacher), with
Ana and Dan on A and Ben and Cara on B (the ``ev`` fixture). For A1, Ana hands in text, Ben a
file, and Cara types `!submit` in the class room (moved to her work room); Dan hands in nothing.
The teacher marks A1 through `!mark` in the staff room with one `!skip` and one `!return`; each
learner sees exactly her own grade or return in her work room. For A2, both teachers run
`!mark` at once and get different submissions. `!overview` arrives as an m.image whose PNG
opens and whose words match the records. A co-author runs programme commands in the
programme's room without its id.

The tests run in file order and build on each other. Run with ``-s`` to see the conversation
(the README's marking session was copied from that output).
"""

from __future__ import annotations

import asyncio
import io
import secrets
from dataclasses import dataclass

import pytest

from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import open_dm

NAME = "Evening 1"
CODE = f"EVE{secrets.randbelow(9000) + 1000}"
ESSAY = b"%PDF-1.4\n% Ben's essay on the Whanganui\n" + b"x" * 3000


def show(who: str, text: str) -> None:
    """Print a line of the conversation (visible with -s)."""
    print(f"\n{who}> " + text.replace("\n", f"\n{' ' * len(who)}  "))


def named(names: set[str]):
    def match(invite: dict) -> bool:
        return any(
            ev.get("type") == "m.room.name" and (ev.get("content") or {}).get("name") in names for ev in invite["state"]
        )

    return match


async def accept(user: MatrixUser, names: set[str], count: int) -> dict[str, str]:
    """Join ``count`` invites to rooms named in ``names``; name → room id."""
    rooms = [await user.wait_invite(named(names), timeout=40) for _ in range(count)]
    await asyncio.gather(*(user.join(r) for r in rooms))
    out = {}
    for r in rooms:
        state = (await user.client.room_get_state(r)).events
        name = next(e["content"]["name"] for e in state if e["type"] == "m.room.name")
        is_space = any(e["type"] == "m.room.create" and e["content"].get("type") == "m.space" for e in state)
        out["space" if is_space else name] = r
    return out


def from_bot(bot_id: str, msgtype: str = "m.notice", has: str = ""):
    def match(ev: dict) -> bool:
        c = ev["content"]
        return ev["type"] == "m.room.message" and ev["sender"] == bot_id and c["msgtype"] == msgtype and has in c["body"]

    return match


@dataclass
class Evening:
    bot_id: str
    teacher: MatrixUser  # school A
    teacher_b: MatrixUser  # school B, second teacher and programme co-author
    ana: MatrixUser  # A
    dan: MatrixUser  # A, hands in nothing
    ben: MatrixUser  # B
    cara: MatrixUser  # B
    teacher_dm: str
    class_room: str
    staff_room: str
    work: dict[str, str]  # learner id → work room


@pytest.fixture(scope="module")
async def ev(cluster, hs_a, hs_b):
    bot_id, teacher, teacher_b = cluster.bot_id, cluster.teacher_a, cluster.teacher_b
    ana, dan = await MatrixUser.create(hs_a, unique_localpart("ana")), await MatrixUser.create(hs_a, unique_localpart("dan"))
    ben, cara = await MatrixUser.create(hs_b, unique_localpart("ben")), await MatrixUser.create(hs_b, unique_localpart("cara"))
    learners = (ana, dan, ben, cara)
    try:
        tdm = await open_dm(teacher, bot_id)
        reply = await teacher.command(tdm, f'!class new "{NAME}" {CODE}')
        assert f"class code **{CODE}**" in reply["body"], reply["body"]
        rooms = await accept(teacher, {NAME, f"{NAME} — staff"}, 3)
        class_room, staff_room = rooms[NAME], rooms[f"{NAME} — staff"]
        reply = await teacher.command(class_room, f"!class teacher add {teacher_b.user_id}")
        assert "now teaches" in reply["body"], reply["body"]
        await accept(teacher_b, {NAME, f"{NAME} — staff"}, 3)

        async def enrol(learner: MatrixUser) -> str:
            dm = await open_dm(learner, bot_id)
            reply = await learner.command(dm, f"!join {CODE}")
            assert f"Welcome to **{NAME}**" in reply["body"], reply["body"]
            got = await accept(learner, {NAME, f"{NAME} — work of {learner.user_id}"}, 3)
            return got[f"{NAME} — work of {learner.user_id}"]

        work = {}
        for learner in learners:  # one at a time: their submissions' order is the queue's
            work[learner.user_id] = await enrol(learner)
        names = {f"{NAME} — work of {u.user_id}" for u in learners}
        for t in (teacher, teacher_b):
            got = await accept(t, names, len(learners))
            assert set(got.values()) == set(work.values())
        yield Evening(bot_id, teacher, teacher_b, ana, dan, ben, cara, tdm, class_room, staff_room, work)
    finally:
        for u in learners:
            await u.close()


async def test_three_submissions_text_a_file_and_one_moved_from_the_class_room(ev):
    reply = await ev.teacher.command(ev.class_room, '!assign new "Rivers essay" due in 14 days points 20')
    show("teacher (class room)", '!assign new "Rivers essay" due in 14 days points 20')
    assert reply["body"].startswith("Posted **A1 — Rivers essay**"), reply["body"]

    text = "Rivers carry *water* and silt to the sea."
    r = await ev.ana.command(ev.work[ev.ana.user_id], f"!submit A1 {text}")
    show("ana (work room)", f"!submit A1 {text}")
    assert "version 1" in r["body"], r["body"]

    file_event = await ev.ben.send_file(ev.work[ev.ben.user_id], ESSAY, "essay.pdf", "application/pdf")
    r = await ev.ben.command(ev.work[ev.ben.user_id], "!submit A1", reply_to=file_event)
    show("ben (work room)", "[essay.pdf]  ← replying to it: !submit A1")
    assert "Recorded: the file essay.pdf, 3 KB." in r["body"], r["body"]

    cara_work = ev.work[ev.cara.user_id]
    mark = ev.cara.mark(cara_work)
    moved = "The Waikato is the longest river in Aotearoa."
    await ev.cara.send(ev.class_room, f"!submit A1 {moved}")
    show("cara (class room)", f"!submit A1 {moved}")
    note = await ev.cara.wait_for(cara_work, from_bot(ev.bot_id, has="Received"), since=mark)
    show("ako (cara's work room)", note["content"]["body"])
    # the work room holds the work itself, with the receipt
    assert f"Your work:\n\n> {moved}" in note["content"]["body"]
    assert "I removed it from there" in note["content"]["body"]


async def test_marking_in_the_staff_room_with_a_skip_and_a_return(ev):
    t, staff = ev.teacher, ev.staff_room
    ana, ben, cara, dan = (u.user_id for u in (ev.ana, ev.ben, ev.cara, ev.dan))

    first = await t.command(staff, "!mark A1")
    show("teacher (staff room)", "!mark A1")
    show("ako", first["body"])
    body = first["body"]
    assert body.startswith("**A1 — Rivers essay** · 3 to mark\n")
    assert f"**{ana}** · Kura A (" in body and "· version 1 · received " in body and ": on time (due " in body
    assert "> Rivers carry *water* and silt to the sea." in body
    assert "<em>water</em>" in first["formatted_body"]  # the text rendered

    mark = t.mark(staff)
    skipped = await t.command(staff, "!skip")
    show("teacher", "!skip")
    show("ako", skipped["body"])
    assert skipped["body"].startswith(f"Skipped {ana}'s work; it stays in the queue.")
    assert "**A1 — Rivers essay** · 2 to mark (1 skipped)\n" in skipped["body"]
    assert f"**{ben}** · Kura B (" in skipped["body"] and "File: essay.pdf, 3 KB (below)." in skipped["body"]
    file_event = await t.wait_for(staff, from_bot(ev.bot_id, "m.file"), since=mark)
    show("ako", f"[m.file {file_event['content']['filename']}: {file_event['content']['body']}]")
    assert file_event["content"]["filename"] == "essay.pdf"
    assert await t.download(file_event["content"]["url"]) == ESSAY  # the same media Ben uploaded

    graded = await t.command(staff, "!grade 17 Clear method; check the units in part 2.")
    show("teacher", "!grade 17 Clear method; check the units in part 2.")
    show("ako", graded["body"])
    assert graded["body"].startswith(f"Recorded {ben}'s grade for A1; the grade and feedback went to their work room only.")
    assert f"**{cara}** · Kura B (" in graded["body"] and "> The Waikato is the longest river in Aotearoa." in graded["body"]

    returned = await t.command(staff, "!return Needs a conclusion.")
    show("teacher", "!return Needs a conclusion.")
    show("ako", returned["body"])
    summary = returned["body"]
    assert summary.startswith(f"Handed A1 back to {cara}; I told them in their work room only.")
    assert "Marking **A1 — Rivers essay** is done: 1 graded, 1 returned, 1 skipped." in summary
    assert f"Still to grade: 1 (you skipped {ana})" in summary
    assert f"Not handed in (1):\n- Kura A ({ev.teacher.hs.server_name}): {dan}" in summary

    # each learner sees exactly her own grade or return, in her own work room
    ben_grade = await ev.ben.wait_for(ev.work[ben], from_bot(ev.bot_id, has="your grade is"), since=0)
    show("ako (ben's work room)", ben_grade["content"]["body"])
    assert "**A1 — Rivers essay** (version 1): your grade is **17/20**" in ben_grade["content"]["body"]
    assert "Clear method; check the units in part 2." in ben_grade["content"]["body"]
    cara_return = await ev.cara.wait_for(ev.work[cara], from_bot(ev.bot_id, has="handed **A1"), since=0)
    show("ako (cara's work room)", cara_return["content"]["body"])
    assert "Needs a conclusion." in cara_return["content"]["body"]
    await asyncio.sleep(1)
    for learner, own in ((ev.ana, None), (ev.ben, "17/20"), (ev.cara, "Needs a conclusion."), (ev.dan, None)):
        events = await learner.messages(ev.work[learner.user_id])
        seen = [str(e["content"].get("body", "")) for e in events if e["type"] == "m.room.message"]
        graded_or_returned = [b for b in seen if "your grade is" in b or "back to you" in b]
        assert len(graded_or_returned) == (0 if own is None else 1), (learner.user_id, graded_or_returned)
        if own:
            assert own in graded_or_returned[0]
        assert not [b for b in seen if "Clear method" in b and learner is not ev.ben]

    # what was skipped comes back in a new session
    again = await t.command(staff, "!mark A1")
    assert f"**{ana}**" in again["body"] and "· 1 to mark\n" in again["body"], again["body"]
    done = await t.command(staff, "!grade 15/20 Good start.")
    show("teacher", "!mark A1 … !grade 15/20 Good start.")
    show("ako", done["body"])
    assert "Marking **A1 — Rivers essay** is done: 1 graded, 0 returned, 0 skipped." in done["body"]

    one = await t.command(staff, f"!submission A1 {ben} v1")
    assert "version 1" in one["body"] and "essay.pdf" in one["body"], one["body"]


async def test_two_teachers_marking_at_once_never_get_the_same_submission(ev):
    r = await ev.teacher.command(ev.class_room, '!assign new "Quick check" due in 7 days points 5')
    assert r["body"].startswith("Posted **A2 — Quick check**"), r["body"]
    for learner, answer in ((ev.ana, "42"), (ev.ben, "41"), (ev.cara, "40")):
        r = await learner.command(ev.work[learner.user_id], f"!submit A2 {answer}")
        assert "version 1" in r["body"], r["body"]
    shown = await asyncio.gather(
        ev.teacher.command(ev.staff_room, "!mark A2"), ev.teacher_b.command(ev.staff_room, "!mark A2")
    )
    whose = []
    for s in shown:
        first_lines = s["body"].splitlines()[1]
        whose.append(next(u.user_id for u in (ev.ana, ev.ben, ev.cara) if f"**{u.user_id}**" in first_lines))
    show("teachers A and B, at once (staff room)", "!mark A2\n" + "\n".join(f"→ {w}" for w in whose))
    assert whose[0] != whose[1]
    # both grade what each was shown; the third goes to whoever asks next
    ra, rb = await asyncio.gather(ev.teacher.command(ev.staff_room, "!grade 4"), ev.teacher_b.command(ev.staff_room, "!grade 5"))
    third = [u.user_id for u in (ev.ana, ev.ben, ev.cara) if u.user_id not in whose][0]
    assert (f"**{third}**" in ra["body"]) != (f"**{third}**" in rb["body"]), (ra["body"], rb["body"])
    last = ev.teacher if f"**{third}**" in ra["body"] else ev.teacher_b
    end = await last.command(ev.staff_room, "!grade 3")
    assert "is done: 2 graded" in end["body"], end["body"]
    gradebook = await ev.teacher.command(ev.staff_room, "!submissions A2")
    assert gradebook["body"].count("graded ") == 3, gradebook["body"]


async def test_overview_is_an_image_whose_words_match_the_records(ev):
    from matplotlib import image as mpimg

    t, staff = ev.teacher, ev.staff_room
    mark = t.mark(staff)
    await t.send(staff, "!overview")
    image = await t.wait_for(staff, from_bot(ev.bot_id, "m.image"), since=mark, timeout=60)
    content = image["content"]
    show("teacher (staff room)", "!overview")
    show("ako", f"[m.image {content['filename']}, {content['info']['w']}×{content['info']['h']}]\n{content['body']}")
    assert content["info"]["mimetype"] == "image/png" and content["filename"] == f"overview-{CODE}.png"
    png = await t.download(content["url"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) == content["info"]["size"]
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert (pixels.shape[1], pixels.shape[0]) == (content["info"]["w"], content["info"]["h"])
    assert 600 <= pixels.shape[1] <= 4000 and 300 <= pixels.shape[0] <= 4000
    with open("/tmp/ako-overview-e2e.png", "wb") as f:  # to look at by eye
        f.write(png)

    words = content["body"]
    assert f"**Overview of {NAME}** — 4 learners × 2 assignments" in words
    # the records, cell by cell, as the teacher's own views give them
    grades = {}
    for line in (await t.command(staff, "!grades"))["body"].splitlines():
        for u in (ev.ana, ev.ben, ev.cara, ev.dan):
            if line.startswith(f"- {u.user_id} — "):
                grades[u.user_id] = line
    assert "A1 15/20" in grades[ev.ana.user_id] and f"- {ev.ana.user_id} — A1 graded 15/20 · A2 graded " in words
    assert "A1 17/20" in grades[ev.ben.user_id] and f"- {ev.ben.user_id} — A1 graded 17/20 · A2 graded " in words
    assert f"- {ev.cara.user_id} — A1 returned · A2 graded " in words
    assert f"- {ev.dan.user_id} — A1 not due · A2 not due" in words
    for u in (ev.ana, ev.ben, ev.cara):
        score = grades[u.user_id].split("A2 ")[1].split(" ")[0]
        assert f"{u.user_id} — A1 " in words and f"A2 graded {score}" in words.split(u.user_id + " — ")[1].splitlines()[0]

    # a learner's overview is her own row, in her work room
    ben_work = ev.work[ev.ben.user_id]
    mark = ev.ben.mark(ben_work)
    await ev.ben.send(ben_work, "!overview")
    mine = await ev.ben.wait_for(ben_work, from_bot(ev.bot_id, "m.image"), since=mark, timeout=60)
    assert f"- {ev.ben.user_id} — A1 graded 17/20" in mine["content"]["body"]
    for other in (ev.ana, ev.cara, ev.dan):
        assert other.user_id not in mine["content"]["body"]


async def test_a_co_author_runs_programme_commands_in_its_room_without_an_id(ev, cluster):
    a, b = ev.teacher, ev.teacher_b
    title = f"Waves {CODE}"
    reply = await a.command(ev.teacher_dm, f'!programme new "{title}"')
    pid = reply["body"].split("**")[1].split(" — ")[0]
    room = await a.wait_invite(named({f"{title} — programme {pid}"}), timeout=30)
    await a.join(room)
    added = await a.command(room, f"!programme author add {b.user_id}")
    show("teacher A (programme room)", f"!programme author add {b.user_id}")
    show("ako", added["body"])
    assert added["body"] == f"**{pid} v2** · {a.user_id} added {b.user_id} as an author"
    await b.join(await b.wait_invite(named({f"{title} — programme {pid}"}), timeout=30))
    item = await b.command(room, '!programme add "Wave tank lab" due week 1 fri 17:00 points 10')
    show("teacher B (programme room)", '!programme add "Wave tank lab" due week 1 fri 17:00 points 10')
    show("ako", item["body"])
    assert item["body"] == f"**{pid} v3** · {b.user_id} added I1 “Wave tank lab” — assignment, due week 1 fri 17:00, 10 points"
    shown = await b.command(room, "!programme show")
    assert f"**{pid} — {title}** · version 3" in shown["body"] and "**I1 Wave tank lab**" in shown["body"]
    missing = await b.command(room, "!programme remove I4")
    assert "has no item I4; its items are I1." in missing["body"], missing["body"]
