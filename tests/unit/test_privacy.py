"""A learner's own data (issue 6, SPEC §4 "Privacy"): `!export me`, `!forget`, and the outbox's
record of whom each message was about."""

from __future__ import annotations

import json

import pytest

from bot import render
from commands.context import Message
from storage import db as storage_db
from storage.db import Database
from storage.privacy import FORGOTTEN, KEPT

from .conftest import NOW
from .fakes import ADMIN_A, ADMIN_B, LEARNER_A, LEARNER_B, OPERATOR, TEACHER_A, classroom, texts

SECRET_A, SECRET_B = "Ana's essay about the Waikato", "Ben's essay about the Rhine"
FEEDBACK_A = "Ana: strong start, weak ending"
ANA_DM = "!ana-dm:a.test"


async def coursework(h):
    """A class with Ana (A) and Ben (B), each with work, a grade and feedback; Ana has more."""
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, '!assign new "Essay" due friday 5pm points 20\nWrite.')
    await h.run(LEARNER_A, c.work[LEARNER_A], f"!submit A1 {SECRET_A}")
    await h.run(LEARNER_B, c.work[LEARNER_B], f"!submit A1 {SECRET_B}")
    await h.run(TEACHER_A, c.work[LEARNER_A], f"!grade A1 13/20 {FEEDBACK_A}")
    await h.run(TEACHER_A, c.work[LEARNER_B], "!grade A1 15/20 Ben: good")
    await h.run(TEACHER_A, c.staff_room, "!submissions A1")
    await h.run(TEACHER_A, c.class_room, "!extend A1 @ana:a.test in 9 days")
    await h.run(TEACHER_A, c.class_room, "!return A1 @ana:a.test Add a conclusion")
    await h.repos.rooms.add(ANA_DM, "dm", None, LEARNER_A, NOW)
    assert "R1" in await h.say(LEARNER_A, ANA_DM, "!remindme in 2 days revise")
    return c


async def test_the_forget_plan_covers_every_table_with_user_ids(db):
    """A new table with a user id column must say how !forget reaches it (storage/privacy.py)."""
    missing = []
    for table, columns in (await db_personal(db)).items():
        for column in columns:
            if (table, column) not in FORGOTTEN and (table, column) not in KEPT:
                missing.append(f"{table}.{column}")
    assert not missing, (
        f"{missing} hold user ids but storage/privacy.py does not say whether !forget deletes them "
        "(FORGOTTEN) or why they stay (KEPT)"
    )


async def db_personal(db):
    from storage.privacy import PersonalData

    return await PersonalData(db).user_tables()


async def test_outbox_records_whom_each_message_is_about(h):
    c = await classroom(h)
    before = {m.id for u in (LEARNER_A, LEARNER_B) for m in await h.repos.outbox.about(u)}  # their records in the rooms
    await h.repos.outbox.put(c.staff_room, "m.room.message", render.content_for(Message(c.staff_room, f"Ask {LEARNER_B}.")), NOW)
    await h.repos.outbox.put(c.class_room, "m.room.message", render.content_for(Message(c.class_room, "hi", (LEARNER_A,))), NOW)
    await h.repos.outbox.put(c.work[LEARNER_B], "m.room.message", render.content_for(Message(c.work[LEARNER_B], "Received.")), NOW)
    about_b = {m.room_id for m in await h.repos.outbox.about(LEARNER_B) if m.id not in before}
    about_a = {m.room_id for m in await h.repos.outbox.about(LEARNER_A) if m.id not in before}
    assert c.staff_room in about_b and c.work[LEARNER_B] in about_b and c.class_room not in about_b
    assert c.class_room in about_a and c.staff_room not in about_a


