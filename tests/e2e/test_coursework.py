"""Issue 3 end to end: assignments, private submissions, grading and exports, on three real
federating Synapse servers with the bot as a process.

One class (code CWK1) taught by school A's teacher, with a learner on B (Ben) and one on A
(Ana), is shared by the whole module (the ``cw`` fixture), which also posts A1. No test relies
on another: a test that hands in, grades or checks lateness posts its own assignment first
(``post``), and nothing hands in A1, so any order, or any one test alone, gives the same result.

Time: the bot reads times with its own clock (the same machine's clock as this process), and
past due times are refused by the When converter, so lateness cannot be faked by editing an
assignment into the past. The lateness test's assignment is therefore posted due "8 seconds from now" with its cutoff
"16 seconds from now" (plain date text the bot parses like any other) and the test sleeps past
each moment: about 17 s of waiting in all, once.

Run with ``-s`` to see the replies (the ``show`` helper prints them; the README example
session was copied from that output).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from tests.matrix_user import MatrixError, MatrixUser

from .helpers import accept, class_with_ana_and_ben, join_invite, open_dm

CODE = "CWK1"
NAME = "Coursework 1"
OTHER_CODE = "CWK1B"
OTHER_NAME = "Coursework B"
NZ = ZoneInfo("Pacific/Auckland")
A1_TITLE = "Rivers essay"
FEEDBACK = "Clear method; check the units in part 2."


def show(who: str, text: str) -> None:
    """Print a line of the conversation (visible with -s)."""
    print(f"\n{who}> " + text.replace("\n", f"\n{' ' * len(who)}  "))


def from_bot(bot_id: str, msgtype: str = "m.notice"):
    def match(ev: dict) -> bool:
        return ev["type"] == "m.room.message" and ev["sender"] == bot_id and ev["content"]["msgtype"] == msgtype

    return match


@dataclass
class Coursework:
    bot_id: str
    teacher: MatrixUser
    ben: MatrixUser  # learner on school B
    ana: MatrixUser  # learner on school A
    teacher_dm: str
    class_room: str
    staff_room: str
    ben_work: str
    ana_work: str
    a1_due: datetime
    a1_reply: dict
    a1_post: dict


@pytest.fixture(scope="module")
async def cw(cluster, hs_a, hs_b):
    bot_id = cluster.bot_id
    async with class_with_ana_and_ben(cluster, hs_a, hs_b, NAME, CODE) as k:
        teacher, class_room = k.teacher, k.class_room
        # A1, due in about two weeks at 17:00 in the class's zone, with a markdown description
        day = (datetime.now(NZ) + timedelta(days=14)).date()
        due = datetime(day.year, day.month, day.day, 17, 0, tzinfo=NZ)
        mark = teacher.mark(class_room)
        command = (
            f'!assign new "{A1_TITLE}" due {day.isoformat()} 17:00 points 20\n'
            "Write **500 words** about a river near *your* school.<script>alert(1)</script>"
        )
        a1_reply = await teacher.command(class_room, command)
        show("teacher", command)
        show("ako", a1_reply["body"])
        post = await teacher.wait_for(
            class_room, lambda e: from_bot(bot_id)(e) and "Hand it in" in e["content"]["body"], since=mark
        )
        show("ako (class room)", post["content"]["body"])
        yield Coursework(
            bot_id, teacher, k.ben, k.ana, k.teacher_dm, class_room, k.staff_room, k.ben_work, k.ana_work, due, a1_reply,
            {**post["content"], "event_id": post["event_id"]},
        )


async def post(cw: Coursework, title: str, due: str | None = None, points: int = 20) -> tuple[str, datetime | None]:
    """Post an assignment of the test's own in the class room: (its id, its due moment). Due by
    default in two weeks at 17:00 in the class's zone."""
    when = None
    if due is None:
        day = (datetime.now(NZ) + timedelta(days=14)).date()
        when = datetime(day.year, day.month, day.day, 17, 0, tzinfo=NZ)
        due = f"{day.isoformat()} 17:00"
    reply = await cw.teacher.command(cw.class_room, f'!assign new "{title}" due {due} points {points}')
    found = re.match(rf"Posted \*\*(A\d+) — {re.escape(title)}\*\*", reply["body"])
    assert found, reply["body"]
    return found.group(1), when


