"""How long Ako keeps the traces of its own work, and the sweep that deletes the rest.

- ``processed_events`` (an event was acted on) only stops a replayed sync from acting twice. A
  sync is replayed from the saved sync token, never from further back, so a row is kept
  ``PROCESSED_FOR`` (7 days) and then deleted. The first sweep of a run comes one ``EVERY``
  after start, when the first sync has been handled: a bot that was down for longer never loses
  the rows of a batch it must replay.
- ``outbox``: waiting and undeliverable rows are kept (they are still to send, or `ako check`
  lists them). A sent row is kept whole for ``SENT_FOR`` (30 days; far longer than a homeserver
  remembers transaction ids, ~30 minutes in Synapse). After that:
  - a forum topic's root is kept whole (a thread reply finds its topic through it);
  - a message about someone (``outbox_about``), or in a work room or direct message, keeps its
    row without the content — `!forget` needs its room and event id to redact it;
  - the rest of Ako's events (messages, redactions, kicks, leaves, state, the records it writes
    into rooms) are deleted: what they said is in the rooms, which is where `ako rebuild` reads it.

So the database grows with the records and with an event id per message about a person, not with
the traffic: RSS and size stay flat under ordinary chat (bench/RESULTS.md measures it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from .db import Database
from .models import to_text

log = logging.getLogger("ako")

PROCESSED_FOR = timedelta(days=7)
SENT_FOR = timedelta(days=30)
EVERY = timedelta(hours=1)
# Every event type Ako's outbox sends: once in the room, a row is only a receipt of the sending.
CHAT_EVENTS = ("m.room.message", "m.room.redaction", "ako.kick", "ako.leave", "ako.state", "nz.ako.record")
BATCH = 5000  # rows per transaction: a sweep never holds the writer for long
_EMPTY = '{"body": "", "swept": true}'


@dataclass
class Swept:
    processed_events: int = 0
    outbox_deleted: int = 0
    outbox_emptied: int = 0

    def __bool__(self) -> bool:
        return bool(self.processed_events or self.outbox_deleted or self.outbox_emptied)


_KEEP_WHOLE = "o.txn_id IN (SELECT root_txn_id FROM topics)"
_FOR_FORGET = (
    "(EXISTS (SELECT 1 FROM outbox_about a WHERE a.outbox_id = o.id)"
    " OR o.room_id IN (SELECT room_id FROM rooms WHERE kind IN ('work', 'dm')))"
)
_SENT_BEFORE = "o.sent_at IS NOT NULL AND o.event_id IS NOT NULL AND o.sent_at < ?"
_CHAT = f"o.event_type IN ({','.join(repr(t) for t in CHAT_EVENTS)})"


async def sweep(db: Database, now: datetime) -> Swept:
    """Delete what nothing needs any more (see the module's docstring)."""
    processed_before = to_text(now - PROCESSED_FOR)
    sent_before = to_text(now - SENT_FOR)
    return Swept(
        processed_events=await _in_batches(
            db, "DELETE FROM processed_events WHERE rowid IN (SELECT rowid FROM processed_events WHERE processed_at < ? LIMIT ?)",
            processed_before,
        ),
        outbox_deleted=await _in_batches(
            db, f"DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE {_SENT_BEFORE} AND {_CHAT}"
            f" AND NOT {_KEEP_WHOLE} AND NOT {_FOR_FORGET} LIMIT ?)",
            sent_before,
        ),
        outbox_emptied=await _in_batches(
            db, f"UPDATE outbox SET content = '{_EMPTY}', last_error = NULL WHERE id IN (SELECT o.id FROM outbox o WHERE"
            f" {_SENT_BEFORE} AND {_CHAT} AND NOT {_KEEP_WHOLE} AND {_FOR_FORGET} AND o.content != '{_EMPTY}'"
            " AND o.content NOT LIKE '%\"redacted\": true%' LIMIT ?)",
            sent_before,
        ),
    )


async def _in_batches(db: Database, sql: str, before: str) -> int:
    """Run ``sql`` (parameters: a moment, a batch size) a batch to a transaction until a batch comes short."""
    total = 0
    while True:
        async with db.transaction():
            cur = await db.execute(sql, (before, BATCH))
        total += cur.rowcount
        if cur.rowcount < BATCH:
            return total


async def keep_sweeping(db: Database, clock, every: timedelta = EVERY) -> None:
    """Sweep every ``every``, the first one ``every`` after start (see the module's docstring)."""
    while True:
        await asyncio.sleep(every.total_seconds())
        try:
            swept = await sweep(db, clock.now())
        except Exception as e:  # the next sweep tries again; nothing is lost by waiting
            log.warning("The retention sweep failed (%s: %s); trying again in %s", type(e).__name__, e, every)
            continue
        if swept:
            log.info("Retention sweep: %d processed-event rows and %d sent messages deleted, %d sent messages emptied (kept for !forget)",
                     swept.processed_events, swept.outbox_deleted, swept.outbox_emptied)
