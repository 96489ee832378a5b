"""The retention sweep deletes what nothing needs any more, and keeps what replay, `!forget` and
the forum need (storage/retention.py; README "Data kept")."""

from __future__ import annotations

import json
from datetime import timedelta

from storage import retention
from storage.models import to_text
from storage.outbox import Outbox
from storage.sync import SyncState

from .conftest import NOW

CLASS_ROOM, WORK_ROOM, DM = "!class:a.test", "!work-ana:a.test", "!dm-ben:a.test"
ANA, BEN = "@ana:a.test", "@ben:a.test"
OLD = NOW - timedelta(days=31)  # sent longer ago than the outbox keeps whole rows
RECENT = NOW - timedelta(days=2)


async def _school(db) -> None:
    await db.execute(
        "INSERT INTO classes (id, name, code, timezone, server, created_by, created_at) VALUES (1, 'Physics', 'PHYS12', 'UTC', 'a.test', '@t:a.test', ?)",
        (to_text(OLD),),
    )
    for room_id, kind, owner in ((CLASS_ROOM, "class", None), (WORK_ROOM, "work", ANA), (DM, "dm", BEN)):
        await db.execute("INSERT INTO rooms (room_id, kind, class_id, owner, created_at) VALUES (?, ?, 1, ?, ?)", (room_id, kind, owner, to_text(OLD)))


async def _sent(outbox: Outbox, room: str, body: str, at, event_type: str = "m.room.message", txn_id: str | None = None, content=None) -> str:
    txn = await outbox.put(room, event_type, content or {"msgtype": "m.notice", "body": body}, at, txn_id=txn_id)
    row = await outbox.db.fetchone("SELECT id FROM outbox WHERE txn_id = ?", (txn,))
    await outbox.mark_sent(row["id"], f"$ev-{txn}", at)
    return txn


async def _rows(db) -> dict[str, dict]:
    return {r["txn_id"]: {"event_id": r["event_id"], "body": json.loads(r["content"]).get("body"), "sent": r["sent_at"] is not None}
            for r in await db.fetchall("SELECT * FROM outbox")}


async def test_old_sent_chat_is_deleted_and_what_forget_the_forum_and_sending_need_is_kept(db):
    await _school(db)
    outbox = Outbox(db)
    notice = await _sent(outbox, CLASS_ROOM, "⏰ Reminder: lab books on Friday.", OLD)
    redaction = await _sent(outbox, CLASS_ROOM, "", OLD, "m.room.redaction", content={"redacts": "$x", "reason": "off-topic"})
    naming = await _sent(outbox, CLASS_ROOM, f"Welcome {BEN} to the class.", OLD)  # about Ben: !forget redacts it
    receipt = await _sent(outbox, WORK_ROOM, "Received A1, version 1.", OLD)  # in Ana's work room
    in_dm = await _sent(outbox, DM, "Your classes: PHYS12.", OLD)
    root = await _sent(outbox, CLASS_ROOM, "T1: Lab safety", OLD, txn_id="ako.topic.1.1.abc")
    await db.execute(
        "INSERT INTO topics (class_id, number, title, author, room_id, root_txn_id, created_at) VALUES (1, 1, 'Lab safety', '@t:a.test', ?, ?, ?)",
        (CLASS_ROOM, root, to_text(OLD)),
    )
    recent = await _sent(outbox, CLASS_ROOM, "A2 is posted.", RECENT)
    waiting = await outbox.put(CLASS_ROOM, "m.room.message", {"msgtype": "m.notice", "body": "still to send"}, OLD)
    lost = await outbox.put(CLASS_ROOM, "m.room.message", {"msgtype": "m.notice", "body": "refused"}, OLD)
    lost_id = await db.fetchval("SELECT id FROM outbox WHERE txn_id = ?", (lost,))
    await outbox.mark_undeliverable(lost_id, "M_FORBIDDEN: not in room", OLD)
    record = await _sent(outbox, CLASS_ROOM, "", OLD, "nz.ako.record", content={"table": "classes"})

    swept = await retention.sweep(db, NOW)

    rows = await _rows(db)
    assert notice not in rows and redaction not in rows  # nothing needs them
    assert (swept.outbox_deleted, swept.outbox_emptied) == (3, 3)
    for txn in (naming, receipt, in_dm):  # kept for !forget: room and event id, without the text
        assert rows[txn]["event_id"] == f"$ev-{txn}" and rows[txn]["body"] == ""
    assert rows[root]["body"] == "T1: Lab safety"  # the topic's root, whole
    assert rows[recent]["body"] == "A2 is posted."  # younger than 30 days
    assert rows[waiting] == {"event_id": None, "body": "still to send", "sent": False}  # never dropped
    assert rows[lost]["body"] == "refused"  # undeliverable: `ako check` lists it
    assert record not in rows  # a record written into the class room is in the room; the row was a receipt

    # what !forget finds afterwards: every message about Ben, with the event id to redact
    journal = {r[0] for r in await db.fetchall("SELECT id FROM outbox WHERE txn_id LIKE 'ako.record.%'")}  # _school's records
    about_ben = [m for m in await outbox.about(BEN, [DM]) if m.id not in journal]
    assert [(m.room_id, m.event_id) for m in about_ben] == [(CLASS_ROOM, f"$ev-{naming}"), (DM, f"$ev-{in_dm}")]
    about_ana = [m for m in await outbox.about(ANA, [WORK_ROOM]) if m.id not in journal]
    assert [m.event_id for m in about_ana] == [f"$ev-{receipt}"]
    # the forum still finds the topic from a thread reply's root
    assert await db.fetchval("SELECT t.number FROM outbox o JOIN topics t ON t.root_txn_id = o.txn_id WHERE o.event_id = ?", (f"$ev-{root}",)) == 1
    assert not await retention.sweep(db, NOW)  # a second sweep finds nothing more


async def test_processed_events_are_kept_a_week_so_a_replayed_sync_still_acts_once(db):
    sync = SyncState(db)
    await sync.mark_processed("$old", CLASS_ROOM, NOW - timedelta(days=8))
    await sync.mark_processed("$week", CLASS_ROOM, NOW - timedelta(days=6, hours=23))
    await sync.mark_processed("$now", CLASS_ROOM, NOW)
    swept = await retention.sweep(db, NOW)
    assert swept.processed_events == 1
    assert not await sync.is_processed("$old")
    assert await sync.is_processed("$week") and await sync.is_processed("$now")


async def test_a_sweep_deletes_in_batches_and_gets_everything(db, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 7)
    sync = SyncState(db)
    for i in range(30):
        await sync.mark_processed(f"$e{i}", CLASS_ROOM, NOW - timedelta(days=10))
    assert (await retention.sweep(db, NOW)).processed_events == 30
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 0