def nz_text(moment: datetime) -> str:
    """How the bot is expected to write a moment: 'Mon 14 Dec 2026, 17:00 NZDT (Pacific/Auckland)'."""
    local = moment.astimezone(NZ)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} (Pacific/Auckland)"


# --- assignments


async def test_assignment_posted_in_class_room_with_state_event(cw):
    due_text = nz_text(cw.a1_due)
    assert cw.a1_reply["body"].startswith(f"Posted **A1 — {A1_TITLE}** in the class room, due {due_text}.")
    post = cw.a1_post
    assert post["body"].startswith(f"**A1 — {A1_TITLE}** · 20 points\nDue **{due_text}**")
    assert "Pacific/Auckland" in post["body"]
    # the description is rendered markdown, sanitised: no script survives
    html = post["formatted_body"]
    assert "<strong>500 words</strong>" in html and "<em>your</em>" in html
    assert "<script" not in html
    # the class room holds the assignment as a state event, on A's server and on B's
    for user in (cw.teacher, cw.ben):
        resp = await user.client.room_get_state_event(cw.class_room, "nz.ako.assignment", "A1")
        content = getattr(resp, "content", None)
        assert isinstance(content, dict), (user, resp)
        assert content["id"] == "A1" and content["title"] == A1_TITLE and content["points"] == 20
        assert content["timezone"] == "Pacific/Auckland" and content["class"] == CODE
        assert datetime.fromisoformat(content["due"]) == cw.a1_due
    # learners see it too, with their own status
    listing = await cw.ben.command(cw.ben_work, "!assignments")
    assert f"A1 — {A1_TITLE}" in listing["body"] and "not submitted yet" in listing["body"]


async def test_assign_edit_changes_one_thing_per_command_as_the_spec_writes_it(cw):
    """SPEC §3: `!assign edit A1 due|cutoff|points|title <value>`. Typed in the staff room, the class
    room is told and the assignment's state event follows, on B's server too."""
    aid, _ = await post(cw, "Edited lab")
    mark = cw.ben.mark(cw.class_room)
    done = await cw.teacher.command(cw.staff_room, f"!assign edit {aid} points 25")
    assert done["body"] == f"**{aid} — Edited lab** is now out of 25 points.", done["body"]
    await cw.ben.wait_for(
        cw.class_room, lambda e: from_bot(cw.bot_id)(e) and e["content"]["body"] == f"**{aid}** is now out of 25 points.", since=mark
    )
    for _ in range(50):  # the state event went before that message; B may still be taking it in
        content = getattr(await cw.ben.client.room_get_state_event(cw.class_room, "nz.ako.assignment", aid), "content", {})
        if content.get("points") == 25:
            break
        await asyncio.sleep(0.2)
    assert content.get("points") == 25, content
    # discord.py's order is read too
    renamed = await cw.teacher.command(cw.staff_room, f"!assign edit title {aid} Edited lab, second try")
    assert renamed["body"] == f"**{aid} — Edited lab, second try** is now called “Edited lab, second try”.", renamed["body"]
    # two changes in one command: the two commands to send instead, and nothing changed
    both = await cw.teacher.command(cw.staff_room, f"!assign edit {aid} points 30 title Other")
    assert both["body"].startswith("One change per command:"), both["body"]
    assert f"!assign edit {aid} points 30" in both["body"] and f"!assign edit {aid} title Other" in both["body"], both["body"]
    # no field: the four, with their usage
    bare = await cw.teacher.command(cw.staff_room, f"!assign edit {aid}")
    assert "needs one of: due, cutoff, points, title" in bare["body"], bare["body"]
    shown = await cw.teacher.command(cw.staff_room, f"!assign show {aid}")
    assert "Edited lab, second try" in shown["body"] and "25 points" in shown["body"], shown["body"]


# --- submissions


