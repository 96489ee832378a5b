"""Messages waiting to be sent, each with a transaction id fixed before the first attempt."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from .db import Database
from .models import to_text


@dataclass(frozen=True)
class Outgoing:
    id: int
    txn_id: str
    room_id: str
    event_type: str
    content: dict
    attempts: int


class Outbox:
    def __init__(self, db: Database):
        self.db = db

    async def put(self, room_id: str, event_type: str, content: dict, at: datetime, txn_id: str | None = None) -> str:
        txn_id = txn_id or f"ako.{uuid.uuid4().hex}"
        await self.db.execute(
            "INSERT OR IGNORE INTO outbox (txn_id, room_id, event_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
            (txn_id, room_id, event_type, json.dumps(content, ensure_ascii=False), to_text(at)),
        )
        return txn_id

    async def unsent(self, limit: int = 200) -> list[Outgoing]:
        rows = await self.db.fetchall(
            "SELECT id, txn_id, room_id, event_type, content, attempts FROM outbox "
            "WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            Outgoing(r["id"], r["txn_id"], r["room_id"], r["event_type"], json.loads(r["content"]), r["attempts"])
            for r in rows
        ]

    async def mark_sent(self, outgoing_id: int, event_id: str, at: datetime) -> None:
        await self.db.execute(
            "UPDATE outbox SET sent_at = ?, event_id = ?, attempts = attempts + 1 WHERE id = ?",
            (to_text(at), event_id, outgoing_id),
        )

    async def mark_failed(self, outgoing_id: int, error: str, give_up: bool, at: datetime) -> None:
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, sent_at = CASE WHEN ? THEN ? ELSE NULL END "
            "WHERE id = ?",
            (error[:500], int(give_up), to_text(at), outgoing_id),
        )

    async def sent_event(self, txn_id: str) -> str | None:
        return await self.db.fetchval("SELECT event_id FROM outbox WHERE txn_id = ?", (txn_id,))
