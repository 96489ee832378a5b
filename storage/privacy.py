"""Everything the bot holds about one person: gathered for `!export me`, deleted for `!forget`.

The plan below names, for every table, the column that says whose a row is. A table that holds a
user id and is in neither FORGOTTEN nor KEPT fails tests/unit/test_privacy.py: a new kind of record
must say how a learner's right to be forgotten reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # storage.db journals records with FORGOTTEN below, so it imports this module
    from .db import Database

# (table, column): rows whose column is the person are deleted by !forget, and exported by !export me.
FORGOTTEN: tuple[tuple[str, str], ...] = (
    ("class_members", "user_id"),
    ("submissions", "learner"),
    ("grades", "learner"),
    ("returns", "learner"),
    ("extensions", "learner"),
    ("reminders", "created_by"),  # their !remindme reminders (learners cannot set class reminders)
    ("pending_confirmations", "user_id"),
    ("user_settings", "user_id"),
    ("topics", "author"),  # their forum topics (the replies to them go with them)
    ("topic_replies", "sender"),
    ("undecrypted_events", "sender"),
    ("decryption_notices", "sender"),
    ("pinned_identities", "user_id"),  # their cross-signing master key, pinned anew if they come back
    ("subject_members", "user_id"),
    ("rooms", "owner"),  # their work rooms and direct message with the bot
    ("marking_sessions", "learner"),  # a marking session showing their work ends with it
    ("marking_skips", "learner"),
)

# (table, column): why a row naming the person stays.
KEPT: dict[tuple[str, str], str] = {
    ("class_members", "added_by"): "who added someone else to a class: the teacher's action",
    ("extensions", "granted_by"): "the teacher who granted it",
    ("grades", "graded_by"): "the teacher who graded",
    ("returns", "returned_by"): "the teacher who returned work",
    ("reminders", "cancelled_by"): "goes with the reminder, deleted with its creator's rows",
    ("topics", "closed_by"): "a teacher",
    ("assignments", "created_by"): "teachers only",
    ("classes", "created_by"): "teachers only",
    ("schools", "added_by"): "operators only",
    ("school_admins", "user_id"): "!forget refuses school admins: an operator removes them first",
    ("school_admins", "added_by"): "operators only",
    ("staff", "user_id"): "!forget refuses staff: their school admin removes them first",
    ("staff", "added_by"): "school admins only",
    ("subject_rooms", "created_by"): "staff only",
    ("programmes", "created_by"): "staff only",
    ("programmes", "published_by"): "staff only",
    ("programme_authors", "user_id"): "staff only",
    ("programme_authors", "added_by"): "staff only",
    ("programme_changes", "actor"): "staff only",
    ("programme_items", "created_by"): "staff only",
    ("programme_uses", "used_by"): "staff only",
    ("blocked_servers", "blocked_by"): "operators only",
    ("outbox_about", "user_id"): "deleted with the outbox rows about them, after their events are redacted",
}

# Column names that hold a user id (for the check that every table is planned for).
USER_COLUMNS = {
    "user_id", "learner", "sender", "owner", "author", "actor", "created_by", "added_by", "granted_by",
    "graded_by", "returned_by", "cancelled_by", "closed_by", "published_by", "used_by", "blocked_by",
}


@dataclass
class Forgotten:
    rows: dict[str, int] = field(default_factory=dict)  # table → rows deleted

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class PersonalData:
    def __init__(self, db: Database):
        self.db = db

    async def _columns(self, table: str) -> set[str]:
        return {r["name"] for r in await self.db.fetchall(f"PRAGMA table_info({table})")}

    async def _planned(self) -> list[tuple[str, str]]:
        """The FORGOTTEN pairs whose table and column exist in this database."""
        found = []
        for table, column in FORGOTTEN:
            if column in await self._columns(table):
                found.append((table, column))
        return found

    async def collect(self, user_id: str) -> dict[str, list[dict]]:
        """Every row that is the person's, table by table (JSON-ready values)."""
        out: dict[str, list[dict]] = {}
        for table, column in await self._planned():
            rows = await self.db.fetchall(f"SELECT * FROM {table} WHERE {column} = ?", (user_id,))
            out[table] = [dict(r) for r in rows]
        return out

    async def forget(self, user_id: str, rooms: list[str], ledger_prefixes: list[str] = ()) -> Forgotten:
        """Delete every row that is the person's; ``rooms`` are their work rooms and DM, whose
        processed-event marks go too. Run inside the handler's transaction."""
        done = Forgotten()
        async with self.db.transaction():
            for table, column in await self._planned():
                cur = await self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))
                if cur.rowcount:
                    done.rows[table] = done.rows.get(table, 0) + cur.rowcount
            for room_id in rooms:
                cur = await self.db.execute("DELETE FROM processed_events WHERE room_id = ?", (room_id,))
                if cur.rowcount:
                    done.rows["processed_events"] = done.rows.get("processed_events", 0) + cur.rowcount
            for prefix in ledger_prefixes:
                cur = await self.db.execute("DELETE FROM schedule_ledger WHERE key LIKE ? || '%'", (prefix,))
                if cur.rowcount:
                    done.rows["schedule_ledger"] = done.rows.get("schedule_ledger", 0) + cur.rowcount
            cur = await self.db.execute("DELETE FROM outbox_about WHERE user_id = ?", (user_id,))
            # Their records are not written into the rooms as deleted: that would name them again, and
            # the events that carried those records are about them and redacted (storage.record_journal).
            # Their rooms' rows stay journalled: they tell the journal Ako is leaving those rooms.
            for table, column in await self._planned():
                if table == "rooms":
                    continue
                await self.db.execute(
                    "DELETE FROM record_log WHERE table_name = ? AND json_extract(row, ?) = ?", (table, f'$."{column}"', user_id)
                )
        return done

    async def user_tables(self) -> dict[str, set[str]]:
        """Every table of the database with its columns that hold user ids."""
        tables = await self.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        found = {}
        for t in tables:
            cols = await self._columns(t["name"]) & USER_COLUMNS
            if cols:
                found[t["name"]] = cols
        return found
