"""Classes, their members and the rooms the bot manages for them."""

from __future__ import annotations

from datetime import datetime

from .db import Repository
from .models import Class, ClassRole, Member, Room, RoomKind, from_row, to_text

_CLASS_COLUMNS = "id, name, code, code_enabled, timezone, server, created_by, archived_at IS NOT NULL AS archived"
_CLASS_COLUMNS_OF_C = ", ".join(f"c.{c}" for c in _CLASS_COLUMNS.split(", "))  # where the classes table is ``c``


class Classes(Repository):
    async def create(self, name: str, code: str, timezone: str, server: str, by: str, at: datetime) -> Class:
        cur = await self.db.execute(
            "INSERT INTO classes (name, code, timezone, server, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, code, timezone, server, by, to_text(at)),
        )
        await self.add_member(cur.lastrowid, by, ClassRole.TEACHER, by, at)
        return await self.get(cur.lastrowid)

    async def get(self, class_id: int) -> Class | None:
        row = await self.db.fetchone(f"SELECT {_CLASS_COLUMNS} FROM classes WHERE id = ?", (class_id,))
        return None if row is None else from_row(Class, row)

    async def by_code(self, code: str) -> Class | None:
        row = await self.db.fetchone(
            f"SELECT {_CLASS_COLUMNS} FROM classes WHERE code = ? COLLATE NOCASE", (code,)
        )
        return None if row is None else from_row(Class, row)

    async def code_taken(self, code: str) -> bool:
        return await self.by_code(code) is not None

    async def set_code(self, class_id: int, code: str) -> None:
        await self.db.execute("UPDATE classes SET code = ?, code_enabled = 1 WHERE id = ?", (code, class_id))

    async def set_code_enabled(self, class_id: int, enabled: bool) -> None:
        await self.db.execute("UPDATE classes SET code_enabled = ? WHERE id = ?", (int(enabled), class_id))

    async def set_timezone(self, class_id: int, tz: str) -> None:
        await self.db.execute("UPDATE classes SET timezone = ? WHERE id = ?", (tz, class_id))

    async def archive(self, class_id: int, at: datetime) -> None:
        await self.db.execute("UPDATE classes SET archived_at = ? WHERE id = ?", (to_text(at), class_id))

    async def count(self) -> int:
        return await self.db.fetchval("SELECT COUNT(*) FROM classes")

    async def of_user(self, user_id: str) -> list[tuple[Class, ClassRole]]:
        rows = await self.db.fetchall(
            f"SELECT {_CLASS_COLUMNS_OF_C}, m.role "
            "FROM classes c JOIN class_members m ON m.class_id = c.id WHERE m.user_id = ? ORDER BY c.name",
            (user_id,),
        )
        return [(from_row(Class, r), ClassRole(r["role"])) for r in rows]

    # --- members

    async def add_member(self, class_id: int, user_id: str, role: ClassRole, by: str, at: datetime) -> bool:
        """Add, or promote a learner to teacher. True when something changed."""
        current = await self.role_of(class_id, user_id)
        if current == role or (current == ClassRole.TEACHER and role == ClassRole.LEARNER):
            return False
        await self.db.execute(
            "INSERT INTO class_members (class_id, user_id, role, added_by, added_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(class_id, user_id) DO UPDATE SET role = excluded.role",
            (class_id, user_id, role, by, to_text(at)),
        )
        return True

    async def remove_member(self, class_id: int, user_id: str) -> bool:
        cur = await self.db.execute(
            "DELETE FROM class_members WHERE class_id = ? AND user_id = ?", (class_id, user_id)
        )
        return cur.rowcount > 0

    async def role_of(self, class_id: int, user_id: str) -> ClassRole | None:
        role = await self.db.fetchval(
            "SELECT role FROM class_members WHERE class_id = ? AND user_id = ?", (class_id, user_id)
        )
        return None if role is None else ClassRole(role)

    async def members(self, class_id: int, role: ClassRole | None = None) -> list[Member]:
        sql = "SELECT user_id, role FROM class_members WHERE class_id = ?"
        params: tuple = (class_id,)
        if role:
            sql += " AND role = ?"
            params += (role,)
        rows = await self.db.fetchall(sql + " ORDER BY role DESC, user_id", params)
        return [from_row(Member, r) for r in rows]


class Rooms(Repository):
    async def add(self, room_id: str, kind: RoomKind, class_id: int | None, owner: str | None, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO rooms (room_id, kind, class_id, owner, created_at) VALUES (?, ?, ?, ?, ?)",
            (room_id, kind, class_id, owner, to_text(at)),
        )

    async def get(self, room_id: str) -> Room | None:
        row = await self.db.fetchone("SELECT room_id, kind, class_id, owner FROM rooms WHERE room_id = ?", (room_id,))
        return None if row is None else from_row(Room, row)

    async def with_class(self, room_id: str) -> tuple[Room | None, Class | None]:
        """The room and the class it belongs to (if any), in one query: where every command starts."""
        row = await self.db.fetchone(
            f"SELECT r.room_id, r.kind, r.class_id, r.owner, {_CLASS_COLUMNS_OF_C} FROM rooms r LEFT JOIN classes c ON c.id = r.class_id "
            "WHERE r.room_id = ?",
            (room_id,),
        )
        if row is None:
            return None, None
        return from_row(Room, row), None if row["id"] is None else from_row(Class, row)

    async def of_class(self, class_id: int, kind: RoomKind) -> Room | None:
        row = await self.db.fetchone(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE class_id = ? AND kind = ? ORDER BY created_at LIMIT 1",
            (class_id, kind),
        )
        return None if row is None else from_row(Room, row)

    async def all_of_class(self, class_id: int) -> list[Room]:
        rows = await self.db.fetchall(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE class_id = ?", (class_id,)
        )
        return [from_row(Room, r) for r in rows]

    async def work_room(self, class_id: int, learner: str) -> Room | None:
        row = await self.db.fetchone(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE class_id = ? AND kind = 'work' AND owner = ?",
            (class_id, learner),
        )
        return None if row is None else from_row(Room, row)

    async def of_every_class(self) -> list[Room]:
        """Every room that belongs to a class (spaces, class, staff and work rooms)."""
        rows = await self.db.fetchall(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE class_id IS NOT NULL ORDER BY class_id, created_at"
        )
        return [from_row(Room, r) for r in rows]

    async def dms_on(self, server: str) -> list[Room]:
        """Direct messages with users of one server."""
        rows = await self.db.fetchall(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE kind = 'dm' AND owner LIKE ?", (f"%:{server}",)
        )
        return [from_row(Room, r) for r in rows if r["owner"].split(":", 1)[1] == server]

    async def dms_of(self, user_id: str) -> list[Room]:
        """Every room recorded as the user's direct message with Ako, newest first."""
        rows = await self.db.fetchall(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE kind = 'dm' AND owner = ? ORDER BY created_at DESC, rowid DESC",
            (user_id,),
        )
        return [from_row(Room, r) for r in rows]

    async def dm_of(self, user_id: str) -> Room | None:
        row = await self.db.fetchone(
            "SELECT room_id, kind, class_id, owner FROM rooms WHERE kind = 'dm' AND owner = ? ORDER BY created_at DESC LIMIT 1",
            (user_id,),
        )
        return None if row is None else from_row(Room, row)

    async def remove(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM rooms WHERE room_id = ?", (room_id,))
