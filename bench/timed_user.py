"""A test user (tests/matrix_user.py) that notes when each event reached it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.matrix_user import MatrixUser


@dataclass
class Sample:
    sent_id: str
    sent_at: float  # time.monotonic() just before the send request
    sent_wall: float  # time.time() at the same moment
    latency: float | None = None  # seconds from sending to the reply reaching this user; None: no reply
    body: str = ""
    reply_id: str | None = None


def replies_to(event: dict, event_id: str, me: str) -> bool:
    if event.get("type") != "m.room.message" or event.get("sender") == me:
        return False
    content = event.get("content") or {}
    if content.get("msgtype") != "m.notice":
        return False
    rel = content.get("m.relates_to") or {}
    return (rel.get("m.in_reply_to") or {}).get("event_id") == event_id


class TimedUser(MatrixUser):
    """Stamps every timeline event with the moment its sync response was in (monotonic and wall clock)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrived: dict[str, float] = {}
        self.arrived_wall: dict[str, float] = {}

    def _ingest(self, resp) -> None:
        now, wall = time.monotonic(), time.time()
        for info in resp.rooms.join.values():
            for ev in info.timeline.events:
                event_id = ev.source.get("event_id")
                if event_id and event_id not in self.arrived:
                    self.arrived[event_id] = now
                    self.arrived_wall[event_id] = wall
        super()._ingest(resp)

    async def send_timed(self, room_id: str, body: str) -> Sample:
        t0, w0 = time.monotonic(), time.time()
        sent = await self.send(room_id, body)
        return Sample(sent, t0, w0)

    async def await_reply(self, room_id: str, sample: Sample, timeout: float = 30, since: int = 0) -> Sample:
        """Fill in the reply's latency; leaves ``latency`` None when none came within ``timeout``."""
        try:
            ev = await self.wait_for(room_id, lambda e: replies_to(e, sample.sent_id, self.user_id), timeout, since=since)
        except TimeoutError:
            return sample
        sample.reply_id = ev["event_id"]
        sample.body = str((ev.get("content") or {}).get("body", ""))
        sample.latency = self.arrived.get(ev["event_id"], time.monotonic()) - sample.sent_at
        return sample

    async def timed(self, room_id: str, body: str, timeout: float = 30) -> Sample:
        mark = self.mark(room_id)
        sample = await self.send_timed(room_id, body)
        return await self.await_reply(room_id, sample, timeout, since=mark)

    def count_replies(self, room_id: str, event_id: str) -> int:
        return sum(1 for e in self.timeline(room_id) if replies_to(e, event_id, self.user_id))


async def gather_limited(limit: int, coros) -> list:
    """asyncio.gather with at most ``limit`` running at once."""
    sem = asyncio.Semaphore(limit)

    async def one(coro):
        async with sem:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))
