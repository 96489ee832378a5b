"""The cluster's shared rooms (staffroom, library), subject rooms, and programmes of learning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from .db import Repository
from .models import ShortId, Titled, from_row, to_text

# --- models


@dataclass(frozen=True)
class SubjectRoom:
    id: int
    name: str
    room_id: str
    created_by: str
    members: int


@dataclass(frozen=True)
class Programme(Titled):
    letter, numbered_by = "P", "id"

    id: int
    title: str
    room_id: str | None
    version: int
    created_by: str
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True)
class ProgrammeItem(ShortId):
    letter = "I"

    id: int
    programme_id: int
    number: int
    position: int | None
    kind: str  # assignment | resource
    title: str
    body: str
    points: float | None
    due: str | None  # an offset as text: "week 2 fri 17:00"
    publish: str | None
    source: str | None
    created_by: str

    @property
    def label(self) -> str:
        return f"{self.short_id} — {self.title}"


@dataclass(frozen=True)
class Change:
    version: int
    actor: str
    summary: str
    at: datetime


@dataclass(frozen=True)
class Use:
    id: int
    programme_id: int
    version: int
    class_id: int
    start: date
    timezone: str
    used_by: str
    used_at: datetime


# --- repositories


class ClusterRooms(Repository):
    """The staffroom space, its general room and the library: one of each per cluster."""

    async def get(self, kind: str) -> str | None:
        return await self.db.fetchval("SELECT room_id FROM cluster_rooms WHERE kind = ?", (kind,))

    async def alias(self, kind: str) -> str | None:
        return await self.db.fetchval("SELECT alias FROM cluster_rooms WHERE kind = ?", (kind,))

    async def put(self, kind: str, room_id: str, at: datetime, alias: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO cluster_rooms (kind, room_id, alias, created_at) VALUES (?, ?, ?, ?)",
            (kind, room_id, alias, to_text(at)),
        )


class Subjects(Repository):
    _SELECT = (
        "SELECT s.id, s.name, s.room_id, s.created_by, "
        "(SELECT COUNT(*) FROM subject_members m WHERE m.subject_id = s.id) AS members FROM subject_rooms s"
    )

    async def by_name(self, name: str) -> SubjectRoom | None:
        row = await self.db.fetchone(f"{self._SELECT} WHERE s.name = ? COLLATE NOCASE", (name,))
        return None if row is None else from_row(SubjectRoom, row)

    async def add(self, name: str, room_id: str, by: str, at: datetime) -> SubjectRoom:
        await self.db.execute(
            "INSERT INTO subject_rooms (name, room_id, created_by, created_at) VALUES (?, ?, ?, ?)",
            (name, room_id, by, to_text(at)),
        )
        return await self.by_name(name)

    async def all(self) -> list[SubjectRoom]:
        return [from_row(SubjectRoom, r) for r in await self.db.fetchall(f"{self._SELECT} ORDER BY s.name")]

    async def add_member(self, subject_id: int, user_id: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO subject_members (subject_id, user_id, added_at) VALUES (?, ?, ?)",
            (subject_id, user_id, to_text(at)),
        )
        return cur.rowcount > 0

    async def members(self, subject_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT user_id FROM subject_members WHERE subject_id = ? ORDER BY user_id", (subject_id,)
        )
        return [r["user_id"] for r in rows]

    async def rooms_of(self, user_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT s.room_id FROM subject_rooms s JOIN subject_members m ON m.subject_id = s.id WHERE m.user_id = ?",
            (user_id,),
        )
        return [r["room_id"] for r in rows]

    async def forget_member(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM subject_members WHERE user_id = ?", (user_id,))


_PROGRAMME_COLUMNS = "id, title, room_id, version, created_by, created_at, published_at"
_ITEM_COLUMNS = (
    "id, programme_id, number, position, kind, title, body, points, due, publish, source, created_by"
)


class Programmes(Repository):
    # --- the programme

    async def create(self, title: str, by: str, at: datetime) -> Programme:
        """A new programme at version 1, its creator its first author, its creation the first change."""
        async with self.db.transaction():
            cur = await self.db.execute(
                "INSERT INTO programmes (title, created_by, created_at) VALUES (?, ?, ?)", (title, by, to_text(at))
            )
            pid = cur.lastrowid
            await self.add_author(pid, by, by, at)
            await self.db.execute(
                "INSERT INTO programme_changes (programme_id, version, actor, summary, at) VALUES (?, 1, ?, ?, ?)",
                (pid, by, f"created “{title}”", to_text(at)),
            )
        return await self.get(pid)

    async def set_room(self, programme_id: int, room_id: str) -> None:
        await self.db.execute("UPDATE programmes SET room_id = ? WHERE id = ?", (room_id, programme_id))

    async def get(self, programme_id: int) -> Programme | None:
        row = await self.db.fetchone(f"SELECT {_PROGRAMME_COLUMNS} FROM programmes WHERE id = ?", (programme_id,))
        return None if row is None else from_row(Programme, row)

    async def by_room(self, room_id: str) -> Programme | None:
        """The programme whose own room this is."""
        row = await self.db.fetchone(f"SELECT {_PROGRAMME_COLUMNS} FROM programmes WHERE room_id = ?", (room_id,))
        return None if row is None else from_row(Programme, row)

    async def all(self) -> list[Programme]:
        return [from_row(Programme, r) for r in await self.db.fetchall(f"SELECT {_PROGRAMME_COLUMNS} FROM programmes ORDER BY id")]

    async def published(self) -> list[Programme]:
        rows = await self.db.fetchall(
            f"SELECT {_PROGRAMME_COLUMNS} FROM programmes WHERE published_at IS NOT NULL ORDER BY title, id"
        )
        return [from_row(Programme, r) for r in rows]

    async def set_published(self, programme_id: int, by: str | None, at: datetime | None) -> None:
        await self.db.execute(
            "UPDATE programmes SET published_at = ?, published_by = ? WHERE id = ?",
            (to_text(at), by, programme_id),
        )

    async def record_change(self, programme_id: int, actor: str, summary: str, at: datetime) -> int:
        """The next version of the programme, with what changed and who changed it."""
        async with self.db.transaction():
            await self.db.execute("UPDATE programmes SET version = version + 1 WHERE id = ?", (programme_id,))
            version = await self.db.fetchval("SELECT version FROM programmes WHERE id = ?", (programme_id,))
            await self.db.execute(
                "INSERT INTO programme_changes (programme_id, version, actor, summary, at) VALUES (?, ?, ?, ?, ?)",
                (programme_id, version, actor, summary, to_text(at)),
            )
        return version

    async def history(self, programme_id: int) -> list[Change]:
        rows = await self.db.fetchall(
            "SELECT version, actor, summary, at FROM programme_changes WHERE programme_id = ? ORDER BY version",
            (programme_id,),
        )
        return [from_row(Change, r) for r in rows]

    # --- authors

    async def add_author(self, programme_id: int, user_id: str, by: str, at: datetime) -> bool:
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO programme_authors (programme_id, user_id, added_by, added_at) VALUES (?, ?, ?, ?)",
            (programme_id, user_id, by, to_text(at)),
        )
        return cur.rowcount > 0

    async def authors(self, programme_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT user_id FROM programme_authors WHERE programme_id = ? ORDER BY added_at, user_id", (programme_id,)
        )
        return [r["user_id"] for r in rows]

    async def is_author(self, programme_id: int, user_id: str) -> bool:
        return (
            await self.db.fetchval(
                "SELECT 1 FROM programme_authors WHERE programme_id = ? AND user_id = ?", (programme_id, user_id)
            )
            is not None
        )

    # --- items

    async def items(self, programme_id: int) -> list[ProgrammeItem]:
        """The programme's items in order (removed ones left out)."""
        rows = await self.db.fetchall(
            f"SELECT {_ITEM_COLUMNS} FROM programme_items WHERE programme_id = ? AND removed_at IS NULL ORDER BY position",
            (programme_id,),
        )
        return [from_row(ProgrammeItem, r) for r in rows]

    async def item(self, programme_id: int, number: int) -> ProgrammeItem | None:
        row = await self.db.fetchone(
            f"SELECT {_ITEM_COLUMNS} FROM programme_items WHERE programme_id = ? AND number = ? AND removed_at IS NULL",
            (programme_id, number),
        )
        return None if row is None else from_row(ProgrammeItem, row)

    async def add_item(
        self, programme_id: int, kind: str, title: str, body: str, points: float | None, due: str | None,
        publish: str | None, source: str | None, by: str, at: datetime,
    ) -> ProgrammeItem:
        """A new item at the end, with the programme's next item number."""
        async with self.db.transaction():
            await self.db.execute("UPDATE programmes SET last_item = last_item + 1 WHERE id = ?", (programme_id,))
            number = await self.db.fetchval("SELECT last_item FROM programmes WHERE id = ?", (programme_id,))
            position = await self.db.fetchval(
                "SELECT COUNT(*) FROM programme_items WHERE programme_id = ? AND removed_at IS NULL", (programme_id,)
            ) + 1
            await self.db.execute(
                "INSERT INTO programme_items (programme_id, number, position, kind, title, body, points, due, publish, "
                "source, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (programme_id, number, position, kind, title, body, points, due, publish, source, by, to_text(at)),
            )
        return await self.item(programme_id, number)

    async def move_item(self, programme_id: int, number: int, position: int) -> None:
        """Put the item at ``position`` (1-based, clamped), shifting the others."""
        async with self.db.transaction():
            order = [i.number for i in await self.items(programme_id)]
            order.remove(number)
            order.insert(max(0, min(position - 1, len(order))), number)
            await self._renumber(programme_id, order)

    async def remove_item(self, programme_id: int, number: int, at: datetime) -> None:
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE programme_items SET removed_at = ?, position = NULL WHERE programme_id = ? AND number = ?",
                (to_text(at), programme_id, number),
            )
            await self._renumber(programme_id, [i.number for i in await self.items(programme_id)])

    async def _renumber(self, programme_id: int, order: list[int]) -> None:
        for position, number in enumerate(order, start=1):
            await self.db.execute(
                "UPDATE programme_items SET position = ? WHERE programme_id = ? AND number = ?",
                (position, programme_id, number),
            )

    # --- uses in classes

    async def use_in(self, programme_id: int, class_id: int) -> Use | None:
        row = await self.db.fetchone(
            "SELECT * FROM programme_uses WHERE programme_id = ? AND class_id = ?", (programme_id, class_id)
        )
        return None if row is None else _use(row)

    async def record_use(
        self, programme_id: int, version: int, class_id: int, start: date, timezone: str, by: str, at: datetime,
        assignments: dict[int, int | None],
    ) -> Use:
        """The programme (at ``version``) was put into the class; ``assignments``: item number → assignment id."""
        async with self.db.transaction():
            cur = await self.db.execute(
                "INSERT INTO programme_uses (programme_id, version, class_id, start_date, timezone, used_by, used_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (programme_id, version, class_id, start.isoformat(), timezone, by, to_text(at)),
            )
            for number, assignment_id in assignments.items():
                await self.db.execute(
                    "INSERT INTO programme_use_items (use_id, item_number, assignment_id) VALUES (?, ?, ?)",
                    (cur.lastrowid, number, assignment_id),
                )
        return await self.use_in(programme_id, class_id)

    async def uses(self, programme_id: int) -> list[Use]:
        rows = await self.db.fetchall(
            "SELECT * FROM programme_uses WHERE programme_id = ? ORDER BY used_at", (programme_id,)
        )
        return [_use(r) for r in rows]

    async def use_items(self, use_id: int) -> dict[int, int | None]:
        rows = await self.db.fetchall(
            "SELECT item_number, assignment_id FROM programme_use_items WHERE use_id = ? ORDER BY item_number", (use_id,)
        )
        return {r["item_number"]: r["assignment_id"] for r in rows}


def _use(row) -> Use:
    return from_row(Use, row, start=date.fromisoformat(row["start_date"]))
