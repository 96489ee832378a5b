"""Reminders, the scheduler's ledger, and when the coursework says things will happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Repository
from .models import ShortId, from_row, from_text, to_text


@dataclass(frozen=True)
class Reminder(ShortId):
    letter, numbered_by = "R", "id"

    id: int
    class_id: int | None  # None: a personal reminder (!remindme)
    created_by: str
    room_id: str
    text: str
    next_at: datetime | None
    weekdays: tuple[int, ...] | None  # recurring on these days (Monday = 0); None: once
    local_time: str | None  # recurring: "HH:MM"
    timezone: str
    created_at: datetime
    cancelled_at: datetime | None

    @property
    def recurring(self) -> bool:
        return self.weekdays is not None

    @property
    def personal(self) -> bool:
        return self.class_id is None


_COLUMNS = "id, class_id, created_by, room_id, text, next_at, weekdays, local_time, timezone, created_at, cancelled_at"


def _reminder(row) -> Reminder:
    days = row["weekdays"]
    return from_row(Reminder, row, weekdays=None if days is None else tuple(int(d) for d in days.split(",") if d))


class Reminders(Repository):
    async def add(
        self,
        *,
        class_id: int | None,
        created_by: str,
        room_id: str,
        text: str,
        next_at: datetime,
        timezone: str,
        at: datetime,
        weekdays: tuple[int, ...] | None = None,
        local_time: str | None = None,
    ) -> Reminder:
        reminder_id = await self.db.fetchval("UPDATE id_sequences SET last = last + 1 WHERE name = 'reminders' RETURNING last")
        cur = await self.db.execute(
            "INSERT INTO reminders (id, class_id, created_by, room_id, text, next_at, weekdays, local_time, timezone, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                reminder_id, class_id, created_by, room_id, text, to_text(next_at),
                None if weekdays is None else ",".join(str(d) for d in sorted(weekdays)),
                local_time, timezone, to_text(at),
            ),
        )
        return await self.get(cur.lastrowid)

    async def get(self, reminder_id: int) -> Reminder | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM reminders WHERE id = ?", (reminder_id,))
        return None if row is None else _reminder(row)

    async def due(self, now: datetime) -> list[Reminder]:
        """Reminders whose next time has come."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM reminders WHERE next_at IS NOT NULL AND next_at <= ? ORDER BY next_at, id", (to_text(now),)
        )
        return [_reminder(r) for r in rows]

    async def pending(self) -> list[Reminder]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM reminders WHERE next_at IS NOT NULL ORDER BY next_at, id")
        return [_reminder(r) for r in rows]

    async def pending_of_class(self, class_id: int) -> list[Reminder]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM reminders WHERE class_id = ? AND next_at IS NOT NULL ORDER BY next_at, id", (class_id,)
        )
        return [_reminder(r) for r in rows]

    async def pending_personal(self, user_id: str) -> list[Reminder]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM reminders WHERE class_id IS NULL AND created_by = ? AND next_at IS NOT NULL "
            "ORDER BY next_at, id",
            (user_id,),
        )
        return [_reminder(r) for r in rows]

    async def set_next(self, reminder_id: int, next_at: datetime | None) -> None:
        await self.db.execute(
            "UPDATE reminders SET next_at = ? WHERE id = ?", (to_text(next_at), reminder_id)
        )

    async def cancel(self, reminder_id: int, by: str, at: datetime) -> None:
        await self.db.execute(
            "UPDATE reminders SET next_at = NULL, cancelled_at = ?, cancelled_by = ? WHERE id = ?", (to_text(at), by, reminder_id)
        )


class Ledger(Repository):
    """One row per thing that fell due, written with the messages it queued."""

    async def record(self, key: str, due_at: datetime, outcome: str, at: datetime) -> bool:
        """Note what became of ``key``; False when it had been handled before (then do nothing)."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO schedule_ledger (key, due_at, outcome, done_at) VALUES (?, ?, ?, ?)",
            (key, to_text(due_at), outcome, to_text(at)),
        )
        return cur.rowcount > 0

    async def outcome(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT outcome FROM schedule_ledger WHERE key = ?", (key,))

    async def handled(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = await self.db.fetchall(
                f"SELECT key FROM schedule_ledger WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(r["key"] for r in rows)
        return found


class Calendar(Repository):
    """When the coursework records say something will happen (read-only over their tables)."""

    async def to_publish_after(self, moment: datetime) -> list[tuple[int, datetime]]:
        """(assignment id, publish time) of assignments still to be posted later than ``moment``."""
        rows = await self.db.fetchall(
            "SELECT id, publish_at FROM assignments WHERE published_at IS NULL AND deleted_at IS NULL "
            "AND publish_at IS NOT NULL AND publish_at > ? ORDER BY publish_at, id",
            (to_text(moment),),
        )
        return [(r["id"], from_text(r["publish_at"])) for r in rows]

    async def extended_between(self, start: datetime, end: datetime) -> list[int]:
        """Assignments with a personal due time in [start, end)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT assignment_id FROM extensions WHERE due_at >= ? AND due_at < ?", (to_text(start), to_text(end))
        )
        return [r["assignment_id"] for r in rows]
