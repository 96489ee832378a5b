"""The outbox sender: sends queued events in order, each under its fixed transaction id.

Rooms take turns, so one class's burst never starves another's receipts. Nothing a command
promised is dropped: a failed send is tried again, with back-off, for as long
as it takes (a proxy's 502, which nio reports without an error code, a timeout, a server that is
down). Only a refusal that says the message can never arrive — the room is gone, or Ako is not in
it (kicked, never joined) — ends the tries; that message is recorded as undeliverable, with the
server's reason, logged, and listed by `ako check`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import nio

from storage.outbox import Outbox, Outgoing

from .fault_points import crash_point

log = logging.getLogger("ako")

RETRY_CAP = 15.0  # seconds between tries at most: 4 requests a minute to a server that is down
# Refusals that say the message can never arrive. Anything else (no code, M_UNKNOWN, 5xx) is tried again.
UNDELIVERABLE = ("M_FORBIDDEN", "M_NOT_FOUND", "M_TOO_LARGE")
PER_ROOM = 20  # rows of one room per batch: rooms take turns, each room's order kept
WITHDRAWN_REASON = "Withdrawn: the records it was about were deleted while it was being sent."

Send = Callable[[Outgoing], Awaitable[object]]


class OutboxSender:
    """``send`` puts one queued event on the homeserver and returns nio's response."""

    def __init__(self, outbox: Outbox, send: Send, clock, *, cap: float = RETRY_CAP):
        self.outbox = outbox
        self.send = send
        self.clock = clock
        self.cap = cap
        self.wake = asyncio.Event()  # something was queued
        self.reconnected = asyncio.Event()  # a sync worked again after failing: stop waiting
        self.delay = min(1.0, cap)

    async def run(self) -> None:
        while True:
            self.wake.clear()
            pending = await self.outbox.unsent(per_room=PER_ROOM)
            if not pending:  # a batch holds at most PER_ROOM of a room: only an empty one means all is out
                await self.wake.wait()
                continue
            await self.send_batch(pending)

    async def send_batch(self, pending: list[Outgoing]) -> bool:
        """Send ``pending`` in order; False when a failure held a room back (after a pause): the
        rest of that room waits for the next batch, to keep its order; other rooms go on."""
        held: set[str] = set()
        for loaded in pending:
            if loaded.room_id in held:
                continue
            item = await self.outbox.still_unsent(loaded.id)
            if item is None:  # withdrawn since it was loaded (!forget)
                continue
            error = None
            try:
                resp = await self.send(item)
            except Exception as e:  # network trouble: keep the row, try again later
                error, code = f"{type(e).__name__}: {e}", None
            else:
                if isinstance(resp, nio.ErrorResponse):
                    error, code = f"{resp.status_code or 'no error code'}: {resp.message}", resp.status_code
            if error is not None:
                if code in UNDELIVERABLE:
                    log.error("Undeliverable: message %s to %s was refused (%s); it is kept as undeliverable, see `ako check`",
                              item.txn_id, item.room_id, error)
                    await self.outbox.mark_undeliverable(item.id, error, self.clock.now())
                    continue
                log.warning("Sending to %s failed (%s, try %d); retrying in %.0f s, or as soon as sync works again",
                            item.room_id, error, item.attempts + 1, self.delay)
                await self.outbox.mark_failed(item.id, error, self.clock.now())
                held.add(item.room_id)
                await self.pause(self.delay)
                self.delay = min(self.delay * 2, self.cap)
                continue
            self.delay = min(1.0, self.cap)
            crash_point("sent")
            if not await self.outbox.mark_sent(item.id, resp.event_id, self.clock.now()) and item.event_type != "m.room.redaction":
                # !forget deleted the row while it was on its way: take the event back out of the room
                log.info("Message %s was withdrawn while being sent; redacting %s", item.txn_id, resp.event_id)
                await self.outbox.put(item.room_id, "m.room.redaction", {"redacts": resp.event_id, "reason": WITHDRAWN_REASON}, self.clock.now())
                self.wake.set()
        return not held

    async def pause(self, seconds: float) -> None:
        """Wait before trying to send again; a sync that works again ends the wait early."""
        self.reconnected.clear()
        try:
            await asyncio.wait_for(self.reconnected.wait(), seconds)
        except asyncio.TimeoutError:
            pass
