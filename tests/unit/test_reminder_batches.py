"""Many reminders due together are queued in a few commits, each once, one message per room; one
broken record holds up no other (commands/timetable.py ``_reminders``)."""

from __future__ import annotations

from commands import timetable

from .conftest import NOW
from .fakes import TEACHER_A, classroom


async def test_reminders_due_together_are_queued_in_batches_each_once(h, db, monkeypatch):
    c = await classroom(h)
    for i in range(120):
        await h.say(TEACHER_A, c.class_room, f"!remind in 10 minutes Lab books, number {i}")
    commits = 0
    real = db.transaction

    def counting():
        nonlocal commits
        if db._in_tx is None:
            commits += 1
        return real()

    monkeypatch.setattr(db, "transaction", counting)
    h.clock.advance(minutes=10)
    before = len(h.sent)
    tally = await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW)
    sent = h.sent[before:]
    assert {m.room_id for m in sent} == {c.class_room}
    # one message per room and commit, each reminder once, in the order they were set
    assert [m.markdown.count("⏰") for m in sent] == [50, 50, 20]
    assert "\n\n".join(m.markdown for m in sent).split("\n\n") == [f"⏰ **Reminder:** Lab books, number {i}" for i in range(120)]
    assert len(tally.sent) == 120
    assert commits <= 6, commits  # batches of 50 (and publishing, digests), not a commit per reminder
    assert await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW) and len(h.sent) == before + 3  # never twice


async def test_one_broken_reminder_in_a_batch_holds_up_no_other(h, db, monkeypatch, caplog):
    c = await classroom(h)
    for i in range(5):
        await h.say(TEACHER_A, c.class_room, f"!remind in 10 minutes Number {i}")
    real = timetable.reminder_text

    def broken(r, prefix, rule):
        if "Number 2" in r.text:
            raise RuntimeError("a broken record")
        return real(r, prefix, rule)

    monkeypatch.setattr(timetable, "reminder_text", broken)
    h.clock.advance(minutes=10)
    queued = len(await h.outbox_rows())
    tally = await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW)
    # what the outbox holds (the harness's own list also keeps what a rolled-back batch had queued)
    assert sorted(body for _, _, body in (await h.outbox_rows())[queued:]) == [f"⏰ **Reminder:** Number {i}" for i in (0, 1, 3, 4)]
    assert len(tally.sent) == 4  # the rolled-back batch's tally is not counted twice
    rows = await db.fetchall("SELECT key FROM schedule_ledger ORDER BY key")
    assert len(rows) == 4  # the broken one has no ledger row: tried again next time
    monkeypatch.setattr(timetable, "reminder_text", real)
    await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW)
    assert [body for _, _, body in (await h.outbox_rows())[queued + 4:]] == ["⏰ **Reminder:** Number 2"]


async def test_reminders_due_together_go_as_one_message_per_room(h):
    """A teacher's two class reminders for the same minute arrive as one message in the class room;
    her own !remindme for that minute as another, in her DM; one due later comes on its own."""
    c = await classroom(h)
    await h.repos.rooms.add("!dm-teacher:a.test", "dm", None, TEACHER_A, h.clock.now())
    await h.say(TEACHER_A, c.class_room, "!remind in 10 minutes Lab books out")
    await h.say(TEACHER_A, c.class_room, "!remind in 10 minutes Goggles on")
    await h.say(TEACHER_A, "!dm-teacher:a.test", "!remindme in 10 minutes mark 10B")
    await h.say(TEACHER_A, c.class_room, "!remind in 11 minutes Wash up")
    h.clock.advance(minutes=10)
    before = len(h.sent)
    tally = await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW)
    assert sorted((m.room_id, m.markdown) for m in h.sent[before:]) == sorted([
        (c.class_room, "⏰ **Reminder:** Lab books out\n\n⏰ **Reminder:** Goggles on"),
        ("!dm-teacher:a.test", "⏰ **You asked me to remind you:** mark 10B"),
    ])
    assert len(tally.sent) == 3
    h.clock.advance(minutes=1)
    await timetable.run_due(h.services, h._enqueue, h.clock.now(), NOW)
    assert [m.markdown for m in h.sent[before + 2:]] == ["⏰ **Reminder:** Wash up"]
