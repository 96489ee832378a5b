"""A backlog of records in many rooms (a deployment's first start with the records journal writes
every room's records at once; a homeserver that was down) does not hold up replies, and the
sender does not read the rows it already holds again at every look at the outbox (bench/RESULTS.md:
a restart at 1,000 rooms answered its first command after 130 s, the sender decoding the same
1,000 rows after every send). The work is counted, not timed."""

from __future__ import annotations

import asyncio

import nio

from bot.sender import OutboxSender
from storage.outbox import Outbox
from storage.record_format import EVENT_TYPE as RECORD

from .conftest import NOW
from .fakes import FrozenClock

LEARNER_ROOM = "!work-of-ana:a.test"
BACKLOG_ROOMS = 1100  # more rooms than the sender reads at one look (1,000)


class Homeserver:
    """Takes every send at once; ``then`` runs after the send numbered ``at``."""

    def __init__(self, at: int | None = None, then=None):
        self.sent: list[tuple[str, str]] = []  # (room, body or record seq)
        self.at, self.then = at, then

    async def __call__(self, item):
        self.sent.append((item.room_id, item.content.get("body") or str(item.content.get("n"))))
        if len(self.sent) == self.at:
            await self.then()
        return nio.RoomSendResponse(f"$e{len(self.sent)}", item.room_id)


async def fill_backlog(outbox: Outbox, rooms: int, each: int = 1) -> None:
    for r in range(rooms):
        for n in range(each):
            await outbox.put(f"!class{r}:a.test", RECORD, {"n": n}, NOW)


def counting_reads(outbox: Outbox) -> list[int]:
    """How many rows each look at the outbox read in full (content decoded)."""
    reads: list[int] = []
    real = outbox.unsent

    async def unsent(*args, **kwargs):
        rows = await real(*args, **kwargs)
        reads.append(len(rows))
        return rows

    outbox.unsent = unsent
    return reads


async def test_a_reply_queued_after_records_for_a_thousand_rooms_goes_out_among_the_first_sends(db):
    outbox = Outbox(db)
    await fill_backlog(outbox, BACKLOG_ROOMS)
    await outbox.put(LEARNER_ROOM, "m.room.message", {"msgtype": "m.notice", "body": "Received A1."}, NOW)
    hs = Homeserver()
    sender = OutboxSender(outbox, hs, FrozenClock(NOW), cap=0.01, rooms_at_once=4)
    reads = counting_reads(outbox)
    await sender.drain()
    reply = hs.sent.index((LEARNER_ROOM, "Received A1."))
    assert reply < 4, reply  # with the first rooms, not after 1,100 records
    assert len(hs.sent) == BACKLOG_ROOMS + 1 == len(set(hs.sent))  # each once
    assert sum(reads) == BACKLOG_ROOMS + 1, reads[:20]  # each row read in full once, however many looks
    assert await outbox.unsent() == []


async def test_a_reply_queued_while_the_backlog_is_being_sent_waits_only_for_the_rooms_in_flight(db):
    outbox = Outbox(db)
    await fill_backlog(outbox, BACKLOG_ROOMS, each=2)
    queued_at: list[int] = []

    async def learner_asks():
        await outbox.put(LEARNER_ROOM, "m.room.message", {"msgtype": "m.notice", "body": "Received A1."}, NOW)
        queued_at.append(len(hs.sent))
        sender.wake.set()

    hs = Homeserver(at=200, then=learner_asks)
    sender = OutboxSender(outbox, hs, FrozenClock(NOW), cap=0.01, rooms_at_once=4)
    reads = counting_reads(outbox)
    task = asyncio.create_task(sender.run())
    try:
        async with asyncio.timeout(60):
            while await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    reply = hs.sent.index((LEARNER_ROOM, "Received A1."))
    # the four rooms sending when it was queued finish their turn (two records each), then the reply
    assert reply - queued_at[0] <= 4 * 2, (queued_at, reply)
    for r in (0, 500, BACKLOG_ROOMS - 1):  # each room's records in their order
        assert [n for room, n in hs.sent if room == f"!class{r}:a.test"] == ["0", "1"]
    assert len(hs.sent) == 2 * BACKLOG_ROOMS + 1 == len(set(hs.sent))
    assert sum(reads) == 2 * BACKLOG_ROOMS + 1, sum(reads)  # each row read in full once
