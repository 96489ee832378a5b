"""Messages waiting to be sent, each with a transaction id fixed before the first attempt.

A row is waiting (``sent_at`` NULL), sent (``sent_at`` and ``event_id`` set) or undeliverable
(``sent_at`` set, ``event_id`` NULL, ``last_error`` the server's reason): the room is gone or Ako is
not in it. Nothing else ends a row's tries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from . import record_format
from .db import Database
from .models import USER_ID_IN_TEXT, from_row, to_text


_READ_BATCH = 500  # rows read a statement at a time (SQLite may take only 999 parameters)

# A Matrix user id written in a message (ASCII only, like the converter accepts).
_NAMED = USER_ID_IN_TEXT


def named_users(text: str) -> list[str]:
    """The user ids a text names (a full stop after an id is punctuation, not part of it)."""
    return [m.rstrip(".-") for m in _NAMED.findall(text)]


def fresh_txn_id(label: str) -> str:
    """A transaction id never used before (``ako.<label>.<random>``), for a message whose record
    must name it before it is queued. Never derive one from a number that can be reused."""
    return f"ako.{label}.{uuid.uuid4().hex}"


@dataclass(frozen=True)
class SentAbout:
    id: int
    room_id: str
    event_id: str | None  # None: never sent, or the server refused it
    sent: bool


@dataclass(frozen=True)
class Outgoing:
    id: int
    txn_id: str
    room_id: str
    event_type: str
    content: dict
    attempts: int


@dataclass(frozen=True)
class Undeliverable:
    room_id: str
    event_type: str
    given_up_at: str
    reason: str
    attempts: int


# Shared with `ako check`, which reads the database without opening it for writing.
_UNDELIVERABLE = "FROM outbox WHERE sent_at IS NOT NULL AND event_id IS NULL"
UNDELIVERABLE_COUNT = f"SELECT count(*) {_UNDELIVERABLE}"
UNDELIVERABLE_NEWEST = (
    f"SELECT room_id, event_type, sent_at, COALESCE(last_error, ''), attempts {_UNDELIVERABLE} ORDER BY id DESC LIMIT ?"
)


class Outbox:
    def __init__(self, db: Database):
        self.db = db
        self.withdrawals = 0  # commits that withdrew waiting rows (``!forget``): a loaded row may be gone since

    async def withdrawn_since(self, withdrawals: int) -> bool:
        """Whether waiting rows may have been withdrawn since ``withdrawals`` was read (a transaction
        under way is waited for: it may be one)."""
        await self.db.settled()
        return self.withdrawals != withdrawals

    async def put(self, room_id: str, event_type: str, content: dict, at: datetime, txn_id: str | None = None) -> str:
        txn_id = txn_id or f"ako.{uuid.uuid4().hex}"
        text = json.dumps(content, ensure_ascii=False)
        async with self.db.transaction():  # the caller's, usually
            cur = await self.db.execute(
                "INSERT OR IGNORE INTO outbox (txn_id, room_id, event_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
                (txn_id, room_id, event_type, text, to_text(at)),
            )
            if cur.rowcount:
                room = await self.db.fetchone("SELECT owner, kind FROM rooms WHERE room_id = ?", (room_id,))
                about = await self._note_whom_about(cur.lastrowid, content, room)
                if self.db.journal is not None:  # it may carry the records this transaction changes (its own copy)
                    room = None if room is None else (room["owner"], room["kind"])
                    self.db.journal.queued(cur.lastrowid, room_id, event_type, json.loads(text), about, room)
        return txn_id

    async def _note_whom_about(self, outbox_id: int, content: dict, room) -> set[str]:
        """Whom the message is about: the users it names or mentions, the owner of the room it goes to
        (``room``: its row of ``rooms``, if Ako has one)."""
        about = set(named_users(str(content.get("body") or "")))
        mentions = (content.get("m.mentions") or {}).get("user_ids") or []
        about.update(u for u in mentions if isinstance(u, str))
        if room is not None and room["kind"] in ("work", "dm") and room["owner"]:
            about.add(room["owner"])
        for user in about:
            await self.db.execute("INSERT OR IGNORE INTO outbox_about (user_id, outbox_id) VALUES (?, ?)", (user, outbox_id))
        return about

    async def about(self, user_id: str, rooms: list[str] = ()) -> list[SentAbout]:
        """Every message about the user, or sent to one of ``rooms``, oldest first."""
        marks = ",".join("?" * len(rooms))
        in_rooms = f" OR room_id IN ({marks})" if rooms else ""
        rows = await self.db.fetchall(
            "SELECT id, room_id, event_id, sent_at FROM outbox WHERE id IN (SELECT outbox_id FROM outbox_about WHERE user_id = ?)"
            f"{in_rooms} ORDER BY id",
            (user_id, *rooms),
        )
        return [SentAbout(r["id"], r["room_id"], r["event_id"], r["sent_at"] is not None) for r in rows]

    async def forget(self, outbox_ids: list[int]) -> None:
        """After their events are redacted: keep the rows (their transaction ids stop a resend) without
        the content; rows never sent are dropped so they never go out."""
        async with self.db.transaction():  # the caller's, usually
            for outbox_id in outbox_ids:
                await self.db.execute("DELETE FROM outbox WHERE id = ? AND sent_at IS NULL", (outbox_id,))
                if self.db.journal is not None:
                    self.db.journal.withdrawn(outbox_id)
                await self.db.execute(
                    "UPDATE outbox SET content = '{\"body\": \"\", \"redacted\": true}', last_error = NULL WHERE id = ?", (outbox_id,)
                )
                await self.db.execute("DELETE FROM outbox_about WHERE outbox_id = ?", (outbox_id,))
            self.db.after_commit(self._withdrew)

    def _withdrew(self) -> None:
        self.withdrawals += 1

    async def unsent(self, limit: int = 200, per_room: int | None = None, skip: Collection[int] = ()) -> list[Outgoing]:
        """Waiting rows, oldest first, leaving out the ids in ``skip`` (rows the caller holds already,
        so a long queue is not read and decoded again at every look). With ``per_room``, taken in
        turns: the first of every room, then the second of every room, … (each room's own order
        kept), so one room's burst of replies never holds up another class's receipts; and rooms
        with a message for people waiting come before rooms with only records to write
        (``nz.ako.record``, bookkeeping no one reads), so a reply never waits behind a backlog of
        records in other rooms."""
        if per_room is None:
            listed = await self.db.fetchall(
                "SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit + len(skip),)
            )
        else:
            listed = await self.db.fetchall(
                "SELECT id FROM ("
                " SELECT id, ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY id) AS turn,"
                " MAX(event_type <> ?) OVER (PARTITION BY room_id) AS for_people FROM outbox WHERE sent_at IS NULL"
                ") WHERE turn <= ? ORDER BY for_people DESC, turn, id LIMIT ?",
                (record_format.EVENT_TYPE, per_room, limit + len(skip)),
            )
        ids = [r[0] for r in listed if r[0] not in skip][:limit]
        found: dict[int, Outgoing] = {}
        for i in range(0, len(ids), _READ_BATCH):
            chunk = ids[i : i + _READ_BATCH]
            for r in await self.db.fetchall(
                "SELECT id, txn_id, room_id, event_type, content, attempts FROM outbox "
                f"WHERE id IN ({','.join('?' * len(chunk))}) AND sent_at IS NULL",
                chunk,
            ):
                found[r["id"]] = from_row(Outgoing, r)
        return [found[i] for i in ids if i in found]

    async def still_unsent(self, outgoing_id: int) -> Outgoing | None:
        """The row as it is now, if it is still waiting (``!forget`` may have withdrawn it)."""
        row = await self.db.fetchone(
            "SELECT id, txn_id, room_id, event_type, content, attempts FROM outbox WHERE id = ? AND sent_at IS NULL",
            (outgoing_id,),
        )
        return None if row is None else from_row(Outgoing, row)

    async def mark_sent(self, outgoing_id: int, event_id: str, at: datetime) -> bool:
        """False when the row was withdrawn while it was being sent: the event is out, its row is not."""
        cur = await self.db.execute(
            "UPDATE outbox SET sent_at = ?, event_id = ?, attempts = attempts + 1 WHERE id = ? AND sent_at IS NULL",
            (to_text(at), event_id, outgoing_id),
        )
        return cur.rowcount > 0

    async def mark_sent_many(self, sent: list[tuple[int, str]], at: datetime) -> set[int]:
        """Mark a batch of sent rows (id, event id) in one transaction; returns the ids that were
        withdrawn while they were being sent (their events are out, their rows are not)."""
        withdrawn = set()
        async with self.db.transaction():
            for outgoing_id, event_id in sent:
                if not await self.mark_sent(outgoing_id, event_id, at):
                    withdrawn.add(outgoing_id)
        return withdrawn

    async def mark_failed(self, outgoing_id: int, error: str, at: datetime) -> None:
        """A try that failed for a reason that may pass: the row stays waiting."""
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ? AND sent_at IS NULL",
            (error[:500], outgoing_id),
        )

    async def mark_undeliverable(self, outgoing_id: int, error: str, at: datetime) -> None:
        """The server said it can never arrive (room gone, Ako not in it): stop, and keep why."""
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, sent_at = ? WHERE id = ? AND sent_at IS NULL",
            (error[:500], to_text(at), outgoing_id),
        )

    async def undeliverable(self, limit: int = 20) -> tuple[int, list[Undeliverable]]:
        """How many messages could not be delivered, and the newest ``limit`` of them."""
        count = await self.db.fetchval(UNDELIVERABLE_COUNT)
        return count, [Undeliverable(*r) for r in await self.db.fetchall(UNDELIVERABLE_NEWEST, (limit,))]