async def test_learner_on_b_submits_text_then_a_file_as_reply(cw):
    ben = cw.ben
    aid, due = await post(cw, "Rivers essay, drafts")
    title = f"{aid} — Rivers essay, drafts"
    command = f"!submit {aid} Rivers carry water to the sea."
    r1 = await ben.command(cw.ben_work, command)
    show("ben", command)
    show("ako", r1["body"])
    assert r1["body"].startswith(f"Received **{title}**, version 1, at ")
    assert f"on time (due {nz_text(due)})" in r1["body"]
    assert "Recorded: your text (" in r1["body"]

    data = b"%PDF-1.4\n% Ben's essay\n" + b"x" * 3000
    file_event = await ben.send_file(cw.ben_work, data, "essay.pdf", "application/pdf")
    r2 = await ben.command(cw.ben_work, f"!submit {aid}", reply_to=file_event)
    show("ben", f"[essay.pdf]  ← replying to it: !submit {aid}")
    show("ako", r2["body"])
    assert r2["body"].startswith(f"Received **{title}**, version 2, at ")
    assert "on time" in r2["body"] and "Recorded: the file essay.pdf, 3 KB." in r2["body"]

    # the teacher's view: v2, with the file
    listing = await cw.teacher.command(cw.staff_room, f"!submissions {aid}")
    show("teacher (staff room)", f"!submissions {aid}")
    show("ako", listing["body"])
    body = listing["body"]
    assert "**Kura B (" in body and "**Kura A (" in body
    assert f"{ben.user_id} — submitted v2, on time — essay.pdf" in body, body


async def test_other_learner_cannot_read_the_work_room(cw):
    with pytest.raises(MatrixError) as caught:
        await cw.ana.messages(cw.ben_work)
    assert caught.value.errcode == "M_FORBIDDEN"
    resp = await cw.ana.client.join(cw.ben_work)
    assert getattr(resp, "status_code", None) == "M_FORBIDDEN"


async def test_submit_in_class_room_is_redacted_and_recorded_privately(cw):
    ana, teacher = cw.ana, cw.teacher
    aid, _ = await post(cw, "Field notes")
    secret = "My answer about the Waikato, typed in the wrong room."
    work_mark = ana.mark(cw.ana_work)
    sent = await ana.send(cw.class_room, f"!submit {aid} {secret}")
    show("ana (class room)", f"!submit {aid} {secret}")

    # recorded privately: the receipt comes in Ana's work room, with the reason
    note = await ana.wait_for(cw.ana_work, from_bot(cw.bot_id), since=work_mark)
    show("ako (ana's work room)", note["content"]["body"])
    body = note["content"]["body"]
    assert "You ran `!submit` in the class room" in body and "I removed it" in body
    assert f"Received **{aid} — Field notes**, version 1" in body and "on time" in body
    assert note["content"]["m.mentions"] == {"user_ids": [ana.user_id]}

    # redacted in the class room: as the teacher's server gives it, and on B's server for Ben
    def redacts(ev: dict, event_id: str = sent) -> bool:
        return ev["type"] == "m.room.redaction" and event_id in (ev.get("redacts"), ev["content"].get("redacts"))

    redaction = await teacher.wait_for(cw.class_room, redacts, since=0)
    assert redaction["sender"] == cw.bot_id
    resp = await teacher.client.room_get_event(cw.class_room, sent)
    event = resp.event.source
    assert event["unsigned"].get("redacted_because", {}).get("event_id") == redaction["event_id"]
    assert event["content"] == {}
    await cw.ben.wait_for(cw.class_room, redacts, since=0)
    seen = json.dumps(await cw.ben.messages(cw.class_room))
    assert "Waikato" not in seen
    # and the bot said nothing about it in the class room
    assert not [n for n in teacher.notices(cw.class_room) if "Waikato" in n["body"] or "Received" in n["body"]]

    # a file dropped in the class room and handed in by replying to it: both leave the class room
    work_mark = ana.mark(cw.ana_work)
    file_event = await ana.send_file(cw.class_room, b"Waikato notes\n" * 40, "notes.txt", "text/plain")
    command = await ana.send(cw.class_room, f"!submit {aid}", reply_to=file_event)
    note = await ana.wait_for(cw.ana_work, from_bot(cw.bot_id), since=work_mark)
    assert f"Received **{aid} — Field notes**, version 2" in note["content"]["body"]
    assert "Recorded: the file notes.txt, 560 bytes." in note["content"]["body"]
    for event_id in (file_event, command):
        await teacher.wait_for(cw.class_room, lambda ev, i=event_id: redacts(ev, i), since=0)
        resp = await teacher.client.room_get_event(cw.class_room, event_id)
        assert resp.event.source["content"] == {} and "redacted_because" in resp.event.source["unsigned"]

    listing = await teacher.command(cw.staff_room, f"!submissions {aid}")
    assert f"{ana.user_id} — submitted v2, on time — notes.txt" in listing["body"], listing["body"]


