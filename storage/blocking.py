"""Servers an operator has blocked (`!school block`)."""

from __future__ import annotations

from datetime import datetime

from .db import Repository
from .models import to_text


class BlockedServers(Repository):
    async def add(self, server: str, by: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO blocked_servers (server, blocked_by, blocked_at) VALUES (?, ?, ?)", (server, by, to_text(at))
        )
        return cur.rowcount > 0

    async def remove(self, server: str) -> bool:
        cur = await self.db.execute("DELETE FROM blocked_servers WHERE server = ?", (server,))
        return cur.rowcount > 0

    async def all(self) -> list[str]:
        rows = await self.db.fetchall("SELECT server FROM blocked_servers ORDER BY server")
        return [r["server"] for r in rows]

    async def is_blocked(self, server: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM blocked_servers WHERE server = ?", (server,)) is not None
