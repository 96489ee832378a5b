"""A homeserver's rate limit on Ako's account: while it refuses sends with 429, the sends go one at a
time, each when the server said, at the server's own pace (used by the outbox sender and the client)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

log = logging.getLogger("ako")

PACE_CAP = 60.0  # seconds: the longest a rate-limited send waits after the one before it got through
MARGIN = 1.1  # sends go a tenth slower than the measured pace: one just early is refused, and a refusal costs a round trip and a wait


class RateLimit:
    """A 429 is about the account, not the room. While the homeserver refuses for rate, one send
    goes at a time, and only when the server said it may (``retry_after_ms`` or ``Retry-After``).
    After each send that gets through, the next waits the server's pace: the time between the last
    two sends it let through, measured on a send it had refused (that one went as soon as the
    server allowed; Synapse names ~2 s while letting one message through every 5 s at its
    default rate), plus a tenth, as a send just early would be refused again. So the queue drains at
    the server's pace instead of each waiting send being refused again. A send that
    goes through at once, without waiting, shows the limit has eased: sends go side by side again.

    The client calls :meth:`before` and :meth:`after` around every try of a send (nio retries a
    429 by itself, after the same wait; that retry comes back here and keeps its turn)."""

    def __init__(self, now: Callable[[], float] = time.monotonic):
        self.now = now
        self.limited = False
        self.until = 0.0  # when the next send may go
        self.pace = 0.0  # how long a send waits after the last one got through
        self._through: float | None = None  # when the last held send that got through went
        self._went: dict[asyncio.Task, float] = {}  # when each send's current try went
        self.refusals = 0
        self._turn: asyncio.Task | None = None  # the send whose turn it is while limited
        self._held: set[asyncio.Task] = set()  # sends refused or made to wait, not yet through
        self._refused: set[asyncio.Task] = set()  # sends refused, not yet through
        self._changed = asyncio.Event()

    async def before(self) -> None:
        me = asyncio.current_task()
        while self.limited and self._turn not in (None, me) and not self._turn.done():
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 1.0)  # 1 s: a turn whose task died is taken over
            except asyncio.TimeoutError:
                pass
        if self.limited:
            self._turn = me
            wait = self.until - self.now()
            if wait > 0:
                self._held.add(me)
                await asyncio.sleep(wait)
        self._went[me] = self.now()

    def after(self, status: int | None, retry_after_ms: int | None = None) -> None:
        """``status`` of the try (None: no answer); ``retry_after_ms`` of a 429."""
        me = asyncio.current_task()
        if status == 429:
            self.refusals += 1
            asked = (retry_after_ms or 5000) / 1000  # nio waits 5 s when the server names no time
            self.pace = max(self.pace, asked)
            self.until = max(self.until, self.now() + asked)
            if not self.limited:
                log.info("The homeserver is rate-limiting Ako's messages: sending one at a time, as it asks")
            self.limited = True
            self._turn = me  # its retry, after the wait, goes first
            self._held.add(me)
            self._refused.add(me)
            return
        at_once, refused = me not in self._held, me in self._refused
        self._held.discard(me)
        self._refused.discard(me)
        went = self._went.pop(me, self.now())
        if self.limited and status is not None and status < 400:
            if at_once:
                self.limited, self.pace, self._through = False, 0.0, None
                log.info("The homeserver takes Ako's messages again: sending side by side")
            else:
                if refused and self._through is not None:  # it went as soon as the server let it: the server's pace
                    self.pace = min((went - self._through) * MARGIN, PACE_CAP)
                self._through = went
                self.until = max(self.until, went + self.pace)
        if self._turn is me or not self.limited:
            self._turn = None
        self._changed.set()

    def release(self) -> None:
        """The current task stopped sending (cancelled, or gave up for now): its turn passes on."""
        me = asyncio.current_task()
        self._held.discard(me)
        self._refused.discard(me)
        self._went.pop(me, None)
        if self._turn is me:
            self._turn = None
            self._changed.set()