async def test_late_after_due_refused_after_cutoff_and_extension_on_time(cw):
    teacher, ben, ana = cw.teacher, cw.ben, cw.ana
    # it falls due 8 s after the bot reads the command, with its cutoff 16 s after (see the docstring)
    aid, _ = await post(cw, "Quick check", "8 seconds from now cutoff 16 seconds from now", points=5)
    answered = time.monotonic()
    # an extension granted before the due time
    mark = ben.mark(cw.ben_work)
    ext = await teacher.command(cw.class_room, f"!extend {aid} {ben.user_id} in 2 hours")
    assert f"{ben.user_id} now has until " in ext["body"] and "I've told them in their work room" in ext["body"]
    told = await ben.wait_for(cw.ben_work, lambda e: from_bot(cw.bot_id)(e) and "extension" in e["content"]["body"], since=mark)
    assert f"You have an extension on **{aid} — Quick check**" in told["content"]["body"]
    show("teacher", f"!extend {aid} {ben.user_id} in 2 hours")
    show("ako", ext["body"])
    show("ako (ben's work room)", told["content"]["body"])

    await asyncio.sleep(max(0.0, answered + 8.5 - time.monotonic()))
    late = await ana.command(cw.ana_work, f"!submit {aid} The answer is 42.")
    show("ana", f"!submit {aid} The answer is 42.")
    show("ako", late["body"])
    assert "version 1" in late["body"] and "**late by less than a minute**" in late["body"], late["body"]
    with_ext = await ben.command(cw.ben_work, f"!submit {aid} The answer is 41.")
    show("ben", f"!submit {aid} The answer is 41.")
    show("ako", with_ext["body"])
    assert "version 1" in with_ext["body"] and ": on time (due " in with_ext["body"], with_ext["body"]

    await asyncio.sleep(max(0.0, answered + 16.5 - time.monotonic()))
    refused = await ana.command(cw.ana_work, f"!submit {aid} Actually, 43.")
    show("ana", f"!submit {aid} Actually, 43.")
    show("ako", refused["body"])
    assert refused["body"].startswith(f"The cutoff for {aid} was ") and "nothing was recorded" in refused["body"]
    mine = await ana.command(cw.ana_work, "!mywork")
    show("ana", "!mywork")
    show("ako", mine["body"])
    assert f"**{aid} — Quick check**" in mine["body"] and "submitted v1, late by" in mine["body"], mine["body"]
    # past the class's cutoff, Ben's extension still lets him hand in, on time
    after = await ben.command(cw.ben_work, f"!submit {aid} The answer is 42.")
    assert "version 2" in after["body"] and ": on time (due " in after["body"], after["body"]

    # an extension granted afterwards makes Ana's late work on time in the teacher's view
    await teacher.command(cw.class_room, f"!extend {aid} {ana.user_id} in 2 hours")
    listing = await teacher.command(cw.staff_room, f"!submissions {aid}")
    line = next(x for x in listing["body"].splitlines() if x.startswith(f"- {ana.user_id}"))
    assert "submitted v1, on time" in line and "extension to " in line, line


# --- grading


async def graded(cw: Coursework, title: str) -> tuple[str, dict]:
    """An assignment of the test's own that Ben has handed in (once) and the teacher graded 17/20
    with FEEDBACK, in Ben's work room: (its id, the grade notice)."""
    aid, _ = await post(cw, title)
    receipt = await cw.ben.command(cw.ben_work, f"!submit {aid} Rivers carry water to the sea.")
    assert f"Received **{aid} — {title}**, version 1" in receipt["body"], receipt["body"]
    command = f"!grade {aid} 17/20 {FEEDBACK}"
    done = await cw.teacher.command(cw.ben_work, command)
    show("teacher (ben's work room)", command)
    show("ako", done["body"])
    return aid, done


