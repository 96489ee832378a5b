"""Marking sessions: a teacher going through an assignment's submissions one at a time (`!mark`).

A session shows one learner's work at a time. Two open sessions never show the same learner's
work on one assignment (a unique index), so teachers marking at once never get the same
submission. A session idle longer than its hold lets go of what it shows, so work is never
stuck behind a teacher who walked away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Repository
from .models import from_row, to_text


@dataclass(frozen=True)
class MarkingSession:
    id: int
    assignment_id: int
    teacher: str
    room_id: str
    learner: str | None  # whose work is shown now
    version: int | None
    graded: int
    returned: int
    skipped: tuple[str, ...]
    started_at: datetime
    active_at: datetime


class MarkingSessions(Repository):
    async def _session(self, row) -> MarkingSession:
        skips = await self.db.fetchall(
            "SELECT learner FROM marking_skips WHERE session_id = ? ORDER BY rowid", (row["id"],)
        )
        return from_row(MarkingSession, row, skipped=tuple(r["learner"] for r in skips))

    async def open_in(self, teacher: str, room_id: str) -> MarkingSession | None:
        """The teacher's open session in this room."""
        row = await self.db.fetchone(
            "SELECT * FROM marking_sessions WHERE teacher = ? AND room_id = ? AND ended_at IS NULL", (teacher, room_id)
        )
        return None if row is None else await self._session(row)

    async def class_marked_in(self, teacher: str, room_id: str) -> int | None:
        """The class of the teacher's open session in this room (a direct message names no class)."""
        return await self.db.fetchval(
            "SELECT a.class_id FROM marking_sessions m JOIN assignments a ON a.id = m.assignment_id "
            "WHERE m.teacher = ? AND m.room_id = ? AND m.ended_at IS NULL",
            (teacher, room_id),
        )

    async def start(self, assignment_id: int, teacher: str, room_id: str, at: datetime) -> MarkingSession:
        cur = await self.db.execute(
            "INSERT INTO marking_sessions (assignment_id, teacher, room_id, started_at, active_at) VALUES (?, ?, ?, ?, ?)",
            (assignment_id, teacher, room_id, to_text(at), to_text(at)),
        )
        return await self._session(await self.db.fetchone("SELECT * FROM marking_sessions WHERE id = ?", (cur.lastrowid,)))

    async def get(self, session_id: int) -> MarkingSession:
        return await self._session(await self.db.fetchone("SELECT * FROM marking_sessions WHERE id = ?", (session_id,)))

    async def held_by_others(self, session_id: int, assignment_id: int, idle_since: datetime) -> set[str]:
        """Learners whose work another open, recently active session on the assignment shows."""
        rows = await self.db.fetchall(
            "SELECT learner FROM marking_sessions WHERE assignment_id = ? AND id != ? AND ended_at IS NULL "
            "AND learner IS NOT NULL AND active_at >= ?",
            (assignment_id, session_id, to_text(idle_since)),
        )
        return {r["learner"] for r in rows}

    async def let_go_idle(self, assignment_id: int, learner: str, idle_since: datetime) -> None:
        """Sessions idle since before ``idle_since`` stop showing this learner's work (another takes it)."""
        await self.db.execute(
            "UPDATE marking_sessions SET learner = NULL, version = NULL WHERE assignment_id = ? AND learner = ? "
            "AND ended_at IS NULL AND active_at < ?",
            (assignment_id, learner, to_text(idle_since)),
        )

    async def show(self, session_id: int, learner: str | None, version: int | None, at: datetime) -> None:
        await self.db.execute(
            "UPDATE marking_sessions SET learner = ?, version = ?, active_at = ? WHERE id = ?",
            (learner, version, to_text(at), session_id),
        )

    async def count(self, session_id: int, outcome: str) -> None:
        """One more submission graded or returned in the session."""
        column = {"graded": "graded", "returned": "returned"}[outcome]
        await self.db.execute(f"UPDATE marking_sessions SET {column} = {column} + 1 WHERE id = ?", (session_id,))

    async def skip(self, session_id: int, learner: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO marking_skips (session_id, learner) VALUES (?, ?)", (session_id, learner)
        )

    async def end(self, session_id: int, at: datetime) -> None:
        await self.db.execute(
            "UPDATE marking_sessions SET ended_at = ?, learner = NULL, version = NULL WHERE id = ?", (to_text(at), session_id)
        )
