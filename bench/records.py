"""Classroom records written straight into Ako's SQLite in bulk (for the scale and gradebook
figures), in the shape Ako's own handlers write them (storage/migrations/)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from storage.models import server_of, to_text


@dataclass
class ClassRecord:
    name: str
    code: str
    teacher: str
    learners: list[str]
    server: str
    rooms: list[tuple[str, str, str | None]] = field(default_factory=list)  # (room id, kind, owner)
    assignments: int = 3
    submitted: float = 0.8  # share of learners who handed in each assignment
    graded: float = 0.0  # share of those whose work has a grade
    timezone: str = "Pacific/Auckland"


def insert_classes(con: sqlite3.Connection, classes: list[ClassRecord], now: datetime | None = None) -> list[int]:
    """One transaction for all of them; returns the class ids."""
    now = now or datetime.now(timezone.utc)
    at = to_text(now)
    due = to_text(now + timedelta(days=30))
    ids = []
    with con:
        for c in classes:
            cur = con.execute(
                "INSERT INTO classes (name, code, timezone, server, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (c.name, c.code, c.timezone, c.server, c.teacher, at),
            )
            class_id = cur.lastrowid
            ids.append(class_id)
            members = [(class_id, c.teacher, "teacher", c.teacher, at)]
            members += [(class_id, u, "learner", u, at) for u in c.learners]
            con.executemany(
                "INSERT INTO class_members (class_id, user_id, role, added_by, added_at) VALUES (?, ?, ?, ?, ?)", members
            )
            con.executemany(
                "INSERT INTO rooms (room_id, kind, class_id, owner, created_at) VALUES (?, ?, ?, ?, ?)",
                [(room_id, kind, class_id, owner, at) for room_id, kind, owner in c.rooms],
            )
            if not c.assignments:
                continue
            con.execute("INSERT INTO assignment_counters (class_id, last_number) VALUES (?, ?)", (class_id, c.assignments))
            handed_in = c.learners[: int(len(c.learners) * c.submitted)]
            graded = handed_in[: int(len(handed_in) * c.graded)]
            for number in range(1, c.assignments + 1):
                cur = con.execute(
                    "INSERT INTO assignments (class_id, number, title, description, points, due_at, published_at, "
                    "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (class_id, number, f"Assignment {number}", "Write about it.", 20.0, due, at, c.teacher, at),
                )
                aid = cur.lastrowid
                con.executemany(
                    "INSERT INTO submissions (assignment_id, learner, version, text, source_event_id, received_at, late_seconds) "
                    "VALUES (?, ?, 1, ?, ?, ?, 0)",
                    [(aid, u, f"Work of {u} on A{number}.", f"$bench-{class_id}-{aid}-{i}", at) for i, u in enumerate(handed_in)],
                )
                con.executemany(
                    "INSERT INTO grades (assignment_id, learner, score, max_score, feedback, version, graded_by, graded_at) "
                    "VALUES (?, ?, ?, 20.0, 'Good.', 1, ?, ?)",
                    [(aid, u, float(5 + (i * 7 + number) % 16), c.teacher, at) for i, u in enumerate(graded)],
                )
    return ids


def insert_schools(con: sqlite3.Connection, servers: dict[str, str], staff: list[str], operator: str) -> None:
    """Schools (server → name) and staff, unless already there."""
    at = to_text(datetime.now(timezone.utc))
    with con:
        con.executemany(
            "INSERT OR IGNORE INTO schools (server, name, added_by, added_at) VALUES (?, ?, ?, ?)",
            [(server, name, operator, at) for server, name in servers.items()],
        )
        con.executemany(
            "INSERT OR IGNORE INTO staff (user_id, server, added_by, added_at) VALUES (?, ?, ?, ?)",
            [(u, server_of(u), operator, at) for u in staff],
        )
