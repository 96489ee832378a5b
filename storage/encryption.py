"""Records of end-to-end encryption: messages waiting for their room key, and senders told of a failure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from .db import Repository
from .models import from_row, to_text


@dataclass(frozen=True)
class Undecrypted:
    event_id: str
    room_id: str
    sender: str
    session_id: str
    source: dict
    received_at: datetime


class EncryptionRecords(Repository):
    async def registered_servers(self) -> frozenset[str]:
        """The homeservers of the cluster's schools (whose users' devices the bot trusts on first use)."""
        return frozenset(r["server"] for r in await self.db.fetchall("SELECT server FROM schools"))

    async def blocked_servers(self) -> frozenset[str]:
        """Servers an operator blocked: their users' devices never get a room key, guests allowed or not."""
        return frozenset(r["server"] for r in await self.db.fetchall("SELECT server FROM blocked_servers"))

    async def pinned_identity(self, user_id: str) -> str | None:
        """The cross-signing master key first seen for a user (trusted on first use)."""
        return await self.db.fetchval("SELECT master_key FROM pinned_identities WHERE user_id = ?", (user_id,))

    async def pin_identity(self, user_id: str, master_key: str, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO pinned_identities (user_id, master_key, pinned_at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET master_key = excluded.master_key, pinned_at = excluded.pinned_at",
            (user_id, master_key, to_text(at)),
        )

    async def wait_for_key(self, event: Undecrypted) -> bool:
        """Keep an encrypted message until its key arrives. False when it was already kept."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO undecrypted_events (event_id, room_id, sender, session_id, source, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (event.event_id, event.room_id, event.sender, event.session_id, json.dumps(event.source), to_text(event.received_at)),
        )
        return cur.rowcount > 0

    async def waiting(self) -> list[Undecrypted]:
        rows = await self.db.fetchall(
            "SELECT event_id, room_id, sender, session_id, source, received_at FROM undecrypted_events ORDER BY received_at"
        )
        return [from_row(Undecrypted, r) for r in rows]

    async def done_waiting(self, event_id: str) -> None:
        await self.db.execute("DELETE FROM undecrypted_events WHERE event_id = ?", (event_id,))

    async def record_notice(self, room_id: str, sender: str, event_id: str, at: datetime) -> bool:
        """Remember that the sender was told in this room. False when they had been told before."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO decryption_notices (room_id, sender, event_id, told_at) VALUES (?, ?, ?, ?)",
            (room_id, sender, event_id, to_text(at)),
        )
        return cur.rowcount > 0

    async def notices(self) -> list[tuple[str, str]]:
        rows = await self.db.fetchall("SELECT room_id, sender FROM decryption_notices ORDER BY told_at")
        return [(r["room_id"], r["sender"]) for r in rows]
