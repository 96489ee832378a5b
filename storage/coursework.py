"""Coursework records: assignments, extensions, submissions, grades, returns.

The lateness rules live on :class:`Assignment` because every view (receipts, lists, exports,
reminders) must apply the same ones: a learner's extension replaces the due time, and pushes
the cutoff back when it is later than the cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from .db import Database, Repository
from .models import Titled, from_row, to_text

# --- models


@dataclass(frozen=True)
class Extension:
    assignment_id: int
    learner: str
    due_at: datetime
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class Assignment(Titled):
    letter = "A"

    id: int
    class_id: int
    number: int
    title: str
    description: str
    points: float
    due_at: datetime
    cutoff_at: datetime | None
    publish_at: datetime | None
    published_at: datetime | None
    closed_at: datetime | None
    deleted_at: datetime | None
    copied_from: int | None
    created_by: str
    created_at: datetime

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def due_for(self, extension: Extension | None) -> datetime:
        """The learner's due time: their extension when they have one."""
        return extension.due_at if extension else self.due_at

    def cutoff_for(self, extension: Extension | None) -> datetime | None:
        """The learner's last moment to submit; an extension past the cutoff moves it."""
        if self.cutoff_at is None:
            return None
        if extension and extension.due_at > self.cutoff_at:
            return extension.due_at
        return self.cutoff_at

    def late_by(self, at: datetime, extension: Extension | None) -> timedelta | None:
        """How late work received at ``at`` is; None when on time."""
        late = at - self.due_for(extension)
        return late if late > timedelta() else None


@dataclass(frozen=True)
class SubmittedFile:
    url: str  # mxc://
    name: str
    mimetype: str | None
    size: int | None  # bytes


@dataclass(frozen=True)
class Submission:
    id: int
    assignment_id: int
    learner: str
    version: int
    text: str
    file: SubmittedFile | None
    source_event_id: str
    reply_event_id: str | None
    received_at: datetime
    late_seconds: int  # as the receipt said; views recompute against today's due time
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class Grade:
    id: int
    assignment_id: int
    learner: str
    score: float
    max_score: float
    feedback: str
    version: int | None
    graded_by: str
    graded_at: datetime


@dataclass(frozen=True)
class Return:
    id: int
    assignment_id: int
    learner: str
    note: str
    version: int | None
    returned_by: str
    returned_at: datetime


# --- repositories

M = TypeVar("M")

_ASSIGNMENT_COLUMNS = (
    "id, class_id, number, title, description, points, due_at, cutoff_at, publish_at, published_at, "
    "closed_at, deleted_at, copied_from, created_by, created_at"
)
_EDITABLE = {"title", "description", "points", "due_at", "cutoff_at"}


