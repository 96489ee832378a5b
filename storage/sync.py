"""Where the bot is in the event stream: the sync token, processed events, joined rooms."""

from __future__ import annotations

from datetime import datetime

from .db import Database
from .models import to_text


class SyncState:
    def __init__(self, db: Database):
        self.db = db

    async def next_batch(self) -> str | None:
        return await self.db.fetchval("SELECT value FROM sync_state WHERE key = 'next_batch'")

    async def save_next_batch(self, token: str) -> None:
        await self.db.execute(
            "INSERT INTO sync_state (key, value) VALUES ('next_batch', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (token,),
        )

    async def is_processed(self, event_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)) is not None

    async def mark_processed(self, event_id: str, room_id: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, room_id, processed_at) VALUES (?, ?, ?)",
            (event_id, room_id, to_text(at)),
        )
        return cur.rowcount > 0

    async def is_joined(self, room_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM joined_rooms WHERE room_id = ?", (room_id,)) is not None

    async def mark_joined(self, room_id: str, at: datetime) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO joined_rooms (room_id, joined_at) VALUES (?, ?)", (room_id, to_text(at))
        )

    async def mark_left(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM joined_rooms WHERE room_id = ?", (room_id,))
