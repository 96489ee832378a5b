"""A harness whose replies also land in the real outbox (through bot.replies, as the runtime puts them),
and a pretend sender that gives each queued event an event id: for topics, whose thread root is
found through the outbox, and for proving a scheduled send is queued once."""

from __future__ import annotations

import json

from bot import replies

from .fakes import FakeRooms, FrozenClock, Harness


class OutboxHarness(Harness):
    def __init__(self, db, clock: FrozenClock, rooms: FakeRooms, **settings):
        super().__init__(db, clock, rooms, **settings)
        self._sent_ids = 0

    async def _enqueue(self, messages):
        """Kept as sent, and queued in the outbox as the runtime queues them."""
        await super()._enqueue(messages)
        await replies.queue(self.repos.outbox, messages, self.matrix.upload, self.clock.now())

    async def deliver(self) -> dict[str, str]:
        """Pretend the outbox sent everything: txn id → the event id the server gave it."""
        given = {}
        for item in await self.repos.outbox.unsent():
            self._sent_ids += 1
            event_id = f"$sent{self._sent_ids}"
            await self.repos.outbox.mark_sent(item.id, event_id, self.clock.now())
            given[item.txn_id] = event_id
        return given

    async def outbox_rows(self) -> list[tuple[str, str, str]]:
        """(txn id, room, body) of every message ever queued."""
        rows = await self.db.fetchall("SELECT txn_id, room_id, content FROM outbox WHERE event_type = 'm.room.message' ORDER BY id")
        return [(r["txn_id"], r["room_id"], json.loads(r["content"])["body"]) for r in rows]

    async def reply_in_thread(self, sender: str, room_id: str, root: str, text: str = "a reply", event_id: str | None = None, ts=None):
        """An ordinary thread reply, as the runtime hands it to the listeners."""
        self._n += 1
        event = {
            "type": "m.room.message",
            "sender": sender,
            "event_id": event_id or f"$reply{self._n}",
            "origin_server_ts": ts if ts is not None else int(self.clock.now().timestamp() * 1000),
            "content": {"msgtype": "m.text", "body": text, "m.relates_to": {"rel_type": "m.thread", "event_id": root}},
        }
        return await self.dispatcher.observe(sender, room_id, event, root)