async def test_export_me_gives_a_learner_everything_about_them_and_nothing_about_others(h):
    c = await coursework(h)
    h.sent.clear()
    out = await h.run(LEARNER_A, c.class_room, "!export me")
    files = [m for m in out if m.file]
    assert len(files) == 1 and files[0].room_id != c.class_room
    assert files[0].room_id == ANA_DM
    data = json.loads(files[0].file[0])
    dumped = json.dumps(data)
    assert data["user_id"] == LEARNER_A
    assert SECRET_A in dumped and FEEDBACK_A in dumped and "Add a conclusion" in dumped and "revise" in dumped
    assert SECRET_B not in dumped and "Ben: good" not in dumped and LEARNER_B not in dumped
    records = data["records"]
    assert {"class_members", "submissions", "grades", "returns", "extensions", "reminders", "rooms"} <= set(records)
    assert records["grades"][0]["score"] == 13 and data["classes"][0]["code"] == "PHYS12"
    assert data["messages_about_you"], "the bot's messages about the learner are listed"
    assert "I've sent" in texts(out, c.class_room) and SECRET_A not in texts(out, c.class_room)


async def test_forget_deletes_every_record_and_redacts_the_bots_events_about_the_learner(h):
    c = await coursework(h)
    sent = await h.deliver()
    dm = "!admin-a-dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, ADMIN_A, NOW)
    about_ana = {m.event_id for m in await h.repos.outbox.about(LEARNER_A, [c.work[LEARNER_A]])}
    about_ben = {m.event_id for m in await h.repos.outbox.about(LEARNER_B, [c.work[LEARNER_B]])}
    assert about_ana and about_ben
    her_work = {(await h.repos.submissions.latest(1, LEARNER_A)).source_event_id}
    ask = await h.say(ADMIN_A, dm, f"!forget {LEARNER_A}")
    assert "cannot be undone" in ask and "!confirm" in ask
    assert await h.repos.classes.role_of(c.klass.id, LEARNER_A) == "learner", "nothing happens before !confirm"
    h.matrix.actions.clear()
    done = await h.say(ADMIN_A, dm, "!confirm")
    assert f"Forgot {LEARNER_A}" in done and "What I cannot delete" in done

    # the database holds nothing about Ana but the record of this very request
    for table, columns in (await db_personal(h.db)).items():
        for column in columns:
            if (table, column) in KEPT:
                continue
            left = await h.db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (LEARNER_A,))
            assert left == 0, f"{table}.{column} still names Ana"
    rows = await h.db.fetchall("SELECT room_id, event_type, content, sent_at FROM outbox")
    # the kicks and redactions that carry the forgetting out must name her; they are still to be sent
    assert all(r["sent_at"] is None for r in rows if r["event_type"] != "m.room.message" and LEARNER_A in r["content"])
    leftovers = [r["room_id"] for r in rows if r["event_type"] == "m.room.message" and (
        LEARNER_A in r["content"] or SECRET_A in r["content"] or FEEDBACK_A in r["content"])]
    assert set(leftovers) <= {dm}, leftovers  # only the admin's question and answer about the request
    assert await h.repos.rooms.work_room(c.klass.id, LEARNER_A) is None
    assert set(await h.repos.submissions.latest_of_assignment(1)) == {LEARNER_B}

    # the bot's events about Ana are redacted, and her own submissions; Ben's are untouched
    redacted = {event for _, event in h.matrix.redactions()}
    assert about_ana <= redacted
    assert not (about_ben - about_ana) & redacted
    assert her_work <= redacted, "her !submit in her work room is redacted too"
    kicked = {(a[1], a[2]) for a in h.matrix.actions if a[0] == "kick"}
    assert (c.class_room, LEARNER_A) in kicked and (c.work[LEARNER_A], LEARNER_A) in kicked
    assert ("leave", c.work[LEARNER_A]) in h.matrix.actions

    # Ben's work and grade are as they were
    assert (await h.repos.grades.latest(1, LEARNER_B)).score == 15
    assert (await h.repos.submissions.latest(1, LEARNER_B)).text == SECRET_B
    assert sent  # (the events were sent before)


