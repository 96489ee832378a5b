"""Transaction ids never repeat (issue 16, item 7): a homeserver silently drops a send whose id it
has seen, so a topic started after `!forget` took the class's last topic must still be posted."""

from __future__ import annotations

import json

from .conftest import NOW
from .fakes import ADMIN_A, LEARNER_A, LEARNER_B, classroom


async def test_a_topic_started_after_the_last_one_was_forgotten_is_posted_under_a_new_transaction_id(h):
    c = await classroom(h)
    await h.deliver()
    await h.run(LEARNER_A, c.class_room, '!topic "Ana asks about pendulums"')
    first = [t for t in await h.deliver() if not t.startswith("ako.record.")]  # records ride in events of their own too
    assert len(first) == 1
    dm = "!admin-a-dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, ADMIN_A, NOW)
    await h.say(ADMIN_A, dm, f"!forget {LEARNER_A}")
    assert "Forgot" in await h.say(ADMIN_A, dm, "!confirm")
    assert await h.repos.topics.activity(c.klass.id) == []  # her topic went with her

    await h.run(LEARNER_B, c.class_room, '!topic "Ben asks about springs"')
    second = await h.deliver()
    rows = await h.db.fetchall("SELECT txn_id, room_id, content FROM outbox WHERE room_id = ? AND event_type = 'm.room.message' ORDER BY id", (c.class_room,))
    posted = [r["txn_id"] for r in rows if "Ben asks about springs" in json.loads(r["content"])["body"]]
    assert len(posted) == 1, "Ben's topic was never queued: its transaction id was already taken"
    assert posted[0] in second and posted[0] not in first
    topic = (await h.repos.topics.activity(c.klass.id))[0].topic
    assert topic.root_txn_id == posted[0]
    assert await h.repos.topics.by_root(c.class_room, second[posted[0]]) == topic  # thread replies find it
    txn_ids = [r["txn_id"] for r in await h.db.fetchall("SELECT txn_id FROM outbox")]
    assert len(txn_ids) == len(set(txn_ids))


async def test_a_reminder_never_gets_the_id_of_one_that_was_deleted(h):
    """A reminder's id names its sends (`reminder.<id>.<time>`): after the newest reminder is deleted
    (by `!forget`), the next one must not take its id, or a send at the same time is dropped."""
    add = dict(class_id=None, created_by=LEARNER_A, room_id="!dm:a.test", text="t", next_at=NOW, timezone="UTC", at=NOW)
    first = await h.repos.reminders.add(**add)
    await h.db.execute("DELETE FROM reminders WHERE id = ?", (first.id,))
    second = await h.repos.reminders.add(**add)
    assert second.id != first.id
    assert second.id > first.id
