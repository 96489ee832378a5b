"""The outbox sender: sends queued events, in order within a room, several rooms at once, each
event under its fixed transaction id.

Each room has its own queue; up to ``ROOMS_AT_ONCE`` rooms send at the same time, taking turns
of at most ``PER_ROOM`` events, so one class's burst never starves another's receipts. Rooms with
a message for people waiting take their turn before rooms with only records to write
(``nz.ako.record``, storage/record_journal.py): a reply never waits behind a backlog of records
in a thousand other rooms (a deployment's first start with the records journal writes every
room's records at once). Rows already in hand are not read again at each look at the outbox. A
homeserver's rate limit is per user, not per room: while it refuses sends with 429, the sends
go one at a time, each when the server said (:class:`RateLimit`), so refusals never multiply.
Rows are marked sent in one transaction per batch; a crash before that resends them under the
same transaction ids, which the homeserver deduplicates.

Nothing a command promised is dropped: a failed send is tried again, with back-off, for as long
as it takes (a proxy's 502, which nio reports without an error code, a timeout, a server that is
down). Only a refusal that says the message can never arrive — the room is gone, or Ako is not in
it (kicked, never joined) — ends the tries; that message is recorded as undeliverable, with the
server's reason, logged, and listed by `ako check`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable

import nio

from storage.outbox import Outbox, Outgoing
from storage.record_format import EVENT_TYPE as RECORD

from .fault_points import crash_point
from .rate_limit import RateLimit

log = logging.getLogger("ako")

RETRY_CAP = 15.0  # seconds between tries at most: 4 requests a minute to a server that is down
# Refusals that say the message can never arrive. Anything else (no code, M_UNKNOWN, 5xx) is tried again.
UNDELIVERABLE = ("M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE")
PER_ROOM = 20  # events of one room per turn: rooms take turns, each room's order kept
ROOMS_AT_ONCE = 8  # rooms sending at the same time (plain nio here: 31.6 sends/s 8 at a time vs 23.9 one at a time; bench/RESULTS.md)
MARK_AFTER = 0.05  # seconds: sent rows are marked together, one commit for what was sent meanwhile
WITHDRAWN_REASON = "Withdrawn: the records it was about were deleted while it was being sent."

Send = Callable[[Outgoing], Awaitable[object]]


class OutboxSender:
    """``send`` puts one queued event on the homeserver and returns nio's response."""

    def __init__(self, outbox: Outbox, send: Send, clock, *, cap: float = RETRY_CAP, rooms_at_once: int = ROOMS_AT_ONCE):
        self.outbox = outbox
        self.send = send
        self.clock = clock
        self.cap = cap
        self.rate_limit = RateLimit()
        self.wake = asyncio.Event()  # something was queued
        self.reconnected = asyncio.Event()  # a sync worked again after failing: stop waiting
        self.rooms_at_once = rooms_at_once
        self._queues: dict[str, deque[Outgoing]] = {}  # per room: loaded, not yet sent
        self._rooms: dict[str, asyncio.Task] = {}  # rooms with a sender running (at most rooms_at_once)
        # rooms with events in hand and no sender, in the order they began to wait: those with a
        # message for people, and those with only records to write
        self._waiting_people: dict[str, None] = {}
        self._waiting_records: dict[str, None] = {}
        self._taken: set[int] = set()  # rows loaded and not yet marked sent (queued, on their way, or sent)
        self._loaded_with: dict[int, int] = {}  # loaded row → the outbox's count of withdrawals when it was loaded
        self._sent: list[tuple[Outgoing, str]] = []  # sent, to be marked in the next batch
        self._marks = asyncio.Event()
        self._delay: dict[str, float] = {}  # per room: the pause after its next failure

    async def run(self) -> None:
        marker = asyncio.create_task(self._mark_sent_forever(), name="outbox-marks")
        try:
            while True:
                self.wake.clear()
                # then wait, also after finding rows: the room senders start sending at once, and a
                # room that finishes, like anything queued, wakes this loop to load what is left
                await self.load()
                await self.wake.wait()
        finally:
            marker.cancel()
            for task in list(self._rooms.values()):
                task.cancel()
            await asyncio.gather(marker, *self._rooms.values(), return_exceptions=True)

    async def load(self) -> bool:
        """Queue what is waiting (up to PER_ROOM of each room beyond what is in hand) and start a
        sender for every room that has some; False when nothing new was found."""
        withdrawals = self.outbox.withdrawals  # read before the rows: a withdrawal meanwhile is seen
        pending = [i for i in await self.outbox.unsent(limit=1000, per_room=PER_ROOM, skip=self._taken) if i.id not in self._taken]
        for item in pending:
            self._taken.add(item.id)
            self._loaded_with[item.id] = withdrawals
            self._queues.setdefault(item.room_id, deque()).append(item)
        for room_id in dict.fromkeys(item.room_id for item in pending):
            if room_id not in self._rooms:
                self._wait_turn(room_id)
        while len(self._rooms) < self.rooms_at_once and (self._waiting_people or self._waiting_records):
            waiting = self._waiting_people or self._waiting_records
            room_id = next(iter(waiting))
            del waiting[room_id]
            if self._queues.get(room_id):
                self._rooms[room_id] = asyncio.create_task(self._send_room(room_id), name=f"outbox {room_id}")
        return bool(pending)

    def _wait_turn(self, room_id: str) -> None:
        """The room waits for a sender: behind the rooms waiting already, and behind every room with
        a message for people if it has only records to write."""
        if any(item.event_type != RECORD for item in self._queues[room_id]):
            self._waiting_records.pop(room_id, None)
            self._waiting_people.setdefault(room_id, None)
        elif room_id not in self._waiting_people:
            self._waiting_records.setdefault(room_id, None)

    async def drain(self) -> None:
        """Send everything waiting now and mark it (for tests and tools): returns when the outbox
        has nothing left that could go without a pause."""
        while await self.load() or self._rooms:
            if self._rooms:
                await asyncio.gather(*self._rooms.values(), return_exceptions=True)
            await self.flush()

    async def _send_room(self, room_id: str) -> None:
        queue = self._queues[room_id]
        try:
            for _ in range(PER_ROOM):
                if not queue:
                    break
                if not await self._send_one(queue.popleft()):
                    for item in queue:  # held back, to keep the room's order: loaded again later
                        self._taken.discard(item.id)
                        self._loaded_with.pop(item.id, None)
                    queue.clear()
                    break
        finally:
            self.rate_limit.release()
            if self._rooms.get(room_id) is asyncio.current_task():
                del self._rooms[room_id]
            if queue:
                self._wait_turn(room_id)  # its next turn, after the rooms waiting now
            else:
                self._queues.pop(room_id, None)
            self.wake.set()  # the next rooms start, and the rest of this one may be loaded now

    async def _send_one(self, loaded: Outgoing) -> bool:
        """True when the room may go on; False after a failure that may pass (and a pause)."""
        item = loaded
        # read again only when rows were withdrawn since it was loaded: a reply goes out with no
        # statement between its commit and its send but the load
        if await self.outbox.withdrawn_since(self._loaded_with.pop(loaded.id, -1)):
            item = await self.outbox.still_unsent(loaded.id)
        else:
            await asyncio.sleep(0)  # the other rooms' senders take their turns
        if item is None:  # withdrawn since it was loaded (!forget)
            self._taken.discard(loaded.id)
            return True
        error = code = None
        try:
            resp = await self.send(item)
        except Exception as e:  # network trouble: keep the row, try again later
            error = f"{type(e).__name__}: {e}"
        else:
            if isinstance(resp, nio.ErrorResponse):
                error, code = f"{resp.status_code or 'no error code'}: {resp.message}", resp.status_code
        if error is None:
            crash_point("sent")
            self._delay.pop(item.room_id, None)
            self._sent.append((item, resp.event_id))
            self._marks.set()
            return True
        if code in UNDELIVERABLE:
            log.error("Undeliverable: message %s to %s was refused (%s); it is kept as undeliverable, see `ako check`",
                      item.txn_id, item.room_id, error)
            await self.outbox.mark_undeliverable(item.id, error, self.clock.now())
            self._taken.discard(item.id)
            return True
        delay = self._delay.get(item.room_id, min(1.0, self.cap))
        log.warning("Sending to %s failed (%s, try %d); retrying in %.0f s, or as soon as sync works again",
                    item.room_id, error, item.attempts + 1, delay)
        await self.outbox.mark_failed(item.id, error, self.clock.now())
        self._taken.discard(item.id)
        self.rate_limit.release()
        await self.pause(delay)
        self._delay[item.room_id] = min(delay * 2, self.cap)
        return False

    async def _mark_sent_forever(self) -> None:
        while True:
            await self._marks.wait()
            await asyncio.sleep(MARK_AFTER)  # the sends finishing meanwhile share the commit
            try:
                await self.flush()
            except Exception as e:  # the rows are kept for the next batch
                log.warning("Could not mark sent messages (%s: %s); trying again in 1 s", type(e).__name__, e)
                await asyncio.sleep(1)

    async def flush(self) -> None:
        """Mark what was sent since the last flush, in one transaction; a row ``!forget`` deleted
        while its event was on its way gets that event redacted."""
        self._marks.clear()
        batch, self._sent = self._sent, []
        if not batch:
            return
        try:
            withdrawn = await self.outbox.mark_sent_many([(item.id, event_id) for item, event_id in batch], self.clock.now())
        except BaseException:
            self._sent[:0] = batch  # marked with the next batch (or resent after a restart: same transaction ids)
            self._marks.set()
            raise
        for item, event_id in batch:
            self._taken.discard(item.id)
            if item.id in withdrawn and item.event_type != "m.room.redaction":
                log.info("Message %s was withdrawn while being sent; redacting %s", item.txn_id, event_id)
                await self.outbox.put(item.room_id, "m.room.redaction", {"redacts": event_id, "reason": WITHDRAWN_REASON}, self.clock.now())
        self.wake.set()

    async def pause(self, seconds: float) -> None:
        """Wait before trying to send again; a sync that works again ends the wait early."""
        self.reconnected.clear()
        try:
            await asyncio.wait_for(self.reconnected.wait(), seconds)
        except asyncio.TimeoutError:
            pass
