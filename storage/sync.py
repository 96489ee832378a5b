"""Where the bot is in the event stream: the sync token, processed events, joined rooms."""

from __future__ import annotations

from datetime import datetime

from .db import Database
from .models import to_text


class SyncState:
    def __init__(self, db: Database):
        self.db = db
        self._joined: set[str] | None = None  # the joined rooms, once loaded
        self.saved_position: str | None = None  # the committed next_batch, once read or saved

    async def next_batch(self) -> str | None:
        self.saved_position = await self.db.fetchval("SELECT value FROM sync_state WHERE key = 'next_batch'")
        return self.saved_position

    async def save_next_batch(self, token: str) -> None:
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO sync_state (key, value) VALUES ('next_batch', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (token,),
            )
            self.db.after_commit(lambda: setattr(self, "saved_position", token))

    async def is_processed(self, event_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)) is not None

    async def mark_processed(self, event_id: str, room_id: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, room_id, processed_at) VALUES (?, ?, ?)",
            (event_id, room_id, to_text(at)),
        )
        return cur.rowcount > 0

    async def load_joined(self) -> set[str]:
        """Read the joined rooms once; from then on :meth:`is_joined` answers from memory, kept
        right by :meth:`mark_joined` and :meth:`mark_left` (no query per room per sync)."""
        self._joined = {r[0] for r in await self.db.fetchall("SELECT room_id FROM joined_rooms")}
        return set(self._joined)

    def is_joined(self, room_id: str) -> bool:
        if self._joined is None:
            raise RuntimeError("SyncState.load_joined() first")
        return room_id in self._joined

    async def mark_joined(self, room_id: str, at: datetime) -> bool:
        """Record the room as joined; True when it was not before."""
        async with self.db.transaction():
            cur = await self.db.execute(
                "INSERT OR IGNORE INTO joined_rooms (room_id, joined_at) VALUES (?, ?)", (room_id, to_text(at))
            )
        if self._joined is not None:  # committed: memory follows the records
            self._joined.add(room_id)
        return cur.rowcount > 0

    async def mark_left(self, room_id: str) -> bool:
        """Forget the room as joined; True when it was joined."""
        async with self.db.transaction():
            cur = await self.db.execute("DELETE FROM joined_rooms WHERE room_id = ?", (room_id,))
        if self._joined is not None:
            self._joined.discard(room_id)
        return cur.rowcount > 0
