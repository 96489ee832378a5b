"""Schools of the cluster, their admins, and their staff."""

from __future__ import annotations

from datetime import datetime

from .db import Repository
from .models import School, to_text


class Schools(Repository):
    async def add(self, server: str, name: str, by: str, at: datetime) -> bool:
        """Register a school, or rename it. True when it is new."""
        existed = await self.get(server) is not None
        await self.db.execute(
            "INSERT INTO schools (server, name, added_by, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(server) DO UPDATE SET name = excluded.name",
            (server, name, by, to_text(at)),
        )
        return not existed

    async def get(self, server: str) -> School | None:
        row = await self.db.fetchone("SELECT server, name FROM schools WHERE server = ?", (server,))
        if row is None:
            return None
        admins = await self.db.fetchall(
            "SELECT user_id FROM school_admins WHERE server = ? ORDER BY user_id", (server,)
        )
        return School(row["server"], row["name"], tuple(a["user_id"] for a in admins))

    async def all(self) -> list[School]:
        rows = await self.db.fetchall("SELECT server FROM schools ORDER BY name, server")
        return [s for r in rows if (s := await self.get(r["server"])) is not None]

    async def add_admin(self, server: str, user_id: str, by: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO school_admins (server, user_id, added_by, added_at) VALUES (?, ?, ?, ?)",
            (server, user_id, by, to_text(at)),
        )
        return cur.rowcount > 0

    async def admin_of(self, user_id: str) -> frozenset[str]:
        rows = await self.db.fetchall("SELECT server FROM school_admins WHERE user_id = ?", (user_id,))
        return frozenset(r["server"] for r in rows)


class Staff(Repository):
    async def add(self, user_id: str, server: str, by: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO staff (user_id, server, added_by, added_at) VALUES (?, ?, ?, ?)",
            (user_id, server, by, to_text(at)),
        )
        return cur.rowcount > 0

    async def remove(self, user_id: str) -> bool:
        cur = await self.db.execute("DELETE FROM staff WHERE user_id = ?", (user_id,))
        return cur.rowcount > 0

    async def is_staff(self, user_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM staff WHERE user_id = ?", (user_id,)) is not None

    async def of_school(self, server: str | None = None) -> list[tuple[str, str]]:
        """(user_id, server) of staff, of one school or all."""
        if server is None:
            rows = await self.db.fetchall("SELECT user_id, server FROM staff ORDER BY server, user_id")
        else:
            rows = await self.db.fetchall(
                "SELECT user_id, server FROM staff WHERE server = ? ORDER BY user_id", (server,)
            )
        return [(r["user_id"], r["server"]) for r in rows]