class Assignments(Repository):
    async def create(
        self,
        class_id: int,
        title: str,
        description: str,
        points: float,
        due_at: datetime,
        cutoff_at: datetime | None,
        publish_at: datetime | None,
        by: str,
        at: datetime,
        copied_from: int | None = None,
    ) -> Assignment:
        """A new assignment with the class's next short id (A1, A2, …)."""
        async with self.db.transaction():
            await self.db.execute(
                "INSERT INTO assignment_counters (class_id, last_number) VALUES (?, 1) "
                "ON CONFLICT(class_id) DO UPDATE SET last_number = last_number + 1",
                (class_id,),
            )
            number = await self.db.fetchval("SELECT last_number FROM assignment_counters WHERE class_id = ?", (class_id,))
            cur = await self.db.execute(
                "INSERT INTO assignments (class_id, number, title, description, points, due_at, cutoff_at, publish_at, "
                "copied_from, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (class_id, number, title, description, points, to_text(due_at), to_text(cutoff_at), to_text(publish_at),
                 copied_from, by, to_text(at)),
            )
        return await self.get(cur.lastrowid)

    async def get(self, assignment_id: int) -> Assignment | None:
        row = await self.db.fetchone(f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = ?", (assignment_id,))
        return None if row is None else from_row(Assignment, row)

    async def by_number(self, class_id: int, number: int) -> Assignment | None:
        """The class's assignment A<number>, unless deleted."""
        row = await self.db.fetchone(
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE class_id = ? AND number = ? AND deleted_at IS NULL",
            (class_id, number),
        )
        return None if row is None else from_row(Assignment, row)

    async def of_class(self, class_id: int, published_only: bool = False) -> list[Assignment]:
        sql = f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE class_id = ? AND deleted_at IS NULL"
        if published_only:
            sql += " AND published_at IS NOT NULL"
        rows = await self.db.fetchall(sql + " ORDER BY number", (class_id,))
        return [from_row(Assignment, r) for r in rows]

    async def update(self, assignment_id: int, **fields: Any) -> Assignment:
        """Change title, description, points, due_at or cutoff_at."""
        unknown = set(fields) - _EDITABLE
        if unknown:
            raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
        values = [to_text(v) if isinstance(v, datetime) else v for v in fields.values()]
        sets = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(f"UPDATE assignments SET {sets} WHERE id = ?", (*values, assignment_id))
        return await self.get(assignment_id)

    async def mark_published(self, assignment_id: int, at: datetime) -> None:
        await self.db.execute(
            "UPDATE assignments SET published_at = ? WHERE id = ? AND published_at IS NULL", (to_text(at), assignment_id)
        )

    async def close(self, assignment_id: int, at: datetime) -> None:
        await self.db.execute("UPDATE assignments SET closed_at = ? WHERE id = ?", (to_text(at), assignment_id))

    async def delete(self, assignment_id: int, at: datetime) -> None:
        """Hidden from every view; the records stay in the database."""
        await self.db.execute("UPDATE assignments SET deleted_at = ? WHERE id = ?", (to_text(at), assignment_id))

    async def due_for_publishing(self, now: datetime) -> list[Assignment]:
        """Scheduled assignments whose publish time has come and that are not posted yet."""
        rows = await self.db.fetchall(
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments "
            "WHERE published_at IS NULL AND deleted_at IS NULL AND publish_at IS NOT NULL AND publish_at <= ? "
            "ORDER BY publish_at, id",
            (to_text(now),),
        )
        return [from_row(Assignment, r) for r in rows]

    async def due_between(self, start: datetime, end: datetime) -> list[Assignment]:
        """Published, open assignments whose (class) due time is in [start, end): for reminders."""
        rows = await self.db.fetchall(
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE deleted_at IS NULL AND closed_at IS NULL "
            "AND published_at IS NOT NULL AND due_at >= ? AND due_at < ? ORDER BY due_at, id",
            (to_text(start), to_text(end)),
        )
        return [from_row(Assignment, r) for r in rows]


class Extensions(Repository):
    async def grant(self, assignment_id: int, learner: str, due_at: datetime, by: str, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO extensions (assignment_id, learner, due_at, granted_by, granted_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(assignment_id, learner) DO UPDATE SET due_at = excluded.due_at, "
            "granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            (assignment_id, learner, to_text(due_at), by, to_text(at)),
        )

    async def get(self, assignment_id: int, learner: str) -> Extension | None:
        row = await self.db.fetchone(
            "SELECT * FROM extensions WHERE assignment_id = ? AND learner = ?", (assignment_id, learner)
        )
        return None if row is None else from_row(Extension, row)

    async def of_assignment(self, assignment_id: int) -> dict[str, Extension]:
        rows = await self.db.fetchall("SELECT * FROM extensions WHERE assignment_id = ?", (assignment_id,))
        return {r["learner"]: from_row(Extension, r) for r in rows}

    async def of_learner(self, learner: str, assignment_ids: list[int]) -> dict[int, Extension]:
        rows = await _latest_of_learner(self.db, "extensions", learner, assignment_ids, "learner")
        return {a: from_row(Extension, r) for a, r in rows.items()}


async def _latest_of_learner(db: Database, table: str, learner: str, assignment_ids: list[int], order: str, more: str = "") -> dict:
    """One learner's rows of ``table`` for several assignments, in one query: the last by ``order`` wins."""
    marks = ",".join("?" * len(assignment_ids))
    rows = await db.fetchall(
        f"SELECT * FROM {table} WHERE learner = ? AND assignment_id IN ({marks}){more} ORDER BY assignment_id, {order}",
        (learner, *assignment_ids),
    )
    return {r["assignment_id"]: r for r in rows}


def _submission(row) -> Submission:
    file = None
    if row["file_url"]:
        file = SubmittedFile(row["file_url"], row["file_name"] or "file", row["file_mimetype"], row["file_size"])
    return from_row(Submission, row, file=file)


class Submissions(Repository):
    async def add(
        self,
        assignment_id: int,
        learner: str,
        text: str,
        file: SubmittedFile | None,
        source_event_id: str,
        reply_event_id: str | None,
        received_at: datetime,
        late_seconds: int,
    ) -> Submission:
        """Record the next version of the learner's work (versions keep counting after !unsubmit)."""
        async with self.db.transaction():
            version = 1 + (
                await self.db.fetchval(
                    "SELECT COALESCE(MAX(version), 0) FROM submissions WHERE assignment_id = ? AND learner = ?",
                    (assignment_id, learner),
                )
            )
            cur = await self.db.execute(
                "INSERT INTO submissions (assignment_id, learner, version, text, file_url, file_name, file_mimetype, "
                "file_size, source_event_id, reply_event_id, received_at, late_seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    assignment_id, learner, version, text,
                    file.url if file else None, file.name if file else None,
                    file.mimetype if file else None, file.size if file else None,
                    source_event_id, reply_event_id, to_text(received_at), late_seconds,
                ),
            )
        row = await self.db.fetchone("SELECT * FROM submissions WHERE id = ?", (cur.lastrowid,))
        return _submission(row)

    async def latest(self, assignment_id: int, learner: str) -> Submission | None:
        """The learner's current version (not withdrawn)."""
        row = await self.db.fetchone(
            "SELECT * FROM submissions WHERE assignment_id = ? AND learner = ? AND withdrawn_at IS NULL "
            "ORDER BY version DESC LIMIT 1",
            (assignment_id, learner),
        )
        return None if row is None else _submission(row)

    async def latest_of_assignment(self, assignment_id: int) -> dict[str, Submission]:
        """Each learner's current version of one assignment."""
        rows = await self.db.fetchall(
            "SELECT * FROM submissions WHERE assignment_id = ? AND withdrawn_at IS NULL ORDER BY learner, version",
            (assignment_id,),
        )
        return {r["learner"]: _submission(r) for r in rows}  # the last (highest) version wins

    async def latest_of_learner(self, learner: str, assignment_ids: list[int]) -> dict[int, Submission]:
        """One learner's current version of each of these assignments."""
        rows = await _latest_of_learner(self.db, "submissions", learner, assignment_ids, "version", " AND withdrawn_at IS NULL")
        return {a: _submission(r) for a, r in rows.items()}

    async def versions(self, assignment_id: int, learner: str) -> list[Submission]:
        rows = await self.db.fetchall(
            "SELECT * FROM submissions WHERE assignment_id = ? AND learner = ? ORDER BY version", (assignment_id, learner)
        )
        return [_submission(r) for r in rows]

    async def count(self, assignment_id: int) -> tuple[int, int]:
        """(current submissions, learners with one) for one assignment."""
        row = await self.db.fetchone(
            "SELECT COUNT(*), COUNT(DISTINCT learner) FROM submissions WHERE assignment_id = ? AND withdrawn_at IS NULL",
            (assignment_id,),
        )
        return row[0], row[1]

    async def withdraw(self, assignment_id: int, learner: str, at: datetime) -> int:
        """Withdraw every current version; how many there were."""
        cur = await self.db.execute(
            "UPDATE submissions SET withdrawn_at = ? WHERE assignment_id = ? AND learner = ? AND withdrawn_at IS NULL",
            (to_text(at), assignment_id, learner),
        )
        return cur.rowcount


class _NewestCounts(Repository, Generic[M]):
    """What teachers give a learner on an assignment, kept in full; the newest one counts."""

    table: ClassVar[str]
    record: type[M]

    async def _get(self, row_id: int) -> M:
        return from_row(self.record, await self.db.fetchone(f"SELECT * FROM {self.table} WHERE id = ?", (row_id,)))

    async def latest(self, assignment_id: int, learner: str) -> M | None:
        row = await self.db.fetchone(
            f"SELECT * FROM {self.table} WHERE assignment_id = ? AND learner = ? ORDER BY id DESC LIMIT 1",
            (assignment_id, learner),
        )
        return None if row is None else from_row(self.record, row)

    async def latest_of_assignment(self, assignment_id: int) -> dict[str, M]:
        rows = await self.db.fetchall(f"SELECT * FROM {self.table} WHERE assignment_id = ? ORDER BY id", (assignment_id,))
        return {r["learner"]: from_row(self.record, r) for r in rows}  # the newest wins

    async def latest_of_learner(self, learner: str, assignment_ids: list[int]) -> dict[int, M]:
        rows = await _latest_of_learner(self.db, self.table, learner, assignment_ids, "id")
        return {a: from_row(self.record, r) for a, r in rows.items()}


class Grades(_NewestCounts[Grade]):
    table, record = "grades", Grade

    async def add(
        self, assignment_id: int, learner: str, score: float, max_score: float, feedback: str,
        version: int | None, by: str, at: datetime,
    ) -> Grade:
        cur = await self.db.execute(
            "INSERT INTO grades (assignment_id, learner, score, max_score, feedback, version, graded_by, graded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (assignment_id, learner, score, max_score, feedback, version, by, to_text(at)),
        )
        return await self._get(cur.lastrowid)


class Returns(_NewestCounts[Return]):
    table, record = "returns", Return

    async def add(self, assignment_id: int, learner: str, note: str, version: int | None, by: str, at: datetime) -> Return:
        cur = await self.db.execute(
            "INSERT INTO returns (assignment_id, learner, note, version, returned_by, returned_at) VALUES (?, ?, ?, ?, ?, ?)",
            (assignment_id, learner, note, version, by, to_text(at)),
        )
        return await self._get(cur.lastrowid)
