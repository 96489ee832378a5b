"""Forum topics (thread roots the bot posted) and the thread replies counted in them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Repository
from .models import ShortId, from_row, from_text, to_text


@dataclass(frozen=True)
class Topic(ShortId):
    letter = "T"

    id: int
    class_id: int
    number: int
    title: str
    body: str
    author: str
    room_id: str
    root_txn_id: str
    created_at: datetime
    closed_at: datetime | None
    pinned: bool

    @property
    def label(self) -> str:
        return f"{self.short_id} · {self.title}"

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


@dataclass(frozen=True)
class TopicActivity:
    """A topic with what has happened in its thread."""

    topic: Topic
    replies: int
    repliers: int  # distinct people
    last_activity: datetime
    answered: bool  # a teacher of the class has replied


_COLUMNS = "t.id, t.class_id, t.number, t.title, t.body, t.author, t.room_id, t.root_txn_id, t.created_at, t.closed_at, t.pinned_at IS NOT NULL AS pinned"


class Topics(Repository):
    async def next_number(self, class_id: int) -> int:
        return 1 + await self.db.fetchval("SELECT COALESCE(MAX(number), 0) FROM topics WHERE class_id = ?", (class_id,))

    async def create(
        self, class_id: int, number: int, title: str, body: str, author: str, room_id: str, root_txn_id: str, at: datetime
    ) -> Topic:
        """Record a topic; call inside the transaction that queues its root with ``root_txn_id``."""
        cur = await self.db.execute(
            "INSERT INTO topics (class_id, number, title, body, author, room_id, root_txn_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (class_id, number, title, body, author, room_id, root_txn_id, to_text(at)),
        )
        return await self.get(cur.lastrowid)

    async def get(self, topic_id: int) -> Topic | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM topics t WHERE t.id = ?", (topic_id,))
        return None if row is None else from_row(Topic, row)

    async def by_number(self, class_id: int, number: int) -> Topic | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM topics t WHERE t.class_id = ? AND t.number = ?", (class_id, number))
        return None if row is None else from_row(Topic, row)

    async def by_root(self, room_id: str, root_event_id: str) -> Topic | None:
        """The topic whose thread root is this event: the root was sent through the outbox."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM outbox o JOIN topics t ON t.root_txn_id = o.txn_id "
            "WHERE o.event_id = ? AND o.room_id = ?",
            (root_event_id, room_id),
        )
        return None if row is None else from_row(Topic, row)

    async def root_event(self, topic: Topic) -> str | None:
        """The thread root's event id; None until the outbox has sent it."""
        return await self.db.fetchval("SELECT event_id FROM outbox WHERE txn_id = ?", (topic.root_txn_id,))

    async def add_reply(self, topic_id: int, event_id: str, sender: str, by_teacher: bool, at: datetime) -> bool:
        """Count one thread reply; False when it was counted before."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO topic_replies (event_id, topic_id, sender, by_teacher, sent_at) VALUES (?, ?, ?, ?, ?)",
            (event_id, topic_id, sender, int(by_teacher), to_text(at)),
        )
        return cur.rowcount > 0

    async def set_closed(self, topic_id: int, by: str | None, at: datetime | None) -> None:
        await self.db.execute(
            "UPDATE topics SET closed_at = ?, closed_by = ? WHERE id = ?",
            (to_text(at), by, topic_id),
        )

    async def set_pinned(self, topic_id: int, at: datetime | None) -> None:
        await self.db.execute(
            "UPDATE topics SET pinned_at = ? WHERE id = ?", (to_text(at), topic_id)
        )

    async def activity(self, class_id: int, include_closed: bool = False) -> list[TopicActivity]:
        """The class's topics with their reply counts: pinned first, then the most recently active."""
        where = "" if include_closed else " AND t.closed_at IS NULL"
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS}, COUNT(r.event_id) AS replies, COUNT(DISTINCT r.sender) AS repliers, "
            "MAX(r.sent_at) AS last_reply, COALESCE(MAX(r.by_teacher), 0) AS answered "
            f"FROM topics t LEFT JOIN topic_replies r ON r.topic_id = t.id WHERE t.class_id = ?{where} "
            "GROUP BY t.id",
            (class_id,),
        )
        found = [
            TopicActivity(
                from_row(Topic, r), r["replies"], r["repliers"],
                max(from_text(r["created_at"]), from_text(r["last_reply"]) or from_text(r["created_at"])),
                bool(r["answered"]),
            )
            for r in rows
        ]
        found.sort(key=lambda a: (not a.topic.pinned, -a.last_activity.timestamp(), a.topic.number))
        return found

    async def created_between(self, class_id: int, start: datetime, end: datetime) -> list[Topic]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM topics t WHERE t.class_id = ? AND t.created_at >= ? AND t.created_at < ? ORDER BY t.number",
            (class_id, to_text(start), to_text(end)),
        )
        return [from_row(Topic, r) for r in rows]

    async def replies_between(self, class_id: int, start: datetime, end: datetime) -> list[tuple[Topic, int]]:
        """Topics of the class with replies in [start, end), and how many."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS}, COUNT(*) AS n FROM topic_replies r JOIN topics t ON t.id = r.topic_id "
            "WHERE t.class_id = ? AND r.sent_at >= ? AND r.sent_at < ? GROUP BY t.id ORDER BY t.number",
            (class_id, to_text(start), to_text(end)),
        )
        return [(from_row(Topic, r), r["n"]) for r in rows]