async def test_teacher_grades_and_only_the_learner_sees_it(cw):
    teacher, ben, ana = cw.teacher, cw.ben, cw.ana
    aid, done = await graded(cw, "Graded essay")
    expected = f"**{aid} — Graded essay** (version 1): your grade is **17/20**, from {teacher.user_id}.\n\n{FEEDBACK}"
    assert done["body"] == expected
    # Ben sees exactly that, in his work room, addressed to him
    seen = await ben.wait_for(cw.ben_work, lambda e: e["event_id"] == done["event_id"], since=0)
    assert seen["content"]["body"] == expected
    assert seen["content"]["m.mentions"] == {"user_ids": [ben.user_id]}
    mine = await ben.command(cw.ben_work, "!grades")
    show("ben", "!grades")
    show("ako", mine["body"])
    assert f"**{aid} — Graded essay**: **17/20**" in mine["body"] and f"> {FEEDBACK}" in mine["body"]

    # nowhere Ana can read holds the grade or the feedback: every room she is in, as her server gives it
    await asyncio.sleep(1)
    rooms = list(ana.client.rooms)
    assert cw.class_room in rooms and cw.ana_work in rooms
    for room in rooms:
        text = json.dumps(await ana.messages(room, limit=500)) + json.dumps(ana.timeline(room))
        assert "17/20" not in text and FEEDBACK not in text and "part 2" not in text, room
    class_text = json.dumps(await teacher.messages(cw.class_room, limit=500))
    assert "17/20" not in class_text and FEEDBACK not in class_text


async def test_grade_refused_to_a_learner_and_to_a_user_on_c(cw, new_user, hs_c):
    aid, _ = await graded(cw, "Graded once")
    refused = await cw.ana.command(cw.ana_work, f"!grade {aid} {cw.ben.user_id} 20/20")
    assert refused["body"] == f"Only a teacher of {NAME} can use !grade."
    refused = await cw.ben.command(cw.ben_work, f"!grade {aid} 20/20 Perfect!")
    assert refused["body"] == f"Only a teacher of {NAME} can use !grade."

    carl = await new_user(hs_c, "carlcw")
    group = await cw.teacher.client.room_create(name="Coursework mixed room", invite=[cw.bot_id, carl.user_id])
    await join_invite(carl, group.room_id)
    await cw.teacher.wait_for(group.room_id, lambda e: e["type"] == "m.room.member" and e["state_key"] == cw.bot_id
                              and e["content"]["membership"] == "join", since=0, timeout=30)
    refused = await carl.command(group.room_id, f"!grade {CODE} {aid} {cw.ben.user_id} 20/20")
    show("carl (school C)", f"!grade {CODE} {aid} {cw.ben.user_id} 20/20")
    show("ako", refused["body"])
    # private by content, and Ako has no private room with a user of a server of no school: nothing of it is said
    assert refused["body"] == (
        f"I removed a message from {carl.user_id}: `!grade` is answered only in private, and I have no private room with them."
    )
    # nothing changed
    grades = await cw.ben.command(cw.ben_work, "!grades")
    assert f"**{aid} — Graded once**: **17/20**" in grades["body"] and "20/20" not in grades["body"]


# --- exports


async def wait_file(user: MatrixUser, room: str, bot_id: str, filename: str, since: int) -> dict:
    ev = await user.wait_for(
        room, lambda e: from_bot(bot_id, "m.file")(e) and e["content"]["body"] == filename, since=since
    )
    return ev["content"]


async def test_grades_csv_goes_to_the_teachers_dm_and_downloads(cw):
    teacher = cw.teacher
    aid, _ = await graded(cw, "Graded for the book")
    mark = teacher.mark(cw.teacher_dm)
    reply = await teacher.command(cw.class_room, "!export grades")
    show("teacher (class room)", "!export grades")
    show("ako", reply["body"])
    assert reply["body"] == f"I've sent grades-{CODE}.csv to our direct message."
    file = await wait_file(teacher, cw.teacher_dm, cw.bot_id, f"grades-{CODE}.csv", mark)
    assert file["url"].startswith("mxc://") and file["info"]["mimetype"] == "text/csv"
    data = await teacher.download(file["url"])  # authenticated media API
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    ben = next(r for r in rows if r["learner"] == "'" + cw.ben.user_id)  # ids start with @: guarded as formulas
    assert ben["school"] == "Kura B" and ben[f"{aid} Graded for the book score"] == "17" and ben[f"{aid} out of"] == "20"
    assert ben[f"{aid} late"] == "no"
    ana = next(r for r in rows if r["learner"] == "'" + cw.ana.user_id)
    assert ana["school"] == "Kura A" and ana[f"{aid} Graded for the book score"] == ""
    # a learner may not export grades
    refused = await cw.ben.command(cw.ben_work, "!export grades")
    assert "Only a teacher of" in refused["body"]