@pytest.mark.parametrize(
    "who, target, refusal",
    [
        (ADMIN_B, LEARNER_A, "Only a school admin of a.test"),  # another school's admin
        (LEARNER_B, LEARNER_A, "Only a school admin"),  # a learner
        (TEACHER_A, LEARNER_A, "Only a school admin"),  # a teacher
        (ADMIN_A, TEACHER_A, "is staff"),  # staff are removed as staff first
        (OPERATOR, OPERATOR, "runs this Ako"),
        (ADMIN_A, "@nobody:a.test", "I hold nothing"),
    ],
)
async def test_forget_is_refused_to_everyone_else(h, who, target, refusal):
    c = await coursework(h)
    dm = f"!dm-{who}:a.test"
    await h.repos.rooms.add(dm, "dm", None, who, NOW)
    answer = await h.say(who, dm, f"!forget {target}")
    assert refusal in answer, answer
    assert "!confirm" not in answer
    assert await h.repos.classes.role_of(c.klass.id, LEARNER_A) == "learner"


async def test_an_operator_may_forget_anyone_but_a_confirmation_is_the_askers_own(h):
    c = await coursework(h)
    dm = "!op-dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, OPERATOR, NOW)
    await h.say(OPERATOR, dm, f"!forget {LEARNER_B}")
    assert "nothing waiting" in await h.say(ADMIN_A, dm, "!confirm")  # someone else's !confirm does nothing
    assert await h.repos.classes.role_of(c.klass.id, LEARNER_B) == "learner"
    assert f"Forgot {LEARNER_B}" in await h.say(OPERATOR, dm, "!confirm")
    assert await h.repos.classes.role_of(c.klass.id, LEARNER_B) is None


async def test_the_migration_records_whom_old_messages_were_about(tmp_path, monkeypatch):
    shipped = storage_db.migrations()
    mine = next(v for v, name, _ in shipped if name.endswith("_privacy_blocking.sql"))
    monkeypatch.setattr(storage_db, "migrations", lambda: [m for m in shipped if m[0] < mine])
    db = await Database.open(tmp_path / "old.db")
    await db.execute("INSERT INTO classes (id, name, code, timezone, server, created_by, created_at) VALUES (1, 'P', 'P1', 'UTC', 'a.test', 't', 'x')")
    await db.execute("INSERT INTO class_members VALUES (1, '@ana:a.test', 'learner', '@ana:a.test', 'x')")
    await db.execute("INSERT INTO rooms VALUES ('!work:a.test', 'work', 1, '@ben:b.test', 'x')")
    for i, (room, body) in enumerate([("!staff:a.test", "@ana:a.test handed in"), ("!work:a.test", "Received."), ("!class:a.test", "Hello all")]):
        await db.execute(
            "INSERT INTO outbox (txn_id, room_id, event_type, content, created_at) VALUES (?, ?, 'm.room.message', ?, 'x')",
            (f"t{i}", room, json.dumps({"body": body})),
        )
    await db.close()
    monkeypatch.setattr(storage_db, "migrations", lambda: shipped)
    db = await Database.open(tmp_path / "old.db")
    rows = {(r["user_id"], r["outbox_id"]) for r in await db.fetchall("SELECT user_id, outbox_id FROM outbox_about")}
    assert rows == {("@ana:a.test", 1), ("@ben:b.test", 2)}
    await db.close()


async def test_private_answers_never_go_to_someone_elses_direct_message(h):
    """A "direct message" is a room its owner invited the bot to; its owner may share it. A
    teacher's gradebook or a learner's grades are never answered in another person's one."""
    c = await coursework(h)
    bens_room = "!bens-group:a.test"
    await h.repos.rooms.add(bens_room, "dm", None, LEARNER_B, NOW)
    out = await h.run(TEACHER_A, bens_room, "!grades PHYS12")
    assert "Gradebook" not in texts(out, bens_room) and "Gradebook" in texts(out, c.staff_room)
    out = await h.run(LEARNER_A, bens_room, "!grades PHYS12")
    assert "13/20" not in texts(out, bens_room) and "13/20" in texts(out, c.work[LEARNER_A])
    out = await h.run(TEACHER_A, bens_room, f"!grade PHYS12 A1 {LEARNER_A} 14/20 redone")
    assert "redone" not in texts(out, bens_room)
    assert texts(out, bens_room) == "" and "went to their work room only" in texts(out, c.staff_room)
    command = f"$ev{h._n}"
    assert (bens_room, command) in h.matrix.redactions(), "the teacher's !grade is taken out of Ben's room"
