"""Replies into outbox rows (bot/replies.py): the one translation the runtime and the test
harnesses share. Expectations from the Matrix spec's event shapes and SPEC §4 (each send once)."""

from __future__ import annotations

from bot.replies import Row, queue, rows_of
from commands.context import Media, Message, Redaction, RoomChange

from .conftest import NOW

ROOM = "!r:a.test"


class Uploads:
    def __init__(self):
        self.files = []

    async def __call__(self, data, filename, mimetype):
        self.files.append((data, filename, mimetype))
        return f"mxc://a.test/{len(self.files)}"


async def test_a_reply_is_one_message_event_under_its_key():
    [row] = await rows_of([Message(ROOM, "**Done.**", reply_to="$asked", txn_key="ako.k1")], Uploads())
    assert (row.room_id, row.event_type, row.txn_id) == (ROOM, "m.room.message", "ako.k1")
    assert row.content["body"] == "**Done.**" and "<strong>Done.</strong>" in row.content["formatted_body"]  # the markdown is the plain text
    assert row.content["m.relates_to"]["m.in_reply_to"]["event_id"] == "$asked"


async def test_a_long_reply_is_split_and_each_part_gets_its_own_key():
    text = "\n\n".join(f"Paragraph {i}: " + "x" * 900 for i in range(60))  # ~55 kB, more than one event holds
    rows = await rows_of([Message(ROOM, text, txn_key="ako.long")], Uploads())
    assert len(rows) >= 2
    assert [r.txn_id for r in rows] == ["ako.long"] + [f"ako.long.{i}" for i in range(2, len(rows) + 1)]
    assert "Paragraph 0:" in rows[0].content["body"] and "Paragraph 59:" in rows[-1].content["body"]
    unkeyed = await rows_of([Message(ROOM, text)], Uploads())
    assert all(r.txn_id is None for r in unkeyed), "without a key the outbox makes a fresh one for each"


async def test_a_file_is_uploaded_and_sent_after_its_caption():
    uploads = Uploads()
    rows = await rows_of([Message(ROOM, "Your export:", file=(b"a,b\n", "grades.csv", "text/csv"), txn_key="ako.exp")], uploads)
    assert uploads.files == [(b"a,b\n", "grades.csv", "text/csv")]
    assert [r.txn_id for r in rows] == ["ako.exp", "ako.exp.file"]
    assert rows[1].content == {
        "msgtype": "m.file", "body": "grades.csv", "filename": "grades.csv", "url": "mxc://a.test/1",
        "info": {"mimetype": "text/csv", "size": 4},
    }
    [bare] = await rows_of([Message(ROOM, "", file=(b"x", "a.txt", "text/plain"))], uploads)
    assert bare.content["msgtype"] == "m.file", "no caption, no caption event"


async def test_media_already_uploaded_is_its_own_event_with_the_caption():
    [row] = await rows_of([Message(ROOM, "Ana's work", media=Media("mxc://b.test/pic", "lab.png", "image/png", 10, 2, 3))], Uploads())
    assert row.content["msgtype"] == "m.image" and row.content["url"] == "mxc://b.test/pic"


async def test_redactions_and_room_changes_become_requests_for_the_sender():
    rows = await rows_of(
        [
            Redaction(ROOM, "$old", "forgotten"),
            RoomChange(ROOM, "kick", user_id="@ana:a.test", reason="blocked"),
            RoomChange(ROOM, "state", event_type="m.room.server_acl", content={"deny": ["c.test"]}),
            RoomChange(ROOM, "leave"),
        ],
        Uploads(),
    )
    assert rows == [
        Row(ROOM, "m.room.redaction", {"redacts": "$old", "reason": "forgotten"}),
        Row(ROOM, "ako.kick", {"user_id": "@ana:a.test", "reason": "blocked"}),
        Row(ROOM, "ako.state", {"type": "m.room.server_acl", "state_key": "", "content": {"deny": ["c.test"]}}),
        Row(ROOM, "ako.leave", {}),
    ]


async def test_queued_rows_land_in_the_outbox_in_order_and_a_replayed_key_once(db):
    from storage.outbox import Outbox

    outbox = Outbox(db)
    replies = [Message(ROOM, "first", txn_key="ako.same"), Redaction(ROOM, "$x", "r"), Message(ROOM, "second")]
    async with db.transaction():
        await queue(outbox, replies, Uploads(), NOW)
    async with db.transaction():
        await queue(outbox, replies[:1], Uploads(), NOW)  # the same reply again, as after a replay
    rows = await db.fetchall("SELECT txn_id, event_type FROM outbox ORDER BY id")
    assert [r["event_type"] for r in rows] == ["m.room.message", "m.room.redaction", "m.room.message"]
    assert rows[0]["txn_id"] == "ako.same"