async def test_calendar_export_parses_with_due_dates_in_auckland(cw):
    teacher = cw.teacher
    mark = teacher.mark(cw.teacher_dm)
    reply = await teacher.command(cw.class_room, "!export calendar")
    assert reply["body"] == f"I've sent due-dates-{CODE}.ics to our direct message."
    file = await wait_file(teacher, cw.teacher_dm, cw.bot_id, f"due-dates-{CODE}.ics", mark)
    cal = icalendar.Calendar.from_ical(await teacher.download(file["url"]))
    events = {str(e["summary"]).split()[0]: e for e in cal.walk("VEVENT")}
    # one event for each of the class's assignments, as the class's own listing gives them
    listing = await teacher.command(cw.class_room, "!assignments")
    assert set(events) == set(re.findall(r"\*\*(A\d+) — ", listing["body"])) and "A1" in events, (set(events), listing["body"])
    start = events["A1"]["dtstart"]
    assert start.params["TZID"] == "Pacific/Auckland"
    assert start.dt == cw.a1_due and start.dt.utcoffset() == cw.a1_due.utcoffset()
    assert start.dt.astimezone(timezone.utc) == cw.a1_due.astimezone(timezone.utc)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Pacific/Auckland"]


# --- sharing across schools


async def test_assign_copy_into_a_class_taught_from_school_b(cluster, cw):
    teacher_b, teacher = cluster.teacher_b, cw.teacher
    bdm = await open_dm(teacher_b, cw.bot_id)
    reply = await teacher_b.command(bdm, f'!class new "{OTHER_NAME}" {OTHER_CODE}')
    assert f"class code **{OTHER_CODE}**" in reply["body"], reply["body"]
    other_room = (await accept(teacher_b, {OTHER_NAME, f"{OTHER_NAME} — staff"}, 3)).one("class")

    # before teacher A teaches both, the copy is refused
    refused = await teacher.command(cw.class_room, f"!assign copy A1 {OTHER_CODE}")
    assert refused["body"] == f"Only a teacher of both {NAME} and {OTHER_NAME} can copy assignments between them."

    added = await teacher_b.command(other_room, f"!class teacher add {teacher.user_id}")
    assert f"{teacher.user_id} now teaches {OTHER_NAME}" in added["body"], added["body"]
    # teacher A takes up the invitations (this also leaves no stray invites for later modules)
    assert (await accept(teacher, {OTHER_NAME, f"{OTHER_NAME} — staff"}, 3)).one("class") == other_room
    mark = teacher_b.mark(other_room)
    command = f"!assign copy A1 {OTHER_CODE}"
    copied = await teacher.command(cw.class_room, command)
    show("teacher", command)
    show("ako", copied["body"])
    assert copied["body"] == (
        f"Copied A1 into {OTHER_NAME} ({OTHER_CODE}) as **A1**, due {nz_text(cw.a1_due)}; posted in its class room."
    ), copied["body"]
    post = await teacher_b.wait_for(other_room, from_bot(cw.bot_id), since=mark)
    assert post["content"]["body"].startswith(f"**A1 — {A1_TITLE}** · 20 points")
    assert "<strong>500 words</strong>" in post["content"]["formatted_body"]
    for user in (teacher_b, teacher):  # school B's server holds it, and school A's
        resp = await user.client.room_get_state_event(other_room, "nz.ako.assignment", "A1")
        assert resp.content["class"] == OTHER_CODE and resp.content["title"] == A1_TITLE
    listing = await teacher_b.command(other_room, "!assignments")
    assert f"**A1 — {A1_TITLE}**" in listing["body"]
